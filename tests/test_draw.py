"""Graph pictures: the layered layout (a pure function) and the PNG files."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.app.draw import draw_acg, draw_workload
from mapper.app.layout import SLOT_WIDTH, layered, layered_layout
from mapper.importers.model import load_model
from mapper.spec.acg import load_acg
from mapper.spec.loader import PROJECT_ROOT

WORKLOADS = sorted(p.stem for p in (PROJECT_ROOT / "workloads").glob("*.yaml"))


def _check(graph: nx.DiGraph, pos: dict) -> None:
    assert set(pos) == set(graph)
    assert all(pos[u][1] < pos[v][1] for u, v in graph.edges)  # every edge goes down a layer or more
    assert len(set(pos.values())) == len(pos)  # no two nodes on one spot


def _check_slots(graph: nx.DiGraph, widths: dict) -> None:
    """Boxes of one layer do not overlap, and an edge that skips layers passes each of them beside
    every box of that layer (through its own slot), never behind one."""
    layout = layered(graph, None, widths)
    spans = {}
    for n, (x, y) in layout.pos.items():
        spans.setdefault(y, []).append((x - widths[n] / 2, x + widths[n] / 2))
    for (u, v), slots in layout.slots.items():
        assert [y for _, y in slots] == list(range(layout.pos[u][1] + 1, layout.pos[v][1]))
        for x, y in slots:
            spans[y].append((x - SLOT_WIDTH / 2, x + SLOT_WIDTH / 2))
    for row in spans.values():
        row.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(row, row[1:], strict=False))


@pytest.mark.parametrize("name", WORKLOADS)
def test_layout_of_shipped_workloads(name: str) -> None:
    graph = load_model(name).graph
    pos = layered_layout(graph)
    _check(graph, pos)
    assert pos == layered_layout(graph.copy())  # deterministic
    _check_slots(graph, {n: 1.0 + len(n) / 10 for n in graph})


@st.composite
def dags(draw) -> nx.DiGraph:
    n = draw(st.integers(1, 14))
    edges = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30))
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((u, v) for u, v in edges if u < v)
    return graph


@settings(max_examples=60, deadline=None)
@given(dags())
def test_layout_of_random_dags(graph: nx.DiGraph) -> None:
    _check(graph, layered_layout(graph))
    _check_slots(graph, {n: 0.5 + (n % 3) for n in graph})


def test_layout_with_given_levels_keeps_them() -> None:
    acg = load_acg("genesys")
    levels = {n: 0 if n == "DRAM" else 2 if n in acg.computes else 1 for n in acg.graph}
    pos = layered_layout(acg.graph, levels)
    assert {n: y for n, (_, y) in pos.items()} == levels and len(set(pos.values())) == len(pos)


def test_pngs_are_atomic_valid_and_deterministic(tmp_path: Path) -> None:
    wl = load_model("resnet18")
    first, second, acg_png = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "acg.png"
    draw_workload(wl, str(first))
    draw_workload(wl, str(second))
    draw_acg(load_acg("genesys"), str(acg_png))
    for png in (first, second, acg_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()
    assert sorted(tmp_path.iterdir()) == sorted([first, second, acg_png])  # no temporary file left behind
