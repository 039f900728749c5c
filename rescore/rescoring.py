"""Rescoring: interpolation weights tuned on dev, applied to every set, scored the Kaldi way.

The combination (higher is better)::

    total = first_pass + sum_k beta_k * stream_k + wip * num_units

``first_pass`` is the set's ``score``, or, for sets whose n-best holds Kaldi's ``ac_cost`` and
``graph_cost`` when an acoustic scale ``acwt`` is in play, ``-(graph_cost + acwt * ac_cost)``.
``num_units`` counts the hypothesis's scoring units, exactly as errors are counted for the set
(:func:`count_units`: the set's recorded normalisation and metric, or ``--norm``/``--cer``):
words after normalisation for WER sets (``csj``/``bracket`` drop ``<sp>``, ``<unk>``, ``+POS``
tags...), characters (whitespace removed) for CER sets, so the bonus means the same on ESPnet
CSJ text (no spaces) and on Kaldi CSJ text (``<sp>`` tokens). ``wip > 0`` is a bonus per unit
and ``wip < 0`` a penalty: the OPPOSITE sign of Kaldi's word-insertion penalty. Where the units
are the words as stored (a WER set whose normalisation drops no token, e.g. ``none``), Kaldi's
``WIP = -wip`` and, with ``acwt`` in play, ``LMWT = 1/acwt`` exactly; otherwise Kaldi's
``lattice-add-penalty`` (per lattice word, ``<sp>`` and noise words included) is only the
analogue.

Weights (the :class:`Weights` record; YAML schema of ``weights.yaml`` in :func:`save_weights`)
are tuned on the dev set only, with :func:`rescore.scoring.tuning.tune_weights` (log-spaced magnitudes of
both signs plus zero, then refinement; coordinate descent; vectorised). What is tuned is chosen
with a spec (:func:`parse_tune`): ``all`` (streams, wip, and acwt where every set has Kaldi
costs), ``none``, or ``+``-joined components ``streams``, ``wip``, ``acwt``. Components not tuned
keep their given values (``--weights``), else the defaults beta = 1, wip = 0, acwt = none (the
set's own ``score``).

The acoustic scale is tuned through the invariance of the argmax to a positive scaling of the
total: dividing by ``acwt`` gives ``-ac_cost + LMWT * (-graph_cost + fixed) + tuned / acwt``, so
``LMWT = 1/acwt`` is an ordinary weight (on a log-spaced grid like any other) and the stream
weights found are divided by it. The first-pass row of such sets is the first pass alone at the
acoustic scale (and unit bonus, when ``wip`` is tuned) tuned on dev, i.e. what a Kaldi user
reports after the LMWT (and WIP) sweep of ``local/score.sh``, except that Kaldi's ``best_wer``
picks the grid point on the test set itself, which can only give a lower number.

Missing values: a stream file must hold every key (else :class:`InvalidSetError` naming file and
line, before any work). Non-finite stream values (``BadNumber``, ``Infinity``) are allowed: a
stream that is non-finite for every hypothesis of an utterance carries no information there and
contributes nothing; an utterance for which that holds for every stream keeps its first-pass
order (its total is its first-pass score, without unit bonus) and is reported, never dropped. A
hypothesis with a non-finite value in a stream that is finite elsewhere in its utterance gets the
total ``-Infinity``: it is ranked last, counted and reported, never dropped.

Set-level figures: error rates as Kaldi's ``compute-wer --mode=present`` prints them; the 95%
confidence interval of ``rescored - first_pass`` (absolute percentage points) is a percentile
bootstrap over utterances (``replicates`` resamplings of the scored utterances with replacement,
seeded, each giving ``100 * sum(errors_rescored - errors_first) / sum(ref_units)``).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from rescore.data.archive import write_lines
from rescore.data.nbest import NbestSet, build_meta, load_set, read_scores, references_path, save_set
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.scoring.bootstrap import bootstrap_ci
from rescore.scoring.stats import ensure_errors, scoring_setup, set_stats
from rescore.scoring.tuning import TuneResult, batch_errors, spread, tune_weights
from rescore.scoring.wer import WerResult, kaldi_align, score_texts
from rescore.stage import atomic_open

log = get_logger(__name__)

COMPONENTS = ("streams", "wip", "acwt")
COST_STREAMS = ("ac_cost", "graph_cost", "lm_cost")  # carried into the output set when present
RESERVED_LABELS = frozenset({"score", "rank", "first_pass", "errors", "text", "meta.yaml", "wip", "acwt",
                             "lmwt", *COST_STREAMS})
WEIGHT_KEYS = ("streams", "wip", "acwt")
REFS_NAME = "ref"  # EXPDIR/<set>/ref: the references of a rescored set (its text is the 1-best)
OUTPUT_LAYOUT = 2  # 2: EXPDIR/<set>/{text,ref,nbest/}; 1 (before): EXPDIR/<set>/nbest/{text,nbest/}
INFO_KEYS = ("system", "tuned", "dev", "metric", "normalization", "dev_errors", "dev_rate", "first_pass",
             "kaldi_wip", "lmwt", "formula", "note")
FORMULA = "total = first_pass + sum_k streams[k] * stream_k + wip * num_units (higher is better)"
WIP_NOTE = ("num_units = the scoring units of the set's metric after its normalisation (words for WER, characters "
            "for CER); wip > 0 is a bonus per unit, wip < 0 a penalty: the opposite sign of Kaldi's "
            "word-insertion penalty (Kaldi WIP = -wip)")
ACWT_NOTE = "first_pass = score, or -(graph_cost + acwt * ac_cost) when acwt is set (Kaldi LMWT = 1/acwt)"
_LMWT = "<lmwt>"


# --------------------------------------------------------------------------------------------
# Specs: streams, what to tune, weights
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    """``LABEL=PATH``: a per-hypothesis archive; ``{set}`` in PATH stands for each set's name."""

    label: str
    template: str

    def path(self, set_name: str) -> Path:
        return Path(self.template.replace("{set}", set_name))


def parse_stream_spec(spec: str) -> StreamSpec:
    """``'pll=exp/teacher/{set}/pll'`` -> StreamSpec; the label must be a usable stream name."""
    label, eq, template = spec.partition("=")
    if not eq or not label or not template:
        raise InputError(None, None, f"--stream {spec!r}: expected LABEL=PATH")
    if label in RESERVED_LABELS or label.startswith(".") or any(c in label for c in "/\\ \t+=,"):
        raise InputError(None, None, f"--stream {spec!r}: invalid label {label!r} (reserved names: "
                                     f"{', '.join(sorted(RESERVED_LABELS))}; no '/', '+', ',', '=', spaces)")
    return StreamSpec(label, template)


def parse_tune(spec: str, *, kaldi: bool) -> tuple[str, ...]:
    """The components to tune: ``all``, ``none`` or e.g. ``streams+wip`` (``acwt`` needs Kaldi costs)."""
    if spec == "all":
        return COMPONENTS if kaldi else ("streams", "wip")
    if spec == "none":
        return ()
    parts = spec.split("+")
    bad = [p for p in parts if p not in COMPONENTS]
    if bad or len(set(parts)) != len(parts):
        raise InputError(None, None, f"--tune {spec!r}: expected all, none or a '+'-joined subset of "
                                     f"{', '.join(COMPONENTS)}")
    if "acwt" in parts and not kaldi:
        raise InputError(None, None, "--tune acwt: every set needs ac_cost and graph_cost streams (Kaldi)")
    return tuple(c for c in COMPONENTS if c in parts)


@dataclass
class Weights:
    """beta per stream label, the unit bonus, and the acoustic scale (None: the set's ``score``)."""

    streams: dict[str, float]
    wip: float = 0.0
    acwt: float | None = None

    def as_dict(self) -> dict:
        return {"streams": {k: float(v) for k, v in self.streams.items()}, "wip": float(self.wip),
                "acwt": None if self.acwt is None else float(self.acwt)}

    def describe(self) -> str:
        parts = [f"{k}={_g(v)}" for k, v in self.streams.items()] + [f"wip={_g(self.wip)}"]
        if self.acwt is not None:
            parts.append(f"acwt={_g(self.acwt)}")
        return ", ".join(parts)


def _g(x: float) -> str:
    return f"{x:.4g}"


def _number(path: Path, key: str, value, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, None, f"{key}: expected a finite number, got {value!r}")
    return float(value)


def load_weights(path: str | Path, labels: list[str]) -> Weights:
    """Read a weights YAML (the schema :func:`save_weights` writes); it must match ``labels`` exactly."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "weights file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"unreadable YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
        raise InputError(path, None, "expected a mapping with 'streams: {LABEL: beta, ...}'")
    unknown = [k for k in data if k not in WEIGHT_KEYS + INFO_KEYS]
    if unknown:
        raise InputError(path, None, f"unknown key(s) {', '.join(map(str, unknown))}; weights are "
                                     f"{', '.join(WEIGHT_KEYS)}")
    given = [str(k) for k in data["streams"]]
    missing = [k for k in labels if k not in given]
    extra = [k for k in given if k not in labels]
    if missing or extra:
        raise InputError(path, None, "weights do not match the streams: "
                         + "; ".join(filter(None, [missing and f"no weight for {', '.join(missing)}",
                                                   extra and f"no --stream for {', '.join(extra)}"])))
    streams = {k: _number(path, f"streams.{k}", data["streams"][k]) for k in labels}
    wip = _number(path, "wip", data.get("wip", 0.0))
    acwt = _number(path, "acwt", data.get("acwt"), allow_none=True)
    if acwt is not None and acwt <= 0:
        raise InputError(path, None, f"acwt must be positive (or null), got {acwt}")
    return Weights(streams, wip, acwt)


def save_weights(path: str | Path, weights: Weights, info: dict) -> None:
    """Write ``weights.yaml``: ``streams``, ``wip``, ``acwt`` (read back), then informational keys."""
    data = weights.as_dict()
    data["kaldi_wip"] = 0.0 - float(weights.wip)
    if weights.acwt is not None:
        data["lmwt"] = 1.0 / weights.acwt
    data.update({k: v for k, v in info.items() if k in INFO_KEYS})
    data["formula"] = FORMULA
    data["note"] = f"{WIP_NOTE}; {ACWT_NOTE}"
    header = (f"# Rescoring weights (python -m rescore.bin.rescore).\n# {FORMULA}\n# {ACWT_NOTE}\n"
              f"# {WIP_NOTE}\n# Read back by --weights: streams, wip, acwt; the other keys are informational.\n")
    with atomic_open(path) as f:
        f.write(header)
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------------------------
# The arrays of one set, and the combination
# --------------------------------------------------------------------------------------------


def count_words(nbs: NbestSet) -> np.ndarray:
    """Tokens of every hypothesis as stored (vectorised over the packed text column)."""
    spaces = np.flatnonzero(np.frombuffer(nbs.texts.buf, dtype=np.uint8) == 32)
    o = nbs.texts.offsets
    return np.searchsorted(spaces, o[1:]) - np.searchsorted(spaces, o[:-1]) + (o[1:] > o[:-1])


def count_units(nbs: NbestSet, norm: Normalizer | None = None, metric: str = "wer") -> np.ndarray:
    """Scoring units of every hypothesis: ``len(norm.units(text, metric))``, as errors are counted.

    Words after normalisation for ``wer`` (``csj``/``bracket`` drop ``<sp>``, ``<unk>``, ...),
    characters (whitespace removed, surviving bracketed tokens one each) for ``cer``. Normalisation
    maps each space-separated token on its own, so the count is a sum over tokens: each distinct
    token is normalised once, the sums are vectorised.
    """
    norm = norm or Normalizer()
    if metric not in ("wer", "cer"):
        raise ValueError(f"unknown metric {metric!r} (wer or cer)")
    if metric == "wer" and not norm.flags:
        return count_words(nbs)
    texts = nbs.texts
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    o = texts.offsets
    # one space between rows too, so that a split gives every row's tokens in order (an empty row
    # gives one empty token): row i holds (its spaces + 1) tokens
    joined = b" ".join(texts.buf[s:e] for s, e in zip(o[:-1].tolist(), o[1:].tolist(), strict=True))
    tokens = joined.split(b" ")
    counts = {t: len(norm.units([t.decode("utf-8")], metric)) for t in set(tokens)}
    per_token = np.fromiter(map(counts.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    tokens_per_row = count_words(nbs) + (o[1:] == o[:-1])
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(tokens_per_row[:-1], out=starts[1:])
    return np.add.reduceat(per_token, starts)


@dataclass
class Design:
    """What the combination needs for one set, as flat per-hypothesis arrays.

    ``streams`` hold the stream values with non-finite ones replaced by 0; ``info[u]`` says that
    utterance ``u`` has some finite value in some stream; ``dead[i]`` marks hypotheses with a
    non-finite value in a stream that is finite elsewhere in their utterance (ranked last).
    """

    offsets: np.ndarray
    score: np.ndarray
    ac: np.ndarray | None
    graph: np.ndarray | None
    units: np.ndarray  # scoring units per hypothesis (count_units), the direction of wip
    streams: dict[str, np.ndarray] = field(default_factory=dict)
    info: np.ndarray | None = None  # per utterance
    dead: np.ndarray | None = None  # per hypothesis

    def __post_init__(self) -> None:
        n_u = len(self.offsets) - 1
        if self.info is None:
            self.info = np.ones(n_u, dtype=bool)
        if self.dead is None:
            self.dead = np.zeros(len(self.score), dtype=bool)

    @property
    def kaldi(self) -> bool:
        return self.ac is not None and self.graph is not None

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def units_eff(self) -> np.ndarray:
        """Units where the unit bonus applies (not in utterances without stream information)."""
        return self.units * np.repeat(self.info, self.counts)

    def first_pass(self, acwt: float | None) -> np.ndarray:
        """The first-pass score at ``acwt`` (``score`` when None); non-finite -> -inf."""
        if acwt is None:
            fp = self.score
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                fp = -(self.graph + acwt * self.ac)
        return np.where(np.isfinite(fp), fp, -np.inf)

    def rest(self, w: Weights, skip: str | None = None) -> np.ndarray:
        """``sum_k beta_k * stream_k + wip * units`` (leaving out component ``skip``)."""
        out = np.zeros(len(self.score))
        for k, v in self.streams.items():
            if k != skip and w.streams.get(k, 0.0):
                out += w.streams[k] * v
        if skip != "wip" and w.wip:
            out += w.wip * self.units_eff
        return out

    def total(self, w: Weights) -> np.ndarray:
        t = self.first_pass(w.acwt) + self.rest(w)
        t[self.dead] = -np.inf
        return t

    def subset(self, utt_mask: np.ndarray) -> Design:
        """The design restricted to the utterances of ``utt_mask``."""
        hyp_mask = np.repeat(utt_mask, self.counts)
        offsets = np.zeros(int(utt_mask.sum()) + 1, dtype=np.int64)
        np.cumsum(self.counts[utt_mask], out=offsets[1:])

        def cut(a):
            return None if a is None else a[hyp_mask]

        return Design(offsets, self.score[hyp_mask], cut(self.ac), cut(self.graph), self.units[hyp_mask],
                      {k: v[hyp_mask] for k, v in self.streams.items()}, self.info[utt_mask], self.dead[hyp_mask])

    def without_streams(self) -> Design:
        return Design(self.offsets, self.score, self.ac, self.graph, self.units)


def build_design(nbs: NbestSet, raw: dict[str, np.ndarray], norm: Normalizer | None = None,
                 metric: str | None = None) -> Design:
    """The design of ``nbs`` with the raw stream values ``raw`` (label -> values in set order).

    The units of the word bonus are counted with ``norm`` and ``metric``, by default the set's own
    (:func:`rescore.scoring.stats.scoring_setup`: meta.yaml).
    """
    if norm is None or metric is None:
        set_norm, set_metric = scoring_setup(nbs)
        norm, metric = norm or set_norm, metric or set_metric
    offsets = np.asarray(nbs.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    info = np.zeros(len(counts), dtype=bool) if raw else None
    dead = np.zeros(nbs.num_hyps, dtype=bool)
    clean = {}
    for label, v in raw.items():
        fin = np.isfinite(v)
        has = np.add.reduceat(fin.astype(np.int64), offsets[:-1]) > 0
        info |= has
        dead |= np.repeat(has, counts) & ~fin
        clean[label] = np.where(fin, v, 0.0)
    s = nbs.streams
    ac, graph = s.get("ac_cost"), s.get("graph_cost")
    return Design(offsets, s["score"], ac if graph is not None else None, graph if ac is not None else None,
                  count_units(nbs, norm, metric).astype(np.float64), clean, info, dead)


# --------------------------------------------------------------------------------------------
# Tuning
# --------------------------------------------------------------------------------------------


def tune(design: Design, errors: np.ndarray, components: tuple[str, ...], start: Weights) -> tuple[Weights, TuneResult | None]:
    """Tune ``components`` on ``design`` (every hypothesis with a finite error count).

    Components not tuned keep their ``start`` values. With ``acwt`` the search runs over
    ``LMWT = 1/acwt`` (see the module docstring); a non-positive LMWT (nonsense: preferring higher
    graph costs) falls back to tuning the rest at the starting acwt, with a warning.
    """
    tuned_streams = list(start.streams) if "streams" in components else []
    fixed = Weights({k: v for k, v in start.streams.items() if k not in tuned_streams},
                    0.0 if "wip" in components else start.wip, start.acwt)
    fixed_part = design.rest(fixed)
    dirs = {k: design.streams[k] for k in tuned_streams}
    num_words = design.units_eff if "wip" in components else None
    if "acwt" in components:
        bad = design.dead | ~np.isfinite(design.ac) | ~np.isfinite(design.graph)
        base = np.where(bad, -np.inf, -design.ac)
        res = tune_weights(design.offsets, base, {_LMWT: -design.graph + fixed_part, **dirs}, errors, num_words)
        lmwt = res.weights.pop(_LMWT)
        if lmwt > 0:
            w = Weights({k: (res.weights[k] / lmwt if k in res.weights else v) for k, v in start.streams.items()},
                        res.wip / lmwt if num_words is not None else start.wip, 1.0 / lmwt)
            return w, res
        log.warning(f"tuning found a non-positive LMWT ({lmwt}): acwt kept at {start.acwt} "
                    "(the set's score when none)")
    if not dirs and num_words is None:
        return start, None
    base = design.first_pass(start.acwt) + fixed_part
    base[design.dead] = -np.inf
    res = tune_weights(design.offsets, base, dirs, errors, num_words)
    w = Weights({k: res.weights.get(k, v) for k, v in start.streams.items()},
                res.wip if num_words is not None else start.wip, start.acwt)
    return w, res


def dev_profiles(design: Design, errors: np.ndarray, w: Weights) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dev errors against each weight, the others held at ``w``: ``{name: (values, errors)}``."""
    out = {}
    fp = design.first_pass(w.acwt)
    ref_scale = spread(design.offsets, fp) or 1.0
    directions = {k: design.streams[k] for k in w.streams}
    directions["wip"] = design.units_eff
    for name, d in directions.items():
        v = w.wip if name == "wip" else w.streams[name]
        scale = abs(v) or ref_scale / (spread(design.offsets, d) or 1.0)
        mags = scale * 10.0 ** np.linspace(-2, 2, 17)
        cands = np.unique(np.concatenate([-mags, [0.0], mags, [v]]))
        base = fp + design.rest(w, skip=name)
        base[design.dead] = -np.inf
        out[name] = (cands, batch_errors(design.offsets, base[None, :] + cands[:, None] * d[None, :], errors))
    if w.acwt is not None:
        cands = np.unique(np.concatenate([w.acwt * 10.0 ** np.linspace(-1.5, 1.5, 31), [w.acwt]]))
        base = -design.graph + design.rest(w)
        base[design.dead | ~np.isfinite(design.graph) | ~np.isfinite(design.ac)] = -np.inf
        ac = np.nan_to_num(design.ac, nan=0.0, posinf=0.0, neginf=0.0)
        out["acwt"] = (cands, batch_errors(design.offsets, base[None, :] - cands[:, None] * ac[None, :], errors))
    return out


def plot_profile(path: Path, name: str, values: np.ndarray, rates: np.ndarray, chosen: float, metric: str,
                 dev: str) -> None:
    """A PNG of dev error rate against one weight (log axis for acwt, symlog otherwise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(values, rates, marker=".")
    ax.axvline(chosen, color="red", linestyle="--", label=f"chosen {chosen:.4g}")
    if name == "acwt":
        ax.set_xscale("log")
        ax.set_xlabel("acwt (Kaldi LMWT = 1/acwt)")
    else:
        nonzero = np.abs(values[values != 0])
        ax.set_xscale("symlog", linthresh=float(nonzero.min()) if len(nonzero) else 1.0)
        ax.set_xlabel("wip (bonus per scoring unit; Kaldi WIP = -wip)" if name == "wip" else f"weight of {name}")
    ax.set_ylabel(f"dev {metric.upper()} (%)")
    ax.set_title(f"{dev}: {metric.upper()} against {name}, other weights fixed")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", encoding=None) as f:
        fig.savefig(f, format="png", dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Scoring outputs
# --------------------------------------------------------------------------------------------


def _cjustify(s: str, width: int) -> str:
    right = (width - len(s)) // 2
    return " " * (width - len(s) - right) + s + " " * right


def per_utt_lines(utt: str, ref: list[str], hyp: list[str], eps: str = "***") -> list[str]:
    """The 4 lines of Kaldi's ``wer_per_utt_details.pl`` (ref, hyp, op, #csid C S I D) for one utterance."""
    pairs = kaldi_align(ref, hyp, eps)
    ops = ["D" if h == eps else "I" if r == eps else "S" if r != h else "C" for r, h in pairs]
    widths = [max(len(r), len(h), len(o)) for (r, h), o in zip(pairs, ops, strict=True)]
    cols = list(zip(pairs, ops, widths, strict=True))
    return [
        f"{utt} ref  " + "  ".join(_cjustify(r, n) for (r, _), _, n in cols),
        f"{utt} hyp  " + "  ".join(_cjustify(h, n) for (_, h), _, n in cols),
        f"{utt} op   " + "  ".join(_cjustify(o, n) for _, o, n in cols),
        f"{utt} #csid {ops.count('C')} {ops.count('S')} {ops.count('I')} {ops.count('D')}",
    ]


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(round(x, 4))


# --------------------------------------------------------------------------------------------
# The whole step
# --------------------------------------------------------------------------------------------


@dataclass
class RescoreOptions:
    """Everything ``rescore.bin.rescore`` passes in (see its docstring)."""

    dev: Path
    evals: list[Path]
    streams: list[StreamSpec]
    out: Path
    cer: bool = False
    tune: str | None = None  # None: 'none' with --weights, else 'all'
    weights: Path | None = None
    norm: str | None = None
    bootstrap: int = 1000
    seed: int = 0

    def set_dirs(self) -> list[tuple[str, Path, str]]:
        """``(name, dir, role)`` of every set, dev first."""
        return [(Path(self.dev).name, Path(self.dev), "dev")] + [(Path(e).name, Path(e), "eval") for e in self.evals]

    def input_paths(self) -> list[Path]:
        """Every input the outputs depend on (for the step fingerprint)."""
        paths: list[Path] = []
        for name, d, _ in self.set_dirs():
            paths += [references_path(d), d / "nbest"] + [s.path(name) for s in self.streams]
        return paths + ([Path(self.weights)] if self.weights else [])

    def config(self) -> dict:
        return {"dev": str(self.dev), "eval": [str(e) for e in self.evals],
                "stream": [f"{s.label}={s.template}" for s in self.streams], "out": str(self.out),
                "cer": self.cer, "tune": self.tune, "weights": None if self.weights is None else str(self.weights),
                "norm": self.norm, "bootstrap": self.bootstrap, "seed": self.seed}


@dataclass
class SetData:
    name: str
    path: Path
    role: str
    nbs: NbestSet
    design: Design
    raw: dict[str, np.ndarray]
    norm: Normalizer
    metric: str


@dataclass
class Job:
    """Validated inputs: every error a user can make is found before this exists."""

    opts: RescoreOptions
    sets: list[SetData]
    labels: list[str]
    components: tuple[str, ...]
    start: Weights
    kaldi: bool


def _check_names(opts: RescoreOptions) -> None:
    if not opts.streams:
        raise InputError(None, None, "at least one --stream LABEL=PATH is needed")
    labels = [s.label for s in opts.streams]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise InputError(None, None, f"--stream label(s) given twice: {', '.join(dup)}")
    names = [n for n, _, _ in opts.set_dirs()]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise InputError(None, None, f"set name(s) {', '.join(dup)} used twice (a set's name is its directory "
                                     "name; the dev set is never an eval set)")
    for s in opts.streams:
        if "{set}" not in s.template and len(names) > 1:
            raise InputError(None, None, f"--stream {s.label}={s.template}: PATH needs {{set}} to name one "
                                         "archive per set")
    if opts.bootstrap < 0:
        raise InputError(None, None, f"--bootstrap must be >= 0, got {opts.bootstrap}")


def _load(name: str, d: Path, role: str, opts: RescoreOptions) -> SetData:
    nbs = load_set(d)
    if nbs.num_hyps == 0:
        raise InputError(d / "nbest" / "text", None, "empty set: no hypotheses")
    norm, metric = scoring_setup(nbs, opts.norm, "cer" if opts.cer else None)
    if role == "dev":
        if nbs.refs is None:
            raise InputError(references_path(d), None, "the dev set has no references: weights are tuned on dev errors")
        if not any(u in nbs.refs for u in nbs.utt_ids):
            raise InputError(references_path(d), None, "no utterance of the dev set has a reference")
    raw = {}
    for s in opts.streams:
        p = s.path(name)
        if not p.is_file():
            raise InputError(p, None, f"missing archive of stream {s.label} for set {name}")
        raw[s.label] = read_scores(p, nbs)
    return SetData(name, d, role, nbs, build_design(nbs, raw, norm, metric), raw, norm, metric)


def prepare(opts: RescoreOptions) -> Job:
    """Parse and validate everything (sets, streams, weights, what to tune) before any work."""
    _check_names(opts)
    sets = [_load(n, d, r, opts) for n, d, r in opts.set_dirs()]
    labels = [s.label for s in opts.streams]
    kaldi = all(sd.design.kaldi for sd in sets)
    if not kaldi and any(sd.design.kaldi for sd in sets):
        log.warning("only some sets have ac_cost and graph_cost: the acoustic scale is not tuned")
    tune_spec = opts.tune or ("none" if opts.weights else "all")
    components = parse_tune(tune_spec, kaldi=kaldi)
    start = load_weights(opts.weights, labels) if opts.weights else Weights({k: 1.0 for k in labels})
    if start.acwt is not None and not kaldi:
        bad = [sd.name for sd in sets if not sd.design.kaldi]
        raise InputError(opts.weights, None, f"acwt is set but set(s) {', '.join(bad)} have no ac_cost and "
                                             "graph_cost streams (use acwt: null)")
    for sd in sets:
        log.info(f"{sd.role} set {sd.name}: {sd.nbs.num_utts} utterances, {sd.nbs.num_hyps} hypotheses, "
                 f"metric {sd.metric}, normalisation {sd.norm} (wip per {'character' if sd.metric == 'cer' else 'word'}), "
                 f"streams {', '.join(labels)}")
    return Job(opts, sets, labels, components, start, kaldi)


def _missing_report(sd: SetData, total: np.ndarray) -> dict:
    d = sd.design
    no_info = [sd.nbs.utt_ids[u] for u in np.flatnonzero(~d.info)]
    last = np.flatnonzero(~np.isfinite(total))
    keys = [sd.nbs.key(int(i)) for i in last[:20]]
    if no_info:
        log.warning(f"{sd.name}: {len(no_info)} utterance(s) have no finite value in any stream and keep their "
                    f"first-pass order: {', '.join(no_info[:20])}")
    if len(last):
        log.warning(f"{sd.name}: {len(last)} hypothesis(es) with a non-finite total are ranked last: "
                    f"{', '.join(keys)}")
    return {"utts_without_streams": {"count": len(no_info), "utts": no_info[:20]},
            "hyps_ranked_last": {"count": int(len(last)), "keys": keys}}


def _output_set(sd: SetData, total: np.ndarray, w: Weights, system: str, streams: list[StreamSpec]) -> tuple[NbestSet, np.ndarray]:
    """The rescored set: same keys, each utterance's entries in new-score order, with rank/score/first_pass."""
    nbs = sd.nbs
    order = nbs.order_within(total)
    counts = nbs.counts()
    rank = (np.arange(nbs.num_hyps) - np.repeat(nbs.offsets[:-1], counts) + 1).astype(np.float64)
    cols = {"score": total, "first_pass": nbs.streams["score"], **sd.raw}
    cols.update({c: nbs.streams[c] for c in COST_STREAMS if c in nbs.streams})
    meta = {k: v for k, v in nbs.meta.items() if k not in ("errors", "counts", "nonfinite", "streams")}
    old = nbs.meta.get("streams") or {}
    meta["streams"] = {c: old[c] for c in COST_STREAMS if c in old}
    meta["streams"].update({
        "score": {"better": "higher", "description": f"rescored total ({FORMULA}; {w.describe()})"},
        "rank": {"better": "lower", "description": "new rank (1 = rescored 1-best); the key keeps the input rank"},
        "first_pass": {"better": "higher", "description": "the input set's score"},
        **{s.label: {"better": "higher", "description": f"second-pass stream {s.template}"} for s in streams},
    })
    if w.acwt is not None:
        meta["acoustic_scale"] = w.acwt
    meta["rescore"] = {"system": system, "input": str(sd.path), **w.as_dict(),
                       "streams_from": {s.label: str(s.path(sd.name)) for s in streams}, "formula": FORMULA}
    out = NbestSet(utt_ids=list(nbs.utt_ids), offsets=nbs.offsets.copy(), ranks=nbs.ranks[order],
                   texts=nbs.texts.take(order), streams={"rank": rank, **{k: v[order] for k, v in cols.items()}},
                   refs=None if nbs.refs is None else dict(nbs.refs), meta=meta)
    out.meta = build_meta(out)
    return out, order[nbs.offsets[:-1]]


def _texts_of(nbs: NbestSet, index: np.ndarray) -> dict[str, str]:
    return {nbs.utt_ids[u]: nbs.texts[int(i)] for u, i in enumerate(index)}


def _score_set(sd: SetData, errors: np.ndarray | None, base_best: np.ndarray, new_best: np.ndarray,
               opts: RescoreOptions) -> dict:
    """Rates and per-utterance results of one labelled set (None entries without references)."""
    nbs, norm, metric = sd.nbs, sd.norm, sd.metric
    st = set_stats(nbs, norm, [metric], "present", {metric: errors})
    base = score_texts(nbs.refs, _texts_of(nbs, base_best), norm, metric)
    new = score_texts(nbs.refs, _texts_of(nbs, new_best), norm, metric)
    utts = list(new.per_utt)
    e_base = np.array([base.per_utt[u][0] for u in utts], dtype=np.float64)
    e_new = np.array([new.per_utt[u][0] for u in utts], dtype=np.float64)
    units = np.array([new.per_utt[u][4] for u in utts], dtype=np.float64)
    lo, hi = bootstrap_ci(e_base, e_new, units, opts.bootstrap, opts.seed)
    fr, nr = base.rate, new.rate
    rel = 100.0 * (nr - fr) / fr if fr and math.isfinite(fr) else math.nan
    return {"results": {"first_pass": base, "rescored": new, "oracle": st.oracle[metric],
                        "input_first_pass": st.first_pass[metric]},
            "relative_change": rel, "absolute_change": nr - fr, "ci95": (lo, hi)}


def _write_scoring(sd: SetData, outdir: Path, scored: dict, new_best: np.ndarray) -> None:
    nbs = sd.nbs
    res: WerResult = scored["results"]["rescored"]
    write_lines(outdir / "scoring" / "wer", res.kaldi_lines())
    hyps = _texts_of(nbs, new_best)
    lines: list[str] = []
    for utt in sorted(res.per_utt):
        lines += per_utt_lines(utt, sd.norm.units(nbs.refs[utt], sd.metric), sd.norm.units(hyps[utt], sd.metric))
    write_lines(outdir / "scoring" / "per_utt", lines)


def _summary(sd: SetData, system: str, w: Weights, base_w: Weights, scored: dict | None, report: dict,
             changed: int, opts: RescoreOptions) -> dict:
    m = sd.metric
    out: dict = {"set": sd.name, "role": sd.role, "system": system, "metric": m, "normalization": str(sd.norm),
                 "utts": sd.nbs.num_utts, "hyps": sd.nbs.num_hyps, "changed_1best": changed}
    if scored is None:
        out.update({f"first_pass_{m}": None, f"rescored_{m}": None, f"oracle_{m}": None, "relative_change": None,
                    "absolute_change": None, "ci95": None, "note": "no references: not scored"})
    else:
        r = scored["results"]
        out.update({f"first_pass_{m}": _r(r["first_pass"].rate), f"rescored_{m}": _r(r["rescored"].rate),
                    f"oracle_{m}": _r(r["oracle"].rate), f"input_first_pass_{m}": _r(r["input_first_pass"].rate),
                    "relative_change": _r(scored["relative_change"]), "absolute_change": _r(scored["absolute_change"]),
                    "ci95": [_r(x) for x in scored["ci95"]],
                    "bootstrap": {"replicates": opts.bootstrap, "seed": opts.seed, "resampled": "utterances",
                                  "statistic": f"rescored - first_pass {m.upper()}, absolute percentage points",
                                  "method": "percentile"},
                    "details": {k: v.summary() for k, v in r.items()}})
    out.update({"weights": w.as_dict(), "first_pass_weights": base_w.as_dict(), "formula": FORMULA,
                "note": f"{WIP_NOTE}; {ACWT_NOTE}; relative_change = 100 * (rescored - first_pass) / first_pass; "
                        "first_pass is the first pass alone (at the tuned acwt for Kaldi sets), input_first_pass "
                        "the set's own score", **report})
    return out


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.1f}%" if pct else f"{x:.2f}"


def results_md(system: str, dev: SetData, w: Weights, summaries: list[dict], plots: list[str]) -> list[str]:
    lines = [f"# Rescoring: {system}", "",
             f"`{FORMULA}`; {ACWT_NOTE}.", f"{WIP_NOTE}.",
             f"Weights tuned on dev set `{dev.name}` only ({dev.metric.upper()}), written to `weights.yaml`. "
             "First pass: the first pass alone (acoustic scale tuned on dev for Kaldi sets, as the LMWT sweep); "
             "95% CI: bootstrap over utterances of rescored - first pass (absolute points).", "",
             "| set | system | metric | weights | first pass | rescored | oracle | rel. change | 95% CI |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        m = s["metric"]
        ci = s.get("ci95")
        ci_txt = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci and None not in ci else "-"
        lines.append(f"| {s['set']} | {system} | {m.upper()} | {w.describe()} | {_fmt(s[f'first_pass_{m}'])} | "
                     f"{_fmt(s[f'rescored_{m}'])} | {_fmt(s[f'oracle_{m}'])} | "
                     f"{_fmt(s['relative_change'], pct=True)} | {ci_txt} |")
    if plots:
        lines += ["", "Dev error rate against each weight: " + ", ".join(f"[{p}]({p})" for p in plots)]
    return lines


def execute(job: Job) -> dict:
    """Tune on dev, apply to every set, write all outputs; returns ``{set: summary}``."""
    out = Path(job.opts.out)
    system = "+".join(job.labels)
    dev = job.sets[0]
    dev_err = ensure_errors(dev.nbs, dev.norm, dev.metric)
    has_ref = np.array([u in dev.nbs.refs for u in dev.nbs.utt_ids], dtype=bool)
    if not has_ref.all():
        log.warning(f"dev set {dev.name}: tuning on the {int(has_ref.sum())} of {len(has_ref)} utterances "
                    "with a reference")
    tune_design = dev.design.subset(has_ref)
    tune_err = dev_err[np.repeat(has_ref, dev.design.counts)]
    ref_units = sum(len(dev.norm.units(dev.nbs.refs[u], dev.metric)) for u in dev.nbs.utt_ids if u in dev.nbs.refs)
    # first pass alone: the acoustic scale (and unit bonus) a Kaldi user would tune, else the set's score
    base_w = Weights({})
    if "acwt" in job.components:
        base_w, _ = tune(tune_design.without_streams(), tune_err,
                         tuple(c for c in ("wip", "acwt") if c in job.components), Weights({}))
    elif job.start.acwt is not None:
        base_w = Weights({}, 0.0, job.start.acwt)
    w, res = tune(tune_design, tune_err, job.components, job.start) if job.components else (job.start, None)
    dev_errors = int(batch_errors(tune_design.offsets, tune_design.total(w)[None, :], tune_err)[0])
    log.info(f"weights ({'tuned: ' + '+'.join(job.components) if job.components else 'given'}): {w.describe()}; "
             f"dev {dev.metric.upper()} errors {dev_errors} / {ref_units} "
             f"(first pass {int(batch_errors(tune_design.offsets, tune_design.without_streams().total(base_w)[None, :], tune_err)[0])})")
    log.info(WIP_NOTE)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / "weights.yaml", w, {
        "system": system, "tuned": list(job.components), "dev": dev.name, "metric": dev.metric,
        "normalization": str(dev.norm), "dev_errors": dev_errors,
        "dev_rate": _r(100.0 * dev_errors / ref_units) if ref_units else None, "first_pass": base_w.as_dict()})
    plots = []
    for name, (vals, errs) in dev_profiles(tune_design, tune_err, w).items():
        chosen = w.wip if name == "wip" else w.acwt if name == "acwt" else w.streams[name]
        fname = f"dev_{name}.png"
        plot_profile(out / fname, name, vals, 100.0 * errs / max(ref_units, 1), chosen, dev.metric, dev.name)
        plots.append(fname)
    summaries = {}
    for sd in job.sets:
        summaries[sd.name] = _rescore_one(sd, w, base_w, system, job, out)
    write_lines(out / "RESULTS.md", results_md(system, dev, w, [s for s in summaries.values() if s["role"] == "eval"],
                                               plots))
    return summaries


def _rescore_one(sd: SetData, w: Weights, base_w: Weights, system: str, job: Job, out: Path) -> dict:
    total = sd.design.total(w)
    report = _missing_report(sd, total)
    new_nbs, new_best = _output_set(sd, total, w, system, job.opts.streams)
    base_best = sd.nbs.best(sd.design.without_streams().total(base_w))
    setout = out / sd.name
    if (setout / "nbest" / "nbest").is_dir():  # the nested shape of earlier versions: replaced, not mixed
        shutil.rmtree(setout / "nbest" / "nbest")
    save_set(new_nbs, setout, refs_name=REFS_NAME)
    one_best = _texts_of(sd.nbs, new_best)
    write_lines(setout / "text", (f"{u} {t}" if t else u for u, t in sorted(one_best.items())))
    changed = int((base_best != new_best).sum())
    scored = None
    if sd.nbs.refs is not None:
        errors = ensure_errors(sd.nbs, sd.norm, sd.metric)
        scored = _score_set(sd, errors, base_best, new_best, job.opts)
        _write_scoring(sd, setout, scored, new_best)
    else:
        log.warning(f"{sd.name} has no references: rescored outputs written, not scored")
    summary = _summary(sd, system, w, base_w, scored, report, changed, job.opts)
    with atomic_open(setout / "scoring" / "summary.json") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
        f.write("\n")
    m = sd.metric
    log.info(f"{sd.role} {sd.name}: {m.upper()} first pass {_fmt(summary[f'first_pass_{m}'])}, rescored "
             f"{_fmt(summary[f'rescored_{m}'])}, oracle {_fmt(summary[f'oracle_{m}'])}; {changed} 1-best changed")
    return summary


def nbest_dir(out: Path, set_name: str) -> Path:
    """``EXPDIR/<set>``: the rescored set, a decode directory and a dataset directory in one.

    ``nbest/{text,score,...}`` the rescored n-best, ``text`` the rescored 1-best, ``ref`` the
    references (named in ``nbest/meta.yaml`` as ``references``), so :func:`rescore.data.nbest.load_set`
    and the exporters read it as they read any set. Earlier versions wrote the set one level down
    (``EXPDIR/<set>/nbest/nbest/...``, references in ``EXPDIR/<set>/nbest/text``); such a directory
    is still a dataset directory and loads as before.
    """
    return Path(out) / set_name
