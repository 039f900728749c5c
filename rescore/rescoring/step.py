"""The whole rescoring step: tune on dev, apply the weights to every set, write every output.

:func:`execute` takes the :class:`~rescore.rescoring.job.Job` that
:func:`~rescore.rescoring.job.prepare` validated, tunes on the dev utterances with references,
writes ``weights.yaml`` and the dev plots (``dev_<weight>.png``), rescores and scores every set
(:func:`~rescore.rescoring.output.rescore_set`) and writes ``RESULTS.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rescore.data.archive import write_lines
from rescore.log import get_logger
from rescore.rescoring.dev_tuning import dev_profiles, plot_profile, tune
from rescore.rescoring.job import Job
from rescore.rescoring.output import rescore_set, results_md, rounded
from rescore.rescoring.weights import WIP_NOTE, Weights, save_weights
from rescore.scoring.stats import ensure_errors
from rescore.scoring.tuning import batch_errors

log = get_logger(__name__)


def execute(job: Job) -> dict:
    """Tune on dev, apply to every set, write all outputs; returns ``{set: summary}``."""
    out = Path(job.opts.out)
    system = "+".join(job.labels)
    dev = job.sets[0]
    dev_err = ensure_errors(dev.nbs, dev.norm, dev.metric)
    has_ref = np.array([u in dev.nbs.refs for u in dev.nbs.utt_ids], dtype=bool)
    if not has_ref.all():
        log.warning(f"dev set {dev.name}: tuning on the {int(has_ref.sum())} of {len(has_ref)} utterances "
                    "with a reference")
    tune_design = dev.design.subset(has_ref)
    tune_err = dev_err[np.repeat(has_ref, dev.design.counts)]
    ref_units = sum(len(dev.norm.units(dev.nbs.refs[u], dev.metric)) for u in dev.nbs.utt_ids if u in dev.nbs.refs)
    # first pass alone: the acoustic scale (and unit bonus) a Kaldi user would tune, else the set's score
    base_w = Weights({})
    if "acwt" in job.components:
        base_w, _ = tune(tune_design.without_streams(), tune_err,
                         tuple(c for c in ("wip", "acwt") if c in job.components), Weights({}))
    elif job.start.acwt is not None:
        base_w = Weights({}, 0.0, job.start.acwt)
    w, res = tune(tune_design, tune_err, job.components, job.start) if job.components else (job.start, None)
    dev_errors = int(batch_errors(tune_design.offsets, tune_design.total(w)[None, :], tune_err)[0])
    log.info(f"weights ({'tuned: ' + '+'.join(job.components) if job.components else 'given'}): {w.describe()}; "
             f"dev {dev.metric.upper()} errors {dev_errors} / {ref_units} "
             f"(first pass {int(batch_errors(tune_design.offsets, tune_design.without_streams().total(base_w)[None, :], tune_err)[0])})")
    log.info(WIP_NOTE)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / "weights.yaml", w, {
        "system": system, "tuned": list(job.components), "dev": dev.name, "metric": dev.metric,
        "normalization": str(dev.norm), "dev_errors": dev_errors,
        "dev_rate": rounded(100.0 * dev_errors / ref_units) if ref_units else None, "first_pass": base_w.as_dict()})
    plots = []
    for name, (vals, errs) in dev_profiles(tune_design, tune_err, w).items():
        chosen = w.wip if name == "wip" else w.acwt if name == "acwt" else w.streams[name]
        fname = f"dev_{name}.png"
        plot_profile(out / fname, name, vals, 100.0 * errs / max(ref_units, 1), chosen, dev.metric, dev.name)
        plots.append(fname)
    summaries = {}
    for sd in job.sets:
        summaries[sd.name] = rescore_set(sd, w, base_w, system, job, out)
    write_lines(out / "RESULTS.md", results_md(system, dev, w, [s for s in summaries.values() if s["role"] == "eval"],
                                               plots))
    return summaries

