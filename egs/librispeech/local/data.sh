#!/usr/bin/env bash
# Data preparation of the librispeech recipe: LibriSpeech n-best lists -> canonical dataset
# directories $data/<set> (python -m rescore.bin.import_nbest), the union $data/dev of dev_clean
# and dev_other (the set the weights are tuned on), and the LM text for the teacher adaptation and
# the LSTM baseline, $data/local/lm/{train,heldout}.txt. Nothing is downloaded: every input is a
# file you already have (see --help and ../README.md for where to get them).
#
#   local/data.sh --source hypr|mlm-json|kaldi|espnet --src DIR --lm_text FILE|none [options]
#
# Sets (canonical names, Kaldi/ESPnet LibriSpeech style): train_960 dev_clean dev_other test_clean
# test_other; --source mlm-json has no training set (its default --sets are the four others).
#   hypr      DIR: a checkout of the HF dataset ASR-HypR/LibriSpeech_withoutLM (or _withLM), i.e. the
#             directory holding data/<split>-*.parquet, or data/ itself; splits train (-> train_960),
#             dev_clean, dev_other, test_clean, test_other. Files DIR/<split>.jsonl (.jsonl.gz, .json,
#             .parquet) are read as well (e.g. a split exported with datasets' to_json). References
#             come from the records' ref field (or --refs).
#   mlm-json  DIR: awslabs/mlm-scoring's examples/asr-librispeech-espnet/data, holding
#             dev-clean.am.json, dev-other.am.json, test-clean.am.json, test-other.am.json (100-best,
#             references in the files).
#   kaldi     DIR/<set>: one Kaldi decode directory per set (lat.*.gz + num_jobs, or archives.*/ with
#             --kaldi_format kaldi-nbest), e.g. a link to exp/chain/tdnn/decode_test_clean_tglarge;
#             --refs R: R/<set>/text (Kaldi's data/), --words: the lang directory's words.txt.
#   espnet    DIR/<set>: one ESPnet2 decode directory per set (e.g. a link to
#             exp/asr_*/decode_asr_*/test_clean), --refs R: R/<set>/text (ESPnet's data/ or dump/raw/).
# Every set is imported with --lang en --norm lower (WER ignores case: LibriSpeech references are
# upper case, mlm-scoring's lists lower case). The LM text is lower-cased here, because train_mlm
# reads its text as it is (an uncased BERT lower-cases anyway; a cased teacher would not).
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$recipe/../.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

source=                 # hypr | mlm-json | kaldi | espnet (required)
src=                    # where the n-best lists are (required; see above)
refs=                   # directory with <set>/text references (required for kaldi and espnet)
sets=                   # sets to import (default: train_960 dev_clean dev_other test_clean test_other;
                        #   mlm-json: the last four)
lm_text=                # librispeech-lm-norm.txt or .txt.gz (required), or 'none' to skip the LM text
lm_every=10             # keep every N-th line of the LM text for training (1: all 40M sentences)
lm_heldout_every=1000   # every N-th line of the LM text goes to heldout.txt (and not to train.txt)
combine_dev=true        # write $data/dev = dev_clean + dev_other (when both are imported)
kaldi_format=kaldi-lattice  # kaldi: kaldi-lattice (lat.*.gz) or kaldi-nbest (archives.*/)
words=                  # kaldi: words.txt (default: import_nbest's, DIR/<set>/words.txt)
nbest=50                # kaldi-lattice: hypotheses extracted per utterance
norm=lower              # scoring normalisation recorded in every set (import_nbest --norm)
import_opts=            # more import_nbest options for every set
data=data               # output: $data/<set>, $data/local/lm
dry_run=false           # true: check the inputs and print the import commands, write nothing
help_message="usage: $0 --source hypr|mlm-json|kaldi|espnet --src DIR --lm_text FILE|none [options]
  --source S          where the n-best lists come from (see the header of $0)
  --src DIR           the n-best lists
  --refs DIR          references DIR/<set>/text (kaldi, espnet: required; hypr, mlm-json: optional)
  --sets 'S1 S2 ...'  sets to import (default: train_960 dev_clean dev_other test_clean test_other;
                      mlm-json: dev_clean dev_other test_clean test_other)
  --lm_text FILE      the LibriSpeech LM corpus librispeech-lm-norm.txt(.gz), or 'none'
  --lm_every N --lm_heldout_every N   subsample of the LM text for training, held-out share
  --combine_dev true|false --kaldi_format kaldi-lattice|kaldi-nbest --words FILE --nbest N
  --norm FLAGS --import_opts 'OPTS' --data DIR --dry_run true|false
Nothing is downloaded. Where to get the inputs (download them yourself, then point --src/--lm_text there):
  HypR LibriSpeech (50-best, train/dev/test):  https://huggingface.co/datasets/ASR-HypR/LibriSpeech_withoutLM
      (or .../ASR-HypR/LibriSpeech_withLM), e.g. git clone of the dataset repository with git-lfs
  mlm-scoring 100-best (dev/test only):        https://github.com/awslabs/mlm-scoring
      (examples/asr-librispeech-espnet/data/*.am.json)
  LibriSpeech LM corpus (librispeech-lm-norm.txt.gz, about 800M words): https://www.openslr.org/11/"
. "$root/utils/parse_options.sh"
. "$root/utils/log.sh"
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }

need() { echo "$help_message" >&2; die "$*"; }

case $source in
  hypr | mlm-json | kaldi | espnet) ;;
  "") need "give --source hypr|mlm-json|kaldi|espnet" ;;
  *) need "--source must be hypr, mlm-json, kaldi or espnet, got '$source'" ;;
esac
[ -n "$src" ] || need "give --src DIR: the $source n-best lists (see the download hints above)"
[ -d "$src" ] || die "--src $src: no such directory"
case $source in
  kaldi | espnet) [ -n "$refs" ] || need "--source $source needs --refs DIR with DIR/<set>/text (Kaldi/ESPnet data/)" ;;
esac
[ -z "$refs" ] || [ -d "$refs" ] || die "--refs $refs: no such directory"
[ -n "$lm_text" ] || need "give --lm_text PATH/librispeech-lm-norm.txt.gz (from https://www.openslr.org/11/), or --lm_text none (then run.sh uses --teacher_adapt false and no clm system)"
[ "$lm_text" = none ] || [ -f "$lm_text" ] || die "--lm_text $lm_text: no such file (download librispeech-lm-norm.txt.gz from https://www.openslr.org/11/)"
for v in lm_every lm_heldout_every nbest; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v must be a positive integer, got '${!v}'"
done
case $kaldi_format in kaldi-lattice | kaldi-nbest) ;; *) die "--kaldi_format must be kaldi-lattice or kaldi-nbest" ;; esac
if [ -z "$sets" ]; then
  if [ "$source" = mlm-json ]; then sets="dev_clean dev_other test_clean test_other"; else
    sets="train_960 dev_clean dev_other test_clean test_other"
  fi
fi
read -r -a set_list <<< "$sets"
[ ${#set_list[@]} -gt 0 ] || die "--sets is empty"
read -r -a extra <<< "$import_opts"

# hypr_input SET: sets $input and $input_opts (the HypR file or directory + --pattern) for SET.
hypr_input() {
  local split=$1 dir=$src ext f
  [ "$split" != train_960 ] || split=train
  [ ! -d "$src/data" ] || dir=$src/data
  input_opts=()
  if compgen -G "$dir/$split-*.parquet" > /dev/null; then
    input=$dir
    input_opts=(--pattern "$split-*.parquet")
    return
  fi
  for ext in parquet jsonl jsonl.gz json json.gz; do
    f=$dir/$split.$ext
    if [ -f "$f" ]; then
      input=$f
      return
    fi
  done
  die "no HypR split '$split' (set $1) in $dir: expected $dir/$split-*.parquet (the HF dataset's data/) or $dir/$split.jsonl"
}

imported=()
for s in "${set_list[@]}"; do
  input_opts=()
  case $source in
    hypr)
      hypr_input "$s"
      fmt=hypr
      ;;
    mlm-json)
      input=$src/${s//_/-}.am.json
      [ -f "$input" ] || die "no mlm-scoring list for set $s: $input not found (mlm-scoring has dev-clean dev-other test-clean test-other only; set --sets)"
      fmt=mlm-json
      ;;
    kaldi)
      input=$src/$s
      [ -d "$input" ] || die "no Kaldi decode directory for set $s: $input not found (link your decode_<set>_* directory there)"
      fmt=$kaldi_format
      [ -z "$words" ] || input_opts+=(--words "$words")
      [ "$fmt" != kaldi-lattice ] || input_opts+=(--nbest "$nbest")
      ;;
    espnet)
      input=$src/$s
      [ -d "$input" ] || die "no ESPnet decode directory for set $s: $input not found (link your decode directory of $s there)"
      fmt=espnet
      ;;
  esac
  text_opt=()
  if [ -n "$refs" ]; then
    [ -f "$refs/$s/text" ] || die "no references for set $s: $refs/$s/text not found"
    text_opt=(--text "$refs/$s/text")
  fi
  cmd=("$python" -m rescore.bin.import_nbest --format "$fmt" --lang en --norm "$norm" "${text_opt[@]}"
       "${input_opts[@]}" "${extra[@]}" "$input" "$data/$s")
  if [ "$dry_run" = true ]; then
    show "${cmd[@]}"
  else
    log "importing $s: $input ($fmt) -> $data/$s"
    "${cmd[@]}"
  fi
  imported+=("$s")
done

if [ "$combine_dev" = true ] && [[ " ${imported[*]} " == *" dev_clean "* ]] && [[ " ${imported[*]} " == *" dev_other "* ]]; then
  imported+=(dev)
  cmd=("$python" "$recipe/local/combine_sets.py" "$data/dev" "$data/dev_clean" "$data/dev_other")
  if [ "$dry_run" = true ]; then show "${cmd[@]}"; else
    log "combining dev_clean and dev_other -> $data/dev (the set weights are tuned on)"
    "${cmd[@]}"
  fi
fi

# The LM text: lower-cased; every $lm_heldout_every-th line held out, every $lm_every-th of the
# others kept for training. train_mlm and train_clm hold their whole text in memory (and
# sentencepiece trains on all of it), hence the default subsample of one line in 10.
if [ "$lm_text" != none ]; then
  lm=$data/local/lm
  stamp="$(cd "$(dirname "$lm_text")" && pwd -P)/$(basename "$lm_text") $(stat -c '%s %Y' "$lm_text") every=$lm_every heldout_every=$lm_heldout_every"
  if [ "$dry_run" = true ]; then
    echo "lm text: $lm_text -> $lm/train.txt (every $lm_every-th line), $lm/heldout.txt (every $lm_heldout_every-th line), lower-cased"
  elif [ -f "$lm/.done" ] && [ "$(cat "$lm/.done")" = "$stamp" ]; then
    log "skip: $lm is up to date with $lm_text"
  else
    log "LM text: $lm_text -> $lm/{train,heldout}.txt"
    mkdir -p "$lm"
    rm -f "$lm/.done"
    reader=(cat)
    [[ $lm_text != *.gz ]] || reader=(gzip -dc)
    "${reader[@]}" "$lm_text" | awk -v every="$lm_every" -v hev="$lm_heldout_every" \
      -v train="$lm/train.txt.tmp" -v held="$lm/heldout.txt.tmp" '
      NF == 0 { next }
      NR % hev == 0 { print tolower($0) > held; next }
      NR % every == 0 { print tolower($0) > train }
      END { close(train); close(held) }'
    touch "$lm/train.txt.tmp" "$lm/heldout.txt.tmp"
    [ -s "$lm/train.txt.tmp" ] || die "$lm_text gave no training lines (--lm_every $lm_every)"
    [ -s "$lm/heldout.txt.tmp" ] || die "$lm_text gave no held-out lines: it has fewer than --lm_heldout_every $lm_heldout_every lines"
    mv "$lm/train.txt.tmp" "$lm/train.txt"
    mv "$lm/heldout.txt.tmp" "$lm/heldout.txt"
    echo "$stamp" > "$lm/.done"
    log "LM text: $(wc -l < "$lm/train.txt") training and $(wc -l < "$lm/heldout.txt") held-out sentences"
  fi
fi

if [ "$dry_run" = false ]; then
  for s in "${imported[@]}"; do
    "$python" -m rescore.bin.nbest_stats "$data/$s"
  done
fi
