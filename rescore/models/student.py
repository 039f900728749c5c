"""The RescoreBERT student: a Hugging Face encoder and a feed-forward head that scores a hypothesis
in ONE forward pass (Xu et al., 2022).

    student = RescoreBert.from_pretrained("exp/student")        # a trained student (one directory)
    scores = student.score(["the cat sat", "the cat sad"])      # float64, higher is better

Model. Any ``AutoModel`` encoder (BERT, RoBERTa, DistilBERT, ALBERT, ELECTRA, ...). The score is
``head(h_0)``, where ``h_0`` is the final hidden state of the FIRST token ([CLS] for BERT, ``<s>``
for RoBERTa) and ``head`` is ``Linear(d, head_hidden) -> activation -> dropout -> Linear(head_hidden, 1)``
(``head_hidden=0``: a single ``Linear(d, 1)``). The last layer starts with small weights and a zero
bias, so an untrained student scores ~0. The encoder's pooler, if it has one, is removed: it is
never used, and unused parameters would trouble DistributedDataParallel.

Output scale. The score is ``shift + scale * head(h_0)`` with two fixed numbers (not trained),
1 and 0 for a new student. Distillation sets them once to the mean and standard deviation of the
teacher scores it trains on (:meth:`RescoreBert.calibrate`): PLLs are sums of log-probabilities
(about -45 +- 15 for a 10-word sentence), far from the ~0 of a new head, and a head that must
first travel that far with a fine-tuning learning rate learns nothing else in a short run. With
the scale set, the head starts at the teacher's mean and learns the variation around it; the
score, the loss and the interpolation weights stay in the teacher's units.

Tokenisation is the teacher's (as :func:`rescore.pll.encode`): the tokenizer's own special tokens
around the text, a leading space for byte-level BPE tokenizers; an empty text is the special
tokens only. Token type ids are the encoder's default (zeros), as for any single sequence.

Long hypotheses. A text with more tokens than the encoder accepts (its position limit, capped by
the tokenizer's ``model_max_length``, special tokens included) is truncated from the RIGHT: the
student scores the first window only (a PLL teacher scores every token, so a student's score of a
very long hypothesis is an approximation). Every call that truncates logs a warning with the count,
and :attr:`RescoreBert.stats` records it; nothing is cut silently.

Saved form (``save_pretrained``), one directory a user can copy to production::

    config.json         {"model_type": "rescore_bert", "encoder": <the encoder's config>,
                         "head": {"hidden": 256, "activation": "tanh", "dropout": 0.1}, ...}
    model.safetensors   every weight (shared tensors stored once; never a pickle)
    tokenizer files     whatever ``tokenizer.save_pretrained`` writes

``from_pretrained`` rebuilds the encoder from the saved config (no download) and loads the weights
strictly; given a plain encoder directory or a hub id instead, it behaves like ``from_encoder``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rescore.defaults import STUDENT_BATCH_TOKENS
from rescore.log import get_logger
from rescore.runtime import autocast

log = get_logger(__name__)

MODEL_TYPE = "rescore_bert"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_BATCH_TOKENS = STUDENT_BATCH_TOKENS
ACTIVATIONS = {"tanh": nn.Tanh, "gelu": nn.GELU, "relu": nn.ReLU}
LAST_LAYER_STD = 1e-3  # an untrained student scores ~0
MAX_PADDING = 0.1  # a batch's rows are at least 90% as long as its longest


@dataclass
class StudentStats:
    """Counters of the last :meth:`RescoreBert.score` call (logged by callers)."""

    texts: int = 0
    unique: int = 0
    empty: int = 0  # texts without tokens (special tokens only), duplicates included
    truncated: int = 0  # texts longer than the model, truncated from the right, duplicates included
    tokens: int = 0  # tokens run through the encoder, special tokens included, padding excluded
    padded_tokens: int = 0  # rows x width summed over batches
    batches: int = 0
    seconds: float = 0.0


class _NoPooler(nn.Module):
    """Stands in for an encoder's pooler: no parameters, output None (never used)."""

    def forward(self, *args, **kwargs):
        return None


def _drop_pooler(encoder: nn.Module) -> nn.Module:
    if isinstance(getattr(encoder, "pooler", None), nn.Module):
        encoder.pooler = _NoPooler()
    return encoder


def build_head(d: int, hidden: int, activation: str, dropout: float, init_std: float = 0.02) -> nn.Sequential:
    """``Linear(d, hidden) -> activation -> dropout -> Linear(hidden, 1)``; ``hidden=0``: ``Linear(d, 1)``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"head_activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if hidden < 0:
        raise ValueError(f"head_hidden must be >= 0, got {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"head_dropout must be in [0, 1), got {dropout}")
    if hidden == 0:
        layers: list[nn.Module] = [nn.Linear(d, 1)]
    else:
        layers = [nn.Linear(d, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(hidden, 1)]
        nn.init.normal_(layers[0].weight, std=init_std)
        nn.init.zeros_(layers[0].bias)
    nn.init.normal_(layers[-1].weight, std=LAST_LAYER_STD)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


def pack_sorted(lengths: np.ndarray, batch_tokens: int, max_padding: float = MAX_PADDING) -> list[np.ndarray]:
    """Indices grouped longest first into batches of at most ``batch_tokens`` padded tokens.

    A batch holds rows whose lengths are within ``max_padding`` (a fraction) of its longest row, so
    padding stays small (one wide budget over all lengths would pad short rows to the longest);
    a row longer than the budget forms a batch of its own.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    lens = lengths[order]
    batches, start = [], 0
    while start < len(order):
        width = int(lens[start])
        rows = max(1, batch_tokens // max(width, 1))
        floor = width * (1.0 - max_padding)
        stop = min(start + rows, len(order))
        stop = start + 1 + int(np.searchsorted(-lens[start + 1 : stop], -floor, side="right"))
        batches.append(order[start:stop])
        start = stop
    return batches


def _quiet_transformers() -> None:  # transformers is imported only when a model is loaded
    from rescore.models.hf import quiet_transformers as quiet

    quiet()


class RescoreBert(nn.Module):
    """A hypothesis scorer: ``head(encoder(text)[first token])``, one scalar per text (higher is better)."""

    def __init__(self, encoder: nn.Module, tokenizer, head_hidden: int = 256, head_activation: str = "tanh",
                 head_dropout: float = 0.1, output: dict | None = None):
        super().__init__()
        self.encoder = _drop_pooler(encoder)
        self.tokenizer = tokenizer
        d = int(encoder.config.hidden_size)
        init_std = float(getattr(encoder.config, "initializer_range", 0.02))
        self.head_config = {"hidden": int(head_hidden), "activation": head_activation,
                            "dropout": float(head_dropout)}
        self.head = build_head(d, int(head_hidden), head_activation, float(head_dropout), init_std)
        # score = shift + scale * head(h_0): fixed numbers, in the config (None: not calibrated yet)
        self.output = None if output is None else {"shift": float(output["shift"]), "scale": float(output["scale"])}
        shift, scale = (0.0, 1.0) if self.output is None else (self.output["shift"], self.output["scale"])
        self.register_buffer("out_shift", torch.tensor(shift, dtype=torch.float32), persistent=False)
        self.register_buffer("out_scale", torch.tensor(scale, dtype=torch.float32), persistent=False)
        from rescore.pll import model_max_length, special_layout, wants_leading_space

        self.prefix, self.suffix = special_layout(tokenizer)
        self.max_length = model_max_length(encoder, tokenizer)
        if self.max_length <= len(self.prefix) + len(self.suffix):
            raise ValueError(f"max length {self.max_length} leaves no room next to the special tokens")
        # byte-level BPE tokenizers: a leading space, so the first word is tokenised like the rest
        self._lead = " " if wants_leading_space(tokenizer) else ""
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.stats = StudentStats()

    # -- construction and persistence

    @classmethod
    def from_encoder(cls, name_or_dir: str, head_hidden: int = 256, head_activation: str = "tanh",
                     head_dropout: float = 0.1) -> RescoreBert:
        """A new student (untrained head) on a pretrained ``AutoModel`` encoder and its tokenizer."""
        from transformers import AutoModel

        from rescore.models.hf import load_tokenizer

        _quiet_transformers()
        encoder = AutoModel.from_pretrained(str(name_or_dir), dtype=torch.float32)
        tokenizer = load_tokenizer(str(name_or_dir))
        c = encoder.config
        log.info(f"student: encoder {name_or_dir} ({type(encoder).__name__}, {c.num_hidden_layers} layers x "
                 f"{c.hidden_size}), new head (hidden {head_hidden}, {head_activation})")
        return cls(encoder, tokenizer, head_hidden, head_activation, head_dropout)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike) -> RescoreBert:
        """A saved student; a plain encoder directory or hub id: :meth:`from_encoder` with defaults."""
        from safetensors.torch import load_model
        from transformers import AutoConfig, AutoModel

        from rescore.models.hf import load_tokenizer

        path = Path(name_or_dir)
        cfg = _read_config(path) if path.is_dir() else None
        if cfg is None or cfg.get("model_type") != MODEL_TYPE:
            log.warning(f"{name_or_dir} is not a saved student: a new head on its encoder "
                        "(scores ~0 until trained)")
            return cls.from_encoder(str(name_or_dir))
        _quiet_transformers()
        enc_cfg = dict(cfg["encoder"])
        enc_type = enc_cfg.pop("model_type")
        encoder = AutoModel.from_config(AutoConfig.for_model(enc_type, **enc_cfg), dtype=torch.float32)
        head = cfg.get("head", {})
        model = cls(encoder, load_tokenizer(str(path)), head.get("hidden", 256),
                    head.get("activation", "tanh"), head.get("dropout", 0.1), cfg.get("output"))
        missing, unexpected = load_model(model, str(path / WEIGHTS_NAME), strict=True)
        if missing or unexpected:  # strict=True raises; kept for safety
            raise ValueError(f"{path / WEIGHTS_NAME}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.eval()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write config.json, model.safetensors (atomically) and the tokenizer into ``directory``."""
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        tmp = directory / f".{WEIGHTS_NAME}.tmp"
        save_model(self, str(tmp), metadata={"format": "pt"})  # shared tensors stored once
        tmp.replace(directory / WEIGHTS_NAME)
        cfg = {"model_type": MODEL_TYPE, "architecture": "RescoreBert", "encoder": self.encoder.config.to_dict(),
               "head": self.head_config, "max_length": self.max_length}
        if self.output is not None:
            cfg["output"] = self.output
        tmp = directory / f".{CONFIG_NAME}.tmp"
        tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        tmp.replace(directory / CONFIG_NAME)  # written last: a directory with it is complete

    @property
    def calibrated(self) -> bool:
        """Whether the output scale was set (by :meth:`calibrate`, or saved with the student)."""
        return self.output is not None

    def calibrate(self, targets: np.ndarray) -> tuple[float, float]:
        """Set ``shift``/``scale`` to the mean and standard deviation of the finite ``targets``.

        A constant target set gets scale 1. Returns ``(shift, scale)``.
        """
        t = np.asarray(targets, dtype=np.float64)
        t = t[np.isfinite(t)]
        if not len(t):
            raise ValueError("no finite target to calibrate the student's output on")
        shift, std = float(t.mean()), float(t.std())
        scale = std if std > 0 else 1.0
        self.output = {"shift": shift, "scale": scale}
        self.out_shift.fill_(shift)
        self.out_scale.fill_(scale)
        return shift, scale

    # -- scoring

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) scores: the head on the first token's final hidden state."""
        kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        return self.out_shift + self.out_scale * self.head(hidden[:, 0]).squeeze(-1)

    def encode(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """A padded batch ``{"input_ids", "attention_mask"}`` (right padding) for :meth:`forward`."""
        rows, _ = self._token_ids(list(texts), max_length)
        return self._pad(rows)

    @torch.inference_mode()
    def score(self, texts: list[str], batch_tokens: int = DEFAULT_BATCH_TOKENS,
              device: str | torch.device | None = None, dtype: str = "fp32", dedup: bool = True,
              progress: bool = False) -> np.ndarray:
        """Scores (float64, higher is better) of ``texts``, in the order given.

        Identical texts are scored once (``dedup``); batches hold texts sorted by length, at most
        ``batch_tokens`` padded tokens each; ``dtype`` bf16/fp16 runs under autocast. ``device``
        None: where the model is (given: the model is moved there).
        """
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        t0 = time.perf_counter()
        dev = torch.device(device) if device is not None else next(self.parameters()).device
        if next(self.parameters()).device != dev:
            self.to(dev)
        texts = list(texts)
        if dedup:
            first: dict[str, int] = {}
            inverse = np.array([first.setdefault(t, len(first)) for t in texts], dtype=np.int64)
            uniq = list(first)
        else:
            inverse, uniq = np.arange(len(texts)), texts
        rows, long = self._token_ids(uniq, None, counts=inverse)
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        out = np.zeros(len(uniq), dtype=np.float64)
        batches = pack_sorted(lengths, batch_tokens)
        it = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc="student", unit="batch", mininterval=5)
        was_training = self.training
        self.eval()
        padded = 0
        try:
            with autocast(dev, dtype):
                for idx in it:
                    batch = self._pad([rows[i] for i in idx.tolist()])
                    padded += batch["input_ids"].numel()
                    s = self(**{k: v.to(dev, non_blocking=True) for k, v in batch.items()})
                    out[idx] = s.float().cpu().numpy()
        finally:
            self.train(was_training)
        empty_len = len(self.prefix) + len(self.suffix)
        self.stats = StudentStats(texts=len(texts), unique=len(uniq),
                                  empty=int((lengths[inverse] == empty_len).sum()), truncated=long,
                                  tokens=int(lengths.sum()), padded_tokens=padded, batches=len(batches),
                                  seconds=time.perf_counter() - t0)
        return out[inverse] if len(texts) else np.zeros(0, dtype=np.float64)

    # -- internals

    def _token_ids(self, texts: list[str], max_length: int | None,
                   counts: np.ndarray | None = None) -> tuple[list[list[int]], int]:
        """Ids with special tokens, truncated from the right to ``max_length``; (rows, texts truncated).

        ``counts`` maps the caller's texts to these (deduplicated) ones, so duplicates are counted.
        """
        limit = min(max_length or self.max_length, self.max_length)
        capacity = limit - len(self.prefix) - len(self.suffix)
        if capacity < 0:
            raise ValueError(f"max_length {limit} leaves no room for the special tokens")
        content = self._content_ids(texts)
        long_rows = np.array([len(ids) > capacity for ids in content], dtype=bool)
        rows = [self.prefix + ids[:capacity] + self.suffix for ids in content]
        n_long = int(long_rows[counts].sum()) if counts is not None else int(long_rows.sum())
        if n_long:
            total = len(counts) if counts is not None else len(texts)
            log.warning(f"{n_long} of {total} hypotheses are longer than the student's {limit} tokens "
                        "(special tokens included): truncated from the right, only their start is scored")
        return rows, n_long

    def _content_ids(self, texts: list[str], chunk: int = 4096) -> list[list[int]]:
        """Token ids without special tokens, tokenised like the teacher's (:func:`rescore.pll.encode`)."""
        out: list[list[int]] = []
        for start in range(0, len(texts), chunk):
            part = [self._lead + t if t.strip() else "" for t in texts[start : start + chunk]]
            out.extend(list(row) for row in self.tokenizer(part, add_special_tokens=False)["input_ids"])
        return out

    def _pad(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        lens = np.array([len(r) for r in rows], dtype=np.int64)
        width = int(lens.max()) if len(rows) else 0
        mask = np.arange(width)[None, :] < lens[:, None]
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        if len(rows):
            ids[mask] = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


def _read_config(path: Path) -> dict | None:
    f = path / CONFIG_NAME
    if not f.is_file():
        return None
    with open(f, encoding="utf-8") as fh:
        return json.load(fh)
