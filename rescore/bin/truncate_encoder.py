"""A student's initial encoder: the first layers of a (domain-adapted) teacher.

    python -m rescore.bin.truncate_encoder --num_layers N [--overwrite true|false] SRC OUTDIR

SRC is a hub id or ``save_pretrained`` directory of an encoder or masked LM (e.g. the
``train_mlm`` output ``exp/teacher_adapt/model``). Writes ``OUTDIR`` as a ``save_pretrained``
directory (config with ``num_hidden_layers = N``, safetensors weights of the embeddings and layers
0..N-1, the tokenizer) for ``train_student --init OUTDIR``, then ``OUTDIR/run.yaml`` and last
``OUTDIR/.done`` (fingerprint of SRC and N: a re-run with the same inputs logs ``skip``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rescore.bin.common import add_overwrite, parser, positive_int, run
from rescore.exceptions import InputError
from rescore.stage import check_done, mark_done, reopen, write_run_info

MODULE = "rescore.bin.truncate_encoder"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--num_layers", type=positive_int, required=True, help="layers to keep (the first N)")
    add_overwrite(p)
    p.add_argument("src", help="hub id or directory of the encoder or masked LM")
    p.add_argument("outdir", help="output directory (a save_pretrained encoder)")
    return p


def body(args) -> int:
    from rescore.models.truncate import truncate_encoder

    outdir = Path(args.outdir)
    local = os.path.isdir(args.src)
    cfg = {"src": args.src, "num_layers": args.num_layers}
    fp = check_done(outdir, [args.src] if local else [], cfg, args.overwrite)
    if fp is None:
        return 0
    if local and Path(args.src).resolve() == outdir.resolve():
        raise InputError(outdir, None, "OUTDIR must differ from SRC")
    reopen(outdir)
    try:
        res = truncate_encoder(args.src, outdir, args.num_layers)
    except ValueError as e:
        raise InputError(args.src, None, str(e)) from e
    except OSError as e:
        raise InputError(args.src, None, f"cannot load an encoder from it: {e}") from e
    write_run_info(outdir, args.argv, MODULE, {**cfg, "layers_before": res.layers_before,
                                              "hidden_size": res.hidden_size, "parameters": res.parameters})
    mark_done(outdir, fp)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
