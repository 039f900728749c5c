"""Statistics of a dataset directory: sizes, first-pass and oracle error rates.

    python -m rescore.bin.nbest_stats [--json true|false] [--metric wer|cer|wer,cer] [--cer true|false]
        [--mode present|all] [--norm FLAGS] SETDIR

First pass = the best hypothesis by ``score``; oracle = the hypothesis with the fewest errors.
Errors are counted with the set's normalisation and metric as recorded at import (meta.yaml:
``normalization``, ``metric``; CER for Japanese and Chinese sets, WER otherwise), or ``--norm``
and ``--metric``; ``--cer`` adds CER to the metrics reported. The errors of the set's own metric
are cached as its ``errors`` stream. ``--json`` prints one JSON object with keys ``utts, hyps``
and ``first_pass_<metric>, oracle_<metric>`` (percentages) for each metric reported, e.g.
``first_pass_cer`` for a CSJ set.
"""

from __future__ import annotations

import argparse
import json

from rescore.bin.common import add_flag, log, norm_arg, parser, run
from rescore.data.nbest import load_set
from rescore.scoring.stats import ensure_errors, scoring_setup, set_stats

METRICS = ("wer", "cer")


def metric_arg(value: str) -> list[str]:
    """A ``--metric`` value: ``wer``, ``cer`` or both, comma-separated, in the order given."""
    out = []
    for m in (x.strip().lower() for x in value.split(",")):
        if m not in METRICS:
            raise argparse.ArgumentTypeError(f"unknown metric {m!r}: expected wer, cer or wer,cer")
        if m not in out:
            out.append(m)
    return out


def get_parser():
    p = parser(__doc__)
    add_flag(p, "json", "print one JSON object")
    p.add_argument("--metric", type=metric_arg,
                   help="wer, cer or wer,cer (default: the set's metric recorded in meta.yaml)")
    add_flag(p, "cer", "also report character error rates")
    p.add_argument("--mode", choices=["present", "all"], default="present",
                   help="references without hypotheses: skipped (present, default) or scored as deletions (all)")
    p.add_argument("--norm", type=norm_arg, help="normalisation flags (default: the set's meta.yaml)")
    p.add_argument("setdir")
    return p


def body(args) -> int:
    nbs = load_set(args.setdir)
    norm, set_metric = scoring_setup(nbs, args.norm)
    metrics = list(args.metric or [set_metric])
    if args.cer and "cer" not in metrics:
        metrics.append("cer")
    errors = {}
    if nbs.refs is not None:
        cache_dir = args.setdir if args.norm is None else None
        errors[set_metric] = ensure_errors(nbs, norm, set_metric, setdir=cache_dir)
    else:
        log.warning(f"{args.setdir} has no references (text): only sizes are reported")
    st = set_stats(nbs, norm, metrics if nbs.refs is not None else [], args.mode, errors)
    if args.json:
        print(json.dumps(st.as_json(), ensure_ascii=False))
        return 0
    print(f"{args.setdir}: {st.utts} utterances, {st.hyps} hypotheses, mean N {st.mean_n:.2f}, "
          f"max N {st.max_n}, {st.empty_hyps} empty (normalisation: {norm}, set metric: {set_metric})")
    for metric in st.first_pass:
        label = metric.upper()
        for name, res in (("first pass", st.first_pass[metric]), ("oracle", st.oracle[metric])):
            line = res.kaldi_lines()[0].replace("%WER", f"%{label}", 1)
            print(f"{name:<10} {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
