from rescore.bin import compute_wer
from tests.conftest import write


def test_compute_wer_prints_kaldi_lines(tmp_path, capsys):
    ref = write(tmp_path / "ref", "u1 THE CAT SAT\nu2 a b\nu3 x\n")
    hyp = write(tmp_path / "hyp", "u1 THE BAT A SAT\nu2 b a\n")
    assert compute_wer.main([str(ref), f"ark:{hyp}"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "%WER 80.00 [ 4 / 5, 2 ins, 1 del, 1 sub ] [PARTIAL]",
        "%SER 100.00 [ 2 / 2 ]",
        "Scored 2 sentences, 1 not present in hyp.",
    ]
    assert compute_wer.main(["--mode", "all", str(ref), str(hyp)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "%WER 83.33 [ 5 / 6, 2 ins, 2 del, 1 sub ] [PARTIAL]"
    assert compute_wer.main(["--mode", "strict", str(ref), str(hyp)]) == 1
    assert "no hypothesis for key u3" in capsys.readouterr().err


def test_compute_wer_cer_and_norm(tmp_path, capsys):
    ref = write(tmp_path / "ref", "u1 Hello, World\n")
    hyp = write(tmp_path / "hyp", "u1 hello word\n")
    assert compute_wer.main(["--norm", "lower,punct", str(ref), str(hyp)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "%WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ]"
    assert compute_wer.main(["--cer", "--norm", "lower,punct", str(ref), str(hyp)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "%WER 10.00 [ 1 / 10, 0 ins, 1 del, 0 sub ]"


def test_compute_wer_bad_input_names_file_and_line(tmp_path, capsys):
    ref = tmp_path / "ref"
    ref.write_bytes(b"u1 a\nu2 b\xff\n")
    hyp = write(tmp_path / "hyp", "u1 a\n")
    assert compute_wer.main([str(ref), str(hyp)]) == 1
    assert f"{ref}:2: invalid UTF-8" in capsys.readouterr().err


def test_repeated_keys_as_kaldi(tmp_path, capsys, caplog):
    # compute-wer reads REF sequentially (each line scored) and HYP by key (a repeated key is fatal)
    ref = write(tmp_path / "ref", "u1 a b c\nu2 a b\nu1 x y\n")
    hyp = write(tmp_path / "hyp", "u1 a b c\nu2 a\n")
    assert compute_wer.main([str(ref), str(hyp)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "%WER 57.14 [ 4 / 7, 1 ins, 1 del, 2 sub ]", "%SER 66.67 [ 2 / 3 ]", "Scored 3 sentences, 0 not present in hyp."]
    assert f"{ref}: 1 repeated key(s)" in caplog.text and "u1 (lines 1 and 3)" in caplog.text
    hyp = write(tmp_path / "hyp", "u1 a b c\nu2 a\nu2 a b\n")
    assert compute_wer.main([str(ref), str(hyp)]) == 1
    assert f"{hyp}:3: duplicate key 'u2'" in capsys.readouterr().err


def test_rspecifiers(tmp_path, capsys, monkeypatch):
    import gzip
    import io

    ref = write(tmp_path / "ref", "u1 a b\n")
    (tmp_path / "hyp.gz").write_bytes(gzip.compress(b"u1 a c\n"))
    want = "%WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ]"
    for spec in (f"ark,s,cs:{ref}", f"ark,t:{ref}", f"ark:cat {ref} |"):
        assert compute_wer.main([spec, f"ark:gunzip -c {tmp_path / 'hyp.gz'} |"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == want
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"u1 a c\n")))
    assert compute_wer.main([str(ref), "ark:-"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == want
    for spec, msg in ((f"scp:{ref}", "scp: rspecifiers"), (f"ark,zz:{ref}", "unknown rspecifier option(s) zz"),
                      ("ark:false |", "the command failed (exit code 1)"), (f"ark:{ref}:12", "byte offsets"),
                      (f"ark:| cat {ref}", "output pipe"), (f"ark:{tmp_path}/nothing", "not found")):
        assert compute_wer.main([spec, str(ref)]) == 1, spec
        assert msg in capsys.readouterr().err, spec


def test_cer_is_a_kaldi_boolean_and_still_works_bare(tmp_path, capsys):
    ref = tmp_path / "ref"
    hyp = tmp_path / "hyp"
    ref.write_text("u1 abc de\n", encoding="utf-8")
    hyp.write_text("u1 abd de\n", encoding="utf-8")
    outs = {}
    for flags in ([], ["--cer", "false"], ["--cer"], ["--cer", "true"]):
        assert compute_wer.main([*flags, str(ref), str(hyp)]) == 0
        outs[" ".join(flags)] = capsys.readouterr().out.splitlines()[0]
    assert outs[""] == outs["--cer false"] and outs["--cer"] == outs["--cer true"]
    assert outs[""] != outs["--cer"]  # words: 1 of 2 wrong; characters: 1 of 5
