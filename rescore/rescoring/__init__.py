"""Rescoring: interpolation weights tuned on dev, applied to every set, scored the Kaldi way.

The package: :mod:`~rescore.rescoring.weights` (stream specs, what to tune, ``weights.yaml``),
:mod:`~rescore.rescoring.design` (one set's arrays and the combination, unit counting),
:mod:`~rescore.rescoring.dev_tuning` (tuning on dev, the dev profiles and their plots),
:mod:`~rescore.rescoring.job` (the run's options, validated into a job before any work),
:mod:`~rescore.rescoring.output` (one rescored set's outputs, Kaldi-style scoring files,
``summary.json``, the ``RESULTS.md`` table), :mod:`~rescore.rescoring.step` (the whole step),
:mod:`~rescore.rescoring.bundle` (rescorer bundles and :class:`Rescorer`, the step's decisions for
n-best lists in memory) and :mod:`~rescore.rescoring.service` (a bundle served over HTTP).
It may import the foundation modules, :mod:`rescore.data` and :mod:`rescore.scoring` (and
:mod:`rescore.models`, which it does not need). Its public names are re-exported here (``__all__``).

The combination (higher is better)::

    total = first_pass + sum_k beta_k * stream_k + wip * num_units

``first_pass`` is the set's ``score``, or, for sets whose n-best holds Kaldi's ``ac_cost`` and
``graph_cost`` when an acoustic scale ``acwt`` is in play, ``-(graph_cost + acwt * ac_cost)``.
``num_units`` counts the hypothesis's scoring units, exactly as errors are counted for the set
(:func:`count_units`: the set's recorded normalisation and metric, or ``--norm``/``--cer``):
words after normalisation for WER sets (``csj``/``bracket`` drop ``<sp>``, ``<unk>``, ``+POS``
tags...), characters (whitespace removed) for CER sets, so the bonus means the same on ESPnet
CSJ text (no spaces) and on Kaldi CSJ text (``<sp>`` tokens). ``wip > 0`` is a bonus per unit
and ``wip < 0`` a penalty: the OPPOSITE sign of Kaldi's word-insertion penalty. Where the units
are the words as stored (a WER set whose normalisation drops no token, e.g. ``none``), Kaldi's
``WIP = -wip`` and, with ``acwt`` in play, ``LMWT = 1/acwt`` exactly; otherwise Kaldi's
``lattice-add-penalty`` (per lattice word, ``<sp>`` and noise words included) is only the
analogue.

Weights (the :class:`Weights` record; YAML schema of ``weights.yaml`` in :func:`save_weights`)
are tuned on the dev set only, with :func:`rescore.scoring.tuning.tune_weights` (log-spaced magnitudes of
both signs plus zero, then refinement; coordinate descent; vectorised). What is tuned is chosen
with a spec (:func:`parse_tune`): ``all`` (streams, wip, and acwt where every set has Kaldi
costs), ``none``, or ``+``-joined components ``streams``, ``wip``, ``acwt``. Components not tuned
keep their given values (``--weights``), else the defaults beta = 1, wip = 0, acwt = none (the
set's own ``score``).

The acoustic scale is tuned through the invariance of the argmax to a positive scaling of the
total: dividing by ``acwt`` gives ``-ac_cost + LMWT * (-graph_cost + fixed) + tuned / acwt``, so
``LMWT = 1/acwt`` is an ordinary weight (on a log-spaced grid like any other) and the stream
weights found are divided by it. The first-pass row of such sets is the first pass alone at the
acoustic scale (and unit bonus, when ``wip`` is tuned) tuned on dev, i.e. what a Kaldi user
reports after the LMWT (and WIP) sweep of ``local/score.sh``, except that Kaldi's ``best_wer``
picks the grid point on the test set itself, which can only give a lower number.

Missing values: a stream file must hold every key (else :class:`InvalidSetError` naming file and
line, before any work). Non-finite stream values (``BadNumber``, ``Infinity``) are allowed: a
stream that is non-finite for every hypothesis of an utterance carries no information there and
contributes nothing; an utterance for which that holds for every stream keeps its first-pass
order (its total is its first-pass score, without unit bonus) and is reported, never dropped. A
hypothesis with a non-finite value in a stream that is finite elsewhere in its utterance gets the
total ``-Infinity``: it is ranked last, counted and reported, never dropped.

Set-level figures: error rates as Kaldi's ``compute-wer --mode=present`` prints them; the 95%
confidence interval of ``rescored - first_pass`` (absolute percentage points) is a percentile
bootstrap over utterances (``replicates`` resamplings of the scored utterances with replacement,
seeded, each giving ``100 * sum(errors_rescored - errors_first) / sum(ref_units)``).
"""

from rescore.rescoring.design import Design, build_design, count_units, count_words
from rescore.rescoring.dev_tuning import dev_profiles, plot_profile, tune
from rescore.rescoring.job import Job, RescoreOptions, SetData, prepare
from rescore.rescoring.output import OUTPUT_LAYOUT, REFS_NAME, nbest_dir, per_utt_lines, rescore_set, results_md
from rescore.rescoring.step import execute
from rescore.rescoring.weights import (
    ACWT_NOTE,
    COMPONENTS,
    COST_STREAMS,
    FORMULA,
    RESERVED_LABELS,
    WIP_NOTE,
    StreamSpec,
    Weights,
    load_weights,
    parse_stream_spec,
    parse_tune,
    save_weights,
)

__all__ = [
    "ACWT_NOTE", "COMPONENTS", "COST_STREAMS", "FORMULA", "OUTPUT_LAYOUT", "REFS_NAME", "RESERVED_LABELS", "WIP_NOTE",
    "Design", "Job", "RescoreOptions", "SetData", "StreamSpec", "Weights", "build_design", "count_units", "count_words",
    "dev_profiles", "execute", "load_weights", "nbest_dir", "parse_stream_spec", "parse_tune", "per_utt_lines",
    "plot_profile", "prepare", "rescore_set", "results_md", "save_weights", "tune",
]
