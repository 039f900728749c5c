"""Kaldi text archives ("key value" lines): strict line reading, float parsing and writing.

Readers here check what every importer needs checked (formats.md 1.4, 3.2): valid UTF-8,
no CRLF line ends, no empty lines, and Kaldi's float spellings (``Infinity``, ``-Infinity``,
``BadNumber``, ``1234567``, ``1e+07``). Keys and values are split on ASCII whitespace only,
as Kaldi does, so a token may contain any other Unicode character.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rescore.exceptions import InputError

_ASCII_WS = b" \t\n\r\x0b\x0c"


def open_binary(path: str | Path):
    """Open a file for binary reading, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_lines(path: str | Path, allow_empty: bool = False) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line_without_newline)`` of a text file, as bytes.

    Raises :class:`InputError` naming the line for CRLF line ends, and for empty lines
    unless ``allow_empty``. UTF-8 validity is checked by :func:`decode`.
    """
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            if raw.endswith(b"\r\n") or raw.endswith(b"\r"):
                raise InputError(path, lineno, "CRLF (Windows) line end; convert with dos2unix")
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if not allow_empty and not line.strip(_ASCII_WS):
                raise InputError(path, lineno, "empty line")
            yield lineno, line


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


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding, newline="\n")
        with f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Atomically write ``lines`` (each without its newline) as a UTF-8 text file."""
    with atomic_open(path) as f:
        for line in lines:
            f.write(line)
            f.write("\n")


def write_float_archive(path: str | Path, items: Iterable[tuple[str, float]]) -> None:
    """Atomically write a ``key float`` archive that Kaldi reads back."""
    write_lines(path, (f"{k} {format_float(v)}" for k, v in items))
