#!/usr/bin/env python3
"""Sentences of the books_en benchmark from Project Gutenberg books, split by book.

    python egs/books_en/local/prepare_text.py --books DIR [--table local/books.tsv] [--seed 11]
        [--train 3000] [--dev 500] [--test 1000] [--heldout 2000] [--min_words 6] [--max_words 18]
        --dict cmudict-en-us.dict [--lm en-us.lm.bin] OUTDIR

``--books DIR`` is searched (recursively) for ``*.txt`` files as Project Gutenberg distributes
them; each is identified by the ebook number in its header (``[eBook #1400]``), not by its file
name, so a directory of files fetched from gutenberg.org under any names works. ``--table`` (one
row per book: ``gutenberg_id split category title``) says which book goes where:

* ``train``, ``dev``, ``test``: the books whose sentences are spoken and recognised. Sentences
  are drawn from the books of a split in equal shares (a book with too few sentences gives what
  it has; the rest is drawn from the others), so that no long novel dominates a set.
* ``lm``: the books whose text is the teacher / baseline-LM corpus (``teacher.txt``, every
  sentence of every ``lm`` book that survives normalisation) and its held-out text
  (``heldout.txt``, ``--heldout`` sentences drawn from the same books and removed from
  ``teacher.txt``).
* ``excluded``: not used (the reason is in the table's title column).

Text is normalised the way ASR output looks: the body between Gutenberg's ``*** START`` and
``*** END`` lines, paragraphs joined, split into sentences at ``.``, ``!`` and ``?`` (not after
``Mr.``, ``Mrs.``, ``Dr.``; those become ``mister``, ``missus``, ``doctor``), typographic quotes
and dashes unified, lower case, hyphens and dashes as word breaks, every other punctuation mark
removed (an apostrophe inside a word is kept: ``don't``, ``o'clock``; one at the edge of a word is
a quote mark and dropped unless the dictionary knows the word with it, as ``'tis``, ``'em``).
A sentence with a digit, a non-ASCII letter or an abbreviation left is dropped. A spoken sentence
(train, dev, test) must have ``--min_words`` to ``--max_words`` words, each in the recogniser's
pronunciation dictionary (``--dict``) and in its language model's vocabulary (``--lm``,
pocketsphinx's ``en-us.lm.bin``), so that every reference can be recognised in principle; the
LM corpus keeps sentences of 3 to 60 words, dictionary or not. No sentence is in two outputs.

Writes ``OUTDIR/{train,dev,test}.txt`` (the spoken sentences), ``OUTDIR/teacher.txt``,
``OUTDIR/heldout.txt`` and ``OUTDIR/sources.tsv`` (``<split> <index> <gutenberg_id>``: the book of
every spoken sentence). The same books, table and seed give the same files.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

SPLITS = ("train", "dev", "test")
SIZES = {"train": 3000, "dev": 500, "test": 1000, "heldout": 2000}
HEADER_ID = re.compile(r"\[e-?book #(\d+)\]", re.IGNORECASE)
START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor"}
TITLE_DOT = re.compile(r"\b(Mr|Mrs|Dr|MR|MRS|DR)\.", re.UNICODE)
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'’”)\]_]*\s+")
TRANSLATE = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "—": " ", "–": " ", "-": " ", "_": " ",
                           "\u00a0": " "})
WORD_EDGE_QUOTES = "'"


class TextError(Exception):
    """A book or table that cannot be used, with the file named."""


def read_table(path: Path) -> list[dict[str, str]]:
    """The book table: ``gutenberg_id<TAB>split<TAB>category<TAB>title`` after a header row."""
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or lines[0].split("\t")[:2] != ["gutenberg_id", "split"]:
        raise TextError(f"{path}:1: expected the header 'gutenberg_id<TAB>split<TAB>category<TAB>title'")
    for n, line in enumerate(lines[1:], 2):
        cols = line.split("\t")
        if len(cols) != 4 or not cols[0].isdigit() or cols[1] not in (*SPLITS, "lm", "excluded"):
            raise TextError(f"{path}:{n}: expected 'gutenberg_id split category title' with split in "
                            f"train, dev, test, lm, excluded: {line!r}")
        rows.append(dict(zip(("id", "split", "category", "title"), cols, strict=True)))
    ids = Counter(r["id"] for r in rows)
    dup = [i for i, c in ids.items() if c > 1]
    if dup:
        raise TextError(f"{path}: books listed twice: {', '.join(sorted(dup))}")
    return rows


def find_books(books_dir: Path) -> dict[str, Path]:
    """Gutenberg id -> file, from the header of every ``*.txt`` under ``books_dir``."""
    found: dict[str, Path] = {}
    for path in sorted(books_dir.rglob("*.txt")):
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(8000)
        m = HEADER_ID.search(head)
        if m is None:
            continue  # not a Gutenberg book (for example an error page saved as .txt)
        if m.group(1) in found:
            raise TextError(f"{path}: ebook #{m.group(1)} again (also {found[m.group(1)]})")
        found[m.group(1)] = path
    return found


def book_body(path: Path) -> str:
    """The text between the ``*** START`` and ``*** END`` lines of a Gutenberg file."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    start = next((i for i, ln in enumerate(lines) if START.match(ln)), None)
    end = next((i for i, ln in enumerate(lines) if END.match(ln)), None)
    if start is None or end is None or end <= start:
        raise TextError(f"{path}: no '*** START OF ...' / '*** END OF ...' lines around the book")
    return "\n".join(lines[start + 1:end])


def raw_sentences(body: str) -> list[str]:
    """Paragraphs joined and split into sentences (text still cased and punctuated)."""
    out = []
    for para in re.split(r"\n\s*\n", body):
        para = " ".join(para.split())
        if not para:
            continue
        para = TITLE_DOT.sub(lambda m: m.group(1) + "\u2063", para)  # no sentence end after a title
        out.extend(s.strip() for s in SENTENCE_END.split(para) if s.strip())
    return out


def normalise(sentence: str, known: set[str]) -> str | None:
    """The sentence as ASR output looks (see the module doc), or None when it is dropped."""
    s = unicodedata.normalize("NFC", sentence).translate(TRANSLATE).replace("\u2063", "")
    if re.search(r"\d", s) or re.search(r"\b[A-Za-z]\.[A-Za-z]?\.?", s.replace("...", " ")):
        return None  # numbers, initials and abbreviations are not spoken as written
    words = []
    for tok in re.sub(r"[^\w'\s]", " ", s.lower()).split():
        tok = TITLES.get(tok, tok)
        if tok.strip(WORD_EDGE_QUOTES) != tok and tok not in known:
            tok = tok.strip(WORD_EDGE_QUOTES)
        if not tok:
            continue
        if not re.fullmatch(r"[a-z]+('[a-z]+)*|'[a-z]+", tok):
            return None  # a non-ASCII letter, an underscore or a stray apostrophe
        words.append(tok)
    return " ".join(words) if words else None


def lm_vocabulary(lm_path: Path):
    """A predicate: is a word a unigram of this pocketsphinx language model (read with pocketsphinx)."""
    from functools import lru_cache

    from pocketsphinx import NGramModel

    lm = NGramModel.readfile(str(lm_path))
    zero = lm.prob(["a-word-no-model-has-xyzzy"])  # what the model gives an unknown word
    return lru_cache(maxsize=None)(lambda w: lm.prob([w]) != zero)


def read_dict(path: Path) -> set[str]:
    """Words of a CMU-style dictionary (alternate pronunciations ``word(2)`` folded)."""
    with open(path, encoding="utf-8") as f:
        return {re.sub(r"\(\d+\)$", "", ln.split()[0]) for ln in f if ln.strip()}


def draw(pools: dict[str, list[str]], n: int, r: random.Random, taken: set[str]) -> list[tuple[str, str]]:
    """``n`` distinct sentences in equal shares from the books' ``pools`` (book order fixed)."""
    order = {b: r.sample(p, len(p)) for b, p in pools.items()}
    chosen: list[tuple[str, str]] = []
    live = [b for b in order if order[b]]
    while len(chosen) < n and live:
        share = max(1, (n - len(chosen)) // len(live))
        for b in list(live):
            got = 0
            while order[b] and got < share and len(chosen) < n:
                s = order[b].pop()
                if s not in taken:
                    taken.add(s)
                    chosen.append((b, s))
                    got += 1
            if not order[b]:
                live.remove(b)
    if len(chosen) < n:
        raise TextError(f"only {len(chosen)} usable sentences in books {', '.join(pools)}, {n} wanted")
    order_in_set = r.sample(chosen, len(chosen))
    return order_in_set


def prepare(books: dict[str, Path], table: list[dict[str, str]], sizes: dict[str, int], seed: int,
            min_words: int, max_words: int, dict_words: set[str], in_lm=None) -> dict:
    """Every output split, plus the source book of every spoken sentence and per-book counts."""
    used = [row for row in table if row["split"] != "excluded"]
    missing = [f"#{row['id']} ({row['title']})" for row in used if row["id"] not in books]
    if missing:
        raise TextError(f"books not found (by the ebook number in their header): {', '.join(missing)}")
    spoken_pools: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
    lm_text: list[str] = []
    counts: dict[str, tuple[int, int]] = {}
    seen_lm: set[str] = set()
    for row in used:
        sents = [n for n in (normalise(s, dict_words) for s in raw_sentences(book_body(books[row["id"]]))) if n]
        if row["split"] == "lm":
            kept = [s for s in sents if 3 <= len(s.split()) <= 60]
            for s in kept:
                if s not in seen_lm:
                    seen_lm.add(s)
                    lm_text.append(s)
        else:
            kept = sorted({s for s in sents if min_words <= len(s.split()) <= max_words
                           and all(w in dict_words and (in_lm is None or in_lm(w)) for w in s.split())})
            spoken_pools[row["split"]][row["id"]] = kept
        counts[row["id"]] = (len(sents), len(kept))
    r = random.Random(seed)
    taken: set[str] = set()
    out: dict[str, list] = {}
    for split in ("test", "dev", "train"):
        out[split] = draw(spoken_pools[split], sizes[split], r, taken)
    lm_text = [s for s in lm_text if s not in taken]  # no spoken sentence in the LM text
    held = set(r.sample(range(len(lm_text)), sizes["heldout"]))
    out["heldout"] = [s for i, s in enumerate(lm_text) if i in held]
    out["teacher"] = [s for i, s in enumerate(lm_text) if i not in held]
    out["counts"] = counts
    return out


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--books", type=Path, required=True, help="directory of Project Gutenberg .txt files")
    p.add_argument("--table", type=Path, default=here / "books.tsv", help="which book goes where")
    p.add_argument("--seed", type=int, default=11)
    for name, n in SIZES.items():
        p.add_argument(f"--{name}", type=int, default=n, help=f"sentences in {name} (default {n})")
    p.add_argument("--min_words", type=int, default=6)
    p.add_argument("--max_words", type=int, default=18)
    p.add_argument("--dict", type=Path, required=True, help="the recogniser's pronunciation dictionary")
    p.add_argument("--lm", type=Path, help="the recogniser's language model (pocketsphinx binary)")
    p.add_argument("outdir", type=Path)
    args = p.parse_args(argv)
    try:
        table = read_table(args.table)
        out = prepare(find_books(args.books), table, {k: getattr(args, k) for k in SIZES}, args.seed,
                      args.min_words, args.max_words, read_dict(args.dict),
                      lm_vocabulary(args.lm) if args.lm else None)
    except (TextError, OSError) as e:
        print(f"prepare_text: error: {e}", file=sys.stderr)
        return 1
    args.outdir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        (args.outdir / f"{split}.txt").write_text("".join(s + "\n" for _, s in out[split]), encoding="utf-8")
    for name in ("teacher", "heldout"):
        (args.outdir / f"{name}.txt").write_text("".join(s + "\n" for s in out[name]), encoding="utf-8")
    (args.outdir / "sources.tsv").write_text(
        "split\tindex\tgutenberg_id\n"
        + "".join(f"{split}\t{i}\t{b}\n" for split in SPLITS for i, (b, _) in enumerate(out[split], 1)),
        encoding="utf-8")
    by_split = Counter(row["split"] for row in table)
    print("prepare_text: " + ", ".join(f"{s} {len(out[s])} sentences" for s in (*SPLITS, "teacher", "heldout"))
          + f" from {sum(v for k, v in by_split.items() if k != 'excluded')} books ("
          + ", ".join(f"{k} {v}" for k, v in sorted(by_split.items())) + f") in {args.outdir}")
    for row in table:
        if row["id"] in out["counts"]:
            total, kept = out["counts"][row["id"]]
            print(f"prepare_text:   #{row['id']:>6} {row['split']:<5} {kept:>6} of {total:>6} sentences  {row['title']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
