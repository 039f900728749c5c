"""A small word lattice and its N best distinct word sequences (Kaldi ``lattice-to-nbest``).

Shared by the lattice readers (Kaldi CompactLattice/Lattice, HTK SLF). A :class:`Lattice` is a
weighted acceptor over words: states ``0 .. num_states-1``, one start state, arcs
``(dst, word, graph, ac)`` with ``word = None`` for an epsilon, and final weights
``(graph, ac)`` on final states. Costs are Kaldi's: ``-ln p``, lower is better, acoustic costs
**unscaled** (docs/formats.md §2.1). A reader whose scores are log probabilities (SLF) stores their
negatives.

:func:`nbest_paths` returns the ``n`` best *distinct* word sequences under the search cost
``graph + acoustic_scale * ac``, as Kaldi's ``lattice-to-nbest --acoustic-scale`` does, and
reports the **unscaled** summed graph and acoustic costs of each. Kaldi relies on the lattice
being word-determinized to get distinct sequences; here distinctness is enforced, and a word
sequence carried by several paths gets its best path's costs (the tropical-semiring value Kaldi's
determinization would keep). The lattice may have epsilon arcs, negative costs and even cycles
(without a negative-cost cycle); non-final states have no final weight (Kaldi's Zero).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable
from typing import NamedTuple

Word = Hashable  # normally str; None is epsilon


class Arc(NamedTuple):
    """One arc: next state, word (``None`` = epsilon), graph cost, acoustic cost (unscaled)."""

    dst: int
    word: Word | None
    graph: float
    ac: float


class Path(NamedTuple):
    """One n-best entry: its words (epsilons removed) and summed unscaled costs."""

    words: tuple
    graph: float
    ac: float

    def cost(self, acoustic_scale: float) -> float:
        """Kaldi's total cost ``graph + acoustic_scale * ac`` (lower is better)."""
        return self.graph + acoustic_scale * self.ac


class Lattice:
    """A weighted word acceptor with (graph, acoustic) costs; see the module docstring."""

    __slots__ = ("start", "arcs", "finals")

    def __init__(self) -> None:
        self.start: int | None = None
        self.arcs: list[list[Arc]] = []
        self.finals: dict[int, tuple[float, float]] = {}

    @property
    def num_states(self) -> int:
        return len(self.arcs)

    @property
    def num_arcs(self) -> int:
        return sum(len(a) for a in self.arcs)

    def add_state(self) -> int:
        self.arcs.append([])
        return len(self.arcs) - 1

    def ensure_state(self, s: int) -> None:
        """Make states ``0 .. s`` exist (text forms name states by number)."""
        if s < 0:
            raise ValueError(f"negative state id {s}")
        while len(self.arcs) <= s:
            self.arcs.append([])

    def set_start(self, s: int) -> None:
        self.ensure_state(s)
        self.start = s

    def add_arc(self, src: int, dst: int, word: Word | None, graph: float = 0.0, ac: float = 0.0) -> None:
        self.ensure_state(max(src, dst))
        self.arcs[src].append(Arc(dst, word, float(graph), float(ac)))

    def set_final(self, s: int, graph: float = 0.0, ac: float = 0.0) -> None:
        self.ensure_state(s)
        self.finals[s] = (float(graph), float(ac))

    def is_empty(self) -> bool:
        """True when no path leads from the start state to a final state (Kaldi: empty lattice)."""
        if self.start is None:
            return True
        good, _ = _useful_states(self.start, lambda s: self.arcs[s], self.finals)
        return self.start not in good


def _cost(graph: float, ac: float, scale: float) -> float:
    """Search cost of a weight; NaN (Kaldi's BadNumber) counts as +Infinity so ordering stays total."""
    c = graph + scale * ac if scale else graph
    return math.inf if c != c else c


def nbest_paths(lattice: Lattice, n: int, acoustic_scale: float = 1.0) -> list[Path]:
    """The ``n`` best distinct word sequences, best first, by ``graph + acoustic_scale * ac``.

    Returns fewer than ``n`` when the lattice holds fewer distinct sequences, and ``[]`` for an
    empty lattice. Costs are reported unscaled and summed along the best path of each sequence
    (:func:`best_distinct_sequences` does the search).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    scale = float(acoustic_scale)
    if lattice.start is None:
        return []
    arcs = lattice.arcs

    def expand(s: int) -> list[SearchArc]:
        return [(a.dst, _cost(a.graph, a.ac, scale), () if a.word is None else (a.word,), (a.graph, a.ac))
                for a in arcs[s]]

    finals = {s: (_cost(g, a, scale), (g, a)) for s, (g, a) in lattice.finals.items()}
    found = best_distinct_sequences(lattice.start, expand, finals, n, start_values=(0.0, 0.0))
    return [Path(words, g, a) for words, (g, a) in found]


#: One arc of the search: (next state, cost (lower is better), words it emits, values summed along the path).
SearchArc = tuple[int, float, tuple, tuple]
_FINAL = -1  # pseudo-state of a completed path in the search


def best_distinct_sequences(start: int, expand: Callable[[int], list[SearchArc]],
                            finals: dict[int, tuple[float, tuple | None]], n: int,
                            start_words: tuple = (), start_cost: float = 0.0,
                            start_values: tuple = ()) -> list[tuple[tuple, tuple]]:
    """The ``n`` best distinct word sequences of a weighted graph, best (lowest cost) first.

    The one N-best search of the project, for Kaldi lattices (:func:`nbest_paths`) and HTK SLF
    lattices (:func:`rescore.data.formats.slf.lattice_nbest`). ``expand(s)`` lists the arcs leaving
    ``s`` as :data:`SearchArc` tuples (an arc may emit no word, or several); ``finals[s] = (cost,
    values)`` makes ``s`` final (``values`` None: nothing is added). Returns ``(words, values)``
    pairs, ``values`` summed from ``start_values`` along the best path of each sequence.

    A* over (state, word prefix) with the exact cost to the end as heuristic (one reverse pass in
    topological order; Bellman-Ford when the graph has cycles, ``ValueError`` for a cycle of
    negative cost): complete paths come out in cost order, and each (state, prefix) is expanded
    once, which removes duplicate word sequences (a sequence carried by several paths gets its best
    path's values, the tropical-semiring value Kaldi's determinization would keep) and bounds the
    work on epsilon-rich lattices. NaN costs sort last. Ties keep discovery order (deterministic;
    Kaldi leaves them undefined).
    """
    adjacency: dict[int, list[SearchArc]] = {}

    def out_arcs(s: int) -> list[SearchArc]:
        a = adjacency.get(s)
        if a is None:
            a = adjacency[s] = expand(s)
        return a

    good, order = _useful_states(start, out_arcs, finals)
    if start not in good:
        return []
    h = _cost_to_end(good, order, out_arcs, finals)
    # word-prefix trie: id -> (parent id, word); 0 is the empty prefix; equal sequences share an id
    parent: list[int] = [-1]
    label: list = [None]
    child: dict[tuple[int, Word], int] = {}

    def extend(pid: int, words: tuple) -> int:
        for word in words:
            q = child.get((pid, word))
            if q is None:
                q = child[(pid, word)] = len(parent)
                parent.append(pid)
                label.append(word)
            pid = q
        return pid

    done: set[tuple[int, int]] = set()
    counter = 0
    f0 = start_cost + h[start]
    # heap entries: (f = g + h, tie counter, g, state, prefix id, values)
    heap: list[tuple] = [(math.inf if f0 != f0 else f0, 0, start_cost, start, extend(0, start_words), start_values)]
    out: list[tuple[tuple, tuple]] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    while heap and len(out) < n:
        _, _, g, s, p, values = heappop(heap)
        if (s, p) in done:
            continue
        done.add((s, p))
        if s == _FINAL:
            out.append((_words(p, parent, label), values))
            continue
        if s in finals:
            fc, fv = finals[s]
            counter += 1
            g2 = g + fc
            v2 = values if fv is None else tuple(x + y for x, y in zip(values, fv, strict=True))
            heappush(heap, (math.inf if g2 != g2 else g2, counter, g2, _FINAL, p, v2))
        for d, c, words, vals in out_arcs(s):
            if d not in good:
                continue
            q = extend(p, words) if words else p
            if (d, q) in done:
                continue
            counter += 1
            g2 = g + c
            f = g2 + h[d]
            if f != f:  # -inf + inf: order such a path last rather than break the heap
                f = math.inf
            heappush(heap, (f, counter, g2, d, q, tuple(x + y for x, y in zip(values, vals, strict=True))))
    return out


def _useful_states(start: int, out_arcs, finals) -> tuple[set[int], list[int] | None]:
    """States reachable from ``start`` that reach a final state, and their topological order (None: cycle)."""
    seen, stack, reach = {start}, [start], []
    rev: dict[int, list[int]] = {}
    while stack:
        s = stack.pop()
        reach.append(s)
        for d, *_ in out_arcs(s):
            rev.setdefault(d, []).append(s)
            if d not in seen:
                seen.add(d)
                stack.append(d)
    good = {s for s in reach if s in finals}
    stack = list(good)
    while stack:
        s = stack.pop()
        for p in rev.get(s, ()):
            if p not in good:
                good.add(p)
                stack.append(p)
    indeg = dict.fromkeys(good, 0)
    for s in good:
        for d, *_ in out_arcs(s):
            if d in good:
                indeg[d] += 1
    ready = [s for s, k in indeg.items() if k == 0]
    order = []
    while ready:
        s = ready.pop()
        order.append(s)
        for d, *_ in out_arcs(s):
            if d in good:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    return good, (order if len(order) == len(good) else None)


def _cost_to_end(good: set[int], order: list[int] | None, out_arcs, finals) -> dict[int, float]:
    """Exact best cost from each useful state to the end (a consistent A* heuristic).

    Acyclic graphs (the normal case) take one reverse topological pass; otherwise a Bellman-Ford
    relaxation, which raises ``ValueError`` for a negative-cost cycle.
    """
    h = {s: math.inf for s in good}
    for s, (c, _) in finals.items():
        if s in good:
            h[s] = math.inf if c != c else c
    if order is not None:
        for s in reversed(order):
            best = h[s]
            for d, c, *_ in out_arcs(s):
                if d in good and c + h[d] < best:
                    best = c + h[d]
            h[s] = best
        return h
    for _ in range(len(good) + 1):
        changed = False
        for s in good:
            for d, c, *_ in out_arcs(s):
                if d in good and c + h[d] < h[s]:
                    h[s] = c + h[d]
                    changed = True
        if not changed:
            return h
    raise ValueError("the lattice has a cycle of negative cost: its best paths are undefined")


def _words(p: int, parent: list[int], label: list) -> tuple:
    words = []
    while p > 0:
        words.append(label[p])
        p = parent[p]
    return tuple(reversed(words))
