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

from mapper.app.cli_output import format_bytes, format_phases, print_map, print_wrapped
from mapper.importers.accelforge import import_accelforge
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
from mapper.spec.files import check_output, files_in, make_folder, writable_target, write_text
from mapper.spec.limits import MAX_INT, MAX_NUMBER
from mapper.spec.loader import SpecError, parse_size
from solver import OptionError, names
from solver.cache import CacheError, default_folder, open_cache
from solver.registry import resolve


def add_import_parser(sub) -> None:
    imp = sub.add_parser("import", help="convert an ONNX model into a workload YAML, (covenant import zigzag "
                                        "HW.yaml) a ZigZag accelerator into an ACG YAML, or (covenant import "
                                        "accelforge FILE) an AccelForge architecture or workload")
    imp.add_argument("model", metavar="MODEL.onnx | zigzag | accelforge",
                     help="an ONNX model file (.onnx; weights may be absent, only shapes are read), or the word "
                          "'zigzag' followed by a ZigZag hardware YAML file, or 'accelforge' followed by an "
                          "AccelForge architecture or workload YAML (or its evaluated .json document)")
    imp.add_argument("hardware", nargs="?", metavar="FILE",
                     help="with 'zigzag': ZigZag's hardware file; with 'accelforge': AccelForge's file")
    imp.add_argument("-o", "--output", metavar="FILE", help="write the workload (ACG) YAML here (default: stdout)")
    imp.add_argument("--dtype", choices=("int8", "float32"), default=None,
                     help="ONNX: int8 operands with int32 accumulators (default), or float32 throughout")
    imp.add_argument("--mapping", metavar="MAPPING.yaml",
                     help="zigzag: ZigZag's mapping file (its spatial unrolling); default: D1 K, D2 C, D3 OX, D4 OY")
    imp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                     help="accelforge: a Jinja variable of AccelForge's files (repeatable), e.g. --set DECODE=true")
    imp.add_argument("--python", metavar="PATH", help="accelforge: the Python of an environment with AccelForge "
                                                      "(default $COVENANT_ACCELFORGE_PYTHON)")
    imp.add_argument("--what", choices=("acg", "workload"),
                     help="accelforge: what to import from an evaluated .json document (it holds both)")
    imp.add_argument("--workload", metavar="WORKLOAD.yaml",
                     help="accelforge: the workload an architecture is evaluated for (default: AccelForge's "
                          "three-matmul example)")


def cmd_import(args: argparse.Namespace, console: Console) -> int:
    out = check_output(args.output, "-o") if args.output else None
    if args.model == "accelforge":
        return _import_accelforge(args, out, console)
    _no_accelforge_options(args)
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
        notice = None
        summary = f"ACG {acg.name}: {len(acg.storages)} storage nodes, {len(acg.edges)} edges, " \
                  f"{len(acg.capabilities)} capabilities"
    else:
        text, wl, notice = import_onnx_yaml(args.model, args.dtype or "int8")
        summary = f"{len(wl.layers)} layers, {wl.macs:,} MACs"
    _emit(text, summary, out, console)
    if notice:  # once the workload is written (an error instead is the one line)
        print(f"covenant: note: {notice}", file=sys.stderr)
    return 0


def _import_accelforge(args: argparse.Namespace, out: Path | None, console: Console) -> int:
    if args.hardware is None:
        usage = "covenant import accelforge ARCH.yaml|WORKLOAD.yaml|DOC.json [--set KEY=VALUE]..."
        raise SpecError("import accelforge", None, "", f"expected AccelForge's file: {usage}")
    if args.dtype is not None or args.mapping is not None:
        raise SpecError("--dtype" if args.dtype else "--mapping", None, "", "does not apply to 'import accelforge'")
    text, summary = import_accelforge(args.hardware, args.sets, args.python, args.what, args.workload)
    _emit(text, summary, out, console)
    return 0


def _no_accelforge_options(args: argparse.Namespace) -> None:
    for flag, value in (("--set", args.sets), ("--python", args.python), ("--what", args.what),
                        ("--workload", args.workload)):
        if value:
            raise SpecError(flag, None, "", "applies to 'covenant import accelforge FILE' only")


def _emit(text: str, summary: str, out: Path | None, console: Console) -> None:
    """Print the imported YAML, or write it to `out` and say so."""
    if out is None:
        sys.stdout.write(text)
    else:
        write_text(out, text)
        console.print(f"wrote {escape(str(out))}: {summary}", highlight=False)


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    """--strategy and --option, shared by `map` and `compile` (the names come from solver.registry)."""
    parser.add_argument("--strategy", choices=names(), default="cpsat", help="the search strategy (default cpsat)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the strategy, e.g. --strategy anneal --option steps=5000 (repeatable; "
                             "a wrong one lists the strategy's options)")
    parser.add_argument("--cache", metavar="DIR", help="the solve cache's folder (default $COVENANT_CACHE, else "
                                                      "~/.cache/covenant): a solve made before is reused, checked")
    parser.add_argument("--no-cache", action="store_true", help="solve every layer afresh; read and write no cache")


def cache_folder(args: argparse.Namespace) -> str | None:
    """The solve cache's folder the command uses (None: no cache), opened now so that a cache that
    cannot be used stops the command before any work (`SpecError` naming it)."""
    if args.no_cache:
        return None
    folder = Path(args.cache) if args.cache else default_folder()
    if folder is None:
        return None
    try:
        open_cache(str(folder))
    except CacheError as exc:
        raise SpecError(args.cache or str(folder), None, "--cache", str(exc)) from None
    return str(folder)


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


def check_numbers(args: argparse.Namespace) -> None:
    """The numeric flags of a command (`--time-limit`, `--seed`, `--cores`, those it has), each in its
    range (docs/cli.md#limits), checked before any work: a `SpecError` names the flag."""
    seconds, seed, cores = (getattr(args, name, None) for name in ("time_limit", "seed", "cores"))
    if seconds is not None and not 0 < seconds <= MAX_NUMBER:  # nan and inf too
        raise SpecError("--time-limit", None, "", f"expected a positive number of seconds, at most 2**50, "
                                                  f"got {seconds:g}")
    if seed is not None and not 0 <= seed <= MAX_INT:
        raise SpecError("--seed", None, "", f"expected an integer from 0 to 2**31, got {seed}")
    if cores is not None and not 1 <= cores <= MAX_INT:
        raise SpecError("--cores", None, "", f"expected a number of cores from 1 to 2**31 (leave --cores out for as "
                                             f"many as pay), got {cores}")


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
    cp.add_argument("--cores", type=int, metavar="N",
                    help="on a multi-core ACG, run each step on at most N >= 1 cores (default: as many as pay)")
    cp.add_argument("--no-validate", action="store_true", help="skip the end-to-end simulation")
    cp.add_argument("--json", action="store_true", help="print one JSON document")
    cp.add_argument("--wide", action="store_true", help="every column of the table, exact figures")
    cp.add_argument("-o", "--output", metavar="DIR",
                    help="write the network program into DIR: network.yaml and one mapping per step")


def cmd_compile(args: argparse.Namespace, console: Console) -> int:
    out = check_output(args.output, "-o", folder=True) if args.output else None
    if out is not None and out.is_dir():  # what it already holds must be ours to replace
        check_output(out / "mappings", "-o", folder=True)
        writable_target(out / "network.yaml")
    acg = load_acg(args.acg)
    wl = load_model(args.workload)
    options = CompileOptions(args.objective, args.strategy, args.time_limit, not args.no_validate, args.seed,
                             args.order, args.fuse, args.cores or 0, strategy_options(args), cache_folder(args))
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"compiling {wl.name} for {acg.name}", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None, description=escape(what))
        result = compile_network(wl, acg, options, progress)
    doc = compile_document(result, acg.name, wl.name, options)
    written = write_program(result, out) if out is not None else None
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_compile(console, doc, args.wide)
        print_wrapped(console, "nothing written (-o DIR writes the network program)" if out is None else
                      f"wrote {out / 'network.yaml'} and {written} mapping{'s' * (written != 1)} in {out / 'mappings'}")
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


def write_program(result: NetworkResult, out: Path) -> int:
    """`network.yaml` (order, steps with their layer and reads, the address plan) and one mapping per
    step; returns how many mappings."""
    make_folder(out)
    mappings = make_folder(out / "mappings")
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
    return len(paths)


def print_compile(console: Console, doc: dict, wide: bool = False) -> None:
    """`map`'s table, then a line each for the network, its verdict, the time, staging, the order,
    cores and fusion (wrapped at the console's width, continuation lines indented)."""
    print_map(console, doc, wide)
    tot = doc["total"]

    def num(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)
    lines = [f"network: {num(tot['simulated_cycles'] or tot['predicted_cycles'])} cycles, "
             f"{num(tot['energy_pj'] and tot['energy_pj'] / 1e6, '{:,.1f}')} uJ, "
             f"{format_bytes(tot['dram_bytes'] or 0)} moved off-chip; peak activations "
             f"{format_bytes(tot['peak_activation_bytes'])} (arena {format_bytes(tot['arena_bytes'])}, "
             f"weights {format_bytes(tot['weight_bytes'])}); compiled in {tot['compile_seconds']:.1f} s",
             {True: "validated end to end: every step equals the reference", None: "not simulated",
              False: f"FAILED: {doc['error']}"}[tot["network_valid"]], format_phases(tot)]
    staging = tot.get("staging")
    if staging is not None:  # a cold request: staging in, compute, return, one after the other
        lines.append(f"staging: {format_bytes(staging['in_bytes'])} in {staging['in_transfers']} transfers "
                     f"{staging['from']} -> {staging['to']} in {num(staging['in_cycles'])} cycles, outputs back in "
                     f"{num(staging['out_cycles'])} cycles ({'simulated' if staging['simulated'] else 'predicted'}); "
                     f"end to end {num(tot['end_to_end_cycles'])} cycles = {num(tot['end_to_end_ms'], '{:,.3f}')} "
                     f"ms, {num(tot['end_to_end_energy_pj'] and tot['end_to_end_energy_pj'] / 1e9, '{:,.3f}')} mJ")
    fits = "fit" if tot["activations_fit_on_chip"] else "do not fit"
    lines.append(f"order: {doc['schedule']} (activation peak {format_bytes(tot['peak_activation_bytes'])}, the "
                 f"file's {format_bytes(tot['file_order_peak_bytes'])}); activations {fits} the largest on-chip "
                 f"storage ({format_bytes(tot['onchip_bytes'])})")
    if tot["unmapped"]:
        lines.append(f"no mapping for: {', '.join(tot['unmapped'])}")
    if tot["split_steps"]:
        split = [f"{r['name']} ({r['cores']})" for r in doc["layers"] if r.get("cores", 1) > 1]
        lines.append(f"cores: {tot['split_steps']} steps split over several cores: {', '.join(split)}")
    for line in filter(None, [*lines, *fusion_lines(doc, num)]):
        print_wrapped(console, line, indent=2)


def fusion_lines(doc: dict, num) -> list[str]:
    """The fusion summary and one line per fused group (its steps, what stays where, its bands)."""
    fusion = doc.get("fusion")
    if fusion is None:
        return []
    gain = fusion["objective_unfused"] / fusion["objective_fused"] if fusion["objective_fused"] else 1.0
    lines = [f"fusion: {len(fusion['groups'])} groups keep {doc['total']['onchip_values']} values on chip; "
             f"{doc['objective']} {num(fusion['objective_fused'])} vs {num(fusion['objective_unfused'])} "
             f"layer by layer ({gain:.2f}x, predicted)"]
    for g in fusion["groups"]:
        kept = ", ".join(f"{v} in {s}" for v, s in g["onchip"].items())
        halo = f", {g['halo_rows']} halo rows {g['halo']}" if g["halo"] else ""
        cores = f", at once on {g['cores']} cores" if g["cores"] > 1 else ""
        bands = f" (in {g['bands']} bands along {', '.join(dict.fromkeys(g['band_dims']))}{halo}{cores})" \
            if g["bands"] > 1 else ""
        lines.append(f"  {' + '.join(g['steps'])}: {kept}{bands}")
    return lines


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
