"""The real Kaldi programs the conformance tests run, found where a user or CI has them.

Searched in order: the directory in ``RESCORE_KALDI_BIN``; ``../shared/kaldi/bin`` beside the
repository (the project workspace); ``$KALDI_ROOT/src/{bin,latbin}``; ``PATH``. Kaldi's
``int2sym.pl`` comes from ``RESCORE_KALDI_UTILS``, ``<bin>/../utils``,
``$KALDI_ROOT/egs/wsj/s5/utils`` or ``PATH``. Where a program is missing (or cannot start, e.g.
without ``libfst22``), the tests that need it are skipped with the reason; with
``RESCORE_REQUIRE_CONFORMANCE=1`` (what CI sets when it has the programs) they fail instead, so that a
conformance run can never pass by skipping. The same holds for the Python packages checked
against (kaldi-native-io; ESPnet's own file I/O from ``pip install --no-deps espnet typeguard``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
PROGRAMS = ("compute-wer", "compute-wer-bootci", "lattice-copy", "lattice-to-nbest", "lattice-best-path",
            "lattice-1best", "lattice-scale", "lattice-add-penalty", "nbest-to-linear", "linear-to-nbest",
            "nbest-to-lattice")


def _candidates() -> list[Path]:
    dirs = []
    if os.environ.get("RESCORE_KALDI_BIN"):
        dirs.append(Path(os.environ["RESCORE_KALDI_BIN"]))
    dirs.append(REPO.parent / "shared" / "kaldi" / "bin")
    if os.environ.get("KALDI_ROOT"):
        root = Path(os.environ["KALDI_ROOT"])
        dirs += [root / "src" / "bin", root / "src" / "latbin"]
    return dirs


def _missing(reason: str):
    if os.environ.get("RESCORE_REQUIRE_CONFORMANCE") == "1":
        pytest.fail(f"RESCORE_REQUIRE_CONFORMANCE=1 but {reason}")
    pytest.skip(reason)


@cache
def _find(name: str) -> tuple[Path | None, str]:
    for d in _candidates():
        if (d / name).is_file() and os.access(d / name, os.X_OK):
            path = d / name
            break
    else:
        found = shutil.which(name)
        if found is None:
            return None, f"Kaldi's {name} not found (RESCORE_KALDI_BIN, ../shared/kaldi/bin, KALDI_ROOT, PATH)"
        path = Path(found)
    p = subprocess.run([str(path), "--help"], capture_output=True, text=True)
    if "Usage" not in p.stdout + p.stderr:  # a program that cannot start (shared libraries missing)
        err = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{path} does not run ({err}); Kaldi's programs need: apt-get install libfst22 libopenblas0-pthread"
    return path, ""


class Kaldi:
    """Runs the real programs: ``kaldi("lattice-copy", "ark:a", "ark,t:-")`` returns stdout bytes."""

    def path(self, name: str) -> Path:
        path, reason = _find(name)
        if path is None:
            _missing(reason)
        return path

    def __call__(self, name: str, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
        p = subprocess.run([str(self.path(name)), *map(str, args)], input=stdin, capture_output=True)
        if check and p.returncode != 0:
            raise AssertionError(f"{name} {' '.join(map(str, args))} failed ({p.returncode}):\n"
                                 f"{p.stderr.decode('utf-8', 'replace')[-3000:]}")
        return p.stdout

    def run(self, name: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.path(name)), *map(str, args)], input=stdin, capture_output=True)

    def pipeline(self, cmd: str, cwd: Path | None = None) -> bytes:
        """A shell pipeline with the Kaldi programs (and int2sym.pl) first on PATH, as in a recipe."""
        dirs = [str(self.path("lattice-copy").parent)]
        if "int2sym.pl" in cmd:
            dirs.append(str(self.int2sym().parent))
        env = dict(os.environ, PATH=os.pathsep.join([*dirs, os.environ["PATH"]]))
        p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, env=env, cwd=cwd)
        if p.returncode != 0:
            raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stderr.decode('utf-8', 'replace')[-3000:]}")
        return p.stdout

    def int2sym(self) -> Path:
        dirs = []
        if os.environ.get("RESCORE_KALDI_UTILS"):
            dirs.append(Path(os.environ["RESCORE_KALDI_UTILS"]))
        bin_path, _ = _find("lattice-copy")
        if bin_path is not None:
            dirs.append(bin_path.parent.parent / "utils")
        if os.environ.get("KALDI_ROOT"):
            dirs.append(Path(os.environ["KALDI_ROOT"]) / "egs" / "wsj" / "s5" / "utils")
        for d in dirs:
            if (d / "int2sym.pl").is_file():
                return d / "int2sym.pl"
        found = shutil.which("int2sym.pl")
        if found is None:
            _missing("Kaldi's utils/int2sym.pl not found (RESCORE_KALDI_UTILS, <bin>/../utils, KALDI_ROOT, PATH)")
        return Path(found)


def require(module: str, install: str):
    """Import a Python package a conformance test checks against, or skip (fail when required)."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        _missing(f"{module} cannot be imported ({install})")


@pytest.fixture(scope="session")
def kaldi() -> Kaldi:
    return Kaldi()


@pytest.fixture(scope="session")
def kgraph() -> Path:
    """Lattices written by a real Kaldi decoder (koala999cn/kGraph test data, MIT; see data/README.md)."""
    return DATA / "kgraph"


def write_table(path: Path, max_id: int) -> Path:
    """A ``words.txt`` for lattices that ship without one: id ``i`` is the word ``w<i>``."""
    path.write_text("<eps> 0\n" + "".join(f"w{i} {i}\n" for i in range(1, max_id + 1)), encoding="utf-8")
    return path
