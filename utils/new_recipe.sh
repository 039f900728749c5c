#!/usr/bin/env bash
# Create a new recipe egs/NAME from egs/TEMPLATE (run.sh, cmd.sh, conf/, local/data.sh, README.md,
# RESULTS.md), with every "TEMPLATE" in its files replaced by NAME.
#   utils/new_recipe.sh NAME        (NAME: letters, digits, '_', '-', '.')
# Then edit egs/NAME/local/data.sh and the options in egs/NAME/run.sh, and check with
#   egs/NAME/run.sh --dry_run true
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -ne 1 ]; then
  echo "usage: $0 NAME   (creates $root/egs/NAME from $root/egs/TEMPLATE)" >&2
  exit 1
fi
name=$1
[[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || { echo "$0: invalid recipe name '$name'" >&2; exit 1; }
[ "$name" != TEMPLATE ] || { echo "$0: choose a name other than TEMPLATE" >&2; exit 1; }
src=$root/egs/TEMPLATE
dest=$root/egs/$name
[ -d "$src" ] || { echo "$0: $src not found" >&2; exit 1; }
[ ! -e "$dest" ] || { echo "$0: $dest already exists" >&2; exit 1; }

tmp=$(mktemp -d "$root/egs/.new_recipe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -R "$src/." "$tmp/"
# Only the template's own text files (no data, no experiments).
rm -rf "$tmp/data" "$tmp/exp"
while IFS= read -r -d '' f; do
  sed -i "s/TEMPLATE/$name/g" "$f"
done < <(find "$tmp" -type f -print0)
mv "$tmp" "$dest"
trap - EXIT
echo "$0: created $dest; edit $dest/local/data.sh and $dest/run.sh, then: $dest/run.sh --dry_run true"
