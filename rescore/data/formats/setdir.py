"""``setdir``: a canonical dataset directory itself (re-validate and copy, normalising order).

``read(src, refs=None)`` loads and validates ``src`` and returns it with utterances in C (code
point) order and each utterance's entries in rank order; ``write(nbs, out)`` saves a set.
"""

from __future__ import annotations

from pathlib import Path

from rescore.data.nbest import NbestSet, load_set, save_set


def read(src: str | Path, refs: dict[str, str] | None = None) -> NbestSet:
    nbs = load_set(src).normalized_order()
    meta = {k: v for k, v in nbs.meta.items() if k not in ("counts", "nonfinite", "format_version")}
    meta.setdefault("source", {"format": "setdir", "path": str(src), "options": {}})
    nbs.meta = meta
    if refs is not None:
        nbs.refs = dict(sorted(refs.items()))
    return nbs


def write(nbs: NbestSet, out: str | Path) -> list[Path]:
    save_set(nbs, out)
    out = Path(out)
    files = [out / "nbest" / "text", out / "nbest" / "meta.yaml"]
    files += [out / "nbest" / s for s in nbs.streams]
    if nbs.refs is not None:
        files.append(out / "text")
    return files
