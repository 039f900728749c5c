"""Word (or character) error rate of a hypothesis text file against a reference, as Kaldi prints it.

    python -m rescore.bin.compute_wer [--cer true|false] [--mode present|all|strict] [--norm FLAGS] REF HYP

REF and HYP are Kaldi ``text`` archives ("<utt> w1 w2 ...") given as rspecifiers, as to Kaldi's
``compute-wer``: ``ark:FILE``, ``ark,t:``/``ark,s,cs:`` and Kaldi's other read options,
``ark:-`` or ``-`` (standard input), ``'ark:gunzip -c hyp.gz |'`` (a pipe), or a plain path;
``scp:`` is refused with a message. Prints the three ``compute-wer`` lines (%WER, %SER, Scored
...) with Kaldi's totals, ins/del/sub split and printing (rates in single precision, ``-nan``
with no reference words). Mode ``present`` (the default, as Kaldi's scoring scripts use) skips
references without hypothesis, ``all`` scores them as deletions, ``strict`` fails. As in Kaldi,
a reference key that repeats is scored once per line (warned about) and a repeated hypothesis
key is an error (Kaldi: "duplicate key ... in archive"). ``--cer`` splits words into characters as Kaldi's
``score_kaldi_cer.sh`` does (a token containing ``[...]``, ``<...>`` or ``!SIL`` stays whole).
"""

from __future__ import annotations

import sys

from rescore.bin.common import add_flag, log, norm_arg, parser, run
from rescore.data.archive import read_transcripts
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from rescore.scoring.wer import MODES, AbsentHypothesisError, score_texts


def get_parser():
    p = parser(__doc__)
    add_flag(p, "cer", "character error rate (spaces not counted)")
    p.add_argument("--mode", choices=MODES, default="present", help="references without hypothesis (default present)")
    p.add_argument("--norm", type=norm_arg, default="none", help="normalisation flags applied to both sides, e.g. lower,punct (default none)")
    p.add_argument("ref", help="reference rspecifier or file")
    p.add_argument("hyp", help="hypothesis rspecifier or file")
    return p


def read_references(spec: str) -> list[tuple[str, str]]:
    """The references of a text rspecifier in file order. A repeated key is scored once per line,
    as Kaldi's sequential reader does (warned about, naming the lines)."""
    name, rows = read_transcripts(spec)
    where: dict[str, int] = {}
    repeats = []
    for lineno, key, _ in rows:
        if key in where:
            repeats.append(f"{key} (lines {where[key]} and {lineno})")
        where.setdefault(key, lineno)
    if repeats:
        log.warning("%s: %d repeated key(s), each line scored as compute-wer does: %s", name, len(repeats),
                    ", ".join(repeats[:5]) + (", ..." if len(repeats) > 5 else ""))
    return [(key, text) for _, key, text in rows]


def read_unique(spec: str) -> dict[str, str]:
    """``{key: text}`` of a text rspecifier whose keys must be unique (an error names the line)."""
    name, rows = read_transcripts(spec)
    out: dict[str, str] = {}
    for lineno, key, text in rows:
        if key in out:
            raise InputError(name, lineno, f"duplicate key {key!r}")
        out[key] = text
    return out


def body(args) -> int:
    refs = read_references(args.ref)
    hyps = read_unique(args.hyp)  # Kaldi's random-access reader stops at a repeated key too
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
