"""`covenant show mapping`: a mapping as a loop nest, like Timeloop's mapping printout.

One block per level of the nest, outermost (off-chip) first: the tiles that live there (tensor,
storage, shape, bytes, buffers, how often they move), the temporal `for` loops of that level with
their trip counts, and the tensor that stays put while its innermost loops run (stationary). At the
bottom, the instruction: the capability, its dims with the layer dims bound to them (the spatial
extents), and its operands with their tiles; then the cost model's prediction.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.mapping.binding import bind
    >>> from mapper.mapping.mapping import greedy_mapping
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> doc = mapping_nest(greedy_mapping(layer, bind(layer, acg)[0], acg), acg)
    >>> [lv["storages"] for lv in doc["levels"]][0], doc["instruction"]["capability"]
    (['DRAM'], 'mvmul')
    >>> trips(doc) == {"m": 8, "n": 8, "k": 8}
    True
"""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.markup import escape

from mapper.app.cli_output import format_bytes, format_si
from mapper.mapping.cost import evaluate, relevant_dims, streams
from mapper.mapping.mapping import Mapping, held_dtype, tile_bytes, tile_shape
from mapper.mapping.mapping_yaml import load_mapping
from mapper.spec.acg import ACG, load_acg, peak_ops_per_cycle


def _tiles(m: Mapping, acg: ACG, level: int) -> list[dict]:
    """The tiles that a level brings into storage: each tensor whose path has a storage at `level`."""
    moves = {}
    for s in streams(m, acg):
        if s.level == level:
            moves[(s.tensor, s.kind)] = (s.count, s.bytes)
    out = []
    for tensor, path in m.placement:
        if level >= len(path):
            continue
        storage = path[level]
        dtype = held_dtype(m, tensor, level)  # the output's stored dtype above an epilogue's level
        entry = {"tensor": tensor, "storage": storage, "shape": list(tile_shape(m.layer, tensor, m.tile(level))),
                 "dtype": dtype,
                 "bytes": tile_bytes(m.layer, tensor, m.tile(level), dtype),
                 "buffers": 2 if m.is_double_buffered(tensor, storage) else 1}
        for kind in ("load", "writeback", "reload"):
            if (tensor, kind) in moves:
                count, nbytes = moves[(tensor, kind)]
                entry[kind + "s"] = {"count": count, "bytes": nbytes}
        out.append(entry)
    return out


def stationary(m: Mapping, loops: list[tuple[str, int]]) -> dict | None:
    """The tensors whose tile one level down stays put over the most innermost loops of a level
    (the loops that do not index them), with those loops; None when every innermost loop moves all."""
    loops = [(d, f) for d, f in loops if f > 1]
    best: dict | None = None
    for tensor in m.layer.tensors:
        rel = relevant_dims(m.layer, tensor)
        run = 0
        while run < len(loops) and loops[len(loops) - 1 - run][0] not in rel:
            run += 1
        if run and (best is None or run > len(best["over"])):
            best = {"tensors": [tensor], "over": [d for d, _ in loops[len(loops) - run:]]}
        elif run and best is not None and run == len(best["over"]):
            best["tensors"].append(tensor)
    return best


def _instruction(m: Mapping, acg: ACG) -> dict:
    cap = acg.capability(m.binding.capability)
    dims = []
    for e in cap.expr.dims:
        fused = {d: m.spatial_of(d) for d in m.binding.fused(e)}
        dims.append({"dim": e, "layer_dims": fused, "used": math.prod(fused.values()),
                     "extent": cap.fixed.get(e)})  # extent None: a streaming dim
    operands = []
    for tensor, operand in m.binding.tensors:
        storage = m.path(tensor)[-1]
        operands.append({"operand": operand, "tensor": tensor, "storage": storage,
                         "shape": list(tile_shape(m.layer, tensor, m.tile(m.levels))),
                         "bytes": tile_bytes(m.layer, tensor, m.tile(m.levels)),
                         "output": tensor == m.layer.expr.output.tensor})
    return {"capability": cap.name, "node": cap.node, "expr": str(cap.expr), "dims": dims, "operands": operands}


def mapping_nest(m: Mapping, acg: ACG) -> dict:
    """The loop nest of mapping `m` on `acg` as a plain document (what `--json` prints)."""
    levels = []
    for level in range(m.levels):
        tiles = _tiles(m, acg, level)
        loops = [(d, f) for d, f in m.loops[level]]
        levels.append({
            "level": level, "storages": list(dict.fromkeys(t["storage"] for t in tiles)),
            "tiles": tiles, "loops": [{"dim": d, "trips": f} for d, f in loops],
            "stationary": stationary(m, loops),
        })
    cost = evaluate(m, acg)
    cap = acg.capability(m.binding.capability)
    latency = float(cost.latency)
    predicted = {"cycles": latency, "energy_pj": float(cost.energy), "compute_cycles": float(cost.compute_cycles),
                 "instructions": cost.instructions, "dram_bytes": cost.dram_bytes,
                 "utilization": cost.ops / (latency * float(peak_ops_per_cycle(cap))) if latency else 0.0}
    onchip = m.layer.onchip
    return {"layer": m.layer.name, "workload": m.workload, "acg": m.acg, "expr": str(m.layer.expr),
            "dims": dict(m.layer.dims), "binding": m.binding.describe(),
            "onchip": {"homes": dict(onchip.homes), "reserved": dict(onchip.reserved)}, "levels": levels,
            "instruction": _instruction(m, acg), "predicted": predicted, "recorded": dict(m.predicted)}


def trips(doc: dict) -> dict[str, int]:
    """Per layer dim, the product of its trip counts over the nest and its extent inside one
    instruction: the layer's extent, or more where the last tile is partial."""
    out = dict.fromkeys(doc["dims"], 1)
    for level in doc["levels"]:
        for loop in level["loops"]:
            out[loop["dim"]] *= loop["trips"]
    for e in doc["instruction"]["dims"]:
        for d, s in e["layer_dims"].items():
            out[d] *= s
    return out


# --------------------------------------------------------------------------------------------------
# Text

def _shape(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _tile_line(t: dict) -> str:
    moves = []
    for kind, verb in (("loads", "loads"), ("writebacks", "writes"), ("reloads", "reloads")):
        if kind in t and t[kind]["count"]:
            moves.append(f"{verb} {format_si(t[kind]['count'])}x {format_si(t[kind]['bytes'], 'B')}")
    buffers = " x2" if t["buffers"] == 2 else ""
    return f"{t['tensor']} {t['storage']} {_shape(t['shape'])} {t['dtype']} {format_bytes(t['bytes'])}{buffers}" + \
        (f", {', '.join(moves)}" if moves else "")


def nest_lines(doc: dict) -> list[str]:
    """The loop nest as text, indented one step per loop."""
    lines = [f"{doc['layer']} on {doc['acg']}" + (f" (workload {doc['workload']})" if doc["workload"] else ""),
             f"{doc['expr']}", "dims: " + " ".join(f"{d}={n}" for d, n in doc["dims"].items())]
    covered = trips(doc)
    padded = [f"{d} to {covered[d]}" for d, n in doc["dims"].items() if covered[d] > n]
    lines += [f"tiled past the extent (the last tile is partial): {', '.join(padded)}"] if padded else []
    homes, reserved = doc["onchip"]["homes"], doc["onchip"]["reserved"]
    if homes or any(reserved.values()):  # a step of a fused group
        kept = [f"{t} whole in {st}" for t, st in homes.items()] + \
            [f"{format_bytes(n)} of {st} held for the group" for st, n in reserved.items() if n]
        lines.append(f"fused group: {', '.join(kept)}")
    lines.append("")
    depth = 0
    for level in doc["levels"]:
        pad = "  " * depth
        lines.append(f"{pad}level {level['level']}: {', '.join(level['storages']) or '-'}")
        lines += [f"{pad}| {_tile_line(t)}" for t in level["tiles"]]
        st = level["stationary"]
        if st:
            lines.append(f"{pad}| stationary: {', '.join(st['tensors'])} (over {', '.join(st['over'])})")
        for loop in level["loops"]:
            lines.append(f"{pad}for {loop['dim']} in [0:{loop['trips']})")
            depth += 1
            pad = "  " * depth
    ins = doc["instruction"]
    pad = "  " * depth
    lines.append(f"{pad}{ins['capability']} on {ins['node']}: {ins['expr']}")
    for e in ins["dims"]:
        bound = "*".join(f"{d}={s}" for d, s in e["layer_dims"].items()) or "-"
        room = f"{e['used']} of {e['extent']}" if e["extent"] is not None else f"{e['used']}, streaming"
        lines.append(f"{pad}| {e['dim']} <- {bound} ({room})")
    for op in ins["operands"]:
        arrow = "->" if op["output"] else "<-"
        lines.append(f"{pad}| {op['operand']}: {op['tensor']}{_shape(op['shape'])} {arrow} {op['storage']} "
                     f"{format_bytes(op['bytes'])}")
    p = doc["predicted"]
    lines += ["", "x2: double-buffered; loads, writes, reloads: tile transfers and their bytes",
              f"predicted: {p['cycles']:,.0f} cycles ({p['compute_cycles']:,.0f} computing), "
              f"{format_si(p['energy_pj'], 'J', 1e-12)},",
              f"  utilization {100 * p['utilization']:.1f} %, {p['instructions']:,} instructions, "
              f"{format_bytes(p['dram_bytes'])} off-chip"]
    return lines


def print_nest(console: Console, doc: dict) -> None:
    for line in nest_lines(doc):
        console.print(escape(line), highlight=False)


def show_mapping(path: str, acg_spec: str | None, as_json: bool, console: Console) -> int:
    """`covenant show mapping FILE [--acg NAME|PATH] [--json]`: a bad file raises SpecError (exit 2)."""
    acg = load_acg(acg_spec) if acg_spec else None
    m = load_mapping(path, acg)
    doc = mapping_nest(m, acg or load_acg(m.acg))
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        print_nest(console, doc)
    return 0
