"""Teacher PLL: the pseudo-log-likelihood of every hypothesis of a set under a masked LM.

    python -m rescore.bin.score_pll --model NAME_OR_DIR [--batch_tokens N] [--device cpu|cuda|auto]
        [--dtype fp32|bf16|fp16] [--word_mask none|whole|l2r] [--per_token true|false]
        [--dedup true|false] [--num_threads N] [--norm FLAGS] [--save_every SECONDS]
        [--overwrite true|false] SETDIR OUTDIR

Writes ``OUTDIR/pll``: a Kaldi text archive ``<utt>-<k> <float>`` with one line per hypothesis of
``SETDIR/nbest/text`` (natural-log PLL, higher is better; 0.0 for an empty hypothesis); the model
reads each hypothesis after ``--norm`` (rescore.data.textnorm flags, e.g. ``csj,bracket`` to strip CSJ
``+POS`` tags and noise tokens; default none: the text as stored). With
``--per_token true`` also ``OUTDIR/pll_tokens``, one line per hypothesis in the same key order::

    <utt>-<k> <tok1> <lp1> <tok2> <lp2> ...

the scored subword tokens as the tokenizer spells them (``##ing``, ``Ġworld``, ``▁the``) each
followed by its natural-log probability (the sum of a line's values is its ``pll``); an empty
hypothesis is the key alone (ASCII whitespace inside a token, unseen in usual vocabularies,
is written as ``<0xNN>``). Then ``OUTDIR/run.yaml`` (replay command, resolved options,
versions) and last ``OUTDIR/.done``, holding the fingerprint of ``SETDIR/nbest/text``, the model
(directory contents when local, else the hub id) and the options: a re-run with the same
fingerprint logs ``skip``, anything changed is recomputed. See :mod:`rescore.models.pll` for the
scoring rules (special tokens, leading spaces, windows for long hypotheses, word masking).

Resumable: finished batches are saved to ``OUTDIR/partial`` (every ``--save_every`` seconds, default
30), so a run that is killed, however it dies, resumes where it stopped when run again with the
same inputs and options (``resumed: N batches restored`` in the log); the batches are planned
deterministically, so the output is byte-identical to an uninterrupted run (on the same machine and
threads). ``partial`` is removed when ``OUTDIR/pll`` is written; ``--overwrite true`` discards it.
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
    str2bool,
)
from rescore.data.archive import format_float, write_lines
from rescore.data.nbest import load_set, write_scores
from rescore.data.textnorm import Normalizer
from rescore.defaults import PLL_BATCH_TOKENS, PLL_WORD_MASKS
from rescore.exceptions import InputError
from rescore.stage import PARTIAL, PartialResults, mark_done, write_run_info

MODULE = "rescore.bin.score_pll"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="Hugging Face masked LM: hub id or save_pretrained directory")
    p.add_argument("--batch_tokens", type=positive_int, default=PLL_BATCH_TOKENS,
                   help=f"padded tokens per batch (rows x length; default {PLL_BATCH_TOKENS})")
    p.add_argument("--device", type=device_arg, default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast precision")
    p.add_argument("--word_mask", choices=list(PLL_WORD_MASKS), default="none",
                   help="none: plain PLL; whole: mask whole words; l2r: mask the token and the rest of its word")
    p.add_argument("--per_token", type=str2bool, default=False, help="also write OUTDIR/pll_tokens")
    p.add_argument("--dedup", type=str2bool, default=True, help="score identical hypotheses once (default true)")
    p.add_argument("--num_threads", type=nonneg_int, default=0, help="CPU threads (default: all available)")
    p.add_argument("--norm", type=norm_arg, default="none", help="normalisation of the text the model reads (default none)")
    p.add_argument("--save_every", type=nonneg_float, default=30.0,
                   help="seconds between saves of finished batches to OUTDIR/partial, from which a killed run "
                   "resumes (default 30; 0: after every batch)")
    add_overwrite(p)
    p.add_argument("setdir")
    p.add_argument("outdir")
    return p


def _field(token: str) -> str:
    """A token as one archive field: ASCII whitespace (never in usual vocabularies) as <0xNN>."""
    if not token or any(c in " \t\n\r\f\v" for c in token):
        return "".join(f"<0x{ord(c):02X}>" if c in " \t\n\r\f\v" else c for c in token) or "<empty>"
    return token


def options(args) -> dict:
    """The options that determine the output (the fingerprint's config part)."""
    return {"model": args.model, "word_mask": args.word_mask, "dtype": args.dtype, "per_token": args.per_token,
            "dedup": args.dedup, "batch_tokens": args.batch_tokens, "norm": args.norm}


def body(args) -> int:
    import torch

    from rescore.models.hf import load_mlm
    from rescore.models.pll import PllScorer
    from rescore.runtime import resolve_device, set_threads

    setdir, outdir = Path(args.setdir), Path(args.outdir)
    cfg = options(args)
    fp = begin_set_step(setdir, outdir, args.model, cfg, args.overwrite)
    if fp is None:
        return 0
    nbs = load_set(setdir)
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as e:
        raise InputError(None, None, f"--device {args.device}: {e}") from e
    if device.type == "cpu":
        threads = set_threads(args.num_threads or None)
        log.info(f"CPU threads: {threads}")
    try:
        model, tokenizer, _ = load_mlm(args.model, device)
        scorer = PllScorer(model, tokenizer, device=device, dtype=args.dtype, batch_tokens=args.batch_tokens,
                           word_mask=args.word_mask, dedup=args.dedup, progress=True)
    except (OSError, ValueError, ImportError) as e:
        raise InputError(args.model, None, f"cannot score with this model: {e}") from e
    log.info(f"PLL: {setdir} -> {outdir}: {nbs.num_utts} utterances, {nbs.num_hyps} hypotheses, model "
             f"{args.model} ({type(model).__name__}, max length {scorer.max_length}), device {device}, "
             f"{args.dtype}, word_mask {args.word_mask}")
    norm = Normalizer.parse(args.norm)
    texts = [norm.text(t) for t in nbs.texts] if norm.flags else list(nbs.texts)
    partial = PartialResults(outdir / PARTIAL, fp, args.save_every, discard=args.overwrite)
    tokens, lps = scorer.score_detailed(texts, partial)
    if partial.restored_batches:
        log.info(f"resumed: {partial.restored_batches} batches restored, {partial.computed_batches} computed")
    scores = [float(lp.sum()) for lp in lps]
    if len(scores) != nbs.num_hyps:  # counts in = counts out
        raise RuntimeError(f"scored {len(scores)} hypotheses of {nbs.num_hyps}")
    st = scorer.stats
    log.info(f"scored {st.texts} hypotheses ({st.unique} unique, duplicate rate {100 * st.duplicate_rate:.1f}%), "
             f"{st.tokens} tokens, {st.rows} masked copies in {st.batches} batches, {st.seconds:.1f} s "
             f"({st.unique / max(st.seconds, 1e-9):.1f} unique hyps/s)")
    log.info(f"{st.empty} empty hypotheses (score 0.0); {st.windowed} hypotheses longer than the model "
             f"({scorer.max_length} tokens), scored in overlapping windows")
    write_scores(outdir / "pll", nbs, scores)
    if args.per_token:
        write_lines(outdir / "pll_tokens", (
            " ".join([key] + [f"{_field(t)} {format_float(v)}" for t, v in zip(toks, lp.tolist(), strict=True)])
            for key, toks, lp in zip(nbs.keys(), tokens, lps, strict=True)))
    write_run_info(outdir, args.argv, MODULE, {**cfg, "setdir": str(setdir), "device": str(device),
                                              "num_threads": torch.get_num_threads(),
                                              "max_length": scorer.max_length})
    partial.finish()
    mark_done(outdir, fp)
    log.info(f"wrote {outdir / 'pll'}" + (" and pll_tokens" if args.per_token else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
