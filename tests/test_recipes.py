"""Recipes: the top-level run.sh, egs/*/run.sh, the scaffold, utils/log.sh and shell hygiene.

Everything here runs in ``--dry_run true`` mode (or stages that do nothing): no model is trained
and no recipe is run; a whole dry run takes well under a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rescore.log import LOG_FORMAT

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.parent for p in (REPO / "egs").glob("*/run.sh"))
CONFIG_NAMES = ("train_mlm.yaml", "train_clm.yaml", "md.yaml", "mwer.yaml", "mwed.yaml")
STAGE_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \(run\.sh:\d+\) INFO: (Stage (\d): .*)$")
PY = "python3"  # $PYTHON as run.sh prints it in these tests


def shell_scripts() -> list[Path]:
    """Every shell script of the repository (sourced fragments included)."""
    found = [REPO / "run.sh", REPO / ".ci" / "run", *sorted((REPO / "utils").glob("*.sh"))]
    for recipe in sorted((REPO / "egs").iterdir()):
        found += [p for p in (recipe / "run.sh", recipe / "cmd.sh") if p.is_file()]
        found += sorted((recipe / "local").glob("*.sh"))
    return found


def run_sh(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": PY, **extra}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)


def stage_lines(stderr: str) -> list[str]:
    return [m.group(1) for line in stderr.splitlines() if (m := STAGE_LINE.match(line))]


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def make_recipe(root: Path) -> Path:
    """A bare recipe directory: local/data.sh and the five configs (their content is not read)."""
    (root / "local").mkdir(parents=True)
    (root / "local" / "data.sh").write_text("echo data > data.txt\n")
    (root / "conf").mkdir()
    for name in CONFIG_NAMES:
        (root / "conf" / name).write_text("{}\n")
    return root


# --------------------------------------------------------------------------------------------
# The top-level run.sh
# --------------------------------------------------------------------------------------------

def test_top_level_dry_run_prints_every_stage_and_command(tmp_path: Path):
    rec = make_recipe(tmp_path / "rec")
    before = snapshot(rec)
    r = run_sh([REPO / "run.sh", "--dry_run", "true", "--nj", "2", "--cmd", "run.pl --mem 4G",
                "--eval_sets", "test", "--systems", "clm pll md mwer", "--lattices", "lat",
                "--teacher", "bert-base-uncased", "--teacher_adapt", "true", "--teacher_text", "lm.txt",
                "--student_layers", "2", "--export_lattices", "true", "--rescore_opts", "--bootstrap 10"], rec)
    assert r.returncode == 0, r.stderr
    assert snapshot(rec) == before  # nothing was run, nothing was written
    sp = f"{REPO}/utils/score_parallel.sh --cmd 'run.pl --mem 4G' --nj 2"
    train = "--train_set data/train --train_scores exp/teacher/train --dev_set data/dev --dev_scores exp/teacher/dev"
    assert r.stdout.splitlines() == [
        "bash local/data.sh",
        f"{PY} -m rescore.bin.import_nbest --format slf --lang en lat/train data/train",
        f"{PY} -m rescore.bin.import_nbest --format slf --lang en lat/dev data/dev",
        f"{PY} -m rescore.bin.import_nbest --format slf --lang en lat/test data/test",
        f"run.pl --mem 4G exp/log/train_mlm.log {PY} -m rescore.bin.train_mlm --init bert-base-uncased "
        "--text lm.txt --out exp/teacher_adapt --config conf/train_mlm.yaml device=cpu",
        *(f"{sp} data/{s} exp/teacher/{s} pll -- rescore.bin.score_pll --model exp/teacher_adapt/model --device cpu"
          for s in ("train", "dev", "test")),
        f"{PY} -m rescore.bin.truncate_encoder --num_layers 2 exp/teacher_adapt/model exp/student_init",
        f"run.pl --mem 4G exp/log/train_student_md.log {PY} -m rescore.bin.train_student --config conf/md.yaml "
        f"--init exp/student_init {train} --out exp/student_md device=cpu",
        f"run.pl --mem 4G exp/log/train_student_mwer.log {PY} -m rescore.bin.train_student --config conf/mwer.yaml "
        f"--init exp/student_md/model {train} --out exp/student_mwer device=cpu",
        f"run.pl --mem 4G exp/log/train_clm.log {PY} -m rescore.bin.train_clm --text lm.txt --out exp/clm "
        "--config conf/train_clm.yaml device=cpu",
        *(f"{sp} data/{s} exp/clm/{s} clm -- rescore.bin.score_clm --model exp/clm/model --device cpu"
          for s in ("dev", "test")),
        f"{PY} -m rescore.bin.rescore --dev data/dev --eval data/test --stream clm=exp/clm/{{set}}/clm "
        "--out exp/rescore/clm --bootstrap 10",
        f"{PY} -m rescore.bin.rescore --dev data/dev --eval data/test --stream pll=exp/teacher/{{set}}/pll "
        "--out exp/rescore/pll --bootstrap 10",
        *(f"{sp} data/{s} exp/student_md/{s} student -- rescore.bin.score_student --model exp/student_md/model "
          "--device cpu" for s in ("dev", "test")),
        f"{PY} -m rescore.bin.rescore --dev data/dev --eval data/test --stream md=exp/student_md/{{set}}/student "
        "--out exp/rescore/md --bootstrap 10",
        *(f"{sp} data/{s} exp/student_mwer/{s} student -- rescore.bin.score_student --model "
          "exp/student_mwer/model --device cpu" for s in ("dev", "test")),
        f"{PY} -m rescore.bin.rescore --dev data/dev --eval data/test --stream mwer=exp/student_mwer/{{set}}/student "
        "--out exp/rescore/mwer --bootstrap 10",
        f"{PY} -m rescore.bin.gather_results --system clm=exp/rescore/clm --system pll=exp/rescore/pll "
        "--system md=exp/rescore/md --system mwer=exp/rescore/mwer --set test --json exp/results.json RESULTS.md",
        *(f"{PY} -m rescore.bin.export_nbest --format kaldi-lattice exp/rescore/{s}/test "
          f"exp/rescore/{s}/decode_test" for s in ("clm", "pll", "md", "mwer")),
    ]
    assert stage_lines(r.stderr) == [
        "Stage 0: data preparation: local/data.sh -> data",
        *(f"Stage 1: lattices -> n-best: lat/{s} -> data/{s}" for s in ("train", "dev", "test")),
        "Stage 2: teacher adaptation: lm.txt -> exp/teacher_adapt (log exp/log/train_mlm.log)",
        *(f"Stage 3: teacher PLL: data/{s} -> exp/teacher/{s}" for s in ("train", "dev", "test")),
        "Stage 4: student init: first 2 layers of exp/teacher_adapt/model -> exp/student_init",
        "Stage 4: MD student: data/train -> exp/student_md (log exp/log/train_student_md.log)",
        "Stage 5: MWER student: data/train -> exp/student_mwer (log exp/log/train_student_mwer.log)",
        "Stage 6: baseline LM: lm.txt -> exp/clm (log exp/log/train_clm.log)",
        "Stage 6: baseline LM scores: data/dev -> exp/clm/dev",
        "Stage 6: baseline LM scores: data/test -> exp/clm/test",
        "Stage 6: rescore clm: data/dev data/test -> exp/rescore/clm",
        "Stage 6: rescore pll: data/dev data/test -> exp/rescore/pll",
        "Stage 6: MD student scores: data/dev -> exp/student_md/dev",
        "Stage 6: MD student scores: data/test -> exp/student_md/test",
        "Stage 6: rescore md: data/dev data/test -> exp/rescore/md",
        "Stage 6: MWER student scores: data/dev -> exp/student_mwer/dev",
        "Stage 6: MWER student scores: data/test -> exp/student_mwer/test",
        "Stage 6: rescore mwer: data/dev data/test -> exp/rescore/mwer",
        "Stage 7: results: exp/rescore -> RESULTS.md",
        *(f"Stage 7: Kaldi lattices: exp/rescore/{s}/test -> exp/rescore/{s}/decode_test"
          for s in ("clm", "pll", "md", "mwer")),
    ]


def test_stage_range_gpu_and_defaults(tmp_path: Path):
    rec = make_recipe(tmp_path / "rec")
    r = run_sh([REPO / "run.sh", "--dry_run", "true", "--stage", "3", "--stop_stage", "4", "--ngpu", "2",
                "--train_set", "tr", "--eval_sets", "", "--teacher", "t", "--systems", "pll md"], rec)
    assert r.returncode == 0, r.stderr
    assert [s.split(":")[0] for s in stage_lines(r.stderr)] == ["Stage 3", "Stage 3", "Stage 4"]
    out = r.stdout.splitlines()
    assert out[0].startswith(f"{REPO}/utils/score_parallel.sh --cmd run.pl --nj 4 --gpu 1 data/tr exp/teacher/tr")
    assert out[0].endswith("--model t --device cuda")
    assert out[2].startswith("run.pl --gpu 2 exp/log/train_student_md.log torchrun --nproc_per_node 2 -m "
                             "rescore.bin.train_student --config conf/md.yaml --init t ")
    assert out[2].endswith(" device=cuda")


def test_stage_skips_are_logged(tmp_path: Path):
    rec = make_recipe(tmp_path / "rec")
    r = run_sh([REPO / "run.sh", "--dry_run", "true", "--stage", "1", "--stop_stage", "5", "--systems", "pll"], rec)
    assert r.returncode == 0, r.stderr
    assert stage_lines(r.stderr) == [
        "Stage 1: lattices -> n-best: skipped (no --lattices)",
        "Stage 2: teacher adaptation: skipped (--teacher_adapt false)",
        *(f"Stage 3: teacher PLL: data/{s} -> exp/teacher/{s}" for s in ("train", "dev", "test")),
        "Stage 5: discriminative training: skipped (neither mwer nor mwed in --systems)",
    ]


@pytest.mark.parametrize("args, message", [
    (["--no_such_option", "1"], "invalid option --no_such_option"),
    (["--stage=3"], "is not accepted"),
    (["--dry_run", "yes"], "takes true or false"),
    (["--systems", "pll bogus"], "unknown system 'bogus'"),
    (["--nj", "0"], "--nj must be at least 1"),
    (["--md_config", "conf/nope.yaml"], "--md_config conf/nope.yaml not found"),
    (["--teacher_adapt", "true"], "needs --teacher_text"),
    (["--systems", "clm"], "system clm needs --clm_text"),
    (["--lattice_format", "htk"], "kaldi-lattice or slf"),
    (["positional"], "unexpected argument"),
])
def test_bad_options_fail_before_running(tmp_path: Path, args, message):
    rec = make_recipe(tmp_path / "rec")
    r = run_sh([REPO / "run.sh", "--dry_run", "true", *args], rec)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert r.stdout == ""


def test_no_data_sh_outside_a_recipe(tmp_path: Path):
    r = run_sh([REPO / "run.sh", "--dry_run", "true", "--stop_stage", "0"], tmp_path)
    assert r.returncode == 1 and "local/data.sh not found" in r.stderr


def test_replay_command_is_written_and_replays(tmp_path: Path):
    rec = make_recipe(tmp_path / "rec")
    args = ["--stage", "0", "--stop_stage", "1", "--data_opts", "", "--rescore_opts", "--cer --seed 3"]
    r = run_sh([REPO / "run.sh", *args], rec)
    assert r.returncode == 0, r.stderr
    assert (rec / "data.txt").read_text() == "data\n"  # stage 0 ran local/data.sh
    replay = (rec / "exp" / "run.sh.replay").read_text().splitlines()
    assert replay[0] == "#!/usr/bin/env bash"
    assert replay[-1] == (f"cd {rec} && {REPO}/run.sh --stage 0 --stop_stage 1 --data_opts '' "
                          "--rescore_opts '--cer --seed 3'")
    (rec / "data.txt").unlink()
    r = run_sh(["bash", rec / "exp" / "run.sh.replay"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (rec / "data.txt").is_file()


# --------------------------------------------------------------------------------------------
# egs/*: every recipe, every config set
# --------------------------------------------------------------------------------------------

def recipe_conf_dirs() -> list[tuple[Path, str]]:
    out = []
    for recipe in RECIPES:
        for d in sorted({p.parent for p in (recipe / "conf").rglob("*.yaml")}):
            out.append((recipe, str(d.relative_to(recipe))))
    return out


def test_every_recipe_has_its_files():
    assert {r.name for r in RECIPES} >= {"TEMPLATE", "mini_en"}
    for recipe in RECIPES:
        for name in ("run.sh", "cmd.sh", "local/data.sh", "README.md"):
            assert (recipe / name).is_file(), f"{recipe.name}: {name} missing"
        assert os.access(recipe / "run.sh", os.X_OK), f"{recipe.name}/run.sh is not executable"
        assert not any(p.is_symlink() for p in recipe.rglob("*")), f"{recipe.name}: no symlinks in recipes"
        for name in CONFIG_NAMES:
            assert (recipe / "conf" / name).is_file(), f"{recipe.name}: conf/{name} missing"


def check_dry_run(recipe: Path, args: list[str]) -> subprocess.CompletedProcess:
    """A full dry run of a recipe: stages 0..7 logged, known commands only, configs exist, nothing written."""
    before = snapshot(recipe)
    # run from another directory: the recipe finds itself and the top-level run.sh from BASH_SOURCE
    r = run_sh([recipe / "run.sh", "--dry_run", "true", *args], recipe.parent, PYTHON=sys.executable)
    assert r.returncode == 0, r.stderr
    assert snapshot(recipe) == before, "a dry run must not write anything"
    stages = {int(m.group(2)) for line in r.stderr.splitlines() if (m := STAGE_LINE.match(line))}
    assert stages == set(range(8)), r.stderr
    for line in r.stdout.splitlines():
        if line.startswith("bash local/data.sh"):
            continue
        modules = re.findall(r"(?:-m |-- )(rescore\.bin\.\w+)", line)
        assert modules, f"unexpected command: {line}"
        for m in modules:
            assert importlib.util.find_spec(m) is not None, f"{line}: no module {m}"
        for cfg in re.findall(r"--config (\S+)", line):
            assert (recipe / cfg).is_file(), f"{line}: {cfg} not found in {recipe}"
    return r


@pytest.mark.parametrize("recipe, conf_dir", recipe_conf_dirs(), ids=lambda x: getattr(x, "name", x))
def test_recipe_dry_run(recipe: Path, conf_dir: str):
    r = check_dry_run(recipe, ["--conf_dir", conf_dir, "--export_lattices", "true"])
    for name in ("train_mlm", "train_student", "train_clm"):
        assert f"--config {conf_dir}/" in r.stdout and f"rescore.bin.{name}" in r.stdout


@pytest.mark.parametrize("recipe, conf_dir", recipe_conf_dirs(), ids=lambda x: getattr(x, "name", x))
def test_recipe_configs_are_valid(recipe: Path, conf_dir: str):
    """Every key known, every value of the right type and range (what the training steps check first)."""
    from rescore.config import load_config
    from rescore.train.lstm import TrainClmConfig
    from rescore.train.mlm import MlmTrainConfig
    from rescore.train.mlm import validate as validate_mlm
    from rescore.train.student import StudentTrainConfig
    from rescore.train.student import validate as validate_student

    d = recipe / conf_dir
    validate_mlm(load_config(MlmTrainConfig, d / "train_mlm.yaml"))
    load_config(TrainClmConfig, d / "train_clm.yaml").validate()
    for objective in ("md", "mwer", "mwed"):
        cfg = load_config(StudentTrainConfig, d / f"{objective}.yaml", ["init=student"])
        validate_student(cfg)
        assert cfg.objective == objective, f"{d}/{objective}.yaml: objective {cfg.objective}"


def extra_configs() -> list[Path]:
    """Configs beside the five of a config set, e.g. conf/train_mlm_gpu.yaml (``--mlm_config``)."""
    return [p for r in RECIPES for p in sorted((r / "conf").rglob("*.yaml")) if p.name not in CONFIG_NAMES]


@pytest.mark.parametrize("path", extra_configs(), ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_extra_recipe_configs_are_valid(path: Path):
    """Every extra config is valid for the step its name begins with (train_mlm, train_clm, md, mwer, mwed)."""
    from rescore.config import load_config
    from rescore.train.lstm import TrainClmConfig
    from rescore.train.mlm import MlmTrainConfig
    from rescore.train.mlm import validate as validate_mlm
    from rescore.train.student import StudentTrainConfig
    from rescore.train.student import validate as validate_student

    kind = next((n[:-5] for n in CONFIG_NAMES if path.name.startswith(n[:-5])), None)
    assert kind is not None, f"{path}: name it after its step ({', '.join(CONFIG_NAMES)})"
    if kind == "train_mlm":
        validate_mlm(load_config(MlmTrainConfig, path))
    elif kind == "train_clm":
        load_config(TrainClmConfig, path).validate()
    else:
        validate_student(load_config(StudentTrainConfig, path, ["init=student"]))


# --------------------------------------------------------------------------------------------
# utils/new_recipe.sh
# --------------------------------------------------------------------------------------------

@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The parts of the repository a recipe needs: run.sh, utils/, egs/TEMPLATE."""
    root = tmp_path / "repo"
    (root / "egs").mkdir(parents=True)
    shutil.copy2(REPO / "run.sh", root / "run.sh")
    shutil.copytree(REPO / "utils", root / "utils")
    shutil.copytree(REPO / "egs" / "TEMPLATE", root / "egs" / "TEMPLATE")
    return root


def test_new_recipe_passes_the_dry_run(repo_copy: Path):
    r = run_sh([repo_copy / "utils" / "new_recipe.sh", "wsj_demo"], repo_copy)
    assert r.returncode == 0, r.stderr
    new = repo_copy / "egs" / "wsj_demo"
    template = repo_copy / "egs" / "TEMPLATE"
    assert sorted(str(p.relative_to(new)) for p in new.rglob("*")) == \
        sorted(str(p.relative_to(template)) for p in template.rglob("*"))
    for p in new.rglob("*"):
        if p.is_file():
            assert "TEMPLATE" not in p.read_text(), p
            assert os.access(p, os.X_OK) == os.access(template / p.relative_to(new), os.X_OK), p
    assert "wsj_demo" in (new / "README.md").read_text()
    check_dry_run(new, [])
    assert not list((repo_copy / "egs").glob(".new_recipe.*"))


@pytest.mark.parametrize("args, message", [
    (["wsj_demo"], "already exists"), (["a/b"], "invalid recipe name"), (["TEMPLATE"], "other than TEMPLATE"),
    ([], "usage"), (["x", "y"], "usage"),
])
def test_new_recipe_errors(repo_copy: Path, args, message):
    (repo_copy / "egs" / "wsj_demo").mkdir()
    r = run_sh([repo_copy / "utils" / "new_recipe.sh", *args], repo_copy)
    assert r.returncode == 1 and message in r.stderr


# --------------------------------------------------------------------------------------------
# utils/log.sh and the shell scripts
# --------------------------------------------------------------------------------------------

def test_log_sh_matches_the_python_log_format(tmp_path: Path):
    script = tmp_path / "step.sh"
    script.write_text(f'. {REPO}/utils/log.sh\nlog "hello world"\nf() {{ warn "careful"; }}\nf\ndie "stop"\necho after\n')
    r = run_sh(["bash", script], tmp_path)
    assert r.returncode == 1 and "after" not in r.stdout
    lines = r.stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" \(step\.sh:2\) INFO: hello world", lines[0]), lines
    assert re.fullmatch(stamp + r" \(step\.sh:3\) WARNING: careful", lines[1]), lines
    assert re.fullmatch(stamp + r" \(step\.sh:5\) ERROR: stop", lines[2]), lines
    rec = logging.LogRecord("rescore.x", logging.INFO, str(tmp_path / "mod.py"), 7, "hello world", None, None)
    py_line = logging.Formatter(LOG_FORMAT).format(rec)
    assert re.fullmatch(stamp + r" \(mod:7\) INFO: hello world", py_line)


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_bash_syntax(script: Path):
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck():
    files = [str(p.relative_to(REPO)) for p in shell_scripts()]
    r = subprocess.run(["shellcheck", "-x", "-P", "SCRIPTDIR", "-P", ".", *files], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
