"""Every CLI step: ``--help`` shows the whole usage text and loads neither torch nor transformers.

Each step runs in a fresh interpreter (other tests import torch in this one), so the check is of
what ``--help`` itself imports: no wall-clock timing is asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = sorted(p.stem for p in (REPO / "rescore" / "bin").glob("*.py") if p.stem not in ("__init__", "common"))

PROBE = """
import importlib, json, sys
mod = importlib.import_module(sys.argv[1])
try:
    mod.main(["--help"])
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in ("torch", "transformers", "matplotlib", "sentencepiece") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def test_every_step_is_probed():
    assert {"score_pll", "train_student", "rescore", "compute_wer"} <= set(STEPS)


@pytest.mark.parametrize("step", STEPS)
def test_help_is_light_and_complete(step: str):
    import importlib
    import json

    r = subprocess.run([sys.executable, "-c", PROBE, f"rescore.bin.{step}"], capture_output=True, text=True,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr
    out, result = r.stdout.rsplit("\n", 2)[0], json.loads(r.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert result["heavy"] == [], f"{step} --help imports {result['heavy']} (import them after parsing)"
    doc = importlib.import_module(f"rescore.bin.{step}").__doc__
    paragraphs = [p.strip() for p in doc.strip().split("\n\n") if p.strip()]
    # the usage text is shown as written: every paragraph of the docstring, line breaks kept
    for para in paragraphs:
        assert para.splitlines()[0].strip() in out, f"{step} --help lacks: {para.splitlines()[0]!r}"
