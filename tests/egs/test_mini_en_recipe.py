"""Integration test of the egs/mini_en recipe with its debug configs (tiny models, a few steps).

What CI checks, in order, on one run (module fixture; ~6 minutes on 2 cores):

1. ``egs/mini_en/run.sh --conf_dir conf/debug`` runs stages 0-7 into a temporary directory;
   every expected file exists and every RESULTS row has a finite error rate;
2. the same command again does no work: every step says it is skipped and no output changes;
3. a resume from the middle: the MWER student is removed and ``--stage 5`` retrains it, rescores
   with it and rewrites the table, while the MD student, the teacher scores and the other
   systems' rescoring are left untouched;
4. a rescorer bundle of the MWER student (``export_rescorer``) makes the rescore step's decisions
   on every test utterance, loaded from a copy of the bundle alone (torch and ONNX Runtime);
5. ``local/data.sh --regenerate true --limit N`` rebuilds the first utterances of every set with
   flite, sox and pocketsphinx and gets the committed files back, byte for byte.

Marked ``recipe``: ``utils/run_tests.sh`` runs it after the unit tests (``RESCORE_RECIPE_TEST=0``
skips it); ``pytest -m recipe tests/egs/test_mini_en_recipe.py`` runs it alone.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.egs.regen import assert_regenerated

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "mini_en"
SYSTEMS = ("clm", "pll", "md", "mwer", "mwed")
SETS = ("train", "dev", "test")
pytestmark = pytest.mark.recipe


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_recipe(work: Path, *extra: str) -> subprocess.CompletedProcess:
    """The recipe with debug configs, everything it writes under ``work``; raises with its log on failure."""
    cmd = ["bash", str(RECIPE / "run.sh"), "--conf_dir", "conf/debug", "--datadir", str(work / "data"),
           "--expdir", str(work / "exp"), "--results", str(work / "RESULTS.md"),
           "--data_opts", f"--data {work / 'data'}", *extra]
    t0 = time.time()
    p = subprocess.run(cmd, cwd=RECIPE, env=_env(), capture_output=True, text=True, timeout=900)
    (work / f"run{len(list(work.glob('run*.log')))}.log").write_text(p.stdout + p.stderr, encoding="utf-8")
    if p.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}) after {time.time() - t0:.0f} s:\n"
                             f"{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    print(f"{' '.join(extra) or 'full run'}: {time.time() - t0:.0f} s")
    return p


def outputs(work: Path) -> dict[str, float]:
    """Every file the pipeline made and its mtime; logs and the replay file excluded (rewritten by design)."""
    found = {}
    for p in (work / "exp").rglob("*"):
        rel = p.relative_to(work)
        if p.is_file() and rel.parts[1] != "log" and p.name != "run.sh.replay" and p.suffix != ".log":
            found[str(rel)] = p.stat().st_mtime_ns
    for p in (work / "data").rglob("*"):
        if p.is_file():
            found[str(p.relative_to(work))] = p.stat().st_mtime_ns
    return found


def table_rows(results_md: Path) -> list[list[str]]:
    lines = results_md.read_text(encoding="utf-8").splitlines()
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if ln.startswith("| ")]
    return [r for r in rows[1:] if not set("".join(r)) <= set("-")]  # header and rule dropped


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("mini_en")
    run_recipe(work)
    return work


def test_full_run_writes_every_output(work: Path):
    exp = work / "exp"
    for s in SETS:
        assert (work / "data" / s / "nbest" / "text").is_file()
        assert (exp / "teacher" / s / "pll").is_file()
    for name in ("teacher_adapt/model", "student_init", "student_md/model", "student_mwer/model",
                 "student_mwed/model", "clm/model"):
        assert (exp / name).is_dir(), name
    for system in SYSTEMS:
        for s in ("dev", "test"):
            base = exp / "rescore" / system / s
            for f in ("text", "ref", "nbest/text", "nbest/score", "scoring/wer", "scoring/summary.json"):
                assert (base / f).is_file(), base / f
        summary = json.loads((exp / "rescore" / system / "test" / "scoring" / "summary.json").read_text())
        assert summary, system
    # the replay file and the resolved configs of every trained model
    assert (exp / "run.sh.replay").is_file()
    for name in ("teacher_adapt", "student_md", "student_mwer", "student_mwed", "clm"):
        assert (exp / name / "config.yaml").is_file(), name
    # counts in = counts out: every rescored set keeps its utterances and hypotheses
    for system in SYSTEMS:
        for s in ("dev", "test"):
            src = (work / "data" / s / "nbest" / "text").read_text().count("\n")
            out = (exp / "rescore" / system / s / "nbest" / "text").read_text().count("\n")
            assert src == out, (system, s, src, out)


def test_results_rows_are_finite(work: Path):
    rows = table_rows(work / "RESULTS.md")
    systems = [r[1] for r in rows]
    assert systems == ["first pass", "oracle", "baseline LM", "teacher PLL", "MD student", "MWER student",
                       "MWED student"], systems
    for r in rows:
        assert r[0] == "test" and r[2] == "WER", r
        assert math.isfinite(float(r[3])), r
    data = json.loads((work / "exp" / "results.json").read_text())
    assert data


def test_bundle_decides_as_rescore_on_test(work: Path, tmp_path: Path):
    """export_rescorer on the MWER student and its dev-tuned weights; rescore.Rescorer, loaded from a
    copy of the bundle alone: with the step's student scores it gives every test utterance the
    rescore step's whole new order; with its own (torch and ONNX) the scores agree to 1e-4 and a
    choice differs only where the two totals are within what that difference times the weight
    allows (the debug student's weight is huge)."""
    import numpy as np

    import rescore
    from rescore.bin import export_rescorer
    from rescore.data.nbest import load_set, read_scores, split_nbest_key

    exp = work / "exp"
    onnx = "true" if _has("onnxruntime") and _has("onnxscript") else "false"
    assert export_rescorer.main(["--student", str(exp / "student_mwer" / "model"), "--weights",
                                 str(exp / "rescore" / "mwer" / "weights.yaml"), "--out", str(tmp_path / "b"),
                                 "--onnx", onnx]) == 0
    shutil.copytree(tmp_path / "b", tmp_path / "moved" / "bundle")
    shutil.rmtree(tmp_path / "b")
    want: dict[str, list[int]] = {}  # the step's new order: input positions (rank k - 1)
    for line in (exp / "rescore" / "mwer" / "test" / "nbest" / "text").read_text().splitlines():
        utt, k = split_nbest_key(line.partition(" ")[0])
        want.setdefault(utt, []).append(k - 1)
    nbs = load_set(work / "data" / "test")
    spans = [(int(nbs.offsets[u]), int(nbs.offsets[u + 1])) for u in range(nbs.num_utts)]
    lists = [(nbs.hyps(u), nbs.streams["score"][lo:hi]) for u, (lo, hi) in enumerate(spans)]
    stored = read_scores(exp / "student_mwer" / "test" / "student", nbs)
    bundle = tmp_path / "moved" / "bundle"
    r = rescore.Rescorer.from_pretrained(bundle)
    same = r.rescore_many(lists, student_scores=[stored[lo:hi] for lo, hi in spans])
    assert [g.order.tolist() for g in same] == [want[u] for u in nbs.utt_ids]
    beta = abs(r.weights.streams[r.label])
    for backend in ("torch", "onnx") if onnx == "true" else ("torch",):
        r = rescore.Rescorer.from_pretrained(bundle, backend=backend)
        got = r.rescore_many(lists)
        own = np.concatenate([g.student[np.argsort(g.order)] for g in got])
        diff = float(np.abs(own - stored).max())
        assert diff < 1e-4, (backend, diff)
        for u, g in zip(nbs.utt_ids, got, strict=True):
            if g.order[0] != want[u][0]:  # a near-tie: the step's choice is as good within the tolerance
                theirs = float(g.totals[list(g.order).index(want[u][0])])
                assert g.totals[0] - theirs <= 2 * beta * diff + 1e-9, (backend, u)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_rerun_skips_every_stage(work: Path):
    before = outputs(work)
    p = run_recipe(work)
    assert outputs(work) == before, "a rerun changed outputs: " + ", ".join(
        k for k, v in outputs(work).items() if before.get(k) != v)
    log = p.stdout + p.stderr
    # every Python step of the pipeline reports that it skipped itself
    ran = [ln for ln in log.splitlines() if re.search(r"\bINFO: .*\b(training|scoring|importing) ", ln)
           and "skip" not in ln]
    assert "skip" in log and not ran, ran


def test_resume_from_stage_5(work: Path):
    exp = work / "exp"
    keep = {k: v for k, v in outputs(work).items()
            if "mwer" not in k and not k.startswith("exp/results") and k != "exp/rescore/RESULTS.md"}
    shutil.rmtree(exp / "student_mwer")
    run_recipe(work, "--stage", "5")
    assert (exp / "student_mwer" / "model").is_dir()
    assert (exp / "rescore" / "mwer" / "test" / "scoring" / "summary.json").is_file()
    after = outputs(work)
    changed = sorted(k for k, v in keep.items() if after.get(k) != v)
    assert not changed, f"a resume at stage 5 rewrote outputs of other steps: {changed[:10]}"
    assert [r[1] for r in table_rows(work / "RESULTS.md")][-2] == "MWER student"


@pytest.mark.skipif(not (shutil.which("flite") and shutil.which("sox")), reason="needs flite and sox")
def test_regenerate_matches_committed_data(tmp_path: Path):
    src = RECIPE / "data" / "local"
    dest = tmp_path / "local"
    cmd = ["bash", str(RECIPE / "local" / "data.sh"), "--regenerate", "true", "--limit", "4",
           "--src", str(dest), "--data", str(tmp_path / "data")]
    p = subprocess.run(cmd, cwd=RECIPE, env=_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    # the sentences are regenerated whole and equal the committed ones
    for f in sorted((src / "text").iterdir()):
        assert (dest / "text" / f.name).read_bytes() == f.read_bytes(), f.name
    for s, utts in assert_regenerated(src, dest, SETS, 4).items():
        for u in sorted(utts):
            lat = f"{u}.lat.gz"
            assert (dest / "lat" / s / lat).read_bytes() == (src / "lat" / s / lat).read_bytes(), lat
        assert (tmp_path / "data" / s / "nbest" / "text").is_file()
