"""Errors raised for bad input: each names the file, the line and the problem."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A problem in an input file, located by path and (1-based) line number."""

    def __init__(self, path: str | Path | None, line: int | None, message: str):
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        super().__init__(self.where() + message)

    def where(self) -> str:
        if self.path is None:
            return ""
        if self.line is None:
            return f"{self.path}: "
        return f"{self.path}:{self.line}: "


class InvalidSetError(ValueError):
    """A dataset directory (or an import) failed validation; ``problems`` lists every error."""

    def __init__(self, problems: list[InputError], what: str = "input"):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} error(s) in {what}:\n  {shown}{more}")


def require_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a Path; a missing path, or one that is not a regular file, is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"{what} not found")
    if not path.is_file():
        raise InputError(path, None, f"{what} expected, found a directory or special file")
    return path


def require_dir(path: str | Path, what: str = "directory") -> Path:
    """``path`` as a Path; a missing path, or one that is not a directory, is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, f"{what} not found")
    if not path.is_dir():
        raise InputError(path, None, f"{what} expected, found a file")
    return path
