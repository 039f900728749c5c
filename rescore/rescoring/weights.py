"""What a rescoring run is told: streams, what to tune, and the weights.

A stream is ``LABEL=PATH`` (:class:`StreamSpec`, ``{set}`` in PATH for each set's name); what is
tuned is ``all``, ``none`` or ``+``-joined components (:func:`parse_tune`); :class:`Weights` are
the beta per stream, the unit bonus ``wip`` and the acoustic scale ``acwt``, read from and written
to ``weights.yaml`` (:func:`load_weights`, :func:`save_weights`: the schema). The formula and notes
that every output repeats are here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from rescore.exceptions import InputError
from rescore.stage import atomic_open

COMPONENTS = ("streams", "wip", "acwt")
COST_STREAMS = ("ac_cost", "graph_cost", "lm_cost")  # carried into the output set when present
RESERVED_LABELS = frozenset({"score", "rank", "first_pass", "errors", "text", "meta.yaml", "wip", "acwt",
                             "lmwt", *COST_STREAMS})
WEIGHT_KEYS = ("streams", "wip", "acwt")
INFO_KEYS = ("system", "tuned", "dev", "metric", "normalization", "dev_errors", "dev_rate", "first_pass",
             "kaldi_wip", "lmwt", "formula", "note")
FORMULA = "total = first_pass + sum_k streams[k] * stream_k + wip * num_units (higher is better)"
WIP_NOTE = ("num_units = the scoring units of the set's metric after its normalisation (words for WER, characters "
            "for CER); wip > 0 is a bonus per unit, wip < 0 a penalty: the opposite sign of Kaldi's "
            "word-insertion penalty (Kaldi WIP = -wip)")
ACWT_NOTE = "first_pass = score, or -(graph_cost + acwt * ac_cost) when acwt is set (Kaldi LMWT = 1/acwt)"


@dataclass(frozen=True)
class StreamSpec:
    """``LABEL=PATH``: a per-hypothesis archive; ``{set}`` in PATH stands for each set's name."""

    label: str
    template: str

    def path(self, set_name: str) -> Path:
        return Path(self.template.replace("{set}", set_name))


def parse_stream_spec(spec: str) -> StreamSpec:
    """``'pll=exp/teacher/{set}/pll'`` -> StreamSpec; the label must be a usable stream name."""
    label, eq, template = spec.partition("=")
    if not eq or not label or not template:
        raise InputError(None, None, f"--stream {spec!r}: expected LABEL=PATH")
    if label in RESERVED_LABELS or label.startswith(".") or any(c in label for c in "/\\ \t+=,"):
        raise InputError(None, None, f"--stream {spec!r}: invalid label {label!r} (reserved names: "
                                     f"{', '.join(sorted(RESERVED_LABELS))}; no '/', '+', ',', '=', spaces)")
    return StreamSpec(label, template)


def parse_tune(spec: str, *, kaldi: bool) -> tuple[str, ...]:
    """The components to tune: ``all``, ``none`` or e.g. ``streams+wip`` (``acwt`` needs Kaldi costs)."""
    if spec == "all":
        return COMPONENTS if kaldi else ("streams", "wip")
    if spec == "none":
        return ()
    parts = spec.split("+")
    bad = [p for p in parts if p not in COMPONENTS]
    if bad or len(set(parts)) != len(parts):
        raise InputError(None, None, f"--tune {spec!r}: expected all, none or a '+'-joined subset of "
                                     f"{', '.join(COMPONENTS)}")
    if "acwt" in parts and not kaldi:
        raise InputError(None, None, "--tune acwt: every set needs ac_cost and graph_cost streams (Kaldi)")
    return tuple(c for c in COMPONENTS if c in parts)


@dataclass
class Weights:
    """beta per stream label, the unit bonus, and the acoustic scale (None: the set's ``score``)."""

    streams: dict[str, float]
    wip: float = 0.0
    acwt: float | None = None

    def as_dict(self) -> dict:
        return {"streams": {k: float(v) for k, v in self.streams.items()}, "wip": float(self.wip),
                "acwt": None if self.acwt is None else float(self.acwt)}

    def describe(self) -> str:
        parts = [f"{k}={_g(v)}" for k, v in self.streams.items()] + [f"wip={_g(self.wip)}"]
        if self.acwt is not None:
            parts.append(f"acwt={_g(self.acwt)}")
        return ", ".join(parts)


def _g(x: float) -> str:
    return f"{x:.4g}"


def _number(path: Path, key: str, value, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, None, f"{key}: expected a finite number, got {value!r}")
    return float(value)


def load_weights(path: str | Path, labels: list[str]) -> Weights:
    """Read a weights YAML (the schema :func:`save_weights` writes); it must match ``labels`` exactly."""
    from rescore.config import read_yaml

    path = Path(path)
    data = read_yaml(path, "weights file")
    if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
        raise InputError(path, None, "expected a mapping with 'streams: {LABEL: beta, ...}'")
    unknown = [k for k in data if k not in WEIGHT_KEYS + INFO_KEYS]
    if unknown:
        raise InputError(path, None, f"unknown key(s) {', '.join(map(str, unknown))}; weights are "
                                     f"{', '.join(WEIGHT_KEYS)}")
    given = [str(k) for k in data["streams"]]
    missing = [k for k in labels if k not in given]
    extra = [k for k in given if k not in labels]
    if missing or extra:
        raise InputError(path, None, "weights do not match the streams: "
                         + "; ".join(filter(None, [missing and f"no weight for {', '.join(missing)}",
                                                   extra and f"no --stream for {', '.join(extra)}"])))
    streams = {k: _number(path, f"streams.{k}", data["streams"][k]) for k in labels}
    wip = _number(path, "wip", data.get("wip", 0.0))
    acwt = _number(path, "acwt", data.get("acwt"), allow_none=True)
    if acwt is not None and acwt <= 0:
        raise InputError(path, None, f"acwt must be positive (or null), got {acwt}")
    return Weights(streams, wip, acwt)


def save_weights(path: str | Path, weights: Weights, info: dict) -> None:
    """Write ``weights.yaml``: ``streams``, ``wip``, ``acwt`` (read back), then informational keys."""
    data = weights.as_dict()
    data["kaldi_wip"] = 0.0 - float(weights.wip)
    if weights.acwt is not None:
        data["lmwt"] = 1.0 / weights.acwt
    data.update({k: v for k, v in info.items() if k in INFO_KEYS})
    data["formula"] = FORMULA
    data["note"] = f"{WIP_NOTE}; {ACWT_NOTE}"
    header = (f"# Rescoring weights (python -m rescore.bin.rescore).\n# {FORMULA}\n# {ACWT_NOTE}\n"
              f"# {WIP_NOTE}\n# Read back by --weights: streams, wip, acwt; the other keys are informational.\n")
    with atomic_open(path) as f:
        f.write(header)
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)

