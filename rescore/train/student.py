"""Training the RescoreBERT student: MLM distillation (MD), then MWER or MWED discriminative training.

``train_student(train_set, train_scores, dev_set, dev_scores, out, cfg)`` trains a
:class:`rescore.models.RescoreBert` on the n-best lists of ``train_set`` with the teacher's PLL
(``<train_scores>/pll``, from ``score_pll``) and writes into ``out``:

* ``model/``: the BEST student (by dev WER after rescoring, see below) as one
  ``save_pretrained`` directory, loadable by ``RescoreBert.from_pretrained`` and
  ``score_student --model``;
* ``config.yaml`` (resolved config), ``run.yaml`` (replay command, versions, commit);
* ``train_log.jsonl`` (+ ``tensorboard/`` when installed): loss, learning rate, gradient norm and
  beta every ``log_every`` steps, and one ``"event": "epoch"`` record per evaluation;
* ``checkpoints/step<N>/`` every ``checkpoint_every`` steps and at every epoch end;
* ``summary.json``: per-epoch dev WER with the tuned weight, the best epoch, first-pass and
  oracle dev WER, counts;
* ``.done`` (last): fingerprint of both sets, both PLL archives, the init model and the config.

Objectives (``objective``), all on the hypotheses of the training n-best lists (the top
``nbest_max`` of each utterance by first-pass score when set):

* ``md``: ``L = mean_i (student_i - pll_i)^2`` over batches of ``batch_hyps`` hypotheses
  (plus, optionally, the sentences of ``md_text`` with their teacher PLL ``md_text_scores``:
  distillation needs no audio);
* ``mwer`` / ``mwed``: over batches of ``batch_utts`` utterances, padded to ``(U, N)`` with masks,
  ``s_i = first_pass_i + beta * student_i`` with the first-pass scores AS STORED (``nbest/score``;
  each utterance's scores are shifted by their maximum, which neither loss sees),
  ``L = L_mwer|mwed(s, errors) + lambda_md * L_MD`` (the MD term on the same hypotheses against
  the teacher PLL; ``lambda_md = 0`` turns the fusion off). See :mod:`rescore.train.losses`.

beta: with ``beta: null`` it is tuned on dev for the current student before training starts
(:func:`rescore.scoring.tuning.tune_weights`, ``first_pass + w * student``): for a student distilled with
``md`` this is the issue's "value tuned on dev for the MD student", on the recogniser's own
first-pass scale. A tuned weight <= 0 (a student that does not help yet) falls back to the ratio
of the within-utterance spreads of first pass and student, with a warning. With ``learn_beta``
beta is a parameter of the optimiser (own learning rate ``beta_lr``, no weight decay, no
clipping) and logged.

Evaluation, at the start (epoch 0, the init student) and after every epoch (and after a last
partial epoch when ``max_steps`` stops mid-epoch): the dev set is scored with the student, the
weight of ``first_pass + w * student`` is RE-TUNED on dev, and ``dev_wer`` = errors of the
rescored 1-best / reference units (in percent; characters for ``cer`` sets, labelled WER as Kaldi
does) is reported: the number a user will see. Also reported: the dev MD loss, the dev WER with
the training combination (``dev_wer_train_beta``), and once, the first-pass and oracle dev WER.
Early stopping (``early_stopping_patience``) and the choice of ``model/`` use ``dev_wer`` over the
trained evaluations (step > 0; ties go to the earlier one). Dev utterances without a reference are
left out of evaluation (counted and logged).

Errors are counted against ``<set>/text`` with the set's recorded normalisation and metric
(:func:`rescore.scoring.stats.scoring_setup`), in memory: the input sets are never written to. The student
reads each hypothesis after ``norm`` (rescore.data.textnorm flags; use the normalisation the teacher PLL
was computed with, and the same one with ``score_student``). Hypotheses longer than ``max_length``
tokens are truncated from the right by the student (counted and logged). A hypothesis whose teacher
PLL is not finite is left out of the MD loss, one whose first-pass score is not finite takes no part
in MWER/MWED (:mod:`rescore.train.losses`); both are counted and logged.

Resume (``resume=True``): continues from the latest checkpoint (model, beta, optimiser, scheduler,
RNG states, position within the epoch, history, early-stopping state); on CPU with a fixed seed the
final weights equal those of an uninterrupted run. As in :mod:`rescore.train.mlm`, give a run you
mean to stop early and extend later the final total in ``schedule_steps``.

Multi-GPU / multi-node: run under ``torchrun`` (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the
environment): the process group is initialised (nccl on CUDA, gloo on CPU), every rank trains on
a deterministic slice (``batch[rank::world]``) of the same global micro-batch, gradients are
averaged by DistributedDataParallel and the per-rank losses are weighted so that the result equals
one process with the same global batch. Dev scoring is split between the ranks. Only rank 0 writes
files; multi-node runs need ``out`` on a shared filesystem. Exact resume is guaranteed for one
process (with dropout, each rank's dropout RNG is not checkpointed separately).
"""

from __future__ import annotations

import contextlib
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
from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.runtime import autocast, resolve_device, set_threads
from rescore.stage import atomic_open, clear_done, digest_paths, fingerprint, is_done, mark_done, write_run_info
from rescore.train.loop import JsonlLog, build_optimizer, fresh_start, remove_path, seed_everything
from rescore.train.trainer import DistInfo, LoopState, Trainer, all_reduce_sum, barrier, init_distributed

log = get_logger(__name__)

MODULE = "rescore.bin.train_student"
# Keys that may change between a run and its --resume without changing what is computed.
_RESUME_FREE = {"epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "num_threads",
                "eval_batch_tokens", "early_stopping_patience"}
_TOKENIZE_CHUNK = 4096


@dataclass
class StudentTrainConfig:
    """Student training; every key is documented in ``conf/md.yaml``."""

    objective: Literal["md", "mwer", "mwed"] = "md"
    init: str | None = None
    epochs: int = 3
    max_steps: int | None = None
    schedule_steps: int | None = None
    lr: float = 5e-5
    beta_lr: float | None = None
    weight_decay: float = 0.01
    warmup_steps: int = 100
    batch_hyps: int = 256
    batch_utts: int = 16
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    nbest_max: int | None = None
    beta: float | None = None
    learn_beta: bool = False
    lambda_md: float = 0.0
    mwed_temperature: Literal["mad", "fixed"] = "mad"
    mwed_temperature_value: float = 1.0
    calibrate: bool = True
    head_hidden: int = 256
    head_activation: Literal["tanh", "gelu", "relu"] = "tanh"
    dropout: float = 0.1
    encoder_dropout: float | None = None
    max_length: int = 128
    norm: str = "none"
    md_text: str | None = None
    md_text_scores: str | None = None
    seed: int = 0
    device: str = "auto"
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    early_stopping_patience: int | None = None
    eval_batch_tokens: int = 8192
    log_every: int = 50
    num_threads: int = 0


def validate(cfg: StudentTrainConfig) -> None:
    """Range and consistency checks; a bad value is a :class:`ConfigError` naming the key."""
    from rescore.data.textnorm import Normalizer

    checks = [
        ("init", cfg.init is not None and cfg.init != "", "must be given (config or --init)"),
        ("epochs", cfg.epochs >= 1 or cfg.max_steps is not None, "must be >= 1"),
        ("max_steps", cfg.max_steps is None or cfg.max_steps >= 1, "must be >= 1 or null"),
        ("schedule_steps", cfg.schedule_steps is None or cfg.schedule_steps >= 1, "must be >= 1 or null"),
        ("lr", cfg.lr > 0, "must be > 0"),
        ("beta_lr", cfg.beta_lr is None or cfg.beta_lr > 0, "must be > 0 or null (lr)"),
        ("weight_decay", cfg.weight_decay >= 0, "must be >= 0"),
        ("warmup_steps", cfg.warmup_steps >= 0, "must be >= 0"),
        ("batch_hyps", cfg.batch_hyps >= 1, "must be >= 1"),
        ("batch_utts", cfg.batch_utts >= 1, "must be >= 1"),
        ("grad_accum", cfg.grad_accum >= 1, "must be >= 1"),
        ("max_grad_norm", cfg.max_grad_norm >= 0, "must be >= 0 (0: no clipping)"),
        ("nbest_max", cfg.nbest_max is None or cfg.nbest_max >= 1, "must be >= 1 or null (all)"),
        ("beta", cfg.beta is None or math.isfinite(cfg.beta), "must be a finite number or null (tune on dev)"),
        ("lambda_md", cfg.lambda_md >= 0, "must be >= 0"),
        ("mwed_temperature_value", cfg.mwed_temperature_value > 0, "must be > 0"),
        ("head_hidden", cfg.head_hidden >= 0, "must be >= 0 (0: a single linear layer)"),
        ("dropout", 0 <= cfg.dropout < 1, "must be in [0, 1)"),
        ("encoder_dropout", cfg.encoder_dropout is None or 0 <= cfg.encoder_dropout < 1,
         "must be in [0, 1) or null (the encoder's own)"),
        ("max_length", cfg.max_length >= 3, "must be >= 3"),
        ("md_text", cfg.md_text is None or cfg.objective == "md", "applies to objective md only"),
        ("md_text_scores", (cfg.md_text is None) == (cfg.md_text_scores is None),
         "md_text and md_text_scores go together"),
        ("checkpoint_every", cfg.checkpoint_every >= 0, "must be >= 0 (0: epoch ends only)"),
        ("keep_checkpoints", cfg.keep_checkpoints >= 1, "must be >= 1"),
        ("early_stopping_patience", cfg.early_stopping_patience is None or cfg.early_stopping_patience >= 1,
         "must be >= 1 or null (off)"),
        ("eval_batch_tokens", cfg.eval_batch_tokens >= 1, "must be >= 1"),
        ("log_every", cfg.log_every >= 1, "must be >= 1"),
        ("num_threads", cfg.num_threads >= 0, "must be >= 0 (0: all available CPUs)"),
    ]
    for key, ok, msg in checks:
        if not ok:
            raise ConfigError(f"config key {key!r} {msg}, got {getattr(cfg, key)!r}")
    try:
        Normalizer.parse(cfg.norm)
    except ValueError as e:
        raise ConfigError(f"config key 'norm': {e}") from None


def temperature(cfg: StudentTrainConfig) -> str | float:
    """The MWED temperature argument of :func:`rescore.train.losses.mwed_loss`."""
    return "mad" if cfg.mwed_temperature == "mad" else float(cfg.mwed_temperature_value)


# ------------------------------------------------------------------------------------------- data


@dataclass
class NbestData:
    """One n-best set as the trainer uses it (hypotheses in stored order)."""

    name: str
    offsets: np.ndarray
    texts: list[str]  # as the student reads them (after ``norm``)
    first_pass: np.ndarray
    pll: np.ndarray
    errors: np.ndarray | None  # None for sets without references (md training data)
    ref_units: int
    metric: str | None


def _load(setdir: str | Path, scores_dir: str | Path, norm: str, need_errors: bool,
          require_refs: bool) -> NbestData:
    """A set with its teacher PLL (joined by key) and, when asked, its cached errors."""
    from rescore.data.nbest import load_set, read_scores, references_path
    from rescore.data.textnorm import Normalizer
    from rescore.scoring.stats import ensure_errors, scoring_setup

    nbs = load_set(setdir)
    pll = read_scores(Path(scores_dir) / "pll", nbs)
    student_norm = Normalizer.parse(norm)
    texts = [student_norm.text(t) for t in nbs.texts] if student_norm.flags else list(nbs.texts)
    errors, ref_units, metric = None, 0, None
    keep = np.arange(nbs.num_utts)
    if need_errors:
        if nbs.refs is None:
            raise InputError(references_path(setdir), None, "references are needed to count errors (none found)")
        snorm, metric = scoring_setup(nbs)
        errors = np.asarray(ensure_errors(nbs, snorm, metric), dtype=np.float64)
        has_ref = np.array([u in nbs.refs for u in nbs.utt_ids], dtype=bool)
        if not has_ref.all():
            missing = int((~has_ref).sum())
            if require_refs and not has_ref.any():
                raise InputError(references_path(setdir), None, "no utterance of the n-best lists has a reference")
            log.warning("%s: %d of %d utterances have no reference and are left out", setdir, missing,
                        nbs.num_utts)
            keep = np.flatnonzero(has_ref)
        ref_units = int(sum(len(snorm.units(nbs.refs[nbs.utt_ids[u]], metric)) for u in keep))
    offsets = nbs.offsets
    first = np.asarray(nbs.streams["score"], dtype=np.float64)
    if len(keep) != nbs.num_utts:
        hyp = np.concatenate([np.arange(offsets[u], offsets[u + 1]) for u in keep])
        counts = np.diff(offsets)[keep]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        texts = [texts[i] for i in hyp]
        first, pll, errors = first[hyp], pll[hyp], errors[hyp]
    n = len(texts)
    if not (len(first) == len(pll) == n == int(offsets[-1])) or (errors is not None and len(errors) != n):
        raise AssertionError(f"{setdir}: stream lengths disagree")
    bad_pll, bad_fp = int((~np.isfinite(pll)).sum()), int((~np.isfinite(first)).sum())
    if bad_pll:
        log.warning("%s: %d hypotheses with a non-finite teacher PLL are left out of the MD loss", setdir, bad_pll)
    if bad_fp:
        log.warning("%s: %d hypotheses with a non-finite first-pass score take no part in MWER/MWED", setdir,
                    bad_fp)
    log.info("%s: %d utterances, %d hypotheses%s", setdir, len(offsets) - 1, n,
             f", {ref_units} reference units ({metric})" if errors is not None else "")
    return NbestData(str(setdir), np.asarray(offsets, dtype=np.int64), texts, first, pll, errors, ref_units, metric)


def _shift_per_utt(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` minus each utterance's largest finite value (non-finite values stay as they are)."""
    counts = np.diff(offsets)
    finite = np.where(np.isfinite(values), values, -np.inf)
    mx = np.maximum.reduceat(finite, offsets[:-1]) if len(counts) else np.zeros(0)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    return values - np.repeat(mx, counts)


class Tokenized:
    """Token ids of unique texts (special tokens included, truncated by the student)."""

    def __init__(self, student, texts: list[str], max_length: int):
        first: dict[str, int] = {}
        self.row_of = np.array([first.setdefault(t, len(first)) for t in texts], dtype=np.int64)
        uniq = list(first)
        self.rows: list[np.ndarray] = []
        for a in range(0, len(uniq), _TOKENIZE_CHUNK):
            enc = student.encode(uniq[a:a + _TOKENIZE_CHUNK], max_length=max_length)
            ids, lens = enc["input_ids"].numpy(), enc["attention_mask"].sum(1).numpy()
            self.rows.extend(ids[i, :lens[i]].copy() for i in range(len(lens)))
        if len(self.rows) != len(uniq):
            raise AssertionError(f"tokenized {len(self.rows)} of {len(uniq)} texts")
        pad = student.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0

    def batch(self, hyps: np.ndarray) -> dict[str, torch.Tensor]:
        """Right-padded ``input_ids``/``attention_mask`` of hypotheses ``hyps``."""
        rows = [self.rows[r] for r in self.row_of[hyps].tolist()]
        lens = np.array([len(r) for r in rows], dtype=np.int64)
        width = int(lens.max()) if len(rows) else 0
        mask = np.arange(width)[None, :] < lens[:, None]
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        if len(rows):
            ids[mask] = np.concatenate(rows)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


# ------------------------------------------------------------------------------------- the model


class _Scorer(torch.nn.Module):
    """The student and beta in one module, so that DDP averages beta's gradient too."""

    def __init__(self, student: torch.nn.Module, beta: float, learn_beta: bool):
        super().__init__()
        self.student = student
        value = torch.tensor(float(beta), dtype=torch.float32)
        if learn_beta:
            self.beta = torch.nn.Parameter(value)
        else:
            self.register_buffer("beta", value)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.student(input_ids=input_ids, attention_mask=attention_mask), self.beta


def _is_student_dir(path: str) -> bool:
    from rescore.models.student import CONFIG_NAME, MODEL_TYPE

    f = Path(path) / CONFIG_NAME
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False


def load_student(cfg: StudentTrainConfig) -> torch.nn.Module:
    """A trained student (``init`` holds one: its head settings are kept) or a new one on an encoder."""
    from rescore.models import RescoreBert
    from rescore.models.hf import loading_model

    with loading_model(cfg.init):
        if _is_student_dir(cfg.init):
            student = RescoreBert.from_pretrained(cfg.init)
            log.info("continuing from the trained student %s (its head settings are kept)", cfg.init)
        else:
            student = RescoreBert.from_encoder(cfg.init, head_hidden=cfg.head_hidden,
                                               head_activation=cfg.head_activation, head_dropout=cfg.dropout)
    for name, m in student.named_modules():
        if isinstance(m, torch.nn.Dropout):
            if name.startswith("head"):
                m.p = cfg.dropout
            elif cfg.encoder_dropout is not None:
                m.p = cfg.encoder_dropout
    if hasattr(student, "head_config"):
        student.head_config["dropout"] = cfg.dropout
    return student


def _save_student(student, dest: Path) -> None:
    """``save_pretrained`` into a temporary directory renamed into place."""
    tmp = dest.parent / f".{dest.name}.tmp{os.getpid()}"
    remove_path(tmp)
    student.save_pretrained(tmp)
    remove_path(dest)
    os.replace(tmp, dest)


# --------------------------------------------------------------------------------------- training


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The epoch's item order: a permutation seeded by ``(seed, epoch)``, the same on every rank."""
    return np.random.default_rng([seed, epoch]).permutation(n)


@dataclass
class _State(LoopState):
    """What a checkpoint carries besides tensors (JSON)."""

    beta: float | None = None  # beta at the start of training (tuned or configured)
    loss_sum: float = 0.0  # summed step losses of the epoch so far
    loss_steps: int = 0
    best: dict | None = None
    bad_epochs: int = 0


class _Trainer(Trainer):
    state_cls = _State
    resume_free = frozenset(_RESUME_FREE)
    inputs_desc = "other sets, scores or init model"

    def __init__(self, cfg: StudentTrainConfig, out: Path, train: NbestData, dev: NbestData,
                 md_extra: NbestData | None, data_digest: str, dist: DistInfo, device: torch.device):
        super().__init__(cfg, out, data_digest, dist)
        self.desc = f"train_student {cfg.objective}"
        self.train_data, self.dev, self.device = train, dev, device
        seed_everything(cfg.seed)
        self.student = load_student(cfg).to(device)
        self.discriminative = cfg.objective in ("mwer", "mwed")
        self._build_items(train, md_extra)
        self._calibrate()
        n_items = len(self.items) if not self.discriminative else len(self.utt_hyps)
        self.micro = cfg.batch_utts if self.discriminative else cfg.batch_hyps
        n_batches = math.ceil(n_items / self.micro)
        self.steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
        self.total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * self.steps_per_epoch
        self.schedule = cfg.schedule_steps or self.total
        self.model: _Scorer | None = None
        self._rec0: dict[str, Any] | None = None
        self.ddp: torch.nn.Module | None = None
        self.first_pass_wer = _rate(_rescored(dev.offsets, dev.first_pass, dev.errors), dev.ref_units)
        self.oracle_wer = _rate(int(np.minimum.reduceat(dev.errors, dev.offsets[:-1]).sum()), dev.ref_units)

    # ---- data
    def _build_items(self, train: NbestData, md_extra: NbestData | None) -> None:
        """Training hypotheses (top ``nbest_max`` per utterance), tokenized once."""
        from rescore.train.losses import nbest_index

        cfg = self.cfg
        index, mask = nbest_index(train.offsets, nbest_max=cfg.nbest_max, key=train.first_pass)
        kept = np.sort(index[mask])
        if cfg.nbest_max is not None:
            log.info("nbest_max=%d: %d of %d training hypotheses kept (top by first pass)", cfg.nbest_max,
                     len(kept), len(train.texts))
        texts = [train.texts[i] for i in kept.tolist()]
        pll = train.pll[kept]
        if md_extra is not None:
            texts += md_extra.texts
            pll = np.concatenate([pll, md_extra.pll])
        self.tok = Tokenized(self.student, texts, self.cfg.max_length)
        self.pll = pll
        self.n_train_hyps = len(texts)
        if not self.discriminative:
            self.items = np.flatnonzero(np.isfinite(pll))
            if not len(self.items):
                raise InputError(train.name, None, "no hypothesis with a finite teacher PLL to train on")
            return
        # Utterances: their kept hypotheses, as positions into ``texts``/``pll``.
        pos_of = np.full(len(train.texts), -1, dtype=np.int64)
        pos_of[kept] = np.arange(len(kept))
        self.utt_hyps = [pos_of[row[m]] for row, m in zip(index, mask, strict=True)]
        self.first = _shift_per_utt(train.offsets, train.first_pass)[kept]
        self.errors = train.errors[kept]
        self.md_ok = np.isfinite(pll)

    def _calibrate(self) -> None:
        """A new student's output scale: the mean and spread of the teacher PLL it trains on.

        Deterministic (the same data give the same numbers), so a resumed run sets the same values.
        """
        if not self.cfg.calibrate or getattr(self.student, "calibrated", True):
            return
        if not np.isfinite(self.pll).any():
            log.warning("no finite teacher PLL in the training data: the student's output is not calibrated")
            return
        shift, scale = self.student.calibrate(self.pll)
        log.info("student output calibrated on %d teacher scores: score = %.4g + %.4g * head",
                 int(np.isfinite(self.pll).sum()), shift, scale)

    # ---- model, optimiser, DDP
    def setup(self, beta: float) -> None:
        cfg = self.cfg
        learn = cfg.learn_beta and self.discriminative
        self.model = _Scorer(self.student, beta, learn).to(self.device)
        extra = [self.model.beta] if learn else None
        self.opt, self.sched = build_optimizer(self.student, cfg.lr, cfg.weight_decay, cfg.warmup_steps,
                                               self.schedule, extra_params=extra)
        if learn and cfg.beta_lr is not None:  # beta's own learning rate, on the same schedule
            group = self.opt.param_groups[-1]
            group["initial_lr"] = cfg.beta_lr
            self.sched.base_lrs[-1] = cfg.beta_lr
            group["lr"] = cfg.beta_lr * self.sched.lr_lambdas[-1](self.sched.last_epoch)
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model

    @property
    def beta(self) -> float:
        return float(self.model.beta.detach()) if self.model is not None else float("nan")

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    def before_load(self, saved: dict[str, Any]) -> None:
        self.setup(saved["trainer"]["beta"])

    # ---- evaluation
    def score_dev(self) -> np.ndarray:
        """Student scores of every dev hypothesis; the unique texts are split between the ranks."""
        first: dict[str, int] = {}
        inverse = np.array([first.setdefault(t, len(first)) for t in self.dev.texts], dtype=np.int64)
        uniq = list(first)
        parts = np.array_split(np.arange(len(uniq)), self.dist.world)
        mine = [uniq[i] for i in parts[self.dist.rank].tolist()]
        scores = self.student.score(mine, batch_tokens=self.cfg.eval_batch_tokens, device=self.device,
                                    dtype=self.cfg.dtype) if mine else np.zeros(0)
        if self.dist.world > 1:
            gathered: list = [None] * self.dist.world
            torch.distributed.all_gather_object(gathered, np.asarray(scores, dtype=np.float64))
            scores = np.concatenate(gathered)
        if len(scores) != len(uniq):
            raise AssertionError(f"scored {len(scores)} of {len(uniq)} dev texts")
        return np.asarray(scores, dtype=np.float64)[inverse]

    def evaluate(self, epoch: int, partial: bool) -> dict[str, Any]:
        from rescore.scoring.tuning import tune_weights

        dev = self.dev
        s = self.score_dev()
        tuned = tune_weights(dev.offsets, dev.first_pass, {"student": s}, dev.errors)
        ok = np.isfinite(dev.pll)
        rec: dict[str, Any] = {
            "epoch": epoch, "step": self.step, "partial": partial,
            "dev_wer": _rate(tuned.errors, dev.ref_units), "dev_errors": int(tuned.errors),
            "dev_ref_units": dev.ref_units, "dev_weight": float(tuned.weights["student"]),
            "dev_md_loss": float(np.mean((s[ok] - dev.pll[ok]) ** 2)) if ok.any() else float("nan"),
        }
        if self.state.loss_steps:
            rec["train_loss"] = self.state.loss_sum / self.state.loss_steps
        if self.model is not None and self.discriminative:
            rec["beta"] = self.beta
            rec["dev_wer_train_beta"] = _rate(_rescored(dev.offsets, dev.first_pass + self.beta * s, dev.errors),
                                              dev.ref_units)
        log.info("epoch %d%s (step %d): dev %s %.2f%% with weight %.4g (first pass %.2f%%, oracle %.2f%%), "
                 "dev MD loss %.4g%s", epoch, " (partial)" if partial else "", self.step, dev.metric,
                 rec["dev_wer"], rec["dev_weight"], self.first_pass_wer, self.oracle_wer, rec["dev_md_loss"],
                 f", train loss {rec['train_loss']:.4g}" if "train_loss" in rec else "")
        rec["_scores"] = s
        return rec

    def record(self, rec: dict[str, Any], jlog: JsonlLog | None, keep: bool = True) -> None:
        """Append an evaluation to the history; a new best (trained) one is saved as ``model/``."""
        rec.pop("_scores", None)
        st = self.state
        super().record(rec, jlog)
        if rec["step"] == 0:
            return
        better = st.best is None or (math.isfinite(rec["dev_wer"]) and not rec["dev_wer"] >= st.best["dev_wer"])
        if st.best is None or better:
            st.best = {k: rec[k] for k in ("epoch", "step", "partial", "dev_wer", "dev_weight")}
            st.bad_epochs = 0
            if self.dist.main:
                _save_student(self.student, self.out / "model")
        elif not rec["partial"]:
            st.bad_epochs += 1
            patience = self.cfg.early_stopping_patience
            if patience is not None and st.bad_epochs >= patience:
                st.stopped = True
                log.info("early stopping: dev %s has not improved for %d epoch(s) (best %.2f%% at epoch %d)",
                         self.dev.metric, st.bad_epochs, st.best["dev_wer"], st.best["epoch"])

    def initial_beta(self, rec0: dict[str, Any]) -> float:
        """beta to train with: configured, or tuned on dev for the init student."""
        if self.cfg.beta is not None:
            return float(self.cfg.beta)
        if not self.discriminative:
            return 1.0  # not used by MD
        from rescore.scoring.tuning import spread

        w = rec0["dev_weight"]
        if w > 0:
            log.info("beta = %.6g, tuned on dev for the init student", w)
            return float(w)
        ratio = spread(self.dev.offsets, self.dev.first_pass) / (spread(self.dev.offsets, rec0["_scores"]) or 1.0)
        ratio = ratio or 1.0
        log.warning("the weight tuned on dev for the init student is %.4g (it does not help yet): beta = %.6g, "
                    "the ratio of first-pass and student score spreads (train with objective md first, or "
                    "set beta)", w, ratio)
        return float(ratio)

    # ---- the loop
    def start(self, resume: bool) -> bool:
        """Resume, or evaluate the init student and build the model with its beta; True if resumed."""
        if resume and self.resume():
            return True
        rec0 = self.evaluate(0, False)
        self.state.beta = self.initial_beta(rec0)
        self.setup(self.state.beta)
        self._rec0 = rec0
        return False

    def before_fit(self, jlog: JsonlLog | None) -> None:
        if self._rec0 is not None:
            self.record(self._rec0, jlog)
            self._rec0 = None

    def new_epoch(self) -> None:
        self.state.loss_sum, self.state.loss_steps = 0.0, 0

    def epoch_batches(self, epoch: int) -> list:
        n_items = len(self.utt_hyps) if self.discriminative else len(self.items)
        order = epoch_order(n_items, self.cfg.seed, epoch)
        return [order[i:i + self.micro] for i in range(0, n_items, self.micro)]

    def train_step(self, group: list[np.ndarray]) -> tuple[float, dict[str, float]]:
        """One optimiser step over ``grad_accum`` global micro-batches: the global step loss, and its
        parts (gradient norm; objective, MD term and beta for MWER/MWED) for the log."""
        cfg, d = self.cfg, self.dist
        if self.discriminative:
            n_units = sum(len(b) for b in group)
            n_md = sum(int(self.md_ok[self.utt_hyps[u]].sum()) for b in group for u in b.tolist())
        else:
            n_units, n_md = sum(len(b) for b in group), 0
        self.opt.zero_grad(set_to_none=True)
        sums = np.zeros(3)  # objective, md term, total (each already divided by the global counts)
        for j, b in enumerate(group):
            shard = b[d.rank::d.world]
            sync = j == len(group) - 1 or d.world == 1
            ctx = contextlib.nullcontext() if sync else self.ddp.no_sync()
            with ctx:
                obj, md = self._micro(shard, b, n_units, n_md)
                total = obj + cfg.lambda_md * md if self.discriminative else obj
                # DDP averages gradients over ranks: scale so that the average is the global loss.
                self.backward(total * d.world)
            sums += [float(obj.detach()), float(md.detach()), float(total.detach())]
        grad_norm = self.optimizer_step(self.student.parameters())
        obj_sum, md_sum, total_sum = all_reduce_sum(d, sums.tolist())
        self.state.loss_sum += total_sum
        self.state.loss_steps += 1
        parts = {"grad_norm": grad_norm}
        if self.discriminative:
            parts.update({cfg.objective: obj_sum, "md": md_sum, "beta": self.beta})
        return total_sum, parts

    def _micro(self, shard: np.ndarray, full: np.ndarray, n_units: int, n_md: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of a micro-batch: (objective, md) losses, each summed over its items and
        divided by the step's global counts. An empty shard runs one item with weight 0 (DDP needs
        every rank to take part in every backward pass)."""
        from rescore.train.losses import md_loss, mwed_loss, mwer_loss, pad_nbest

        weight = 1.0
        if len(shard) == 0:
            shard, weight = full[:1], 0.0
        if not self.discriminative:
            hyps = shard
            pred = self._forward(hyps)[0]
            target = torch.as_tensor(self.pll[hyps], dtype=torch.float32, device=self.device)
            loss = md_loss(pred, target) * (len(hyps) * weight / n_units)
            return loss, torch.zeros((), device=self.device)
        hyp_lists = [self.utt_hyps[u] for u in shard.tolist()]
        hyps = np.concatenate(hyp_lists)
        counts = np.array([len(h) for h in hyp_lists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        pred, beta = self._forward(hyps)
        st, mask = pad_nbest(offsets, pred)
        fp, _ = pad_nbest(offsets, torch.as_tensor(self.first[hyps], dtype=torch.float32, device=self.device))
        err, _ = pad_nbest(offsets, torch.as_tensor(self.errors[hyps], dtype=torch.float32, device=self.device))
        scores = fp + beta.float() * st
        if self.cfg.objective == "mwer":
            obj = mwer_loss(scores, err, mask)
        else:
            obj = mwed_loss(scores, err, mask, temperature=temperature(self.cfg))
        obj = obj * (len(shard) * weight / n_units)
        ok = self.md_ok[hyps]
        if self.cfg.lambda_md > 0 and ok.any() and n_md:
            sel = torch.from_numpy(ok).to(self.device)
            target = torch.as_tensor(self.pll[hyps][ok], dtype=torch.float32, device=self.device)
            md = md_loss(pred[sel], target) * (int(ok.sum()) * weight / n_md)
        else:
            md = pred.sum() * 0.0
        return obj, md

    def _forward(self, hyps: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.tok.batch(hyps).items()}
        with autocast(self.device, self.cfg.dtype):
            pred, beta = self.ddp(**batch)
        return pred.float(), beta


def _rescored(offsets: np.ndarray, total: np.ndarray, errors: np.ndarray) -> int:
    from rescore.scoring.tuning import rescored_errors

    return rescored_errors(offsets, total, errors)


def _rate(errors: int, ref_units: int) -> float:
    if ref_units == 0:
        return math.nan if errors == 0 else math.inf
    return 100.0 * errors / ref_units


# ---------------------------------------------------------------------------------------- the step


def _set_files(setdir: str | Path) -> list[Path]:
    """The files of a set that training reads (not meta.yaml or cached streams other steps rewrite)."""
    s = Path(setdir)
    from rescore.data.nbest import references_path

    return [references_path(s), s / "nbest" / "text", s / "nbest" / "score"]


def _scoring_recipe(setdir: str | Path) -> list[str]:
    """The normalisation and metric errors are counted with, from the set's meta.yaml."""
    import types

    from rescore.scoring.stats import scoring_setup

    path = Path(setdir) / "nbest" / "meta.yaml"
    from rescore.data.nbest import read_meta

    meta, err = read_meta(path)
    if err is not None:
        raise err
    norm, metric = scoring_setup(types.SimpleNamespace(meta=meta))
    return [str(norm), metric]


def train_student(train_set: str | Path, train_scores: str | Path, dev_set: str | Path, dev_scores: str | Path,
                  out: str | Path, cfg: StudentTrainConfig, resume: bool = False, overwrite: bool = False,
                  argv: list[str] | None = None) -> dict | None:
    """The ``train_student`` step (see the module docstring); returns the summary, or None when skipped."""
    validate(cfg)
    out = Path(out)
    device = resolve_device(cfg.device)
    if cfg.dtype == "fp16" and device.type != "cuda":
        raise ConfigError("config key 'dtype': fp16 needs a CUDA device; use bf16 or fp32")
    dist = init_distributed(device.type)
    try:
        if dist.world > 1 and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
            torch.cuda.set_device(device)
        return _run(train_set, train_scores, dev_set, dev_scores, out, cfg, resume, overwrite, argv, dist,
                    device)
    finally:
        if dist.owns_group:
            torch.distributed.destroy_process_group()


def _run(train_set, train_scores, dev_set, dev_scores, out: Path, cfg: StudentTrainConfig, resume: bool,
         overwrite: bool, argv, dist: DistInfo, device: torch.device) -> dict | None:
    extra = [(cfg.md_text, cfg.md_text_scores)] if cfg.md_text else []
    inputs = [*_set_files(train_set), Path(train_scores) / "pll", *_set_files(dev_set), Path(dev_scores) / "pll"]
    for s, sc in extra:
        inputs += [*_set_files(s), Path(sc) / "pll"]
    if Path(cfg.init).exists():
        inputs.append(Path(cfg.init))
    resolved = {"train_set": str(train_set), "train_scores": str(train_scores), "dev_set": str(dev_set),
                "dev_scores": str(dev_scores), "config": dataclasses.asdict(cfg)}
    for s in (train_set, dev_set):  # the scoring recipe (normalisation, metric) is part of what is computed
        resolved[f"scoring {s}"] = _scoring_recipe(s)
    fp = fingerprint(inputs, resolved)
    done = not overwrite and is_done(out, fp)
    barrier(dist)  # every rank has checked .done before rank 0 clears it
    if done:
        log.info("skip: %s is complete and up to date (--overwrite true to recompute)", out)
        return None
    if dist.main:
        clear_done(out)  # locks out (creating it) first: one writer
    threads = cfg.num_threads or None
    if threads is None and dist.world > 1 and device.type == "cpu":  # share the CPUs between local ranks
        local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))
        threads = max(1, set_threads(None) // max(1, local))
    set_threads(threads)

    train = _load(train_set, train_scores, cfg.norm, need_errors=cfg.objective != "md", require_refs=True)
    dev = _load(dev_set, dev_scores, cfg.norm, need_errors=True, require_refs=True)
    md_extra = _load(cfg.md_text, cfg.md_text_scores, cfg.norm, False, False) if cfg.md_text else None
    data_digest = digest_paths(inputs) + json.dumps([cfg.init, str(dev_set)])

    trainer = _Trainer(cfg, out, train, dev, md_extra, data_digest, dist, device)
    if dist.main and not (resume and trainer.ckpt.latest() is not None):
        if trainer.ckpt.latest() is not None:
            log.info("starting afresh: removing the previous run's checkpoints and logs in %s", out)
        fresh_start(out)
    barrier(dist)
    if trainer.start(resume):
        trainer.truncate_log(out / "train_log.jsonl")
    jlog = None
    if dist.main:
        save_config(cfg, out / "config.yaml")
        jlog = JsonlLog(out / "train_log.jsonl", out / "tensorboard")
    try:
        trainer.fit(jlog)
    finally:
        if jlog is not None:
            jlog.close()
    barrier(dist)
    st = trainer.state
    summary = {
        "objective": cfg.objective, "init": cfg.init, "final_step": trainer.step,
        "steps_per_epoch": trainer.steps_per_epoch, "schedule_steps": trainer.schedule,
        "world_size": dist.world, "train_hypotheses": trainer.n_train_hyps,
        "train_utterances": len(trainer.utt_hyps) if trainer.discriminative else None,
        "dev_utterances": len(dev.offsets) - 1, "dev_hypotheses": len(dev.texts), "dev_ref_units": dev.ref_units,
        "metric": dev.metric, "norm": cfg.norm,
        "beta_init": st.beta if trainer.discriminative else None,
        "beta_final": trainer.beta if trainer.discriminative else None,
        "learn_beta": bool(cfg.learn_beta and trainer.discriminative),
        "first_pass_dev_wer": trainer.first_pass_wer, "oracle_dev_wer": trainer.oracle_wer,
        "epochs": st.history,
        "best_epoch": st.best["epoch"] if st.best else None, "best_step": st.best["step"] if st.best else None,
        "best_dev_wer": st.best["dev_wer"] if st.best else None,
        "best_weight": st.best["dev_weight"] if st.best else None,
        "stopped_early": st.stopped,
        "model": "model (the best evaluation by dev WER after rescoring with the tuned weight)",
    }
    if dist.main:
        if not (out / "model").is_dir():  # no trained evaluation (cannot happen with max_steps >= 1)
            _save_student(trainer.student, out / "model")
        with atomic_open(out / "summary.json") as f:
            json.dump(summary, f, indent=1)
        write_run_info(out, argv, MODULE, resolved)
        mark_done(out, fp)
        log.info("wrote %s/model: best dev %s %.2f%% (weight %.4g) at epoch %s, step %s; first pass %.2f%%, "
                 "oracle %.2f%%", out, dev.metric, summary["best_dev_wer"], summary["best_weight"],
                 summary["best_epoch"], summary["best_step"], trainer.first_pass_wer, trainer.oracle_wer)
    barrier(dist)
    return summary
