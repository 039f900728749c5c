"""A smaller encoder from a larger one: its first layers (the student's starting point).

RescoreBERT's student is a smaller BERT than the teacher. Keeping the teacher's embeddings and
its first ``num_layers`` transformer layers gives a student that starts from the teacher's (domain
adapted) representation, shares its tokenizer, and is ``num_layers / L`` of its encoder cost.
The source may be a plain encoder or a masked LM (its head is dropped: the student has its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rescore.log import get_logger

log = get_logger(__name__)


@dataclass
class TruncateResult:
    """What was kept: layers before and after, hidden size, parameters after."""

    layers_before: int
    layers_after: int
    hidden_size: int
    parameters: int


def source_layers(src: str) -> int:
    """Number of transformer layers of the encoder ``src`` (hub id or directory)."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(src, trust_remote_code=False).num_hidden_layers)


def truncate_encoder(src: str, dest: str | Path, num_layers: int) -> TruncateResult:
    """Save to ``dest`` the encoder of ``src`` with its first ``num_layers`` layers, and its tokenizer.

    Raises ValueError when ``num_layers`` is not in 1..L (L: the layers of ``src``).
    """
    import torch
    from transformers import AutoModel

    from rescore.models.hf import load_tokenizer, quiet_transformers

    before = source_layers(src)
    if not 1 <= num_layers <= before:
        raise ValueError(f"num_layers must be in 1..{before} (the layers of {src}), got {num_layers}")
    quiet_transformers()
    # Loading with a smaller num_hidden_layers keeps layers 0..num_layers-1 (same parameter names)
    # and ignores the rest; a masked LM's head is not part of AutoModel and is ignored too.
    model = AutoModel.from_pretrained(src, num_hidden_layers=num_layers, dtype=torch.float32,
                                      trust_remote_code=False)
    tokenizer = load_tokenizer(src)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    res = TruncateResult(before, int(model.config.num_hidden_layers), int(model.config.hidden_size),
                         sum(p.numel() for p in model.parameters()))
    log.info(f"{src}: kept {res.layers_after} of {res.layers_before} layers (hidden {res.hidden_size}, "
             f"{res.parameters} parameters) -> {dest}")
    return res
