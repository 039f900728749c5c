"""Shared test helpers: tiny dataset directories written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescore.data.nbest import NbestBuilder, NbestSet


def write(path: Path, text: str, mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" in mode:
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="\n")
    return path


def make_setdir(root: Path, nbest: dict[str, list[tuple[str, float]]], refs: dict[str, str] | None = None,
                streams: dict[str, dict[str, float]] | None = None) -> Path:
    """Write a canonical set: ``nbest = {utt: [(text, score), ...]}`` ranked 1..N in list order."""
    lines, scores = [], []
    for utt, hyps in nbest.items():
        for k, (text, score) in enumerate(hyps, 1):
            lines.append(f"{utt}-{k} {text}".rstrip(" "))
            scores.append(f"{utt}-{k} {score}")
    write(root / "nbest" / "text", "\n".join(lines) + "\n")
    write(root / "nbest" / "score", "\n".join(scores) + "\n")
    for name, values in (streams or {}).items():
        write(root / "nbest" / name, "".join(f"{k} {v}\n" for k, v in values.items()))
    if refs is not None:
        write(root / "text", "".join(f"{u} {t}\n" for u, t in refs.items()))
    return root


def make_set(hyps: dict[str, list[tuple[str, float]]], refs: dict[str, str] | None = None) -> NbestSet:
    """An in-memory set: ``hyps = {utt: [(text, score), ...]}`` ranked 1..N in list order."""
    b = NbestBuilder(["score"])
    for utt, items in hyps.items():
        for k, (text, score) in enumerate(items, 1):
            b.add(utt, k, text, {"score": score})
    return b.build(refs=refs)


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    """Two utterances, one with a dash in its id; first pass picks a wrong hypothesis in u1."""
    return make_setdir(
        tmp_path / "dev",
        {
            "spk1-u1": [("the cat sat", -10.0), ("the cat sat on", -9.0), ("a cat sat", -12.5)],
            "spk2-u2": [("hello world", -3.0), ("hello word", -4.0)],
        },
        refs={"spk1-u1": "the cat sat", "spk2-u2": "hello world"},
    )
