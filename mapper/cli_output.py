"""What the commands print: JSON summaries of specs, rich tables and graph drawings.

    >>> format_bytes(262144), format_count(118013952)
    ('256 KiB', '118.0M')
"""

from __future__ import annotations

import networkx as nx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mapper.acg import ACG, peak_ops_per_cycle, read_paths, write_paths
from mapper.files import save_figure
from mapper.workload import Concat, Workload


def format_bytes(n: float) -> str:
    """Human-readable binary size: 262144 -> '256 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "B" else f"{n:.4g} {unit}"
        n /= 1024
    raise AssertionError


def format_count(n: float) -> str:
    """Compact count: 118013952 -> '118.0M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:g}"


# --------------------------------------------------------------------------------------------------
# Summaries: one dict per spec, printed as JSON or as tables

def acg_summary(acg: ACG) -> dict:
    storages = [{
        "name": s.name, "capacity": s.capacity, "instances": s.instances, "total_capacity": s.total_capacity,
        "offchip": s.offchip, "double_buffer": s.double_buffer,
        "bytes_per_cycle": s.bytes_per_cycle, "read_pj_per_byte": s.read_pj_per_byte,
        "write_pj_per_byte": s.write_pj_per_byte,
    } for s in acg.storages.values()]
    capabilities = []
    for cap in acg.capabilities:
        peak = peak_ops_per_cycle(cap)
        paths = {}
        for tensor, places in cap.operands.items():
            find = write_paths if tensor == cap.expr.output.tensor else read_paths
            paths[tensor] = [list(p) for place in places for p in find(acg, place)]
        capabilities.append({
            "name": cap.name, "node": cap.node, "expr": str(cap.expr), "kind": cap.expr.kind,
            "fixed_dims": cap.fixed, "streaming_dims": list(cap.streaming_dims),
            "operands": {t: list(p) for t, p in cap.operands.items()}, "dtypes": cap.dtypes,
            "cycles": str(cap.cycles), "interval": str(cap.interval) if cap.interval is not None else None,
            "peak_ops_per_cycle": float(peak), "pj_per_op": cap.pj_per_op,
            "paths": paths,
        })
    edges = [{"from": e.src, "to": e.dst, "bytes_per_cycle": e.bytes_per_cycle, "pj_per_byte": e.pj_per_byte,
              "latency": e.latency} for e in acg.edges]
    return {"name": acg.name, "source": acg.source, "clock_ghz": acg.clock_ghz, "power": acg.power,
            "storages": storages, "capabilities": capabilities, "edges": edges}


def _sources(layer) -> dict:
    return {operand: source.to_yaml() if isinstance(source, Concat) else source
            for operand, source in layer.producers.items()}


def workload_summary(wl: Workload) -> dict:
    layers = [{
        "name": layer.name, "op": layer.op, "expr": str(layer.expr), "kind": layer.expr.kind,
        "dims": layer.dims, "count": layer.count,
        "tensors": {t.name: {"shape": list(t.shape), "dtype": t.dtype, "bytes": t.bytes, "role": t.role}
                    for t in layer.tensors.values()},
        "macs": layer.macs, "ops": layer.points, "bytes": layer.bytes, "inputs": _sources(layer),
    } for layer in wl.layers]
    total = {"layers": len(wl.layers), "macs": wl.macs,
             "ops": sum(lyr.points * lyr.count for lyr in wl.layers),
             "bytes": sum(lyr.bytes * lyr.count for lyr in wl.layers)}
    return {"name": wl.name, "source": wl.source, "layers": layers, "total": total}


def add_row(table: Table, *cells: str) -> None:
    table.add_row(*(escape(c) for c in cells))  # '[m,n]' is an index, not rich markup


def print_acg(console: Console, s: dict) -> None:
    console.print(f"[bold]{s['name']}[/bold]  ({s['source']}, {s['clock_ghz']:g} GHz)")
    t = Table(title="storage", title_justify="left")
    for col in ("node", "capacity", "instances", "total", "double buf", "port B/cyc",
                "read pJ/B", "write pJ/B"):
        t.add_column(col, justify="left" if col == "node" else "right")
    for st in s["storages"]:
        name = st["name"] + (" (off-chip)" if st["offchip"] else "")
        port = f"{st['bytes_per_cycle']:g}" if st["bytes_per_cycle"] else "-"
        add_row(t, name, format_bytes(st["capacity"]), str(st["instances"]), format_bytes(st["total_capacity"]),
                  "yes" if st["double_buffer"] else "no", port,
                  f"{st['read_pj_per_byte']:g}", f"{st['write_pj_per_byte']:g}")
    console.print(t)
    t = Table(title="capabilities", title_justify="left")
    for col in ("node", "capability", "expression", "fixed dims", "operands", "cycles", "peak ops/cyc", "pJ/op"):
        t.add_column(col, justify="right" if col in ("peak ops/cyc", "pJ/op") else "left")
    for c in s["capabilities"]:
        fixed = " ".join(f"{d}={v}" for d, v in c["fixed_dims"].items())
        if c["streaming_dims"]:
            fixed += f" ({','.join(c['streaming_dims'])} stream)"
        ops = " ".join(f"{t}:{'|'.join(p)}:{c['dtypes'][t]}" for t, p in c["operands"].items())
        cycles = c["cycles"] + (f" (every {c['interval']})" if c["interval"] else "")
        add_row(t, c["node"], c["name"], c["expr"], fixed, ops, cycles, f"{c['peak_ops_per_cycle']:g}",
                  f"{c['pj_per_op']:g}")
    console.print(t)
    t = Table(title="edges", title_justify="left")
    for col in ("from", "to", "B/cycle", "pJ/B", "set-up cyc"):
        t.add_column(col)
    for e in s["edges"]:
        add_row(t, e["from"], e["to"], f"{e['bytes_per_cycle']:g}", f"{e['pj_per_byte']:g}", str(e["latency"]))
    console.print(t)


def print_workload(console: Console, s: dict) -> None:
    console.print(f"[bold]{s['name']}[/bold]  ({s['source']})")
    t = Table(show_lines=False)
    for col in ("layer", "op", "kind", "shapes (inputs -> output)", "dtypes", "MACs", "ops", "bytes", "count",
                "inputs from"):
        t.add_column(col, justify="right" if col in ("MACs", "ops", "bytes", "count") else "left")
    for lyr in s["layers"]:
        tensors = lyr["tensors"]
        ins = " ".join(f"{n}{tensors[n]['shape']}" for n, v in tensors.items() if v["role"] == "input")
        out = next(f"{n}{v['shape']}" for n, v in tensors.items() if v["role"] == "output")
        dtypes = "/".join(dict.fromkeys(v["dtype"] for v in tensors.values()))
        src = ", ".join(f"{k}<-" + (f"concat({','.join(v['concat'])};axis={v['axis']})" if isinstance(v, dict) else v)
                        for k, v in lyr["inputs"].items())
        add_row(t, lyr["name"], lyr["op"] or "expr", lyr["kind"], f"{ins} -> {out}", dtypes,
                  format_count(lyr["macs"]), format_count(lyr["ops"]), format_bytes(lyr["bytes"]),
                  str(lyr["count"]), src)
    console.print(t)
    tot = s["total"]
    console.print(f"{tot['layers']} layers, {format_count(tot['macs'])} MACs, {format_count(tot['ops'])} ops, "
                  f"{format_bytes(tot['bytes'])} of tensors (counts included)")


# --------------------------------------------------------------------------------------------------
# Drawings

def draw_graph(graph: nx.DiGraph, levels: dict[str, int], path: str, title: str, labels: dict | None = None,
               edge_labels: dict | None = None, colors: list | None = None) -> None:
    """Draw `graph` top-down (row = level) into a PNG, written atomically (temp file, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nx.set_node_attributes(graph, levels, "level")
    pos = nx.multipartite_layout(graph, subset_key="level", align="horizontal", scale=-1)
    rows = max(levels.values()) + 1
    widest = max(list(levels.values()).count(v) for v in range(rows))
    fig, ax = plt.subplots(figsize=(min(max(6.0, 1.8 * widest), 60), max(4.0, 1.3 * rows)))
    style = "arc3,rad=0.12"  # curved, so that edges both ways between two nodes stay apart
    nx.draw_networkx(graph, pos, ax=ax, labels=labels, node_color=colors or "#cfe2f3", node_size=1800,
                     font_size=8, node_shape="s", connectionstyle=style)
    if edge_labels:
        nx.draw_networkx_edge_labels(graph, pos, edge_labels=edge_labels, font_size=7, ax=ax,
                                     connectionstyle=style)
    ax.set_title(title)
    ax.axis("off")
    save_figure(fig, path)


def draw_acg(acg: ACG, path: str) -> None:
    g = acg.graph.copy()
    # Storage rows by distance from off-chip memory; each compute node below its deepest input.
    dist = nx.multi_source_dijkstra_path_length(g.subgraph(acg.storages), set(acg.offchip))
    levels = {n: dist.get(n, 0) for n in acg.storages}
    for node in acg.computes:
        levels[node] = max((levels[u] for u in g.predecessors(node)), default=0) + 1
    colors = ["#f4cccc" if g.nodes[n]["kind"] == "compute" else
              "#d9d2e9" if acg.storages[n].offchip else "#cfe2f3" for n in g]
    labels = {n: n if g.nodes[n]["kind"] == "compute" else
              f"{n}\n{format_bytes(acg.storages[n].total_capacity)}" for n in g}
    edge_labels = {(u, v): (f"{d['edge'].bytes_per_cycle:g} B/c" if "edge" in d else ",".join(d["operands"]))
                   for u, v, d in g.edges(data=True)}
    draw_graph(g, levels, path, f"ACG {acg.name}", labels, edge_labels, colors)


def draw_workload(wl: Workload, path: str) -> None:
    levels = {n: i for i, gen in enumerate(nx.topological_generations(wl.graph)) for n in gen}
    edge_labels = {(u, v): d["operand"] for u, v, d in wl.graph.edges(data=True)}
    draw_graph(wl.graph.copy(), levels, path, f"workload {wl.name}", None, edge_labels)


def print_map(console: Console, doc: dict) -> None:
    t = Table(title=f"{doc['workload']} on {doc['acg']}: {doc['strategy']}, minimising {doc['objective']}",
              title_justify="left")
    for col, justify in (("layer", "left"), ("capability", "left"), ("status", "left"), ("MACs", "right"),
                         ("predicted", "right"), ("simulated", "right"), ("Δ", "right"), ("util.", "right"),
                         ("energy", "right"), ("solve", "right"), ("gap", "right"), ("valid", "left")):
        t.add_column(col, justify=justify)

    def num(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)

    for r in doc["layers"]:
        delta = None
        if r["predicted_cycles"] and r["simulated_cycles"]:
            delta = 100 * (r["predicted_cycles"] - r["simulated_cycles"]) / r["simulated_cycles"]
        name = r["name"] + (f" x{r['count']}" if r["count"] > 1 else "")
        valid = {True: "yes", False: "NO", None: "-"}[r["valid"]]
        status = r["status"] if not r.get("reused_from") else f"= {r['reused_from']}"
        add_row(t, name, r["capability"] or "-", status, format_count(r["macs"]), num(r["predicted_cycles"]),
             num(r["simulated_cycles"]), num(delta, "{:+.1f} %"),
             num(r["utilization"] and 100 * r["utilization"], "{:.1f} %"),
             num(r["energy_pj"] and r["energy_pj"] / 1e6, "{:,.2f} uJ"), num(r["solve_seconds"], "{:.2f} s"),
             num(r["optimality_gap"] and 100 * r["optimality_gap"], "{:.1f} %"), valid)
    console.print(t)
    for r in doc["layers"]:
        if r["error"] and not r.get("reused_from"):
            console.print(f"[bold]{escape(r['name'])}[/bold]: {escape(r['error'])}", highlight=False)
    tot = doc["total"]
    over = " (over the mapped layers)" if tot["unmapped"] and tot["mapped"] else ""
    console.print(f"{tot['mapped']}/{tot['layers']} layers mapped, {tot['valid']} validated; "
                  f"predicted {num(tot['predicted_cycles'])} cycles, simulated {num(tot['simulated_cycles'])}"
                  f"{over}; solve time {tot['solve_seconds']:.1f} s", highlight=False)
    if tot["unmapped"]:
        shown = ", ".join(tot["unmapped"][:10]) + (", ..." if len(tot["unmapped"]) > 10 else "")
        console.print(f"unmapped: {escape(shown)}", highlight=False)
