"""Import a recogniser's n-best output into a canonical dataset directory.

    python -m rescore.bin.import_nbest --format FMT [options] SRC OUT_SETDIR

Formats: kaldi-nbest (decode dir with archives.*/), espnet (espnet2 decode dir / logdir),
mlm-json (awslabs mlm-scoring *.am.json), hypr (HypR JSON lines or parquet), nemo (beams TSV
+ --manifest), setdir (re-validate and copy a dataset directory, normalising the order).

The set is validated; per-hypothesis errors are counted and cached as the ``errors`` stream
when references are known; ``OUT_SETDIR/.done`` marks completion with a fingerprint of the
inputs and options, so a re-run with the same inputs is skipped (``--overwrite true`` redoes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rescore import formats
from rescore.archive import read_text_dict
from rescore.bin.common import add_overwrite, log, parser, run, str2bool
from rescore.nbest import describe, save_set
from rescore.stage import clear_done, fingerprint, is_done, mark_done, run_record
from rescore.stats import ensure_errors
from rescore.textnorm import Normalizer, default_metric, default_norm

# CLI option -> (reader keyword, formats it applies to)
FORMAT_OPTIONS = {
    "acwt": ("acwt", {"kaldi-nbest"}),
    "words": ("words", {"kaldi-nbest"}),
    "field": ("field", {"espnet"}),
    "missing_score": ("missing_score", {"mlm-json"}),
    "pattern": ("pattern", {"hypr"}),
    "manifest": ("manifest", {"nemo"}),
    "beam_size": ("beam_size", {"nemo"}),
    "score_sign": ("score_sign", {"nemo"}),
    "nan_is_empty": ("nan_is_empty", {"nemo"}),
    "utt_id_field": ("utt_id_field", {"nemo"}),
}


def get_parser():
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--format", required=True, choices=list(formats.READERS))
    p.add_argument("--text", help="references, Kaldi 'text' file (overrides references carried by SRC)")
    p.add_argument("--lang", default="en", help="language of the set (en, ja, ...): sets default metric/normalisation")
    p.add_argument("--metric", choices=["wer", "cer"], help="error metric (default: cer for ja/zh, else wer)")
    p.add_argument("--norm", help="scoring normalisation flags, e.g. 'lower,punct' or 'csj,bracket' (default by --lang)")
    p.add_argument("--acwt", type=float, help="kaldi-nbest: acoustic scale (default 0.1, i.e. LMWT 10)")
    p.add_argument("--words", help="kaldi-nbest: words.txt to map 'words' archives when words_text is absent")
    p.add_argument("--field", help="espnet: which file holds hypotheses: text (default) or token")
    p.add_argument("--missing_score", choices=["error", "zero"], help="mlm-json: hypotheses without a score")
    p.add_argument("--pattern", help="hypr: glob of files to read when SRC is a directory")
    p.add_argument("--manifest", help="nemo: the eval manifest (JSON lines) the beams file follows")
    p.add_argument("--beam_size", type=int, help="nemo: lines per utterance (default: inferred)")
    p.add_argument("--score_sign", choices=["auto", "logprob", "cost"], help="nemo: sign of the score column")
    p.add_argument("--nan_is_empty", type=str2bool, help="nemo: read the text 'nan' as an empty hypothesis")
    p.add_argument("--utt_id_field", help="nemo: manifest field holding utterance ids")
    add_overwrite(p)
    p.add_argument("src", help="the recogniser's output (file or directory)")
    p.add_argument("out", help="output dataset directory")
    return p


def reader_options(args) -> dict:
    opts = {}
    for opt, (kw, fmts) in FORMAT_OPTIONS.items():
        value = getattr(args, opt)
        if value is None:
            continue
        if args.format not in fmts:
            raise SystemExit(f"import_nbest: --{opt} does not apply to --format {args.format}")
        opts[kw] = Path(value) if opt in ("words", "manifest") else value
    return opts


def body(args) -> int:
    out = Path(args.out)
    opts = reader_options(args)
    metric = args.metric or default_metric(args.lang)
    norm = Normalizer.parse(args.norm if args.norm is not None else default_norm(args.lang))
    config = {"format": args.format, "options": opts, "lang": args.lang, "metric": metric, "norm": str(norm)}
    inputs = [args.src] + [args.text] * bool(args.text) + [v for v in opts.values() if isinstance(v, Path)]
    fp = fingerprint(inputs, config)
    if not args.overwrite and is_done(out, fp):
        log.info(f"skip: {out} is complete and up to date (--overwrite true to redo)")
        return 0
    if Path(args.src).resolve() == out.resolve():
        raise SystemExit("import_nbest: SRC and OUT_SETDIR must differ")
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
    p = get_parser()

    def _body(args):
        args.argv = argv
        return body(args)

    return run(_body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
