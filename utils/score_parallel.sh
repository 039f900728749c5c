#!/usr/bin/env bash
# Run a scoring step as NJ parallel jobs over a split set and merge the results (Kaldi style).
#
#   utils/score_parallel.sh [--cmd CMD] [--nj N] [--gpu 0|1] SETDIR OUTDIR NAME -- STEP_MODULE [step options]
#   e.g. utils/score_parallel.sh --cmd utils/run.pl --nj 3 data/dev exp/teacher/dev pll -- \
#          rescore.bin.score_pll --model exp/teacher/model
#
# 1. split SETDIR into SETDIR/split<NJ>/{1..NJ} (utils/split_nbest.sh; an up-to-date split is reused);
# 2. $cmd [--gpu 1] JOB=1:NJ OUTDIR/log/NAME.JOB.log \
#        $python -m STEP_MODULE [step options] SETDIR/split<NJ>/JOB OUTDIR/split<NJ>/JOB
#    The step must write OUTDIR/split<NJ>/<j>/NAME and, last, its .done fingerprint, and skip
#    itself when that fingerprint matches, so a rerun after a failed or killed job redoes only the
#    unfinished jobs;
# 3. python -m rescore.bin.merge_scores --name NAME --nj NJ SETDIR OUTDIR: checks that every key
#    of SETDIR appears exactly once across the parts, writes OUTDIR/NAME, OUTDIR/run.yaml and,
#    last, OUTDIR/.done (skipped when up to date).
# Options: --cmd (default utils/run.pl of this repository; a string such as "utils/slurm.pl --mem 4G"
# is split into words), --nj (default 4), --gpu 1 (passes --gpu 1 to $cmd: one GPU per job).
# The Python interpreter is $PYTHON (default python3).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}

cmd="$root/utils/run.pl"
nj=4
gpu=0
help_message="usage: $0 [--cmd CMD] [--nj N] [--gpu 0|1] SETDIR OUTDIR NAME -- STEP_MODULE [step options]
  Splits SETDIR into NJ subsets, runs 'python -m STEP_MODULE [step options] SUBSET OUTDIR/split<NJ>/<j>'
  under CMD as JOB=1:NJ (logs OUTDIR/log/NAME.<j>.log), and merges the parts into OUTDIR/NAME.
  --cmd CMD   job runner (default: $cmd)
  --nj N      number of jobs (default: $nj)
  --gpu 0|1   give each job one GPU (default: $gpu)"
. "$root/utils/parse_options.sh"

usage() {
  echo "$0: $1" >&2
  echo "$help_message" >&2
  exit 1
}
[ $# -ge 5 ] || usage "expected SETDIR OUTDIR NAME -- STEP_MODULE [step options], got $# argument(s)"
setdir=$1
outdir=$2
name=$3
[ "$4" = "--" ] || usage "the fourth argument must be '--', got '$4'"
shift 4
module=$1
shift
[[ $nj =~ ^[1-9][0-9]*$ ]] || usage "--nj must be a positive integer, got '$nj'"
[ "$gpu" = 0 ] || [ "$gpu" = 1 ] || usage "--gpu must be 0 or 1, got '$gpu'"
[[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || usage "invalid NAME '$name'"
[ -f "$setdir/nbest/text" ] || usage "$setdir is not a dataset directory (no nbest/text)"

PYTHON=$python "$root/utils/split_nbest.sh" "$setdir" "$nj"

gpu_opt=()
[ "$gpu" = 0 ] || gpu_opt=(--gpu 1)
mkdir -p "$outdir/log"
echo "$0: $name: $nj job(s) of $module under ${cmd%% *}, logs in $outdir/log/$name.*.log" >&2
# $cmd is word-split on purpose: it may carry options (e.g. "utils/slurm.pl --mem 4G").
# shellcheck disable=SC2086
$cmd "${gpu_opt[@]}" JOB=1:"$nj" "$outdir/log/$name.JOB.log" \
  "$python" -m "$module" "$@" "$setdir/split$nj/JOB" "$outdir/split$nj/JOB"

echo "$0: merge $nj part(s) of $name -> $outdir/$name" >&2
"$python" -m rescore.bin.merge_scores --name "$name" --nj "$nj" "$setdir" "$outdir"
echo "$0: done: $outdir/$name" >&2
