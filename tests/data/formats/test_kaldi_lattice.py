"""Tests of the Kaldi lattice importer/exporter (docs/formats.md §1.3, §1.7, §2.1-2.4).

Text fixtures are docs/formats.md §2.2's examples written with TABs; binary fixtures come from the
small encoder below, written from docs/formats.md §2.3 field by field (independent of the writer).
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from rescore.bin import export_nbest, import_nbest
from rescore.data.formats import kaldi_lattice
from rescore.data.nbest import NbestBuilder, load_set
from rescore.exceptions import InputError

WORDS_TXT = "<eps> 0\nA 11\nCAT 17\nBAT 18\nTHE 4312\nON 6005\nSAT 9021\n#0 9022\n<s> 9023\n</s> 9024\n"

# docs/formats.md §2.2, CompactLattice example (words 4312=THE, 17=CAT, 18=BAT, 9021=SAT)
UTT1 = (
    "utt1 \n"
    "0\t1\t4312\t1.53,210.4,2_6_6_6_5_5\n"
    "1\t2\t17\t0.8,95.61,14_13_13_18\n"
    "1\t3\t18\t2.1,97.03,14_13_22_21\n"
    "2\t4\t9021\t3.2,301.5,7_9_9_8\n"
    "3\t4\t9021\t3.2,299.9,7_9_9_8\n"
    "4\t0.61,0,1_1\n"
    "\n"
)
# docs/formats.md §8: a 3-column arc, an empty tid list (g,a,), a 1-column final, an epsilon arc
UTT2 = (
    "utt2 \n"
    "0\t1\t11\n"
    "1\t2\t0\t0.5,3,\n"
    "2\t3\t17\t1,20,5_6\n"
    "2\t3\t18\t1.5,19,\n"
    "3\n"
    "\n"
)
# docs/formats.md §2.2, Lattice (non-compact) form: src dst tid word [g,a]
LATTICE_UTT1 = (
    "utt1 \n"
    "0\t1\t2\t4312\t1.53,35.2\n"
    "1\t2\t6\t0\t0,175.2\n"
    "2\t3\t14\t17\t0.8,95.61\n"
    "2\t4\t22\t18\t2.1,97.03\n"
    "3\t5\t7\t9021\t3.2,301.5\n"
    "4\t5\t7\t9021\t3.2,299.9\n"
    "5\t6\t1\t0\n"
    "6\t0.61,0\n"
    "\n"
)


def put(path: Path, data: str | bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def words(tmp_path: Path) -> Path:
    return put(tmp_path / "words.txt", WORDS_TXT)


# --------------------------------------------------------------------------------------------
# A test-side OpenFst VectorFst encoder, following docs/formats.md §2.3 byte by byte
# --------------------------------------------------------------------------------------------


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def i64(v: int) -> bytes:
    return struct.pack("<q", v)


def f32(v: float) -> bytes:
    return struct.pack("<f", v)


def ostring(s: bytes) -> bytes:
    return i32(len(s)) + s


def weight(w, compact: bool) -> bytes:
    """LatticeWeight: two float32; CompactLatticeWeight: that, an int32 count, the int32 tids; None = Zero."""
    g, a, *rest = (math.inf, math.inf, []) if w is None else w
    tids = rest[0] if rest else []
    out = f32(g) + f32(a)
    if compact:
        out += i32(len(tids)) + b"".join(i32(t) for t in tids)
    return out


HEADER = {"arcs": "openfst"}


@pytest.fixture(autouse=True, params=["openfst", "counted"])
def header_form(request):
    """Every test runs with both binary header forms: the arc count at 0, as OpenFst's writer
    leaves it (what real Kaldi lattices hold), and the true count."""
    HEADER["arcs"] = request.param
    yield request.param
    HEADER["arcs"] = "openfst"


def encode_fst(states: list, start: int = 0, compact: bool = True) -> bytes:
    """``states``: [(final weight or None, [(ilabel, olabel, weight, nextstate), ...]), ...]."""
    narcs = sum(len(arcs) for _, arcs in states) if HEADER["arcs"] == "counted" else 0
    out = i32(2125659606) + ostring(b"vector") + ostring(b"compactlattice44" if compact else b"lattice4")
    out += i32(2) + i32(0) + struct.pack("<Q", 3) + i64(start) + i64(len(states)) + i64(narcs)
    for final, arcs in states:
        out += weight(final, compact) + i64(len(arcs))
        for il, ol, w, nxt in arcs:
            out += i32(il) + i32(ol) + weight(w, compact) + i32(nxt)
    return out


ONE = (0.0, 0.0, [])
# the 2.2 CompactLattice as binary
UTT1_STATES = [
    (None, [(4312, 4312, (1.53, 210.4, [2, 6, 6, 6, 5, 5]), 1)]),
    (None, [(17, 17, (0.8, 95.61, [14, 13, 13, 18]), 2), (18, 18, (2.1, 97.03, [14, 13, 22, 21]), 3)]),
    (None, [(9021, 9021, (3.2, 301.5, [7, 9, 9, 8]), 4)]),
    (None, [(9021, 9021, (3.2, 299.9, [7, 9, 9, 8]), 4)]),
    ((0.61, 0.0, [1, 1]), []),
]


def binary_entry(key: str, states: list, **kw) -> bytes:
    return key.encode() + b" " + encode_fst(states, **kw)


def test_encoder_magic_bytes():
    assert encode_fst(UTT1_STATES)[:4] == bytes.fromhex("D6FDB27E")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def test_text_example_hand_checked(tmp_path):
    words(tmp_path)
    nbs = kaldi_lattice.read(put(tmp_path / "lat.1", UTT1 + UTT2))
    assert nbs.utt_ids == ["utt1", "utt2"]
    assert list(nbs.keys()) == ["utt1-1", "utt1-2", "utt2-1", "utt2-2"]
    assert list(nbs.texts) == ["THE CAT SAT", "THE BAT SAT", "A CAT", "A BAT"]
    # THE CAT SAT: graph 1.53+0.8+3.2+0.61 = 6.14, acoustic 210.4+95.61+301.5 = 607.51 (docs/formats.md §2.2)
    g, a, s = (nbs.streams[k].tolist() for k in ("graph_cost", "ac_cost", "score"))
    assert g == pytest.approx([6.14, 7.44, 1.5, 2.0])
    assert a == pytest.approx([607.51, 607.33, 23.0, 22.0])
    assert s == pytest.approx([-66.891, -68.173, -3.8, -4.2])  # -(graph + 0.1 * ac)
    assert nbs.meta["acoustic_scale"] == 0.1
    src = nbs.meta["source"]
    assert src["format"] == "kaldi-lattice" and src["options"] == {"acwt": 0.1, "nbest": 10, "words": None}
    assert src["forms"] == {"text": 2, "binary": 0} and src["empty_lattices"]["count"] == 0


def test_nbest_order_at_two_acoustic_scales(tmp_path):
    words(tmp_path)
    lat = put(tmp_path / "lat.1", UTT1)
    # CAT: 6.14 + 607.51 s, BAT: 7.44 + 607.33 s: CAT first at s = 0.1, BAT first at s = 10
    assert list(kaldi_lattice.read(lat, acwt=0.1).texts) == ["THE CAT SAT", "THE BAT SAT"]
    nbs = kaldi_lattice.read(lat, acwt=10)
    assert list(nbs.texts) == ["THE BAT SAT", "THE CAT SAT"]
    assert nbs.streams["score"].tolist() == pytest.approx([-(7.44 + 6073.3), -(6.14 + 6075.1)])
    assert list(kaldi_lattice.read(lat, acwt=10, nbest=1).texts) == ["THE BAT SAT"]


def test_binary_compact_lattice(tmp_path):
    words(tmp_path)
    data = binary_entry("utt1", UTT1_STATES) + UTT2.encode()  # binary and text entries mixed
    nbs = kaldi_lattice.read(put(tmp_path / "lat.1.gz", data, gz=True))
    assert list(nbs.keys()) == ["utt1-1", "utt1-2", "utt2-1", "utt2-2"]
    assert list(nbs.texts) == ["THE CAT SAT", "THE BAT SAT", "A CAT", "A BAT"]
    # float32 on disk
    assert nbs.streams["graph_cost"].tolist() == pytest.approx([6.14, 7.44, 1.5, 2.0], rel=1e-6)
    assert nbs.streams["ac_cost"].tolist() == pytest.approx([607.51, 607.33, 23.0, 22.0], rel=1e-6)
    assert nbs.meta["source"]["forms"] == {"text": 1, "binary": 1}


def test_binary_lattice4_with_epsilons(tmp_path):
    words(tmp_path)
    # tid:word arcs; most words are epsilon (olabel 0); costs split over arcs
    states = [
        (None, [(2, 4312, (1.53, 35.2), 1)]),
        (None, [(6, 0, (0.0, 175.2), 2)]),
        (None, [(14, 17, (0.8, 95.61), 3), (22, 18, (2.1, 97.03), 4)]),
        (None, [(7, 9021, (3.2, 301.5), 5)]),
        (None, [(7, 9021, (3.2, 299.9), 5)]),
        ((0.61, 0.0), []),
    ]
    nbs = kaldi_lattice.read(put(tmp_path / "lat", binary_entry("utt1", states, compact=False)))
    assert list(nbs.texts) == ["THE CAT SAT", "THE BAT SAT"]
    assert nbs.streams["ac_cost"].tolist() == pytest.approx([607.51, 607.33], rel=1e-6)
    assert nbs.meta["source"]["types"] == {"CompactLattice": 0, "Lattice": 1}


def test_lattice_text_form(tmp_path):
    words(tmp_path)
    nbs = kaldi_lattice.read(put(tmp_path / "lat", LATTICE_UTT1))
    assert list(nbs.texts) == ["THE CAT SAT", "THE BAT SAT"]
    assert nbs.streams["graph_cost"].tolist() == pytest.approx([6.14, 7.44])
    assert nbs.streams["ac_cost"].tolist() == pytest.approx([607.51, 607.33])
    assert nbs.meta["source"]["types"] == {"CompactLattice": 0, "Lattice": 1}


def test_decode_dir_gz_and_num_jobs(tmp_path):
    d = tmp_path / "decode"
    put(d / "num_jobs", "2\n")
    put(d / "lat.1.gz", UTT1, gz=True)
    put(d / "lat.2.gz", binary_entry("utt2", [(None, [(11, 11, ONE, 1)]), ((1.0, 2.0, []), [])]), gz=True)
    with pytest.raises(InputError, match="words.txt"):
        kaldi_lattice.read(d)
    nbs = kaldi_lattice.read(d, words=words(tmp_path))
    assert list(nbs.keys()) == ["utt1-1", "utt1-2", "utt2-1"]
    assert nbs.texts[2] == "A" and nbs.meta["source"]["num_jobs"] == 2
    put(d / "lat.3.gz", UTT2, gz=True)
    with pytest.raises(InputError, match=r"num_jobs:1: num_jobs is 2 but .*lat\.3\.gz"):
        kaldi_lattice.read(d, words=tmp_path / "words.txt")
    (d / "lat.3.gz").unlink()
    (d / "lat.2.gz").unlink()
    with pytest.raises(InputError, match=r"lat\.2\.gz is missing"):
        kaldi_lattice.read(d, words=tmp_path / "words.txt")


def test_decode_dir_without_num_jobs(tmp_path):
    d = tmp_path / "decode"
    put(d / "lat.1.gz", UTT1, gz=True)
    put(d / "lat.3.gz", UTT2, gz=True)
    with pytest.raises(InputError, match=r"lat\.2\.gz is missing"):
        kaldi_lattice.read(d, words=words(tmp_path))
    put(d / "lat.2.gz", "", gz=True)
    assert kaldi_lattice.read(d, words=tmp_path / "words.txt").utt_ids == ["utt1", "utt2"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no lat.N.gz"):
        kaldi_lattice.read(tmp_path / "empty", words=tmp_path / "words.txt")
    with pytest.raises(InputError, match="not found"):
        kaldi_lattice.read(tmp_path / "nothing", words=tmp_path / "words.txt")


def test_empty_lattices_warned_and_counted(tmp_path, caplog):
    words(tmp_path)
    no_final = "utt3 \n0\t1\t17\n\n"
    empty_text = "utt0 \n\n"
    empty_bin = binary_entry("utt4", [], start=-1)
    data = empty_text.encode() + UTT1.encode() + no_final.encode() + empty_bin
    with caplog.at_level(logging.WARNING):
        nbs = kaldi_lattice.read(put(tmp_path / "lat", data))
    assert nbs.utt_ids == ["utt1"]
    empty = nbs.meta["source"]["empty_lattices"]
    assert empty == {"count": 3, "utts": ["utt0", "utt3", "utt4"]}
    assert nbs.meta["source"]["lattices"] == 4
    msgs = " ".join(r.getMessage() for r in caplog.records)
    assert "utt0 is empty" in msgs and "utt3 is empty" in msgs and "3 of 4 lattices were empty" in msgs


def test_missing_word_id_names_file_and_line(tmp_path):
    words(tmp_path)
    bad = UTT1.replace("1\t3\t18\t", "1\t3\t77\t")
    lat = put(tmp_path / "lat", UTT2 + bad)
    with pytest.raises(InputError) as e:
        kaldi_lattice.read(lat)
    assert f"{lat}:11:" in str(e.value) and "word id 77" in str(e.value) and "words.txt" in str(e.value)
    states = [(None, [(77, 77, ONE, 1)]), ((0.0, 0.0, []), [])]
    lat = put(tmp_path / "lat.bin", UTT2.encode() + binary_entry("utt9", states))
    at = len(UTT2) + len("utt9 ")  # the byte offset of the FST
    with pytest.raises(InputError, match=rf"lat\.bin: entry utt9 \(byte {at}\): word id 77"):
        kaldi_lattice.read(lat)


@pytest.mark.parametrize(
    "text, line, match",
    [
        (UTT1 + "utt1 \n0\t1\t17\n1\n\n", 9, "also at"),
        ("u \n0\t1\t17\t1,2\n1\n\n", 2, "'g,a,tids'"),  # 4 columns with a comma: a CompactLattice arc
        ("u \n0\t1\t17\t1,2,3\n1\t0.5,1\n\n", 3, "Lattice line in a CompactLattice"),
        ("u \n0\t1\t17\t1,x,\n\n", 2, "non-numeric"),
        ("u \n0\t1\t17\t1,2,3_a\n\n", 2, "transition ids"),
        ("u \n0\t1\t-3\n\n", 2, "not a non-negative integer"),
        ("u \n0 1 2 3 4 5\n\n", 2, "6 fields"),
        ("u \textra\n0\t1\t17\n\n", 1, "text after key"),
        ("u extra\n0\t1\t17\n\n", 1, "not a lattice"),
    ],
)
def test_bad_text_entries(tmp_path, text, line, match):
    words(tmp_path)
    lat = put(tmp_path / "lat", text)
    with pytest.raises(InputError, match=match) as e:
        kaldi_lattice.read(lat)
    assert f"{lat}:{line}:" in str(e.value)


def test_bad_binary_entries(tmp_path):
    words(tmp_path)
    good = encode_fst(UTT1_STATES)
    cases = {
        "truncated": (b"utt1 " + good[:-6], "ends inside"),
        "arc type": (b"utt1 " + good.replace(b"compactlattice44", b"compactlattice88"), "not a Kaldi lattice"),
        "fst type": (b"utt1 " + good.replace(b"vector", b"vecto2"), "not supported"),
        "kaldi object": (b"utt1 \0B\x04\x01\x00\x00\x00", "Kaldi binary object"),
    }
    for name, (data, match) in cases.items():
        with pytest.raises(InputError, match=match):
            kaldi_lattice.read(put(tmp_path / f"lat.{name}", data))


def test_bad_gzip(tmp_path):
    words(tmp_path)
    data = gzip.compress(UTT1.encode())[:-8]
    with pytest.raises(InputError, match="cannot decompress"):
        kaldi_lattice.read(put(tmp_path / "lat.gz", data))


def test_key_without_trailing_space_and_extra_blank_lines(tmp_path):
    words(tmp_path)
    text = "\n" + UTT1.replace("utt1 \n", "utt1\n") + "\n\n" + UTT2.rstrip("\n")  # last entry ends at EOF
    nbs = kaldi_lattice.read(put(tmp_path / "lat", text))
    assert nbs.utt_ids == ["utt1", "utt2"] and nbs.num_hyps == 4


def test_options_checked(tmp_path):
    words(tmp_path)
    lat = put(tmp_path / "lat", UTT1)
    with pytest.raises(ValueError):
        kaldi_lattice.read(lat, nbest=0)
    with pytest.raises(ValueError):
        kaldi_lattice.read(lat, acwt=-1)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def make_set(rows, acwt: float = 0.1, extra: dict | None = None, streams=("score", "graph_cost", "ac_cost")):
    """rows: (utt, rank, text, graph, ac); score = -(graph + acwt * ac) unless extra overrides."""
    names = list(streams) + list((extra or {}).keys())
    b = NbestBuilder(names)
    for n, (utt, rank, text, g, a) in enumerate(rows):
        vals = {"graph_cost": g, "ac_cost": a, "score": -(g + acwt * a)}
        for k, col in (extra or {}).items():
            vals[k] = col[n]
        b.add(utt, rank, text, {k: vals[k] for k in names})
    return b.build(meta={"acoustic_scale": acwt})


ROWS = [
    ("u1", 1, "A", 5.0, 610.0),
    ("u1", 2, "THE CAT SAT", 6.14, 607.51),
    ("u1", 3, "", 9.0, 600.0),
    ("u-2", 1, "THE BAT", 2.5, 20.0),
    ("u-2", 2, "SAT", 2.0, 30.0),
]


def test_text_form_line_by_line(tmp_path):
    nbs = make_set(ROWS)
    files = kaldi_lattice.write(nbs, tmp_path / "out", binary=False, new_table=True)
    assert sorted(p.name for p in files) == ["lat.1.gz", "num_jobs", "words.txt"]
    assert (tmp_path / "out/num_jobs").read_text() == "1\n"
    assert (tmp_path / "out/words.txt").read_text().splitlines() == [
        "<eps> 0", "A 1", "BAT 2", "CAT 3", "SAT 4", "THE 5", "#0 6", "<s> 7", "</s> 8"]
    lines = gzip.decompress((tmp_path / "out/lat.1.gz").read_bytes()).decode().split("\n")
    # docs/formats.md §2.2: 'key ' line, TAB-separated OpenFst lines (start state first, then states in id
    # order; a state's arcs, then its final weight), One weights omitted, 'g,a,' with an empty tid
    # list, and an empty line ending each entry. Paths best score first: A (-66), THE CAT SAT, ''.
    assert lines == [
        "u1 ",
        "0\t1\t1",
        "0\t2\t5",
        "0\t5\t0",  # the empty hypothesis: one epsilon arc
        "1\t5.0,610.0,",
        "2\t3\t3",
        "3\t4\t4",
        "4\t6.14,607.51,",
        "5\t9.0,600.0,",
        "",
        "u-2 ",
        "0\t1\t5",
        "0\t3\t4",
        "1\t2\t2",
        "2\t2.5,20.0,",
        "3\t2.0,30.0,",
        "",
        "",
    ]
    back = kaldi_lattice.read(tmp_path / "out")
    assert list(back.keys()) == list(nbs.keys()) and list(back.texts) == list(nbs.texts)
    for s in ("score", "graph_cost", "ac_cost"):  # the text form is exact
        assert back.streams[s].tolist() == nbs.streams[s].tolist()


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip(tmp_path, binary):
    nbs = make_set(ROWS)
    kaldi_lattice.write(nbs, tmp_path / "out", nj=2, binary=binary, new_table=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lat.1.gz", "lat.2.gz", "num_jobs", "words.txt"]
    back = kaldi_lattice.read(tmp_path / "out")
    assert back.utt_ids == nbs.utt_ids and list(back.keys()) == list(nbs.keys())
    assert list(back.texts) == list(nbs.texts)
    for s in ("score", "graph_cost", "ac_cost"):
        assert back.streams[s] == pytest.approx(nbs.streams[s], rel=1e-6)
    # a later write with fewer jobs leaves no stale lat.2.gz behind
    kaldi_lattice.write(nbs, tmp_path / "out", nj=1, binary=binary, new_table=True)
    assert not (tmp_path / "out/lat.2.gz").exists()
    assert kaldi_lattice.read(tmp_path / "out").num_hyps == nbs.num_hyps


@pytest.mark.parametrize("binary", [True, False])
def test_rescored_set_best_path_is_rescored_best(tmp_path, binary):
    """graph cost = original graph - (score - first_pass); acoustic unchanged (issue 5)."""
    nbs = make_set(ROWS)
    first = nbs.streams["score"].copy()
    bonus = np.array([-3.0, 2.0, 0.5, -1.0, 4.0])  # sum_k beta_k * stream_k + wip * words
    nbs.streams["first_pass"] = first
    nbs.streams["score"] = first + bonus
    graph, ac = kaldi_lattice.lattice_costs(nbs, 0.1)
    assert graph == pytest.approx(nbs.streams["graph_cost"] - bonus)
    assert ac.tolist() == nbs.streams["ac_cost"].tolist()
    kaldi_lattice.write(nbs, tmp_path / "out", binary=binary, new_table=True)
    back = kaldi_lattice.read(tmp_path / "out", acwt=0.1)
    best = nbs.best(nbs.streams["score"])
    # Kaldi's best path at LMWT = 1/acwt (lattice-best-path) is the rescored 1-best
    assert [back.texts[int(back.offsets[u])] for u in range(back.num_utts)] == [nbs.texts[int(i)] for i in best]
    got = {(back.utt_ids[u], back.texts[i]): back.streams["score"][i]
           for u in range(back.num_utts) for i in range(int(back.offsets[u]), int(back.offsets[u + 1]))}
    want = {(nbs.utt_ids[u], nbs.texts[i]): nbs.streams["score"][i]
            for u in range(nbs.num_utts) for i in range(int(nbs.offsets[u]), int(nbs.offsets[u + 1]))}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-3 if binary else 1e-9)


def test_set_without_acoustic_costs(tmp_path):
    """ESPnet-like: acoustic cost 0 and graph cost = -score."""
    b = NbestBuilder(["score"])
    b.add("e1", 1, "SAT ON", {"score": -4.25})
    b.add("e1", 2, "CAT", {"score": -1.5})
    nbs = b.build()
    kaldi_lattice.write(nbs, tmp_path / "out", binary=False, new_table=True)
    lines = gzip.decompress((tmp_path / "out/lat.1.gz").read_bytes()).decode().split("\n")
    assert lines[:7] == ["e1 ", "0\t1\t1", "0\t2\t3", "1\t1.5,0.0,", "2\t3\t2", "3\t4.25,0.0,", ""]
    back = kaldi_lattice.read(tmp_path / "out")
    assert list(back.texts) == ["CAT", "SAT ON"]
    assert back.streams["graph_cost"].tolist() == [1.5, 4.25] and back.streams["ac_cost"].tolist() == [0.0, 0.0]
    assert back.streams["score"].tolist() == [-1.5, -4.25]


def test_writer_words_table_and_errors(tmp_path):
    nbs = make_set([r for r in ROWS if r[0] == "u1"])
    table = words(tmp_path)
    kaldi_lattice.write(nbs, tmp_path / "out", words=table)
    assert (tmp_path / "out/words.txt").read_text() == WORDS_TXT
    back = kaldi_lattice.read(tmp_path / "out")
    assert list(back.texts) == list(nbs.texts)
    nbs2 = make_set([("x", 1, "DOG", 1.0, 1.0)])
    with pytest.raises(InputError, match="'DOG'"):
        kaldi_lattice.write(nbs2, tmp_path / "out2", words=table)
    with pytest.raises(ValueError, match="nj=3"):
        kaldi_lattice.write(nbs, tmp_path / "out3", nj=3, new_table=True)


def test_non_finite_scores_are_capped_and_warned(tmp_path, caplog):
    nbs = make_set(ROWS[:2])
    nbs.streams["score"][1] = -math.inf
    with caplog.at_level(logging.WARNING):
        kaldi_lattice.write(nbs, tmp_path / "out", binary=False, new_table=True)
    assert "non-finite" in caplog.text and "1e+10" in caplog.text
    text = gzip.decompress((tmp_path / "out/lat.1.gz").read_bytes()).decode()
    # Kaldi drops a path of infinite cost: a finite cost far above any real one keeps it, last
    assert "Infinity" not in text and "10000000000.0,607.51," in text
    back = kaldi_lattice.read(tmp_path / "out", nbest=10)
    assert back.num_hyps == nbs.num_hyps and back.streams["graph_cost"].max() == 1e10


# --------------------------------------------------------------------------------------------
# CLIs
# --------------------------------------------------------------------------------------------


def test_import_and_export_cli(tmp_path):
    d = tmp_path / "decode"
    put(d / "num_jobs", "1\n")
    put(d / "lat.1.gz", UTT1 + UTT2, gz=True)
    table = words(tmp_path)
    setdir = tmp_path / "set"
    argv = ["--format", "kaldi-lattice", "--words", str(table), "--nbest", "1", "--acwt", "10", str(d), str(setdir)]
    assert import_nbest.main(argv) == 0
    nbs = load_set(setdir)
    assert list(nbs.keys()) == ["utt1-1", "utt2-1"] and list(nbs.texts) == ["THE BAT SAT", "A BAT"]
    assert nbs.meta["acoustic_scale"] == 10
    out = tmp_path / "exported"
    assert export_nbest.main(["--format", "kaldi-lattice", "--binary", "false", "--nj", "2", str(setdir), str(out)]) == 0
    back = kaldi_lattice.read(out, acwt=10)
    assert list(back.texts) == list(nbs.texts)
    assert back.streams["score"].tolist() == pytest.approx(nbs.streams["score"].tolist())
    # a missing word id: exit code 1 with the file and line
    put(d / "lat.1.gz", UTT1.replace("\t17\t", "\t99\t"), gz=True)
    assert import_nbest.main(argv[:-1] + [str(tmp_path / "set2")]) == 1


def test_import_records_symbol_table_and_export_keeps_its_ids(tmp_path):
    table = words(tmp_path)
    nbs = kaldi_lattice.read(put(tmp_path / "lat", UTT1 + UTT2), nbest=3)
    assert nbs.meta["symbol_table"]["path"] == str(table.resolve())
    kaldi_lattice.write(nbs, tmp_path / "out", binary=False)  # no words=: the recorded table
    assert (tmp_path / "out" / "words.txt").read_text() == WORDS_TXT
    back = kaldi_lattice.read(tmp_path / "out", words=table, nbest=3)  # the recogniser's table reads it
    assert list(back.texts) == list(nbs.texts)
    del nbs.meta["symbol_table"]
    with pytest.raises(InputError, match="records no symbol table"):
        kaldi_lattice.write(nbs, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
