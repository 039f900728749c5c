"""What every CLI step shares: Kaldi-style booleans, logging flags, error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rescore.exceptions import InputError, InvalidSetError
from rescore.log import get_logger, setup_logging

log = get_logger("rescore.bin")


def str2bool(value: str) -> bool:
    """Kaldi/ESPnet booleans: exactly ``true`` or ``false``."""
    if value in ("true", "false"):
        return value == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--verbose", type=int, default=1, help="0: warnings, 1: info, 2: debug")
    return p


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", type=str2bool, default=False,
                   help="recompute even when the output is complete and up to date")


def run(body: Callable[[argparse.Namespace], int | None], p: argparse.ArgumentParser,
        argv: list[str] | None) -> int:
    """Parse ``argv``, set up logging, run ``body``; bad input -> message and exit code 1."""
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(body(args) or 0)
    except (InputError, InvalidSetError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
