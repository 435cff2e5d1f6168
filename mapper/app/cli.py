"""The `covenant` command line.

    covenant map --acg NAME|PATH --workload NAME|PATH [--layer L] [--objective latency|energy|edp|pareto]
                 [--strategy cpsat|exhaustive|random|anneal|genetic|learned|PLUGIN [--option KEY=VALUE ...]]
                 [--time-limit S] [--points N] [--no-validate] [--json] [-o PATH]
    covenant show acg NAME|PATH [--json] [--png FILE]
    covenant show workload NAME|PATH [--json] [--png FILE]
    covenant show mapping FILE.yaml [--acg NAME|PATH] [--json]
    covenant simulate MAPPING.yaml [--json] [--listing] [--seed N] [--acg NAME|PATH]
    covenant run experiments/NAME.yaml [--jobs N] [--out DIR] [--executor local|dask --scheduler ADDR] [--json]
    covenant import MODEL.onnx [-o FILE.yaml] [--dtype int8|float32]
    covenant import zigzag HARDWARE.yaml [--mapping MAPPING.yaml] [-o ACG.yaml]

Every --workload (and `show workload`) also accepts an ONNX model (a path ending in .onnx).

Exit status: 0 on success, 1 when a layer has no mapping, a simulated output differs from the reference
or the program breaks a rule of the ACG, 2 for bad input (one line on stderr naming file, line and field).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys


def _leave(signum, frame) -> None:
    """SIGINT or SIGTERM outside `main`, while covenant starts (its imports take a second or two) or
    ends: nothing is being written, so leave at once, as `main` would."""
    os.write(2, b"covenant: interrupted\n")
    os._exit(130)


# Installed before the imports below, only in the program itself (`python -m mapper.app.cli`, the
# console script), never in a worker process it starts or when imported as a library.
if (__name__ == "__main__" or os.path.basename(sys.argv[0]) == "covenant") and multiprocessing.parent_process() is None:
    signal.signal(signal.SIGINT, _leave)
    signal.signal(signal.SIGTERM, _leave)

import argparse
import difflib
import json
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mapper import __version__
from mapper.app.cli_network import (
    add_compile_parser,
    add_import_parser,
    add_schedule_parser,
    add_strategy_arguments,
    cache_folder,
    check_numbers,
    cmd_compile,
    cmd_import,
    cmd_schedule,
    strategy_options,
)
from mapper.app.cli_output import (
    acg_summary,
    add_row,
    format_bytes,
    print_acg,
    print_map,
    print_workload,
    print_wrapped,
    workload_summary,
)
from mapper.app.cli_pareto import map_pareto
from mapper.app.draw import draw_acg, draw_workload
from mapper.app.experiment import load_experiment
from mapper.app.experiment_networks import NETWORK_LAYER
from mapper.app.report_networks import write_experiment_report
from mapper.app.runner import experiment_rows, run_experiment
from mapper.app.show_mapping import show_mapping
from mapper.importers.model import load_model
from mapper.mapping.cost import OBJECTIVES, evaluate
from mapper.mapping.mapping_yaml import load_mapping, write_mapping
from mapper.network.flow import Options, map_layers, size_problem, succeeded, totals
from mapper.program.instructions import Alloc, Compute, Free, Init, Move
from mapper.program.lower import lower
from mapper.spec.acg import load_acg
from mapper.spec.files import check_output, file_in, files_in, make_folder, writable_target
from mapper.spec.limits import MAX_JOBS
from mapper.spec.loader import SpecError
from sim.machine import SimError, simulate
from solver.pareto import MAX_POINTS

# --------------------------------------------------------------------------------------------------
# Entry point

class _Parser(argparse.ArgumentParser):
    """A usage mistake on one line too, like every other error (`covenant map --help` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="covenant", description="An ACG-driven mapper for DL accelerators.")
    parser.add_argument("--version", action="version", version=f"covenant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="describe an accelerator (ACG), a workload or a mapping (as a loop nest)")
    show.add_argument("what", choices=("acg", "workload", "mapping"))
    show.add_argument("spec", help="the name of a shipped spec (e.g. genesys, resnet50), a YAML path or, for a "
                                   "workload, an ONNX model (.onnx); for a mapping, its YAML file")
    show.add_argument("--acg", dest="mapping_acg", metavar="NAME|PATH",
                      help="show mapping: the ACG to use (default: the shipped one the mapping names)")
    show.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    show.add_argument("--png", metavar="FILE", help="also draw the graph into FILE (PNG)")
    show.add_argument("--wide", action="store_true", help="every column of the tables (default: fitting 80 columns)")
    mp = sub.add_parser("map", help="map a workload's layers onto an ACG and validate them on the simulator")
    mp.add_argument("--acg", required=True, help="the ACG: a shipped name (genesys) or a YAML path")
    mp.add_argument("--workload", required=True,
                    help="the workload: a shipped name (resnet50), a YAML path or an ONNX model (.onnx)")
    mp.add_argument("--layer", action="append", help="map only this layer (repeatable)")
    mp.add_argument("--objective", choices=(*OBJECTIVES, "pareto"), default="latency",
                    help="what to minimise (default latency); pareto: each layer's latency-energy front")
    mp.add_argument("--points", type=int, default=5, metavar="N",
                    help=f"--objective pareto: at most N points per front (2 to {MAX_POINTS}, default 5)")
    add_strategy_arguments(mp)
    mp.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                    help="per-layer time limit in seconds (default 10); cpsat returns its best with the gap")
    mp.add_argument("--seed", type=int, default=0, help="seed of random search and of the input tensors")
    mp.add_argument("--no-validate", action="store_true", help="skip the simulator check")
    mp.add_argument("--json", action="store_true", help="print one JSON document")
    mp.add_argument("--wide", action="store_true", help="every column of the table, exact figures (default: the "
                                                        "main columns, compact, fitting 80 columns)")
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
    add_import_parser(sub)
    return parser


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    if not 1 <= args.jobs <= MAX_JOBS:
        raise SpecError("--jobs", None, "", f"expected 1 to {MAX_JOBS} worker processes, got {args.jobs}")
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
    written = write_experiment_report(exp, rows, out, summary.cases)
    failed = [r for r in rows if r["status"] in ("error", "missing") or r["valid"] is False]
    if args.json:
        print(json.dumps({"experiment": exp.name, "out": str(out), "cases": summary.cases,
                          "computed": summary.computed, "reused": summary.reused, "rows": rows}, indent=2))
    else:
        console.print(f"experiment {exp.name}: {summary.cases} cases, {summary.computed} results computed now, "
                      f"{summary.reused} found in {out / 'results.db'}", highlight=False)
        for r in failed[:10]:
            what = r["workload"] if r["layer"] == NETWORK_LAYER else r["layer"]  # a whole network's row
            console.print(f"  {escape(what)} on {escape(r['acg'])} ({escape(r['strategy'])}): "
                          f"{escape(r['error'] or r['status'])}", highlight=False)
        console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
    return 1 if failed else 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    if args.what != "mapping" and args.mapping_acg:
        raise SpecError("--acg", None, "", "only used with `show mapping`")
    if args.what == "mapping":
        if args.png:
            raise SpecError("--png", None, "", "draws an ACG or a workload, not a mapping")
        return show_mapping(args.spec, args.mapping_acg, args.json, console)
    if args.what == "acg":
        spec = load_acg(args.spec)
        summary, printer, drawer = acg_summary(spec), print_acg, draw_acg
    else:
        spec = load_model(args.spec)
        summary, printer, drawer = workload_summary(spec), print_workload, draw_workload
    if args.png:
        check_output(args.png, "--png")
        drawer(spec, args.png)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        printer(console, summary, args.wide)
        if args.png:
            console.print(f"drew {args.png}")
    return 0


def program_listing(program) -> list[str]:
    """One readable line per instruction of a lowered program."""
    def region(r):
        return "[" + ", ".join(":".join(map(str, axis)) for axis in r) + "]"  # lo:hi, or lo:hi:step

    lines = []
    for k, ins in enumerate(program.instructions):
        if isinstance(ins, Alloc):
            text = f"alloc    {ins.tensor:<4} {ins.storage}{region(ins.region)} slot {ins.slot}" + \
                (f" {ins.dtype}" if ins.dtype else "")
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
            add_row(t, *row)
        console.print(t)
    return 0 if result.matches_reference else 1


LAYERS_SHOWN = 12  # the layers an unknown --layer lists (the first, in the workload's order)


def cmd_map(args: argparse.Namespace, console: Console) -> int:
    acg = load_acg(args.acg)
    wl = load_model(args.workload)
    layers = list(wl.layers)
    if args.layer:
        names = [layer.name for layer in layers]  # in the workload's order
        unknown = [n for n in args.layer if n not in names]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], names, n=1)
            shown = ", ".join(names[:LAYERS_SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > LAYERS_SHOWN
                                                       else "")
            raise SpecError(wl.source or args.workload, None, "--layer", f"no layer named '{unknown[0]}'"
                            + (f"; did you mean '{hint[0]}'?" if hint else f" (layers: {shown})"))
        layers = [layer for layer in layers if layer.name in args.layer]
    if args.objective == "pareto":
        if args.output or args.strategy != "cpsat" or not 2 <= args.points <= MAX_POINTS:
            raise SpecError(args.workload, None, "--objective pareto",
                            f"a front is found by cpsat (the default strategy), with --points 2 to {MAX_POINTS}, "
                            "and printed (use --json), not written with -o")
        return map_pareto(acg, wl.name, layers, args.points, args.time_limit, args.seed, not args.no_validate,
                          args.json, console)
    out = Path(args.output) if args.output else None
    into_folder = out is not None and (len(layers) > 1 or os.path.isdir(out))  # else one layer into that file
    if out is not None:  # refused before the work, not after it
        check_output(out, "-o", folder=into_folder)
        for path in files_in(out, [layer.name for layer in layers]).values() if into_folder else ():
            writable_target(path)  # what the folder holds must be ours to replace
    options = Options(args.strategy, args.objective, args.time_limit, not args.no_validate, args.seed,
                      strategy_options(args), cache_folder(args))

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
        if into_folder:
            make_folder(out)
        for name, mapping in mapped:
            write_mapping(mapping, paths[name])
    doc = {"acg": acg.name, "workload": wl.name, "objective": args.objective, "strategy": args.strategy,
           "strategy_options": dict(options.strategy_options), "layers": [r.to_dict() for r in records],
           "total": totals(records).to_dict()}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_map(console, doc, args.wide)
        if out is None:
            print_wrapped(console, "nothing written (-o PATH writes the mappings)")
        elif into_folder:
            print_wrapped(console, f"wrote {len(paths)} mapping{'s' * (len(paths) != 1)} into {out}")
        else:
            print_wrapped(console, f"wrote {out}" if mapped else f"nothing written: no mapping for {out}")
    return 0 if all(succeeded(r, options.validate) for r in records) else 1


def _interrupt(signum, frame):
    """The first SIGINT or SIGTERM ends the command like Ctrl-C (finished results are already stored,
    temporary files are removed on the way out); later ones are ignored, so that cleaning up (which
    is bounded: workers are killed, a CP-SAT search is stopped) is never cut short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


class _Console(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError  # handled in `main` like any other write to a closed pipe (rich exits 1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _interrupt)
        code = _run(args)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        return code
    except KeyboardInterrupt:  # the process ends with both signals ignored (`_interrupt`)
        print("covenant: interrupted", file=sys.stderr)
        return INTERRUPTED


INTERRUPTED = 130  # the exit status of a command ended by SIGINT or SIGTERM, as a shell reports it


def _run(args: argparse.Namespace) -> int:
    """Run the command; its exit status (0, 1, 2 for bad input)."""
    # Output is as wide as the terminal; piped, 80 columns (`--wide`: 200, as wide as the tables need),
    # unless COLUMNS says how wide (rich reads it).
    piped = 200 if getattr(args, "wide", False) else 80
    console = _Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit() else piped)
    try:
        commands = {"show": cmd_show, "simulate": cmd_simulate, "map": cmd_map, "run": cmd_run, "compile": cmd_compile,
                    "import": cmd_import, "schedule": cmd_schedule}
        check_numbers(args)
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
    except OSError as exc:  # the last resort: file errors are SpecErrors naming the file where they happen
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"covenant: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug in covenant, not bad input: one line, the traceback on request
        if os.environ.get("COVENANT_TRACEBACK"):
            raise
        print(f"covenant: internal error (a bug in covenant, not in the input): {type(exc).__name__}: {exc} "
              "(COVENANT_TRACEBACK=1 shows where)", file=sys.stderr)
        return INTERNAL


INTERNAL = 3  # the exit status of a command ended by a bug in covenant


if __name__ == "__main__":
    sys.exit(main())
