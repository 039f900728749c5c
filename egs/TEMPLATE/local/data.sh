#!/usr/bin/env bash
# Data preparation of the TEMPLATE recipe: one canonical dataset directory per set, data/<set>
# (nbest/text, nbest/score, text; see the README of the repository), and the in-domain text for
# the teacher and the baseline LM, data/local/lm_text.txt (one sentence per line).
#
# As written it imports a recogniser's output with python -m rescore.bin.import_nbest:
#   local/data.sh --src DIR --format FMT [--refs DIR] [--lm_text FILE] [--sets "train dev test"]
# reads DIR/<set> (FMT: kaldi-nbest, espnet, mlm-json, hypr, nemo, setdir, kaldi-lattice, slf)
# with references REFS/<set>/text when given. Replace it with your corpus' preparation as needed
# (pass its options from run.sh with --data_opts "...").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
python=${PYTHON:-python3}

src=
format=kaldi-nbest
refs=
lm_text=
sets="train dev test"
help_message="usage: $0 --src DIR [--format FMT] [--refs DIR] [--lm_text FILE] [--sets 'train dev test']"
. "$root/utils/parse_options.sh"
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
[ -n "$src" ] || { echo "$0: give --src DIR (run.sh --data_opts '--src DIR ...'), or edit $0 for your corpus" >&2; exit 1; }

read -r -a set_list <<< "$sets"
for s in "${set_list[@]}"; do
  text_opt=()
  [ -z "$refs" ] || text_opt=(--text "$refs/$s/text")
  "$python" -m rescore.bin.import_nbest --format "$format" "${text_opt[@]}" "$src/$s" "data/$s"
done
if [ -n "$lm_text" ]; then
  mkdir -p data/local
  cp "$lm_text" data/local/lm_text.txt
fi
