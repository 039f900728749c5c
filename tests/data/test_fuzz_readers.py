"""Fuzzed readers (issue 14): any input either parses, with counts in = counts out, or raises the
project's own :class:`InputError` / :class:`InvalidSetError`; never another exception, and never a hang.

Every n-best reader (``rescore.data.formats.<fmt>.read``), the dataset-directory loader and the Kaldi
text-archive readers of :mod:`rescore.data.archive` are fed (a) random bytes in place of their input
files and (b) mutations of a valid input: byte flips, truncation, inserted/deleted/duplicated/swapped
lines, tokens replaced by NaN/Infinity spellings, huge numbers, invalid UTF-8, JSON escapes or
brackets, CRLF line ends, a BOM, an empty or deleted file. When a mutated input parses, the set must
be internally consistent (:meth:`NbestSet.check`, unique keys, UTF-8 texts and ids) and hold as many
hypotheses as the input has hypothesis lines or records, where the format defines that count. The
unmutated valid inputs give exact counts.

Deterministic and bounded (``derandomize``, no example database, a fixed number of examples per
reader); each example runs under a wall-clock limit, so a reader that hangs fails instead of
stalling CI.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import re
import signal
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rescore.data import archive
from rescore.data.formats import espnet, hypr, kaldi_lattice, kaldi_nbest, mlm_json, nemo, setdir, slf, trn
from rescore.data.nbest import NbestBuilder, NbestSet, read_scores, save_set
from rescore.exceptions import InputError, InvalidSetError

INPUT_ERRORS = (InputError, InvalidSetError)
ASCII_WS = " \t\n\r\x0b\x0c"
TIME_LIMIT_S = 10  # per example; far above any real parse of these few-hundred-byte inputs
MEMORY_LIMIT = 3 << 30  # bytes of address space a reader may add while parsing one example


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


class _Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = TIME_LIMIT_S):
    def fire(*_):
        raise _Hang(f"the reader ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def memory_limit(extra: int = MEMORY_LIMIT):
    """Cap the address space at its current size + ``extra`` (Linux): a reader that allocates without
    bound (``set(range(huge))`` is one C call, which no alarm interrupts) fails with MemoryError
    instead of pushing the machine into its OOM killer."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
        old = resource.getrlimit(resource.RLIMIT_AS)
        cap = size + extra if old[1] == resource.RLIM_INFINITY else min(size + extra, old[1])
        resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def attempt(fn, *args, **kw) -> NbestSet | None:
    """``fn(*args, **kw)``, or None when it raised the project's input error; anything else propagates."""
    with time_limit(), memory_limit():
        try:
            return fn(*args, **kw)
        except INPUT_ERRORS as e:
            str(e)  # the message itself must be printable
            return None


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

#: Replacement tokens, by kind (each kind is drawn as often as the others)
NUMBERS = [b"nan", b"NaN", b"-nan", b"inf", b"-inf", b"+inf", b"Infinity", b"-Infinity", b"BadNumber", b"-BadNumber",
           b"1e309", b"-1e999", b"1e-400", b"0", b"-0", b"-1", b"00", b"01", b"1_0", b"0x1F", b"1.5.5", b"1e", b".",
           b"-", b"+", b"3", b"2"]
HUGE = [b"9" * 40, b"9" * 5000, b"-" + b"9" * 5000, b"1" + b"0" * 400, b"2147483647", b"2147483648", b"-2147483649",
        b"4294967296", b"99999999999", b"9223372036854775808", b"18446744073709551616", b"1" + b"0" * 25]
TEXTY = [b"", b" ", b"\t", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x00", b"\xc2\xa0", "٣".encode(),
         "１".encode(), "\u3000".encode(), b"\\ud800", b"\\udc00", b"\\ud83d\\ude00", b"\\", b"\\777", b"\\x",
         b"\x0b", b"\x0c", b"\x1c", b"\r", b"\n", b"\n\n", b"\r\n"]
STRUCTURAL = [b'"', b"'", b"{", b"}", b"[", b"]", b"[" * 3000, b'{"a":' * 1500, b"-" * 3000, b"null", b"true",
              b"[]", b"{}", b'""', b"tensor(", b"tensor(1, device='cuda:0')", b"hyp_0", b"hyp_x", b"hyp_99999999999",
              b"ref", b",", b"=", b"#", b".", b"-1-1", b"u-0", b"SUBLAT=x", b"I=0", b"J=0", b"S=0", b"L=1",
              b"\x1f\x8b", b"\xd6\xfd\xb2\x7e", b"\x00B"]
#: Tokens: coarse (between white space and JSON/SLF/Kaldi punctuation) or fine (also split at - _ . /)
_COARSE = re.compile(rb"[^\s\"'=,:{}\[\]()\\]+")
_FINE = re.compile(rb"[^\s\"'=,:{}\[\]()\\\-_./]+")


def _tokens(data: bytes, fine: bool) -> list[tuple[int, int]]:
    return [m.span() for m in (_FINE if fine else _COARSE).finditer(data)]


@st.composite
def replacement(draw, data: bytes = b"") -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 5:
        spans = _tokens(data, draw(st.booleans()))
        if spans:  # another token of the same input (duplicated keys, swapped values)
            a, b = spans[draw(st.integers(0, len(spans) - 1))]
            return data[a:b]
        kind = 4
    if kind == 4:
        return draw(st.binary(min_size=1, max_size=8))
    return draw(st.sampled_from((NUMBERS, HUGE, TEXTY, STRUCTURAL)[kind]))


#: Mutations per input: mostly one, so that the rest of the input stays valid and the reader gets past it
HOW_MANY = st.sampled_from([1, 1, 1, 2, 3])
MUTATIONS = (["token"] * 6 + ["insert"] * 2
             + ["flip", "truncate", "delete", "dupline", "delline", "swaplines", "blankline", "crlf", "bom",
                "invalid_utf8", "noeol", "empty", "random"])


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """``data`` with one to three mutations (mostly one)."""
    for _ in range(draw(HOW_MANY)):
        n = len(data)
        kind = draw(st.sampled_from(MUTATIONS))
        if kind == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
        elif kind == "truncate":
            data = data[:draw(st.integers(0, n))]
        elif kind == "insert":
            i = draw(st.integers(0, n))
            data = data[:i] + draw(replacement(data)) + data[i:]
        elif kind == "delete" and n:
            i = draw(st.integers(0, n - 1))
            data = data[:i] + data[i + draw(st.integers(1, 16)):]
        elif kind == "token":
            spans = _tokens(data, draw(st.booleans()))
            if spans:
                a, b = spans[draw(st.integers(0, len(spans) - 1))]
                data = data[:a] + draw(replacement(data)) + data[b:]
        elif kind in ("dupline", "delline", "swaplines", "blankline"):
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "dupline":
                lines.insert(draw(st.integers(0, len(lines))), lines[i])
            elif kind == "delline":
                del lines[i]
            elif kind == "swaplines":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(i, b"")
            data = b"\n".join(lines)
        elif kind == "crlf":
            if draw(st.booleans()):
                data = data.replace(b"\n", b"\r\n")
            else:
                i = data.find(b"\n", draw(st.integers(0, n)))
                if i >= 0:
                    data = data[:i] + b"\r" + data[i:]
        elif kind == "bom":
            data = b"\xef\xbb\xbf" + data
        elif kind == "invalid_utf8":
            i = draw(st.integers(0, n))
            data = data[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe6\x97", b"\x80"])) + data[i:]
        elif kind == "noeol":
            data = data.rstrip(b"\n")
        elif kind == "empty":
            data = b""
        elif kind == "random":
            data = draw(st.binary(max_size=64))
    return data


def _replace_everywhere(files: dict[str, bytes], token: bytes, new: bytes, fine: bool) -> dict[str, bytes]:
    """``token`` replaced by ``new`` wherever it is a whole token, in every file (keys stay joined)."""
    sep = rb"\s\"'=,:{}\[\]()\\" + (rb"\-_./" if fine else b"")
    pattern = re.compile(rb"(?<![^" + sep + rb"])" + re.escape(token) + rb"(?![^" + sep + rb"])")
    return {k: pattern.sub(lambda _: new, v) for k, v in files.items()}


@st.composite
def mutated_files(draw, files: dict[str, bytes], protect: tuple[str, ...] = ()) -> dict[str, bytes]:
    """A mutation of a valid input's files ``{relative path: bytes}``: (a) every file replaced by random
    bytes or text, or (b) one to three files mutated (:func:`mutated_bytes`), deleted, or given another
    file's content, or one token replaced in every file (so that the files still agree on keys).
    Files in ``protect`` are never deleted."""
    files = dict(files)
    names = sorted(files)
    if draw(st.integers(0, 9)) == 0:
        for name in names:
            files[name] = draw(st.binary(max_size=96) | st.text(max_size=48).map(
                lambda s: s.encode("utf-8", "surrogatepass")))
        return files
    for _ in range(draw(HOW_MANY)):
        name = draw(st.sampled_from(names))
        if name not in files:
            continue
        op = draw(st.integers(0, 19))
        if op == 0 and name not in protect:
            del files[name]
        elif op == 1:
            other = draw(st.sampled_from(names))
            files[name] = files.get(other, files[name])
        elif op <= 6:
            fine = draw(st.booleans())
            spans = _tokens(files[name], fine)
            if spans:
                a, b = spans[draw(st.integers(0, len(spans) - 1))]
                files = _replace_everywhere(files, files[name][a:b], draw(replacement(files[name])), fine)
        else:
            files[name] = draw(mutated_bytes(files[name]))
    return files


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def read_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def n_lines(data: bytes) -> int:
    """Lines of a file as the line readers see them (split at LF only; a last line without LF counts)."""
    if not data:
        return 0
    return data.count(b"\n") + (not data.endswith(b"\n"))


# --------------------------------------------------------------------------------------------
# What a parsed set must satisfy
# --------------------------------------------------------------------------------------------


def check_set(nbs: NbestSet) -> None:
    """Internal consistency of any set a reader returns."""
    nbs.check()
    counts = nbs.counts()
    assert int(counts.sum()) == nbs.num_hyps
    keys = list(nbs.keys())
    assert len(keys) == len(set(keys)) == nbs.num_hyps
    for u in nbs.utt_ids:
        assert u and not any(c in u for c in ASCII_WS), repr(u)
        u.encode("utf-8")  # no lone surrogates: the set must be writable
    for t in nbs.texts:  # decodes every row: valid UTF-8
        assert t == " ".join(t.split(" ")) and t == t.strip(ASCII_WS) and "  " not in t, repr(t)
    for name, v in nbs.streams.items():
        assert v.dtype == np.float64 and v.shape == (nbs.num_hyps,), name
    if nbs.refs is not None:
        for u, r in nbs.refs.items():
            u.encode("utf-8")
            r.encode("utf-8")


# --------------------------------------------------------------------------------------------
# Valid inputs (written once per session by the project's own writers, or by hand)
# --------------------------------------------------------------------------------------------


def base_set() -> NbestSet:
    b = NbestBuilder(["score", "graph_cost", "ac_cost", "lm_cost", "pll"])
    rows = {
        "spk1-u1": [("the cat sat", 30.5, 4100.25, 20.0, -7.5), ("the cat sat on", 31.0, 4110.0, 21.5, -9.0),
                    ("a 日本 cat", 29.0, 4200.0, 19.0, math.nan)],
        "spk2-u2": [("hello world", 5.0, 300.0, 4.0, -1.0), ("", math.inf, 310.0, 3.0, -2.0)],
        "u3": [("x", 1.0, 2.0, 0.5, 0.0)],
    }
    for utt, hyps in rows.items():
        for k, (text, g, a, lm, pll) in enumerate(hyps, 1):
            b.add(utt, k, text, {"score": -(g + 0.1 * a), "graph_cost": g, "ac_cost": a, "lm_cost": lm, "pll": pll})
    return b.build(refs={"spk1-u1": "the cat sat", "spk2-u2": "hello world", "u3": "x", "u4": "only a ref"})


@cache
def written(fmt: str) -> dict[str, bytes]:
    """A valid input of ``fmt`` written by the project's writer: ``{relative path: bytes}``."""
    nbs = base_set()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        if fmt == "kaldi-nbest":
            kaldi_nbest.write(nbs, out, nj=2, new_table=True)
        elif fmt == "espnet":
            espnet.write(nbs, out)
        elif fmt == "mlm-json":
            out.mkdir()
            mlm_json.write(nbs, out / "set.am.json")
        elif fmt == "setdir":
            save_set(nbs, out)
        elif fmt == "kaldi-lattice":
            kaldi_lattice.write(nbs, out, nj=2, new_table=True)
        return read_files(out)


WORDS_TXT = b"<eps> 0\nA 11\nCAT 17\nBAT 18\nTHE 4312\nON 6005\nSAT 9021\n#0 9022\n<s> 9023\n</s> 9024\n"
# docs/formats.md §2.2 and §8: CompactLattice entries (TAB-separated; tids, empty tid lists, 1-column
# finals, an epsilon arc) and a (non-compact) Lattice entry
TEXT_LATTICES = (
    b"utt1 \n0\t1\t4312\t1.53,210.4,2_6_6_6_5_5\n1\t2\t17\t0.8,95.61,14_13_13_18\n1\t3\t18\t2.1,97.03,14_13_22_21\n"
    b"2\t4\t9021\t3.2,301.5,7_9_9_8\n3\t4\t9021\t3.2,299.9,7_9_9_8\n4\t0.61,0,1_1\n\n"
    b"utt2 \n0\t1\t11\n1\t2\t0\t0.5,3,\n2\t3\t17\t1,20,5_6\n2\t3\t18\t1.5,19,\n3\n\n"
    b"utt3\n0\t1\t2\t4312\t1.53,35.2\n1\t2\t6\t0\t0,175.2\n2\t3\t14\t17\t0.8,95.61\n2\t4\t22\t18\t2.1,97.03\n"
    b"3\t5\t7\t9021\t3.2,301.5\n4\t5\t7\t9021\t3.2,299.9\n5\t6\t1\t0\n6\t0.61,0\n\n"
)
TEXT_LATTICE_ENTRIES = 3


def _i32(v: int) -> bytes:
    return int(v).to_bytes(4, "little", signed=True)


def _i64(v: int) -> bytes:
    return int(v).to_bytes(8, "little", signed=True)


def _f32(v: float) -> bytes:
    return np.float32(v).tobytes()


def _ostring(s: bytes) -> bytes:
    return _i32(len(s)) + s


def encode_fst(states: list, compact: bool = True, start: int = 0) -> bytes:
    """OpenFst VectorFst binary (docs/formats.md §2.3): ``states`` = [(final or None, [(il, ol, w, next)])]."""
    def weight(w):
        g, a, tids = (math.inf, math.inf, []) if w is None else w
        out = _f32(g) + _f32(a)
        return out + _i32(len(tids)) + b"".join(_i32(t) for t in tids) if compact else out

    out = _i32(kaldi_lattice.FST_MAGIC) + _ostring(b"vector") + _ostring(b"compactlattice44" if compact else b"lattice4")
    out += _i32(2) + _i32(0) + _i64(3) + _i64(start) + _i64(len(states)) + _i64(0)
    for final, arcs in states:
        out += weight(final) + _i64(len(arcs))
        for il, ol, w, nxt in arcs:
            out += _i32(il) + _i32(ol) + weight(w) + _i32(nxt)
    return out


BINARY_LATTICES = (
    b"utt1 " + encode_fst([
        (None, [(4312, 4312, (1.53, 210.4, [2, 6, 6]), 1)]),
        (None, [(17, 17, (0.8, 95.61, [14, 13]), 2), (18, 18, (2.1, 97.03, [14, 22]), 3)]),
        (None, [(9021, 9021, (3.2, 301.5, [7, 9]), 4)]),
        (None, [(9021, 9021, (3.2, 299.9, []), 4)]),
        ((0.61, 0.0, [1, 1]), []),
    ])
    + b"utt2 " + encode_fst([
        (None, [(2, 4312, (1.5, 35.0, []), 1), (3, 0, (0.0, 5.0, []), 1)]),
        (None, [(6, 17, (0.8, 95.6, []), 2), (7, 18, (2.0, 90.0, []), 2)]),
        ((0.5, 0.0, []), []),
    ], compact=False)
)
BINARY_LATTICE_ENTRIES = 2

SLF_NODE_WORDS = b"""VERSION=1.0
UTTERANCE=utt1
lmscale=10.0 wdpenalty=-2.0
start=0 end=6
N=7 L=9
I=0 t=0.00 W=!NULL
I=1 t=0.20 W=THE
I=2 t=0.20 W=A
I=3 t=0.30 W=<sil>
I=4 t=0.60 W=CAT
I=5 t=0.60 W="H\\101T"
I=6 t=0.70 W=!NULL
J=0 S=0 E=1 a=-10 l=-1
J=1 S=0 E=2 a=-11 l=-2 r=-0.5
J=2 S=1 E=4 a=-20 l=-1
J=3 S=1 E=3 a=-5 l=0
J=4 S=3 E=4 a=-16 l=-1
J=5 S=2 E=4 a=-19 l=-1.5
J=6 S=1 E=5 a=-19.5 l=-3
J=7 S=4 E=6 a=-1 l=0
J=8 S=5 E=6 a=-1 l=0
"""
SLF_LINK_WORDS = b"""# words on links, log10 scores
VERSION=1.0
base=10
lmscale=2.0 wdpenalty=-0.5
NODES=4 LINKS=5
I=0 t=0.0
I=1 t=0.5
I=2 t=1.0
I=3 t=1.2
J=0 S=0 E=1 W=HELLO a=-3 l=-1
J=1\tS=0\tE=1\tWORD=YELLOW acoustic=-2.5 language=-2 p=0.3
J=2 S=1 E=2 W='em a=-4 l=-0.5
J=3 S=1 E=2 W=!NULL a=-4.5 l=0
J=4 S=2 E=3 W=</s> a=0 l=-0.25
.
"""

HYPR_RECORDS = [
    {"utt_id": "1272-128104-0000", "ref": "MISTER QUILTER IS", "hyps": ["MISTER QUILTER IS", "MISTER QUILTERS IS", ""],
     "att_score": [-1.76402, -4.2, -5.5], "ctc_score": [-5.13712, -6.1, -7.3], "score": [-3.45057, -5.15, None]},
    {"utt_id": "1272-128104-0001", "ref": "NOR IS", "hyps": ["NOR  IS", "NOR\u3000IS"],
     "att_score": [-2.0, -3.0], "ctc_score": [-4.0, -3.5], "score": [-3.0, -3.25]},
    {"utt_id": "u3", "ref": "NOTHING", "hyps": [], "att_score": [], "ctc_score": [], "score": []},
]

NEMO_MANIFEST = b"".join(json.dumps(e).encode() + b"\n" for e in [
    {"audio_filepath": "/data/a/1272-128104-0000.flac", "duration": 5.855, "text": "mister quilter"},
    {"audio_filepath": "/data/a/1272-128104-0001.flac", "duration": 4.8, "text": "nor is"},
    {"audio_filepath": "/data/b/1462-170138-0000.flac", "duration": 3.1, "text": ""},
])
NEMO_BEAMS = b"mister quilter\t-4.25\nmister quilters\t-6.5\nnor is\t-3.0\nnor \"is\"\t-3.0\n\t-1.5\nhe\tis\t-2.75\n"
NEMO_TSV = "preds_out_size2_alpha1.0_beta0.5.tsv"

FLOAT_ARCHIVE = b"a-1 1.5\na-2 -Infinity \nb-1\tBadNumber\nb-2 1e+07\nc-1 -0.25\n"
TEXT_ARCHIVE = "u1 the cat sat\nu2  a\tb \nu3\nu4 日本 語\n".encode()


# --------------------------------------------------------------------------------------------
# Readers: each returns (set or None, the counts its input defines)
# --------------------------------------------------------------------------------------------


def kaldi_nbest_expected(files: dict[str, bytes], nbs: NbestSet) -> int:
    nj = nbs.meta["source"]["num_jobs"]
    total = 0
    for j in range(1, nj + 1):
        name = f"archives.{j}/words_text" if f"archives.{j}/words_text" in files else f"archives.{j}/words"
        total += n_lines(files[name])
    return total


def espnet_expected(files: dict[str, bytes]) -> int:
    return sum(n_lines(d) for name, d in files.items() if re.fullmatch(r"logdir/output\.\d+/[1-9]\d*best_recog/text", name))


def mlm_expected(data: bytes) -> tuple[int, int]:
    obj = json.loads(data)
    per_utt = [sum(1 for k in v if k.startswith("hyp_")) for v in obj.values()]
    return sum(per_utt), sum(1 for n in per_utt if n)


def hypr_expected(records: list[dict]) -> tuple[int, int]:
    return sum(len(r["hyps"]) for r in records), sum(1 for r in records if r["hyps"])


def hypr_records(data: bytes) -> list[dict]:
    if data.lstrip()[:1] == b"[":
        return json.loads(data)
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


# --------------------------------------------------------------------------------------------
# (0) the valid inputs themselves: exact counts
# --------------------------------------------------------------------------------------------


def test_valid_inputs_exact_counts(tmp_path):
    d = write_files(tmp_path / "kn", written("kaldi-nbest"))
    nbs = kaldi_nbest.read(d)
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps) == (3, 6) and list(nbs.counts()) == [3, 2, 1]
    assert nbs.streams["score"][4] == -math.inf and math.isnan(nbs.streams["pll"][2])

    nbs = espnet.read(write_files(tmp_path / "es", written("espnet")))
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps) == (3, 6)

    nbs = mlm_json.read(write_files(tmp_path / "mlm", written("mlm-json")) / "set.am.json")
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps, len(nbs.refs)) == (3, 6, 4)

    nbs = setdir.read(write_files(tmp_path / "sd", written("setdir")))
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps, sorted(nbs.streams)) == (3, 6, ["ac_cost", "graph_cost", "lm_cost", "pll", "score"])

    d = write_files(tmp_path / "kl", written("kaldi-lattice"))
    nbs = kaldi_lattice.read(d)
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps) == (3, 6)

    lat = write_files(tmp_path / "lt", {"lat": TEXT_LATTICES, "words.txt": WORDS_TXT}) / "lat"
    nbs = kaldi_lattice.read(lat, nbest=10)
    check_set(nbs)
    assert nbs.utt_ids == ["utt1", "utt2", "utt3"] and list(nbs.counts()) == [2, 2, 2]
    lat = write_files(tmp_path / "lb", {"lat": BINARY_LATTICES, "words.txt": WORDS_TXT}) / "lat"
    nbs = kaldi_lattice.read(lat, nbest=10)
    check_set(nbs)
    assert nbs.utt_ids == ["utt1", "utt2"] and list(nbs.counts()) == [2, 4]  # utt2: (THE|eps) (CAT|BAT)

    nbs = hypr.read(write_files(tmp_path / "hy", {"h.jsonl": _jsonl(HYPR_RECORDS)}) / "h.jsonl")
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps, len(nbs.refs)) == (2, 5, 3)

    d = write_files(tmp_path / "ne", {NEMO_TSV: NEMO_BEAMS, "m.json": NEMO_MANIFEST})
    nbs = nemo.read(d / NEMO_TSV, manifest=d / "m.json")
    check_set(nbs)
    assert (nbs.num_utts, nbs.num_hyps) == (3, 6)

    d = write_files(tmp_path / "slf", {"a.lat": SLF_NODE_WORDS, "utt2.slf": SLF_LINK_WORDS})
    nbs = slf.read(d)
    check_set(nbs)
    assert nbs.utt_ids == ["utt1", "utt2"] and list(nbs.counts()) == [3, 4]

    p = write_files(tmp_path / "ar", {"f": FLOAT_ARCHIVE, "t": TEXT_ARCHIVE})
    assert len(list(archive.read_float_archive(p / "f"))) == 5
    assert len(list(archive.read_text_archive(p / "t"))) == 4
    assert archive.read_text_dict(p / "t")["u2"] == "a b"
    assert len(archive.read_transcripts(str(p / "t"))[1]) == 4


def _jsonl(records: list) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


# --------------------------------------------------------------------------------------------
# (a) random and (b) mutated inputs, reader by reader
# --------------------------------------------------------------------------------------------


def kaldi_nbest_base(words_text: bool) -> dict[str, bytes]:
    files = dict(written("kaldi-nbest"))
    if not words_text:  # the words + words.txt path
        files = {k: v for k, v in files.items() if not k.endswith("/words_text")}
    return files


@fuzz_settings(400)
@given(data=st.data())
def test_fuzz_kaldi_nbest(data):
    files = data.draw(mutated_files(kaldi_nbest_base(data.draw(st.booleans(), label="words_text"))))
    acwt = data.draw(st.sampled_from([0.1, 0.0, 1 / 12]), label="acwt")
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp) / "decode", files)
        d.mkdir(exist_ok=True)
        nbs = attempt(kaldi_nbest.read, d, acwt=acwt)
        if nbs is not None:
            check_set(nbs)
            assert nbs.num_hyps == kaldi_nbest_expected(files, nbs)
        if "archives.1/lmwt.withlm" in files:  # one job dir read alone
            nbs = attempt(kaldi_nbest.read, d / "archives.1", words=d / "words.txt")
            if nbs is not None:
                check_set(nbs)


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_kaldi_symbol_table_and_num_jobs(data):
    files = {"words.txt": written("kaldi-nbest")["words.txt"], "num_jobs": b"2\n"}
    files = data.draw(mutated_files(files, protect=("words.txt", "num_jobs")))
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp), files)
        table = attempt(kaldi_nbest.read_symbol_table, d / "words.txt")
        if table is not None:
            assert len(table) == n_lines(files["words.txt"]) and len(set(table.values())) == len(table)
        nj = attempt(kaldi_nbest.read_num_jobs, d / "num_jobs")
        if nj is not None:
            assert isinstance(nj, int) and nj >= 1


def _lattice_files(data) -> tuple[dict[str, bytes], int]:
    which = data.draw(st.sampled_from(["text", "binary", "written"]), label="lattices")
    if which == "written":
        files = {k: gzip.decompress(v) if k.endswith(".gz") else v for k, v in written("kaldi-lattice").items()}
        return files, 3
    return ({"lat.1.gz": TEXT_LATTICES if which == "text" else BINARY_LATTICES, "words.txt": WORDS_TXT, "num_jobs": b"1\n"},
            TEXT_LATTICE_ENTRIES if which == "text" else BINARY_LATTICE_ENTRIES)


@fuzz_settings(500)
@given(data=st.data())
def test_fuzz_kaldi_lattice(data):
    files, _ = _lattice_files(data)
    files = data.draw(mutated_files(files))
    compress = data.draw(st.sampled_from(["gzip", "gzip", "plain", "mutated gzip"]), label="compress")
    for name in [n for n in files if n.endswith(".gz")]:
        if compress != "plain":
            files[name] = gzip.compress(files[name], mtime=0)
        if compress == "mutated gzip":
            files[name] = data.draw(mutated_bytes(files[name]))
    nbest = data.draw(st.sampled_from([10, 1, 3]), label="nbest")
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp) / "decode", files)
        d.mkdir(exist_ok=True)
        for src in (d, d / "lat.1.gz"):
            if not src.exists():
                continue
            nbs = attempt(kaldi_lattice.read, src, words=d / "words.txt", nbest=nbest)
            if nbs is not None:
                check_set(nbs)
                source = nbs.meta["source"]
                assert nbs.num_utts + source["empty_lattices"]["count"] == source["lattices"]
                assert source["forms"]["text"] + source["forms"]["binary"] == source["lattices"]
                assert int(nbs.counts().max(initial=0)) <= nbest


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_espnet(data):
    files = data.draw(mutated_files(written("espnet")))
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp) / "decode", files)
        d.mkdir(exist_ok=True)
        nbs = attempt(espnet.read, d)
        if nbs is not None:
            check_set(nbs)
            assert nbs.num_hyps == espnet_expected(files)


@fuzz_settings(500)
@given(data=st.data())
def test_fuzz_mlm_json(data):
    files = data.draw(mutated_files(written("mlm-json"), protect=("set.am.json",)))
    missing_score = data.draw(st.sampled_from(["error", "zero"]), label="missing_score")
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp), files)
        nbs = attempt(mlm_json.read, d / "set.am.json", missing_score=missing_score)
        if nbs is not None:
            check_set(nbs)
            assert (nbs.num_hyps, nbs.num_utts) == mlm_expected(files["set.am.json"])


HYPR_FORMS = ("jsonl", "json list", "jsonl.gz", "parquet")


@fuzz_settings(400)
@given(data=st.data())
def test_fuzz_hypr(data):
    form = data.draw(st.sampled_from(HYPR_FORMS[:3]), label="form")
    records = HYPR_RECORDS
    raw = json.dumps(records, indent=1).encode() if form == "json list" else _jsonl(records)
    name = "h.jsonl.gz" if form == "jsonl.gz" else ("h.json" if form == "json list" else "h.jsonl")
    raw = data.draw(mutated_files({name: raw}, protect=(name,)))[name]
    stored = raw
    if form == "jsonl.gz":
        stored = gzip.compress(raw, mtime=0)
        if data.draw(st.integers(0, 3), label="mutate the gzip bytes") == 0:
            stored = data.draw(mutated_bytes(stored))
    with tempfile.TemporaryDirectory() as tmp:
        p = write_files(Path(tmp), {name: stored}) / name
        nbs = attempt(hypr.read, p)
        if nbs is not None:
            check_set(nbs)
            if stored is raw:
                assert (nbs.num_hyps, nbs.num_utts) == hypr_expected(hypr_records(raw))


@fuzz_settings(150)
@given(data=st.data())
def test_fuzz_hypr_parquet(data):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    compression = data.draw(st.sampled_from(["none", "snappy"]), label="compression")  # none: strings in the clear
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "h.parquet"
        pq.write_table(pa.Table.from_pylist(HYPR_RECORDS), p, compression=compression)
        raw = data.draw(mutated_bytes(p.read_bytes()))
        p.write_bytes(raw)
        nbs = attempt(hypr.read, p)
        if nbs is not None:
            check_set(nbs)


@fuzz_settings(400)
@given(data=st.data())
def test_fuzz_nemo(data):
    files = data.draw(mutated_files({NEMO_TSV: NEMO_BEAMS, "m.json": NEMO_MANIFEST}, protect=(NEMO_TSV, "m.json")))
    opts = data.draw(st.fixed_dictionaries({}, optional={
        "score_sign": st.sampled_from(["auto", "logprob", "cost"]), "nan_is_empty": st.booleans(),
        "utt_id_field": st.sampled_from(["duration", "text", "audio_filepath"]), "beam_size": st.sampled_from([1, 2, 3])}),
        label="options")
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp), files)
        nbs = attempt(nemo.read, d / NEMO_TSV, manifest=d / "m.json", **opts)
        if nbs is not None:
            check_set(nbs)
            assert nbs.num_hyps == n_lines(files[NEMO_TSV])
            assert nbs.num_utts == sum(1 for line in files["m.json"].split(b"\n") if line.strip())


@fuzz_settings(400)
@given(data=st.data())
def test_fuzz_slf(data):
    files = {"a.lat": SLF_NODE_WORDS, "b.slf.gz": SLF_LINK_WORDS}
    files = data.draw(mutated_files(files, protect=tuple(files)))
    files["b.slf.gz"] = gzip.compress(files["b.slf.gz"], mtime=0)
    if data.draw(st.integers(0, 4), label="mutate the gzip bytes") == 0:
        files["b.slf.gz"] = data.draw(mutated_bytes(files["b.slf.gz"]))
    nbest = data.draw(st.sampled_from([100, 1, 2]), label="nbest")
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp), files)
        nbs = attempt(slf.read, d, nbest=nbest, fillers=data.draw(st.sampled_from([None, "", "++*++ <sil>"])))
        if nbs is not None:
            check_set(nbs)
            assert nbs.num_utts == len(files)
            assert int(nbs.counts().max()) <= nbest


@fuzz_settings(400)
@given(data=st.data())
def test_fuzz_setdir(data):
    files = data.draw(mutated_files(written("setdir")))
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp) / "set", files)
        d.mkdir(exist_ok=True)
        nbs = attempt(setdir.read, d)
        if nbs is not None:
            check_set(nbs)
            assert nbs.num_hyps == n_lines(files["nbest/text"])
            assert set(nbs.streams) == {"score"} | {n.split("/", 1)[1] for n in files
                                                      if n.startswith("nbest/") and n not in ("nbest/text", "nbest/meta.yaml")}


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_read_scores(data):
    """A per-hypothesis score archive joined to a set (rescoring outputs, ``--scores`` inputs)."""
    nbs = base_set()
    good = "".join(f"{k} {v!r}\n" for k, v in zip(nbs.keys(), nbs.streams["pll"].tolist(), strict=True)).encode()
    raw = data.draw(mutated_files({"s": good}, protect=("s",)))["s"]
    with tempfile.TemporaryDirectory() as tmp:
        p = write_files(Path(tmp), {"s": raw}) / "s"
        values = attempt(read_scores, p, nbs)
        if values is not None:
            assert values.shape == (nbs.num_hyps,) and n_lines(raw) == nbs.num_hyps


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_text_archives(data):
    """The Kaldi text-archive readers: float archives, ``text`` files (references), transcripts, utt2spk."""
    files = data.draw(mutated_files({"f": FLOAT_ARCHIVE, "t": TEXT_ARCHIVE}, protect=("f", "t")))
    with tempfile.TemporaryDirectory() as tmp:
        d = write_files(Path(tmp), files)
        floats = attempt(lambda: list(archive.read_float_archive(d / "f")))
        if floats is not None:
            assert len(floats) == n_lines(files["f"]) and all(isinstance(v, float) for _, _, v in floats)
        rows = attempt(lambda: list(archive.read_text_archive(d / "t")))
        if rows is not None:
            assert len(rows) == n_lines(files["t"])
            for _, key, tokens in rows:
                key.encode("utf-8")
                assert all(t and not any(c in t for c in ASCII_WS) for t in tokens)
        refs = attempt(archive.read_text_dict, d / "t")
        if refs is not None:
            assert len(refs) == n_lines(files["t"])
        got = attempt(archive.read_transcripts, str(d / "t"))
        if got is not None:
            assert len(got[1]) == n_lines(files["t"])
        spk = attempt(trn.read_utt2spk, d / "t")
        if spk is not None:
            assert len(spk) == n_lines(files["t"])


# --------------------------------------------------------------------------------------------
# Regressions: the minimal inputs behind each foreign exception, hang or runaway allocation the
# fuzzing found (each ran under the same time and memory limits)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def refused(match: str, line: int | None | str = "any"):
    """The block must raise the project's input error matching ``match`` (and naming ``line``)."""
    with time_limit(), memory_limit(), pytest.raises(INPUT_ERRORS, match=match) as info:
        yield
    if line != "any":
        assert isinstance(info.value, InputError) and info.value.line == line, info.value


def put(root: Path, files: dict[str, bytes | str]) -> Path:
    return write_files(root, {k: v.encode() if isinstance(v, str) else v for k, v in files.items()})


def damaged_gzip(data: bytes) -> bytes:
    """A gzip stream with a damaged deflate block: zlib.error (not an OSError) while reading, or a CRC
    error (BadGzipFile) when the damage still decodes."""
    gz = bytearray(gzip.compress(data, mtime=0))
    gz[12] ^= 0xFF
    return bytes(gz)


def test_regression_kaldi_lattice_gzip_errors(tmp_path):
    words = put(tmp_path, {"words.txt": WORDS_TXT}) / "words.txt"
    for name, data in {"corrupt": damaged_gzip(TEXT_LATTICES), "truncated": gzip.compress(TEXT_LATTICES)[:-12]}.items():
        lat = put(tmp_path, {f"{name}.gz": data}) / f"{name}.gz"
        with refused("cannot decompress"):
            kaldi_lattice.read(lat, words=words)


def test_regression_kaldi_lattice_plain_archive_named_gz(tmp_path):
    # gzip is detected by its magic bytes; the line of an error was counted after gunzipping by the name
    lat = put(tmp_path, {"lat.1.gz": b"utt1 \n0\t1\t11\n1\n\nutt1 \n0\t1\t17\n1\n\n", "words.txt": WORDS_TXT}) / "lat.1.gz"
    with refused("duplicate lattice key utt1", line=5):
        kaldi_lattice.read(lat)


def test_regression_kaldi_lattice_huge_state_ids(tmp_path):
    # text form: states are named by number; 9999999999 made ten billion states
    lat = put(tmp_path, {"lat": "u1 \n0\t9999999999\t11\n9999999999\n\nu2 \n7\t3\t17\n3\t1,2,\n\n",
                         "words.txt": WORDS_TXT}) / "lat"
    with time_limit(), memory_limit():
        nbs = kaldi_lattice.read(lat)
    assert list(nbs.texts) == ["A", "CAT"] and nbs.streams["graph_cost"].tolist() == [0.0, 1.0]
    # a 5000-digit state id
    put(tmp_path, {"lat": "u1 \n0\t" + "9" * 5000 + "\t11\n\n"})
    with refused(r"state 9{30}\.\.\. \(5000 digits\) is out of range", line=2):
        kaldi_lattice.read(lat)


def test_regression_kaldi_lattice_binary_huge_counts(tmp_path):
    put(tmp_path, {"words.txt": WORDS_TXT})
    head = _i32(kaldi_lattice.FST_MAGIC) + _ostring(b"vector") + _ostring(b"compactlattice44")
    # a header claiming 2**40 states, then one state: the state list was allocated up front
    states = head + _i32(2) + _i32(0) + _i64(3) + _i64(0) + _i64(1 << 40) + _i64(0) + _f32(0) + _f32(0) + _i32(0) + _i64(0)
    # a final weight claiming 2**31 - 1 transition ids: 8 GiB were requested from the file at once
    tids = head + _i32(2) + _i32(0) + _i64(3) + _i64(0) + _i64(1) + _i64(0) + _f32(0) + _f32(0) + _i32(2**31 - 1)
    for name, fst in {"states": states, "tids": tids}.items():
        lat = put(tmp_path, {name: b"u1 " + fst}) / name
        with refused("entry u1 \\(byte 3\\): the file ends inside the lattice"):
            kaldi_lattice.read(lat, words=tmp_path / "words.txt")


def test_regression_num_jobs_huge(tmp_path):
    # the list of missing jobs was built over range(1, num_jobs + 1)
    kn = put(tmp_path / "kn", written("kaldi-nbest"))
    kl = put(tmp_path / "kl", written("kaldi-lattice"))
    for d, first in ((kn, "archives.3"), (kl, "lat.3.gz")):
        put(d, {"num_jobs": "99999999999\n"})
        with refused(f"{first} is missing", line=None):
            (kaldi_nbest if d is kn else kaldi_lattice).read(d)
        put(d, {"num_jobs": "9" * 5000 + "\n"})
        with refused("expected one positive integer", line=1):
            (kaldi_nbest if d is kn else kaldi_lattice).read(d)


def test_regression_kaldi_long_ids(tmp_path):
    table = put(tmp_path, {"words.txt": b"<eps> 0\nA " + b"1" * 5000 + b"\n"}) / "words.txt"
    with refused("id 1{30}... \\(5000 digits\\) is out of range", line=2):
        kaldi_nbest.read_symbol_table(table)
    # words without words_text: a 5000-digit word id
    d = put(tmp_path / "decode", {k: v for k, v in written("kaldi-nbest").items() if not k.endswith("words_text")})
    words = (d / "archives.1" / "words").read_bytes().split(b"\n")
    words[0] = words[0].split()[0] + b" " + b"7" * 5000
    put(d, {"archives.1/words": b"\n".join(words)})
    with refused("word id 7{30} is not in", line=1):
        kaldi_nbest.read(d)


def _kaldi_nbest_with_key(tmp_path: Path, old: bytes, new: bytes) -> Path:
    """The written kaldi-nbest decode dir with key ``old`` renamed ``new`` in every file."""
    return put(tmp_path, _replace_everywhere(written("kaldi-nbest"), old, new, fine=False))


def test_regression_kaldi_nbest_huge_ranks(tmp_path):
    # u3's only hypothesis renamed u3-2000000000 in every file: the gap list was set(range(1, 2e9 + 1))
    d = _kaldi_nbest_with_key(tmp_path / "a", b"u3-1", b"u3-2000000000")
    with refused(r"ranks of u3 have gaps: missing \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]"):
        kaldi_nbest.read(d)
    # beyond int32: an OverflowError when the rank was stored
    d = _kaldi_nbest_with_key(tmp_path / "b", b"u3-1", b"u3-4294967296")
    with refused("rank 4294967296 of u3 is out of range"):
        kaldi_nbest.read(d)
    d = _kaldi_nbest_with_key(tmp_path / "c", b"u3-1", b"u3-" + b"9" * 5000)
    with refused("is not '<utt>-<k>' with a 1-based rank k"):
        kaldi_nbest.read(d)


def test_regression_setdir_huge_ranks(tmp_path):
    for rank, match in ((b"2000000000", r"ranks of u3 have gaps: missing \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]"),
                        (b"99999999999", "rank out of range"), (b"9" * 5000, "rank out of range")):
        d = put(tmp_path / f"r{len(rank)}", _replace_everywhere(written("setdir"), b"u3-1", b"u3-" + rank, fine=False))
        with refused(match):
            setdir.read(d)
    # a stream key with a rank beyond int64 (nbest/text intact): an OverflowError joining it
    d = put(tmp_path / "stream", written("setdir"))
    put(d, {"nbest/pll": (d / "nbest" / "pll").read_bytes().replace(b"u3-1 ", b"u3-99999999999999999999 ")})
    with refused("key 'u3-99999999999999999999' is not in nbest/text"):
        setdir.read(d)


def test_regression_setdir_meta_yaml(tmp_path):
    for text, match in (("a: 2001-13-01\n", "month must be in 1..12"), ("[" * 3000, "RecursionError"),
                        ("a: " + "9" * 5000 + "\n", "4300 digits"), ("- 1\n- 2\n", "mapping")):
        d = put(tmp_path / str(len(text)), written("setdir"))
        put(d, {"nbest/meta.yaml": text})
        with refused(match):
            setdir.read(d)


def test_regression_gzip_text_archives(tmp_path):
    # damaged *.gz met by the line readers (references, transcripts, score archives, SLF, HypR, NeMo)
    nbs = base_set()
    scores = "".join(f"{k} 1.5\n" for k in nbs.keys()).encode()
    for name, data in {"corrupt.gz": damaged_gzip(TEXT_ARCHIVE), "truncated.gz": gzip.compress(TEXT_ARCHIVE)[:-12],
                       "scores.gz": gzip.compress(scores)[:-12]}.items():
        p = put(tmp_path, {name: data}) / name
        with refused("unreadable gzip file"):
            archive.read_text_dict(p)
        with refused("unreadable gzip file"):
            archive.read_transcripts(str(p))
        with refused("unreadable gzip file"):
            read_scores(p, nbs)
    with refused("unreadable gzip file"):
        slf.read(put(tmp_path, {"a.lat.gz": damaged_gzip(SLF_NODE_WORDS)}) / "a.lat.gz")
    with refused("unreadable gzip file"):
        hypr.read(put(tmp_path, {"h.jsonl.gz": damaged_gzip(_jsonl(HYPR_RECORDS))}) / "h.jsonl.gz")
    with refused("unreadable gzip file"):
        hypr.read(put(tmp_path, {"h.json.gz": b"\x00\x8b" + gzip.compress(b"[]")[2:]}) / "h.json.gz")
    put(tmp_path, {NEMO_TSV: NEMO_BEAMS, "m.json.gz": gzip.compress(NEMO_MANIFEST)[:-12]})
    with refused("unreadable gzip file"):
        nemo.read(tmp_path / NEMO_TSV, manifest=tmp_path / "m.json.gz")


def test_regression_slf_long_integers(tmp_path):
    lat = put(tmp_path, {"a.lat": SLF_NODE_WORDS.replace(b"start=0", b"start=" + b"9" * 5000)}) / "a.lat"
    with refused("start=9{30}... \\(5000 digits\\) is out of range", line=4):
        slf.read(lat)


BAD_JSON = {  # (JSON text of one value, message); each made json.loads or a later encode fail
    "nesting": ("[" * 3000 + "]" * 3000, "nested too deeply"),
    "long integer": ("9" * 5000, "an integer of 5000 digits"),
    "lone surrogate": ('"the \\ud800 cat"', "lone surrogate"),
}


@pytest.mark.parametrize("case", BAD_JSON)
def test_regression_json_readers(tmp_path, case):
    value, match = BAD_JSON[case]
    # mlm-json: a score (or text) two lines into the file
    text_field = '"a"' if case != "lone surrogate" else value
    score = value if case != "lone surrogate" else "-1.5"
    mlm = put(tmp_path, {"a.json": f'{{"u1": {{"ref": "a",\n"hyp_1": {{"score": {score}, "text": {text_field}}}}}}}\n'})
    with refused(match, line=None if case == "nesting" else 2):
        mlm_json.read(mlm / "a.json")
    # hypr: JSON lines (second record) and a JSON list
    rec = '{"utt_id": "u2", "hyps": [' + text_field + '], "score": [' + score + "]}"
    good = json.dumps({"utt_id": "u1", "hyps": ["a"], "score": [-1.0]})
    p = put(tmp_path, {"h.jsonl": f"{good}\n{rec}\n", "h.json": f"[{good},\n{rec}]"})
    with refused(match, line=2):
        hypr.read(p / "h.jsonl")
    with refused(match, line=None if case == "nesting" else 2):
        hypr.read(p / "h.json")
    # nemo: a manifest entry (its text is the reference)
    entry = '{"audio_filepath": "/a/u2.wav", "duration": ' + score + ', "text": ' + text_field + "}"
    p = put(tmp_path, {"m.json": json.dumps({"audio_filepath": "/a/u1.wav", "text": "a"}) + "\n" + entry + "\n",
                       "preds_out_size1_.tsv": "a\t-1\nb\t-2\n"})
    with refused(match, line=2):
        nemo.read(p / "preds_out_size1_.tsv", manifest=p / "m.json")


def test_regression_mlm_json_huge_hyp_ranks(tmp_path):
    # hyp_99999999999: the gap list was set(range(1, 99999999999 + 1)); hyp_<5000 digits>: int() refused it
    for n, match in (("99999999999", "rank out of range"), ("2000000000", "hyp_2000000000 present but hyp_1, hyp_2, "),
                     ("9" * 5000, "rank out of range")):
        p = put(tmp_path, {"a.json": json.dumps({"u1": {f"hyp_{n}": {"score": -1.0, "text": "a"}}})}) / "a.json"
        with refused(match):
            mlm_json.read(p)


def test_regression_hypr_integer_beyond_float(tmp_path):
    p = put(tmp_path, {"h.jsonl": json.dumps({"utt_id": "u1", "hyps": ["a"], "score": [10**400]}) + "\n"}) / "h.jsonl"
    with refused("an integer of 401 digits, beyond float range"):
        hypr.read(p)
    b = NbestBuilder(["score"])
    b.add("u1", 1, "a", {"score": 10**400})  # the builder records it too, rather than raise OverflowError
    with refused("non-numeric score"):
        b.build()


def test_regression_hypr_damaged_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "h.parquet"
    pq.write_table(pa.Table.from_pylist([{"utt_id": "uuuu", "hyps": ["a b"], "score": [-1.0]}]), p, compression="none")
    good = p.read_bytes()
    # the first page header (right after the PAR1 magic) damaged: ParquetFile() opens it, reading fails
    p.write_bytes(good[:4] + bytes([good[4] ^ 0xFF]) + good[5:])
    with refused("unreadable parquet file after row 0"):
        hypr.read(p)
    # an utterance id that is not UTF-8 (Arrow does not check its string columns)
    assert good.count(b"uuuu") >= 1
    p.write_bytes(good.replace(b"uuuu", b"\xff\xfe\xfd\xfc"))
    with refused("invalid UTF-8 in a string column"):
        hypr.read(p)
