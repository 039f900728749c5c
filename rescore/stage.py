"""Idempotent steps: fingerprints of inputs and config, ``.done`` markers, run records.

A step writes into its own directory, writes ``.done`` (holding the fingerprint of its inputs,
model and config) last, and on a re-run skips only when ``.done`` holds the same fingerprint,
so changed inputs are recomputed and never served stale. Every file a step writes appears whole
or not at all (:func:`atomic_open`: a temporary file beside it, renamed into place on success).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

DONE = ".done"
_PACKAGES = ("rescore", "numpy", "torch", "transformers", "rapidfuzz", "pyyaml", "tokenizers", "sentencepiece")


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


def _walk(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name != DONE)
    return [path]


def digest_paths(paths: Iterable[str | Path]) -> str:
    """Content hash of files and directories (recursively), including their relative names."""
    h = hashlib.blake2b(digest_size=16)
    for top in paths:
        top = Path(top)
        if not top.exists():
            h.update(f"<missing {top}>".encode())
            continue
        for p in _walk(top):
            rel = p.relative_to(top) if top.is_dir() else Path(p.name)
            h.update(str(rel).encode() + b"\0")
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            h.update(b"\1")
    return h.hexdigest()


def fingerprint(inputs: Iterable[str | Path], config: dict) -> str:
    """Fingerprint of input files/directories and a JSON-able config."""
    h = hashlib.blake2b(digest_size=16)
    h.update(digest_paths(inputs).encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()


def is_done(outdir: str | Path, fp: str) -> bool:
    p = Path(outdir) / DONE
    return p.is_file() and p.read_text().strip() == fp


def mark_done(outdir: str | Path, fp: str) -> None:
    with atomic_open(Path(outdir) / DONE) as f:
        f.write(fp + "\n")


def clear_done(outdir: str | Path) -> None:
    p = Path(outdir) / DONE
    if p.exists():
        p.unlink()


def check_done(outdir: str | Path, inputs: Iterable[str | Path], config: dict, overwrite: bool = False) -> str | None:
    """A step's start: the fingerprint of ``inputs`` and ``config``, or None when ``outdir`` is
    complete and up to date with it (logged ``skip``; ``overwrite`` never skips)."""
    fp = fingerprint(inputs, config)
    if is_done(outdir, fp) and not overwrite:
        from rescore.log import get_logger

        get_logger(__name__).info(f"skip: {outdir} is complete and up to date (--overwrite true to redo)")
        return None
    return fp


def reopen(outdir: str | Path) -> None:
    """Create ``outdir`` and remove its ``.done``: from here on it is incomplete until :func:`mark_done`."""
    Path(outdir).mkdir(parents=True, exist_ok=True)
    clear_done(outdir)


def git_commit() -> str | None:
    """The commit of the checkout this package runs from (None when not in git)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_record(argv: list[str] | None, module: str) -> dict:
    """What a run needs to be replayed: the command, versions, git commit, host, date."""
    args = sys.argv[1:] if argv is None else list(argv)
    return {
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", module, *args]),
        "cwd": os.getcwd(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "git_commit": git_commit(),
        "versions": versions(),
    }


def write_run_info(outdir: str | Path, argv: list[str] | None, module: str, config: dict) -> None:
    """Record in ``outdir/run.yaml`` the replay command, resolved config, versions and commit."""
    import yaml

    info = run_record(argv, module)
    info["config"] = config
    with atomic_open(Path(outdir) / "run.yaml") as f:
        yaml.safe_dump(info, f, sort_keys=False, allow_unicode=True)
