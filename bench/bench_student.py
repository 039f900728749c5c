"""Speed of the RescoreBERT student against the PLL teacher: same architecture, same hypotheses, one run.

    python bench/bench_student.py [--n 400] [--model random-small|random-base|minilm]
        [--device cpu|cuda|auto] [--dtype fp32|bf16|fp16] [--batch_tokens N] [--threads N]

Both sides run the SAME encoder on the SAME texts on the same hardware in one process:
the student (:meth:`rescore.models.RescoreBert.score`: one forward pass per hypothesis, the head on
the first token) and the teacher (:class:`rescore.models.pll.PllScorer`, fp32, dedup off: one masked
copy per token). Both include tokenisation, as in production; deduplication is off on both sides.
Models: ``random-small`` is a random 6-layer 384-wide BERT (the MiniLM-L6 shape, the CPU target),
``random-base`` a random 12-layer 768-wide BERT (the GPU target), ``minilm`` the MiniLM-L6
encoder (PLL with its head tied to the embeddings); random weights give the same timing.

Data: the token-count distribution of ``bench/data/anchor_sentences.txt`` (WordPiece ids via
``bench_pll.anchor_hypotheses``), with every token redrawn as a whole-word vocabulary entry. Each drawn id is mapped to a whole-word vocabulary entry, so a hypothesis of n tokens is a text of
n words that tokenises back to exactly n tokens (checked). Lengths below include [CLS]/[SEP].

Printed: hypotheses/s of each side and their ratio, per length bucket (<=10, 11-20, 21-40, >40
tokens) and overall (mean ~20 tokens). The student's time is measured over repeated passes until
``--min_seconds`` have elapsed (it is fast); the PLL side runs once. Target: >= 10x at ~20 tokens
on CPU; on an H100/H200-class card the 12-layer 768-wide student in bf16 should pass 25,000 hyps/s:
``python bench/bench_student.py --model random-base --device cuda --dtype bf16 --batch_tokens 65536 --n 3000``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_pll import DATA, FIRST_WORDPIECE, LAST_WORDPIECE, anchor_hypotheses, load, sync  # noqa: E402

from rescore.models import RescoreBert  # noqa: E402
from rescore.models.pll import PllScorer  # noqa: E402
from rescore.runtime import resolve_device, set_threads  # noqa: E402

BUCKETS = [(0, 10, "<=10"), (11, 20, "11-20"), (21, 40, "21-40"), (41, 10**9, ">40")]


def whole_words(tok) -> list[str]:
    """Vocabulary entries in the ordinary-token range that tokenise back to themselves as one token."""
    cand = [t for t in tok.convert_ids_to_tokens(list(range(FIRST_WORDPIECE, LAST_WORDPIECE + 1)))
            if t.isascii() and t.isalpha() and not t.startswith("##")]
    enc = tok(cand, add_special_tokens=False)["input_ids"]
    return [t for t, ids in zip(cand, enc, strict=True) if len(ids) == 1]


def to_texts(words: list[list[int]], tok) -> list[str]:
    """Hypotheses of n tokens as texts of n whole words (each id mapped to a whole word)."""
    vocab = whole_words(tok)
    texts = [" ".join(vocab[i % len(vocab)] for i in ids) for ids in words]
    got = [len(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]
    want = [len(x) for x in words]
    if got != want:
        raise RuntimeError("texts do not tokenise back to the drawn lengths")
    return texts


def timed(fn, device: torch.device, min_seconds: float = 0.0) -> tuple[float, int]:
    """(seconds, passes): ``fn`` run once, or repeatedly until ``min_seconds`` have elapsed."""
    passes = 0
    sync(device)
    t0 = time.perf_counter()
    while True:
        fn()
        passes += 1
        sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed, passes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=400, help="hypotheses (seeded subsample of the 3,000)")
    p.add_argument("--model", default="random-small", help="random-small, random-base or minilm")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="the student's precision")
    p.add_argument("--pll_dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="the teacher's precision")
    p.add_argument("--batch_tokens", type=int, default=8192, help="student: padded tokens per batch")
    p.add_argument("--pll_batch_tokens", type=int, default=4096, help="teacher: tokens per batch")
    p.add_argument("--min_seconds", type=float, default=2.0, help="student: time repeated passes for this long")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    p.add_argument("--json", default=None, help="also write the overall figures to this JSON file")
    args = p.parse_args()
    device = resolve_device(args.device)
    threads = set_threads(args.threads or None) if device.type == "cpu" else None

    raw, words, degenerate, _ = anchor_hypotheses(args.n)
    mlm, tok = load(args.model, device)
    texts = to_texts(words, tok)
    lens = np.array([len(x) + 2 for x in words])  # incl. [CLS]/[SEP]
    encoder = mlm.base_model  # the very same encoder weights on both sides
    student = RescoreBert.on_encoder(encoder, tok).to(device).eval()
    pll = PllScorer(mlm, tok, device=device, dtype=args.pll_dtype, batch_tokens=args.pll_batch_tokens, dedup=False)

    cfg = encoder.config
    cpu = platform.processor() or platform.machine()
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {cpu}, {threads} threads"
    print(f"device: {card}; torch {torch.__version__}; model {args.model}: {type(encoder).__name__} "
          f"{cfg.num_hidden_layers} layers x {cfg.hidden_size}, attention {getattr(cfg, '_attn_implementation', '?')}")
    print(f"data: {len(texts)} hypotheses, token counts of {DATA}" + (" (words redrawn: its ids are broken)"
          if degenerate else "") + f"; mean {lens.mean():.1f} tokens incl. [CLS]/[SEP], max {lens.max()}")
    print(f"student: RescoreBert.score, {args.dtype}, batch_tokens {args.batch_tokens}, dedup off; "
          f"teacher: PllScorer.score, {args.pll_dtype}, batch_tokens {args.pll_batch_tokens}, dedup off")

    def score_student(sel: list[str]):
        return student.score(sel, batch_tokens=args.batch_tokens, dtype=args.dtype, dedup=False)

    score_student(texts[:64])  # warm-up
    pll.score(texts[:8])
    rows = []
    groups = [(name, np.flatnonzero((lens >= lo) & (lens <= hi))) for lo, hi, name in BUCKETS]
    groups.append(("overall", np.arange(len(texts))))
    for name, idx in groups:
        if len(idx) == 0:
            continue
        sel = [texts[i] for i in idx]
        t_s, passes = timed(lambda sel=sel: score_student(sel), device, args.min_seconds)
        t_p, _ = timed(lambda sel=sel: pll.score(sel), device)
        rate_s, rate_p = len(sel) * passes / t_s, len(sel) / t_p
        rows.append((name, len(sel), float(lens[idx].mean()), rate_s, rate_p, rate_s / rate_p))
    print(f"{'tokens':>8} {'hyps':>6} {'mean len':>8} {'student hyps/s':>15} {'PLL hyps/s':>11} {'ratio':>7}")
    for name, n, mean, rs, rp, ratio in rows:
        print(f"{name:>8} {n:>6} {mean:>8.1f} {rs:>15.1f} {rp:>11.1f} {ratio:>6.1f}x")
    overall = rows[-1]
    ok = "PASS" if overall[5] >= 10 else "FAIL"
    print(f"overall at mean {overall[2]:.1f} tokens: student {overall[5]:.1f}x PLL (target >= 10x: {ok})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "device": card, "dtype": args.dtype, "student_hyps_per_s": overall[3],
                       "pll_hyps_per_s": overall[4], "ratio": overall[5]}, f, indent=1)
    if device.type == "cuda":
        ok = "PASS" if overall[3] >= 25000 else "FAIL"
        print(f"student throughput {overall[3]:.0f} hyps/s (target >= 25,000 for 12x768 bf16: {ok})")


if __name__ == "__main__":
    main()
