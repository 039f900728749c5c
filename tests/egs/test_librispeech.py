"""egs/librispeech: the dry run of the recipe for every --source, its configs, and local/data.sh on tiny
HypR and mlm-scoring fixtures written here (docs/formats.md §5.2, §5.3). Nothing is downloaded or trained."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rescore.data.nbest import load_set

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "librispeech"
CONFIGS = ("train_mlm", "train_clm", "md", "mwer", "mwed")
EVALS = ("dev_clean", "dev_other", "test_clean", "test_other")
ALL_SETS = ("train_960", *EVALS)
TEACHER = "bert-base-uncased"
STUDENT = "google/bert_uncased_L-4_H-512_A-8"
STAGE = re.compile(r"\(run\.sh:\d+\) INFO: Stage (\d):")


def run(args: list, cwd: Path = RECIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


# --------------------------------------------------------------------------------------------
# Fixtures: tiny inputs in the layouts of HypR, mlm-scoring, Kaldi and ESPnet
# --------------------------------------------------------------------------------------------

def hypr_records(split: str, n_utts: int, first: int = 0) -> list[dict]:
    """HypR records (docs/formats.md §5.3): LibriSpeech-style ids and upper-case text, 3 hypotheses each."""
    recs = []
    for i in range(first, first + n_utts):
        ref = f"THE {split.upper()} SENTENCE NUMBER {i}"
        # rank 1 is the reference in lower case: no error under the recipe's --norm lower
        hyps = [ref.lower(), f"THE {split.upper()} SENTENCES NUMBER {i}", f"A {split.upper()} SENTENCE NUMBER {i}"]
        att = [-1.0 - k for k in range(3)]
        ctc = [-2.0 - 2 * k for k in range(3)]
        recs.append({"utt_id": f"{1000 + i}-{i}-{i:04d}", "ref": ref, "hyps": hyps, "att_score": att,
                     "ctc_score": ctc, "score": [0.5 * a + 0.5 * c for a, c in zip(att, ctc, strict=True)]})
    return recs


def write_hypr(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


#: utterances per HypR split; train is written as two shards (2 + 1 utterances).
HYPR_UTTS = {"train": 3, "dev_clean": 2, "dev_other": 2, "test_clean": 2, "test_other": 1}


@pytest.fixture
def hypr_src(tmp_path: Path) -> Path:
    """An HF checkout of ASR-HypR/LibriSpeech_*: data/<split>-0000i-of-0000n-<hash>.parquet; test_other
    as data/test_other.jsonl (a split exported to JSON lines). Without pyarrow, every file is JSON lines."""
    try:
        import pyarrow  # noqa: F401
        ext = "parquet"
    except ImportError:
        ext = "jsonl"
    data = tmp_path / "LibriSpeech_withoutLM" / "data"
    recs = hypr_records("train", 3)
    if ext == "parquet":
        write_hypr(data / "train-00000-of-00002-aaaa.parquet", recs[:2])
        write_hypr(data / "train-00001-of-00002-bbbb.parquet", recs[2:])
    else:
        write_hypr(data / "train.jsonl", recs)
    for j, split in enumerate(("dev_clean", "dev_other", "test_clean"), 1):
        name = f"{split}-00000-of-00001-cccc.parquet" if ext == "parquet" else f"{split}.jsonl"
        write_hypr(data / name, hypr_records(split, HYPR_UTTS[split], first=10 * j))
    write_hypr(data / "test_other.jsonl", hypr_records("test_other", 1, first=40))
    return data.parent


#: utterances per mlm-scoring set (100-best in the real files; 4 hypotheses here).
MLM_UTTS = {"dev-clean": 2, "dev-other": 3, "test-clean": 2, "test-other": 1}


@pytest.fixture
def mlm_src(tmp_path: Path) -> Path:
    """mlm-scoring's examples/asr-librispeech-espnet/data/<set>.am.json (docs/formats.md §5.2): lower case,
    texts with a leading space, hyp_1..hyp_n."""
    d = tmp_path / "mlm-scoring" / "examples" / "asr-librispeech-espnet" / "data"
    d.mkdir(parents=True)
    for name, n in MLM_UTTS.items():
        obj = {}
        for i in range(n):
            ref = f"mister quilter is the apostle number {i} of {name}"
            hyps = [ref, ref.replace("quilter", "quillter"), ref.replace("apostle", "a possible"), ref + " and"]
            entry: dict = {"ref": ref}
            for k, h in enumerate(hyps, 1):
                entry[f"hyp_{k}"] = {"score": -1.5 * k, "text": " " + h}
            obj[f"{1272 + i}-128104-{i:04d}-{name}"] = entry
        (d / f"{name}.am.json").write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return d


@pytest.fixture
def lm_text(tmp_path: Path) -> Path:
    """Seven lines of upper-case LM text (librispeech-lm-norm.txt style)."""
    p = tmp_path / "librispeech-lm-norm.txt"
    p.write_text("".join(f"LINE NUMBER {i} OF THE BOOK'S TEXT\n" for i in range(1, 8)), encoding="utf-8")
    return p


@pytest.fixture
def decode_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Kaldi/ESPnet-style inputs for the dry run: DECODES/<set>/ and REFS/<set>/text (contents unread)."""
    src, refs = tmp_path / "decodes", tmp_path / "refs"
    for s in ALL_SETS:
        (src / s).mkdir(parents=True)
        (refs / s).mkdir(parents=True)
        (refs / s / "text").write_text(f"{s}-utt HELLO\n")
    return src, refs


def data_sh(*args) -> subprocess.CompletedProcess:
    return run(["bash", RECIPE / "local" / "data.sh", *args])


# --------------------------------------------------------------------------------------------
# (1) the dry run of the recipe
# --------------------------------------------------------------------------------------------

def recipe_dry_run(*args, stages=frozenset(range(8))) -> tuple[list[str], str]:
    before = snapshot(RECIPE)
    r = run([RECIPE / "run.sh", "--dry_run", "true", *args], cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert snapshot(RECIPE) == before, "a dry run must not write anything"
    assert {int(m.group(1)) for m in STAGE.finditer(r.stderr)} == stages, r.stderr
    lines = r.stdout.splitlines()
    for line in lines:
        for cfg in re.findall(r"--config (\S+)", line):
            assert (RECIPE / cfg).is_file(), f"{line}: {cfg} not found"
    return lines, r.stderr


def find(lines: list[str], pattern: str) -> list[str]:
    return [ln for ln in lines if re.search(pattern, ln)]


@pytest.mark.parametrize("source", ["hypr", "mlm-json", "kaldi", "espnet"])
def test_recipe_dry_run_per_source(source: str, tmp_path: Path):
    src, lm = tmp_path / "nbest", tmp_path / "lm.txt.gz"
    extra = ["--refs", tmp_path / "refs"] if source in ("kaldi", "espnet") else []
    # without students (mlm-json) stage 4 has nothing to do and logs nothing
    stages = set(range(8)) - ({4} if source == "mlm-json" else set())
    lines, _ = recipe_dry_run("--source", source, "--src", src, *extra, "--lm_text", lm, stages=stages)
    want = f"bash local/data.sh --source {source} --src {src}"
    want += f" --refs {tmp_path / 'refs'}" if extra else ""
    assert lines[0] == want + f" --lm_text {lm}"
    # the teacher: bert-base-uncased adapted on the LM text written by local/data.sh
    (mlm,) = find(lines, r"rescore\.bin\.train_mlm ")
    assert f"--init {TEACHER} --text data/local/lm/train.txt --dev_text data/local/lm/heldout.txt" in mlm
    assert mlm.startswith("run.pl --gpu 1 ") and mlm.endswith("--config conf/train_mlm.yaml device=cuda")
    plls = find(lines, r"rescore\.bin\.score_pll ")
    assert all(ln.endswith("--model exp/teacher_adapt/model --device cuda --norm lower --batch_tokens 16384")
               for ln in plls)
    train_set = "dev" if source == "mlm-json" else "train_960"
    assert [ln.split(" pll -- ")[0].split()[-2] for ln in plls] == \
        [f"data/{s}" for s in (train_set, "dev", *EVALS)]
    # weights tuned on dev (dev_clean + dev_other), every dev and test set reported
    rescores = find(lines, r"rescore\.bin\.rescore ")
    systems = ["clm", "pll"] if source == "mlm-json" else ["clm", "pll", "md", "mwer", "mwed"]
    assert len(rescores) == len(systems)
    for ln in rescores:
        assert ln.startswith(f"{sys.executable} -m rescore.bin.rescore --dev data/dev " +
                             " ".join(f"--eval data/{s}" for s in EVALS) + " --stream ")
    (gather,) = find(lines, r"rescore\.bin\.gather_results ")
    assert re.findall(r"--system (\w+)=", gather) == systems
    assert re.findall(r"--set (\w+)", gather) == list(EVALS)
    (clm,) = find(lines, r"rescore\.bin\.train_clm ")
    assert "--text data/local/lm/train.txt" in clm and "--config conf/train_clm.yaml" in clm
    students = find(lines, r"rescore\.bin\.train_student ")
    if source == "mlm-json":
        assert students == []  # no training n-best in mlm-scoring's lists
    else:
        assert [re.search(r"--config (\S+)", ln).group(1) for ln in students] == \
            ["conf/md.yaml", "conf/mwer.yaml", "conf/mwed.yaml"]
        assert f"--init {STUDENT} --train_set data/train_960 " in students[0]
        assert all("--init exp/student_md/model --train_set data/train_960 " in ln for ln in students[1:])
        assert all("--dev_set data/dev --dev_scores exp/teacher/dev " in ln for ln in students)
        scored = find(lines, r"rescore\.bin\.score_student ")
        assert len(scored) == 3 * 5 and all(ln.endswith("--norm lower --batch_tokens 16384") for ln in scored)


def test_recipe_options_override_the_defaults(tmp_path: Path):
    lines, _ = recipe_dry_run("--src", tmp_path, "--lm_text", tmp_path / "lm.txt", "--teacher", "bert-large-uncased",
                              "--student_init", "", "--student_layers", "4", "--ngpu", "0",
                              "--data_opts", "--lm_every 1", "--rescore_opts", "--bootstrap 200")
    assert lines[0] == f"bash local/data.sh --source hypr --src {tmp_path} --lm_text {tmp_path / 'lm.txt'} --lm_every 1"
    (mlm,) = find(lines, r"rescore\.bin\.train_mlm ")
    assert "--init bert-large-uncased " in mlm and mlm.endswith("device=cpu") and "--gpu" not in mlm
    (trunc,) = find(lines, r"rescore\.bin\.truncate_encoder ")
    assert trunc.endswith("--num_layers 4 exp/teacher_adapt/model exp/student_init")
    assert "--init exp/student_init " in find(lines, r"rescore\.bin\.train_student ")[0]
    assert all(ln.endswith("--bootstrap 200") for ln in find(lines, r"rescore\.bin\.rescore "))


def test_recipe_without_lm_text_uses_the_teacher_as_it_is(tmp_path: Path):
    lines, err = recipe_dry_run("--src", tmp_path, "--lm_text", "none")
    assert "Stage 2: teacher adaptation: skipped" in err
    assert not find(lines, r"rescore\.bin\.train_(mlm|clm) ")
    assert all(f"--model {TEACHER} " in ln for ln in find(lines, r"rescore\.bin\.score_pll "))
    (gather,) = find(lines, r"rescore\.bin\.gather_results ")
    assert re.findall(r"--system (\w+)=", gather) == ["pll", "md", "mwer", "mwed"]


def test_recipe_rejects_an_unknown_source():
    r = run([RECIPE / "run.sh", "--dry_run", "true", "--source", "librispeech"])
    assert r.returncode == 1 and "--source must be hypr, mlm-json, kaldi or espnet" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("source", ["hypr", "mlm-json", "kaldi", "espnet"])
def test_data_sh_dry_run_prints_the_imports(source: str, hypr_src, mlm_src, decode_dirs, lm_text, tmp_path):
    src = {"hypr": hypr_src, "mlm-json": mlm_src}.get(source, decode_dirs[0])
    extra = ["--refs", decode_dirs[1], "--words", tmp_path / "words.txt"] if source in ("kaldi", "espnet") else []
    r = data_sh("--source", source, "--src", src, *extra, "--lm_text", lm_text, "--data", tmp_path / "d",
                "--dry_run", "true")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "d").exists()
    lines = r.stdout.splitlines()
    imports = find(lines, r"rescore\.bin\.import_nbest ")
    sets = EVALS if source == "mlm-json" else ALL_SETS
    assert [ln.split()[-1] for ln in imports] == [f"{tmp_path}/d/{s}" for s in sets]
    py = f"{sys.executable} -m rescore.bin.import_nbest"
    if source == "hypr":
        data = hypr_src / "data"
        assert imports[0] == f"{py} --format hypr --lang en --norm lower --pattern 'train-*.parquet' {data} " \
                             f"{tmp_path}/d/train_960" or imports[0].endswith(f"{data}/train.jsonl {tmp_path}/d/train_960")
        assert imports[-1] == f"{py} --format hypr --lang en --norm lower {data}/test_other.jsonl {tmp_path}/d/test_other"
    elif source == "mlm-json":
        assert imports == [f"{py} --format mlm-json --lang en --norm lower {mlm_src}/{s.replace('_', '-')}.am.json "
                           f"{tmp_path}/d/{s}" for s in EVALS]
    else:
        fmt = {"kaldi": "kaldi-lattice --lang en --norm lower", "espnet": "espnet --lang en --norm lower"}[source]
        opts = f" --words {tmp_path}/words.txt --nbest 50" if source == "kaldi" else ""
        assert imports == [f"{py} --format {fmt} --text {decode_dirs[1]}/{s}/text{opts} {decode_dirs[0]}/{s} "
                           f"{tmp_path}/d/{s}" for s in ALL_SETS]
    assert lines[len(imports)] == (f"{sys.executable} {RECIPE}/local/combine_sets.py {tmp_path}/d/dev "
                                   f"{tmp_path}/d/dev_clean {tmp_path}/d/dev_other")
    assert lines[-1].startswith(f"lm text: {lm_text} -> {tmp_path}/d/local/lm/train.txt")


# --------------------------------------------------------------------------------------------
# (2) the configs
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_configs_use_documented_keys_and_load(name: str):
    from rescore.config import load_config
    from rescore.train.lstm import TrainClmConfig
    from rescore.train.mlm import MlmTrainConfig
    from rescore.train.mlm import validate as validate_mlm
    from rescore.train.student import StudentTrainConfig
    from rescore.train.student import validate as validate_student

    path = RECIPE / "conf" / f"{name}.yaml"
    mine = yaml.safe_load(path.read_text(encoding="utf-8"))
    documented = yaml.safe_load((REPO / "conf" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert set(mine) <= set(documented), f"{path}: keys not in conf/{name}.yaml: {set(mine) - set(documented)}"
    if name == "train_mlm":
        cfg = load_config(MlmTrainConfig, path)
        validate_mlm(cfg)
    elif name == "train_clm":
        cfg = load_config(TrainClmConfig, path)
        cfg.validate()
        assert cfg.norm == "lower"
    else:
        cfg = load_config(StudentTrainConfig, path, ["init=student"])
        validate_student(cfg)
        assert cfg.objective == name and cfg.norm == "lower"  # as score_pll --norm lower in run.sh
    for key, value in mine.items():
        assert getattr(cfg, key) == value, f"{path}: {key}"


# --------------------------------------------------------------------------------------------
# (3) local/data.sh on the fixtures
# --------------------------------------------------------------------------------------------

def check_lm_text(d: Path) -> None:
    # 7 lines: every 3rd (3, 6) held out, every 2nd of the rest (2, 4) kept, lower-cased
    lm = d / "local" / "lm"
    assert (lm / "heldout.txt").read_text() == "line number 3 of the book's text\nline number 6 of the book's text\n"
    assert (lm / "train.txt").read_text() == "line number 2 of the book's text\nline number 4 of the book's text\n"


def test_data_sh_imports_hypr(hypr_src: Path, lm_text: Path, tmp_path: Path):
    d = tmp_path / "data"
    r = data_sh("--source", "hypr", "--src", hypr_src, "--lm_text", lm_text, "--lm_every", "2",
                "--lm_heldout_every", "3", "--data", d)
    assert r.returncode == 0, r.stderr
    counts = {"train_960": 3, **{s: HYPR_UTTS[s] for s in EVALS}, "dev": 4}
    for s, n in counts.items():
        nbs = load_set(d / s)
        assert nbs.num_utts == n and nbs.num_hyps == 3 * n, s
        assert set(nbs.refs) == set(nbs.utt_ids), s
        assert set(nbs.streams) == {"score", "att_score", "ctc_score", "errors"}, s
        assert nbs.meta["normalization"] == "lower" and nbs.meta["metric"] == "wer", s
        # rank 1 is the upper-case reference in lower case: no error (WER ignores case: --norm lower)
        first = nbs.offsets[:-1]
        assert np.all(nbs.streams["errors"][first] == 0), s
        assert np.all(nbs.streams["errors"][first + 1] == 1), s
    dev = load_set(d / "dev")
    assert dev.utt_ids == sorted(load_set(d / "dev_clean").utt_ids + load_set(d / "dev_other").utt_ids)
    assert dev.meta["source"]["format"] == "combined"
    train = load_set(d / "train_960")
    assert train.meta["source"]["format"] == "hypr"
    assert len(train.meta["source"]["files"]) == (2 if train.meta["source"]["files"][0].endswith(".parquet") else 1)
    np.testing.assert_allclose(train.streams["score"][:3], [-1.5, -3.0, -4.5])
    check_lm_text(d)
    assert not (d / "local" / "lm" / "train.txt.tmp").exists()
    # a rerun skips what is up to date
    r = data_sh("--source", "hypr", "--src", hypr_src, "--lm_text", lm_text, "--lm_every", "2",
                "--lm_heldout_every", "3", "--data", d)
    assert r.returncode == 0 and "skip:" in r.stderr, r.stderr


def test_data_sh_imports_mlm_json(mlm_src: Path, lm_text: Path, tmp_path: Path):
    d = tmp_path / "data"
    r = data_sh("--source", "mlm-json", "--src", mlm_src, "--lm_text", lm_text, "--lm_every", "2",
                "--lm_heldout_every", "3", "--data", d)
    assert r.returncode == 0, r.stderr
    assert not (d / "train_960").exists()
    counts = {s: MLM_UTTS[s.replace("_", "-")] for s in EVALS} | {"dev": 5}
    for s, n in counts.items():
        nbs = load_set(d / s)
        assert nbs.num_utts == n and nbs.num_hyps == 4 * n, s
        assert set(nbs.refs) == set(nbs.utt_ids), s
        assert all(not t.startswith(" ") for t in nbs.texts), s  # mlm-scoring's leading space is dropped
        assert list(nbs.streams["errors"][nbs.offsets[:-1]]) == [0.0] * n, s
    np.testing.assert_allclose(load_set(d / "test_other").streams["score"], [-1.5, -3.0, -4.5, -6.0])
    check_lm_text(d)


def test_data_sh_errors(hypr_src: Path, mlm_src: Path, lm_text: Path, tmp_path: Path):
    d = ["--data", tmp_path / "data"]
    r = data_sh("--source", "hypr", "--lm_text", lm_text, *d)
    assert r.returncode == 1 and "give --src DIR" in r.stderr
    assert "https://huggingface.co/datasets/ASR-HypR/LibriSpeech_withoutLM" in r.stderr  # where to get it
    r = data_sh("--source", "hypr", "--src", tmp_path / "nowhere", "--lm_text", lm_text, *d)
    assert r.returncode == 1 and f"--src {tmp_path}/nowhere: no such directory" in r.stderr
    r = data_sh("--src", hypr_src, "--lm_text", lm_text, *d)
    assert r.returncode == 1 and "give --source" in r.stderr
    r = data_sh("--source", "hypr", "--src", hypr_src, *d)
    assert r.returncode == 1 and "give --lm_text" in r.stderr and "https://www.openslr.org/11/" in r.stderr
    r = data_sh("--source", "kaldi", "--src", hypr_src, "--lm_text", lm_text, *d)
    assert r.returncode == 1 and "--source kaldi needs --refs" in r.stderr
    (hypr_src / "data" / "test_other.jsonl").unlink()
    r = data_sh("--source", "hypr", "--src", hypr_src, "--lm_text", lm_text, "--sets", "test_other", *d)
    assert r.returncode == 1 and "no HypR split 'test_other'" in r.stderr
    r = data_sh("--source", "mlm-json", "--src", mlm_src, "--lm_text", "none", "--sets", "train_960", *d)
    assert r.returncode == 1 and "train-960.am.json not found" in r.stderr
    assert not (tmp_path / "data").exists()


def test_results_md_has_the_markers_and_no_numbers():
    from rescore.scoring.results import BEGIN, END

    text = (RECIPE / "RESULTS.md").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines()]
    assert lines.count(BEGIN) == 1 and lines.count(END) == 1
    assert lines.index(END) == lines.index(BEGIN) + 1  # no table until the recipe has been run
    assert "No LibriSpeech number has been measured" in text
