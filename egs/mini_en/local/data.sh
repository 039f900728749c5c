#!/usr/bin/env bash
# Data preparation of mini_en: the committed n-best sets -> $data/<set> dataset directories.
#
#   local/data.sh [--regenerate true|false] [--data DIR] [--nj 2] [--seed 7] [--src DIR] [--limit N]
#
# The committed data (made by --regenerate true; see local/README.md) lives in data/local/:
#   data/local/nbest/{train,dev,test}/   canonical sets: text, nbest/{text,score,meta.yaml},
#                                        utt2spk, synth_params
#   data/local/lat/{train,dev,test}/     pocketsphinx SLF lattices, <utt>.lat.gz (posterior-pruned;
#                                        usable as run.sh --lattices data/local/lat)
#   data/local/text/teacher.txt          in-domain text for the teacher (train_mlm) and the LSTM
#                                        baseline (train_clm); heldout.txt their held-out text;
#                                        {train,dev,test}.txt the utterance sentences
# By default each set is validated and imported (python -m rescore.bin.import_nbest --format setdir,
# which also caches the errors stream) into $data/<set>, and the texts are copied to
# $data/local/text when $data is not the recipe's data/. With --regenerate true everything in
# data/local is rebuilt first: sentences (local/generate_text.py), flite synthesis, sox
# perturbation and pocketsphinx decoding (local/synth_decode.py); flite and sox are installed with
# apt-get when missing (as root), pocketsphinx with pip. The same seed and tool versions give the
# same files. --src DIR reads (and regenerates into) DIR instead of data/local; --limit N
# regenerates only the first N utterances of each set (a quick check that the committed data
# comes back: CI compares them with data/local).
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$recipe/../.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

regenerate=false   # true: rebuild data/local from scratch (needs flite, sox, pocketsphinx)
data=data          # output: dataset directories $data/<set>, texts in $data/local/text
nj=2               # decoding processes (--regenerate true)
seed=7             # seed of the sentences and of the perturbations (--regenerate true)
src=               # where the committed data lives (default: the recipe's data/local)
limit=0            # > 0: regenerate only the first N utterances of each set (--regenerate true)
help_message="usage: $0 [--regenerate true|false] [--data DIR] [--nj N] [--seed N] [--src DIR] [--limit N]"
. "$root/utils/parse_options.sh"
. "$root/utils/log.sh"
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }

src=${src:-$recipe/data/local}
sets="train dev test"
[[ $limit =~ ^[0-9]+$ ]] || die "--limit must be a non-negative integer, got '$limit'"
limit_opt=()
[ "$limit" -eq 0 ] || limit_opt=(--limit "$limit")

if [ "$regenerate" = true ]; then
  bash "$root/utils/install_speech_tools.sh"
  start=$(date +%s)
  dict=$("$python" -c "import pocketsphinx, os; print(os.path.join(pocketsphinx.get_model_path(), 'en-us', 'cmudict-en-us.dict'))")
  log "regenerating $src (seed $seed): sentences, synthesis, decoding"
  rm -rf "$src/text" "$src/nbest" "$src/lat"
  "$python" "$recipe/local/generate_text.py" --seed "$seed" --dict "$dict" "$src/text"
  for s in $sets; do
    "$python" "$recipe/local/synth_decode.py" --name "$s" --seed "$seed" --nj "$nj" "${limit_opt[@]}" \
      --lat_dir "$src/lat/$s" "$src/text/$s.txt" "$src/nbest/$s"
  done
  log "regenerated $src in $(( $(date +%s) - start )) s"
fi

for s in $sets; do
  [ -f "$src/nbest/$s/nbest/text" ] || die "$src/nbest/$s is missing: run $0 --regenerate true"
  "$python" -m rescore.bin.import_nbest --format setdir "$src/nbest/$s" "$data/$s"
done
mkdir -p "$data/local/text"
if [ "$(cd "$data/local/text" && pwd -P)" != "$(cd "$src/text" && pwd -P)" ]; then
  for f in teacher.txt heldout.txt; do  # copied once: a rerun leaves them (and what uses them) as they are
    cmp -s "$src/text/$f" "$data/local/text/$f" || cp "$src/text/$f" "$data/local/text/$f"
  done
fi
for s in $sets; do
  "$python" -m rescore.bin.nbest_stats "$data/$s"
done
