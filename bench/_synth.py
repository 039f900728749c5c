"""Synthetic n-best sets of a realistic shape for the benchmarks (no data download needed)."""

from __future__ import annotations

import numpy as np

from rescore.data.nbest import NbestSet, TextColumnBuilder


def synthetic_set(num_hyps: int, nbest: int = 20, seed: int = 0, vocab_size: int = 20000,
                  mean_words: int = 18) -> NbestSet:
    """``num_hyps`` hypotheses, ``nbest`` per utterance, each a few edits away from a reference."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(vocab_size)]
    zipf = rng.zipf(1.3, size=4_000_000) % vocab_size
    zi = 0
    n_utts = num_hyps // nbest
    texts = TextColumnBuilder()
    refs = {}
    utt_ids = []
    for u in range(n_utts):
        n = max(3, int(rng.poisson(mean_words)))
        ref = [vocab[t] for t in zipf[zi:zi + n]]
        zi = (zi + n) % (len(zipf) - 100)
        uid = f"spk{u // 50:05d}-utt{u:07d}"
        utt_ids.append(uid)
        refs[uid] = " ".join(ref)
        for _ in range(nbest):
            hyp = list(ref)
            for _ in range(int(rng.integers(0, 4))):
                pos = int(rng.integers(0, len(hyp) + 1))
                op = rng.integers(0, 3)
                if op == 0 and hyp:
                    hyp[min(pos, len(hyp) - 1)] = vocab[int(rng.integers(0, vocab_size))]
                elif op == 1:
                    hyp.insert(pos, vocab[int(rng.integers(0, vocab_size))])
                elif hyp:
                    del hyp[min(pos, len(hyp) - 1)]
            texts.append(" ".join(hyp).encode())
    h = n_utts * nbest
    offsets = np.arange(0, h + 1, nbest, dtype=np.int64)
    ranks = np.tile(np.arange(1, nbest + 1, dtype=np.int32), n_utts)
    score = -rng.gamma(2.0, 10.0, size=h)
    return NbestSet(utt_ids, offsets, ranks, texts.build(), {"score": score}, refs, {})
