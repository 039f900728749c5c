"""The one training loop (rescore/train/trainer.py) with a toy trainer: checkpoint schedule, partial
evaluations, exact resume after an interruption, refusal of another run's checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from rescore.exceptions import InputError
from rescore.train.loop import JsonlLog, build_optimizer, seed_everything
from rescore.train.trainer import LoopState, Trainer


@dataclass
class ToyConfig:
    epochs: int = 2
    max_steps: int | None = None
    grad_accum: int = 1
    lr: float = 0.05
    log_every: int = 1
    checkpoint_every: int = 0
    keep_checkpoints: int = 20
    max_grad_norm: float = 1.0
    dtype: str = "fp32"


@dataclass
class ToyState(LoopState):
    loss_sum: float = 0.0


class Toy(Trainer):
    """y = w.x on 10 points in micro-batches of 2, with dropout (the RNG must be restored too)."""

    state_cls = ToyState

    def __init__(self, cfg: ToyConfig, out: Path, digest: str = "data", partial_in_checkpoint: bool = True):
        super().__init__(cfg, out, digest)
        self.partial_in_checkpoint = partial_in_checkpoint
        seed_everything(0)
        self.model = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(3, 1))
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)
        per_epoch = -(-5 // cfg.grad_accum)
        self.total = self.schedule = cfg.max_steps or cfg.epochs * per_epoch
        self.opt, self.sched = build_optimizer(self.model, cfg.lr, 0.0, 1, self.schedule)

    @property
    def module(self):
        return self.model

    def epoch_batches(self, epoch):
        order = np.random.default_rng([0, epoch]).permutation(10)
        return [order[i:i + 2] for i in range(0, 10, 2)]

    def train_step(self, group):
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for b in group:
            loss = torch.nn.functional.mse_loss(self.model(self.x[b]), self.y[b]) / len(group)
            self.backward(loss)
            total += float(loss.detach())
        self.optimizer_step(self.model.parameters())
        self.state.loss_sum += total
        return total, {}

    def evaluate(self, epoch, partial):
        with torch.no_grad():
            self.model.eval()
            dev = float(torch.nn.functional.mse_loss(self.model(self.x), self.y))
            self.model.train()
        return {"epoch": epoch, "step": self.step, "partial": partial, "dev": dev}


def run(out: Path, cfg: ToyConfig, resume: bool = False, stop_after: int | None = None, **kw) -> Toy:
    t = Toy(cfg, out, **kw)
    if resume and t.resume():
        t.truncate_log(out / "log.jsonl")
    jlog = JsonlLog(out / "log.jsonl")
    t.finished = t.fit(jlog, stop_after=stop_after)
    jlog.close()
    return t


def records(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(ln).items() if k != "time"}
            for ln in (out / "log.jsonl").read_text().splitlines()]


def weights(t: Toy) -> list[torch.Tensor]:
    return [p.detach().clone() for p in t.model.parameters()]


def test_checkpoints_every_n_steps_and_at_epoch_ends(tmp_path):
    t = run(tmp_path, ToyConfig(checkpoint_every=2))  # 5 steps per epoch, 10 in all
    assert [p.name for p in t.ckpt.list()] == ["step2", "step4", "step5", "step6", "step8", "step10"]
    assert [r["epoch"] for r in t.state.history] == [1, 2] and t.state.epoch == 3
    assert len([r for r in records(tmp_path) if "loss" in r]) == 10


@pytest.mark.parametrize("in_checkpoint", [True, False])
def test_partial_evaluation_at_max_steps(tmp_path, in_checkpoint):
    t = run(tmp_path, ToyConfig(max_steps=7), partial_in_checkpoint=in_checkpoint)
    saved = json.loads((t.ckpt.latest() / "state.json").read_text())["trainer"]["history"]
    assert t.ckpt.latest().name == "step7"
    if in_checkpoint:  # the student: the partial evaluation is part of the state
        assert [(r["epoch"], r["partial"]) for r in saved] == [(1, False), (2, True)] and t.final_partial is None
    else:  # the MLM trainer: logged after the last checkpoint, outside the state
        assert [(r["epoch"], r["partial"]) for r in saved] == [(1, False)]
        assert t.final_partial["partial"] and t.final_partial["step"] == 7
    assert [r["partial"] for r in records(tmp_path) if r.get("event") == "epoch"] == [False, True]


@pytest.mark.parametrize("in_checkpoint", [True, False])
@pytest.mark.parametrize("accum", [1, 2])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, in_checkpoint, accum):
    cfg = ToyConfig(grad_accum=accum, checkpoint_every=1)
    straight = run(tmp_path / "a", cfg, partial_in_checkpoint=in_checkpoint)
    part = run(tmp_path / "b", cfg, stop_after=4 if accum == 1 else 2, partial_in_checkpoint=in_checkpoint)
    assert not part.finished and part.step < part.total
    torch.rand(3)  # disturb the global RNG: the resume restores it
    resumed = run(tmp_path / "b", cfg, resume=True, partial_in_checkpoint=in_checkpoint)
    assert resumed.finished and resumed.step == straight.step
    for p, q in zip(weights(straight), weights(resumed), strict=True):
        assert torch.equal(p, q)
    assert resumed.state.history == straight.state.history
    assert records(tmp_path / "b") == records(tmp_path / "a")


def test_extending_a_finished_run_drops_the_partial_evaluation_only_outside_the_state(tmp_path):
    cfg = dict(checkpoint_every=0)
    straight = run(tmp_path / "a", ToyConfig(**cfg), partial_in_checkpoint=False)
    run(tmp_path / "b", ToyConfig(max_steps=7, **cfg), partial_in_checkpoint=False)
    # the schedule of the straight run is laid out over 10 steps: so is the extended one's
    ext = Toy(ToyConfig(max_steps=10, **cfg), tmp_path / "b", partial_in_checkpoint=False)
    assert ext.resume()
    ext.truncate_log(tmp_path / "b" / "log.jsonl")
    jlog = JsonlLog(tmp_path / "b" / "log.jsonl")
    ext.fit(jlog)
    jlog.close()
    assert [r["step"] for r in ext.state.history] == [r["step"] for r in straight.state.history] == [5, 10]


def test_another_runs_checkpoint_is_refused(tmp_path):
    run(tmp_path, ToyConfig(max_steps=3))
    with pytest.raises(InputError, match="checkpoint was trained from other inputs"):
        Toy(ToyConfig(), tmp_path, digest="other").resume()
    assert not Toy(ToyConfig(), tmp_path / "empty").resume()  # nothing to resume: a fresh start
