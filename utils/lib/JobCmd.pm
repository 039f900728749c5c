# JobCmd: what utils/run.pl, utils/queue.pl and utils/slurm.pl share (docs/formats.md §3.3).
#
#   <prog> [options] [JOB=1:N] <log-file> <command ...>
#
# Options (before or after the JOB= spec):
#   --mem X             memory per job (queue.pl/slurm.pl translate it; run.pl ignores it)
#   --num-threads N     threads per job; reported in the log footer "threads=N" (default 1)
#   --gpu G             GPUs per job (run.pl: sets CUDA_VISIBLE_DEVICES per running job, see run.pl)
#   --max-jobs-run M    at most M jobs at once (also spelled -tc M)
#   --config FILE       option translation table (queue.pl/slurm.pl; run.pl ignores it)
#   --pick failed|incomplete
#                       rerun only some jobs, judged by the last non-empty line of each job's
#                       existing log:
#                       failed:     run every job whose log does not end with "# Ended (code 0) ..."
#                                   (missing log, a failed job, or a job cut off before its footer);
#                                   jobs whose log ends with "Ended (code 0)" are skipped as done.
#                       incomplete: run only jobs whose log has no "# Ended (code ...)" last line
#                                   (missing log or cut off); a job whose log ends with a non-zero
#                                   code is NOT rerun and counts as failed in the exit status.
#   --<other> VALUE     run.pl: ignored. queue.pl/slurm.pl: translated through the config file,
#                       an option the config has no rule for is an error.
#   -<x> VALUE          a raw scheduler option (e.g. -l arch=*64): passed to qsub/sbatch as is;
#                       run.pl ignores it.
#
# The job spec NAME=A:B (or NAME=A for one job) names any identifier (JOB, LMWT, ...); every
# occurrence of NAME in the log path and in the command is replaced by the job number. With more
# than one job the log path must contain NAME. A: 1 or more, B >= A.
#
# The command is re-joined into one bash command line: an argument containing whitespace (or an
# empty one) is single-quoted and stays one word; any other argument is pasted as is, so that
# escaped shell syntax such as \| '>' \&\& reaches bash as a pipe, redirection or list.
#
# Every log gets the header "# <command>", "# Started at <date>", "#" and the footer
# "# Accounting: time=<s> threads=<n>", "# Ended (code <rc>) at <date>, elapsed time <s> seconds".
# A job killed by signal S ends with code 128+S, as bash reports it.
package JobCmd;

use strict;
use warnings;
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use POSIX qw(strftime);

our $PROG = basename($0);

sub fail {
  my ($msg) = @_;
  print STDERR "$PROG: $msg\n";
  exit 1;
}

sub usage {
  my ($extra) = @_;
  print STDERR "$PROG: $extra\n" if defined $extra;
  print STDERR <<"EOF";
usage: $PROG [--mem X] [--num-threads N] [--gpu G] [--max-jobs-run M | -tc M] [--config FILE]
             [--pick failed|incomplete] [JOB=1:N] <log-file> <command ...>
  e.g. $PROG --gpu 1 JOB=1:4 exp/log/score.JOB.log python -m step data/split4/JOB exp/split4/JOB
EOF
  exit 1;
}

sub date_string { return strftime("%a %b %e %H:%M:%S %Z %Y", localtime) }

# Quote one argument for bash (always).
sub shell_quote {
  my ($s) = @_;
  return $s if $s =~ m{^[A-Za-z0-9_/.,:=@%+-]+$};
  $s =~ s/'/'\\''/g;
  return "'$s'";
}

# The command line as bash will read it (see the header comment).
sub join_command {
  my @words = map { ($_ eq '' || /\s/) ? shell_quote($_) : $_ } @_;
  return join(' ', @words);
}

# Parse the arguments. Returns a hash: opts (name => value, '-' mapped to '_'), given (names
# given on the command line), raw (single-dash options and values), jobname, start, end, log,
# command (one string).
sub parse_args {
  my (@argv) = @_;
  my %o = (num_threads => 1);
  my (@raw, %given);
  my ($jobname, $start, $end);
  while (@argv) {
    my $a = $argv[0];
    if ($a =~ /^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$/) {
      usage("more than one job range ($jobname and $a)") if defined $jobname;
      ($jobname, $start, $end) = ($1, $2, defined $3 ? $3 : $2);
      shift @argv;
      next;
    }
    last unless $a =~ /^-/;
    shift @argv;
    usage("option $a needs a value") unless @argv;
    my $v = shift @argv;
    if ($a eq '-tc') {
      $o{max_jobs_run} = $v;
    } elsif ($a =~ /^--([A-Za-z][\w-]*)$/) {
      (my $name = $1) =~ tr/-/_/;
      $o{$name} = $v;
      $given{$name} = 1;
    } elsif ($a =~ /^-[A-Za-z]\w*$/) {
      push @raw, $a, $v;
    } else {
      usage("invalid option $a");
    }
  }
  usage("no log file and command") if @argv < 2;
  my $log = shift @argv;
  my $command = join_command(@argv);
  if (defined $jobname) {
    usage("job range $jobname=$start:$end must start at 1 or higher") if $start < 1;
    usage("job range $jobname=$start:$end ends before it starts") if $end < $start;
    usage("with more than one job the log file $log must contain $jobname")
      if $end > $start && index($log, $jobname) < 0;
  } else {
    ($start, $end) = (1, 1);
  }
  for my $n (qw(num_threads max_jobs_run)) {
    fail("--$n must be a positive integer, got '$o{$n}'") if defined $o{$n} && $o{$n} !~ /^[1-9]\d*$/;
  }
  fail("--gpu must be a non-negative integer, got '$o{gpu}'") if defined $o{gpu} && $o{gpu} !~ /^\d+$/;
  fail("--pick must be failed or incomplete, got '$o{pick}'")
    if defined $o{pick} && $o{pick} !~ /^(failed|incomplete)$/;
  return { opts => \%o, given => \%given, raw => \@raw, jobname => $jobname, start => $start,
           end => $end, log => $log, command => $command };
}

# Substitute job $id into a string (the log path or the command).
sub subst {
  my ($job, $s, $id) = @_;
  return $s unless defined $job->{jobname};
  my $name = $job->{jobname};
  $s =~ s/\Q$name\E/$id/g;
  return $s;
}

# The exit code a log reports on its last non-empty line, or undef when there is none.
sub log_code {
  my ($file) = @_;
  open(my $fh, '<', $file) or return undef;
  my $size = -s $fh;
  seek($fh, $size > 4096 ? $size - 4096 : 0, 0);
  local $/;
  my $tail = <$fh>;
  close $fh;
  $tail = '' unless defined $tail;
  $tail =~ s/\s+$//;
  my ($last) = $tail =~ /([^\n]*)$/;
  return ($last =~ /^# Ended \(code (-?\d+)\)/) ? $1 : undef;
}

# Which jobs to run under --pick. Returns (\@to_run, \@failed_not_rerun).
sub pick_jobs {
  my ($job) = @_;
  my @ids = ($job->{start} .. $job->{end});
  my $pick = $job->{opts}{pick};
  return (\@ids, []) unless defined $pick;
  my (@run, @bad);
  my $ok = 0;
  for my $id (@ids) {
    my $code = log_code(subst($job, $job->{log}, $id));
    if (defined $code && $code == 0) {
      $ok++;
    } elsif (defined $code && $pick eq 'incomplete') {
      push @bad, $id;
    } else {
      push @run, $id;
    }
  }
  printf STDERR "%s: --pick %s: running %d of %d job(s); %d already done%s\n", $PROG, $pick, scalar(@run),
    scalar(@ids), $ok, ($pick eq 'incomplete' ? sprintf(", %d failed and not rerun", scalar(@bad)) : '');
  return (\@run, \@bad);
}

sub make_log_dir {
  my ($log) = @_;
  my $dir = dirname($log);
  make_path($dir) unless -d $dir;
  fail("cannot create log directory $dir") unless -d $dir;
}

sub header { my ($cmd) = @_; return "# $cmd\n# Started at " . date_string() . "\n#\n" }

sub footer {
  my ($rc, $secs, $threads) = @_;
  return "# Accounting: time=$secs threads=$threads\n"
    . "# Ended (code $rc) at " . date_string() . ", elapsed time $secs seconds\n";
}

# The exit code bash would report for a wait status.
sub exit_code {
  my ($status) = @_;
  return 127 if $status == -1;
  return 128 + ($status & 127) if $status & 127;
  return $status >> 8;
}

# Final report; exits the program. @failed: ids of the failed jobs.
sub finish {
  my ($job, @failed) = @_;
  my $n = $job->{end} - $job->{start} + 1;
  if (@failed) {
    @failed = sort { $a <=> $b } @failed;
    print STDERR "$PROG: " . scalar(@failed) . " / $n failed, log is in " . subst($job, $job->{log}, $failed[0]) . "\n";
    exit 1;
  }
  exit 0;
}

1;
