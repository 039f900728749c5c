"""Every format-specific flag of import_nbest / export_nbest, exercised through main([...])."""

import json

import pytest

from rescore.bin import export_nbest, import_nbest
from rescore.data.nbest import load_set
from tests.conftest import write


def imp(*args):
    return import_nbest.main(["--verbose", "0", *map(str, args)])


def exp(*args):
    return export_nbest.main(["--verbose", "0", *map(str, args)])


def test_kaldi_nbest_flags(tmp_path, small_set):
    dec = tmp_path / "decode"
    words = write(tmp_path / "words.txt", "<eps> 0\n" + "".join(
        f"{w} {i}\n" for i, w in enumerate(["a", "cat", "hello", "on", "sat", "the", "word", "world"], 1)))
    assert exp("--format", "kaldi-nbest", "--nj", 2, "--words", words, "--acwt", 0.1, small_set, dec) == 0
    assert (dec / "num_jobs").read_text() == "2\n"
    (dec / "archives.1" / "words_text").unlink()
    (dec / "archives.2" / "words_text").unlink()
    out = tmp_path / "set"
    assert imp("--format", "kaldi-nbest", "--acwt", 0.1, "--words", words, "--text", small_set / "text",
               dec, out) == 0
    nbs = load_set(out)
    assert nbs.meta["acoustic_scale"] == 0.1 and nbs.num_hyps == 5
    assert nbs.texts[0] == "the cat sat"


def test_espnet_flags(tmp_path, small_set):
    dec = tmp_path / "decode"
    assert exp("--format", "espnet", "--score_style", "float", "--order", "rank", small_set, dec) == 0
    assert (dec / "logdir/output.1/2best_recog/score").read_text().splitlines()[0] == "spk1-u1 -9.0"
    tok = dec / "logdir/output.1"
    for n in (1, 2, 3):
        (tok / f"{n}best_recog/text").rename(tok / f"{n}best_recog/token")
    out = tmp_path / "set"
    assert imp("--format", "espnet", "--field", "token", "--text", small_set / "text", dec, out) == 0
    assert load_set(out).streams["score"].tolist() == [-10.0, -9.0, -12.5, -3.0, -4.0]
    assert exp("--format", "espnet", "--score_style", "float", small_set, tmp_path / "by_score") == 0  # default
    assert (tmp_path / "by_score/logdir/output.1/1best_recog/score").read_text().splitlines()[0] == "spk1-u1 -9.0"


def test_mlm_json_flags(tmp_path, small_set):
    am = tmp_path / "dev.am.json"
    assert exp("--format", "mlm-json", "--include_ref", "false", small_set, am) == 0
    data = json.loads(am.read_text())
    assert "ref" not in data["spk1-u1"]
    del data["spk1-u1"]["hyp_3"]["score"]
    am.write_text(json.dumps(data))
    assert imp("--format", "mlm-json", am, tmp_path / "x") == 1
    assert imp("--format", "mlm-json", "--missing_score", "zero", am, tmp_path / "y") == 0
    assert load_set(tmp_path / "y").streams["score"].tolist()[2] == 0.0


def test_hypr_flags(tmp_path):
    rec = {"utt_id": "1272-128104-0000", "ref": "a b", "hyps": ["a b", "a c"], "att_score": [-1.0, -2.0],
           "ctc_score": [-3.0, -4.0], "score": [-2.0, -3.0]}
    d = tmp_path / "hypr"
    write(d / "dev_clean.jsonl", json.dumps(rec) + "\n")
    write(d / "test_clean.jsonl", json.dumps(dict(rec, utt_id="other")) + "\n")
    out = tmp_path / "set"
    assert imp("--format", "hypr", "--pattern", "dev_clean*", d, out) == 0
    nbs = load_set(out)
    assert nbs.utt_ids == ["1272-128104-0000"] and set(nbs.streams) >= {"att_score", "ctc_score", "errors"}


def test_nemo_flags(tmp_path):
    manifest = write(tmp_path / "m.json", "".join(json.dumps({"audio_filepath": f"/x/{u}.wav", "text": t, "id": u})
                                                   + "\n" for u, t in [("u1", "a b"), ("u2", "c")]))
    beams = write(tmp_path / "beams.tsv", "a b\t1.0\na\t2.0\nnan\t0.5\nc\t0.7\n")
    out = tmp_path / "set"
    assert imp("--format", "nemo", "--manifest", manifest, "--beam_size", 2, "--score_sign", "cost",
               "--nan_is_empty", "true", "--utt_id_field", "id", beams, out) == 0
    nbs = load_set(out)
    assert nbs.utt_ids == ["u1", "u2"] and nbs.streams["score"].tolist() == [-1.0, -2.0, -0.5, -0.7]
    assert nbs.texts[2] == ""


def test_trn_flags(tmp_path, small_set):
    utt2spk = write(tmp_path / "utt2spk", "spk1-u1 spk1\nspk2-u2 spk2\n")
    out = tmp_path / "trn"
    assert exp("--format", "trn", "--utt2spk", utt2spk, "--stream", "score", "--norm", "lower", small_set, out) == 0
    assert (out / "hyp.trn").read_text() == "the cat sat on\t(spk1-spk1-u1)\nhello world\t(spk2-spk2-u2)\n"
    assert (out / "ref.trn").read_text().splitlines()[0] == "the cat sat\t(spk1-spk1-u1)"


@pytest.mark.parametrize("flag,value", [("--words", "w.txt"), ("--manifest", "m.json"), ("--field", "token")])
def test_flags_of_other_formats_are_rejected(tmp_path, small_set, flag, value, capsys):
    assert imp("--format", "mlm-json", flag, value, small_set, tmp_path / "o") == 1
    assert f"import_nbest: error: {flag} does not apply to --format mlm-json" in capsys.readouterr().err
