#!/usr/bin/env bash
# Data preparation of books_en: the committed n-best sets -> $data/<set> dataset directories.
#
#   local/data.sh [--regenerate true|false] [--books DIR] [--data DIR] [--nj 2] [--seed 11]
#                 [--src DIR] [--limit N]
#
# The committed data (made by --regenerate true --books DIR; see local/README.md) lives in
# data/local/:
#   data/local/nbest/{train,dev,test}/   canonical sets: text, nbest/{text,score,meta.yaml},
#                                        utt2spk, synth_params
#   data/local/text/{train,dev,test}.txt the spoken sentences; sources.tsv the book of each
#   data/local/text/teacher.txt.gz       the LM text (46 books not spoken): teacher adaptation
#                                        (train_mlm) and the baseline LMs; heldout.txt their
#                                        held-out text
# By default each set is validated and imported (import_nbest --format setdir, which also caches
# the errors stream) into $data/<set>, and the LM texts are put in $data/local/text.
# --regenerate true rebuilds data/local: with --books DIR (a directory of Project Gutenberg .txt
# files, found by the ebook numbers of local/books.tsv) the sentences first (local/prepare_text.py),
# then, from the sentences, flite synthesis, sox perturbation and pocketsphinx decoding
# (../mini_en/local/synth_decode.py, the same as mini_en's); without --books the committed
# sentences are spoken again. flite and sox are installed with apt-get when missing (as root),
# pocketsphinx with pip. The same seed, books and tool versions give the same files. --src DIR
# reads (and regenerates into) DIR instead of data/local; --limit N regenerates only the first N
# utterances of each set (CI compares them with the committed data).
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$recipe/../.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

regenerate=false   # true: rebuild data/local (needs flite, sox, pocketsphinx)
books=             # with --regenerate true: Project Gutenberg .txt files to take the sentences from
data=data          # output: dataset directories $data/<set>, LM texts in $data/local/text
nj=2               # decoding processes (--regenerate true)
seed=11            # seed of the sentence draw and of the perturbations (--regenerate true)
src=               # where the committed data lives (default: the recipe's data/local)
limit=0            # > 0: regenerate only the first N utterances of each set (--regenerate true)
help_message="usage: $0 [--regenerate true|false] [--books DIR] [--data DIR] [--nj N] [--seed N] [--src DIR] [--limit N]"
. "$root/utils/parse_options.sh"
. "$root/utils/log.sh"
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }

src=${src:-$recipe/data/local}
sets="test dev train"
[[ $limit =~ ^[0-9]+$ ]] || die "--limit must be a non-negative integer, got '$limit'"
limit_opt=()
[ "$limit" -eq 0 ] || limit_opt=(--limit "$limit")

if [ "$regenerate" = true ]; then
  bash "$root/utils/install_speech_tools.sh"
  start=$(date +%s)
  model=$("$python" -c "import pocketsphinx, os; print(os.path.join(pocketsphinx.get_model_path(), 'en-us'))")
  if [ -n "$books" ]; then
    [ -d "$books" ] || die "--books $books is not a directory"
    log "sentences from the books in $books (local/books.tsv, seed $seed)"
    rm -rf "$src/text"
    "$python" "$recipe/local/prepare_text.py" --books "$books" --table "$recipe/local/books.tsv" --seed "$seed" \
      --dict "$model/cmudict-en-us.dict" --lm "$model/en-us.lm.bin" "$src/text"
    gzip -9 -n -f "$src/text/teacher.txt"
  elif [ ! -f "$src/text/train.txt" ] && [ -f "$recipe/data/local/text/train.txt" ]; then
    log "no sentences in $src/text: speaking the committed ones ($recipe/data/local/text)"
    mkdir -p "$src/text"
    cp "$recipe/data/local/text/"* "$src/text/"
  fi
  for s in $sets; do
    [ -f "$src/text/$s.txt" ] || die "$src/text/$s.txt is missing: regenerate with --books DIR (see local/README.md)"
  done
  log "speaking and recognising the sentences of $src/text (seed $seed)"
  rm -rf "$src/nbest"
  for s in $sets; do
    "$python" "$root/egs/mini_en/local/synth_decode.py" --name "$s" --seed "$seed" --nj "$nj" "${limit_opt[@]}" \
      "$src/text/$s.txt" "$src/nbest/$s"
  done
  log "regenerated $src in $(( $(date +%s) - start )) s"
fi

for s in $sets; do
  [ -f "$src/nbest/$s/nbest/text" ] || die "$src/nbest/$s is missing: run $0 --regenerate true"
  "$python" -m rescore.bin.import_nbest --format setdir "$src/nbest/$s" "$data/$s"
done
mkdir -p "$data/local/text"
# replaced only when they changed: a rerun leaves them (and what was trained on them) as they are
gzip -dc "$src/text/teacher.txt.gz" > "$data/local/text/teacher.txt.tmp"
if cmp -s "$data/local/text/teacher.txt.tmp" "$data/local/text/teacher.txt"; then
  rm "$data/local/text/teacher.txt.tmp"
else
  mv "$data/local/text/teacher.txt.tmp" "$data/local/text/teacher.txt"
fi
cmp -s "$src/text/heldout.txt" "$data/local/text/heldout.txt" || cp "$src/text/heldout.txt" "$data/local/text/heldout.txt"
for s in $sets; do
  "$python" -m rescore.bin.nbest_stats "$data/$s"
done
