"""Declared dependencies (setup.py) equal what the package imports: none missing, none unused."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DIST = {"yaml": "pyyaml"}
# optional imports, each declared as an extra (or, for tensorboard, reached through torch)
OPTIONAL = {"pyarrow": "parquet", "tensorboard": "tensorboard", "fugashi": "ja", "onnx": "onnx",
            "onnxruntime": "onnx", "onnxscript": "onnx"}


def imported_distributions() -> dict[str, set[str]]:
    """Third-party top-level modules imported anywhere in rescore/, with the files importing them."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "rescore").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "rescore" and top not in sys.stdlib_module_names:
                    found.setdefault(DIST.get(top, top), set()).add(str(path.relative_to(REPO)))
    return found


def declared() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("install_requires", "extras_require")}

    def name(req: str) -> str:
        return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()

    return {name(r) for r in kw["install_requires"]}, {e: {name(r) for r in rs} for e, rs in kw["extras_require"].items()}


def test_every_import_is_declared_and_every_requirement_imported():
    used = imported_distributions()
    required, extras = declared()
    optional = {d for d in used if d in OPTIONAL}
    missing = {d: sorted(f) for d, f in used.items() if d not in required and d not in optional}
    assert not missing, f"imported but not in install_requires: {missing}"
    unused = required - set(used)
    assert not unused, f"in install_requires but never imported by rescore/: {sorted(unused)}"
    for dist in optional:
        extra = OPTIONAL[dist]
        assert dist == "tensorboard" or dist in extras.get(extra, set()), f"{dist}: declare it in extra {extra!r}"


def test_the_transformers_floor_is_the_one_ci_tests():
    """.ci/run installs the lowest declared transformers and runs the model tests with it."""
    setup = (REPO / "setup.py").read_text(encoding="utf-8")
    floor = re.search(r'"transformers>=([0-9.]+)"', setup)
    assert floor, "transformers needs a declared floor"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "transformers>=" in ci and "floor" in ci, ".ci/run must test the declared floor"
