"""rescore.scoring.bootstrap: the paired percentile bootstrap over utterances."""

from __future__ import annotations

import numpy as np

from rescore.scoring.bootstrap import bootstrap_ci


def test_bootstrap_ci_is_seeded_and_brackets_the_difference():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 5, size=400).astype(float)
    new = np.maximum(base - rng.integers(0, 2, size=400), 0)
    units = rng.integers(5, 15, size=400).astype(float)
    lo, hi = bootstrap_ci(base, new, units, 500, seed=3)
    point = 100 * (new - base).sum() / units.sum()
    assert lo < point < hi < 0
    assert (lo, hi) == bootstrap_ci(base, new, units, 500, seed=3)
    assert bootstrap_ci(base, base, units) == (0.0, 0.0)
    assert all(np.isnan(bootstrap_ci(base[:0], base[:0], units[:0])))
