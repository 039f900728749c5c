from rescore.bin import import_nbest, validate
from tests.conftest import make_setdir, write


def test_validate_ok_after_import(small_set, tmp_path, capsys):
    out = tmp_path / "copy"
    assert import_nbest.main(["--format", "setdir", str(small_set), str(out)]) == 0
    assert validate.main([str(out)]) == 0
    assert "OK, 2 utterances, 5 hypotheses" in capsys.readouterr().out


def test_validate_reports_every_error_and_fails(tmp_path, capsys):
    d = make_setdir(tmp_path / "s", {"u": [("a", 0.0), ("b", 1.0)]})
    write(d / "nbest" / "score", "u-1 0\nu-2 x\n")
    write(d / "nbest" / "lm", "u-1 0\n")
    assert validate.main([str(d)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {d}/nbest/score:2: non-numeric value 'x'" in out
    assert f"ERROR {d}/nbest/lm: 1 key(s) of nbest/text missing: u-2" in out


def test_validate_warns_on_non_finite_and_unlisted_streams(tmp_path, capsys):
    d = make_setdir(tmp_path / "s", {"u": [("a", 0.0), ("b", 1.0)]})
    write(d / "nbest" / "score", "u-1 -Infinity\nu-2 BadNumber\n")
    assert validate.main([str(d)]) == 0
    out = capsys.readouterr().out
    assert "WARNING stream score: 2 non-finite value(s) (kept, ranked last): u-1, u-2" in out
    assert "meta.yaml: missing or without counts" in out


def test_validate_meta_counts_must_match(small_set, tmp_path, capsys):
    out = tmp_path / "copy"
    import_nbest.main(["--format", "setdir", str(small_set), str(out)])
    with open(out / "nbest" / "text", "a") as f:
        f.write("spk2-u2-3 extra\n")
    with open(out / "nbest" / "score", "a") as f:
        f.write("spk2-u2-3 -9\n")
    with open(out / "nbest" / "errors", "a") as f:
        f.write("spk2-u2-3 1\n")
    assert validate.main([str(out)]) == 1
    assert "counts" in capsys.readouterr().out
