"""Student training (rescore/train/student.py) on a synthetic n-best task built here, tiny encoders, CPU."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rescore.config import ConfigError, load_config
from rescore.data.nbest import load_set, read_scores
from rescore.scoring.tuning import rescored_errors
from rescore.scoring.wer import hyp_errors
from rescore.train.student import StudentTrainConfig, epoch_order, train_student, validate
from tests.conftest import make_setdir, write
from tests.models.test_pll import bert_tokenizer

ROOT = Path(__file__).resolve().parents[2]
# The pattern: a correct hypothesis uses GOOD words only; an error substitutes a BAD word. The
# teacher penalises only the SEEN bad words: MD alone cannot learn the rest, MWER/MWED can.
GOOD = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
SEEN = ["hello", "world", "big", "red"]
BAD = SEEN + ["car", "went", "home", "good"]


def tiny_encoder(root: Path, dropout: float = 0.0, seed: int = 0) -> str:
    """A random 2-layer, 32-wide BertModel with a WordPiece vocabulary, saved to ``root``."""
    from transformers import BertConfig, BertModel

    root.mkdir(parents=True, exist_ok=True)
    tok = bert_tokenizer(root)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    BertModel(cfg).save_pretrained(root)
    tok.save_pretrained(root)
    return str(root)


def synthetic_set(root: Path, n_utts: int, seed: int, n_hyps: int = 4, prefix: str = "u") -> tuple[Path, Path]:
    """A set whose first pass is random (uninformative) and a teacher "pll" that prefers the pattern.

    References are 4-6 GOOD words; the other hypotheses substitute 1-2 words by BAD words; the
    correct one sits at a random rank. Teacher PLL = -3 x (number of SEEN bad words) + noise.
    Returns ``(setdir, scores_dir)``.
    """
    rng = np.random.default_rng(seed)
    nbest, refs, pll = {}, {}, {}
    for u in range(n_utts):
        utt = f"{prefix}{u:03d}"
        ref = list(rng.choice(GOOD, int(rng.integers(4, 7))))
        hyps = [ref]
        for _ in range(n_hyps - 1):
            h = list(ref)
            for p in rng.choice(len(ref), int(rng.integers(1, 3)), replace=False):
                h[p] = str(rng.choice(BAD))
            hyps.append(h)
        hyps = [hyps[i] for i in rng.permutation(n_hyps)]
        first = rng.normal(size=n_hyps) * 5.0 - 20.0
        nbest[utt] = [(" ".join(h), float(f)) for h, f in zip(hyps, first, strict=True)]
        refs[utt] = " ".join(ref)
        for k, h in enumerate(hyps, 1):
            pll[f"{utt}-{k}"] = -3.0 * sum(w in SEEN for w in h) - 2.0 + rng.normal(scale=0.3)
    setdir = make_setdir(root / "set", nbest, refs=refs)
    scores = root / "scores"
    write(scores / "pll", "".join(f"{k} {v!r}\n" for k, v in pll.items()))
    return setdir, scores


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("task")
    return {"enc": tiny_encoder(root / "enc"), "train": synthetic_set(root / "train", 40, seed=1),
            "dev": synthetic_set(root / "dev", 16, seed=2, prefix="d"),
            "test": synthetic_set(root / "test", 30, seed=3, prefix="t"), "root": root}


def _cfg(**kw) -> StudentTrainConfig:
    base = dict(device="cpu", warmup_steps=0, checkpoint_every=0, log_every=1, head_hidden=32, dropout=0.0,
                num_threads=1)
    return StudentTrainConfig(**{**base, **kw})


def _train(task, out: Path, cfg: StudentTrainConfig, **kw) -> dict:
    (tr, trs), (dv, dvs) = task["train"], task["dev"]
    return train_student(tr, trs, dv, dvs, out, cfg, **kw)


def heldout_wer(setdir: Path, model_dir: Path, weight: float) -> tuple[float, float]:
    """(first-pass WER, rescored WER with ``first_pass + weight * student``) of a set, in percent."""
    from rescore.models import RescoreBert

    nbs = load_set(setdir)
    errors, ref_units = hyp_errors(nbs)
    s = RescoreBert.from_pretrained(model_dir).score(list(nbs.texts))
    fp = nbs.streams["score"]
    total = ref_units.sum()
    return (100 * rescored_errors(nbs.offsets, fp, errors) / total,
            100 * rescored_errors(nbs.offsets, fp + weight * s, errors) / total)


# ------------------------------------------------------------------------------------------ config


def test_conf_files_document_every_key():
    assert load_config(StudentTrainConfig, ROOT / "conf" / "md.yaml") == StudentTrainConfig()
    for name in ("md", "mwer", "mwed"):
        conf = ROOT / "conf" / f"{name}.yaml"
        cfg = load_config(StudentTrainConfig, conf)
        assert cfg.objective == name
        lines = conf.read_text().splitlines()
        keys = [ln.split(":")[0] for ln in lines if ln and not ln.startswith("#")]
        assert keys == list(StudentTrainConfig.__dataclass_fields__), name
        for key in keys:
            i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key}:"))
            assert lines[i - 1].startswith("#"), f"{name}: {key} has no comment"


def test_validate_names_the_key():
    for kw, key in ((dict(init=None), "init"), (dict(lr=0.0), "lr"), (dict(norm="bogus"), "norm"),
                    (dict(md_text="x", md_text_scores="y", objective="mwer"), "md_text"),
                    (dict(md_text="x"), "md_text_scores"), (dict(nbest_max=0), "nbest_max")):
        with pytest.raises(ConfigError, match=repr(key)):
            validate(StudentTrainConfig(**{"init": "enc", **kw}))


def test_epoch_order_is_seeded_and_per_epoch():
    a = epoch_order(10, 0, 1)
    assert sorted(a.tolist()) == list(range(10)) and np.array_equal(a, epoch_order(10, 0, 1))
    assert not np.array_equal(a, epoch_order(10, 0, 2))


# ---------------------------------------------------------------------------------------- learning


def test_md_then_mwer_and_mwed_beat_the_first_pass_on_heldout(task):
    root = task["root"]
    md = _train(task, root / "md", _cfg(init=task["enc"], objective="md", epochs=30, lr=3e-3, batch_hyps=16))
    md_epochs = [r for r in md["epochs"] if r["epoch"] >= 1]
    assert md["epochs"][0]["epoch"] == 0 and len(md_epochs) == 30
    assert md_epochs[-1]["dev_md_loss"] < 0.2 * md["epochs"][0]["dev_md_loss"]  # distillation learns the PLL
    fp_md, wer_md = heldout_wer(task["test"][0], root / "md" / "model", md["best_weight"])
    assert md["best_dev_wer"] < 0.5 * md["first_pass_dev_wer"]

    results = {"md": wer_md}
    for obj in ("mwer", "mwed"):
        s = _train(task, root / obj, _cfg(init=str(root / "md" / "model"), objective=obj, epochs=5, lr=1e-3,
                                          batch_utts=8, learn_beta=True, beta_lr=1e-2, lambda_md=0.05))
        assert s["epochs"][0]["dev_wer"] == pytest.approx(md["best_dev_wer"])  # started from the MD student
        assert s["beta_init"] == pytest.approx(md["best_weight"])  # beta = the weight tuned on dev for MD
        assert s["learn_beta"] and s["beta_final"] != s["beta_init"]
        fp, results[obj] = heldout_wer(task["test"][0], root / obj / "model", s["best_weight"])
        assert fp == fp_md
    print(f"held-out WER: first pass {fp_md:.2f}%, " + ", ".join(f"{k} {v:.2f}%" for k, v in results.items()))
    for obj, wer in results.items():
        assert wer < 0.5 * fp_md, (obj, wer, fp_md)
    # The errors the teacher cannot see are learned from the n-best errors only.
    assert results["mwer"] < results["md"] and results["mwed"] < results["md"]


def test_calibrated_output_learns_with_a_fine_tuning_learning_rate(tmp_path, task):
    """The mini_en finding: with a fine-tuning lr, an uncalibrated head stays near 0, far from PLLs."""
    from rescore.models import RescoreBert

    runs = {}
    for calibrate in (True, False):
        cfg = _cfg(init=task["enc"], objective="md", epochs=3, lr=1e-4, batch_hyps=16, calibrate=calibrate)
        runs[calibrate] = _train(task, tmp_path / str(calibrate), cfg)
    pll = read_scores(task["train"][1] / "pll", load_set(task["train"][0]))
    # calibrated: the init student predicts the train mean, so its loss starts near the variance
    assert runs[True]["epochs"][0]["dev_md_loss"] < 0.5 * runs[False]["epochs"][0]["dev_md_loss"]
    assert runs[True]["epochs"][-1]["dev_md_loss"] < 0.5 * runs[False]["epochs"][-1]["dev_md_loss"]
    saved = RescoreBert.from_pretrained(tmp_path / "True" / "model")
    assert saved.output == {"shift": pytest.approx(pll.mean()), "scale": pytest.approx(pll.std())}
    assert not RescoreBert.from_pretrained(tmp_path / "False" / "model").calibrated
    # a trained student keeps its scale when training goes on (MWER from MD)
    s = _train(task, tmp_path / "mwer", _cfg(init=str(tmp_path / "True" / "model"), objective="mwer",
                                             max_steps=1, batch_utts=8))
    assert s is not None and RescoreBert.from_pretrained(tmp_path / "mwer" / "model").output == saved.output


def test_no_finite_pll_leaves_the_output_uncalibrated(tmp_path, task, caplog):
    from rescore.models import RescoreBert

    (tr, trs), (dv, dvs) = task["train"], task["dev"]
    nan_scores = tmp_path / "nan"
    lines = (trs / "pll").read_text().splitlines()
    write(nan_scores / "pll", "".join(f"{ln.split()[0]} nan\n" for ln in lines))
    cfg = _cfg(init=task["enc"], objective="mwer", max_steps=1, batch_utts=8, beta=1.0)
    with caplog.at_level("WARNING"):
        assert train_student(tr, nan_scores, dv, dvs, tmp_path / "out", cfg) is not None
    assert "not calibrated" in caplog.text
    assert not RescoreBert.from_pretrained(tmp_path / "out" / "model").calibrated


# ------------------------------------------------------------------------------------------ resume


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, task):
    enc = tiny_encoder(tmp_path / "enc", dropout=0.1)
    cfg = dict(init=enc, objective="mwer", dropout=0.1, batch_utts=4, grad_accum=2, lr=1e-3, warmup_steps=2,
               learn_beta=True, lambda_md=0.5, schedule_steps=7, checkpoint_every=2)  # 5 steps per epoch
    straight = _train(task, tmp_path / "a", _cfg(max_steps=7, **cfg))
    first = _train(task, tmp_path / "b", _cfg(max_steps=3, **cfg))
    assert first["final_step"] == 3 and first["epochs"][-1]["partial"]
    resumed = _train(task, tmp_path / "b", _cfg(max_steps=7, **cfg), resume=True)
    assert resumed["final_step"] == 7 and resumed["beta_init"] == straight["beta_init"]
    a = load_file(str(tmp_path / "a" / "checkpoints" / "step7" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "step7" / "model.safetensors"))
    assert a.keys() == b.keys() and "beta" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k

    def full(s):
        return [{k: v for k, v in r.items()} for r in s["epochs"] if not r["partial"]]

    assert full(resumed) == full(straight)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(4) == 1  # records past the checkpoint were dropped


def test_done_skips_and_early_stopping(tmp_path, task, caplog):
    cfg = _cfg(init=task["enc"], objective="md", epochs=6, lr=1e-9, batch_hyps=64, early_stopping_patience=2)
    s = _train(task, tmp_path / "x", cfg)
    assert s["stopped_early"] and s["final_step"] < 6 * s["steps_per_epoch"]
    assert s["best_epoch"] == 1  # nothing improves with lr ~ 0: the first trained epoch stays best
    assert (tmp_path / "x" / "model" / "model.safetensors").is_file()
    assert _train(task, tmp_path / "x", cfg) is None  # complete: skipped
    assert _train(task, tmp_path / "x", cfg, overwrite=True) is not None


def test_md_text_adds_distillation_data(tmp_path, task):
    from tests.conftest import make_setdir

    extra = make_setdir(tmp_path / "corpus", {f"c{i}": [(" ".join(GOOD[i:i + 4]), 0.0)] for i in range(4)})
    write(tmp_path / "corpus_pll" / "pll", "".join(f"c{i}-1 -2.0\n" for i in range(4)))
    cfg = _cfg(init=task["enc"], objective="md", epochs=1, batch_hyps=64, md_text=str(extra),
               md_text_scores=str(tmp_path / "corpus_pll"))
    s = _train(task, tmp_path / "x", cfg)
    assert s["train_hypotheses"] == 40 * 4 + 4 and s["steps_per_epoch"] == 3


# --------------------------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, args: tuple, cfg: StudentTrainConfig) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    train_student(*args, cfg)


@pytest.mark.parametrize("objective", ["mwer", "md"])
def test_ddp_two_gloo_processes_equal_one_process(tmp_path, task, objective):
    import torch.multiprocessing as mp

    (tr, trs), (dv, dvs) = task["train"], task["dev"]
    # Odd micro-batches: the two ranks get shards of different sizes. Fusion and a learned beta.
    cfg = _cfg(init=task["enc"], objective=objective, batch_utts=5, batch_hyps=13, grad_accum=2, lr=1e-3,
               max_steps=3, beta=20.0, learn_beta=True, lambda_md=0.5, checkpoint_every=1)
    mp.spawn(_ddp_worker, args=(2, _free_port(), (tr, trs, dv, dvs, tmp_path / "ddp"), cfg), nprocs=2, join=True)
    single = train_student(tr, trs, dv, dvs, tmp_path / "one", cfg)
    ddp = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file() and (tmp_path / "ddp" / ".done").is_file()
    log_lines = (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()
    assert len(log_lines) == len((tmp_path / "one" / "train_log.jsonl").read_text().splitlines())  # rank 0 only
    a = load_file(str(tmp_path / "ddp" / "checkpoints" / "step3" / "model.safetensors"))
    b = load_file(str(tmp_path / "one" / "checkpoints" / "step3" / "model.safetensors"))
    start = load_file(str(tmp_path / "one" / "checkpoints" / "step1" / "model.safetensors"))
    assert any(not torch.equal(start[k], b[k]) for k in b)  # it trained
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)
    if objective == "mwer":
        assert float(a["beta"]) != 20.0
    assert ddp["epochs"][-1]["dev_wer"] == single["epochs"][-1]["dev_wer"]
