# shellcheck shell=bash
# How jobs run (Kaldi style), sourced by run.sh: the demo runs everything on this machine.
# utils/queue.pl (GridEngine) and utils/slurm.pl (SLURM) take the same options.
export train_cmd="run.pl"
