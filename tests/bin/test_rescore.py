"""rescore CLI: output layout, new-score order, scoring files, weights given or tuned, Kaldi acoustic
scale, missing values, bad input, and the acceptance test (a near-oracle stream recovers the gap)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rescore.bin import rescore
from rescore.data.nbest import load_set
from tests.conftest import make_setdir, write


def write_stream(path: Path, values: dict[str, float | str]) -> Path:
    return write(path, "".join(f"{k} {v}\n" for k, v in values.items()))


@pytest.fixture
def sets(tmp_path):
    """A dev and a test set with an ``lm`` stream under tmp/streams/<set>/lm."""
    dev = make_setdir(tmp_path / "dev", {
        "spk1-u1": [("the cat sat", -10.0), ("the cat sat on", -9.0), ("a cat sat", -12.5)],
        "spk2-u2": [("hello world", -3.0), ("hello word", -4.0)],
    }, refs={"spk1-u1": "the cat sat", "spk2-u2": "hello world"})
    test = make_setdir(tmp_path / "test", {
        "t1": [("a b", -0.5), ("a b c", -1.0)],
        "t10": [("p", 0.0)],
        "t2": [("x y", -2.0), ("x z", -1.0)],
    }, refs={"t1": "a b c", "t10": "p q", "t2": "x y"})
    write_stream(tmp_path / "streams" / "dev" / "lm",
                 {"spk1-u1-1": -1.0, "spk1-u1-2": -8.0, "spk1-u1-3": -5.0, "spk2-u2-1": -1.0, "spk2-u2-2": -3.0})
    write_stream(tmp_path / "streams" / "test" / "lm", {"t1-1": -9.0, "t1-2": -1.0, "t10-1": -1.0,
                                                        "t2-1": -1.0, "t2-2": -4.0})
    return dev, test, f"lm={tmp_path}/streams/{{set}}/lm"


def run(dev, test, stream, out, *extra):
    return rescore.main(["--dev", str(dev), "--eval", str(test), "--stream", stream, "--out", str(out),
                         "--bootstrap", "200", *extra])


def files_under(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()}


def test_outputs_layout_order_and_scoring(sets, tmp_path, caplog):
    dev, test, stream = sets
    out = tmp_path / "exp"
    assert run(dev, test, stream, out, "--tune", "none") == 0
    per_set = {"text", "ref", "scoring/wer", "scoring/per_utt", "scoring/summary.json",
               *(f"nbest/{f}" for f in ("text", "score", "rank", "first_pass", "lm", "meta.yaml"))}
    assert files_under(out) == {".done", "run.yaml", "RESULTS.md", "weights.yaml", "dev_lm.png", "dev_wip.png",
                                *(f"{s}/{f}" for s in ("dev", "test") for f in per_set)}
    assert (out / "dev_lm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --tune none without --weights: beta 1, wip 0, the set's score
    w = yaml.safe_load((out / "weights.yaml").read_text())
    assert (w["streams"], w["wip"], w["acwt"], w["tuned"]) == ({"lm": 1.0}, 0.0, None, [])
    # the rescored set: same keys, entries in new-score order, rank / score / first_pass streams
    nbs = load_set(out / "test")  # a decode dir and a dataset dir: references from ref (meta.yaml says so)
    assert set(nbs.keys()) == set(load_set(test).keys()) and nbs.refs == load_set(test).refs
    assert yaml.safe_load((out / "test" / "nbest" / "meta.yaml").read_text())["references"] == "ref"
    assert (out / "test" / "nbest" / "text").read_text().splitlines() == [
        "t1-2 a b c", "t1-1 a b", "t10-1 p", "t2-1 x y", "t2-2 x z"]
    assert nbs.streams["rank"].tolist() == [1, 2, 1, 1, 2]
    assert nbs.streams["score"].tolist() == [-2.0, -9.5, -1.0, -3.0, -5.0]
    assert nbs.streams["first_pass"].tolist() == [-1.0, -0.5, 0.0, -2.0, -1.0]
    assert nbs.streams["lm"].tolist() == [-1.0, -9.0, -1.0, -1.0, -4.0]
    assert nbs.refs == {"t1": "a b c", "t10": "p q", "t2": "x y"}
    assert nbs.meta["streams"]["rank"]["better"] == "lower"
    # 1-best, C-sorted; Kaldi compute-wer lines; per_utt
    assert (out / "test" / "text").read_text() == "t1 a b c\nt10 p\nt2 x y\n"
    assert (out / "test" / "scoring" / "wer").read_text().splitlines() == [
        "%WER 14.29 [ 1 / 7, 0 ins, 1 del, 0 sub ]", "%SER 33.33 [ 1 / 3 ]", "Scored 3 sentences, 0 not present in hyp."]
    per_utt = (out / "test" / "scoring" / "per_utt").read_text().splitlines()
    assert per_utt[4:8] == ["t10 ref  p   q ", "t10 hyp  p  ***", "t10 op   C   D ", "t10 #csid 1 0 0 1"]
    assert [line.split(" ", 2)[1] for line in per_utt] == ["ref", "hyp", "op", "#csid"] * 3
    # summary.json
    s = json.loads((out / "test" / "scoring" / "summary.json").read_text())
    assert {"set", "role", "system", "metric", "first_pass_wer", "rescored_wer", "oracle_wer", "relative_change",
            "ci95", "bootstrap", "weights", "details", "utts_without_streams"} <= set(s)
    assert (s["first_pass_wer"], s["rescored_wer"], s["oracle_wer"]) == (42.8571, 14.2857, 14.2857)
    assert s["relative_change"] == pytest.approx(-66.6667) and s["role"] == "eval" and s["metric"] == "wer"
    lo, hi = s["ci95"]
    assert lo <= -28.5714 <= hi <= 0
    assert s["bootstrap"]["replicates"] == 200 and s["weights"]["streams"] == {"lm": 1.0}
    # RESULTS.md: one row per eval set, and the sign convention said
    md = (out / "RESULTS.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| test ")]
    assert rows == [f"| test | lm | WER | lm=1, wip=0 | 42.86 | 14.29 | 14.29 | -66.7% | [{lo:.2f}, {hi:.2f}] |"]
    assert "opposite sign of Kaldi's word-insertion penalty" in md and "| dev " not in md
    # skipped when done; recomputed with --overwrite true
    caplog.clear()
    assert run(dev, test, stream, out, "--tune", "none") == 0
    assert "skip" in caplog.text
    assert run(dev, test, stream, out, "--tune", "none", "--overwrite", "true") == 0
    assert (out / ".done").is_file() and "rescore.bin.rescore" in (out / "run.yaml").read_text()


def test_weights_file_is_applied_without_tuning(sets, tmp_path):
    dev, test, stream = sets
    wfile = write(tmp_path / "w.yaml", "streams: {lm: 2.0}\nwip: 0.5\nacwt: null\n")
    out = tmp_path / "exp"
    assert run(dev, test, stream, out, "--weights", str(wfile)) == 0
    w = yaml.safe_load((out / "weights.yaml").read_text())
    assert (w["streams"], w["wip"], w["kaldi_wip"]) == ({"lm": 2.0}, 0.5, -0.5)
    nbs = load_set(out / "test")
    words = nbs.texts.num_tokens()
    assert np.allclose(nbs.streams["score"], nbs.streams["first_pass"] + 2.0 * nbs.streams["lm"] + 0.5 * words)
    # the written weights.yaml is itself a valid --weights file
    out2 = tmp_path / "exp2"
    assert run(dev, test, stream, out2, "--weights", str(out / "weights.yaml")) == 0
    assert yaml.safe_load((out2 / "weights.yaml").read_text())["streams"] == {"lm": 2.0}


def test_word_bonus_counts_the_scoring_units_of_each_set(tmp_path):
    """Kaldi CSJ text (+POS tags, <sp>) scored by CER after csj,bracket, as recorded in meta.yaml: the
    bonus counts characters, never <sp>; ESPnet CSJ text (no spaces) gets the same counts."""
    kaldi = {"a": [("本日+名詞 <sp> は+助詞", -1.0), ("本日+名詞 <sp> <sp> <sp> は+助詞 が+助詞", -1.0)],
             "b": [("音声+名詞 <sp>", -1.0), ("音声+名詞 認識+名詞", -1.0)]}
    espnet = {u: [(t.replace(" <sp>", "").replace(" ", "").replace("+名詞", "").replace("+助詞", ""), sc)
                  for t, sc in hyps] for u, hyps in kaldi.items()}
    refs = {"a": "本日+名詞 は+助詞", "b": "音声+名詞 認識+名詞"}
    meta = "language: ja\nmetric: cer\nnormalization: csj,bracket\n"
    wfile = write(tmp_path / "w.yaml", "streams: {lm: 1.0}\nwip: 0.5\nacwt: null\n")
    units = []
    for name, nbest in (("kaldi", kaldi), ("espnet", espnet)):
        d = make_setdir(tmp_path / name, nbest, {u: r.replace("+名詞", "").replace("+助詞", "").replace(" ", "")
                                                 if name == "espnet" else r for u, r in refs.items()})
        write(d / "nbest" / "meta.yaml", meta)
        write_stream(tmp_path / "streams" / name / "lm", {f"{u}-{k}": 0.0 for u in nbest for k in (1, 2)})
        out = tmp_path / f"exp_{name}"
        assert rescore.main(["--dev", str(d), "--stream", f"lm={tmp_path}/streams/{{set}}/lm", "--out", str(out),
                             "--weights", str(wfile), "--bootstrap", "0"]) == 0
        nbs = load_set(out / name)
        units.append((nbs.streams["score"] - nbs.streams["first_pass"]) / 0.5)
        # the unit bonus prefers the longer hypothesis, whatever its number of <sp>
        assert (out / name / "text").read_text().split("\n")[:2] == [f"a {nbest['a'][1][0]}", f"b {nbest['b'][1][0]}"]
        s = json.loads((out / name / "scoring" / "summary.json").read_text())
        assert s["metric"] == "cer" and s["normalization"] == "csj,bracket" and "num_units" in s["formula"]
    # new-score order: the 4-character hypothesis first, then the 3- and 2-character ones
    assert units[0].tolist() == units[1].tolist() == [4.0, 3.0, 4.0, 2.0]


def test_utterance_without_stream_values_keeps_first_pass_order(sets, tmp_path):
    dev, test, stream = sets
    write_stream(tmp_path / "streams" / "test" / "lm", {"t1-1": -9.0, "t1-2": -1.0, "t10-1": -1.0,
                                                        "t2-1": "BadNumber", "t2-2": "BadNumber"})
    out = tmp_path / "exp"
    assert run(dev, test, stream, out, "--tune", "none") == 0
    assert (out / "test" / "text").read_text() == "t1 a b c\nt10 p\nt2 x z\n"  # t2: first pass picks x z
    s = json.loads((out / "test" / "scoring" / "summary.json").read_text())
    assert s["utts_without_streams"] == {"count": 1, "utts": ["t2"]}
    lines = (out / "test" / "nbest" / "lm").read_text().splitlines()
    assert "t2-2 BadNumber" in lines and len(lines) == 5  # kept, never dropped


def synth(root: Path, name: str, seed: int, n_utts: int, kaldi: bool = False, n: int = 8) -> Path:
    """References of random words; hypothesis k has e_k substitutions by unseen words (e_k errors).

    First pass: weakly informative (or, Kaldi-style, -(graph + 1.0 * ac) with an acoustic cost on a
    large scale); stream ``lm`` = 1000 x first-pass scale x (-errors + noise).
    """
    rng = np.random.default_rng(seed)
    nbest, refs, lm, ac, graph = {}, {}, {}, {}, {}
    for u in range(n_utts):
        utt = f"{name}-u{u:04d}"
        ref = [f"w{i}" for i in rng.integers(0, 50, size=rng.integers(3, 9))]
        refs[utt] = " ".join(ref)
        hyps = []
        for k in range(1, n + 1):
            e = int(rng.integers(0, min(4, len(ref)) + 1))
            words = list(ref)
            for p in rng.choice(len(ref), size=e, replace=False):
                words[p] = f"x{rng.integers(1000)}"
            key = f"{utt}-{k}"
            if kaldi:
                graph[key] = 0.5 * e + rng.normal()
                ac[key] = 1000.0 + 20.0 * rng.normal() + 4.0 * e
                score = -(graph[key] + 1.0 * ac[key])
            else:
                score = rng.normal() - 0.05 * e
            hyps.append((" ".join(words), score))
            lm[key] = 1000.0 * (-e + rng.normal(scale=0.7))
        nbest[utt] = hyps
    write_stream(root / "streams" / name / "lm", lm)
    return make_setdir(root / name, nbest, refs, {"ac_cost": ac, "graph_cost": graph} if kaldi else None)


def test_acceptance_near_oracle_stream_recovers_most_of_the_gap(tmp_path):
    dev, test = synth(tmp_path, "dev", 1, 300), synth(tmp_path, "test", 2, 300)
    out = tmp_path / "exp"
    assert run(dev, test, f"lm={tmp_path}/streams/{{set}}/lm", out) == 0
    s = json.loads((out / "test" / "scoring" / "summary.json").read_text())
    first, new, oracle = s["first_pass_wer"], s["rescored_wer"], s["oracle_wer"]
    assert first - new > 0.7 * (first - oracle)
    assert s["weights"]["streams"]["lm"] > 0 and s["ci95"][1] < 0
    w = yaml.safe_load((out / "weights.yaml").read_text())
    assert w["tuned"] == ["streams", "wip"] and w["dev"] == "dev" and w["acwt"] is None


def test_kaldi_sets_tune_the_acoustic_scale(tmp_path):
    dev, test = synth(tmp_path, "dev", 3, 150, kaldi=True), synth(tmp_path, "test", 4, 150, kaldi=True)
    out = tmp_path / "exp"
    assert run(dev, test, f"lm={tmp_path}/streams/{{set}}/lm", out) == 0
    w = yaml.safe_load((out / "weights.yaml").read_text())
    assert w["tuned"] == ["streams", "wip", "acwt"] and 0 < w["acwt"] < 1.0 and w["lmwt"] == pytest.approx(1 / w["acwt"])
    assert w["first_pass"]["acwt"] > 0
    assert (out / "dev_acwt.png").is_file()
    s = json.loads((out / "test" / "scoring" / "summary.json").read_text())
    # the first-pass row is at the tuned acoustic scale, better than the imported acwt = 1
    assert s["first_pass_wer"] < s["input_first_pass_wer"]
    assert s["rescored_wer"] < s["first_pass_wer"]
    nbs = load_set(out / "test")
    assert {"ac_cost", "graph_cost"} <= set(nbs.streams) and nbs.meta["acoustic_scale"] == w["acwt"]
    words = nbs.texts.num_tokens()
    fp = -(nbs.streams["graph_cost"] + w["acwt"] * nbs.streams["ac_cost"])
    assert np.allclose(nbs.streams["score"], fp + w["streams"]["lm"] * nbs.streams["lm"] + w["wip"] * words)


@pytest.mark.parametrize("case", ["missing_key", "dev_without_refs", "weights_mismatch", "empty_set",
                                  "no_set_placeholder", "acwt_without_costs", "missing_archive"])
def test_bad_input_fails_before_any_work(sets, tmp_path, capsys, case):
    dev, test, stream = sets
    extra: list[str] = []
    expect = ""
    if case == "missing_key":
        p = write_stream(tmp_path / "streams" / "test" / "lm", {"t1-1": -9.0, "t1-2": -1.0, "t10-1": -1.0,
                                                                "t2-1": -1.0})
        expect = f"{p}: 1 key(s) of nbest/text missing: t2-2"
    elif case == "dev_without_refs":
        (dev / "text").unlink()
        expect = "dev set has no references"
    elif case == "weights_mismatch":
        extra = ["--weights", str(write(tmp_path / "w.yaml", "streams: {pll: 1.0}\n"))]
        expect = "weights do not match the streams"
    elif case == "empty_set":
        write(test / "nbest" / "text", "")
        write(test / "nbest" / "score", "")
        write(tmp_path / "streams" / "test" / "lm", "")
        expect = "the set is empty"
    elif case == "no_set_placeholder":
        stream = f"lm={tmp_path}/streams/dev/lm"
        expect = "PATH needs {set}"
    elif case == "acwt_without_costs":
        extra = ["--tune", "streams+acwt"]
        expect = "ac_cost and graph_cost"
    elif case == "missing_archive":
        (tmp_path / "streams" / "test" / "lm").unlink()
        expect = f"{tmp_path}/streams/test/lm: missing archive of stream lm for set test"
    out = tmp_path / "exp"
    assert run(dev, test, stream, out, *extra) == 1
    assert expect in capsys.readouterr().err
    assert not out.exists()


def test_cer_scores_and_labels_character_error_rates(sets, tmp_path):
    dev, test, stream = sets
    out = tmp_path / "exp"
    assert run(dev, test, stream, out, "--tune", "none", "--cer") == 0
    s = json.loads((out / "test" / "scoring" / "summary.json").read_text())
    # references a b c / p q / x y = 7 characters; rescored misses q
    assert s["metric"] == "cer" and s["rescored_cer"] == 14.2857 and "rescored_wer" not in s
    assert (out / "test" / "scoring" / "wer").read_text().startswith("%WER 14.29 [ 1 / 7,")  # Kaldi labels it %WER
    assert "| test | lm | CER |" in (out / "RESULTS.md").read_text()


def test_outputs_of_the_nested_layout_are_redone_flat(sets, tmp_path, monkeypatch, caplog):
    """Before, the rescored set was EXPDIR/<set>/nbest/{text (refs), nbest/...}: a rerun redoes it."""
    dev, test, stream = sets
    out = tmp_path / "exp"
    monkeypatch.setattr(rescore, "OUTPUT_LAYOUT", 1)
    assert run(dev, test, stream, out) == 0
    old = out / "test" / "nbest" / "nbest"
    old.mkdir()
    write(old / "text", "t1-1 a b\n")
    monkeypatch.setattr(rescore, "OUTPUT_LAYOUT", 2)
    caplog.clear()
    assert run(dev, test, stream, out) == 0
    assert "skip" not in caplog.text and not old.exists()  # the layout is part of the fingerprint
    assert load_set(out / "test").num_hyps == load_set(test).num_hyps
    assert run(dev, test, stream, out) == 0 and "skip" in caplog.text
