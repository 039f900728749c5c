"""Bulk per-hypothesis error counting (the ``errors`` stream) on one core.

    python bench/bench_errors.py [--hyps 1000000] [--metric wer|cer]

Target (issue 2): 1M hypotheses well under a minute on one core. The reference is a
straightforward implementation in the same run: Kaldi's edit-distance DP in pure Python per
hypothesis (timed on a sample and extrapolated); both must give identical error counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _synth import synthetic_set  # noqa: E402

from rescore.data.textnorm import Normalizer  # noqa: E402
from rescore.scoring.wer import hyp_errors, kaldi_edit_distance  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hyps", type=int, default=1_000_000)
    p.add_argument("--metric", choices=["wer", "cer"], default="wer")
    p.add_argument("--sample", type=int, default=20_000, help="hypotheses timed with the reference")
    args = p.parse_args()
    t0 = time.perf_counter()
    nbs = synthetic_set(args.hyps)
    print(f"synthetic set: {nbs.num_utts} utterances, {nbs.num_hyps} hypotheses "
          f"({time.perf_counter() - t0:.1f} s to build)")
    norm = Normalizer()

    t0 = time.perf_counter()
    errors, _ = hyp_errors(nbs, norm, args.metric)
    fast = time.perf_counter() - t0

    n = min(args.sample, nbs.num_hyps)
    t0 = time.perf_counter()
    ref_errors = np.empty(n)
    for i in range(n):
        u = i // 20
        ref = norm.units(nbs.refs[nbs.utt_ids[u]], args.metric)
        ref_errors[i] = kaldi_edit_distance(ref, norm.units(nbs.texts[i], args.metric))[0]
    slow = (time.perf_counter() - t0) * nbs.num_hyps / n
    assert np.array_equal(errors[:n], ref_errors), "bulk errors differ from Kaldi's DP"

    print(f"toolkit  : {nbs.num_hyps} hyps in {fast:.1f} s ({nbs.num_hyps / fast:,.0f} hyps/s)")
    print(f"reference: pure-Python Kaldi DP, {slow:.1f} s extrapolated from {n} hyps "
          f"({nbs.num_hyps / slow:,.0f} hyps/s); identical counts on the sample")
    print(f"ratio    : {slow / fast:.1f}x faster; 1M hyps would take {fast * 1e6 / nbs.num_hyps:.1f} s "
          f"(target: well under 60 s)")


if __name__ == "__main__":
    main()
