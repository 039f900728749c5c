import json
import random

import numpy as np
import pytest
import torch

from rescore.train.loop import Checkpointer, JsonlLog, build_optimizer, seed_everything


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.out = torch.nn.Linear(4, 10)
        self.out.weight = self.emb.weight  # tied, like an MLM head

    def forward(self, x):
        return self.out(self.norm(self.emb(x)))


def train_steps(model, opt, sched, n):
    for _ in range(n):
        x = torch.randint(0, 10, (8,))
        loss = torch.nn.functional.cross_entropy(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_warmup_then_linear_decay():
    model = Tiny()
    opt, sched = build_optimizer(model, lr=1.0, weight_decay=0.01, warmup_steps=2, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    decays = sorted(g["weight_decay"] for g in opt.param_groups)
    assert decays == [0.0, 0.01]
    no_decay = opt.param_groups[1]["params"]
    assert any(p is model.norm.weight for p in no_decay)


def test_resume_gives_identical_weights(tmp_path):
    seed_everything(0)
    a = Tiny()
    opt, sched = build_optimizer(a, 0.1, 0.0, 1, 10)
    train_steps(a, opt, sched, 10)

    seed_everything(0)
    b = Tiny()
    opt, sched = build_optimizer(b, 0.1, 0.0, 1, 10)
    train_steps(b, opt, sched, 4)
    ck = Checkpointer(tmp_path, keep=2)
    ck.save(4, b, opt, sched, {"epoch": 0})
    random.random(), np.random.rand(), torch.rand(3)  # disturb every RNG

    c = Tiny()
    opt, sched = build_optimizer(c, 0.1, 0.0, 1, 10)
    state = ck.load(ck.latest(), c, opt, sched)
    assert state == {"step": 4, "epoch": 0}
    train_steps(c, opt, sched, 6)
    for (k, v), w in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_checkpoints_are_pruned_and_listed(tmp_path):
    ck = Checkpointer(tmp_path, keep=2)
    m = Tiny()
    for step in (1, 2, 10):
        ck.save(step, m, None, None, {})
    assert [p.name for p in ck.list()] == ["step2", "step10"]
    assert not list((tmp_path / "checkpoints").glob(".*"))


def test_jsonl_log(tmp_path):
    lg = JsonlLog(tmp_path / "log.jsonl")
    lg.write(1, loss=0.5)
    lg.write(2, loss=0.25, dev_wer=10.0)
    recs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2] and recs[1]["dev_wer"] == 10.0


def test_truncate_log_drops_what_came_after_the_checkpoint(tmp_path):
    import json

    from rescore.train.loop import truncate_log

    path = tmp_path / "train_log.jsonl"
    recs = [{"step": 0, "event": "epoch"}, {"step": 5, "loss": 1.0}, {"step": 10, "event": "epoch", "partial": True},
            {"step": 10, "loss": 0.5}, {"step": 15, "loss": 0.2}]
    text = "".join(json.dumps(r) + "\n" for r in recs)
    path.write_text(text)
    truncate_log(path, 10)  # the student trainer: a partial evaluation comes before its checkpoint
    assert [json.loads(ln) for ln in path.read_text().splitlines()] == recs[:4]
    path.write_text(text)
    truncate_log(path, 10, partial_after_checkpoint=True)  # the MLM trainer: it comes after
    assert [json.loads(ln) for ln in path.read_text().splitlines()] == [recs[0], recs[1], recs[3]]
    truncate_log(tmp_path / "missing.jsonl", 3)  # nothing to do
    assert not (tmp_path / "missing.jsonl").exists()
