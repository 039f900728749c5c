"""The one training loop: every trainer (teacher MLM, student, LSTM LM) is a :class:`Trainer`.

A trainer says what is particular to it through a few methods; the loop, resume, checkpoints,
logs, distributed bookkeeping and the evaluation schedule are here, the same for all:

* ``epoch_batches(epoch)``: the epoch's micro-batches (a seeded order, the same on every rank);
  ``micro_batches(batches, start)`` how they are produced from position ``start`` on (default:
  as they are; the MLM trainer collates them in a ``DataLoader``);
* ``train_step(group)``: forward and backward over one optimizer step's ``grad_accum``
  micro-batches, then :meth:`Trainer.optimizer_step`; returns the step's loss and what else to log;
* ``evaluate(epoch, partial)``: a record for the log and the history; ``record(rec, jlog)`` keeps
  it (the student also keeps its best model and decides on early stopping there);
* ``module``: what a checkpoint holds besides optimizer, scheduler, RNG and the trainer state.

The loop (:meth:`Trainer.fit`): optimizer steps over each epoch's batches, a log record every
``log_every`` steps, a checkpoint every ``checkpoint_every`` steps and at every epoch end, an
evaluation at every epoch end, and, when ``max_steps`` stops it mid-epoch, a partial evaluation and
a last checkpoint. Whether that partial evaluation belongs to the checkpointed state
(``partial_in_checkpoint``) is the one choice a trainer makes: the student selects its model by dev
WER, so a partial evaluation that may have produced ``model/`` stays in its history; the MLM
trainer's final model is its last weights, so its partial evaluation is written after the last
checkpoint and a resumed, extended run logs exactly what an uninterrupted one does
(:meth:`Trainer.truncate_log`).

Resume (:meth:`Trainer.resume`) restores model, optimizer, scheduler, RNG states and the trainer
state from the latest checkpoint, refuses one made from other data (``data`` digest), warns about
changed config keys outside ``resume_free`` and follows the current LR schedule from the step it
resumes at: on CPU with a fixed seed, a resumed run ends with the weights of an uninterrupted one.

Distributed runs (``torchrun``): :func:`init_distributed` joins the process group; only rank 0
writes checkpoints and logs, and every rank waits for the others after reading a checkpoint.

The learning-rate schedule is :func:`rescore.train.loop.build_optimizer`'s linear warmup and decay,
not ``transformers.get_linear_schedule_with_warmup``: the latter's first update has learning rate 0
(``step / warmup``), ours ``1 / warmup``; switching would shift every schedule by one step and
change every trained model and measured result in this repository.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.train.loop import Checkpointer, JsonlLog, resume_schedule, truncate_log, warn_changed_config

log = get_logger(__name__)


# ------------------------------------------------------------------------------------ distributed


@dataclass
class DistInfo:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (if > 1 process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        owns = True
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)
    if info.rank != 0:  # one copy of the progress messages: rank 0's
        import logging

        logging.getLogger("rescore").setLevel(logging.WARNING)
    log.info("distributed training: rank %d of %d (local rank %d, %s)", info.rank, info.world, info.local_rank,
             dist.get_backend())
    return info


def barrier(d: DistInfo) -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if d.world > 1:
        torch.distributed.barrier()


def all_reduce_sum(d: DistInfo, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over the ranks."""
    if d.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return t.tolist()


# ----------------------------------------------------------------------------------------- state


@dataclass
class LoopState:
    """What every trainer's checkpoint carries besides tensors (JSON); trainers add their fields."""

    epoch: int = 1  # the epoch in progress (1-based)
    batch_pos: int = 0  # micro-batches of it already consumed
    history: list = dataclasses.field(default_factory=list)  # the evaluations kept so far
    stopped: bool = False  # early stopping decided
    scaler: dict | None = None  # fp16 GradScaler state


# --------------------------------------------------------------------------------------- trainer


class Trainer:
    """The loop, resume and checkpoints; subclasses provide data, step and evaluation (module doc).

    Subclasses set, in their ``__init__``: ``self.opt`` and ``self.sched`` (before :meth:`fit` or
    :meth:`resume`), ``self.total`` (optimizer steps of the run) and ``self.schedule`` (steps the LR
    schedule is laid out over). ``cfg`` needs ``grad_accum`` (default 1), ``log_every``,
    ``checkpoint_every``, ``keep_checkpoints``, ``max_grad_norm`` and ``dtype``.
    """

    desc = "train"  # the progress bar's label
    state_cls: type[LoopState] = LoopState
    resume_free: frozenset[str] = frozenset()  # config keys a resume may change (no effect on the result)
    partial_in_checkpoint = True  # see the module docstring
    inputs_desc = "other inputs"  # what a refused checkpoint was trained from

    def __init__(self, cfg: Any, out: Path, data_digest: str, dist: DistInfo | None = None):
        self.cfg, self.out, self.data_digest = cfg, Path(out), data_digest
        self.dist = dist if dist is not None else DistInfo()
        self.ckpt = Checkpointer(out, keep=cfg.keep_checkpoints)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.dtype == "fp16" else None
        self.step = 0
        self.state = self.state_cls()
        self.final_partial: dict | None = None  # a partial evaluation outside the checkpointed state
        self.opt: torch.optim.Optimizer
        self.sched: torch.optim.lr_scheduler.LambdaLR
        self.total = self.schedule = 0

    # ---- what a subclass provides
    @property
    def module(self) -> torch.nn.Module:
        raise NotImplementedError

    def epoch_batches(self, epoch: int) -> list:
        raise NotImplementedError

    def micro_batches(self, batches: list, start: int) -> Iterator:
        return iter(batches[start:])

    def train_step(self, group: list) -> tuple[float, dict[str, float]]:
        raise NotImplementedError

    def evaluate(self, epoch: int, partial: bool) -> dict[str, Any]:
        raise NotImplementedError

    def before_fit(self, jlog: JsonlLog | None) -> None:
        """Called once when :meth:`fit` starts (e.g. the evaluation of the init model)."""

    def new_epoch(self) -> None:
        """Reset per-epoch statistics (called when an epoch ends, after its evaluation)."""

    def before_load(self, saved: dict[str, Any]) -> None:
        """Called by :meth:`resume` with the checkpoint's state before its tensors are loaded."""

    def record(self, rec: dict[str, Any], jlog: JsonlLog | None, keep: bool = True) -> None:
        """Log an evaluation and (``keep``) add it to the history."""
        if keep:
            self.state.history.append(rec)
        if jlog is not None:
            jlog.write(self.step, event="epoch", **{k: v for k, v in rec.items() if k != "step"})

    # ---- shared
    @property
    def steps_done(self) -> bool:
        return self.step >= self.total

    def optimizer_step(self, params) -> float:
        """Unscale (fp16), clip ``params`` to ``max_grad_norm``, step optimizer and schedule; the
        gradient norm before clipping (nan without clipping)."""
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)
        grad_norm = float("nan")
        if self.cfg.max_grad_norm > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm))
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.sched.step()
        self.step += 1
        return grad_norm

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def resume(self) -> bool:
        """Continue from the latest checkpoint; False (nothing changed) when there is none."""
        latest = self.ckpt.latest()
        if latest is None:
            log.info("--resume true: no checkpoint in %s, starting afresh", self.ckpt.root)
            return False
        saved = json.loads((latest / "state.json").read_text())
        if saved.get("data") != self.data_digest:
            raise InputError(latest, None, f"checkpoint was trained from {self.inputs_desc}; rerun with "
                             "--resume false")
        warn_changed_config(saved.get("config", {}), self.cfg, self.resume_free)
        self.before_load(saved)
        state = self.ckpt.load(latest, self.module, self.opt, self.sched)
        resume_schedule(self.opt, self.sched, saved.get("schedule_steps"), self.schedule, state["step"])
        self.step = int(state["step"])
        self.state = self.state_cls(**state["trainer"])
        if self.scaler is not None and self.state.scaler:
            self.scaler.load_state_dict(self.state.scaler)
        log.info("resumed from %s: step %d, epoch %d (%d batches done)", latest, self.step, self.state.epoch,
                 self.state.batch_pos)
        barrier(self.dist)  # every rank has read it before rank 0 writes (and prunes) the next
        return True

    def save_checkpoint(self) -> None:
        if self.scaler is not None:
            self.state.scaler = self.scaler.state_dict()
        if self.dist.main:
            self.ckpt.save(self.step, self.module, self.opt, self.sched, {
                "trainer": dataclasses.asdict(self.state), "data": self.data_digest,
                "config": dataclasses.asdict(self.cfg), "schedule_steps": self.schedule})

    def truncate_log(self, path: Path) -> None:
        """On resume: drop the log records the interrupted run wrote after its checkpoint."""
        if self.dist.main:
            truncate_log(path, self.step, partial_after_checkpoint=not self.partial_in_checkpoint)

    def fit(self, jlog: JsonlLog | None, stop_after: int | None = None) -> bool:
        """Train until ``self.total`` steps (or early stopping); True when finished, False when
        ``stop_after`` steps of this call ended it early with a checkpoint (a resume continues)."""
        from tqdm import tqdm

        cfg, st = self.cfg, self.state
        accum = getattr(cfg, "grad_accum", 1)
        self.before_fit(jlog)
        self.module.train()
        bar = tqdm(total=self.total, initial=self.step, desc=self.desc, unit="step",
                   disable=None if self.dist.main else True)
        saved_at, done_here = -1, 0
        try:
            while not self.steps_done and not st.stopped:
                batches = self.epoch_batches(st.epoch)
                micro = self.micro_batches(batches, st.batch_pos)
                while st.batch_pos < len(batches) and not self.steps_done:
                    group = [next(micro) for _ in range(min(accum, len(batches) - st.batch_pos))]
                    lr = self.sched.get_last_lr()[0]
                    loss, parts = self.train_step(group)
                    st.batch_pos += len(group)
                    done_here += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}", epoch=st.epoch)
                    if jlog is not None and self.step % cfg.log_every == 0:
                        jlog.write(self.step, epoch=st.epoch, loss=loss, lr=lr, **parts)
                    mid = st.batch_pos < len(batches)
                    if stop_after is not None and done_here >= stop_after and mid and not self.steps_done:
                        self.save_checkpoint()
                        log.info("stopped after %d steps at step %d; resume to continue", done_here, self.step)
                        return False
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and mid:
                        self.save_checkpoint()
                        saved_at = self.step
                del micro
                if st.batch_pos == len(batches):
                    rec = self.evaluate(st.epoch, False)
                    st.epoch, st.batch_pos = st.epoch + 1, 0
                    self.new_epoch()
                    self.record(rec, jlog)
                elif self.partial_in_checkpoint:  # max_steps reached mid-epoch
                    self.record(self.evaluate(st.epoch, True), jlog)
                else:  # checkpoint first (resumable), then a partial evaluation outside it
                    if saved_at != self.step:
                        self.save_checkpoint()
                    self.final_partial = self.evaluate(st.epoch, True)
                    self.record(self.final_partial, jlog, keep=False)
                    continue
                self.save_checkpoint()
                saved_at = self.step
        finally:
            bar.close()
        if not self.partial_in_checkpoint and self.final_partial is None and st.batch_pos > 0:
            # resumed at a final mid-epoch checkpoint: its partial evaluation is not in the state
            self.final_partial = self.evaluate(st.epoch, True)
            self.record(self.final_partial, jlog, keep=False)
        return True
