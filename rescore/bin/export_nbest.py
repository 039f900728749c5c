"""Export a dataset directory to a recogniser's or scorer's format.

    python -m rescore.bin.export_nbest --format FMT [options] SETDIR OUT

Formats: kaldi-nbest (decode dir with archives.JOB/ text archives that Kaldi's
linear-to-nbest accepts, and num_jobs), kaldi-lattice (decode dir with lat.JOB.gz CompactLattices
of the n-best paths whose best path at LMWT=1/acwt is the best by score, num_jobs, words.txt), espnet (logdir/output.1/<n>best_recog/{text,score}
plus the merged 1-best), mlm-json (mlm-scoring *.am.json; OUT is the file), trn (sclite
hyp.trn/ref.trn of the 1-best), setdir (a normalised copy).
"""

from __future__ import annotations

from pathlib import Path

from rescore.bin.common import (
    add_format_options,
    format_options,
    log,
    nonneg_float,
    parser,
    positive_int,
    run,
    str2bool,
)
from rescore.data import formats
from rescore.data.nbest import describe, load_set
from rescore.data.textnorm import Normalizer

KALDI, ESPNET, MLM, TRN = {"kaldi-nbest"}, {"espnet"}, {"mlm-json"}, {"trn"}
LAT = {"kaldi-lattice"}
FORMAT_OPTIONS = {
    "nj": (KALDI | LAT, dict(type=positive_int, help="number of jobs: archives.JOB directories or lat.JOB.gz (default 1)")),
    "words": (KALDI | LAT, dict(type=Path, help="the recogniser's words.txt (default: the table the set was "
                                            "imported with, recorded in its meta.yaml)")),
    "new_symbol_table": (KALDI | LAT, dict(type=str2bool, dest="new_table",
                                           help="true: no recogniser table exists (e.g. ESPnet, pocketsphinx): "
                                           "write a new OUT/words.txt and score with it (default false)")),
    "acwt": (KALDI | LAT, dict(type=nonneg_float, help="acoustic scale of the costs (default: the set's)")),
    "binary": (LAT, dict(type=str2bool, help="binary CompactLattices (default true); false: text form")),
    "score_style": (ESPNET, dict(choices=["tensor", "float"], help="'tensor(-1.2345)' or plain floats")),
    "order": (ESPNET, dict(choices=["score", "rank"], help="<n>best_recog holds the n-th best by score (default; "
                                                            "what ESPnet's scoring needs) or the key of rank n")),
    "include_ref": (MLM, dict(type=str2bool, help="write the 'ref' fields (default true)")),
    "utt2spk": (TRN, dict(type=Path, help="utt2spk file, ids written as (spk-utt)")),
    "stream": (TRN, dict(help="stream whose best hypothesis is written (default score)")),
    "norm": (TRN, dict(type=Normalizer.parse, help="normalisation applied to both sides")),
}


def get_parser():
    p = parser(__doc__)
    p.add_argument("--format", required=True, choices=list(formats.WRITERS))
    add_format_options(p, FORMAT_OPTIONS)
    p.add_argument("setdir")
    p.add_argument("out")
    return p


def body(args) -> int:
    opts = format_options(args, FORMAT_OPTIONS, "export_nbest")
    nbs = load_set(args.setdir)
    log.info(f"exporting {describe(nbs)} from {args.setdir} as {args.format}")
    files = formats.module(args.format, writing=True).write(nbs, Path(args.out), **opts)
    log.info(f"wrote {len(files)} file(s) under {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
