"""ESPnet decode directories in and out, judged by ESPnet's own code (pip ``espnet``, installed
without its dependencies: only ``espnet2.fileio`` is used).

In: a decode dir written the way ``espnet2/bin/asr_inference.py`` writes one, with ESPnet's own
``DatadirWriter`` and ``str(hyp.score)`` of a torch scalar (``tensor(-12.3457)``), including the
line of a too-short utterance, over two jobs (``logdir/output.JOB``). Out: what ``export_nbest
--format espnet`` writes is read by ESPnet's ``read_2columns_text`` (what its scoring reads).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rescore.data.formats import espnet
from rescore.data.nbest import NbestBuilder
from tests.conformance.conftest import require

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _espnet(module: str):
    return require(module, "pip install --no-deps espnet typeguard: ESPnet's own file I/O")


JOBS = {
    1: {"utt_b": [("HELLO WORLD", -3.25), ("HELLO WORD", -4.125), ("YELLOW WORLD", -7.0)],
        "utt_a": [("GOOD MORNING", -1.5), ("GOOD MOURNING", -2.0), ("GOOD MORNINGS", -9.87654)]},
    2: {"utt_c": [("今日は 良い 天気", -12.345678), ("今日 は 良い 天気", -13.0), ("京 は 良い 天気", -20.5)],
        "utt_short": None},  # too short for the encoder: asr_inference writes " " with score 0.0
}


def write_like_asr_inference(logdir, nbest: int = 3) -> None:
    """What asr_inference.py's main loop writes with ``--nbest N --output_dir logdir/output.JOB``."""
    writer_mod = _espnet("espnet2.fileio.datadir_writer")
    for job, utts in JOBS.items():
        with writer_mod.DatadirWriter(logdir / f"output.{job}") as writer:
            for key, hyps in utts.items():
                if hyps is None:
                    results = [(" ", ["<space>"], [2], torch.tensor(0.0).item())] * nbest  # Hypothesis(score=0.0)
                else:
                    results = [(t, t.split(), list(range(len(t.split()))), torch.tensor(s)) for t, s in hyps]
                for n, (text, token, token_int, score) in zip(range(1, nbest + 1), results, strict=False):
                    ibest_writer = writer[f"{n}best_recog"]
                    ibest_writer["token"][key] = " ".join(token)
                    ibest_writer["token_int"][key] = " ".join(map(str, token_int))
                    ibest_writer["score"][key] = str(score)
                    if text is not None:
                        ibest_writer["text"][key] = text


def test_decode_dir_written_by_espnet(tmp_path):
    decode = tmp_path / "decode_asr" / "test"
    write_like_asr_inference(decode / "logdir")
    assert (decode / "logdir/output.1/1best_recog/score").read_text().startswith("utt_b tensor(-3.2500)")
    nbs = espnet.read(decode)
    assert nbs.utt_ids == ["utt_b", "utt_a", "utt_c", "utt_short"]  # job order, then order in the job
    for utt, hyps in {**JOBS[1], **JOBS[2]}.items():
        u = nbs.utt_ids.index(utt)
        got = [(nbs.texts[i], float(nbs.streams["score"][i])) for i in range(nbs.offsets[u], nbs.offsets[u + 1])]
        if hyps is None:
            assert got == [("", 0.0)] * 3
        else:
            want = [(t, round(s, 4)) for t, s in hyps]  # torch prints 4 decimals
            assert [t for t, _ in got] == [t for t, _ in want]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-9)


def test_export_read_by_espnet(tmp_path):
    read_text = _espnet("espnet2.fileio.read_text")
    b = NbestBuilder(["score"])
    for utt, hyps in (("u2", [("b a", -2.0), ("a", -1.0)]), ("u1", [("今日は 天気", -0.5), ("", -3.0)]), ("u3", [("", -1.0)])):
        for k, (t, s) in enumerate(hyps, 1):
            b.add(utt, k, t, {"score": s})
    nbs = b.build()
    out = tmp_path / "decode"
    espnet.write(nbs, out)
    text, score = read_text.read_2columns_text(out / "text"), read_text.read_2columns_text(out / "score")
    best = nbs.best(nbs.streams["score"])
    assert text == {u: nbs.texts[int(best[i])] for i, u in enumerate(nbs.utt_ids)}
    assert {u: float(v.removeprefix("tensor(").removesuffix(")")) for u, v in score.items()} == \
        {u: float(nbs.streams["score"][int(best[i])]) for i, u in enumerate(nbs.utt_ids)}
    for k in (1, 2):  # every n-best directory is a file ESPnet reads
        d = out / "logdir" / "output.1" / f"{k}best_recog"
        assert set(read_text.read_2columns_text(d / "text")) == set(read_text.read_2columns_text(d / "score"))
