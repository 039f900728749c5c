#!/usr/bin/env perl
# slurm.pl: run a command as one job or as the jobs JOB=1:N on a SLURM cluster (sbatch).
#
#   utils/slurm.pl [--mem X] [--num-threads N] [--gpu G] [--max-jobs-run M | -tc M] [--config FILE]
#                  [--pick failed|incomplete] [-x VALUE ...] [JOB=1:N] exp/log/foo.JOB.log <command ...>
#
# Same command line, job spec, logs and exit status as utils/run.pl (utils/lib/JobCmd.pm); how jobs
# are submitted and waited for: utils/lib/SchedCmd.pm. Options are translated through --config, else
# conf/slurm.conf when it exists, else the built-in config below:
#   --mem 2G         -> --mem-per-cpu 2G
#   --num-threads 4  -> --cpus-per-task 4
#   --gpu 1          -> -p gpu --gres=gpu:1     (--gpu 0 adds nothing)
# Each job is one `sbatch ... --job-name <log name> --output <logdir>/q/<log name>.log <script>`.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib "$RealBin/lib";
use SchedCmd;

my $builtin = <<'EOF';
command sbatch --export=ALL --ntasks=1
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
option gpu=* -p gpu --gres=gpu:$0
option gpu=0
default gpu=0
EOF

my %terminal = map { $_ => 1 }
  qw(COMPLETED FAILED CANCELLED TIMEOUT OUT_OF_MEMORY NODE_FAIL BOOT_FAIL PREEMPTED DEADLINE);

SchedCmd::main({
  config => 'conf/slurm.conf',
  builtin => $builtin,
  output => sub { my ($qlog, $name) = @_; return ('--job-name', $name, '--output', $qlog) },
  id_regex => qr/Submitted batch job (\d+)/,
  status_prog => 'squeue',
  status => sub {
    my ($id) = @_;
    my $state = `squeue -h -j $id -o %T 2>/dev/null`;
    return 0 if $? != 0;
    $state =~ s/\s+//g;
    return ($state eq '' || $terminal{$state}) ? 0 : 1;
  },
}, @ARGV);
