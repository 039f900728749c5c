"""Teacher domain adaptation: continue masked-LM pre-training of a teacher on in-domain text.

    python -m rescore.bin.train_mlm --init NAME_OR_DIR --text CORPUS.txt --out DIR [--config conf/train_mlm.yaml]
        [--dev_text HELDOUT.txt] [--resume true|false] [--overwrite true|false] [key=value ...]

CORPUS.txt has one sentence per line (blank lines are skipped and counted). NAME_OR_DIR is any
Hugging Face masked LM, or an encoder without MLM head (a head tied to the input embeddings is
added and trained). Writes DIR/model (load it with ``score_pll --model DIR/model``), DIR/config.yaml,
DIR/run.yaml, DIR/train_log.jsonl, DIR/summary.json (per-epoch held-out pseudo-perplexity, best
epoch), DIR/checkpoints/step<N> and DIR/.done. Config: defaults < --config YAML < key=value; the
keys are documented in conf/train_mlm.yaml. See rescore/train/mlm.py for the details.
"""

from __future__ import annotations

from rescore.bin.common import add_overwrite, add_print_config, parser, run, str2bool
from rescore.config import load_config


def get_parser():
    p = parser(__doc__)
    p.add_argument("--init", required=True, help="hub id or directory of the masked LM (or encoder) to start from")
    p.add_argument("--text", required=True, help="in-domain training text, one sentence per line")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", default=None, help="YAML config (e.g. conf/train_mlm.yaml); default: built-in defaults")
    p.add_argument("--dev_text", default=None,
                   help="held-out text for the pseudo-perplexity (default: dev_fraction of --text is held out)")
    p.add_argument("--resume", type=str2bool, default=False,
                   help="true: continue from the latest checkpoint in --out, also with --overwrite true "
                   "(default false: start afresh, removing earlier checkpoints and logs in --out)")
    add_overwrite(p)
    add_print_config(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=1e-4 max_steps=1000")
    return p


def resolved_config(config: str | None, overrides: list[str], init: str | None):
    """The config a run would use: defaults < --config < key=value; validated."""
    from rescore.train.mlm import MlmTrainConfig, validate

    cfg = load_config(MlmTrainConfig, config, overrides)
    validate(cfg)
    return cfg


def body(args, argv: list[str] | None) -> int:
    from rescore.train.mlm import train_mlm  # torch: after parsing (fast --help)

    cfg = resolved_config(args.config, args.overrides, args.init)
    train_mlm(args.init, args.text, args.out, cfg, dev_text=args.dev_text, resume=args.resume,
              overwrite=args.overwrite, argv=argv)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(lambda args: body(args, argv), get_parser(), argv, config_of=resolved_config)


if __name__ == "__main__":
    raise SystemExit(main())
