"""awslabs/mlm-scoring n-best JSON (docs/formats.md §5.2): reading, writing, round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rescore.data.formats import mlm_json
from rescore.data.nbest import NbestSet
from rescore.exceptions import InputError, InvalidSetError
from tests.conftest import make_set, write

REF = "mister quilter is the apostle of the middle classes and we are glad to welcome his gospel"

EXAMPLE = """{
  "1272-128104-0000": {
    "ref": "mister quilter is the apostle of the middle classes and we are glad to welcome his gospel",
    "hyp_1":   {"score": -1.234,  "text": " mister quilter is the apostle of the middle classes"},
    "hyp_2":   {"score": -3.017,  "text": " mister quillter is"},
    "hyp_3": {"score": -20.234, "text": " "}
  }
}
"""


def assert_same(a: NbestSet, b: NbestSet) -> None:
    assert a.utt_ids == b.utt_ids
    assert list(a.keys()) == list(b.keys())
    assert list(a.texts) == list(b.texts)
    assert np.array_equal(a.streams["score"], b.streams["score"], equal_nan=True)
    assert a.refs == b.refs


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def test_read_example(tmp_path: Path):
    src = write(tmp_path / "dev-clean.am.json", EXAMPLE)
    nbs = mlm_json.read(src)
    assert nbs.utt_ids == ["1272-128104-0000"]
    assert list(nbs.keys()) == ["1272-128104-0000-1", "1272-128104-0000-2", "1272-128104-0000-3"]
    assert list(nbs.texts) == ["mister quilter is the apostle of the middle classes", "mister quillter is", ""]
    assert nbs.streams["score"].tolist() == [-1.234, -3.017, -20.234]
    assert nbs.refs == {"1272-128104-0000": REF}
    assert nbs.meta["source"] == {"format": "mlm-json", "path": str(src),
                                  "options": {"missing_score": "error", "stream": "score"}}
    assert nbs.meta["streams"]["score"]["better"] == "higher"


def test_rank_from_key_name_not_order(tmp_path: Path):
    src = write(tmp_path / "x.json", json.dumps({"u": {
        "hyp_10": {"score": -10, "text": "j"},
        **{f"hyp_{n}": {"score": -n, "text": chr(96 + n)} for n in range(1, 10)},
    }}))
    nbs = mlm_json.read(src)
    order = np.argsort(nbs.ranks)
    assert [nbs.texts[i] for i in order] == list("abcdefghij")
    assert nbs.streams["score"][order].tolist() == [-float(n) for n in range(1, 11)]


def test_ascii_whitespace_only(tmp_path: Path):
    src = write(tmp_path / "x.json", json.dumps({"u": {"hyp_1": {"score": 0, "text": " a\u3000b\u00a0c \t d "}}}))
    assert list(mlm_json.read(src).texts) == ["a\u3000b\u00a0c d"]


def test_refs_argument_wins(tmp_path: Path):
    src = write(tmp_path / "x.json", EXAMPLE)
    refs = {"1272-128104-0000": "other", "extra": "y"}
    assert mlm_json.read(src, refs=refs).refs == refs


def test_no_ref_fields_gives_no_refs(tmp_path: Path):
    src = write(tmp_path / "x.lm.json", json.dumps({"u": {"hyp_1": {"score": -1.5, "text": "a"}}}))
    nbs = mlm_json.read(src, stream="mlm")
    assert nbs.refs is None
    assert nbs.streams["mlm"].tolist() == [-1.5]


def test_ref_only_utterance(tmp_path: Path):
    src = write(tmp_path / "x.json", json.dumps({"u": {"hyp_1": {"score": -1, "text": "a"}}, "v": {"ref": "b"}}))
    nbs = mlm_json.read(src)
    assert nbs.utt_ids == ["u"]
    assert nbs.refs == {"v": "b"}


def test_nonfinite_kept(tmp_path: Path):
    src = write(tmp_path / "x.json", '{"u": {"hyp_1": {"score": NaN, "text": "a"},\n'
                '"hyp_2": {"score": -Infinity, "text": "b"}, "hyp_3": {"score": Infinity, "text": "c"}}}\n')
    v = mlm_json.read(src).streams["score"]
    assert math.isnan(v[0]) and v[1] == -math.inf and v[2] == math.inf


def test_missing_score(tmp_path: Path):
    src = write(tmp_path / "x.json", '{\n  "u": {\n    "hyp_1": {"text": "a"}\n  }\n}\n')
    with pytest.raises(InvalidSetError) as e:
        mlm_json.read(src)
    assert f"{src}:2: utterance u key hyp_1: no 'score'" in str(e.value)
    nbs = mlm_json.read(src, missing_score="zero")
    assert nbs.streams["score"].tolist() == [0.0]
    assert nbs.meta["source"]["options"]["missing_score"] == "zero"
    with pytest.raises(ValueError, match="missing_score"):
        mlm_json.read(src, missing_score="skip")


# ------------------------------------------------------------------------------------------
# reading errors
# ------------------------------------------------------------------------------------------


def test_invalid_json_line_number(tmp_path: Path):
    src = write(tmp_path / "x.json", '{\n  "u": {\n    "hyp_1": {"score": -1, "text": "a"},\n  }\n}\n')
    with pytest.raises(InputError) as e:
        mlm_json.read(src)
    assert f"{src}:4: invalid JSON" in str(e.value)


def test_hyp_0(tmp_path: Path):
    src = write(tmp_path / "x.json", '{\n  "a": {"hyp_1": {"score": -1, "text": "x"}},\n'
                '  "b-1": {"hyp_0": {"score": -1, "text": "a"}, "hyp_1": {"score": -2, "text": "b"}}\n}\n')
    with pytest.raises(InvalidSetError) as e:
        mlm_json.read(src)
    assert f"{src}:3: utterance b-1: key 'hyp_0'" in str(e.value)


@pytest.mark.parametrize("key", ["hyp_x", "hyp_01", "hyp_", "hyp_-1", "hyp_1.5"])
def test_bad_hyp_keys(tmp_path: Path, key: str):
    src = write(tmp_path / "x.json", json.dumps({"u": {"hyp_1": {"score": -1, "text": "a"},
                                                       key: {"score": -2, "text": "b"}}}, indent=2))
    with pytest.raises(InvalidSetError) as e:
        mlm_json.read(src)
    assert f"{src}:2: utterance u: key {key!r}" in str(e.value)


def test_rank_gap(tmp_path: Path):
    src = write(tmp_path / "x.json", json.dumps({"u": {"hyp_1": {"score": -1, "text": "a"},
                                                       "hyp_3": {"score": -2, "text": "b"}}}, indent=2))
    with pytest.raises(InvalidSetError) as e:
        mlm_json.read(src)
    assert f"{src}:2: utterance u: hyp_3 present but hyp_2 missing" in str(e.value)


@pytest.mark.parametrize("entry,what", [
    ({"score": "-1", "text": "a"}, "not a number"),
    ({"score": True, "text": "a"}, "not a number"),
    ({"score": -1}, "'text' is missing"),
    ({"score": -1, "text": ["a"]}, "'text' is not a string"),
    ("a", "expected an object"),
])
def test_bad_entries(tmp_path: Path, entry, what: str):
    src = write(tmp_path / "x.json", json.dumps({"u": {"hyp_1": entry}}, indent=2))
    with pytest.raises(InvalidSetError, match=what) as e:
        mlm_json.read(src)
    assert f"{src}:2:" in str(e.value)


def test_structural_errors(tmp_path: Path):
    src = write(tmp_path / "a.json", "[1, 2]\n")
    with pytest.raises(InputError, match="expected a JSON object"):
        mlm_json.read(src)
    src = write(tmp_path / "b.json", '{"u": {"hyp_1": {"score": -1, "text": "a"}}, "u": {}}\n')
    with pytest.raises(InputError, match="duplicate key 'u'"):
        mlm_json.read(src)
    src = write(tmp_path / "c.json", b'{"u": {"ref": "\xff"}}', mode="wb")
    with pytest.raises(InputError, match="invalid UTF-8") as e:
        mlm_json.read(src)
    assert f"{src}:1:" in str(e.value)


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def test_write_line_by_line(tmp_path: Path):
    nbs = make_set({"u-1": [("a b", -1.5), ("", math.nan)], "é": [("ü", -math.inf)]},
                   refs={"u-1": "a b", "z": "only ref"})
    out = tmp_path / "out" / "dev.am.json"
    assert mlm_json.write(nbs, out) == [out]
    assert out.read_text(encoding="utf-8").split("\n") == [
        "{",
        '  "u-1": {',
        '    "hyp_1": {',
        '      "score": -1.5,',
        '      "text": "a b"',
        "    },",
        '    "hyp_2": {',
        '      "score": NaN,',
        '      "text": ""',
        "    },",
        '    "ref": "a b"',
        "  },",
        '  "z": {',
        '    "ref": "only ref"',
        "  },",
        '  "\\u00e9": {',
        '    "hyp_1": {',
        '      "score": -Infinity,',
        '      "text": "\\u00fc"',
        "    }",
        "  }",
        "}",
        "",
    ]


def test_write_without_ref(tmp_path: Path):
    nbs = make_set({"u": [("a", -1.0)]}, refs={"u": "a", "v": "b"})
    out = mlm_json.write(nbs, tmp_path / "x.json", include_ref=False)[0]
    assert json.loads(out.read_text()) == {"u": {"hyp_1": {"score": -1.0, "text": "a"}}}


def test_round_trip_example(tmp_path: Path):
    nbs = mlm_json.read(write(tmp_path / "in.json", EXAMPLE))
    back = mlm_json.read(mlm_json.write(nbs, tmp_path / "out.json")[0])
    assert_same(nbs, back)


# ------------------------------------------------------------------------------------------
# property-based round trip
# ------------------------------------------------------------------------------------------

_ASCII_WS = " \t\n\r\x0b\x0c"
# tokens hold any character but ASCII whitespace (even U+3000, NBSP, U+001C..U+001F, U+0085,
# which str.split() would split on); surrogates cannot be UTF-8 encoded
token = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=_ASCII_WS),
    min_size=1, max_size=6,
)
hyp_text = st.lists(token, max_size=5).map(" ".join)  # [] -> empty hypothesis
utt_id = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,12}", fullmatch=True)
score = st.floats(allow_nan=True, allow_infinity=True, width=64)
sets = st.dictionaries(
    utt_id,
    st.tuples(st.lists(st.tuples(hyp_text, score), max_size=5), st.one_of(st.none(), hyp_text)),
    max_size=6,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=sets)
def test_round_trip_property(tmp_path: Path, data):
    hyps = {u: items for u, (items, _) in data.items() if items}
    refs = {u: r for u, (_, r) in data.items() if r is not None} or None  # may lack hyps
    nbs = make_set(hyps, refs=refs)
    path = mlm_json.write(nbs, tmp_path / "rt.json")[0]
    back = mlm_json.read(path)
    # JSON output is key-sorted: compare in a normalised order
    assert_same(nbs.normalized_order(), back.normalized_order())
    again = mlm_json.read(mlm_json.write(back, tmp_path / "rt2.json")[0])
    assert path.read_bytes() == (tmp_path / "rt2.json").read_bytes()
    assert_same(back, again)
