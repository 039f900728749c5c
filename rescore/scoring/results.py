"""A recipe's results table: one row per eval set and system, gathered from rescoring summaries.

Each system is a rescoring experiment directory ``EXPDIR`` (``python -m rescore.bin.rescore
--out EXPDIR``) holding ``EXPDIR/<set>/scoring/summary.json``. For every eval set the table has
the first pass and the oracle (the same for every system of a set: taken from the first system
that has the set, and checked against the others), then one row per system: its rescored error
rate, the relative change against the first pass, the bootstrap 95% CI of the absolute change,
and the weights tuned on dev. A system without a summary for a set gets a row marked
``not run``, so a missing experiment is visible rather than silently left out.

The table is written into the recipe's ``RESULTS.md`` between two marker lines, so the prose
around it (the setup, what the numbers mean, why a system does not help) is kept across runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from rescore.exceptions import InputError
from rescore.log import get_logger
from rescore.stage import atomic_open

log = get_logger(__name__)

#: Display names of the systems a recipe trains (rescore stream labels); others are shown as is.
SYSTEM_NAMES = {"clm": "baseline LM", "pll": "teacher PLL", "md": "MD student", "mwer": "MWER student",
                "mwed": "MWED student"}
BEGIN = "<!-- BEGIN results: written by python -m rescore.bin.gather_results; edit outside these markers -->"
END = "<!-- END results -->"
HEADER = ["| set | system | metric | error rate | rel. change | 95% CI of change | weights | source |",
          "|---|---|---|---|---|---|---|---|"]


@dataclass
class Row:
    """One line of the table (``rate`` None: not run or not scored)."""

    set: str
    system: str
    label: str
    metric: str
    rate: float | None
    relative_change: float | None = None
    ci95: tuple[float, float] | None = None
    weights: str = ""
    source: str = ""
    note: str = ""


def summary_path(expdir: str | Path, set_name: str) -> Path:
    return Path(expdir) / set_name / "scoring" / "summary.json"


def read_summary(path: Path) -> dict:
    """A rescoring summary; an unreadable or incomplete one is an InputError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, None, f"not a readable summary.json: {e}") from e
    if not isinstance(data, dict):
        raise InputError(path, None, "not a JSON object")
    missing = [k for k in ("set", "metric") if k not in data]
    m = data.get("metric")
    missing += [k for k in (f"first_pass_{m}", f"rescored_{m}", f"oracle_{m}") if m and k not in data]
    if missing:
        raise InputError(path, None, f"missing key(s): {', '.join(missing)}")
    return data


def eval_sets(systems: dict[str, Path]) -> list[str]:
    """Every set that some system's summary marks as an eval set, sorted."""
    found = set()
    for expdir in systems.values():
        for p in sorted(Path(expdir).glob("*/scoring/summary.json")):
            if read_summary(p).get("role") == "eval":
                found.add(p.parent.parent.name)
    return sorted(found)


def _num(x) -> float | None:
    return None if x is None else float(x)


def describe_weights(w: dict | None) -> str:
    """``clm=0.31, wip=0.5`` from a summary's ``weights`` (``acwt`` only when set)."""
    if not w:
        return ""
    parts = [f"{k}={v:.4g}" for k, v in (w.get("streams") or {}).items()]
    if w.get("wip") is not None:
        parts.append(f"wip={w['wip']:.4g}")
    if w.get("acwt") is not None:
        parts.append(f"acwt={w['acwt']:.4g}")
    return ", ".join(parts)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-6


def set_rows(set_name: str, systems: dict[str, Path]) -> list[Row]:
    """First pass, oracle and one row per system for one eval set."""
    found = {label: read_summary(summary_path(d, set_name)) for label, d in systems.items()
             if summary_path(d, set_name).is_file()}
    if not found:
        raise InputError(set_name, None, "no system has a summary for this set: "
                         + ", ".join(str(summary_path(d, set_name)) for d in systems.values()))
    ref_label, ref = next(iter(found.items()))
    m = ref["metric"]
    for label, s in found.items():
        if s["metric"] != m:
            raise InputError(summary_path(systems[label], set_name), None,
                             f"metric {s['metric']} differs from {m} of system {ref_label}")
        for key in (f"first_pass_{m}", f"oracle_{m}"):
            if not _same(_num(s[key]), _num(ref[key])):
                log.warning(f"{set_name}: {key} of {label} ({s[key]}) differs from {ref_label} ({ref[key]})")
    src = str(summary_path(systems[ref_label], set_name))
    rows = [Row(set_name, "first pass", "first_pass", m, _num(ref[f"first_pass_{m}"]), source=src),
            Row(set_name, "oracle", "oracle", m, _num(ref[f"oracle_{m}"]), source=src)]
    for label, d in systems.items():
        name = SYSTEM_NAMES.get(label, label)
        s = found.get(label)
        if s is None:
            rows.append(Row(set_name, name, label, m, None, source=str(d), note="not run"))
            continue
        ci = s.get("ci95")
        ci = (float(ci[0]), float(ci[1])) if ci and None not in ci else None
        rows.append(Row(set_name, name, label, m, _num(s[f"rescored_{m}"]), _num(s.get("relative_change")), ci,
                        describe_weights(s.get("weights")), str(summary_path(d, set_name)),
                        "" if s[f"rescored_{m}"] is not None else s.get("note", "not scored")))
    return rows


def gather(systems: dict[str, Path], sets: list[str] | None = None) -> list[Row]:
    """Rows for ``sets`` (default: every eval set found), in set order then system order."""
    if not systems:
        raise InputError(None, None, "no systems given")
    sets = sets or eval_sets(systems)
    if not sets:
        raise InputError(None, None, "no eval set summaries found under " + ", ".join(map(str, systems.values())))
    rows: list[Row] = []
    for s in sets:
        rows += set_rows(s, systems)
    return rows


def _fmt(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None or not math.isfinite(x) else fmt.format(x)


def table_lines(rows: list[Row]) -> list[str]:
    """The Markdown table (error rates in %, relative change in %, CI in absolute points)."""
    out = list(HEADER)
    for r in rows:
        rate = _fmt(r.rate) if r.rate is not None else (r.note or "-")
        ci = f"[{_fmt(r.ci95[0], '{:+.2f}')}, {_fmt(r.ci95[1], '{:+.2f}')}]" if r.ci95 else ""
        rel = _fmt(r.relative_change, "{:+.1f}%") if r.relative_change is not None else ""
        out.append(f"| {r.set} | {r.system} | {r.metric.upper()} | {rate} | {rel} | {ci} | {r.weights} | "
                   f"{r.source if r.label not in ('first_pass', 'oracle') else ''} |")
    return out


def merge_into(text: str, table: list[str]) -> str:
    """``text`` with the block between the markers replaced by ``table`` (appended when absent)."""
    block = "\n".join([BEGIN, *table, END])
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) > 1 or len(ends) > 1 or len(starts) != len(ends) or (starts and ends[0] < starts[0]):
        raise ValueError("RESULTS.md: the results markers are unbalanced; fix them by hand")
    if starts:
        new = lines[:starts[0]] + block.splitlines() + lines[ends[0] + 1:]
    else:
        new = lines + ([""] if lines and lines[-1].strip() else []) + block.splitlines()
    return "\n".join(new) + "\n"


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless ``path`` already holds it (a rerun leaves files untouched)."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    with atomic_open(path) as f:
        f.write(text)
    return True


def write_results(path: str | Path, rows: list[Row], title: str = "# Results") -> bool:
    """Write (or update in place) the table in the Markdown file ``path``, atomically.

    Returns False when the file already held this table (it is then not rewritten).
    """
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.is_file() else title + "\n"
    try:
        new = merge_into(old, table_lines(rows))
    except ValueError as e:
        raise InputError(path, None, str(e)) from e
    return _write_if_changed(path, new)


def write_json(path: str | Path, rows: list[Row]) -> bool:
    """The rows as a JSON list (non-finite rates written as null), for CI checks; False if unchanged."""
    def clean(r: Row) -> dict:
        d = asdict(r)
        for k in ("rate", "relative_change"):
            if d[k] is not None and not math.isfinite(d[k]):
                d[k] = None
        return d

    return _write_if_changed(Path(path), json.dumps([clean(r) for r in rows], indent=2, ensure_ascii=False) + "\n")
