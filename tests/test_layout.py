"""The package's shape: no module imports another module's private (``_name``) helpers."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_private_name_crosses_a_module_line():
    crossing = []
    for path in sorted((REPO / "rescore").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rescore":
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if names:
                    crossing.append(f"{path.relative_to(REPO)}: from {node.module} import {', '.join(names)}")
    assert not crossing, "make these public (or move them):\n" + "\n".join(crossing)
