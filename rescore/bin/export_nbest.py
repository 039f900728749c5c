"""Export a dataset directory to a recogniser's or scorer's format.

    python -m rescore.bin.export_nbest --format FMT [options] SETDIR OUT

Formats: kaldi-nbest (decode dir with archives.JOB/ text archives that Kaldi's
linear-to-nbest accepts, and num_jobs), espnet (logdir/output.1/<n>best_recog/{text,score}
plus the merged 1-best), mlm-json (mlm-scoring *.am.json; OUT is the file), trn (sclite
hyp.trn/ref.trn of the 1-best), setdir (a normalised copy).
"""

from __future__ import annotations

from pathlib import Path

from rescore import formats
from rescore.bin.common import log, parser, run, str2bool
from rescore.nbest import describe, load_set
from rescore.textnorm import Normalizer

FORMAT_OPTIONS = {
    "nj": ("nj", {"kaldi-nbest"}),
    "words": ("words", {"kaldi-nbest"}),
    "acwt": ("acwt", {"kaldi-nbest"}),
    "score_style": ("score_style", {"espnet"}),
    "include_ref": ("include_ref", {"mlm-json"}),
    "utt2spk": ("utt2spk", {"trn"}),
    "stream": ("stream", {"trn"}),
    "norm": ("norm", {"trn"}),
}


def get_parser():
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--format", required=True, choices=list(formats.WRITERS))
    p.add_argument("--nj", type=int, help="kaldi-nbest: number of archives.JOB directories (default 1)")
    p.add_argument("--words", help="kaldi-nbest: words.txt to use (default: write OUT/words.txt)")
    p.add_argument("--acwt", type=float, help="kaldi-nbest: acoustic scale of the costs (default: the set's)")
    p.add_argument("--score_style", choices=["tensor", "float"], help="espnet: 'tensor(-1.2345)' or plain floats")
    p.add_argument("--include_ref", type=str2bool, help="mlm-json: write the 'ref' fields")
    p.add_argument("--utt2spk", help="trn: utt2spk file, ids written as (spk-utt)")
    p.add_argument("--stream", help="trn: stream whose best hypothesis is written (default score)")
    p.add_argument("--norm", help="trn: normalisation applied to both sides")
    p.add_argument("setdir")
    p.add_argument("out")
    return p


def body(args) -> int:
    opts = {}
    for opt, (kw, fmts) in FORMAT_OPTIONS.items():
        value = getattr(args, opt)
        if value is None:
            continue
        if args.format not in fmts:
            raise SystemExit(f"export_nbest: --{opt} does not apply to --format {args.format}")
        if opt in ("words", "utt2spk"):
            value = Path(value)
        elif opt == "norm":
            value = Normalizer.parse(value)
        opts[kw] = value
    nbs = load_set(args.setdir)
    log.info(f"exporting {describe(nbs)} from {args.setdir} as {args.format}")
    files = formats.module(args.format, writing=True).write(nbs, Path(args.out), **opts)
    log.info(f"wrote {len(files)} file(s) under {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
