"""rescore.rescoring.dev_tuning: tuning the acoustic scale, streams and unit bonus on dev."""

from __future__ import annotations

import numpy as np

from rescore.rescoring.design import Design
from rescore.rescoring.dev_tuning import tune
from rescore.rescoring.weights import Weights


def synthetic_design(rng, n_utts, n=10, acwt=0.05):
    offsets = np.arange(0, n_utts * n + 1, n)
    errors = rng.integers(0, 6, size=n_utts * n)
    ac = 1000 + 20 * rng.normal(size=len(errors)) + 4 * errors
    graph = 50 + 5 * rng.normal(size=len(errors)) + 0.5 * errors
    stream = 1000 * (-errors + rng.normal(scale=0.7, size=len(errors)))
    words = rng.integers(3, 12, size=len(errors)).astype(float)
    return Design(offsets, -(graph + 1.0 * ac), ac, graph, words, {"lm": stream}), errors


def test_tune_acwt_beats_the_imported_scale_and_stays_positive():
    rng = np.random.default_rng(0)
    d, errors = synthetic_design(rng, 300)
    w, _ = tune(d.without_streams(), errors, ("acwt",), Weights({}))
    assert w.acwt is not None and 0 < w.acwt < 1.0
    err = {a: int(errors[d.offsets[:-1] + np.argmax(
        d.first_pass(a).reshape(-1, 10), axis=1)].sum()) for a in (1.0, w.acwt)}
    assert err[w.acwt] < err[1.0]
    # jointly with the stream and the word bonus: the stream gets a positive weight
    w2, _ = tune(d, errors, ("streams", "wip", "acwt"), Weights({"lm": 1.0}))
    assert w2.streams["lm"] > 0 and w2.acwt > 0
    # a fixed stream weight is kept while acwt is tuned
    w3, _ = tune(d, errors, ("acwt",), Weights({"lm": 0.25}, wip=0.5))
    assert (w3.streams["lm"], w3.wip) == (0.25, 0.5) and w3.acwt > 0


def test_tuning_3000_utterances_of_100_hypotheses():
    rng = np.random.default_rng(1)
    d, errors = synthetic_design(rng, 3000, n=100)
    d.streams["noise"] = rng.normal(size=len(errors))
    w, _ = tune(d, errors, ("streams", "wip", "acwt"), Weights({"lm": 1.0, "noise": 1.0}))
    assert w.streams["lm"] > 0
