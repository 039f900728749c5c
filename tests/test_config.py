from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from rescore.config import ConfigError, load_config, save_config


@dataclass
class Cfg:
    lr: float = 1e-4
    epochs: int = 2
    objective: Literal["md", "mwer", "mwed"] = "md"
    max_steps: int | None = None
    learn_beta: bool = False
    init: str = "bert-base-uncased"


def test_precedence_defaults_yaml_cli(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lr: 1e-3\nepochs: 3\n")
    cfg = load_config(Cfg, p, ["epochs=5", "objective=mwer", "max_steps=10", "learn_beta=true"])
    assert (cfg.lr, cfg.epochs, cfg.objective, cfg.max_steps, cfg.learn_beta) == (0.001, 5, "mwer", 10, True)
    assert load_config(Cfg, None, ["max_steps=null"]).max_steps is None
    assert load_config(Cfg, None, ["lr=1e-4"]).lr == 1e-4
    out = tmp_path / "resolved.yaml"
    save_config(cfg, out)
    assert yaml.safe_load(out.read_text())["epochs"] == 5


@pytest.mark.parametrize("override,msg", [
    (["lrr=1"], "unknown config key 'lrr'"),
    (["epochs=two"], "'epochs': expected an integer"),
    (["lr=fast"], "'lr': expected a number"),
    (["objective=ctc"], "'objective': expected one of"),
    (["learn_beta=1"], "'learn_beta': expected true or false"),
    (["epochs"], "not key=value"),
])
def test_errors_name_the_key(override, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(Cfg, None, override)


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("batch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'batch' in .*c.yaml"):
        load_config(Cfg, p)
