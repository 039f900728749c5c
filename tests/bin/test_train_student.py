import json

import yaml

from rescore.bin import train_student
from rescore.models import RescoreBert
from tests.conftest import write
from tests.train.test_student import synthetic_set, tiny_encoder

FAST = ["device=cpu", "warmup_steps=0", "head_hidden=16", "checkpoint_every=0", "num_threads=1", "log_every=1"]


def _data(tmp_path):
    (tr, trs), (dv, dvs) = synthetic_set(tmp_path / "train", 12, seed=1), synthetic_set(tmp_path / "dev", 6, seed=2)
    return ["--train_set", str(tr), "--train_scores", str(trs), "--dev_set", str(dv), "--dev_scores", str(dvs)]


def test_cli_md_then_mwer_from_the_md_student(tmp_path, capsys):
    enc = tiny_encoder(tmp_path / "enc")
    data = _data(tmp_path)
    md_out = tmp_path / "exp" / "md"
    argv = ["--config", "conf/md.yaml", *data, "--out", str(md_out), "--init", enc, *FAST, "epochs=2",
            "batch_hyps=16", "lr=1e-3"]
    assert train_student.main(argv) == 0
    for name in ("model/model.safetensors", "model/config.json", "config.yaml", "run.yaml", "train_log.jsonl",
                 "summary.json", ".done"):
        assert (md_out / name).is_file(), name
    assert sorted(p.name for p in (md_out / "checkpoints").iterdir()) == ["step3", "step6"]  # epoch ends (3 steps each)
    cfg = yaml.safe_load((md_out / "config.yaml").read_text())
    assert (cfg["objective"], cfg["init"], cfg["epochs"], cfg["lr"]) == ("md", enc, 2, 1e-3)  # YAML < key=value
    run = yaml.safe_load((md_out / "run.yaml").read_text())
    assert run["command"].startswith("python -m rescore.bin.train_student --config conf/md.yaml")
    md = json.loads((md_out / "summary.json").read_text())
    assert [r["epoch"] for r in md["epochs"]] == [0, 1, 2] and md["best_epoch"] in (1, 2)
    assert md["first_pass_dev_wer"] > 0 and md["oracle_dev_wer"] == 0.0 and md["best_weight"] is not None
    assert len(RescoreBert.from_pretrained(md_out / "model").score(["the cat sat", ""])) == 2

    assert train_student.main(argv) == 0  # complete: skipped
    assert "skip:" in capsys.readouterr().err

    mwer_out = tmp_path / "exp" / "mwer"
    assert train_student.main(["--config", "conf/mwer.yaml", *data, "--out", str(mwer_out), "--init",
                               str(md_out / "model"), *FAST, "epochs=1", "batch_utts=4"]) == 0
    mwer = json.loads((mwer_out / "summary.json").read_text())
    assert mwer["objective"] == "mwer" and mwer["init"] == str(md_out / "model")
    # epoch 0 evaluates the init student: the best MD student, with the beta tuned for it
    best_md = next(r for r in md["epochs"] if r["epoch"] == md["best_epoch"])
    assert mwer["epochs"][0]["dev_md_loss"] == best_md["dev_md_loss"]
    assert mwer["beta_init"] == best_md["dev_weight"] or best_md["dev_weight"] <= 0


def test_unknown_config_key_and_missing_init_are_errors(tmp_path, capsys):
    data = _data(tmp_path)
    out = ["--out", str(tmp_path / "exp")]
    assert train_student.main(["--config", "conf/md.yaml", *data, *out, "--init", "x", "no_such_key=1"]) == 1
    assert "unknown config key 'no_such_key'" in capsys.readouterr().err
    conf = write(tmp_path / "c.yaml", "objective: md\nlearning_rate: 0.1\n")
    assert train_student.main(["--config", str(conf), *data, *out, "--init", "x"]) == 1
    assert "unknown config key 'learning_rate'" in capsys.readouterr().err
    assert train_student.main(["--config", "conf/md.yaml", *data, *out]) == 1  # no init anywhere
    assert "'init'" in capsys.readouterr().err
    assert train_student.main(["--config", "conf/md.yaml", *data, *out, "--init", "x", "objective=ctc"]) == 1
    assert "'objective'" in capsys.readouterr().err
    assert not (tmp_path / "exp" / ".done").exists()


def test_missing_pll_key_is_reported(tmp_path, capsys):
    enc = tiny_encoder(tmp_path / "enc")
    data = _data(tmp_path)
    pll = tmp_path / "train" / "scores" / "pll"
    lines = pll.read_text().splitlines()
    pll.write_text("\n".join(lines[1:]) + "\n")
    assert train_student.main(["--config", "conf/md.yaml", *data, "--out", str(tmp_path / "exp"), "--init", enc,
                               *FAST, "epochs=1"]) == 1
    err = capsys.readouterr().err
    assert str(pll) in err and lines[0].split()[0] in err
