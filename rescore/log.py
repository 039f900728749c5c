"""The one log format of the package (ESPnet/Kaldi style: time, place, level, message)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"

_configured = False


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test harnesses replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def get_logger(name: str) -> logging.Logger:
    """Logger for a module; call as ``log = get_logger(__name__)``."""
    return logging.getLogger(name)


def setup_logging(verbose: int = 1) -> None:
    """Configure the root ``rescore`` logger once, writing to stderr (bin scripts call this)."""
    global _configured
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    root = logging.getLogger("rescore")
    root.setLevel(level)
    if not _configured:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        _configured = True
