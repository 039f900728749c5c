"""Gather the rescoring summaries of a recipe's systems into its RESULTS.md table.

    python -m rescore.bin.gather_results --system LABEL=EXPDIR [--system ...] [--set NAME ...]
        [--json FILE] RESULTS_MD

EXPDIR is a ``rescore --out`` directory holding ``EXPDIR/<set>/scoring/summary.json``; LABEL
names the system (clm, pll, md, mwer, mwed are shown as baseline LM, teacher PLL, MD/MWER/MWED
student). For every ``--set`` (default: every set some summary marks as an eval set) the table
has the first pass, the oracle and one row per system, in the order given (see
:mod:`rescore.scoring.results`). The table replaces the block between the results markers of
RESULTS_MD (created, or appended to a file without markers), keeping the text around it.
``--json FILE`` also writes the rows as JSON (null for a rate that is missing or not finite).
"""

from __future__ import annotations

from pathlib import Path

from rescore.bin.common import log, parser, run
from rescore.exceptions import InputError
from rescore.scoring.results import gather, table_lines, write_json, write_results


def get_parser():
    p = parser(__doc__)
    p.add_argument("--system", action="append", default=[], required=True,
                   help="LABEL=EXPDIR, a rescoring experiment directory (repeatable, in table order)")
    p.add_argument("--set", action="append", default=[], help="eval set name (repeatable; default: all found)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON to this file")
    p.add_argument("results_md", type=Path, help="the recipe's RESULTS.md (updated between its markers)")
    return p


def parse_systems(specs: list[str]) -> dict[str, Path]:
    systems: dict[str, Path] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise InputError(None, None, f"--system {spec!r}: expected LABEL=EXPDIR")
        if label in systems:
            raise InputError(None, None, f"--system {label} given twice")
        systems[label] = Path(path)
    return systems


def body(args) -> int:
    rows = gather(parse_systems(args.system), list(args.set) or None)
    changed = write_results(args.results_md, rows)
    if args.json is not None:
        changed = write_json(args.json, rows) or changed
    missing = [f"{r.set}/{r.label}" for r in rows if r.rate is None]
    if missing:
        log.warning(f"rows without a number: {', '.join(missing)}")
    what = "wrote" if changed else "skip: unchanged,"
    log.info(f"{what} {len(rows)} rows for {len({r.set for r in rows})} set(s) in {args.results_md}")
    print("\n".join(table_lines(rows)))  # the recipe's last words: the results table
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
