#!/usr/bin/env bash
# One ablation of a discriminative student (for the ablation table of RESULTS.md): the config of the recipe's
# OBJECTIVE (conf/<mwer|mwed>.yaml) with KEY=VALUE overrides, trained from the MD student of the
# main run like stage 5, then scored and rescored on dev and test like stage 6.
#
#   local/ablation.sh [--data data] [--exp exp] [--nj 2] [--conf_dir conf] NAME OBJECTIVE [KEY=VALUE ...]
#   e.g. local/ablation.sh mwer_lr1e-4 mwer lr=1.0e-4
#
# Needs stages 3-4 of ./run.sh (exp/teacher/<set>/pll, exp/student_md/model). Writes
# exp/ablation/NAME (the student: model, train log, config.yaml), exp/ablation/NAME/<set>/student,
# exp/rescore/NAME (weights tuned on dev, rescored dev and test). Then, for example:
#   python local/compare_systems.py --systems md,mwer,NAME
# Every step skips itself when its .done fingerprint is up to date (--overwrite: remove the dirs).
set -euo pipefail
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$recipe/../.." && pwd)
cd "$recipe"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
data=data
exp=exp
nj=2
conf_dir=conf
help_message="usage: $0 [--data data] [--exp exp] [--nj 2] [--conf_dir conf] NAME OBJECTIVE [KEY=VALUE ...]"
. "$root/utils/parse_options.sh"
. "$root/utils/log.sh"
[ $# -ge 2 ] || { echo "$help_message" >&2; exit 1; }
name=$1 objective=$2
shift 2
case $objective in mwer|mwed) ;; *) die "OBJECTIVE must be mwer or mwed, got '$objective'" ;; esac
[[ $name =~ ^[A-Za-z0-9._+-]+$ ]] || die "NAME may hold letters, digits and ._+- only, got '$name'"
for f in "$exp/student_md/model" "$exp/teacher/train/pll" "$exp/teacher/dev/pll"; do
  [ -e "$f" ] || die "$f not found: run ./run.sh --stop_stage 4 first"
done
out=$exp/ablation/$name
mkdir -p "$out"
log "ablation $name: $objective with ${*:-no overrides} -> $out (log $out/train.log)"
"$python" -m rescore.bin.train_student --config "$conf_dir/$objective.yaml" --init "$exp/student_md/model" \
  --train_set "$data/train" --train_scores "$exp/teacher/train" --dev_set "$data/dev" --dev_scores "$exp/teacher/dev" \
  --out "$out" "$@" > "$out/train.log" 2>&1 || { tail -20 "$out/train.log" >&2; die "training failed: $out/train.log"; }
for s in dev test; do
  "$root/utils/score_parallel.sh" --cmd "$root/utils/run.pl" --nj "$nj" "$data/$s" "$out/$s" student -- \
    rescore.bin.score_student --model "$out/model" --num_threads 1
done
"$python" -m rescore.bin.rescore --dev "$data/dev" --eval "$data/test" --stream "$name=$out/{set}/student" \
  --out "$exp/rescore/$name"
log "ablation $name: done ($exp/rescore/$name/RESULTS.md)"
