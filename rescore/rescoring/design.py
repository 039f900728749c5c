"""The arrays of one set that the combination needs (:class:`Design`), and the combination.

:func:`build_design` turns a set and its raw stream values into flat per-hypothesis arrays:
the first-pass score (or Kaldi's costs), the scoring units of the unit bonus (:func:`count_units`,
counted as errors are counted), the streams with non-finite values zeroed, which utterances carry
stream information and which hypotheses are ranked last. :meth:`Design.total` is the combination.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rescore.data.nbest import NbestSet
from rescore.data.textnorm import Normalizer
from rescore.rescoring.weights import Weights
from rescore.scoring.stats import scoring_setup


def count_words(nbs: NbestSet) -> np.ndarray:
    """Tokens of every hypothesis as stored (vectorised over the packed text column)."""
    spaces = np.flatnonzero(np.frombuffer(nbs.texts.buf, dtype=np.uint8) == 32)
    o = nbs.texts.offsets
    return np.searchsorted(spaces, o[1:]) - np.searchsorted(spaces, o[:-1]) + (o[1:] > o[:-1])


def count_units(nbs: NbestSet, norm: Normalizer | None = None, metric: str = "wer") -> np.ndarray:
    """Scoring units of every hypothesis: ``len(norm.units(text, metric))``, as errors are counted.

    Words after normalisation for ``wer`` (``csj``/``bracket`` drop ``<sp>``, ``<unk>``, ...),
    characters (whitespace removed, surviving bracketed tokens one each) for ``cer``. Normalisation
    maps each space-separated token on its own, so the count is a sum over tokens: each distinct
    token is normalised once, the sums are vectorised.
    """
    norm = norm or Normalizer()
    if metric not in ("wer", "cer"):
        raise ValueError(f"unknown metric {metric!r} (wer or cer)")
    if metric == "wer" and not norm.flags:
        return count_words(nbs)
    texts = nbs.texts
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    o = texts.offsets
    # one space between rows too, so that a split gives every row's tokens in order (an empty row
    # gives one empty token): row i holds (its spaces + 1) tokens
    joined = b" ".join(texts.buf[s:e] for s, e in zip(o[:-1].tolist(), o[1:].tolist(), strict=True))
    tokens = joined.split(b" ")
    counts = {t: len(norm.units([t.decode("utf-8")], metric)) for t in set(tokens)}
    per_token = np.fromiter(map(counts.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    tokens_per_row = count_words(nbs) + (o[1:] == o[:-1])
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(tokens_per_row[:-1], out=starts[1:])
    return np.add.reduceat(per_token, starts)


@dataclass
class Design:
    """What the combination needs for one set, as flat per-hypothesis arrays.

    ``streams`` hold the stream values with non-finite ones replaced by 0; ``info[u]`` says that
    utterance ``u`` has some finite value in some stream; ``dead[i]`` marks hypotheses with a
    non-finite value in a stream that is finite elsewhere in their utterance (ranked last).
    """

    offsets: np.ndarray
    score: np.ndarray
    ac: np.ndarray | None
    graph: np.ndarray | None
    units: np.ndarray  # scoring units per hypothesis (count_units), the direction of wip
    streams: dict[str, np.ndarray] = field(default_factory=dict)
    info: np.ndarray | None = None  # per utterance
    dead: np.ndarray | None = None  # per hypothesis

    def __post_init__(self) -> None:
        n_u = len(self.offsets) - 1
        if self.info is None:
            self.info = np.ones(n_u, dtype=bool)
        if self.dead is None:
            self.dead = np.zeros(len(self.score), dtype=bool)

    @property
    def kaldi(self) -> bool:
        return self.ac is not None and self.graph is not None

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def units_eff(self) -> np.ndarray:
        """Units where the unit bonus applies (not in utterances without stream information)."""
        return self.units * np.repeat(self.info, self.counts)

    def first_pass(self, acwt: float | None) -> np.ndarray:
        """The first-pass score at ``acwt`` (``score`` when None); non-finite -> -inf."""
        if acwt is None:
            fp = self.score
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                fp = -(self.graph + acwt * self.ac)
        return np.where(np.isfinite(fp), fp, -np.inf)

    def rest(self, w: Weights, skip: str | None = None) -> np.ndarray:
        """``sum_k beta_k * stream_k + wip * units`` (leaving out component ``skip``)."""
        out = np.zeros(len(self.score))
        for k, v in self.streams.items():
            if k != skip and w.streams.get(k, 0.0):
                out += w.streams[k] * v
        if skip != "wip" and w.wip:
            out += w.wip * self.units_eff
        return out

    def total(self, w: Weights) -> np.ndarray:
        t = self.first_pass(w.acwt) + self.rest(w)
        t[self.dead] = -np.inf
        return t

    def subset(self, utt_mask: np.ndarray) -> Design:
        """The design restricted to the utterances of ``utt_mask``."""
        hyp_mask = np.repeat(utt_mask, self.counts)
        offsets = np.zeros(int(utt_mask.sum()) + 1, dtype=np.int64)
        np.cumsum(self.counts[utt_mask], out=offsets[1:])

        def cut(a):
            return None if a is None else a[hyp_mask]

        return Design(offsets, self.score[hyp_mask], cut(self.ac), cut(self.graph), self.units[hyp_mask],
                      {k: v[hyp_mask] for k, v in self.streams.items()}, self.info[utt_mask], self.dead[hyp_mask])

    def without_streams(self) -> Design:
        return Design(self.offsets, self.score, self.ac, self.graph, self.units)


def build_design(nbs: NbestSet, raw: dict[str, np.ndarray], norm: Normalizer | None = None,
                 metric: str | None = None) -> Design:
    """The design of ``nbs`` with the raw stream values ``raw`` (label -> values in set order).

    The units of the word bonus are counted with ``norm`` and ``metric``, by default the set's own
    (:func:`rescore.scoring.stats.scoring_setup`: meta.yaml).
    """
    if norm is None or metric is None:
        set_norm, set_metric = scoring_setup(nbs)
        norm, metric = norm or set_norm, metric or set_metric
    offsets = np.asarray(nbs.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    info = np.zeros(len(counts), dtype=bool) if raw else None
    dead = np.zeros(nbs.num_hyps, dtype=bool)
    clean = {}
    for label, v in raw.items():
        fin = np.isfinite(v)
        has = np.add.reduceat(fin.astype(np.int64), offsets[:-1]) > 0
        info |= has
        dead |= np.repeat(has, counts) & ~fin
        clean[label] = np.where(fin, v, 0.0)
    s = nbs.streams
    ac, graph = s.get("ac_cost"), s.get("graph_cost")
    return Design(offsets, s["score"], ac if graph is not None else None, graph if ac is not None else None,
                  count_units(nbs, norm, metric).astype(np.float64), clean, info, dead)

