"""Validate a dataset directory and report every problem with its file and line.

    python -m rescore.bin.validate SETDIR

Checks: keys '<utt>-<k>' with 1-based ranks and no gaps or duplicates, contiguous utterances,
every stream holding exactly the keys of nbest/text with numeric values, valid UTF-8, no CRLF
line ends or empty lines, readable meta.yaml whose counts match. Non-finite values (Infinity,
BadNumber) and references without hypotheses (or the reverse) are warnings. Exit code 1 on errors.
"""

from __future__ import annotations

from rescore.bin.common import parser, run
from rescore.data.nbest import build_meta, describe, inspect_set
from rescore.exceptions import InputError


def get_parser():
    p = parser(__doc__)
    p.add_argument("setdir")
    return p


def body(args) -> int:
    nbs, rep = inspect_set(args.setdir)
    warnings = list(rep.warnings)
    if nbs is not None:
        recorded = (nbs.meta or {}).get("counts")
        actual = build_meta(nbs)["counts"]
        if recorded is None:
            warnings.append(f"{args.setdir}/nbest/meta.yaml: missing or without counts")
        elif any(recorded.get(k) != v for k, v in actual.items()):
            rep.errors.append(f"{args.setdir}/nbest/meta.yaml: counts {recorded} differ from the data {actual}")
        listed = set((nbs.meta or {}).get("streams") or {})
        for name in sorted(set(nbs.streams) - listed):
            warnings.append(f"{args.setdir}/nbest/{name}: stream not described in meta.yaml (convention unknown)")
    for w in warnings:
        print(f"WARNING {w}")
    for e in rep.errors:
        print(f"ERROR {e}")
    if rep.errors:
        print(f"{args.setdir}: {len(rep.errors)} error(s), {len(warnings)} warning(s)")
        raise InputError(args.setdir, None, f"not a valid dataset directory: {len(rep.errors)} error(s) (listed above)")
    print(f"{args.setdir}: OK, {describe(nbs)}, {len(warnings)} warning(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
