"""utils/run.pl, utils/queue.pl and utils/slurm.pl: job ranges, logs, failures, --pick, schedulers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.utils.helpers import UTILS, install_standins, sh, submitted

RUN, QUEUE, SLURM = UTILS / "run.pl", UTILS / "queue.pl", UTILS / "slurm.pl"
HEADER = re.compile(r"\A# (?P<cmd>.*)\n# Started at .+\n#\n")
FOOTER = re.compile(r"# Accounting: time=(?P<t>\d+) threads=(?P<n>\d+)\n"
                    r"# Ended \(code (?P<rc>\d+)\) at .+, elapsed time (?P=t) seconds\n\Z")


def parse_log(path: Path) -> tuple[str, str, int, int]:
    """(command, body, exit code, threads) of a job log; asserts the header and footer."""
    text = path.read_text()
    h, f = HEADER.match(text), FOOTER.search(text)
    assert h and f, text
    return h["cmd"], text[h.end():f.start()], int(f["rc"]), int(f["n"])


def test_single_job(tmp_path):
    r = sh([RUN, "log/one.log", "echo", "hello  world", "x"], tmp_path)
    assert r.returncode == 0, r.stderr
    cmd, body, rc, threads = parse_log(tmp_path / "log/one.log")
    assert cmd == "echo 'hello  world' x"
    assert body == "hello  world x\n"
    assert (rc, threads) == (0, 1)


def test_job_range_substitutes_command_and_log(tmp_path):
    r = sh([RUN, "--num-threads", "2", "JOB=1:3", "exp/log/foo.JOB.log", "echo", "job", "JOB", "of", "out.JOB",
            r"|", "tr", "a-z", "A-Z"], tmp_path)
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        cmd, body, rc, threads = parse_log(tmp_path / f"exp/log/foo.{j}.log")
        assert cmd == f"echo job {j} of out.{j} | tr a-z A-Z"
        assert body == f"JOB {j} OF OUT.{j}\n"
        assert (rc, threads) == (0, 2)
    assert not (tmp_path / "exp/log/foo.4.log").exists()


def test_redirection_and_any_job_name(tmp_path):
    r = sh([RUN, "LMWT=7:9", "score/log/s.LMWT.log", "echo", "LMWT", ">", "score/LMWT.txt"], tmp_path)
    assert r.returncode == 0, r.stderr
    for w in (7, 8, 9):
        assert (tmp_path / f"score/{w}.txt").read_text() == f"{w}\n"
        assert parse_log(tmp_path / f"score/log/s.{w}.log")[0] == f"echo {w} > score/{w}.txt"


def test_failure_exit_code_and_message(tmp_path):
    r = sh([RUN, "JOB=1:4", "log/f.JOB.log", "bash", "-c", "exit $(( JOB % 2 ? 0 : JOB ))"], tmp_path)
    assert r.returncode == 1
    assert "2 / 4 failed, log is in log/f.2.log" in r.stderr
    assert [parse_log(tmp_path / f"log/f.{j}.log")[2] for j in (1, 2, 3, 4)] == [0, 2, 0, 4]


def test_killed_job_reports_signal_code(tmp_path):
    r = sh([RUN, "log/k.log", "bash", "-c", "kill -9 $$"], tmp_path)
    assert r.returncode == 1 and "1 / 1 failed, log is in log/k.log" in r.stderr
    assert parse_log(tmp_path / "log/k.log")[2] == 137


@pytest.mark.parametrize("args, message", [
    (["JOB=1:2", "log/x.log", "true"], "must contain JOB"),
    (["JOB=0:2", "log/x.JOB.log", "true"], "must start at 1"),
    (["JOB=3:2", "log/x.JOB.log", "true"], "ends before it starts"),
    (["log/x.log"], "no log file and command"),
    (["--pick", "some", "log/x.log", "true"], "--pick must be failed or incomplete"),
    (["--max-jobs-run", "0", "log/x.log", "true"], "positive integer"),
])
def test_usage_errors(tmp_path, args, message):
    r = sh([RUN, *args], tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def _intervals(tmp_path: Path, n: int) -> list[tuple[float, float]]:
    return [tuple(map(float, (tmp_path / f"t.{j}").read_text().split())) for j in range(1, n + 1)]


def _max_overlap(iv: list[tuple[float, float]]) -> int:
    return max(sum(1 for s, e in iv if s <= t < e) for t, _ in iv)


@pytest.mark.parametrize("opt", ["--max-jobs-run", "-tc"])
def test_max_jobs_run_limits_parallelism(tmp_path, opt):
    job = "s=$(date +%s.%N); sleep 0.3; echo $s $(date +%s.%N) > t.JOB"
    r = sh([RUN, opt, "1", "JOB=1:3", "log/m.JOB.log", "bash", "-c", job], tmp_path)
    assert r.returncode == 0, r.stderr
    assert _max_overlap(_intervals(tmp_path, 3)) == 1
    r = sh([RUN, opt, "3", "JOB=1:3", "log/m.JOB.log", "bash", "-c", job], tmp_path)
    assert r.returncode == 0, r.stderr
    assert _max_overlap(_intervals(tmp_path, 3)) == 3


def test_pick_failed_reruns_only_unfinished_jobs(tmp_path):
    # job 1 ok, job 2 fails, job 3 is cut off (no footer), job 4 never ran
    r = sh([RUN, "JOB=1:3", "log/p.JOB.log", "bash", "-c", "test JOB != 2"], tmp_path)
    assert r.returncode == 1
    log3 = tmp_path / "log/p.3.log"
    log3.write_text("\n".join(log3.read_text().splitlines()[:3]) + "\n")
    before = (tmp_path / "log/p.1.log").read_text()
    r = sh([RUN, "--pick", "incomplete", "JOB=1:4", "log/p.JOB.log", "echo", "rerun", "JOB"], tmp_path)
    assert r.returncode == 1 and "1 / 4 failed, log is in log/p.2.log" in r.stderr
    assert "running 2 of 4" in r.stderr
    assert [parse_log(tmp_path / f"log/p.{j}.log")[1] for j in (3, 4)] == ["rerun 3\n", "rerun 4\n"]
    assert parse_log(tmp_path / "log/p.2.log")[2] == 1
    r = sh([RUN, "--pick", "failed", "JOB=1:4", "log/p.JOB.log", "echo", "rerun", "JOB"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "running 1 of 4" in r.stderr
    assert parse_log(tmp_path / "log/p.2.log")[1:3] == ("rerun 2\n", 0)
    assert (tmp_path / "log/p.1.log").read_text() == before


def test_gpu_jobs_get_their_own_devices(tmp_path):
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\nfor i in 0 1; do echo \"GPU $i: Fake (UUID: GPU-$i)\"; done\n")
    smi.chmod(0o755)
    r = sh([RUN, "--gpu", "1", "JOB=1:2", "log/g.JOB.log", "bash", "-c",
            "echo $CUDA_VISIBLE_DEVICES; sleep 0.3"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(parse_log(tmp_path / f"log/g.{j}.log")[1] for j in (1, 2)) == ["0\n", "1\n"]


# --------------------------------------------------------------------------------------------
# queue.pl / slurm.pl with stand-in qsub / sbatch
# --------------------------------------------------------------------------------------------

EXPECTED = {
    QUEUE: ["-V", "-cwd", "-S", "/bin/bash", "-j", "y", "-l", "gpu=1", "-q", "*.q",
            "-l", "mem_free=2G,ram_free=2G", "-pe", "smp", "4"],
    SLURM: ["--export=ALL", "--ntasks=1", "-p", "gpu", "--gres=gpu:1", "--mem-per-cpu", "2G",
            "--cpus-per-task", "4"],
}
SUBMIT = {QUEUE: "qsub", SLURM: "sbatch"}


@pytest.mark.parametrize("tool", [QUEUE, SLURM], ids=["queue.pl", "slurm.pl"])
def test_scheduler_translates_options_and_writes_logs(tmp_path, tool):
    install_standins(tmp_path)
    r = sh([tool, "--mem", "2G", "--gpu", "1", "--num-threads", "4", "JOB=1:3", "exp/log/x.JOB.log",
            "echo", "job", "JOB", "of", "a  b", ">", "out.JOB"], tmp_path)
    assert r.returncode == 0, r.stderr
    calls = submitted(tmp_path)
    assert len(calls) == 3
    for j, args in enumerate(sorted(calls, key=lambda a: a[-1]), 1):
        assert args[: len(EXPECTED[tool])] == EXPECTED[tool]
        assert args[-1] == f"exp/log/q/x.{j}.sh"
        cmd, body, rc, threads = parse_log(tmp_path / f"exp/log/x.{j}.log")
        assert cmd == f"echo job {j} of 'a  b' > out.{j}"
        assert (body, rc, threads) == ("", 0, 4)
        assert (tmp_path / f"out.{j}").read_text() == f"job {j} of a  b\n"


@pytest.mark.parametrize("tool", [QUEUE, SLURM], ids=["queue.pl", "slurm.pl"])
def test_scheduler_defaults_failure_and_pick(tmp_path, tool):
    install_standins(tmp_path)
    r = sh([tool, "JOB=1:2", "log/f.JOB.log", "bash", "-c", "exit $((JOB - 1))"], tmp_path)
    assert r.returncode == 1 and "1 / 2 failed, log is in log/f.2.log" in r.stderr
    # no option given: only the fixed options, then name, output and script
    assert submitted(tmp_path)[0][:-5] == EXPECTED[tool][: 6 if tool == QUEUE else 2]
    assert parse_log(tmp_path / "log/f.2.log")[2] == 1
    r = sh([tool, "--pick", "failed", "JOB=1:2", "log/f.JOB.log", "true"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(submitted(tmp_path)) == 3 and submitted(tmp_path)[-1][-1] == "log/q/f.2.sh"


def test_scheduler_config_file(tmp_path):
    install_standins(tmp_path)
    conf = tmp_path / "conf" / "slurm.conf"
    conf.parent.mkdir()
    conf.write_text("# site config\ncommand sbatch --account=asr\noption mem=* --mem $0\n"
                    "option gpu=* --gpus=$0 -p 'a100 big'\noption gpu=0\ndefault gpu=0\n")
    r = sh([SLURM, "--mem", "3G", "--gpu", "2", "log/c.log", "true"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert submitted(tmp_path)[0][:6] == ["--account=asr", "--gpus=2", "-p", "a100 big", "--mem", "3G"]
    r = sh([SLURM, "--num-threads", "2", "log/c.log", "true"], tmp_path)
    assert r.returncode == 1 and "--num-threads has no rule in conf/slurm.conf" in r.stderr


def test_scheduler_notices_a_job_that_left_the_queue(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text("#!/bin/sh\necho Submitted batch job 77\n")  # the job never runs
    (bindir / "squeue").write_text("#!/bin/sh\nexit 1\n")  # and the scheduler does not know it
    for p in bindir.iterdir():
        p.chmod(0o755)
    t0 = time.monotonic()
    r = sh([SLURM, "log/v.log", "true"], tmp_path, RESCORE_QUEUE_CHECK_INTERVAL="0.1")
    assert r.returncode == 1
    assert "left the queue without finishing" in r.stderr and "1 / 1 failed" in r.stderr
    assert time.monotonic() - t0 < 10
