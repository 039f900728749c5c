"""utils/score_parallel.sh end to end with a stand-in scorer (tests/fake_scorer.py).

Split, NJ jobs under run.pl (or slurm.pl with a stand-in sbatch), merge: NJ=3 gives the same
archive as NJ=1, and after a job is killed midway a rerun redoes only that job.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_setdir
from tests.utils.helpers import UTILS, install_standins, sh, submitted

SCORE = UTILS / "score_parallel.sh"


def make(tmp_path: Path) -> Path:
    nbest = {f"spk{i % 2}-u{i}": [(" ".join(f"w{t}" for t in range((i + k) % 5)), -float(k)) for k in range(3)]
             for i in range(7)}
    return make_setdir(tmp_path / "data" / "dev", nbest)


def expected(setdir: Path) -> str:
    out = []
    for line in (setdir / "nbest" / "text").read_text().splitlines():
        key, *words = line.split()
        out.append(f"{key} {float(len(words))}\n")
    return "".join(out)


def score(tmp_path: Path, nj: int, outdir: str, *opts: str, **env: str):
    return sh([SCORE, "--nj", str(nj), *opts, "data/dev", outdir, "words", "--", "tests.fake_scorer",
               "--name", "words"], tmp_path, **env)


def test_nj3_equals_nj1_and_rerun_skips(tmp_path):
    setdir = make(tmp_path)
    counter = tmp_path / "counter"
    r1 = score(tmp_path, 1, "exp/nj1", FAKE_SCORER_COUNTER=str(counter))
    assert r1.returncode == 0, r1.stderr
    r3 = score(tmp_path, 3, "exp/nj3", FAKE_SCORER_COUNTER=str(counter))
    assert r3.returncode == 0, r3.stderr
    merged = (tmp_path / "exp/nj3/words").read_text()
    assert merged == (tmp_path / "exp/nj1/words").read_text() == expected(setdir)
    assert (tmp_path / "exp/nj3/.done").is_file()
    for j in (1, 2, 3):
        assert "Ended (code 0)" in (tmp_path / f"exp/nj3/log/words.{j}.log").read_text()
    runs = counter.read_text().split()  # the NJ=1 job, then the three parallel jobs in any order
    assert runs[0] == "1" and sorted(runs[1:]) == ["1", "2", "3"]
    r = score(tmp_path, 3, "exp/nj3", FAKE_SCORER_COUNTER=str(counter))
    assert r.returncode == 0, r.stderr
    assert counter.read_text().split() == runs  # every job skipped itself
    assert "skip" in r.stderr


def test_killed_job_is_resumed_alone(tmp_path):
    setdir = make(tmp_path)
    counter = tmp_path / "counter"
    r = score(tmp_path, 3, "exp/k", FAKE_SCORER_COUNTER=str(counter), FAKE_SCORER_KILL="2")
    assert r.returncode != 0
    assert "1 / 3 failed, log is in exp/k/log/words.2.log" in r.stderr
    assert "Ended (code 137)" in (tmp_path / "exp/k/log/words.2.log").read_text()
    assert not (tmp_path / "exp/k/words").exists() and not (tmp_path / "exp/k/.done").exists()
    assert not (tmp_path / "exp/k/split3/2/.done").exists()
    done = {j: (tmp_path / f"exp/k/split3/{j}/words").stat().st_mtime_ns for j in (1, 3)}
    assert sorted(counter.read_text().split()) == ["1", "2", "3"]

    r = score(tmp_path, 3, "exp/k", FAKE_SCORER_COUNTER=str(counter))
    assert r.returncode == 0, r.stderr
    assert sorted(counter.read_text().split()) == ["1", "2", "2", "3"]  # only job 2 ran again
    assert {j: (tmp_path / f"exp/k/split3/{j}/words").stat().st_mtime_ns for j in (1, 3)} == done
    assert (tmp_path / "exp/k/words").read_text() == expected(setdir)

    r1 = score(tmp_path, 1, "exp/nj1")
    assert r1.returncode == 0, r1.stderr
    assert (tmp_path / "exp/nj1/words").read_text() == (tmp_path / "exp/k/words").read_text()


def test_failed_job_and_slurm_with_gpu(tmp_path):
    setdir = make(tmp_path)
    install_standins(tmp_path)
    r = score(tmp_path, 2, "exp/s", "--cmd", f"{UTILS / 'slurm.pl'} --mem 1G", "--gpu", "1", FAKE_SCORER_FAIL="1")
    assert r.returncode != 0 and "1 / 2 failed, log is in exp/s/log/words.1.log" in r.stderr
    calls = submitted(tmp_path)
    assert len(calls) == 2 and all("--gres=gpu:1" in c and "--mem-per-cpu" in c for c in calls)
    r = score(tmp_path, 2, "exp/s", "--cmd", f"{UTILS / 'slurm.pl'} --mem 1G", "--gpu", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "exp/s/words").read_text() == expected(setdir)


def test_usage_errors(tmp_path):
    make(tmp_path)
    r = sh([SCORE, "data/dev", "exp/x", "words", "tests.fake_scorer"], tmp_path)
    assert r.returncode == 1 and "usage:" in r.stderr
    r = sh([SCORE, "--nj", "8", "data/dev", "exp/x", "words", "--", "tests.fake_scorer"], tmp_path)
    assert r.returncode == 1 and "cannot split 7 utterance(s) into 8 jobs" in r.stderr
    r = sh([SCORE, "--gpu", "2", "data/dev", "exp/x", "words", "--", "tests.fake_scorer"], tmp_path)
    assert r.returncode == 1 and "--gpu must be 0 or 1" in r.stderr


def test_score_pll_split_over_three_jobs_equals_one_job(tmp_path):
    """The real teacher step under run.pl: NJ=3 gives the same pll archive as NJ=1."""
    from tests.models.test_pll import bert_tokenizer, tiny_bert

    model = tmp_path / "mlm"
    model.mkdir()
    tok = bert_tokenizer(model)
    tiny_bert(len(tok)).save_pretrained(model)
    tok.save_pretrained(model)
    make(tmp_path)
    step = ["--", "rescore.bin.score_pll", "--model", str(model), "--device", "cpu", "--num_threads", "1"]
    for nj in (1, 3):
        r = sh([SCORE, "--nj", str(nj), "data/dev", f"exp/pll{nj}", "pll", *step], tmp_path)
        assert r.returncode == 0, r.stderr
    one, three = (tmp_path / "exp/pll1/pll").read_text(), (tmp_path / "exp/pll3/pll").read_text()
    assert one == three and len(one.splitlines()) == 21
