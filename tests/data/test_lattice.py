"""Tests of the word lattice and its N-best extraction (Kaldi lattice-to-nbest semantics)."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from rescore.data.lattice import Lattice, Path, nbest_paths


def cat_lattice() -> Lattice:
    """docs/formats.md §2.2's CompactLattice: THE (CAT|BAT) SAT."""
    lat = Lattice()
    lat.set_start(0)
    lat.add_arc(0, 1, "THE", 1.53, 210.4)
    lat.add_arc(1, 2, "CAT", 0.8, 95.61)
    lat.add_arc(1, 3, "BAT", 2.1, 97.03)
    lat.add_arc(2, 4, "SAT", 3.2, 301.5)
    lat.add_arc(3, 4, "SAT", 3.2, 299.9)
    lat.set_final(4, 0.61, 0.0)
    return lat


def test_hand_checked_costs_and_order():
    paths = nbest_paths(cat_lattice(), 10, 0.1)
    assert [p.words for p in paths] == [("THE", "CAT", "SAT"), ("THE", "BAT", "SAT")]
    # unscaled sums: 1.53+0.8+3.2+0.61 = 6.14 and 210.4+95.61+301.5 = 607.51
    assert paths[0].graph == pytest.approx(6.14) and paths[0].ac == pytest.approx(607.51)
    assert paths[1].graph == pytest.approx(7.44) and paths[1].ac == pytest.approx(607.33)
    assert paths[0].cost(0.1) == pytest.approx(66.891)


def test_acoustic_scale_changes_order():
    # CAT: 6.14 + 607.51 s, BAT: 7.44 + 607.33 s; BAT wins once 0.18 s > 1.3 (s > 7.2)
    assert [p.words[1] for p in nbest_paths(cat_lattice(), 2, 0.1)] == ["CAT", "BAT"]
    assert [p.words[1] for p in nbest_paths(cat_lattice(), 2, 10.0)] == ["BAT", "CAT"]
    assert [p.words[1] for p in nbest_paths(cat_lattice(), 1, 10.0)] == ["BAT"]


def test_epsilon_paths_give_distinct_sequences_with_the_best_costs():
    lat = Lattice()
    lat.set_start(0)
    lat.add_arc(0, 1, "A", 1.0, 10.0)
    lat.add_arc(0, 2, None, 0.5, 1.0)  # epsilon, then A again: same word sequence, cheaper
    lat.add_arc(2, 1, "A", 0.2, 5.0)
    lat.add_arc(1, 3, None, 0.0, 0.0)
    lat.add_arc(1, 3, "B", 1.0, 1.0)
    lat.set_final(3)
    paths = nbest_paths(lat, 5, 1.0)
    assert [p.words for p in paths] == [("A",), ("A", "B")]
    assert (paths[0].graph, paths[0].ac) == pytest.approx((0.7, 6.0))
    assert (paths[1].graph, paths[1].ac) == pytest.approx((1.7, 7.0))


def test_empty_lattices():
    assert nbest_paths(Lattice(), 3) == []  # no start state
    lat = Lattice()
    lat.set_start(0)
    lat.add_arc(0, 1, "A")
    assert lat.is_empty() and nbest_paths(lat, 3) == []  # no final state
    lat.set_final(0)
    assert nbest_paths(lat, 3) == [Path((), 0.0, 0.0)]  # the empty word sequence


def test_dead_ends_and_negative_costs():
    lat = Lattice()
    lat.set_start(0)
    lat.add_arc(0, 1, "A", -5.0, 0.0)
    lat.add_arc(1, 9, "DEAD", -100.0, 0.0)  # never reaches a final state
    lat.add_arc(1, 2, "B", 1.0, 0.0)
    lat.add_arc(0, 2, "C", -3.0, 0.0)
    lat.set_final(2)
    assert [(p.words, p.graph) for p in nbest_paths(lat, 5, 1.0)] == [(("A", "B"), -4.0), (("C",), -3.0)]


def test_cycles():
    lat = Lattice()
    lat.set_start(0)
    lat.add_arc(0, 1, "A", 1.0, 0.0)
    lat.add_arc(1, 0, None, 1.0, 0.0)  # positive-cost loop
    lat.set_final(1)
    assert [p.words for p in nbest_paths(lat, 3, 1.0)] == [("A",), ("A", "A"), ("A", "A", "A")]
    lat.arcs[1][0] = lat.arcs[1][0]._replace(graph=-2.0)
    with pytest.raises(ValueError, match="negative cost"):
        nbest_paths(lat, 3, 1.0)


def test_bad_n():
    with pytest.raises(ValueError):
        nbest_paths(cat_lattice(), 0)


def _brute_force(lat: Lattice, n: int, scale: float) -> list[tuple[tuple, float]]:
    """All paths of a DAG, the best per word sequence, sorted: the reference for nbest_paths."""
    best: dict[tuple, float] = {}

    def walk(s, words, cost):
        if s in lat.finals:
            g, a = lat.finals[s]
            c = cost + g + scale * a
            if c < best.get(words, math.inf):
                best[words] = c
        for arc in lat.arcs[s]:
            walk(arc.dst, words + ((arc.word,) if arc.word is not None else ()), cost + arc.graph + scale * arc.ac)

    walk(lat.start, (), 0.0)
    return sorted(best.items(), key=lambda kv: kv[1])[:n]


@pytest.mark.parametrize("seed", range(30))
def test_random_dags_match_brute_force(seed):
    rng = random.Random(seed)
    lat = Lattice()
    n_states = rng.randint(2, 8)
    lat.set_start(0)
    lat.ensure_state(n_states - 1)
    for s, d in itertools.combinations(range(n_states), 2):
        for _ in range(rng.choice([0, 0, 1, 2])):
            word = rng.choice([None, "a", "b", "c"])
            lat.add_arc(s, d, word, round(rng.uniform(-1, 3), 3), round(rng.uniform(0, 20), 3))
    for s in range(n_states):
        if rng.random() < 0.4 or s == n_states - 1:
            lat.set_final(s, round(rng.uniform(0, 1), 3), 0.0)
    scale = rng.choice([0.0, 0.1, 1.0])
    n = rng.randint(1, 6)
    got = nbest_paths(lat, n, scale)
    want = _brute_force(lat, n, scale)
    assert [p.cost(scale) for p in got] == pytest.approx([c for _, c in want])
    assert len({p.words for p in got}) == len(got)
    costs = dict(_brute_force(lat, 10**6, scale))
    for p in got:  # each sequence carries the costs of its best path
        assert p.cost(scale) == pytest.approx(costs[p.words])
