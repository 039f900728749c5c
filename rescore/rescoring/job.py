"""A rescoring run's options, and the validated job made from them.

:class:`RescoreOptions` is everything ``rescore.bin.rescore`` passes in (with the inputs and
config its fingerprint covers); :func:`prepare` loads every set and stream archive, reads the
weights and decides what to tune, raising every error a user can make before anything is
written; the :class:`Job` it returns holds one :class:`SetData` per set, dev first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rescore.data.nbest import NbestSet, load_set, read_scores, references_path
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.rescoring.design import Design, build_design
from rescore.rescoring.weights import StreamSpec, Weights, load_weights, parse_tune
from rescore.scoring.stats import scoring_setup

log = get_logger(__name__)


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
    nbs = load_set(d)  # an empty set is an error there
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

