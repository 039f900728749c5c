# SchedCmd: the grid-engine side of utils/queue.pl (qsub) and utils/slurm.pl (sbatch).
#
# Each job gets a bash script <logdir>/q/<log name>.sh that cds to the current directory, sources
# ./path.sh when there is one, writes the log header, runs the command under bash (stdin
# /dev/null, stdout and stderr into the log), writes the footer and finally the done-file
# <logdir>/q/<log name>.done holding the exit code. The script is submitted once per job:
#   <command from the config> <translated options> <raw -x options> <name/output options> <script>
# and this program polls for the done-files (0.05 s growing to $RESCORE_QUEUE_POLL_MAX, default
# 10 s), submitting at most --max-jobs-run jobs at a time (default: all at once).
# Every $RESCORE_QUEUE_CHECK_INTERVAL seconds (default 60) it asks the scheduler (qstat -j ID /
# squeue -h -j ID -o %T, skipped when that command is not on PATH) whether an unfinished job still
# exists; a job gone in two consecutive checks without a done-file is counted as failed (killed
# for time or memory, node failure), and its log lacks the footer (see --pick).
#
# Config file (Kaldi's queue.conf format; '#' starts a comment):
#   command qsub -V -cwd -S /bin/bash -j y     the submit command and its fixed options
#   option mem=* -l mem_free=$0,ram_free=$0     --mem X: rule for any value, $0 replaced by X
#   option mem=0                                exact-value rules win over '*' rules; may be empty
#   default gpu=0                               value used when the option is not given
# Options are split into words like a shell would (quotes kept together), never run by a shell.
# Every --name VALUE given (other than --max-jobs-run, --config, --pick) needs a rule, else error.
package SchedCmd;

use strict;
use warnings;
use Cwd qw(getcwd);
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use Text::ParseWords qw(shellwords);
use POSIX ();
use Time::HiRes qw(time sleep);
use JobCmd;

my %LOCAL = map { $_ => 1 } qw(max_jobs_run config pick);

# Read a config file (or the built-in text): (\@command, \%rules{name}{value}, \%defaults).
sub read_config {
  my ($text, $where) = @_;
  my (@command, %rules, %defaults);
  my $n = 0;
  for my $line (split /\n/, $text) {
    $n++;
    $line =~ s/#.*$//;
    next unless $line =~ /\S/;
    if ($line =~ /^\s*command\s+(.*\S)\s*$/) {
      @command = shellwords($1);
    } elsif ($line =~ /^\s*option\s+(\w+)=(\S+)\s*(.*?)\s*$/) {
      $rules{$1}{$2} = $3;
    } elsif ($line =~ /^\s*default\s+(\w+)=(\S+)\s*$/) {
      $defaults{$1} = $2;
    } else {
      JobCmd::fail("$where:$n: cannot parse '$line' (expected command/option/default)");
    }
  }
  JobCmd::fail("$where: no 'command' line") unless @command;
  return (\@command, \%rules, \%defaults);
}

# Scheduler options for the generic options given (or defaulted).
sub translate {
  my ($job, $rules, $defaults, $where) = @_;
  my %val = %$defaults;
  $val{$_} = $job->{opts}{$_} for keys %{ $job->{given} };
  my @out;
  for my $name (sort keys %val) {
    next if $LOCAL{$name};
    my $v = $val{$name};
    my $r = $rules->{$name};
    JobCmd::fail("--" . ($name =~ tr/_/-/r) . " has no rule in $where") unless $r;
    my $args;
    if (exists $r->{$v}) {
      $args = $r->{$v};
    } elsif (exists $r->{'*'}) {
      ($args = $r->{'*'}) =~ s/\$0/$v/g;
    } else {
      JobCmd::fail("no rule for --" . ($name =~ tr/_/-/r) . " $v in $where");
    }
    push @out, shellwords($args);
  }
  return @out;
}

sub write_script {
  my ($path, $job, $id, $done) = @_;
  my $log = JobCmd::subst($job, $job->{log}, $id);
  my $cmd = JobCmd::subst($job, $job->{command}, $id);
  my $q = \&JobCmd::shell_quote;
  my $threads = $job->{opts}{num_threads};
  my $text = <<"EOF";
#!/usr/bin/env bash
# Job $id of: $JobCmd::PROG ... $job->{log}
cd @{[ $q->(getcwd()) ]} || exit 1
[ ! -f ./path.sh ] || . ./path.sh
log=@{[ $q->($log) ]}
done_file=@{[ $q->($done) ]}
mkdir -p "\$(dirname "\$log")"
{ printf '# %s\\n' @{[ $q->($cmd) ]}; echo "# Started at \$(date)"; echo '#'; } > "\$log"
start=\$(date +%s)
bash -c @{[ $q->($cmd) ]} < /dev/null >> "\$log" 2>&1
rc=\$?
secs=\$((\$(date +%s) - start))
{ echo "# Accounting: time=\$secs threads=$threads"
  echo "# Ended (code \$rc) at \$(date), elapsed time \$secs seconds"; } >> "\$log"
echo \$rc > "\$done_file.tmp" && mv "\$done_file.tmp" "\$done_file"
exit \$rc
EOF
  open(my $fh, '>', $path) or JobCmd::fail("cannot write $path: $!");
  print $fh $text;
  close $fh;
  chmod 0755, $path;
}

sub in_path {
  my ($prog) = @_;
  return grep { -x "$_/$prog" } split /:/, ($ENV{PATH} // '');
}

# $flavor: { name, config (default path), builtin (config text), output => sub($qlog, $jobname),
#            id_regex, status => sub($id) -> 1 present / 0 gone / undef unknown }
sub main {
  my ($flavor, @argv) = @_;
  my $job = JobCmd::parse_args(@argv);
  my %o = %{ $job->{opts} };
  my ($text, $where);
  my $conf = $o{config} // $flavor->{config};
  if (-f $conf) {
    open(my $fh, '<', $conf) or JobCmd::fail("cannot read $conf: $!");
    local $/;
    $text = <$fh>;
    ($where) = ($conf);
  } elsif (defined $o{config}) {
    JobCmd::fail("config file $conf not found");
  } else {
    ($text, $where) = ($flavor->{builtin}, "the built-in config of $JobCmd::PROG");
  }
  my ($command, $rules, $defaults) = read_config($text, $where);
  my @opts = (@$command, translate($job, $rules, $defaults, $where), @{ $job->{raw} });
  my ($to_run, $bad) = JobCmd::pick_jobs($job);
  my @failed = @$bad;
  my $max = $o{max_jobs_run} // scalar(@$to_run) || 1;
  my $poll_max = $ENV{RESCORE_QUEUE_POLL_MAX} // 10;
  my $check_every = $ENV{RESCORE_QUEUE_CHECK_INTERVAL} // 60;
  my $can_check = in_path($flavor->{status_prog});

  my @todo = @$to_run;
  my %running;    # id -> { done, sched_id, gone, qlog }
  my $sleep = 0.05;
  my $last_check = time;
  while (@todo || %running) {
    while (@todo && keys %running < $max) {
      my $id = shift @todo;
      my $log = JobCmd::subst($job, $job->{log}, $id);
      JobCmd::make_log_dir($log);
      my $qdir = dirname($log) . "/q";
      make_path($qdir) unless -d $qdir;
      my $base = basename($log);
      $base =~ s/\.log$//;
      my ($script, $done, $qlog) = ("$qdir/$base.sh", "$qdir/$base.done", "$qdir/$base.log");
      unlink $done;
      write_script($script, $job, $id, $done);
      my $name = $base =~ /^[A-Za-z]/ ? $base : "j$base";
      my @cmd = (@opts, $flavor->{output}->($qlog, $name), $script);
      my ($out, $ok);
      for my $try (1 .. 3) {
        $out = qx_list(@cmd);
        $ok = $? == 0;
        last if $ok;
        print STDERR "$JobCmd::PROG: submission failed (try $try of 3): @cmd\n$out";
        sleep(5 * $try) if $try < 3;
      }
      JobCmd::fail("could not submit job $id (log $log)") unless $ok;
      my ($sid) = $out =~ $flavor->{id_regex};
      $running{$id} = { done => $done, sched_id => $sid, gone => 0, qlog => $qlog, log => $log };
    }
    my $finished = 0;
    for my $id (sort { $a <=> $b } keys %running) {
      my $r = $running{$id};
      next unless -f $r->{done};
      open(my $fh, '<', $r->{done}) or next;
      my $rc = <$fh>;
      close $fh;
      next unless defined $rc && $rc =~ /^(\d+)\s*$/;
      push @failed, $id if $1 != 0;
      delete $running{$id};
      $finished++;
    }
    next if $finished;
    if ($can_check && time - $last_check >= $check_every) {
      $last_check = time;
      for my $id (sort { $a <=> $b } keys %running) {
        my $r = $running{$id};
        next unless defined $r->{sched_id};
        my $present = $flavor->{status}->($r->{sched_id});
        next unless defined $present;
        $r->{gone} = $present ? 0 : $r->{gone} + 1;
        next if $r->{gone} < 2 || -f $r->{done};
        print STDERR "$JobCmd::PROG: job $id (scheduler id $r->{sched_id}) left the queue without "
          . "finishing; see $r->{qlog} and $r->{log}\n";
        push @failed, $id;
        delete $running{$id};
      }
    }
    sleep($sleep);
    $sleep = $sleep * 2 > $poll_max ? $poll_max : $sleep * 2;
  }
  JobCmd::finish($job, @failed);
}

# Run a program (no shell) and return its stdout and stderr.
sub qx_list {
  my (@cmd) = @_;
  my $pid = open(my $fh, '-|') // JobCmd::fail("fork failed: $!");
  if ($pid == 0) {
    open(STDERR, '>&', \*STDOUT);
    open(STDIN, '<', '/dev/null');
    exec { $cmd[0] } @cmd or do { print "cannot run $cmd[0]: $!\n"; POSIX::_exit(127) };
  }
  local $/;
  my $out = <$fh> // '';
  close $fh;
  return $out;
}

1;
