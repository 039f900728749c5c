"""Running the shell tools of utils/ from tests: paths, environment, stand-in schedulers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "utils"

#: A stand-in for qsub/sbatch: records its arguments (one line per call, tab-separated) in
#: $STANDIN_RECORD and runs the job script (the last argument) locally, in the foreground for qsub
#: and in the background for sbatch, then prints what the real command prints.
STANDIN = r"""#!/usr/bin/env bash
( IFS=$'\t'; printf '%s\n' "$*" ) >> "$STANDIN_RECORD"
script="${@: -1}"
if [ "$(basename "$0")" = sbatch ]; then
  bash "$script" > /dev/null 2>&1 &
  echo "Submitted batch job 4242"
else
  bash "$script" > /dev/null 2>&1
  echo 'Your job 4242 ("x") has been submitted'
fi
"""


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a tool run: the repository importable, stand-ins first on PATH."""
    e = dict(os.environ)
    e.pop("CUDA_VISIBLE_DEVICES", None)
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["PYTHON"] = sys.executable
    e["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{e['PATH']}"
    e["STANDIN_RECORD"] = str(tmp_path / "submitted")
    e["RESCORE_QUEUE_POLL_MAX"] = "0.2"
    e.update(extra)
    return e


def install_standins(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name in ("qsub", "sbatch"):
        p = bindir / name
        p.write_text(STANDIN)
        p.chmod(0o755)


def submitted(tmp_path: Path) -> list[list[str]]:
    """The argument lists the stand-in schedulers received, one per submitted job."""
    path = tmp_path / "submitted"
    if not path.exists():
        return []
    return [line.split("\t") for line in path.read_text().splitlines()]


def sh(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    """Run a command in ``tmp_path``; output captured as text."""
    return subprocess.run([str(a) for a in args], cwd=tmp_path, env=env(tmp_path, **extra), capture_output=True,
                          text=True)
