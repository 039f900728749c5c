"""Import HTK Standard Lattice Format (SLF) lattices as n-best lists (HTK, pocketsphinx, Julius).

Import only (there is no ``write``)::

    read(src, refs=None, nbest=100, lmscale=None, wdpenalty=None, pattern=None,
         fillers=None, utt_id="auto") -> NbestSet

``src``
    one lattice file, or a directory of them: by default every ``*.lat``, ``*.slf``, ``*.lat.gz``
    and ``*.slf.gz`` directly in ``src``, read in sorted name order. One lattice (one utterance)
    per file.
``refs``
    ``{utt: reference}`` attached to the set.
``nbest`` (int, default 100)
    the number of best **distinct word sequences** extracted per lattice (fewer when the lattice
    has fewer).
``lmscale`` (float, default 1.0), ``wdpenalty`` (float, natural log, default 0.0)
    used for a lattice whose header has no ``lmscale=`` / ``wdpenalty=``; a header value always
    wins (the values used are recorded per combination in ``meta['source']['scales']``).
``pattern``
    directories only: a glob relative to ``src`` selecting the files (e.g. ``"**/*.lat.gz"``).
``fillers``
    the words that are not part of a hypothesis, besides the structural markers
    :data:`MARKERS` (``!NULL``, ``<s>``, ``</s>``, ``!SENT_START``, ``!SENT_END``, always removed).
    ``None`` selects :data:`DEFAULT_FILLERS`: ``<sil>``, ``[NOISE]``, ``[SPEECH]``, ``SENT-START``,
    ``SENT-END`` and any word of the form ``++...++`` (pocketsphinx/Sphinx noise dictionaries, HTK
    tutorial sentence words). Otherwise a list of words, or one string of whitespace-separated
    words, replacing the default (``""`` keeps every word except the markers); ``*`` in an entry
    matches any characters (``"++*++"``), everything else matches literally.
``utt_id``
    ``"auto"`` (default): the ``UTTERANCE=`` header value when present, else the file name
    without ``.gz`` and without its ``.lat`` / ``.slf`` suffix; ``"file"``: always the file name.

SLF as read here. Lines are ``name=value`` fields separated by white space; ``#`` starts a
comment line. A line whose first field is ``I=`` defines a node (``W=`` word, ``t=`` time,
``v=`` pronunciation variant), ``J=`` a link (``S=`` start node, ``E=`` end node, ``W=`` word,
``a=`` acoustic log-likelihood, ``l=`` LM log-likelihood, ``r=`` pronunciation log-probability);
any other line is header (``VERSION=``, ``UTTERANCE=``, ``base=``, ``lmscale=``, ``wdpenalty=``,
``acscale=``, ``prscale=``, ``start=``, ``end=``, ``N=``/``NODES=``, ``L=``/``LINKS=``). Long field names
(``WORD=``, ``START=``, ``acoustic=``, ``language=`` ...) are accepted. Values may be quoted with
``"`` or ``'`` (a value that opens a quote and does not close it before white space, such as
pocketsphinx's unescaped ``W='em``, is read as it stands, quote included); a backslash escapes
the next character, and ``\\ooo`` (three octal digits) is a
byte, as HTK writes non-ASCII words; words are then decoded as UTF-8. Words may sit on nodes, on
links, or both: the words of a path are, in order, the start node's word, then for each link its
own word and the word of the node it enters (HTK's convention that a node's word ends there).
Known fields that do not enter the score are ignored: ``t``, ``v``, ``d``, ``s``, ``n`` and
``p`` (pocketsphinx's link posterior, a marginal that does not add up along a path). Unknown
fields are counted, logged and listed in ``meta['source']['ignored_fields']``.

Scores. Log-likelihoods in the file are in base ``base=`` (natural log when absent or
``base=2.718...``) and are converted to natural log; a header ``wdpenalty`` is taken to be in
the same base. With A, L, R the path sums of ``a``, ``l``, ``r`` (natural log, higher is better)
and W the number of hypothesis words (fillers and markers are not words)::

    score = acscale * A + lmscale * L + prscale * R + wdpenalty * W

``acscale`` and ``prscale`` come from the header (default 1). The N best distinct word
sequences are found by an exact best-first (A*) search over the lattice's DAG with the best
completion score of each node as heuristic; paths giving the same word sequence (e.g. through
different fillers or alignments) are merged, keeping the best. Ties keep file order. Non-finite
scores are kept in the streams (the path is then ranked last). The search is the project's one
N-best search, :func:`rescore.data.lattice.best_distinct_sequences` (as for Kaldi lattices), on negated
weights, carrying the separately summed log-likelihoods (a, l, r), word and filler counts per path.

Output: keys ``<utt>-<k>``, ``k = 1..N`` in best-first order. Streams ``score`` (above),
``ac_score`` (A) and ``lm_score`` (L), plus ``pr_score`` (R) when some lattice has ``r=``; all
log-likelihoods, higher is better. pocketsphinx 5 lattices (``write_htk``) carry ``a=`` and
``p=`` but no ``l=``: their ``lm_score`` is 0 and the first pass is acoustic (+ penalty) only.

Errors (:class:`InputError` naming file and line): a malformed field, a non-numeric value,
a node or link defined twice, a link to an undefined node, ``start=``/``end=`` naming an
undefined node (or, without them, not exactly one node without incoming / outgoing links),
a cycle (the link closing it), no path from start to end, node/link counts differing from
``N=``/``L=``, a base that is not a positive number other than 1, sub-lattices (``SUBLAT=``,
node ``L=``) and more than one lattice per file (not supported), invalid UTF-8 in a word, and a
word containing white space (it could not be one token).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rescore.data.archive import GZIP_ERRORS, MAX_DIGITS, decode, gzip_error, open_binary, parse_float
from rescore.data.lattice import best_distinct_sequences
from rescore.data.nbest import NbestBuilder, NbestSet, describe
from rescore.exceptions import InputError
from rescore.log import get_logger

log = get_logger(__name__)

FORMAT = "slf"
DEFAULT_NBEST = 100
SUFFIXES = (".lat", ".slf", ".lat.gz", ".slf.gz")

#: Structural words: never part of a hypothesis.
MARKERS = frozenset({"!NULL", "<s>", "</s>", "!SENT_START", "!SENT_END"})
#: Default filler words (``*`` matches any characters).
DEFAULT_FILLERS = ("<sil>", "[NOISE]", "[SPEECH]", "SENT-START", "SENT-END", "++*++")

HEADER_ALIASES = {"V": "VERSION", "U": "UTTERANCE", "S": "SUBLAT", "N": "NODES", "L": "LINKS"}
HEADER_FLOATS = ("base", "lmscale", "wdpenalty", "acscale", "prscale", "amscale", "tscale")
HEADER_INTS = ("start", "end", "NODES", "LINKS")
HEADER_STRINGS = ("VERSION", "UTTERANCE", "lmname", "lmin", "lmout", "ndefs", "vocab", "hmms")
NODE_ALIASES = {"time": "t", "WORD": "W", "var": "v", "div": "d"}
NODE_IGNORED = ("t", "v", "d", "s")
LINK_ALIASES = {"START": "S", "END": "E", "WORD": "W", "var": "v", "div": "d", "acoustic": "a",
                "ngram": "n", "language": "l"}
LINK_IGNORED = ("v", "d", "n", "p")
LINK_SCORES = ("a", "l", "r")

#: Search weights for non-finite scores, so that the search never meets NaN (the path ranks last).
_FLOOR = -1e300

_WS = b" \t\r\n\x0b\x0c"
_OCTAL = b"01234567"

STREAM_DESCRIPTIONS = {
    "score": "SLF first pass acscale*A + lmscale*L + prscale*R + wdpenalty*words (A, L, R: path sums of "
             "a=, l=, r=), natural log, higher is better",
    "ac_score": "acoustic log-likelihood, path sum of the links' a= (natural log, unscaled), higher is better",
    "lm_score": "LM log-probability, path sum of the links' l= (natural log, unscaled), higher is better",
    "pr_score": "pronunciation log-probability, path sum of the links' r= (natural log), higher is better",
}


# --------------------------------------------------------------------------------------------
# Reading a set
# --------------------------------------------------------------------------------------------


def read(src: str | Path, refs: dict[str, str] | None = None, nbest: int = DEFAULT_NBEST,
         lmscale: float | None = None, wdpenalty: float | None = None, pattern: str | None = None,
         fillers: str | Iterable[str] | None = None, utt_id: str = "auto") -> NbestSet:
    """Read SLF lattices (a file or a directory) and extract each one's N best word sequences."""
    src = Path(src)
    nbest = int(nbest)
    if nbest < 1:
        raise ValueError(f"nbest must be >= 1, got {nbest}")
    if utt_id not in ("auto", "file"):
        raise ValueError(f"utt_id must be 'auto' or 'file', got {utt_id!r}")
    is_filler = FillerSet(fillers)
    files = input_files(src, pattern)
    results = []
    ignored: Counter[str] = Counter()
    for path in files:
        lat = parse_slf(path)
        ignored.update(lat.ignored)
        hyps, used = lattice_nbest(lat, nbest, is_filler, lmscale, wdpenalty)
        utt = lat.utterance if utt_id == "auto" and lat.utterance is not None else file_stem(path)
        results.append((utt, (lat.path, lat.utt_line), lat.has_r, hyps, used))  # not the lattice: memory
    with_pr = any(r[2] for r in results)
    streams = ["score", "ac_score", "lm_score"] + ["pr_score"] * with_pr
    builder = NbestBuilder(streams)
    scales: Counter[tuple] = Counter()
    removed = n_hyps = 0
    for utt, where, _, hyps, used in results:
        scales[used] += 1
        for k, h in enumerate(hyps, 1):
            values = {"score": h.score, "ac_score": h.ac, "lm_score": h.lm}
            if with_pr:
                values["pr_score"] = h.pr
            builder.add(utt, k, list(h.words), values, where=where)
            removed += h.removed
            n_hyps += 1
    if ignored:
        log.warning("%s: ignored unknown SLF field(s) %s", src,
                    ", ".join(f"{k} ({v} times)" for k, v in sorted(ignored.items())))
    meta = {
        "source": {
            "format": FORMAT,
            "path": str(src),
            "options": {"nbest": nbest, "lmscale": lmscale, "wdpenalty": wdpenalty, "pattern": pattern,
                        "fillers": None if fillers is None else is_filler.entries, "utt_id": utt_id},
            "files": len(files),
            "markers": sorted(MARKERS),
            "fillers": is_filler.entries,
            "removed_tokens": removed,
            "scales": [dict(zip(("acscale", "lmscale", "prscale", "wdpenalty", "from_header"), key, strict=True),
                            lattices=n) for key, n in sorted(scales.items(), key=lambda kv: -kv[1])],
            "ignored_fields": dict(sorted(ignored.items())),
        },
        "streams": {s: {"better": "higher", "description": STREAM_DESCRIPTIONS[s]} for s in streams},
    }
    nbs = builder.build(refs=refs, meta=meta)
    if nbs.num_utts != len(files) or nbs.num_hyps != n_hyps:
        raise RuntimeError(f"read {len(files)} lattices, {n_hyps} paths but built "
                           f"{nbs.num_utts} utterances, {nbs.num_hyps} hypotheses")
    log.info("read %s from %s (%d lattice file(s), %d filler/marker tokens removed)",
             describe(nbs), src, len(files), removed)
    return nbs


def input_files(src: Path, pattern: str | None = None) -> list[Path]:
    """The lattice files: ``src`` itself, or the matching files of directory ``src`` sorted by name."""
    if not src.exists():
        raise InputError(src, None, "no such file or directory")
    if not src.is_dir():
        if pattern is not None:
            raise InputError(src, None, "option pattern applies to a directory; src is a file")
        return [src]
    if pattern is None:
        files = [p for p in src.iterdir() if p.is_file() and p.name.endswith(SUFFIXES)]
    else:
        files = [p for p in src.glob(pattern) if p.is_file()]
    if not files:
        what = f"matching {pattern!r}" if pattern else f"named *{', *'.join(SUFFIXES)}"
        raise InputError(src, None, f"no lattice files {what}")
    return sorted(files, key=lambda p: p.relative_to(src).as_posix())


def file_stem(path: str | Path) -> str:
    """``a/utt1.lat.gz`` -> ``utt1``: the name without ``.gz`` and without ``.lat`` / ``.slf``."""
    name = Path(path).name
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in (".lat", ".slf"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class FillerSet:
    """Decides which words are not hypothesis words: :data:`MARKERS` plus filler entries."""

    def __init__(self, fillers: str | Iterable[str] | None = None):
        if fillers is None:
            entries = list(DEFAULT_FILLERS)
        elif isinstance(fillers, str):
            entries = fillers.split()
        else:
            entries = [str(f) for f in fillers]
        self.entries = entries
        self._exact = {e for e in entries if "*" not in e}
        globs = [e for e in entries if "*" in e]
        self._glob = (re.compile("|".join(re.escape(g).replace(r"\*", ".*") for g in globs), re.S)
                      if globs else None)

    def __call__(self, word: str) -> bool:
        if word in MARKERS or word in self._exact:
            return True
        return self._glob is not None and self._glob.fullmatch(word) is not None


# --------------------------------------------------------------------------------------------
# Parsing one lattice
# --------------------------------------------------------------------------------------------


@dataclass
class SlfNode:
    id: int
    word: str | None
    line: int


@dataclass
class SlfLink:
    id: int | None
    start: int  # node index (not id)
    end: int
    word: str | None
    a: float  # natural log
    l: float  # noqa: E741 (the SLF field name)
    r: float
    line: int


@dataclass
class SlfLattice:
    """One parsed lattice; scores already converted to natural log."""

    path: str
    utterance: str | None = None
    utt_line: int = 1
    nodes: list[SlfNode] = field(default_factory=list)
    links: list[SlfLink] = field(default_factory=list)
    start: int = 0  # node index
    end: int = 0
    lmscale: float | None = None
    wdpenalty: float | None = None  # natural log
    acscale: float = 1.0
    prscale: float = 1.0
    base: float | None = None
    has_r: bool = False
    scale: float = 1.0  # ln(base): multiplies the file's scores
    order: list[int] = field(default_factory=list)  # node indices, topologically sorted
    ignored: Counter = field(default_factory=Counter)


def parse_slf(path: str | Path) -> SlfLattice:
    """Parse one SLF file; every structural problem raises :class:`InputError` with file:line."""
    path = str(path)
    lat = SlfLattice(path=path)
    header: dict[str, tuple[object, int]] = {}
    raw_nodes: list[tuple[int, dict[str, bytes]]] = []
    raw_links: list[tuple[int, dict[str, bytes]]] = []
    ended_at = None
    for lineno, line in _lines(path):
        body = line.strip(_WS)
        if not body or body.startswith(b"#"):
            continue
        if ended_at is not None:
            raise InputError(path, lineno, f"content after the end of the lattice ('.' at line {ended_at}): "
                                           "one lattice per file, sub-lattices are not supported")
        if body == b".":
            ended_at = lineno
            continue
        fields = split_fields(body, path, lineno)
        first = fields[0][0]
        if first == "I":
            raw_nodes.append((lineno, dict(fields)))
        elif first == "J":
            raw_links.append((lineno, dict(fields)))
        else:
            if raw_links or raw_nodes:
                raise InputError(path, lineno, f"header field {first}= after node or link definitions")
            _header_fields(fields, header, lat, path, lineno)
    _apply_header(lat, header, path)
    ids = _nodes(lat, raw_nodes, path)
    _links(lat, raw_links, ids, path)
    _counts(lat, header, path)
    _start_end(lat, header, ids, path)
    return lat


def _lines(path: str):
    """Yield ``(line_number, bytes)`` of a (possibly gzipped) file; a CR before LF is dropped."""
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                yield lineno, raw.rstrip(b"\r\n")
    except GZIP_ERRORS as e:
        raise gzip_error(path, e) from None


def split_fields(line: bytes, path: str, lineno: int) -> list[tuple[str, bytes]]:
    """Split ``name=value`` fields; values may be quoted; backslash escapes as HTK writes them."""
    out: list[tuple[str, bytes]] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _WS:
            i += 1
        if i >= n:
            return out
        j = i
        while j < n and line[j] != 0x3D and line[j] not in _WS:  # '='
            j += 1
        if j >= n or line[j] != 0x3D or j == i:
            token = line[i:j or n].decode("utf-8", "replace")
            raise InputError(path, lineno, f"expected name=value, got {token!r}")
        try:
            name = line[i:j].decode("ascii")
        except UnicodeDecodeError:
            raise InputError(path, lineno, "non-ASCII field name") from None
        i = j + 1
        quoted = _quoted(line, i, path, lineno) if i < n and line[i] in b"\"'" else None
        if quoted is not None:
            value, i = quoted
        else:
            value = bytearray()
            while i < n and line[i] not in _WS:
                i = _char(line, i, value, path, lineno)
        out.append((name, bytes(value)))


def _quoted(line: bytes, i: int, path: str, lineno: int) -> tuple[bytearray, int] | None:
    """The quoted value starting at ``i`` and the position after it; None when it is not one.

    A value that opens a quote but does not close it before white space or the end of the line
    is a word that starts with a quote character (pocketsphinx writes ``W='em`` unescaped): the
    caller reads it unquoted, quote included.
    """
    quote, n, value = line[i], len(line), bytearray()
    i += 1
    while i < n:
        if line[i] == quote:
            return (value, i + 1) if i + 1 >= n or line[i + 1] in _WS else None
        i = _char(line, i, value, path, lineno)
    return None


def _char(line: bytes, i: int, out: bytearray, path: str, lineno: int) -> int:
    """Append the (possibly escaped) character at ``i`` to ``out``; return the next position."""
    c = line[i]
    if c != 0x5C:  # backslash
        out.append(c)
        return i + 1
    if i + 1 >= len(line):
        raise InputError(path, lineno, "backslash at the end of the line")
    oct3 = line[i + 1:i + 4]
    if len(oct3) == 3 and all(d in _OCTAL for d in oct3):
        v = int(oct3, 8)
        if v > 255:
            raise InputError(path, lineno, f"octal escape \\{oct3.decode()} is not a byte")
        out.append(v)
        return i + 4
    out.append(line[i + 1])
    return i + 2


def _number(value: bytes, name: str, path: str, lineno: int) -> float:
    try:
        return parse_float(value)
    except ValueError:
        raise InputError(path, lineno, f"non-numeric value {value.decode('utf-8', 'replace')!r} "
                                       f"of {name}=") from None


def _integer(value: bytes, name: str, path: str, lineno: int) -> int:
    if not value.isdigit():
        raise InputError(path, lineno, f"{name}= must be a non-negative integer, got "
                                       f"{value.decode('utf-8', 'replace')!r}")
    if len(value) > MAX_DIGITS:
        raise InputError(path, lineno, f"{name}={value[:30].decode()}... ({len(value)} digits) is out of range")
    return int(value)


def _header_fields(fields, header: dict, lat: SlfLattice, path: str, lineno: int) -> None:
    for name, value in fields:
        name = HEADER_ALIASES.get(name, name)
        if name == "SUBLAT":
            raise InputError(path, lineno, "sub-lattices (SUBLAT=) are not supported")
        if name in HEADER_FLOATS:
            header[name] = (_number(value, name, path, lineno), lineno)
        elif name in HEADER_INTS:
            header[name] = (_integer(value, name, path, lineno), lineno)
        elif name in HEADER_STRINGS:
            header[name] = (decode(value, path, lineno), lineno)
        else:
            lat.ignored[f"header {name}"] += 1


def _apply_header(lat: SlfLattice, header: dict, path: str) -> None:
    scale = 1.0
    if "base" in header:
        base, line = header["base"]
        if not (math.isfinite(base) and base > 0 and base != 1):
            raise InputError(path, line, f"base={base!r} is not supported (a log base > 0 and != 1)")
        lat.base = base
        scale = math.log(base)
    lat.scale = scale
    if "UTTERANCE" in header:
        lat.utterance, lat.utt_line = header["UTTERANCE"]
    for name in ("acscale", "prscale"):
        if name in header:
            setattr(lat, name, header[name][0])
    if "lmscale" in header:
        lat.lmscale = header["lmscale"][0]
    if "wdpenalty" in header:
        lat.wdpenalty = header["wdpenalty"][0] * scale


def _word(fields: dict[str, bytes], path: str, lineno: int) -> str | None:
    if "W" not in fields or not fields["W"]:
        return None
    word = decode(fields["W"], path, lineno)
    if any(c in word for c in " \t\n\r\x0b\x0c"):
        raise InputError(path, lineno, f"word {word!r} contains white space")
    return word


def _canon(raw: dict[str, bytes], aliases: dict[str, str]) -> dict[str, bytes]:
    return {aliases.get(k, k): v for k, v in raw.items()}


def _nodes(lat: SlfLattice, raw_nodes, path: str) -> dict[int, int]:
    """Build the nodes; returns ``{node id: index}``."""
    ids: dict[int, int] = {}
    for lineno, raw in raw_nodes:
        f = _canon(raw, NODE_ALIASES)
        nid = _integer(f["I"], "I", path, lineno)
        if nid in ids:
            raise InputError(path, lineno, f"node I={nid} defined twice (first at line {lat.nodes[ids[nid]].line})")
        if "L" in f:
            raise InputError(path, lineno, "sub-lattice nodes (L=) are not supported")
        for name in f:
            if name not in ("I", "W", *NODE_IGNORED):
                lat.ignored[f"node {name}"] += 1
        ids[nid] = len(lat.nodes)
        lat.nodes.append(SlfNode(nid, _word(f, path, lineno), lineno))
    if not lat.nodes:
        raise InputError(path, None, "no nodes (I= lines)")
    return ids


def _links(lat: SlfLattice, raw_links, ids: dict[int, int], path: str) -> None:
    seen: dict[int, int] = {}
    for lineno, raw in raw_links:
        f = _canon(raw, LINK_ALIASES)
        jid = _integer(f["J"], "J", path, lineno)
        if jid in seen:
            raise InputError(path, lineno, f"link J={jid} defined twice (first at line {seen[jid]})")
        seen[jid] = lineno
        ends = []
        for name in ("S", "E"):
            if name not in f:
                raise InputError(path, lineno, f"link J={jid} has no {name}=")
            nid = _integer(f[name], name, path, lineno)
            if nid not in ids:
                raise InputError(path, lineno, f"link J={jid} refers to undefined node {name}={nid}")
            ends.append(ids[nid])
        scores = {}
        for name in LINK_SCORES:
            scores[name] = _number(f[name], name, path, lineno) * lat.scale if name in f else 0.0
        lat.has_r = lat.has_r or "r" in f
        for name in f:
            if name not in ("J", "S", "E", "W", *LINK_SCORES, *LINK_IGNORED):
                lat.ignored[f"link {name}"] += 1
        lat.links.append(SlfLink(jid, ends[0], ends[1], _word(f, path, lineno), scores["a"], scores["l"],
                                 scores["r"], lineno))


def _counts(lat: SlfLattice, header: dict, path: str) -> None:
    for name, have, what in (("NODES", len(lat.nodes), "nodes"), ("LINKS", len(lat.links), "links")):
        if name in header and header[name][0] != have:
            want, line = header[name]
            raise InputError(path, line, f"header says {name[0]}={want} but the file defines {have} {what}")


def _start_end(lat: SlfLattice, header: dict, ids: dict[int, int], path: str) -> None:
    """Set the start and end nodes (header ``start=``/``end=`` or inferred); check the graph is a DAG."""
    has_in = [False] * len(lat.nodes)
    has_out = [False] * len(lat.nodes)
    for link in lat.links:
        has_out[link.start] = True
        has_in[link.end] = True
    for name, flags, what in (("start", has_in, "incoming"), ("end", has_out, "outgoing")):
        if name in header:
            nid, line = header[name]
            if nid not in ids:
                raise InputError(path, line, f"{name} node {name}={nid} is not defined")
            index = ids[nid]
        else:
            candidates = [i for i, f in enumerate(flags) if not f]
            if len(candidates) != 1:
                where = lat.nodes[candidates[1]].line if len(candidates) > 1 else lat.nodes[0].line
                listed = ", ".join(str(lat.nodes[i].id) for i in candidates[:10]) or "none"
                raise InputError(path, where, f"no {name}= in the header and not exactly one node without "
                                              f"{what} links (found: {listed})")
            index = candidates[0]
        setattr(lat, name, index)
    lat.order = topological_order(lat, path)


def topological_order(lat: SlfLattice, path: str) -> list[int]:
    """Node indices in topological order; a cycle raises :class:`InputError` at a link closing it."""
    out_links: list[list[SlfLink]] = [[] for _ in lat.nodes]
    for link in lat.links:
        out_links[link.start].append(link)
    state = [0] * len(lat.nodes)  # 0 new, 1 on the stack, 2 done
    post: list[int] = []
    for root in range(len(lat.nodes)):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(out_links[root]))]
        while stack:
            u, it = stack[-1]
            for link in it:
                v = link.end
                if state[v] == 1:
                    raise InputError(path, link.line, f"cycle: link J={link.id} from node {lat.nodes[u].id} "
                                                      f"back to node {lat.nodes[v].id}")
                if state[v] == 0:
                    state[v] = 1
                    stack.append((v, iter(out_links[v])))
                    break
            else:
                stack.pop()
                state[u] = 2
                post.append(u)
    return post[::-1]


# --------------------------------------------------------------------------------------------
# N best distinct word sequences
# --------------------------------------------------------------------------------------------


@dataclass
class SlfHyp:
    words: tuple[str, ...]
    score: float
    ac: float
    lm: float
    pr: float
    removed: int  # filler/marker tokens left out of ``words``


def lattice_nbest(lat: SlfLattice, n: int, is_filler: FillerSet, lmscale: float | None = None,
                  wdpenalty: float | None = None) -> tuple[list[SlfHyp], tuple]:
    """The ``n`` best distinct word sequences of ``lat``, and the scales used."""
    from_header = (lat.lmscale is not None, lat.wdpenalty is not None)
    lms = lat.lmscale if lat.lmscale is not None else (1.0 if lmscale is None else float(lmscale))
    wdp = lat.wdpenalty if lat.wdpenalty is not None else (0.0 if wdpenalty is None else float(wdpenalty))
    used = (lat.acscale, lms, lat.prscale, wdp, "+".join(
        name for name, h in zip(("lmscale", "wdpenalty"), from_header, strict=True) if h) or "none")

    def tokens(word: str | None) -> tuple[tuple[str, ...], int]:
        if word is None:
            return (), 0
        return ((), 1) if is_filler(word) else ((word,), 0)

    node_tok = [tokens(node.word) for node in lat.nodes]
    arcs: list[list[tuple[int, float, tuple[str, ...], tuple[float, ...]]]] = [[] for _ in lat.nodes]
    for link in lat.links:
        lw, lr = tokens(link.word)
        nw, nr = node_tok[link.end]
        words = lw + nw
        values = (link.a, link.l, link.r, float(len(words)), float(lr + nr))
        weight = lat.acscale * link.a + lms * link.l + lat.prscale * link.r + wdp * len(words)
        arcs[link.start].append((link.end, weight, words, values))
    start_words, start_removed = node_tok[lat.start]
    init = (0.0, 0.0, 0.0, float(len(start_words)), float(start_removed))
    # the search minimises costs: negated log-likelihood weights; reaching the end node completes a path
    search = [[(v, -_search_weight(w), words, values) for v, w, words, values in out] for out in arcs]
    search[lat.end] = []
    paths = best_distinct_sequences(lat.start, search.__getitem__, {lat.end: (0.0, None)}, n, start_words,
                                    -_search_weight(wdp * len(start_words)), init)
    if not paths:
        line = lat.nodes[lat.end].line
        raise InputError(lat.path, line, f"no path from the start node {lat.nodes[lat.start].id} "
                                         f"to the end node {lat.nodes[lat.end].id}")
    hyps = []
    for words, (a, lm, r, nw, removed) in paths:
        score = lat.acscale * a + lms * lm + lat.prscale * r + wdp * nw
        hyps.append(SlfHyp(words, score, a, lm, r, int(removed)))
    return hyps, used


def _search_weight(w: float) -> float:
    if math.isnan(w) or w == -math.inf:
        return _FLOOR
    return -_FLOOR if w == math.inf else w
