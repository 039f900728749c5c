"""Sentence log-probabilities under causal LMs: our LSTM LM and a tiny GPT-2 built in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rescore.config import ConfigError
from rescore.models.lstm import (
    BOS_ID,
    EOS_ID,
    MODEL_TYPE,
    LstmLm,
    LstmLmConfig,
    SpmUnits,
    WordUnits,
    boundary_ids,
    detect_prefix_space,
    is_lstm_dir,
    load_lstm,
    load_scorer,
    lstm_scorer,
    make_rows,
    plan_batches,
    save_lstm,
    train_units,
)

CORPUS = [
    "the cat sat on the mat", "a dog ran in the park", "hello world", "the dog sat on a mat",
    "a cat ran in a park", "hello there world", "the quick brown fox jumps over the lazy dog",
]


def build_tiny_gpt2(directory: Path, n_positions: int = 16, bos: bool = True, seed: int = 0) -> Path:
    """A 2-layer GPT-2 with a byte-level BPE tokenizer trained here, saved with save_pretrained."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 5, trainer)
    specials = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"} if bos else {"eos_token": "<|endoftext|>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
    torch.manual_seed(seed)
    eos = fast.eos_token_id
    cfg = GPT2Config(vocab_size=len(fast), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=eos, eos_token_id=eos)
    model = GPT2LMHeadModel(cfg)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "model")


@pytest.fixture(scope="module")
def gpt2(gpt2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(gpt2_dir).eval(), AutoTokenizer.from_pretrained(gpt2_dir)


def direct_hf(model, tok, text: str, prefix: str = " ") -> float:
    """log P(text EOS | BOS) by one full forward pass (no windowing)."""
    ids = tok(prefix + text if text else "", add_special_tokens=False)["input_ids"]
    seq = [tok.bos_token_id, *ids, tok.eos_token_id]
    with torch.no_grad():
        logits = model(torch.tensor([seq[:-1]])).logits[0]
    lp = torch.log_softmax(logits.double(), -1)
    return float(sum(lp[t, seq[t + 1]] for t in range(len(seq) - 1)))


def direct_lstm(model: LstmLm, units, text: str) -> float:
    seq = [BOS_ID, *units.encode([text])[0], EOS_ID]
    with torch.no_grad():
        logits = model(torch.tensor([seq[:-1]]))[0]
    lp = torch.log_softmax(logits.double(), -1)
    return float(sum(lp[t, seq[t + 1]] for t in range(len(seq) - 1)))


def tiny_lstm(vocab: int, embed: int = 8, hidden: int = 8, tie: bool = True, unit: str = "word",
              norm: str = "none") -> LstmLm:
    torch.manual_seed(0)
    model = LstmLm(LstmLmConfig(vocab_size=vocab, embed_dim=embed, hidden_dim=hidden, num_layers=2, dropout=0.1,
                                tie_weights=tie, unit=unit, norm=norm))
    for p in model.parameters():  # larger random weights make the distributions far from uniform
        torch.nn.init.normal_(p, std=0.5)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def test_make_rows_single_and_windows():
    (row,) = make_rows(0, [10, 11, 12], bos=1, eos=2, max_len=4, stride=2)
    assert (row.inputs, row.targets, row.first) == ([1, 10, 11, 12], [10, 11, 12, 2], 0)
    # BOS a b c d e f EOS: 7 predictions, context 4, stride 2
    rows = make_rows(0, [10, 11, 12, 13, 14, 15], bos=1, eos=2, max_len=4, stride=2)
    assert [(r.inputs, r.targets, r.first) for r in rows] == [
        ([1, 10, 11, 12], [10, 11, 12, 13], 0),  # predictions 0..3 from the sentence start
        ([11, 12, 13, 14], [12, 13, 14, 15], 2),  # predictions 4, 5 with >= 2 tokens of context
        ([12, 13, 14, 15], [13, 14, 15, 2], 3),  # last window aligned to the end: prediction 6 (EOS)
    ]
    scored = [t for r in rows for t in r.targets[r.first:]]
    assert scored == [10, 11, 12, 13, 14, 15, 2]  # each prediction exactly once, nothing truncated


def test_plan_batches_respects_budget_and_sorts():
    lengths = [3, 9, 1, 5, 5, 20]
    batches = plan_batches(lengths, batch_tokens=10)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 10
    assert batches[0] == [5]  # longest first, alone when over budget


# --------------------------------------------------------------------------------------------
# LSTM LM
# --------------------------------------------------------------------------------------------


def test_lstm_logprob_is_sum_of_log_softmax_incl_eos():
    units = WordUnits(["<unk>", "<s>", "</s>", "<pad>", "a", "b", "c"])
    model = tiny_lstm(units.vocab_size)
    texts = ["a b c", "c", "", "a zzz b", "b a c a b c a", "a b c"]
    scorer = lstm_scorer(model, units, batch_tokens=8)
    got = scorer.score(texts)
    want = [direct_lstm(model, units, t) for t in texts]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert got[2] == pytest.approx(direct_lstm(model, units, ""))  # empty: log P(</s> | <s>)
    assert scorer.stats.unique == 5 and scorer.stats.empty == 1 and scorer.stats.tokens == 4 + 2 + 1 + 4 + 8
    tokens = scorer.score_tokens(["a b c"])[0]
    assert len(tokens) == 4 and tokens.sum() == pytest.approx(got[0])  # 3 words + </s>
    # batching and dedup do not change values
    np.testing.assert_allclose(lstm_scorer(model, units, batch_tokens=10_000, dedup=False).score(texts), got,
                               atol=1e-5)


def test_word_units_unknown_and_specials():
    units = WordUnits.build(["b a a", "c a b", "d"], vocab_size=6)
    assert units.words == ["<unk>", "<s>", "</s>", "<pad>", "a", "b"]
    assert units.encode(["a c <s> b", ""]) == [[4, 0, 0, 5], []]


JA = ["本日 は 音声 認識 の 講演 を 致し ます", "この 機会 に 皆様 に お 話し し たい と 思い ます"] * 5


@pytest.mark.parametrize("unit", ["unigram", "bpe"])
def test_sentencepiece_vocab_size_below_the_characters_is_raised_with_a_warning(unit, caplog):
    # 27 distinct characters + '▁' + 4 specials = 32 units at least (character_coverage = 1.0)
    units = train_units(JA, unit, 20)
    assert units.vocab_size == 32
    assert "config key 'vocab_size' = 20 is below the 32 units" in caplog.text
    assert "vocab_size >= 32" in caplog.text and "character_coverage" not in caplog.text
    assert all(0 not in ids for ids in units.encode(JA[:2]))  # every training character is a unit
    caplog.clear()
    assert train_units(JA, unit, 32).vocab_size == 32 and "vocab_size" not in caplog.text
    # the same model as asked for directly (deterministic training)
    assert train_units(JA, unit, 20).proto == train_units(JA, unit, 32).proto


def test_sentencepiece_char_units_keep_the_most_frequent(caplog):
    units = train_units(JA, "char", 20)
    assert units.vocab_size == 20 and "vocab_size" not in caplog.text
    assert any(0 in ids for ids in units.encode(JA[:2]))  # rarer characters are <unk>


def test_unknown_sentencepiece_vocabulary_error_names_the_config_key(monkeypatch):
    import rescore.models.lstm as clm

    def fail(*args):
        raise RuntimeError("Vocabulary size is smaller than required_chars (another wording)")

    monkeypatch.setattr(clm, "_spm_train", fail)
    with pytest.raises(ConfigError, match="config key 'vocab_size' \\(20\\)") as e:
        train_units(JA, "unigram", 20)
    assert isinstance(e.value, ValueError)
    monkeypatch.setattr(clm, "_spm_train", lambda *a: (_ for _ in ()).throw(RuntimeError("other problem")))
    with pytest.raises(RuntimeError, match="other problem"):
        train_units(JA, "unigram", 20)


def test_tied_projection_save_load_roundtrip_with_sentencepiece(tmp_path):
    units = SpmUnits.train(CORPUS * 10, vocab_size=40, model_type="unigram")
    model = tiny_lstm(units.vocab_size, embed=6, hidden=10, unit="unigram", norm="lower")
    assert model.out.weight is model.embed.weight and model.proj is not None
    save_lstm(model, units, tmp_path / "lm")
    assert is_lstm_dir(tmp_path / "lm") and not is_lstm_dir(tmp_path)
    loaded, units2 = load_lstm(tmp_path / "lm")
    assert loaded.out.weight is loaded.embed.weight
    texts = ["the cat sat", "HELLO World", ""]
    scorer = load_scorer(str(tmp_path / "lm"))
    assert str(scorer.norm) == "lower"  # the normalisation recorded at training is applied
    want = [direct_lstm(model, units, t.lower()) for t in texts]
    np.testing.assert_allclose(scorer.score(texts), want, atol=1e-5)
    with pytest.raises(ValueError, match="trained with normalisation"):
        load_scorer(str(tmp_path / "lm"), norm="punct")
    import json

    assert json.loads((tmp_path / "lm" / "config.json").read_text())["model_type"] == MODEL_TYPE


# --------------------------------------------------------------------------------------------
# Hugging Face causal LM (tiny GPT-2)
# --------------------------------------------------------------------------------------------


def test_gpt2_equals_direct_computation(gpt2, gpt2_dir):
    model, tok = gpt2
    assert detect_prefix_space(tok) is True  # byte-level BPE: "Ġword" is the mid-text spelling
    assert boundary_ids(tok) == (tok.eos_token_id, tok.eos_token_id)
    texts = ["the cat sat on the mat", "hello world", "a dog ran", "the cat sat on the mat", "zebra xylophone"]
    scorer = load_scorer(str(gpt2_dir), batch_tokens=20)
    got = scorer.score(texts)
    np.testing.assert_allclose(got, [direct_hf(model, tok, t) for t in texts], atol=1e-4)
    assert scorer.stats.unique == 4 and scorer.stats.windowed == 0
    no_prefix = load_scorer(str(gpt2_dir), prefix_space="false").score(["hello world"])
    assert no_prefix[0] == pytest.approx(direct_hf(model, tok, "hello world", prefix=""), abs=1e-4)
    assert no_prefix[0] != pytest.approx(got[1], abs=1e-3)


def test_gpt2_empty_hypothesis_is_log_p_eos_given_bos(gpt2, gpt2_dir):
    model, tok = gpt2
    with torch.no_grad():
        logits = model(torch.tensor([[tok.bos_token_id]])).logits[0, 0]
    want = float(torch.log_softmax(logits.double(), -1)[tok.eos_token_id])
    scorer = load_scorer(str(gpt2_dir))
    got = scorer.score(["", "hello"])
    assert got[0] == pytest.approx(want, abs=1e-5) and np.isfinite(got[0])
    assert scorer.stats.empty == 1


def test_gpt2_long_input_uses_sliding_window(gpt2, gpt2_dir):
    model, tok = gpt2
    text = " ".join(CORPUS)  # far more than 16 positions
    ids = tok(" " + text, add_special_tokens=False)["input_ids"]
    seq = [tok.bos_token_id, *ids, tok.eos_token_id]
    n, stride, n_pred = 16, 5, len(seq) - 1
    assert n_pred > 2 * n
    # the rule, computed directly: windows start at k*stride (the last one aligned to the end);
    # each scores the predictions not scored before
    total, done, k = 0.0, 0, 0
    while done < n_pred:
        s = min(k * stride, n_pred - n)
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([seq[s:s + n]])).logits[0].double(), -1)
        for j in range(done, s + n):
            total += float(lp[j - s, seq[j + 1]])
        done, k = s + n, k + 1
    scorer = load_scorer(str(gpt2_dir), window_stride=stride, batch_tokens=40)
    got = scorer.score([text, "hello world"])
    assert got[0] == pytest.approx(total, abs=1e-4)
    assert scorer.stats.windowed == 1 and scorer.stats.tokens == n_pred + len(scorer.encode(["hello world"])[0]) + 1
    assert len(scorer.score_tokens([text])[0]) == n_pred  # every token and the EOS, none truncated
    assert load_scorer(str(gpt2_dir)).window_stride == 8  # default: half the context


def test_tokenizer_without_bos_uses_eos_and_without_eos_is_refused(tmp_path):
    from transformers import AutoTokenizer

    d = build_tiny_gpt2(tmp_path / "nobos", bos=False)
    tok = AutoTokenizer.from_pretrained(d)
    assert tok.bos_token_id is None
    assert boundary_ids(tok) == (tok.eos_token_id, tok.eos_token_id)
    tok.eos_token = None
    with pytest.raises(ValueError, match="no eos token"):
        boundary_ids(tok)


def test_hf_norm_option_is_applied(gpt2_dir):
    scorer = load_scorer(str(gpt2_dir), norm="lower")
    a, b = scorer.score(["HELLO WORLD", "hello world"])
    assert a == b
