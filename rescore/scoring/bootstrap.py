"""The paired percentile bootstrap over utterances of a change in error rate (absolute points).

``bootstrap_changes`` resamples the utterances with replacement (seeded) and gives, for each
replicate, ``100 * sum(new - base) / sum(units)``; ``percentile_ci`` is the percentile interval
of those values and ``bootstrap_ci`` the two together. Rescoring reports the 95% CI of
``rescored - first_pass`` with them, ``compare_wer`` that of one system against another.
"""

from __future__ import annotations

import math

import numpy as np


def bootstrap_changes(base: np.ndarray, new: np.ndarray, units: np.ndarray, replicates: int = 1000,
                      seed: int = 0) -> np.ndarray:
    """``100 * sum(new - base) / sum(units)`` over ``replicates`` resamples of the utterances (finite ones)."""
    diff = np.asarray(new, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    units = np.asarray(units, dtype=np.float64)
    n = len(diff)
    if n == 0 or replicates < 1:
        return np.zeros(0, dtype=np.float64)
    rng = np.random.default_rng(seed)
    stats = []
    chunk = max(1, 4_000_000 // n)
    for a in range(0, replicates, chunk):
        idx = rng.integers(0, n, size=(min(chunk, replicates - a), n))
        with np.errstate(divide="ignore", invalid="ignore"):
            stats.append(100.0 * diff[idx].sum(axis=1) / units[idx].sum(axis=1))
    s = np.concatenate(stats)
    return s[np.isfinite(s)]


def percentile_ci(changes: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``changes`` (nan, nan when there are none)."""
    if not len(changes):
        return math.nan, math.nan
    lo, hi = np.percentile(changes, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def bootstrap_ci(base: np.ndarray, new: np.ndarray, units: np.ndarray, replicates: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of ``100 * sum(new - base) / sum(units)`` over utterances (absolute points)."""
    return percentile_ci(bootstrap_changes(base, new, units, replicates, seed), level)
