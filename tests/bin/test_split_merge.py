"""CLIs rescore.bin.split_nbest and rescore.bin.merge_scores, called through main([...])."""

from __future__ import annotations

import numpy as np

from rescore.bin import merge_scores, split_nbest
from rescore.data.nbest import load_set, write_scores
from rescore.stage import mark_done
from tests.conftest import make_setdir


def make(tmp_path):
    nbest = {f"u{i}": [("a b c"[: 1 + 2 * (i % 3)], -1.0), ("x", -2.0)] for i in range(5)}
    return make_setdir(tmp_path / "dev", nbest, refs={f"u{i}": "a" for i in range(5)})


def score(setdir, outdir, nj):
    for j in range(1, nj + 1):
        sub = load_set(setdir / f"split{nj}" / str(j))
        pdir = outdir / f"split{nj}" / str(j)
        pdir.mkdir(parents=True)
        write_scores(pdir / "pll", sub, sub.texts.num_tokens().astype(float))
        mark_done(pdir, "fp")


def test_split_then_merge(tmp_path, capsys):
    setdir = make(tmp_path)
    assert split_nbest.main([str(setdir), "2"]) == 0
    assert capsys.readouterr().out.split() == [str(setdir / "split2" / "1"), str(setdir / "split2" / "2")]
    out = tmp_path / "exp"
    score(setdir, out, 2)
    assert merge_scores.main(["--name", "pll", "--nj", "2", str(setdir), str(out)]) == 0
    full = load_set(setdir)
    assert (out / "pll").read_text() == "".join(f"{k} {float(n)}\n" for k, n in
                                                zip(full.keys(), full.texts.num_tokens(), strict=True))
    assert (out / ".done").is_file() and (out / "run.yaml").is_file()
    mtime = (out / "pll").stat().st_mtime_ns
    assert merge_scores.main(["--name", "pll", "--nj", "2", str(setdir), str(out)]) == 0  # skip
    assert (out / "pll").stat().st_mtime_ns == mtime
    assert np.array_equal(np.loadtxt(out / "pll", usecols=1), full.texts.num_tokens())


def test_errors(tmp_path, capsys):
    setdir = make(tmp_path)
    assert split_nbest.main([str(setdir), "6"]) == 1
    assert "cannot split 5 utterance(s) into 6 jobs" in capsys.readouterr().err
    split_nbest.main([str(setdir), "2"])
    out = tmp_path / "exp"
    score(setdir, out, 2)
    (out / "split2" / "2" / "pll").unlink()
    assert merge_scores.main(["--name", "pll", "--nj", "2", str(setdir), str(out)]) == 1
    assert f"{out / 'split2' / '2' / 'pll'}: missing part 2" in capsys.readouterr().err
    assert not (out / "pll").exists() and not (out / ".done").exists()
    (out / "split2" / "3").mkdir()
    assert merge_scores.main(["--name", "pll", "--nj", "2", str(setdir), str(out)]) == 1
    assert "split2/3: exists: the parts are not those of 2 jobs" in capsys.readouterr().err
