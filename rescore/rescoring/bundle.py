"""A rescorer bundle: everything one rescoring decision needs, in one directory, and :class:`Rescorer`.

``export_bundle(student, weights, out)`` (the ``export_rescorer`` step) writes::

    BUNDLE/rescorer.yaml       what decides: the combination, the dev-tuned weights (the student's
                               beta, the unit bonus wip, the acoustic scale acwt), the normalisation
                               the student reads, the metric and normalisation the units of the
                               bonus are counted with, and where each came from (paths, sha256)
    BUNDLE/student/            the student (save_pretrained: weights, config, tokenizer)
    BUNDLE/student.onnx        the student as an ONNX graph (with onnx true; the onnx extra)
    BUNDLE/student.int8.onnx   its int8 dynamic quantization (with quantize int8)

``Rescorer.from_pretrained(BUNDLE).rescore(hyps, first_pass_scores)`` combines exactly as the
``rescore`` step does (:mod:`rescore.rescoring.design`: ``total = first_pass + beta * student +
wip * units``; ties go to the earlier hypothesis; a non-finite first-pass score or student score
ranks last) and returns the hypotheses in their new order with their totals. Nothing outside the
bundle is read: it can be copied to a machine without the experiment directory. Given the student
scores the step used (``rescore_many(..., student_scores=...)``) the decisions are the step's
exactly; with its own student pass they can differ at near-ties only (fp32 scores move by ~1e-6
with the composition of a batch).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from rescore.data.nbest import NbestBuilder
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.rescoring.design import build_design
from rescore.rescoring.weights import FORMULA, Weights, load_weights
from rescore.stage import atomic_open, digest_paths, run_record

log = get_logger(__name__)

BUNDLE_FILE = "rescorer.yaml"
FORMAT_VERSION = 1
BACKENDS = ("torch", "onnx")


def _weights_info(path: Path) -> dict:
    from rescore.config import read_yaml

    data = read_yaml(path, "weights file")
    if not isinstance(data, dict):
        raise InputError(path, None, "not a weights.yaml mapping")
    return data


def _training_norm(student: Path) -> str | None:
    """The ``norm`` of the ``train_student`` run that wrote ``student`` (its ``config.yaml``)."""
    cfg = student.parent / "config.yaml"
    if not cfg.is_file():
        return None
    try:
        data = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return None
    return data.get("norm") if isinstance(data, dict) else None


def export_bundle(student: str | Path, weights: str | Path, out: str | Path, *, norm: str | None = None,
                  onnx: bool = False, quantize: str = "none", argv: list[str] | None = None) -> Path:
    """Write the bundle ``out`` (replaced atomically) from a student directory and a ``weights.yaml``."""
    from rescore.models.student import RescoreBert

    student, weights, out = Path(student), Path(weights), Path(out)
    if quantize not in ("none", "int8"):
        raise InputError(None, None, f"--quantize must be none or int8, got {quantize!r}")
    if quantize == "int8" and not onnx:
        raise InputError(None, None, "--quantize int8 needs --onnx true (the int8 model is an ONNX graph)")
    if not student.is_dir():
        raise InputError(student, None, "no student directory (train_student's OUT/model)")
    if not weights.is_file():
        raise InputError(weights, None, "no weights.yaml (the rescore step's OUT/weights.yaml)")
    info = _weights_info(weights)
    streams = info.get("streams") or {}
    if not isinstance(streams, dict) or not streams:
        raise InputError(weights, None, "no 'streams' mapping: not a weights.yaml of the rescore step")
    active = [k for k, v in streams.items() if v]
    if len(streams) != 1:
        raise InputError(weights, None, f"the weights combine {len(streams)} streams ({', '.join(streams)}): "
                         "a bundle holds one student; rescore with the student's stream alone")
    label = next(iter(streams))
    w = load_weights(weights, [label])
    if not active:
        log.warning(f"{weights}: the student's weight is 0: the bundle keeps the first-pass order")
    metric = info.get("metric", "wer")
    scoring_norm = info.get("normalization", "none")
    if norm is None:
        norm = _training_norm(student) or "none"
        log.info(f"the student reads its text after normalisation '{norm}' (its training config; --norm to change)")
    try:
        Normalizer.parse(norm)
        Normalizer.parse(scoring_norm)
    except ValueError as e:
        raise InputError(weights, None, f"normalisation: {e}") from None
    try:
        model = RescoreBert.from_pretrained(str(student))
    except (OSError, ValueError, KeyError) as e:
        raise InputError(student, None, f"cannot load a student from it: {e}") from e

    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp / "student")
        graphs = {}
        if onnx:
            from rescore.models.onnx_student import export_onnx, quantize_int8

            graphs["fp32"] = export_onnx(model, tmp / "student.onnx").name
            if quantize == "int8":
                graphs["int8"] = quantize_int8(tmp / "student.onnx", tmp / "student.int8.onnx").name
        spec = {
            "format_version": FORMAT_VERSION,
            "formula": FORMULA,
            "stream": label,
            "weights": {"beta": float(w.streams[label]), "wip": float(w.wip), "acwt": w.acwt},
            "student": {"dir": "student", "norm": str(Normalizer.parse(norm)), "onnx": graphs},
            "units": {"metric": metric, "normalization": str(Normalizer.parse(scoring_norm))},
            "source": {
                "student": str(student.resolve()), "student_digest": digest_paths([student]),
                "weights": str(weights.resolve()), "weights_digest": digest_paths([weights]),
                "dev": info.get("dev"), "dev_rate": info.get("dev_rate"), "tuned": info.get("tuned"),
                "run": run_record(argv, "rescore.bin.export_rescorer"),
            },
        }
        with atomic_open(tmp / BUNDLE_FILE) as f:
            f.write("# A rescorer bundle (python -m rescore.bin.export_rescorer); load it with\n"
                    "# rescore.Rescorer.from_pretrained(DIR). " + FORMULA + "\n")
            yaml.safe_dump(spec, f, sort_keys=False, allow_unicode=True)
        if out.exists():
            old = out.with_name(f".{out.name}.old{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(f"wrote the bundle {out}: student {label} (beta {w.streams[label]:.4g}, wip {w.wip:.4g}"
             f"{'' if w.acwt is None else f', acwt {w.acwt:.4g}'}){', ONNX ' + '+'.join(graphs) if graphs else ''}")
    return out


@dataclass
class Rescored:
    """One n-best list after rescoring: ``order[j]`` is the input index of the j-th best."""

    order: np.ndarray  # input positions, best first
    hyps: list[str]  # the hypotheses in that order
    totals: np.ndarray  # their combined scores (higher is better; -inf: ranked last)
    student: np.ndarray  # the student's score of each, in that order
    first_pass: np.ndarray  # the first-pass score of each, in that order

    def as_dict(self) -> dict:
        def clean(a):
            return [float(x) if np.isfinite(x) else None for x in a.tolist()]

        return {"order": self.order.tolist(), "hyps": self.hyps, "totals": clean(self.totals),
                "student": clean(self.student), "first_pass": clean(self.first_pass)}


class Rescorer:
    """The decisions of a bundle: student scores and the dev-tuned combination (module doc)."""

    def __init__(self, root: Path, spec: dict, student, runner=None, batch_tokens: int | None = None):
        self.root, self.spec, self.student, self.runner = root, spec, student, runner
        w = spec["weights"]
        self.label = spec["stream"]
        self.weights = Weights(streams={self.label: float(w["beta"])}, wip=float(w["wip"]),
                               acwt=None if w.get("acwt") is None else float(w["acwt"]))
        self.norm = Normalizer.parse(spec["student"]["norm"])
        self.units_norm = Normalizer.parse(spec["units"]["normalization"])
        self.metric = spec["units"]["metric"]
        self.batch_tokens = batch_tokens
        self.backend_name = "torch" if runner is None else f"onnx ({runner.path.name})"

    @classmethod
    def from_pretrained(cls, bundle: str | os.PathLike, backend: str = "torch", quantize: str = "none",
                        num_threads: int = 0, device: str = "cpu", batch_tokens: int | None = None) -> Rescorer:
        """Load ``bundle``; ``backend`` torch (``device``) or onnx (``quantize`` none or int8, CPU)."""
        from rescore.models.student import RescoreBert

        root = Path(bundle)
        path = root / BUNDLE_FILE
        if not path.is_file():
            raise InputError(path, None, "not a rescorer bundle (no rescorer.yaml)")
        from rescore.config import read_yaml

        spec = read_yaml(path, "rescorer.yaml")
        if not isinstance(spec, dict) or spec.get("format_version") != FORMAT_VERSION:
            raise InputError(path, None, f"not a version-{FORMAT_VERSION} rescorer bundle")
        if backend not in BACKENDS:
            raise InputError(None, None, f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if quantize not in ("none", "int8"):
            raise InputError(None, None, f"quantize must be none or int8, got {quantize!r}")
        if num_threads:
            from rescore.runtime import set_threads

            set_threads(num_threads)
        student = RescoreBert.from_pretrained(str(root / spec["student"]["dir"]))
        runner = None
        if backend == "onnx":
            from rescore.models.onnx_student import OnnxRunner

            kind = "int8" if quantize == "int8" else "fp32"
            name = (spec["student"].get("onnx") or {}).get(kind)
            if name is None:
                raise InputError(path, None, f"the bundle has no {kind} ONNX graph (export_rescorer --onnx true"
                                 f"{' --quantize int8' if kind == 'int8' else ''})")
            runner = OnnxRunner(root / name, num_threads=num_threads)
        else:
            if quantize != "none":
                raise InputError(None, None, "quantize int8 needs backend onnx")
            student.to(device)
        return cls(root, spec, student, runner, batch_tokens)

    def score(self, hyps: list[str]) -> np.ndarray:
        """The student's scores of ``hyps`` (after the bundle's normalisation), float64."""
        from rescore.defaults import STUDENT_BATCH_TOKENS

        texts = [self.norm.text(t) for t in hyps] if self.norm.flags else list(hyps)
        return self.student.score(texts, batch_tokens=self.batch_tokens or STUDENT_BATCH_TOKENS,
                                  runner=self.runner)

    def rescore(self, hyps: list[str], first_pass_scores, ac_cost=None, graph_cost=None) -> Rescored:
        """One n-best list: hypotheses (as the recogniser wrote them) and their first-pass scores
        (log domain, higher is better; with ``acwt`` in the weights, Kaldi's ``ac_cost`` and
        ``graph_cost`` instead)."""
        return self.rescore_many([(hyps, first_pass_scores, ac_cost, graph_cost)])[0]

    def rescore_many(self, lists: list[tuple], student_scores: list | None = None) -> list[Rescored]:
        """Several n-best lists, ``(hyps, first_pass_scores[, ac_cost, graph_cost])`` each, scored by
        the student together (one batched pass). ``student_scores``: the student's scores of each
        list, computed elsewhere (e.g. by an inference server running ``student.onnx``), instead.

        Student scores in fp32 move by ~1e-6 with the composition of their batch (padding, matrix
        shapes); the decisions equal those of the ``rescore`` step except where two totals are that
        close, which a large student weight can make happen."""
        kaldi = self.weights.acwt is not None
        b = NbestBuilder(["score", "ac_cost", "graph_cost"] if kaldi else ["score"])
        for u, item in enumerate(lists):
            hyps, fp = item[0], item[1]
            ac, graph = (item[2], item[3]) if len(item) > 2 else (None, None)
            hyps = list(hyps)
            if kaldi and (ac is None or graph is None):
                raise ValueError("the bundle's weights set acwt: give ac_cost and graph_cost for every list")
            fp = np.asarray(fp if fp is not None else np.zeros(len(hyps)), dtype=np.float64).reshape(-1)
            cols = [fp] + ([np.asarray(ac, dtype=np.float64).reshape(-1),
                            np.asarray(graph, dtype=np.float64).reshape(-1)] if kaldi else [])
            if not hyps or any(len(c) != len(hyps) for c in cols):
                raise ValueError(f"n-best list {u}: {len(hyps)} hypotheses but "
                                 f"{', '.join(str(len(c)) for c in cols)} scores (need one each, at least one)")
            for k, h in enumerate(hyps):
                if not isinstance(h, str):
                    raise ValueError(f"n-best list {u}, hypothesis {k}: not a string")
                vals = {"score": cols[0][k]}
                if kaldi:
                    vals.update(ac_cost=cols[1][k], graph_cost=cols[2][k])
                b.add(f"u{u}", k + 1, h, vals)
        if b.problems:
            raise ValueError(str(b.problems[0]))
        nbs = b.build()
        if nbs.num_utts != len(lists):  # counts in = counts out
            raise AssertionError(f"{len(lists)} n-best lists in, {nbs.num_utts} built")
        texts = list(nbs.texts)
        if student_scores is None:
            student = self.score(texts)
        else:
            if len(student_scores) != len(lists):
                raise ValueError(f"{len(student_scores)} student score lists for {len(lists)} n-best lists")
            student = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in student_scores])
            if len(student) != len(texts) or any(len(np.asarray(x).reshape(-1)) != len(item[0])
                                                 for x, item in zip(student_scores, lists, strict=True)):
                raise ValueError("student_scores: one score per hypothesis of each list")
        design = build_design(nbs, {self.label: student}, self.units_norm, self.metric)
        total = design.total(self.weights)
        first_pass = design.first_pass(self.weights.acwt)
        order = nbs.order_within(total)
        out = []
        for u in range(nbs.num_utts):
            lo, hi = int(nbs.offsets[u]), int(nbs.offsets[u + 1])
            idx = order[lo:hi]
            out.append(Rescored(order=(nbs.ranks[idx] - 1).astype(np.int64), hyps=[texts[i] for i in idx.tolist()],
                                totals=total[idx], student=student[idx], first_pass=first_pass[idx]))
        return out

    def describe(self) -> str:
        w = self.weights
        return json.dumps({"stream": self.label, "beta": w.streams[self.label], "wip": w.wip, "acwt": w.acwt,
                           "norm": str(self.norm), "metric": self.metric,
                           "backend": self.backend_name})
