"""sclite trn export (docs/formats.md §4.3)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rescore.data.formats import trn
from rescore.data.nbest import NbestBuilder, NbestSet
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from tests.conftest import write

UTT = "A01M0110_0000211_0001695"


def make_set(hyps: dict[str, list[tuple[str, float]]], refs: dict[str, str] | None = None,
             stream: str = "score", meta: dict | None = None) -> NbestSet:
    b = NbestBuilder([stream])
    for utt, items in hyps.items():
        for k, (text, score) in enumerate(items, 1):
            b.add(utt, k, text, {stream: score})
    return b.build(refs=refs, meta=meta)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_csj_example(tmp_path: Path):
    # the first-pass 1-best is rank 2 here: the best score wins, not the rank
    nbs = make_set({UTT: [("え ー そ れ で は 始 め ま す", -6.0), ("え ー そ れ で は 始 ま り ま す", -4.8)]},
                   refs={UTT: "え ー そ れ で は 始 め ま す"})
    utt2spk = write(tmp_path / "utt2spk", f"{UTT} A01M0110\n")
    out = tmp_path / "score_cer"
    assert trn.write(nbs, out, utt2spk=utt2spk) == [out / "hyp.trn", out / "ref.trn"]
    assert (out / "ref.trn").read_bytes() == (
        f"え ー そ れ で は 始 め ま す\t(A01M0110-{UTT})\n".encode()
    )
    assert (out / "hyp.trn").read_bytes() == (
        f"え ー そ れ で は 始 ま り ま す\t(A01M0110-{UTT})\n".encode()
    )


def test_without_speakers_sorted_and_refs_only_in_ref(tmp_path: Path):
    nbs = make_set(
        {"b": [("hello", -1.0)], "a-2": [("", -1.0), ("x y", -2.0)]},
        refs={"c": "missing hyp", "b": "hello", "a-2": "x"},
    )
    trn.write(nbs, tmp_path)
    assert lines(tmp_path / "hyp.trn") == ["\t(a-2)", "hello\t(b)"]
    assert lines(tmp_path / "ref.trn") == ["x\t(a-2)", "hello\t(b)", "missing hyp\t(c)"]


def test_no_refs_writes_hyp_only(tmp_path: Path):
    files = trn.write(make_set({"u": [("a", -1.0)]}), tmp_path)
    assert files == [tmp_path / "hyp.trn"]
    assert not (tmp_path / "ref.trn").exists()


def test_best_by_stream_and_convention(tmp_path: Path):
    nbs = make_set({"u": [("one", -1.0), ("two", math.nan), ("three", -3.0)]})
    nbs.streams["errors"] = np.array([2.0, 0.0, 1.0])
    nbs.streams["pll"] = np.array([-9.0, -math.inf, -2.0])
    trn.write(nbs, tmp_path / "s")
    assert lines(tmp_path / "s" / "hyp.trn") == ["one\t(u)"]  # NaN ranks last
    trn.write(nbs, tmp_path / "e", stream="errors")  # reserved: lower is better
    assert lines(tmp_path / "e" / "hyp.trn") == ["two\t(u)"]
    trn.write(nbs, tmp_path / "p", stream="pll")
    assert lines(tmp_path / "p" / "hyp.trn") == ["three\t(u)"]
    nbs.meta["streams"] = {"pll": {"better": "lower"}}
    trn.write(nbs, tmp_path / "q", stream="pll")
    assert lines(tmp_path / "q" / "hyp.trn") == ["one\t(u)"]  # -inf ranks last either way
    with pytest.raises(ValueError, match="no stream"):
        trn.write(nbs, tmp_path / "x", stream="lm")


def test_ties_go_to_lower_rank(tmp_path: Path):
    b = NbestBuilder(["score"])
    b.add("u", 2, "second", {"score": -1.0})
    b.add("u", 1, "first", {"score": -1.0})
    trn.write(b.build(), tmp_path)
    assert lines(tmp_path / "hyp.trn") == ["first\t(u)"]


def test_norm_applied_to_both_sides(tmp_path: Path):
    nbs = make_set({"u": [("Hello, <unk> World", -1.0)]}, refs={"u": "HELLO world!"})
    trn.write(nbs, tmp_path, norm=Normalizer.parse("bracket,lower,punct"))
    assert lines(tmp_path / "hyp.trn") == ["hello world\t(u)"]
    assert lines(tmp_path / "ref.trn") == ["hello world\t(u)"]


def test_utt2spk_missing_utterance(tmp_path: Path):
    nbs = make_set({"u1": [("a", -1.0)]}, refs={"u1": "a", "u2": "b"})
    utt2spk = write(tmp_path / "utt2spk", "u1 s1\n")
    with pytest.raises(InputError, match="u2") as e:
        trn.write(nbs, tmp_path / "out", utt2spk=utt2spk)
    assert str(utt2spk) in str(e.value)


@pytest.mark.parametrize("content,line", [("u1 s1\nu2\n", 2), ("u1 s1 s2\n", 1), ("u1 s1\nu1 s2\n", 2)])
def test_utt2spk_bad_lines(tmp_path: Path, content: str, line: int):
    utt2spk = write(tmp_path / "utt2spk", content)
    with pytest.raises(InputError) as e:
        trn.write(make_set({"u1": [("a", -1.0)]}), tmp_path / "out", utt2spk=utt2spk)
    assert f"{utt2spk}:{line}:" in str(e.value)
