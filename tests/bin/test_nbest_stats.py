import json

from rescore.bin import nbest_stats
from rescore.nbest import load_set
from tests.conftest import make_setdir


def test_stats_json_first_pass_and_oracle(small_set, capsys):
    assert nbest_stats.main(["--json", str(small_set)]) == 0
    out = json.loads(capsys.readouterr().out)
    # first pass: u1 picks "the cat sat on" (1 ins / 3), u2 correct -> 1/5 = 20 %; oracle 0 %
    assert (out["utts"], out["hyps"]) == (2, 5)
    assert out["first_pass_wer"] == 20.0 and out["oracle_wer"] == 0.0
    # the errors stream was cached in the set
    nbs = load_set(small_set)
    assert nbs.streams["errors"].tolist() == [0, 1, 1, 0, 1]
    assert nbs.meta["errors"]["metric"] == "wer"


def test_stats_text_and_cer(small_set, capsys):
    assert nbest_stats.main(["--cer", str(small_set)]) == 0
    out = capsys.readouterr().out
    assert "first pass %WER 20.00 [ 1 / 5, 1 ins, 0 del, 0 sub ]" in out
    assert "oracle     %WER 0.00 [ 0 / 5, 0 ins, 0 del, 0 sub ]" in out
    # CER: "on" adds 2 characters over 9 + 10 reference characters
    assert "first pass %CER 10.53 [ 2 / 19, 2 ins, 0 del, 0 sub ]" in out


def test_stats_mode_all_counts_missing_hypotheses(tmp_path, capsys):
    d = make_setdir(tmp_path / "s", {"u": [("a b", 0.0)]}, refs={"u": "a b", "v": "c d"})
    assert nbest_stats.main(["--json", "--mode", "all", str(d)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["first_pass_wer"] == 50.0 and out["wer_details"]["first_pass"]["absent"] == 1
    assert nbest_stats.main(["--json", str(d)]) == 0
    assert json.loads(capsys.readouterr().out)["first_pass_wer"] == 0.0


def test_errors_cache_is_recomputed_when_references_change(small_set, capsys):
    assert nbest_stats.main(["--json", str(small_set)]) == 0
    (small_set / "text").write_text("spk1-u1 the cat sat on\nspk2-u2 hello world\n")
    assert nbest_stats.main(["--json", str(small_set)]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["first_pass_wer"] == 0.0
    assert load_set(small_set).streams["errors"].tolist() == [1, 0, 2, 0, 1]
