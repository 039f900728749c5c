"""Import a recogniser's n-best output into a canonical dataset directory.

    python -m rescore.bin.import_nbest --format FMT [options] SRC OUT_SETDIR

Formats: kaldi-nbest (decode dir with archives.*/), kaldi-lattice (decode dir with lat.*.gz and
num_jobs, or one lattice archive; N best paths at --acwt), espnet (espnet2 decode dir / logdir),
mlm-json (awslabs mlm-scoring *.am.json), hypr (HypR JSON lines or parquet), nemo (beams TSV
+ --manifest), slf (HTK SLF lattices: a *.lat / *.slf[.gz] file or a directory of them), setdir
(re-validate and copy a dataset directory, normalising the order).

The set is validated; per-hypothesis errors are counted and cached as the ``errors`` stream
when references are known; ``OUT_SETDIR/.done`` marks completion with a fingerprint of the
inputs and options, so a re-run with the same inputs is skipped (``--overwrite true`` redoes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rescore.bin.common import (
    add_format_options,
    add_overwrite,
    finite_float,
    format_options,
    log,
    nonneg_float,
    norm_arg,
    parser,
    positive_int,
    run,
    str2bool,
)
from rescore.data import formats
from rescore.data.archive import read_text_dict
from rescore.data.nbest import describe, save_set
from rescore.data.textnorm import Normalizer, default_metric, default_norm
from rescore.exceptions import InputError, require_file
from rescore.scoring.stats import ensure_errors
from rescore.stage import check_done, clear_done, mark_done, run_record

KALDI, ESPNET, MLM, HYPR, NEMO = {"kaldi-nbest"}, {"espnet"}, {"mlm-json"}, {"hypr"}, {"nemo"}
LAT = {"kaldi-lattice"}
SLF = {"slf"}
FORMAT_OPTIONS = {
    "acwt": (KALDI | LAT, dict(type=nonneg_float, help="acoustic scale (default 0.1, i.e. LMWT 10)")),
    "words": (KALDI | LAT, dict(type=Path, help="words.txt mapping word ids (kaldi-nbest: when words_text is "
                                            "absent; kaldi-lattice: default SRC/words.txt)")),
    "field": (ESPNET, dict(choices=["text", "token"], help="which file holds hypotheses (default text)")),
    "missing_score": (MLM, dict(choices=["error", "zero"], help="hypotheses without a score (default error)")),
    "pattern": (HYPR | SLF, dict(help="glob of files to read when SRC is a directory")),
    "manifest": (NEMO, dict(type=Path, help="the eval manifest (JSON lines) the beams file follows")),
    "beam_size": (NEMO, dict(type=positive_int, help="beams per utterance (default: the width in NeMo's file name preds_out_width<B>_...; never inferred from the counts)")),
    "score_sign": (NEMO, dict(choices=["auto", "logprob", "cost"], help="sign of the score column (default auto)")),
    "nan_is_empty": (NEMO, dict(type=str2bool, help="read the text 'nan' as an empty hypothesis (default false)")),
    "utt_id_field": (NEMO, dict(help="manifest field holding utterance ids")),
    "nbest": (LAT | SLF, dict(type=positive_int, help="distinct word sequences extracted per lattice "
                                         "(default: kaldi-lattice 10, slf 100)")),
    "lmscale": (SLF, dict(type=finite_float, help="LM scale when a lattice header has no lmscale= (default 1.0)")),
    "wdpenalty": (SLF, dict(type=finite_float, help="natural-log word penalty when a header has no wdpenalty= (default 0)")),
    "fillers": (SLF, dict(help="space-separated non-words ('*' = any chars) replacing the default "
                               "'<sil> [NOISE] [SPEECH] SENT-START SENT-END ++*++'")),
    "utt_id": (SLF, dict(choices=["auto", "file"], help="utterance id: UTTERANCE= header, else file name "
                                                        "(auto, default), or always the file name")),
}


def get_parser():
    p = parser(__doc__)
    p.add_argument("--format", required=True, choices=list(formats.READERS))
    p.add_argument("--text", help="references, Kaldi 'text' file (overrides references carried by SRC)")
    p.add_argument("--lang", default="en", help="language of the set (default en; ja selects CER and CSJ normalisation)")
    p.add_argument("--metric", choices=["wer", "cer"], help="error metric (default: cer for ja/zh, else wer)")
    p.add_argument("--norm", type=norm_arg, help="scoring normalisation flags, e.g. 'lower,punct' or 'csj,bracket' (default by --lang)")
    add_format_options(p, FORMAT_OPTIONS)
    add_overwrite(p)
    p.add_argument("src", help="the recogniser's output (file or directory)")
    p.add_argument("out", help="output dataset directory")
    return p


def body(args) -> int:
    out = Path(args.out)
    opts = format_options(args, FORMAT_OPTIONS, "import_nbest")
    metric = args.metric or default_metric(args.lang)
    norm = Normalizer.parse(args.norm if args.norm is not None else default_norm(args.lang))
    config = {"format": args.format, "options": opts, "lang": args.lang, "metric": metric, "norm": str(norm)}
    inputs = [args.src] + [args.text] * bool(args.text) + [v for v in opts.values() if isinstance(v, Path)]
    if not Path(args.src).exists():
        raise InputError(args.src, None, "not found: the recogniser's output (SRC) is needed")
    if args.text:
        require_file(args.text, "reference text (--text)")
    if Path(args.src).resolve() == out.resolve():
        raise InputError(out, None, "is also the source: SRC and OUT_SETDIR must differ")
    fp = check_done(out, inputs, config, args.overwrite)
    if fp is None:
        return 0
    clear_done(out)
    refs = read_text_dict(args.text) if args.text else None
    nbs = formats.module(args.format).read(Path(args.src), refs=refs, **opts)
    if refs is not None:
        nbs.refs = refs
    log.info(f"read {describe(nbs)} from {args.src} ({args.format})")
    nbs.meta.update(language=args.lang, metric=metric, normalization=str(norm))
    nbs.meta["created_by"] = run_record(args.argv, "rescore.bin.import_nbest")
    if (out / "nbest").is_dir():
        shutil.rmtree(out / "nbest")
    if nbs.refs is not None:
        nbs.streams.pop("errors", None)
        ensure_errors(nbs, norm, metric, show_progress=nbs.num_hyps > 200_000)
    meta = save_set(nbs, out)
    c = meta["counts"]
    log.info(f"wrote {out}: {c['utts']} utterances, {c['hyps']} hypotheses ({c['empty_hyps']} empty)"
             + (f", {c['refs']} references" if "refs" in c else ", no references"))
    mark_done(out, fp)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
