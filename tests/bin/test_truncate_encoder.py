"""truncate_encoder: the first layers of a teacher as a student's initial encoder."""

from __future__ import annotations

from pathlib import Path

import torch

from rescore.bin import truncate_encoder
from tests.train.test_mlm import tiny_mlm


def test_keeps_first_layers_and_tokenizer(tmp_path: Path, caplog):
    from transformers import AutoModel, AutoTokenizer, BertForMaskedLM

    src = tiny_mlm(tmp_path / "teacher")  # a masked LM: its head is dropped
    out = tmp_path / "init"
    assert truncate_encoder.main(["--num_layers", "1", src, str(out)]) == 0
    small = AutoModel.from_pretrained(out)
    big = BertForMaskedLM.from_pretrained(src).bert
    assert small.config.num_hidden_layers == 1 and len(small.encoder.layer) == 1
    ref = big.state_dict()
    kept = [n for n in small.state_dict() if n.startswith(("encoder.layer.0.", "embeddings."))]
    assert kept and not any(n.startswith("encoder.layer.1.") for n in small.state_dict())
    for name in kept:
        assert torch.equal(small.state_dict()[name], ref[name]), name
    assert AutoTokenizer.from_pretrained(out).tokenize("the cat") == ["the", "cat"]
    assert (out / ".done").is_file() and (out / "run.yaml").is_file()
    caplog.clear()
    with caplog.at_level("INFO", logger="rescore"):
        assert truncate_encoder.main(["--num_layers", "1", src, str(out)]) == 0
    assert "skip" in caplog.text


def test_too_many_layers_is_an_error(tmp_path: Path, capsys):
    src = tiny_mlm(tmp_path / "teacher")
    assert truncate_encoder.main(["--num_layers", "3", src, str(tmp_path / "init")]) == 1
    err = capsys.readouterr().err
    assert "num_layers must be in 1..2" in err and str(src) in err
    assert not (tmp_path / "init" / ".done").exists()
