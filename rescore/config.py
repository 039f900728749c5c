"""Configs: dataclass defaults < YAML file < ``key=value`` command-line overrides.

An unknown key or a value of the wrong type is an error naming the key. The resolved config
is written to every experiment directory (``config.yaml``), so a run can be replayed.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rescore.defaults import DEVICE_PATTERN
from rescore.stage import atomic_open

C = TypeVar("C")


class ConfigError(ValueError):
    pass


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Check/convert ``value`` to the field type (str from the command line is parsed as YAML)."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{name}: bad value {value!r}")
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {name!r}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {name!r}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {name!r}: expected a number, got {value!r}")
    if typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {name!r}: expected a string, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"config key {name!r}: expected one of {list(args)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {name!r}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [v if inner is Any else _coerce(name, v, inner) for v in value]
    if origin is dict or typ is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {name!r}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def _apply(cfg: Any, values: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r} in {where}; known keys: {', '.join(sorted(fields))}")
        changes[key] = _coerce(key, value, hints[key])
    return dataclasses.replace(cfg, **changes)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``['lr=1e-4', 'objective=mwer']`` -> ``{'lr': 0.0001, 'objective': 'mwer'}`` (values as YAML)."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        parsed = yaml.safe_load(value) if value != "" else ""
        out[key.strip()] = parsed
    return out


def read_yaml(path: str | Path, what: str = "YAML file"):
    """The YAML document in ``path`` (``safe_load``: plain data only); a missing or unreadable file,
    invalid UTF-8 or invalid YAML is an :class:`~rescore.exceptions.InputError` naming the file and,
    for YAML syntax, the line."""
    from rescore.exceptions import InputError, require_file

    path = require_file(path, what)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise InputError(path, None, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InputError(path, None, f"invalid UTF-8 at byte {e.start}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(path, None if mark is None else mark.line + 1, f"invalid YAML: {problem}") from None
    except (ValueError, RecursionError) as e:  # yaml's constructors (a date 2001-13-01, a 5000-digit int); deep nesting
        raise InputError(path, None, f"unreadable YAML: {type(e).__name__}: {e}") from None


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | dict | None = None) -> C:
    """Defaults of ``cls`` < the YAML file ``path`` < ``overrides`` (``key=value`` strings or a dict)."""
    cfg = cls()
    if path is not None:
        data = read_yaml(path, "config file")
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys")
        cfg = _apply(cfg, data, str(path))
    if overrides:
        values = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        cfg = _apply(cfg, values, "the command line")
    device = getattr(cfg, "device", None)
    if device is not None and not re.fullmatch(DEVICE_PATTERN, str(device)):
        raise ConfigError(f"config key 'device': expected auto, cpu, cuda, cuda:N, mps or xpu, got {device!r}")
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    with atomic_open(path) as f:
        yaml.safe_dump(dataclasses.asdict(cfg), f, sort_keys=False, allow_unicode=True)
