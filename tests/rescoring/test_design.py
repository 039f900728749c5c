"""rescore.rescoring.design: unit counting, the design of a set, missing stream values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rescore.data.nbest import TextColumn
from rescore.data.textnorm import FLAGS, Normalizer
from rescore.rescoring.design import build_design, count_units, count_words
from rescore.rescoring.weights import Weights
from tests.conftest import make_set


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
