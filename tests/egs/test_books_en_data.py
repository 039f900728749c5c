"""The committed data of egs/books_en and the script that chose its sentences (no flite/pocketsphinx here)."""

from __future__ import annotations

import gzip
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from rescore.bin import validate
from rescore.data.nbest import load_set

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "books_en"
LOCAL = RECIPE / "data" / "local"
SETS = ("train", "dev", "test")
#: The sizes issue 11 asks for (and local/README.md documents).
MIN_UTTS = {"train": 3000, "dev": 500, "test": 1000}


@pytest.fixture(scope="module")
def prep():
    name = "books_en_prepare_text"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, RECIPE / "local" / "prepare_text.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def table(prep):
    return prep.read_table(RECIPE / "local" / "books.tsv")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", SETS)
def test_committed_set_validates(name, capsys):
    assert validate.main([str(LOCAL / "nbest" / name)]) == 0
    assert "OK" in capsys.readouterr().out


def test_sizes_and_references():
    for name in SETS:
        nbs = load_set(LOCAL / "nbest" / name)
        sentences = _lines(LOCAL / "text" / f"{name}.txt")
        assert nbs.num_utts == len(sentences) >= MIN_UTTS[name], name
        assert sorted(nbs.refs.values()) == sorted(sentences), name  # every sentence is an utterance
        assert nbs.counts().max() <= 20 and (nbs.counts() >= 1).all()


def test_split_by_book(table):
    by_split = Counter(row["split"] for row in table)
    assert by_split["train"] >= 10 and by_split["dev"] >= 3 and by_split["test"] >= 3 and by_split["lm"] >= 20
    split_of = {row["id"]: row["split"] for row in table}
    rows = [ln.split("\t") for ln in _lines(LOCAL / "text" / "sources.tsv")[1:]]
    for name in SETS:
        books = [b for s, _, b in rows if s == name]
        assert len(books) == len(_lines(LOCAL / "text" / f"{name}.txt")), name
        assert {split_of[b] for b in books} == {name}, name  # every sentence from a book of its own split
        assert len(set(books)) == by_split[name], name  # and every book of the split gives some


def test_texts_are_disjoint():
    spoken = {s: set(_lines(LOCAL / "text" / f"{s}.txt")) for s in SETS}
    lm = set(gzip.decompress((LOCAL / "text" / "teacher.txt.gz").read_bytes()).decode("utf-8").splitlines())
    held = set(_lines(LOCAL / "text" / "heldout.txt"))
    assert len(lm) > 100_000 and len(held) >= 1000 and not lm & held
    for s in SETS:
        assert not spoken[s] & lm and not spoken[s] & held, s
        for t in SETS:
            assert s == t or not spoken[s] & spoken[t], (s, t)


def test_sentences_look_like_asr_output():
    word = re.compile(r"[a-z]+('[a-z]+)*|'[a-z]+")
    for s in SETS:
        for line in _lines(LOCAL / "text" / f"{s}.txt"):
            words = line.split()
            assert 6 <= len(words) <= 18 and all(word.fullmatch(w) for w in words), line


# --------------------------------------------------------------------------------------------
# prepare_text.py on a small made-up Gutenberg directory
# --------------------------------------------------------------------------------------------

def _book(path: Path, number: int, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"\ufeffThe Project Gutenberg eBook of Book {number}\n\nTitle: Book {number}\n\n"
                    f"Release date: 2001 [eBook #{number}]\n\n*** START OF THE PROJECT GUTENBERG EBOOK {number} ***\n"
                    f"{body}\n*** END OF THE PROJECT GUTENBERG EBOOK {number} ***\nLicence text: do not use.\n",
                    encoding="utf-8")
    return path


def test_normalisation(prep):
    known = {"'tis", "don't"}
    assert prep.normalise("Mr\u2063 Brown said, “Don’t go—now!”", known) == "mister brown said don't go now"
    assert prep.normalise("'Tis the half-shut eye of _the_ night.", known) == "'tis the half shut eye of the night"
    assert prep.normalise("He paid 5 pounds.", known) is None  # digits are not spoken as written
    assert prep.normalise("J. S. Mill wrote it.", known) is None  # initials
    assert prep.normalise("The café was closed.", known) is None  # a non-ASCII letter
    assert prep.raw_sentences("Mr. Brown came in. He sat down!\nThen he left?  No.") == [
        "Mr\u2063 Brown came in.", "He sat down!", "Then he left?", "No."]  # no sentence end after Mr.


def test_prepare_splits_by_book_and_is_deterministic(prep, tmp_path):
    books = tmp_path / "books"
    speech = " ".join(f"the {w} dog ran over the hill today." for w in
                      ("big", "small", "red", "old", "young", "good", "bad", "new", "tall", "short", "fat", "thin"))
    for n, body in ((11, speech), (22, speech.replace("dog", "cat")), (33, speech.replace("dog", "cow")),
                    (44, "The man sat by the fire. " * 3 + speech.replace("dog", "man")),
                    (55, "Not a real book.")):
        _book(books / f"pg{n}.txt", n, body)
    (books / "error.txt").write_text("<html>404 | Project Gutenberg</html>")  # ignored: no ebook number
    tsv = tmp_path / "books.tsv"
    tsv.write_text("gutenberg_id\tsplit\tcategory\ttitle\n11\ttrain\tx\tA\n22\tdev\tx\tB\n33\ttest\tx\tC\n"
                   "44\tlm\tx\tD\n55\texcluded\tx\tE (not English)\n")
    words = {w for line in speech.lower().replace(".", "").split() for w in [line]} | {"cat", "cow", "man", "sat",
                                                                                     "by", "fire"}
    out = prep.prepare(prep.find_books(books), prep.read_table(tsv),
                       {"train": 5, "dev": 4, "test": 4, "heldout": 2}, 11, 6, 18, words)
    assert all(b == "11" for b, _ in out["train"]) and all("dog" in s for _, s in out["train"])
    assert all(b == "22" for b, _ in out["dev"]) and all(b == "33" for b, _ in out["test"])
    assert len(out["heldout"]) == 2 and len(out["teacher"]) + 2 == len(set(out["teacher"]) | set(out["heldout"]))
    again = prep.prepare(prep.find_books(books), prep.read_table(tsv),
                         {"train": 5, "dev": 4, "test": 4, "heldout": 2}, 11, 6, 18, words)
    assert again == out
    with pytest.raises(prep.TextError, match="only 12 usable sentences"):
        prep.prepare(prep.find_books(books), prep.read_table(tsv),
                     {"train": 13, "dev": 4, "test": 4, "heldout": 2}, 11, 6, 18, words)
    (books / "pg33.txt").unlink()
    with pytest.raises(prep.TextError, match=r"books not found.*#33 \(C\)"):
        prep.prepare(prep.find_books(books), prep.read_table(tsv), {"train": 5, "dev": 4, "test": 4, "heldout": 2},
                     11, 6, 18, words)


def test_bad_table(prep, tmp_path):
    tsv = tmp_path / "books.tsv"
    tsv.write_text("gutenberg_id\tsplit\tcategory\ttitle\n11\tvalid\tx\tA\n")
    with pytest.raises(prep.TextError, match=r"books.tsv:2: expected"):
        prep.read_table(tsv)
    tsv.write_text("gutenberg_id\tsplit\tcategory\ttitle\n11\ttrain\tx\tA\n11\tdev\tx\tA\n")
    with pytest.raises(prep.TextError, match="listed twice: 11"):
        prep.read_table(tsv)
