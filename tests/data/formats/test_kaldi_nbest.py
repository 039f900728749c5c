"""Tests of the Kaldi n-best archives importer/exporter (docs/formats.md §1.4, §1.5)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from rescore.data.formats import kaldi_nbest
from rescore.data.nbest import NbestBuilder
from rescore.exceptions import InputError, InvalidSetError

UTT = "2830-3980-0002"

# docs/formats.md §1.4 worked example, written exactly as Kaldi/awk write it (trailing spaces or not)
WORDS = f"{UTT}-1 4312 17 9021 \n{UTT}-2 4312 17 9021 6005 \n{UTT}-3 11 17 9021 \n"
WORDS_TEXT = f"{UTT}-1 THE CAT SAT \n{UTT}-2 THE CAT SAT ON \n{UTT}-3 A CAT SAT \n"
ALI = f"{UTT}-1 2 6 6 6 5 5 14 13 13 18 \n{UTT}-2 2 6 6 \n{UTT}-3 2 6 \n"
WITHLM = f"{UTT}-1 35.71286 \n{UTT}-2 41.90451 \n{UTT}-3 37.24002 \n"
NOLM = f"{UTT}-1 4.118202 \n{UTT}-2 5.02731 \n{UTT}-3 4.503318 \n"
ACWT = f"{UTT}-1 4122.391 \n{UTT}-2 4110.664 \n{UTT}-3 4119.027 \n"
LMONLY = f"{UTT}-1 31.5947\n{UTT}-2 36.8772\n{UTT}-3 32.7367\n"
WORDS_TXT = "<eps> 0\nA 11\nCAT 17\nTHE 4312\nON 6005\nSAT 9021\n#0 9022\n<s> 9023\n</s> 9024\n"


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def example(tmp_path: Path, words_text: bool | str = True, lmonly: bool = False, **overrides: str) -> Path:
    """The worked example as a one-job decode dir; ``overrides`` replace files (``lmwt_x`` = ``lmwt.x``).

    ``words_text`` is False (no words_text file), True (the example's) or the file's text.
    """
    d = tmp_path / "decode"
    files = {"words": WORDS, "ali": ALI, "lmwt.withlm": WITHLM, "lmwt.nolm": NOLM, "acwt": ACWT}
    if words_text:
        files["words_text"] = WORDS_TEXT if words_text is True else words_text
    if lmonly:
        files["lmwt.lmonly"] = LMONLY
    for name, text in overrides.items():
        files[name.replace("_", ".") if name.startswith("lmwt_") else name] = text
    for name, text in files.items():
        if text is not None:
            put(d / "archives.1" / name, text)
    return d


def job(d: Path, j: int, entries: list[tuple[str, str, float, float]]) -> None:
    """Write archives.j with words_text, lmwt.withlm and acwt for (key, text, graph, ac) entries."""
    a = d / f"archives.{j}"
    put(a / "words_text", "".join(f"{k} {t} \n" for k, t, _, _ in entries))
    put(a / "lmwt.withlm", "".join(f"{k} {g} \n" for k, _, g, _ in entries))
    put(a / "acwt", "".join(f"{k} {c} \n" for k, _, _, c in entries))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def test_worked_example_hand_checked(tmp_path):
    nbs = kaldi_nbest.read(example(tmp_path))
    assert nbs.utt_ids == [UTT]
    assert list(nbs.keys()) == [f"{UTT}-1", f"{UTT}-2", f"{UTT}-3"]
    assert list(nbs.texts) == ["THE CAT SAT", "THE CAT SAT ON", "A CAT SAT"]
    # score = -(graph + 0.1 * ac), by hand
    assert nbs.streams["score"].tolist() == pytest.approx([-447.95196, -452.97091, -449.14272], abs=1e-9)
    assert nbs.streams["graph_cost"].tolist() == [35.71286, 41.90451, 37.24002]
    assert nbs.streams["ac_cost"].tolist() == [4122.391, 4110.664, 4119.027]
    # lm_cost = withlm - nolm when there is no lmwt.lmonly
    assert nbs.streams["lm_cost"].tolist() == pytest.approx([31.594658, 36.87720, 32.736702], abs=1e-9)
    assert nbs.meta["acoustic_scale"] == 0.1
    assert nbs.meta["source"]["format"] == "kaldi-nbest"
    assert nbs.meta["source"]["options"]["acwt"] == 0.1
    assert nbs.meta["streams"]["ac_cost"]["better"] == "lower"
    assert nbs.meta["streams"]["graph_cost"]["better"] == "lower"
    assert nbs.meta["streams"]["lm_cost"]["better"] == "lower"
    assert nbs.meta["streams"]["score"]["better"] == "higher"
    # the best first-pass path is entry 1
    assert int(nbs.best(nbs.streams["score"])[0]) == 0


def test_acwt_option_and_lmonly(tmp_path):
    nbs = kaldi_nbest.read(example(tmp_path, lmonly=True), acwt=1 / 12)
    assert nbs.streams["score"][0] == pytest.approx(-(35.71286 + 4122.391 / 12), abs=1e-9)
    assert nbs.streams["lm_cost"].tolist() == [31.5947, 36.8772, 32.7367]  # awk %.6g values, as written
    assert nbs.meta["acoustic_scale"] == pytest.approx(1 / 12)


def test_single_archives_dir_and_refs(tmp_path):
    d = example(tmp_path)
    nbs = kaldi_nbest.read(d / "archives.1", refs={UTT: "THE CAT SAT"})
    assert nbs.num_hyps == 3 and nbs.refs == {UTT: "THE CAT SAT"}


def test_words_only_via_words_txt(tmp_path):
    d = example(tmp_path, words_text=False)
    table = put(tmp_path / "lang" / "words.txt", WORDS_TXT)
    nbs = kaldi_nbest.read(d, words=table)
    assert list(nbs.texts) == ["THE CAT SAT", "THE CAT SAT ON", "A CAT SAT"]
    assert nbs.meta["source"]["options"]["words"] == str(table)
    assert nbs.meta["source"]["text_from"] == "words"
    # without the option: error, unless the decode dir has its own words.txt
    with pytest.raises(InputError, match="words.txt"):
        kaldi_nbest.read(d)
    put(d / "words.txt", WORDS_TXT)
    assert list(kaldi_nbest.read(d).texts) == list(nbs.texts)


def test_keys_out_of_order_joined_by_key(tmp_path):
    rev = lambda s: "".join(reversed(s.splitlines(keepends=True)))  # noqa: E731
    d = example(
        tmp_path,
        lmwt_withlm=rev(WITHLM),
        acwt=f"{UTT}-2 4110.664\n{UTT}-3 4119.027 \n{UTT}-1 4122.391\n",
        lmwt_nolm=rev(NOLM),
    )
    nbs = kaldi_nbest.read(d)
    assert nbs.streams["score"].tolist() == pytest.approx([-447.95196, -452.97091, -449.14272], abs=1e-9)
    assert nbs.streams["lm_cost"][1] == pytest.approx(41.90451 - 5.02731, abs=1e-12)


def test_empty_hypothesis(tmp_path):
    text = WORDS_TEXT + f"{UTT}-4 \n{UTT}-5\n"
    withlm = WITHLM + f"{UTT}-4 50 \n{UTT}-5 51\n"
    ac = ACWT + f"{UTT}-4 4200 \n{UTT}-5 4201\n"
    nolm = NOLM + f"{UTT}-4 1 \n{UTT}-5 1\n"
    words = WORDS + f"{UTT}-4 \n{UTT}-5\n"
    nbs = kaldi_nbest.read(example(tmp_path, words_text=text, lmwt_withlm=withlm, acwt=ac, lmwt_nolm=nolm))
    assert nbs.texts[3] == "" and nbs.texts[4] == ""
    assert nbs.streams["score"][3] == pytest.approx(-470.0)
    d2 = example(tmp_path / "w", words_text=False, words=words, lmwt_withlm=withlm, acwt=ac, lmwt_nolm=nolm)
    put(d2 / "words.txt", WORDS_TXT)
    assert list(kaldi_nbest.read(d2).texts) == list(nbs.texts)


def test_kaldi_float_spellings_kept(tmp_path):
    withlm = f"{UTT}-1 1234567 \n{UTT}-2 1e+07 \n{UTT}-3 Infinity \n"
    ac = f"{UTT}-1 0 \n{UTT}-2 -Infinity \n{UTT}-3 BadNumber \n"
    nbs = kaldi_nbest.read(example(tmp_path, lmwt_withlm=withlm, acwt=ac))
    g, a, s = nbs.streams["graph_cost"], nbs.streams["ac_cost"], nbs.streams["score"]
    assert g[0] == 1234567.0 and g[1] == 1e7 and g[2] == math.inf
    assert a[1] == -math.inf and math.isnan(a[2])
    assert s[0] == -1234567.0 and s[1] == math.inf and math.isnan(s[2])
    assert nbs.num_hyps == 3  # nothing dropped


def test_dashed_utt_ids_and_rank_10_after_9(tmp_path):
    utt = "sw02001-A_000098-001156"
    d = tmp_path / "decode"
    # C-sorted key order: -1, -10, -2, ..., -9; the reader puts rank 10 last
    ranks = sorted(range(1, 11), key=str)
    job(d, 1, [(f"{utt}-{k}", f"w{k}", float(k), 100.0 + k) for k in ranks])
    nbs = kaldi_nbest.read(d)
    assert nbs.utt_ids == [utt]
    assert nbs.ranks.tolist() == list(range(1, 11))
    assert list(nbs.keys())[-1] == f"{utt}-10"
    assert nbs.texts[9] == "w10"
    assert nbs.streams["score"][9] == pytest.approx(-(10 + 0.1 * 110))
    assert "lm_cost" not in nbs.streams


def test_multi_job_with_num_jobs(tmp_path):
    d = tmp_path / "decode"
    put(d / "num_jobs", "2\n")
    job(d, 1, [("a-1", "x", 1, 10), ("a-2", "y", 2, 10), ("b-1", "z", 3, 10)])
    job(d, 2, [("c-2", "q", 5, 10), ("c-1", "p", 4, 10)])
    nbs = kaldi_nbest.read(d)
    assert nbs.utt_ids == ["a", "b", "c"]
    assert list(nbs.keys()) == ["a-1", "a-2", "b-1", "c-1", "c-2"]
    assert list(nbs.texts) == ["x", "y", "z", "p", "q"]
    assert nbs.meta["source"]["num_jobs"] == 2


def test_num_jobs_mismatch(tmp_path):
    d = tmp_path / "decode"
    put(d / "num_jobs", "2\n")
    job(d, 1, [("a-1", "x", 1, 10)])
    with pytest.raises(InputError, match=r"archives\.2 is missing"):
        kaldi_nbest.read(d)
    job(d, 2, [("b-1", "x", 1, 10)])
    job(d, 3, [("c-1", "x", 1, 10)])
    with pytest.raises(InputError, match=r"num_jobs:1: .*archives\.3"):
        kaldi_nbest.read(d)


def test_missing_job_without_num_jobs(tmp_path):
    d = tmp_path / "decode"
    job(d, 1, [("a-1", "x", 1, 10)])
    job(d, 3, [("c-1", "x", 1, 10)])
    with pytest.raises(InputError, match=r"archives\.2 is missing"):
        kaldi_nbest.read(d)
    with pytest.raises(InputError, match="no archives"):
        kaldi_nbest.read(put(tmp_path / "empty" / "x", "").parent)


def test_utterance_split_across_jobs(tmp_path):
    d = tmp_path / "decode"
    job(d, 1, [("a-1", "x", 1, 10)])
    job(d, 2, [("a-2", "y", 1, 10)])
    with pytest.raises(InputError, match=r"archives\.2/words_text:1: .*split across jobs"):
        kaldi_nbest.read(d)


def test_non_contiguous_utterance(tmp_path):
    d = tmp_path / "decode"
    job(d, 1, [("a-1", "x", 1, 10), ("b-1", "y", 1, 10), ("a-2", "z", 1, 10)])
    with pytest.raises(InputError, match=r"words_text:3: .*not contiguous.*line 1"):
        kaldi_nbest.read(d)


def test_rank_gap(tmp_path):
    d = tmp_path / "decode"
    job(d, 1, [("a-1", "x", 1, 10), ("a-3", "y", 1, 10)])
    with pytest.raises(InvalidSetError, match="gaps"):
        kaldi_nbest.read(d)


# --------------------------------------------------------------------------------------------
# Bad input: each error names the file (and line)
# --------------------------------------------------------------------------------------------


def test_missing_key_in_acwt(tmp_path):
    d = example(tmp_path, acwt=f"{UTT}-1 4122.391 \n{UTT}-3 4119.027 \n")
    with pytest.raises(InputError) as e:
        kaldi_nbest.read(d)
    assert "archives.1/acwt" in str(e.value) and f"{UTT}-2" in str(e.value)


def test_extra_key_in_withlm(tmp_path):
    d = example(tmp_path, lmwt_withlm=WITHLM + "other-1 3 \n")
    with pytest.raises(InputError, match=r"lmwt\.withlm:4: key other-1 is not in"):
        kaldi_nbest.read(d)


def test_duplicate_key(tmp_path):
    d = example(tmp_path, lmwt_nolm=NOLM + f"{UTT}-2 5 \n")
    with pytest.raises(InputError, match=r"lmwt\.nolm:4: duplicate key .*-2 \(also at line 2\)"):
        kaldi_nbest.read(d)
    d2 = example(tmp_path / "t", words_text=WORDS_TEXT + f"{UTT}-1 X \n")
    with pytest.raises(InputError, match=r"words_text:4: duplicate key"):
        kaldi_nbest.read(d2)


def test_non_numeric(tmp_path):
    d = example(tmp_path, acwt=f"{UTT}-1 4122.391 \n{UTT}-2 abc \n{UTT}-3 4119.027 \n")
    with pytest.raises(InputError, match=r"archives\.1/acwt:2: non-numeric"):
        kaldi_nbest.read(d)


def test_crlf(tmp_path):
    d = example(tmp_path, lmwt_withlm=WITHLM.replace("\n", "\r\n"))
    with pytest.raises(InputError, match=r"lmwt\.withlm:1: CRLF"):
        kaldi_nbest.read(d)


def test_bad_key(tmp_path):
    d = example(tmp_path, words_text=WORDS_TEXT + "nodash X\n")
    with pytest.raises(InputError, match=r"words_text:4: .*nodash"):
        kaldi_nbest.read(d)


def test_word_id_not_in_words_txt(tmp_path):
    d = example(tmp_path, words_text=False, words=WORDS + f"{UTT}-4 17 77777 \n")
    table = put(tmp_path / "words.txt", WORDS_TXT)
    with pytest.raises(InputError, match=r"archives\.1/words:4: word id 77777 is not in"):
        kaldi_nbest.read(d, words=table)
    d2 = example(tmp_path / "b", words_text=False, words=WORDS.replace("6005", "60x5"))
    with pytest.raises(InputError, match=r"archives\.1/words:2: .*not an integer"):
        kaldi_nbest.read(d2, words=table)


def test_malformed_words_txt(tmp_path):
    d = example(tmp_path, words_text=False)
    table = put(tmp_path / "words.txt", "<eps> 0\nA 11 extra\n")
    with pytest.raises(InputError, match=r"words\.txt:2: expected 'symbol id', got 3 fields"):
        kaldi_nbest.read(d, words=table)
    put(table, "<eps> 0\nA x\n")
    with pytest.raises(InputError, match=r"words\.txt:2: .*not a non-negative integer"):
        kaldi_nbest.read(d, words=table)
    put(table, "<eps> 0\nA 11\nB 11\n")
    with pytest.raises(InputError, match=r"words\.txt:3: duplicate id 11"):
        kaldi_nbest.read(d, words=table)


def test_missing_cost_file(tmp_path):
    d = example(tmp_path)
    (d / "archives.1" / "acwt").unlink()
    with pytest.raises(InputError, match=r"archives\.1/acwt: missing"):
        kaldi_nbest.read(d)


def test_lm_file_in_one_job_only(tmp_path):
    d = tmp_path / "decode"
    job(d, 1, [("a-1", "x", 1, 10)])
    job(d, 2, [("b-1", "y", 1, 10)])
    put(d / "archives.1" / "lmwt.nolm", "a-1 0.5 \n")
    with pytest.raises(InputError, match=r"archives\.2/lmwt\.nolm: missing"):
        kaldi_nbest.read(d)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def lines(path: Path) -> list[str]:
    data = path.read_bytes().decode("utf-8")
    assert data.endswith("\n") and "\r" not in data
    return data[:-1].split("\n")


def test_writer_text_line_by_line(tmp_path):
    nbs = kaldi_nbest.read(example(tmp_path))
    out = tmp_path / "out"
    files = kaldi_nbest.write(nbs, out, new_table=True)
    a = out / "archives.1"
    assert lines(out / "num_jobs") == ["1"]
    assert lines(out / "words.txt") == [
        "<eps> 0",
        "A 1",
        "CAT 2",
        "ON 3",
        "SAT 4",
        "THE 5",
        "#0 6",
        "<s> 7",
        "</s> 8",
    ]
    assert lines(a / "words_text") == [
        f"{UTT}-1 THE CAT SAT ",
        f"{UTT}-2 THE CAT SAT ON ",
        f"{UTT}-3 A CAT SAT ",
    ]
    assert lines(a / "words") == [f"{UTT}-1 5 2 4 ", f"{UTT}-2 5 2 4 3 ", f"{UTT}-3 1 2 4 "]
    assert lines(a / "ali") == [f"{UTT}-1 ", f"{UTT}-2 ", f"{UTT}-3 "]
    assert lines(a / "lmwt.withlm") == [f"{UTT}-1 35.71286 ", f"{UTT}-2 41.90451 ", f"{UTT}-3 37.24002 "]
    assert lines(a / "acwt") == [f"{UTT}-1 4122.391 ", f"{UTT}-2 4110.664 ", f"{UTT}-3 4119.027 "]
    lm = nbs.streams["lm_cost"]
    assert lines(a / "lmwt.lmonly") == [f"{UTT}-{k + 1} {float(lm[k])!r}" for k in range(3)]
    nolm = [float(x.split()[1]) for x in lines(a / "lmwt.nolm")]
    assert nolm == pytest.approx([4.118202, 5.02731, 4.503318], abs=1e-12)
    assert set(files) == {
        out / "num_jobs",
        out / "words.txt",
        *(a / n for n in ("words_text", "words", "ali", "lmwt.withlm", "acwt", "lmwt.nolm", "lmwt.lmonly")),
    }


def test_writer_key_order_ranks_and_empty_hyp(tmp_path):
    b = NbestBuilder(["score", "bert"])
    # ranks arrive out of order; utterances keep their set order (not sorted)
    b.add("z-utt", 2, "b", {"score": -2.0, "bert": 0.5})
    b.add("z-utt", 1, "", {"score": -1.0, "bert": math.inf})
    for k in [3, 1, 2, 10, 4, 5, 6, 7, 8, 9]:
        b.add("a-x-1", k, f"w{k}", {"score": -float(k), "bert": float("nan")})
    nbs = b.build()
    out = tmp_path / "out"
    kaldi_nbest.write(nbs, out, new_table=True)
    a = out / "archives.1"
    keys = [x.split(" ")[0] for x in lines(a / "words_text")]
    assert keys == ["z-utt-1", "z-utt-2", *[f"a-x-1-{k}" for k in range(1, 11)]]
    assert lines(a / "words_text")[:2] == ["z-utt-1 ", "z-utt-2 b "]
    assert lines(a / "words")[0] == "z-utt-1 "
    assert lines(a / "lmwt.withlm")[:2] == ["z-utt-1 1.0 ", "z-utt-2 2.0 "]  # graph = -score
    assert lines(a / "acwt")[:2] == ["z-utt-1 0.0 ", "z-utt-2 0.0 "]
    assert lines(a / "stream.bert")[:3] == ["z-utt-1 Infinity", "z-utt-2 0.5", "a-x-1-1 BadNumber"]
    assert not (a / "lmwt.nolm").exists()


def test_writer_given_words_txt(tmp_path):
    nbs = kaldi_nbest.read(example(tmp_path))
    table = put(tmp_path / "words.txt", WORDS_TXT)
    out = tmp_path / "out"
    kaldi_nbest.write(nbs, out, words=table)
    assert lines(out / "archives.1" / "words") == WORDS.rstrip("\n").split("\n")
    assert (out / "words.txt").read_text() == WORDS_TXT
    put(table, "<eps> 0\nTHE 1\nCAT 2\nSAT 3\n")
    with pytest.raises(InputError, match=r"word 'ON' \(hypothesis 2830-3980-0002-2\)"):
        kaldi_nbest.write(nbs, tmp_path / "out2", words=table)
    assert not (tmp_path / "out2").exists()  # nothing written


def test_writer_splits_jobs_and_cleans_stale(tmp_path):
    b = NbestBuilder(["score"])
    for u in range(5):
        for k in (1, 2):
            b.add(f"u{u}", k, f"t{u} {k}", {"score": -float(u + k)})
    nbs = b.build()
    out = tmp_path / "out"
    kaldi_nbest.write(nbs, out, nj=3, new_table=True)
    assert lines(out / "num_jobs") == ["3"]
    utts = [
        sorted({x.split()[0].rsplit("-", 1)[0] for x in lines(out / f"archives.{j}" / "ali")})
        for j in (1, 2, 3)
    ]
    assert utts == [["u0", "u1"], ["u2", "u3"], ["u4"]]
    back = kaldi_nbest.read(out)
    assert list(back.keys()) == list(nbs.keys())
    kaldi_nbest.write(nbs, out, nj=2, new_table=True)  # archives.3 is removed, so the dir reads back
    assert not (out / "archives.3").exists()
    assert list(kaldi_nbest.read(out).texts) == list(nbs.texts)
    with pytest.raises(ValueError, match="exceeds"):
        kaldi_nbest.write(nbs, out, nj=6, new_table=True)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def assert_same(a, b, streams=("score",)):
    assert a.utt_ids == b.utt_ids
    assert list(a.keys()) == list(b.keys())
    assert list(a.texts) == list(b.texts)
    for s in streams:
        np.testing.assert_allclose(b.streams[s], a.streams[s], rtol=0, atol=1e-9, equal_nan=True)


def test_round_trip_worked_example(tmp_path):
    a = kaldi_nbest.read(example(tmp_path, lmonly=True))
    kaldi_nbest.write(a, tmp_path / "out", new_table=True)
    b = kaldi_nbest.read(tmp_path / "out")
    assert_same(a, b, ("score", "ac_cost", "graph_cost", "lm_cost"))
    assert np.array_equal(a.streams["score"], b.streams["score"])  # exact, format_float is repr


def test_round_trip_unicode_empty_dashes_nonfinite(tmp_path):
    b = NbestBuilder(["score", "ac_cost", "graph_cost", "lm_cost", "bert"])
    b.add(
        "sw02001-A_000098-001156",
        1,
        "今日は 良い　天気",
        {"score": -1.5, "ac_cost": 10, "graph_cost": 0.5, "lm_cost": 0.25, "bert": -3.0},
    )
    b.add(
        "sw02001-A_000098-001156",
        2,
        "",
        {"score": -2.5, "ac_cost": 20, "graph_cost": 0.5, "lm_cost": 0.1, "bert": -math.inf},
    )
    b.add("x", 1, "ÄÖ ü", {"score": math.nan, "ac_cost": math.nan, "graph_cost": 1, "lm_cost": 1, "bert": 1})
    a = b.build(meta={"acoustic_scale": 0.1})
    out = tmp_path / "out"
    kaldi_nbest.write(a, out, new_table=True)
    assert lines(out / "archives.1" / "words_text")[0] == "sw02001-A_000098-001156-1 今日は 良い　天気 "
    back = kaldi_nbest.read(out)
    assert back.texts[0] == "今日は 良い　天気"  # U+3000 is not a separator
    assert_same(a, back, ("score", "ac_cost", "graph_cost", "lm_cost", "bert"))


def test_round_trip_without_costs(tmp_path):
    b = NbestBuilder(["score"])
    b.add("u1", 1, "a b", {"score": -10.25})
    b.add("u1", 2, "a", {"score": -11.0})
    b.add("u2", 1, "", {"score": -0.1})
    a = b.build()
    kaldi_nbest.write(a, tmp_path / "out", nj=2, new_table=True)
    back = kaldi_nbest.read(tmp_path / "out", acwt=0.3)
    assert_same(a, back)
    assert back.streams["ac_cost"].tolist() == [0.0, 0.0, 0.0]


def test_round_trip_after_score_change_adjusts_graph_cost(tmp_path, caplog):
    a = kaldi_nbest.read(example(tmp_path))
    a.streams["score"] = a.streams["score"].copy()
    a.streams["score"][1] += 7.5
    with caplog.at_level(logging.WARNING, logger="rescore"):
        kaldi_nbest.write(a, tmp_path / "out", new_table=True)
    assert "adjusted" in caplog.text and "1 of 3" in caplog.text
    b = kaldi_nbest.read(tmp_path / "out")
    assert_same(a, b)
    assert b.streams["graph_cost"][1] == pytest.approx(41.90451 - 7.5, abs=1e-9)
    assert b.streams["graph_cost"][0] == a.streams["graph_cost"][0]  # consistent ones untouched
    assert b.streams["lm_cost"].tolist() == a.streams["lm_cost"].tolist()  # old LM cost kept


def test_round_trip_uses_meta_acoustic_scale(tmp_path, caplog):
    a = kaldi_nbest.read(example(tmp_path), acwt=0.08)
    with caplog.at_level(logging.WARNING, logger="rescore"):
        kaldi_nbest.write(a, tmp_path / "out", new_table=True)  # acwt from meta: costs consistent, no adjustment
    assert "adjusted" not in caplog.text
    b = kaldi_nbest.read(tmp_path / "out", acwt=0.08)
    assert np.array_equal(a.streams["graph_cost"], b.streams["graph_cost"])
    assert_same(a, b)


def test_round_trip_score_changed_within_tolerance(tmp_path, caplog):
    a = kaldi_nbest.read(example(tmp_path))
    a.streams["score"] = a.streams["score"] * (1 + 1e-8)  # below the warning tolerance, still kept
    with caplog.at_level(logging.WARNING, logger="rescore"):
        kaldi_nbest.write(a, tmp_path / "out", new_table=True)
    assert "adjusted" not in caplog.text
    assert_same(a, kaldi_nbest.read(tmp_path / "out"))


# --------------------------------------------------------------------------------------------
# The recogniser's symbol table, and costs Kaldi can read
# --------------------------------------------------------------------------------------------


def test_import_records_symbol_table_and_export_reuses_it(tmp_path):
    table = put(tmp_path / "lang" / "words.txt", WORDS_TXT)
    nbs = kaldi_nbest.read(example(tmp_path, words_text=False), words=table)
    rec = nbs.meta["symbol_table"]
    assert rec["path"] == str(table.resolve()) and rec["symbols"] == 9 and len(rec["sha256"]) == 64
    kaldi_nbest.write(nbs, tmp_path / "out")  # no words=: the recorded table, never a new one
    assert lines(tmp_path / "out" / "archives.1" / "words") == WORDS.rstrip("\n").split("\n")
    assert (tmp_path / "out" / "words.txt").read_text() == WORDS_TXT


def test_export_refuses_without_a_usable_table(tmp_path):
    nbs = kaldi_nbest.read(example(tmp_path))  # words_text: no table known
    assert "symbol_table" not in nbs.meta
    with pytest.raises(InputError, match="records no symbol table.*--new_symbol_table"):
        kaldi_nbest.write(nbs, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    table = put(tmp_path / "lang" / "words.txt", WORDS_TXT)
    nbs = kaldi_nbest.read(example(tmp_path), words=table)
    put(table, WORDS_TXT.replace("SAT 9021", "SAT 9000"))  # the lang dir changed since the import
    with pytest.raises(InputError, match="changed since the set was imported"):
        kaldi_nbest.write(nbs, tmp_path / "out")
    table.unlink()
    with pytest.raises(InputError, match="no longer exists"):
        kaldi_nbest.write(nbs, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_lists_every_word_missing_from_the_table(tmp_path):
    nbs = kaldi_nbest.read(example(tmp_path))
    table = put(tmp_path / "small.txt", "<eps> 0\nTHE 1\nCAT 2\nSAT 3\n")
    with pytest.raises(InputError, match=r"2 word\(s\).*'ON'.*'A' \(hypothesis 2830-3980-0002-3\)"):
        kaldi_nbest.write(nbs, tmp_path / "out", words=table)


def test_nonfinite_costs_capped_for_kaldi_and_restored_on_read(tmp_path, caplog):
    b = NbestBuilder(["score", "ac_cost", "graph_cost", "lm_cost"])
    b.add("u1", 1, "a", {"score": -1.0, "ac_cost": 10.0, "graph_cost": 0.0, "lm_cost": 0.5})
    b.add("u1", 2, "b", {"score": -math.inf, "ac_cost": 20.0, "graph_cost": 1.0, "lm_cost": math.inf})
    b.add("u1", 3, "c", {"score": math.nan, "ac_cost": math.nan, "graph_cost": 1.0, "lm_cost": 1.0})
    a = b.build(meta={"acoustic_scale": 0.1})
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        kaldi_nbest.write(a, out, new_table=True)
    assert "2 of 3 hypotheses have a non-finite cost" in caplog.text
    for name in ("lmwt.withlm", "acwt", "lmwt.nolm", "lmwt.lmonly"):
        text = (out / "archives.1" / name).read_text()
        assert "Infinity" not in text and "BadNumber" not in text and "nan" not in text.lower(), name
    assert lines(out / "archives.1" / "lmwt.withlm")[1] == "u1-2 10000000000.0 "
    assert lines(out / "archives.1" / "nonfinite") == [
        "u1-2 lmwt.withlm Infinity", "u1-2 lmwt.lmonly Infinity", "u1-2 lmwt.nolm BadNumber",
        "u1-3 acwt BadNumber"]
    back = kaldi_nbest.read(out)
    assert_same(a, back, ("score", "ac_cost", "lm_cost"))
    assert back.streams["graph_cost"].tolist() == [0.0, math.inf, 1.0]  # the score wins (graph = -score - acwt * ac)
    # a finite rewrite leaves no stale nonfinite file behind
    a.streams["score"][1:] = [-2.0, -3.0]
    a.streams["ac_cost"][2] = 30.0
    a.streams["lm_cost"][1] = 0.25
    kaldi_nbest.write(a, out, new_table=True)
    assert not (out / "archives.1" / "nonfinite").exists()


def test_nonfinite_file_checked(tmp_path):
    d = example(tmp_path, nonfinite=f"{UTT}-9 acwt Infinity\n")
    with pytest.raises(InputError, match=r"nonfinite:1: key 2830-3980-0002-9 is not in"):
        kaldi_nbest.read(d)
    d = example(tmp_path, nonfinite=f"{UTT}-1 acwt 3.5\n")
    with pytest.raises(InputError, match="is finite"):
        kaldi_nbest.read(d)
