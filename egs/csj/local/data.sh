#!/usr/bin/env bash
# Data preparation of the CSJ recipe: your own Kaldi or ESPnet CSJ n-best decodes -> one canonical
# dataset directory per set, data/<set> (python -m rescore.bin.import_nbest, validated, with CER
# errors cached), and the in-domain text of the teacher and the baseline LM, data/local/lm_text.txt.
#
#   local/data.sh --source kaldi|espnet --src DIR_OR_PATTERN --refs DIR_OR_PATTERN
#                 [--sets train_nodup,train_dev,eval1,eval2,eval3] [--lm_text FILE] [--lm_set train_nodup]
#                 [--acwt 0.1] [--words words.txt] [--field text|token] [--norm csj,bracket] [--data data]
#
# --source kaldi   n-best archives of egs/csj/s5 (steps/rnnlmrescore.sh, scripts/rnnlm/lmrescore_nbest.sh,
#                  steps/pytorchnn/lmrescore_nbest_pytorchnn.sh: a decode dir with archives.*/); texts are
#                  morpheme tokens "surface+POS" with <sp> (docs/formats.md §6.1); score = -(graph + acwt * ac).
# --source espnet  espnet2 decode dirs of egs2/csj/asr1 (asr_inference --nbest N: DIR/logdir/output.*/
#                  <n>best_recog/{text,score}); texts are characters without spaces (docs/formats.md §6.3).
# --src            where the decode of each set is: a pattern with {set} (e.g.
#                  "exp/chain/tdnn1a/decode_{set}_rnnlm_nbest" or "exp/asr_train/decode_asr/{set}"), or a
#                  directory holding one decode dir per set (DIR/<set>).
# --refs           the references of each set: a pattern with {set} naming a Kaldi "text" file or a data
#                  dir, or a directory of data dirs (DIR/<set>/text: Kaldi data/, ESPnet dump/raw/ or data/).
#                  Kaldi references keep their +POS tags and <sp>: normalisation removes them at scoring.
# --sets           the sets to import, comma-separated (run.sh passes this option through --data_opts,
#                  which splits on spaces); they must include run.sh's --train_set, --dev_set, --eval_sets.
# --lm_text        the teacher's and the baseline LM's training text, one sentence per line; default: the
#                  references of --lm_set (the training transcripts, utterance ids removed). Normalised
#                  with --norm (as every model reads its text) and written to data/local/lm_text.txt.
# --norm, --metric, --lang   recorded in each set's meta.yaml; every later step scores with them.
#                  Defaults: CSJ normalisation csj,bracket and CER (docs/formats.md §6.5).
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$recipe/../.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

source=            # kaldi or espnet
src=               # decode dirs: pattern with {set}, or DIR/<set>
refs=              # references: pattern with {set} (text file or data dir), or DIR/<set>/text
sets=train_nodup,train_dev,eval1,eval2,eval3
lm_text=           # default: the references of $lm_set
lm_set=train_nodup
acwt=0.1           # kaldi: acoustic scale of the first-pass score (1 / the LMWT of scoring_kaldi/best_wer)
words=             # kaldi: words.txt, when the archives hold word ids (words) but no words_text
field=text         # espnet: text, or token for models without a tokenizer
lang=ja
metric=cer
norm=csj,bracket
data=data          # output: dataset directories $data/<set>, text in $data/local/lm_text.txt
help_message="usage: $0 --source kaldi|espnet --src DIR_OR_PATTERN --refs DIR_OR_PATTERN [--sets a,b,c]
  [--lm_text FILE] [--lm_set SET] [--acwt X] [--words FILE] [--field text|token]
  [--norm FLAGS] [--metric cer|wer] [--lang ja] [--data DIR]   (see the header of $0)"
. "$root/utils/parse_options.sh"
. "$root/utils/log.sh"
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }

case $source in
  kaldi) format=kaldi-nbest ;;
  espnet) format=espnet ;;
  "")
    die "give --source kaldi or --source espnet (run.sh --data_opts '--source kaldi --src ... --refs ...');" \
      "CSJ is licensed and not shipped: bring your own decodes (README.md)"
    ;;
  *) die "--source must be kaldi or espnet, got '$source'" ;;
esac
[ -n "$src" ] || die "give --src: the $source decode dir per set (a pattern with {set}, or DIR: DIR/<set>)"
[ -n "$refs" ] || die "give --refs: the references per set (a pattern with {set}, or DIR: DIR/<set>/text)"
read -r -a set_list <<< "${sets//,/ }"
[ ${#set_list[@]} -gt 0 ] || die "--sets is empty"

# path_of PATTERN SET: PATTERN with {set} replaced, or PATTERN/SET.
path_of() {
  if [[ $1 == *"{set}"* ]]; then echo "${1//\{set\}/$2}"; else echo "$1/$2"; fi
}
# ref_file SET: the references of SET: REFS/SET/text, or the pattern's text file (or data dir holding text).
ref_file() {
  local p
  if [[ $refs == *"{set}"* ]]; then
    p=${refs//\{set\}/$1}
    [ ! -d "$p" ] || p=$p/text
  else
    p=$refs/$1/text
  fi
  echo "$p"
}

# Check every input before importing anything.
for s in "${set_list[@]}"; do
  d=$(path_of "$src" "$s")
  [ -d "$d" ] || [ -f "$d" ] || die "set $s: decode dir $d not found (--src $src)"
  if [ "$source" = kaldi ]; then
    compgen -G "$d/archives.*" > /dev/null || [[ $(basename "$d") == archives.* ]] \
      || die "set $s: $d holds no archives.*/ (Kaldi n-best output of lmrescore_nbest.sh, rnnlmrescore.sh)"
  else
    compgen -G "$d/logdir/output.*" > /dev/null || compgen -G "$d/output.*" > /dev/null \
      || [[ $(basename "$d") == output.* ]] \
      || die "set $s: $d holds no logdir/output.*/ (espnet2 asr_inference output with --nbest N)"
  fi
  r=$(ref_file "$s")
  [ -f "$r" ] || die "set $s: references $r not found (--refs $refs)"
done
if [ -n "$lm_text" ]; then
  [ -f "$lm_text" ] || die "--lm_text $lm_text not found"
else
  [ -f "$(ref_file "$lm_set")" ] || die "no --lm_text, and the references of --lm_set $lm_set are missing:" \
    "$(ref_file "$lm_set")"
fi

fmt_opts=()
case $source in
  kaldi)
    fmt_opts=(--acwt "$acwt")
    [ -z "$words" ] || fmt_opts+=(--words "$words")
    ;;
  espnet) fmt_opts=(--field "$field") ;;
esac
for s in "${set_list[@]}"; do
  log "import $s: $(path_of "$src" "$s") ($format) + $(ref_file "$s") -> $data/$s"
  "$python" -m rescore.bin.import_nbest --format "$format" "${fmt_opts[@]}" --lang "$lang" \
    --metric "$metric" --norm "$norm" --text "$(ref_file "$s")" "$(path_of "$src" "$s")" "$data/$s"
done

# The models' text: normalised as the hypotheses they score (score_pll/score_student --norm, train_clm norm).
mkdir -p "$data/local"
if [ -n "$lm_text" ]; then lm_in=$lm_text; with_ids=false; else lm_in=$(ref_file "$lm_set"); with_ids=true; fi
"$python" - "$norm" "$with_ids" "$lm_in" "$data/local/lm_text.txt" <<'PY'
import re
import sys
from rescore.data.textnorm import Normalizer
norm, with_ids, src, out = Normalizer.parse(sys.argv[1]), sys.argv[2] == "true", sys.argv[3], sys.argv[4]
n_in = n_out = 0
with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8", newline="\n") as g:
    for line in f:
        n_in += 1
        text = line.rstrip("\r\n")
        if with_ids:  # a Kaldi text file: "<utt> words" (ASCII whitespace only: U+3000 is text)
            text = (re.split(r"[ \t]+", text.strip(" \t"), maxsplit=1) + [""])[1]
        text = norm.text(" ".join(re.split(r"[ \t]+", text.strip(" \t"))))
        if text:
            g.write(text + "\n")
            n_out += 1
if n_out == 0:
    sys.exit(f"data.sh: {src} gave no text after normalisation {norm}")
print(f"data.sh: {out}: {n_out} sentences from {n_in} lines of {src} (normalisation {norm})", file=sys.stderr)
PY

for s in "${set_list[@]}"; do
  "$python" -m rescore.bin.nbest_stats "$data/$s"  # the recorded metric: CER
done
