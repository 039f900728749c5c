"""Resumable scoring: ``score_pll`` and ``score_student`` killed with SIGKILL at three random points
resume where they stopped; the final output is byte-identical to an uninterrupted run, and the
runs after a kill compute fewer batches than a fresh run."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rescore.bin import score_pll, score_student
from rescore.stage import PARTIAL, PartialResults
from tests.conftest import make_setdir

REPO = Path(__file__).resolve().parents[2]
WORDS = "the cat sat on a mat hello world playing outside dog ran far away".split()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from rescore.models import RescoreBert
    from tests.models.test_pll import bert_tokenizer, tiny_bert
    from tests.models.test_student import tiny_encoder, visible

    d = tmp_path_factory.mktemp("models")
    (d / "mlm").mkdir()
    tok = bert_tokenizer(d / "mlm")
    tiny_bert(len(tok)).save_pretrained(d / "mlm")
    tok.save_pretrained(d / "mlm")
    visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8)).save_pretrained(d / "student")
    rng = np.random.default_rng(0)
    nbest = {f"u{u:04d}": [(" ".join(rng.choice(WORDS, int(rng.integers(1, 12)))), -float(k)) for k in range(4)]
             for u in range(400)}
    return {"pll": (score_pll, d / "mlm", "96"), "student": (score_student, d / "student", "24"),
            "set": make_setdir(d / "set", nbest)}


def argv(model: Path, setdir: Path, out: Path, batch_tokens: str) -> list[str]:
    return ["--model", str(model), "--device", "cpu", "--num_threads", "1", "--batch_tokens", batch_tokens,
            "--save_every", "0", str(setdir), str(out)]


def chunks(out: Path) -> int:
    return len(list((out / PARTIAL).glob("chunk-*.npz")))


@pytest.mark.parametrize("kind", ["pll", "student"])
def test_killed_three_times_then_resumed_equals_an_uninterrupted_run(kind, models, tmp_path, caplog):
    mod, model, bt = models[kind]
    setdir = models["set"]
    fresh = tmp_path / "fresh"
    assert mod.main(argv(model, setdir, fresh, bt)) == 0
    total = int(re.search(r" in (\d+) batches", caplog.text)[1])
    assert total > 100, total  # enough batches to be killed in the middle
    assert not (fresh / PARTIAL).exists()  # removed once the output is written

    out = tmp_path / "resumed"
    rng = np.random.default_rng(7)
    targets = np.sort(rng.choice(np.arange(total // 10, 9 * total // 10), 3, replace=False))
    cmd = [sys.executable, "-m", f"rescore.bin.score_{kind}", *argv(model, setdir, out, bt)]
    killed_at = []
    for target in targets:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while chunks(out) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(chunks(out))
        assert not (out / ".done").exists() and not (out / kind).exists()
    assert killed_at == sorted(killed_at) and 0 < killed_at[0] < total, killed_at  # each run went on from the last

    caplog.clear()
    assert mod.main(argv(model, setdir, out, bt)) == 0
    m = re.search(r"resumed: (\d+) batches restored, (\d+) computed", caplog.text)
    assert m, caplog.text
    restored, computed = int(m[1]), int(m[2])
    assert restored >= killed_at[-1] and restored + computed == total and computed < total
    assert "took over the lock of a run that ended without releasing it" in caplog.text
    assert (out / kind).read_bytes() == (fresh / kind).read_bytes()
    assert not (out / PARTIAL).exists()


def test_partial_results_of_other_inputs_or_overwrite_are_discarded(tmp_path):
    d = tmp_path / "partial"
    p = PartialResults(d, "fp1", save_every=0)
    assert p.restore(3) == {}
    p.add(0, np.array([0, 1]), np.array([-1.0, -2.0]))
    p.add(2, np.array([4]), np.array([-3.0]))
    got = PartialResults(d, "fp1").restore(3)
    assert sorted(got) == [0, 2] and got[0][1].tolist() == [-1.0, -2.0] and got[2][0].tolist() == [4]
    assert PartialResults(d, "fp1").restore(4) == {}  # another plan: discarded
    p = PartialResults(d, "fp1", save_every=0)
    p.restore(3)
    p.add(1, np.array([2]), np.array([-5.0]))
    assert sorted(PartialResults(d, "fp1").restore(3)) == [1]
    assert PartialResults(d, "fp2").restore(3) == {}  # another fingerprint
    p = PartialResults(d, "fp2", save_every=0)
    p.restore(3)
    p.add(1, np.array([2]), np.array([-5.0]))
    assert PartialResults(d, "fp2", discard=True).restore(3) == {}  # --overwrite true
    write = tmp_path / "partial" / "chunk-000009.npz"
    write.write_bytes(b"not a zip")  # unreadable (never written so by atomic writes): recomputed, logged
    assert PartialResults(d, "fp2").restore(3) == {}
