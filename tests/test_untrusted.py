"""Untrusted files: nothing a user receives (a model, a checkpoint, a config, a dataset) can run code.

No pickle anywhere (weights are safetensors; the optimiser state is read with
``torch.load(weights_only=True)``; numpy arrays with ``allow_pickle=False``), YAML through
``safe_load`` only, ``trust_remote_code=False`` on every Hugging Face load, and utterance ids such
as ``../x`` or ``a/b`` are keys, never file names.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.conftest import make_setdir, write

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("rescore", "bench", "egs", "utils") for p in (REPO / d).rglob("*.py"))


def _calls(path: Path):
    """Every call in ``path``: (line, what is called as written, {keyword: constant value})."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            yield node.lineno, ast.unparse(node.func), {k.arg: getattr(k.value, "value", k.value)
                                                        for k in node.keywords}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


def test_sources_are_scanned():
    assert len(SOURCES) > 60 and REPO / "rescore" / "train" / "loop.py" in SOURCES


def test_no_pickle_modules_eval_or_object_building_yaml():
    bad = []
    for p in SOURCES:
        bad += [f"{p.relative_to(REPO)}: import {m}" for m in _imports(p)
                if m in ("pickle", "cPickle", "dill", "joblib", "shelve", "marshal")]
        for line, func, kw in _calls(p):
            if func in ("eval", "exec", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
                bad.append(f"{p.relative_to(REPO)}:{line}: {func}")
            if kw.get("trust_remote_code") is True:
                bad.append(f"{p.relative_to(REPO)}:{line}: trust_remote_code=True")
    assert not bad, bad


def test_torch_and_numpy_loads_refuse_pickles():
    seen = set()
    for p in SOURCES:
        for line, func, kw in _calls(p):
            if func == "torch.load":
                assert kw.get("weights_only") is True, f"{p}:{line}: torch.load without weights_only=True"
            elif func in ("np.load", "numpy.load"):
                assert kw.get("allow_pickle") is False, f"{p}:{line}: np.load without allow_pickle=False"
            else:
                continue
            seen.add(func)
    assert seen == {"torch.load", "np.load"}


def test_every_hugging_face_auto_load_refuses_remote_code():
    calls = 0
    for p in SOURCES:
        for line, func, kw in _calls(p):
            if re.fullmatch(r"Auto\w+\.from_pretrained", func):
                assert kw.get("trust_remote_code") is False, f"{p}:{line}: {func} without trust_remote_code=False"
                calls += 1
    assert calls >= 5


class Marker:
    """A payload that would create ``path`` if it ever ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_with_a_pickled_payload_is_refused(tmp_path):
    import pickle

    import torch

    from rescore.train.loop import Checkpointer

    model = torch.nn.Linear(2, 2)
    ck = Checkpointer(tmp_path / "exp")
    path = ck.save(1, model, torch.optim.SGD(model.parameters(), lr=0.1), None, {})
    marker = tmp_path / "ran"
    (path / "optim.pt").write_bytes(pickle.dumps({"optimizer": Marker(marker), "scheduler": None}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        ck.load(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert not marker.exists()


def test_yaml_with_python_tags_is_refused_not_run(tmp_path):
    from rescore.config import load_config
    from rescore.data.nbest import load_set
    from rescore.exceptions import InputError, InvalidSetError
    from rescore.train.lstm import TrainClmConfig

    marker = tmp_path / "ran"
    payload = f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
    conf = write(tmp_path / "evil.yaml", f"lr: {payload}")
    with pytest.raises(InputError, match="invalid YAML"):
        load_config(TrainClmConfig, conf)
    d = make_setdir(tmp_path / "set", {"u1": [("a b", -1.0)]})
    write(d / "nbest" / "meta.yaml", f"language: {payload}")
    with pytest.raises(InvalidSetError, match="invalid YAML"):
        load_set(d)
    assert not marker.exists()


def test_a_model_that_needs_remote_code_is_refused_without_running_it(tmp_path):
    from rescore.exceptions import InputError
    from rescore.models.hf import load_mlm, loading_model

    d = tmp_path / "evil_model"
    marker = tmp_path / "ran"
    write(d / "config.json", json.dumps({"model_type": "evil", "architectures": ["EvilForMaskedLM"],
                                         "auto_map": {"AutoConfig": "evil.EvilConfig",
                                                      "AutoModelForMaskedLM": "evil.EvilForMaskedLM"}}))
    write(d / "evil.py", f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")
    with pytest.raises(InputError, match="cannot load a model"), loading_model(str(d)):
        load_mlm(str(d))
    assert not marker.exists()


def test_utterance_ids_are_never_file_names(tmp_path):
    """Ids with path characters go through import, every exporter and rescoring as keys only."""
    from rescore.bin import export_nbest, import_nbest, rescore
    from rescore.data import formats

    ids = ["../x", "a/b", "..", "/abs"]
    nbest = {u: [(f"w{i} v", -1.0), (f"w{i}", -2.0)] for i, u in enumerate(ids)}
    src = make_setdir(tmp_path / "work" / "src", nbest, refs={u: f"w{i}" for i, u in enumerate(ids)})
    work = tmp_path / "work"
    assert import_nbest.main(["--format", "setdir", str(src), str(work / "dev")]) == 0
    for fmt in formats.WRITERS:
        table = ["--new_symbol_table", "true"] if fmt.startswith("kaldi") else []
        assert export_nbest.main(["--format", fmt, *table, str(work / "dev"), str(work / "exp" / fmt)]) == 0, fmt
    write(work / "streams" / "dev" / "lm", "".join(f"{u}-{k} {-k}\n" for u in ids for k in (1, 2)))
    assert rescore.main(["--dev", str(work / "dev"), "--stream", f"lm={work}/streams/{{set}}/lm",
                         "--out", str(work / "rescored"), "--bootstrap", "10"]) == 0
    # nothing outside the work directory; no file or directory named after an id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert not Path("/abs").exists() and not (tmp_path / "x").exists()
    names = {p.name for p in work.rglob("*")}
    assert not names & {"x", "b", "abs"}, names & {"x", "b", "abs"}
    text = (work / "rescored" / "dev" / "text").read_text(encoding="utf-8")
    assert {line.split()[0] for line in text.splitlines()} == set(ids)
