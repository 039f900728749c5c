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
    ref = write(tmp_path / "ref", "u1 a\nu1 b\n")
    hyp = write(tmp_path / "hyp", "u1 a\n")
    assert compute_wer.main([str(ref), str(hyp)]) == 1
    assert f"{ref}:2: duplicate key 'u1'" in capsys.readouterr().err
