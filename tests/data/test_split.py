"""rescore.data.split: splitting a set for parallel jobs and merging their score archives."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rescore.data.nbest import load_set, write_scores
from rescore.data.split import merge_stream, plan_blocks, split_is_current, split_set
from rescore.exceptions import InputError, InvalidSetError
from rescore.stage import mark_done
from tests.conftest import make_setdir

UTTS = ["spk2-u9", "spk1-u1", "spk1-u10", "spk3-a-b", "spk1-u2", "spk2-u3", "spk4-u4"]  # not sorted


def make(tmp_path: Path) -> Path:
    nbest = {u: [(" ".join(["w"] * (i % 3 + j)), -float(i + j)) for j in range(1 + i % 3)]
             for i, u in enumerate(UTTS)}
    ac = {f"{u}-{k}": 10.0 * i + k for i, u in enumerate(UTTS) for k in range(1, 2 + i % 3)}
    refs = {u: "w w" for u in UTTS} | {"spk9-noh": "only a reference"}
    return make_setdir(tmp_path / "dev", nbest, refs=refs, streams={"ac_cost": ac})


@pytest.mark.parametrize("n, nj, sizes", [(7, 3, [3, 2, 2]), (7, 7, [1] * 7), (7, 1, [7]), (10, 4, [3, 3, 2, 2])])
def test_plan_blocks_like_split_scp(n, nj, sizes):
    blocks = plan_blocks(n, nj)
    assert [e - s for s, e in blocks] == sizes
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))


def test_plan_blocks_errors():
    with pytest.raises(ValueError, match="more jobs than utterances"):
        plan_blocks(2, 3)
    with pytest.raises(ValueError, match="at least 1"):
        plan_blocks(2, 0)


def test_split_round_trip(tmp_path):
    setdir = make(tmp_path)
    full = load_set(setdir)
    dirs = split_set(setdir, 3)
    assert dirs == [setdir / "split3" / str(j) for j in (1, 2, 3)]
    parts = [load_set(d) for d in dirs]
    assert [p.num_utts for p in parts] == [3, 2, 2]
    assert sum((p.utt_ids for p in parts), []) == full.utt_ids
    for name in ("text", "score", "ac_cost"):
        joined = "".join((d / "nbest" / name).read_text() for d in dirs)
        assert joined == (setdir / "nbest" / name).read_text()
    assert {k: v for p in parts for k, v in p.refs.items()} == {u: "w w" for u in UTTS}
    for j, p in enumerate(parts, 1):
        assert p.meta["split"]["job"] == j and p.meta["split"]["nj"] == 3
        assert p.meta["counts"]["hyps"] == p.num_hyps


def test_split_is_reused_until_the_set_changes(tmp_path):
    setdir = make(tmp_path)
    split_set(setdir, 2)
    text1 = setdir / "split2" / "1" / "nbest" / "text"
    os.utime(text1, (1, 1))
    split_set(setdir, 2)
    assert text1.stat().st_mtime == 1  # reused, not rewritten
    assert split_is_current(setdir, 2)
    (setdir / "nbest" / "score").write_text((setdir / "nbest" / "score").read_text().replace("-0.0", "-0.5"))
    assert not split_is_current(setdir, 2)
    split_set(setdir, 2)
    assert text1.stat().st_mtime != 1
    assert "-0.5" in (setdir / "split2" / "1" / "nbest" / "score").read_text()


def test_split_more_jobs_than_utterances(tmp_path):
    setdir = make(tmp_path)
    with pytest.raises(InputError, match="cannot split 7 utterance"):
        split_set(setdir, 8)


def score_parts(setdir: Path, outdir: Path, nj: int, name: str = "x") -> tuple[list[Path], np.ndarray]:
    """What nj jobs would write: per subset, value = 100 * position in the full set + rank."""
    full = load_set(setdir)
    pos = {k: i for i, k in enumerate(full.keys())}
    parts = []
    for j, d in enumerate(split_set(setdir, nj), 1):
        sub = load_set(d)
        pdir = outdir / f"split{nj}" / str(j)
        pdir.mkdir(parents=True)
        write_scores(pdir / name, sub, np.array([100.0 * pos[k] for k in sub.keys()]))
        mark_done(pdir, "fp")
        parts.append(pdir)
    return parts, 100.0 * np.arange(full.num_hyps)


def test_merge_round_trip(tmp_path):
    setdir = make(tmp_path)
    parts, expect = score_parts(setdir, tmp_path / "exp", 3)
    values = merge_stream(setdir, parts, "x", tmp_path / "exp" / "x")
    assert np.array_equal(values, expect)
    full = load_set(setdir)
    lines = (tmp_path / "exp" / "x").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == list(full.keys())


def _merge_error(setdir, parts) -> str:
    with pytest.raises((InvalidSetError, InputError)) as e:
        merge_stream(setdir, parts, "x", setdir.parent / "merged")
    assert not (setdir.parent / "merged").exists()
    return str(e.value)


def test_merge_missing_key(tmp_path):
    setdir = make(tmp_path)
    parts, _ = score_parts(setdir, tmp_path / "exp", 3)
    f = parts[1] / "x"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:-1]) + "\n")
    msg = _merge_error(setdir, parts)
    assert str(f) in msg and lines[-1].split()[0] in msg and "missing" in msg


def test_merge_duplicate_across_parts(tmp_path):
    setdir = make(tmp_path)
    parts, _ = score_parts(setdir, tmp_path / "exp", 3)
    first = (parts[0] / "x").read_text().splitlines()[0]
    with open(parts[2] / "x", "a") as f:
        f.write(first + "\n")
    msg = _merge_error(setdir, parts)
    key = first.split()[0]
    n3 = len((parts[2] / "x").read_text().splitlines())
    assert f"{parts[2] / 'x'}:{n3}: key '{key}' is not in" in msg and "belongs to part 1" in msg


def test_merge_extra_key_and_duplicate_within_part(tmp_path):
    setdir = make(tmp_path)
    parts, _ = score_parts(setdir, tmp_path / "exp", 2)
    with open(parts[0] / "x", "a") as f:
        f.write("nobody-1 0.5\n")
    lines = (parts[1] / "x").read_text().splitlines()
    (parts[1] / "x").write_text("\n".join(lines + lines[:1]) + "\n")
    msg = _merge_error(setdir, parts)
    assert "key 'nobody-1' is not in" in msg and "nor in the full set" in msg
    assert f"{parts[1] / 'x'}:{len(lines) + 1}: duplicate key" in msg


def test_merge_missing_part_unfinished_job_and_stale_split(tmp_path):
    setdir = make(tmp_path)
    parts, _ = score_parts(setdir, tmp_path / "exp", 3)
    (parts[0] / "x").unlink()
    (parts[2] / ".done").unlink()
    msg = _merge_error(setdir, parts)
    assert f"{parts[0] / 'x'}: missing part 1" in msg
    assert f"{parts[2] / '.done'}: missing: the job of part 3 did not finish" in msg
    with pytest.raises(InvalidSetError, match="10 key\\(s\\) in no part: spk2-u9-1"):  # parts left out
        merge_stream(setdir, parts[1:2], "x", tmp_path / "m", part_sets=[setdir / "split3" / "2"])
    with open(setdir / "nbest" / "text", "a") as f:
        f.write("spk9-new-1 w\n")
    with open(setdir / "nbest" / "score", "a") as f:
        f.write("spk9-new-1 0\n")
    with open(setdir / "nbest" / "ac_cost", "a") as f:
        f.write("spk9-new-1 0\n")
    assert "older than" in _merge_error(setdir, parts)
