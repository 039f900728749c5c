"""score_student CLI: keyed output, .done skip and recompute, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from rescore.bin import score_student
from rescore.data.nbest import load_set, read_scores
from rescore.models import RescoreBert
from tests.conftest import make_setdir
from tests.models.test_pll import bert_tokenizer
from tests.models.test_student import tiny_encoder, visible


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("student")
    tok = bert_tokenizer(d)
    visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8)).save_pretrained(d / "model")
    return d / "model"


@pytest.fixture
def setdir(tmp_path):
    return make_setdir(tmp_path / "dev", {
        "spk1-u1": [("the cat sat", -10.0), ("the cat sat on", -9.0), ("", -20.0), ("the cat sat", -11.0)],
        "spk2-u2": [("hello world", -3.0), ("playing outside", -4.0)],
    })


def run(model_dir, setdir, out, *extra):
    return score_student.main(["--model", str(model_dir), "--device", "cpu", "--num_threads", "1", *extra,
                               str(setdir), str(out)])


def test_scores_every_key_and_skips_when_done(model_dir, setdir, tmp_path, caplog):
    out = tmp_path / "o"
    assert run(model_dir, setdir, out, "--batch_tokens", "10") == 0
    assert "scored 6 hypotheses (5 unique)" in caplog.text
    assert "1 empty hypotheses (special tokens only); 0 hypotheses longer than the model" in caplog.text
    nbs = load_set(setdir)
    scores = read_scores(out / "student", nbs)  # every key exactly once, nothing else
    keys = [line.split()[0] for line in (out / "student").read_text().splitlines()]
    assert keys == list(nbs.keys())
    want = RescoreBert.from_pretrained(model_dir).score(list(nbs.texts))
    np.testing.assert_allclose(scores, want, atol=1e-6)
    assert scores[0] == scores[3] and len(set(scores.tolist())) == 5
    run_yaml = (out / "run.yaml").read_text()
    assert "rescore.bin.score_student" in run_yaml and "batch_tokens" in run_yaml
    assert (out / ".done").is_file()
    # a re-run with the same inputs skips
    stamp = (out / "student").stat().st_mtime_ns
    caplog.clear()
    assert run(model_dir, setdir, out, "--batch_tokens", "10") == 0
    assert "skip:" in caplog.text and (out / "student").stat().st_mtime_ns == stamp
    # --overwrite true recomputes
    caplog.clear()
    assert run(model_dir, setdir, out, "--batch_tokens", "10", "--overwrite", "true") == 0
    assert "skip:" not in caplog.text and "scored 6 hypotheses" in caplog.text
    # changed hypotheses are recomputed, never served stale
    text = setdir / "nbest" / "text"
    text.write_text(text.read_text().replace("spk2-u2-1 hello world", "spk2-u2-1 hello hello world"))
    caplog.clear()
    assert run(model_dir, setdir, out, "--batch_tokens", "10") == 0
    assert "skip:" not in caplog.text
    new = read_scores(out / "student", load_set(setdir))
    assert new[4] != scores[4] and new[0] == pytest.approx(scores[0])


def test_changed_model_or_options_recompute(model_dir, setdir, tmp_path, caplog):
    import shutil

    out = tmp_path / "o"
    assert run(model_dir, setdir, out) == 0
    first = read_scores(out / "student", load_set(setdir))
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    m = RescoreBert.from_pretrained(other)
    visible(m, seed=7).save_pretrained(other)
    caplog.clear()
    assert run(other, setdir, out) == 0
    assert "skip:" not in caplog.text
    assert not np.allclose(read_scores(out / "student", load_set(setdir)), first)
    caplog.clear()
    assert run(other, setdir, out, "--dtype", "bf16") == 0  # another option: recomputed
    assert "skip:" not in caplog.text


def test_norm_is_applied_to_the_text_the_model_reads(model_dir, tmp_path):
    d = make_setdir(tmp_path / "s", {"u": [("THE CAT <unk> SAT", -1.0), ("the cat sat", -2.0)]})
    out = tmp_path / "o"
    assert run(model_dir, d, out, "--norm", "lower,bracket") == 0
    first, second = read_scores(out / "student", load_set(d))
    assert first == second


def test_bad_setdir_exits_1(model_dir, tmp_path, capsys):
    assert run(model_dir, tmp_path / "nothing", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "nbest/text" in err and "missing" in err
    assert not (tmp_path / "o" / ".done").exists()


def test_invalid_set_exits_1(model_dir, tmp_path, capsys):
    d = make_setdir(tmp_path / "s", {"u": [("a", -1.0), ("b", -2.0)]})
    (d / "nbest" / "text").write_text("u-1 a\nu-3 b\n")  # rank gap
    assert run(model_dir, d, tmp_path / "o") == 1
    assert not (tmp_path / "o" / "student").exists()


def test_bad_options(model_dir, setdir, tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: exit code 2
        run(model_dir, setdir, tmp_path / "o", "--batch_tokens", "0")
    assert run(model_dir, setdir, tmp_path / "o", "--dtype", "fp16") == 1  # no fp16 autocast on CPU
    assert "fp16" in capsys.readouterr().err
    assert run(tmp_path / "no_such_model", setdir, tmp_path / "o") == 1
    with pytest.raises(SystemExit):
        run(model_dir, setdir, tmp_path / "o", "--overwrite", "yes")
