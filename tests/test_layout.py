"""The package's shape: imports go only downward through the layers, and no module imports another
module's private (``_name``) helpers (docs/architecture.md)."""

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


# The layers, lowest first: a module may import its own layer and the layers below it (rescoring
# sits beside train, above models; bin, the CLIs, may import everything).
FOUNDATION = ("config", "defaults", "exceptions", "log", "runtime", "stage")
MAY_IMPORT = {
    "foundation": {"foundation"},
    "data": {"foundation", "data"},
    "scoring": {"foundation", "data", "scoring"},
    "models": {"foundation", "data", "scoring", "models"},
    "train": {"foundation", "data", "scoring", "models", "train"},
    "rescoring": {"foundation", "data", "scoring", "models", "rescoring"},
    "bin": {"foundation", "data", "scoring", "models", "train", "rescoring", "bin"},
}
# rescore/__init__.py registers the student with transformers' Auto classes once transformers is
# imported (a meta-path hook), and offers ``rescore.Rescorer`` (imported on first use): the two
# imports from the package root into the layers
ALLOWED = {("rescore/__init__.py", "rescore.models.student"), ("rescore/__init__.py", "rescore.rescoring.bundle")}


def layer_of(module: str) -> str | None:
    """The layer of a module ``rescore.X...`` (None for ``rescore`` itself); raises for an unknown X."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in FOUNDATION:
        return "foundation"
    if parts[1] in MAY_IMPORT and parts[1] != "foundation":
        return parts[1]
    raise AssertionError(f"{module}: not in any layer (add it to FOUNDATION or a subpackage)")


def rescore_imports(source: str, rel: Path) -> list[str]:
    """The ``rescore`` modules that ``source`` (the file ``rel`` of the repository) imports: import
    statements at any depth (relative ones resolved), and ``importlib.import_module`` with a literal
    (or f-string) ``rescore.`` prefix."""
    package = list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "rescore":  # from rescore import data: the submodules by name
                found += [f"rescore.{a.name}" for a in node.names]
            else:
                found.append(module)
        elif (isinstance(node, ast.Call) and node.args
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            arg = node.args[0]
            literal = arg.value if isinstance(arg, ast.Constant) else (
                arg.values[0].value if isinstance(arg, ast.JoinedStr) and arg.values
                and isinstance(arg.values[0], ast.Constant) else None)
            if isinstance(literal, str):
                found.append(literal if isinstance(arg, ast.Constant) else literal.rsplit(".", 1)[0])
    return [m for m in found if m == "rescore" or m.startswith("rescore.")]


def test_imports_go_only_downward():
    violations = []
    for path in sorted((REPO / "rescore").rglob("*.py")):
        rel = path.relative_to(REPO)
        own = "foundation" if len(rel.parts) == 2 else rel.parts[1]
        assert own in MAY_IMPORT, f"{rel}: rescore/{own}/ is not a known layer"
        for module in rescore_imports(path.read_text(encoding="utf-8"), rel):
            target = layer_of(module)
            if target is None or (str(rel), module) in ALLOWED:
                continue
            if target not in MAY_IMPORT[own]:
                violations.append(f"{rel} ({own}) imports {module} ({target})")
    assert not violations, "imports go only downward (foundation <- data <- scoring <- models <- train; " \
                           "rescoring may use data, scoring, models; bin everything):\n" + "\n".join(violations)


def test_the_layer_check_sees_every_kind_of_import():
    """The checker itself: plain, from, relative, lazy (in a function) and importlib imports are seen."""
    src = ("import rescore.models.pll\nfrom rescore.scoring import wer\nfrom ..train import loop\n"
           "from . import nbest\ndef f():\n    from rescore.bin import common\n"
           "import importlib\nimportlib.import_module(f'rescore.rescoring.{x}')\nfrom rescore import train\n")
    found = set(rescore_imports(src, Path("rescore/data/probe.py")))
    assert found == {"rescore.models.pll", "rescore.scoring", "rescore.train", "rescore.data", "rescore.bin",
                     "rescore.rescoring"}
    assert [layer_of(m) for m in ("rescore.stage", "rescore.data.formats.slf", "rescore.bin.rescore")] == \
        ["foundation", "data", "bin"]
