"""The student on ONNX Runtime (CUDA provider, or CPU), hyps/s on the anchor sentences.

    python bench/bench_ort_cuda.py [--provider cuda|cpu] [--layers 12] [--hidden 768] [--n 3000]
        [--batch_tokens 65536] [--json OUT]

A random ``layers`` x ``hidden`` BERT student with the uncased 30,522-token vocabulary is exported
to ONNX (:func:`rescore.models.onnx_student.export_onnx`) and scored with ``RescoreBert.score``'s
batching through an ONNX Runtime session on the provider; the scores are checked against
PyTorch's (max abs difference printed). Run by bench/gpu.sh when onnxruntime-gpu is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--batch_tokens", type=int, default=65536)
    p.add_argument("--min_seconds", type=float, default=3.0)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    import onnxruntime as ort
    import torch
    from bench_pll import anchor_sentences, minilm_dir
    from transformers import BertConfig, BertModel

    from rescore.models import RescoreBert
    from rescore.models.hf import load_tokenizer
    from rescore.models.onnx_student import OnnxRunner, export_onnx

    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=30522, hidden_size=args.hidden, num_hidden_layers=args.layers,
                               num_attention_heads=args.hidden // 64, intermediate_size=4 * args.hidden,
                               max_position_embeddings=512), add_pooling_layer=False)
    student = RescoreBert.on_encoder(enc, load_tokenizer(minilm_dir())).eval()
    texts = anchor_sentences(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        graph = export_onnx(student, Path(tmp) / "student.onnx")
        runner = OnnxRunner(graph)
        if args.provider == "cuda":
            runner.session = ort.InferenceSession(str(graph), providers=["CUDAExecutionProvider"])
        ref = student.score(texts[:200])
        got = student.score(texts[:200], runner=runner, batch_tokens=args.batch_tokens)
        diff = float(np.max(np.abs(got - ref)))
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.min_seconds:
            student.score(texts, runner=runner, batch_tokens=args.batch_tokens, dedup=False)
            n += len(texts)
        rate = n / (time.perf_counter() - t0)
    print(f"ONNX Runtime {ort.__version__} {args.provider}: student {args.layers}x{args.hidden}, {len(texts)} "
          f"sentences, batch_tokens {args.batch_tokens}: {rate:,.0f} hyps/s; max abs diff vs PyTorch {diff:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"provider": args.provider, "hyps_per_s": rate, "max_abs_diff": diff,
                                               "layers": args.layers, "hidden": args.hidden}, indent=1))


if __name__ == "__main__":
    main()
