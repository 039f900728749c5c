"""Interpolation weights tuned on dev: total = first_pass + sum_k w_k * stream_k (+ wip * words).

Scales differ by orders of magnitude between recognisers (a Kaldi total cost is in the
thousands, an ESPnet score in the tens, a pocketsphinx score is shifted arbitrarily), so the
search never assumes a scale: for each weight it tries zero and log-spaced magnitudes of both
signs around the ratio of the within-utterance spreads of the first pass and the stream, then
refines around the best point; several weights are tuned by coordinate descent. Every candidate
is evaluated exactly (errors of the per-utterance argmax), vectorised over candidates: a few
thousand utterances with a hundred hypotheses each tune in seconds.

Ties between hypotheses go to the first in stored order; non-finite totals rank last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_MAX_CELLS = 20_000_000  # candidates x hypotheses evaluated at once


@dataclass
class TuneResult:
    """Weights found on the tuning set, their error count, and every point evaluated."""

    weights: dict[str, float]
    wip: float
    errors: int
    history: list[tuple[str, float, int]] = field(default_factory=list)  # (what, value, errors)


def best_index(offsets: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Index of the best (highest) total of every utterance."""
    return _first_max(offsets, np.asarray(total, dtype=np.float64)[None, :])[0]


def rescored_errors(offsets: np.ndarray, total: np.ndarray, errors: np.ndarray) -> int:
    """Total errors of the per-utterance argmax of ``total``."""
    return int(batch_errors(offsets, np.asarray(total, dtype=np.float64)[None, :], errors)[0])


def _first_max(offsets: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """(K, U) index of the first maximum of each utterance, for K rows of totals."""
    totals = np.where(np.isfinite(totals), totals, -np.inf)
    starts = offsets[:-1]
    counts = np.diff(offsets)
    mx = np.maximum.reduceat(totals, starts, axis=1)
    is_max = totals == np.repeat(mx, counts, axis=1)
    idx = np.where(is_max, np.arange(totals.shape[1])[None, :], totals.shape[1])
    return np.minimum.reduceat(idx, starts, axis=1)


def batch_errors(offsets: np.ndarray, totals: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Errors of the argmax for each of K candidate totals ``(K, H)`` -> ``(K,)``."""
    errors = np.asarray(errors)
    out = np.empty(totals.shape[0], dtype=np.int64)
    step = max(1, _MAX_CELLS // max(1, totals.shape[1]))
    for a in range(0, totals.shape[0], step):
        first = _first_max(offsets, totals[a:a + step])
        out[a:a + step] = errors[first].sum(axis=1)
    return out


def spread(offsets: np.ndarray, values: np.ndarray) -> float:
    """Mean within-utterance standard deviation of finite values (a scale, not a statistic)."""
    v = np.where(np.isfinite(values), values, np.nan)
    counts = np.diff(offsets)
    utt = np.repeat(np.arange(len(counts)), counts)
    n = np.bincount(utt, weights=~np.isnan(v), minlength=len(counts))
    s = np.bincount(utt, weights=np.nan_to_num(v), minlength=len(counts))
    mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
    dev = np.nan_to_num(v - mean[utt]) ** 2
    var = np.divide(np.bincount(utt, weights=dev, minlength=len(counts)), n, out=np.zeros_like(s), where=n > 0)
    std = np.sqrt(var[n > 1])
    return float(std.mean()) if len(std) and std.mean() > 0 else 0.0


def candidate_grid(scale: float, decades: int = 4, per_decade: int = 4) -> np.ndarray:
    """Zero and +-scale * 10^[-decades..decades] (log-spaced), sorted."""
    mags = scale * 10.0 ** np.linspace(-decades, decades, 2 * decades * per_decade + 1)
    return np.unique(np.concatenate([-mags, [0.0], mags]))


def _pick(cands: np.ndarray, errs: np.ndarray) -> int:
    """The candidate with fewest errors; among a run of ties, the middle one (a robust choice)."""
    best = errs.min()
    tied = np.flatnonzero(errs == best)
    runs = np.split(tied, np.flatnonzero(np.diff(tied) > 1) + 1)
    run = max(runs, key=len)
    return int(run[len(run) // 2])


def _search_1d(offsets, base, direction, errors, scale, refine_rounds=3, points=21, what="",
               history=None) -> tuple[float, int]:
    """Best w for ``base + w * direction``: coarse log grid, then finer linear grids around it."""
    cands = candidate_grid(scale)
    for r in range(refine_rounds + 1):
        totals = base[None, :] + cands[:, None] * direction[None, :]
        errs = batch_errors(offsets, totals, errors)
        if history is not None:
            history.extend((what, float(c), int(e)) for c, e in zip(cands, errs, strict=True))
        i = _pick(cands, errs)
        best, best_err = float(cands[i]), int(errs[i])
        if r == refine_rounds:
            break
        lo = cands[max(i - 1, 0)]
        hi = cands[min(i + 1, len(cands) - 1)]
        if lo == hi:
            break
        cands = np.unique(np.concatenate([np.linspace(lo, hi, points), [best]]))
    return best, best_err


def tune_weights(offsets: np.ndarray, first_pass: np.ndarray, streams: dict[str, np.ndarray],
                 errors: np.ndarray, num_words: np.ndarray | None = None, rounds: int = 2) -> TuneResult:
    """Weights of ``streams`` (and of a word insertion bonus when ``num_words`` is given).

    ``errors`` must be finite for every hypothesis (tune only on utterances with references).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    errors = np.asarray(errors, dtype=np.float64)
    if np.isnan(errors).any():
        raise ValueError(f"errors missing for {int(np.isnan(errors).sum())} hypotheses: tuning needs "
                         "references for every utterance")
    errors = errors.astype(np.int64)
    fp = np.where(np.isfinite(first_pass), first_pass, -np.inf).astype(np.float64)
    dirs = {k: np.nan_to_num(np.asarray(v, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            for k, v in streams.items()}
    if num_words is not None:
        dirs["<wip>"] = np.asarray(num_words, dtype=np.float64)
    ref_scale = spread(offsets, fp) or 1.0
    scales = {k: ref_scale / (spread(offsets, d) or 1.0) for k, d in dirs.items()}
    weights = {k: 0.0 for k in dirs}
    history: list[tuple[str, float, int]] = []
    best_err = rescored_errors(offsets, fp, errors)
    history.append(("first_pass", 0.0, best_err))
    for _ in range(max(1, rounds) if len(dirs) > 1 else 1):
        changed = False
        for k, d in dirs.items():
            base = fp + sum(weights[j] * dirs[j] for j in dirs if j != k)
            w, err = _search_1d(offsets, base, d, errors, scales[k], what=k, history=history)
            changed |= err < best_err
            if err <= best_err:
                weights[k], best_err = w, err
        if not changed:
            break
    wip = weights.pop("<wip>", 0.0)
    total = fp + sum(weights[k] * dirs[k] for k in weights) + (wip * dirs["<wip>"] if "<wip>" in dirs else 0.0)
    return TuneResult(weights=weights, wip=wip, errors=rescored_errors(offsets, total, errors), history=history)
