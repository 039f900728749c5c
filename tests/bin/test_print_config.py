"""``--print_config true`` of the steps that take ``--config``: the resolved config as YAML, nothing run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rescore.bin import train_clm, train_mlm, train_student

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mod, conf, extra", [
    (train_student, "conf/mwer.yaml", ["--init", "some/encoder"]),
    (train_mlm, "conf/train_mlm.yaml", []),
    (train_clm, "conf/train_clm.yaml", []),
], ids=["train_student", "train_mlm", "train_clm"])
def test_print_config_resolves_defaults_config_and_overrides(mod, conf, extra, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written: the directory stays empty
    file_cfg = yaml.safe_load((REPO / conf).read_text())
    key = "lr"
    assert mod.main(["--config", str(REPO / conf), "--print_config", "true", *extra, f"{key}=0.125"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed[key] == 0.125  # the override wins over the file
    for k, v in file_cfg.items():  # every other key of the file is kept
        if k not in (key, "init"):  # --init overrides the file's init
            assert printed[k] == v, k
    if mod is train_student:
        assert printed["init"] == "some/encoder"
    assert list(tmp_path.iterdir()) == []


def test_print_config_matches_what_a_run_writes(capsys):
    from rescore.config import load_config
    from rescore.train.student import StudentTrainConfig

    assert train_student.main(["--print_config", "true", "--config", str(REPO / "conf/md.yaml"),
                               "--init", "x", "epochs=7", "--out", "unused"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = load_config(StudentTrainConfig, REPO / "conf/md.yaml", ["epochs=7", "init=x"])
    assert printed == yaml.safe_load(yaml.safe_dump(expected.__dict__))


@pytest.mark.parametrize("argv, message", [
    (["bogus=1"], "unknown config key 'bogus'"),
    (["lr=-1"], "'lr'"),
])
def test_print_config_reports_a_bad_config(argv, message, capsys):
    assert train_clm.main(["--print_config", "true", *argv]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and message in err


def test_without_print_config_the_data_options_stay_required(capsys):
    with pytest.raises(SystemExit) as e:
        train_student.main(["--config", str(REPO / "conf/md.yaml")])
    assert e.value.code == 2
    assert "required" in capsys.readouterr().err
