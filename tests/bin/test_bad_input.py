"""Every CLI over every class of bad input: a one-line ``<step>: error: ...``, a non-zero exit code,
no traceback, and nothing written (no output directory, inputs untouched).

The table is the product of the CLIs and the classes that apply to each: missing inputs, inputs of
the wrong kind (a directory for a file, a file for a directory), broken dataset directories
(truncated, CRLF, invalid UTF-8, BOM, duplicate keys, rank gaps, missing or extra stream keys,
NaN spellings in scores, empty sets, 100k-character lines, a meta.yaml with invalid UTF-8 or of the
wrong shape), bad configs (missing, a directory, unparsable, wrong shape, unknown key, bad value),
models that are not models, unknown devices, option values out of range, outputs that are
existing files, and wrong formats. Each case runs ``main(argv)`` in this process: an exception
other than ``SystemExit`` fails the test with its traceback (a bug, not a message).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import pytest

from tests.conftest import make_setdir, write

UTTS = {
    "spk1-u1": [("the cat sat", -10.0), ("the cat sat on", -9.0), ("a cat sat", -12.5)],
    "spk2-u2": [("hello world", -3.0), ("hello word", -4.0)],
}
REFS = {"spk1-u1": "the cat sat", "spk2-u2": "hello world"}
KEYS = [f"{u}-{k}" for u, hyps in UTTS.items() for k in range(1, len(hyps) + 1)]


class World:
    """Valid inputs of every kind, and broken ones, under one root."""

    def __init__(self, root: Path):
        from rescore.models import RescoreBert
        from tests.models.test_pll import bert_tokenizer, tiny_bert
        from tests.models.test_student import tiny_encoder, visible

        self.root = root
        self.set = make_setdir(root / "sets" / "dev", UTTS, refs=REFS)
        self.pll = write(root / "scores" / "dev" / "pll", "".join(f"{k} {-1.5 * i}\n" for i, k in enumerate(KEYS)))
        self.stream = f"pll={root}/scores/{{set}}/pll"
        self.ref = write(root / "ref.txt", "".join(f"{u} {t}\n" for u, t in REFS.items()))
        self.hyp = write(root / "hyp.txt", "spk1-u1 the cat\nspk2-u2 hello world\n")
        self.corpus = write(root / "corpus.txt", "the cat sat\nhello world\n" * 10)
        self.mlm = root / "models" / "mlm"
        self.mlm.mkdir(parents=True)
        tok = bert_tokenizer(self.mlm)
        tiny_bert(len(tok)).save_pretrained(self.mlm)
        tok.save_pretrained(self.mlm)
        self.student = root / "models" / "student"
        visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8)).save_pretrained(self.student)
        self.missing = root / "no_such_path"
        self.adir = root / "a_directory"
        self.adir.mkdir()
        self.afile = write(root / "a_file.txt", "hello\n")
        self.badutf8 = write(root / "bad_utf8.txt", b"spk1-u1 the \xff\xfe cat\n", "wb")
        self.bom = write(root / "bom.txt", b"\xef\xbb\xbfspk1-u1 the cat sat\nspk2-u2 hello world\n", "wb")
        self.crlf = write(root / "crlf.txt", b"spk1-u1 the cat sat\r\nspk2-u2 hello world\r\n", "wb")
        self.empty = write(root / "empty.txt", "")
        self.notmodel = write(root / "models" / "junk" / "config.json", "{not json")
        self.notmodel = self.notmodel.parent
        self.configs = {
            "missing": root / "no_such.yaml",
            "directory": self.adir,
            "unparsable": write(root / "conf" / "unparsable.yaml", "lr: [1, 2\n"),
            "wrong-shape": write(root / "conf" / "list.yaml", "- 1\n- 2\n"),
            "unknown-key": write(root / "conf" / "unknown.yaml", "no_such_key: 1\n"),
            "bad-value": write(root / "conf" / "bad_value.yaml", "lr: fast\n"),
            "invalid-utf8": write(root / "conf" / "utf8.yaml", b"lr: \xff\n", "wb"),
        }
        self.bad_sets = {name: self._bad_set(name) for name in BAD_SETS}

    def _bad_set(self, name: str) -> Path:
        d = make_setdir(self.root / "bad_sets" / name, UTTS, refs=REFS)
        text, score = d / "nbest" / "text", d / "nbest" / "score"
        raw = text.read_bytes()
        if name == "truncated":
            text.write_bytes(raw[: len(raw) // 2])
        elif name == "crlf":
            text.write_bytes(raw.replace(b"\n", b"\r\n"))
        elif name == "invalid-utf8":
            text.write_bytes(raw.replace(b"cat sat on", b"cat \xff\xfe on"))
        elif name == "bom":
            text.write_bytes(b"\xef\xbb\xbf" + raw)
        elif name == "duplicate-key":
            text.write_bytes(raw + b"spk2-u2-2 hello again\n")
        elif name == "rank-gap":
            text.write_bytes(raw.replace(b"spk1-u1-3 ", b"spk1-u1-4 "))
            score.write_bytes(score.read_bytes().replace(b"spk1-u1-3 ", b"spk1-u1-4 "))
        elif name == "missing-score-key":
            score.write_bytes(b"".join(score.read_bytes().splitlines(True)[:-1]))
        elif name == "extra-score-key":
            score.write_bytes(score.read_bytes() + b"spk9-u9-1 -1.0\n")
        elif name == "bad-score":
            score.write_bytes(score.read_bytes().replace(b"-3.0", b"minus-three"))
        elif name == "empty":
            text.write_bytes(b"")
            score.write_bytes(b"")
        elif name == "long-line":
            text.write_bytes(raw.replace(b"hello word", b"hello " + b"x" * 100_000))
        elif name == "meta-invalid-utf8":
            write(d / "nbest" / "meta.yaml", b"language: \xff\xfe\n", "wb")
        elif name == "meta-wrong-shape":
            write(d / "nbest" / "meta.yaml", "- a\n- b\n")
        elif name == "no-nbest":
            text.unlink()
        else:
            raise AssertionError(name)
        return d


BAD_SETS = ["truncated", "crlf", "invalid-utf8", "bom", "duplicate-key", "rank-gap", "missing-score-key",
            "extra-score-key", "bad-score", "empty", "meta-invalid-utf8", "meta-wrong-shape",
            "no-nbest"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("world"))


def tree(root: Path) -> str:
    """Names, kinds and contents of everything under ``root``."""
    h = hashlib.blake2b(digest_size=16)
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode() + (b"/" if p.is_dir() else b""))
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- the valid command line of each step; a case changes one thing ---------------------------------

def _opts(argv: list[str], **changes) -> list[str]:
    """``argv`` with each ``--name`` of ``changes`` set to its value (appended when absent)."""
    argv = list(argv)
    for name, value in changes.items():
        flag = f"--{name}"
        if flag in argv:
            argv[argv.index(flag) + 1] = str(value)
        else:
            argv[:0] = [flag, str(value)]
    return argv


def base(step: str, w: World, out: Path) -> list[str]:
    cpu = ["--device", "cpu", "--num_threads", "1"]
    return {
        "validate": [str(w.set)],
        "nbest_stats": [str(w.set)],
        "split_nbest": [str(w.set), "2"],
        "merge_scores": ["--name", "pll", "--nj", "2", str(w.set), str(out)],
        "compute_wer": [str(w.ref), str(w.hyp)],
        "compare_wer": ["--replicates", "10", str(w.ref), str(w.hyp), str(w.hyp)],
        "import_nbest": ["--format", "setdir", str(w.set), str(out)],
        "export_nbest": ["--format", "kaldi-nbest", str(w.set), str(out)],
        "score_pll": ["--model", str(w.mlm), *cpu, str(w.set), str(out)],
        "score_student": ["--model", str(w.student), *cpu, str(w.set), str(out)],
        "score_clm": ["--model", str(w.mlm), *cpu, str(w.set), str(out)],
        "rescore": ["--dev", str(w.set), "--stream", w.stream, "--out", str(out), "--bootstrap", "10"],
        "train_mlm": ["--init", str(w.mlm), "--text", str(w.corpus), "--out", str(out), "device=cpu", "max_steps=1"],
        "train_clm": ["--text", str(w.corpus), "--out", str(out), "device=cpu", "epochs=1"],
        "train_student": ["--config", "conf/md.yaml", "--train_set", str(w.set), "--train_scores",
                          str(w.pll.parent), "--dev_set", str(w.set), "--dev_scores", str(w.pll.parent),
                          "--init", str(w.student), "--out", str(out), "device=cpu", "epochs=1"],
        "truncate_encoder": ["--num_layers", "1", str(w.mlm), str(out)],
        "export_rescorer": ["--student", str(w.student), "--weights", str(w.afile), "--out", str(out)],
        "serve": ["--bundle", str(w.adir), "--port", "0"],
        "gather_results": ["--system", f"md={w.root}/exp", str(w.afile)],
    }[step]


def replace(argv: list[str], old: str, new) -> list[str]:
    assert old in argv, (old, argv)
    return [str(new) if a == old else a for a in argv]


SET_STEPS = ["validate", "nbest_stats", "split_nbest", "export_nbest", "score_pll", "score_student", "score_clm",
             "rescore"]
SCORE_STEPS = ["score_pll", "score_student", "score_clm"]
MODEL_OPT = {"score_pll": "model", "score_student": "model", "score_clm": "model", "train_mlm": "init",
             "train_student": "init", "export_rescorer": "student"}
OUT_STEPS = ["import_nbest", "export_nbest", "score_pll", "score_student", "score_clm", "rescore", "train_mlm",
             "train_clm", "train_student", "truncate_encoder", "merge_scores", "export_rescorer"]
CONFIG_STEPS = ["train_mlm", "train_clm", "train_student"]


def cases():
    """(id, step, build(world, out) -> argv)."""
    out = []

    def add(step, label, build):
        out.append(pytest.param(step, build, id=f"{step}:{label}"))

    for step in SET_STEPS:
        for bad in BAD_SETS:
            if step in ("validate", "nbest_stats", "split_nbest", "export_nbest") or bad not in (
                    "missing-score-key", "extra-score-key", "bad-score"):
                add(step, f"set-{bad}", lambda w, o, s=step, b=bad: replace(base(s, w, o), str(w.set), w.bad_sets[b]))
        for kind in ("missing", "afile"):
            add(step, f"setdir-{kind}", lambda w, o, s=step, k=kind: replace(base(s, w, o), str(w.set), getattr(w, k)))
    for step in ("train_student",):
        for bad in ("invalid-utf8", "duplicate-key", "empty", "no-nbest", "meta-wrong-shape"):
            add(step, f"set-{bad}", lambda w, o, b=bad: replace(base("train_student", w, o), str(w.set), w.bad_sets[b]))
        add(step, "scores-missing", lambda w, o: replace(base("train_student", w, o), str(w.pll.parent), w.missing))
        add(step, "scores-a-file", lambda w, o: replace(base("train_student", w, o), str(w.pll.parent), w.afile))
    for step, opt in MODEL_OPT.items():
        for kind in ("missing", "adir", "afile", "notmodel"):
            add(step, f"{opt}-{kind}", lambda w, o, s=step, op=opt, k=kind: _opts(base(s, w, o), **{op: getattr(w, k)}))
    for step in SCORE_STEPS:
        for dev in ("gpu", "cuda:x", "tpu:0"):
            add(step, f"device-{dev}", lambda w, o, s=step, d=dev: _opts(base(s, w, o), device=d))
        for name, value in (("num_threads", -1), ("batch_tokens", 0), ("batch_tokens", -5), ("num_threads", "x")):
            add(step, f"{name}={value}", lambda w, o, s=step, n=name, v=value: _opts(base(s, w, o), **{n: v}))
    add("score_clm", "window_stride=0", lambda w, o: _opts(base("score_clm", w, o), window_stride=0))
    for step in ("train_mlm", "train_clm", "train_student"):
        add(step, "device-gpu9", lambda w, o, s=step: [a if a != "device=cpu" else "device=gpu9" for a in base(s, w, o)])
        add(step, "override-unknown", lambda w, o, s=step: base(s, w, o) + ["no_such_key=1"])
        add(step, "override-bad-value", lambda w, o, s=step: base(s, w, o) + ["lr=fast"])
        add(step, "override-not-key-value", lambda w, o, s=step: base(s, w, o) + ["lr"])
        for label in ("missing", "directory", "unparsable", "wrong-shape", "unknown-key", "bad-value", "invalid-utf8"):
            add(step, f"config-{label}", lambda w, o, s=step, la=label: _opts(base(s, w, o), config=w.configs[la]))
    for step in ("train_mlm", "train_clm"):
        for kind in ("missing", "adir", "badutf8", "empty"):
            add(step, f"text-{kind}", lambda w, o, s=step, k=kind: _opts(base(s, w, o), text=getattr(w, k)))
            add(step, f"dev_text-{kind}", lambda w, o, s=step, k=kind: _opts(base(s, w, o), dev_text=getattr(w, k)))
    for step in OUT_STEPS:
        add(step, "out-is-a-file", lambda w, o, s=step: replace(base(s, w, o), str(o), w.afile))
    # import_nbest: sources and format options
    imp = "import_nbest"
    for kind in ("missing", "afile"):
        add(imp, f"src-{kind}", lambda w, o, k=kind: replace(base(imp, w, o), str(w.set), getattr(w, k)))
    for fmt in ("kaldi-nbest", "kaldi-lattice", "espnet", "mlm-json", "hypr", "nemo", "slf"):
        add(imp, f"wrong-format-{fmt}", lambda w, o, f=fmt: _opts(base(imp, w, o), format=f))
        add(imp, f"format-{fmt}-empty-dir", lambda w, o, f=fmt: replace(_opts(base(imp, w, o), format=f), str(w.set),
                                                                        w.adir))
    add(imp, "text-missing", lambda w, o: _opts(base(imp, w, o), text=w.missing))
    add(imp, "text-badutf8", lambda w, o: _opts(base(imp, w, o), text=w.badutf8))
    add(imp, "text-directory", lambda w, o: _opts(base(imp, w, o), text=w.adir))
    for fmt, name, value in (("kaldi-nbest", "acwt", -1), ("kaldi-nbest", "acwt", "nan"), ("kaldi-nbest", "acwt", 0),
                             ("kaldi-lattice", "nbest", 0), ("kaldi-lattice", "nbest", -3),
                             ("kaldi-lattice", "acwt", "inf"), ("nemo", "beam_size", 0), ("slf", "nbest", 0),
                             ("slf", "lmscale", "nan"), ("slf", "wdpenalty", "inf"), ("setdir", "acwt", 1)):
        add(imp, f"{fmt}-{name}={value}", lambda w, o, f=fmt, n=name, v=value: _opts(base(imp, w, o), format=f, **{n: v}))
    add(imp, "bad-norm", lambda w, o: _opts(base(imp, w, o), norm="no_such_flag"))
    add(imp, "src-is-out", lambda w, o: replace(base(imp, w, o), str(o), w.set))
    # export_nbest
    exp = "export_nbest"
    for name, value in (("nj", 0), ("nj", -1), ("acwt", -1), ("acwt", "nan")):
        add(exp, f"{name}={value}", lambda w, o, n=name, v=value: _opts(base(exp, w, o), **{n: v}))
    add(exp, "option-of-another-format", lambda w, o: _opts(base(exp, w, o), format="trn", nj=2))
    # split/merge
    for value in ("0", "-1", "x"):
        add("split_nbest", f"nj={value}", lambda w, o, v=value: replace(base("split_nbest", w, o), "2", v))
    for name, value in (("nj", 0), ("nj", -2), ("name", "../x"), ("name", "")):
        add("merge_scores", f"{name}={value!r}", lambda w, o, n=name, v=value: _opts(base("merge_scores", w, o),
                                                                                    **{n: v}))
    add("merge_scores", "parts-missing", lambda w, o: base("merge_scores", w, o))
    add("merge_scores", "setdir-missing", lambda w, o: replace(base("merge_scores", w, o), str(w.set), w.missing))
    # WER tools
    for step in ("compute_wer", "compare_wer"):
        for kind in ("missing", "adir", "badutf8"):
            add(step, f"ref-{kind}", lambda w, o, s=step, k=kind: replace(base(s, w, o), str(w.ref), getattr(w, k)))
            add(step, f"hyp-{kind}", lambda w, o, s=step, k=kind: [str(getattr(w, k)) if a == str(w.hyp) else a
                                                                  for a in base(s, w, o)])
        add(step, "bad-norm", lambda w, o, s=step: _opts(base(s, w, o), norm="no_such_flag"))
    for name, value in (("replicates", 0), ("replicates", -1), ("level", 1.5), ("level", 0), ("level", "nan")):
        add("compare_wer", f"{name}={value}", lambda w, o, n=name, v=value: _opts(base("compare_wer", w, o), **{n: v}))
    # compute_wer reads duplicate reference keys and an empty reference file as Kaldi's compute-wer does
    # (tests/conformance); compare_wer has no Kaldi twin and refuses both
    add("compare_wer", "ref-duplicate-key", lambda w, o: replace(base("compare_wer", w, o), str(w.ref), write(
        w.root / "dup_ref.txt", "spk1-u1 a\nspk1-u1 b\n")))
    add("compare_wer", "ref-empty", lambda w, o: replace(base("compare_wer", w, o), str(w.ref), w.empty))
    add("compute_wer", "bad-mode", lambda w, o: _opts(base("compute_wer", w, o), mode="sometimes"))
    # rescore
    rs = "rescore"
    for name, value in (("bootstrap", -1), ("seed", -1), ("tune", "everything"), ("norm", "no_such_flag")):
        add(rs, f"{name}={value}", lambda w, o, n=name, v=value: _opts(base(rs, w, o), **{n: v}))
    add(rs, "stream-no-label", lambda w, o: replace(base(rs, w, o), w.stream, f"{w.root}/scores/{{set}}/pll"))
    add(rs, "stream-missing", lambda w, o: replace(base(rs, w, o), w.stream, f"pll={w.root}/none/{{set}}/pll"))
    add(rs, "stream-a-directory", lambda w, o: replace(base(rs, w, o), w.stream, f"pll={w.root}/scores/{{set}}"))
    add(rs, "stream-badutf8", lambda w, o: replace(base(rs, w, o), w.stream, f"pll={w.badutf8}"))
    for label in ("missing", "directory", "unparsable", "wrong-shape", "invalid-utf8"):
        add(rs, f"weights-{label}", lambda w, o, la=label: _opts(base(rs, w, o), weights=w.configs[la]))
    add(rs, "eval-missing", lambda w, o: _opts(base(rs, w, o), eval=w.missing))
    add(rs, "dev-without-refs", lambda w, o: replace(base(rs, w, o), str(w.set), make_setdir(
        w.root / "sets" / "norefs", UTTS)))
    # truncate_encoder
    te = "truncate_encoder"
    for value in (0, -1, 99):
        add(te, f"num_layers={value}", lambda w, o, v=value: _opts(base(te, w, o), num_layers=v))
    for kind in ("missing", "afile", "notmodel"):
        add(te, f"src-{kind}", lambda w, o, k=kind: replace(base(te, w, o), str(w.mlm), getattr(w, k)))
    # export_rescorer
    er = "export_rescorer"
    for label in ("missing", "directory", "unparsable", "wrong-shape", "invalid-utf8"):
        add(er, f"weights-{label}", lambda w, o, la=label: _opts(base(er, w, o), weights=w.configs[la]))
    # serve
    for name, value in (("port", -1), ("port", 70000), ("max_wait_ms", -1), ("max_wait_ms", "nan"),
                        ("num_threads", -1), ("max_queue", 0)):
        add("serve", f"{name}={value}", lambda w, o, n=name, v=value: _opts(base("serve", w, o), **{n: v}))
    for kind in ("missing", "afile", "adir"):
        add("serve", f"bundle-{kind}", lambda w, o, k=kind: _opts(base("serve", w, o), bundle=getattr(w, k)))
    # gather_results
    gr = "gather_results"
    for kind in ("missing", "adir", "badutf8"):
        add(gr, f"results-{kind}", lambda w, o, k=kind: replace(base(gr, w, o), str(w.afile), getattr(w, k)))
    add(gr, "system-no-label", lambda w, o: _opts(base(gr, w, o), system=f"{w.root}/exp"))
    # options every step shares
    for step in sorted({*SET_STEPS, *OUT_STEPS, "compute_wer", "compare_wer", "serve", "gather_results"}):
        add(step, "verbose=x", lambda w, o, s=step: _opts(base(s, w, o), verbose="x"))
        add(step, "unknown-option", lambda w, o, s=step: base(s, w, o) + ["--no_such_option", "1"])
    return out


CASES = cases()
ERROR_LINE = re.compile(r"^(?P<prog>[a-z_]+): error: \S")


@pytest.mark.parametrize(("step", "build"), CASES)
def test_bad_input_is_a_one_line_error(world, step, build, capsys):
    out = world.root / "outs" / f"{step}-out"
    argv = build(world, out)
    before = tree(world.root)
    mod = importlib.import_module(f"rescore.bin.{step}")
    capsys.readouterr()
    try:
        code = mod.main(argv)
    except SystemExit as e:  # argparse (2), or a step's SystemExit(message)
        code = e.code
    err = capsys.readouterr().err
    if isinstance(code, str):  # SystemExit("message") prints the message and exits 1
        err, code = err + code + "\n", 1
    assert "Traceback" not in err, err
    assert code not in (0, None), f"accepted: {argv}\n{err}"
    lines = [ln for ln in err.splitlines() if ERROR_LINE.match(ln)]
    assert lines, f"no '{step}: error: ...' line in:\n{err}"
    assert ERROR_LINE.match(lines[-1])["prog"] == step, lines[-1]
    assert not out.exists(), f"{out} was created: {sorted(p.name for p in out.rglob('*'))}"
    assert tree(world.root) == before, "an input or another path changed"


def test_the_table_covers_every_step():
    steps = {p.stem for p in (Path(__file__).resolve().parents[2] / "rescore" / "bin").glob("*.py")} - {
        "__init__", "common"}
    covered = {p.values[0] for p in CASES}
    assert covered == steps, steps - covered
    assert len(CASES) >= 300, len(CASES)


def test_the_readme_states_the_table_as_it_is():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    m = re.search(r"(\d+) cases over all (\d+) steps", readme)
    assert m, "README: the Reliability paragraph lost its figures"
    assert (int(m[1]), int(m[2])) == (len(CASES), len({p.values[0] for p in CASES}))


@pytest.mark.parametrize(("argv", "code"), [(["split_nbest", "no_such_set", "0"], 2), (["validate", "no_such_set"], 1)])
def test_the_step_names_itself_when_run_as_a_module(argv, code, tmp_path):
    """``python -m rescore.bin.X``: the message says ``X: error:``, not ``X.py`` or ``__main__``."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", f"rescore.bin.{argv[0]}", *argv[1:]], capture_output=True, text=True,
                       cwd=tmp_path, env={**__import__("os").environ,
                                          "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert r.returncode == code, r.stderr
    assert r.stderr.splitlines()[-1].startswith(f"{argv[0]}: error: "), r.stderr
    assert "Traceback" not in r.stderr
