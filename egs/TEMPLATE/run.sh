#!/usr/bin/env bash
# TEMPLATE: BERT rescoring of n-best lists (RescoreBERT). The stages, and every option that can be
# given here or on the command line, are in the header of ../../run.sh (../../run.sh --help).
#   ./run.sh [--stage N] [--stop_stage M] [--dry_run true] [--ngpu 1] [any option of ../../run.sh]
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$recipe"
. ./cmd.sh

"$recipe/../../run.sh" \
  --cmd "$train_cmd" \
  --train_set train --dev_set dev --eval_sets "test" \
  --teacher bert-base-uncased --teacher_adapt true --teacher_text data/local/lm_text.txt \
  --student_layers 4 \
  --systems "clm pll md mwer mwed" \
  "$@"
