"""Pseudo-log-likelihood (PLL) of texts under a masked LM, exact and fast.

PLL(W) = sum_t log P(w_t | W with w_t masked) (Salazar et al., ACL 2020), natural log, over the
subword tokens of W (special tokens are added but never scored). An empty text (no tokens)
scores 0.0. ``word_mask`` selects the variant:

* ``none``: one masked copy per token t, mask t, score t (plain PLL).
* ``whole``: one masked copy per word, all its tokens masked; each of its tokens is scored in that
  copy and the word's log-probability is the sum over its tokens.
* ``l2r``: one copy per token t, mask t and the FOLLOWING tokens of the same word, score t
  (PLL-word-l2r, Kauf & Ivanova 2023), which removes plain PLL's bonus for multi-token words.

Words are the tokenizer's words: ``encoding.word_ids()`` of a fast tokenizer (its pre-tokenizer
decides, e.g. BERT makes ``don't`` three words), else whitespace-split words tokenised one by one.

Tokenisation. Special tokens are those the tokenizer itself adds (learnt once by calling it with
and without ``add_special_tokens``: e.g. ``[CLS] x [SEP]`` for BERT, ``<s> x </s>`` for RoBERTa),
never hard-coded. Casing is the tokenizer's (uncased tokenizers lowercase; a cased model sees the
text as written). Leading space: byte-level BPE models (RoBERTa, GPT-style) tokenise a word
differently at the start of a string; like mlm-scoring, the text is given a leading space when
the tokenizer's ByteLevel pre-tokenizer does not add one itself (or, for other tokenizers, when
it spells ``" word"`` differently from ``"word"`` with the same number of tokens), so the first
word is tokenised like every other word. SentencePiece and WordPiece tokenizers are
unaffected.

Long texts. A text with more tokens than fit in the model (``max_length`` including the special
tokens: the model's position limit, capped by ``tokenizer.model_max_length``) is scored in
overlapping windows of ``C = max_length - specials`` tokens, not truncated: window starts are
0, S, 2S, ... with stride ``S = C // 2`` and a last window ending at the text's end. Each masked
copy (its masked span [lo, hi]) is scored in the window that contains the span and gives it the
most context, i.e. maximises ``min(lo - start, start + C - 1 - hi)``; ties go to the earlier
window. Texts that fit are scored in one window, exactly as without windowing.

Speed. The encoder runs on all masked copies of all (unique, with ``dedup``) texts, flattened,
grouped by length and packed into batches of at most ``batch_tokens`` tokens, one length per
batch (no padding and no attention mask, so SDPA runs its fused kernels); the MLM head
is applied only to the hidden states at the scored positions, never to the full L x V logits.
Known heads: BERT, RoBERTa/XLM-R/CamemBERT, DistilBERT, ALBERT, ELECTRA generator, DeBERTa-v2;
another class falls back to the model's full logits (a one-time warning).

:func:`reference_pll` is the straightforward implementation the tests and the benchmark compare
against: one text at a time, all its masked copies in one batch, full-vocabulary logits, fp32.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from rescore.defaults import PLL_BATCH_TOKENS, PLL_WORD_MASKS
from rescore.log import get_logger
from rescore.runtime import autocast

log = get_logger(__name__)

#: Tokens per batch (rows x length). Fits a 512-token text (512 copies of 512 tokens
#: run as 32 batches of 16 rows) in well under 1 GB for a BERT-base on GPU or CPU.
DEFAULT_BATCH_TOKENS = PLL_BATCH_TOKENS  # CPU-cache friendly; on a GPU pass 16384-65536
WORD_MASKS = PLL_WORD_MASKS
_UNBOUNDED = 1_000_000  # tokenizers without a limit report model_max_length ~ 1e30


# ----------------------------------------------------------------------------- tokenisation


@dataclass
class Encoded:
    """Content token ids (no special tokens) and word index per token, one array per text."""

    ids: list[np.ndarray]
    words: list[np.ndarray]


def special_layout(tokenizer) -> tuple[list[int], list[int]]:
    """The tokenizer's own special tokens before and after a single sequence: (prefix, suffix)."""
    probes = ["a", "hello world"]
    layout = None
    for text in probes:
        plain = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        full = list(tokenizer(text, add_special_tokens=True)["input_ids"])
        n = len(plain)
        found = [i for i in range(len(full) - n + 1) if full[i : i + n] == plain]
        if not plain or not found:
            raise ValueError(f"cannot locate the text inside the tokenizer's special-token layout: {full} vs {plain}")
        i = found[0]
        this = (full[:i], full[i + n :])
        if layout is not None and this != layout:
            raise ValueError(f"the tokenizer's special tokens depend on the text: {layout} vs {this}")
        layout = this
    assert layout is not None
    return layout


def _byte_level_prefix_space(tokenizer) -> bool | None:
    """``add_prefix_space`` of a fast tokenizer's ByteLevel pre-tokenizer (None: not byte-level)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    stack = [json.loads(backend.to_str()).get("pre_tokenizer")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel":
                return bool(node.get("add_prefix_space", False))
            stack.extend(node.get("pretokenizers") or [])
    return None


def wants_leading_space(tokenizer) -> bool:
    """True for tokenizers (byte-level BPE) that tokenise a word differently after a space.

    A ByteLevel pre-tokenizer without ``add_prefix_space`` decides it; otherwise a probe: the
    tokenizer spells ``" word"`` differently from ``"word"`` with the same number of tokens.
    """
    prefix_space = _byte_level_prefix_space(tokenizer)
    if prefix_space is not None:
        return not prefix_space
    for word in ("hello", "the"):
        bare = tokenizer.tokenize(word)
        spaced = tokenizer.tokenize(" " + word)
        if bare != spaced and len(bare) == len(spaced):
            return True
    return False


def _word_runs(word_ids: list[int | None]) -> np.ndarray:
    """Consecutive tokens with the same word id form one word; ``None`` ids are words of their own."""
    out = np.empty(len(word_ids), dtype=np.int64)
    w, prev = -1, object()
    for i, wid in enumerate(word_ids):
        if wid is None or wid != prev:
            w += 1
        out[i] = w
        prev = wid
    return out


def encode(tokenizer, texts: list[str], need_words: bool = True, chunk: int = 4096) -> Encoded:
    """Tokenise ``texts`` into content ids (no special tokens) and word indices."""
    lead = " " if wants_leading_space(tokenizer) else ""
    ids: list[np.ndarray] = []
    words: list[np.ndarray] = []
    fast = bool(getattr(tokenizer, "is_fast", False))
    for start in range(0, len(texts), chunk):
        part = [lead + t if t.strip() else "" for t in texts[start : start + chunk]]
        if fast or not need_words:
            enc = tokenizer(part, add_special_tokens=False)
            for j, row in enumerate(enc["input_ids"]):
                ids.append(np.asarray(row, dtype=np.int64))
                if fast and need_words:
                    words.append(_word_runs(enc.word_ids(j)))
                else:
                    words.append(np.arange(len(row), dtype=np.int64))
            continue
        for t in part:  # slow tokenizer: whitespace words, each tokenised on its own
            row, wrow = [], []
            for w, word in enumerate(t.split()):
                piece = tokenizer(lead + word if lead else word, add_special_tokens=False)["input_ids"]
                row.extend(piece)
                wrow.extend([w] * len(piece))
            ids.append(np.asarray(row, dtype=np.int64))
            words.append(np.asarray(wrow, dtype=np.int64))
    return Encoded(ids, words)


# ----------------------------------------------------------------------------- model plumbing


def model_max_length(model, tokenizer) -> int:
    """Tokens (incl. specials) the model accepts: its position limit, capped by the tokenizer's."""
    cfg = model.config
    limit = getattr(cfg, "max_position_embeddings", None) or _UNBOUNDED
    emb = getattr(model.base_model, "embeddings", None)
    pad_idx = getattr(emb, "padding_idx", None)
    if pad_idx is not None and hasattr(emb, "create_position_ids_from_input_ids"):
        limit -= pad_idx + 1  # RoBERTa-style positions start after the padding index
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and tok_max < _UNBOUNDED:
        limit = min(limit, int(tok_max))
    return int(limit)


def _distilbert_head(model, h):
    return model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))


def _deberta_v2_head(model, h):
    if getattr(model, "legacy", True):
        return model.cls(h)
    return model.lm_predictions(h, model.deberta.embeddings.word_embeddings)


#: MLM head applied to gathered hidden states (N, d) -> logits (N, V), per masked-LM class.
HEADS = {
    "BertForMaskedLM": lambda m, h: m.cls(h),
    "RobertaForMaskedLM": lambda m, h: m.lm_head(h),
    "XLMRobertaForMaskedLM": lambda m, h: m.lm_head(h),
    "CamembertForMaskedLM": lambda m, h: m.lm_head(h),
    "DistilBertForMaskedLM": _distilbert_head,
    "AlbertForMaskedLM": lambda m, h: m.predictions(h),
    "ElectraForMaskedLM": lambda m, h: m.generator_lm_head(m.generator_predictions(h)),
    "DebertaV2ForMaskedLM": _deberta_v2_head,
}
_warned_fallback: set[str] = set()
#: Largest |log p| difference (fp32) between a fast path and the full forward pass that counts as equal.
FAST_PATH_TOLERANCE = 1e-3

#: Classes whose encoder is BertLayer-shaped (attention.self.query/key/value, attention.output,
#: intermediate, output): their last layer is computed at the scored positions only.
BERT_LIKE = {"BertForMaskedLM", "RobertaForMaskedLM", "XLMRobertaForMaskedLM", "CamembertForMaskedLM",
             "ElectraForMaskedLM"}


def _last_layer_at(layer, h: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """A BertLayer's output at ``(rows, pos)`` only: keys/values from every position, queries and
    the feed-forward at the scored ones. Exact: the other positions' outputs are never read."""
    sa = layer.attention.self
    b, length, _ = h.shape
    heads, dh = sa.num_attention_heads, sa.attention_head_size
    k = sa.key(h).view(b, length, heads, dh).transpose(1, 2)
    v = sa.value(h).view(b, length, heads, dh).transpose(1, 2)
    hq = h[rows, pos]
    q = sa.query(hq).view(len(hq), heads, 1, dh)
    ctx = torch.nn.functional.scaled_dot_product_attention(q, k[rows], v[rows], scale=sa.scaling)
    att = layer.attention.output(ctx.reshape(len(hq), heads * dh), hq)
    return layer.output(layer.intermediate(att), att)


def _bert_like_hidden(model, input_ids: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Final hidden states at ``(rows, pos)`` of a BERT-like encoder (no padding in the batch)."""
    base = model.base_model
    h = base.embeddings(input_ids=input_ids)
    if hasattr(base, "embeddings_project"):  # ELECTRA with embedding_size != hidden_size
        h = base.embeddings_project(h)
    layers = base.encoder.layer
    for layer in layers[:-1]:
        h = layer(h)
    return _last_layer_at(layers[-1], h, rows, pos)


def _head_for(model):
    name = type(model).__name__
    head = HEADS.get(name)
    if head is None and name not in _warned_fallback:
        _warned_fallback.add(name)
        log.warning(f"{name}: no known masked-LM head, computing full logits (slower, same scores)")
    return head


# ----------------------------------------------------------------------------- planning


def window_starts(n: int, capacity: int) -> np.ndarray:
    """Starts of the windows of ``capacity`` tokens covering ``n`` tokens (see module docstring)."""
    if n <= capacity:
        return np.zeros(1, dtype=np.int64)
    stride = max(1, capacity // 2)
    starts = list(range(0, n - capacity, stride)) + [n - capacity]
    return np.asarray(starts, dtype=np.int64)


def choose_windows(lo: np.ndarray, hi: np.ndarray, starts: np.ndarray, capacity: int) -> np.ndarray:
    """Window index per span [lo, hi]: the one containing it with the most context (earliest on ties)."""
    s = starts[None, :]
    fits = (s <= lo[:, None]) & (hi[:, None] < s + capacity)
    ctx = np.minimum(lo[:, None] - s, s + capacity - 1 - hi[:, None])
    ctx = np.where(fits, ctx, -1)
    if (ctx.max(axis=1) < 0).any():
        bad = int(np.flatnonzero(ctx.max(axis=1) < 0)[0])
        raise ValueError(f"a word of {hi[bad] - lo[bad] + 1} tokens does not fit any window of {capacity}")
    return ctx.argmax(axis=1)


def masked_queries(n: int, words: np.ndarray, word_mask: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per masked copy: (masked token positions, scored token positions) for a text of ``n`` tokens."""
    if word_mask == "none":
        pos = [np.array([t]) for t in range(n)]
        return pos, pos
    bounds = np.flatnonzero(np.diff(words)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    if word_mask == "whole":
        spans = [np.arange(s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
        return spans, spans
    if word_mask == "l2r":
        end_of = np.repeat(ends, ends - starts)
        return [np.arange(t, end_of[t]) for t in range(n)], [np.array([t]) for t in range(n)]
    raise ValueError(f"word_mask must be one of {', '.join(WORD_MASKS)}, got {word_mask!r}")


@dataclass
class _Plan:
    """All masked copies of a batch of texts, as flat arrays (CSR for per-row position lists)."""

    win_flat: np.ndarray  # all window token ids (incl. specials) concatenated
    win_off: np.ndarray  # start of each window in win_flat
    win_len: np.ndarray
    row_win: np.ndarray  # window of each masked copy
    mask_ptr: np.ndarray  # CSR into mask_pos
    mask_pos: np.ndarray  # positions to mask (window coordinates)
    score_ptr: np.ndarray  # CSR into score_pos / target / out
    score_pos: np.ndarray
    target: np.ndarray
    out: np.ndarray  # index into the flat per-token output
    num_tokens: int
    windowed: int = 0  # texts longer than the model, scored in windows


def _csr(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=ptr[1:])
    flat = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return ptr, flat


def build_plan(enc: Encoded, prefix: list[int], suffix: list[int], max_length: int, word_mask: str) -> _Plan:
    """Every masked copy of every text, assigned to its window."""
    capacity = max_length - len(prefix) - len(suffix)
    if capacity < 1:
        raise ValueError(f"max_length {max_length} leaves no room next to {len(prefix) + len(suffix)} special tokens")
    pre, suf = np.asarray(prefix, dtype=np.int64), np.asarray(suffix, dtype=np.int64)
    p = len(prefix)
    windows, row_win, masks, scores, targets, outs = [], [], [], [], [], []
    tok_off = 0
    windowed = 0
    for ids, words in zip(enc.ids, enc.words, strict=True):
        n = len(ids)
        if n == 0:
            continue
        starts = window_starts(n, capacity)
        windowed += len(starts) > 1
        base = len(windows)
        for s in starts.tolist():
            windows.append(np.concatenate([pre, ids[s : s + capacity], suf]))
        if word_mask == "none" and len(starts) == 1:  # the common case, vectorised
            pos = np.arange(n)
            row_win.append(np.full(n, base))
            masks.extend(np.split(pos + p, n))
            scores.extend(np.split(pos + p, n))
            targets.append(ids)
            outs.append(tok_off + pos)
            tok_off += n
            continue
        mq, sq = masked_queries(n, words, word_mask)
        lo = np.array([m[0] for m in mq])
        hi = np.array([m[-1] for m in mq])
        w = choose_windows(lo, hi, starts, capacity)
        shift = starts[w] - p  # content position -> window position
        row_win.append(base + w)
        for m, sc, d in zip(mq, sq, shift.tolist(), strict=True):
            masks.append(m - d)
            scores.append(sc - d)
            targets.append(ids[sc])
            outs.append(tok_off + sc)
        tok_off += n
    win_len = np.array([len(x) for x in windows], dtype=np.int64)
    win_off = np.zeros(len(windows) + 1, dtype=np.int64)
    np.cumsum(win_len, out=win_off[1:])
    mask_ptr, mask_pos = _csr(masks)
    score_ptr, score_pos = _csr(scores)
    return _Plan(
        win_flat=np.concatenate(windows) if windows else np.zeros(0, dtype=np.int64),
        win_off=win_off[:-1], win_len=win_len,
        row_win=np.concatenate(row_win) if row_win else np.zeros(0, dtype=np.int64),
        mask_ptr=mask_ptr, mask_pos=mask_pos, score_ptr=score_ptr, score_pos=score_pos,
        target=np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64),
        out=np.concatenate(outs) if outs else np.zeros(0, dtype=np.int64),
        num_tokens=tok_off, windowed=windowed,
    )


def pack_batches(row_len: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Rows grouped by length (longest first), at most ``batch_tokens`` tokens per batch.

    A batch holds rows of one length only: no padding, so no attention mask, which lets SDPA use
    its fused (flash) kernels; a row longer than the budget forms a batch of its own.
    """
    order = np.argsort(-row_len, kind="stable")
    lens = row_len[order]
    cuts = np.flatnonzero(np.diff(lens)) + 1
    batches = []
    for group in np.split(np.arange(len(order)), cuts) if len(order) else []:
        rows = max(1, batch_tokens // int(lens[group[0]]))
        for i in range(0, len(group), rows):
            batches.append(order[group[i : i + rows]])
    return batches


def _segments(ptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For CSR ``ptr`` and selected ``rows``: (local row of each element, flat element index)."""
    counts = ptr[rows + 1] - ptr[rows]
    local = np.repeat(np.arange(len(rows)), counts)
    first = np.repeat(ptr[rows] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return local, first + np.arange(int(counts.sum()))


# ----------------------------------------------------------------------------- scorer


@dataclass
class PllStats:
    """Counters of the last call (logged by the caller)."""

    texts: int = 0
    unique: int = 0
    empty: int = 0  # texts without tokens (score 0.0), duplicates included
    windowed: int = 0  # texts longer than the model, scored in windows, duplicates included
    tokens: int = 0
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def duplicate_rate(self) -> float:
        return 1.0 - self.unique / self.texts if self.texts else 0.0


class PllScorer:
    """Exact, batched PLL of texts under a Hugging Face masked LM (see the module docstring)."""

    def __init__(self, model, tokenizer, device: torch.device | str = "cpu", dtype: str = "fp32",
                 batch_tokens: int = DEFAULT_BATCH_TOKENS, word_mask: str = "none", dedup: bool = True,
                 max_length: int | None = None, progress: bool = False):
        if word_mask not in WORD_MASKS:
            raise ValueError(f"word_mask must be one of {', '.join(WORD_MASKS)}, got {word_mask!r}")
        if tokenizer.mask_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no mask token: not a masked-LM tokenizer")
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.dtype = dtype
        self.batch_tokens = batch_tokens
        self.word_mask = word_mask
        self.dedup = dedup
        self.progress = progress
        self.max_length = max_length or model_max_length(model, tokenizer)
        self.prefix, self.suffix = special_layout(tokenizer)
        self.capacity = self.max_length - len(self.prefix) - len(self.suffix)  # content tokens per window
        self.mask_id = int(tokenizer.mask_token_id)
        self.head = _head_for(model)
        cfg = model.config
        self.bert_like = (type(model).__name__ in BERT_LIKE and not getattr(cfg, "is_decoder", False)
                          and getattr(cfg, "position_embedding_type", "absolute") == "absolute")
        # the fast paths are checked against the model's own logits on the first batch (see _logits)
        self.verified = self.head is None
        self.stats = PllStats()
        autocast(self.device, dtype)  # validates dtype/device early

    # -- public API

    def score(self, texts: list[str]) -> np.ndarray:
        """Natural-log PLL per text (float64; 0.0 for an empty text)."""
        return np.array([lp.sum(dtype=np.float64) for lp in self.score_tokens(texts)], dtype=np.float64)

    def score_tokens(self, texts: list[str]) -> list[np.ndarray]:
        """Per-token log-probabilities per text (their sum is :meth:`score`)."""
        return self.score_detailed(texts)[1]

    def score_detailed(self, texts: list[str], partial=None) -> tuple[list[list[str]], list[np.ndarray]]:
        """(subword tokens, their log-probabilities) per text. ``partial``: a
        :class:`rescore.stage.PartialResults` that keeps finished batches on disk (and restores
        those a killed run of the same texts and options finished)."""
        texts = list(texts)
        uniq, inverse = self._dedup(texts)
        enc = encode(self.tokenizer, uniq, need_words=self.word_mask != "none")
        lps = self._score_encoded(enc, partial)
        self.stats.texts, self.stats.unique = len(texts), len(uniq)
        self.stats.empty = sum(len(enc.ids[i]) == 0 for i in inverse)
        self.stats.windowed = sum(len(enc.ids[i]) > self.capacity for i in inverse)
        toks = [self.tokenizer.convert_ids_to_tokens(ids.tolist()) for ids in enc.ids]
        return [toks[i] for i in inverse], [lps[i] for i in inverse]

    def score_ids(self, ids: list[list[int]], word_ids: list[list[int]] | None = None) -> np.ndarray:
        """PLL of pre-tokenised texts (content ids WITHOUT special tokens); words needed unless ``none``."""
        if word_ids is None and self.word_mask != "none":
            raise ValueError(f"word_mask={self.word_mask} needs word_ids for score_ids")
        arrays = [np.asarray(x, dtype=np.int64) for x in ids]
        words = [np.asarray(w, dtype=np.int64) for w in word_ids] if word_ids else [np.arange(len(a)) for a in arrays]
        inverse = list(range(len(arrays)))
        if self.dedup:
            first: dict[bytes, int] = {}
            inverse = [first.setdefault(a.tobytes(), len(first)) for a in arrays]
        rep: dict[int, int] = {}
        for i, u in enumerate(inverse):
            rep.setdefault(u, i)
        enc = Encoded([arrays[rep[u]] for u in range(len(rep))], [words[rep[u]] for u in range(len(rep))])
        lps = self._score_encoded(enc)
        self.stats.texts, self.stats.unique = len(arrays), len(enc.ids)
        self.stats.empty = sum(len(a) == 0 for a in arrays)
        self.stats.windowed = sum(len(a) > self.capacity for a in arrays)
        return np.array([lps[i].sum(dtype=np.float64) for i in inverse], dtype=np.float64)

    # -- internals

    def _dedup(self, texts: list[str]) -> tuple[list[str], list[int]]:
        if not self.dedup:
            return texts, list(range(len(texts)))
        first: dict[str, int] = {}
        inverse = [first.setdefault(t, len(first)) for t in texts]
        return list(first), inverse

    def _score_encoded(self, enc: Encoded, partial=None) -> list[np.ndarray]:
        t0 = time.perf_counter()
        plan = build_plan(enc, self.prefix, self.suffix, self.max_length, self.word_mask)
        flat = np.zeros(plan.num_tokens, dtype=np.float64)
        batches = pack_batches(plan.win_len[plan.row_win], self.batch_tokens)
        done = partial.restore(len(batches)) if partial is not None else {}
        for out, lp in done.values():
            flat[out] = lp
        todo = [b for b in range(len(batches)) if b not in done]
        it = todo
        if self.progress:
            from tqdm import tqdm

            it = tqdm(todo, desc="PLL", unit="batch", mininterval=5, initial=len(done), total=len(batches))
        with torch.inference_mode(), autocast(self.device, self.dtype):
            for b in it:
                out, lp = self._run_batch(plan, batches[b])
                flat[out] = lp
                if partial is not None:
                    partial.add(b, out, lp)
        if partial is not None:
            partial.flush()
        lens = [len(x) for x in enc.ids]
        result = np.split(flat, np.cumsum(lens)[:-1]) if lens else []
        st = self.stats
        st.tokens, st.rows, st.batches = plan.num_tokens, len(plan.row_win), len(batches)
        st.seconds = time.perf_counter() - t0
        return result

    def _run_batch(self, plan: _Plan, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wins = plan.row_win[rows]
        width = int(plan.win_len[wins[0]])  # one length per batch (pack_batches)
        ids = plan.win_flat[plan.win_off[wins][:, None] + np.arange(width)[None, :]]
        r, k = _segments(plan.mask_ptr, rows)
        ids[r, plan.mask_pos[k]] = self.mask_id
        sr, sk = _segments(plan.score_ptr, rows)
        dev = self.device
        input_ids = torch.from_numpy(ids).to(dev, non_blocking=True)
        srow = torch.from_numpy(sr).to(dev)
        spos = torch.from_numpy(plan.score_pos[sk]).to(dev)
        tgt = torch.from_numpy(plan.target[sk]).to(dev)
        logits = self._logits(input_ids, srow, spos)
        logp = torch.log_softmax(logits.float(), dim=-1).gather(1, tgt[:, None])[:, 0]
        return plan.out[sk], logp.double().cpu().numpy()

    @property
    def path(self) -> str:
        """Which computation scores: ``bert-last-layer`` (the last layer at the scored positions only),
        ``head`` (the encoder, then the masked-LM head at the scored positions) or ``full``."""
        if self.head is None:
            return "full"
        return "bert-last-layer" if self.bert_like else "head"

    def _fast_logits(self, input_ids: torch.Tensor, srow: torch.Tensor, spos: torch.Tensor) -> torch.Tensor:
        if self.bert_like:
            return self.head(self.model, _bert_like_hidden(self.model, input_ids, srow, spos))
        return self.head(self.model, self.model.base_model(input_ids=input_ids)[0][srow, spos])

    def _logits(self, input_ids: torch.Tensor, srow: torch.Tensor, spos: torch.Tensor) -> torch.Tensor:
        """Logits at the scored positions. A fast path (known head, BERT-shaped last layer) reaches
        into the model's modules; on the first batch it is checked, in fp32, against the model's own
        forward pass, and a model it does not reproduce (an unknown layer variant, a changed head, a
        hook) is scored with the full forward pass from then on: logged, never silently wrong."""
        if self.verified:
            if self.head is None:
                return self._full_logits(input_ids, srow, spos)
            return self._fast_logits(input_ids, srow, spos)
        self.verified = True
        k = min(len(input_ids), 8)  # a few rows are enough; full logits of a whole batch can be large
        sel = srow < k
        ids, r, q = input_ids[:k], srow[sel], spos[sel]
        with torch.autocast(self.device.type, enabled=False):
            full = torch.log_softmax(self._full_logits(ids, r, q).float(), dim=-1)
            try:
                fast = torch.log_softmax(self._fast_logits(ids, r, q).float(), dim=-1)
                diff = float((fast - full).abs().max()) if fast.shape == full.shape else math.inf
                why = f"max |log p difference| {diff:.3g}"
            except (AttributeError, TypeError, ValueError, RuntimeError, IndexError) as e:
                diff, why = math.inf, f"{type(e).__name__}: {e}"
        name = type(self.model).__name__
        if diff <= FAST_PATH_TOLERANCE:
            log.debug("%s: fast PLL path %s checked against the full forward pass (%s)", name, self.path, why)
            return self._fast_logits(input_ids, srow, spos)
        log.warning("%s: the fast PLL path (%s) does not reproduce the model's own logits (%s): scoring with the "
                    "full forward pass (slower, exact)", name, self.path, why)
        self.head, self.bert_like = None, False
        return self._full_logits(input_ids, srow, spos)

    def _full_logits(self, input_ids: torch.Tensor, srow: torch.Tensor, spos: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids).logits[srow, spos]


# ----------------------------------------------------------------------------- reference


def reference_pll(model, tokenizer, texts: list[str], word_mask: str = "none") -> list[np.ndarray]:
    """Straightforward PLL: one text at a time, all masked copies in one batch, full logits, fp32.

    Per-token log-probabilities per text; texts longer than the model raise ``ValueError``.
    """
    prefix, suffix = special_layout(tokenizer)
    limit = model_max_length(model, tokenizer)
    enc = encode(tokenizer, list(texts), need_words=word_mask != "none")
    out = []
    with torch.inference_mode():
        for ids, words in zip(enc.ids, enc.words, strict=True):
            out.append(reference_pll_ids(model, tokenizer, ids, words, prefix, suffix, limit, word_mask))
    return out


def reference_pll_ids(model, tokenizer, ids: np.ndarray, words: np.ndarray, prefix: list[int], suffix: list[int],
                      limit: int, word_mask: str = "none") -> np.ndarray:
    """Reference per-token log-probabilities of one pre-tokenised text (see :func:`reference_pll`)."""
    n = len(ids)
    if n == 0:
        return np.zeros(0)
    full = list(prefix) + ids.tolist() + list(suffix)
    if len(full) > limit:
        raise ValueError(f"{len(full)} tokens exceed the model's {limit}")
    masks, scored = masked_queries(n, words, word_mask)
    copies = torch.tensor([full] * len(masks), dtype=torch.long)
    for j, m in enumerate(masks):
        copies[j, len(prefix) + torch.as_tensor(m)] = tokenizer.mask_token_id
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=copies.to(device), attention_mask=torch.ones_like(copies).to(device)).logits
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
    lp = np.zeros(n)
    for j, sc in enumerate(scored):
        for t in sc.tolist():
            lp[t] = float(logp[j, len(prefix) + t, int(ids[t])])
    return lp
