"""Student inference on CPU: PyTorch fp32 against ONNX Runtime fp32 and int8, in one run.

    python bench/bench_latency.py [--bundle BUNDLE] [--set egs/mini_en/data/test] [--threads 2]
        [--lists 200] [--min_seconds 3] [--json OUT.json]

Students: the one of ``--bundle`` (a rescorer bundle, e.g. of the mini_en MWER student:
``python -m rescore.bin.export_rescorer --student egs/mini_en/exp/student_mwer/model --weights
egs/mini_en/exp/rescore/mwer/weights.yaml --out BUNDLE``; its ONNX graphs are made here when the
bundle has none), and a random 3-layer 384-wide BERT student with the 30,522-token uncased
vocabulary (built here, no download). Each runs with the three backends on the same machine,
the same threads and the same n-best lists (those of ``--set``, the mini_en test set by default):

* throughput: every hypothesis of the set scored in one call (length-sorted batches, the
  default ``batch_tokens``, deduplication off), repeated for ``--min_seconds``; hyps/s and the
  ratio to PyTorch fp32;
* latency of one n-best list (``Rescorer.rescore``: tokenise, score, combine, sort) over
  ``--lists`` lists: p50, p95, p99 in ms;
* accuracy (the bundle's student): WER of the set rescored with the bundle's weights, its change
  against PyTorch fp32, and the share of utterances whose chosen hypothesis changes.

Targets (issue 13): int8 ONNX >= 3x PyTorch fp32 throughput, p50 <= 10 ms per 20-best list with
the 3-layer student on 2 cores, WER change <= 0.1 absolute. The machine should be quiet; the
load average at the start and the end is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = Path(__file__).resolve().parents[1]
BACKENDS = (("torch", "none", "PyTorch fp32"), ("onnx", "none", "ONNX Runtime fp32"),
            ("onnx", "int8", "ONNX Runtime int8"))


def random_student_bundle(root: Path, layers: int = 3, hidden: int = 384) -> Path:
    """A bundle of a random ``layers`` x ``hidden`` BERT student (weights 1.0, no bonus)."""
    import torch
    import yaml
    from bench_pll import minilm_dir
    from transformers import BertConfig, BertModel

    from rescore.models import RescoreBert
    from rescore.models.hf import load_tokenizer
    from rescore.rescoring.bundle import export_bundle

    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=hidden // 64, intermediate_size=4 * hidden,
                               max_position_embeddings=512), add_pooling_layer=False)
    student = RescoreBert.on_encoder(enc, load_tokenizer(minilm_dir())).eval()
    student.save_pretrained(root / "student")
    (root / "weights.yaml").write_text(yaml.safe_dump({"streams": {"st": 1.0}, "wip": 0.0, "acwt": None,
                                                       "metric": "wer", "normalization": "none"}))
    return export_bundle(root / "student", root / "weights.yaml", root / "bundle", onnx=True, quantize="int8")


def with_graphs(bundle: Path, root: Path) -> Path:
    """``bundle`` itself when it has both ONNX graphs, else a copy with them made."""
    import yaml

    from rescore.models.onnx_student import export_onnx, quantize_int8
    from rescore.models.student import RescoreBert

    spec = yaml.safe_load((bundle / "rescorer.yaml").read_text())
    if {"fp32", "int8"} <= set(spec["student"].get("onnx") or {}):
        return bundle
    copy = root / "bundle_onnx"
    shutil.copytree(bundle, copy)
    student = RescoreBert.from_pretrained(str(copy / spec["student"]["dir"]))
    export_onnx(student, copy / "student.onnx")
    quantize_int8(copy / "student.onnx", copy / "student.int8.onnx")
    spec["student"]["onnx"] = {"fp32": "student.onnx", "int8": "student.int8.onnx"}
    (copy / "rescorer.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return copy


def throughput(r, texts: list[str], min_seconds: float) -> float:
    r.student.score(texts[:64], dedup=False, runner=r.runner)  # warm-up
    n, t0 = 0, time.perf_counter()
    while True:
        r.student.score(texts, dedup=False, runner=r.runner)
        n += len(texts)
        el = time.perf_counter() - t0
        if el >= min_seconds:
            return n / el


def latencies(r, lists: list[tuple]) -> np.ndarray:
    for item in lists[:5]:  # warm-up
        r.rescore(*item)
    out = []
    for item in lists:
        t0 = time.perf_counter()
        r.rescore(*item)
        out.append(time.perf_counter() - t0)
    return np.array(out) * 1000.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default=None, help="a rescorer bundle (accuracy is measured with it)")
    p.add_argument("--set", default=str(REPO / "egs" / "mini_en" / "data" / "test"),
                   help="n-best lists (default: the mini_en test set, made by its run.sh --stop_stage 0)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lists", type=int, default=200, help="n-best lists timed one by one")
    p.add_argument("--min_seconds", type=float, default=3.0)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    import torch

    import rescore
    from rescore.data.nbest import load_set
    from rescore.runtime import set_threads
    from rescore.scoring.wer import hyp_errors

    set_threads(args.threads)
    load0 = os.getloadavg()
    nbs = load_set(args.set)
    errors, ref_units = hyp_errors(nbs)
    lists = [(nbs.hyps(u), nbs.streams["score"][nbs.offsets[u]:nbs.offsets[u + 1]]) for u in range(nbs.num_utts)]
    timed = (lists * (args.lists // len(lists) + 1))[:args.lists]
    texts = list(nbs.texts)
    sizes = np.diff(nbs.offsets)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads; "
          f"torch {torch.__version__}; load average at start {load0[0]:.2f}")
    print(f"data: {args.set}: {nbs.num_utts} n-best lists, {nbs.num_hyps} hypotheses "
          f"(mean {sizes.mean():.1f} per list, max {sizes.max()})")
    rows, results = [], {"set": args.set, "threads": args.threads, "systems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        students = []
        if args.bundle:
            students.append(("bundle student", with_graphs(Path(args.bundle), tmp), True))
        students.append(("random 3x384", random_student_bundle(tmp / "random"), False))
        for name, bundle, accuracy in students:
            chosen_ref, base = None, None
            for backend, quantize, label in BACKENDS:
                r = rescore.Rescorer.from_pretrained(bundle, backend=backend, quantize=quantize,
                                                     num_threads=args.threads)
                c = r.student.encoder.config
                hps = throughput(r, texts, args.min_seconds)
                lat = latencies(r, timed)
                row = {"student": f"{name} ({c.num_hidden_layers}x{c.hidden_size})", "backend": label,
                       "hyps_per_s": hps, "p50_ms": float(np.percentile(lat, 50)),
                       "p95_ms": float(np.percentile(lat, 95)), "p99_ms": float(np.percentile(lat, 99))}
                base = base or hps
                row["speedup"] = hps / base
                if accuracy:
                    got = r.rescore_many(lists)
                    chosen = np.array([nbs.offsets[u] + g.order[0] for u, g in enumerate(got)])
                    row["wer"] = 100.0 * errors[chosen].sum() / ref_units.sum()
                    if chosen_ref is None:
                        chosen_ref, wer_ref = chosen, row["wer"]
                    row["wer_change"] = row["wer"] - wer_ref
                    row["changed_1best"] = float(np.mean(chosen != chosen_ref))
                rows.append(row)
                results["systems"].setdefault(name, []).append(row)
                print(json.dumps(row), flush=True)
    load1 = os.getloadavg()
    print(f"\nload average at the end {load1[0]:.2f}")
    print("| student | backend | hyps/s | vs PyTorch fp32 | p50 ms | p95 ms | p99 ms | WER | WER change | 1-best changed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        acc = (f"{r['wer']:.2f} | {r['wer_change']:+.2f} | {100 * r['changed_1best']:.0f}%" if "wer" in r
               else " |  | ")
        print(f"| {r['student']} | {r['backend']} | {r['hyps_per_s']:,.0f} | {r['speedup']:.2f}x | {r['p50_ms']:.1f} "
              f"| {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {acc} |")
    int8 = [r for r in rows if r["backend"].endswith("int8")]
    for r in int8:
        ok = r["speedup"] >= 3 and r["p50_ms"] <= 10 and ("wer_change" not in r or abs(r["wer_change"]) <= 0.1)
        print(f"targets {r['student']}: int8 {r['speedup']:.2f}x (>= 3x), p50 {r['p50_ms']:.1f} ms (<= 10)"
              + (f", WER change {r['wer_change']:+.2f} (<= 0.1)" if "wer_change" in r else "")
              + (": MET" if ok else ": NOT MET"))
    if args.json:
        results["load_average"] = [load0[0], load1[0]]
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
