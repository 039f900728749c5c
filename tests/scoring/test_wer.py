import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rescore.data.nbest import NbestBuilder
from rescore.data.textnorm import Normalizer
from rescore.scoring.wer import WerResult, hyp_errors, kaldi_align, kaldi_edit_distance, score_texts


def test_edit_distance_hand_checked():
    # docs/formats.md §1.9.4 per_utt example: THE CAT *** SAT / THE BAT A SAT
    assert kaldi_edit_distance("THE CAT SAT".split(), "THE BAT A SAT".split()) == (2, 1, 0, 1)
    # a tie: "a b" vs "b a" has cost 2 either as 2 sub or as 1 ins + 1 del; Kaldi's DP
    # (hand-traced) prefers the insertion/deletion pair
    assert kaldi_edit_distance(["a", "b"], ["b", "a"]) == (2, 1, 1, 0)
    assert kaldi_edit_distance([], ["x", "y"]) == (2, 2, 0, 0)
    assert kaldi_edit_distance(["x", "y"], []) == (2, 0, 2, 0)


def test_align_matches_kaldi_per_utt_example():
    ali = kaldi_align("THE CAT SAT".split(), "THE BAT A SAT".split())
    assert ali == [("THE", "THE"), ("CAT", "BAT"), ("***", "A"), ("SAT", "SAT")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=8), st.lists(st.sampled_from("abcd"), max_size=8))
def test_edit_distance_total_is_levenshtein(ref, hyp):
    from rapidfuzz.distance import Levenshtein
    total, i, d, s = kaldi_edit_distance(ref, hyp)
    assert total == Levenshtein.distance(ref, hyp) == i + d + s
    assert len(hyp) - len(ref) == i - d


def test_compute_wer_lines_hand_checked():
    refs = {"u1": "THE CAT SAT", "u2": "a b", "u3": "x"}
    hyps = {"u1": "THE BAT A SAT", "u2": "b a"}
    res = score_texts(refs, hyps)
    assert res.kaldi_lines() == [
        "%WER 80.00 [ 4 / 5, 2 ins, 1 del, 1 sub ] [PARTIAL]",
        "%SER 100.00 [ 2 / 2 ]",
        "Scored 2 sentences, 1 not present in hyp.",
    ]
    res = score_texts(refs, hyps, mode="all")
    assert res.kaldi_lines() == [
        "%WER 83.33 [ 5 / 6, 2 ins, 2 del, 1 sub ] [PARTIAL]",
        "%SER 100.00 [ 3 / 3 ]",
        "Scored 3 sentences, 1 not present in hyp.",
    ]
    with pytest.raises(KeyError):
        score_texts(refs, hyps, mode="strict")


def test_no_reference_words_prints_nan_or_inf():
    assert score_texts({"u": ""}, {"u": ""}).kaldi_lines()[0] == "%WER -nan [ 0 / 0, 0 ins, 0 del, 0 sub ]"  # as Kaldi prints it (x86 default NaN)
    assert score_texts({"u": ""}, {"u": "a"}).kaldi_lines()[0] == "%WER inf [ 1 / 0, 1 ins, 0 del, 0 sub ]"
    assert math.isnan(WerResult().rate)


def test_cer_japanese_csj_conventions():
    norm = Normalizer.parse("csj,bracket")
    ref = "えー+感動詞 それ+代名詞 で+助動詞/連用形 は+助詞/係助詞 <sp> 始め+動詞/マ行下一段/連用形 ます+助動詞"
    assert "".join(norm.units(ref, "cer")) == "えーそれでは始めます"
    res = score_texts({"u": ref}, {"u": "えーそれでは始まります"}, norm, "cer")
    # 始めます -> 始まります: め->ま substitution and り inserted
    assert (res.errors, res.ref_units, res.subs, res.ins) == (2, 10, 1, 1)


def test_bulk_hyp_errors_match_kaldi_totals():
    b = NbestBuilder()
    hyps = ["the cat sat", "the cat sat on", "a cat", ""]
    for k, h in enumerate(hyps, 1):
        b.add("u1", k, h, {"score": -k})
    b.add("u2", 1, "x", {"score": 0.0})
    nbs = b.build(refs={"u1": "the cat sat"})
    errors, ref_units = hyp_errors(nbs)
    assert errors[:4].tolist() == [kaldi_edit_distance("the cat sat".split(), h.split())[0] for h in hyps]
    assert np.isnan(errors[4])
    assert ref_units.tolist() == [3, 0]


def _reference_edit_distance(ref: list, hyp: list) -> tuple[int, int, int, int]:
    """A plain transcription of Kaldi's LevenshteinEditDistance (util/edit-distance-inl.h), the tie rule
    included: a substitution or match only when strictly cheaper than both, then a deletion when
    strictly cheaper than an insertion, else an insertion."""
    e = [(r, 0, r, 0) for r in range(len(ref) + 1)]  # (cost, ins, del, sub) per ref prefix
    for h in hyp:
        cur = [(e[0][0] + 1, e[0][1] + 1, e[0][2], e[0][3])]
        for r in range(1, len(ref) + 1):
            ins, dele, diff = e[r][0] + 1, cur[r - 1][0] + 1, h != ref[r - 1]
            sub = e[r - 1][0] + diff
            if sub < ins and sub < dele:
                _, i, d, s = e[r - 1]
                cur.append((sub, i, d, s + diff))
            elif dele < ins:
                _, i, d, s = cur[r - 1]
                cur.append((dele, i, d + 1, s))
            else:
                _, i, d, s = e[r]
                cur.append((ins, i + 1, d, s))
        e = cur
    c, i, d, s = e[-1]
    return i + d + s, i, d, s


def _reference_align(ref: list, hyp: list, eps: str = "***") -> list[tuple[str, str]]:
    """A plain transcription of Kaldi's LevenshteinAlignment backtrace (same tie rule)."""
    e = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for n in range(len(hyp) + 1):
        e[0][n] = n
    for m in range(1, len(ref) + 1):
        e[m][0] = m
        for n in range(1, len(hyp) + 1):
            e[m][n] = min(e[m - 1][n - 1] + (ref[m - 1] != hyp[n - 1]), e[m - 1][n] + 1, e[m][n - 1] + 1)
    out, m, n = [], len(ref), len(hyp)
    while m or n:
        if m and n and e[m - 1][n - 1] + (ref[m - 1] != hyp[n - 1]) < min(e[m - 1][n] + 1, e[m][n - 1] + 1):
            step = (m - 1, n - 1)
        elif m and (not n or e[m - 1][n] + 1 < e[m][n - 1] + 1):
            step = (m - 1, n)
        else:
            step = (m, n - 1)
        out.append((eps if step[0] == m else ref[step[0]], eps if step[1] == n else hyp[step[1]]))
        m, n = step
    return out[::-1]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=10), st.lists(st.sampled_from("abc"), max_size=10))
def test_kaldialign_equals_the_kaldi_recursion_ties_included(ref, hyp):
    assert kaldi_edit_distance(ref, hyp) == _reference_edit_distance(ref, hyp)
    assert kaldi_align(ref, hyp) == _reference_align(ref, hyp)
