"""train_clm via main([...]): learning, scoring with score_clm, skip/recompute, exact resume, config errors."""

from __future__ import annotations

import functools
import itertools
import json
import random

import numpy as np
import pytest
from safetensors.torch import load_file

from rescore.bin import score_clm, train_clm
from rescore.data.nbest import load_set, read_scores
from rescore.train import lstm as train_lstm
from rescore.train.lstm import train_lstm_lm
from tests.conftest import make_setdir

DET, ADJ, NOUN, VERB = ["the", "a"], ["big", "small", "red"], ["cat", "dog", "bird", "fox"], ["sees", "likes", "chases"]
TINY = ["unit=unigram", "vocab_size=40", "embed_dim=32", "hidden_dim=32", "num_layers=1", "dropout=0.0",
        "epochs=8", "batch_size=16", "lr=0.01", "warmup_steps=5", "log_every=5", "checkpoint_every=10",
        "dev_fraction=0.1", "device=cpu", "keep_checkpoints=2"]


def corpus(path, n=240, seed=0):
    """Grammatical-pattern sentences: DET ADJ NOUN VERB DET NOUN."""
    rng = random.Random(seed)
    combos = list(itertools.product(DET, ADJ, NOUN, VERB, DET, NOUN))
    lines = [" ".join(rng.choice(combos)) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("clm")
    text = corpus(root / "corpus.txt")
    out = root / "exp"
    assert train_clm.main(["--text", str(text), "--out", str(out), *TINY]) == 0
    return text, out


def read_log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_training_lowers_dev_perplexity_and_prefers_grammatical(trained, tmp_path):
    _, out = trained
    recs = [r for r in read_log(out) if "dev_ppl" in r]
    assert [r["epoch"] for r in recs] == list(range(9))  # at init, then per epoch
    assert recs[-1]["dev_ppl"] < 0.5 * recs[0]["dev_ppl"]
    assert any("loss" in r for r in read_log(out))
    for name in ("config.yaml", "run.yaml", ".done", "model/config.json", "model/model.safetensors",
                 "model/units.model"):
        assert (out / name).is_file(), name
    good = ["the big cat sees a dog", "a red fox likes the bird", "the small bird chases a cat"]
    bad = [" ".join(random.Random(i).sample(s.split(), 6)) for i, s in enumerate(good)]
    setdir = make_setdir(tmp_path / "set", {f"u{i}": [(g, 0.0), (b, 0.0), ("", 0.0)]
                                            for i, (g, b) in enumerate(zip(good, bad, strict=True))})
    assert score_clm.main(["--model", str(out / "model"), "--device", "cpu", str(setdir), str(tmp_path / "s")]) == 0
    nbs = load_set(setdir)
    values = read_scores(tmp_path / "s" / "clm", nbs)
    assert [line.split()[0] for line in (tmp_path / "s" / "clm").read_text().splitlines()] == list(nbs.keys())
    for u in range(3):
        assert values[3 * u] > values[3 * u + 1] + 1.0  # grammatical above scrambled
    assert np.all(np.isfinite(values))


def test_done_is_skipped_and_changed_input_retrains(trained, tmp_path, caplog):
    text, out = trained
    stamp = (out / "model" / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    assert train_clm.main(["--text", str(text), "--out", str(out), *TINY]) == 0
    assert any("skip" in r.getMessage() for r in caplog.records)
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    # a copy of the experiment retrained on changed text: checkpoints are stale, so it starts again
    import shutil

    out2 = tmp_path / "exp"
    shutil.copytree(out, out2)
    text2 = corpus(tmp_path / "corpus2.txt", n=120, seed=1)
    assert train_clm.main(["--text", str(text2), "--out", str(out2), *TINY, "epochs=1"]) == 0
    recs = [r for r in read_log(out2) if "dev_ppl" in r]
    assert [r["epoch"] for r in recs] == [0, 1]
    assert load_file(str(out2 / "model" / "model.safetensors"))["embed.weight"].shape[0] <= 40


def test_resume_after_interruption_is_exact(tmp_path, monkeypatch):
    text = corpus(tmp_path / "c.txt", n=96)
    args = ["--text", str(text), "--dev_text", str(text), *TINY, "dropout=0.3", "epochs=2", "checkpoint_every=4"]
    assert train_clm.main([*args, "--out", str(tmp_path / "full")]) == 0
    # interrupted after 7 steps (mid-epoch), then resumed by a plain re-run (the CLI imports
    # train_lstm_lm from rescore.train.lstm when it runs, so that is where it is replaced)
    monkeypatch.setattr(train_lstm, "train_lstm_lm", functools.partial(train_lstm_lm, stop_after=7))
    assert train_clm.main([*args, "--out", str(tmp_path / "part")]) == 1
    assert not (tmp_path / "part" / ".done").exists() and not (tmp_path / "part" / "model").exists()
    monkeypatch.setattr(train_lstm, "train_lstm_lm", train_lstm_lm)
    assert train_clm.main([*args, "--out", str(tmp_path / "part")]) == 0
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k
    strip = [{k: v for k, v in r.items() if k != "time"} for r in read_log(tmp_path / "full")]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in read_log(tmp_path / "part")]


def test_unknown_or_bad_config_key_is_an_error(tmp_path, capsys):
    text = corpus(tmp_path / "c.txt", n=10)
    (tmp_path / "bad.yaml").write_text("lr: 0.1\nbatchsize: 4\n")
    for extra, expect in ((["hiden_dim=8"], "unknown config key 'hiden_dim'"), (["epochs=two"], "'epochs'"),
                          (["unit=phone"], "'unit'"), (["--config", str(tmp_path / "bad.yaml")], "batchsize")):
        assert train_clm.main(["--text", str(text), "--out", str(tmp_path / "o"), *extra]) == 1
        err = capsys.readouterr().err
        assert "train_clm: error: " in err and expect in err, err
    assert not (tmp_path / "o").exists()


def test_word_units_and_empty_lines(tmp_path):
    text = tmp_path / "c.txt"
    text.write_text("The Cat sat\n\nthe dog, sat\n")
    out = tmp_path / "o"
    assert train_clm.main(["--text", str(text), "--out", str(out), *TINY, "unit=word", "norm=lower,punct",
                           "epochs=1", "dev_fraction=0.0"]) == 0
    vocab = (out / "model" / "vocab.txt").read_text().split()
    assert vocab[:4] == ["<unk>", "<s>", "</s>", "<pad>"] and sorted(vocab[4:]) == ["cat", "dog", "sat", "the"]
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["model_type"] == "rescore_lstm_lm" and cfg["norm"] == "lower,punct" and cfg["unit"] == "word"


def test_conf_file_matches_defaults():
    from pathlib import Path

    from rescore.config import load_config
    from rescore.train.lstm import TrainClmConfig

    conf = Path(__file__).resolve().parents[2] / "conf" / "train_clm.yaml"
    assert load_config(TrainClmConfig, conf) == TrainClmConfig()
