"""Memory and time to load a large dataset directory (columnar arrays, not objects).

    python bench/bench_load.py [--hyps 10000000] [--workdir /tmp/bench_load]

Target (issue 2): a set of 10M hypotheses loads in well under 4 GB. The reference, in the same
run, is the memory a one-Python-object-per-hypothesis representation needs for a sample of the
same data (a dict per hypothesis: key, text, score), extrapolated to the full set.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _synth import synthetic_set  # noqa: E402

from rescore.data.nbest import load_set, save_set  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: reset at exec, unlike ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hyps", type=int, default=10_000_000)
    p.add_argument("--workdir", default="/tmp/bench_load")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    setdir = os.path.join(args.workdir, f"set{args.hyps}")
    if args.child:  # measure loading alone in a fresh process
        base = peak_rss_mb()
        t0 = time.perf_counter()
        nbs = load_set(setdir)
        print(f"loaded {nbs.num_hyps} hyps in {time.perf_counter() - t0:.1f} s; "
              f"peak RSS {peak_rss_mb():.0f} MB (interpreter + imports {base:.0f} MB)")
        return
    if not os.path.isdir(setdir):
        t0 = time.perf_counter()
        nbs = synthetic_set(args.hyps, seed=1)
        save_set(nbs, setdir)
        del nbs
        print(f"wrote {setdir} in {time.perf_counter() - t0:.1f} s")
    size = sum(os.path.getsize(os.path.join(setdir, "nbest", f)) for f in os.listdir(os.path.join(setdir, "nbest")))
    print(f"set on disk: {size / 2**20:.0f} MB")
    subprocess.run([sys.executable, __file__, "--hyps", str(args.hyps), "--workdir", args.workdir, "--child"],
                   check=True)
    # reference: one Python dict per hypothesis, measured on 100k rows and extrapolated
    n = 100_000
    tracemalloc.start()
    rows = []
    with open(os.path.join(setdir, "nbest", "text"), encoding="utf-8") as ft, \
            open(os.path.join(setdir, "nbest", "score"), encoding="utf-8") as fs:
        for _, lt, ls in zip(range(n), ft, fs, strict=False):
            key, _, text = lt.rstrip("\n").partition(" ")
            rows.append({"key": key, "text": text, "score": float(ls.split()[1])})
    per_row = tracemalloc.get_traced_memory()[0] / n
    tracemalloc.stop()
    print(f"reference: one dict per hypothesis needs {per_row:.0f} B/hyp -> "
          f"{per_row * args.hyps / 2**30:.2f} GB for {args.hyps} hyps")
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(setdir)


if __name__ == "__main__":
    main()
