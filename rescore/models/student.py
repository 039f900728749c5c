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

Tokenisation is the teacher's (as :func:`rescore.models.pll.encode`): the tokenizer's own special tokens
around the text, a leading space for byte-level BPE tokenizers; an empty text is the special
tokens only. Token type ids are the encoder's default (zeros), as for any single sequence.

Long hypotheses. A text with more tokens than the encoder accepts (its position limit, capped by
the tokenizer's ``model_max_length``, special tokens included) is truncated from the RIGHT: the
student scores the first window only (a PLL teacher scores every token, so a student's score of a
very long hypothesis is an approximation). Every call that truncates logs a warning with the count,
and :attr:`RescoreBert.stats` records it; nothing is cut silently.

Saved form (``save_pretrained``, transformers' own), one directory a user can copy to production::

    config.json         {"model_type": "rescore_bert", "architectures": ["RescoreBert"],
                         "encoder": <the encoder's config>, "head": {"hidden": 256, "activation": "tanh",
                         "dropout": 0.1}, "output": {"shift": ..., "scale": ...}, "max_tokens": 512, ...}
    model.safetensors   every weight (shared tensors stored once; never a pickle)
    tokenizer files     whatever ``tokenizer.save_pretrained`` writes

The student is a transformers ``PreTrainedModel`` registered with ``AutoConfig`` and ``AutoModel``
(``import rescore`` is enough: the registration runs when transformers is imported), so
``AutoModel.from_pretrained(dir)``, ``push_to_hub`` and tools built on ``PreTrainedModel`` take
it. ``from_pretrained`` rebuilds the encoder from the saved config (no download), loads the weights
strictly (a missing, unexpected or mis-shaped weight is an error) and the tokenizer; given a plain
encoder directory or a hub id instead, it behaves like ``from_encoder``. Students saved before
(``"architecture"``/``"max_length"`` keys) load unchanged, with identical scores.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

from rescore.defaults import STUDENT_BATCH_TOKENS
from rescore.log import get_logger
from rescore.runtime import autocast

log = get_logger(__name__)

MODEL_TYPE = "rescore_bert"
CONFIG_NAME = "config.json"
DEFAULT_HEAD = {"hidden": 256, "activation": "tanh", "dropout": 0.1}
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


class RescoreBertConfig(PreTrainedConfig):
    """The student's ``config.json``: the encoder's config, the head, the output scale, the token limit.

    ``encoder`` is the encoder's own ``to_dict()`` (with its ``model_type``), ``head`` is
    ``{"hidden", "activation", "dropout"}``, ``output`` is ``{"shift", "scale"}`` or None (not
    calibrated), ``max_tokens`` the longest input in tokens, special tokens included (informative: the
    loaded model recomputes it from the encoder and tokenizer). Students saved before the student
    became a transformers model wrote ``architecture`` and ``max_length``; both are read and dropped
    (``max_length`` is a generation parameter to transformers and may not sit in a model config).
    """

    model_type = MODEL_TYPE

    def __init__(self, encoder: dict | None = None, head: dict | None = None, output: dict | None = None,
                 max_tokens: int | None = None, **kwargs):
        kwargs.pop("architecture", None)
        old_max = kwargs.pop("max_length", None)
        self.encoder = dict(encoder or {})
        self.head = {**DEFAULT_HEAD, **(head or {})}
        self.output = None if output is None else {"shift": float(output["shift"]), "scale": float(output["scale"])}
        self.max_tokens = max_tokens if max_tokens is not None else old_max
        super().__init__(**kwargs)

    def encoder_config(self):
        """The encoder's ``PreTrainedConfig``, rebuilt from :attr:`encoder`."""
        from transformers import AutoConfig

        if "model_type" not in self.encoder:
            raise ValueError("the student config has no encoder model_type")
        enc = dict(self.encoder)
        return AutoConfig.for_model(enc.pop("model_type"), **enc)


class RescoreBert(PreTrainedModel):
    """A hypothesis scorer: ``head(encoder(text)[first token])``, one scalar per text (higher is better).

    A transformers ``PreTrainedModel`` (``config_class`` :class:`RescoreBertConfig`, model type
    ``rescore_bert``), registered with ``AutoConfig``/``AutoModel``: ``AutoModel.from_pretrained(dir)``
    loads a saved student once ``rescore`` has been imported. ``RescoreBert(config)`` builds a
    randomly initialised encoder from the config; :meth:`on_encoder` wraps an encoder that exists,
    :meth:`from_encoder` a pretrained one. The tokenizer is part of the student
    (:meth:`set_tokenizer`; saved and loaded with it).
    """

    config_class = RescoreBertConfig
    base_model_prefix = "rescore_bert"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: RescoreBertConfig, encoder: nn.Module | None = None, tokenizer=None):
        super().__init__(config)
        if encoder is None:
            from transformers import AutoModel

            encoder = AutoModel.from_config(config.encoder_config(), dtype=torch.float32)
        config.encoder = encoder.config.to_dict()
        d = int(encoder.config.hidden_size)
        init_std = float(getattr(encoder.config, "initializer_range", 0.02))
        h = config.head
        self.head = build_head(d, int(h["hidden"]), h["activation"], float(h["dropout"]), init_std)
        self.post_init()  # before the encoder is attached: nothing of a pretrained encoder is re-initialised
        self.encoder = _drop_pooler(encoder)
        self.tokenizer = None
        self.stats = StudentStats()
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing: the head initialises itself (:func:`build_head`), the encoder is pretrained or its own."""

    @classmethod
    def on_encoder(cls, encoder: nn.Module, tokenizer, head_hidden: int = 256, head_activation: str = "tanh",
                   head_dropout: float = 0.1, output: dict | None = None) -> RescoreBert:
        """A student on ``encoder`` (kept as it is) with a new head."""
        cfg = RescoreBertConfig(encoder=encoder.config.to_dict(), output=output,
                                head={"hidden": int(head_hidden), "activation": head_activation,
                                      "dropout": float(head_dropout)})
        return cls(cfg, encoder=encoder, tokenizer=tokenizer)

    def set_tokenizer(self, tokenizer) -> None:
        """Attach the teacher's tokenizer and derive the special-token layout and the token limit."""
        from rescore.models.pll import model_max_length, special_layout, wants_leading_space

        prefix, suffix = special_layout(tokenizer)
        max_length = model_max_length(self.encoder, tokenizer)
        if max_length <= len(prefix) + len(suffix):
            raise ValueError(f"max length {max_length} leaves no room next to the special tokens")
        self.tokenizer, self.prefix, self.suffix, self.max_length = tokenizer, prefix, suffix, max_length
        self.config.max_tokens = max_length
        # byte-level BPE tokenizers: a leading space, so the first word is tokenised like the rest
        self._lead = " " if wants_leading_space(tokenizer) else ""
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    @property
    def head_config(self) -> dict:
        """``{"hidden", "activation", "dropout"}`` of the head (the config's, saved with the student)."""
        return self.config.head

    @property
    def output(self) -> dict | None:
        """``{"shift", "scale"}`` of the output, or None before :meth:`calibrate`."""
        return self.config.output

    # -- construction and persistence

    @classmethod
    def from_encoder(cls, name_or_dir: str, head_hidden: int = 256, head_activation: str = "tanh",
                     head_dropout: float = 0.1) -> RescoreBert:
        """A new student (untrained head) on a pretrained ``AutoModel`` encoder and its tokenizer."""
        from transformers import AutoModel

        from rescore.models.hf import load_tokenizer

        _quiet_transformers()
        encoder = AutoModel.from_pretrained(str(name_or_dir), dtype=torch.float32, trust_remote_code=False)
        tokenizer = load_tokenizer(str(name_or_dir))
        c = encoder.config
        log.info(f"student: encoder {name_or_dir} ({type(encoder).__name__}, {c.num_hidden_layers} layers x "
                 f"{c.hidden_size}), new head (hidden {head_hidden}, {head_activation})")
        return cls.on_encoder(encoder, tokenizer, head_hidden, head_activation, head_dropout)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, *args, **kwargs) -> RescoreBert:
        """A saved student (transformers' loading, strict); a plain encoder directory or hub id:
        :meth:`from_encoder` with defaults (and a warning)."""
        from rescore.models.hf import load_tokenizer

        path = Path(name_or_dir)
        cfg = _read_config(path) if path.is_dir() else None
        if cfg is None or cfg.get("model_type") != MODEL_TYPE:
            log.warning(f"{name_or_dir} is not a saved student: a new head on its encoder "
                        "(scores ~0 until trained)")
            return cls.from_encoder(str(name_or_dir))
        _quiet_transformers()
        kwargs.setdefault("dtype", torch.float32)
        kwargs.setdefault("ignore_mismatched_sizes", True)  # reported below as one error naming the keys
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(str(path), *args, output_loading_info=True, **kwargs)
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if bad:
            raise ValueError(f"{path}: the weights do not match the student's config: "
                             + "; ".join(f"{k} {sorted(v)[:5]}" for k, v in bad.items()))
        with torch.no_grad():  # own the weights: views into the mmapped file may be unaligned (other kernels)
            for t in list(model.parameters()) + list(model.buffers()):
                t.data = t.data.clone()
        model.set_tokenizer(load_tokenizer(str(path)))
        model.eval()
        return (model, info) if want_info else model

    def save_pretrained(self, directory: str | os.PathLike, **kwargs) -> None:
        """transformers' ``save_pretrained`` (config.json, model.safetensors) and the tokenizer's files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(directory))
        super().save_pretrained(str(directory), **kwargs)

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
        self.config.output = {"shift": shift, "scale": scale}
        return shift, scale

    # -- scoring

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) scores: the head on the first token's final hidden state."""
        kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        shift, scale = (0.0, 1.0) if self.output is None else (self.output["shift"], self.output["scale"])
        return shift + scale * self.head(hidden[:, 0]).squeeze(-1)

    def encode(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """A padded batch ``{"input_ids", "attention_mask"}`` (right padding) for :meth:`forward`."""
        rows, _ = self._token_ids(list(texts), max_length)
        return self._pad(rows)

    @torch.inference_mode()
    def score(self, texts: list[str], batch_tokens: int = DEFAULT_BATCH_TOKENS,
              device: str | torch.device | None = None, dtype: str = "fp32", dedup: bool = True,
              progress: bool = False, runner=None, partial=None) -> np.ndarray:
        """Scores (float64, higher is better) of ``texts``, in the order given.

        Identical texts are scored once (``dedup``); batches hold texts sorted by length, at most
        ``batch_tokens`` padded tokens each; ``dtype`` bf16/fp16 runs under autocast. ``device``
        None: where the model is (given: the model is moved there). ``runner``: another forward
        pass, ``runner(input_ids, attention_mask) -> scores`` on numpy arrays (e.g.
        :class:`rescore.models.onnx_student.OnnxRunner`); ``device`` and ``dtype`` do not apply.
        ``partial``: a :class:`rescore.stage.PartialResults` that keeps finished batches on disk
        (and restores those a killed run of the same texts and options finished).
        """
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        t0 = time.perf_counter()
        dev = torch.device(device) if device is not None else next(self.parameters()).device
        if runner is None and next(self.parameters()).device != dev:
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
        done = partial.restore(len(batches)) if partial is not None else {}
        for idx, values in done.values():
            out[idx] = values
        todo = [b for b in range(len(batches)) if b not in done]
        it = todo
        if progress:
            from tqdm import tqdm

            it = tqdm(todo, desc="student", unit="batch", mininterval=5, initial=len(done), total=len(batches))
        was_training = self.training
        self.eval()
        padded = 0
        try:
            with autocast(dev, dtype) if runner is None else contextlib.nullcontext():
                for b in it:
                    idx = batches[b]
                    batch = self._pad([rows[i] for i in idx.tolist()])
                    padded += batch["input_ids"].numel()
                    if runner is not None:
                        out[idx] = runner(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
                    else:
                        s = self(**{k: v.to(dev, non_blocking=True) for k, v in batch.items()})
                        out[idx] = s.float().cpu().numpy()
                    if partial is not None:
                        partial.add(b, idx, out[idx])
            if partial is not None:
                partial.flush()
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
        """Token ids without special tokens, tokenised like the teacher's (:func:`rescore.models.pll.encode`)."""
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


AutoConfig.register(MODEL_TYPE, RescoreBertConfig, exist_ok=True)
AutoModel.register(RescoreBertConfig, RescoreBert, exist_ok=True)
