"""Train the RescoreBERT student: MLM distillation (md), then MWER or MWED discriminative training.

    python -m rescore.bin.train_student --config conf/<md|mwer|mwed>.yaml --train_set SET --train_scores DIR
        --dev_set SET --dev_scores DIR --out EXPDIR [--init NAME_OR_DIR] [--resume true|false]
        [--overwrite true|false] [key=value ...]

SETs are dataset directories (first-pass scores in nbest/score, references in <set>/text); the
score DIRs hold the teacher's ``pll`` archive (``score_pll`` output) for the same hypotheses.
--init is a Hugging Face encoder (hub id or directory) or a trained student (e.g. EXPDIR_md/model
to start MWER from the distilled student); it overrides the config key ``init``. Writes
EXPDIR/model (the best student by dev WER after rescoring; ``score_student --model EXPDIR/model``),
EXPDIR/config.yaml, run.yaml, train_log.jsonl, summary.json (per-epoch dev WER and tuned weight),
checkpoints/step<N> and .done. Config: defaults < --config YAML < key=value; the keys are
documented in conf/md.yaml. Multi-GPU: ``torchrun --nproc_per_node N -m rescore.bin.train_student ...``.
See rescore/train/student.py for the details.
"""

from __future__ import annotations

import dataclasses

from rescore.bin.common import add_overwrite, add_print_config, parser, run, str2bool
from rescore.config import load_config


def get_parser():
    p = parser(__doc__)
    p.add_argument("--config", default=None, help="YAML config (conf/md.yaml, conf/mwer.yaml, conf/mwed.yaml)")
    p.add_argument("--train_set", required=True, help="training dataset directory (n-best lists)")
    p.add_argument("--train_scores", required=True, help="directory holding the teacher's pll of --train_set")
    p.add_argument("--dev_set", required=True, help="dev dataset directory (with references)")
    p.add_argument("--dev_scores", required=True, help="directory holding the teacher's pll of --dev_set")
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--init", default=None,
                   help="encoder (hub id or directory) or trained student to start from (overrides config 'init')")
    p.add_argument("--resume", type=str2bool, default=False,
                   help="true: continue from the latest checkpoint in --out, also with --overwrite true "
                   "(default false: start afresh, removing earlier checkpoints and logs in --out)")
    add_overwrite(p)
    add_print_config(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=1e-5 beta=0.3")
    return p


def resolved_config(config: str | None, overrides: list[str], init: str | None):
    """The config a run would use: defaults < --config < key=value < --init; validated."""
    from rescore.train.student import StudentTrainConfig, validate

    cfg = load_config(StudentTrainConfig, config, overrides)
    if init is not None:
        cfg = dataclasses.replace(cfg, init=init)
    validate(cfg)
    return cfg


def body(args, argv: list[str] | None) -> int:
    from rescore.train.student import train_student  # torch: after parsing (fast --help)

    cfg = resolved_config(args.config, args.overrides, args.init)
    train_student(args.train_set, args.train_scores, args.dev_set, args.dev_scores, args.out, cfg,
                  resume=args.resume, overwrite=args.overwrite, argv=argv)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(lambda args: body(args, argv), get_parser(), argv, config_of=resolved_config)


if __name__ == "__main__":
    raise SystemExit(main())
