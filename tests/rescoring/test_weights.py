"""rescore.rescoring.weights: stream and tune specs, the weights file."""

from __future__ import annotations

import pytest

from rescore.exceptions import InputError
from rescore.rescoring.weights import Weights, load_weights, parse_stream_spec, parse_tune, save_weights


def test_stream_specs_and_tune_specs():
    s = parse_stream_spec("pll=exp/teacher/{set}/pll")
    assert (s.label, str(s.path("test"))) == ("pll", "exp/teacher/test/pll")
    for bad in ("pll", "=x", "score=x", "rank=x", "wip=x", "a/b=x"):
        with pytest.raises(InputError):
            parse_stream_spec(bad)
    assert parse_tune("all", kaldi=True) == ("streams", "wip", "acwt")
    assert parse_tune("all", kaldi=False) == ("streams", "wip")
    assert parse_tune("none", kaldi=True) == ()
    assert parse_tune("wip+streams", kaldi=False) == ("streams", "wip")
    with pytest.raises(InputError, match="ac_cost"):
        parse_tune("acwt", kaldi=False)
    with pytest.raises(InputError, match="--tune"):
        parse_tune("stream", kaldi=False)


def test_weights_file_round_trip_and_mismatch(tmp_path):
    p = tmp_path / "w.yaml"
    save_weights(p, Weights({"pll": 0.5, "mwer": -2.0}, wip=1.5, acwt=0.1), {"dev": "dev", "tuned": ["streams"]})
    text = p.read_text()
    assert "opposite sign of Kaldi's word-insertion penalty" in text and "kaldi_wip: -1.5" in text
    w = load_weights(p, ["pll", "mwer"])
    assert (w.streams, w.wip, w.acwt) == ({"pll": 0.5, "mwer": -2.0}, 1.5, 0.1)
    with pytest.raises(InputError, match="no weight for other") as e:
        load_weights(p, ["pll", "mwer", "other"])
    assert str(p) in str(e.value)
    with pytest.raises(InputError, match="no --stream for mwer"):
        load_weights(p, ["pll"])
    p.write_text("streams: {pll: 1}\nwipp: 2\n")
    with pytest.raises(InputError, match="unknown key"):
        load_weights(p, ["pll"])
    p.write_text("streams: {pll: .nan}\n")
    with pytest.raises(InputError, match="finite"):
        load_weights(p, ["pll"])
