"""NeMo beams TSV importer: grouping by the manifest, beam size, score sign, ids and input errors."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from rescore.data.formats import module, nemo
from rescore.data.nbest import load_set, save_set
from rescore.exceptions import InputError

ROOT = "/data/LibriSpeech/dev-clean"
ENTRIES = [
    {"audio_filepath": f"{ROOT}/1272/128104/1272-128104-0000.flac", "duration": 5.855,
     "text": "mister quilter is the apostle of the middle classes"},
    {"audio_filepath": f"{ROOT}/1272/128104/1272-128104-0001.flac", "duration": 4.815,
     "text": "nor is mister quilter's manner less interesting"},
    {"audio_filepath": f"{ROOT}/1462/170138/1462-170138-0000.flac", "duration": 3.1, "text": ""},
]
IDS = ["1272-128104-0000", "1272-128104-0001", "1462-170138-0000"]
# beam size 2, descending scores within every utterance (the NeMo-bundled decoder's order)
BEAMS = [
    ("mister quilter is the apostle of the middle classes", -4.25),
    ("mister quilters is the apostle of the middle classes", -6.5),
    ("nor is mister quilter's manner less interesting", -3.0),
    ("nor is mister quilters manner less interesting", -3.0),
    ("", -1.5),
    ("he", -2.75),
]


def write_manifest(path, entries=ENTRIES):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    return path


def with_paths(entries, paths):
    return [dict(e, audio_filepath=p) for e, p in zip(entries, paths, strict=True)]


def write_beams(path, beams=BEAMS):
    path.write_text("".join(f"{t}\t{s}\n" for t, s in beams), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return (write_beams(tmp_path / "preds_out_size2_alpha1.0_beta0.5.tsv"),
            write_manifest(tmp_path / "dev_clean.json"))


def test_registry():
    assert module("nemo") is nemo


def test_three_utterances_beam2(files):
    beams, manifest = files
    nbs = nemo.read(beams, manifest=manifest, beam_size=2)
    assert nbs.utt_ids == IDS
    assert list(nbs.keys()) == [f"{u}-{k}" for u in IDS for k in (1, 2)]
    assert list(nbs.texts) == [t for t, _ in BEAMS]
    np.testing.assert_array_equal(nbs.streams["score"], [s for _, s in BEAMS])
    assert nbs.refs == {u: e["text"] for u, e in zip(IDS, ENTRIES, strict=True)}
    src = nbs.meta["source"]
    assert src["format"] == "nemo" and src["path"] == str(beams)
    assert src["options"]["beam_size"] == 2 and src["options"]["beam_size_inferred"] is False
    assert src["options"]["score_sign"] == "auto" and src["options"]["score_sign_used"] == "logprob"
    assert src["utt_ids_from"] == "audio_filepath basename"
    assert "log domain" in nbs.meta["streams"]["score"]["description"]
    assert nbs.meta["streams"]["score"]["better"] == "higher"
    np.testing.assert_array_equal(nbs.best(nbs.streams["score"]), [0, 2, 4])  # tie -> lower k


def test_beam_size_from_the_file_name_and_roundtrip(files, tmp_path):
    beams, manifest = files  # preds_out_size2_...: NeMo names its file by the beam width
    nbs = nemo.read(beams, manifest=manifest)
    assert nbs.meta["source"]["options"]["beam_size"] == 2
    assert nbs.meta["source"]["options"]["beam_size_inferred"] is True
    save_set(nbs, tmp_path / "set")
    back = load_set(tmp_path / "set")
    assert list(back.keys()) == list(nbs.keys()) and back.texts == nbs.texts and back.refs == nbs.refs
    np.testing.assert_array_equal(back.streams["score"], nbs.streams["score"])


def test_wrong_line_count(tmp_path, files):
    _, manifest = files
    beams = write_beams(tmp_path / "b.tsv", BEAMS[:5])
    with pytest.raises(InputError) as e:
        nemo.read(beams, manifest=manifest, beam_size=2)
    assert str(beams) in str(e.value) and "5 lines" in str(e.value) and "3 manifest entries" in str(e.value)
    assert "= 6" in str(e.value)
    with pytest.raises(InputError) as e:
        nemo.read(beams, manifest=manifest)
    assert "5 lines" in str(e.value) and "3 manifest entries" in str(e.value) and "beam_size" in str(e.value)
    with pytest.raises(InputError, match="3 manifest entries"):
        nemo.read(files[0], manifest=manifest, beam_size=3)


@pytest.mark.parametrize("sign", ["logprob", "auto"])
def test_uneven_beams_are_never_regrouped(tmp_path, files, sign):
    # 4, 4 and 1 beams (NeMo writes fewer than the width when the search finds fewer): 9 lines for
    # 3 utterances divide into 3 + 3 + 3, which would move hypotheses to other utterances
    _, manifest = files
    rows = [(f"a{k}", -k) for k in range(4)] + [(f"b{k}", -k) for k in range(4)] + [("c", -1.0)]
    beams = write_beams(tmp_path / "beams.tsv", rows)
    with pytest.raises(InputError, match=r"beams.tsv: 9 lines for 3 manifest entries.*never inferred"):
        nemo.read(beams, manifest=manifest, score_sign=sign)
    named = write_beams(tmp_path / "preds_out_width4_alpha1.0_beta0.0.tsv", rows)
    with pytest.raises(InputError, match=r"width4_alpha1.0_beta0.0.tsv:9: the file ends after 9 lines, but beam "
                                         r"size 4 \(from the beam width in the file name\) x 3 .* = 12 \(some"):
        nemo.read(named, manifest=manifest, score_sign=sign)


def test_cost_ordered_is_negated(tmp_path, files, caplog):
    _, manifest = files
    costs = [(t, -s) for t, s in BEAMS]
    costs[4], costs[5] = ("", 1.5), ("he", 2.75)  # ascending within every utterance
    beams = write_beams(tmp_path / "preds_out_width2_alpha0.5_beta1.0.cost.tsv", costs)
    with caplog.at_level(logging.WARNING, logger="rescore"):
        nbs = nemo.read(beams, manifest=manifest)
    assert "negated" in caplog.text
    np.testing.assert_array_equal(nbs.streams["score"], [-4.25, -6.5, -3.0, -3.0, -1.5, -2.75])
    assert nbs.meta["source"]["options"]["score_sign_used"] == "cost"
    assert "cost and negated" in nbs.meta["streams"]["score"]["description"]
    # an explicit sign overrides the check
    nbs = nemo.read(beams, manifest=manifest, score_sign="logprob")
    np.testing.assert_array_equal(nbs.streams["score"], [s for _, s in costs])
    nbs = nemo.read(files[0], manifest=manifest, score_sign="cost")
    np.testing.assert_array_equal(nbs.streams["score"], [-s for _, s in BEAMS])


def test_mixed_order_is_an_error(tmp_path, files):
    _, manifest = files
    mixed = list(BEAMS)
    mixed[4], mixed[5] = ("", -2.75), ("he", -1.5)  # third utterance ascending, first descending
    beams = write_beams(tmp_path / "preds_out_width2_mixed.tsv", mixed)
    with pytest.raises(InputError) as e:
        nemo.read(beams, manifest=manifest)
    msg = str(e.value)
    assert str(beams) in msg and "score_sign" in msg and "1462-170138-0000 (lines 5-6)" in msg
    assert "1 descending, 1 ascending, 1 constant" in msg
    nbs = nemo.read(beams, manifest=manifest, score_sign="logprob")  # e.g. rescorer output
    assert nbs.streams["score"][5] == -1.5
    with pytest.raises(ValueError, match="score_sign"):
        nemo.read(beams, manifest=manifest, score_sign="prob")


def test_all_constant_and_nan_scores_are_logprob(tmp_path, files):
    _, manifest = files
    beams = write_beams(tmp_path / "preds_out_width2_c.tsv", [("a", -1.0), ("b", -1.0), ("c", float("nan")), ("d", -2.0),
                                             ("e", float("-inf")), ("f", float("-inf"))])
    nbs = nemo.read(beams, manifest=manifest)
    assert nbs.meta["source"]["options"]["score_sign_used"] == "logprob"
    assert math.isnan(nbs.streams["score"][2]) and nbs.streams["score"][4] == -math.inf


def test_nan_is_empty(tmp_path, files, caplog):
    _, manifest = files
    rows = list(BEAMS)
    rows[4] = ("nan", -1.5)  # how pandas writes an empty hypothesis back
    beams = write_beams(tmp_path / "preds_out_width2_scores.tsv", rows)
    assert nemo.read(beams, manifest=manifest).texts[4] == "nan"
    with caplog.at_level(logging.INFO, logger="rescore"):
        nbs = nemo.read(beams, manifest=manifest, nan_is_empty=True)
    assert nbs.texts[4] == "" and nbs.texts[5] == "he"
    assert "1 hypothesis text(s) 'nan' taken as empty" in caplog.text
    assert nbs.meta["source"]["options"]["nan_is_empty"] is True


def test_quotes_tabs_and_duplicates(tmp_path, files, caplog):
    _, manifest = files
    rows = list(BEAMS)
    rows[0] = ('he said "mister quilter', -4.25)
    rows[1] = ('he said "mister quilter', -6.5)  # a duplicate text is its own entry
    rows[2] = ("nor is\tmister", -3.0)  # a tab inside the text: split at the last tab
    beams = write_beams(tmp_path / "preds_out_width2_q.tsv", rows)
    with caplog.at_level(logging.INFO, logger="rescore"):
        nbs = nemo.read(beams, manifest=manifest)
    assert nbs.texts[0] == nbs.texts[1] == 'he said "mister quilter'
    assert nbs.texts[2] == "nor is mister"
    assert nbs.num_hyps == 6
    assert "1 duplicate hypothesis text(s)" in caplog.text


def test_bad_lines(tmp_path, files):
    _, manifest = files
    beams = write_beams(tmp_path / "bad.tsv", BEAMS[:3] + [("x", "-1.2.3")] + BEAMS[4:])
    with pytest.raises(InputError, match=rf"{beams}:4: non-numeric score '-1.2.3'"):
        nemo.read(beams, manifest=manifest)
    beams.write_text("a\t-1\nno tab here -2\n")
    with pytest.raises(InputError, match=rf"{beams}:2: no tab"):
        nemo.read(beams, manifest=manifest)
    beams.write_text("a\t-1\n\n")
    with pytest.raises(InputError, match=rf"{beams}:2: no tab"):
        nemo.read(beams, manifest=manifest)
    beams.write_bytes(b"a\t-1\n\xff\t-2\n")
    with pytest.raises(InputError, match=rf"{beams}:2: invalid UTF-8"):
        nemo.read(beams, manifest=manifest)


def test_utt_ids_from_field_and_colliding_basenames(tmp_path, files):
    beams, _ = files
    entries = [dict(e, utt=f"spk1-utt{i}") for i, e in enumerate(ENTRIES)]
    manifest = write_manifest(tmp_path / "m.json", entries)
    nbs = nemo.read(beams, manifest=manifest, utt_id_field="utt")
    assert nbs.utt_ids == ["spk1-utt0", "spk1-utt1", "spk1-utt2"]
    assert nbs.meta["source"]["utt_ids_from"] == "field utt"
    with pytest.raises(InputError, match=rf"{manifest}:1: no string field 'nope'"):
        nemo.read(beams, manifest=manifest, utt_id_field="nope")
    # same basename in two directories: path relative to the common directory
    paths = ["/corpus/a/x.wav", "/corpus/b/x.wav", "/corpus/b/sub/y.wav"]
    manifest = write_manifest(tmp_path / "m2.json", with_paths(ENTRIES, paths))
    nbs = nemo.read(beams, manifest=manifest)
    assert nbs.utt_ids == ["a_x", "b_x", "b_sub_y"]
    assert nbs.meta["source"]["utt_ids_from"] == "audio_filepath relative to the common directory"
    # the same file twice: an error listing the duplicate and its lines
    paths = ["/corpus/a/x.wav", "/corpus/a/x.wav", "/corpus/b/y.wav"]
    manifest = write_manifest(tmp_path / "m3.json", with_paths(ENTRIES, paths))
    with pytest.raises(InputError, match=r"duplicate utterance id.*a_x \(lines 1, 2\).*utt_id_field"):
        nemo.read(beams, manifest=manifest)
    entries = [dict(e, utt="same") for e in ENTRIES]
    manifest = write_manifest(tmp_path / "m4.json", entries)
    with pytest.raises(InputError, match=r"same \(lines 1, 2, 3\)"):
        nemo.read(beams, manifest=manifest, utt_id_field="utt")
    spaced = with_paths(ENTRIES, ["/a/x y.wav", "/a/z.wav", "/a/w.wav"])
    manifest = write_manifest(tmp_path / "m5.json", spaced)
    with pytest.raises(InputError, match=rf"{manifest}:1: utterance id 'x y'.*whitespace"):
        nemo.read(beams, manifest=manifest)


def test_refs_and_manifest_errors(tmp_path, files):
    beams, manifest = files
    refs = {u: "ref" for u in IDS}
    assert nemo.read(beams, manifest=manifest, refs=refs).refs == refs
    no_text = write_manifest(tmp_path / "nt.json", [{k: v for k, v in e.items() if k != "text"}
                                                     for e in ENTRIES])
    assert nemo.read(beams, manifest=no_text).refs is None
    partial = write_manifest(tmp_path / "pt.json", [ENTRIES[0], {"audio_filepath": "/x/q.wav"}, ENTRIES[2]])
    with pytest.raises(InputError, match=rf"{partial}:2: no string 'text'"):
        nemo.read(beams, manifest=partial)
    with pytest.raises(InputError, match="pass manifest"):
        nemo.read(beams)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(ENTRIES[0]) + "\n{oops\n")
    with pytest.raises(InputError, match=rf"{bad}:2: invalid JSON"):
        nemo.read(beams, manifest=bad)
    nofile = write_manifest(tmp_path / "nf.json", [{"duration": 1.0, "text": "a"}] * 3)
    with pytest.raises(InputError, match=rf"{nofile}:1: no string field 'audio_filepath'"):
        nemo.read(beams, manifest=nofile)

