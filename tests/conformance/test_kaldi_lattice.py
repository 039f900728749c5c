"""Kaldi lattices in and out, judged by the real Kaldi programs (see conftest.py for where they come from).

In: lattices written by a Kaldi decoder (kGraph's ``lat.1``, binary, and ``lat.txt``) and the
same lattices rewritten by ``lattice-copy`` (binary and text, CompactLattice and Lattice, a
decode directory of ``lat.*.gz``) give the N-best lists ``lattice-to-nbest`` gives: order, words,
graph and acoustic costs. Out: what ``export_nbest --format kaldi-lattice`` writes is read by
``lattice-copy``, and Kaldi's scoring pipeline on it (lattice-scale | lattice-add-penalty |
lattice-best-path | int2sym.pl with the recogniser's words.txt) gives exactly the rescored 1-best
and the same WER as ``rescore``'s own scoring.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from rescore.bin import export_nbest, import_nbest
from rescore.bin import rescore as rescore_cli
from rescore.data.formats import kaldi_lattice
from rescore.data.nbest import load_set, write_scores
from tests.conformance.conftest import write_table

N = 10
ACWT = 0.1


def read_table(path: Path) -> dict[str, list[str]]:
    """``{key: fields}`` of a Kaldi text archive of scalars or word ids, in file order."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, *rest = line.split()
            out[key] = rest
    return out


def kaldi_nbest(kaldi, rspecifier: str, tmp: Path, n: int = N, acwt: float = ACWT) -> dict[str, tuple]:
    """``{key: (word ids, graph cost, acoustic cost)}`` from lattice-to-nbest | nbest-to-linear."""
    tmp.mkdir(parents=True, exist_ok=True)
    nbest = kaldi("lattice-to-nbest", f"--acoustic-scale={acwt}", f"--n={n}", rspecifier, "ark:-")
    return linear(kaldi, nbest, tmp)


def linear(kaldi, nbest_archive: bytes, tmp: Path) -> dict[str, tuple]:
    tmp.mkdir(parents=True, exist_ok=True)
    kaldi("nbest-to-linear", "ark:-", "ark:/dev/null", f"ark,t:{tmp}/words", f"ark,t:{tmp}/lm", f"ark,t:{tmp}/ac",
          stdin=nbest_archive)
    words, lm, ac = (read_table(tmp / f) for f in ("words", "lm", "ac"))
    return {k: (words[k], float(lm[k][0]), float(ac[k][0])) for k in words}


def close_to_kaldi(ours: float, theirs: float) -> bool:
    """Equal to Kaldi's printed value within its float32 sums (relative 3e-6) and 7 printed digits."""
    return abs(ours - theirs) <= 3e-6 * max(abs(theirs), 1.0)


def assert_same_nbest(nbs, expected: dict[str, tuple]) -> None:
    """Our N-best set equals Kaldi's: same keys in the same order within each utterance, same words
    (id i is w<i>), costs to Kaldi's precision."""
    ours = {nbs.key(i): i for i in range(nbs.num_hyps)}
    assert set(ours) == set(expected), (sorted(set(ours) ^ set(expected)))[:5]
    for key, (ids, graph, ac) in expected.items():
        i = ours[key]
        assert nbs.texts[i].split() == [f"w{w}" for w in ids], key
        assert close_to_kaldi(float(nbs.streams["graph_cost"][i]), graph), (key, nbs.streams["graph_cost"][i], graph)
        assert close_to_kaldi(float(nbs.streams["ac_cost"][i]), ac), (key, nbs.streams["ac_cost"][i], ac)


@pytest.fixture(scope="module")
def table(tmp_path_factory, kgraph) -> Path:
    return write_table(tmp_path_factory.mktemp("lang") / "words.txt", 130000)


def test_decoder_lattices_binary_and_text(kaldi, kgraph, table, tmp_path):
    """Kaldi decoder output read directly (OpenFst writes 0 arcs in each binary header)."""
    nbs = kaldi_lattice.read(kgraph / "lat.1", words=table, nbest=N)
    assert nbs.num_utts == 10 and nbs.meta["source"]["forms"] == {"text": 0, "binary": 10}
    assert_same_nbest(nbs, kaldi_nbest(kaldi, f"ark:{kgraph / 'lat.1'}", tmp_path / "k1"))
    text = tmp_path / "lat.txt"
    text.write_bytes(gzip.decompress((kgraph / "lat.txt.gz").read_bytes()))
    nbs = kaldi_lattice.read(text, words=table, nbest=N)
    assert_same_nbest(nbs, kaldi_nbest(kaldi, f"ark:{text}", tmp_path / "k2"))
    # and the N-best that shipped with it: lattice-to-nbest output (at its default acoustic scale 1.0)
    # made by kGraph's authors with their own Kaldi build
    nbs = kaldi_lattice.read(text, words=table, nbest=N, acwt=1.0)
    assert_same_nbest(nbs, linear(kaldi, (kgraph / "nbest.txt").read_bytes(), tmp_path / "k3"))


@pytest.mark.parametrize("opts,form", [
    ((), "binary CompactLattice"), (("--write-compact=false",), "binary Lattice"),
    ((), "text CompactLattice"), (("--write-compact=false",), "text Lattice")])
def test_lattice_copy_forms(kaldi, kgraph, table, tmp_path, opts, form):
    out = tmp_path / "lat.ark"
    wspec = f"ark,t:{out}" if form.startswith("text") else f"ark:{out}"
    kaldi("lattice-copy", *opts, f"ark:{kgraph / 'lat.1'}", wspec)
    nbs = kaldi_lattice.read(out, words=table, nbest=N)
    kind = form.split()[1]
    assert nbs.meta["source"]["types"][kind] == 10
    assert nbs.meta["source"]["forms"]["text" if form.startswith("text") else "binary"] == 10
    assert_same_nbest(nbs, kaldi_nbest(kaldi, f"ark:{out}", tmp_path / "k"))


def test_decode_dir_of_gzipped_jobs(kaldi, kgraph, table, tmp_path):
    keys = [ln.split()[0] for ln in kaldi("lattice-copy", f"ark:{kgraph / 'lat.1'}", "ark,t:-").decode().splitlines()
            if ln and not ln[0].isdigit()]
    decode = tmp_path / "decode_test"
    decode.mkdir()
    for j, part in enumerate((keys[:4], keys[4:]), 1):
        (tmp_path / f"keys.{j}").write_text("".join(k + "\n" for k in part))
        kaldi("lattice-copy", f"--include={tmp_path / f'keys.{j}'}", f"ark:{kgraph / 'lat.1'}",
              f"ark:| gzip -c > {decode / f'lat.{j}.gz'}")
    (decode / "num_jobs").write_text("2\n")
    setdir = tmp_path / "data" / "test"
    assert import_nbest.main(["--format", "kaldi-lattice", "--words", str(table), "--nbest", str(N),
                              str(decode), str(setdir)]) == 0
    nbs = load_set(setdir)
    assert nbs.num_utts == 10 and nbs.meta["source"]["num_jobs"] == 2
    assert_same_nbest(nbs, kaldi_nbest(kaldi, f"ark:gunzip -c {decode}/lat.*.gz |", tmp_path / "k"))
    assert nbs.meta["symbol_table"]["path"] == str(table.resolve())


def _fake_second_pass(nbs) -> np.ndarray:
    """A deterministic 'second-pass score': noise from a hash of each text, plus a bonus for the
    reference, so that the tuned weight is not 0 and the rescored 1-best differs from the first pass."""
    noise = np.array([int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) / 2**32 * 4.0 for t in nbs.texts])
    ref = np.array([nbs.texts[i] == nbs.refs[nbs.utt_ids[u]] for u in range(nbs.num_utts)
                    for i in range(int(nbs.offsets[u]), int(nbs.offsets[u + 1]))])
    return noise + 3.0 * ref


@pytest.mark.parametrize("binary", [True, False])
def test_rescored_lattices_scored_by_the_kaldi_pipeline(kaldi, kgraph, table, tmp_path, binary):
    """export -> lattice-scale | lattice-add-penalty | lattice-best-path | int2sym.pl: our 1-best, our WER."""
    data, exp = tmp_path / "data", tmp_path / "exp"
    nbs = kaldi_lattice.read(kgraph / "lat.1", words=table, nbest=N)
    refs = tmp_path / "text"  # references: each utterance's 3rd best path, so that rescoring can win or lose
    refs.write_text("".join(f"{u} {nbs.texts[int(nbs.offsets[k]) + 2]}\n" for k, u in enumerate(nbs.utt_ids)))
    for s in ("dev", "test"):
        assert import_nbest.main(["--format", "kaldi-lattice", "--words", str(table), "--nbest", str(N),
                                  "--text", str(refs), str(kgraph / "lat.1"), str(data / s)]) == 0
        write_scores(exp / "fake" / s / "fake", load_set(data / s), _fake_second_pass(load_set(data / s)))
    assert rescore_cli.main(["--dev", str(data / "dev"), "--eval", str(data / "test"),
                             "--stream", f"fake={exp}/fake/{{set}}/fake", "--out", str(exp / "rescore")]) == 0
    rescored = exp / "rescore" / "test"
    decode = exp / "decode_test"
    argv = ["--format", "kaldi-lattice", "--nj", "2", "--binary", str(binary).lower(), str(rescored),
            str(decode)]
    assert export_nbest.main(argv) == 0  # no --words: the table recorded at import
    assert (decode / "words.txt").read_bytes() == table.read_bytes()
    for j in (1, 2):  # Kaldi reads every job
        kaldi("lattice-copy", f"ark:gunzip -c {decode / f'lat.{j}.gz'} |", "ark:/dev/null")
    acwt = yaml.safe_load((rescored / "nbest" / "meta.yaml").read_text())["acoustic_scale"]
    hyp = kaldi.pipeline(
        f"lattice-scale --inv-acoustic-scale={1 / acwt!r} 'ark:gunzip -c {decode}/lat.*.gz |' ark:- | "
        "lattice-add-penalty --word-ins-penalty=0.0 ark:- ark:- | "
        f"lattice-best-path --word-symbol-table={table} ark:- ark,t:- | int2sym.pl -f 2- {table}")
    ours = {ln.split(maxsplit=1)[0]: ln for ln in (rescored / "text").read_text().splitlines()}
    theirs = {ln.split(maxsplit=1)[0]: ln.rstrip() for ln in hyp.decode().splitlines()}
    assert theirs == ours
    (tmp_path / "hyp.txt").write_bytes(hyp)
    wer = kaldi("compute-wer", "--mode=present", f"ark:{refs}", f"ark:{tmp_path / 'hyp.txt'}").decode()
    assert wer.splitlines()[0] == (rescored / "scoring" / "wer").read_text().splitlines()[0]
    first = load_set(data / "test")
    first_best = {first.utt_ids[u]: first.texts[int(i)] for u, i in enumerate(first.best(first.streams["score"]))}
    changed = [u for u, line in ours.items() if line.split(maxsplit=1)[1:] != first_best[u].split(maxsplit=0)[:1]
               and (line.split(maxsplit=1) + [""])[1] != first_best[u]]
    assert changed, "the rescoring changed no 1-best: the check above would not test the exported costs"


def test_export_refuses_a_changed_or_missing_table(kgraph, table, tmp_path, capsys):
    lang = tmp_path / "lang"
    lang.mkdir()
    own = lang / "words.txt"
    own.write_bytes(table.read_bytes())
    setdir = tmp_path / "data" / "test"
    assert import_nbest.main(["--format", "kaldi-lattice", "--words", str(own), str(kgraph / "lat.1"),
                              str(setdir)]) == 0
    own.write_text(re.sub(r"^w1 1$", "w1 7", own.read_text(), count=1, flags=re.M))
    assert export_nbest.main(["--format", "kaldi-lattice", str(setdir), str(tmp_path / "out")]) == 1
    assert "changed since the set was imported" in capsys.readouterr().err
    own.unlink()
    assert export_nbest.main(["--format", "kaldi-lattice", str(setdir), str(tmp_path / "out")]) == 1
    assert "no longer exists" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
