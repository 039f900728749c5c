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
from collections.abc import Hashable
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
        return not self._coreachable()

    def _reachable(self) -> list[int]:
        """States reachable from the start, in DFS preorder."""
        if self.start is None:
            return []
        seen = {self.start}
        order, stack = [], [self.start]
        while stack:
            s = stack.pop()
            order.append(s)
            for a in self.arcs[s]:
                if a.dst not in seen:
                    seen.add(a.dst)
                    stack.append(a.dst)
        return order

    def _coreachable(self) -> set[int]:
        """Reachable states from which some final state is reachable (the useful part)."""
        reach = self._reachable()
        rev: dict[int, list[int]] = {}
        for s in reach:
            for a in self.arcs[s]:
                rev.setdefault(a.dst, []).append(s)
        good = {s for s in reach if s in self.finals}
        stack = list(good)
        while stack:
            s = stack.pop()
            for p in rev.get(s, ()):
                if p not in good:
                    good.add(p)
                    stack.append(p)
        return good


def _cost(graph: float, ac: float, scale: float) -> float:
    """Search cost of a weight; NaN (Kaldi's BadNumber) counts as +Infinity so ordering stays total."""
    c = graph + scale * ac if scale else graph
    return math.inf if c != c else c


def _distance_to_final(lat: Lattice, good: set[int], scale: float) -> dict[int, float]:
    """Exact best cost from each useful state to the end (a consistent A* heuristic).

    Acyclic lattices (the normal case) take one reverse topological pass; otherwise a
    Bellman-Ford relaxation, which raises ``ValueError`` for a negative-cost cycle.
    """
    order = _topological(lat, good)
    h = {s: math.inf for s in good}
    for s, (g, a) in lat.finals.items():
        if s in good:
            h[s] = _cost(g, a, scale)
    if order is not None:
        for s in reversed(order):
            best = h[s]
            for arc in lat.arcs[s]:
                if arc.dst in good:
                    c = _cost(arc.graph, arc.ac, scale) + h[arc.dst]
                    if c < best:
                        best = c
            h[s] = best
        return h
    for _ in range(len(good) + 1):
        changed = False
        for s in good:
            for arc in lat.arcs[s]:
                if arc.dst in good:
                    c = _cost(arc.graph, arc.ac, scale) + h[arc.dst]
                    if c < h[s]:
                        h[s] = c
                        changed = True
        if not changed:
            return h
    raise ValueError("the lattice has a cycle of negative cost: its best paths are undefined")


def _topological(lat: Lattice, good: set[int]) -> list[int] | None:
    """A topological order of the useful states, or None when they contain a cycle."""
    indeg = dict.fromkeys(good, 0)
    for s in good:
        for a in lat.arcs[s]:
            if a.dst in good:
                indeg[a.dst] += 1
    ready = [s for s, d in indeg.items() if d == 0]
    order = []
    while ready:
        s = ready.pop()
        order.append(s)
        for a in lat.arcs[s]:
            if a.dst in good:
                indeg[a.dst] -= 1
                if indeg[a.dst] == 0:
                    ready.append(a.dst)
    return order if len(order) == len(good) else None


_FINAL = -1  # pseudo-state of a completed path in the search


def nbest_paths(lattice: Lattice, n: int, acoustic_scale: float = 1.0) -> list[Path]:
    """The ``n`` best distinct word sequences, best first, by ``graph + acoustic_scale * ac``.

    Returns fewer than ``n`` when the lattice holds fewer distinct sequences, and ``[]`` for an
    empty lattice. Costs are reported unscaled and summed along the best path of each sequence.
    A* search over (state, word prefix) with the exact distance to the end as heuristic: complete
    paths come out in cost order, and each (state, prefix) is expanded once, which both removes
    duplicate word sequences and bounds the work on epsilon-rich lattices. Ties keep discovery
    order (deterministic; Kaldi leaves them undefined).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    scale = float(acoustic_scale)
    good = lattice._coreachable()
    if not good or lattice.start not in good:
        return []
    h = _distance_to_final(lattice, good, scale)
    # word-prefix trie: id -> (parent id, word); 0 is the empty prefix
    parent: list[int] = [-1]
    label: list = [None]
    child: dict[tuple[int, Word], int] = {}
    done: set[tuple[int, int]] = set()
    counter = 0
    start = lattice.start
    # heap entries: (f = g + h, tie counter, g, state, prefix id, graph sum, ac sum)
    heap: list[tuple] = [(h[start], 0, 0.0, start, 0, 0.0, 0.0)]
    out: list[Path] = []
    finals, arcs = lattice.finals, lattice.arcs
    adjacency: dict[int, list[tuple]] = {}
    heappush, heappop = heapq.heappush, heapq.heappop
    while heap and len(out) < n:
        _, _, g, s, p, gsum, asum = heappop(heap)
        if (s, p) in done:
            continue
        done.add((s, p))
        if s == _FINAL:
            out.append(Path(_words(p, parent, label), gsum, asum))
            continue
        if s in finals:
            fg, fa = finals[s]
            counter += 1
            g2 = g + _cost(fg, fa, scale)
            heappush(heap, (math.inf if g2 != g2 else g2, counter, g2, _FINAL, p, gsum + fg, asum + fa))
        out_arcs = adjacency.get(s)
        if out_arcs is None:  # built once per visited state: scaled cost and heuristic of the target
            out_arcs = [(a.dst, a.word, _cost(a.graph, a.ac, scale), h[a.dst], a.graph, a.ac)
                        for a in arcs[s] if a.dst in good]
            adjacency[s] = out_arcs
        for d, word, c, hd, ag, aa in out_arcs:
            if word is None:
                q = p
            else:
                q = child.get((p, word))
                if q is None:
                    q = len(parent)
                    child[(p, word)] = q
                    parent.append(p)
                    label.append(word)
            if (d, q) in done:
                continue
            counter += 1
            g2 = g + c
            f = g2 + hd
            if f != f:  # -inf + inf: order such a path last rather than break the heap
                f = math.inf
            heappush(heap, (f, counter, g2, d, q, gsum + ag, asum + aa))
    return out


def _words(p: int, parent: list[int], label: list) -> tuple:
    words = []
    while p > 0:
        words.append(label[p])
        p = parent[p]
    return tuple(reversed(words))
