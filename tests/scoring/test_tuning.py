import numpy as np
import pytest

from rescore.scoring.tuning import batch_errors, best_index, candidate_grid, rescored_errors, spread, tune_weights


def test_best_index_ties_and_non_finite():
    offsets = np.array([0, 3, 5, 6])
    total = np.array([1.0, 3.0, 3.0, np.nan, -np.inf, np.inf])
    # ties -> first; NaN/-inf rank last (an all-non-finite utterance keeps its first); +inf ranks last
    assert best_index(offsets, total).tolist() == [1, 3, 5]
    assert rescored_errors(offsets, total, np.array([5, 1, 2, 7, 0, 4])) == 1 + 7 + 4


def test_batch_errors_matches_loop():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 6, size=50)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    totals = rng.normal(size=(7, offsets[-1]))
    errors = rng.integers(0, 5, size=offsets[-1])
    want = [sum(errors[a + np.argmax(t[a:b])] for a, b in zip(offsets[:-1], offsets[1:], strict=True))
            for t in totals]
    assert batch_errors(offsets, totals, errors).tolist() == want


def test_grid_has_zero_and_both_signs():
    g = candidate_grid(2.0, decades=1, per_decade=1)
    assert g.tolist() == [-20.0, -2.0, -0.2, 0.0, 0.2, 2.0, 20.0]


def synthetic(rng, n_utts, scale_fp=1.0, scale_stream=1000.0, n=10):
    offsets = np.arange(0, n_utts * n + 1, n)
    errors = rng.integers(0, 6, size=n_utts * n)
    first_pass = scale_fp * rng.normal(size=n_utts * n) - 0.05 * scale_fp * errors
    stream = scale_stream * (-errors + rng.normal(scale=0.7, size=n_utts * n))
    return offsets, first_pass, stream, errors


@pytest.mark.parametrize("scale_fp", [1e-3, 1.0, 1e3])
def test_tuning_on_dev_recovers_most_of_the_oracle_gap_on_eval(scale_fp):
    rng = np.random.default_rng(1)
    dev = synthetic(rng, 300, scale_fp, 1000.0 * scale_fp)
    ev = synthetic(rng, 300, scale_fp, 1000.0 * scale_fp)
    res = tune_weights(dev[0], dev[1], {"lm": dev[2]}, dev[3])
    offsets, fp, stream, errors = ev
    first = rescored_errors(offsets, fp, errors)
    oracle = int(np.minimum.reduceat(errors, offsets[:-1]).sum())
    rescored = rescored_errors(offsets, fp + res.weights["lm"] * stream, errors)
    assert res.weights["lm"] > 0
    assert (first - rescored) > 0.7 * (first - oracle)


def test_useless_stream_gets_weight_zero_or_harmless_and_wip():
    rng = np.random.default_rng(2)
    offsets, fp, _, errors = synthetic(rng, 200)
    noise = rng.normal(size=len(fp))
    words = rng.integers(1, 10, size=len(fp)).astype(float)
    res = tune_weights(offsets, fp, {"noise": noise}, errors, num_words=words)
    assert res.errors <= rescored_errors(offsets, fp, errors)
    assert isinstance(res.wip, float) and res.history


def test_missing_errors_is_an_error():
    with pytest.raises(ValueError, match="references"):
        tune_weights(np.array([0, 2]), np.zeros(2), {"a": np.zeros(2)}, np.array([1.0, np.nan]))


def test_spread_is_within_utterance():
    offsets = np.array([0, 2, 4])
    assert spread(offsets, np.array([1000.0, 1002.0, -5.0, -3.0])) == pytest.approx(1.0)
