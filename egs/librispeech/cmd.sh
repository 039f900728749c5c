# shellcheck shell=bash
# How jobs run (Kaldi style), sourced by run.sh. run.sh passes --ngpu 1: training and scoring jobs
# each get one GPU (utils/run.pl gives every running job its own device through
# CUDA_VISIBLE_DEVICES and runs as many scoring jobs at once as there are GPUs); --ngpu N > 1 trains
# the students with torchrun on N GPUs. utils/queue.pl (GridEngine) and utils/slurm.pl (SLURM)
# translate --mem, --num-threads and --gpu through conf/queue.conf or conf/slurm.conf (or built-in
# defaults).
export train_cmd="run.pl"
# export train_cmd="queue.pl --mem 32G"
# export train_cmd="slurm.pl --mem 32G"
