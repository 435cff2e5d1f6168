"""Graph pictures (`covenant show acg|workload --png`): a layered layout, boxes sized from their
labels, edges that skip layers drawn as arcs beside the nodes they pass, so no edge hides behind a
node and no label is cut. matplotlib only (no graphviz); deterministic.

    >>> g = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")])
    >>> layered_layout(g)
    {'a': (0.0, 0), 'b': (0.0, 1), 'c': (0.0, 2)}
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

from mapper.acg import ACG  # noqa: E402
from mapper.cli_output import format_bytes  # noqa: E402
from mapper.files import save_figure  # noqa: E402
from mapper.workload import Workload  # noqa: E402

FONT = 8.0  # points, monospace: a character is 0.6 em wide, so a label's width is known before drawing
CHAR_IN = 0.62 * FONT / 72
LINE_IN = 1.25 * FONT / 72
LAYER_GAP_IN = 0.45  # vertical room between two layers' boxes, for edges and their labels
COLUMN_GAP_IN = 0.35
LANE_IN = 0.22  # horizontal step between edges that run beside the same layers
RUN_IN = 0.16  # a gap between layers grows by this for every edge running along it
MAX_SIDE_IN = 580.0  # matplotlib's raster is at most 2**16 pixels a side (at 110 dpi)


def layered_layout(graph: nx.DiGraph, levels: dict | None = None, sweeps: int = 4) -> dict:
    """Node -> (x, y): y is the node's layer (`levels`, or for a DAG the longest path from a source,
    so every edge goes from a lower layer to a higher one), x its column within the layer, ordered by
    the mean column of its neighbours (barycentre sweeps, ties in graph order) and centred on 0."""
    if levels is None:
        levels = {n: i for i, gen in enumerate(nx.topological_generations(graph)) for n in gen}
    rank = {n: i for i, n in enumerate(graph)}
    rows: dict[int, list] = {}
    for n in graph:
        rows.setdefault(levels[n], []).append(n)
    order = sorted(rows)
    col = {n: i for row in rows.values() for i, n in enumerate(row)}

    def sort_row(row: list, neighbours) -> None:
        def key(n):
            near = [col[m] for m in neighbours(n) if levels[m] != levels[n]]
            return (sum(near) / len(near) if near else col[n], rank[n])
        row.sort(key=key)
        col.update({n: i for i, n in enumerate(row)})

    for sweep in range(sweeps):
        down = sweep % 2 == 0
        for y in order if down else reversed(order):
            sort_row(rows[y], graph.predecessors if down else graph.successors)
    return {n: (col[n] - (len(rows[levels[n]]) - 1) / 2, levels[n]) for n in graph}


@dataclass(frozen=True)
class Box:
    x: float  # centre, inches
    y: float  # centre, inches (grows downwards: layer 0 on top)
    w: float
    h: float


def _label_size(text: str) -> tuple[float, float]:
    lines = text.split("\n")
    return max(len(line) for line in lines) * CHAR_IN + 0.24, len(lines) * LINE_IN + 0.14


def _boxes(pos: dict, labels: dict, gaps: dict[int, float]) -> tuple[dict[object, Box], dict[int, tuple[float, float]]]:
    """Boxes in inches (every column of a layer as wide as its widest label, every layer as tall as
    its tallest; `gaps[y]`: the height of the gap below layer y), and per layer its (top, bottom)."""
    sizes = {n: _label_size(labels[n]) for n in pos}
    widths: dict[int, float] = {}
    heights: dict[int, float] = {}
    for n, (_, y) in pos.items():
        widths[y] = max(widths.get(y, 0.0), sizes[n][0] + COLUMN_GAP_IN)
        heights[y] = max(heights.get(y, 0.0), sizes[n][1])
    top, rows = 0.0, {}
    for y in sorted(heights):
        rows[y] = (top, top + heights[y])
        top += heights[y] + gaps[y]
    boxes = {n: Box(x * widths[y], (rows[y][0] + rows[y][1]) / 2, *sizes[n]) for n, (x, y) in pos.items()}
    return boxes, rows


def _gap_runs(routed: list[tuple], layer: dict) -> tuple[dict[tuple, tuple[int, int]], dict[int, int]]:
    """Where each routed edge runs horizontally: (edge, 'a'|'b') -> (gap, slot), gap y being the one
    below layer y, each run at its own height; and the number of runs per gap."""
    slots: dict[tuple, tuple[int, int]] = {}
    count: dict[int, int] = {}
    for u, v in routed:
        if layer[v] > layer[u]:
            ends = (("a", layer[u]), ("b", layer[v] - 1))
        elif layer[v] == layer[u]:
            ends = (("a", layer[u]),)
        else:
            ends = (("a", layer[u] - 1), ("b", layer[v]))
        for end, gap in ends:
            slots[((u, v), end)] = (gap, count.get(gap, 0))
            count[gap] = count.get(gap, 0) + 1
    return slots, count


def _lanes(arcs: list[tuple[object, object]], layer: dict) -> dict[tuple, int]:
    """A lane per arc so that arcs over overlapping layer ranges run apart."""
    lanes: dict[tuple, int] = {}
    taken: list[list[tuple[int, int]]] = []
    for u, v in sorted(arcs, key=lambda e: (abs(layer[e[1]] - layer[e[0]]), str(e))):
        lo, hi = sorted((layer[u], layer[v]))
        if lo == hi:  # edges within one layer share its gap: each gets its own height
            lo, hi = lo - 0.5, hi + 0.5
        lane = next((i for i, spans in enumerate(taken) if all(hi <= a or lo >= b for a, b in spans)), len(taken))
        if lane == len(taken):
            taken.append([])
        taken[lane].append((lo, hi))
        lanes[(u, v)] = lane
    return lanes


def _straight(a: Box, b: Box, shift: float) -> tuple[MplPath, tuple[float, float]]:
    """An edge between adjacent layers, shifted by `shift` when the reverse edge exists too (its
    label then a third of the way from one end, the other's from the other end)."""
    down = 1 if b.y > a.y else -1
    p0, p1 = (a.x + shift, a.y + down * a.h / 2), (b.x + shift, b.y - down * b.h / 2)
    t = 0.5 + (0.17 if shift > 0 else -0.17 if shift < 0 else 0.0)
    label = ((1 - t) * p0[0] + t * p1[0], (1 - t) * p0[1] + t * p1[1])
    return MplPath([p0, p1], [MplPath.MOVETO, MplPath.LINETO]), label


def _routed(a: Box, b: Box, lane_x: float | None, gap_a: float, gap_b: float) -> tuple[MplPath, tuple[float, float]]:
    """An edge that skips layers, goes back or stays in its layer: out of a's bottom (top, for a back
    edge) into the gap beside a's layer (at y `gap_a`), along it to the lane at `lane_x` beside the
    layers it passes, along the lane to the gap beside b's layer (`gap_b`) and into b. Gaps hold no
    boxes and lanes run outside the boxes they pass, so the edge crosses no box. `lane_x` None: an
    edge within a layer, from gap to gap directly."""
    down = 1 if b.y > a.y or (b.y == a.y) else -1
    # Leave and enter near the corner on the lane's side: the straight edges use the middles.
    toward = 1 if (lane_x if lane_x is not None else b.x) >= a.x else -1
    ax_ = a.x + toward * max(0.0, a.w / 2 - 0.15)
    if lane_x is None:  # within a layer: from a's near corner to b's near corner
        bx_ = b.x - toward * max(0.0, b.w / 2 - 0.15)
    else:
        bx_ = b.x + (1 if lane_x >= b.x else -1) * max(0.0, b.w / 2 - 0.15)
    start = (ax_, a.y + down * a.h / 2)
    end_side = -1 if b.y > a.y else 1  # enter from the top when coming down, else from the bottom
    end = (bx_, b.y + end_side * b.h / 2)
    if lane_x is None:
        verts = [start, (ax_, gap_a), (bx_, gap_a), end]
        label = (ax_ + 0.3 * toward, gap_a)  # by its source: the middle is where others cross
    else:
        verts = [start, (ax_, gap_a), (lane_x, gap_a), (lane_x, gap_b), (bx_, gap_b), end]
        label = (lane_x, (gap_a + gap_b) / 2)
    return MplPath(verts, [MplPath.MOVETO] + [MplPath.LINETO] * (len(verts) - 1)), label


def _label_place(graph: nx.DiGraph, edge: tuple, path: MplPath, at: tuple[float, float], edge_labels: dict,
                 routed: bool, boxes: dict) -> tuple[tuple[float, float], str, str] | None:
    """Where an edge's label goes ((x, y), alignment, text), or None: a straight edge's label beside
    it, on the side it leans to; a pair of straight edges with one label shows it once."""
    u, v = edge
    text, (lx, ly), ha = edge_labels.get(edge), at, "center"
    if not text or routed:
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
    """Draw `graph` in layers, top-down, into a PNG written atomically. Edges between adjacent layers
    are straight; the others (skips, back edges, edges within a layer) are routed through the gaps
    between layers and lanes beside the boxes they pass."""
    pos = layered_layout(graph, levels)
    layer = {n: y for n, (_, y) in pos.items()}
    routed = [(u, v) for u, v in graph.edges if abs(layer[v] - layer[u]) != 1]
    lanes = _lanes(routed, layer)
    runs, per_gap = _gap_runs(routed, layer)
    gaps = {y: LAYER_GAP_IN + RUN_IN * per_gap.get(y, 0) for y in set(layer.values())}
    boxes, rows = _boxes(pos, labels, gaps)

    def run_y(edge: tuple, end: str) -> float:
        gap, slot = runs[(edge, end)]
        return rows[gap][1] + (slot + 1) / (per_gap[gap] + 1) * gaps[gap]

    def lane_x(u, v) -> float | None:
        lo, hi = sorted((layer[u], layer[v]))
        passed = [boxes[n] for n in graph if lo < layer[n] < hi]
        if not passed:
            return None
        step = LANE_IN * (lanes[(u, v)] + 1)
        right = max(b.x + b.w / 2 for b in passed) + step
        left = min(b.x - b.w / 2 for b in passed) - step
        if layer[v] < layer[u]:  # back edges on the left, apart from the skips
            return left
        ends = boxes[u].x + boxes[v].x
        return right if abs(2 * right - ends) <= abs(2 * left - ends) else left  # the nearer side

    paths = {}
    for u, v in graph.edges:
        a, b = boxes[u], boxes[v]
        if (u, v) not in lanes:
            shift = (0.06 if str(u) < str(v) else -0.06) if graph.has_edge(v, u) else 0.0
            paths[(u, v)] = _straight(a, b, shift)
            continue
        gap_a = run_y((u, v), "a")
        gap_b = run_y((u, v), "b") if layer[v] != layer[u] else gap_a
        paths[(u, v)] = _routed(a, b, lane_x(u, v), gap_a, gap_b)
    xs = [x for p, _ in paths.values() for x, _ in p.vertices]
    left = min([b.x - b.w / 2 for b in boxes.values()] + xs) - 0.3
    right = max([b.x + b.w / 2 for b in boxes.values()] + xs) + 0.3
    bottom = max(rows[y][1] + gaps[y] for y in rows)
    top = -0.5  # the title's room
    width, height = right - left, bottom - top
    scale = min(1.0, MAX_SIDE_IN / max(width, height))  # huge graphs shrink rather than fail
    fig = plt.figure(figsize=(width * scale, height * scale))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)  # layer 0 on top
    ax.axis("off")
    ax.text((left + right) / 2, top + 0.22, title, ha="center", va="center", fontsize=9 * scale, weight="bold")
    for (u, v), (edge_path, (lx, ly)) in paths.items():
        ax.add_patch(FancyArrowPatch(path=edge_path, arrowstyle="-|>", mutation_scale=8 * scale, lw=0.8 * scale,
                                     color="#1f5fa8" if (u, v) in lanes else "#555555", zorder=1,
                                     joinstyle="round"))
        placed = _label_place(graph, (u, v), edge_path, (lx, ly), edge_labels or {}, (u, v) in lanes, boxes)
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
