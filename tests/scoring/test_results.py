"""rescore.scoring.results: the RESULTS.md table gathered from hand-made rescoring summaries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rescore.exceptions import InputError
from rescore.scoring.results import BEGIN, END, gather, merge_into, table_lines, write_json, write_results


def summary(expdir: Path, set_name: str, label: str, rescored: float | None, role: str = "eval",
            first: float = 20.0, oracle: float = 5.0, metric: str = "wer", ci=(-3.0, -1.0)) -> Path:
    """A summary.json as rescore writes it (the keys gather reads, plus a few it ignores)."""
    path = expdir / set_name / "scoring" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rel = None if rescored is None else 100.0 * (rescored - first) / first
    data = {"set": set_name, "role": role, "system": label, "metric": metric, "utts": 10, "hyps": 40,
            f"first_pass_{metric}": first, f"rescored_{metric}": rescored, f"oracle_{metric}": oracle,
            "relative_change": rel, "ci95": list(ci) if rescored is not None else None,
            "weights": {"streams": {label: 0.25}, "wip": 0.5, "acwt": None}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def systems(tmp_path: Path) -> dict[str, Path]:
    out = {k: tmp_path / "exp" / "rescore" / k for k in ("clm", "pll", "md", "mwer", "mwed")}
    for label, rate in zip(out, (18.0, 15.0, 16.0, 14.0, 14.5), strict=True):
        summary(out[label], "test", label, rate)
        summary(out[label], "dev", label, rate - 1, role="dev")
    return out


def test_table_for_hand_made_summaries(systems, tmp_path: Path):
    rows = gather(systems)
    assert [r.set for r in rows] == ["test"] * 7  # the dev set is not an eval set
    src = {k: f"{v}/test/scoring/summary.json" for k, v in systems.items()}
    assert table_lines(rows) == [
        "| set | system | metric | error rate | rel. change | 95% CI of change | weights | source |",
        "|---|---|---|---|---|---|---|---|",
        "| test | first pass | WER | 20.00 |  |  |  |  |",
        "| test | oracle | WER | 5.00 |  |  |  |  |",
        f"| test | baseline LM | WER | 18.00 | -10.0% | [-3.00, -1.00] | clm=0.25, wip=0.5 | {src['clm']} |",
        f"| test | teacher PLL | WER | 15.00 | -25.0% | [-3.00, -1.00] | pll=0.25, wip=0.5 | {src['pll']} |",
        f"| test | MD student | WER | 16.00 | -20.0% | [-3.00, -1.00] | md=0.25, wip=0.5 | {src['md']} |",
        f"| test | MWER student | WER | 14.00 | -30.0% | [-3.00, -1.00] | mwer=0.25, wip=0.5 | {src['mwer']} |",
        f"| test | MWED student | WER | 14.50 | -27.5% | [-3.00, -1.00] | mwed=0.25, wip=0.5 | {src['mwed']} |",
    ]


def test_sets_in_order_and_missing_system_marked(systems, tmp_path: Path):
    summary(systems["pll"], "other", "pll", 30.0, first=40.0, oracle=9.0, metric="cer")
    rows = gather(systems, ["other", "test"])
    other = [r for r in rows if r.set == "other"]
    assert [(r.label, r.rate) for r in other] == [("first_pass", 40.0), ("oracle", 9.0), ("clm", None), ("pll", 30.0),
                                                  ("md", None), ("mwer", None), ("mwed", None)]
    assert all(r.metric == "cer" for r in other)
    lines = table_lines(rows)
    assert "| other | baseline LM | CER | not run |  |  |  | " + str(systems["clm"]) + " |" in lines
    assert lines[2].startswith("| other | first pass | CER | 40.00 |")


def test_unscored_and_non_finite(tmp_path: Path):
    d = tmp_path / "pll"
    summary(d, "test", "pll", None)  # a set without references: rescore writes nulls
    rows = gather({"pll": d}, ["test"])
    assert rows[2].rate is None and "not scored" in table_lines(rows)[-1]
    summary(d, "test", "pll", math.nan)
    rows = gather({"pll": d}, ["test"])
    assert table_lines(rows)[-1].split(" | ")[3] == "-"
    write_json(tmp_path / "r.json", rows)
    assert json.loads((tmp_path / "r.json").read_text())[2]["rate"] is None


def test_errors_name_the_file(tmp_path: Path, systems):
    with pytest.raises(InputError, match="no system has a summary"):
        gather(systems, ["nope"])
    bad = summary(systems["md"], "test", "md", 1.0)
    bad.write_text('{"set": "test", "metric": "wer"}')
    with pytest.raises(InputError, match="missing key") as e:
        gather(systems)
    assert str(bad) in str(e.value)
    bad.write_text("{oops")
    with pytest.raises(InputError, match="summary.json"):
        gather(systems)
    summary(systems["md"], "test", "md", 1.0, metric="cer")
    with pytest.raises(InputError, match="metric cer differs"):
        gather(systems)


def test_first_pass_disagreement_warns(systems, caplog):
    summary(systems["md"], "test", "md", 16.0, first=21.0)
    with caplog.at_level("WARNING", logger="rescore"):
        rows = gather(systems)
    assert rows[0].rate == 20.0  # from the first system
    assert "first_pass_wer of md" in caplog.text


def test_merge_keeps_text_around_markers():
    text = f"# mini\n\nintro\n\n{BEGIN}\nold table\n{END}\n\nwhy MWER does not help\n"
    new = merge_into(text, ["| a |", "| b |"])
    assert new == f"# mini\n\nintro\n\n{BEGIN}\n| a |\n| b |\n{END}\n\nwhy MWER does not help\n"
    assert merge_into(new, ["| a |", "| b |"]) == new  # idempotent
    assert merge_into("# x\n", ["| t |"]) == f"# x\n\n{BEGIN}\n| t |\n{END}\n"
    with pytest.raises(ValueError, match="unbalanced"):
        merge_into(f"{BEGIN}\n{BEGIN}\n{END}\n", [])
    with pytest.raises(ValueError, match="unbalanced"):
        merge_into(f"{END}\n{BEGIN}\n", [])


def test_write_results_creates_and_updates(systems, tmp_path: Path):
    md = tmp_path / "RESULTS.md"
    write_results(md, gather(systems))
    first = md.read_text()
    assert first.startswith("# Results\n\n" + BEGIN) and first.rstrip().endswith(END)
    md.write_text("# mine\n" + first.split("\n", 1)[1] + "notes\n")
    write_results(md, gather(systems))
    assert md.read_text().startswith("# mine\n") and md.read_text().endswith(END + "\nnotes\n")
