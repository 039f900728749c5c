"""Kaldi lattice archives (``lat.JOB.gz``): N-best import and export (docs/formats.md §1.3, §1.7, §2.1-2.4).

Reading (``read(src, refs=None, words=None, acwt=0.1, nbest=10)``):

* ``src``: a decode dir holding ``lat.1.gz .. lat.nj.gz`` and ``num_jobs`` (every job must exist;
  a ``lat.J.gz`` beyond ``num_jobs`` is an error; without ``num_jobs`` the jobs found must be
  ``1..max``), or one lattice archive file, gzipped or plain.
* Each entry is detected as Kaldi does, by the first byte after ``key``: whitespace means the
  text form (docs/formats.md §2.2: TAB- or space-separated OpenFst lines ending at a blank line),
  ``0xD6`` the OpenFst ``VectorFst`` binary (§2.3) with arc type ``compactlattice44`` or
  ``lattice4`` (the header's arc count is not used: OpenFst's writer leaves it at 0; the writer
  here does the same). Both CompactLattice and (non-compact) Lattice entries are read, in either form;
  a Lattice's words are its output labels. A final weight of Zero (``+Infinity`` twice) means
  "not final".
* ``words`` (path to ``words.txt``): maps word ids to words (id 0 is epsilon); default
  ``words.txt`` in the decode dir (or beside the archive file). An id missing from the table is
  an :class:`InputError` naming the archive and line (text) or entry and byte offset (binary).
* ``acwt`` (float, default 0.1): the acoustic scale of the N-best search and of the ``score``
  stream, as ``lattice-to-nbest --acoustic-scale``.
* ``nbest`` (int, default 10): N, the number of distinct word sequences kept per utterance.
* ``refs``: references ``{utt: text}`` attached to the set.

Per utterance the N best paths (:func:`rescore.data.lattice.nbest_paths`) become ``<utt>-1 ..
<utt>-N`` in best-first order at ``acwt``, with the streams of the ``kaldi-nbest`` importer:
``graph_cost`` and ``ac_cost`` (unscaled sums along the path) and
``score = -(graph_cost + acwt * ac_cost)``; ``meta['acoustic_scale'] = acwt``. An utterance whose
lattice is empty gets no hypotheses, as in Kaldi: each is warned about and they are counted in
``meta['source']['empty_lattices']``. A key seen twice is an error.

Writing (``write(nbs, out, nj=1, words=None, acwt=None, binary=True)``) makes a Kaldi decode dir:
``num_jobs``, ``words.txt`` and ``lat.1.gz .. lat.nj.gz`` (utterances split into ``nj``
contiguous near-equal blocks, as the ``kaldi-nbest`` writer does). Each utterance is one
CompactLattice, the union of its hypotheses as linear paths from a shared start state 0, best
``score`` first (what ``nbest-to-lattice`` builds): word arcs with weight One, the costs on the
final weight, no transition ids (an empty hypothesis is one epsilon arc). Options:

* ``binary`` (bool, default True): the OpenFst binary form, which is what Kaldi's decoders
  write; ``False`` writes the text form of docs/formats.md §2.2 (TAB-separated, as
  ``lattice-copy ark:- ark,t:-`` prints it). Kaldi reads both. Binary stores costs as float32
  (as Kaldi does); the text form writes float64 values exactly.
* ``nj`` (int, default 1): number of jobs; at most the number of utterances.
* ``words``: a ``words.txt`` to map words to ids (copied to ``out/words.txt``); when ``None`` the
  table the set was imported with (``meta['symbol_table']``), else, with ``new_table=True``, a
  new Kaldi-style table; else an error (see :func:`rescore.data.formats.kaldi_nbest.resolve_table`).
  The reader records the table it used in ``meta['symbol_table']`` (path, SHA-256, size).
* ``acwt`` (float): the acoustic scale the costs are written for (Kaldi's ``LMWT = 1/acwt``);
  default ``nbs.meta['acoustic_scale']``, else 0.1.

Costs written, so that Kaldi's best path at ``LMWT = 1/acwt`` (no word-insertion penalty) is the
set's best by ``score``, and reading back at ``acwt`` gives back ``score``:

* a set with ``graph_cost`` and ``ac_cost``: acoustic cost unchanged; graph cost = original
  graph cost - (score - first-pass score), where the first-pass score is
  ``-(graph_cost + acwt * ac_cost)``. For a rescored set (``score = first_pass + sum_k beta_k *
  stream_k + wip * words``) that is ``graph_cost - sum_k beta_k * stream_k - wip * words``; a
  set whose score is still the first pass keeps its graph costs bit for bit. (A ``first_pass``
  stream that differs from ``-(graph_cost + acwt * ac_cost)`` is reported: the costs still
  follow ``score`` at ``acwt``.)
* otherwise (e.g. ESPnet): acoustic cost 0, graph cost ``-score``.

A non-finite cost (from a non-finite score) is written as the finite cost 1e10
(:func:`rescore.data.formats.kaldi_nbest.cap_costs`): an infinite cost is no path for Kaldi, so the
hypothesis would vanish, and an utterance whose hypotheses all had one would lose its 1-best; the
count is logged. Stale ``lat.J.gz`` with ``J > nj`` in ``out`` are removed.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rescore.data.archive import GZIP_ERRORS, MAX_DIGITS, decode, format_float, parse_float, write_lines
from rescore.data.formats.kaldi_nbest import (
    DEFAULT_ACWT,
    cap_costs,
    check_acwt,
    first_missing_job,
    read_num_jobs,
    read_symbol_table,
    resolve_table,
    symbol_table,
    table_record,
    to_ids,
    writer_setup,
)
from rescore.data.lattice import Arc, Lattice, nbest_paths
from rescore.data.nbest import NbestBuilder, NbestSet
from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.stage import atomic_open

log = get_logger(__name__)

FORMAT = "kaldi-lattice"
DEFAULT_NBEST = 10
FST_MAGIC = 2125659606  # OpenFst kFstMagicNumber, bytes D6 FD B2 7E
SYMTAB_MAGIC = 2125658996  # OpenFst kSymbolTableMagicNumber
VECTOR_VERSION = 2  # OpenFst VectorFst kFileVersion
PROPS_EXPANDED_MUTABLE = 0x3  # kExpanded | kMutable: claims nothing else about the FST
COMPACT_ARC, LATTICE_ARC = b"compactlattice44", b"lattice4"
MAX_WARNED = 10

_LAT_RE = re.compile(r"lat\.([1-9][0-9]*)\.gz")
_WS = frozenset(b" \t\n\r\x0b\x0c")
_I32, _I64, _U64 = struct.Struct("<i"), struct.Struct("<q"), struct.Struct("<Q")
_HEAD = struct.Struct("<iiQqqq")  # version, flags, properties, start, num states, num arcs
_LW = struct.Struct("<ff")  # LatticeWeight
_CW = struct.Struct("<ffi")  # CompactLatticeWeight without its tids
_CARC = struct.Struct("<iiffi")  # ilabel, olabel, graph, acoustic, tid count
_LARC = struct.Struct("<iiffi")  # ilabel, olabel, graph, acoustic, nextstate
_INF = math.inf


# --------------------------------------------------------------------------------------------
# Reading: a byte stream with lines and binary fields
# --------------------------------------------------------------------------------------------


class _Truncated(Exception):
    """The file ended inside an entry."""


class _Stream:
    """A forward-only buffered reader over a (possibly gzipped) file: lines, tokens and structs."""

    CHUNK = 1 << 20
    MAX_READ = 1 << 26  # per read: a length field claiming gigabytes must not allocate them before EOF

    def __init__(self, f: BinaryIO):
        self.f = f
        self.buf = b""
        self.pos = 0
        self.base = 0  # file offset of buf[0]
        self.eof = False

    def tell(self) -> int:
        return self.base + self.pos

    def _fill(self, n: int) -> bool:
        """Make ``n`` unread bytes available if the file has them."""
        while len(self.buf) - self.pos < n and not self.eof:
            data = self.f.read(min(max(self.CHUNK, n), self.MAX_READ))
            if not data:
                self.eof = True
                break
            self.base += self.pos
            self.buf = self.buf[self.pos :] + data
            self.pos = 0
        return len(self.buf) - self.pos >= n

    def peek(self) -> int | None:
        return self.buf[self.pos] if self._fill(1) else None

    def skip(self, n: int) -> None:
        if not self._fill(n):
            raise _Truncated
        self.pos += n

    def read(self, n: int) -> bytes:
        if not self._fill(n):
            raise _Truncated
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct) -> tuple:
        if not self._fill(st.size):
            raise _Truncated
        out = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return out

    def readline(self) -> bytes | None:
        """The next line without its newline; None at the end of the file."""
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos : i]
                self.pos = i + 1
                return line
            if not self._fill(len(self.buf) - self.pos + 1):
                if self.pos >= len(self.buf):
                    return None
                line = self.buf[self.pos :]
                self.pos = len(self.buf)
                return line

    def skip_ws(self) -> None:
        while self._fill(1):
            b, i, n = self.buf, self.pos, len(self.buf)
            while i < n and b[i] in _WS:
                i += 1
            self.pos = i
            if i < n:
                return

    def token(self) -> bytes:
        """Bytes up to the next ASCII whitespace (or the end of the file)."""
        out = b""
        while self._fill(1):
            b, i, n = self.buf, self.pos, len(self.buf)
            j = i
            while j < n and b[j] not in _WS:
                j += 1
            out += b[i:j]
            self.pos = j
            if j < n:
                break
        return out


def _open_archive(raw: BinaryIO) -> BinaryIO:
    """``raw``, or its decompressed stream when it starts with the gzip magic bytes (not by the file name)."""
    gz = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw


def _line_at(path: Path, offset: int) -> int:
    """1-based line number of byte ``offset`` of the (decompressed) archive, computed only when
    reporting an error; a damaged gzip stream counts the lines up to where it breaks."""
    count, left = 0, offset
    with open(path, "rb") as raw, _open_archive(raw) as f:
        try:
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                count += chunk.count(b"\n")
                left -= len(chunk)
        except GZIP_ERRORS:
            pass
    return count + 1


@dataclass
class _Entry:
    key: str
    offset: int  # byte offset of the key
    lattice: Lattice
    form: str  # "text" | "binary"
    kind: str  # "CompactLattice" | "Lattice"


@dataclass
class _Ctx:
    """What an entry parser needs for error messages and word lookup."""

    path: Path
    table: dict[int, str]
    words_path: Path

    def error(self, offset: int, message: str, text: bool = True) -> InputError:
        if text:
            return InputError(self.path, _line_at(self.path, offset), message)
        return InputError(self.path, None, message)

    def word(self, wid: int, offset: int, text: bool, key: str) -> str | None:
        if wid == 0:
            return None
        w = self.table.get(wid)
        if w is None:
            where = "" if text else f"entry {key} (byte {offset}): "
            raise self.error(offset, f"{where}word id {wid} is not in {self.words_path}", text)
        return w


def iter_archive(path: Path, table: dict[int, str], words_path: Path) -> Iterator[_Entry]:
    """Yield the lattices of one archive (gzip detected by its magic bytes), text or binary per entry."""
    ctx = _Ctx(path, table, words_path)
    with open(path, "rb") as raw:
        f = _open_archive(raw)
        gz = f is not raw
        try:
            s = _Stream(f)
            while True:
                s.skip_ws()
                if s.peek() is None:
                    return
                off = s.tell()
                key_b = s.token()
                try:
                    key = key_b.decode("utf-8")
                except UnicodeDecodeError:
                    key = decode(key_b, path, _line_at(path, off))  # raises, naming the line
                yield _read_entry(s, ctx, key, off)
        except (OSError, *GZIP_ERRORS) as e:
            raise InputError(path, None, f"cannot decompress: {e}") from None
        finally:
            if gz:
                f.close()


def _read_entry(s: _Stream, ctx: _Ctx, key: str, off: int) -> _Entry:
    c = s.peek()
    if c is None:
        raise ctx.error(off, f"key {key} at the end of the file, without a lattice")
    if c not in (0x20, 0x09, 0x0A):
        raise ctx.error(off, f"key {key} is followed by byte {c:#04x}, not a space or newline")
    if c != 0x0A:
        s.skip(1)
    c = s.peek()
    if c is None:
        raise ctx.error(off, f"key {key} at the end of the file, without a lattice")
    if c in _WS:
        rest = s.readline()
        if rest is not None and rest.strip():
            raise ctx.error(off, f"text after key {key} on its line (expected the lattice on the next lines)")
        lat, kind = _parse_text(s, ctx, key)
        return _Entry(key, off, lat, "text", kind)
    if c == 0xD6:
        start = s.tell()
        try:
            lat, kind = _parse_binary(s, ctx, key, start)
        except _Truncated:
            raise ctx.error(start, f"entry {key} (byte {start}): the file ends inside the lattice", False) from None
        return _Entry(key, off, lat, "binary", kind)
    if s._fill(2) and s.read(2) == b"\0B":
        raise ctx.error(off, f"entry {key} is a Kaldi binary object ('\\0B'), not a lattice")
    raise ctx.error(off, f"entry {key} is not a lattice (neither text nor OpenFst binary; first byte {c:#04x})")


# --------------------------------------------------------------------------------------------
# Text form (docs/formats.md §2.2)
# --------------------------------------------------------------------------------------------


def _nonneg(tok: bytes, what: str) -> int:
    if not tok.isdigit():
        raise ValueError(f"{what} {tok.decode('utf-8', 'replace')!r} is not a non-negative integer")
    if len(tok) > MAX_DIGITS:
        raise ValueError(f"{what} {tok.decode()[:30]}... ({len(tok)} digits) is out of range")
    return int(tok)


def _text_weight(tok: bytes, compact: bool) -> tuple[float, float]:
    parts = tok.split(b",")
    if len(parts) != (3 if compact else 2):
        form = "g,a,tids" if compact else "g,a"
        raise ValueError(f"weight {tok.decode('utf-8', 'replace')!r} is not '{form}'")
    if compact and parts[2] and not all(t.isdigit() for t in parts[2].split(b"_")):
        raise ValueError(f"transition ids {parts[2].decode('utf-8', 'replace')!r} are not '_'-joined integers")
    try:
        return parse_float(parts[0]), parse_float(parts[1])
    except ValueError:
        raise ValueError(f"weight {tok.decode('utf-8', 'replace')!r} has a non-numeric cost") from None


def _line_kind(f: list[bytes]) -> str | None:
    """'compact', 'lattice', or None (a 1-column final, valid in both)."""
    n = len(f)
    if n == 1:
        return None
    if n == 2:
        return "compact" if f[1].count(b",") == 2 else "lattice"
    if n == 3:
        return "compact"
    if n == 4:
        return "compact" if b"," in f[3] else "lattice"
    if n == 5:
        return "lattice"
    raise ValueError(f"{n} fields (expected 1 to 5)")


def _parse_text(s: _Stream, ctx: _Ctx, key: str) -> tuple[Lattice, str]:
    lat = Lattice()
    kind: str | None = None
    first = True
    # state ids as written -> dense indices in order of appearance: an id like 9999999999 names one
    # state, not ten billion (a state no line mentions has no arcs and is not final: nothing is lost)
    states: dict[int, int] = {}

    def state(tok: bytes) -> int:
        return states.setdefault(_nonneg(tok, "state"), len(states))

    while True:
        off = s.tell()
        line = s.readline()
        if line is None:
            break
        f = line.split()
        if not f:
            break
        try:
            k = _line_kind(f)
            if k is not None:
                if kind is None:
                    kind = k
                elif k != kind:
                    raise ValueError(f"a {_KIND[k]} line in a {_KIND[kind]} entry")
            src = state(f[0])
            compact = kind != "lattice"
            if len(f) <= 2:
                g, a = _text_weight(f[1], compact) if len(f) == 2 else (0.0, 0.0)
                lat.ensure_state(src)
                if not (g == _INF and a == _INF):
                    lat.set_final(src, g, a)
            else:
                dst = state(f[1])
                wtok = f[2] if compact else f[3]
                if not compact:
                    _nonneg(f[2], "transition id")
                wid = _nonneg(wtok, "word id")
                wpos = 3 if compact else 4
                g, a = _text_weight(f[wpos], compact) if len(f) > wpos else (0.0, 0.0)
                lat.add_arc(src, dst, ctx.word(wid, off, True, key), g, a)
        except ValueError as e:
            raise ctx.error(off, f"lattice {key}: {e}") from None
        if first:
            lat.set_start(src)
            first = False
    return lat, _KIND[kind or "compact"]


_KIND = {"compact": "CompactLattice", "lattice": "Lattice"}


# --------------------------------------------------------------------------------------------
# Binary form (docs/formats.md §2.3)
# --------------------------------------------------------------------------------------------


def _read_string(s: _Stream) -> bytes:
    (n,) = s.unpack(_I32)
    if n < 0 or n > 1 << 16:
        raise ValueError(f"implausible string length {n} in the FST header")
    return s.read(n)


def _skip_symbol_table(s: _Stream) -> None:
    (magic,) = s.unpack(_I32)
    if magic != SYMTAB_MAGIC:
        raise ValueError(f"bad symbol table magic {magic}")
    _read_string(s)  # name
    s.unpack(_I64)  # available key
    (n,) = s.unpack(_I64)
    for _ in range(n):
        _read_string(s)
        s.unpack(_I64)


def _parse_binary(s: _Stream, ctx: _Ctx, key: str, start: int) -> tuple[Lattice, str]:
    def fail(msg: str) -> InputError:
        return ctx.error(start, f"entry {key} (byte {start}): {msg}", False)

    try:
        (magic,) = s.unpack(_I32)
        if magic != FST_MAGIC:
            raise fail(f"bad OpenFst magic number {magic}")
        fst_type, arc_type = _read_string(s), _read_string(s)
        version, flags, _props, init, nstates, _narcs = s.unpack(_HEAD)
        if flags & 1:
            _skip_symbol_table(s)
        if flags & 2:
            _skip_symbol_table(s)
    except ValueError as e:
        raise fail(str(e)) from None
    if fst_type != b"vector":
        raise fail(f"FST type {fst_type!r} is not supported (expected b'vector')")
    if arc_type not in (COMPACT_ARC, LATTICE_ARC):
        raise fail(f"arc type {arc_type!r} is not a Kaldi lattice (expected compactlattice44 or lattice4)")
    if version < VECTOR_VERSION:
        raise fail(f"VectorFst file version {version} is older than {VECTOR_VERSION}")
    if nstates < 0:
        raise fail(f"unknown number of states ({nstates})")
    if not -1 <= init < max(nstates, 0) and not (init == -1 and nstates == 0):
        raise fail(f"start state {init} out of range (0..{nstates - 1})")
    compact = arc_type == COMPACT_ARC
    lat = Lattice()
    if init >= 0:
        lat.start = init
    word = ctx.word
    for st in range(nstates):  # states are added as they are read: a huge claimed count ends at EOF
        lat.add_state()
        if compact:
            g, a, nt = s.unpack(_CW)
            if nt < 0:
                raise fail(f"state {st}: negative transition-id count {nt}")
            s.skip(4 * nt)
        else:
            g, a = s.unpack(_LW)
        if not (g == _INF and a == _INF):
            lat.finals[st] = (g, a)
        (na,) = s.unpack(_I64)
        if na < 0:
            raise fail(f"state {st}: negative arc count {na}")
        out = lat.arcs[st]
        for _ in range(na):
            if compact:
                il, ol, g, a, nt = s.unpack(_CARC)
                if nt < 0:
                    raise fail(f"state {st}: negative transition-id count {nt}")
                s.skip(4 * nt)
                (nxt,) = s.unpack(_I32)
                if il != ol:
                    raise fail(f"state {st}: arc labels {il} != {ol} in a CompactLattice (not an acceptor)")
            else:
                il, ol, g, a, nxt = s.unpack(_LARC)
            if ol < 0 or not 0 <= nxt < nstates:
                raise fail(f"state {st}: arc with label {ol} to state {nxt} out of range")
            out.append(Arc(nxt, word(ol, start, False, key), g, a))
    # The header's arc count is not checked: OpenFst's VectorFst writer leaves it at 0 (it writes
    # the header before it has counted the arcs), and OpenFst's reader ignores it too.
    return lat, _KIND["compact" if compact else "lattice"]


# --------------------------------------------------------------------------------------------
# Reading: sources and the N-best set
# --------------------------------------------------------------------------------------------


@dataclass
class _Counts:
    lattices: int = 0
    forms: dict[str, int] = field(default_factory=lambda: {"text": 0, "binary": 0})
    kinds: dict[str, int] = field(default_factory=lambda: {"CompactLattice": 0, "Lattice": 0})
    empty: list[str] = field(default_factory=list)


def read(
    src: str | Path,
    refs: dict[str, str] | None = None,
    words: str | Path | None = None,
    acwt: float = DEFAULT_ACWT,
    nbest: int = DEFAULT_NBEST,
) -> NbestSet:
    """Import Kaldi lattices as the ``nbest`` best paths per utterance at acoustic scale ``acwt``."""
    src = Path(src)
    acwt = check_acwt(acwt)
    nbest = int(nbest)
    if nbest < 1:
        raise ValueError(f"nbest must be >= 1, got {nbest}")
    base, files = _sources(src)
    words_path = Path(words) if words is not None else base / "words.txt"
    if words is None and not words_path.is_file():
        raise InputError(src, None, f"no {words_path.name} beside the lattices; give words= (path to words.txt)")
    table = read_symbol_table(words_path)
    builder = NbestBuilder(["score", "graph_cost", "ac_cost"])
    seen: dict[str, tuple[Path, _Entry]] = {}
    counts = _Counts()
    for path in files:
        for e in iter_archive(path, table, words_path):
            if e.key in seen:
                p0, e0 = seen[e.key]
                line = _line_at(path, e.offset) if e.form == "text" else None
                raise InputError(path, line, f"duplicate lattice key {e.key} (byte {e.offset}; also at {p0} "
                                 f"byte {e0.offset})")
            seen[e.key] = (path, e)
            e_lat = e.lattice
            e.lattice = None  # type: ignore[assignment]  # free it once its paths are out
            _add_entry(builder, counts, path, e, e_lat, nbest, acwt)
    meta = _meta(src, files, acwt, nbest, words, words_path, counts)
    nbs = builder.build(refs=refs, meta=meta)
    if counts.empty:
        log.warning("%d of %d lattices were empty (no hypotheses for those utterances)",
                    len(counts.empty), counts.lattices)
    log.info("read %d lattices (%d text, %d binary) -> %d utterances, %d hypotheses (N=%d, acwt=%r) from %s",
             counts.lattices, counts.forms["text"], counts.forms["binary"], nbs.num_utts, nbs.num_hyps,
             nbest, acwt, src)
    if nbs.num_utts + len(counts.empty) != counts.lattices:  # counts in = counts out
        raise AssertionError("lattice count does not match utterances + empty lattices")
    return nbs


def _add_entry(builder: NbestBuilder, counts: _Counts, path: Path, e: _Entry, lat: Lattice,
               nbest: int, acwt: float) -> None:
    counts.lattices += 1
    counts.forms[e.form] += 1
    counts.kinds[e.kind] += 1
    try:
        paths = nbest_paths(lat, nbest, acwt)
    except ValueError as err:
        raise InputError(path, None, f"lattice {e.key} (byte {e.offset}): {err}") from None
    if not paths:
        counts.empty.append(e.key)
        if len(counts.empty) <= MAX_WARNED:
            log.warning("%s: the lattice of %s is empty: no hypotheses for it", path, e.key)
        return
    rows = []
    for p in paths:
        score = -(p.graph + acwt * p.ac)  # the kaldi-nbest importer's arithmetic
        rows.append((score, p))
    # best first by the score itself (the search order can differ in the last bit); NaN last
    rows.sort(key=lambda r: -r[0] if r[0] == r[0] else _INF)
    for k, (score, p) in enumerate(rows, 1):
        builder.add(e.key, k, " ".join(p.words), {"score": score, "graph_cost": p.graph, "ac_cost": p.ac},
                    where=(path, None))


def _sources(src: Path) -> tuple[Path, list[Path]]:
    """``(directory for words.txt, [archive files])`` of a decode dir or a single archive file."""
    if src.is_file():
        return src.parent, [src]
    if not src.is_dir():
        raise InputError(src, None, "not found (expected a decode dir with lat.*.gz or a lattice archive)")
    found = {int(m.group(1)): p for p in src.iterdir() if p.is_file() and (m := _LAT_RE.fullmatch(p.name))}
    nj_path = src / "num_jobs"
    if nj_path.is_file():
        nj = read_num_jobs(nj_path)
        extra = sorted(j for j in found if j > nj)
        if extra:
            raise InputError(nj_path, 1, f"num_jobs is {nj} but {src / f'lat.{extra[0]}.gz'} also exists "
                             "(left over from another run?)")
    elif not found:
        raise InputError(src, None, "no lat.N.gz files (is this a Kaldi decode dir?)")
    else:
        nj = max(found)
        log.warning("%s: no num_jobs file; reading lat.1.gz .. lat.%d.gz", src, nj)
    missing = first_missing_job(found, nj)
    if missing is not None:
        where = nj_path if nj_path.is_file() else src
        raise InputError(where, None, f"lat.{missing}.gz is missing (expected lat.1.gz .. lat.{nj}.gz)")
    return src, [found[j] for j in range(1, nj + 1)]


def _meta(src: Path, files: list[Path], acwt: float, nbest: int, words_option, words_path: Path,
          counts: _Counts) -> dict:
    return {
        "source": {
            "format": FORMAT,
            "path": str(src),
            "options": {"acwt": acwt, "nbest": nbest,
                        "words": str(words_option) if words_option is not None else None},
            "num_jobs": len(files) if src.is_dir() else None,
            "words_txt": str(words_path),
            "lattices": counts.lattices,
            "forms": dict(counts.forms),
            "types": dict(counts.kinds),
            "empty_lattices": {"count": len(counts.empty), "utts": counts.empty[:20]},
        },
        "acoustic_scale": acwt,
        "symbol_table": table_record(words_path),  # exports map words back to the recogniser's ids
        "streams": {
            "score": {"better": "higher",
                      "description": f"first-pass log score -(graph_cost + {acwt!r} * ac_cost)"},
            "ac_cost": {"better": "lower",
                        "description": "Kaldi acoustic cost along the path, unscaled -ln p"},
            "graph_cost": {"better": "lower",
                           "description": "Kaldi graph cost along the path (LM, transitions, pronunciations)"},
        },
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
    binary: bool = True,
    new_table: bool = False,
) -> list[Path]:
    """Write ``nbs`` as a Kaldi decode dir of union-of-n-best CompactLattices; returns the files written."""
    out, acwt, blocks = writer_setup(nbs, out, nj, acwt)
    words = resolve_table(nbs, words, new_table)
    nj = len(blocks)
    graph, ac = cap_costs(dict(zip(("graph", "acoustic"), lattice_costs(nbs, acwt, float32=binary), strict=True)),
                          nbs.num_hyps).values()
    texts = list(nbs.texts)
    sym2id, table_lines = symbol_table(texts, words)
    ids = [[int(t) for t in s.split(" ")] if s else [] for s in to_ids(nbs, texts, sym2id, words)]
    score = nbs.streams.get("score")
    order = nbs.order_within(score) if score is not None else np.lexsort((nbs.ranks, nbs.utt_index()))

    out.mkdir(parents=True, exist_ok=True)
    written = [_write(out / "num_jobs", [str(nj)])]
    if table_lines is not None:
        written.append(_write(out / "words.txt", table_lines))
    offsets = nbs.offsets.tolist()
    for j, (u0, u1) in enumerate(blocks, 1):
        path = out / f"lat.{j}.gz"
        with atomic_open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            for u in range(u0, u1):
                idx = order[offsets[u] : offsets[u + 1]].tolist()
                paths = [(ids[i], float(graph[i]), float(ac[i])) for i in idx]
                entry = _binary_entry if binary else _text_entry
                gz.write(entry(nbs.utt_ids[u], paths))
        written.append(path)
    _remove_stale(out, nj)
    log.info("wrote %d utterances, %d hypotheses as %s CompactLattices to %s (%d job(s); acwt %r, LMWT %s)",
             nbs.num_utts, nbs.num_hyps, "binary" if binary else "text", out, nj, acwt,
             format_float(1 / acwt) if acwt else "inf")
    return written


def lattice_costs(nbs: NbestSet, acwt: float, float32: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(graph, acoustic)`` costs per hypothesis such that ``-(graph + acwt * ac) == score``.

    See the module docstring. With ``float32`` the acoustic costs are rounded to float32 first
    and the graph costs derived from them, so Kaldi's float32 sums stay as close to ``-score``
    as float32 allows.
    """
    score = nbs.streams.get("score")
    graph, ac = nbs.streams.get("graph_cost"), nbs.streams.get("ac_cost")
    if graph is None or ac is None:
        if score is None:
            raise ValueError("the set has neither a score stream nor graph_cost and ac_cost streams")
        if graph is not None or ac is not None:
            log.warning("the set has only one of graph_cost/ac_cost; writing graph cost = -score, acoustic cost 0")
        return -score.astype(np.float64), np.zeros(len(score))
    graph, ac = graph.astype(np.float64), ac.astype(np.float64)
    if score is None:
        return graph, ac
    with np.errstate(all="ignore"):
        first = -(graph + acwt * ac)  # the first-pass score these costs give (kaldi-nbest importer)
        fp = nbs.streams.get("first_pass")
        if fp is not None:
            off = ~np.isclose(fp, first, rtol=1e-6, atol=1e-9, equal_nan=True)
            if off.any():
                log.warning("first_pass differs from -(graph_cost + %r * ac_cost) for %d of %d hypotheses "
                            "(another acoustic scale?); costs are written so that acwt=%r gives back score",
                            acwt, int(off.sum()), nbs.num_hyps, acwt)
        changed = ~((score == first) | (np.isnan(score) & np.isnan(first)))
        if not changed.any():
            return graph, ac
        if float32:
            ac = ac.astype(np.float32).astype(np.float64)
        new = graph.copy()
        # graph - (score - first) == -score - acwt * ac: the rescoring delta moves into the graph cost
        new[changed] = -score[changed] - acwt * ac[changed]
    log.info("graph costs of %d of %d hypotheses carry the rescored score", int(changed.sum()), nbs.num_hyps)
    return new, ac


def _text_entry(key: str, paths: list[tuple[list[int], float, float]]) -> bytes:
    """One CompactLattice in the text form of docs/formats.md §2.2 (TAB-separated; One weights omitted)."""
    lines = [f"{key} "]
    state = 0
    arcs0: list[str] = []
    rest: list[str] = []
    for words, g, a in paths:
        labels = words or [0]
        prev = 0
        for n, w in enumerate(labels):
            state += 1
            line = f"{prev}\t{state}\t{w}"
            (arcs0 if n == 0 else rest).append(line)
            prev = state
        weight = _text_weight_str(g, a)
        rest.append(f"{prev}\t{weight}" if weight else f"{prev}")
    lines += arcs0 + rest + [""]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _text_weight_str(g: float, a: float) -> str:
    if g == 0.0 and a == 0.0:
        return ""  # One is omitted
    return f"{format_float(g)},{format_float(a)},"


def _fst_string(s: bytes) -> bytes:
    return _I32.pack(len(s)) + s


_ONE_CW = _CW.pack(0.0, 0.0, 0)
_ZERO_CW = _CW.pack(_INF, _INF, 0)


def _binary_entry(key: str, paths: list[tuple[list[int], float, float]]) -> bytes:
    """One CompactLattice as ``key `` + OpenFst VectorFst binary (docs/formats.md §2.3)."""
    # states: 0 = start, then each path's chain in order
    states: list[tuple[bytes, list[tuple[int, int]]]] = [(_ZERO_CW, [])]
    for words, g, a in paths:
        labels = words or [0]
        prev = 0
        for w in labels:
            states.append((_ZERO_CW, []))
            states[prev][1].append((w, len(states) - 1))
            prev = len(states) - 1
        states[prev] = (_CW.pack(g, a, 0), states[prev][1])
    # the header's arc count is 0, as OpenFst's own writer leaves it (readers do not use it)
    parts = [key.encode("utf-8"), b" ", _I32.pack(FST_MAGIC), _fst_string(b"vector"), _fst_string(COMPACT_ARC),
             _HEAD.pack(VECTOR_VERSION, 0, PROPS_EXPANDED_MUTABLE, 0, len(states), 0)]
    for final, arcs in states:
        parts.append(final)
        parts.append(_I64.pack(len(arcs)))
        for w, dst in arcs:
            parts.append(_CARC.pack(w, w, 0.0, 0.0, 0) + _I32.pack(dst))
    return b"".join(parts)


def _write(path: Path, lines: list[str]) -> Path:
    write_lines(path, lines)
    return path


def _remove_stale(out: Path, nj: int) -> None:
    for p in out.iterdir():
        m = _LAT_RE.fullmatch(p.name)
        if m and p.is_file() and int(m.group(1)) > nj:
            p.unlink()
            log.info("removed stale %s", p)
