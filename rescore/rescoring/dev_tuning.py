"""Tuning the weights on the dev set, and the dev error rate against each weight.

:func:`tune` runs :func:`rescore.scoring.tuning.tune_weights` over the components asked for (the
acoustic scale through ``LMWT = 1/acwt``, see :mod:`rescore.rescoring`); :func:`dev_profiles`
sweeps each weight with the others held, and :func:`plot_profile` draws one sweep as a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rescore.log import get_logger
from rescore.rescoring.design import Design
from rescore.rescoring.weights import Weights
from rescore.scoring.tuning import TuneResult, batch_errors, spread, tune_weights
from rescore.stage import atomic_open

log = get_logger(__name__)

_LMWT = "<lmwt>"


def tune(design: Design, errors: np.ndarray, components: tuple[str, ...], start: Weights) -> tuple[Weights, TuneResult | None]:
    """Tune ``components`` on ``design`` (every hypothesis with a finite error count).

    Components not tuned keep their ``start`` values. With ``acwt`` the search runs over
    ``LMWT = 1/acwt`` (see :mod:`rescore.rescoring`); a non-positive LMWT (nonsense: preferring higher
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

