"""Set-level scoring: cached per-hypothesis errors, first-pass and oracle error rates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rescore.data.nbest import NbestSet, build_meta, write_meta, write_stream
from rescore.data.textnorm import Normalizer, default_metric, default_norm
from rescore.log import get_logger
from rescore.scoring.wer import WerResult, hyp_errors, score_texts

log = get_logger(__name__)


def scoring_setup(nbs: NbestSet, norm: str | None = None, metric: str | None = None) -> tuple[Normalizer, str]:
    """The normalisation and metric to score ``nbs`` with: explicit values, else meta.yaml's."""
    lang = nbs.meta.get("language", "en")
    spec = norm if norm is not None else nbs.meta.get("normalization", default_norm(lang))
    return Normalizer.parse(spec), metric or nbs.meta.get("metric", default_metric(lang))


def errors_fingerprint(nbs: NbestSet, norm: Normalizer, metric: str) -> str:
    """Hash of everything the errors stream depends on: texts, keys, references, recipe."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{metric}\0{norm}\0".encode())
    h.update("\n".join(nbs.utt_ids).encode())
    h.update(nbs.offsets.tobytes())
    h.update(nbs.ranks.tobytes())
    h.update(nbs.texts.offsets.tobytes())
    h.update(nbs.texts.buf)
    for u, r in (nbs.refs or {}).items():
        h.update(f"{u}\0{r}\n".encode())
    return h.hexdigest()


def ensure_errors(nbs: NbestSet, norm: Normalizer, metric: str, setdir: str | Path | None = None,
                  show_progress: bool = False) -> np.ndarray:
    """The ``errors`` stream of ``nbs`` for (norm, metric), computed once and cached.

    The cache is valid only while its fingerprint (texts, references, normalisation, metric)
    matches; when ``setdir`` is given a recomputed stream is written back with meta.yaml.
    """
    if nbs.refs is None:
        raise ValueError("the set has no references (<set>/text), so errors cannot be counted")
    fp = errors_fingerprint(nbs, norm, metric)
    cached = nbs.meta.get("errors") or {}
    if "errors" in nbs.streams and cached.get("fingerprint") == fp:
        return nbs.streams["errors"]
    errors, _ = hyp_errors(nbs, norm, metric, show_progress=show_progress)
    nbs.streams["errors"] = errors
    nbs.meta["errors"] = {"metric": metric, "normalization": str(norm), "fingerprint": fp}
    if setdir is not None:
        write_stream(setdir, "errors", nbs, errors)
        nbs.meta = build_meta(nbs)
        write_meta(setdir, nbs.meta)
        log.info(f"cached {metric} errors of {nbs.num_hyps} hypotheses in {Path(setdir) / 'nbest' / 'errors'}")
    return errors


def one_best_texts(nbs: NbestSet, index: np.ndarray) -> dict[str, str]:
    return {nbs.utt_ids[u]: nbs.texts[int(i)] for u, i in enumerate(index)}


@dataclass
class SetStats:
    utts: int
    hyps: int
    mean_n: float
    max_n: int
    empty_hyps: int
    first_pass: dict[str, WerResult]
    oracle: dict[str, WerResult]

    def as_json(self) -> dict:
        out: dict = {"utts": self.utts, "hyps": self.hyps, "mean_n": round(self.mean_n, 3),
                     "max_n": self.max_n, "empty_hyps": self.empty_hyps}
        for metric in self.first_pass:
            out[f"first_pass_{metric}"] = _round(self.first_pass[metric].rate)
            out[f"oracle_{metric}"] = _round(self.oracle[metric].rate)
        for metric in self.first_pass:
            out[f"{metric}_details"] = {"first_pass": self.first_pass[metric].summary(),
                                        "oracle": self.oracle[metric].summary()}
        return out


def _round(x: float) -> float:
    return float(round(x, 4)) if np.isfinite(x) else float(x)


def set_stats(nbs: NbestSet, norm: Normalizer, metrics: list[str], mode: str = "present",
              errors: dict[str, np.ndarray] | None = None) -> SetStats:
    """First-pass (best by ``score``) and oracle (fewest errors) rates for each metric."""
    counts = nbs.counts()
    first = nbs.best(nbs.streams["score"])
    fp_res, or_res = {}, {}
    for metric in metrics:
        if nbs.refs is not None:
            err = (errors or {}).get(metric)
            if err is None:
                err, _ = hyp_errors(nbs, norm, metric)
            # fewest errors; among equals the better first-pass score
            order = np.lexsort((-np.nan_to_num(nbs.streams["score"], nan=-np.inf), np.nan_to_num(err, nan=np.inf),
                                nbs.utt_index()))
            oracle = order[nbs.offsets[:-1]]
            refs = nbs.refs
            fp_res[metric] = score_texts(refs, one_best_texts(nbs, first), norm, metric, mode)
            or_res[metric] = score_texts(refs, one_best_texts(nbs, oracle), norm, metric, mode)
    return SetStats(
        utts=nbs.num_utts, hyps=nbs.num_hyps,
        mean_n=float(counts.mean()) if len(counts) else 0.0,
        max_n=int(counts.max()) if len(counts) else 0,
        empty_hyps=int((nbs.texts.num_tokens() == 0).sum()),
        first_pass=fp_res, oracle=or_res,
    )
