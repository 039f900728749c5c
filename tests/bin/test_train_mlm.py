import json

import yaml

from rescore.bin import score_pll, train_mlm
from rescore.models.hf import load_mlm
from tests.conftest import make_setdir, write
from tests.train.test_mlm import corpus_lines, tiny_mlm, write_corpus

FAST = ["device=cpu", "batch_size=2", "warmup_steps=0", "lr=0.001", "checkpoint_every=2"]


def _args(tmp_path, *extra):
    init = tiny_mlm(tmp_path / "init")
    text = write_corpus(tmp_path / "train.txt", corpus_lines(6))
    return ["--init", init, "--text", str(text), "--out", str(tmp_path / "exp"), *extra]


def test_cli_writes_model_and_records(tmp_path, capsys):
    conf = write(tmp_path / "c.yaml", "epochs: 1\nmax_steps: 7\nseed: 3\n")
    dev = write_corpus(tmp_path / "dev.txt", corpus_lines(2, seed=1))
    argv = _args(tmp_path, "--config", str(conf), "--dev_text", str(dev), *FAST, "max_steps=4")
    assert train_mlm.main(argv) == 0
    out = tmp_path / "exp"
    for name in ("model/model.safetensors", "model/config.json", "model/tokenizer.json", "config.yaml",
                 "run.yaml", "train_log.jsonl", "summary.json", ".done"):
        assert (out / name).is_file(), name
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["max_steps"], cfg["seed"], cfg["batch_size"]) == (4, 3, 2)  # defaults < YAML < key=value
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["command"].startswith("python -m rescore.bin.train_mlm --init") and run["config"]["config"]["seed"] == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_step"] == 4 and summary["epochs"][0]["epoch"] == 0 and summary["best_epoch"] >= 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step2", "step3", "step4"]
    assert load_mlm(str(out / "model"))[2].head_trained
    setdir = make_setdir(tmp_path / "set", {"u1": [("the red cat sat on the mat", -1.0), ("the cat", -2.0)]})
    assert score_pll.main(["--model", str(out / "model"), str(setdir), str(tmp_path / "pll")]) == 0
    assert len((tmp_path / "pll" / "pll").read_text().splitlines()) == 2

    assert train_mlm.main(argv) == 0  # complete: skipped
    assert "skip:" in capsys.readouterr().err
    assert train_mlm.main([*argv, "--overwrite", "true"]) == 0
    assert "skip:" not in capsys.readouterr().err
    # Extending the run continues from its last checkpoint.
    assert train_mlm.main([*argv, "max_steps=5", "--resume", "true"]) == 0
    assert "resumed from" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["final_step"] == 5


def test_unknown_config_key_is_an_error_naming_it(tmp_path, capsys):
    assert train_mlm.main(_args(tmp_path, *FAST, "no_such_key=1")) == 1
    assert "unknown config key 'no_such_key'" in capsys.readouterr().err
    conf = write(tmp_path / "c.yaml", "lr: 0.0001\nlearning_rate: 0.0001\n")
    assert train_mlm.main(_args(tmp_path, "--config", str(conf))) == 1
    assert "unknown config key 'learning_rate'" in capsys.readouterr().err
    assert train_mlm.main(_args(tmp_path, "mask_prob=1.5")) == 1
    assert "'mask_prob'" in capsys.readouterr().err
    assert not (tmp_path / "exp" / ".done").exists()


def test_bad_corpus_line_is_reported_with_file_and_line(tmp_path, capsys):
    argv = _args(tmp_path, *FAST, "max_steps=1")
    write(tmp_path / "train.txt", b"the cat sat\r\n", "wb")
    assert train_mlm.main(argv) == 1
    assert f"{tmp_path / 'train.txt'}:1: CRLF" in capsys.readouterr().err


def test_norm_key_normalises_the_training_and_dev_text(tmp_path, capsys):
    init = tiny_mlm(tmp_path / "init")
    lines = corpus_lines(6)
    text = write(tmp_path / "train.txt", "".join(f"{ln} <sp>\n" for ln in lines) + "<sp> <unk>\n")
    dev = write(tmp_path / "dev.txt", f"<sp>\n{lines[0]} <unk>\n")
    argv = ["--init", init, "--text", str(text), "--dev_text", str(dev), "--out", str(tmp_path / "exp"), *FAST,
            "max_steps=1", "eval_at_start=false"]
    assert train_mlm.main([*argv, "norm=csj,bracket"]) == 0
    out = tmp_path / "exp"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["norm"], summary["lines_emptied_by_norm"], summary["train_sentences"]) == ("csj,bracket", 2, 6)
    assert summary["dev_sentences"] == 1
    assert yaml.safe_load((out / "config.yaml").read_text())["norm"] == "csj,bracket"
    # another normalisation is another run (not skipped as complete)
    capsys.readouterr()
    assert train_mlm.main([*argv, "norm=bracket"]) == 0
    assert "skip:" not in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["lines_emptied_by_norm"] == 2
    assert train_mlm.main([*argv, "norm=none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["lines_emptied_by_norm"], summary["train_sentences"], summary["dev_sentences"]) == (0, 7, 2)
    assert train_mlm.main([*argv, "norm=lowercase"]) == 1
    assert "config key 'norm': unknown normalisation flag 'lowercase'" in capsys.readouterr().err
