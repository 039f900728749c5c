"""rescore.rescoring: combination rules, missing values, weights files, per_utt lines, large sets."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rescore.data.nbest import TextColumn
from rescore.data.textnorm import FLAGS, Normalizer
from rescore.exceptions import InputError
from rescore.rescoring import (
    Design,
    Weights,
    build_design,
    count_units,
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
    # docs/formats.md §1.9.4 (wer_per_utt_details.pl: columns centred, extra space on the left, joined by two
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


def test_count_units_cer_set_counts_characters():
    # ESPnet CSJ text: no spaces, so one token per hypothesis; the units of a CER set are characters
    nbs = make_set({"u": [("本日は講演を致します", 0.0), ("本日は", 0.0), ("", 0.0)], "v": [("あ い う", 0.0)]})
    assert count_words(nbs).tolist() == [1, 1, 0, 3]
    assert count_units(nbs, Normalizer.parse("csj,bracket"), "cer").tolist() == [10, 3, 0, 3]
    assert count_units(nbs, Normalizer(), "cer").tolist() == [10, 3, 0, 3]


def test_count_units_kaldi_csj_set_skips_sp_and_tags():
    # Kaldi CSJ text: morphemes with +POS tags, <sp> pauses, <unk>; csj,bracket drops <sp> and <unk>
    text = "本日+名詞 は+助詞 <sp> 音声+名詞 認識+名詞 <unk> を+助詞 <sp>"
    nbs = make_set({"u": [(text, 0.0), ("<sp>", 0.0)], "v": [("えー+感動詞 <sp> はい+感動詞", 0.0)]})
    norm = Normalizer.parse("csj,bracket")
    assert count_units(nbs, norm, "wer").tolist() == [5, 0, 2]
    assert count_units(nbs, norm, "cer").tolist() == [len("本日は音声認識を"), 0, len("えーはい")]
    # without normalisation every stored token counts, <sp> included (the old behaviour)
    assert count_units(nbs, Normalizer(), "wer").tolist() == count_words(nbs).tolist() == [8, 1, 3]
    # the design follows the set's recorded scoring setup (meta.yaml)
    nbs.meta.update({"language": "ja", "metric": "wer", "normalization": "csj,bracket"})
    assert build_design(nbs, {}).units.tolist() == [5, 0, 2]
    nbs.meta["metric"] = "cer"
    assert build_design(nbs, {}).units.tolist() == [8, 0, 4]
    assert build_design(nbs, {}, Normalizer(), "wer").units.tolist() == [8, 1, 3]
    with pytest.raises(ValueError, match="metric"):
        count_units(nbs, norm, "ser")


def test_count_units_equals_the_units_errors_are_counted_over():
    rng = np.random.default_rng(0)
    vocab = ["The", "cat's", "uh", "<unk>", "[noise]", "!SIL", "<sp>", "えー", "本日+名詞", "ｶﾀｶﾅ", "a+b",
             "well,", "“quoted”", "x\u3000y", "-", "Ünï"]
    texts = ["", *(" ".join(rng.choice(vocab, size=rng.integers(1, 9))) for _ in range(300))]
    nbs = make_set({f"u{i}": [(t, 0.0) for t in texts[i::10]] for i in range(10)})
    stored = list(nbs.texts)
    for k in range(len(FLAGS) + 1):
        norm = Normalizer(FLAGS[:k]) if k < len(FLAGS) else Normalizer(("csj", "bracket"))
        for metric in ("wer", "cer"):
            assert count_units(nbs, norm, metric).tolist() == [len(norm.units(t, metric)) for t in stored]


def test_count_units_on_a_large_set():
    # only the text column is used: 50k Kaldi-CSJ-like hypotheses of 15 tokens (speed: bench, not here)
    words = np.array([f"w{i}+名詞" for i in range(2000)] + ["<sp>"] * 200)
    rng = np.random.default_rng(0)
    rows = rng.choice(words, size=(50_000, 15))
    nbs = SimpleNamespace(texts=TextColumn.from_strings(" ".join(r) for r in rows.tolist()))
    units = count_units(nbs, Normalizer.parse("csj,bracket"), "cer")
    assert units[:3].tolist() == [sum(len(w) - 3 for w in r if w != "<sp>") for r in rows[:3].tolist()]


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


def test_tuning_3000_utterances_of_100_hypotheses():
    rng = np.random.default_rng(1)
    d, errors = synthetic_design(rng, 3000, n=100)
    d.streams["noise"] = rng.normal(size=len(errors))
    w, _ = tune(d, errors, ("streams", "wip", "acwt"), Weights({"lm": 1.0, "noise": 1.0}))
    assert w.streams["lm"] > 0
