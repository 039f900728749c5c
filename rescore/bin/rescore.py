"""Rescore n-best sets with second-pass streams: weights tuned on dev, outputs scored per set.

    python -m rescore.bin.rescore --dev DEV_SETDIR --eval SETDIR [--eval SETDIR ...]
        --stream LABEL=PATH [--stream ...] --out EXPDIR [--cer true|false] [--tune WHAT] [--weights FILE]
        [--norm FLAGS] [--bootstrap N] [--seed N] [--overwrite true|false]

PATH is a per-hypothesis archive (``<utt>-<k> <float>``, higher is better) in which ``{set}``
stands for each set's directory name, e.g. ``--stream pll=exp/teacher/{set}/pll``; LABEL names the
stream in every output. The dev set is rescored and scored too.

    total = first_pass + sum_k beta_k * stream_k + wip * num_units     (higher is better)

``num_units`` counts the units errors are counted over, with each set's normalisation and metric:
words after normalisation for WER sets (``csj,bracket`` drops ``<sp>``, ``<unk>``, ``+POS`` tags),
characters for CER sets. ``wip > 0`` is a bonus per unit: the OPPOSITE sign of Kaldi's
word-insertion penalty. For sets
with Kaldi ``ac_cost`` and ``graph_cost`` streams the first pass is ``-(graph_cost + acwt *
ac_cost)`` with the acoustic scale tuned on dev too (Kaldi's LMWT = 1/acwt), so the first-pass row
matches what Kaldi users report after their LMWT/WIP sweep. ``--tune WHAT``: ``all`` (default:
streams, wip, and acwt where every set has Kaldi costs), ``none`` (default with ``--weights``), or
``+``-joined components ``streams``, ``wip``, ``acwt`` (e.g. ``streams``, ``streams+wip``); weights
not tuned come from ``--weights FILE`` (YAML, the schema of the written weights.yaml: ``streams:
{LABEL: beta}``, ``wip``, ``acwt`` or null), else beta = 1, wip = 0, acwt = null (the set's score).
Weights are tuned on dev only (never on an eval set); ``--cer`` scores and tunes with CER for every
set (default: each set's metric from meta.yaml); ``--norm`` overrides the sets' normalisation.

Outputs::

    EXPDIR/weights.yaml                 the weights (and informational keys), read back by --weights
    EXPDIR/RESULTS.md                   one row per eval set: system, weights, first pass, rescored,
                                        oracle, relative change, 95% CI of rescored - first pass
    EXPDIR/dev_<weight>.png             dev error rate against each weight (the others fixed)
    EXPDIR/<set>/nbest/{text,score,rank,first_pass,<LABEL>..,meta.yaml}
                                        the rescored n-best with the input's keys, each utterance's
                                        entries in new-score order (score = the new total, rank = the
                                        new rank, first_pass = the input score; ac_cost/graph_cost/
                                        lm_cost kept)
    EXPDIR/<set>/text                   the rescored 1-best, "<utt> w1 w2 ...", C-sorted
    EXPDIR/<set>/ref                    the references (when the input has them; meta.yaml names
                                        this file, so EXPDIR/<set> loads as a dataset directory:
                                        export_nbest, nbest_stats and rescore read it)
    EXPDIR/<set>/scoring/wer            Kaldi compute-wer lines (%WER line even for CER, as Kaldi)
    EXPDIR/<set>/scoring/per_utt        Kaldi wer_per_utt_details.pl lines (ref/hyp/op/#csid, '***')
    EXPDIR/<set>/scoring/summary.json   first-pass, rescored, oracle rates, relative change, bootstrap CI
    EXPDIR/run.yaml, EXPDIR/.done       replay record; fingerprint of every input and option

A stream missing keys, a dev set without references, weights that do not match the streams and an
empty set are errors before any work. Non-finite stream values are allowed (see
:mod:`rescore.rescoring`): an utterance without any finite stream value keeps its first-pass order
and is reported (summary.json ``utts_without_streams``), never dropped. Skips when EXPDIR/.done
matches, unless ``--overwrite true``.
"""

from __future__ import annotations

from pathlib import Path

from rescore.bin.common import add_flag, add_overwrite, log, nonneg_int, norm_arg, parser, run
from rescore.rescoring import OUTPUT_LAYOUT, RescoreOptions, execute, parse_stream_spec, prepare
from rescore.stage import check_done, mark_done, reopen, write_run_info

MODULE = "rescore.bin.rescore"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--dev", required=True, type=Path, help="dev set directory (weights are tuned on it)")
    p.add_argument("--eval", action="append", default=[], type=Path, help="eval set directory (repeatable)")
    p.add_argument("--stream", action="append", default=[], required=True,
                   help="LABEL=PATH, PATH with {set} for each set's name (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="experiment directory EXPDIR")
    add_flag(p, "cer", "character error rate for every set (tuning included)")
    p.add_argument("--tune", default=None,
                   help="all (default), none (default with --weights), or streams/wip/acwt joined by '+'")
    p.add_argument("--weights", type=Path, default=None, help="weights YAML (schema of EXPDIR/weights.yaml)")
    p.add_argument("--norm", type=norm_arg, default=None, help="normalisation flags (default: each set's meta.yaml)")
    p.add_argument("--bootstrap", type=nonneg_int, default=1000, help="bootstrap replicates of the CI (default 1000)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="bootstrap seed (default 0)")
    add_overwrite(p)
    return p


def body(args) -> int:
    opts = RescoreOptions(dev=args.dev, evals=list(args.eval), streams=[parse_stream_spec(s) for s in args.stream],
                          out=args.out, cer=args.cer, tune=args.tune, weights=args.weights, norm=args.norm,
                          bootstrap=args.bootstrap, seed=args.seed)
    cfg = opts.config()
    # the layout of the outputs is part of what .done certifies: outputs of the nested layout are redone
    fp = check_done(opts.out, opts.input_paths(), {**cfg, "output_layout": OUTPUT_LAYOUT}, args.overwrite)
    if fp is None:
        return 0
    job = prepare(opts)  # every input error is raised here, before anything is written
    reopen(opts.out)
    summaries = execute(job)
    write_run_info(opts.out, args.argv, MODULE, {**cfg, "tuned": list(job.components),
                                                 "sets": {k: v["role"] for k, v in summaries.items()}})
    mark_done(opts.out, fp)
    log.info(f"wrote {opts.out}/RESULTS.md, weights.yaml and {len(summaries)} rescored set(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
