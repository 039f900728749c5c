#!/usr/bin/env python3
"""How peaked is the n-best posterior that MWER/MWED train on?

    python egs/books_en/local/nbest_posteriors.py [--stream FILE --beta B] [--scale S ...] SETDIR

For the interpolated score ``s = first_pass + beta * stream`` of every hypothesis (the stream is
optional: without it, the first pass alone), and for each ``--scale`` S, the posterior
``p = softmax(S * s)`` over each utterance's n-best. MWER's loss is ``sum_i p_i * errors_i`` and
its gradient with respect to ``s_i`` is ``S * p_i * (errors_i - sum_j p_j errors_j)``: when ``p`` is
nearly one-hot, it is nearly zero, whatever the student does. Printed per scale (means over
utterances with at least two distinct error counts):

* ``top1``: the largest posterior; ``eff_n``: exp(entropy), the effective number of hypotheses;
* ``p_oracle``: the posterior mass on the hypotheses with the fewest errors;
* ``grad``: sum_i |p_i * (errors_i - expected errors)|, the size of MWER's gradient per unit S;
* ``exp_err`` / ``best_err``: expected errors under p and errors of the best by s, per utterance.

``--json`` prints the same as one object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from rescore.data.nbest import load_set, read_scores  # noqa: E402
from rescore.scoring.stats import ensure_errors, scoring_setup  # noqa: E402


def posterior_stats(offsets: np.ndarray, s: np.ndarray, errors: np.ndarray, scale: float) -> dict[str, float]:
    """The statistics of ``softmax(scale * s)`` per utterance (see the module doc)."""
    rows = {k: [] for k in ("top1", "eff_n", "p_oracle", "grad", "exp_err", "best_err")}
    for u in range(len(offsets) - 1):
        a, b = int(offsets[u]), int(offsets[u + 1])
        e, v = errors[a:b], s[a:b]
        ok = np.isfinite(v) & np.isfinite(e)
        e, v = e[ok], v[ok]
        if len(v) < 2 or np.all(e == e[0]):
            continue
        z = scale * (v - v.max())
        p = np.exp(z)
        p /= p.sum()
        ent = -np.sum(p[p > 0] * np.log(p[p > 0]))
        mean_e = float(np.sum(p * e))
        rows["top1"].append(p.max())
        rows["eff_n"].append(np.exp(ent))
        rows["p_oracle"].append(p[e == e.min()].sum())
        rows["grad"].append(np.sum(np.abs(p * (e - mean_e))))
        rows["exp_err"].append(mean_e)
        rows["best_err"].append(e[int(np.argmax(v))])
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in rows.items()}
    out["utts"] = len(rows["top1"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stream", type=Path, help="per-hypothesis scores (e.g. exp/student_md/train/student)")
    p.add_argument("--beta", type=float, default=0.0, help="weight of the stream in s (default 0)")
    p.add_argument("--scale", type=float, action="append", help="scale S of softmax(S * s) (repeatable; default 1)")
    p.add_argument("--json", action="store_true")
    p.add_argument("setdir", type=Path)
    args = p.parse_args(argv)
    nbs = load_set(args.setdir)
    errors = ensure_errors(nbs, *scoring_setup(nbs), setdir=args.setdir)
    s = nbs.streams["score"].astype(np.float64)
    if args.stream is not None:
        s = s + args.beta * read_scores(args.stream, nbs)
    res = {f"{sc:g}": posterior_stats(nbs.offsets, s, errors.astype(np.float64), sc) for sc in (args.scale or [1.0])}
    if args.json:
        print(json.dumps({"set": str(args.setdir), "stream": str(args.stream), "beta": args.beta, "scales": res}))
        return 0
    print(f"{args.setdir}: s = first_pass" + (f" + {args.beta:g} * {args.stream}" if args.stream else ""))
    print("scale   utts  top1   eff_n  p_oracle  grad    exp_err  best_err")
    for sc, r in res.items():
        print(f"{sc:>5} {r['utts']:>6}  {r['top1']:.3f}  {r['eff_n']:5.2f}  {r['p_oracle']:.3f}     "
              f"{r['grad']:.3f}   {r['exp_err']:.3f}    {r['best_err']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
