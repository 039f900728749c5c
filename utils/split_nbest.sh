#!/usr/bin/env bash
# Split a dataset directory by utterance into NJ subsets SETDIR/split<NJ>/{1..NJ} for parallel jobs
# (reused when up to date). Thin wrapper over `python -m rescore.bin.split_nbest`, which see.
#   utils/split_nbest.sh SETDIR NJ
set -euo pipefail
python=${PYTHON:-python3}
if [ $# -ne 2 ] || [[ ! $2 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SETDIR NJ   (NJ >= 1; writes SETDIR/split<NJ>/{1..NJ})" >&2
  exit 1
fi
echo "$0: splitting $1 into $2 job(s): $1/split$2" >&2
"$python" -m rescore.bin.split_nbest "$1" "$2" > /dev/null
