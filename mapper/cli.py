"""The `covenant` command line.

    covenant map --acg NAME|PATH --workload NAME|PATH [--layer L] [--objective latency|energy|edp]
                 [--strategy cpsat|exhaustive|random] [--time-limit S] [--no-validate] [--json] [-o PATH]
    covenant show acg NAME|PATH [--json] [--png FILE]
    covenant show workload NAME|PATH [--json] [--png FILE]
    covenant simulate MAPPING.yaml [--json] [--listing] [--seed N] [--acg NAME|PATH]
    covenant run experiments/NAME.yaml [--jobs N] [--out DIR] [--executor local|dask --scheduler ADDR] [--json]
    covenant import MODEL.onnx [-o FILE.yaml] [--dtype int8|float32]

Every --workload (and `show workload`) also accepts an ONNX model (a path ending in .onnx).

Exit status: 0 on success, 1 when a layer has no mapping, a simulated output differs from the reference
or the program breaks a rule of the ACG, 2 for bad input (one line on stderr naming file, line and field).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import networkx as nx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mapper import __version__
from mapper.acg import ACG, load_acg, peak_ops_per_cycle, read_paths, write_paths
from mapper.cli_network import add_compile_parser, add_schedule_parser, cmd_compile, cmd_schedule
from mapper.cost import OBJECTIVES
from mapper.files import save_figure, write_text
from mapper.network import load_model
from mapper.network.onnx_import import import_onnx_yaml
from mapper.spec import SpecError
from mapper.workload import Concat, Workload
from solver import STRATEGIES


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
        "offchip": s.offchip, "banks": s.banks, "double_buffer": s.double_buffer,
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
            "cycles": str(cap.cycles), "peak_ops_per_cycle": float(peak), "pj_per_op": cap.pj_per_op,
            "paths": paths,
        })
    edges = [{"from": e.src, "to": e.dst, "bytes_per_cycle": e.bytes_per_cycle, "pj_per_byte": e.pj_per_byte}
             for e in acg.edges]
    return {"name": acg.name, "source": acg.source, "clock_ghz": acg.clock_ghz, "storages": storages,
            "capabilities": capabilities, "edges": edges}


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


def _row(table: Table, *cells: str) -> None:
    table.add_row(*(escape(c) for c in cells))  # '[m,n]' is an index, not rich markup


def print_acg(console: Console, s: dict) -> None:
    console.print(f"[bold]{s['name']}[/bold]  ({s['source']}, {s['clock_ghz']:g} GHz)")
    t = Table(title="storage", title_justify="left")
    for col in ("node", "capacity", "instances", "total", "banks", "double buf", "port B/cyc",
                "read pJ/B", "write pJ/B"):
        t.add_column(col, justify="left" if col == "node" else "right")
    for st in s["storages"]:
        name = st["name"] + (" (off-chip)" if st["offchip"] else "")
        port = f"{st['bytes_per_cycle']:g}" if st["bytes_per_cycle"] else "-"
        _row(t, name, format_bytes(st["capacity"]), str(st["instances"]), format_bytes(st["total_capacity"]),
                  str(st["banks"]), "yes" if st["double_buffer"] else "no", port,
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
        _row(t, c["node"], c["name"], c["expr"], fixed, ops, c["cycles"], f"{c['peak_ops_per_cycle']:g}",
                  f"{c['pj_per_op']:g}")
    console.print(t)
    t = Table(title="edges", title_justify="left")
    for col in ("from", "to", "B/cycle", "pJ/B"):
        t.add_column(col)
    for e in s["edges"]:
        _row(t, e["from"], e["to"], f"{e['bytes_per_cycle']:g}", f"{e['pj_per_byte']:g}")
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
        _row(t, lyr["name"], lyr["op"] or "expr", lyr["kind"], f"{ins} -> {out}", dtypes,
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


# --------------------------------------------------------------------------------------------------
# Entry point

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="covenant", description="An ACG-driven mapper for DL accelerators.")
    parser.add_argument("--version", action="version", version=f"covenant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="describe an accelerator (ACG) or a workload")
    show.add_argument("what", choices=("acg", "workload"))
    show.add_argument("spec", help="the name of a shipped spec (e.g. genesys, resnet50), a YAML path or, for a "
                                   "workload, an ONNX model (.onnx)")
    show.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    show.add_argument("--png", metavar="FILE", help="also draw the graph into FILE (PNG)")
    mp = sub.add_parser("map", help="map a workload's layers onto an ACG and validate them on the simulator")
    mp.add_argument("--acg", required=True, help="the ACG: a shipped name (genesys) or a YAML path")
    mp.add_argument("--workload", required=True,
                    help="the workload: a shipped name (resnet50), a YAML path or an ONNX model (.onnx)")
    mp.add_argument("--layer", action="append", help="map only this layer (repeatable)")
    mp.add_argument("--objective", choices=OBJECTIVES, default="latency", help="what to minimise (default latency)")
    mp.add_argument("--strategy", choices=STRATEGIES, default="cpsat", help="the search strategy (default cpsat)")
    mp.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                    help="per-layer time limit in seconds (default 10); cpsat returns its best with the gap")
    mp.add_argument("--seed", type=int, default=0, help="seed of random search and of the input tensors")
    mp.add_argument("--no-validate", action="store_true", help="skip the simulator check")
    mp.add_argument("--json", action="store_true", help="print one JSON document")
    mp.add_argument("-o", "--output", metavar="PATH",
                    help="write the mappings: one layer -> this YAML file; several -> this folder, one file each")
    sim = sub.add_parser("simulate", help="execute a mapping on the simulator and check it against the reference")
    sim.add_argument("mapping", help="a mapping YAML file (as `covenant map -o` writes)")
    sim.add_argument("--acg", help="the ACG to use (default: the shipped one the mapping names)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the random input tensors (default 0)")
    sim.add_argument("--json", action="store_true", help="print one JSON document")
    sim.add_argument("--listing", action="store_true", help="print the lowered program, one instruction a line")
    add_compile_parser(sub)
    add_schedule_parser(sub)
    run = sub.add_parser("run", help="run a YAML experiment: results database, report.md, CSV and plots")
    run.add_argument("experiment", help="an experiment YAML file, or the name of a shipped one in experiments/")
    run.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                     help="worker processes (default: the number of cores)")
    run.add_argument("--out", metavar="DIR", help="output folder (default results/NAME)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local process pool (default) or a dask.distributed cluster")
    run.add_argument("--scheduler", metavar="ADDR",
                     help="the dask scheduler address (tcp://host:8786); without it, dask starts a local cluster")
    run.add_argument("--json", action="store_true", help="print the result rows as one JSON document")
    imp = sub.add_parser("import", help="convert an ONNX model into a workload YAML (one layer per computing node)")
    imp.add_argument("model", help="an ONNX model file (.onnx); weights may be absent, only shapes are read")
    imp.add_argument("-o", "--output", metavar="FILE", help="write the workload YAML here (default: stdout)")
    imp.add_argument("--dtype", choices=("int8", "float32"), default="int8",
                     help="int8 operands with int32 accumulators (default), or float32 throughout")
    return parser


def cmd_import(args: argparse.Namespace, console: Console) -> int:
    out = Path(args.output) if args.output else None
    if out is not None and not out.parent.is_dir():
        raise SpecError(args.output, None, "-o", "the folder does not exist")
    if out is not None and out.is_dir():
        raise SpecError(args.output, None, "-o", "expected a file name, got a folder")
    text, wl = import_onnx_yaml(args.model, args.dtype)
    if out is None:
        sys.stdout.write(text)
    else:
        write_text(out, text)
        console.print(f"wrote {escape(str(out))}: {len(wl.layers)} layers, {wl.macs:,} MACs", highlight=False)
    return 0


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mapper.experiment import load_experiment
    from mapper.files import file_in
    from mapper.report import write_report
    from mapper.runner import experiment_rows, run_experiment

    if args.jobs < 1:
        raise SpecError("--jobs", None, "", f"expected a positive number of workers, got {args.jobs}")
    if args.scheduler and args.executor != "dask":
        raise SpecError("--scheduler", None, "", "only used with --executor dask")
    exp = load_experiment(args.experiment)
    out = Path(args.out) if args.out else Path("results") / file_in("results", exp.name, suffix="").name
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"experiment {exp.name}", total=None)

        def progress(advance: int, total: int, title: str) -> None:
            bar.update(task, advance=advance, total=total, description=escape(title or f"experiment {exp.name}"))

        summary = run_experiment(exp, out, args.jobs, args.executor, args.scheduler, progress)
    rows = experiment_rows(exp, out)
    written = write_report(exp, rows, out, summary.cases)
    if args.json:
        print(json.dumps({"experiment": exp.name, "out": str(out), "cases": summary.cases,
                          "computed": summary.computed, "reused": summary.reused, "rows": rows}, indent=2))
    else:
        failed = [r for r in rows if r["status"] in ("error", "missing") or r["valid"] is False]
        console.print(f"experiment {exp.name}: {summary.cases} cases, {summary.computed} results computed now, "
                      f"{summary.reused} found in {out / 'results.db'}", highlight=False)
        for r in failed[:10]:
            console.print(f"  {escape(r['layer'])} on {escape(r['acg'])} ({escape(r['strategy'])}): "
                          f"{escape(r['error'] or r['status'])}", highlight=False)
        console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
    return 1 if failed else 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    if args.what == "acg":
        spec = load_acg(args.spec)
        summary, printer, drawer = acg_summary(spec), print_acg, draw_acg
    else:
        spec = load_model(args.spec)
        summary, printer, drawer = workload_summary(spec), print_workload, draw_workload
    if args.png:
        png = Path(args.png)
        if not png.parent.is_dir():
            raise SpecError(args.png, None, "--png", "the folder does not exist")
        drawer(spec, args.png)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        printer(console, summary)
        if args.png:
            console.print(f"drew {args.png}")
    return 0


def program_listing(program) -> list[str]:
    """One readable line per instruction of a lowered program."""
    from mapper.program import Alloc, Compute, Free, Init, Move

    def region(r):
        return "[" + ", ".join(f"{lo}:{hi}" for lo, hi in r) + "]"

    lines = []
    for k, ins in enumerate(program.instructions):
        if isinstance(ins, Alloc):
            text = f"alloc    {ins.tensor:<4} {ins.storage}{region(ins.region)} slot {ins.slot}"
        elif isinstance(ins, Free):
            text = f"free     {ins.tensor:<4} {ins.storage}{region(ins.region)}"
        elif isinstance(ins, Init):
            text = f"init     {ins.tensor:<4} {ins.storage}{region(ins.region)}"
        elif isinstance(ins, Move):
            text = f"move     {ins.tensor:<4} {ins.src} -> {ins.dst} {region(ins.region)}"
        elif isinstance(ins, Compute):
            ranges = " ".join(f"{d}={lo}:{hi}" for d, lo, hi in ins.ranges if hi - lo != 1 or lo)
            text = f"compute  {ins.capability} {ranges}"
        else:
            text = repr(ins)
        lines.append(f"{k:>7}  {text}")
    return lines


def cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    from mapper.acg import load_acg
    from mapper.cost import evaluate
    from mapper.flow import size_problem
    from mapper.lower import lower
    from mapper.mapping import load_mapping
    from sim.machine import SimError, simulate

    acg = load_acg(args.acg) if args.acg else None
    mapping = load_mapping(args.mapping, acg)
    acg = acg or load_acg(mapping.acg)
    problem = size_problem(mapping, evaluate(mapping, acg))
    if problem:
        print(f"covenant: error: layer {mapping.layer.name}: not simulated: {problem}", file=sys.stderr)
        return 1
    program = lower(mapping)
    try:
        result = simulate(program, acg, seed=args.seed)
    except SimError as exc:
        print(f"covenant: simulation failed: {exc}", file=sys.stderr)
        return 1
    doc = {
        "acg": acg.name, "layer": mapping.layer.name, "capability": mapping.binding.capability,
        "valid": result.matches_reference, "cycles": result.cycles, "energy_pj": result.energy_pj,
        "utilization": result.utilization, "macs": mapping.layer.macs, "ops": result.ops,
        "instructions": result.instructions, "computes": result.computes,
        "busy_cycles": result.busy, "buffer_peaks": result.buffer_peaks, "seed": args.seed,
        "predicted": dict(mapping.predicted),
    }
    if args.json:
        if args.listing:
            doc["listing"] = program_listing(program)
        print(json.dumps(doc, indent=2))
    else:
        if args.listing:
            for line in program_listing(program):
                console.print(escape(line), highlight=False)
        t = Table(title=f"{mapping.layer.name} on {acg.name} ({mapping.binding.describe()})", title_justify="left")
        t.add_column("figure")
        t.add_column("value", justify="right")
        rows = [("output equals reference", "yes" if result.matches_reference else "NO"),
                ("cycles", f"{result.cycles:,.0f}"), ("energy", f"{result.energy_pj / 1e6:,.3f} uJ"),
                ("utilization", f"{100 * result.utilization:.1f} %"),
                ("instructions", f"{result.instructions:,} ({result.computes:,} computes)")]
        rows += [(f"busy {engine}", f"{cycles:,.0f}") for engine, cycles in sorted(result.busy.items())]
        rows += [(f"peak {storage}", format_bytes(n)) for storage, n in result.buffer_peaks.items()]
        for row in rows:
            _row(t, *row)
        console.print(t)
    return 0 if result.matches_reference else 1


def cmd_map(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mapper.files import files_in
    from mapper.flow import Options, map_layers, succeeded, totals
    from mapper.mapping import write_mapping

    if not args.time_limit > 0:
        raise SpecError("--time-limit", None, "", f"expected a positive number of seconds, got {args.time_limit:g}")
    acg = load_acg(args.acg)
    wl = load_model(args.workload)
    layers = list(wl.layers)
    if args.layer:
        names = {layer.name for layer in layers}
        unknown = [n for n in args.layer if n not in names]
        if unknown:
            raise SpecError(wl.source or args.workload, None, "--layer",
                            f"no layer named '{unknown[0]}' (layers: {', '.join(list(names)[:8])}, ...)")
        layers = [layer for layer in layers if layer.name in args.layer]
    out = Path(args.output) if args.output else None
    into_folder = out is not None and (len(layers) > 1 or out.is_dir())  # else one layer into that file
    if out is not None:
        folder = out if into_folder else out.parent
        if into_folder and out.exists() and not out.is_dir():
            raise SpecError(args.output, None, "-o", "several layers are written to a folder, but this is a file")
        if not (folder.is_dir() or (into_folder and folder.parent.is_dir())):
            raise SpecError(args.output, None, "-o", "the folder does not exist")
    options = Options(args.strategy, args.objective, args.time_limit, not args.no_validate, args.seed)

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=len(layers) < 2 or not err.is_terminal) as bar:
        task = bar.add_task(f"mapping {wl.name} on {acg.name}", total=len(layers))
        results = map_layers(layers, acg, options, progress=lambda name: bar.update(task, advance=1,
                                                                                      description=name),
                             workload=wl.name)
    records = [r for r, _ in results]
    if out is not None:
        mapped = [(r.name, m) for r, m in results if m is not None]
        paths = files_in(out, [name for name, _ in mapped]) if into_folder else {name: out for name, _ in mapped}
        try:
            if into_folder:
                out.mkdir(exist_ok=True)
            for name, mapping in mapped:
                write_mapping(mapping, paths[name])
        except OSError as exc:
            raise SpecError(args.output, None, "-o", f"cannot write the mappings: {exc.strerror or exc}") from None
    doc = {"acg": acg.name, "workload": wl.name, "objective": args.objective, "strategy": args.strategy,
           "layers": [r.to_dict() for r in records], "total": totals(records)}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_map(console, doc)
        if out is not None:
            console.print(f"wrote {out}")
    return 0 if all(succeeded(r, options.validate) for r in records) else 1


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
        _row(t, name, r["capability"] or "-", status, format_count(r["macs"]), num(r["predicted_cycles"]),
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


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends a run like Ctrl-C: finished results are already stored


class _Console(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError  # handled in `main` like any other write to a closed pipe (rich exits 1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    console = _Console(width=200 if not sys.stdout.isatty() else None)
    try:
        commands = {"show": cmd_show, "simulate": cmd_simulate, "map": cmd_map, "run": cmd_run, "compile": cmd_compile,
                    "import": cmd_import, "schedule": cmd_schedule}
        code = commands[args.command](args, console)
        sys.stdout.flush()  # a reader that went away shows here, not as a message at exit
        return code
    except BrokenPipeError:  # `covenant ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 0
    except SpecError as exc:
        print(f"covenant: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("covenant: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
