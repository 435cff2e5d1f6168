"""The network commands of the `covenant` command line (registered by `mapper.app.cli`).

    covenant import MODEL.onnx [-o FILE.yaml] [--dtype int8|float32]
    covenant import zigzag HARDWARE.yaml [--mapping MAPPING.yaml] [-o ACG.yaml]
    covenant compile --acg A --workload W [--objective latency|energy|edp] [--strategy S [--option K=V ...]]
                     [--time-limit S]
                     [--seed N] [--order optimal|file] [--no-validate] [--json] [-o DIR]
    covenant schedule --workload W [--acg A] [--rewrite] [--budget BYTES] [--time-limit S] [--json]

Exit status: 0 when every layer mapped and the network validated end to end (compile), or when the
schedules were found (schedule); 1 when a layer has no mapping or validation fails, or when no order
fits --budget; 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mapper.app.cli_output import format_bytes, format_phases, print_map
from mapper.importers.model import load_model
from mapper.importers.onnx_import import import_onnx_yaml
from mapper.importers.zigzag import import_zigzag
from mapper.mapping.cost import OBJECTIVES
from mapper.mapping.mapping_yaml import write_mapping
from mapper.network.compile import CompileOptions, NetworkResult, compile_network
from mapper.network.rewrite import rewrite_for_memory
from mapper.network.schedule import (
    Schedule,
    file_schedule,
    greedy_schedule,
    memory_graph,
    onchip_capacity,
    optimal_schedule,
)
from mapper.program.memory import MEMORY_MODEL, live_bytes
from mapper.program.network import build_network
from mapper.spec.acg import load_acg
from mapper.spec.files import files_in, write_text
from mapper.spec.loader import SpecError, parse_size
from solver import OptionError, names
from solver.registry import resolve


def add_import_parser(sub) -> None:
    imp = sub.add_parser("import", help="convert an ONNX model into a workload YAML, or (covenant import zigzag "
                                        "HW.yaml) a ZigZag accelerator into an ACG YAML")
    imp.add_argument("model", metavar="MODEL.onnx | zigzag",
                     help="an ONNX model file (.onnx; weights may be absent, only shapes are read), or the word "
                          "'zigzag' followed by a ZigZag hardware YAML file")
    imp.add_argument("hardware", nargs="?", metavar="HARDWARE.yaml", help="with 'zigzag': ZigZag's hardware file")
    imp.add_argument("-o", "--output", metavar="FILE", help="write the workload (ACG) YAML here (default: stdout)")
    imp.add_argument("--dtype", choices=("int8", "float32"), default=None,
                     help="ONNX: int8 operands with int32 accumulators (default), or float32 throughout")
    imp.add_argument("--mapping", metavar="MAPPING.yaml",
                     help="zigzag: ZigZag's mapping file (its spatial unrolling); default: D1 K, D2 C, D3 OX, D4 OY")


def cmd_import(args: argparse.Namespace, console: Console) -> int:
    out = Path(args.output) if args.output else None
    if out is not None and not out.parent.is_dir():
        raise SpecError(args.output, None, "-o", "the folder does not exist")
    if out is not None and out.is_dir():
        raise SpecError(args.output, None, "-o", "expected a file name, got a folder")
    zigzag = args.model == "zigzag" and args.hardware is not None
    if args.model == "zigzag" and args.hardware is None:
        raise SpecError("import zigzag", None, "", "expected a ZigZag hardware file: covenant import zigzag "
                                                   "HARDWARE.yaml [--mapping MAPPING.yaml] [-o ACG.yaml]")
    if not zigzag and args.hardware is not None:
        raise SpecError(args.hardware, None, "", "a second file is taken only after 'zigzag' (covenant import "
                                                 "zigzag HARDWARE.yaml); an ONNX import takes one model")
    if zigzag and args.dtype is not None:
        raise SpecError("--dtype", None, "", "applies to ONNX models; an imported ZigZag array is int8")
    if not zigzag and args.mapping is not None:
        raise SpecError("--mapping", None, "", "applies to 'covenant import zigzag HARDWARE.yaml' only")
    if zigzag:
        text, acg = import_zigzag(args.hardware, args.mapping)
        summary = f"ACG {acg.name}: {len(acg.storages)} storage nodes, {len(acg.edges)} edges, " \
                  f"{len(acg.capabilities)} capabilities"
    else:
        text, wl = import_onnx_yaml(args.model, args.dtype or "int8")
        summary = f"{len(wl.layers)} layers, {wl.macs:,} MACs"
    if out is None:
        sys.stdout.write(text)
    else:
        write_text(out, text)
        console.print(f"wrote {escape(str(out))}: {summary}", highlight=False)
    return 0


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    """--strategy and --option, shared by `map` and `compile` (the names come from solver.registry)."""
    parser.add_argument("--strategy", choices=names(), default="cpsat", help="the search strategy (default cpsat)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the strategy, e.g. --strategy anneal --option steps=5000 (repeatable; "
                             "a wrong one lists the strategy's options)")


def strategy_options(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The --option pairs, checked against the strategy's typed options (a `SpecError` names the wrong one)."""
    given: dict[str, str] = {}
    for text in args.option:
        key, eq, value = text.partition("=")
        if not eq or not key.strip():
            raise SpecError("--option", None, "", f"expected KEY=VALUE, got '{text}'")
        if key.strip() in given:
            raise SpecError("--option", None, "", f"option '{key.strip()}' given twice")
        given[key.strip()] = value.strip()
    try:
        resolve(args.strategy, given, args.seed)
    except OptionError as exc:
        raise SpecError("--option", None, "", str(exc)) from None
    return tuple(given.items())


def add_compile_parser(sub) -> None:
    cp = sub.add_parser("compile", help="compile a whole network: map every layer, plan memory, simulate end to end")
    cp.add_argument("--acg", required=True, help="the ACG: a shipped name (genesys) or a YAML path")
    cp.add_argument("--workload", required=True, help="the network: a shipped name (resnet50) or a YAML path")
    cp.add_argument("--objective", choices=OBJECTIVES, default="latency", help="what to minimise (default latency)")
    add_strategy_arguments(cp)
    cp.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                    help="per distinct layer, in seconds (default 10)")
    cp.add_argument("--seed", type=int, default=0, help="seed of the network's input and weights (default 0)")
    cp.add_argument("--order", choices=("optimal", "file"), default="optimal",
                    help="run the layers in the order with the smallest activation peak (default) or the file's")
    cp.add_argument("--fuse", choices=("auto", "none"), default="auto",
                    help="keep intermediate values on chip where the solver finds it pays (default auto) or "
                         "run layer by layer")
    cp.add_argument("--cores", type=int, default=0, metavar="N",
                    help="on a multi-core ACG, run each step on at most N cores (default: as many as pay)")
    cp.add_argument("--no-validate", action="store_true", help="skip the end-to-end simulation")
    cp.add_argument("--json", action="store_true", help="print one JSON document")
    cp.add_argument("--wide", action="store_true", help="every column of the table, exact figures")
    cp.add_argument("-o", "--output", metavar="DIR",
                    help="write the network program into DIR: network.yaml and one mapping per step")


def cmd_compile(args: argparse.Namespace, console: Console) -> int:
    if not args.time_limit > 0:
        raise SpecError("--time-limit", None, "", f"expected a positive number of seconds, got {args.time_limit:g}")
    if args.cores < 0:
        raise SpecError("--cores", None, "", f"expected a number of cores >= 1, got {args.cores}")
    out = Path(args.output) if args.output else None
    if out is not None and not (out.is_dir() or (not out.exists() and out.parent.is_dir())):
        raise SpecError(args.output, None, "-o", "expected a folder (it or its parent must exist)")
    acg = load_acg(args.acg)
    wl = load_model(args.workload)
    options = CompileOptions(args.objective, args.strategy, args.time_limit, not args.no_validate, args.seed,
                             args.order, args.fuse, args.cores, strategy_options(args))
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"compiling {wl.name} for {acg.name}", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None, description=escape(what))
        result = compile_network(wl, acg, options, progress)
    doc = compile_document(result, acg.name, wl.name, options)
    if out is not None:
        write_program(result, out)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_compile(console, doc, args.wide)
        if out is not None:
            console.print(f"wrote {out}", highlight=False)
    ok = result.mapped and (result.valid is True or not options.validate)
    return 0 if ok else 1


def compile_document(result: NetworkResult, acg: str, workload: str, options: CompileOptions) -> dict:
    """The `covenant compile --json` document: `map`'s, with network totals and the address plan."""
    plan = [{"buffer": p.buffer, "offset": p.offset, "bytes": p.bytes, "live": [p.first, p.last]}
            for p in sorted(result.plan.placements.values(), key=lambda p: p.offset)]
    return {"acg": acg, "workload": workload, "objective": options.objective, "strategy": options.strategy,
            "strategy_options": dict(options.strategy_options), "schedule": options.order,
            "order": [s.layer.name for s in result.network.steps],
            "inputs": list(result.network.inputs),
            "outputs": list(result.network.outputs), "layers": [r.to_dict() for r in result.records],
            "total": result.totals().to_dict(), "error": result.error, "address_plan": plan,
            "fusion": fusion_document(result)}


def fusion_document(result: NetworkResult) -> dict | None:
    """The fused groups (those keeping a value on chip): their steps and each kept value's storage."""
    plan = result.fusion
    if plan is None:
        return None
    steps = result.network.steps
    groups = [{"steps": [s.layer.name for s in steps[g.start:g.stop]], "onchip": dict(g.homes), "objective": g.cost,
               "bands": g.bands, "band_dims": list(g.dims), "band_axis": g.axis if g.bands > 1 else None,
               "halo_rows": g.shared, "halo": ("cached" if g.cache else "recomputed") if g.shared else None,
               "cores": g.cores}
              for g in plan.groups if g.homes]
    return {"groups": groups, "objective_unfused": plan.unfused_cost, "objective_fused": plan.cost,
            "search": plan.search.to_dict()}


def write_program(result: NetworkResult, out: Path) -> None:
    """`network.yaml` (order, steps with their layer and reads, the address plan) and one mapping per step."""
    out.mkdir(exist_ok=True)
    mappings = out / "mappings"
    mappings.mkdir(exist_ok=True)
    mapped = [m for m in result.mappings if m is not None]
    mapped += [m for split in result.splits if split is not None and not split.parallel for _, m in split.results]
    paths = files_in(mappings, [m.layer.name for m in mapped])
    for mapping in mapped:
        write_mapping(mapping, paths[mapping.layer.name])
    net = result.network
    steps = [{"layer": s.layer.name, "op": s.layer.op, "expr": str(s.layer.expr), "reads": dict(s.reads),
              "writes": s.writes} for s in net.steps]
    kept = net.onchip_values()
    for step in steps:
        if step["writes"] in kept:
            step["onchip"] = kept[step["writes"]]  # a fused group keeps the value in this storage
    plan = {p.buffer: {"offset": p.offset, "bytes": p.bytes, "live": [p.first, p.last]}
            for p in result.plan.placements.values()}
    doc = {"format": "covenant-network/1", "network": net.name, "inputs": list(net.inputs),
           "outputs": list(net.outputs), "steps": steps, "address_plan": plan,
           "arena_bytes": result.plan.arena_bytes, "weight_bytes": result.plan.weight_bytes}
    write_text(out / "network.yaml", yaml.safe_dump(doc, sort_keys=False, width=120))


def print_compile(console: Console, doc: dict, wide: bool = False) -> None:
    print_map(console, doc, wide)
    tot = doc["total"]

    def num(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)
    verdict = {True: "validated end to end: every step equals the reference", None: "not simulated",
               False: f"FAILED: {doc['error']}"}[tot["network_valid"]]
    console.print(f"network: {num(tot['simulated_cycles'] or tot['predicted_cycles'])} cycles, "
                  f"{num(tot['energy_pj'] and tot['energy_pj'] / 1e6, '{:,.1f}')} uJ, "
                  f"{format_bytes(tot['dram_bytes'] or 0)} moved off-chip; peak activations "
                  f"{format_bytes(tot['peak_activation_bytes'])} (arena {format_bytes(tot['arena_bytes'])}, "
                  f"weights {format_bytes(tot['weight_bytes'])}); compiled in {tot['compile_seconds']:.1f} s",
                  highlight=False)
    console.print(verdict, highlight=False)
    if format_phases(tot):
        console.print(format_phases(tot), highlight=False)
    staging = tot.get("staging")
    if staging is not None:  # a cold request: staging in, compute, return, one after the other
        console.print(f"staging: {format_bytes(staging['in_bytes'])} in {staging['in_transfers']} transfers "
                      f"{staging['from']} -> {staging['to']} in {num(staging['in_cycles'])} cycles, outputs back in "
                      f"{num(staging['out_cycles'])} cycles ({'simulated' if staging['simulated'] else 'predicted'}); "
                      f"end to end {num(tot['end_to_end_cycles'])} cycles = {num(tot['end_to_end_ms'], '{:,.3f}')} ms, "
                      f"{num(tot['end_to_end_energy_pj'] and tot['end_to_end_energy_pj'] / 1e9, '{:,.3f}')} mJ",
                      highlight=False)
    fits = "fit" if tot["activations_fit_on_chip"] else "do not fit"
    console.print(f"order: {doc['schedule']} (activation peak {format_bytes(tot['peak_activation_bytes'])}, the file's "
                  f"{format_bytes(tot['file_order_peak_bytes'])}); activations {fits} the largest on-chip storage "
                  f"({format_bytes(tot['onchip_bytes'])})", highlight=False)
    if tot["unmapped"]:
        console.print(f"no mapping for: {', '.join(tot['unmapped'])}", highlight=False)
    if tot["split_steps"]:
        split = [f"{r['name']} ({r['cores']})" for r in doc["layers"] if r.get("cores", 1) > 1]
        console.print(f"cores: {tot['split_steps']} steps split over several cores: {', '.join(split)}",
                      highlight=False, soft_wrap=True)
    fusion = doc.get("fusion")
    if fusion is not None:
        gain = fusion["objective_unfused"] / fusion["objective_fused"] if fusion["objective_fused"] else 1.0
        console.print(f"fusion: {len(fusion['groups'])} groups keep {tot['onchip_values']} values on chip; "
                      f"{doc['objective']} {num(fusion['objective_fused'])} vs {num(fusion['objective_unfused'])} "
                      f"layer by layer ({gain:.2f}x, predicted)", highlight=False)
        for g in fusion["groups"]:
            kept = ", ".join(f"{v} in {s}" for v, s in g["onchip"].items())
            halo = f", {g['halo_rows']} halo rows {g['halo']}" if g["halo"] else ""
            cores = f", at once on {g['cores']} cores" if g["cores"] > 1 else ""
            bands = f" (in {g['bands']} bands along {', '.join(dict.fromkeys(g['band_dims']))}{halo}{cores})" \
                if g["bands"] > 1 else ""
            console.print(f"  {' + '.join(g['steps'])}: {kept}{bands}", highlight=False)  # wraps at the width


# --------------------------------------------------------------------------------------------------
# covenant schedule

def add_schedule_parser(sub) -> None:
    sp = sub.add_parser("schedule", help="the layer order with the smallest activation peak (exact DP, as SERENITY)")
    sp.add_argument("--workload", required=True, help="the network: a shipped name (resnet50) or a YAML path")
    sp.add_argument("--acg", help="also say whether the peak fits the ACG's largest on-chip storage")
    sp.add_argument("--rewrite", action="store_true",
                    help="also partition layers that read a concatenation where that lowers the peak")
    sp.add_argument("--budget", metavar="BYTES",
                    help="the memory available (4096, 256KiB, 2MiB): exit 1 if no order fits")
    sp.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                    help="for the exact search, in seconds (default 60); past it, the best order with its gap")
    sp.add_argument("--json", action="store_true", help="print one JSON document")


def cmd_schedule(args: argparse.Namespace, console: Console) -> int:
    if not args.time_limit > 0:
        raise SpecError("--time-limit", None, "", f"expected a positive number of seconds, got {args.time_limit:g}")
    budget = None
    if args.budget is not None:
        budget = parse_size(args.budget)
        if budget is None:
            raise SpecError("--budget", None, "", f"expected a size such as 4096, 256KiB or 2MiB, got '{args.budget}'")
    acg = load_acg(args.acg) if args.acg else None
    wl = load_model(args.workload)
    g = memory_graph(wl)
    best = optimal_schedule(g, budget, args.time_limit)
    # The file's and the greedy order are optimal when they meet the bound the exact search proved.
    found = {kind: (replace(s, lower_bound=max(s.lower_bound, best.lower_bound)), wl, ())
             for kind, s in (("file", file_schedule(g)), ("greedy", greedy_schedule(g)))}
    found["optimal"] = (best, wl, ())
    if args.rewrite:
        rw, rewritten = rewrite_for_memory(wl, args.time_limit, baseline=best)
        found["rewritten"] = (rewritten, rw.workload, rw.rewritten)
    doc = schedule_document(wl.name, len(wl.layers), found)
    smallest = min(s["peak_bytes"] for s in doc["schedules"].values())
    if acg is not None:
        storage, capacity, total = onchip_capacity(acg)
        doc["acg"] = {"name": acg.name, "storage": storage, "capacity_bytes": capacity,
                      "onchip_total_bytes": total, "fits_on_chip": smallest <= capacity}
    if budget is not None:
        doc["budget"] = {"bytes": budget, "fits": smallest <= budget}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_schedule(console, doc)
    return 1 if budget is not None and smallest > budget else 0


def schedule_document(workload: str, layers: int, found: dict[str, tuple[Schedule, object, tuple]]) -> dict:
    """The `covenant schedule --json` document. Every peak and per-step figure is memory.py's, over the
    network program built with the order (the search's own figure must agree: checked here)."""
    schedules = {}
    for kind, (s, wl, rewrites) in found.items():
        net = build_network(wl, list(s.order))
        live = live_bytes(net)
        if max(live) != s.peak_bytes:
            raise AssertionError(f"{kind}: the search's peak {s.peak_bytes} B differs from memory.py's {max(live)} B")
        entry = {"peak_bytes": s.peak_bytes, "order": list(s.order),
                 "steps": [{"layer": st.layer.name, "live_bytes": b} for st, b in zip(net.steps, live, strict=True)],
                 "seconds": s.seconds, "proven_optimal": s.proven_optimal, "lower_bound": s.lower_bound,
                 "gap": s.gap}
        if kind == "rewritten":
            entry["rewrites"] = list(rewrites)
        schedules[kind] = entry
    return {"workload": workload, "layers": layers, "memory_model": MEMORY_MODEL, "schedules": schedules}


def print_schedule(console: Console, doc: dict) -> None:

    file_peak = doc["schedules"]["file"]["peak_bytes"]
    t = Table(title=f"{doc['workload']}: activation peak of {doc['layers']} layers by order", title_justify="left")
    for col, justify in (("order", "left"), ("peak", "right"), ("file / this", "right"), ("seconds", "right"),
                         ("optimal", "left")):
        t.add_column(col, justify=justify)
    for kind, s in doc["schedules"].items():
        bound = format_bytes(s["lower_bound"])
        proven = "proven" if s["proven_optimal"] else f"gap {100 * s['gap']:.1f} % (bound {bound})"
        if kind == "rewritten":
            kind += f" ({len(s['rewrites'])} rewrites)"
        t.add_row(kind, format_bytes(s["peak_bytes"]), f"{file_peak / s['peak_bytes']:.2f}x", f"{s['seconds']:.2f}",
                  proven)
    console.print(t)
    best = min(doc["schedules"].items(), key=lambda kv: kv[1]["peak_bytes"])
    console.print(f"best order ({best[0]}): {', '.join(best[1]['order'])}", highlight=False)
    if "acg" in doc:
        a = doc["acg"]
        verdict = "fits" if a["fits_on_chip"] else "does not fit"
        console.print(f"the peak {format_bytes(best[1]['peak_bytes'])} {verdict} {a['name']}'s largest on-chip storage "
                      f"({a['storage']}, {format_bytes(a['capacity_bytes'])}; all on-chip storage together: "
                      f"{format_bytes(a['onchip_total_bytes'])})", highlight=False)
    if "budget" in doc:
        b = doc["budget"]
        console.print(f"budget {format_bytes(b['bytes'])}: {'fits' if b['fits'] else 'NO order fits'}", highlight=False)
