#!/usr/bin/env python3
"""Every system against the first pass and against a reference system, with paired bootstraps.

    python egs/books_en/local/compare_systems.py [--data data] [--exp exp/rescore] [--against md]
        [--sets dev,test] [--systems clm,pll,md,mwer,mwed] [--replicates 10000] [--json FILE]

For each set and system: the system's 1-best (``EXP/<system>/<set>/text``, written by
``rescore``) is compared with the first-pass 1-best (the best by ``score`` of ``DATA/<set>``) and
with the 1-best of ``--against`` by ``rescore.bin.compare_wer``'s paired bootstrap over
utterances (the same resamples for every comparison of a set: seed 0). Prints a markdown table:
error rate, change against the first pass and against the reference system (absolute points,
relative, 95% CI), P(better than the reference), and utterances better/worse than it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from rescore.bin.compare_wer import compare, read_unique  # noqa: E402
from rescore.data.nbest import load_set  # noqa: E402
from rescore.scoring.stats import scoring_setup  # noqa: E402

LABELS = {"clm": "baseline LM", "pll": "teacher PLL", "md": "MD student", "mwer": "MWER student",
          "mwed": "MWED student"}


def first_pass_text(setdir: Path) -> dict[str, str]:
    nbs = load_set(setdir)
    best = nbs.best(nbs.streams["score"])
    return {u: nbs.texts[int(best[i])] for i, u in enumerate(nbs.utt_ids)}


def _ci(res: dict) -> str:
    lo, hi = res["ci"]
    return f"{res['change']:+.2f} ({100 * res['relative_change']:+.1f}%) [{lo:+.2f}, {hi:+.2f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--exp", type=Path, default=Path("exp/rescore"))
    p.add_argument("--against", default="md", help="reference system (default md)")
    p.add_argument("--sets", default="dev,test")
    p.add_argument("--systems", default="clm,pll,md,mwer,mwed")
    p.add_argument("--replicates", type=int, default=10000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows, records = [], []
    for s in args.sets.split(","):
        nbs = load_set(args.data / s)
        norm, metric = scoring_setup(nbs)
        refs = read_unique(str(args.data / s / "text"))
        fp = first_pass_text(args.data / s)
        ref_sys = read_unique(str(args.exp / args.against / s / "text"))
        for name in args.systems.split(","):
            hyp = read_unique(str(args.exp / name / s / "text"))
            vs_fp = compare(refs, fp, hyp, norm, metric, args.replicates)
            vs_ref = compare(refs, ref_sys, hyp, norm, metric, args.replicates)
            records.append({"set": s, "system": name, "vs_first_pass": vs_fp, f"vs_{args.against}": vs_ref})
            against = "" if name == args.against else _ci(vs_ref)
            better = "" if name == args.against else f"{100 * vs_ref['p_hyp2_better']:.1f}%"
            counts = "" if name == args.against else \
                f"{vs_ref['utts_better']} / {vs_ref['utts_worse']}"
            rows.append(f"| {s} | {LABELS.get(name, name)} | {vs_fp['hyp2']['rate']:.2f} | {_ci(vs_fp)} | "
                        f"{against} | {better} | {counts} |")
    ref = LABELS.get(args.against, args.against)
    print(f"| set | system | %{metric.upper()} | vs first pass: change (rel.) [95% CI] | vs {ref}: change (rel.) "
          f"[95% CI] | P(better than {ref}) | utts better / worse than {ref} |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
