"""What the recipe tests share: regenerated n-best files equal the committed ones."""

from __future__ import annotations

import re
from pathlib import Path


def assert_regenerated(src: Path, dest: Path, sets: tuple[str, ...], utts_per_set: int,
                       names: tuple[str, ...] = ("nbest/text", "nbest/score", "text", "utt2spk", "synth_params"),
                       ) -> dict[str, set[str]]:
    """Every file ``names`` of every set regenerated in ``dest/nbest/<set>`` holds exactly the lines of
    ``src/nbest/<set>`` for the utterances regenerated (``utts_per_set`` of them); returns those."""
    regenerated = {}
    for s in sets:
        new_lines = (dest / "nbest" / s / "nbest" / "text").read_text(encoding="utf-8").splitlines()
        utts = {ln.split()[0].rsplit("-", 1)[0] for ln in new_lines}
        assert len(utts) == utts_per_set, (s, utts)
        for name in names:
            new = (dest / "nbest" / s / name).read_text(encoding="utf-8").splitlines()
            old = (src / "nbest" / s / name).read_text(encoding="utf-8").splitlines()
            old = [ln for ln in old if re.split(r"\s", ln, maxsplit=1)[0].rsplit("-", 1)[0] in utts
                   or re.split(r"\s", ln, maxsplit=1)[0] in utts]
            assert new == old, (s, name)
        regenerated[s] = utts
    return regenerated
