"""The student as an ONNX graph, run with ONNX Runtime: fp32, or int8 by dynamic quantization.

:func:`export_onnx` writes ``RescoreBert.forward`` (``input_ids``, ``attention_mask`` -> ``score``,
batch and sequence axes dynamic up to the student's token limit) with PyTorch's ONNX exporter;
:func:`quantize_int8` quantizes its MatMul weights to 8 bits (ONNX Runtime's dynamic quantization:
weights stored as uint8 with a scale per tensor, activations quantized on the fly per batch);
:class:`OnnxRunner` runs either on CPU. A runner plugs into :meth:`RescoreBert.score`
(``runner=``), so tokenisation, truncation, length-sorted batching and deduplication are the
student's own and only the forward pass changes. The exported graph is a plain ONNX model: any
server that runs ONNX (ONNX Runtime, Triton's onnxruntime backend, ...) serves it with the same
two int64 inputs of shape ``(batch, length)`` and one float output of shape ``(batch,)``.

Weights are unsigned 8-bit: on the demo student signed weights (``QInt8``) moved scores by a
standard deviation of 1.7 nats against 0.45 for ``QUInt8`` (teacher PLLs spread by ~16).
Requires the ``onnx`` extra (``pip install "rescore[onnx]"``: onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from rescore.log import get_logger

log = get_logger(__name__)

INPUTS = ("input_ids", "attention_mask")
OUTPUT = "score"
OPSET = 18


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed for the ONNX backend: pip install 'rescore[onnx]' ({e})") from None


def export_onnx(student, path: str | Path) -> Path:
    """Write ``student`` (a :class:`rescore.models.RescoreBert`) as an ONNX graph at ``path`` (atomic)."""
    import torch

    _need("onnx")
    _need("onnxscript")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = student.training
    student.eval()
    example = student.encode(["a b c", "a"])
    batch = torch.export.Dim("batch", min=1)
    length = torch.export.Dim("length", min=1, max=max(2, int(student.max_length)))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        # the exporter prints its progress and warns about axis names: keep both out of our log
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(student, (example["input_ids"], example["attention_mask"]), str(tmp),
                              input_names=list(INPUTS), output_names=[OUTPUT], opset_version=OPSET,
                              dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}), dynamo=True,
                              external_data=False, verbose=False)
        os.replace(tmp, path)
    finally:
        student.train(was_training)
        tmp.unlink(missing_ok=True)
    log.info(f"exported the student to {path} (ONNX opset {OPSET})")
    return path


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """Dynamic int8 quantization of the graph ``src`` into ``dst`` (MatMul weights to uint8)."""
    _need("onnx")
    quantization = _need("onnxruntime.quantization")
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    # The quantizer logs advice through the root logger, which would configure it (and double
    # every later message of ours): give the root a handler of its own for the call.
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    try:
        quantization.quantize_dynamic(str(src), str(tmp), weight_type=quantization.QuantType.QUInt8)
        os.replace(tmp, dst)
    finally:
        if guard is not None:
            root.removeHandler(guard)
        tmp.unlink(missing_ok=True)
    log.info(f"quantized {src} to int8: {dst}")
    return dst


class OnnxRunner:
    """``runner(input_ids, attention_mask) -> scores`` with an ONNX Runtime CPU session."""

    def __init__(self, path: str | Path, num_threads: int = 0):
        ort = _need("onnxruntime")
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no ONNX model")
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUTS):
            raise ValueError(f"{self.path}: inputs {names}, expected {list(INPUTS)} (not a student graph)")

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
                "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64)}
        return np.asarray(self.session.run([OUTPUT], feed)[0], dtype=np.float32).reshape(-1)
