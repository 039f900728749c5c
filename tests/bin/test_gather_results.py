"""gather_results: the CLI over rescore.scoring.results."""

from __future__ import annotations

import json
from pathlib import Path

from rescore.bin import gather_results
from rescore.scoring.results import BEGIN
from tests.scoring.test_results import summary


def test_main_writes_table_and_json(tmp_path: Path, capsys):
    for label, rate in (("pll", 15.0), ("md", 16.0)):
        summary(tmp_path / label, "test", label, rate)
    md, js = tmp_path / "RESULTS.md", tmp_path / "results.json"
    assert gather_results.main(["--system", f"pll={tmp_path / 'pll'}", "--system", f"md={tmp_path / 'md'}",
                                "--set", "test", "--json", str(js), str(md)]) == 0
    text = md.read_text()
    assert BEGIN in text and "| test | teacher PLL | WER | 15.00 | -25.0% |" in text
    assert "| test | teacher PLL | WER | 15.00 | -25.0% |" in capsys.readouterr().out  # printed too
    rows = json.loads(js.read_text())
    assert [r["label"] for r in rows] == ["first_pass", "oracle", "pll", "md"]
    assert [r["rate"] for r in rows] == [20.0, 5.0, 15.0, 16.0]


def test_bad_system_spec(tmp_path: Path, capsys):
    assert gather_results.main(["--system", "pll", str(tmp_path / "R.md")]) == 1
    assert "LABEL=EXPDIR" in capsys.readouterr().err
    assert gather_results.main(["--system", f"a={tmp_path}", "--system", f"a={tmp_path}", str(tmp_path / "R.md")]) == 1
    assert "given twice" in capsys.readouterr().err
