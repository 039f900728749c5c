"""compare_wer: the paired bootstrap of two systems on the same references (Kaldi compute-wer-bootci)."""

from __future__ import annotations

import json

import pytest

from rescore.bin import compare_wer
from tests.conftest import write

REF = "a a b c d\nb x y\nc p q r s\n"
HYP1 = "a a b c d\nb x z\nc p q\n"  # 0, 1 sub, 2 del: 3 errors of 10 words
HYP2 = "a a b c e\nb x y\nc p q r s\n"  # 1 sub, 0, 0: 1 error


def files(tmp_path, hyp2=HYP2):
    return [str(write(tmp_path / n, t)) for n, t in (("ref", REF), ("h1", HYP1), ("h2", hyp2))]


def test_text_output_hand_checked(tmp_path, capsys):
    assert compare_wer.main(files(tmp_path)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("%WER 30.00 [ 3 / 10, 0 ins, 2 del, 1 sub ]")
    assert out[1].startswith("%WER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ]")
    assert out[2].startswith("change (hyp2 - hyp1) -20.00 points (-66.7% relative)")
    assert out[3].startswith("95% CI of each system: hyp1 [") and "hyp2 [" in out[3]
    assert out[4].endswith("utterances better 2, worse 1, same 0")


def test_json_ci_and_probability(tmp_path, capsys):
    assert compare_wer.main(["--json", "--replicates", "500", *files(tmp_path)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["change"] == pytest.approx(-20.0)
    lo, hi = res["ci"]
    assert lo <= res["change"] <= hi and lo >= -50 and hi <= 25  # the extremes: all b or c; all a
    assert 0.5 < res["p_hyp2_better"] <= 1.0
    assert (res["utts_better"], res["utts_worse"], res["utts_same"]) == (2, 1, 0)
    # identical systems: no change, a zero-width interval, never better
    assert compare_wer.main(["--json", files(tmp_path)[0], files(tmp_path)[1], files(tmp_path)[1]]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["change"] == 0 and same["ci"] == [0, 0] and same["p_hyp2_better"] == 0


def test_cer_and_norm(tmp_path, capsys):
    ref = write(tmp_path / "r", "u1 今日は 晴れ\n")
    h1 = write(tmp_path / "1", "u1 今日が 晴れ\n")
    h2 = write(tmp_path / "2", "u1 今日は 晴れ <sp>\n")
    assert compare_wer.main(["--cer", "--norm", "csj,bracket", str(ref), str(h1), str(h2)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("%CER 20.00 [ 1 / 5,") and out[1].startswith("%CER 0.00 [ 0 / 5,")


def test_a_missing_hypothesis_is_an_error(tmp_path, capsys):
    assert compare_wer.main(files(tmp_path, hyp2="a a b c e\nb x y\n")) == 1
    assert "no hypothesis for key c" in capsys.readouterr().err
