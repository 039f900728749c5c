"""HypR importer: JSON lines, JSON list, parquet, a directory of shards, and every input error."""

from __future__ import annotations

import gzip
import json
import logging
import math
import sys

import numpy as np
import pytest

from rescore.data.formats import hypr, module
from rescore.data.nbest import load_set, save_set
from rescore.exceptions import InputError, InvalidSetError

# docs/formats.md §5.3: the README's LibriSpeech row reproduces with λ_ctc = 0.5:
# 0.5·(−1.76402) + 0.5·(−5.13712) = −3.45057. The other rows are constructed the same way.
REF1 = "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES AND WE ARE GLAD TO WELCOME HIS GOSPEL"
REC1 = {
    "utt_id": "1272-128104-0000",
    "ref": REF1,
    "hyps": [REF1, REF1 + "S", REF1.replace("QUILTER", "QUILTERS")],
    "att_score": [-1.76402, -4.2, -5.5],
    "ctc_score": [-5.13712, -6.1, -7.3],
    "score": [-3.45057, -5.15, -6.4],
}
REC2 = {
    "utt_id": "1272-128104-0001",
    "ref": "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING",
    "hyps": ["NOR IS MISTER QUILTER'S MANNER LESS INTERESTING",
             "NOR IS MISTER QUILTERS MANNER LESS INTERESTING"],
    "att_score": [-2.0, -3.0],
    "ctc_score": [-4.0, -3.5],
    "score": [-3.0, -3.25],
}
LM = {"1272-128104-0000": [-20.5, -24.0, -26.25], "1272-128104-0001": [-10.0, -12.5]}


def with_lm(rec: dict) -> dict:
    """The same record as in a *_withLM dataset: score = 0.5 att + 0.5 ctc + 0.7 lm."""
    out = dict(rec)
    out["lm_score"] = LM[rec["utt_id"]]
    parts = zip(rec["att_score"], rec["ctc_score"], out["lm_score"], strict=True)
    out["score"] = [0.5 * a + 0.5 * c + 0.7 * lm for a, c, lm in parts]
    return out


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def write_parquet(path, records) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pylist(records), path)


def check_example(nbs, lm: bool = False) -> None:
    assert nbs.utt_ids == ["1272-128104-0000", "1272-128104-0001"]
    assert list(nbs.keys()) == [
        "1272-128104-0000-1", "1272-128104-0000-2", "1272-128104-0000-3",
        "1272-128104-0001-1", "1272-128104-0001-2",
    ]
    assert nbs.texts[0] == REF1 and nbs.texts[1] == REF1 + "S"
    assert nbs.texts[4] == "NOR IS MISTER QUILTERS MANNER LESS INTERESTING"
    want = ["score", "att_score", "ctc_score"] + (["lm_score"] if lm else [])
    assert list(nbs.streams) == want
    np.testing.assert_array_equal(nbs.streams["att_score"], [-1.76402, -4.2, -5.5, -2.0, -3.0])
    np.testing.assert_array_equal(nbs.streams["ctc_score"], [-5.13712, -6.1, -7.3, -4.0, -3.5])
    if not lm:
        # kept as given, and the given values are 0.5·att + 0.5·ctc (the README example)
        np.testing.assert_array_equal(nbs.streams["score"], [-3.45057, -5.15, -6.4, -3.0, -3.25])
        np.testing.assert_allclose(
            nbs.streams["score"], 0.5 * nbs.streams["att_score"] + 0.5 * nbs.streams["ctc_score"], atol=1e-5
        )
    else:
        np.testing.assert_array_equal(nbs.streams["lm_score"], [-20.5, -24.0, -26.25, -10.0, -12.5])
        assert nbs.streams["score"][0] == pytest.approx(-3.45057 + 0.7 * -20.5)
    assert nbs.refs == {"1272-128104-0000": REF1, "1272-128104-0001": REC2["ref"]}
    assert nbs.meta["source"]["format"] == "hypr"
    assert nbs.meta["streams"]["att_score"]["better"] == "higher"
    assert "attention" in nbs.meta["streams"]["att_score"]["description"]
    assert nbs.meta["source"]["utts_without_hyps"] == 0
    np.testing.assert_array_equal(nbs.best(nbs.streams["score"]), [0, 3])


def test_registry():
    assert module("hypr") is hypr


def test_jsonl_without_lm(tmp_path):
    p = tmp_path / "dev_clean.jsonl"
    write_jsonl(p, [REC1, REC2])
    check_example(hypr.read(p))


def test_jsonl_with_lm(tmp_path):
    p = tmp_path / "dev_clean.jsonl"
    write_jsonl(p, [with_lm(REC1), with_lm(REC2)])
    nbs = hypr.read(p)
    check_example(nbs, lm=True)
    assert "LM" in nbs.meta["streams"]["lm_score"]["description"]


def test_json_list_and_gz(tmp_path):
    p = tmp_path / "dev.json"
    p.write_text(json.dumps([REC1, REC2], indent=2), encoding="utf-8")
    check_example(hypr.read(p))
    g = tmp_path / "dev.jsonl.gz"
    with gzip.open(g, "wt", encoding="utf-8") as f:
        f.write(json.dumps(REC1) + "\n\n" + json.dumps(REC2) + "\n")  # a blank line is no record
    check_example(hypr.read(g))


def test_parquet_file(tmp_path):
    p = tmp_path / "dev_clean-00000-of-00001.parquet"
    write_parquet(p, [REC1, REC2])
    check_example(hypr.read(p))
    p2 = tmp_path / "lm.parquet"
    write_parquet(p2, [with_lm(REC1), with_lm(REC2)])
    check_example(hypr.read(p2), lm=True)


def test_parquet_many_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(hypr, "PARQUET_BATCH", 2)
    recs = [dict(REC2, utt_id=f"u{i:02d}") for i in range(5)]
    p = tmp_path / "x.parquet"
    write_parquet(p, recs)
    nbs = hypr.read(p)
    assert nbs.utt_ids == [f"u{i:02d}" for i in range(5)] and nbs.num_hyps == 10


def test_directory_of_shards(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    # written in reverse order: reading follows the sorted names, not creation order
    write_parquet(d / "dev_clean-00001-of-00002.parquet", [REC2])
    write_parquet(d / "dev_clean-00000-of-00002.parquet", [REC1])
    write_parquet(d / "test_clean-00000-of-00001.parquet", [dict(REC1, utt_id="other")])
    (d / "README.md").write_text("not data\n")
    nbs = hypr.read(d, pattern="dev_clean-*.parquet")
    check_example(nbs)
    assert [p.rsplit("/", 1)[1] for p in nbs.meta["source"]["files"]] == [
        "dev_clean-00000-of-00002.parquet", "dev_clean-00001-of-00002.parquet"]
    assert hypr.read(d).num_utts == 3  # every supported file, README ignored
    assert hypr.read(tmp_path, pattern="data/dev_clean-*").num_utts == 2
    with pytest.raises(InputError, match="no files"):
        hypr.read(tmp_path)
    with pytest.raises(InputError, match="unsupported"):
        hypr.read(d, pattern="*")


def test_empty_hyps_keeps_reference(tmp_path, caplog):
    p = tmp_path / "x.jsonl"
    empty = {"utt_id": "u-empty", "ref": "A B", "hyps": [], "att_score": [], "ctc_score": [], "score": []}
    write_jsonl(p, [REC1, empty, REC2])
    with caplog.at_level(logging.INFO, logger="rescore"):
        nbs = hypr.read(p)
    assert nbs.utt_ids == ["1272-128104-0000", "1272-128104-0001"]
    assert nbs.refs["u-empty"] == "A B"
    assert nbs.meta["source"]["utts_without_hyps"] == 1
    assert nbs.meta["source"]["utts_without_hyps_ids"] == ["u-empty"]
    assert nbs.meta["source"]["records"] == 3
    assert "1 utterance(s) have no hypotheses" in caplog.text and "u-empty" in caplog.text
    save_set(nbs, tmp_path / "set")
    assert load_set(tmp_path / "set").refs["u-empty"] == "A B"


def test_aishell_refs_and_unicode_spaces(tmp_path):
    rec = {
        "utt_id": "BAC009S0764W0121",
        "ref": "甚至 出现 交易  几乎停滞的情况",
        "hyps": ["甚至出现交易几乎停滞的情况", "甚至\u3000出现 交易"],
        "att_score": [-1.0, -2.0], "ctc_score": [-1.5, -2.5], "score": [-1.25, -2.25],
    }
    p = tmp_path / "aishell.jsonl"
    write_jsonl(p, [rec])
    nbs = hypr.read(p)
    # only runs of ASCII whitespace are joined
    assert nbs.refs == {"BAC009S0764W0121": "甚至 出现 交易 几乎停滞的情况"}
    assert nbs.texts[1] == "甚至\u3000出现 交易"  # U+3000 is not a separator
    assert nbs.texts.num_tokens().tolist() == [1, 2]


def test_refs_argument_and_nonfinite(tmp_path):
    p = tmp_path / "x.jsonl"
    rec = dict(REC2, score=[float("-inf"), float("nan")])
    p.write_text(json.dumps(rec) + "\n")  # json writes -Infinity / NaN, which HF data can hold
    nbs = hypr.read(p, refs={"1272-128104-0001": "OTHER REF"})
    assert nbs.refs == {"1272-128104-0001": "OTHER REF"}
    assert nbs.streams["score"][0] == -math.inf and math.isnan(nbs.streams["score"][1])
    # without ref field and without refs: an unlabeled set
    rec.pop("ref")
    p.write_text(json.dumps(rec) + "\n")
    assert hypr.read(p).refs is None


def test_roundtrip_setdir(tmp_path):
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [with_lm(REC1), with_lm(REC2)])
    nbs = hypr.read(p)
    save_set(nbs, tmp_path / "set")
    back = load_set(tmp_path / "set")
    assert list(back.keys()) == list(nbs.keys()) and back.texts == nbs.texts and back.refs == nbs.refs
    for s, v in nbs.streams.items():
        np.testing.assert_array_equal(back.streams[s], v)


# ------------------------------------------------------------------------------- errors


def test_length_mismatch_names_utt_field_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    write_jsonl(p, [REC1, dict(REC2, ctc_score=[-4.0])])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(p)
    msg = str(e.value)
    assert f"{p}:2:" in msg and "1272-128104-0001" in msg and "ctc_score" in msg
    assert "1 values for 2 hyps" in msg


def test_length_mismatch_parquet_names_row(tmp_path):
    p = tmp_path / "bad.parquet"
    write_parquet(p, [REC1, dict(REC2, att_score=[-2.0, -3.0, -4.0])])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(p)
    msg = str(e.value)
    assert f"{p}:row 2:" in msg and "att_score" in msg and "1272-128104-0001" in msg


def test_duplicate_utt_id(tmp_path):
    p = tmp_path / "dup.jsonl"
    write_jsonl(p, [REC1, REC2, REC1])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(p)
    assert f"{p}:3: duplicate utt_id 1272-128104-0000 (first at {p}:1)" in str(e.value)
    d = tmp_path / "shards"
    d.mkdir()
    write_parquet(d / "a.parquet", [REC1, REC2])
    write_parquet(d / "b.parquet", [REC2])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(d)
    want = f"{d / 'b.parquet'}:row 1: duplicate utt_id 1272-128104-0001 (first at {d / 'a.parquet'}:row 2)"
    assert want in str(e.value)


def test_mismatched_fields(tmp_path):
    p = tmp_path / "mixed.jsonl"
    write_jsonl(p, [with_lm(REC1), REC2])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(p)
    msg = str(e.value)
    assert f"{p}:2:" in msg and "missing lm_score" in msg and f"({p}:1)" in msg
    # shards of a withLM and a withoutLM dataset: one error for the file, then a count
    d = tmp_path / "shards"
    d.mkdir()
    write_parquet(d / "a.parquet", [with_lm(REC1)])
    write_parquet(d / "b.parquet", [REC2, dict(REC2, utt_id="x"), dict(REC2, utt_id="y")])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(d)
    msg = str(e.value)
    assert "2 error(s)" in msg and f"{d / 'b.parquet'}:row 1:" in msg and "2 more record(s)" in msg


def test_missing_required_and_bad_types(tmp_path):
    p = tmp_path / "x.jsonl"
    no_score = {k: v for k, v in REC2.items() if k != "score"}
    write_jsonl(p, [REC1, no_score, dict(REC2, utt_id="a b"), dict(REC2, utt_id="c", hyps=["x", 3]),
                    dict(REC2, utt_id="d", score=[-1.0, "oops"]), [1, 2]])
    with pytest.raises(InvalidSetError) as e:
        hypr.read(p)
    msg = str(e.value)
    assert f"{p}:2: record without field(s) score" in msg
    assert f"{p}:3: invalid utt_id 'a b'" in msg
    assert f"{p}:4: utterance c: hyps is not a list of strings" in msg
    assert f"{p}:5: utterance d: field score holds non-numeric value 'oops'" in msg
    assert f"{p}:6: record is list" in msg


def test_invalid_json_and_missing_inputs(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps(REC1) + "\n{oops\n")
    with pytest.raises(InputError, match=rf"{p}:2: invalid JSON"):
        hypr.read(p)
    with pytest.raises(InputError, match="no such file"):
        hypr.read(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("x\n")
    with pytest.raises(InputError, match="unsupported file type"):
        hypr.read(tmp_path / "x.txt")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="no HypR records"):
        hypr.read(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="pattern applies to a directory"):
        hypr.read(p, pattern="*.jsonl")


def test_without_pyarrow(tmp_path, monkeypatch):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        hypr.read(p)
