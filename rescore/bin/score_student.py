"""Student scores: every hypothesis of a set scored by a RescoreBERT student in one forward pass.

    python -m rescore.bin.score_student --model DIR [--batch_tokens N] [--device cpu|cuda|auto]
        [--dtype fp32|bf16|fp16] [--backend torch|onnx] [--quantize none|int8] [--num_threads N]
        [--norm FLAGS] [--save_every SECONDS] [--overwrite true|false] SETDIR OUTDIR

Writes ``OUTDIR/student``: a Kaldi text archive ``<utt>-<k> <float>`` with one line per hypothesis
of ``SETDIR/nbest/text``, in the key order of the set, higher is better (the convention of ``pll``).
The model reads each hypothesis after ``--norm`` (rescore.data.textnorm flags; default none: the text as
stored; use the normalisation the student was trained with). ``--model`` is a directory written by
``train_student`` (``RescoreBert.save_pretrained``); a plain encoder is accepted with a warning (its
new head scores ~0). Hypotheses longer than the encoder are truncated from the right, with a
counted warning (see :mod:`rescore.models.student`). Then ``OUTDIR/run.yaml`` (replay command,
resolved options, versions) and last ``OUTDIR/.done``, holding the fingerprint of
``SETDIR/nbest/text``, the model (directory contents when local, else the hub id) and the options:
a re-run with the same fingerprint logs ``skip``, anything changed is recomputed.

``--backend onnx`` exports the student to ``OUTDIR/onnx/student.onnx`` and runs it with ONNX
Runtime on CPU (the ``onnx`` extra); ``--quantize int8`` quantizes that graph dynamically
(``OUTDIR/onnx/student.int8.onnx``) and scores with it. Tokenisation and batching are the same as
with ``--backend torch``; fp32 ONNX scores equal PyTorch's to about 1e-5, int8 ones move by a
fraction of a nat (bench/RESULTS.md measures speed and the effect on WER).

Resumable: finished batches are saved to ``OUTDIR/partial`` (every ``--save_every`` seconds, default
30), so a run that is killed, however it dies, resumes where it stopped when run again with the
same inputs and options (``resumed: N batches restored`` in the log); the batches are planned
deterministically, so the output is byte-identical to an uninterrupted run (on the same machine and
threads). ``partial`` is removed when ``OUTDIR/student`` is written; ``--overwrite true`` discards it.
One run at a time writes OUTDIR: a second fails at once naming the first (:mod:`rescore.stage`).
"""

from __future__ import annotations

from pathlib import Path

from rescore.bin.common import (
    add_overwrite,
    begin_set_step,
    device_arg,
    log,
    nonneg_float,
    nonneg_int,
    norm_arg,
    parser,
    positive_int,
    run,
)
from rescore.data.nbest import load_set, write_scores
from rescore.data.textnorm import Normalizer
from rescore.defaults import STUDENT_BATCH_TOKENS
from rescore.exceptions import InputError
from rescore.stage import PARTIAL, PartialResults, mark_done, write_run_info

MODULE = "rescore.bin.score_student"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="student directory (train_student output)")
    p.add_argument("--batch_tokens", type=positive_int, default=STUDENT_BATCH_TOKENS,
                   help=f"padded tokens per batch (rows x length; default {STUDENT_BATCH_TOKENS})")
    p.add_argument("--device", type=device_arg, default="auto",
                   help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast precision")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="torch (default) or onnx: ONNX Runtime on CPU (pip install 'rescore[onnx]')")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="int8: dynamic int8 quantization of the ONNX graph (needs --backend onnx)")
    p.add_argument("--num_threads", type=nonneg_int, default=0, help="CPU threads (default: all available)")
    p.add_argument("--norm", type=norm_arg, default="none",
                   help="normalisation of the text the model reads (default none)")
    p.add_argument("--save_every", type=nonneg_float, default=30.0,
                   help="seconds between saves of finished batches to OUTDIR/partial, from which a killed run "
                   "resumes (default 30; 0: after every batch)")
    add_overwrite(p)
    p.add_argument("setdir")
    p.add_argument("outdir")
    return p


def options(args) -> dict:
    """The options that determine the output (the fingerprint's config part)."""
    opts = {"model": args.model, "dtype": args.dtype, "batch_tokens": args.batch_tokens, "norm": args.norm}
    if args.backend != "torch":  # absent for torch: the fingerprints of earlier runs stay valid
        opts.update(backend=args.backend, quantize=args.quantize)
    return opts


def body(args) -> int:
    import torch

    from rescore.models.student import RescoreBert
    from rescore.runtime import autocast, resolve_device, set_threads

    setdir, outdir = Path(args.setdir), Path(args.outdir)
    if args.quantize != "none" and args.backend != "onnx":
        raise InputError(None, None, f"--quantize {args.quantize} needs --backend onnx")
    if args.backend == "onnx" and args.dtype != "fp32":
        raise InputError(None, None, "--backend onnx runs fp32 (or int8 with --quantize int8): use --dtype fp32")
    cfg = options(args)
    fp = begin_set_step(setdir, outdir, args.model, cfg, args.overwrite)
    if fp is None:
        return 0
    nbs = load_set(setdir)
    try:
        device = resolve_device(args.device)
        autocast(device, args.dtype)  # fp16 on CPU is refused here, before the model loads
    except (ValueError, RuntimeError) as e:
        raise InputError(None, None, f"--device {args.device} --dtype {args.dtype}: {e}") from e
    if device.type == "cpu":
        threads = set_threads(args.num_threads or None)
        log.info(f"CPU threads: {threads}")
    try:
        model = RescoreBert.from_pretrained(args.model).to(device).eval()
    except (OSError, ValueError, ImportError, KeyError) as e:
        raise InputError(args.model, None, f"cannot load a student from it: {e}") from e
    c = model.encoder.config
    log.info(f"student: {setdir} -> {outdir}: {nbs.num_utts} utterances, {nbs.num_hyps} hypotheses, model "
             f"{args.model} ({type(model.encoder).__name__}, {c.num_hidden_layers} layers x {c.hidden_size}, "
             f"max length {model.max_length}), device {device}, {args.dtype}")
    runner = None
    if args.backend == "onnx":
        from rescore.models.onnx_student import OnnxRunner, export_onnx, quantize_int8

        try:
            graph = export_onnx(model.cpu(), outdir / "onnx" / "student.onnx")
            if args.quantize == "int8":
                graph = quantize_int8(graph, outdir / "onnx" / "student.int8.onnx")
            runner = OnnxRunner(graph, num_threads=args.num_threads)
        except ImportError as e:
            raise InputError(None, None, str(e)) from None
        log.info(f"backend: ONNX Runtime, {graph}")
    norm = Normalizer.parse(args.norm)
    texts = [norm.text(t) for t in nbs.texts] if norm.flags else list(nbs.texts)
    partial = PartialResults(outdir / PARTIAL, fp, args.save_every, discard=args.overwrite)
    scores = model.score(texts, batch_tokens=args.batch_tokens, device=device, dtype=args.dtype,
                         progress=True, runner=runner, partial=partial)
    if partial.restored_batches:
        log.info(f"resumed: {partial.restored_batches} batches restored, {partial.computed_batches} computed")
    if len(scores) != nbs.num_hyps:  # counts in = counts out
        raise RuntimeError(f"scored {len(scores)} hypotheses of {nbs.num_hyps}")
    st = model.stats
    log.info(f"scored {st.texts} hypotheses ({st.unique} unique), {st.tokens} tokens ({st.padded_tokens} "
             f"with padding) in {st.batches} batches, {st.seconds:.1f} s "
             f"({st.texts / max(st.seconds, 1e-9):.1f} hyps/s)")
    log.info(f"{st.empty} empty hypotheses (special tokens only); {st.truncated} hypotheses longer than the "
             f"model ({model.max_length} tokens), truncated from the right")
    write_scores(outdir / "student", nbs, scores)
    write_run_info(outdir, args.argv, MODULE, {**cfg, "setdir": str(setdir), "device": str(device),
                                              "num_threads": torch.get_num_threads(),
                                              "max_length": model.max_length})
    partial.finish()
    mark_done(outdir, fp)
    log.info(f"wrote {outdir / 'student'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
