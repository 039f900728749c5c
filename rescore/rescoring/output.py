"""The outputs of one rescored set, and the table of all of them.

:func:`rescore_set` applies the weights to one set and writes ``EXPDIR/<set>`` (:func:`nbest_dir`:
the rescored n-best in new-score order, its 1-best ``text`` and references ``ref``), then, for a
set with references, Kaldi-style scoring files (``scoring/wer`` as ``compute-wer`` prints it,
``scoring/per_utt`` as ``wer_per_utt_details.pl``: :func:`per_utt_lines`) and
``scoring/summary.json`` (rates, oracle, relative change, bootstrap CI). :func:`results_md` is the
experiment's ``RESULTS.md`` table.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from rescore.data.archive import write_lines
from rescore.data.nbest import NbestSet, build_meta, save_set
from rescore.log import get_logger
from rescore.rescoring.job import Job, RescoreOptions, SetData
from rescore.rescoring.weights import ACWT_NOTE, COST_STREAMS, FORMULA, WIP_NOTE, StreamSpec, Weights
from rescore.scoring.bootstrap import bootstrap_ci
from rescore.scoring.stats import ensure_errors, set_stats
from rescore.scoring.wer import WerResult, kaldi_align, score_texts
from rescore.stage import atomic_open

log = get_logger(__name__)

REFS_NAME = "ref"  # EXPDIR/<set>/ref: the references of a rescored set (its text is the 1-best)
OUTPUT_LAYOUT = 2  # 2: EXPDIR/<set>/{text,ref,nbest/}; 1 (before): EXPDIR/<set>/nbest/{text,nbest/}


def _cjustify(s: str, width: int) -> str:
    right = (width - len(s)) // 2
    return " " * (width - len(s) - right) + s + " " * right


def per_utt_lines(utt: str, ref: list[str], hyp: list[str], eps: str = "***") -> list[str]:
    """The 4 lines of Kaldi's ``wer_per_utt_details.pl`` (ref, hyp, op, #csid C S I D) for one utterance."""
    pairs = kaldi_align(ref, hyp, eps)
    ops = ["D" if h == eps else "I" if r == eps else "S" if r != h else "C" for r, h in pairs]
    widths = [max(len(r), len(h), len(o)) for (r, h), o in zip(pairs, ops, strict=True)]
    cols = list(zip(pairs, ops, widths, strict=True))
    return [
        f"{utt} ref  " + "  ".join(_cjustify(r, n) for (r, _), _, n in cols),
        f"{utt} hyp  " + "  ".join(_cjustify(h, n) for (_, h), _, n in cols),
        f"{utt} op   " + "  ".join(_cjustify(o, n) for _, o, n in cols),
        f"{utt} #csid {ops.count('C')} {ops.count('S')} {ops.count('I')} {ops.count('D')}",
    ]


def rounded(x: float | None) -> float | None:
    """A figure as the summaries record it: 4 decimals, None for None and non-finite values."""
    return None if x is None or not math.isfinite(x) else float(round(x, 4))


def _missing_report(sd: SetData, total: np.ndarray) -> dict:
    d = sd.design
    no_info = [sd.nbs.utt_ids[u] for u in np.flatnonzero(~d.info)]
    last = np.flatnonzero(~np.isfinite(total))
    keys = [sd.nbs.key(int(i)) for i in last[:20]]
    if no_info:
        log.warning(f"{sd.name}: {len(no_info)} utterance(s) have no finite value in any stream and keep their "
                    f"first-pass order: {', '.join(no_info[:20])}")
    if len(last):
        log.warning(f"{sd.name}: {len(last)} hypothesis(es) with a non-finite total are ranked last: "
                    f"{', '.join(keys)}")
    return {"utts_without_streams": {"count": len(no_info), "utts": no_info[:20]},
            "hyps_ranked_last": {"count": int(len(last)), "keys": keys}}


def _output_set(sd: SetData, total: np.ndarray, w: Weights, system: str, streams: list[StreamSpec]) -> tuple[NbestSet, np.ndarray]:
    """The rescored set: same keys, each utterance's entries in new-score order, with rank/score/first_pass."""
    nbs = sd.nbs
    order = nbs.order_within(total)
    counts = nbs.counts()
    rank = (np.arange(nbs.num_hyps) - np.repeat(nbs.offsets[:-1], counts) + 1).astype(np.float64)
    cols = {"score": total, "first_pass": nbs.streams["score"], **sd.raw}
    cols.update({c: nbs.streams[c] for c in COST_STREAMS if c in nbs.streams})
    meta = {k: v for k, v in nbs.meta.items() if k not in ("errors", "counts", "nonfinite", "streams")}
    old = nbs.meta.get("streams") or {}
    meta["streams"] = {c: old[c] for c in COST_STREAMS if c in old}
    meta["streams"].update({
        "score": {"better": "higher", "description": f"rescored total ({FORMULA}; {w.describe()})"},
        "rank": {"better": "lower", "description": "new rank (1 = rescored 1-best); the key keeps the input rank"},
        "first_pass": {"better": "higher", "description": "the input set's score"},
        **{s.label: {"better": "higher", "description": f"second-pass stream {s.template}"} for s in streams},
    })
    if w.acwt is not None:
        meta["acoustic_scale"] = w.acwt
    meta["rescore"] = {"system": system, "input": str(sd.path), **w.as_dict(),
                       "streams_from": {s.label: str(s.path(sd.name)) for s in streams}, "formula": FORMULA}
    out = NbestSet(utt_ids=list(nbs.utt_ids), offsets=nbs.offsets.copy(), ranks=nbs.ranks[order],
                   texts=nbs.texts.take(order), streams={"rank": rank, **{k: v[order] for k, v in cols.items()}},
                   refs=None if nbs.refs is None else dict(nbs.refs), meta=meta)
    out.meta = build_meta(out)
    return out, order[nbs.offsets[:-1]]


def _texts_of(nbs: NbestSet, index: np.ndarray) -> dict[str, str]:
    return {nbs.utt_ids[u]: nbs.texts[int(i)] for u, i in enumerate(index)}


def _score_set(sd: SetData, errors: np.ndarray | None, base_best: np.ndarray, new_best: np.ndarray,
               opts: RescoreOptions) -> dict:
    """Rates and per-utterance results of one labelled set (None entries without references)."""
    nbs, norm, metric = sd.nbs, sd.norm, sd.metric
    st = set_stats(nbs, norm, [metric], "present", {metric: errors})
    base = score_texts(nbs.refs, _texts_of(nbs, base_best), norm, metric)
    new = score_texts(nbs.refs, _texts_of(nbs, new_best), norm, metric)
    utts = list(new.per_utt)
    e_base = np.array([base.per_utt[u][0] for u in utts], dtype=np.float64)
    e_new = np.array([new.per_utt[u][0] for u in utts], dtype=np.float64)
    units = np.array([new.per_utt[u][4] for u in utts], dtype=np.float64)
    lo, hi = bootstrap_ci(e_base, e_new, units, opts.bootstrap, opts.seed)
    fr, nr = base.rate, new.rate
    rel = 100.0 * (nr - fr) / fr if fr and math.isfinite(fr) else math.nan
    return {"results": {"first_pass": base, "rescored": new, "oracle": st.oracle[metric],
                        "input_first_pass": st.first_pass[metric]},
            "relative_change": rel, "absolute_change": nr - fr, "ci95": (lo, hi)}


def _write_scoring(sd: SetData, outdir: Path, scored: dict, new_best: np.ndarray) -> None:
    nbs = sd.nbs
    res: WerResult = scored["results"]["rescored"]
    write_lines(outdir / "scoring" / "wer", res.kaldi_lines())
    hyps = _texts_of(nbs, new_best)
    lines: list[str] = []
    for utt in sorted(res.per_utt):
        lines += per_utt_lines(utt, sd.norm.units(nbs.refs[utt], sd.metric), sd.norm.units(hyps[utt], sd.metric))
    write_lines(outdir / "scoring" / "per_utt", lines)


def _summary(sd: SetData, system: str, w: Weights, base_w: Weights, scored: dict | None, report: dict,
             changed: int, opts: RescoreOptions) -> dict:
    m = sd.metric
    out: dict = {"set": sd.name, "role": sd.role, "system": system, "metric": m, "normalization": str(sd.norm),
                 "utts": sd.nbs.num_utts, "hyps": sd.nbs.num_hyps, "changed_1best": changed}
    if scored is None:
        out.update({f"first_pass_{m}": None, f"rescored_{m}": None, f"oracle_{m}": None, "relative_change": None,
                    "absolute_change": None, "ci95": None, "note": "no references: not scored"})
    else:
        r = scored["results"]
        out.update({f"first_pass_{m}": rounded(r["first_pass"].rate), f"rescored_{m}": rounded(r["rescored"].rate),
                    f"oracle_{m}": rounded(r["oracle"].rate), f"input_first_pass_{m}": rounded(r["input_first_pass"].rate),
                    "relative_change": rounded(scored["relative_change"]), "absolute_change": rounded(scored["absolute_change"]),
                    "ci95": [rounded(x) for x in scored["ci95"]],
                    "bootstrap": {"replicates": opts.bootstrap, "seed": opts.seed, "resampled": "utterances",
                                  "statistic": f"rescored - first_pass {m.upper()}, absolute percentage points",
                                  "method": "percentile"},
                    "details": {k: v.summary() for k, v in r.items()}})
    out.update({"weights": w.as_dict(), "first_pass_weights": base_w.as_dict(), "formula": FORMULA,
                "note": f"{WIP_NOTE}; {ACWT_NOTE}; relative_change = 100 * (rescored - first_pass) / first_pass; "
                        "first_pass is the first pass alone (at the tuned acwt for Kaldi sets), input_first_pass "
                        "the set's own score", **report})
    return out


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.1f}%" if pct else f"{x:.2f}"


def results_md(system: str, dev: SetData, w: Weights, summaries: list[dict], plots: list[str]) -> list[str]:
    lines = [f"# Rescoring: {system}", "",
             f"`{FORMULA}`; {ACWT_NOTE}.", f"{WIP_NOTE}.",
             f"Weights tuned on dev set `{dev.name}` only ({dev.metric.upper()}), written to `weights.yaml`. "
             "First pass: the first pass alone (acoustic scale tuned on dev for Kaldi sets, as the LMWT sweep); "
             "95% CI: bootstrap over utterances of rescored - first pass (absolute points).", "",
             "| set | system | metric | weights | first pass | rescored | oracle | rel. change | 95% CI |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        m = s["metric"]
        ci = s.get("ci95")
        ci_txt = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci and None not in ci else "-"
        lines.append(f"| {s['set']} | {system} | {m.upper()} | {w.describe()} | {_fmt(s[f'first_pass_{m}'])} | "
                     f"{_fmt(s[f'rescored_{m}'])} | {_fmt(s[f'oracle_{m}'])} | "
                     f"{_fmt(s['relative_change'], pct=True)} | {ci_txt} |")
    if plots:
        lines += ["", "Dev error rate against each weight: " + ", ".join(f"[{p}]({p})" for p in plots)]
    return lines


def rescore_set(sd: SetData, w: Weights, base_w: Weights, system: str, job: Job, out: Path) -> dict:
    total = sd.design.total(w)
    report = _missing_report(sd, total)
    new_nbs, new_best = _output_set(sd, total, w, system, job.opts.streams)
    base_best = sd.nbs.best(sd.design.without_streams().total(base_w))
    setout = nbest_dir(out, sd.name)
    if (setout / "nbest" / "nbest").is_dir():  # the nested shape of earlier versions: replaced, not mixed
        shutil.rmtree(setout / "nbest" / "nbest")
    save_set(new_nbs, setout, refs_name=REFS_NAME)
    one_best = _texts_of(sd.nbs, new_best)
    write_lines(setout / "text", (f"{u} {t}" if t else u for u, t in sorted(one_best.items())))
    changed = int((base_best != new_best).sum())
    scored = None
    if sd.nbs.refs is not None:
        errors = ensure_errors(sd.nbs, sd.norm, sd.metric)
        scored = _score_set(sd, errors, base_best, new_best, job.opts)
        _write_scoring(sd, setout, scored, new_best)
    else:
        log.warning(f"{sd.name} has no references: rescored outputs written, not scored")
    summary = _summary(sd, system, w, base_w, scored, report, changed, job.opts)
    with atomic_open(setout / "scoring" / "summary.json") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
        f.write("\n")
    m = sd.metric
    log.info(f"{sd.role} {sd.name}: {m.upper()} first pass {_fmt(summary[f'first_pass_{m}'])}, rescored "
             f"{_fmt(summary[f'rescored_{m}'])}, oracle {_fmt(summary[f'oracle_{m}'])}; {changed} 1-best changed")
    return summary


def nbest_dir(out: Path, set_name: str) -> Path:
    """``EXPDIR/<set>``: the rescored set, a decode directory and a dataset directory in one.

    ``nbest/{text,score,...}`` the rescored n-best, ``text`` the rescored 1-best, ``ref`` the
    references (named in ``nbest/meta.yaml`` as ``references``), so :func:`rescore.data.nbest.load_set`
    and the exporters read it as they read any set. Earlier versions wrote the set one level down
    (``EXPDIR/<set>/nbest/nbest/...``, references in ``EXPDIR/<set>/nbest/text``); such a directory
    is still a dataset directory and loads as before.
    """
    return Path(out) / set_name

