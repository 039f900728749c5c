"""Split a dataset directory by utterance into NJ subsets for parallel jobs.

    python -m rescore.bin.split_nbest SETDIR NJ

Writes SETDIR/split<NJ>/{1..NJ}, each a canonical dataset directory holding a contiguous block of
near-equal utterance count (Kaldi split_scp order) with every stream, its references and meta.yaml.
A split that is up to date with SETDIR (fingerprint in SETDIR/split<NJ>/.done) is reused. More jobs
than utterances is an error. Prints the subset directories, one a line.
"""

from __future__ import annotations

from rescore.bin.common import parser, positive_int, run
from rescore.data.split import split_set


def get_parser():
    p = parser(__doc__)
    p.add_argument("setdir")
    p.add_argument("nj", type=positive_int, help="number of jobs (subsets), at least 1")
    return p


def body(args) -> int:
    for d in split_set(args.setdir, args.nj):
        print(d)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
