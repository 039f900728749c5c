"""The canonical n-best dataset directory and its columnar in-memory form.

On disk (an interface other code and users rely on)::

    <set>/text            references, "<utt> w1 w2 ..." (optional)
    <set>/nbest/text      "<utt>-<k> w1 w2 ..."; k = 1..N(utt); an utterance's entries contiguous
    <set>/nbest/score     "<utt>-<k> <float>"  first-pass log score, higher is better
    <set>/nbest/<stream>  any other per-hypothesis float stream with the same keys
    <set>/nbest/meta.yaml source, conventions, normalisation, counts

A set whose references are not in ``<set>/text`` names their file in meta.yaml
(``references: ref``, a file name inside ``<set>``): the rescoring output ``EXPDIR/<set>`` is a
decode directory whose ``text`` is the rescored 1-best, with the references in ``EXPDIR/<set>/ref``
(:func:`save_set` ``refs_name``).

Keys are identities: ``<utt>-<k>`` keeps its ``k`` whatever the order of the lines, and streams
are joined by key, never by line position. In memory a set is a handful of arrays (utterance
offsets, ranks, a packed UTF-8 text column, one float64 array per stream), so ten million
hypotheses fit in a few hundred MB rather than one Python object each.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from rescore.data.archive import (
    GZIP_ERRORS,
    atomic_open,
    decode,
    format_float,
    iter_lines,
    join_tokens,
    open_binary,
    parse_float,
    read_text_dict,
    split_key,
    write_lines,
)
from rescore.exceptions import InputError, InvalidSetError
from rescore.log import get_logger

log = get_logger(__name__)

META_VERSION = 1

#: Sign conventions of the reserved stream names; anything else defaults to "higher".
RESERVED_STREAMS = {
    "score": ("higher", "first-pass log score (natural log), higher is better"),
    "ac_cost": ("lower", "Kaldi acoustic cost, unscaled -ln p, lower is better"),
    "graph_cost": ("lower", "Kaldi graph cost incl. the old LM (lmwt.withlm), lower is better"),
    "lm_cost": ("lower", "old LM cost alone (lmwt.lmonly), lower is better"),
    "errors": ("lower", "word or character errors against the reference"),
}

#: Files in ``nbest/`` that are not per-hypothesis float streams.
NON_STREAM_FILES = {"text", "meta.yaml"}

MAX_LISTED = 20  # keys listed per problem kind in logs and meta.yaml
MAX_RANK = 2**31 - 1  # ranks are stored as int32


def stream_convention(name: str) -> str:
    """``'higher'`` or ``'lower'``: which values of a stream are better."""
    return RESERVED_STREAMS.get(name, ("higher", ""))[0]


def split_nbest_key(key: str) -> tuple[str, int]:
    """``'sw02001-A_000098-001156-10'`` -> ``('sw02001-A_000098-001156', 10)`` (last ``-``)."""
    utt, dash, rank = key.rpartition("-")
    if (not dash or not utt or not rank.isdigit() or not rank.isascii() or rank.startswith("0")
            or len(rank) > len(str(MAX_RANK))):
        raise ValueError(f"n-best key {key!r} is not '<utt>-<k>' with a 1-based rank k")
    return utt, int(rank)


# --------------------------------------------------------------------------------------------
# Packed text column
# --------------------------------------------------------------------------------------------


class TextColumn:
    """Hypothesis texts packed as one UTF-8 buffer plus offsets (tokens joined by one space)."""

    __slots__ = ("buf", "offsets")

    def __init__(self, buf: bytes, offsets: np.ndarray):
        self.buf = bytes(buf)
        self.offsets = np.asarray(offsets, dtype=np.int64)

    @classmethod
    def from_strings(cls, texts: Iterable[str]) -> TextColumn:
        b = TextColumnBuilder()
        for t in texts:
            b.append(t.encode("utf-8"))
        return b.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        o = self.offsets
        return self.buf[o[i] : o[i + 1]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        buf, o = self.buf, self.offsets.tolist()
        for i in range(len(o) - 1):
            yield buf[o[i] : o[i + 1]].decode("utf-8")

    def raw(self, i: int) -> bytes:
        o = self.offsets
        return self.buf[o[i] : o[i + 1]]

    def take(self, index: np.ndarray) -> TextColumn:
        """A new column with rows ``index`` in that order."""
        buf, o = self.buf, self.offsets
        starts, ends = o[index].tolist(), o[np.asarray(index) + 1].tolist()
        pieces = [buf[s:e] for s, e in zip(starts, ends, strict=True)]
        lengths = np.fromiter((e - s for s, e in zip(starts, ends, strict=True)), dtype=np.int64,
                              count=len(starts))
        offsets = np.zeros(len(starts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return TextColumn(b"".join(pieces), offsets)

    def num_tokens(self) -> np.ndarray:
        """Tokens per row (0 for an empty hypothesis)."""
        out = np.empty(len(self), dtype=np.int64)
        buf, o = self.buf, self.offsets.tolist()
        for i in range(len(out)):
            s, e = o[i], o[i + 1]
            out[i] = buf.count(b" ", s, e) + 1 if e > s else 0
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TextColumn)
            and self.buf == other.buf
            and np.array_equal(self.offsets, other.offsets)
        )


class TextColumnBuilder:
    """Appends UTF-8 rows; ``build()`` returns a :class:`TextColumn`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._offsets = array("q", [0])

    def append(self, row: bytes) -> None:
        self._buf += row
        self._offsets.append(len(self._buf))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def build(self) -> TextColumn:
        return TextColumn(bytes(self._buf), np.frombuffer(self._offsets, dtype=np.int64).copy())


# --------------------------------------------------------------------------------------------
# The set
# --------------------------------------------------------------------------------------------


@dataclass
class NbestSet:
    """One dataset's n-best lists, columnar.

    ``offsets[u]:offsets[u+1]`` are the hypotheses of utterance ``utt_ids[u]``; ``ranks[i]`` is
    the ``k`` of hypothesis ``i`` (its key is ``f"{utt}-{k}"``); ``streams[name][i]`` its value
    in stream ``name``. ``refs`` maps utterance ids to reference texts (may include utterances
    without hypotheses), or is ``None`` for unlabeled sets.
    """

    utt_ids: list[str]
    offsets: np.ndarray
    ranks: np.ndarray
    texts: TextColumn
    streams: dict[str, np.ndarray] = field(default_factory=dict)
    refs: dict[str, str] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_utts(self) -> int:
        return len(self.utt_ids)

    @property
    def num_hyps(self) -> int:
        return len(self.ranks)

    def counts(self) -> np.ndarray:
        """Hypotheses per utterance."""
        return np.diff(self.offsets)

    def utt_index(self) -> np.ndarray:
        """For every hypothesis, the index of its utterance."""
        return np.repeat(np.arange(self.num_utts, dtype=np.int64), self.counts())

    def key(self, i: int) -> str:
        u = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return f"{self.utt_ids[u]}-{int(self.ranks[i])}"

    def keys(self) -> Iterator[str]:
        ranks = self.ranks.tolist()
        o = self.offsets.tolist()
        for u, utt in enumerate(self.utt_ids):
            for i in range(o[u], o[u + 1]):
                yield f"{utt}-{ranks[i]}"

    def hyps(self, u: int) -> list[str]:
        """The texts of utterance ``u``'s hypotheses, in stored order."""
        return [self.texts[i] for i in range(int(self.offsets[u]), int(self.offsets[u + 1]))]

    def check(self) -> None:
        """Assert the structural invariants (used after every transformation)."""
        n = self.num_hyps
        assert self.offsets[0] == 0 and self.offsets[-1] == n, "offsets do not cover the hypotheses"
        assert np.all(np.diff(self.offsets) >= 1), "an utterance without hypotheses"
        assert len(self.texts) == n, "text column length differs from the number of hypotheses"
        assert len(set(self.utt_ids)) == len(self.utt_ids), "duplicate utterance ids"
        for name, v in self.streams.items():
            assert v.shape == (n,), f"stream {name} has {v.shape[0]} values for {n} hypotheses"
        # ranks are a permutation of 1..N within every utterance
        order = np.lexsort((self.ranks, self.utt_index()))
        expect = np.arange(n) - np.repeat(self.offsets[:-1], self.counts()) + 1
        assert np.array_equal(self.ranks[order], expect), "ranks are not 1..N within an utterance"

    def take_hyps(self, index: np.ndarray, offsets: np.ndarray, utt_ids: list[str]) -> NbestSet:
        """A new set whose hypotheses are ``index`` (grouped by ``offsets`` under ``utt_ids``)."""
        index = np.asarray(index, dtype=np.int64)
        return NbestSet(
            utt_ids=list(utt_ids),
            offsets=np.asarray(offsets, dtype=np.int64),
            ranks=self.ranks[index],
            texts=self.texts.take(index),
            streams={k: v[index] for k, v in self.streams.items()},
            refs=None if self.refs is None else dict(self.refs),
            meta=dict(self.meta),
        )

    def normalized_order(self) -> NbestSet:
        """Utterances in C (code point) order and each utterance's entries in rank order."""
        uorder = sorted(range(self.num_utts), key=self.utt_ids.__getitem__)
        counts = self.counts()
        new_offsets = np.zeros(self.num_utts + 1, dtype=np.int64)
        np.cumsum(counts[uorder], out=new_offsets[1:])
        # for each new utterance, its old hypotheses sorted by rank
        within = np.lexsort((self.ranks, self.utt_index()))  # old utt order, rank order
        old_start = self.offsets[:-1]
        index = np.concatenate([within[old_start[u] : old_start[u] + counts[u]] for u in uorder]) if uorder else np.zeros(0, np.int64)
        out = self.take_hyps(index, new_offsets, [self.utt_ids[u] for u in uorder])
        if out.refs is not None:
            out.refs = {k: out.refs[k] for k in sorted(out.refs)}
        return out

    def order_within(self, values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
        """Permutation of all hypotheses: utterance by utterance, best value first.

        Non-finite values rank last (never dropped); ties go to the smaller rank ``k``.
        """
        v = np.asarray(values, dtype=np.float64)
        worst = -np.inf if higher_is_better else np.inf
        v = np.where(np.isfinite(v), v, worst)
        primary = -v if higher_is_better else v
        primary = np.where(np.isnan(primary), np.inf, primary)
        return np.lexsort((self.ranks, primary, self.utt_index()))

    def best(self, values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
        """Index of the best hypothesis of every utterance under ``values``."""
        return self.order_within(values, higher_is_better)[self.offsets[:-1]]


# --------------------------------------------------------------------------------------------
# Building a set record by record (importers)
# --------------------------------------------------------------------------------------------


class NbestBuilder:
    """Collects ``(utt, rank, text, streams)`` records from an importer and checks them.

    Records of one utterance must arrive together unless ``regroup=True`` (formats whose
    files are not grouped by utterance). Without regrouping, each utterance goes into the
    columnar arrays as soon as the next one starts, so importing millions of hypotheses costs
    little more memory than the set itself. Every problem is recorded with the file and line
    given in ``where``; :meth:`build` raises :class:`InvalidSetError` listing all of them.
    """

    def __init__(self, stream_names: Iterable[str] = ("score",), regroup: bool = False):
        self.stream_names = list(stream_names)
        self.regroup = regroup
        self.problems: list[InputError] = []
        self._first_seen: dict[str, tuple | None] = {}  # utt -> where of its first record
        self._pending: dict[str, list[tuple[int, bytes, tuple[float, ...], tuple | None]]] = {}
        self._last: str | None = None
        self._utt_ids: list[str] = []
        self._offsets = array("q", [0])
        self._ranks = array("i")
        self._texts = TextColumnBuilder()
        self._cols = [array("d") for _ in self.stream_names]

    def problem(self, where: tuple | None, message: str) -> None:
        path, line = where if where else (None, None)
        self.problems.append(InputError(path, line, message))

    def add(self, utt: str, rank: int, text: str | list[str], scores: dict[str, float],
            where: tuple | None = None) -> None:
        if isinstance(text, list):
            text = " ".join(t for t in text if t)
        if not utt or any(c in utt for c in " \t\n\r\x0b\x0c"):
            self.problem(where, f"invalid utterance id {utt!r} (empty or containing whitespace)")
            return
        if rank < 1:
            self.problem(where, f"rank {rank} of {utt} is not 1-based")
            return
        if rank > MAX_RANK:
            self.problem(where, f"rank {rank} of {utt} is out of range (at most {MAX_RANK})")
            return
        missing = [s for s in self.stream_names if s not in scores]
        if missing:
            self.problem(where, f"{utt}-{rank}: no value for {', '.join(missing)}")
            return
        try:
            vals = tuple(float(scores[s]) for s in self.stream_names)
        except (TypeError, ValueError, OverflowError) as e:  # OverflowError: an int beyond float range
            self.problem(where, f"{utt}-{rank}: non-numeric score ({e})")
            return
        if utt != self._last:
            if utt in self._first_seen and not self.regroup:
                first = self._first_seen[utt]
                at = f" (first seen at {first[0]}:{first[1]})" if first else ""
                self.problem(where, f"entries of utterance {utt} are not contiguous{at}")
                return
            if not self.regroup and self._last is not None:
                self._flush(self._last)
            if utt not in self._first_seen:
                self._first_seen[utt] = where
                self._pending[utt] = []
            self._last = utt
        self._pending[utt].append((rank, join_tokens(text.encode("utf-8")), vals, where))

    def _flush(self, utt: str) -> None:
        """Check one utterance's ranks and append it to the columns."""
        entries = self._pending.pop(utt)
        seen: dict[int, tuple | None] = {}
        for rank, _, _, where in entries:
            if rank in seen:
                w0 = seen[rank]
                at = f" (also at {w0[0]}:{w0[1]})" if w0 else ""
                self.problem(where, f"duplicate key {utt}-{rank}{at}")
            seen[rank] = where
        n = len(entries)
        if len(seen) == n and set(seen) != set(range(1, n + 1)):
            self.problem(entries[0][3], f"ranks of {utt} have gaps: missing {missing_ranks(seen)}")
        if self.problems:  # the set will not be built: stop accumulating data
            return
        self._utt_ids.append(utt)
        for rank, text, vals, _ in entries:
            self._ranks.append(rank)
            self._texts.append(text)
            for c, v in zip(self._cols, vals, strict=True):
                c.append(v)
        self._offsets.append(len(self._ranks))

    @property
    def num_hyps(self) -> int:
        """Hypotheses accepted so far."""
        return len(self._ranks) + sum(len(e) for e in self._pending.values())

    def build(self, refs: dict[str, str] | None = None, meta: dict | None = None) -> NbestSet:
        for utt in list(self._pending):
            self._flush(utt)
        if self.problems:
            raise InvalidSetError(self.problems)
        nbs = NbestSet(
            utt_ids=self._utt_ids,
            offsets=np.frombuffer(self._offsets, dtype=np.int64).copy(),
            ranks=np.frombuffer(self._ranks, dtype=np.int32).copy() if self._ranks else np.zeros(0, np.int32),
            texts=self._texts.build(),
            streams={s: np.frombuffer(c, dtype=np.float64).copy() if c else np.zeros(0)
                     for s, c in zip(self.stream_names, self._cols, strict=True)},
            refs=refs,
            meta=dict(meta or {}),
        )
        nbs.check()
        return nbs


# --------------------------------------------------------------------------------------------
# Reading and writing dataset directories
# --------------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    """What loading a set found: errors (fatal), warnings, and counts."""

    errors: list[InputError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _read_nbest_text(path: Path, rep: LoadReport):
    utt_index: dict[bytes, int] = {}
    utt_ids: list[str] = []
    offsets = array("q", [0])
    ranks = array("i")
    texts = TextColumnBuilder()
    cur: bytes | None = None
    cur_ranks: dict[int, int] = {}
    cur_line = 0

    def finish() -> None:
        n = len(cur_ranks)
        if n and set(cur_ranks) != set(range(1, n + 1)):
            rep.errors.append(InputError(path, cur_line, f"ranks of {utt_ids[-1]} have gaps: missing {missing_ranks(cur_ranks)}"))

    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        utt, dash, r = key.rpartition(b"-")
        if not dash or not utt or not r.isdigit() or r.startswith(b"0"):
            rep.errors.append(InputError(path, lineno, f"key {key.decode('utf-8', 'replace')!r} is not '<utt>-<k>' with a 1-based rank k"))
            continue
        k = int(r) if len(r) <= len(str(MAX_RANK)) else MAX_RANK + 1
        if k > MAX_RANK:
            rep.errors.append(InputError(path, lineno, f"key {key.decode('utf-8', 'replace')!r}: rank out of range "
                                         f"(at most {MAX_RANK})"))
            continue
        if utt != cur:
            if cur is not None:
                finish()
            if utt in utt_index:
                rep.errors.append(InputError(path, lineno, f"entries of utterance {utt.decode('utf-8', 'replace')} are not contiguous"))
                continue
            try:
                uid = decode(utt, path, lineno)
            except InputError as e:
                rep.errors.append(e)
                continue
            utt_index[utt] = len(utt_ids)
            utt_ids.append(uid)
            if cur is not None:
                offsets.append(len(ranks))
            cur, cur_ranks, cur_line = utt, {}, lineno
        if k in cur_ranks:
            rep.errors.append(InputError(path, lineno, f"duplicate key {key.decode('utf-8', 'replace')} (also at line {cur_ranks[k]})"))
            continue
        text = join_tokens(rest)
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as e:
            rep.errors.append(InputError(path, lineno, f"invalid UTF-8 ({e.reason} at byte {e.start} of the text)"))
        cur_ranks[k] = lineno
        ranks.append(k)
        texts.append(text)
    if cur is not None:
        finish()
        offsets.append(len(ranks))
    return (
        utt_index,
        utt_ids,
        np.frombuffer(offsets, dtype=np.int64).copy(),
        np.frombuffer(ranks, dtype=np.int32).copy() if ranks else np.zeros(0, np.int32),
        texts.build(),
    )


def missing_ranks(ranks) -> list[int]:
    """The first ten ranks missing from 1..max(ranks), for ``ranks`` (a set, dict or sorted list of
    distinct ranks >= 1): they lie below len(ranks) + 11, so no range up to a huge rank is built."""
    present = set(ranks)
    return [k for k in range(1, min(max(present), len(present) + 10) + 1) if k not in present][:10]


def _rank_positions(offsets: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``pos[offsets[u] + k - 1]`` = index of the hypothesis of utterance ``u`` with rank ``k``."""
    counts = np.diff(offsets)
    starts = np.repeat(offsets[:-1], counts)
    pos = np.full(len(ranks), -1, dtype=np.int64)
    ok = (ranks >= 1) & (ranks <= np.repeat(counts, counts))
    pos[(starts + ranks - 1)[ok]] = np.arange(len(ranks))[ok]
    return pos


def _read_stream_in_order(path: Path, utt_bytes: list[bytes], utt_of: np.ndarray, ranks: np.ndarray) -> np.ndarray | None:
    """Fast path: a stream whose lines hold exactly the set's keys in the set's order.

    Checks every key (by value, not by position) chunk by chunk; returns ``None`` at the first
    deviation, so that the general reader can locate and report it.
    """
    n = len(ranks)
    out = np.empty(n, dtype=np.float64)
    pos = 0
    try:
        with open_binary(path) as f:
            while True:
                lines = f.readlines(1 << 24)
                if not lines:
                    break
                m = len(lines)
                chunk = b"".join(lines)
                if pos + m > n or b"\r" in chunk:
                    return None
                toks = chunk.split()
                if len(toks) != 2 * m:
                    return None
                expect = [utt_bytes[u] + b"-%d" % r
                          for u, r in zip(utt_of[pos:pos + m].tolist(), ranks[pos:pos + m].tolist(), strict=True)]
                if toks[0::2] != expect:
                    return None
                vals = toks[1::2]
                if b"_" in b"".join(vals):  # numpy would accept '1_000'; Kaldi and parse_float do not
                    return None
                try:
                    out[pos:pos + m] = np.array(vals).astype(np.float64)
                except ValueError:  # Kaldi's BadNumber, or a non-numeric value (reported by the general path)
                    try:
                        out[pos:pos + m] = [parse_float(v) for v in vals]
                    except ValueError:
                        return None
                pos += m
    except GZIP_ERRORS:  # a damaged .gz: the general reader reports it
        return None
    return out if pos == n else None


def read_stream(path: Path, nbs_index: tuple, n_hyps: int, rep: LoadReport) -> np.ndarray:
    """Read a ``key float`` stream and join it to the set by key (never by line position)."""
    utt_index, offsets, rank_pos, utt_ids = nbs_index
    us, rs, lines, vals = array("q"), array("q"), array("q"), array("d")
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        utt, dash, r = key.rpartition(b"-")
        u = utt_index.get(utt) if dash else None
        if u is None or not r.isdigit() or len(r) > len(str(MAX_RANK)):  # (a longer rank is in no set)
            rep.errors.append(InputError(path, lineno, f"key {key.decode('utf-8', 'replace')!r} is not in nbest/text"))
            continue
        fields = rest.split()
        if len(fields) != 1:
            rep.errors.append(InputError(path, lineno, f"expected one value after the key, got {len(fields)}"))
            continue
        try:
            v = parse_float(fields[0])
        except ValueError:
            rep.errors.append(InputError(path, lineno, f"non-numeric value {fields[0].decode('utf-8', 'replace')!r}"))
            continue
        us.append(u)
        rs.append(int(r))
        lines.append(lineno)
        vals.append(v)
    u = np.frombuffer(us, dtype=np.int64) if us else np.zeros(0, np.int64)
    r = np.frombuffer(rs, dtype=np.int64) if rs else np.zeros(0, np.int64)
    ln = np.frombuffer(lines, dtype=np.int64) if lines else np.zeros(0, np.int64)
    v = np.frombuffer(vals, dtype=np.float64) if vals else np.zeros(0, np.float64)
    n_u = offsets[u + 1] - offsets[u]
    bad = (r < 1) | (r > n_u)
    for j in np.flatnonzero(bad)[:MAX_LISTED]:
        rep.errors.append(InputError(path, int(ln[j]), f"key {utt_ids[u[j]]}-{r[j]} is not in nbest/text"))
    good = ~bad
    idx = rank_pos[offsets[u[good]] + r[good] - 1]
    ln_good = ln[good]
    out = np.full(n_hyps, np.nan)
    seen = np.full(n_hyps, -1, dtype=np.int64)
    counts = np.bincount(idx, minlength=n_hyps)
    if np.any(counts > 1):
        order = np.argsort(ln_good, kind="stable")
        reported = 0
        for j in order:
            h = idx[j]
            if seen[h] >= 0 and reported < MAX_LISTED:
                rep.errors.append(InputError(path, int(ln_good[j]), f"duplicate key (also at line {seen[h]})"))
                reported += 1
            seen[h] = ln_good[j]
    out[idx] = v[good]
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        names = ", ".join(_key_of(utt_ids, offsets, rank_pos, int(h)) for h in missing[:MAX_LISTED])
        rep.errors.append(InputError(path, None, f"{len(missing)} key(s) of nbest/text missing: {names}"))
    return out


def _key_of(utt_ids, offsets, rank_pos, h: int) -> str:
    """The key of hypothesis ``h`` (its position in rank_pos is offsets[u] + k - 1)."""
    p = int(np.flatnonzero(rank_pos == h)[0])
    u = int(np.searchsorted(offsets, p, side="right")) - 1
    return f"{utt_ids[u]}-{p - int(offsets[u]) + 1}"


def stream_files(setdir: str | Path) -> list[str]:
    """Names of the float streams present in ``<set>/nbest/``."""
    d = Path(setdir) / "nbest"
    return sorted(
        p.name for p in d.iterdir()
        if p.is_file() and p.name not in NON_STREAM_FILES and not p.name.startswith(".")
    )


def inspect_set(setdir: str | Path, streams: Iterable[str] | None = None) -> tuple[NbestSet | None, LoadReport]:
    """Load and validate a set, collecting every problem instead of stopping at the first."""
    setdir = Path(setdir)
    rep = LoadReport()
    text_path = setdir / "nbest" / "text"
    if not text_path.is_file():
        rep.errors.append(InputError(text_path, None, "missing (not a dataset directory?)"))
        return None, rep
    try:
        utt_index, utt_ids, offsets, ranks, texts = _read_nbest_text(text_path, rep)
    except InputError as e:  # CRLF or empty line: reported by iter_lines
        rep.errors.append(e)
        return None, rep
    if not len(ranks):
        rep.errors.append(InputError(text_path, None, "no hypotheses: the set is empty"))
    if rep.errors:  # streams cannot be joined to a broken nbest/text
        return None, rep
    n = len(ranks)
    rank_pos = _rank_positions(offsets, ranks)
    names = stream_files(setdir) if streams is None else list(streams)
    if "score" not in names:
        names = ["score", *names]
    out_streams: dict[str, np.ndarray] = {}
    utt_bytes = [u.encode("utf-8") for u in utt_ids]
    utt_of = np.repeat(np.arange(len(utt_ids), dtype=np.int64), np.diff(offsets))
    for name in names:
        p = setdir / "nbest" / name
        if not p.is_file():
            rep.errors.append(InputError(p, None, "missing stream file"))
            continue
        fast = _read_stream_in_order(p, utt_bytes, utt_of, ranks)
        if fast is not None:
            out_streams[name] = fast
            continue
        try:
            out_streams[name] = read_stream(p, (utt_index, offsets, rank_pos, utt_ids), n, rep)
        except InputError as e:
            rep.errors.append(e)
    meta_path = setdir / "nbest" / "meta.yaml"
    meta, meta_error = read_meta(meta_path)
    if meta_error is not None:
        rep.errors.append(meta_error)
    refs = None
    try:
        ref_path = setdir / references_name(meta, meta_path)
    except InputError as e:
        rep.errors.append(e)
        ref_path = setdir / "text"
    if ref_path.is_file():
        try:
            refs = read_text_dict(ref_path)
        except InputError as e:
            rep.errors.append(e)
    if rep.errors:
        return None, rep
    nbs = NbestSet(utt_ids, offsets, ranks, texts, out_streams, refs, meta)
    _check_refs(nbs, rep, ref_path)
    _check_nonfinite(nbs, rep)
    return nbs, rep


def references_name(meta: dict, meta_path: Path | None = None) -> str:
    """The file name of a set's references inside ``<set>``: meta.yaml's ``references``, else ``text``."""
    name = meta.get("references", "text") if isinstance(meta, dict) else "text"
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith(".") or name == "nbest":
        raise InputError(meta_path or Path("meta.yaml"), None,
                         f"'references' must be a file name inside the set directory, got {name!r}")
    return name


def references_path(setdir: str | Path) -> Path:
    """Where a set's references are (or would be): ``<set>/text`` unless meta.yaml names another file."""
    setdir = Path(setdir)
    meta_path = setdir / "nbest" / "meta.yaml"
    meta, _ = read_meta(meta_path)  # an unreadable meta.yaml is reported by inspect_set
    try:
        return setdir / references_name(meta, meta_path)
    except InputError:
        return setdir / "text"


def read_meta(meta_path: Path) -> tuple[dict, InputError | None]:
    """A set's meta.yaml ({} when absent), and the error that made it unreadable, if any."""
    from rescore.config import read_yaml

    if not meta_path.is_file():
        return {}, None
    try:
        data = read_yaml(meta_path, "meta.yaml")
    except InputError as e:  # unreadable, invalid UTF-8 or YAML, a constructor's ValueError, deep nesting
        return {}, e
    if data is not None and not isinstance(data, dict):
        return {}, InputError(meta_path, None, f"expected a mapping of keys, found a {type(data).__name__}")
    return data or {}, None


def _check_refs(nbs: NbestSet, rep: LoadReport, ref_path: Path) -> None:
    if nbs.refs is None:
        return
    no_ref = [u for u in nbs.utt_ids if u not in nbs.refs]
    if no_ref:
        rep.warnings.append(f"{ref_path}: {len(no_ref)} utterance(s) with hypotheses have no reference: {', '.join(no_ref[:MAX_LISTED])}")
    ids = set(nbs.utt_ids)
    no_hyp = [u for u in nbs.refs if u not in ids]
    if no_hyp:
        rep.warnings.append(f"{ref_path}: {len(no_hyp)} reference(s) have no hypotheses (scored as deletions in --mode all): {', '.join(no_hyp[:MAX_LISTED])}")


def nonfinite_summary(nbs: NbestSet) -> dict[str, dict]:
    """``{stream: {'count': n, 'keys': [...]}}`` for streams holding Infinity/BadNumber."""
    out = {}
    for name, v in nbs.streams.items():
        bad = np.flatnonzero(~np.isfinite(v))
        if name == "errors" and nbs.refs is not None:
            continue  # NaN errors mark hypotheses without a reference, reported separately
        if len(bad):
            utt_of = np.searchsorted(nbs.offsets, bad, side="right") - 1
            keys = [f"{nbs.utt_ids[u]}-{int(nbs.ranks[i])}" for u, i in zip(utt_of[:MAX_LISTED], bad[:MAX_LISTED], strict=True)]
            out[name] = {"count": int(len(bad)), "keys": keys}
    return out


def _check_nonfinite(nbs: NbestSet, rep: LoadReport) -> None:
    for name, info in nonfinite_summary(nbs).items():
        rep.warnings.append(
            f"stream {name}: {info['count']} non-finite value(s) (kept, ranked last): {', '.join(info['keys'])}"
        )


def load_set(setdir: str | Path, streams: Iterable[str] | None = None) -> NbestSet:
    """Load a dataset directory; raises :class:`InvalidSetError` listing every problem."""
    nbs, rep = inspect_set(setdir, streams)
    if rep.errors:
        raise InvalidSetError(rep.errors, what=str(setdir))
    for w in rep.warnings:
        log.warning(w)
    assert nbs is not None
    return nbs


def write_scores(path: str | Path, nbs: NbestSet, values: np.ndarray) -> None:
    """Atomically write a per-hypothesis ``<utt>-<k> <float>`` archive of ``nbs`` (Kaldi-readable)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (nbs.num_hyps,):
        raise ValueError(f"{path}: {values.shape} values for {nbs.num_hyps} hypotheses")
    write_lines(path, (f"{k} {format_float(v)}" for k, v in zip(nbs.keys(), values.tolist(), strict=True)))


def read_scores(path: str | Path, nbs: NbestSet) -> np.ndarray:
    """Read a per-hypothesis archive and join it to ``nbs`` by key.

    Every key of the set must appear exactly once and no other key may; otherwise
    :class:`InvalidSetError` lists each problem with its line.
    """
    from rescore.exceptions import require_file

    path = require_file(path, "score archive")
    utt_bytes = [u.encode("utf-8") for u in nbs.utt_ids]
    fast = _read_stream_in_order(path, utt_bytes, nbs.utt_index(), nbs.ranks)
    if fast is not None:
        return fast
    rep = LoadReport()
    index = ({u: i for i, u in enumerate(utt_bytes)}, nbs.offsets, _rank_positions(nbs.offsets, nbs.ranks),
             nbs.utt_ids)
    try:
        values = read_stream(path, index, nbs.num_hyps, rep)
    except InputError as e:
        rep.errors.append(e)
    if rep.errors:
        raise InvalidSetError(rep.errors, what=str(path))
    return values


def write_stream(setdir: str | Path, name: str, nbs: NbestSet, values: np.ndarray) -> None:
    """Write one float stream of ``nbs`` into ``<set>/nbest/<name>``, keyed like the set."""
    if name in NON_STREAM_FILES or name.startswith(".") or "/" in name or not name:
        raise ValueError(f"invalid stream name {name!r}")
    write_scores(Path(setdir) / "nbest" / name, nbs, values)


def build_meta(nbs: NbestSet) -> dict:
    """The set's meta.yaml content: what the importer recorded plus conventions and counts."""
    meta = dict(nbs.meta)
    meta["format_version"] = META_VERSION
    streams = dict(meta.get("streams") or {})
    for name in nbs.streams:
        info = dict(streams.get(name) or {})
        conv, desc = RESERVED_STREAMS.get(name, ("higher", ""))
        info.setdefault("better", conv)
        if desc:
            info.setdefault("description", desc)
        streams[name] = info
    meta["streams"] = {k: streams[k] for k in nbs.streams}
    counts = nbs.counts()
    n_tok = nbs.texts.num_tokens()
    c = {
        "utts": nbs.num_utts,
        "hyps": nbs.num_hyps,
        "max_hyps_per_utt": int(counts.max()) if len(counts) else 0,
        "empty_hyps": int((n_tok == 0).sum()),
    }
    if nbs.refs is not None:
        ids = set(nbs.utt_ids)
        c["refs"] = len(nbs.refs)
        c["utts_without_ref"] = sum(1 for u in nbs.utt_ids if u not in nbs.refs)
        c["refs_without_hyps"] = sum(1 for u in nbs.refs if u not in ids)
    meta["counts"] = c
    nonfinite = nonfinite_summary(nbs)
    if nonfinite:
        meta["nonfinite"] = nonfinite
    else:
        meta.pop("nonfinite", None)
    return meta


def write_meta(setdir: str | Path, meta: dict) -> None:
    with atomic_open(Path(setdir) / "nbest" / "meta.yaml") as f:
        yaml.safe_dump(meta, f, sort_keys=False, allow_unicode=True)


def save_set(nbs: NbestSet, setdir: str | Path, refs_name: str = "text") -> dict:
    """Write ``nbs`` as a canonical dataset directory; returns the meta written.

    The references go to ``<set>/<refs_name>`` (recorded in meta.yaml as ``references`` when it is
    not ``text``). Every file is written atomically; streams of the directory that ``nbs`` does not
    hold are removed, so the directory never mixes two sets. Counts are checked after writing.
    """
    nbs.check()
    setdir = Path(setdir)
    refs_name = references_name({"references": refs_name})
    (setdir / "nbest").mkdir(parents=True, exist_ok=True)
    keep = set(nbs.streams)
    for old in stream_files(setdir):
        if old not in keep:
            (setdir / "nbest" / old).unlink()
    texts = iter(nbs.texts)
    written = 0

    def text_lines():
        nonlocal written
        for k in nbs.keys():
            t = next(texts)
            written += 1
            yield f"{k} {t}" if t else k

    write_lines(setdir / "nbest" / "text", text_lines())
    if written != nbs.num_hyps:
        raise RuntimeError(f"wrote {written} hypotheses of {nbs.num_hyps}")
    for name, values in nbs.streams.items():
        write_stream(setdir, name, nbs, values)
    if nbs.refs is not None:
        write_lines(setdir / refs_name, (f"{u} {t}" if t else u for u, t in nbs.refs.items()))
    elif (setdir / refs_name).exists():
        (setdir / refs_name).unlink()
    meta = build_meta(nbs)
    if refs_name == "text":
        meta.pop("references", None)
    else:
        meta["references"] = refs_name
    nbs.meta = meta
    write_meta(setdir, meta)
    return meta


def is_finite_all(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)))


def describe(nbs: NbestSet) -> str:
    """One log line: utterances, hypotheses, mean and max N."""
    counts = nbs.counts()
    mean = counts.mean() if len(counts) else math.nan
    return (f"{nbs.num_utts} utterances, {nbs.num_hyps} hypotheses "
            f"(mean N {mean:.1f}, max N {int(counts.max()) if len(counts) else 0})")
