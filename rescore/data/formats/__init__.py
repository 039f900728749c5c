"""Importers and exporters between recognisers' n-best formats and the canonical dataset directory.

Each module ``rescore.data.formats.<name>`` offers ``read(src, refs=None, **options) -> NbestSet``
and/or ``write(nbs, out, **options) -> list[Path]``. Readers keep hypothesis text as the
recogniser wrote it (tokens split on ASCII whitespace only) and record what they did in
``nbs.meta['source']``; every reader checks its input and raises
:class:`rescore.exceptions.InputError` / :class:`~rescore.exceptions.InvalidSetError` naming the
file and line. Counts in equal counts out: nothing is dropped silently.
"""

from __future__ import annotations

import importlib

#: CLI format name -> module name
READERS = {
    "kaldi-nbest": "kaldi_nbest",
    "kaldi-lattice": "kaldi_lattice",
    "espnet": "espnet",
    "mlm-json": "mlm_json",
    "hypr": "hypr",
    "nemo": "nemo",
    "slf": "slf",
    "setdir": "setdir",
}
WRITERS = {
    "kaldi-nbest": "kaldi_nbest",
    "kaldi-lattice": "kaldi_lattice",
    "espnet": "espnet",
    "mlm-json": "mlm_json",
    "trn": "trn",
    "setdir": "setdir",
}


def module(fmt: str, writing: bool = False):
    table = WRITERS if writing else READERS
    if fmt not in table:
        kind = "export" if writing else "import"
        raise ValueError(f"unknown {kind} format {fmt!r}; choose from {', '.join(table)}")
    return importlib.import_module(f"rescore.data.formats.{table[fmt]}")
