"""Import HypR n-best lists (HF datasets ``ASR-HypR/{LibriSpeech,TEDLIUM2,AISHELL1}_{withLM,withoutLM}``).

HypR (docs/formats.md §5.3) has one record per utterance: ``utt_id`` (str), ``ref`` (str), ``hyps``
(list of up to 50 hypothesis strings) and per-hypothesis float lists ``att_score``,
``ctc_score``, ``lm_score`` (``*_withLM`` only) and ``score``, all natural-log probabilities,
higher is better. ``score`` is HypR's combined total; it is kept exactly as given (the README's
λ values do not reproduce its own example rows, so no λ is hard-coded here).

Import only (there is no ``write``)::

    read(src, refs=None, pattern=None) -> NbestSet

``src``
    a JSON-lines file (``.jsonl`` / ``.json``, one object per line, read as a stream; ``.gz``
    allowed), a ``.json`` file holding one JSON list of records, a ``.parquet`` file (read batch
    by batch with pyarrow), or a directory holding such files. A directory's files are read in
    sorted name order as one set (e.g. the shards of HF's ``data/dev_clean-0000X-of-0000N.parquet``).
``refs``
    ``{utt: reference}``; when given it replaces the records' ``ref`` field.
``pattern``
    directories only: a glob relative to ``src`` selecting the files (default: every
    ``*.parquet``, ``*.jsonl``, ``*.json``, ``*.jsonl.gz``, ``*.json.gz`` directly in ``src``),
    e.g. ``pattern="dev_clean-*.parquet"``.

Mapping: hypothesis ``k`` is the ``k``-th entry of ``hyps`` (1-based). Streams ``score``
(required) and ``att_score``, ``ctc_score``, ``lm_score`` (each when the records have it; all
records must have the same fields). A record whose ``hyps`` is empty has no hypotheses: its
reference is kept (so it is scored as deletions later), and it is counted, logged and recorded
in ``meta['source']['utts_without_hyps']``. References keep their text (AISHELL refs with or
without spaces between characters stay as they are); only runs of ASCII whitespace are joined
to one space, as everywhere in the package. A null value inside a score list is read as NaN
(kept, ranked last) and counted in the log.

Errors (collected, then raised together as :class:`InvalidSetError`, each naming the file and
line, or ``file:row N`` for parquet and ``file:record N`` for a JSON list): a missing
``utt_id``/``hyps``/``score`` field, fields differing from the first record, a score list
whose length differs from ``len(hyps)`` (naming the utterance and the field), a duplicate
``utt_id`` (naming where it was first seen), non-string hypotheses or ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from rescore.data.archive import GZIP_ERRORS, decode, gzip_error, join_tokens, loads_json, open_binary
from rescore.data.nbest import NbestBuilder, NbestSet, describe
from rescore.exceptions import InputError, InvalidSetError
from rescore.log import get_logger

log = get_logger(__name__)

FORMAT = "hypr"

#: Score lists in stream order; ``score`` is required.
SCORE_FIELDS = ("score", "att_score", "ctc_score", "lm_score")
REQUIRED_FIELDS = ("utt_id", "hyps", "score")
#: Fields whose presence must agree between all records (``ref`` only when refs come from the records).
OPTIONAL_FIELDS = ("ref", "att_score", "ctc_score", "lm_score")
KNOWN_FIELDS = ("utt_id", "ref", "hyps", *SCORE_FIELDS[1:], "score")
SUFFIXES = (".parquet", ".jsonl", ".json", ".jsonl.gz", ".json.gz")

STREAM_DESCRIPTIONS = {
    "score": "HypR combined score as given, (1-λ_ctc)·att + λ_ctc·ctc [+ λ_lm·lm], ln-prob, "
             "higher is better",
    "att_score": "attention decoder ln-prob sum, higher is better",
    "ctc_score": "CTC ln-prob sum, higher is better",
    "lm_score": "LM ln-prob, higher is better",
}

MAX_PROBLEMS = 100  # stop reading after this many errors
MAX_LISTED = 20
PARQUET_BATCH = 1024

Where = tuple[str, int | None]


def read(src: str | Path, refs: dict[str, str] | None = None, pattern: str | None = None) -> NbestSet:
    """Read HypR records from a file or a directory of files into an :class:`NbestSet`."""
    src = Path(src)
    files = input_files(src, pattern)
    reader = _HyprReader(refs_from_records=refs is None)
    for path in files:
        for where, rec in iter_records(path):
            reader.add(where, rec)
    if reader.records == 0:
        raise InputError(src, None, "no HypR records found")
    nbs = reader.build(refs, meta_source={
        "format": FORMAT,
        "path": str(src),
        "options": {"pattern": pattern},
        "files": [str(p) for p in files],
    })
    log.info("read %s from %s (%d file(s))", describe(nbs), src, len(files))
    return nbs


# --------------------------------------------------------------------------------------------
# Files and records
# --------------------------------------------------------------------------------------------


def _has_supported_suffix(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def input_files(src: Path, pattern: str | None = None) -> list[Path]:
    """The files to read: ``src`` itself, or the matching files of directory ``src`` sorted by name."""
    if not src.exists():
        raise InputError(src, None, "no such file or directory")
    if not src.is_dir():
        if pattern is not None:
            raise InputError(src, None, "option pattern applies to a directory; src is a file")
        if not _has_supported_suffix(src):
            raise InputError(src, None, f"unsupported file type; expected one of {', '.join(SUFFIXES)}")
        return [src]
    if pattern is None:
        files = [p for p in src.iterdir() if p.is_file() and _has_supported_suffix(p)]
    else:
        files = [p for p in src.glob(pattern) if p.is_file()]
        odd = [p.name for p in files if not _has_supported_suffix(p)]
        if odd:
            raise InputError(src, None, f"pattern {pattern!r} matches unsupported file(s): "
                                        f"{', '.join(odd[:10])}")
    if not files:
        hint = " (for an HF dataset checkout, pass its data/ directory or pattern='data/<split>-*.parquet')"
        what = f"matching {pattern!r}" if pattern else f"of type {', '.join(SUFFIXES)}"
        raise InputError(src, None, f"no files {what}{hint}")
    return sorted(files, key=lambda p: p.relative_to(src).as_posix())


def iter_records(path: Path) -> Iterator[tuple[Where, object]]:
    """Yield ``(where, record)`` from one JSON-lines, JSON-list or parquet file."""
    if path.name.endswith(".parquet"):
        yield from _iter_parquet(path)
        return
    try:
        if _first_byte(path) == b"[":
            yield from _iter_json_list(path)
        else:
            for lineno, obj in iter_json_lines(path):
                yield (str(path), lineno), obj
    except GZIP_ERRORS as e:  # a damaged *.gz
        raise gzip_error(path, e) from None


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, object]]:
    """Yield ``(line, object)`` from a JSON-lines file, streaming; blank lines are skipped.

    Invalid UTF-8 or JSON raises :class:`InputError` naming the line. A CR before the newline
    is tolerated (it is JSON whitespace).
    """
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            text = decode(raw, path, lineno)
            try:
                obj = loads_json(text, path, lineno)
            except json.JSONDecodeError as e:
                raise InputError(path, lineno, f"invalid JSON ({e.msg} at column {e.colno})") from None
            yield lineno, obj


def _first_byte(path: Path) -> bytes:
    """The first non-whitespace byte of a file (``b''`` when it has none)."""
    with open_binary(path) as f:
        while chunk := f.read(4096):
            s = chunk.lstrip()
            if s:
                return s[:1]
    return b""


def _iter_json_list(path: Path) -> Iterator[tuple[Where, object]]:
    with open_binary(path) as f:
        data = f.read()
    try:
        records = loads_json(decode(data, path, None), path)
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"invalid JSON ({e.msg} at column {e.colno})") from None
    for i, rec in enumerate(records, 1):
        yield (f"{path}:record {i}", None), rec


def _iter_parquet(path: Path) -> Iterator[tuple[Where, object]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            f"reading {path} (HypR parquet) needs pyarrow: pip install pyarrow "
            "(or convert the split to JSON lines)"
        ) from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a corrupt file
        raise InputError(path, None, f"unreadable parquet file ({e})") from None
    names = pf.schema_arrow.names
    columns = [c for c in KNOWN_FIELDS if c in names]
    extra = [c for c in names if c not in KNOWN_FIELDS]
    if extra:
        log.info("%s: ignoring column(s) %s", path, ", ".join(extra))
    row = 0
    batches = pf.iter_batches(batch_size=PARQUET_BATCH, columns=columns)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            records = batch.to_pylist()
        except (OSError, pa.ArrowException) as e:  # a damaged page or footer: ArrowInvalid, OSError (thrift)
            raise InputError(path, None, f"unreadable parquet file after row {row} ({e})") from None
        except UnicodeDecodeError as e:  # a string column holding invalid UTF-8 (Arrow does not check it)
            raise InputError(path, None, f"invalid UTF-8 in a string column after row {row} ({e.reason} at byte "
                                         f"{e.start} of a value)") from None
        for rec in records:
            row += 1
            yield (f"{path}:row {row}", None), rec


# --------------------------------------------------------------------------------------------
# Records -> NbestSet
# --------------------------------------------------------------------------------------------


def _at(where: Where) -> str:
    return where[0] if where[1] is None else f"{where[0]}:{where[1]}"


def _file_of(where: Where) -> str:
    return where[0].rsplit(":row ", 1)[0].rsplit(":record ", 1)[0]


class _HyprReader:
    """Checks records one at a time and feeds their hypotheses to an :class:`NbestBuilder`."""

    def __init__(self, refs_from_records: bool):
        self.refs_from_records = refs_from_records
        self.problems: list[InputError] = []
        self.fields: frozenset[str] | None = None
        self.fields_where: Where | None = None
        self.streams: list[str] = []
        self.builder: NbestBuilder | None = None
        self.seen: dict[str, Where] = {}
        self.refs: dict[str, str] = {}
        self.no_hyps: list[str] = []
        self.null_scores = 0
        self.records = 0
        self.hyps_in = 0
        self.field_mismatch: dict[str, int] = {}  # file -> records with other fields (first reported)

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(InputError(where[0], where[1], message))
        if len(self.problems) >= MAX_PROBLEMS:
            raise InvalidSetError(self.problems + (self.builder.problems if self.builder else []))

    def _check_fields(self, where: Where, rec: dict, utt: str) -> bool:
        fields = frozenset(f for f in OPTIONAL_FIELDS if f in rec and (f != "ref" or self.refs_from_records))
        if self.fields is None:
            self.fields, self.fields_where = fields, where
            self.streams = [f for f in SCORE_FIELDS if f == "score" or f in fields]
            self.builder = NbestBuilder(self.streams)
            return True
        if fields == self.fields:
            return True
        f = _file_of(where)
        n = self.field_mismatch.get(f, 0)
        self.field_mismatch[f] = n + 1
        if n == 0:
            missing = sorted(self.fields - fields)
            extra = sorted(fields - self.fields)
            diff = "; ".join(
                s for s in (f"missing {', '.join(missing)}" if missing else "",
                            f"extra {', '.join(extra)}" if extra else "") if s
            )
            self.problem(where, f"utterance {utt}: fields differ from the first record "
                                f"({_at(self.fields_where)}): {diff}; all records must have the same fields")
        return False

    def _scores(self, where: Where, rec: dict, utt: str, n: int) -> dict[str, list[float]] | None:
        cols: dict[str, list[float]] = {}
        ok = True
        for f in self.streams:
            v = rec[f]
            if v is None and n == 0:
                v = []
            if not isinstance(v, list):
                self.problem(where, f"utterance {utt}: field {f} is {type(v).__name__}, not a list")
                ok = False
                continue
            if len(v) != n:
                self.problem(where, f"utterance {utt}: field {f} has {len(v)} values for {n} hyps")
                ok = False
                continue
            vals: list[float] = []
            for x in v:
                if x is None:
                    self.null_scores += 1
                    vals.append(float("nan"))
                elif isinstance(x, (int, float)) and not isinstance(x, bool):
                    try:
                        vals.append(float(x))
                    except OverflowError:  # an integer literal beyond float range
                        self.problem(where, f"utterance {utt}: field {f} holds an integer of {len(str(abs(x)))} "
                                            "digits, beyond float range")
                        ok = False
                        break
                else:
                    self.problem(where, f"utterance {utt}: field {f} holds non-numeric value {x!r}")
                    ok = False
                    break
            cols[f] = vals
        return cols if ok else None

    def add(self, where: Where, rec: object) -> None:
        self.records += 1
        if not isinstance(rec, dict):
            self.problem(where, f"record is {type(rec).__name__}, not an object")
            return
        missing = [f for f in REQUIRED_FIELDS if f not in rec]
        if missing:
            self.problem(where, f"record without field(s) {', '.join(missing)}")
            return
        utt = rec["utt_id"]
        if not isinstance(utt, str) or not utt or any(c in utt for c in " \t\n\r\x0b\x0c"):
            self.problem(where, f"invalid utt_id {utt!r} (not a non-empty string without whitespace)")
            return
        if not self._check_fields(where, rec, utt):
            return
        if utt in self.seen:
            self.problem(where, f"duplicate utt_id {utt} (first at {_at(self.seen[utt])})")
            return
        self.seen[utt] = where
        hyps = rec["hyps"]
        if not isinstance(hyps, list) or not all(isinstance(h, str) for h in hyps):
            self.problem(where, f"utterance {utt}: hyps is not a list of strings")
            return
        if self.refs_from_records and "ref" in self.fields:
            ref = rec["ref"]
            if not isinstance(ref, str):
                self.problem(where, f"utterance {utt}: ref is {type(ref).__name__}, not a string")
                return
            self.refs[utt] = join_tokens(ref.encode("utf-8")).decode("utf-8")
        cols = self._scores(where, rec, utt, len(hyps))
        if cols is None:
            return
        if not hyps:
            self.no_hyps.append(utt)
            return
        assert self.builder is not None
        self.hyps_in += len(hyps)
        for k, text in enumerate(hyps, 1):
            self.builder.add(utt, k, text, {f: cols[f][k - 1] for f in self.streams}, where)

    def build(self, refs: dict[str, str] | None, meta_source: dict) -> NbestSet:
        for f, n in self.field_mismatch.items():
            if n > 1:
                self.problems.append(InputError(f, None, f"{n - 1} more record(s) with fields differing "
                                                         "from the first record"))
        builder = self.builder or NbestBuilder(["score"])
        if self.problems:
            raise InvalidSetError(self.problems + builder.problems)
        if refs is None and self.fields is not None and "ref" in self.fields:
            refs = self.refs
        elif refs is not None:
            log.info("references from the refs argument (%d), not from the records' ref field", len(refs))
        if self.no_hyps:
            log.warning("%d utterance(s) have no hypotheses (empty hyps; their references are kept and "
                        "scored as deletions): %s", len(self.no_hyps), ", ".join(self.no_hyps[:MAX_LISTED]))
        if self.null_scores:
            log.warning("%d null score value(s) read as NaN (kept, ranked last)", self.null_scores)
        meta_source = dict(meta_source)
        meta_source["records"] = self.records
        meta_source["utts_without_hyps"] = len(self.no_hyps)
        if self.no_hyps:
            meta_source["utts_without_hyps_ids"] = self.no_hyps[:MAX_LISTED]
        meta = {
            "source": meta_source,
            "streams": {s: {"better": "higher", "description": STREAM_DESCRIPTIONS[s]}
                        for s in builder.stream_names},
        }
        nbs = builder.build(refs=refs, meta=meta)
        if nbs.num_utts + len(self.no_hyps) != self.records or nbs.num_hyps != self.hyps_in:
            raise RuntimeError(f"read {self.records} records, {self.hyps_in} hyps but kept {nbs.num_utts} "
                               f"+ {len(self.no_hyps)} utterances, {nbs.num_hyps} hyps")
        return nbs
