#!/usr/bin/env perl
# run.pl: run a command as one job or as the jobs JOB=1:N, locally and in parallel (docs/formats.md §3.3).
#
#   utils/run.pl [--max-jobs-run M | -tc M] [--num-threads N] [--gpu G] [--pick failed|incomplete]
#                [JOB=1:N] exp/log/foo.JOB.log <command ...>
#
# Option details, the job spec, command quoting, log header/footer and --pick: utils/lib/JobCmd.pm.
# Here: jobs run under bash with stdin from /dev/null, stdout and stderr into their log. At most
# --max-jobs-run jobs run at once; the default is the number of CPUs, or with --gpu G > 0 the number
# of GPUs (from nvidia-smi -L, or CUDA_VISIBLE_DEVICES; 1 when none is found) divided by G.
# With --gpu G > 0 and GPUs found, each running job sees its own G devices through
# CUDA_VISIBLE_DEVICES. --mem, --config and other scheduler options are accepted and ignored.
# Exit status 0 when every job succeeded; otherwise 1 and "run.pl: F / N failed, log is in <log>".
# On SIGINT/SIGTERM the running jobs are terminated (their logs then lack the footer, so
# --pick incomplete or --pick failed reruns them).
use strict;
use warnings;
use FindBin qw($RealBin);
use lib "$RealBin/lib";
use JobCmd;
use POSIX qw(setpgid);

my $job = JobCmd::parse_args(@ARGV);
my %o = %{ $job->{opts} };
my $gpu = $o{gpu} // 0;

sub num_cpus {
  my $n = `nproc 2>/dev/null`;
  return $n =~ /^(\d+)/ && $1 > 0 ? $1 : 1;
}

# The GPU device ids this machine offers (CUDA_VISIBLE_DEVICES wins over nvidia-smi).
sub gpu_devices {
  if (defined $ENV{CUDA_VISIBLE_DEVICES} && $ENV{CUDA_VISIBLE_DEVICES} =~ /\S/) {
    return grep { length } split /\s*,\s*/, $ENV{CUDA_VISIBLE_DEVICES};
  }
  my @lines = grep { /^GPU \d+/ } `nvidia-smi -L 2>/dev/null`;
  return map { /^GPU (\d+)/ ? $1 : () } @lines;
}

my @devices = $gpu > 0 ? gpu_devices() : ();
my $num_slots = $gpu > 0 && @devices >= $gpu ? int(@devices / $gpu) : 0;
my $max = $o{max_jobs_run} // ($gpu > 0 ? ($num_slots || 1) : num_cpus());
if ($gpu > 0 && @devices && @devices < $gpu) {
  print STDERR "$JobCmd::PROG: warning: --gpu $gpu but only " . scalar(@devices) . " GPU(s) found\n";
}

my ($to_run, $bad) = JobCmd::pick_jobs($job);
my @failed = @$bad;
my %running;    # pid -> [job id, gpu slot]
my %slot_use;   # gpu slot -> running jobs

sub run_child {
  my ($id, $slot) = @_;
  setpgid(0, 0);
  $SIG{INT} = $SIG{TERM} = 'DEFAULT';
  my $log = JobCmd::subst($job, $job->{log}, $id);
  my $cmd = JobCmd::subst($job, $job->{command}, $id);
  JobCmd::make_log_dir($log);
  my $t0 = time;
  open(my $fh, '>', $log) or JobCmd::fail("cannot write $log: $!");
  print $fh JobCmd::header($cmd);
  close $fh;
  if (defined $slot) {
    $ENV{CUDA_VISIBLE_DEVICES} = join(',', @devices[$slot * $gpu .. $slot * $gpu + $gpu - 1]);
  }
  open(STDIN, '<', '/dev/null') or die;
  open(STDOUT, '>>', $log) or JobCmd::fail("cannot append to $log: $!");
  open(STDERR, '>&', \*STDOUT) or die;
  my $rc = JobCmd::exit_code(system('bash', '-c', $cmd));
  open($fh, '>>', $log) or JobCmd::fail("cannot append to $log: $!");
  print $fh JobCmd::footer($rc, time - $t0, $o{num_threads});
  close $fh;
  POSIX::_exit($rc > 255 ? 255 : $rc);
}

sub reap_one {
  my $pid = wait();
  return if $pid < 0;
  my $status = $?;
  my $entry = delete $running{$pid} or return;
  my ($id, $slot) = @$entry;
  $slot_use{$slot}-- if defined $slot;
  push @failed, $id if $status != 0;
}

sub terminate {
  my ($sig) = @_;
  kill('TERM', -$_) for keys %running;
  print STDERR "$JobCmd::PROG: caught SIG$sig, terminated " . scalar(keys %running) . " running job(s)\n";
  exit 1;
}
$SIG{INT} = $SIG{TERM} = \&terminate;

for my $id (@$to_run) {
  reap_one() while keys %running >= $max;
  my $slot;
  if ($num_slots) {
    ($slot) = sort { ($slot_use{$a} // 0) <=> ($slot_use{$b} // 0) || $a <=> $b } (0 .. $num_slots - 1);
    $slot_use{$slot}++;
  }
  my $pid = fork();
  JobCmd::fail("fork failed: $!") unless defined $pid;
  run_child($id, $slot) if $pid == 0;
  setpgid($pid, $pid);
  $running{$pid} = [$id, $slot];
}
reap_one() while keys %running;
JobCmd::finish($job, @failed);
