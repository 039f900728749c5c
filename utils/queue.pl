#!/usr/bin/env perl
# queue.pl: run a command as one job or as the jobs JOB=1:N on a GridEngine cluster (qsub).
#
#   utils/queue.pl [--mem X] [--num-threads N] [--gpu G] [--max-jobs-run M | -tc M] [--config FILE]
#                  [--pick failed|incomplete] [-x VALUE ...] [JOB=1:N] exp/log/foo.JOB.log <command ...>
#
# Same command line, job spec, logs and exit status as utils/run.pl (utils/lib/JobCmd.pm); how jobs
# are submitted and waited for: utils/lib/SchedCmd.pm. Options are translated through --config, else
# conf/queue.conf when it exists, else the built-in config below:
#   --mem 2G         -> -l mem_free=2G,ram_free=2G
#   --num-threads 4  -> -pe smp 4
#   --gpu 1          -> -l gpu=1 -q '*.q'      (--gpu 0 adds nothing)
# Each job is one `qsub ... -N <log name> -o <logdir>/q/<log name>.log <logdir>/q/<log name>.sh`.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib "$RealBin/lib";
use SchedCmd;

my $builtin = <<'EOF';
command qsub -V -cwd -S /bin/bash -j y
option mem=* -l mem_free=$0,ram_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option gpu=* -l gpu=$0 -q '*.q'
option gpu=0
default gpu=0
EOF

SchedCmd::main({
  config => 'conf/queue.conf',
  builtin => $builtin,
  output => sub { my ($qlog, $name) = @_; return ('-N', $name, '-o', $qlog) },
  id_regex => qr/Your job(?:-array)? (\d+)/,
  status_prog => 'qstat',
  status => sub {
    my ($id) = @_;
    system("qstat -j $id >/dev/null 2>&1");
    return $? == 0 ? 1 : 0;
  },
}, @ARGV);
