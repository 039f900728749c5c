"""rescore.rescoring: combination rules, missing values, weights files, per_utt lines, bootstrap, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rescore.exceptions import InputError
from rescore.rescoring import (
    Design,
    Weights,
    bootstrap_ci,
    build_design,
    count_words,
    load_weights,
    parse_stream_spec,
    parse_tune,
    per_utt_lines,
    save_weights,
    tune,
)
from tests.conftest import make_set


def test_per_utt_lines_match_the_kaldi_example():
    # formats.md 1.9.4 (wer_per_utt_details.pl: columns centred, extra space on the left, joined by two
    # spaces, trailing spaces kept as the Perl prints them; #csid = C S I D)
    lines = per_utt_lines("utt1", "THE CAT SAT".split(), "THE BAT A SAT".split())
    assert lines == [
        "utt1 ref  THE  CAT  ***  SAT",
        "utt1 hyp  THE  BAT   A   SAT",
        "utt1 op    C    S    I    C ",
        "utt1 #csid 2 1 1 0",
    ]
    assert per_utt_lines("u", ["a", "b"], ["a"]) == ["u ref  a   b ", "u hyp  a  ***", "u op   C   D ",
                                                        "u #csid 1 0 0 1"]
    assert per_utt_lines("u", [], [])[3] == "u #csid 0 0 0 0"


def test_bootstrap_ci_is_seeded_and_brackets_the_difference():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 5, size=400).astype(float)
    new = np.maximum(base - rng.integers(0, 2, size=400), 0)
    units = rng.integers(5, 15, size=400).astype(float)
    lo, hi = bootstrap_ci(base, new, units, 500, seed=3)
    point = 100 * (new - base).sum() / units.sum()
    assert lo < point < hi < 0
    assert (lo, hi) == bootstrap_ci(base, new, units, 500, seed=3)
    assert bootstrap_ci(base, base, units) == (0.0, 0.0)
    assert all(np.isnan(bootstrap_ci(base[:0], base[:0], units[:0])))


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


def test_count_words_matches_num_tokens():
    nbs = make_set({"u": [("a b c", 0.0), ("", 0.0), ("x", 0.0)], "v": [("p  q", 0.0)]})
    assert count_words(nbs).tolist() == nbs.texts.num_tokens().tolist() == [3, 0, 1, 2]


def test_missing_stream_values_keep_first_pass_order_or_rank_last():
    nbs = make_set({"u": [("a", -1.0), ("b", -2.0), ("c c", -3.0)], "v": [("a", -1.0), ("b", -2.0)],
                    "w": [("a", -1.0), ("b b", -2.0)]})
    nan = np.nan
    # u: no finite value at all -> first-pass order, no word bonus; v: hyp 1 missing -> ranked last
    d = build_design(nbs, {"lm": np.array([nan, nan, nan, nan, 5.0, 0.0, 1.0])})
    assert d.info.tolist() == [False, True, True]
    assert d.dead.tolist() == [False, False, False, True, False, False, False]
    total = d.total(Weights({"lm": 1.0}, wip=10.0))
    assert total[:3].tolist() == [-1.0, -2.0, -3.0]
    assert total[3] == -np.inf and total[4] == -2.0 + 5.0 + 10.0
    assert total[5:].tolist() == [-1.0 + 10.0, -2.0 + 1.0 + 20.0]
    assert nbs.best(total).tolist() == [0, 4, 6]


def synthetic_design(rng, n_utts, n=10, acwt=0.05):
    offsets = np.arange(0, n_utts * n + 1, n)
    errors = rng.integers(0, 6, size=n_utts * n)
    ac = 1000 + 20 * rng.normal(size=len(errors)) + 4 * errors
    graph = 50 + 5 * rng.normal(size=len(errors)) + 0.5 * errors
    stream = 1000 * (-errors + rng.normal(scale=0.7, size=len(errors)))
    words = rng.integers(3, 12, size=len(errors)).astype(float)
    return Design(offsets, -(graph + 1.0 * ac), ac, graph, words, {"lm": stream}), errors


def test_tune_acwt_beats_the_imported_scale_and_stays_positive():
    rng = np.random.default_rng(0)
    d, errors = synthetic_design(rng, 300)
    w, _ = tune(d.without_streams(), errors, ("acwt",), Weights({}))
    assert w.acwt is not None and 0 < w.acwt < 1.0
    err = {a: int(errors[d.offsets[:-1] + np.argmax(
        d.first_pass(a).reshape(-1, 10), axis=1)].sum()) for a in (1.0, w.acwt)}
    assert err[w.acwt] < err[1.0]
    # jointly with the stream and the word bonus: the stream gets a positive weight
    w2, _ = tune(d, errors, ("streams", "wip", "acwt"), Weights({"lm": 1.0}))
    assert w2.streams["lm"] > 0 and w2.acwt > 0
    # a fixed stream weight is kept while acwt is tuned
    w3, _ = tune(d, errors, ("acwt",), Weights({"lm": 0.25}, wip=0.5))
    assert (w3.streams["lm"], w3.wip) == (0.25, 0.5) and w3.acwt > 0


def test_tuning_3000_utterances_of_100_hypotheses_takes_seconds():
    rng = np.random.default_rng(1)
    d, errors = synthetic_design(rng, 3000, n=100)
    d.streams["noise"] = rng.normal(size=len(errors))
    t = time.perf_counter()
    w, _ = tune(d, errors, ("streams", "wip", "acwt"), Weights({"lm": 1.0, "noise": 1.0}))
    assert time.perf_counter() - t < 60  # about 5 s on 2 cores
    assert w.streams["lm"] > 0
