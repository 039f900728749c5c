#!/usr/bin/env bash
# csj: BERT rescoring (RescoreBERT) of Corpus of Spontaneous Japanese n-best lists, from your own
# Kaldi (egs/csj/s5) or ESPnet (egs2/csj/asr1) decodes. CSJ is licensed: nothing of it ships here
# (README.md). Sets as in both CSJ recipes: train_nodup (student training), train_dev (weights
# tuned), eval1 eval2 eval3. Teacher cl-tohoku/bert-base-japanese-v3 (pip install ".[ja]" for its
# fugashi + unidic-lite tokenizer), adapted on the training transcripts; student: its first 4
# layers. Every error rate is a CER (CSJ normalisation csj,bracket: +POS tags, <sp> and other
# <...>/[...] tokens removed, whitespace ignored), recorded in each set's meta.yaml at import.
#
#   ./run.sh --data_opts "--source kaldi --src DECODE_PATTERN --refs DATA_DIR [--acwt 0.1]"
#   ./run.sh --data_opts "--source espnet --src DECODE_PATTERN --refs DUMP_DIR"
#   ./run.sh --dry_run true            # print every command, run nothing
# (local/data.sh --help: the options; ../../run.sh --help: the stages and every other option.)
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$recipe"
. ./cmd.sh

# The text every model reads is normalised like the scoring: morpheme+POS -> surface, <sp> etc. dropped.
norm=csj,bracket

"$recipe/../../run.sh" --cmd "$train_cmd" --lang ja \
  --train_set train_nodup --dev_set train_dev --eval_sets "eval1 eval2 eval3" \
  --teacher cl-tohoku/bert-base-japanese-v3 --teacher_adapt true --teacher_text data/local/lm_text.txt \
  --student_layers 4 \
  --pll_opts "--norm $norm" --student_score_opts "--norm $norm" \
  --rescore_opts "--cer" \
  --systems "clm pll md mwer mwed" \
  "$@"
