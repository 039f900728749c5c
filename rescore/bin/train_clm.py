"""Train a small LSTM LM (the conventional baseline rescorer) on a text corpus.

    python -m rescore.bin.train_clm --text CORPUS.txt --out DIR [--dev_text HELDOUT.txt]
        [--config conf/train_clm.yaml] [--resume true|false] [--overwrite true|false] [key=value ...]

CORPUS.txt holds one sentence per line (UTF-8; empty lines are skipped and counted). Options come
from the dataclass defaults < ``--config`` YAML < ``key=value`` overrides (``conf/train_clm.yaml``
documents every key); an unknown key is an error. Without ``--dev_text`` a ``dev_fraction`` of the
corpus is held out for the per-epoch dev perplexity.

Writes ``DIR/config.yaml`` (resolved config), ``DIR/units/``, ``DIR/checkpoints/``,
``DIR/train_log.jsonl``, the model ``DIR/model/`` (load it with ``score_clm --model DIR/model``),
``DIR/run.yaml`` and ``DIR/.done`` last. A finished run with the same inputs and config is skipped
unless ``--overwrite true``; an interrupted one resumes from its latest checkpoint unless
``--resume false`` (checkpoints made with other inputs or config are discarded, with a warning).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rescore.bin.common import add_overwrite, add_print_config, parser, run, str2bool
from rescore.config import load_config
from rescore.stage import check_done, mark_done, reopen, write_run_info

MODULE = "rescore.bin.train_clm"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--text", required=True, help="training corpus, one sentence per line")
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--dev_text", default=None, help="held-out sentences (default: dev_fraction of --text)")
    p.add_argument("--config", default=None, help="YAML config (default: built-in defaults = conf/train_clm.yaml)")
    p.add_argument("--resume", type=str2bool, default=True,
                   help="true: continue from the latest checkpoint in --out (default true)")
    add_overwrite(p)
    add_print_config(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return p


def resolved_config(config: str | None, overrides: list[str], init: str | None):
    """The config a run would use: defaults < --config < key=value; validated (``init`` is unused)."""
    from rescore.train.lstm import TrainClmConfig

    cfg = load_config(TrainClmConfig, config, overrides)
    cfg.validate()
    return cfg


def body(args, argv: list[str] | None) -> int:
    from rescore.train.lstm import fresh_start, train_lstm_lm  # torch: after parsing (fast --help)

    cfg = resolved_config(args.config, args.overrides, None)
    out = Path(args.out)
    inputs = [args.text] + ([args.dev_text] if args.dev_text else [])
    config = {**asdict(cfg), "dev_text": bool(args.dev_text)}
    fp = check_done(out, inputs, config, args.overwrite)
    if fp is None:
        return 0
    reopen(out)
    if args.overwrite or not args.resume:
        fresh_start(out)
    result = train_lstm_lm(cfg, args.text, out, dev_text=args.dev_text, resume=args.resume, fingerprint=fp)
    if not result.finished:
        return 1
    write_run_info(out, argv, MODULE, {**asdict(cfg), "text": args.text, "dev_text": args.dev_text,
                                       "final_step": result.step, "final_dev": result.dev})
    mark_done(out, fp)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(lambda args: body(args, argv), get_parser(), argv, config_of=resolved_config)


if __name__ == "__main__":
    raise SystemExit(main())
