import json

import pytest

from rescore.bin import nbest_stats
from rescore.data.nbest import load_set
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


def csj_set(tmp_path, meta: str | None = "language: ja\nmetric: cer\nnormalization: csj,bracket\n"):
    """A Kaldi CSJ-style set (morphemes with +POS tags, <sp>), its scoring setup recorded in meta.yaml."""
    d = make_setdir(tmp_path / "csj", {"a": [("本日+名詞 <sp> は+助詞", -1.0), ("本日+名詞 が+助詞", -2.0)],
                                       "b": [("音声+名詞 認識+名詞", -1.0)]},
                    refs={"a": "本日+名詞 が+助詞", "b": "音声+名詞 <sp> 認識+名詞"})
    if meta is not None:
        (d / "nbest" / "meta.yaml").write_text(meta, encoding="utf-8")
    return d


def test_stats_default_to_the_recorded_metric(tmp_path, capsys):
    d = csj_set(tmp_path)
    assert nbest_stats.main(["--json", str(d)]) == 0
    out = json.loads(capsys.readouterr().out)
    # CER after csj,bracket: a 1-best は vs が -> 1 / 3 characters, b correct (<sp> dropped) -> 1 / 7
    assert (out["first_pass_cer"], out["oracle_cer"]) == (round(100 / 7, 4), 0.0)
    assert "first_pass_wer" not in out
    assert load_set(d).meta["errors"]["metric"] == "cer"
    assert nbest_stats.main([str(d)]) == 0
    text = capsys.readouterr().out
    assert "first pass %CER 14.29 [ 1 / 7, 0 ins, 0 del, 1 sub ]" in text and "%WER" not in text
    assert "(normalisation: csj,bracket, set metric: cer)" in text
    # --cer on a CER set changes nothing; --metric picks, in the order given
    assert nbest_stats.main(["--json", "--cer", str(d)]) == 0
    assert json.loads(capsys.readouterr().out).keys() == out.keys()
    assert nbest_stats.main(["--json", "--metric", "wer", str(d)]) == 0
    out_w = json.loads(capsys.readouterr().out)
    assert (out_w["first_pass_wer"], "first_pass_cer" in out_w) == (25.0, False)  # 1 / 4 words
    assert nbest_stats.main(["--json", "--metric", "wer", "--cer", str(d)]) == 0
    assert list(json.loads(capsys.readouterr().out))[5:9] == ["first_pass_wer", "oracle_wer", "first_pass_cer",
                                                               "oracle_cer"]
    assert nbest_stats.main(["--metric", "cer,wer", str(d)]) == 0
    text = capsys.readouterr().out
    assert text.index("%CER") < text.index("%WER")
    # the cache still holds the set's own metric
    assert load_set(d).meta["errors"]["metric"] == "cer"


def test_stats_metric_of_a_set_without_recorded_metric_and_bad_metric(tmp_path, capsys):
    d = csj_set(tmp_path, meta=None)  # nothing recorded: English defaults (WER, no normalisation)
    assert nbest_stats.main(["--json", str(d)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["first_pass_wer"] == 60.0 and "first_pass_cer" not in out  # <sp> and tags count: 3 / 5
    (d / "nbest" / "meta.yaml").write_text("language: ja\n", encoding="utf-8")  # ja: CER, csj,bracket
    assert nbest_stats.main(["--json", str(d)]) == 0
    assert json.loads(capsys.readouterr().out)["first_pass_cer"] == round(100 / 7, 4)
    with pytest.raises(SystemExit):
        nbest_stats.main(["--metric", "ser", str(d)])
    assert "unknown metric 'ser'" in capsys.readouterr().err
