"""Score every hypothesis of a set with a causal LM (our LSTM LM or any Hugging Face causal LM).

    python -m rescore.bin.score_clm --model NAME_OR_DIR [--batch_tokens N] [--device cpu|cuda|auto]
        [--dtype fp32|bf16|fp16] [--num_threads N] [--norm FLAGS] [--prefix_space auto|true|false]
        [--window_stride N] [--overwrite true|false] SETDIR OUTDIR

Writes ``OUTDIR/clm``: ``<utt>-<k> <float>``, the natural-log probability of each hypothesis
including the end of sentence (higher is better), for every key of ``SETDIR/nbest/text``;
``OUTDIR/run.yaml`` (replay command, resolved options) and ``OUTDIR/.done`` last. A re-run with the
same hypotheses, model and options is skipped unless ``--overwrite true``.

A model directory whose ``config.json`` says ``"model_type": "rescore_lstm_lm"`` (written by
``train_clm``) is our LSTM LM, scored with the normalisation it was trained with; anything else is
loaded with ``AutoModelForCausalLM``. BOS/EOS, the leading-space rule, empty hypotheses
(``log P(EOS | BOS)``) and the sliding window for hypotheses longer than the model's context are
described in :mod:`rescore.models.lstm`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

from rescore.bin.common import add_overwrite, device_arg, log, nonneg_int, parser, positive_int, run
from rescore.data.nbest import describe, load_set, write_scores
from rescore.defaults import CLM_BATCH_TOKENS
from rescore.stage import check_done, mark_done, reopen, write_run_info

MODULE = "rescore.bin.score_clm"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="Hugging Face causal LM id or directory, or a train_clm model dir")
    p.add_argument("--batch_tokens", type=positive_int, default=CLM_BATCH_TOKENS,
                   help=f"padded positions per batch (default {CLM_BATCH_TOKENS})")
    p.add_argument("--device", type=device_arg, default="auto", help="cpu, cuda, cuda:N or auto (default auto)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast dtype (default fp32)")
    p.add_argument("--num_threads", type=nonneg_int, default=0, help="CPU threads (default: all available)")
    p.add_argument("--norm", default=None,
                   help="normalisation flags for a Hugging Face model, e.g. 'lower' (default: none; "
                        "an LSTM LM always uses the normalisation it was trained with)")
    p.add_argument("--prefix_space", choices=["auto", "true", "false"], default="auto",
                   help="prefix a space to each text (GPT-2 style BPE); auto probes the tokenizer (default)")
    p.add_argument("--window_stride", type=positive_int, default=None,
                   help="stride of the sliding window over hypotheses longer than the context (default: half)")
    add_overwrite(p)
    p.add_argument("setdir", help="dataset directory (reads SETDIR/nbest/text)")
    p.add_argument("outdir", help="output directory (OUTDIR/clm)")
    return p


def body(args, argv: list[str] | None) -> int:
    out = Path(args.outdir)
    text = Path(args.setdir) / "nbest" / "text"
    options = {"model": args.model, "batch_tokens": args.batch_tokens, "device": args.device, "dtype": args.dtype,
               "norm": args.norm, "prefix_space": args.prefix_space, "window_stride": args.window_stride}
    inputs = [text] + ([args.model] if Path(args.model).exists() else [])
    fp = check_done(out, inputs, options, args.overwrite)
    if fp is None:
        return 0
    reopen(out)
    nbs = load_set(args.setdir, streams=[])
    log.info(f"read {describe(nbs)} from {args.setdir}")
    from rescore.models.lstm import load_scorer  # torch and transformers: after parsing (fast --help)
    from rescore.runtime import resolve_device, set_threads

    device = resolve_device(args.device)
    if device.type == "cpu":
        set_threads(args.num_threads)
    try:
        scorer = load_scorer(args.model, device=device, dtype=args.dtype, batch_tokens=args.batch_tokens,
                             norm=args.norm, prefix_space=args.prefix_space, window_stride=args.window_stride,
                             show_progress=sys.stderr.isatty())
    except (OSError, ValueError) as e:  # no such model, no eos token, normalisation mismatch, bad option
        raise SystemExit(f"score_clm: error: {args.model}: {e}") from None
    start = time.perf_counter()
    values = scorer.score(list(nbs.texts))
    elapsed = time.perf_counter() - start
    if len(values) != nbs.num_hyps:
        raise RuntimeError(f"scored {len(values)} hypotheses of {nbs.num_hyps}")
    st = scorer.stats
    log.info(f"scored {st.describe()} in {elapsed:.1f} s ({nbs.num_hyps / max(elapsed, 1e-9):.1f} hyps/s)")
    if st.empty:
        log.info(f"{st.empty} empty hypotheses scored as log P(EOS | BOS)")
    write_scores(out / "clm", nbs, values)
    log.info(f"wrote {out / 'clm'}: {nbs.num_hyps} hypotheses")
    resolved = {"norm": str(scorer.norm), "bos_id": scorer.bos_id, "eos_id": scorer.eos_id,
                "context": scorer.max_len, "window_stride": scorer.window_stride,
                "prefix_space": scorer.prefix_space, "device": str(device)}
    write_run_info(out, argv, MODULE, {**options, "resolved": resolved, "stats": asdict(st)})
    mark_done(out, fp)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(lambda args: body(args, argv), get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
