"""Is one system's error rate different from another's? A paired bootstrap over utterances.

    python -m rescore.bin.compare_wer [--cer true|false] [--norm FLAGS] [--replicates 1000] [--seed 0] REF HYP1 HYP2

Like Kaldi's ``compute-wer-bootci``: REF, HYP1 and HYP2 are Kaldi ``text`` archives (rspecifiers
or paths, as ``compute_wer`` reads them; keys must be unique); both hypotheses are scored on the same
utterances (every reference must have a hypothesis in both: ``strict``), the utterances are
resampled with replacement ``--replicates`` times, and it prints each system's error rate, the
change ``HYP2 - HYP1`` in absolute points with its percentile confidence interval, each system's
own interval over the same replicates (what ``compute-wer-bootci`` prints per set), the share of
replicates in which HYP2 is better, and how many utterances got better, worse or stayed the same.
A CI that includes 0 means the test set cannot tell the two systems apart.

``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from rescore.bin.common import add_flag, nonneg_int, norm_arg, open_unit, parser, positive_int, run
from rescore.bin.compute_wer import read_unique
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from rescore.scoring.bootstrap import bootstrap_changes, percentile_ci
from rescore.scoring.wer import AbsentHypothesisError, score_texts


def get_parser():
    p = parser(__doc__)
    add_flag(p, "cer", "character error rate (spaces not counted)")
    p.add_argument("--norm", type=norm_arg, default="none", help="normalisation flags applied to every side (default none)")
    p.add_argument("--replicates", type=positive_int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the resampling (default 0)")
    p.add_argument("--level", type=open_unit, default=0.95, help="confidence level (default 0.95)")
    add_flag(p, "json", "one JSON object instead of text")
    p.add_argument("ref")
    p.add_argument("hyp1")
    p.add_argument("hyp2")
    return p


def compare(refs: dict[str, str], hyp1: dict[str, str], hyp2: dict[str, str], norm: Normalizer, metric: str,
            replicates: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Both systems' results on every reference, and the paired bootstrap of their difference."""
    r1 = score_texts(refs, hyp1, norm, metric, "strict")
    r2 = score_texts(refs, hyp2, norm, metric, "strict")
    utts = list(refs)
    e1 = np.array([r1.per_utt[u][0] for u in utts], dtype=np.float64)
    e2 = np.array([r2.per_utt[u][0] for u in utts], dtype=np.float64)
    units = np.array([r1.per_utt[u][4] for u in utts], dtype=np.float64)
    changes = bootstrap_changes(e1, e2, units, replicates, seed)
    lo, hi = percentile_ci(changes, level)
    zero = np.zeros_like(e1)  # each system's own rate over the same resamples (same seed: same draws)
    ci1, ci2 = (list(percentile_ci(bootstrap_changes(zero, e, units, replicates, seed), level)) for e in (e1, e2))
    better = float((changes < 0).mean()) if len(changes) else float("nan")
    diff = e2 - e1
    change = r2.rate - r1.rate
    return {"metric": metric, "normalization": str(norm), "utts": len(utts), "ref_units": int(units.sum()),
            "hyp1": r1.summary(), "hyp2": r2.summary(), "change": change,
            "relative_change": change / r1.rate if r1.rate else float("nan"),
            "ci": [lo, hi], "hyp1_ci": ci1, "hyp2_ci": ci2, "level": level, "replicates": replicates, "seed": seed, "p_hyp2_better": better,
            "utts_better": int((diff < 0).sum()), "utts_worse": int((diff > 0).sum()),
            "utts_same": int((diff == 0).sum())}


def lines(res: dict, name1: str, name2: str) -> list[str]:
    m = f"%{res['metric'].upper()}"
    out = []
    for key, name in (("hyp1", name1), ("hyp2", name2)):
        r = res[key]
        out.append(f"{m} {r['rate']:.2f} [ {r['errors']} / {r['ref_units']}, {r['ins']} ins, {r['del']} del, "
                   f"{r['sub']} sub ] {name}")
    lo, hi = res["ci"]
    out.append(f"change (hyp2 - hyp1) {res['change']:+.2f} points ({100 * res['relative_change']:+.1f}% relative), "
               f"{100 * res['level']:.0f}% CI [{lo:+.2f}, {hi:+.2f}] over {res['utts']} utterances "
               f"({res['replicates']} replicates)")
    (a1, b1), (a2, b2) = res["hyp1_ci"], res["hyp2_ci"]
    out.append(f"{100 * res['level']:.0f}% CI of each system: hyp1 [{a1:.2f}, {b1:.2f}], hyp2 [{a2:.2f}, {b2:.2f}]")
    out.append(f"hyp2 better in {100 * res['p_hyp2_better']:.1f}% of replicates; utterances better "
               f"{res['utts_better']}, worse {res['utts_worse']}, same {res['utts_same']}")
    return out


def body(args) -> int:
    refs, h1, h2 = read_unique(args.ref), read_unique(args.hyp1), read_unique(args.hyp2)
    if not refs:
        raise InputError(args.ref, None, "no references: nothing to compare")
    try:
        res = compare(refs, h1, h2, Normalizer.parse(args.norm), "cer" if args.cer else "wer", args.replicates,
                      args.seed, args.level)
    except AbsentHypothesisError as e:
        print(f"compare_wer: error: {e.args[0]}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**res, "hyp1_path": args.hyp1, "hyp2_path": args.hyp2}, indent=1))
    else:
        print("\n".join(lines(res, args.hyp1, args.hyp2)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
