"""Causal (left-to-right) language models as baseline rescorers: our LSTM LM and any HF causal LM.

RescoreBERT's gains are measured against a conventional LM rescorer (an LSTM LM in the paper).
This module scores a hypothesis ``W = w_1 .. w_L`` as the natural-log probability of the whole
sentence, end of sentence included::

    log P(W) = sum_{t=1..L} log P(w_t | BOS, w_<t) + log P(EOS | BOS, W)

over the model's own units (sentencepiece pieces or words for the LSTM LM, the tokenizer's
subwords for a Hugging Face model), so values from different models are comparable as sentence
probabilities but not per token.

Conventions (documented choices, each tested):

* **BOS/EOS.** The LSTM LM uses its ``<s>``/``</s>``. A Hugging Face model conditions the first
  token on ``tokenizer.bos_token``; a tokenizer without one uses its ``eos_token`` instead (GPT-2
  has ``bos = eos = <|endoftext|>``, Qwen2 has only an eos). A tokenizer with neither cannot
  score sentence boundaries and is refused with a ``ValueError``. Texts are encoded with
  ``add_special_tokens=False``; the boundary tokens are added here, once.
* **Leading space.** Byte-level BPE models (GPT-2 and most recent LMs) spell a word differently at
  the start of a text (``hello``) and after a space (``Ġhello``). For sentence scoring the standard
  convention is to prefix one space so that the first word gets its usual mid-text spelling.
  ``prefix_space='auto'`` (default) decides by probing the tokenizer: it prefixes a space when the
  encoding of ``" hello"`` equals how ``hello`` is encoded after another word, and not when the
  tokenizer already adds its own word-boundary marker (sentencepiece models such as Llama-2).
  ``'true'``/``'false'`` force the choice. Empty texts are never prefixed.
* **Empty hypotheses** score ``log P(EOS | BOS)``, a defined, finite value; callers count them.
* **Long hypotheses.** A Hugging Face model has a context of ``n`` positions (``n_positions`` /
  ``max_position_embeddings``). The sequence ``BOS w_1 .. w_L EOS`` has ``L + 1`` predictions;
  when ``L + 1 > n`` it is scored with a sliding window of width ``n`` and stride ``s``
  (``window_stride``, default ``n // 2``): the first window scores predictions ``0 .. n-1`` from
  the sentence start; each further window starts ``s`` tokens later and scores only the
  predictions not scored before; the last window is aligned to the end of the sequence so that it
  is full. Every prediction after the first ``n`` is therefore conditioned on at least ``n - s``
  preceding tokens (not on BOS). Nothing is truncated. The LSTM LM has no context limit.
* **Normalisation.** The LSTM LM records the :class:`~rescore.data.textnorm.Normalizer` flags its
  training text had (``norm`` in ``config.json``) and scoring applies the same; for a Hugging Face
  model the text is scored as written unless ``norm`` is given.

Speed: unique texts only (n-best lists repeat a lot), sorted by length and packed into batches of
at most ``batch_tokens`` padded positions, right padding with an attention mask,
``torch.inference_mode`` and bf16/fp16 autocast; the log-softmax is taken only at the scored
positions, in float32, a chunk of rows at a time.

The LSTM LM's directory (written by :func:`save_lstm`, loaded by :func:`load_lstm`)::

    config.json        {"model_type": "rescore_lstm_lm", "format_version": 1, vocab_size, embed_dim,
                        hidden_dim, num_layers, dropout, tie_weights, unit, norm, bos_id, eos_id,
                        pad_id, unk_id, units_file}
    model.safetensors  the weights (tied embeddings stored once)
    units.model        the sentencepiece model (unit unigram|bpe|char), or
    vocab.txt          one word per line, line i = id i (unit word)

:func:`load_scorer` dispatches on the ``model_type`` marker; anything else is loaded with
``AutoModelForCausalLM``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn
from tqdm import tqdm

from rescore.config import ConfigError
from rescore.data.textnorm import Normalizer
from rescore.defaults import CLM_BATCH_TOKENS
from rescore.log import get_logger
from rescore.runtime import autocast
from rescore.stage import atomic_open

log = get_logger(__name__)

MODEL_TYPE = "rescore_lstm_lm"
FORMAT_VERSION = 1
SPM_UNITS = ("unigram", "bpe", "char")
UNITS = (*SPM_UNITS, "word")
DEFAULT_BATCH_TOKENS = CLM_BATCH_TOKENS
#: Special unit ids shared by the sentencepiece and the word vocabularies.
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
_SOFTMAX_ROWS = 1024  # positions per log-softmax chunk (bounds the float32 copy of the logits)
_PROBE_WORD = "hello"


# --------------------------------------------------------------------------------------------
# Units: sentencepiece pieces or words
# --------------------------------------------------------------------------------------------


_REQUIRED_CHARS = re.compile(r"smaller than required_chars\. \d+ vs (\d+)")


def _spm_train(sentences: Sequence[str], vocab_size: int, model_type: str) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buf, vocab_size=vocab_size, model_type=model_type,
        unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID, hard_vocab_limit=False,
        character_coverage=1.0, input_sentence_size=0, shuffle_input_sentence=False,
        num_threads=1, minloglevel=2)
    return buf.getvalue()


class SpmUnits:
    """A sentencepiece model (ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3)."""

    FILE = "units.model"

    def __init__(self, proto: bytes):
        import sentencepiece as spm

        self.proto = bytes(proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto)
        ids = (self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id(), self.sp.pad_id())
        if ids != (UNK_ID, BOS_ID, EOS_ID, PAD_ID):
            raise ValueError(f"sentencepiece model has special ids {ids}, expected {(UNK_ID, BOS_ID, EOS_ID, PAD_ID)}")

    @classmethod
    def train(cls, sentences: Sequence[str], vocab_size: int, model_type: str) -> SpmUnits:
        """Train on all ``sentences`` in order (deterministic); ``vocab_size`` is an upper bound.

        Every character of the training text is a unit (``character_coverage=1.0``, so no
        training character is ever ``<unk>``): ``unigram`` and ``bpe`` models therefore need at
        least one unit per distinct character (after sentencepiece's NFKC), plus ``▁`` and the 4
        specials. A smaller ``vocab_size`` is a hard minimum violated, not a preference: it is
        raised to that minimum with a warning naming the config key (as sentencepiece already
        treats ``vocab_size`` as an upper bound on small corpora). ``char`` models keep the
        ``vocab_size`` most frequent units (the other characters map to ``<unk>``).
        """
        if model_type not in SPM_UNITS:
            raise ValueError(f"sentencepiece unit must be one of {SPM_UNITS}, got {model_type!r}")
        try:
            return cls(_spm_train(sentences, vocab_size, model_type))
        except RuntimeError as e:
            if "required_chars" not in str(e):
                raise
            m = _REQUIRED_CHARS.search(str(e))
            needed = int(m.group(1)) if m else 0
            if needed <= vocab_size:  # not the message we know: say what to change, without the spm option
                raise ConfigError(f"config key 'vocab_size' ({vocab_size}) is smaller than the number of distinct "
                                 f"characters of the training text (+ 5 sentencepiece units); raise it "
                                 f"(sentencepiece: {e})") from None
        n_chars = len({c for t in sentences for c in t if not c.isspace()})
        log.warning(f"config key 'vocab_size' = {vocab_size} is below the {needed} units a {model_type} "
                    f"sentencepiece model needs to cover every character of the training text (about {n_chars} "
                    f"distinct characters + '▁' + <unk> <s> </s> <pad>): training with vocab_size {needed}; "
                    f"set vocab_size >= {needed} (or unit=word) to silence this")
        return cls(_spm_train(sentences, needed, model_type))

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.sp.encode(list(texts))] if texts else []

    def save(self, directory: Path) -> str:
        with atomic_open(directory / self.FILE, "wb") as f:
            f.write(self.proto)
        return self.FILE

    @classmethod
    def load(cls, directory: Path) -> SpmUnits:
        return cls((directory / cls.FILE).read_bytes())


class WordUnits:
    """A word vocabulary: the specials, then the most frequent words; other words map to ``<unk>``."""

    FILE = "vocab.txt"
    SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")

    def __init__(self, words: Sequence[str]):
        if tuple(words[:4]) != self.SPECIALS:
            raise ValueError(f"a word vocabulary starts with {self.SPECIALS}")
        self.words = list(words)
        # '<s>', '</s>', '<pad>' written in a text are ordinary (unknown) words, never boundaries
        self.index = {w: i for i, w in enumerate(self.words) if i not in (BOS_ID, EOS_ID, PAD_ID)}

    @classmethod
    def build(cls, sentences: Iterable[str], vocab_size: int) -> WordUnits:
        """The ``vocab_size - 4`` most frequent words (ties: alphabetical), after the specials."""
        counts = Counter(w for s in sentences for w in s.split(" ") if w and w not in cls.SPECIALS)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, vocab_size - len(cls.SPECIALS))]
        return cls([*cls.SPECIALS, *(w for w, _ in ranked)])

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        get = self.index.get
        return [[get(w, UNK_ID) for w in t.split(" ") if w] for t in texts]

    def save(self, directory: Path) -> str:
        with atomic_open(directory / self.FILE) as f:
            f.write("".join(w + "\n" for w in self.words))
        return self.FILE

    @classmethod
    def load(cls, directory: Path) -> WordUnits:
        return cls((directory / cls.FILE).read_text(encoding="utf-8").split("\n")[:-1])


def train_units(sentences: Sequence[str], unit: str, vocab_size: int) -> SpmUnits | WordUnits:
    """Units for the LSTM LM: a sentencepiece model (``unigram``/``bpe``/``char``) or words."""
    if unit == "word":
        return WordUnits.build(sentences, vocab_size)
    return SpmUnits.train(sentences, vocab_size, unit)


def load_units(directory: Path, unit: str) -> SpmUnits | WordUnits:
    return WordUnits.load(directory) if unit == "word" else SpmUnits.load(directory)


# --------------------------------------------------------------------------------------------
# The LSTM LM
# --------------------------------------------------------------------------------------------


@dataclass
class LstmLmConfig:
    """Architecture, units and normalisation of an LSTM LM (saved as ``config.json``)."""

    vocab_size: int
    embed_dim: int = 256
    hidden_dim: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = True
    unit: str = "unigram"
    norm: str = "none"
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID


class LstmLm(nn.Module):
    """Embedding, dropout, N-layer LSTM, dropout, output layer (tied to the embedding if asked).

    With ``tie_weights`` and ``hidden_dim != embed_dim`` a bias-free projection maps the LSTM
    output to ``embed_dim`` before the tied output layer, so tying is possible at any size.
    """

    def __init__(self, cfg: LstmLmConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        tie = cfg.tie_weights
        self.proj = nn.Linear(cfg.hidden_dim, cfg.embed_dim, bias=False) if tie and cfg.hidden_dim != cfg.embed_dim \
            else None
        self.out = nn.Linear(cfg.embed_dim if tie else cfg.hidden_dim, cfg.vocab_size)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.out.bias)
        if tie:
            self.out.weight = self.embed.weight
        else:
            nn.init.uniform_(self.out.weight, -0.1, 0.1)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``ids [B, T]`` -> logits ``[B, T, V]``; right padding needs no mask (the LSTM is causal)."""
        y, _ = self.lstm(self.drop(self.embed(ids)))
        y = self.drop(y)
        if self.proj is not None:
            y = self.proj(y)
        return self.out(y)


def is_lstm_dir(path: str | Path) -> bool:
    """True when ``path/config.json`` carries our ``model_type`` marker."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (json.JSONDecodeError, AttributeError):
        return False


def save_lstm(model: LstmLm, units: SpmUnits | WordUnits, directory: str | Path) -> None:
    """Write the model directory (``config.json`` last, so a half-written directory does not load)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    units_file = units.save(directory)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    cpu = LstmLm(model.cfg)
    cpu.load_state_dict(state)
    tmp = directory / ".model.safetensors.tmp"
    save_model(cpu, str(tmp))
    tmp.replace(directory / "model.safetensors")
    with atomic_open(directory / "config.json") as f:
        json.dump({"model_type": MODEL_TYPE, "format_version": FORMAT_VERSION, **dataclasses.asdict(model.cfg),
                   "units_file": units_file}, f, indent=1)


def load_lstm(directory: str | Path, device: torch.device | str = "cpu") -> tuple[LstmLm, SpmUnits | WordUnits]:
    """The LSTM LM of a directory written by :func:`save_lstm`, in eval mode, and its units."""
    directory = Path(directory)
    raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if raw.get("model_type") != MODEL_TYPE:
        raise ValueError(f"{directory}/config.json: model_type is {raw.get('model_type')!r}, not {MODEL_TYPE!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}/config.json: unsupported format_version {raw.get('format_version')!r}")
    known = {f.name for f in dataclasses.fields(LstmLmConfig)}
    cfg = LstmLmConfig(**{k: v for k, v in raw.items() if k in known})
    model = LstmLm(cfg)
    load_model(model, str(directory / "model.safetensors"))
    units = load_units(directory, cfg.unit)
    if units.vocab_size != cfg.vocab_size:
        raise ValueError(f"{directory}: units have {units.vocab_size} entries, config.json says {cfg.vocab_size}")
    return model.to(device).eval(), units


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One model input: ``inputs`` predict ``targets``; ``targets[first:]`` count for text ``owner``."""

    owner: int
    inputs: list[int]
    targets: list[int]
    first: int = 0


def make_rows(owner: int, ids: list[int], bos: int, eos: int, max_len: int | None, stride: int) -> list[Row]:
    """Rows scoring ``BOS ids EOS``: one row, or sliding windows when longer than ``max_len``."""
    seq = [bos, *ids, eos]
    n_pred = len(seq) - 1
    if max_len is None or n_pred <= max_len:
        return [Row(owner, seq[:-1], seq[1:])]
    rows, done, start = [], 0, 0
    while done < n_pred:
        start = min(start, n_pred - max_len)
        end = start + max_len
        rows.append(Row(owner, seq[start:end], seq[start + 1:end + 1], done - start))
        done = end
        start += stride
    return rows


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Row indices sorted by length (longest first), packed so that rows x max length <= budget."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    width = 0
    for i in order:
        w = max(width, lengths[i])
        if cur and w * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, w = [], lengths[i]
        cur.append(i)
        width = w
    if cur:
        batches.append(cur)
    return batches


Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ScoreStats:
    """What the last :meth:`CausalLmScorer.score` call did (for logs and run records)."""

    texts: int = 0
    unique: int = 0
    empty: int = 0
    windowed: int = 0
    rows: int = 0
    batches: int = 0
    tokens: int = 0

    def describe(self) -> str:
        return (f"{self.texts} texts ({self.unique} unique, {self.empty} empty, {self.windowed} scored in "
                f"sliding windows), {self.tokens} predicted tokens incl. EOS, {self.batches} batches")


@dataclass
class CausalLmScorer:
    """Sentence log-probabilities under a causal LM given as ``forward(ids, mask) -> logits``.

    ``encode`` maps normalised texts to unit ids without boundary tokens; ``max_len`` is the
    model's context (None: unlimited); ``window_stride`` as in the module docstring.
    """

    forward: Forward
    encode: Callable[[Sequence[str]], list[list[int]]]
    bos_id: int
    eos_id: int
    pad_id: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: str = "fp32"
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    max_len: int | None = None
    window_stride: int | None = None
    norm: Normalizer = field(default_factory=Normalizer)
    dedup: bool = True
    name: str = ""
    show_progress: bool = False
    prefix_space: bool | None = None  # what a Hugging Face tokenizer got (None: not applicable)
    stats: ScoreStats = field(default_factory=ScoreStats)

    def __post_init__(self) -> None:
        if self.batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {self.batch_tokens}")
        if self.max_len is not None:
            if self.max_len < 2:
                raise ValueError(f"context length {self.max_len} is too short to score")
            stride = self.window_stride or max(1, self.max_len // 2)
            if not 1 <= stride <= self.max_len:
                raise ValueError(f"window_stride must be in 1..{self.max_len}, got {self.window_stride}")
            self.window_stride = stride

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Natural-log ``P(W EOS | BOS)`` per text (float64)."""
        owner, sums, _ = self._run(texts, keep_tokens=False)
        return sums[owner]

    def score_tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per-prediction log-probabilities of each text, EOS last (the sum is :meth:`score`)."""
        owner, _, tokens = self._run(texts, keep_tokens=True)
        return [tokens[o] for o in owner.tolist()]

    def _run(self, texts: Sequence[str], keep_tokens: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """``(owner, sums, tokens)``: text i is unique text ``owner[i]``, whose log-probability is
        ``sums[owner[i]]`` and per-prediction values ``tokens[owner[i]]`` (when ``keep_tokens``)."""
        normed = [self.norm.text(t) for t in texts]
        if self.dedup:
            uniq_index: dict[str, int] = {}
            owner = np.array([uniq_index.setdefault(t, len(uniq_index)) for t in normed], dtype=np.int64)
            uniq = list(uniq_index)
        else:
            owner, uniq = np.arange(len(normed), dtype=np.int64), normed
        ids = self.encode(uniq)
        if len(ids) != len(uniq):
            raise RuntimeError(f"encoder returned {len(ids)} sequences for {len(uniq)} texts")
        rows: list[Row] = []
        windowed = 0
        for i, seq in enumerate(ids):
            r = make_rows(i, seq, self.bos_id, self.eos_id, self.max_len, self.window_stride or 1)
            windowed += len(r) > 1
            rows.extend(r)
        row_sums, row_counts, row_tokens, n_batches = self._score_rows(rows, keep_tokens)
        row_owner = np.fromiter((r.owner for r in rows), dtype=np.int64, count=len(rows))
        sums = np.zeros(len(uniq), dtype=np.float64)
        counts = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(sums, row_owner, row_sums)
        np.add.at(counts, row_owner, row_counts)
        want = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))
        bad = np.flatnonzero(counts != want)
        if len(bad):  # counts in = counts out: every unit and the EOS exactly once
            i = int(bad[0])
            raise RuntimeError(f"text {uniq[i]!r}: scored {counts[i]} predictions for {want[i]}")
        tokens: list[np.ndarray] = []
        if keep_tokens:  # rows of a text are consecutive and in window order
            per_text: list[list[np.ndarray]] = [[] for _ in uniq]
            for o, lp in zip(row_owner.tolist(), row_tokens, strict=True):
                per_text[o].append(lp)
            tokens = [np.concatenate(p) for p in per_text]
        self.stats = ScoreStats(texts=len(texts), unique=len(uniq), empty=sum(1 for t in normed if not t),
                                windowed=windowed, rows=len(rows), batches=n_batches, tokens=int(counts.sum()))
        return owner, sums, tokens

    def _score_rows(self, rows: list[Row], keep_tokens: bool
                    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], int]:
        """Per row: sum and number of scored predictions, the values themselves (if kept); batches."""
        sums = np.zeros(len(rows), dtype=np.float64)
        counts = np.zeros(len(rows), dtype=np.int64)
        tokens: list[np.ndarray] = [np.empty(0)] * len(rows) if keep_tokens else []
        batches = plan_batches([len(r.inputs) for r in rows], self.batch_tokens)
        bar = tqdm(batches, desc=f"clm {self.name}".strip(), unit="batch", disable=not self.show_progress,
                   file=sys.stderr, dynamic_ncols=True)
        with torch.inference_mode():
            for batch in bar:
                lp, n = self._score_batch([rows[i] for i in batch])
                index = np.asarray(batch)
                bounds = np.concatenate([[0], np.cumsum(n)])
                sums[index] = np.add.reduceat(lp, bounds[:-1]) if len(lp) else 0.0
                sums[index[n == 0]] = 0.0  # reduceat repeats a value for empty segments
                counts[index] = n
                if keep_tokens:
                    for j, i in enumerate(batch):
                        tokens[i] = lp[bounds[j]:bounds[j + 1]]
        return sums, counts, tokens, len(batches)

    def _score_batch(self, rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
        """Scored log-probabilities of a batch, row after row (float64), and their count per row."""
        width = max(len(r.inputs) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        tgt = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        scored = torch.zeros((len(rows), width), dtype=torch.bool)
        for b, r in enumerate(rows):
            n = len(r.inputs)
            ids[b, :n] = torch.tensor(r.inputs)
            tgt[b, :n] = torch.tensor(r.targets)
            mask[b, :n] = True
            scored[b, r.first:n] = True
        dev = self.device
        with autocast(dev, self.dtype):
            logits = self.forward(ids.to(dev), mask.to(dev))
        flat = logits.reshape(-1, logits.shape[-1])
        pos = scored.reshape(-1).nonzero().squeeze(1).to(dev)
        targets = tgt.reshape(-1).to(dev)[pos]
        pieces = []
        for s in range(0, len(pos), _SOFTMAX_ROWS):
            chunk = flat[pos[s:s + _SOFTMAX_ROWS]].float()
            lse = torch.logsumexp(chunk, dim=-1)
            pieces.append(chunk.gather(1, targets[s:s + _SOFTMAX_ROWS, None]).squeeze(1) - lse)
        lp = torch.cat(pieces).double().cpu().numpy() if pieces else np.zeros(0)
        return lp, scored.sum(1).numpy()


# --------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------


def lstm_scorer(model: LstmLm, units: SpmUnits | WordUnits, norm: str | None = None,
                **options) -> CausalLmScorer:
    """A scorer for our LSTM LM, with the normalisation it was trained with (``norm`` may only repeat it)."""
    cfg = model.cfg
    trained = Normalizer.parse(cfg.norm)
    if norm is not None and Normalizer.parse(norm) != trained:
        raise ValueError(f"the LSTM LM was trained with normalisation {str(trained)!r}; "
                         f"scoring with {norm!r} would not match")

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model(ids)

    return CausalLmScorer(forward=forward, encode=units.encode, bos_id=cfg.bos_id, eos_id=cfg.eos_id,
                          pad_id=cfg.pad_id, norm=trained, **options)


def boundary_ids(tokenizer) -> tuple[int, int]:
    """``(bos, eos)`` ids of a tokenizer: bos falls back to eos; neither is an error."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if eos is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no eos token: cannot score end of sentence")
    return (eos if bos is None else bos), eos


def detect_prefix_space(tokenizer) -> bool:
    """Whether a leading space gives the first word its mid-text spelling (see module docstring)."""
    def enc(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    head = enc("a")
    both = enc("a " + _PROBE_WORD)
    if both[:len(head)] != head:
        return False
    tail = both[len(head):]
    if tail == enc(_PROBE_WORD):
        return False
    return tail == enc(" " + _PROBE_WORD)


def context_length(config) -> int | None:
    """The number of positions a Hugging Face model accepts (None when unlimited/unknown)."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def hf_scorer(model, tokenizer, prefix_space: str | bool = "auto", norm: str | None = None,
              **options) -> CausalLmScorer:
    """A scorer for a Hugging Face causal LM (``model`` in eval mode on ``options['device']``)."""
    bos, eos = boundary_ids(tokenizer)
    if isinstance(prefix_space, str):
        if prefix_space not in ("auto", "true", "false"):
            raise ValueError(f"prefix_space must be auto, true or false, got {prefix_space!r}")
        prefix = detect_prefix_space(tokenizer) if prefix_space == "auto" else prefix_space == "true"
    else:
        prefix = bool(prefix_space)
    lead = " " if prefix else ""

    def encode(texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        enc = tokenizer([lead + t if t else "" for t in texts], add_special_tokens=False)["input_ids"]
        return [list(e) for e in enc]

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model(input_ids=ids, attention_mask=mask.long(), use_cache=False).logits

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    scorer = CausalLmScorer(forward=forward, encode=encode, bos_id=bos, eos_id=eos, pad_id=pad,
                            max_len=context_length(model.config), norm=Normalizer.parse(norm),
                            prefix_space=prefix, **options)
    log.info(f"causal LM {options.get('name', '')}: bos id {bos}, eos id {eos}, "
             f"{'prefix a space' if prefix else 'no leading space'}, context {scorer.max_len}, "
             f"window stride {scorer.window_stride}")
    return scorer


def load_scorer(name_or_dir: str, device: torch.device | str = "cpu", dtype: str = "fp32",
                batch_tokens: int = DEFAULT_BATCH_TOKENS, norm: str | None = None,
                prefix_space: str = "auto", window_stride: int | None = None, dedup: bool = True,
                show_progress: bool = False) -> CausalLmScorer:
    """Our LSTM LM (directory with the ``rescore_lstm_lm`` marker) or any Hugging Face causal LM."""
    device = torch.device(device)
    options = dict(device=device, dtype=dtype, batch_tokens=batch_tokens, window_stride=window_stride,
                   dedup=dedup, name=str(name_or_dir), show_progress=show_progress)
    if is_lstm_dir(name_or_dir):
        model, units = load_lstm(name_or_dir, device)
        log.info(f"LSTM LM {name_or_dir}: {model.cfg.num_layers}x{model.cfg.hidden_dim} LSTM, "
                 f"{units.vocab_size} {model.cfg.unit} units, normalisation {model.cfg.norm}")
        return lstm_scorer(model, units, norm=norm, **options)
    from transformers import AutoModelForCausalLM

    from rescore.models.hf import load_tokenizer, quiet_transformers

    quiet_transformers()
    tokenizer = load_tokenizer(name_or_dir)
    model = AutoModelForCausalLM.from_pretrained(name_or_dir, dtype=torch.float32, trust_remote_code=False)
    model.to(device).eval()
    return hf_scorer(model, tokenizer, prefix_space=prefix_space, norm=norm, **options)
