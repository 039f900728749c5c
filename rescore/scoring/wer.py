"""Word and character error rates, as Kaldi's ``compute-wer`` computes and prints them.

* :func:`kaldi_edit_distance` is Kaldi's ``LevenshteinEditDistance`` (util/edit-distance-inl.h):
  unit costs, and where several alignments have the minimum cost the ins/del/sub split is
  Kaldi's (a substitution or match only when strictly cheaper than both alternatives, then a
  deletion when strictly cheaper than an insertion, else an insertion).
* :func:`kaldi_align` is Kaldi's ``LevenshteinAlignment`` backtrace (used by ``align-text``).

Both are Kaldi's own code as the k2 project's ``kaldialign`` ships it (C++); the tests check them
against a plain transcription of the Kaldi recursion and against Kaldi's ``compute-wer``. The
bootstrap intervals are not kaldialign's ``bootstrap_wer_ci`` (a normal interval per system):
:func:`rescore.scoring.bootstrap.bootstrap_changes` gives the percentile interval of the paired
difference, vectorised over replicates.
* :func:`hyp_errors` counts errors of every hypothesis of a set in bulk (rapidfuzz, C++), the
  targets of discriminative training; the totals equal Kaldi's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import kaldialign
import numpy as np
from rapidfuzz.distance import Levenshtein

from rescore.data.textnorm import Normalizer

MODES = ("present", "all", "strict")


def kaldi_edit_distance(ref: list, hyp: list) -> tuple[int, int, int, int]:
    """``(errors, ins, del, sub)`` exactly as Kaldi's ``LevenshteinEditDistance`` (kaldialign, C++)."""
    e = kaldialign.edit_distance(ref, hyp)
    return e["total"], e["ins"], e["del"], e["sub"]


def kaldi_align(ref: list[str], hyp: list[str], eps: str = "***") -> list[tuple[str, str]]:
    """Aligned ``(ref, hyp)`` pairs with ``eps`` for gaps, Kaldi's ``LevenshteinAlignment`` (kaldialign)."""
    return [tuple(pair) for pair in kaldialign.align(ref, hyp, eps)]


@dataclass
class WerResult:
    """Totals of a scoring run, printable as Kaldi's ``compute-wer`` lines."""

    errors: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0
    ref_units: int = 0
    sents: int = 0
    sent_errs: int = 0
    absent: int = 0
    per_utt: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Error rate in percent (``nan``/``inf`` with no reference units, as Kaldi prints)."""
        if self.ref_units == 0:
            return math.nan if self.errors == 0 else math.inf
        return 100.0 * self.errors / self.ref_units

    @property
    def ser(self) -> float:
        if self.sents == 0:
            return math.nan
        return 100.0 * self.sent_errs / self.sents

    def add(self, utt: str, ref: list, hyp: list) -> None:
        err, i, d, s = kaldi_edit_distance(ref, hyp)
        self.errors += err
        self.ins += i
        self.dels += d
        self.subs += s
        self.ref_units += len(ref)
        self.sents += 1
        self.sent_errs += ref != hyp
        self.per_utt[utt] = (err, i, d, s, len(ref))

    def kaldi_lines(self) -> list[str]:
        """The three stdout lines of ``compute-wer`` (labelled %WER even for CER, like Kaldi)."""
        partial = " [PARTIAL]" if self.absent else ""
        return [
            f"%WER {kaldi_percent(self.errors, self.ref_units)} [ {self.errors} / {self.ref_units}, {self.ins} ins, "
            f"{self.dels} del, {self.subs} sub ]{partial}",
            f"%SER {kaldi_percent(self.sent_errs, self.sents)} [ {self.sent_errs} / {self.sents} ]",
            f"Scored {self.sents} sentences, {self.absent} not present in hyp.",
        ]

    def summary(self) -> dict:
        return {
            "rate": self.rate, "errors": self.errors, "ins": self.ins, "del": self.dels,
            "sub": self.subs, "ref_units": self.ref_units, "sentences": self.sents,
            "sentence_errors": self.sent_errs, "absent": self.absent,
        }


def kaldi_percent(num: int, den: int) -> str:
    """``100 * num / den`` printed as ``compute-wer`` prints it: computed from single-precision
    operands and stored in a float (``BaseFloat``), two decimals; ``-nan`` for 0 / 0 (the x86
    default NaN has its sign bit set) and ``inf`` for n / 0."""
    if den == 0:
        return "-nan" if num == 0 else "inf"
    rate = np.float32(100.0 * float(np.float32(num)) / float(np.float32(den)))
    return f"{float(rate):.2f}"


class AbsentHypothesisError(KeyError):
    pass


def score_texts(refs: dict[str, str] | list[tuple[str, str]], hyps: dict[str, str],
                norm: Normalizer | None = None, metric: str = "wer", mode: str = "present") -> WerResult:
    """Score hypotheses against references the way ``compute-wer --mode=MODE`` does.

    Iterates over the references (a dict, or ``(utt, text)`` pairs in file order, where a key may
    repeat: Kaldi scores each line); a reference without hypothesis is skipped (``present``),
    scored against an empty hypothesis (``all``), or an error (``strict``). Hypotheses without
    a reference are ignored, as Kaldi does.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    norm = norm or Normalizer()
    res = WerResult()
    for utt, ref in refs.items() if isinstance(refs, dict) else refs:
        if utt not in hyps:
            if mode == "strict":
                raise AbsentHypothesisError(f"no hypothesis for key {utt} and mode strict")
            res.absent += 1
            if mode == "present":
                continue
            hyp = ""
        else:
            hyp = hyps[utt]
        res.add(utt, norm.units(ref, metric), norm.units(hyp, metric))
    return res


def _as_string(units: list[str], table: dict[str, str]) -> str:
    """Map units to single code points so rapidfuzz compares whole units at C++ speed."""
    out = []
    for u in units:
        c = table.get(u)
        if c is None:
            n = len(table)
            if n >= 0x1900 + 0x100000 - 0x10000:
                raise OverflowError("more distinct units than Unicode code points")
            c = chr(n + 0xE000) if n < 0x1900 else chr(n - 0x1900 + 0x10000)
            table[u] = c
        out.append(c)
    return "".join(out)


def hyp_errors(nbs, norm: Normalizer | None = None, metric: str = "wer",
               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Errors of every hypothesis against its utterance's reference, in bulk.

    Returns ``(errors, ref_units)``: ``errors[i]`` for hypothesis ``i`` (NaN when its utterance
    has no reference) and ``ref_units[u]`` the reference length of utterance ``u`` (0 if none).
    """
    norm = norm or Normalizer()
    refs = nbs.refs or {}
    errors = np.full(nbs.num_hyps, np.nan)
    ref_units = np.zeros(nbs.num_utts, dtype=np.int64)
    table: dict[str, str] = {}
    offsets = nbs.offsets.tolist()
    texts = nbs.texts
    utts = range(nbs.num_utts)
    if show_progress:
        from tqdm import tqdm
        utts = tqdm(utts, desc="errors", unit="utt", mininterval=2.0)
    cache: dict[bytes, list[str]] = {}
    for u in utts:
        ref = refs.get(nbs.utt_ids[u])
        if ref is None:
            continue
        r_units = norm.units(ref, metric)
        ref_units[u] = len(r_units)
        r = _as_string(r_units, table)
        for i in range(offsets[u], offsets[u + 1]):
            raw = texts.raw(i)
            h = cache.get(raw)
            if h is None:
                h = _as_string(norm.units(raw.decode("utf-8"), metric), table)
                if len(cache) < 1_000_000:
                    cache[raw] = h
            errors[i] = Levenshtein.distance(r, h)
    return errors, ref_units
