"""Graph pictures (`covenant show acg|workload --png`): the layered layout of `mapper.app.layout`,
boxes sized from their labels, edges between adjacent layers straight, edges that skip layers
threaded through the slots the layout keeps free for them (so none hides behind a node), edges
within a layer routed under it. No label is cut: the figure is sized from the graph. matplotlib
only (no graphviz); deterministic.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import networkx as nx  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from mapper.app.cli_output import format_bytes  # noqa: E402
from mapper.app.layout import layered  # noqa: E402
from mapper.spec.acg import ACG  # noqa: E402
from mapper.spec.files import save_figure  # noqa: E402
from mapper.spec.workload import Workload  # noqa: E402

FONT = 8.0  # points, monospace: a character is 0.6 em wide, so a label's width is known before drawing
CHAR_IN = 0.62 * FONT / 72
LINE_IN = 1.25 * FONT / 72
LAYER_GAP_IN = 0.45  # vertical room between two layers' boxes, for edges and their labels
RUN_IN = 0.16  # a gap between layers grows by this for every edge running along it
MAX_SIDE_IN = 580.0  # matplotlib's raster is at most 2**16 pixels a side (at 110 dpi)


@dataclass(frozen=True)
class Box:
    x: float  # centre, inches
    y: float  # centre, inches (grows downwards: layer 0 on top)
    w: float
    h: float


def _label_size(text: str) -> tuple[float, float]:
    lines = text.split("\n")
    return max(len(line) for line in lines) * CHAR_IN + 0.24, len(lines) * LINE_IN + 0.14


def _gap_runs(graph: nx.DiGraph, layer: dict) -> tuple[dict[tuple, int], dict[int, int]]:
    """Edges within a layer run along the gap below it, each at its own height: edge -> its index
    in that gap; and the number of such edges per gap."""
    slots: dict[tuple, int] = {}
    count: dict[int, int] = {}
    for u, v in graph.edges:
        if layer[u] == layer[v]:
            slots[(u, v)] = count.get(layer[u], 0)
            count[layer[u]] = slots[(u, v)] + 1
    return slots, count


def _straight(a: Box, b: Box, shift: float) -> tuple[MplPath, tuple[float, float]]:
    """An edge between adjacent layers, shifted by `shift` when the reverse edge exists too (its
    label then a third of the way from one end, the other's from the other end)."""
    down = 1 if b.y > a.y else -1
    p0, p1 = (a.x + shift, a.y + down * a.h / 2), (b.x + shift, b.y - down * b.h / 2)
    t = 0.5 + (0.17 if shift > 0 else -0.17 if shift < 0 else 0.0)
    label = ((1 - t) * p0[0] + t * p1[0], (1 - t) * p0[1] + t * p1[1])
    return MplPath([p0, p1], [MplPath.MOVETO, MplPath.LINETO]), label


def _threaded(a: Box, b: Box, slots: list[tuple[float, tuple[float, float]]]) -> tuple[MplPath, tuple[float, float]]:
    """An edge across several layers: down (or up) through its slot in each layer it passes
    (`slots`: x and the layer's (top, bottom)), between layers across the gaps."""
    down = 1 if b.y > a.y else -1

    def toward(box: Box, x: float) -> float:  # leave and enter a little toward the slot: apart from the others
        return box.x + max(-1.0, min(1.0, x - box.x)) * min(0.25, max(0.0, box.w / 2 - 0.1))
    verts = [(toward(a, slots[0][0]), a.y + down * a.h / 2)]
    for x, (top, bottom) in slots:
        verts += [(x, top), (x, bottom)] if down > 0 else [(x, bottom), (x, top)]
    verts.append((toward(b, slots[-1][0]), b.y - down * b.h / 2))
    x, (top, bottom) = slots[len(slots) // 2]
    return MplPath(verts, [MplPath.MOVETO] + [MplPath.LINETO] * (len(verts) - 1)), (x, (top + bottom) / 2)


def _under(a: Box, b: Box, gap_y: float) -> tuple[MplPath, tuple[float, float]]:
    """An edge within a layer: out of a's bottom, along the gap below the layer, into b's bottom
    (near the corners facing each other: the middles are for the straight edges)."""
    toward = 1 if b.x >= a.x else -1
    ax_, bx_ = a.x + toward * max(0.0, a.w / 2 - 0.15), b.x - toward * max(0.0, b.w / 2 - 0.15)
    verts = [(ax_, a.y + a.h / 2), (ax_, gap_y), (bx_, gap_y), (bx_, b.y + b.h / 2)]
    return MplPath(verts, [MplPath.MOVETO] + [MplPath.LINETO] * 3), (ax_ + 0.3 * toward, gap_y)


def _geometry(graph: nx.DiGraph, labels: dict, levels: dict | None) -> tuple[dict, dict, dict]:
    """Boxes in inches, each edge's path with its label's spot, and per layer (top, bottom)."""
    sizes = {n: _label_size(labels[n]) for n in graph}
    layout = layered(graph, levels, {n: w for n, (w, _) in sizes.items()})
    layer = {n: y for n, (_, y) in layout.pos.items()}
    runs, per_gap = _gap_runs(graph, layer)
    heights: dict[int, float] = {}
    for n, y in layer.items():
        heights[y] = max(heights.get(y, 0.0), sizes[n][1])
    top, rows, gaps = 0.0, {}, {}
    for y in sorted(heights):
        gaps[y] = LAYER_GAP_IN + RUN_IN * per_gap.get(y, 0)
        rows[y] = (top, top + heights[y])
        top += heights[y] + gaps[y]
    boxes = {n: Box(x, sum(rows[y]) / 2, *sizes[n]) for n, (x, y) in layout.pos.items()}
    paths = {}
    for u, v in graph.edges:
        a, b = boxes[u], boxes[v]
        if (u, v) in layout.slots:
            paths[(u, v)] = _threaded(a, b, [(x, rows[y]) for x, y in layout.slots[(u, v)]])
        elif layer[u] == layer[v]:
            y = layer[u]
            paths[(u, v)] = _under(a, b, rows[y][1] + (runs[(u, v)] + 1) / (per_gap[y] + 1) * gaps[y])
        else:
            shift = (0.06 if str(u) < str(v) else -0.06) if graph.has_edge(v, u) else 0.0
            paths[(u, v)] = _straight(a, b, shift)
    return boxes, paths, {y: (rows[y][0], rows[y][1] + gaps[y]) for y in rows}


def _label_place(graph: nx.DiGraph, edge: tuple, path: MplPath, at: tuple[float, float], edge_labels: dict,
                 boxes: dict) -> tuple[tuple[float, float], str, str] | None:
    """Where an edge's label goes ((x, y), alignment, text), or None: a straight edge's label beside
    it, on the side it leans to; a pair of straight edges with one label shows it once."""
    u, v = edge
    text, (lx, ly), ha = edge_labels.get(edge), at, "center"
    if not text or len(path.vertices) != 2:
        return ((lx, ly), ha, text) if text else None
    (x0, _), (x1, _) = path.vertices
    if graph.has_edge(v, u) and edge_labels.get((v, u)) == text:  # one label says it for both directions
        if str(u) > str(v):
            return None
        lx, ly = path.vertices.mean(axis=0)
    if graph.has_edge(v, u) and edge_labels.get((v, u)) != text:  # each on its own side of the pair
        ha = "left" if str(u) < str(v) else "right"
    elif abs(x1 - x0) > 0.05:
        ha = "left" if (x1 - x0) * (boxes[v].y - boxes[u].y) > 0 else "right"
    return (lx + {"left": 0.05, "right": -0.05, "center": 0.0}[ha], ly), ha, text


def draw_layered(graph: nx.DiGraph, path: str, title: str, labels: dict, levels: dict | None = None,
                 edge_labels: dict | None = None, colors: dict | None = None) -> None:
    """Draw `graph` in layers, top-down, into a PNG written atomically (see the module doc)."""
    boxes, paths, rows = _geometry(graph, labels, levels)
    xs = [x for p, _ in paths.values() for x, _ in p.vertices]
    left = min([b.x - b.w / 2 for b in boxes.values()] + xs) - 0.3
    right = max([b.x + b.w / 2 for b in boxes.values()] + xs) + 0.3
    bottom, top = max(b for _, b in rows.values()), -0.5  # the title's room on top
    width, height = right - left, bottom - top
    scale = min(1.0, MAX_SIDE_IN / max(width, height))  # huge graphs shrink rather than fail
    fig = plt.figure(figsize=(width * scale, height * scale))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)  # layer 0 on top
    ax.axis("off")
    ax.text((left + right) / 2, top + 0.22, title, ha="center", va="center", fontsize=9 * scale, weight="bold")
    for (u, v), (edge_path, at) in paths.items():
        long = len(edge_path.vertices) > 2
        ax.add_patch(FancyArrowPatch(path=edge_path, arrowstyle="-|>", mutation_scale=8 * scale, lw=0.8 * scale,
                                     color="#1f5fa8" if long else "#555555", zorder=1, joinstyle="round"))
        placed = _label_place(graph, (u, v), edge_path, at, edge_labels or {}, boxes)
        if placed:
            (x, y), ha, text = placed
            ax.text(x, y, text, fontsize=(FONT - 1) * scale, family="monospace", zorder=3, ha=ha, va="center",
                    color="#333333", bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})
    for n, b in boxes.items():
        ax.add_patch(FancyBboxPatch((b.x - b.w / 2, b.y - b.h / 2), b.w, b.h, boxstyle="round,pad=0,rounding_size=0.05",
                                    fc=(colors or {}).get(n, "#cfe2f3"), ec="#333333", lw=0.7 * scale, zorder=2))
        ax.text(b.x, b.y, labels[n], ha="center", va="center", fontsize=FONT * scale, family="monospace", zorder=4)
    save_figure(fig, path)


def draw_acg(acg: ACG, path: str) -> None:
    """Storage by distance from off-chip memory, each compute node below its deepest input."""
    g = acg.graph.copy()
    dist = nx.multi_source_dijkstra_path_length(g.subgraph(acg.storages), set(acg.offchip))
    levels = {n: dist.get(n, 0) for n in acg.storages}
    for node in acg.computes:
        levels[node] = max((levels[u] for u in g.predecessors(node) if u in levels), default=0) + 1
    colors = {n: "#f4cccc" if g.nodes[n]["kind"] == "compute" else
              "#d9d2e9" if acg.storages[n].offchip else "#cfe2f3" for n in g}
    labels = {}
    for n in g:
        if g.nodes[n]["kind"] == "compute":
            labels[n] = n + "\n" + "\n".join(textwrap.wrap(", ".join(c.name for c in acg.computes[n].capabilities),
                                                         36, break_on_hyphens=False))
        else:
            st = acg.storages[n]
            each = f" ({st.instances} x {format_bytes(st.capacity)})" if st.instances > 1 else ""
            labels[n] = f"{n}\n{format_bytes(st.total_capacity)}{each}"
    edge_labels = {(u, v): (f"{d['edge'].bytes_per_cycle:g} B/c" if "edge" in d else ",".join(d["operands"]))
                   for u, v, d in g.edges(data=True)}
    draw_layered(g, path, f"ACG {acg.name}", labels, levels, edge_labels, colors)


def draw_workload(wl: Workload, path: str) -> None:
    """Each layer as a box with its name, op and output shape; edges labelled with the operand."""
    labels = {}
    for layer in wl.layers:
        out = next(t for t in layer.tensors.values() if t.role == "output")
        count = f" x{layer.count}" if layer.count > 1 else ""
        labels[layer.name] = f"{layer.name}{count}\n{layer.op or 'expr'} {'x'.join(map(str, out.shape))}"
    edge_labels = {(u, v): d["operand"] for u, v, d in wl.graph.edges(data=True)}
    draw_layered(wl.graph, path, f"workload {wl.name}", labels, None, edge_labels)
