"""Kaldi text archives ("key value" lines): strict line reading, float parsing and writing.

Readers here check what every importer needs checked (docs/formats.md §1.4, §3.2): valid UTF-8,
no CRLF line ends, no empty lines, and Kaldi's float spellings (``Infinity``, ``-Infinity``,
``BadNumber``, ``1234567``, ``1e+07``). Keys and values are split on ASCII whitespace only,
as Kaldi does, so a token may contain any other Unicode character.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from rescore.exceptions import InputError
from rescore.stage import atomic_open

_ASCII_WS = b" \t\n\r\x0b\x0c"

#: Longest integer read from an input file (ids, job counts, SLF fields): 18 digits always fit an int64,
#: and Python's int() refuses more than 4300
MAX_DIGITS = 18

#: What reading a damaged gzip stream raises: a bad header, CRC or length (``BadGzipFile``), a
#: stream that ends early (``EOFError``), corrupt deflate data (``zlib.error``, not an OSError).
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def gzip_error(path: str | Path, e: Exception) -> InputError:
    """The :class:`InputError` for one of :data:`GZIP_ERRORS` met reading ``path``."""
    return InputError(path, None, f"unreadable gzip file ({e})")


def open_binary(path: str | Path):
    """Open a file for binary reading, transparently gunzipping ``*.gz``.

    Reading a damaged ``*.gz`` raises one of :data:`GZIP_ERRORS`; readers turn them into an
    :class:`InputError` with :func:`gzip_error`.
    """
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_lines(path: str | Path, allow_empty: bool = False) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line_without_newline)`` of a text file, as bytes.

    Raises :class:`InputError` naming the line for CRLF line ends, and for empty lines
    unless ``allow_empty``. UTF-8 validity is checked by :func:`decode`.
    """
    try:
        with open_binary(path) as f:
            yield from _checked_lines(f, path, allow_empty)
    except GZIP_ERRORS as e:
        raise gzip_error(path, e) from None


def _checked_lines(f: Iterable[bytes], name: str | Path, allow_empty: bool) -> Iterator[tuple[int, bytes]]:
    for lineno, raw in enumerate(f, 1):
        if raw.endswith(b"\r\n") or raw.endswith(b"\r"):
            raise InputError(name, lineno, "CRLF (Windows) line end; convert with dos2unix")
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if not allow_empty and not line.strip(_ASCII_WS):
            raise InputError(name, lineno, "empty line")
        yield lineno, line


#: Options of a Kaldi rspecifier (``ark,s,cs:``) that change nothing for reading a whole text archive
RSPECIFIER_OPTIONS = frozenset({"t", "b", "s", "ns", "cs", "ncs", "p", "np", "o", "no", "f", "nf", "bg"})
_RSPEC = re.compile(r"(ark|scp)((?:,[a-z]+)*):(.*)", re.DOTALL)


def read_rspecifier(spec: str) -> tuple[str, bytes]:
    """The bytes a Kaldi rspecifier names, and the name to report errors with.

    Accepted, as Kaldi's table readers accept them: ``ark:FILE``, ``ark,t:``, ``ark,s,cs:`` and
    the other read options (:data:`RSPECIFIER_OPTIONS`; they do not change what a whole text
    archive holds), ``ark:-`` (standard input), ``ark:COMMAND |`` (a pipe, run with ``sh -c``
    as Kaldi does) and, as a convenience, a plain path or ``-``. Refused with an
    :class:`InputError`: ``scp:`` lists, unknown options, an output pipe (``ark:| ...``), a
    byte offset (``ark:FILE:123``) and a command that fails.
    """
    import subprocess
    import sys

    m = _RSPEC.fullmatch(spec)
    rx = spec
    if m is not None:
        kind, opts, rx = m.group(1), [o for o in m.group(2).split(",") if o], m.group(3)
        if kind == "scp":
            raise InputError(spec, None, "scp: rspecifiers (lists of archives) are not read here; give the "
                             "archive itself (ark:FILE)")
        bad = [o for o in opts if o not in RSPECIFIER_OPTIONS]
        if bad:
            raise InputError(spec, None, f"unknown rspecifier option(s) {', '.join(bad)} (Kaldi's are "
                             f"{', '.join(sorted(RSPECIFIER_OPTIONS))})")
    rx = rx.strip()
    if rx in ("", "-"):
        return "standard input", sys.stdin.buffer.read()
    if rx.endswith("|"):
        p = subprocess.run(["sh", "-c", rx[:-1]], capture_output=True)
        if p.returncode != 0:
            err = p.stderr.decode("utf-8", "replace").strip()[-500:]
            raise InputError(spec, None, f"the command failed (exit code {p.returncode}){': ' + err if err else ''}")
        return f"{rx[:-1].strip()} |", p.stdout
    if rx.startswith("|"):
        raise InputError(spec, None, "'| command' is an output pipe (a wspecifier); to read a command's output "
                         "write 'command |'")
    path = Path(rx)
    if not path.is_file():
        if re.search(r":\d+$", rx) and Path(rx.rsplit(":", 1)[0]).is_file():
            raise InputError(spec, None, "byte offsets into an archive (FILE:OFFSET) are not read here")
        raise InputError(rx, None, "not found" if not path.exists() else "not a file")
    try:
        with open_binary(path) as f:
            return rx, f.read()
    except GZIP_ERRORS as e:
        raise gzip_error(rx, e) from None


def read_transcripts(spec: str) -> tuple[str, list[tuple[int, str, str]]]:
    """``(name, [(line, key, text)])`` of a Kaldi ``text`` archive named by an rspecifier, in file
    order; duplicate keys are kept (callers decide), text tokens re-joined by single spaces."""
    import io

    name, data = read_rspecifier(spec)
    out = []
    for lineno, line in _checked_lines(io.BytesIO(data), name, allow_empty=False):
        key, rest = split_key(line)
        out.append((lineno, decode(key, name, lineno), decode(join_tokens(rest), name, lineno)))
    return name, out


class _LongInteger(Exception):
    """An integer literal in JSON longer than Python converts (``sys.get_int_max_str_digits``)."""


def _json_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError:  # json has checked the syntax: only the digit limit is left
        raise _LongInteger(literal) from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def loads_json(text: str, path: str | Path, line: int | None = None, **options) -> object:
    """``json.loads(text, **options)`` for an input file; ``json.JSONDecodeError`` propagates (each
    reader words it).

    The other ways bad input breaks ``json.loads`` are an :class:`InputError` naming ``path`` and the
    line: nesting deeper than Python's recursion limit, an integer literal longer than Python
    converts to ``int``, and a string holding a lone surrogate (``"\\ud800"``: valid JSON syntax but
    no Unicode text, so it could not be written as UTF-8). ``line`` is the file line ``text`` starts
    at (JSON lines); for a whole file (``None``) the line is located in ``text``.
    """
    def at(pos: int) -> int | None:
        if pos < 0:
            return line
        return (line or 1) + text.count("\n", 0, pos)

    try:
        obj = json.loads(text, parse_int=_json_int, **options)
    except RecursionError:
        raise InputError(path, line, "invalid JSON: nested too deeply") from None
    except _LongInteger as e:
        digits = e.args[0]
        raise InputError(path, at(text.find(digits)),
                         f"invalid JSON: an integer of {len(digits)} digits (more than Python converts)") from None
    if _SURROGATE_ESCAPE.search(text) is not None:
        bad = _lone_surrogate_string(obj)
        if bad is not None:
            m = _LONE_SURROGATE_ESCAPE.search(text)
            raise InputError(path, at(m.start() if m else -1),
                             f"invalid JSON string {bad[:40]!r}: a lone surrogate escape (\\ud800-\\udfff "
                             "not in a pair) is no Unicode character")
    return obj


def _lone_surrogate_string(obj: object) -> str | None:
    """The first string (key or value) in a parsed JSON value that is not valid Unicode text."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return x
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return None


def decode(data: bytes, path: str | Path, lineno: int) -> str:
    """Decode UTF-8 strictly, naming the file and line on failure."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, lineno, f"invalid UTF-8 ({e.reason} at byte {e.start})") from None


def split_key(line: bytes) -> tuple[bytes, bytes]:
    """Split ``key rest`` on the first run of ASCII whitespace; ``rest`` may be empty."""
    parts = line.split(None, 1)
    if not parts:
        return b"", b""
    if len(parts) == 1:
        return parts[0], b""
    return parts[0], parts[1]


def parse_float(token: bytes | str) -> float:
    """Parse a float as Kaldi writes it (``%.7g``, ``Infinity``, ``BadNumber`` = NaN).

    Raises ``ValueError`` for anything else.
    """
    if isinstance(token, bytes):
        token = token.decode("ascii", errors="replace")
    t = token.strip()
    if t in ("BadNumber", "-BadNumber"):
        return math.nan
    low = t.lower()
    if low in ("infinity", "+infinity", "inf", "+inf"):
        return math.inf
    if low in ("-infinity", "-inf"):
        return -math.inf
    if low in ("nan", "-nan", "+nan"):
        return math.nan
    # float() also accepts '1_0' and ' 1 ', neither of which Kaldi writes.
    if "_" in t or not t:
        raise ValueError(token)
    return float(t)


def format_float(x: float) -> str:
    """Write a float so that Kaldi (and this package) reads back exactly the same value.

    Finite values use Python's shortest round-trip repr; non-finite values use Kaldi's own
    spellings (``Infinity``, ``-Infinity``, ``BadNumber``), never ``inf``.
    """
    x = float(x)
    if math.isnan(x):
        return "BadNumber"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def read_float_archive(path: str | Path) -> Iterator[tuple[int, str, float]]:
    """Yield ``(line, key, value)`` from a ``key float`` text archive, checking every line."""
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        fields = rest.split()
        if len(fields) != 1:
            raise InputError(path, lineno, f"expected 'key value', got {len(fields)} values")
        try:
            value = parse_float(fields[0])
        except ValueError:
            raise InputError(
                path, lineno, f"non-numeric value {fields[0].decode('utf-8', 'replace')!r}"
            ) from None
        yield lineno, decode(key, path, lineno), value


def read_text_archive(path: str | Path) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(line, key, tokens)`` from a Kaldi ``text``-style file (tokens may be empty)."""
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        text = decode(join_tokens(rest), path, lineno)
        yield lineno, decode(key, path, lineno), text.split(" ") if text else []


def read_text_dict(path: str | Path) -> dict[str, str]:
    """Read a Kaldi ``text`` file into ``{key: 'w1 w2 ...'}``; duplicate keys are an error."""
    out: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        k = decode(key, path, lineno)
        if k in out:
            raise InputError(path, lineno, f"duplicate key {k!r}")
        out[k] = decode(b" ".join(rest.split()), path, lineno)
    return out


def join_tokens(text: bytes) -> bytes:
    """Re-join a line's tokens with single spaces (splitting on ASCII whitespace only)."""
    return b" ".join(text.split())


def write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Atomically write ``lines`` (each without its newline) as a UTF-8 text file."""
    with atomic_open(path) as f:
        for line in lines:
            f.write(line)
            f.write("\n")


def write_float_archive(path: str | Path, items: Iterable[tuple[str, float]]) -> None:
    """Atomically write a ``key float`` archive that Kaldi reads back."""
    write_lines(path, (f"{k} {format_float(v)}" for k, v in items))
