"""A stand-in scoring step for the parallel-job tests: the number of words of every hypothesis.

    python -m tests.fake_scorer [--name NAME] [--overwrite true|false] SETDIR OUTDIR

Behaves like a real step (rescore.stage): skips when OUTDIR/.done holds the fingerprint of SETDIR
and its options, else writes OUTDIR/NAME atomically, then OUTDIR/run.yaml, then .done. Test hooks,
by environment so that a rerun sees the same options (and fingerprint):
  FAKE_SCORER_COUNTER=FILE  append "<basename of SETDIR>" to FILE each time the job does work;
  FAKE_SCORER_KILL=J        when SETDIR's basename is J: write half the output, then SIGKILL itself;
  FAKE_SCORER_FAIL=J        when SETDIR's basename is J: exit 3 without writing anything.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from rescore.bin.common import add_overwrite, log, parser, run
from rescore.data.nbest import load_set, write_scores
from rescore.stage import clear_done, fingerprint, is_done, mark_done, write_run_info


def get_parser():
    p = parser("number of words per hypothesis (a test stand-in for a scorer)")
    p.add_argument("--name", default="words")
    add_overwrite(p)
    p.add_argument("setdir")
    p.add_argument("outdir")
    return p


def body(args) -> int:
    setdir, outdir = Path(args.setdir), Path(args.outdir)
    job = setdir.name
    fp = fingerprint([setdir / "nbest" / "text"], {"name": args.name})
    if is_done(outdir, fp) and not args.overwrite:
        log.info("skip: %s is up to date", outdir)
        return 0
    outdir.mkdir(parents=True, exist_ok=True)
    clear_done(outdir)
    counter = os.environ.get("FAKE_SCORER_COUNTER")
    if counter:
        with open(counter, "a") as f:
            f.write(job + "\n")
    if os.environ.get("FAKE_SCORER_FAIL") == job:
        log.error("failing on purpose (job %s)", job)
        return 3
    nbs = load_set(setdir, streams=[])
    values = nbs.texts.num_tokens().astype(float)
    if os.environ.get("FAKE_SCORER_KILL") == job:
        keys = list(nbs.keys())
        with open(outdir / args.name, "w") as f:  # a torn, non-atomic write, as a crash leaves it
            f.writelines(f"{k} {v}\n" for k, v in zip(keys[: len(keys) // 2], values, strict=False))
        os.kill(os.getpid(), signal.SIGKILL)
    write_scores(outdir / args.name, nbs, values)
    write_run_info(outdir, None, "tests.fake_scorer", {"name": args.name})
    mark_done(outdir, fp)
    log.info("scored %d hypotheses -> %s", nbs.num_hyps, outdir / args.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
