# shellcheck shell=bash
# How jobs run (Kaldi style), sourced by run.sh: utils/run.pl runs them on this machine,
# utils/queue.pl submits them to GridEngine and utils/slurm.pl to SLURM, translating --mem,
# --num-threads and --gpu through conf/queue.conf or conf/slurm.conf (or built-in defaults).
# CSJ train_nodup has ~400k utterances: the teacher PLL (stage 3) wants GPUs (--ngpu 1 with a queue).
export train_cmd="run.pl"
# export train_cmd="queue.pl --mem 8G"
# export train_cmd="slurm.pl --mem 8G"
