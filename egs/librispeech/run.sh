#!/usr/bin/env bash
# librispeech: RescoreBERT on LibriSpeech n-best lists, paper-scale setup (GPU). Teacher
# bert-base-uncased (or --teacher bert-large-uncased) adapted on the LibriSpeech LM corpus, student
# google/bert_uncased_L-4_H-512_A-8 (BERT-Small: 4 layers, hidden 512, the teacher's uncased
# vocabulary) trained with MD, then MWER and MWED; LSTM baseline on the same LM text. Weights are
# tuned on dev = dev_clean + dev_other; every dev and test set is reported (the dev rows are not
# held out). Nothing is downloaded by the recipe: see README.md for the inputs.
#
#   ./run.sh --source hypr --src /path/to/LibriSpeech_withoutLM --lm_text /path/to/librispeech-lm-norm.txt.gz
#   ./run.sh --source mlm-json --src /path/to/mlm-scoring/examples/asr-librispeech-espnet/data --lm_text ...
#   ./run.sh --source kaldi --src DECODES --refs data --data_opts "--words data/lang/words.txt" --lm_text ...
#   ./run.sh --source espnet --src DECODES --refs data --lm_text ...
#   ./run.sh ... --dry_run true | --stage N | --ngpu 0|1|4 | --teacher bert-large-uncased
#            | --student_init "" --student_layers 4   (student = the teacher's first 4 layers)
#
# Recipe options (passed to local/data.sh): --source --src --refs --lm_text --data_opts 'OPTS'.
# Every other option goes to ../../run.sh (stages and options: ../../run.sh --help) and wins over
# the settings below. --source mlm-json has no training n-best: it runs the systems that need none
# (clm pll) and names dev as the (unused) train set.
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$recipe"
. ./cmd.sh

source=hypr         # --source: hypr | mlm-json | kaldi | espnet
src=                # --src: the n-best lists (local/data.sh --src)
refs=               # --refs: references DIR/<set>/text (kaldi, espnet)
lm_text=            # --lm_text: librispeech-lm-norm.txt(.gz), or none
data_opts=          # --data_opts: more local/data.sh options
help_message="$(sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//')

Options of ../../run.sh: ../../run.sh --help"
# the recipe's own options are parsed here; every other --name value pair goes on to ../../run.sh
passthrough_args=()
. "$recipe/../../utils/parse_options.sh"
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (options are --name value pairs)" >&2; exit 1; }

case $source in
  hypr | kaldi | espnet)
    train_set=train_960
    systems="clm pll md mwer mwed"
    ;;
  mlm-json)
    train_set=dev
    systems="clm pll"
    ;;
  *)
    echo "$0: --source must be hypr, mlm-json, kaldi or espnet, got '$source'" >&2
    exit 1
    ;;
esac
for v in src refs lm_text; do
  [[ ${!v} != *[[:space:]]* ]] || { echo "$0: --$v must not contain spaces: '${!v}'" >&2; exit 1; }
done

opts="--source $source"
[ -z "$src" ] || opts+=" --src $src"
[ -z "$refs" ] || opts+=" --refs $refs"
[ -z "$lm_text" ] || opts+=" --lm_text $lm_text"
[ -z "$data_opts" ] || opts+=" $data_opts"

teacher_opts=(--teacher_adapt true --teacher_text data/local/lm/train.txt --heldout_text data/local/lm/heldout.txt)
if [ "$lm_text" = none ]; then
  # no LM text: the teacher as it is, and no LSTM baseline
  teacher_opts=(--teacher_adapt false)
  systems=${systems/clm /}
fi

"$recipe/../../run.sh" --cmd "$train_cmd" --ngpu 1 --nj 4 \
  --data_opts "$opts" \
  --train_set "$train_set" --dev_set dev --eval_sets "dev_clean dev_other test_clean test_other" \
  --teacher bert-base-uncased "${teacher_opts[@]}" \
  --student_init google/bert_uncased_L-4_H-512_A-8 --student_layers 0 \
  --pll_opts "--norm lower --batch_tokens 16384" \
  --student_score_opts "--norm lower --batch_tokens 16384" \
  --systems "$systems" \
  "${passthrough_args[@]}"
