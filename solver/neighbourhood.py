"""The neighbourhood of a point of the search space: pure functions, one per kind of move.

A neighbour differs from its point in one decision:

- `tile_moves`: one dim's tile chain changes at one or two levels (the others kept), the
  chains of the space that differ from the current one in one or two positions (two: a factor moves
  between levels, e.g. into the instruction, whose tile must divide the one above); a level whose
  set of moving loops changes takes each stationary tensor (loop order) its new loops admit;
- `stationary_moves`: one level's stationary tensor (and so that level's loop order);
- `placement_moves`: one tensor's storage path (buffering bits off the new path dropped);
- `buffering_moves`: one (tensor, storage) double-buffering bit flipped.

`moves` lists every candidate (some may be illegal), `neighbours` keeps the legal ones (admissible
and fitting every storage), `random_neighbour` draws one legal neighbour cheaply.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> from solver.space import greedy_point, layer_spaces, legal
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> space = layer_spaces(layer, acg)[0]
    >>> near = neighbours(space, greedy_point(space, acg), acg)
    >>> len(near) > 0 and all(legal(space, p, acg) is not None for p in near)
    True
"""

from __future__ import annotations

import itertools
import random

from mapper.spec.acg import ACG
from solver.space import Point, Space, double_choices, factors, irrelevant, legal


def tile_moves(space: Space, point: Point) -> list[Point]:
    """Points whose chain of one dim differs from `point`'s at one or two levels. A level whose loops
    the change starts or stops moving takes, in turn, each stationary tensor its new loops admit (the
    loop order that fits the new tiles; else no single move could reach it)."""
    out = []
    before = _moving(space, point)
    for i, (current, options) in enumerate(zip(point.chains, space.options, strict=True)):
        for chain in options:
            if 0 < sum(a != b for a, b in zip(chain, current, strict=True)) <= 2:
                moved = Point(point.chains[:i] + (chain,) + point.chains[i + 1:], point.paths, point.stationary,
                              point.double)
                out += [Point(moved.chains, moved.paths, st, moved.double) for st in _orders(space, moved, before)]
    return out


def _moving(space: Space, point: Point) -> list[frozenset[str]]:
    return [frozenset(d for d, f in level.items() if f > 1) for level in factors(space, point)]


def _orders(space: Space, point: Point, before: list[frozenset[str]]) -> list[tuple[str | None, ...]]:
    """Stationary choices for a point whose tiles changed: a level keeps its choice if its moving
    loops are the same and still admit it, else takes each admitted one."""
    irr = irrelevant(space.layer)
    per_level = []
    for moving, old, x in zip(_moving(space, point), before, point.stationary, strict=False):
        def admits(y: str | None, moving=moving) -> bool:
            if y is None:
                return not moving or any(not irr[d] for d in moving)
            return any(irr[d] == {y} for d in moving)
        keep = moving == old and admits(x)
        per_level.append([x] if keep else [y for y in space.stationary if admits(y)])
    return list(itertools.product(*per_level))


def stationary_moves(space: Space, point: Point) -> list[Point]:
    """Points with another stationary tensor (or none) at one level."""
    return [Point(point.chains, point.paths, point.stationary[:j] + (x,) + point.stationary[j + 1:], point.double)
            for j, current in enumerate(point.stationary) for x in space.stationary if x != current]


def placement_moves(space: Space, point: Point) -> list[Point]:
    """Points with another storage path for one tensor; buffering bits of storages off the new paths go."""
    out = []
    for i, alts in enumerate(space.paths):
        for k in range(len(alts)):
            if k != point.paths[i]:
                paths = point.paths[:i] + (k,) + point.paths[i + 1:]
                on = set(double_choices(space, paths))
                out.append(Point(point.chains, paths, point.stationary, tuple(p for p in point.double if p in on)))
    return out


def buffering_moves(space: Space, point: Point) -> list[Point]:
    """Points with one double-buffering bit flipped (among the storages on the point's paths)."""
    return [Point(point.chains, point.paths, point.stationary, tuple(sorted(set(point.double) ^ {pair})))
            for pair in double_choices(space, point.paths)]


MOVES = (tile_moves, stationary_moves, placement_moves, buffering_moves)


def moves(space: Space, point: Point) -> list[Point]:
    """Every point one decision away (legal or not), in a deterministic order."""
    return [p for kind in MOVES for p in kind(space, point)]


def neighbours(space: Space, point: Point, acg: ACG) -> list[Point]:
    """The legal points one decision away."""
    return [p for p in moves(space, point) if legal(space, p, acg) is not None]


def random_neighbour(space: Space, point: Point, acg: ACG, rng: random.Random, tries: int = 30) -> Point | None:
    """A legal neighbour drawn at random: a kind of move (among those with moves), then a move of it;
    None when `tries` draws give none (then the caller jumps elsewhere)."""
    kinds = [options for options in (kind(space, point) for kind in MOVES) if options]
    for _ in range(tries if kinds else 0):
        candidate = rng.choice(rng.choice(kinds))
        if legal(space, candidate, acg) is not None:
            return candidate
    return None
