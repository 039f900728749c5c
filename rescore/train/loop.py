"""Training infrastructure shared by every trainer (teacher MLM, LSTM LM, student).

* :func:`seed_everything` and RNG state capture, so that a resumed run continues exactly;
* :func:`build_optimizer`: AdamW with linear warmup and linear decay, no weight decay on biases
  and LayerNorm weights;
* :class:`Checkpointer`: ``EXPDIR/checkpoints/step<N>/`` holding model (safetensors), optimiser,
  scheduler, RNG states and the trainer's own state, written atomically (a directory renamed
  into place), with ``latest`` resolution for ``--resume`` and pruning of old ones;
* :class:`JsonlLog`: one JSON object per line (``train_log.jsonl``) and, when available,
  TensorBoard scalars;
* :func:`fresh_start`, :func:`warn_changed_config`, :func:`resume_schedule`: what the trainers do
  when they start afresh or resume.

Checkpoints never use pickles for tensors a user may receive: model weights are safetensors;
optimiser state is loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rescore.log import get_logger
from rescore.stage import atomic_open

log = get_logger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def save_rng_state(directory: Path) -> None:
    """Python/numpy RNG states as JSON, torch/CUDA states as safetensors (no pickles)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    with atomic_open(directory / "rng.json") as f:
        json.dump({"python": [version, list(internal), gauss],
                   "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}, f)
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(tensors, str(directory / "rng.safetensors"))


def load_rng_state(directory: Path) -> None:
    state = json.loads((directory / "rng.json").read_text())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    tensors = load_file(str(directory / "rng.safetensors"))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda{i}"] for i in range(len(tensors) - 1)]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _no_decay(name: str) -> bool:
    low = name.lower()
    return name.endswith("bias") or "layernorm" in low or "layer_norm" in low or ".ln" in low or "norm." in low


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, warmup_steps: int,
                    total_steps: int, extra_params: list[torch.nn.Parameter] | None = None,
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (decoupled weight decay, not on biases/norms) with linear warmup then linear decay to 0."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if _no_decay(name) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if extra_params:
        groups.append({"params": list(extra_params), "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=lr)
    total = max(1, total_steps)
    warm = max(0, warmup_steps)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class Checkpointer:
    """Save/restore training state under ``expdir/checkpoints/step<N>/``."""

    def __init__(self, expdir: str | Path, keep: int = 3):
        self.root = Path(expdir) / "checkpoints"
        self.keep = keep

    def save(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
             scheduler: Any | None, state: dict[str, Any]) -> Path:
        """Write checkpoint ``step<N>`` (atomically) and prune the oldest beyond ``keep``."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step{step}"
        tmp = self.root / f".step{step}.tmp{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(_untie(tensors), str(tmp / "model.safetensors"))
        torch.save({
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
        }, tmp / "optim.pt")
        save_rng_state(tmp)
        with atomic_open(tmp / "state.json") as f:
            json.dump({"step": step, **state}, f, indent=1, default=str)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        self._prune()
        return final

    def _prune(self) -> None:
        ckpts = self.list()
        for p in ckpts[: max(0, len(ckpts) - self.keep)]:
            shutil.rmtree(p, ignore_errors=True)

    def list(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("step") and p.name[4:].isdigit()]
        return sorted(found, key=lambda p: int(p.name[4:]))

    def latest(self) -> Path | None:
        ckpts = self.list()
        return ckpts[-1] if ckpts else None

    def load(self, path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
             scheduler: Any | None = None, restore_rng: bool = True) -> dict[str, Any]:
        """Restore model (and optimiser, scheduler, RNG) from ``path``; returns the trainer state."""
        path = Path(path)
        tensors = load_file(str(path / "model.safetensors"))
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        missing = [k for k in missing if k not in _tied_names(model)]
        if missing or unexpected:
            raise ValueError(f"{path}: checkpoint does not match the model (missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]})")
        optim = torch.load(path / "optim.pt", map_location="cpu", weights_only=True)
        if optimizer is not None and optim["optimizer"] is not None:
            optimizer.load_state_dict(optim["optimizer"])
        if scheduler is not None and optim["scheduler"] is not None:
            scheduler.load_state_dict(optim["scheduler"])
        if restore_rng:
            load_rng_state(path)
        return json.loads((path / "state.json").read_text())


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage: keep the first of each group of tied tensors."""
    seen: dict[tuple, str] = {}
    out = {}
    for k, v in tensors.items():
        key = (v.data_ptr(), v.shape, v.stride()) if v.numel() else (id(v),)
        if key in seen:
            continue
        seen[key] = k
        out[k] = v
    return out


def _tied_names(model: torch.nn.Module) -> set[str]:
    """Parameter names that share storage with an earlier one (restored through the tie)."""
    seen: dict[int, str] = {}
    tied = set()
    for k, v in model.state_dict().items():
        if v.numel() and v.data_ptr() in seen:
            tied.add(k)
        seen.setdefault(v.data_ptr(), k)
    return tied


class JsonlLog:
    """Appends ``{"step": ..., "time": ..., **values}`` lines to ``path``; TensorBoard if installed."""

    def __init__(self, path: str | Path, tensorboard_dir: str | Path | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(tensorboard_dir))
            except ImportError:
                log.info("tensorboard not installed: logging to JSON lines only")

    def write(self, step: int, **values: Any) -> None:
        rec = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, default=float) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def truncate_log(path: str | Path, step: int, *, partial_after_checkpoint: bool = False) -> None:
    """On resume from the checkpoint at ``step``: drop the records of the JSON-lines log ``path`` that
    the interrupted run wrote after that checkpoint (the resumed run writes them again).

    Records before ``step`` are kept; so are those at ``step``, except a partial-epoch evaluation
    (``"partial": true``) when the trainer writes it after its checkpoint at the same step
    (``partial_after_checkpoint``: the MLM trainer does, the student trainer evaluates first).
    The file is rewritten atomically; a missing log is left alone.
    """
    path = Path(path)
    if not path.exists():
        return

    def kept(rec: dict) -> bool:
        at = rec.get("step", 0)
        return at < step or (at == step and not (partial_after_checkpoint and rec.get("partial")))

    keep = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and kept(json.loads(ln))]
    with atomic_open(path) as f:
        f.write("".join(ln + "\n" for ln in keep))


#: What a trainer writes in its experiment directory (removed by a fresh start).
TRAINER_OUTPUTS = ("checkpoints", "model", "train_log.jsonl", "tensorboard", "summary.json", "config.yaml",
                   "run.yaml")


def remove_path(path: Path) -> None:
    """Remove a file or a directory tree, if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def fresh_start(out: Path, names: tuple[str, ...] = TRAINER_OUTPUTS) -> None:
    """Remove what an earlier run of a trainer left in ``out`` (only the trainer's own files)."""
    for name in names:
        remove_path(out / name)


def warn_changed_config(saved: dict, cfg: Any, free: set[str]) -> None:
    """Warn when a resumed run's config differs from its checkpoint's in keys outside ``free``."""
    changed = sorted(k for k, v in saved.items() if k not in free and getattr(cfg, k, v) != v)
    if changed:
        log.warning("resuming with changed config keys %s: the result will differ from an uninterrupted run",
                    ", ".join(changed))


def resume_schedule(opt: torch.optim.Optimizer, sched, saved_steps: int | None, steps: int, step: int) -> None:
    """After loading a checkpoint: the learning rate of the next step under the CURRENT schedule.

    The optimiser state holds the old schedule's rate; a schedule laid out over a different number
    of steps (``saved_steps`` vs ``steps``) is followed from ``step`` on, with a warning.
    """
    if saved_steps != steps:
        log.warning("LR schedule was laid out over %s steps, now %d: the learning rate follows the new "
                    "schedule from step %d (set schedule_steps to the final total to avoid this)",
                    saved_steps, steps, step)
    for group, base, fn in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True):
        group["lr"] = base * fn(sched.last_epoch)
