"""Training a small LSTM LM, the conventional baseline rescorer of RescoreBERT.

:func:`train_lstm_lm` reads a text corpus (one sentence per line), normalises it with the
configured :class:`~rescore.data.textnorm.Normalizer` flags, trains sentencepiece units (or builds a
word vocabulary), and trains an :class:`~rescore.models.lstm.LstmLm` on ``<s> units </s>`` with AdamW,
linear warmup/decay and gradient clipping. Everything lands in ``OUT``::

    OUT/units/              the units, trained once (reused on resume)
    OUT/checkpoints/step<N> Checkpointer checkpoints (exact resume, RNG included)
    OUT/train_log.jsonl     train loss every ``log_every`` steps, dev perplexity at step 0 and per epoch
    OUT/model/              the final model, loadable by ``score_clm --model OUT/model``

Determinism: the held-out split and every epoch's batch order come from generators seeded with
``seed`` (and the epoch), and dropout's RNG state is checkpointed, so an interrupted run resumed
from its latest checkpoint ends with the same weights as an uninterrupted one (exactly on CPU).

Perplexities are per unit (``dev_ppl``, the ``</s>`` of each sentence counted) and per word
(``dev_word_ppl``: the same log-likelihood over words + one ``</s>`` per sentence, comparable
across unit inventories).
"""

from __future__ import annotations

import json
import math
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
from rescore.models.lstm import (
    BOS_ID,
    EOS_ID,
    UNITS,
    CausalLmScorer,
    LstmLm,
    LstmLmConfig,
    SpmUnits,
    WordUnits,
    load_units,
    save_lstm,
    train_units,
)
from rescore.runtime import autocast, resolve_device
from rescore.train import loop
from rescore.train.loop import Checkpointer, JsonlLog, build_optimizer, seed_everything
from rescore.train.trainer import LoopState, Trainer

log = get_logger(__name__)

#: What the trainer owns inside OUT (removed by a fresh start; nothing else in OUT is touched).
OWNED = ("units", "checkpoints", "model", "train_log.jsonl")


@dataclass
class TrainClmConfig:
    """Every option of ``train_clm`` (defaults here and in ``conf/train_clm.yaml``)."""

    unit: Literal["unigram", "bpe", "char", "word"] = "unigram"
    vocab_size: int = 5000
    norm: str = "none"
    embed_dim: int = 512
    hidden_dim: int = 512
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = True
    epochs: int = 10
    max_steps: int = 0
    batch_size: int = 64
    lr: float = 0.001
    weight_decay: float = 0.01
    warmup_steps: int = 200
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = "auto"
    dtype: Literal["fp32", "bf16"] = "fp32"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 100
    dev_fraction: float = 0.05

    def validate(self) -> None:
        """Range checks the type system cannot express (ConfigError names the key)."""
        positive = ("vocab_size", "embed_dim", "hidden_dim", "num_layers", "epochs", "batch_size",
                    "checkpoint_every", "keep_checkpoints", "log_every")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"config key {key!r} must be >= 1, got {getattr(self, key)}")
        for key in ("max_steps", "warmup_steps", "weight_decay", "max_grad_norm"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key {key!r} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"config key 'dropout' must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise ConfigError(f"config key 'dev_fraction' must be in [0, 1), got {self.dev_fraction}")
        if self.lr <= 0:
            raise ConfigError(f"config key 'lr' must be > 0, got {self.lr}")
        if self.unit not in UNITS:
            raise ConfigError(f"config key 'unit' must be one of {UNITS}, got {self.unit!r}")
        if self.unit == "word" and self.vocab_size < 5:
            raise ConfigError("config key 'vocab_size' must leave room for words after the 4 specials")
        try:
            Normalizer.parse(self.norm)
        except ValueError as e:
            raise ConfigError(f"config key 'norm': {e}") from None


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def read_corpus(path: str | Path, norm: Normalizer) -> list[str]:
    """Normalised sentences of a one-sentence-per-line UTF-8 file; empty lines are counted and skipped."""
    require_file(path, "text file")
    sentences, empty, emptied, total = [], 0, 0, 0
    for lineno, line in iter_lines(path, allow_empty=True):
        total += 1
        words = line.split()  # ASCII whitespace only
        if not words:
            empty += 1
            continue
        text = norm.text(decode(b" ".join(words), path, lineno))
        if not text:
            emptied += 1
            continue
        sentences.append(text)
    if total != len(sentences) + empty + emptied:  # counts in = counts out
        raise RuntimeError(f"{path}: {total} lines but {len(sentences)} + {empty} + {emptied} accounted for")
    log.info(f"read {total} lines from {path}: {len(sentences)} sentences, {empty} empty lines skipped, "
             f"{emptied} empty after normalisation '{norm}' skipped")
    if not sentences:
        raise InputError(path, None, "no non-empty sentence to train on")
    return sentences


def split_dev(sentences: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out ``round(n * fraction)`` sentences (at least one when fraction > 0 and n >= 2)."""
    n = len(sentences)
    k = 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))
    if k == 0:
        return sentences, []
    perm = np.random.default_rng(seed).permutation(n)
    dev_idx = set(perm[:k].tolist())
    train = [s for i, s in enumerate(sentences) if i not in dev_idx]
    dev = [s for i, s in enumerate(sentences) if i in dev_idx]
    return train, dev


def encode_sentences(units: SpmUnits | WordUnits, sentences: list[str]) -> list[np.ndarray]:
    """``<s> units </s>`` id arrays."""
    return [np.array([BOS_ID, *ids, EOS_ID], dtype=np.int64) for ids in units.encode(sentences)]


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches (sentence indices) of one epoch: a permutation seeded by ``seed`` and ``epoch``."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen).numpy()
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def collate(seqs: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (padded with ``pad_id``) and targets (padded with -100, ignored by the loss)."""
    width = max(len(s) for s in seqs) - 1
    inputs = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    targets = torch.full((len(seqs), width), -100, dtype=torch.long)
    for b, s in enumerate(seqs):
        t = torch.from_numpy(s)
        inputs[b, :len(s) - 1] = t[:-1]
        targets[b, :len(s) - 1] = t[1:]
    return inputs, targets


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def dev_perplexity(model: LstmLm, units: SpmUnits | WordUnits, sentences: list[str], device: torch.device,
                   dtype: str) -> dict[str, float]:
    """Per-unit and per-word perplexity of ``sentences`` (already normalised), ``</s>`` included."""
    was_training = model.training
    model.eval()
    cfg = model.cfg
    scorer = CausalLmScorer(forward=lambda ids, mask: model(ids), encode=units.encode, bos_id=cfg.bos_id,
                            eos_id=cfg.eos_id, pad_id=cfg.pad_id, device=device, dtype=dtype, dedup=False)
    logp = scorer.score(sentences)
    model.train(was_training)
    total = float(logp.sum())
    n_units = scorer.stats.tokens
    n_words = sum(len(s.split(" ")) for s in sentences) + len(sentences)
    return {"dev_logprob": total, "dev_units": n_units, "dev_ppl": math.exp(-total / n_units),
            "dev_word_ppl": math.exp(-total / n_words)}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    step: int
    epoch: int
    finished: bool
    dev: dict[str, float] | None


def fresh_start(out: Path) -> None:
    """Remove what a previous run of the trainer left in ``out`` (only the trainer's own files)."""
    loop.fresh_start(out, OWNED)


def _checkpoint_fingerprint(path: Path) -> str | None:
    try:
        return json.loads((path / "state.json").read_text(encoding="utf-8")).get("data")
    except (OSError, json.JSONDecodeError):
        return None


def _prepare_units(cfg: TrainClmConfig, train: list[str], out: Path) -> SpmUnits | WordUnits:
    udir = out / "units"
    if udir.is_dir() and any(udir.iterdir()):
        units = load_units(udir, cfg.unit)
        log.info(f"reusing {units.vocab_size} {cfg.unit} units from {udir}")
        return units
    try:
        units = train_units(train, cfg.unit, cfg.vocab_size)
    except ConfigError as e:  # a clean CLI message, not a traceback
        raise InputError(None, None, str(e)) from None
    udir.mkdir(parents=True, exist_ok=True)
    units.save(udir)
    log.info(f"trained {units.vocab_size} {cfg.unit} units (vocab_size {cfg.vocab_size}) -> {udir}")
    return units


@dataclass
class _State(LoopState):
    loss_sum: float = 0.0  # summed step losses of the epoch so far
    loss_steps: int = 0


class _LstmTrainer(Trainer):
    desc = "train_clm"
    state_cls = _State

    def __init__(self, cfg: TrainClmConfig, out: Path, model: LstmLm, data: list[np.ndarray],
                 units: SpmUnits | WordUnits, dev: list[str], device: torch.device, fingerprint: str):
        super().__init__(cfg, out, fingerprint)
        self.model, self.data, self.units, self.dev, self.device = model, data, units, dev, device
        self.steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
        full = cfg.epochs * self.steps_per_epoch
        self.total = self.schedule = full if cfg.max_steps == 0 else min(full, cfg.max_steps)
        self.opt, self.sched = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.warmup_steps, self.total)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    def epoch_batches(self, epoch: int) -> list:
        return epoch_batches(len(self.data), self.cfg.batch_size, self.cfg.seed, epoch - 1)

    def train_step(self, group: list[np.ndarray]) -> tuple[float, dict[str, float]]:
        (batch,) = group
        inputs, targets = collate([self.data[i] for i in batch], self.model.cfg.pad_id)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        with autocast(self.device, self.cfg.dtype):
            logits = self.model(inputs)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                 targets.reshape(-1), ignore_index=-100)
        self.opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.optimizer_step(self.model.parameters())
        self.state.loss_sum += loss.item()
        self.state.loss_steps += 1
        return loss.item(), {}

    def before_fit(self, jlog: JsonlLog | None) -> None:
        if self.step == 0 and not self.state.history:
            self.record(self.evaluate(0, False), jlog)

    def new_epoch(self) -> None:
        self.state.loss_sum, self.state.loss_steps = 0.0, 0

    def evaluate(self, epoch: int, partial: bool) -> dict[str, Any]:
        rec: dict[str, Any] = {"epoch": epoch, "step": self.step, "partial": partial}
        if self.state.loss_steps:
            rec["train_loss"] = self.state.loss_sum / self.state.loss_steps
        if self.dev:
            rec.update(dev_perplexity(self.model, self.units, self.dev, self.device, self.cfg.dtype))
            log.info(f"step {self.step} epoch {epoch}{' (partial)' if partial else ''}: dev perplexity "
                     f"{rec['dev_ppl']:.3f} per unit, {rec['dev_word_ppl']:.3f} per word")
        return rec


def train_lstm_lm(cfg: TrainClmConfig, text: str | Path, out: str | Path, dev_text: str | Path | None = None,
                  resume: bool = True, fingerprint: str = "", stop_after: int | None = None) -> TrainResult:
    """Train (or resume) an LSTM LM; writes ``out/config.yaml`` once the corpus has been read (a
    missing, unreadable or empty corpus writes nothing) and ``out/model`` when training finishes.

    ``fingerprint`` identifies inputs + config; checkpoints made with another one are discarded
    (with a warning) and training starts again. ``stop_after`` ends this invocation after that many
    steps with a checkpoint (for preemptible jobs and tests); a later call with ``resume=True``
    continues exactly.
    """
    cfg.validate()
    out = Path(out)
    norm = Normalizer.parse(cfg.norm)
    sentences = read_corpus(text, norm)
    dev_sentences = read_corpus(dev_text, norm) if dev_text is not None else None
    out.mkdir(parents=True, exist_ok=True)
    latest = Checkpointer(out).latest() if resume else None
    if latest is not None and _checkpoint_fingerprint(latest) != fingerprint:
        log.warning(f"{latest} was made with other inputs or config: starting again")
        latest = None
    if latest is None:
        fresh_start(out)
    save_config(cfg, out / "config.yaml")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)

    if dev_sentences is not None:
        train, dev = sentences, dev_sentences
    else:
        train, dev = split_dev(sentences, cfg.dev_fraction, cfg.seed)
    log.info(f"{len(train)} training sentences, {len(dev)} held-out sentences"
             + ("" if dev_text is None else f" from {dev_text}"))
    if not dev:
        log.warning("no held-out sentences (dev_fraction 0 and no --dev_text): no dev perplexity is logged")
    units = _prepare_units(cfg, train, out)
    data = encode_sentences(units, train)

    mcfg = LstmLmConfig(vocab_size=units.vocab_size, embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim,
                        num_layers=cfg.num_layers, dropout=cfg.dropout, tie_weights=cfg.tie_weights,
                        unit=cfg.unit, norm=str(norm))
    trainer = _LstmTrainer(cfg, out, LstmLm(mcfg).to(device), data, units, dev, device, fingerprint)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    log.info(f"LSTM LM: {n_params} parameters, {trainer.steps_per_epoch} steps per epoch, {trainer.total} steps "
             f"on {device}")
    if cfg.warmup_steps >= trainer.total:
        log.warning(f"warmup_steps {cfg.warmup_steps} >= {trainer.total} training steps: the learning rate never "
                    f"reaches lr {cfg.lr}; lower warmup_steps")
    jlog_path = out / "train_log.jsonl"
    if latest is not None and trainer.resume():
        trainer.truncate_log(jlog_path)
    jlog = JsonlLog(jlog_path)
    try:
        finished = trainer.fit(jlog, stop_after=stop_after)
    finally:
        jlog.close()
    last = trainer.state.history[-1] if trainer.state.history else {}
    dev_res = {k: v for k, v in last.items() if k.startswith("dev_")} or None
    if finished:
        save_lstm(trainer.model, units, out / "model")
        log.info(f"wrote {out / 'model'} after {trainer.step} steps ({trainer.state.epoch - 1} epochs)")
    return TrainResult(step=trainer.step, epoch=trainer.state.epoch - 1, finished=finished, dev=dev_res)
