"""Kaldi n-best archives: the ``archives.JOB/`` directories of n-best rescoring (docs/formats.md §1.4).

``steps/rnnlmrescore.sh``, ``scripts/rnnlm/lmrescore_nbest.sh`` and
``steps/pytorchnn/lmrescore_nbest_pytorchnn.sh`` write, per job, Kaldi text archives keyed
``<utt>-<k>``: ``words`` (word ids), ``words_text`` (the same as words), ``lmwt.withlm`` (graph
cost including the old LM), ``lmwt.nolm`` (graph cost without it), ``lmwt.lmonly`` (old LM cost)
and ``acwt`` (acoustic cost, unscaled). All costs are -ln p, lower is better.

Reading (``read(src, refs=None, acwt=0.1, words=None)``):

* ``src``: a decode dir holding ``archives.1 .. archives.nj`` (and optionally ``num_jobs``, which
  is then checked against them), or one ``archives.N`` directory.
* ``acwt`` (float, default 0.1): the acoustic scale of the ``score`` stream,
  ``score = -(graph_cost + acwt * ac_cost)`` (higher is better). Kaldi's ``inv_acwt`` is ``1/acwt``.
* ``words`` (path to ``words.txt``): the symbol table used when a job has ``words`` but no
  ``words_text``; when not given, ``<decode dir>/words.txt`` is used if it exists (the writer
  puts one there).
* ``refs``: references ``{utt: text}`` attached to the set.

Every file is joined **by key**, never by line position; a key missing from a file, extra or
duplicate is an :class:`InputError` naming the file and line (or key). The words file defines
the order: hypotheses come out in job order, utterance order of that file, rank order within
an utterance. Streams: ``score``, ``ac_cost``, ``graph_cost``, ``lm_cost`` (``lmwt.lmonly``, else
``lmwt.withlm - lmwt.nolm``; absent when neither file exists) and every ``stream.<name>`` file
(written by :func:`write`) as stream ``<name>``. Other files (``ali``, ``lmwt.rnn``, ...) are not read.

Writing (``write(nbs, out, nj=1, words=None, acwt=None)``) produces a decode-dir-like ``out``
with ``num_jobs`` and ``archives.1 .. archives.nj`` (utterances split into ``nj`` contiguous,
near-equal blocks), each holding ``words_text``, ``words``, ``ali`` (empty: the set has no
alignments, but Kaldi's ``linear-to-nbest`` iterates over it), ``lmwt.withlm``, ``acwt``,
``lmwt.nolm`` and ``lmwt.lmonly`` (when the set has ``lm_cost``) and ``stream.<name>`` for every
other stream except ``errors``. Options:

* ``nj`` (int, default 1): number of jobs; at most the number of utterances.
* ``words`` (path to ``words.txt``): map words to ids with this table (copied to
  ``out/words.txt``); words missing from it are an error listing them. When ``None``, the table
  the set was imported with (``meta['symbol_table']``: path, SHA-256, size, recorded by the
  Kaldi importers) is used, and must still exist unchanged (:func:`resolve_table`); Kaldi's
  scoring maps ids back with the recogniser's ``words.txt``, so an export never invents ids
  where the recogniser has a table.
* ``new_table`` (bool, default False): for a set without any recogniser table (ESPnet,
  pocketsphinx, ...), generate a Kaldi-style table in ``out/words.txt``: ``<eps> 0``, the words
  in code-point order from 1, then ``#0``, ``<s>``, ``</s>``. Without ``words``, a recorded
  table or ``new_table``, the export stops with an error saying so.
* ``acwt`` (float): the acoustic scale the costs are meant for; default
  ``nbs.meta['acoustic_scale']`` if present, else 0.1.

Costs written: the set's ``graph_cost`` and ``ac_cost`` when it has both. A hypothesis whose
``score`` is not exactly ``-(graph_cost + acwt * ac_cost)`` (e.g. the score was changed after
import) gets ``graph cost = -score - acwt * ac_cost`` instead, so that re-importing at the same
``acwt`` gives back the score; a warning counts those off by more than 1e-6 relative (smaller,
rounding-level adjustments are logged at info level). Imported sets match exactly and are
untouched. A set without both cost streams is written with ``graph cost = -score`` and
``acoustic cost = 0``. A non-finite cost is written as 1e10 (:func:`cap_costs`: Kaldi's
``linear-to-nbest`` cannot read ``Infinity`` or ``BadNumber`` in ``lmwt.*``/``acwt``; the
hypothesis stays and ranks last in Kaldi too), with the true value in ``archives.J/nonfinite``
(``<key> <cost file> <value>``, ignored by Kaldi), which the reader puts back, so the round trip
stays exact; ``stream.<name>`` files (read only by this toolkit) keep non-finite values as they
are. Floats are written with
:func:`rescore.data.archive.format_float` (exact, Kaldi-readable), so read -> write -> read keeps
utterances, texts and scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rescore.data.archive import (
    MAX_DIGITS,
    decode,
    format_float,
    iter_lines,
    join_tokens,
    parse_float,
    read_float_archive,
    split_key,
    write_lines,
)
from rescore.data.nbest import NbestBuilder, NbestSet, split_nbest_key
from rescore.exceptions import InputError
from rescore.log import get_logger

log = get_logger(__name__)

FORMAT = "kaldi-nbest"
DEFAULT_ACWT = 0.1
SCORE_RTOL = 1e-6

_ARCHIVES_RE = re.compile(r"archives\.([1-9][0-9]*)")
STREAM_PREFIX = "stream."
#: Streams the reader computes from the cost files (never imported from stream.<name>).
COST_STREAMS = ("score", "ac_cost", "graph_cost", "lm_cost")
#: Streams the writer does not export as stream.<name>.
NOT_EXPORTED = {*COST_STREAMS, "errors"}
#: Files the writer owns inside archives.J (stale ones are removed on rewrite).
OWNED_FILES = {"words_text", "words", "ali", "lmwt.withlm", "lmwt.nolm", "lmwt.lmonly", "acwt", "nonfinite"}
NONFINITE_FILE = "nonfinite"
#: Cost files read by Kaldi, whose non-finite values are written as COST_CAP (true value in NONFINITE_FILE)
NONFINITE_COSTS = ("lmwt.withlm", "acwt", "lmwt.lmonly", "lmwt.nolm")
_ASCII_WS = " \t\n\r\x0b\x0c"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class _Job:
    """One archives.J directory after reading its words file (the order-defining file)."""

    path: Path
    text_path: Path
    utts: list[str] = field(default_factory=list)
    #: utt -> [(rank, key, line, text)] sorted by rank
    entries: dict[str, list[tuple[int, str, int, str]]] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)  # key -> line in text_path


def read(
    src: str | Path,
    refs: dict[str, str] | None = None,
    acwt: float = DEFAULT_ACWT,
    words: str | Path | None = None,
) -> NbestSet:
    """Import a Kaldi n-best decode dir (or one ``archives.N`` dir) as an :class:`NbestSet`."""
    src = Path(src)
    acwt = check_acwt(acwt)
    decode_dir, job_dirs = _job_dirs(src)
    words_path = Path(words) if words is not None else None
    if words_path is None and (decode_dir / "words.txt").is_file():
        words_path = decode_dir / "words.txt"
    table: dict[int, str] | None = None
    lm_files = _lm_files(job_dirs)
    extra = _extra_streams(job_dirs)
    names = ["score", "ac_cost", "graph_cost", *(["lm_cost"] if lm_files else []), *extra]
    builder = NbestBuilder(names)
    claimed: dict[str, Path] = {}  # utt -> job dir that holds it
    for jd in job_dirs:
        if not (jd / "words_text").is_file() and table is None and (jd / "words").is_file():
            if words_path is None:
                raise InputError(
                    jd / "words", None, "no words_text beside it; give words= (path to words.txt)"
                )
            table = read_symbol_table(words_path)
        job = _read_text_file(jd, table, words_path, claimed)
        cols = _read_cost_files(job, lm_files, extra)
        _add_job(builder, job, cols, acwt)
    _log_unread(job_dirs[0])
    meta = _meta(src, acwt, words, words_path, table is not None, len(job_dirs), lm_files, extra)
    if words_path is not None:  # the recogniser's table: exports map words back to its ids
        if not words_path.is_file():
            raise InputError(words_path, None, "words.txt not found")
        meta["symbol_table"] = table_record(words_path)
    nbs = builder.build(refs=refs, meta=meta)
    log.info(
        "read %d utterances, %d hypotheses from %s (%d job(s))",
        nbs.num_utts,
        nbs.num_hyps,
        src,
        len(job_dirs),
    )
    if nbs.num_hyps == 0:
        log.warning("%s: the archives hold no hypotheses", src)
    return nbs


def _log_unread(jd: Path) -> None:
    """Say which files of a job are not imported (``ali``, new-LM scores, ...), so nothing goes unnoticed."""
    used = OWNED_FILES - {"ali"}  # (nonfinite is read)
    unread = sorted(p.name for p in jd.iterdir() if not (p.name in used or p.name.startswith(STREAM_PREFIX)))
    if unread:
        log.info("%s: not imported: %s", jd, ", ".join(unread[:20]))


def check_acwt(acwt: float | str) -> float:
    value = float(acwt)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"acwt must be a finite number >= 0, got {acwt!r}")
    return value


def _job_dirs(src: Path) -> tuple[Path, list[Path]]:
    """``(decode_dir, [archives.1, ..., archives.nj])``; checks ``num_jobs`` when present."""
    if not src.is_dir():
        raise InputError(
            src, None, "not a directory (expected a decode dir with archives.N/ or an archives.N/)"
        )
    if _ARCHIVES_RE.fullmatch(src.name):
        return src.parent, [src]
    found = {
        int(m.group(1)): p for p in src.iterdir() if p.is_dir() and (m := _ARCHIVES_RE.fullmatch(p.name))
    }
    nj_path = src / "num_jobs"
    if nj_path.is_file():
        nj = read_num_jobs(nj_path)
        extra = sorted(j for j in found if j > nj)
        if extra:
            raise InputError(
                nj_path,
                1,
                f"num_jobs is {nj} but {src / f'archives.{extra[0]}'} also exists "
                "(left over from another run?)",
            )
    elif not found:
        raise InputError(src, None, "no archives.N/ directories (is this an n-best rescoring decode dir?)")
    else:
        nj = max(found)
    missing = first_missing_job(found, nj)
    if missing is not None:
        where = nj_path if nj_path.is_file() else src
        raise InputError(where, None, f"archives.{missing} is missing (expected archives.1..{nj})")
    return src, [found[j] for j in range(1, nj + 1)]


def first_missing_job(found: dict[int, Path], nj: int) -> int | None:
    """The smallest job number in 1..nj not in ``found`` (without a range up to a huge nj)."""
    return next((j for j in range(1, min(nj, len(found) + 1) + 1) if j not in found), None)


def read_num_jobs(path: Path) -> int:
    lines = list(iter_lines(path))
    digits = lines[0][1].strip() if len(lines) == 1 else b""
    if not digits.isdigit() or len(digits) > MAX_DIGITS or int(digits) < 1:
        raise InputError(path, lines[0][0] if lines else None, "expected one positive integer")
    return int(digits)


def read_symbol_table(path: str | Path) -> dict[int, str]:
    """Read a Kaldi ``words.txt`` (``symbol id`` per line) into ``{id: symbol}``.

    Like ``utils/int2sym.pl``, a line without exactly two fields is fatal; a non-integer id or a
    duplicate id or symbol is an error too (the mapping would be ambiguous).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "words.txt not found")
    table: dict[int, str] = {}
    seen: dict[str, int] = {}
    for lineno, line in iter_lines(path):
        fields = line.split()
        if len(fields) != 2:
            raise InputError(path, lineno, f"expected 'symbol id', got {len(fields)} fields")
        sym, num = decode(fields[0], path, lineno), fields[1]
        if not num.isdigit():
            raise InputError(
                path, lineno, f"id {num.decode('utf-8', 'replace')!r} is not a non-negative integer"
            )
        if len(num) > MAX_DIGITS:
            raise InputError(path, lineno, f"id {num.decode()[:30]}... ({len(num)} digits) is out of range")
        i = int(num)
        if i in table:
            raise InputError(path, lineno, f"duplicate id {i} (also {table[i]!r})")
        if sym in seen:
            raise InputError(path, lineno, f"duplicate symbol {sym!r} (also id {seen[sym]})")
        table[i] = sym
        seen[sym] = i
    return table


def _lm_files(job_dirs: list[Path]) -> dict[Path, str] | None:
    """Per job, the file with the old LM cost (``lmwt.lmonly``, else ``lmwt.nolm``); None if none has it."""
    per_job: dict[Path, str] = {}
    for jd in job_dirs:
        for name in ("lmwt.lmonly", "lmwt.nolm"):
            if (jd / name).is_file():
                per_job[jd] = name
                break
    if not per_job:
        return None
    for jd in job_dirs:
        if jd not in per_job:
            other = next(iter(per_job)).name
            raise InputError(
                jd / "lmwt.nolm", None, f"missing (and no lmwt.lmonly), but {other} has the old LM cost"
            )
    return per_job


def _extra_streams(job_dirs: list[Path]) -> list[str]:
    """Names of the ``stream.<name>`` files; every job must have the same ones."""
    per_job = [
        {
            p.name[len(STREAM_PREFIX) :]
            for p in jd.iterdir()
            if p.is_file() and p.name.startswith(STREAM_PREFIX)
        }
        for jd in job_dirs
    ]
    names = sorted(set().union(*per_job)) if per_job else []
    for name in names:
        if not name or name in COST_STREAMS or any(c in name for c in _ASCII_WS):
            where = (
                next(jd for jd, s in zip(job_dirs, per_job, strict=True) if name in s)
                / f"{STREAM_PREFIX}{name}"
            )
            raise InputError(where, None, f"invalid or reserved stream name {name!r}")
        for jd, s in zip(job_dirs, per_job, strict=True):
            if name not in s:
                raise InputError(
                    jd / f"{STREAM_PREFIX}{name}", None, "missing, but other jobs have this stream"
                )
    return names


def _read_text_file(
    jd: Path, table: dict[int, str] | None, words_path: Path | None, claimed: dict[str, Path]
) -> _Job:
    """Read ``words_text`` (or ``words`` through ``table``), checking keys, duplicates and contiguity."""
    wt = jd / "words_text"
    if wt.is_file():
        path, rows = wt, _iter_words_text(wt)
    elif (jd / "words").is_file():
        assert table is not None and words_path is not None
        path, rows = jd / "words", _iter_word_ids(jd / "words", table, words_path)
    else:
        raise InputError(jd, None, "neither words_text nor words found")
    job = _Job(jd, path)
    last: str | None = None
    for lineno, key, text in rows:
        if key in job.keys:
            raise InputError(path, lineno, f"duplicate key {key} (also at line {job.keys[key]})")
        try:
            utt, rank = split_nbest_key(key)
        except ValueError as e:
            raise InputError(path, lineno, str(e)) from None
        if utt != last:
            if utt in job.entries:
                first = job.entries[utt][0][2]
                raise InputError(
                    path,
                    lineno,
                    f"entries of utterance {utt} are not contiguous (first seen at line {first})",
                )
            if utt in claimed:
                raise InputError(
                    path,
                    lineno,
                    f"utterance {utt} is also in {claimed[utt]}; an utterance must not be split across jobs",
                )
            claimed[utt] = jd
            job.utts.append(utt)
            job.entries[utt] = []
            last = utt
        job.keys[key] = lineno
        job.entries[utt].append((rank, key, lineno, text))
    for entries in job.entries.values():
        entries.sort(key=lambda e: e[0])
    return job


def _iter_words_text(path: Path) -> Iterable[tuple[int, str, str]]:
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        yield lineno, decode(key, path, lineno), decode(join_tokens(rest), path, lineno)


def _iter_word_ids(path: Path, table: dict[int, str], words_path: Path) -> Iterable[tuple[int, str, str]]:
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        syms = []
        for tok in rest.split():
            if not tok.isdigit():
                raise InputError(
                    path, lineno, f"word id {tok.decode('utf-8', 'replace')!r} is not an integer"
                )
            sym = table.get(int(tok)) if len(tok) <= MAX_DIGITS else None  # (longer ids are in no table)
            if sym is None:
                raise InputError(path, lineno, f"word id {tok.decode()[:30]} is not in {words_path}")
            syms.append(sym)
        yield lineno, decode(key, path, lineno), " ".join(syms)


def _read_keyed(path: Path, job: _Job) -> dict[str, float]:
    """Read a ``key float`` archive and join it to the job's keys: each key exactly once."""
    if not path.is_file():
        raise InputError(path, None, "missing")
    values: dict[str, float] = {}
    lines: dict[str, int] = {}
    for lineno, key, value in read_float_archive(path):
        if key not in job.keys:
            raise InputError(path, lineno, f"key {key} is not in {job.text_path}")
        if key in lines:
            raise InputError(path, lineno, f"duplicate key {key} (also at line {lines[key]})")
        values[key] = value
        lines[key] = lineno
    if len(values) != len(job.keys):
        missing = [k for k in job.keys if k not in values]
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise InputError(path, None, f"{len(missing)} key(s) of {job.text_path.name} missing: {shown}")
    return values


def _read_cost_files(
    job: _Job, lm_files: dict[Path, str] | None, extra: list[str]
) -> dict[str, dict[str, float]]:
    """``{column: {key: value}}`` for withlm, acwt, the LM file and the extra streams of one job."""
    jd = job.path
    restore = _read_nonfinite(jd / NONFINITE_FILE, job)

    def costs(name: str) -> dict[str, float]:
        values = _read_keyed(jd / name, job)
        for key, value in restore.get(name, {}).items():
            values[key] = value
        return values

    cols = {"graph_cost": costs("lmwt.withlm"), "ac_cost": costs("acwt")}
    if lm_files is not None:
        name = lm_files[jd]
        values = costs(name)
        if name == "lmwt.nolm":
            graph = cols["graph_cost"]
            values = {k: graph[k] - v for k, v in values.items()}
        cols["lm_cost"] = values
    for name in extra:
        cols[name] = _read_keyed(jd / f"{STREAM_PREFIX}{name}", job)
    return cols


def _read_nonfinite(path: Path, job: _Job) -> dict[str, dict[str, float]]:
    """``{cost file: {key: value}}``: the non-finite costs the writer replaced by :data:`COST_CAP`.

    Kaldi reads no non-finite cost, so :func:`write` puts ``COST_CAP`` in the cost files and the
    true value in ``archives.J/nonfinite`` (``<key> <cost file> <value>``; Kaldi's scripts do not
    read it), and reading puts the true value back: the round trip stays exact.
    """
    out: dict[str, dict[str, float]] = {}
    if not path.is_file():
        return out
    for lineno, line in iter_lines(path):
        fields = line.split()
        if len(fields) != 3:
            raise InputError(path, lineno, "expected '<key> <cost file> <value>'")
        key, name = decode(fields[0], path, lineno), decode(fields[1], path, lineno)
        if key not in job.keys:
            raise InputError(path, lineno, f"key {key} is not in {job.text_path}")
        if name not in NONFINITE_COSTS:
            raise InputError(path, lineno, f"{name!r} is not a cost file ({', '.join(NONFINITE_COSTS)})")
        try:
            value = parse_float(fields[2])
        except ValueError:
            raise InputError(path, lineno, f"non-numeric value {fields[2].decode('utf-8', 'replace')!r}") from None
        if math.isfinite(value):
            raise InputError(path, lineno, f"value {value!r} is finite (the file lists non-finite costs only)")
        out.setdefault(name, {})[key] = value
    return out


def _add_job(builder: NbestBuilder, job: _Job, cols: dict[str, dict[str, float]], acwt: float) -> None:
    for utt in job.utts:
        for rank, key, lineno, text in job.entries[utt]:
            vals = {name: col[key] for name, col in cols.items()}
            vals["score"] = -(vals["graph_cost"] + acwt * vals["ac_cost"])
            builder.add(utt, rank, text, vals, where=(job.text_path, lineno))


def _meta(
    src: Path,
    acwt: float,
    words_option: str | Path | None,
    words_path: Path | None,
    used_table: bool,
    nj: int,
    lm_files: dict[Path, str] | None,
    extra: list[str],
) -> dict:
    lm_from = None if lm_files is None else set(lm_files.values())
    streams = {
        "score": {
            "better": "higher",
            "description": f"first-pass log score -(graph_cost + {acwt!r} * ac_cost)",
        },
        "ac_cost": {
            "better": "lower",
            "description": "Kaldi acoustic cost, unscaled -ln p (archives.J/acwt)",
        },
        "graph_cost": {
            "better": "lower",
            "description": "Kaldi graph cost incl. the old LM (archives.J/lmwt.withlm)",
        },
    }
    if lm_from is not None:
        src_desc = " or ".join(sorted("lmwt.withlm - lmwt.nolm" if f == "lmwt.nolm" else f for f in lm_from))
        streams["lm_cost"] = {"better": "lower", "description": f"old LM cost alone ({src_desc})"}
    for name in extra:
        streams[name] = {"description": f"imported from archives.J/{STREAM_PREFIX}{name}"}
    return {
        "source": {
            "format": FORMAT,
            "path": str(src),
            "options": {"acwt": acwt, "words": str(words_option) if words_option is not None else None},
            "num_jobs": nj,
            "text_from": "words" if used_table else "words_text",
            "words_txt": str(words_path) if used_table else None,
        },
        "acoustic_scale": acwt,
        "streams": streams,
    }


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write(
    nbs: NbestSet,
    out: str | Path,
    nj: int = 1,
    words: str | Path | None = None,
    acwt: float | None = None,
    new_table: bool = False,
) -> list[Path]:
    """Write ``nbs`` as a decode-dir-like directory of Kaldi n-best archives; returns the files written."""
    out, acwt, blocks = writer_setup(nbs, out, nj, acwt)
    words = resolve_table(nbs, words, new_table)
    nj = len(blocks)
    graph, ac = _costs(nbs, acwt)
    lm = nbs.streams.get("lm_cost")
    with np.errstate(all="ignore"):
        nolm = None if lm is None else graph - lm
    raw = {"lmwt.withlm": graph, "acwt": ac, "lmwt.lmonly": lm, "lmwt.nolm": nolm}
    graph, ac, lm, nolm = cap_costs(raw, nbs.num_hyps).values()
    nonfinite = {name: ~np.isfinite(v) for name, v in raw.items() if v is not None and not np.isfinite(v).all()}
    extra = [n for n in nbs.streams if n not in NOT_EXPORTED]
    for name in extra:
        if not name or name.startswith(".") or "/" in name or any(c in name for c in _ASCII_WS):
            raise ValueError(f"stream name {name!r} cannot be written as a file name")
    _check_stale(out, nj)

    texts = list(nbs.texts)
    sym2id, table_lines = symbol_table(texts, words)
    id_texts = to_ids(nbs, texts, sym2id, words)

    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    written.append(_write(out / "num_jobs", [str(nj)]))
    if table_lines is not None:
        written.append(_write(out / "words.txt", table_lines))
    order = np.lexsort((nbs.ranks, nbs.utt_index()))  # utterance order kept, rank order within
    keys = [
        f"{nbs.utt_ids[u]}-{r}" for u, r in zip(nbs.utt_index().tolist(), nbs.ranks.tolist(), strict=True)
    ]
    files = {"words_text", "words", "ali", "lmwt.withlm", "acwt"}
    if lm is not None:
        files |= {"lmwt.nolm", "lmwt.lmonly"}
    files |= {f"{STREAM_PREFIX}{n}" for n in extra}
    for j, (u0, u1) in enumerate(blocks, 1):
        jd = out / f"archives.{j}"
        idx = order[int(nbs.offsets[u0]) : int(nbs.offsets[u1])].tolist()
        k = [keys[i] for i in idx]
        written += [
            _write(
                jd / "words_text",
                (f"{k[n]} {texts[i]} " if texts[i] else f"{k[n]} " for n, i in enumerate(idx)),
            ),
            _write(
                jd / "words",
                (f"{k[n]} {id_texts[i]} " if id_texts[i] else f"{k[n]} " for n, i in enumerate(idx)),
            ),
            _write(jd / "ali", (f"{key} " for key in k)),
            _write(jd / "lmwt.withlm", _float_lines(k, graph[idx], trailing=True)),
            _write(jd / "acwt", _float_lines(k, ac[idx], trailing=True)),
        ]
        if lm is not None:
            written.append(_write(jd / "lmwt.nolm", _float_lines(k, nolm[idx], trailing=True)))
            written.append(_write(jd / "lmwt.lmonly", _float_lines(k, lm[idx], trailing=False)))
        for name in extra:
            written.append(
                _write(jd / f"{STREAM_PREFIX}{name}", _float_lines(k, nbs.streams[name][idx], trailing=False))
            )
        kept = [f"{k[n]} {name} {format_float(raw[name][i])}" for n, i in enumerate(idx)
                for name, bad in nonfinite.items() if bad[i]]
        if kept:  # the true values of the costs written as COST_CAP (see _read_nonfinite)
            written.append(_write(jd / NONFINITE_FILE, kept))
        _remove_owned(jd, keep=files | ({NONFINITE_FILE} if kept else set()))
    _remove_stale(out, nj)
    log.info("wrote %d utterances, %d hypotheses to %s (%d job(s))", nbs.num_utts, nbs.num_hyps, out, nj)
    return written


def _write(path: Path, lines: Iterable[str]) -> Path:
    write_lines(path, lines)
    return path


def _float_lines(keys: list[str], values: np.ndarray, trailing: bool) -> Iterable[str]:
    """``key value`` lines; ``trailing`` adds the space Kaldi's own writers put after a value."""
    end = " " if trailing else ""
    return (f"{k} {format_float(v)}{end}" for k, v in zip(keys, values.tolist(), strict=True))


COST_CAP = 1e10
"""What the Kaldi writers put where a cost is not finite (see :func:`cap_costs`)."""


def cap_costs(costs: dict[str, np.ndarray | None], num_hyps: int) -> dict[str, np.ndarray | None]:
    """Costs as Kaldi can read them: every non-finite value (inf, -inf, NaN) becomes +COST_CAP.

    Kaldi reads no ``Infinity`` or ``BadNumber`` in a scalar cost archive (``linear-to-nbest``
    stops with "No LM cost for key ..."), and a path of infinite cost in a lattice is no path at
    all, so an utterance whose hypotheses all have one would lose its 1-best. A hypothesis with a
    non-finite score is ranked last here; a finite cost of 1e10, far above any real cost, keeps it
    in the output and last in Kaldi's best path too, and no hypothesis is dropped. The number of
    hypotheses changed is logged as a warning.
    """
    out: dict[str, np.ndarray | None] = {}
    bad = np.zeros(num_hyps, dtype=bool)
    for name, values in costs.items():
        if values is None:
            out[name] = None
            continue
        values = np.asarray(values, dtype=np.float64)
        fin = np.isfinite(values)
        if fin.all():
            out[name] = values
            continue
        bad |= ~fin
        out[name] = np.where(fin, values, COST_CAP)
    if bad.any():
        log.warning("%d of %d hypotheses have a non-finite cost or score: written as cost %g (Kaldi reads no "
                    "Infinity/BadNumber there), so they stay in the output and rank last", int(bad.sum()),
                    num_hyps, COST_CAP)
    return out


def writer_setup(nbs: NbestSet, out: str | Path, nj: int, acwt: float | None) -> tuple[Path, float, list[tuple[int, int]]]:
    """What the Kaldi writers (n-best archives, lattices) check first: the set, NJ and the acoustic scale.

    Returns ``(out, acwt, blocks)``: ``acwt`` defaults to the one the set was imported with, and
    ``blocks`` are the ``nj`` contiguous utterance ranges ``[u0, u1)`` of the jobs (empty ones for
    an empty set).
    """
    from rescore.data.split import plan_blocks

    nbs.check()
    nj = int(nj)
    if nj < 1:
        raise ValueError(f"nj must be >= 1, got {nj}")
    if nbs.num_utts and nj > nbs.num_utts:
        raise ValueError(f"nj={nj} exceeds the number of utterances ({nbs.num_utts})")
    if acwt is None:
        acwt = nbs.meta.get("acoustic_scale", DEFAULT_ACWT)
    blocks = plan_blocks(nbs.num_utts, nj) if nbs.num_utts else [(0, 0)] * nj
    return Path(out), check_acwt(acwt), blocks


def _costs(nbs: NbestSet, acwt: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph and acoustic costs to write, such that ``-(graph + acwt * ac)`` gives back the score."""
    score = nbs.streams.get("score")
    graph, ac = nbs.streams.get("graph_cost"), nbs.streams.get("ac_cost")
    if graph is None or ac is None:
        if score is None:
            raise ValueError("the set has neither a score stream nor graph_cost and ac_cost streams")
        if graph is not None or ac is not None:
            log.warning(
                "the set has only one of graph_cost/ac_cost; writing graph cost = -score, acoustic cost 0"
            )
        return -score, np.zeros_like(score)
    graph, ac = graph.astype(np.float64), ac.astype(np.float64)
    if score is None:
        return graph, ac
    with np.errstate(all="ignore"):
        expect = -(graph + acwt * ac)  # the reader's arithmetic, so an imported set matches bit for bit
        differs = ~((score == expect) | (np.isnan(score) & np.isnan(expect)))
        if not differs.any():
            return graph, ac
        # every differing hypothesis is adjusted (the score wins); only real changes are warned about
        far = differs & ~np.isclose(score, expect, rtol=SCORE_RTOL, atol=0.0, equal_nan=True)
        graph = graph.copy()
        graph[differs] = -score[differs] - acwt * ac[differs]
    n_far, n_near = int(far.sum()), int(differs.sum() - far.sum())
    if n_far:
        log.warning(
            "score differs from -(graph_cost + %r * ac_cost) for %d of %d hypotheses; their graph costs "
            "were adjusted to -score - acwt * ac_cost so that re-import at acwt=%r gives back the score",
            acwt,
            n_far,
            nbs.num_hyps,
            acwt,
        )
    if n_near:
        log.info(
            "graph costs of %d hypotheses adjusted by rounding-level amounts to keep their score", n_near
        )
    return graph, ac


def table_record(path: str | Path) -> dict:
    """What a set records of the symbol table it was imported with (``meta['symbol_table']``):
    its absolute path, the SHA-256 of its bytes and its number of symbols."""
    import hashlib

    path = Path(path).resolve()
    data = path.read_bytes()
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(),
            "symbols": sum(1 for line in data.splitlines() if line.strip())}


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_table(nbs: NbestSet, words: str | Path | None, new_table: bool = False) -> Path | None:
    """The ``words.txt`` an export maps words to ids with, or None for a new table (``new_table``).

    Kaldi scoring maps the exported ids back with the recogniser's ``$lang/words.txt``
    (``utils/int2sym.pl``), so ids must never be invented where the recogniser has a table:

    * ``words`` given: that table (a warning when the set was imported with another one);
    * else the table the set was imported with (``meta['symbol_table']``), which must still exist
      with the same content (SHA-256);
    * else, with ``new_table``, a new Kaldi-style table written to ``OUT/words.txt`` (for sets
      whose recogniser has no table, e.g. ESPnet or pocketsphinx output);
    * else an error asking for one of the two.
    """
    rec = nbs.meta.get("symbol_table")
    if words is not None:
        words = Path(words)
        if not words.is_file():
            raise InputError(words, None, "words.txt not found")
        if new_table:
            raise InputError(words, None, "give either a words.txt or a new symbol table, not both")
        if isinstance(rec, dict) and rec.get("sha256") and _digest(words) != rec["sha256"]:
            log.warning("%s differs from the symbol table the set was imported with (%s, sha256 %s): word ids "
                        "follow %s", words, rec.get("path"), str(rec["sha256"])[:12], words)
        return words
    if isinstance(rec, dict) and rec.get("path"):
        path = Path(rec["path"])
        if not path.is_file():
            raise InputError(path, None, "the set was imported with this symbol table, which no longer exists; "
                             "give words= (--words: the recogniser's words.txt)")
        if rec.get("sha256") and _digest(path) != rec["sha256"]:
            raise InputError(path, None, f"changed since the set was imported (sha256 {str(rec['sha256'])[:12]}..., now "
                             f"{_digest(path)[:12]}...): word ids would differ from the recogniser's; give "
                             "words= (--words) to use it as it is now")
        return path
    if new_table:
        return None
    raise InputError(None, None, "the set records no symbol table (it was not imported from Kaldi with a words.txt), and Kaldi "
                     "scoring maps word ids back with the recogniser's words.txt: give words= (--words "
                     "lang/words.txt; every word must be in it), or new_table=True (--new_symbol_table true) to "
                     "write a new table to OUT/words.txt and score with that one")


def symbol_table(texts: list[str], words: Path | None) -> tuple[dict[str, int], list[str] | None]:
    """``(symbol -> id, lines of out/words.txt)`` from the given table or a new Kaldi-style one (``None``)."""
    if words is not None:
        path = Path(words)
        table = read_symbol_table(path)
        lines = [line.decode("utf-8") for _, line in iter_lines(path)]
        return {sym: i for i, sym in table.items()}, lines
    special = ["#0", "<s>", "</s>"]
    vocab = sorted({w for t in texts if t for w in t.split(" ")} - {"<eps>", *special})
    symbols = ["<eps>", *vocab, *special]
    return {s: i for i, s in enumerate(symbols)}, [f"{s} {i}" for i, s in enumerate(symbols)]


def to_ids(nbs: NbestSet, texts: list[str], sym2id: dict[str, int], words: str | Path | None) -> list[str]:
    """Each hypothesis as space-joined word ids; words missing from the table are an error listing them."""
    out = []
    missing: dict[str, int] = {}  # word -> first hypothesis index
    for i, t in enumerate(texts):
        ids = []
        for w in t.split(" ") if t else []:
            n = sym2id.get(w)
            if n is None:
                missing.setdefault(w, i)
                continue
            ids.append(str(n))
        out.append(" ".join(ids))
    if missing:
        shown = ", ".join(f"word {w!r} (hypothesis {nbs.key(i)})" for w, i in list(missing.items())[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InputError(words, None, f"{len(missing)} word(s) of the set are not in the symbol table: {shown}{more}")
    return out


def _archive_dirs(out: Path) -> dict[int, Path]:
    if not out.is_dir():
        return {}
    return {int(m.group(1)): p for p in out.iterdir() if p.is_dir() and (m := _ARCHIVES_RE.fullmatch(p.name))}


def _is_owned(p: Path) -> bool:
    return p.is_file() and (p.name in OWNED_FILES or p.name.startswith(STREAM_PREFIX))


def _check_stale(out: Path, nj: int) -> None:
    """Refuse (before writing anything) when an archives.J with J > nj holds files we did not write."""
    for j, d in sorted(_archive_dirs(out).items()):
        if j > nj:
            foreign = [p.name for p in d.iterdir() if not _is_owned(p)]
            if foreign:
                raise ValueError(
                    f"{d} (left over, nj={nj}) holds other files ({', '.join(sorted(foreign)[:5])}); "
                    "remove it or choose another output directory"
                )


def _remove_owned(d: Path, keep: set[str]) -> None:
    """Remove our files in ``d`` that this write did not produce, so the directory never mixes two sets."""
    for p in d.iterdir():
        if _is_owned(p) and p.name not in keep:
            p.unlink()


def _remove_stale(out: Path, nj: int) -> None:
    for j, d in _archive_dirs(out).items():
        if j > nj:
            _remove_owned(d, keep=set())
            d.rmdir()
            log.info("removed stale %s", d)
