"""A layered (Sugiyama-style) graph layout, pure: nodes in layers, top-down, and every edge that
spans several layers threaded through a reserved slot in each layer it passes, so that drawn as a
polyline through those slots it crosses no node.

1. Layers: given, or for a DAG the longest path from a source (every edge goes down).
2. Slots: an edge spanning k > 1 layers gets a `Slot` (a narrow dummy node) in each of the k - 1
   layers between its ends.
3. Order within a layer: barycentre sweeps (the mean position of the neighbours in the layer
   above, then below), ties in graph order.
4. Positions: each layer placed where its nodes' neighbours are (nodes under their real
   neighbours, slots under theirs), as close as the nodes' widths and gaps allow: a weighted
   least-squares fit under the ordering constraints (pool-adjacent-violators), slots weighing less
   than nodes, so that a chain runs straight and its skip connections run beside it.

    >>> import networkx as nx
    >>> layout = layered(nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")]))
    >>> {n: layout.pos[n][1] for n in "abc"}, len(layout.slots[("a", "c")])
    ({'a': 0, 'b': 1, 'c': 2}, 1)
    >>> xs = [layout.pos[n][0] for n in "abc"]
    >>> max(xs) - min(xs) < 0.02 and layout.slots[("a", "c")][0][0] - xs[1] > 0.5  # a straight chain, the skip beside
    True
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx

NODE_GAP = 0.35  # between two nodes of a layer (in the widths' unit)
SLOT_GAP = 0.08  # beside a slot
SLOT_WIDTH = 0.14
SLOT_WEIGHT = 0.01  # a slot gives way to a node when both want one spot


@dataclass(frozen=True)
class Slot:
    """The place an edge (u, v) takes in layer `y` between its ends."""

    u: Hashable
    v: Hashable
    y: int


@dataclass(frozen=True)
class Layout:
    pos: dict  # node -> (x, layer)
    slots: dict  # edge (u, v) spanning several layers -> [(x, layer)] of its slots, from u to v


def longest_path_levels(graph: nx.DiGraph) -> dict:
    """Layer of each node of a DAG: the longest path from a source."""
    return {n: i for i, gen in enumerate(nx.topological_generations(graph)) for n in gen}


def layered_layout(graph: nx.DiGraph, levels: dict | None = None, widths: dict | None = None) -> dict:
    """Node -> (x, y): y its layer (`levels`, or the longest path from a source: every edge of a DAG
    then goes from a lower layer to a higher one), x the centre of its box of width `widths[node]`
    (default 1), boxes of one layer at least `NODE_GAP` apart."""
    return layered(graph, levels, widths).pos


def layered(graph: nx.DiGraph, levels: dict | None = None, widths: dict | None = None, sweeps: int = 4) -> Layout:
    """The layout of `graph` with the slots of its long edges (see the module doc)."""
    levels = dict(levels) if levels is not None else longest_path_levels(graph)
    width = {n: (widths or {}).get(n, 1.0) for n in graph}
    rows: dict[int, list] = {}
    for n in graph:
        rows.setdefault(levels[n], []).append(n)
    up: dict = {n: [] for n in graph}  # neighbours in the layer above / below, slots included
    down: dict = {n: [] for n in graph}
    chains = {}
    for u, v in graph.edges:
        if levels[u] == levels[v]:
            continue
        step = 1 if levels[v] > levels[u] else -1
        chain = [u, *(Slot(u, v, y) for y in range(levels[u] + step, levels[v], step)), v]
        for s in chain[1:-1]:
            rows[s.y].append(s)
            levels[s], width[s], up[s], down[s] = s.y, SLOT_WIDTH, [], []
        for a, b in zip(chain, chain[1:], strict=False):
            top, bottom = (a, b) if levels[a] < levels[b] else (b, a)
            down[top].append(bottom)
            up[bottom].append(top)
        if len(chain) > 2:
            chains[(u, v)] = chain[1:-1]
    rank = {n: i for i, n in enumerate(n for y in sorted(rows) for n in rows[y])}
    _order(rows, up, down, rank, sweeps)
    x = _place(rows, up, down, width)
    return Layout({n: (x[n], levels[n]) for n in graph},
                  {e: [(x[s], s.y) for s in chain] for e, chain in chains.items()})


def _order(rows: dict, up: dict, down: dict, rank: dict, sweeps: int) -> None:
    """Barycentre ordering of every layer, in place (ties keep graph order: deterministic)."""
    col = {n: i for row in rows.values() for i, n in enumerate(row)}
    order = sorted(rows)
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        for y in order if downward else reversed(order):
            near_of = up if downward else down

            def key(n, near_of=near_of):
                near = [col[m] for m in near_of[n]]
                return (sum(near) / len(near) if near else col[n], rank[n])
            rows[y].sort(key=key)
            col.update({n: i for i, n in enumerate(rows[y])})


def _place(rows: dict, up: dict, down: dict, width: dict) -> dict:
    """x of every node and slot: passes down, up and down again, each layer fitted to its
    neighbours in the layer just placed."""
    x = {}
    for y in sorted(rows):  # start packed and centred
        row = rows[y]
        offsets = _offsets(row, width)
        for n, off in zip(row, offsets, strict=True):
            x[n] = off - offsets[-1] / 2
    order = sorted(rows)
    for near_of, layers in ((up, order[1:]), (down, list(reversed(order))[1:]), (up, order[1:])):
        for y in layers:
            row = rows[y]
            targets, weights = [], []
            for n in row:
                near = near_of[n]
                real = [m for m in near if not isinstance(m, Slot)]
                pick = real if real and not isinstance(n, Slot) else near
                targets.append(sum(x[m] for m in pick) / len(pick) if pick else x[n])
                weights.append(SLOT_WEIGHT if isinstance(n, Slot) else 1.0 if pick else 0.3)
            for n, value in zip(row, _fit(targets, weights, _offsets(row, width)), strict=True):
                x[n] = value
    return x


def _offsets(row: list, width: dict) -> list[float]:
    """The smallest x of each element relative to the first, widths and gaps respected."""
    out = [0.0]
    for a, b in zip(row, row[1:], strict=False):
        gap = NODE_GAP if not (isinstance(a, Slot) or isinstance(b, Slot)) else SLOT_GAP
        out.append(out[-1] + (width[a] + width[b]) / 2 + gap)
    return out


def _fit(targets: list[float], weights: list[float], offsets: list[float]) -> list[float]:
    """Positions p minimising sum w (p - target)^2 with p[i+1] - p[i] >= offsets[i+1] - offsets[i]:
    with q = p - offsets it is an isotonic regression, solved by pooling adjacent violators.

    >>> _fit([0.0, 0.0], [1.0, 1.0], [0.0, 2.0])
    [-1.0, 1.0]
    """
    blocks: list[list[float]] = []  # [weight, weighted sum, count]
    for t, w, off in zip(targets, weights, offsets, strict=True):
        blocks.append([w, w * (t - off), 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, c2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += c2
    q = [s / w for w, s, c in blocks for _ in range(int(c))]
    return [qi + off for qi, off in zip(q, offsets, strict=True)]
