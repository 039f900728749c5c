"""Rescorer bundles (rescore/rescoring/bundle.py, rescore.bin.export_rescorer): the decisions of
``rescore`` on a test set, with torch and ONNX Runtime; the bundle alone, moved elsewhere; refusals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

import rescore
from rescore.bin import export_rescorer, score_student
from rescore.bin import rescore as rescore_cli
from rescore.data.nbest import load_set
from rescore.exceptions import InputError
from rescore.models import RescoreBert
from tests.conftest import make_setdir
from tests.models.test_pll import bert_tokenizer
from tests.models.test_student import tiny_encoder, visible

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "hello", "world", "big", "red"]


def random_set(root, name, n_utts, seed):
    rng = np.random.default_rng(seed)
    nbest, refs = {}, {}
    for u in range(n_utts):
        ref = list(rng.choice(WORDS, int(rng.integers(2, 6))))
        hyps = [" ".join(ref)]
        for _ in range(int(rng.integers(1, 6))):
            h = list(ref)
            h[int(rng.integers(len(h)))] = str(rng.choice(WORDS))
            if rng.random() < 0.3:
                h.append(str(rng.choice(WORDS)))
            hyps.append(" ".join(h))
        hyps = [hyps[i] for i in rng.permutation(len(hyps))]
        nbest[f"{name}{u:02d}"] = [(h, float(rng.normal(-10, 2))) for h in hyps]
        refs[f"{name}{u:02d}"] = " ".join(ref)
    return make_setdir(root / name, nbest, refs=refs)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """A student, its scores of dev and test, and a rescore run tuned on dev: weights.yaml and the
    rescored test set."""
    root = tmp_path_factory.mktemp("bundle")
    tok = bert_tokenizer(root)
    student = root / "student"
    visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8)).save_pretrained(student)
    sets = {name: random_set(root / "data", name, n, seed) for name, n, seed in (("dev", 40, 1), ("test", 30, 2))}
    for name, d in sets.items():
        assert score_student.main(["--model", str(student), "--device", "cpu", "--num_threads", "1", str(d),
                                   str(root / "scores" / name)]) == 0
    out = root / "rescore"
    assert rescore_cli.main(["--dev", str(sets["dev"]), "--eval", str(sets["test"]), "--stream",
                             f"st={root}/scores/{{set}}/student", "--out", str(out), "--bootstrap", "10"]) == 0
    w = yaml.safe_load((out / "weights.yaml").read_text())
    assert w["streams"]["st"] != 0  # the student takes part in the decisions
    return {"root": root, "student": student, "weights": out / "weights.yaml", "sets": sets, "out": out}


def lists_of(setdir):
    nbs = load_set(setdir)
    return nbs, [(nbs.hyps(u), nbs.streams["score"][nbs.offsets[u]:nbs.offsets[u + 1]]) for u in range(nbs.num_utts)]


def rescored_nbest(out, name):
    """The rescore step's new order of every utterance (``EXPDIR/<set>/nbest/text``, in file order)."""
    from rescore.data.nbest import split_nbest_key

    order: dict[str, list[str]] = {}
    for line in (out / name / "nbest" / "text").read_text(encoding="utf-8").splitlines():
        key, _, text = line.partition(" ")
        order.setdefault(split_nbest_key(key)[0], []).append(text)
    return order, None


def export(exp, dest, *extra):
    return export_rescorer.main(["--student", str(exp["student"]), "--weights", str(exp["weights"]),
                                 "--out", str(dest), *extra])


def test_bundle_makes_the_decisions_of_rescore_without_the_experiment(exp, tmp_path):
    assert export(exp, tmp_path / "b0") == 0
    moved = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(tmp_path / "b0", moved)
    shutil.rmtree(tmp_path / "b0")
    spec = yaml.safe_load((moved / "rescorer.yaml").read_text())
    assert spec["stream"] == "st" and spec["units"] == {"metric": "wer", "normalization": "none"}
    assert spec["weights"]["beta"] == yaml.safe_load(exp["weights"].read_text())["streams"]["st"]
    r = rescore.Rescorer.from_pretrained(moved)
    nbs, lists = lists_of(exp["sets"]["test"])
    want, rescored = rescored_nbest(exp["out"], "test")
    got = r.rescore_many(lists)
    assert len(got) == nbs.num_utts
    for u, res in zip(nbs.utt_ids, got, strict=True):
        assert res.hyps == want[u], u  # the whole new order, not only the 1-best
    one = r.rescore(*lists[0])
    assert one.hyps == got[0].hyps and np.allclose(one.totals, got[0].totals)
    assert sorted(one.order.tolist()) == list(range(len(lists[0][0])))
    assert [lists[0][0][i] for i in one.order] == one.hyps
    assert (np.diff(one.totals) <= 0).all()


def test_student_scores_computed_elsewhere(exp, tmp_path):
    """rescore_many(student_scores=...): the combination alone, with the scores the rescore step used."""
    from rescore.data.nbest import read_scores

    assert export(exp, tmp_path / "b") == 0
    r = rescore.Rescorer.from_pretrained(tmp_path / "b")
    nbs, lists = lists_of(exp["sets"]["test"])
    stored = read_scores(exp["root"] / "scores" / "test" / "student", nbs)
    spans = [(int(nbs.offsets[u]), int(nbs.offsets[u + 1])) for u in range(nbs.num_utts)]
    got = r.rescore_many(lists, student_scores=[stored[lo:hi] for lo, hi in spans])
    want, _ = rescored_nbest(exp["out"], "test")
    assert [g.hyps for g in got] == [want[u] for u in nbs.utt_ids]
    assert np.array_equal(np.concatenate([g.student[np.argsort(g.order)] for g in got]), stored)
    with pytest.raises(ValueError, match="one score per hypothesis"):
        r.rescore_many(lists[:1], student_scores=[stored[:1]])
    with pytest.raises(ValueError, match="student score lists for"):
        r.rescore_many(lists[:2], student_scores=[stored[:2]])


def test_onnx_fp32_and_int8_backends(exp, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    assert export(exp, tmp_path / "b", "--onnx", "true", "--quantize", "int8") == 0
    assert {"student.onnx", "student.int8.onnx"} <= {p.name for p in (tmp_path / "b").iterdir()}
    torch_r = rescore.Rescorer.from_pretrained(tmp_path / "b")
    onnx_r = rescore.Rescorer.from_pretrained(tmp_path / "b", backend="onnx", num_threads=1)
    int8_r = rescore.Rescorer.from_pretrained(tmp_path / "b", backend="onnx", quantize="int8", num_threads=1)
    nbs, lists = lists_of(exp["sets"]["test"])
    texts = list(nbs.texts)
    ref = torch_r.score(texts)
    assert np.abs(onnx_r.score(texts) - ref).max() < 1e-4
    q = int8_r.score(texts)
    # the tiny random student's scores differ by ~1e-3: int8 keeps them close, not in order
    assert np.isfinite(q).all() and np.abs(q - ref).max() < 0.05 and not np.array_equal(q, ref)
    want, _ = rescored_nbest(exp["out"], "test")
    assert all(res.hyps == want[u] for u, res in zip(nbs.utt_ids, onnx_r.rescore_many(lists), strict=True))


def test_score_student_onnx_backend_equals_torch(exp, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    d = exp["sets"]["test"]
    base = ["--model", str(exp["student"]), "--num_threads", "1", str(d)]
    assert score_student.main([*base[:-1], "--backend", "onnx", str(d), str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "onnx" / "student.onnx").is_file()

    def read(p):
        return dict((k, float(v)) for k, v in (ln.split() for ln in p.read_text().splitlines()))

    a, b = read(exp["root"] / "scores" / "test" / "student"), read(tmp_path / "o" / "student")
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-4


def test_refusals(exp, tmp_path, capsys):
    assert export(exp, tmp_path / "b", "--quantize", "int8") == 1  # int8 is an ONNX graph
    assert "--quantize int8 needs --onnx true" in capsys.readouterr().err
    two = tmp_path / "two.yaml"
    data = yaml.safe_load(exp["weights"].read_text())
    data["streams"]["pll"] = 0.5
    two.write_text(yaml.safe_dump(data))
    assert export_rescorer.main(["--student", str(exp["student"]), "--weights", str(two),
                                 "--out", str(tmp_path / "c")]) == 1
    assert "a bundle holds one student" in capsys.readouterr().err
    assert export_rescorer.main(["--student", str(tmp_path / "none"), "--weights", str(exp["weights"]),
                                 "--out", str(tmp_path / "d")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
    assert export(exp, tmp_path / "b") == 0
    with pytest.raises(InputError, match="no fp32 ONNX graph"):
        rescore.Rescorer.from_pretrained(tmp_path / "b", backend="onnx")
    with pytest.raises(InputError, match="not a rescorer bundle"):
        rescore.Rescorer.from_pretrained(tmp_path)
    r = rescore.Rescorer.from_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match="2 hypotheses but 1 scores"):
        r.rescore(["a b", "a"], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        r.rescore([], [])
