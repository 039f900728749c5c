"""egs/books_en: the committed data comes back when it is regenerated.

``local/data.sh --regenerate true --limit 4`` speaks the first 4 committed sentences of every set
again with flite, perturbs them with sox and recognises them with pocketsphinx, and must give the
committed n-best lists back byte for byte. Where the books are at hand (``../shared/data/books``
beside the clone, or ``RESCORE_BOOKS``), the sentences themselves are rebuilt from the Project
Gutenberg files too (``--books``) and must equal the committed ones. The whole recipe runs for
hours on 2 cores; its stages are covered by the dry-run tests (tests/test_recipes.py).

Marked ``recipe``: ``utils/run_tests.sh`` runs it after the unit tests.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.egs.regen import assert_regenerated

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "books_en"
SETS = ("train", "dev", "test")
pytestmark = [pytest.mark.recipe,
              pytest.mark.skipif(not (shutil.which("flite") and shutil.which("sox")), reason="needs flite and sox")]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _books() -> Path | None:
    for d in (os.environ.get("RESCORE_BOOKS"), REPO.parent / "shared" / "data" / "books"):
        if d and Path(d).is_dir():
            return Path(d)
    return None


def test_regenerate_matches_committed_data(tmp_path: Path):
    src = RECIPE / "data" / "local"
    dest = tmp_path / "local"
    books = _books()
    cmd = ["bash", str(RECIPE / "local" / "data.sh"), "--regenerate", "true", "--limit", "4",
           "--src", str(dest), "--data", str(tmp_path / "data"), *(["--books", str(books)] if books else [])]
    p = subprocess.run(cmd, cwd=RECIPE, env=_env(), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for f in (src / "text" / n for n in ("train.txt", "dev.txt", "test.txt", "sources.tsv", "heldout.txt",
                                         "teacher.txt.gz")):  # from the books, or the committed copy
        new, old = (dest / "text" / f.name).read_bytes(), f.read_bytes()
        if f.suffix == ".gz":
            new, old = gzip.decompress(new), gzip.decompress(old)
        assert new == old, f.name
    assert_regenerated(src, dest, SETS, 4)
    for s in SETS:
        assert (tmp_path / "data" / s / "nbest" / "text").is_file()
