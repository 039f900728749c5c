"""Kaldi n-best archives (``archives.JOB/``) in and out, judged by the real Kaldi programs and by
kaldi-native-io (Kaldi's table readers as a pip package).

Out: what ``export_nbest --format kaldi-nbest`` writes is read by ``linear-to-nbest`` (the step of
Kaldi's n-best rescoring scripts that turns rescored archives back into lattices), also when the
set holds non-finite scores, and ``nbest-to-lattice | lattice-best-path`` picks our best. In: the
archives ``nbest-to-linear`` writes are imported with the same words and costs as the lattices
they came from.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rescore.data.formats import kaldi_lattice, kaldi_nbest
from rescore.data.nbest import NbestBuilder
from tests.conformance.conftest import require, write_table
from tests.conformance.test_kaldi_lattice import close_to_kaldi, read_table

ACWT = 0.1


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("lang") / "words.txt", 130000)


@pytest.fixture
def lattice_set(kgraph, table):
    return kaldi_lattice.read(kgraph / "lat.1", words=table, nbest=10, acwt=ACWT)


def linear_to_nbest(kaldi, job, tmp):
    """``linear-to-nbest`` on one exported job, as Kaldi's rescoring scripts call it; the N-best
    archive it writes, read back by ``nbest-to-linear`` into ``{key: (ids, lm, ac)}``."""
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "nbest.ark"
    kaldi("linear-to-nbest", f"ark:{job}/ali", f"ark:{job}/words", f"ark:{job}/lmwt.withlm", f"ark:{job}/acwt",
          f"ark:{out}")
    kaldi("nbest-to-linear", f"ark:{out}", "ark:/dev/null", f"ark,t:{tmp}/w", f"ark,t:{tmp}/lm", f"ark,t:{tmp}/ac")
    w, lm, ac = (read_table(tmp / f) for f in ("w", "lm", "ac"))
    return out, {k: (w[k], float(lm[k][0]), float(ac[k][0])) for k in w}


def test_exported_archives_read_by_linear_to_nbest(kaldi, lattice_set, table, tmp_path):
    nbs = lattice_set
    rng = np.random.default_rng(0)
    nbs.streams["score"] = nbs.streams["score"] + rng.normal(0, 5.0, nbs.num_hyps)  # a rescored set
    out = tmp_path / "decode"
    kaldi_nbest.write(nbs, out, nj=2)  # the recorded table: Kaldi's word ids
    by_key = {nbs.key(i): i for i in range(nbs.num_hyps)}
    seen = 0
    for j in (1, 2):
        ark, back = linear_to_nbest(kaldi, out / f"archives.{j}", tmp_path / f"k{j}")
        seen += len(back)
        graph = -nbs.streams["score"] - ACWT * nbs.streams["ac_cost"]  # what the writer promises
        for key, (ids, lm, ac) in back.items():
            i = by_key[key]
            assert [f"w{w}" for w in ids] == nbs.texts[i].split()
            assert close_to_kaldi(graph[i], lm) and close_to_kaldi(float(nbs.streams["ac_cost"][i]), ac)
        # nbest-to-lattice | lattice-best-path at LMWT = 1/acwt: the best by our score
        best = kaldi.pipeline(f"nbest-to-lattice ark:{ark} ark:- | lattice-best-path --acoustic-scale={ACWT} "
                              "ark:- ark,t:-").decode().splitlines()
        for line in best:
            utt, *ids = line.split()
            u = nbs.utt_ids.index(utt)
            want = int(nbs.best(nbs.streams["score"])[u])
            assert [f"w{w}" for w in ids] == nbs.texts[want].split(), utt
        assert len(best) == len({k.rsplit("-", 1)[0] for k in back})
    assert seen == nbs.num_hyps  # every hypothesis, none lost


def test_kaldi_reads_no_infinity_so_we_write_a_finite_cost(kaldi, tmp_path):
    # the fact behind the design: Kaldi's scalar archives take no Infinity/BadNumber
    d = tmp_path / "raw"
    d.mkdir()
    (d / "ali").write_text("u-1 \nu-2 \n")
    (d / "words").write_text("u-1 1 \nu-2 2 \n")
    (d / "lmwt.withlm").write_text("u-1 1.5 \nu-2 Infinity \n")
    (d / "acwt").write_text("u-1 10 \nu-2 20 \n")
    p = kaldi.run("linear-to-nbest", f"ark:{d}/ali", f"ark:{d}/words", f"ark:{d}/lmwt.withlm", f"ark:{d}/acwt",
                  "ark:/dev/null")
    assert p.returncode != 0 and b"No LM cost for key u-2" in p.stderr
    # what export writes instead: every hypothesis kept, Kaldi reads them, ours restores the true value
    b = NbestBuilder(["score", "ac_cost", "graph_cost"])
    b.add("u", 1, "w1", {"score": -2.5, "ac_cost": 10.0, "graph_cost": 1.5})
    b.add("u", 2, "w2", {"score": -math.inf, "ac_cost": 20.0, "graph_cost": 1.0})
    b.add("v", 1, "w1 w2", {"score": math.nan, "ac_cost": math.nan, "graph_cost": 2.0})
    nbs = b.build(meta={"acoustic_scale": ACWT})
    out = tmp_path / "decode"
    kaldi_nbest.write(nbs, out, words=write_table(tmp_path / "words.txt", 3))
    ark, back = linear_to_nbest(kaldi, out / "archives.1", tmp_path / "k")
    assert sorted(back) == ["u-1", "u-2", "v-1"]
    assert back["u-2"][1] == 1e10 and back["v-1"][2] == 1e10
    best = kaldi.pipeline(f"nbest-to-lattice ark:{ark} ark:- | lattice-best-path --acoustic-scale={ACWT} "
                          "ark:- ark,t:-").decode().split()
    assert " ".join(best) == "u 1 v 1 2"  # the non-finite one ranks last; v keeps its only hypothesis
    again = kaldi_nbest.read(out)
    np.testing.assert_array_equal(again.streams["score"], nbs.streams["score"])


def test_archives_written_by_nbest_to_linear_imported_identically(kaldi, kgraph, lattice_set, table, tmp_path):
    job = tmp_path / "decode" / "archives.1"
    job.mkdir(parents=True)
    nbest = kaldi("lattice-to-nbest", f"--acoustic-scale={ACWT}", "--n=10", f"ark:{kgraph / 'lat.1'}", "ark:-")
    kaldi("nbest-to-linear", "ark:-", f"ark,t:{job}/ali", f"ark,t:{job}/words", f"ark,t:{job}/lmwt.withlm",
          f"ark,t:{job}/acwt", stdin=nbest)
    (tmp_path / "decode" / "num_jobs").write_text("1\n")
    nbs = kaldi_nbest.read(tmp_path / "decode", words=table, acwt=ACWT)
    lat = lattice_set
    assert nbs.utt_ids == lat.utt_ids and list(nbs.keys()) == list(lat.keys())
    assert list(nbs.texts) == list(lat.texts)
    for name in ("graph_cost", "ac_cost", "score"):
        for a, b in zip(nbs.streams[name], lat.streams[name], strict=True):
            assert close_to_kaldi(float(b), float(a)), (name, a, b)
    assert nbs.meta["symbol_table"]["path"] == str(table.resolve())


def test_kaldi_native_io_reads_our_archives(lattice_set, tmp_path):
    kio = require("kaldi_native_io", "pip install kaldi-native-io: Kaldi's table readers")
    nbs = lattice_set
    scores = nbs.streams["score"].copy()
    scores[3] = -math.inf  # a non-finite cost, capped for Kaldi
    nbs.streams["score"] = scores
    out = tmp_path / "decode"
    kaldi_nbest.write(nbs, out)
    job = out / "archives.1"
    keys = [nbs.key(i) for i in range(nbs.num_hyps)]
    for name in ("lmwt.withlm", "acwt"):
        got = dict(kio.SequentialFloatReader(f"ark:{job / name}"))
        assert list(got) == keys, name  # a reader that stops early would drop hypotheses
        mine = {k: float(v[0]) for k, v in read_table(job / name).items()}
        assert all(np.float32(mine[k]) == np.float32(got[k]) for k in keys), name
    words = dict(kio.SequentialInt32VectorReader(f"ark:{job / 'words'}"))
    texts = dict(kio.SequentialTokenVectorReader(f"ark:{job / 'words_text'}"))
    assert list(words) == keys and list(texts) == keys
    for i, k in enumerate(keys):
        assert texts[k] == nbs.texts[i].split() and [f"w{w}" for w in words[k]] == nbs.texts[i].split()
