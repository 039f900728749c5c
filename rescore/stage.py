"""Idempotent steps: fingerprints of inputs and config, ``.done`` markers, run records.

A step writes into its own directory, writes ``.done`` (holding the fingerprint of its inputs,
model and config) last, and on a re-run skips only when ``.done`` holds the same fingerprint,
so changed inputs are recomputed and never served stale. Every file a step writes appears whole
or not at all (:func:`atomic_open`: a temporary file beside it, renamed into place on success).

One writer per output directory: a step locks its directory (:func:`lock_outdir`, called by
:func:`check_done`, :func:`reopen` and :func:`clear_done`) and holds the lock until it finishes
(:func:`mark_done`; :func:`release_locks`, called by every CLI on exit, however the step ended).
The lock is an ``flock`` on ``OUTDIR/.lock``, so the kernel frees it when its process dies, however
it dies; the file holds the holder's pid, host, command and start time. A second writer fails at
once with :class:`LockedError` naming the holder; a lock whose holder died is taken over and the
takeover logged. The file is removed when the holder finishes.
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from rescore.exceptions import InputError

DONE = ".done"
LOCK = ".lock"
PARTIAL = "partial"  # PartialResults of a scoring step that has not finished
_BOOKKEEPING = (DONE, LOCK)  # never part of a directory's fingerprint
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
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _BOOKKEEPING)
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


class LockedError(InputError):
    """Another process is writing the output directory."""


_held: dict[str, tuple[int, list[Path]]] = {}  # abspath -> (locked descriptor, directories created for it)


def _owner_record() -> dict:
    return {"pid": os.getpid(), "host": platform.node(),
            "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
            "started": datetime.datetime.now().isoformat(timespec="seconds")}


def _parse_owner(data: bytes) -> dict | None:
    try:
        rec = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _describe_owner(rec: dict | None) -> str:
    if rec is None:
        return "a process that has not recorded itself yet"
    return f"pid {rec.get('pid')} on {rec.get('host')} since {rec.get('started')}: {rec.get('command')}"


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def lock_outdir(outdir: str | Path) -> None:
    """Make ``outdir`` this process's to write until :func:`release_lock` (a no-op when it already is).

    Creates the directory when missing (removed again on release if it stayed empty); raises
    :class:`InputError` when ``outdir`` is an existing file and :class:`LockedError`, naming the
    holder, when another process holds it. A lock left by a dead process is taken over (logged).
    """
    import fcntl

    from rescore.log import get_logger

    outdir = Path(outdir)
    key = os.path.abspath(outdir)
    if key in _held:
        return
    if outdir.exists() and not outdir.is_dir():
        raise InputError(outdir, None, "exists and is not a directory (an output directory is needed here)")
    created, top = [], Path(key)
    while not top.exists():
        created.append(top)
        top = top.parent
    if not top.is_dir() or not os.access(top, os.W_OK | os.X_OK):
        raise InputError(top, None, "not a writable directory: cannot create the output directory there")
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse_owner(_read_fd(fd))
            os.close(fd)
            _remove_created(created)
            raise LockedError(outdir, None, f"another run is writing this directory ({_describe_owner(holder)}); "
                              "wait for it to finish, or stop it") from None
        try:  # the file may have been removed by the holder we waited for: then lock the new one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _parse_owner(_read_fd(fd))
    if previous is not None:  # flock dies with its process, the file does not: a run killed while writing
        get_logger(__name__).warning(f"{outdir}: took over the lock of a run that ended without releasing it "
                                     f"({_describe_owner(previous)})")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(_owner_record()).encode("utf-8") + b"\n")
    _held[key] = (fd, created)


def _remove_created(created: list[Path]) -> None:
    for d in created:  # deepest first; stop at the first that holds something
        try:
            d.rmdir()
        except OSError:
            break


def release_lock(outdir: str | Path) -> None:
    """Release ``outdir`` if this process holds it (:func:`mark_done` does: the step is finished)."""
    held = _held.pop(os.path.abspath(outdir), None)
    if held is None:
        return
    fd, created = held
    try:
        (Path(outdir) / LOCK).unlink(missing_ok=True)  # while still locked: see lock_outdir's inode check
    finally:
        os.close(fd)
    _remove_created(created)


def release_locks() -> None:
    """Release every output directory this process locked (the end of a step, however it ended)."""
    for key in list(_held):
        release_lock(key)


atexit.register(release_locks)


def is_done(outdir: str | Path, fp: str) -> bool:
    p = Path(outdir) / DONE
    return p.is_file() and p.read_text().strip() == fp


def mark_done(outdir: str | Path, fp: str) -> None:
    """The step that wrote ``outdir`` has finished: ``.done`` holds ``fp``, and the lock is released."""
    with atomic_open(Path(outdir) / DONE) as f:
        f.write(fp + "\n")
    release_lock(outdir)


def clear_done(outdir: str | Path) -> None:
    lock_outdir(outdir)
    p = Path(outdir) / DONE
    if p.exists():
        p.unlink()


def check_done(outdir: str | Path, inputs: Iterable[str | Path], config: dict, overwrite: bool = False) -> str | None:
    """A step's start: the fingerprint of ``inputs`` and ``config``, or None when ``outdir`` is
    complete and up to date with it (logged ``skip``; ``overwrite`` never skips). Locks ``outdir``
    first (:func:`lock_outdir`), so the check and the writing that follows are one writer's."""
    lock_outdir(outdir)
    fp = fingerprint(inputs, config)
    if is_done(outdir, fp) and not overwrite:
        from rescore.log import get_logger

        release_lock(outdir)  # nothing to write
        get_logger(__name__).info(f"skip: {outdir} is complete and up to date (--overwrite true to redo)")
        return None
    return fp


def reopen(outdir: str | Path) -> None:
    """Create ``outdir`` and remove its ``.done``: from here on it is incomplete until :func:`mark_done`."""
    lock_outdir(outdir)
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


class PartialResults:
    """Finished batches of a long scoring pass, kept on disk so that a killed run resumes where it
    stopped (``score_pll``, ``score_student``).

    A scorer plans its batches deterministically from its inputs and options, so batch ``b`` of a
    rerun is the batch ``b`` of the killed run: its results (flat output positions and values) are
    restored instead of recomputed, and the final output is byte-identical to an uninterrupted run.
    Results are appended in chunk files ``DIR/chunk-NNNNNN.npz`` (written atomically; numpy arrays,
    no pickles), one every ``save_every`` seconds (0: after every batch); ``DIR/key`` holds the
    step's fingerprint and the batch count, and results of another key are discarded. The step
    removes DIR when it has written its output (:meth:`finish`).
    """

    def __init__(self, directory: str | Path, key: str, save_every: float = 30.0, discard: bool = False):
        self.dir, self.key, self.save_every, self.discard = Path(directory), key, save_every, discard
        self.restored_batches = self.computed_batches = 0
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._last = time.monotonic()
        self._chunks = 0

    def restore(self, num_batches: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{batch: (positions, values)}`` of the batches a previous run of this key finished
        (none with ``discard``, e.g. ``--overwrite true``: that run's results are removed)."""
        import shutil

        from rescore.log import get_logger

        plan = f"{self.key} {num_batches}"
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        key_file = self.dir / "key"
        same = key_file.is_file() and key_file.read_text(encoding="utf-8").strip() == plan
        if self.dir.exists() and (self.discard or not same):
            shutil.rmtree(self.dir)
        if not self.dir.exists():
            self.dir.mkdir(parents=True)
            with atomic_open(key_file) as f:
                f.write(plan + "\n")
            return found
        for path in sorted(self.dir.glob("chunk-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as z:
                    batches, ptr, pos, val = z["batches"], z["ptr"], z["positions"], z["values"]
            except (OSError, ValueError, KeyError):  # atomic writes make this unexpected; recompute it
                get_logger(__name__).warning(f"{path}: unreadable, its batches are computed again")
                continue
            for i, b in enumerate(batches.tolist()):
                found[int(b)] = (pos[ptr[i]:ptr[i + 1]], val[ptr[i]:ptr[i + 1]])
            self._chunks = max(self._chunks, int(path.stem.split("-")[1]) + 1)
        self.restored_batches = len(found)
        if found:
            get_logger(__name__).info(f"resuming: {len(found)} of {num_batches} batches restored from {self.dir} "
                                      "(a run of the same inputs and options that did not finish)")
        return found

    def add(self, batch: int, positions: np.ndarray, values: np.ndarray) -> None:
        """Batch ``batch`` is finished; saved with the others of its chunk when the chunk is due."""
        self._pending.append((batch, np.asarray(positions, dtype=np.int64), np.asarray(values, dtype=np.float64)))
        self.computed_batches += 1
        if time.monotonic() - self._last >= self.save_every:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        sizes = [len(p) for _, p, _ in self._pending]
        ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=ptr[1:])
        with atomic_open(self.dir / f"chunk-{self._chunks:06d}.npz", "wb", encoding=None) as f:
            np.savez(f, batches=np.array([b for b, _, _ in self._pending], dtype=np.int64), ptr=ptr,
                     positions=np.concatenate([p for _, p, _ in self._pending]),
                     values=np.concatenate([v for _, _, v in self._pending]))
        self._chunks += 1
        self._pending.clear()
        self._last = time.monotonic()

    def finish(self) -> None:
        """The output is written: the partial results are no longer needed."""
        import shutil

        self._pending.clear()
        if self.dir.exists():
            shutil.rmtree(self.dir)
