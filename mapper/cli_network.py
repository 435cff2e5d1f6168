"""The network commands of the `covenant` command line (registered by `mapper.cli`).

    covenant compile --acg A --workload W [--objective latency|energy|edp] [--strategy S] [--time-limit S]
                     [--seed N] [--no-validate] [--json] [-o DIR]

Exit status: 0 when every layer mapped and the network validated end to end, 1 when a layer has no
mapping or validation fails, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mapper.acg import load_acg
from mapper.cost import OBJECTIVES
from mapper.files import files_in, write_text
from mapper.mapping import write_mapping
from mapper.network import load_model
from mapper.network.compile import CompileOptions, NetworkResult, compile_network
from mapper.spec import SpecError
from solver import STRATEGIES


def add_compile_parser(sub) -> None:
    cp = sub.add_parser("compile", help="compile a whole network: map every layer, plan memory, simulate end to end")
    cp.add_argument("--acg", required=True, help="the ACG: a shipped name (genesys) or a YAML path")
    cp.add_argument("--workload", required=True, help="the network: a shipped name (resnet50) or a YAML path")
    cp.add_argument("--objective", choices=OBJECTIVES, default="latency", help="what to minimise (default latency)")
    cp.add_argument("--strategy", choices=STRATEGIES, default="cpsat", help="the search strategy (default cpsat)")
    cp.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                    help="per distinct layer, in seconds (default 10)")
    cp.add_argument("--seed", type=int, default=0, help="seed of the network's input and weights (default 0)")
    cp.add_argument("--no-validate", action="store_true", help="skip the end-to-end simulation")
    cp.add_argument("--json", action="store_true", help="print one JSON document")
    cp.add_argument("-o", "--output", metavar="DIR",
                    help="write the network program into DIR: network.yaml and one mapping per step")


def cmd_compile(args: argparse.Namespace, console: Console) -> int:
    if not args.time_limit > 0:
        raise SpecError("--time-limit", None, "", f"expected a positive number of seconds, got {args.time_limit:g}")
    out = Path(args.output) if args.output else None
    if out is not None and not (out.is_dir() or (not out.exists() and out.parent.is_dir())):
        raise SpecError(args.output, None, "-o", "expected a folder (it or its parent must exist)")
    acg = load_acg(args.acg)
    wl = load_model(args.workload)
    options = CompileOptions(args.objective, args.strategy, args.time_limit, not args.no_validate, args.seed)
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"compiling {wl.name} for {acg.name}", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=escape(what))
        result = compile_network(wl, acg, options, progress)
    doc = compile_document(result, acg.name, wl.name, options)
    if out is not None:
        write_program(result, out)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_compile(console, doc)
        if out is not None:
            console.print(f"wrote {out}", highlight=False)
    ok = result.mapped and (result.valid is True or not options.validate)
    return 0 if ok else 1


def compile_document(result: NetworkResult, acg: str, workload: str, options: CompileOptions) -> dict:
    """The `covenant compile --json` document: `map`'s, with network totals and the address plan."""
    plan = [{"buffer": p.buffer, "offset": p.offset, "bytes": p.bytes, "live": [p.first, p.last]}
            for p in sorted(result.plan.placements.values(), key=lambda p: p.offset)]
    return {"acg": acg, "workload": workload, "objective": options.objective, "strategy": options.strategy,
            "order": [s.layer.name for s in result.network.steps], "inputs": list(result.network.inputs),
            "outputs": list(result.network.outputs), "layers": [r.to_dict() for r in result.records],
            "total": result.totals(), "error": result.error, "address_plan": plan}


def write_program(result: NetworkResult, out: Path) -> None:
    """`network.yaml` (order, steps with their layer and reads, the address plan) and one mapping per step."""
    out.mkdir(exist_ok=True)
    mappings = out / "mappings"
    mappings.mkdir(exist_ok=True)
    mapped = [m for m in result.mappings if m is not None]
    paths = files_in(mappings, [m.layer.name for m in mapped])
    for mapping in mapped:
        write_mapping(mapping, paths[mapping.layer.name])
    net = result.network
    steps = [{"layer": s.layer.name, "op": s.layer.op, "expr": str(s.layer.expr), "reads": dict(s.reads),
              "writes": s.writes} for s in net.steps]
    plan = {p.buffer: {"offset": p.offset, "bytes": p.bytes, "live": [p.first, p.last]}
            for p in result.plan.placements.values()}
    doc = {"format": "covenant-network/1", "network": net.name, "inputs": list(net.inputs),
           "outputs": list(net.outputs), "steps": steps, "address_plan": plan,
           "arena_bytes": result.plan.arena_bytes, "weight_bytes": result.plan.weight_bytes}
    write_text(out / "network.yaml", yaml.safe_dump(doc, sort_keys=False, width=120))


def print_compile(console: Console, doc: dict) -> None:
    from mapper.cli import format_bytes, print_map

    print_map(console, doc)
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
    if tot["unmapped"]:
        console.print(f"no mapping for: {', '.join(tot['unmapped'])}", highlight=False)
