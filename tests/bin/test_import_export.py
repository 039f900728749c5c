import json

from rescore.bin import export_nbest, import_nbest
from rescore.data.nbest import load_set
from tests.conftest import make_setdir, write


def test_setdir_import_normalises_order_and_records_meta(tmp_path):
    src = tmp_path / "src"
    write(src / "nbest" / "text", "b-2 y\nb-1 x\na-1 z\n")
    write(src / "nbest" / "score", "a-1 0\nb-1 -1\nb-2 -2\n")
    write(src / "text", "b x\na z\n")
    out = tmp_path / "out"
    assert import_nbest.main(["--format", "setdir", str(src), str(out)]) == 0
    assert (out / "nbest" / "text").read_text() == "a-1 z\nb-1 x\nb-2 y\n"
    assert (out / "text").read_text() == "a z\nb x\n"
    nbs = load_set(out)
    assert nbs.meta["source"]["format"] == "setdir"
    assert nbs.meta["created_by"]["command"].startswith("python -m rescore.bin.import_nbest --format setdir")
    assert nbs.meta["counts"]["hyps"] == 3 and nbs.meta["language"] == "en"
    assert nbs.streams["errors"].tolist() == [0, 0, 1]


def test_import_skips_when_done_and_redoes_on_changed_input(tmp_path, caplog, small_set):
    out = tmp_path / "out"
    args = ["--format", "setdir", str(small_set), str(out)]
    assert import_nbest.main(args) == 0
    first = (out / "nbest" / "text").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level("INFO", logger="rescore"):
        assert import_nbest.main(args) == 0
    assert any("skip" in r.message for r in caplog.records)
    assert (out / "nbest" / "text").stat().st_mtime_ns == first
    with open(small_set / "nbest" / "score", "w") as f:
        f.write("spk1-u1-1 0\nspk1-u1-2 -1\nspk1-u1-3 -2\nspk2-u2-1 0\nspk2-u2-2 -1\n")
    assert import_nbest.main(args) == 0
    assert load_set(out).streams["score"].tolist() == [0, -1, -2, 0, -1]
    assert import_nbest.main([*args[:-2], "--overwrite", "true", *args[-2:]]) == 0


def test_import_bad_input_exits_nonzero_with_location(tmp_path, capsys):
    src = make_setdir(tmp_path / "src", {"u": [("a", 0.0)]})
    write(src / "nbest" / "score", "u-1 zero\n")
    assert import_nbest.main(["--format", "setdir", str(src), str(tmp_path / "out")]) == 1
    assert f"{src}/nbest/score:1: non-numeric value 'zero'" in capsys.readouterr().err
    assert not (tmp_path / "out" / ".done").exists()


def test_import_rejects_options_of_other_formats(small_set, tmp_path, capsys):
    assert import_nbest.main(["--format", "setdir", "--acwt", "0.1", str(small_set), str(tmp_path / "o")]) == 1
    assert "import_nbest: error: --acwt does not apply to --format setdir" in capsys.readouterr().err


def test_import_japanese_defaults_to_csj_cer(tmp_path, capsys):
    src = make_setdir(tmp_path / "src", {"A01_0001_0002": [("えーそれでは始まります", -1.0)]},
                      refs={"A01_0001_0002": "えー+感動詞 それ+代名詞 で+助動詞 は+助詞 <sp> 始め+動詞 ます+助動詞"})
    out = tmp_path / "out"
    assert import_nbest.main(["--format", "setdir", "--lang", "ja", str(src), str(out)]) == 0
    nbs = load_set(out)
    assert (nbs.meta["metric"], nbs.meta["normalization"]) == ("cer", "csj,bracket")
    assert nbs.streams["errors"].tolist() == [2.0]


def test_export_setdir_and_trn_via_cli(small_set, tmp_path):
    assert export_nbest.main(["--format", "setdir", str(small_set), str(tmp_path / "copy")]) == 0
    assert load_set(tmp_path / "copy").num_hyps == 5
    assert export_nbest.main(["--format", "setdir", "--nj", "2", str(small_set), str(tmp_path / "x")]) == 1


def test_export_mlm_json_cli(small_set, tmp_path):
    out = tmp_path / "dev.am.json"
    assert export_nbest.main(["--format", "mlm-json", str(small_set), str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["spk2-u2"]["hyp_2"] == {"score": -4.0, "text": "hello word"}
