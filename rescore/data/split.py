"""Split a set into per-job subsets and merge per-job score archives (Kaldi-style parallel jobs).

A step that scores hypotheses runs as ``NJ`` jobs under ``utils/run.pl`` (or ``queue.pl``,
``slurm.pl``): ``split_set(setdir, nj)`` writes ``<set>/split<NJ>/<j>/`` (j = 1..NJ), job j
scores ``<set>/split<NJ>/<j>`` into ``<out>/split<NJ>/<j>/<name>``, and ``merge_stream`` joins the
parts into ``<out>/<name>`` after checking that every key of the set appears exactly once.

The split is by utterance into ``NJ`` contiguous blocks of near-equal utterance counts, in the
set's order (as Kaldi's ``split_scp.pl``: the first ``U mod NJ`` blocks get one utterance more),
so the parts concatenated are the set again. Every subset is a canonical dataset directory with
its hypotheses, every stream, its references and meta.yaml (plus ``meta['split']``). References
of utterances without hypotheses stay only in the full set (there is nothing to score); their
number is logged. ``<set>/split<NJ>/.done`` holds a fingerprint of the source's ``text`` and
``nbest/``; a split whose fingerprint matches and whose subsets all exist is reused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rescore.data.nbest import NbestSet, load_set, read_scores, references_path, save_set, write_scores
from rescore.exceptions import InputError, InvalidSetError
from rescore.log import get_logger
from rescore.stage import DONE, clear_done, fingerprint, is_done, mark_done

log = get_logger(__name__)

SPLIT_VERSION = 1


def split_root(setdir: str | Path, nj: int) -> Path:
    return Path(setdir) / f"split{nj}"


def split_dirs(setdir: str | Path, nj: int) -> list[Path]:
    """``<set>/split<nj>/1 .. <set>/split<nj>/<nj>``."""
    root = split_root(setdir, nj)
    return [root / str(j) for j in range(1, nj + 1)]


def plan_blocks(num_utts: int, nj: int) -> list[tuple[int, int]]:
    """Utterance ranges ``[start, end)`` of ``nj`` contiguous near-equal blocks."""
    if nj < 1:
        raise ValueError(f"number of jobs must be at least 1, got {nj}")
    if nj > num_utts:
        raise ValueError(f"cannot split {num_utts} utterance(s) into {nj} jobs (more jobs than utterances)")
    base, extra = divmod(num_utts, nj)
    blocks, start = [], 0
    for j in range(nj):
        end = start + base + (1 if j < extra else 0)
        blocks.append((start, end))
        start = end
    assert start == num_utts
    return blocks


def source_fingerprint(setdir: str | Path, nj: int) -> str:
    """Fingerprint of what a split depends on: the set's references, n-best files and NJ."""
    setdir = Path(setdir)
    return fingerprint([references_path(setdir), setdir / "nbest"], {"nj": nj, "split_version": SPLIT_VERSION})


def split_is_current(setdir: str | Path, nj: int) -> bool:
    """True when ``<set>/split<nj>`` was made from the set as it is now and is complete."""
    root = split_root(setdir, nj)
    if not is_done(root, source_fingerprint(setdir, nj)):
        return False
    return all((d / "nbest" / "text").is_file() for d in split_dirs(setdir, nj))


def subset(nbs: NbestSet, start: int, end: int) -> NbestSet:
    """Utterances ``start:end`` of ``nbs`` with all their hypotheses, streams and references."""
    h0, h1 = int(nbs.offsets[start]), int(nbs.offsets[end])
    part = nbs.take_hyps(np.arange(h0, h1), nbs.offsets[start:end + 1] - h0, nbs.utt_ids[start:end])
    if nbs.refs is not None:
        part.refs = {u: nbs.refs[u] for u in part.utt_ids if u in nbs.refs}
    return part


def split_set(setdir: str | Path, nj: int) -> list[Path]:
    """Split ``setdir`` into ``nj`` subsets (reused when up to date); returns the subset dirs."""
    setdir = Path(setdir)
    root = split_root(setdir, nj)
    dirs = split_dirs(setdir, nj)
    fp = source_fingerprint(setdir, nj)
    if is_done(root, fp) and all((d / "nbest" / "text").is_file() for d in dirs):
        log.info("skip: %s is up to date with %s", root, setdir)
        return dirs
    nbs = load_set(setdir)
    try:
        blocks = plan_blocks(nbs.num_utts, nj)
    except ValueError as e:
        raise InputError(setdir, None, str(e)) from None
    clear_done(root)  # locks root (creating it) first: one writer
    hyps = utts = refs = 0
    for j, (d, (start, end)) in enumerate(zip(dirs, blocks, strict=True), 1):
        part = subset(nbs, start, end)
        part.meta = {**nbs.meta, "split": {"source": str(setdir), "nj": nj, "job": j,
                                           "first_utt": part.utt_ids[0], "last_utt": part.utt_ids[-1]}}
        save_set(part, d)
        hyps += part.num_hyps
        utts += part.num_utts
        refs += len(part.refs or {})
    if hyps != nbs.num_hyps or utts != nbs.num_utts:
        raise RuntimeError(f"split of {setdir} wrote {utts} utterances, {hyps} hypotheses "
                           f"of {nbs.num_utts}, {nbs.num_hyps}")
    ref_only = len(nbs.refs) - refs if nbs.refs is not None else 0
    if ref_only:
        log.info("%d reference(s) without hypotheses stay only in %s/text (nothing to score)", ref_only, setdir)
    mark_done(root, fp)
    sizes = [e - s for s, e in blocks]
    log.info("split %s (%d utterances, %d hypotheses) into %d jobs of %d-%d utterances: %s",
             setdir, nbs.num_utts, nbs.num_hyps, nj, min(sizes), max(sizes), root)
    return dirs


def merge_stream(setdir: str | Path, part_dirs: list[str | Path], name: str, out_path: str | Path,
                 part_sets: list[str | Path] | None = None, require_done: bool = True) -> np.ndarray:
    """Merge ``<part>/<name>`` of every part into ``out_path`` in the order of ``setdir``.

    ``part_sets[j]`` is the subset part ``j`` scored (default ``<set>/split<P>/<j+1>`` for ``P``
    parts, which must be up to date with the set). Each part's archive is read joined to its
    subset (:func:`read_scores`: every key once, no other key); across parts every key of the
    full set must appear exactly once. With ``require_done`` each part directory must hold the
    ``.done`` its job writes last (a part without it is an unfinished job). Errors raise
    :class:`InvalidSetError` naming the part file, line and key. Returns the merged values.
    """
    setdir = Path(setdir)
    part_dirs = [Path(p) for p in part_dirs]
    if not part_dirs:
        raise ValueError("no parts to merge")
    if part_sets is None:
        if not split_is_current(setdir, len(part_dirs)):
            raise InputError(split_root(setdir, len(part_dirs)), None,
                             f"missing, incomplete or older than {setdir}: the parts cannot be "
                             f"matched to it (split again and rerun the jobs)")
        part_sets = split_dirs(setdir, len(part_dirs))
    part_sets = [Path(p) for p in part_sets]
    if len(part_sets) != len(part_dirs):
        raise ValueError(f"{len(part_dirs)} part directories for {len(part_sets)} subsets")
    nbs = load_set(setdir, streams=[])
    problems: list[InputError] = []
    full_index = {k: i for i, k in enumerate(nbs.keys())}
    home: dict[str, int] = {}  # key -> the part whose subset holds it
    values = np.full(nbs.num_hyps, np.nan)
    filled = np.zeros(nbs.num_hyps, dtype=bool)
    for j, (pdir, pset) in enumerate(zip(part_dirs, part_sets, strict=True), 1):
        part = load_set(pset, streams=[])
        idx = np.fromiter((full_index.get(k, -1) for k in part.keys()), dtype=np.int64, count=part.num_hyps)
        if np.any(idx < 0):
            bad = [k for k, i in zip(part.keys(), idx.tolist(), strict=True) if i < 0][:20]
            problems.append(InputError(pset / "nbest" / "text", None, f"key(s) not in {setdir}: {', '.join(bad)}"))
            continue
        if np.any(filled[idx]):
            twice = [k for k, i in zip(part.keys(), idx.tolist(), strict=True) if filled[i]][:20]
            problems.append(InputError(pset / "nbest" / "text", None,
                                       f"key(s) also in an earlier part's subset: {', '.join(twice)}"))
            continue
        home.update((k, j) for k in part.keys())
        path = pdir / name
        if not path.is_file():
            problems.append(InputError(path, None, f"missing part {j} (did its job finish?)"))
            continue
        if require_done and not (pdir / DONE).is_file():
            problems.append(InputError(pdir / DONE, None, f"missing: the job of part {j} did not finish"))
            continue
        try:
            pv = read_scores(path, part)
        except InvalidSetError as e:
            problems.extend(_in_context(p, pset) for p in e.problems)
            continue
        values[idx] = pv
        filled[idx] = True
    problems = [_with_home(p, home, full_index) for p in problems]
    if not problems and not filled.all():
        keys = list(nbs.keys())
        missing = [keys[i] for i in np.flatnonzero(~filled)[:20]]
        problems.append(InputError(setdir / "nbest" / "text", None,
                                   f"{int((~filled).sum())} key(s) in no part: {', '.join(missing)}"))
    if problems:
        raise InvalidSetError(problems, what=f"the {len(part_dirs)} parts of {name} for {setdir}")
    write_scores(out_path, nbs, values)
    log.info("merged %d parts of %s: %d hypotheses of %d utterances -> %s",
             len(part_dirs), name, nbs.num_hyps, nbs.num_utts, out_path)
    return values


def _in_context(p: InputError, pset: Path) -> InputError:
    """read_scores' problem with the subset it was joined to named."""
    return InputError(p.path, p.line, p.message.replace("nbest/text", f"{pset}/nbest/text", 1))


_KEY = re.compile(r"key '?([^'\s]+)'? is not in")


def _with_home(p: InputError, home: dict[str, int], full_index: dict[str, int]) -> InputError:
    """Say where a misplaced key belongs (a key in the wrong part is a duplicate or a stray)."""
    m = _KEY.search(p.message)
    if not m:
        return p
    key = m.group(1)
    if key in home:
        return InputError(p.path, p.line, f"{p.message} (it belongs to part {home[key]})")
    if key not in full_index:
        return InputError(p.path, p.line, f"{p.message} (nor in the full set)")
    return p
