"""``compute_wer`` byte for byte against Kaldi's ``compute-wer``, ``compare_wer`` against
``compute-wer-bootci``, on hard cases: alignment ties, empty references and hypotheses, missing
utterances, bracketed tokens, U+3000, tabs, repeated keys, and 10,000 random tie-heavy utterances.

CER: Kaldi computes it with ``compute-wer`` on text split into characters by
``steps/score_kaldi_cer.sh`` (a token containing ``[...]``, ``<...>`` or ``!SIL`` stays whole;
perl's whitespace split, which includes U+3000); ``compute_wer --cer`` must print the same lines
on the unsplit text.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rescore.bin import compare_wer

HARD_REF = [
    "tie1 a b", "tie2 a a b", "tie3 a b c d", "tie4 x y x y", "empty_ref", "empty_both", "missing_hyp a b c",
    "brackets [noise] hello <unk> world !SIL", "glued [laughter]-yes a[b]c <s>x</s> !SILENCE",
    "ideo 今日は\u3000良い 天気", "tabs\ta\tb  c", "dup a b c", "dup2 one two", "dup x y", "caps The CAT",
]
HARD_HYP = [
    "tie1 b a", "tie2 a b b", "tie3 d c b a", "tie4 y x y x", "empty_ref x y", "empty_both",
    "brackets hello [noise] world", "glued [laughter] yes abc <s>x</s> !SIL", "ideo 今日は 良い\u3000天気",
    "tabs a\tb\tc", "dup a b", "dup2 one", "caps the cat", "extra_hyp not in ref",
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    return path


def ours(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rescore.bin.compute_wer", "--verbose", "0", *args],
                          capture_output=True)


def kaldi_chars(kaldi, path: Path, out: Path) -> Path:
    """The text split into characters the way score_kaldi_cer.sh splits it."""
    split = r'print join(" ", $F[0], map { /\[.*\]|<.*>|!SIL/ ? $_ : split(//) } @F[1..$#F])'
    out.write_bytes(subprocess.run(["perl", "-CSDA", "-lane", split], input=path.read_bytes(),
                                   capture_output=True, check=True).stdout)
    return out


def random_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Tie-heavy utterances: three words, lengths 0-8, some hypotheses missing, some extra."""
    r = random.Random(seed)
    refs, hyps = [], []
    for i in range(n):
        ref = " ".join(r.choice("abc") for _ in range(r.randrange(9)))
        hyp = " ".join(r.choice("abc") for _ in range(r.randrange(9)))
        refs.append(f"u{i:05d} {ref}".rstrip())
        if r.random() > 0.03:
            hyps.append(f"u{i:05d} {hyp}".rstrip())
    hyps += [f"x{i} a b" for i in range(5)]
    r.shuffle(hyps)
    return refs, hyps


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("wer")
    big_ref, big_hyp = random_corpus(10000, 7)
    return {"hard": (write(d / "hard.ref", HARD_REF), write(d / "hard.hyp", HARD_HYP)),
            "random": (write(d / "big.ref", big_ref), write(d / "big.hyp", big_hyp)),
            "complete": (write(d / "c.ref", HARD_REF[:4]), write(d / "c.hyp", HARD_HYP[:4]))}


@pytest.mark.parametrize("mode", ["present", "all", "strict"])
@pytest.mark.parametrize("corpus", ["hard", "random", "complete"])
def test_compute_wer_byte_identical(kaldi, corpora, corpus, mode):
    ref, hyp = corpora[corpus]
    k = kaldi.run("compute-wer", f"--mode={mode}", f"ark:{ref}", f"ark:{hyp}")
    o = ours(f"--mode={mode}", f"ark:{ref}", f"ark:{hyp}")
    if mode == "strict" and corpus != "complete":  # references without hypothesis: both refuse
        assert k.returncode != 0 and o.returncode != 0 and b"no hypothesis for key" in o.stderr.lower()
        return
    assert k.returncode == 0 and o.returncode == 0, o.stderr.decode()
    assert o.stdout == k.stdout


@pytest.mark.parametrize("mode", ["present", "all"])
@pytest.mark.parametrize("corpus", ["hard", "random"])
def test_cer_byte_identical(kaldi, corpora, tmp_path, corpus, mode):
    ref, hyp = corpora[corpus]
    kref, khyp = kaldi_chars(kaldi, ref, tmp_path / "ref.chars"), kaldi_chars(kaldi, hyp, tmp_path / "hyp.chars")
    k = kaldi("compute-wer", f"--mode={mode}", f"ark:{kref}", f"ark:{khyp}")
    o = ours("--cer", f"--mode={mode}", str(ref), str(hyp))
    assert o.returncode == 0, o.stderr.decode()
    assert o.stdout == k


def test_repeated_hypothesis_key_refused_by_both(kaldi, corpora, tmp_path):
    ref, _ = corpora["hard"]
    hyp = write(tmp_path / "hyp", ["tie1 a b", "tie1 b a", "tie2 a", "caps x"])
    k = kaldi.run("compute-wer", "--mode=present", f"ark:{ref}", f"ark:{hyp}")
    assert k.returncode != 0 and b"duplicate key tie1" in k.stderr
    o = ours(str(ref), str(hyp))
    assert o.returncode == 1 and f"{hyp}:2: duplicate key 'tie1'".encode() in o.stderr


def test_edge_values_printed_as_kaldi(kaldi, tmp_path):
    # 0 / 0 -> -nan, n / 0 -> inf, and a rate whose last digit depends on single precision
    cases = [(["u1"], ["u1"]), (["u1"], ["u1 a"]), (["u1 a b c"], ["u2 a"]),
             ([f"u{i} a a a" for i in range(7)], ["u0 b a a"] + [f"u{i} a a a" for i in range(1, 7)])]
    for n in (3, 7, 9, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 49, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97):
        cases.append(([f"u{i} " + " ".join("a" * n) for i in range(1)] + [f"v{i} a" for i in range(2 * n + 1)],
                      ["u0 " + " ".join("b" * n)] + [f"v{i} b" for i in range(n)]))
    for errs, words in ((3562, 3977), (2496, 4019), (4096, 4873)):  # the double-precision rate rounds otherwise
        cases.append(([f"u{i} a" for i in range(words)], [f"u{i} {'b' if i < errs else 'a'}" for i in range(words)]))
    for refs, hyps in cases:
        ref, hyp = write(tmp_path / "r", refs), write(tmp_path / "h", hyps)
        assert ours(str(ref), str(hyp)).stdout == kaldi("compute-wer", "--mode=present", f"ark:{ref}", f"ark:{hyp}")


def test_rspecifier_forms_as_kaldi(kaldi, corpora, tmp_path):
    ref, hyp = corpora["hard"]
    gz = tmp_path / "hyp.gz"
    subprocess.run(f"gzip -c {hyp} > {gz}", shell=True, check=True)
    want = kaldi("compute-wer", "--mode=present", f"ark,s,cs:{ref}", f"ark:gunzip -c {gz} |")
    assert ours(f"ark,s,cs:{ref}", f"ark:gunzip -c {gz} |").stdout == want
    p = subprocess.run([sys.executable, "-m", "rescore.bin.compute_wer", "--verbose", "0", f"ark,t:{ref}", "ark:-"],
                       input=hyp.read_bytes(), capture_output=True)
    assert p.stdout == want


def test_compare_wer_agrees_with_compute_wer_bootci(kaldi, tmp_path, capsys):
    # two close systems on 3,000 utterances, so that P(improvement) is far from 0 and 1
    r = random.Random(3)
    refs, h1, h2 = [], [], []
    for i in range(3000):
        words = [r.choice("abcdefgh") for _ in range(r.randrange(3, 12))]
        one = [w if r.random() > 0.2 else r.choice("abcdefgh") for w in words]
        two = [w if r.random() > 0.197 else r.choice("abcdefgh") for w in words]
        refs.append(f"u{i} {' '.join(words)}")
        h1.append(f"u{i} {' '.join(one)}")
        h2.append(f"u{i} {' '.join(two)}")
    ref, f1, f2 = write(tmp_path / "ref", refs), write(tmp_path / "h1", h1), write(tmp_path / "h2", h2)
    lines = kaldi("compute-wer-bootci", "--mode=present", f"ark:{ref}", f"ark:{f1}", f"ark:{f2}").decode().splitlines()
    # "Set1: %WER <bootstrap mean> 95% Conf Interval [ lo, hi ]" per system (mean +- 1.96 sd), then
    # "Probability of Set2 improving Set1: <percent of replicates with fewer errors>"
    sets = [ln for ln in lines if ln.startswith("Set")]
    assert len(sets) == 2 and lines[-1].startswith("Probability of Set2 improving Set1:"), lines
    k_mean = [float(s.split("%WER")[1].split()[0]) for s in sets]
    k_ci = [[float(x) for x in s.split("[")[1].split("]")[0].split(",")] for s in sets]
    k_prob = float(lines[-1].split()[-1]) / 100.0
    assert compare_wer.main(["--json", "--replicates", "10000", str(ref), str(f1), str(f2)]) == 0
    res = json.loads(capsys.readouterr().out)
    for name, f, mean, (lo, hi) in (("hyp1", f1, k_mean[0], k_ci[0]), ("hyp2", f2, k_mean[1], k_ci[1])):
        point = kaldi("compute-wer", "--mode=present", f"ark:{ref}", f"ark:{f}").decode().split()[1]
        assert f"{res[name]['rate']:.2f}" == point  # the same WER as compute-wer
        assert abs(res[name]["rate"] - mean) < 0.1  # Kaldi prints the bootstrap mean: the same within noise
        ours_lo, ours_hi = res[f"{name}_ci"]  # percentile interval vs Kaldi's normal one: within noise
        assert abs(ours_lo - lo) < 0.15 and abs(ours_hi - hi) < 0.15, (name, res[f"{name}_ci"], lo, hi)
    assert 0.05 < k_prob < 0.95, k_prob
    assert abs(res["p_hyp2_better"] - k_prob) < 0.04, (res["p_hyp2_better"], k_prob)
