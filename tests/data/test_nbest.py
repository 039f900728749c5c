import numpy as np
import pytest

from rescore.data.nbest import NbestBuilder, TextColumn, inspect_set, load_set, save_set, split_nbest_key
from rescore.exceptions import InvalidSetError
from tests.conftest import make_setdir, write


def test_split_key_uses_last_dash():
    assert split_nbest_key("sw02001-A_000098-001156-10") == ("sw02001-A_000098-001156", 10)
    for bad in ("u1", "-3", "u-0", "u-01", "u-x"):
        with pytest.raises(ValueError):
            split_nbest_key(bad)


def test_text_column_take_and_tokens():
    col = TextColumn.from_strings(["a b", "", "日本 語 x"])
    assert list(col) == ["a b", "", "日本 語 x"]
    assert col.num_tokens().tolist() == [2, 0, 3]
    assert list(col.take(np.array([2, 0]))) == ["日本 語 x", "a b"]


def test_load_joins_streams_by_key_not_line(tmp_path):
    d = make_setdir(tmp_path / "s", {"a-b": [("x", -1.0), ("y", -2.0)], "c": [("z", 0.5)]})
    # a stream written in another order
    write(d / "nbest" / "pll", "c-1 -7\na-b-2 -6\na-b-1 -5\n")
    nbs = load_set(d)
    assert nbs.utt_ids == ["a-b", "c"]
    assert nbs.streams["pll"].tolist() == [-5.0, -6.0, -7.0]
    assert list(nbs.keys()) == ["a-b-1", "a-b-2", "c-1"]


def test_rank_order_not_line_order(tmp_path):
    d = tmp_path / "s"
    write(d / "nbest" / "text", "u-10 j\n" + "".join(f"u-{k} w{k}\n" for k in range(1, 10)))
    write(d / "nbest" / "score", "".join(f"u-{k} {-k}\n" for k in range(1, 11)))
    nbs = load_set(d)
    assert nbs.ranks.tolist() == [10, *range(1, 10)]
    assert nbs.texts[int(nbs.best(nbs.streams["score"])[0])] == "w1"
    norm = nbs.normalized_order()
    assert norm.ranks.tolist() == list(range(1, 11))
    assert norm.texts[9] == "j"


def _errors(d):
    nbs, rep = inspect_set(d)
    assert nbs is None
    return "\n".join(str(e) for e in rep.errors)


def test_structural_errors_are_all_reported_with_lines(tmp_path):
    d = tmp_path / "s"
    write(d / "nbest" / "text", "u1-1 a\nu1-1 b\nu2-1 c\nu1-3 d\nu3-2 e\nu4-x f\n")
    write(d / "nbest" / "score", "u1-1 0\nu2-1 0\nu3-2 0\n")
    msg = _errors(d)
    assert "nbest/text:2: duplicate key u1-1 (also at line 1)" in msg
    assert "nbest/text:4: entries of utterance u1 are not contiguous" in msg
    assert "nbest/text:5: ranks of u3 have gaps: missing [1]" in msg
    assert "nbest/text:6: key 'u4-x' is not '<utt>-<k>'" in msg


def test_stream_problems(tmp_path):
    d = make_setdir(tmp_path / "s", {"u": [("a", 0.0), ("b", 1.0)], "v": [("c", 2.0)]})
    write(d / "nbest" / "score", "u-1 0\nu-1 3\nv-1 abc\nw-1 1\nu-3 2\n")
    msg = _errors(d)
    assert "nbest/score:2: duplicate key (also at line 1)" in msg
    assert "nbest/score:3: non-numeric value 'abc'" in msg
    assert "nbest/score:4: key 'w-1' is not in nbest/text" in msg
    assert "nbest/score:5: key u-3 is not in nbest/text" in msg
    assert "2 key(s) of nbest/text missing: u-2, v-1" in msg


def test_invalid_utf8_and_crlf(tmp_path):
    d = make_setdir(tmp_path / "s", {"u": [("a", 0.0)]})
    write(d / "nbest" / "text", b"u-1 \xc3\x28\n", "wb")
    assert "nbest/text:1: invalid UTF-8" in _errors(d)
    write(d / "nbest" / "text", b"u-1 a\r\n", "wb")
    assert "nbest/text:1: CRLF" in _errors(d)


def test_non_finite_scores_kept_flagged_and_ranked_last(tmp_path):
    d = make_setdir(tmp_path / "s", {"u": [("a", float("inf")), ("b", -5.0), ("c", float("nan"))]})
    write(d / "nbest" / "score", "u-1 Infinity\nu-2 -5\nu-3 BadNumber\n")
    nbs, rep = inspect_set(d)
    assert nbs.num_hyps == 3
    assert any("3 non-finite" in w or "2 non-finite" in w for w in rep.warnings)
    assert nbs.best(nbs.streams["score"]).tolist() == [1]
    meta = save_set(nbs, tmp_path / "out")
    assert meta["nonfinite"]["score"] == {"count": 2, "keys": ["u-1", "u-3"]}
    assert (tmp_path / "out" / "nbest" / "score").read_text() == "u-1 Infinity\nu-2 -5.0\nu-3 BadNumber\n"


def test_reference_mismatches_are_warnings(tmp_path):
    d = make_setdir(tmp_path / "s", {"u": [("a", 0.0)], "v": [("b", 0.0)]}, refs={"u": "a", "w": "c"})
    nbs, rep = inspect_set(d)
    assert nbs is not None and not rep.errors
    text = "\n".join(rep.warnings)
    assert "1 utterance(s) with hypotheses have no reference: v" in text
    assert "1 reference(s) have no hypotheses" in text and ": w" in text


def test_builder_reports_problems_with_source_location():
    b = NbestBuilder()
    b.add("u", 1, "a", {"score": 0}, where=("src.txt", 1))
    b.add("v", 1, "a", {"score": 0}, where=("src.txt", 2))
    b.add("u", 2, "a", {"score": 0}, where=("src.txt", 3))
    b.add("v", 3, "a", {"score": 0}, where=("src.txt", 4))
    b.add("w", 1, "a", {}, where=("src.txt", 5))
    with pytest.raises(InvalidSetError) as e:
        b.build()
    msg = str(e.value)
    assert "src.txt:3: entries of utterance u are not contiguous (first seen at src.txt:1)" in msg
    assert "src.txt:2: ranks of v have gaps: missing [2]" in msg
    assert "src.txt:5: w-1: no value for score" in msg


def test_save_load_round_trip_and_counts(tmp_path):
    b = NbestBuilder(["score", "ac_cost"])
    b.add("a-1", 2, "日本　語", {"score": -1.5, "ac_cost": 3.0})
    b.add("a-1", 1, "", {"score": -0.5, "ac_cost": 2.0})
    nbs = b.build(refs={"a-1": "日本語"})
    meta = save_set(nbs, tmp_path / "s")
    assert meta["counts"] == {"utts": 1, "hyps": 2, "max_hyps_per_utt": 2, "empty_hyps": 1, "refs": 1,
                              "utts_without_ref": 0, "refs_without_hyps": 0}
    assert meta["streams"]["ac_cost"]["better"] == "lower"
    assert (tmp_path / "s" / "nbest" / "text").read_text(encoding="utf-8") == "a-1-2 日本　語\na-1-1\n"
    back = load_set(tmp_path / "s")
    assert back.texts == nbs.texts and back.ranks.tolist() == [2, 1]
    assert back.streams["score"].tolist() == [-1.5, -0.5]


def test_in_order_streams_are_still_checked_value_by_value(tmp_path):
    d = make_setdir(tmp_path / "s", {"A01_0001": [("a", 0.0), ("b", 1.0)]})
    write(d / "nbest" / "lm", "A01_0001-1 1_000\nA01_0001-2 2\n")
    assert "nbest/lm:1: non-numeric value '1_000'" in _errors(d)
    write(d / "nbest" / "lm", "A01_0001-1 BadNumber\nA01_0001-2 1e+07\n")
    nbs = load_set(d)
    assert np.isnan(nbs.streams["lm"][0]) and nbs.streams["lm"][1] == 1e7
    write(d / "nbest" / "lm", "A01_0001-1 1 2\nA01_0001-2\n")
    assert "nbest/lm:1: expected one value after the key, got 2" in _errors(d)


def test_write_and_read_scores_by_key(tmp_path, small_set):
    from rescore.data.nbest import read_scores, write_scores

    nbs = load_set(small_set)
    write_scores(tmp_path / "pll", nbs, np.arange(5.0))
    assert read_scores(tmp_path / "pll", nbs).tolist() == [0, 1, 2, 3, 4]
    lines = (tmp_path / "pll").read_text().splitlines()
    (tmp_path / "pll").write_text("\n".join(reversed(lines)) + "\n")
    assert read_scores(tmp_path / "pll", nbs).tolist() == [0, 1, 2, 3, 4]
    (tmp_path / "pll").write_text("\n".join(lines[:4] + [lines[0]]) + "\n")
    with pytest.raises(InvalidSetError, match=r"pll:5: duplicate key.*\n.*1 key\(s\) of nbest/text missing: spk2-u2-2"):
        read_scores(tmp_path / "pll", nbs)


def test_references_in_another_file_named_by_meta(tmp_path):
    b = NbestBuilder(["score"])
    b.add("a", 1, "x y", {"score": -1.0})
    nbs = b.build(refs={"a": "x z"})
    meta = save_set(nbs, tmp_path / "s", refs_name="ref")
    assert meta["references"] == "ref" and not (tmp_path / "s" / "text").exists()
    assert (tmp_path / "s" / "ref").read_text() == "a x z\n"
    back = load_set(tmp_path / "s")
    assert back.refs == {"a": "x z"}
    assert "references" not in save_set(back, tmp_path / "t")  # the default file: no key
    assert (tmp_path / "t" / "text").read_text() == "a x z\n"
    with pytest.raises(ValueError):
        save_set(nbs, tmp_path / "u", refs_name="../ref")
    meta_path = tmp_path / "s" / "nbest" / "meta.yaml"
    meta_path.write_text(meta_path.read_text().replace("references: ref", "references: ../../etc/passwd"))
    with pytest.raises(InvalidSetError, match="meta.yaml.*'references' must be a file name"):
        load_set(tmp_path / "s")
