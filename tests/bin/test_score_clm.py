"""score_clm via main([...]): keys, values, run records, skip when done, recompute on change."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rescore.bin import score_clm
from rescore.data.nbest import load_set, read_scores
from rescore.models.lstm import load_scorer
from tests.conftest import make_setdir
from tests.models.test_lstm import build_tiny_gpt2


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return build_tiny_gpt2(tmp_path_factory.mktemp("gpt2cli") / "model")


def tiny_set(root):
    return make_setdir(root, {
        "spk1-u1": [("the cat sat", -1.0), ("the cat sat on", -2.0), ("", -5.0)],
        "u2": [("hello world", -1.5), ("hello world", -1.6)],
    })


def test_score_clm_writes_keyed_logprobs(tmp_path, gpt2_dir, caplog):
    setdir, out = tiny_set(tmp_path / "set"), tmp_path / "out"
    args = ["--model", str(gpt2_dir), "--device", "cpu", "--batch_tokens", "16", str(setdir), str(out)]
    assert score_clm.main(args) == 0
    nbs = load_set(setdir)
    keys = [line.split(" ", 1)[0] for line in (out / "clm").read_text().splitlines()]
    assert keys == list(nbs.keys())
    values = read_scores(out / "clm", nbs)
    want = load_scorer(str(gpt2_dir)).score(list(nbs.texts))
    np.testing.assert_allclose(values, want, atol=1e-6)
    assert values[3] == values[4] and np.all(values < 0)
    assert (out / ".done").is_file()
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["config"]["stats"]["empty"] == 1 and run["config"]["resolved"]["prefix_space"] is True
    assert "score_clm" in run["command"]

    # done: skipped (the output is not rewritten)
    stamp = (out / "clm").stat().st_mtime_ns
    caplog.clear()
    assert score_clm.main(args) == 0
    assert (out / "clm").stat().st_mtime_ns == stamp
    assert any("skip" in r.getMessage() for r in caplog.records)

    # changed hypotheses: recomputed
    text = setdir / "nbest" / "text"
    text.write_text(text.read_text().replace("u2-2 hello world", "u2-2 hello there world"))
    assert score_clm.main(args) == 0
    new = read_scores(out / "clm", load_set(setdir))
    assert new[:4].tolist() == values[:4].tolist() and new[4] != values[4]

    # --overwrite true recomputes even when done
    assert score_clm.main(["--overwrite", "true", *args]) == 0
    assert (out / "clm").stat().st_mtime_ns != stamp


def test_score_clm_bad_set_is_exit_code_1(tmp_path, gpt2_dir, capsys):
    assert score_clm.main(["--model", str(gpt2_dir), "--device", "cpu", str(tmp_path / "nope"),
                           str(tmp_path / "out")]) == 1
    assert "nbest/text" in capsys.readouterr().err
    assert not (tmp_path / "out" / ".done").exists()
