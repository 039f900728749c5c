"""Word (or character) error rate of a hypothesis text file against a reference, as Kaldi prints it.

    python -m rescore.bin.compute_wer [--cer] [--mode present|all|strict] [--norm FLAGS] REF HYP

REF and HYP are Kaldi ``text`` files ("<utt> w1 w2 ..."; ``ark:``/``ark,t:`` prefixes and ``-``
for stdin are accepted). Prints the three ``compute-wer`` lines (%WER, %SER, Scored ...) with
Kaldi's totals and ins/del/sub split. Mode ``present`` (the default, as Kaldi's scoring scripts
use) skips references without hypothesis, ``all`` scores them as deletions, ``strict`` fails.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rescore.archive import read_text_dict
from rescore.bin.common import norm_arg, parser, run
from rescore.textnorm import Normalizer
from rescore.wer import MODES, AbsentHypothesisError, score_texts


def get_parser():
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--cer", action="store_true", help="character error rate (spaces not counted)")
    p.add_argument("--mode", choices=MODES, default="present", help="references without hypothesis (default present)")
    p.add_argument("--norm", type=norm_arg, default="none", help="normalisation flags applied to both sides, e.g. lower,punct (default none)")
    p.add_argument("ref")
    p.add_argument("hyp")
    return p


def _read(spec: str) -> dict[str, str]:
    for prefix in ("ark,t:", "ark,p:", "ark:"):
        if spec.startswith(prefix):
            spec = spec[len(prefix):]
    if spec == "-":
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
            f.write(sys.stdin.buffer.read())
        try:
            return read_text_dict(f.name)
        finally:
            Path(f.name).unlink()
    return read_text_dict(spec)


def body(args) -> int:
    refs, hyps = _read(args.ref), _read(args.hyp)
    try:
        res = score_texts(refs, hyps, Normalizer.parse(args.norm), "cer" if args.cer else "wer", args.mode)
    except AbsentHypothesisError as e:
        print(f"compute_wer: error: {e.args[0]}", file=sys.stderr)
        return 1
    print("\n".join(res.kaldi_lines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
