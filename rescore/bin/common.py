"""What every CLI step shares: Kaldi-style booleans, logging flags, error reporting."""

from __future__ import annotations

import argparse
import math
import re
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


def _number(kind, value: str, what: str, ok) -> int | float:
    try:
        v = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
    return v


def positive_int(value: str) -> int:
    """An option value that must be an integer >= 1 (``--batch_tokens``, ``--nbest``, ``--nj`` ...)."""
    return _number(int, value, "an integer >= 1", lambda v: v >= 1)


def nonneg_int(value: str) -> int:
    """An integer >= 0 (``--num_threads``: 0 means all available; ``--seed``; ``--port``: 0 means any)."""
    return _number(int, value, "an integer >= 0", lambda v: v >= 0)


def nonneg_float(value: str) -> float:
    """A finite number >= 0 (``--acwt``, ``--max_wait_ms``)."""
    return _number(float, value, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def finite_float(value: str) -> float:
    """Any finite number (a word penalty may be negative)."""
    return _number(float, value, "a finite number", math.isfinite)


def open_unit(value: str) -> float:
    """A number strictly between 0 and 1 (a confidence level)."""
    return _number(float, value, "a number between 0 and 1 (exclusive)", lambda v: 0 < v < 1)


def port_number(value: str) -> int:
    """A TCP port: 0 (any free port) to 65535."""
    return _number(int, value, "a port number 0-65535", lambda v: 0 <= v <= 65535)


def device_arg(value: str) -> str:
    """A ``--device`` value: auto, cpu, cuda, cuda:N, mps or xpu (checked without importing torch)."""
    from rescore.defaults import DEVICE_PATTERN

    if not re.fullmatch(DEVICE_PATTERN, value):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N, mps or xpu, got {value!r}")
    return value


def norm_arg(value: str) -> str:
    """A ``--norm`` value: validated normalisation flags, returned in canonical form."""
    from rescore.data.textnorm import Normalizer

    try:
        return str(Normalizer.parse(value))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser(doc: str) -> argparse.ArgumentParser:
    """A step's parser; ``--help`` shows its whole module docstring ``doc`` as written (the usage text)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--verbose", type=int, default=1, help="0: warnings, 1: info (default), 2: debug")
    return p


def add_flag(p: argparse.ArgumentParser, name: str, help: str) -> None:
    """A boolean option in the project's one style, ``--name true|false`` (default false); the bare
    ``--name`` of earlier releases still means ``--name true`` (see :func:`bare_flags_as_true`)."""
    p.add_argument(f"--{name}", type=str2bool, default=False, metavar="true|false", help=f"{help} (default false)")
    p.bare_flags = (*getattr(p, "bare_flags", ()), f"--{name}")


def bare_flags_as_true(argv: list[str], flags) -> list[str]:
    """``argv`` with each bare flag of ``flags`` (one not followed by ``true`` or ``false``) given
    the value ``true``, so that ``--cer REF HYP`` and ``--cer true REF HYP`` read alike."""
    out = []
    for i, a in enumerate(argv):
        out.append(a)
        if a in flags and (i + 1 == len(argv) or argv[i + 1] not in ("true", "false")):
            out.append("true")
    return out


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", type=str2bool, default=False,
                   help="true: recompute even when the output is complete and up to date (default false)")


def add_format_options(p: argparse.ArgumentParser, table: dict[str, tuple[set[str], dict]]) -> None:
    """Declare format-specific options: ``{name: ({formats}, argparse kwargs)}``; default None."""
    for name, (fmts, kwargs) in table.items():
        label = "/".join(sorted(fmts))
        p.add_argument(f"--{name}", default=None, **{**kwargs, "help": f"{label}: {kwargs.get('help', '')}"})


def format_options(args: argparse.Namespace, table: dict[str, tuple[set[str], dict]], prog: str) -> dict:
    """The keyword options given for ``args.format``; an option of another format is an error."""
    opts = {}
    for name, (fmts, kwargs) in table.items():
        key = kwargs.get("dest", name)  # the reader's or writer's keyword
        value = getattr(args, key)
        if value is None:
            continue
        if args.format not in fmts:
            raise InputError(None, None, f"--{name} does not apply to --format {args.format}")
        opts[key] = value
    return opts


def begin_set_step(setdir, outdir, model: str, config: dict, overwrite: bool) -> str | None:
    """Start a step that scores every hypothesis of SETDIR with MODEL into OUTDIR.

    Checks the set exists, fingerprints ``nbest/text``, the model (directory contents when local)
    and ``config``; returns None when OUTDIR is complete and up to date (logged ``skip``), else
    clears the old ``.done`` and returns the fingerprint to mark when the step has finished.
    """
    import os
    from pathlib import Path

    from rescore.stage import check_done, reopen

    text_path = Path(setdir) / "nbest" / "text"
    if not text_path.is_file():
        raise InputError(text_path, None, "missing (not a dataset directory?)")
    fp = check_done(outdir, [text_path] + ([model] if os.path.isdir(model) else []), config, overwrite)
    if fp is not None:
        reopen(outdir)
    return fp


def add_print_config(p: argparse.ArgumentParser) -> None:
    """``--print_config true`` of a step that takes ``--config`` (see :func:`run`)."""
    p.add_argument("--print_config", type=str2bool, default=False,
                   help="true: print the resolved config (defaults < --config < key=value) as YAML and exit; "
                   "the other options may be left out")


def _print_config(p: argparse.ArgumentParser, argv: list[str], config_of: Callable) -> int | None:
    """With ``--print_config true`` in ``argv``: print ``config_of(config, overrides, init)`` as YAML
    and return 0 (1 for a bad config); else None. Only ``--config``, ``--init`` and the
    ``key=value`` overrides are read, so a user can look at a config before choosing the data."""
    import dataclasses

    import yaml

    from rescore.config import ConfigError

    pre = argparse.ArgumentParser(prog=p.prog, add_help=False)
    pre.add_argument("--print_config", type=str2bool, default=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("--init", default=None)
    known, rest = pre.parse_known_args(argv)
    if not known.print_config:
        return None
    overrides = [a for a in rest if "=" in a and not a.startswith("-")]
    try:
        cfg = config_of(known.config, overrides, known.init)
    except (ConfigError, InputError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    yaml.safe_dump(dataclasses.asdict(cfg), sys.stdout, sort_keys=False, allow_unicode=True)
    return 0


def run(body: Callable[[argparse.Namespace], int | None], p: argparse.ArgumentParser,
        argv: list[str] | None, config_of: Callable | None = None) -> int:
    """Parse ``argv``, set up logging, run ``body``; bad input -> message and exit code 1.

    ``config_of(config_path, overrides, init)``, for steps with ``--config``: the resolved and
    validated config, printed instead of running with ``--print_config true`` (add_print_config).
    """
    given = sys.argv[1:] if argv is None else list(argv)
    module = getattr(body, "__module__", "") or ""
    spec = getattr(sys.modules.get(module), "__spec__", None)  # under `python -m`, __module__ is __main__
    module = getattr(spec, "name", None) or module
    if module.startswith("rescore.bin."):  # argparse would call `python -m rescore.bin.X` "X.py"
        p.prog = module.rsplit(".", 1)[1]
    if config_of is not None:
        code = _print_config(p, given, config_of)
        if code is not None:
            return code
    args = p.parse_args(bare_flags_as_true(given, getattr(p, "bare_flags", ())))
    args.argv = argv  # the command line as given, for the run record (run.yaml)
    setup_logging(args.verbose)
    from rescore.config import ConfigError
    from rescore.stage import release_locks

    try:
        return int(body(args) or 0)
    except (InputError, InvalidSetError, ConfigError) as e:  # expected: bad input, named; anything else is a bug
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    finally:
        release_locks()
