"""Merge the per-job score archives of a split set into one archive, checking every key.

    python -m rescore.bin.merge_scores --name NAME --nj NJ SETDIR OUTDIR

Reads OUTDIR/split<NJ>/<j>/NAME for j = 1..NJ, each joined to the subset SETDIR/split<NJ>/<j> it
was computed from (the split must be up to date with SETDIR), checks that every key of SETDIR
appears exactly once across the parts (a missing part or key, a duplicate or a stray key is an
error naming the part file, line and key), and writes OUTDIR/NAME in SETDIR's key order, then
OUTDIR/run.yaml and OUTDIR/.done. The parts are found by number, never by globbing, so NJ fixes
exactly which files are merged. Each part directory must hold the .done its job writes last
(--require-done false to merge archives of steps that write none). Skips when OUTDIR/.done matches
the fingerprint of SETDIR and the parts (with their .done files), unless --overwrite true.
"""

from __future__ import annotations

from pathlib import Path

from rescore.bin.common import add_overwrite, log, parser, positive_int, run, str2bool
from rescore.data.nbest import references_path
from rescore.data.split import merge_stream, split_root
from rescore.exceptions import InputError
from rescore.stage import DONE, clear_done, fingerprint, is_done, mark_done, write_run_info


def get_parser():
    p = parser(__doc__)
    p.add_argument("--name", required=True, help="archive name in every part and in OUTDIR (e.g. pll)")
    p.add_argument("--nj", type=positive_int, required=True, help="number of parts: OUTDIR/split<NJ>/{1..NJ}")
    p.add_argument("--require-done", "--require_done", type=str2bool, default=True,
                   help="true (default): every part directory must hold its job's .done")
    add_overwrite(p)
    p.add_argument("setdir")
    p.add_argument("outdir")
    return p


def body(args) -> int:
    setdir, outdir = Path(args.setdir), Path(args.outdir)
    if args.nj < 1 or not args.name or "/" in args.name or args.name.startswith("."):
        raise InputError(None, None, f"invalid --nj {args.nj} or --name {args.name!r}")
    parts = [outdir / f"split{args.nj}" / str(j) for j in range(1, args.nj + 1)]
    extra = outdir / f"split{args.nj}" / str(args.nj + 1)
    if extra.exists():
        raise InputError(extra, None, f"exists: the parts are not those of {args.nj} jobs")
    inputs = [references_path(setdir), setdir / "nbest", split_root(setdir, args.nj) / DONE]
    for pdir in parts:
        inputs += [pdir / args.name, pdir / DONE]
    config = {"name": args.name, "nj": args.nj, "require_done": args.require_done}
    fp = fingerprint(inputs, config)
    if is_done(outdir, fp) and (outdir / args.name).is_file() and not args.overwrite:
        log.info("skip: %s is up to date", outdir / args.name)
        return 0
    clear_done(outdir)  # locks outdir (creating it) first: one writer
    merge_stream(setdir, parts, args.name, outdir / args.name, require_done=args.require_done)
    write_run_info(outdir, None if args.argv is None else args.argv, "rescore.bin.merge_scores", config)
    mark_done(outdir, fp)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = get_parser()
    p.set_defaults(argv=argv)
    return run(body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
