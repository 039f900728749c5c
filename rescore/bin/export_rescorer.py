"""A rescorer bundle: the student, its tokenizer and the dev-tuned weights, in one directory.

    python -m rescore.bin.export_rescorer --student DIR --weights EXP/weights.yaml --out BUNDLE
        [--norm FLAGS] [--onnx true|false] [--quantize none|int8] [--overwrite true|false]

``--student`` is a ``train_student`` output (``exp/student_mwer/model``); ``--weights`` the
``weights.yaml`` of the ``rescore`` run that tuned that student's stream on dev
(``exp/rescore/mwer/weights.yaml``: one stream, its weight beta, the unit bonus wip and, for Kaldi
cost sets, the acoustic scale acwt). ``--norm``: the normalisation the student reads (default: the
``norm`` of the student's training config, else none), as ``score_student --norm`` was given.
``--onnx true`` adds the student as an ONNX graph (``student.onnx``; the onnx extra) and
``--quantize int8`` its int8 dynamic quantization (``student.int8.onnx``).

Writes BUNDLE (replaced as a whole): ``rescorer.yaml`` (the combination, the weights, the
normalisations, the metric of the unit bonus, the sources with their digests and the command),
``student/`` and the ONNX graphs; then ``BUNDLE/.done`` (a re-run with the same inputs logs
``skip``). In Python::

    import rescore
    r = rescore.Rescorer.from_pretrained("BUNDLE")            # backend="onnx", quantize="int8"
    best = r.rescore(["hyp one", "hyp two"], [-12.5, -13.0])  # .order, .hyps, .totals, .student

gives the decisions the ``rescore`` step makes with those weights. ``python -m rescore.bin.serve
--bundle BUNDLE`` serves it over HTTP.
"""

from __future__ import annotations

from pathlib import Path

from rescore.bin.common import add_overwrite, norm_arg, parser, run, str2bool
from rescore.exceptions import InputError
from rescore.stage import check_done, mark_done

MODULE = "rescore.bin.export_rescorer"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--student", required=True, help="student directory (train_student's OUT/model)")
    p.add_argument("--weights", required=True, help="weights.yaml of the rescore run with that student's stream")
    p.add_argument("--out", required=True, help="the bundle directory to write")
    p.add_argument("--norm", type=norm_arg, default=None,
                   help="normalisation the student reads (default: its training config's norm, else none)")
    p.add_argument("--onnx", type=str2bool, default=False, metavar="true|false",
                   help="also write the student as an ONNX graph (default false)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="int8: also write the ONNX graph's int8 dynamic quantization (needs --onnx true)")
    add_overwrite(p)
    return p


def body(args) -> int:
    from rescore.rescoring.bundle import export_bundle

    out = Path(args.out)
    for path, what in ((args.student, "--student"), (args.weights, "--weights")):
        if not Path(path).exists():
            raise InputError(path, None, f"{what}: no such file or directory")
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "--out exists and is not a directory")
    cfg = {"norm": args.norm, "onnx": args.onnx, "quantize": args.quantize}
    fp = check_done(out, [args.student, args.weights], cfg, args.overwrite)
    if fp is None:
        return 0
    try:
        export_bundle(args.student, args.weights, out, norm=args.norm, onnx=args.onnx, quantize=args.quantize,
                      argv=args.argv)
    except ImportError as e:
        raise InputError(None, None, str(e)) from None
    mark_done(out, fp)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
