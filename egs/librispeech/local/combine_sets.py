"""Combine dataset directories into one (the union of their utterances), e.g. dev_clean + dev_other -> dev.

    python local/combine_sets.py OUT_SETDIR SETDIR1 SETDIR2 [...]

The sets must have disjoint utterance ids, the same streams and the same language, metric and
normalisation (meta.yaml), as sets imported by local/data.sh with the same options do. The
output is a canonical dataset directory (utterances in C order, every stream kept, references
merged) whose meta.yaml names its parts under ``source``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rescore.data.nbest import NbestBuilder, describe, load_set, save_set
from rescore.exceptions import InputError, InvalidSetError
from rescore.log import get_logger, setup_logging

log = get_logger("rescore.combine_sets")

#: meta.yaml keys that must agree between the parts.
SAME = ("language", "metric", "normalization")


def combine(out: Path, parts: list[Path]) -> dict:
    sets = [load_set(p) for p in parts]
    first = sets[0]
    names = list(first.streams)
    for p, nbs in zip(parts, sets, strict=True):
        if sorted(nbs.streams) != sorted(names):
            raise InputError(p, None, f"streams {sorted(nbs.streams)} differ from {parts[0]}'s {sorted(names)}")
        for key in SAME:
            if nbs.meta.get(key) != first.meta.get(key):
                raise InputError(p, None, f"meta.yaml {key} {nbs.meta.get(key)!r} differs from "
                                          f"{parts[0]}'s {first.meta.get(key)!r}")
        if (nbs.refs is None) != (first.refs is None):
            raise InputError(p, None, f"references present in only some of the sets ({parts[0]} and {p})")
    seen: dict[str, Path] = {}
    for p, nbs in zip(parts, sets, strict=True):
        for u in [*nbs.utt_ids, *(nbs.refs or {})]:
            if seen.setdefault(u, p) != p:
                raise InputError(p, None, f"utterance {u} is also in {seen[u]}: the sets must be disjoint")
    builder = NbestBuilder(names)
    refs: dict[str, str] | None = None if first.refs is None else {}
    for nbs in sets:
        ranks = nbs.ranks.tolist()
        offsets = nbs.offsets.tolist()
        cols = {s: nbs.streams[s].tolist() for s in names}
        for u, utt in enumerate(nbs.utt_ids):
            for i in range(offsets[u], offsets[u + 1]):
                builder.add(utt, ranks[i], nbs.texts[i], {s: cols[s][i] for s in names})
        if refs is not None:
            refs.update(nbs.refs)
    meta = {k: first.meta[k] for k in SAME if k in first.meta}
    meta["source"] = {"format": "combined", "parts": [str(p) for p in parts]}
    meta["streams"] = first.meta.get("streams", {})
    combined = builder.build(refs=refs, meta=meta).normalized_order()
    written = save_set(combined, out)
    log.info(f"wrote {out}: {describe(combined)} from {', '.join(map(str, parts))}")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output dataset directory")
    p.add_argument("parts", type=Path, nargs="+", help="dataset directories to combine")
    args = p.parse_args(argv)
    setup_logging(1)
    if args.out.resolve() in {q.resolve() for q in args.parts}:
        p.error("OUT_SETDIR must differ from the sets combined")
    try:
        combine(args.out, args.parts)
    except (InputError, InvalidSetError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
