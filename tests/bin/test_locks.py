"""One writer per output directory: a second writer of any stage kind (import, score, train, rescore)
fails at once naming the holder, and leaves the directory as it was; a lock whose holder was
killed is taken over (logged); a finished step leaves no lock behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rescore.bin import import_nbest, rescore, score_pll, train_clm
from rescore.stage import LOCK, LockedError, lock_outdir, release_lock
from tests.conftest import make_setdir, write

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from rescore.stage import lock_outdir
lock_outdir(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


class Holder:
    """Another process holding ``outdir``'s lock, as a running step does."""

    def __init__(self, outdir: Path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(outdir)], cwd=REPO, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


@pytest.fixture
def holder():
    held = []

    def start(outdir):
        h = Holder(outdir)
        held.append(h)
        return h

    yield start
    for h in held:
        h.stop(signal.SIGKILL)


@pytest.fixture
def sets(tmp_path):
    dev = make_setdir(tmp_path / "dev", {
        "spk1-u1": [("the cat sat", -10.0), ("the cat sat on", -9.0), ("a cat sat", -12.5)],
        "spk2-u2": [("hello world", -3.0), ("hello word", -4.0)],
    }, refs={"spk1-u1": "the cat sat", "spk2-u2": "hello world"})
    write(tmp_path / "streams" / "dev" / "lm", "spk1-u1-1 -1\nspk1-u1-2 -8\nspk1-u1-3 -5\nspk2-u2-1 -1\nspk2-u2-2 -3\n")
    return dev, f"lm={tmp_path}/streams/{{set}}/lm"


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    from tests.models.test_pll import bert_tokenizer, tiny_bert

    d = tmp_path_factory.mktemp("mlm")
    tok = bert_tokenizer(d)
    tiny_bert(len(tok)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def commands(kind: str, tmp_path: Path, sets, mlm, out: Path):
    dev, stream = sets
    if kind == "import":
        return import_nbest.main, ["--format", "setdir", str(dev), str(out)]
    if kind == "score":
        return score_pll.main, ["--model", str(mlm), "--device", "cpu", "--num_threads", "1", str(dev), str(out)]
    if kind == "train":
        text = write(tmp_path / "corpus.txt", "the cat sat\nhello world\n" * 8)
        return train_clm.main, ["--text", str(text), "--out", str(out), "device=cpu", "epochs=1", "embed_dim=8",
                                "hidden_dim=8", "unit=word", "vocab_size=20"]
    if kind == "rescore":
        return rescore.main, ["--dev", str(dev), "--stream", stream, "--out", str(out), "--bootstrap", "10"]
    raise AssertionError(kind)


def listing(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["import", "score", "train", "rescore"])
def test_a_second_writer_fails_at_once_naming_the_holder(kind, tmp_path, sets, mlm, holder, capsys, caplog):
    out = tmp_path / "out"
    main, argv = commands(kind, tmp_path, sets, mlm, out)
    assert main(argv) == 0  # a complete run: it leaves no lock
    assert not (out / LOCK).exists()
    before = listing(out)
    h = holder(out)
    capsys.readouterr()
    assert main([*argv, "--overwrite", "true"]) == 1
    err = capsys.readouterr().err
    assert f"error: {out}: another run is writing this directory (pid {h.proc.pid} on " in err, err
    assert f" -c {out})" in err, err  # the holder's command line (python -c SCRIPT OUTDIR: argv is -c OUTDIR)
    after = listing(out)
    after.pop(LOCK)
    before.pop(LOCK, None)
    assert after == before  # nothing touched, .done included
    h.stop()
    assert main([*argv, "--overwrite", "true"]) == 0  # the holder has finished: the directory is free


def test_a_lock_of_a_killed_run_is_taken_over_and_logged(tmp_path, sets, mlm, holder, caplog):
    out = tmp_path / "out"
    h = holder(out)
    h.stop(signal.SIGKILL)  # the kernel frees its flock; the lock file (and who held it) stays
    assert (out / LOCK).is_file()
    main, argv = commands("import", tmp_path, sets, mlm, out)
    assert main(argv) == 0
    assert f"took over the lock of a run that ended without releasing it (pid {h.proc.pid} on" in caplog.text
    assert not (out / LOCK).exists()


def test_lock_outdir_refuses_a_file_and_cleans_up_what_it_created(tmp_path, holder):
    f = write(tmp_path / "f", "x")
    with pytest.raises(Exception, match="exists and is not a directory"):
        lock_outdir(f)
    deep = tmp_path / "a" / "b" / "c"
    h = holder(tmp_path / "a")
    lock_outdir(deep)  # another directory: independent
    release_lock(deep)
    assert not (tmp_path / "a" / "b").exists()  # created for the lock, empty: removed
    with pytest.raises(LockedError, match=f"pid {h.proc.pid}"):
        lock_outdir(tmp_path / "a")
    h.stop()
    lock_outdir(tmp_path / "a")  # same process again: a no-op, then released once
    lock_outdir(tmp_path / "a")
    release_lock(tmp_path / "a")
    assert (tmp_path / "a").is_dir() and not (tmp_path / "a" / LOCK).exists()


def test_programs_a_step_starts_do_not_keep_its_lock(tmp_path, holder):
    """The lock's descriptor is close-on-exec: a child left running does not hold the directory."""
    out = tmp_path / "o"
    lock_outdir(out)
    child = subprocess.Popen(["sleep", "60"], close_fds=False)
    try:
        release_lock(out)
        holder(out)  # another process can lock it although the child still runs
    finally:
        child.kill()
        child.wait()
