"""What the commands print: JSON summaries of specs and rich tables (drawings: `mapper.app.draw`).

    >>> format_bytes(262144), format_count(118013952), format_si(190110), format_si(531.52e6, "J", 1e-12)
    ('256 KiB', '118.0M', '190k', '532 uJ')
"""

from __future__ import annotations

import math
import re
import textwrap

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from mapper.spec.acg import ACG, peak_ops_per_cycle, read_paths, write_paths
from mapper.spec.workload import Concat, Workload


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


def format_si(value: float, unit: str = "", scale: float = 1.0) -> str:
    """Three significant digits with an SI prefix: 1234567 -> '1.23M'; `scale` converts to `unit`
    (531.52e6 pJ, unit 'J', scale 1e-12 -> '532 uJ'). Never wider than 7 characters plus the unit."""
    x = value * scale
    prefixes = ("p", "n", "u", "m", "", "k", "M", "G", "T", "P", "E")
    if x == 0:
        return f"0 {unit}" if unit else "0"
    k = min(max(math.floor(math.log10(abs(x)) / 3), -4 if unit else 0), 6)
    mantissa = x / 1000.0 ** k
    if round(abs(mantissa), 2 - int(math.floor(math.log10(abs(mantissa))))) >= 1000 and k < 6:
        k, mantissa = k + 1, mantissa / 1000  # 999.6k rounds to 1.00M, not 1000k
    text = f"{mantissa:.3g}"
    sep = " " if unit else ""
    return f"{text}{sep}{prefixes[k + 4]}{unit}" if (k or unit) else text


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
    staging = None
    if acg.staging is not None:  # its nodes and edges are not among the layers' storages and edges
        st = acg.staging
        staging = {"from": st.source, "to": st.target,
                   "storages": [{"name": n.name, "capacity": n.capacity, "read_pj_per_byte": n.read_pj_per_byte,
                                 "write_pj_per_byte": n.write_pj_per_byte} for n in st.storages.values()],
                   **{way: [{"from": e.src, "to": e.dst, "bytes_per_cycle": e.bytes_per_cycle,
                             "pj_per_byte": e.pj_per_byte, "latency": e.latency} for e in route]
                      for way, route in (("inbound", st.inbound), ("outbound", st.outbound))}}
    return {"name": acg.name, "source": acg.source, "clock_ghz": acg.clock_ghz, "cores": acg.cores, "power": acg.power,
            "storages": storages, "capabilities": capabilities, "edges": edges, "staging": staging}


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


def _table(title: str | None, columns: list[tuple[str, str]], wide: bool) -> Table:
    """A table whose cells wrap (fold) instead of being cut: compact (no vertical rules) by default,
    boxed with `wide`. `columns`: (name, 'l'|'r'|'k'); right-aligned ones are figures and never wrap,
    nor do 'k' ones (left-aligned, kept whole: an expression reads only on one line)."""
    if wide:
        t = Table(title=title, title_justify="left")
    else:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for name, justify in columns:
        t.add_column(name, justify="right" if justify == "r" else "left", overflow="fold", no_wrap=justify in "rk")
    return t


def _print_table(console: Console, table: Table, wide: bool) -> None:
    print_wide(console, table) if wide else console.print(table)


def print_acg(console: Console, s: dict, wide: bool = False) -> None:
    """The storages, capabilities and edges of an ACG; by default the columns that fit 80 columns."""
    cores = f", {s['cores']} cores sharing off-chip memory" if s["cores"] > 1 else ""
    console.print(f"[bold]{escape(s['name'])}[/bold]  ({escape(str(s['source']))}, {s['clock_ghz']:g} GHz{cores})")
    if wide:
        t = _table("storage", [("node", "l"), ("capacity", "r"), ("instances", "r"), ("total", "r"),
                               ("double buf", "r"), ("port B/cyc", "r"), ("read pJ/B", "r"), ("write pJ/B", "r")], True)
    else:
        t = _table("storage", [("node", "l"), ("capacity", "r"), ("double buf", "l"), ("port B/cyc", "r"),
                               ("pJ/B read/write", "r")], False)
    for st in s["storages"]:
        name = st["name"] + (" (off-chip)" if st["offchip"] else "")
        port = f"{st['bytes_per_cycle']:g}" if st["bytes_per_cycle"] else "-"
        dbl = "yes" if st["double_buffer"] else "no"
        if wide:
            add_row(t, name, format_bytes(st["capacity"]), str(st["instances"]), format_bytes(st["total_capacity"]),
                    dbl, port, f"{st['read_pj_per_byte']:g}", f"{st['write_pj_per_byte']:g}")
        else:
            each = f" ({st['instances']} x {format_bytes(st['capacity'])})" if st["instances"] > 1 else ""
            add_row(t, name, format_bytes(st["total_capacity"]) + each, dbl, port,
                    f"{st['read_pj_per_byte']:g}/{st['write_pj_per_byte']:g}")
    _print_table(console, t, wide)
    columns = [("node", "l"), ("capability", "l"), ("expression", "k"), ("fixed dims", "l"), ("operands", "l"),
               ("cycles", "l"), ("peak ops/cyc", "r"), ("pJ/op", "r")]
    t = _table("capabilities", columns if wide else [c for c in columns if c[0] not in ("node", "pJ/op")], wide)
    for c in s["capabilities"]:
        fixed = " ".join(f"{d}={v}" for d, v in c["fixed_dims"].items())
        if c["streaming_dims"]:
            fixed += f" ({','.join(c['streaming_dims'])} stream)"
        ops = " ".join(f"{t}:{'|'.join(p)}:{c['dtypes'][t]}" for t, p in c["operands"].items())
        cycles = c["cycles"] + (f" (every {c['interval']})" if c["interval"] else "")
        cells = [c["node"], c["name"], c["expr"], fixed, ops, cycles, f"{c['peak_ops_per_cycle']:g}",
                 f"{c['pj_per_op']:g}"]
        add_row(t, *(cells if wide else cells[1:-1]))
    _print_table(console, t, wide)
    t = _table("edges", [("from", "l"), ("to", "l"), ("B/cycle", "r"), ("pJ/B", "r"), ("set-up cyc", "r")], wide)
    for e in s["edges"]:
        add_row(t, e["from"], e["to"], f"{e['bytes_per_cycle']:g}", f"{e['pj_per_byte']:g}", str(e["latency"]))
    _print_table(console, t, wide)
    st = s["staging"]
    if st is not None:
        for way in ("inbound", "outbound"):
            hops = ", ".join(f"{e['from']} -> {e['to']} {e['bytes_per_cycle']:g} B/cycle + {e['latency']} cycles"
                             for e in st[way])
            console.print(f"staging {way}: {hops}", highlight=False)


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))


def print_workload(console: Console, s: dict, wide: bool = False) -> None:
    """The layers of a workload; by default name, op, output shape, MACs, bytes and producers."""
    console.print(f"[bold]{escape(s['name'])}[/bold]  ({escape(str(s['source']))})")
    if wide:
        t = _table(None, [("layer", "l"), ("op", "l"), ("kind", "l"), ("shapes (inputs -> output)", "l"),
                          ("dtypes", "l"), ("MACs", "r"), ("ops", "r"), ("bytes", "r"), ("count", "r"),
                          ("inputs from", "l")], True)
    else:
        t = _table(None, [("layer", "l"), ("op", "l"), ("output", "l"), ("MACs", "r"), ("bytes", "r"),
                          ("inputs from", "l")], False)
    for lyr in s["layers"]:
        tensors = lyr["tensors"]
        src = ", ".join(f"{k}<-" + (f"concat({','.join(v['concat'])};axis={v['axis']})" if isinstance(v, dict) else v)
                        for k, v in lyr["inputs"].items())
        out_name, out = next((n, v) for n, v in tensors.items() if v["role"] == "output")
        if not wide:
            name = lyr["name"] + (f" x{lyr['count']}" if lyr["count"] > 1 else "")
            add_row(t, name, lyr["op"] or "expr", f"{_shape(out['shape'])} {out['dtype']}", format_si(lyr["macs"]),
                    format_si(lyr["bytes"], "B"), src or "-")
            continue
        ins = " ".join(f"{n}{tensors[n]['shape']}" for n, v in tensors.items() if v["role"] == "input")
        dtypes = "/".join(dict.fromkeys(v["dtype"] for v in tensors.values()))
        add_row(t, lyr["name"], lyr["op"] or "expr", lyr["kind"], f"{ins} -> {out_name}{out['shape']}", dtypes,
                format_count(lyr["macs"]), format_count(lyr["ops"]), format_bytes(lyr["bytes"]),
                str(lyr["count"]), src)
    _print_table(console, t, wide)
    tot = s["total"]
    console.print(f"{tot['layers']} layers, {format_count(tot['macs'])} MACs, {format_count(tot['ops'])} ops, "
                  f"{format_bytes(tot['bytes'])} of tensors (counts included)", highlight=False)


# --------------------------------------------------------------------------------------------------
# The per-layer table of `map` and `compile`

def _num(v, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _delta(r: dict) -> float | None:
    """The cost model's error, predicted vs simulated, in percent of the simulated cycles."""
    if r["predicted_cycles"] and r["simulated_cycles"]:
        return 100 * (r["predicted_cycles"] - r["simulated_cycles"]) / r["simulated_cycles"]
    return None


def _common(r: dict) -> tuple[str, str, str, str]:
    name = r["name"] + (f" x{r['count']}" if r["count"] > 1 else "")
    status = r["status"] if not r.get("reused_from") else f"= {r['reused_from']}"
    valid = {True: "yes", False: "NO", None: "-"}[r["valid"]]
    return name, r["capability"] or "-", status, valid


def break_name(text: str, width: int) -> str:
    """`text` in lines of at most `width` characters, broken after a space, '.', '_' or '-' (so that a
    layer name is never cut inside a word; a word longer than a line is, alone).

    >>> print(break_name("= layer2.0.downsample.requant", 12))
    = layer2.0.
    downsample.
    requant
    """
    lines, line = [], ""
    for part in re.findall(r"[^ ._-]*[ ._-]|[^ ._-]+$", text):
        if line and len(line) + len(part.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        while len(part.rstrip()) > width:
            lines.append(part[:width])
            part = part[width:]
        line += part
    return "\n".join([*lines, line.rstrip()])


def print_wrapped(console: Console, text: str, indent: int = 0) -> None:
    """A line of prose, wrapped at spaces to the console's width (a word longer than a line is cut),
    continuation lines indented by `indent` more spaces than the first; never read as markup (names
    may hold '[')."""
    lead = len(text) - len(text.lstrip(" "))
    for line in textwrap.wrap(text, console.width, subsequent_indent=" " * (lead + indent),
                              break_on_hyphens=False) or [""]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


WIDE_COLUMNS = ("layer", "capability", "status", "MACs", "predicted", "simulated", "Δ", "util.", "energy",
                "solve", "gap", "valid")
COLUMNS = ("layer", "capability", "status", "cycles", "Δ model", "util.", "energy", "valid")
NAME_WIDTH = 10  # compact table: the capability and status cells break (between words) beyond this


def map_table(doc: dict, wide: bool = False, width: int | None = None) -> Table:
    """The table of `covenant map` (and `compile`): by default the columns that matter, in compact
    units, fitting `width` columns (names break between their words: after '.', '_', '-' or a space;
    a status '= LAYER' too; no cell is cut); `wide`: every column, exact figures, at natural width.
    The cycles column is the simulated count, or the predicted one marked `~` where not simulated."""
    title = f"{doc['workload']} on {doc['acg']}: {doc['strategy']}, minimising {doc['objective']}"
    rows = [_wide_row(r) if wide else _compact_row(r) for r in doc["layers"]]
    if wide:
        t = Table(title=title, title_justify="left")
    else:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
        rows = _fit_names(rows, width)
    for col in WIDE_COLUMNS if wide else COLUMNS:
        text = col in ("layer", "capability", "status")  # names are left-aligned and may fold; figures never wrap
        t.add_column(col, justify="left" if text or col == "valid" else "right", overflow="fold", no_wrap=not text,
                     min_width=6 if col == "layer" else None)
    for row in rows:
        add_row(t, *row)
    return t


def _compact_row(r: dict) -> list[str]:
    name, capability, status, valid = _common(r)
    delta, util = _delta(r), r["utilization"] and 100 * r["utilization"]
    cycles = "-"
    if r["simulated_cycles"] is not None:
        cycles = format_si(r["simulated_cycles"])
    elif r["predicted_cycles"] is not None:
        cycles = "~" + format_si(r["predicted_cycles"])
    energy = "-" if r["energy_pj"] is None else format_si(r["energy_pj"], "J", 1e-12)
    return [name, capability, status, cycles, _num(delta, "{:+.1f}%"), _num(util, "{:.1f}%"), energy, valid]


def _wide_row(r: dict) -> list[str]:
    name, capability, status, valid = _common(r)
    delta, util = _delta(r), r["utilization"] and 100 * r["utilization"]
    return [name, capability, status, format_count(r["macs"]), _num(r["predicted_cycles"]),
            _num(r["simulated_cycles"]), _num(delta, "{:+.1f} %"), _num(util, "{:.1f} %"),
            _num(r["energy_pj"] and r["energy_pj"] / 1e6, "{:,.2f} uJ"), _num(r["solve_seconds"], "{:.2f} s"),
            _num(r["optimality_gap"] and 100 * r["optimality_gap"], "{:.1f} %"), valid]


def _fit_names(rows: list[list[str]], width: int | None) -> list[list[str]]:
    """The compact rows, their names broken between words (`break_name`) so that the table fits
    `width` columns: first the capability and status at `NAME_WIDTH` (the status takes back what the
    layer names leave), then, if still too wide, the layer names at what the other columns leave."""
    gaps = 2 * (len(COLUMNS) - 1)  # two spaces between columns
    if width is None or sum(_widths(rows)) + gaps <= width:
        return rows
    broken = [[row[0], break_name(row[1], NAME_WIDTH), break_name(row[2], NAME_WIDTH), *row[3:]] for row in rows]
    widths = _widths(broken)
    room = width - sum(widths[1:]) - gaps
    if room >= widths[0]:  # every layer name fits whole: the status column gets the rest
        status = widths[2] + room - widths[0]
        return [[row[0], broken_row[1], break_name(row[2], status), *row[3:]] for row, broken_row in zip(rows, broken,
                                                                                                          strict=True)]
    return [[break_name(row[0], max(room, 6)), *row[1:]] for row in broken]


def _widths(rows: list[list[str]]) -> list[int]:
    """The widest line of each compact column, its header included."""
    return [max(cell_len(line) for cell in (col, *(row[j] for row in rows)) for line in cell.splitlines() or [""])
            for j, col in enumerate(COLUMNS)]


def print_wide(console: Console, table: Table) -> None:
    """Print `table` at its natural width even where the terminal is narrower (the terminal wraps the
    lines; no cell is cut)."""
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def cache_note(hits: int) -> str:
    """What the summary says of the solve cache (nothing when it served no solve)."""
    return f" ({hits} from the solve cache, made before)" if hits else ""


def print_map(console: Console, doc: dict, wide: bool = False) -> None:
    table = map_table(doc, wide, console.width)
    print_wide(console, table) if wide else console.print(table)
    print_wrapped(console, legend(doc, wide), indent=2)
    for r in doc["layers"]:
        if r["error"] and not r.get("reused_from"):
            console.print(f"[bold]{escape(r['name'])}[/bold]: {escape(r['error'])}", highlight=False)
    tot = doc["total"]
    over = " (over the mapped layers)" if tot["unmapped"] and tot["mapped"] else ""
    print_wrapped(console, f"{tot['mapped']}/{tot['layers']} layers mapped, {tot['valid']} validated; "
                  f"predicted {_num(tot['predicted_cycles'])} cycles, simulated {_num(tot['simulated_cycles'])}"
                  f"{over}; solve time {tot['solve_seconds']:.1f} s{cache_note(tot.get('cache_hits', 0))}", indent=2)
    if tot["unmapped"]:
        shown = ", ".join(tot["unmapped"][:10]) + (", ..." if len(tot["unmapped"]) > 10 else "")
        print_wrapped(console, f"unmapped: {shown}", indent=2)


def legend(doc: dict, wide: bool) -> str:
    """What the table's columns mean (the figures that are not self-explanatory)."""
    delta = "Δ" if wide else "Δ model"
    text = (f"{delta}: the cost model's error, (predicted - simulated) / simulated cycles; util.: ops per cycle "
            "over the capability's peak (simulated)")
    if not wide and any(r["simulated_cycles"] is None and r["predicted_cycles"] is not None for r in doc["layers"]):
        text += "; ~: predicted cycles (not simulated)"
    return text


def format_phases(total: dict) -> str | None:
    """The `time:` line of `covenant compile`: seconds per phase of `total.phases`, in the order they
    ran, the solving phases with their solves (the fusion search's also with the steps it answered
    without a solve and the candidate groups its bounds left out), and the slowest solve (None: a
    document without phases)."""
    phases = total.get("phases")
    if phases is None:
        return None
    solves = {"layer_mapping": "layer", "fusion_search": "fusion", "final_mapping": "final"}
    parts = []
    for name, seconds in phases.items():
        part = f"{name.replace('_', ' ')} {seconds:.2f}"
        count = total.get(f"{solves.get(name)}_solves")
        if count:
            part += f" ({count} solves, {total[f'{solves[name]}_solve_seconds']:.2f} in the solver"
            if name == "fusion_search" and (total.get("fusion_reused") or total.get("fusion_skipped")):
                part += f"; {total.get('fusion_reused', 0)} reused, {total.get('fusion_skipped', 0)} candidates skipped"
            part += ")"
        parts.append(part)
    slowest = total.get("slowest_solve")
    tail = f"; slowest solve {slowest['layer']} {slowest['seconds']:.2f}" if slowest else ""
    hits = total.get("cache_hits", 0)
    tail += f"; {hits} solves from the solve cache (their solver seconds are those of the first run)" if hits else ""
    return "time (s): " + ", ".join(parts) + tail
