"""AccelForge architecture import: an AccelForge architecture, as AccelForge evaluates it for one MAC
Einsum, becomes a covenant ACG.

The input is the JSON document `bench/accelforge_worker.py spec ARCH.yaml WORKLOAD.yaml` prints
(AccelForge's own loader evaluates the YAML's Python expressions in its own interpreter; covenant only
reads the numbers). `accelforge_path.read_path` picks the Einsum's MAC path and gives every fanout
the capability dim it unrolls; this module writes the ACG document (docs/design/importers.md,
"AccelForge import", marks each rule exact or approximated):

- clock: the MAC's operations per second per instance (AccelForge has no clock; its `total_latency`
  when it has one: eyeriss's 200 MHz), so a PE does one MAC per cycle;
- the capability `C[m,n] += A[m,k] * B[k,n]` (A the input, B the weight, C the output): each dim
  with fanouts is fixed to their product; the first of m, n, k without one streams one step per
  cycle (if all have one, m streams at its fanouts per cycle); the cycles grow when the innermost
  memories' ports cannot serve the MACs' own accesses (AccelForge's per-component latency);
- every memory is a storage, the outermost off-chip; a memory's copies (its fanouts and those above
  it) hold distinct data along the fanouts that index a tensor (`instances`: the fewest over its
  tensors, fixed dims only) and replicas along the others: AccelForge charges every replica's
  accesses, covenant a tile once, so the pJ per byte are multiplied by the replication;
- figures per byte of the Einsum's values: pJ/B = J per action x 8 / bits per action x 1e12;
  B/cycle = actions/s x bits per action / 8 / clock, times the copies holding distinct data; a memory
  storing wider values (simba's 24-bit partial sums of 8-bit outputs) scales its figures by the ratio;
- edges join consecutive memories of each tensor's chain (inputs down, the output both ways), with the
  bandwidth of the slower end and, where a fanout neither indexes the tensor nor may multicast it
  (tpu_v4i's `Z`, `may_reuse: Nothing`), the unicast's extra reads as the edge's pJ per byte;
- leak: the total leak power of every component on the Einsum's paths is the ACG's static `power`.

    >>> doc = accelforge_to_acg(TINY)
    >>> doc["clock_ghz"], doc["nodes"]["DRAM"]["bytes_per_cycle"], doc["nodes"]["DRAM"]["read_pj_per_byte"]
    (1, 8, 80)
    >>> doc["nodes"]["MAC"]["capabilities"][0]["dims"], doc["nodes"]["MAC"]["capabilities"][0]["cycles"]
    ({'k': 4, 'n': 1}, 'm')
"""

from __future__ import annotations

import math
import textwrap
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path

from mapper.importers.accelforge_path import OPERANDS, AccelForgeError, MacPath, Memory, read_path
from mapper.importers.zigzag import acg_text, spec_number

UNBOUNDED_BYTES = 2**40  # the capacity standing for AccelForge's `size: inf`
UNLIMITED_BYTES_PER_CYCLE = 2**20  # an edge bandwidth standing for `throughput: inf` at both ends
EXAMPLES_COMMIT = "1c1929c28dbfc61fb94af812e9e33b25a95933fa"  # tests/data/accelforge/README.md
INT_DTYPES = ((8, "int8"), (16, "int16"), (32, "int32"), (64, "int64"))
PJ = 1e12
BANDWIDTH_DIGITS = 3


def _tiny() -> dict:
    """A two-level AccelForge path (DRAM, a 4-wide spatial reduction, a MAC) as the worker prints it."""
    def memory(name, size, energy, throughput, keep):
        acts = [{"name": a, "energy": energy, "throughput": throughput, "bits_per_action": 1}
                for a in ("read", "write")]
        return {"kind": "Memory", "name": name, "size": size, "enabled": True, "actions": acts,
                "spatial": [], "tensors": {"keep": keep}}
    nodes = [memory("DRAM", "inf", 10e-12, 64e9, ["I", "O", "W"]),
             {"kind": "Container", "name": "PE", "spatial": [{"name": "r", "fanout": 4, "reuse": ["O"],
                                                                "may_reuse": ["O"]}]},
             memory("Reg", 8, 0, "inf", ["W"]),
             {"kind": "Compute", "name": "MAC", "enabled": True, "total_leak_power": 0,
              "actions": [{"name": "compute", "energy": 0.1e-12, "throughput": 1e9}]}]
    tensors = [{"name": t, "bits_per_value": 8, "output": t == "O"} for t in ("I", "W", "O")]
    return {"accelforge": "1.0.467", "arch_file": "tiny.yaml", "einsums": [
        {"name": "E", "is_copy_operation": False, "tensors": tensors,
         "renames": {"input": ["I"], "weight": ["W"], "output": ["O"]},
         "paths": [{"compute": "MAC", "enabled": True, "nodes": nodes}]}]}


TINY = _tiny()


# --------------------------------------------------------------------------------------------------
# How a memory's copies hold the data

def array_shape(path: MacPath) -> tuple[dict[str, int], str, int]:
    """(fixed dims, the streaming dim, its steps per cycle) of the MAC capability."""
    dims = {d: math.prod(f.size for f in path.fanouts if f.role == d) for d in ("m", "k", "n")}
    free = [d for d in ("m", "n", "k") if dims[d] == 1]
    stream = free[0] if free else "m"
    return {d: v for d, v in dims.items() if d != stream}, stream, dims[stream]


def split(mem: Memory, op: str, stream: str | None = None) -> int:
    """How many distinct shares of tensor `op` the copies of `mem` hold: the product of the fanouts
    at or above it that index it (only fixed dims when `stream` is given: what covenant can deal)."""
    return math.prod(f.size for f in mem.fanouts if f.indexes(op) and f.role != stream)


def replicas(mem: Memory, op: str) -> int:
    """Copies of `mem` holding the same share of `op` (AccelForge charges each one's accesses)."""
    return mem.copies // split(mem, op)


def unicast(path: MacPath, outer: Memory, inner: Memory, op: str) -> int:
    """How many times `outer` sends a value of `op` to the copies of `inner` (or receives one from
    them): the fanouts between them that neither index `op` nor may multicast or reduce it."""
    return math.prod(f.size for f in path.fanouts if outer.position < f.position <= inner.position
                     and not f.indexes(op) and op not in f.reuse)


def width(mem: Memory, op: str, path: MacPath) -> float:
    """Bits a value of `op` takes in `mem` per bit of the Einsum's value (simba's partial sums: 3)."""
    return mem.widths[op] / path.bits[op]


def bytes_per_cycle(bits_per_second: float, path: MacPath) -> float:
    return bits_per_second / 8 / path.clock_hz


def pj_per_byte(energy: float, bits: float) -> float:
    return energy / bits * 8 * PJ


def bandwidth(x: float) -> float | int:
    """A bandwidth as the ACG writes it: rounded down to 3 significant digits (584.76... -> 584).
    CP-SAT counts time in units of the lcm of the bandwidths' numerators (`solver/cpsat.scales`): the
    ten-digit figures of a conversion (584.7619048 = 5847619048 / 10**7) made that scale overflow 64 bits."""
    if math.isinf(x):
        return UNLIMITED_BYTES_PER_CYCLE
    step = Decimal(10) ** (math.floor(math.log10(x)) - BANDWIDTH_DIGITS + 1)
    value = (Decimal(repr(x)) / step).to_integral_value(rounding=ROUND_FLOOR) * step
    return int(value) if value == value.to_integral_value() else float(value)


# --------------------------------------------------------------------------------------------------
# The ACG document

def storage(mem: Memory, path: MacPath, stream: str, offchip: bool) -> dict:
    wide = max(width(mem, op, path) for op in mem.holds)
    capacity = UNBOUNDED_BYTES if math.isinf(mem.bits) else int(mem.bits / 8 / wide)
    if capacity < 1:
        raise AccelForgeError(f"{mem.name}: {mem.bits:g} bits hold no byte of the Einsum's values")
    out: dict = {"kind": "storage", "capacity": capacity}
    if offchip:
        out["offchip"] = True
    else:
        n = min(split(mem, op, stream) for op in mem.holds)
        if n > 1:
            out["instances"] = n
        out["double_buffer"] = True
    if mem.shared and not math.isinf(min(mem.read.bits_per_second(), mem.write.bits_per_second())):
        rate = min(mem.read.bits_per_second(), mem.write.bits_per_second())
        out["bytes_per_cycle"] = bandwidth(bytes_per_cycle(rate, path) * min(split(mem, op) / width(mem, op, path)
                                                                            for op in mem.holds))
    for key, act in (("read_pj_per_byte", mem.read), ("write_pj_per_byte", mem.write)):
        out[key] = spec_number(max(pj_per_byte(act.energy, act.bits) * width(mem, op, path) * replicas(mem, op)
                            for op in mem.holds))
    return out


def transfer(path: MacPath, src: Memory, dst: Memory, op: str) -> tuple[float, float]:
    """(bytes per cycle, extra pJ per byte) of moving `op` from `src` to `dst`."""
    outer, inner = (src, dst) if src.position < dst.position else (dst, src)
    uni = unicast(path, outer, inner, op)
    sides = [bytes_per_cycle(act.bits_per_second(), path) * split(mem, op) / width(mem, op, path)
             / (uni if mem is outer else 1) for mem, act in ((src, src.read), (dst, dst.write))]
    act = outer.read if src is outer else outer.write
    extra = pj_per_byte(act.energy, act.bits) * width(outer, op, path) * replicas(outer, op) * (uni - 1)
    return min(sides), extra


def chain(path: MacPath, op: str) -> list[Memory]:
    return [m for m in path.memories if op in m.holds]


def hops(path: MacPath, op: str) -> list[tuple[Memory, Memory]]:
    """The (outer, inner) pairs a value of `op` moves between: consecutive memories of its chain. (No
    edge skips a level AccelForge's mapper may bypass: covenant's search leaves out a path that only
    stages through an extra storage when a shorter one exists, so such an edge would always win.)"""
    levels = chain(path, op)
    return list(zip(levels, levels[1:], strict=False))


def edges(path: MacPath) -> list[dict]:
    """The hops of each tensor: down for the inputs, both ways for the output; an edge several tensors
    share takes the lowest bandwidth and the highest extra energy."""
    found: dict[tuple[str, str], tuple[float, float]] = {}
    for op in OPERANDS:
        for outer, inner in hops(path, op):
            for src, dst in [(outer, inner)] + ([(inner, outer)] if op == "C" else []):
                bw, extra = transfer(path, src, dst, op)
                old_bw, old_extra = found.get((src.name, dst.name), (math.inf, 0.0))
                found[src.name, dst.name] = (min(bw, old_bw), max(extra, old_extra))
    out = []
    for (src, dst), (bw, extra) in found.items():
        edge = {"from": src, "to": dst, "bytes_per_cycle": bandwidth(bw)}
        if extra:
            edge["pj_per_byte"] = spec_number(extra)
        out.append(edge)
    return out


def port_time(path: MacPath, mem: Memory) -> float:
    """Cycles one copy of `mem` needs per MAC cycle to serve the MACs below it: one access per
    distinct value of each operand it is the innermost holder of (the output's read-modify-write:
    a read and a write), as AccelForge counts the compute's accesses."""
    reads = writes = 0.0
    for op in OPERANDS:
        if path.innermost(op).name != mem.name:
            continue
        values = math.prod(f.size for f in path.below(mem) if f.indexes(op) or op not in f.reuse)
        reads += values * mem.widths[op] / mem.read.bits / (mem.read.rate / path.clock_hz)
        if op == "C":
            writes += values * mem.widths[op] / mem.write.bits / (mem.write.rate / path.clock_hz)
    return reads + writes if mem.shared else max(reads, writes)


def slowdown(path: MacPath) -> tuple[Fraction, str | None]:
    """(cycles per MAC step, the memory that sets it) rounded up to hundredths; 1 when no port binds."""
    times = {m.name: port_time(path, m) for m in path.memories}
    name = max(times, key=times.get)
    if times[name] <= 1:
        return Fraction(1), None
    return Fraction(math.ceil(round(times[name] * 100, 6)), 100), name


def int_dtype(bits: float) -> str:
    for size, name in INT_DTYPES:
        if bits <= size:
            return name
    raise AccelForgeError(f"{bits:g}-bit values: covenant's widest integer is int64")


def capability(path: MacPath) -> dict:
    fixed, stream, rate = array_shape(path)
    slow, _ = slowdown(path)
    per_step = slow / rate  # cycles per streamed step
    p, q = per_step.numerator, per_step.denominator
    cycles = stream if p == q else f"{stream} * {p}" if q == 1 else \
        f"cdiv({stream}, {q})" if p == 1 else f"cdiv({stream} * {p}, {q})"
    c_bits = max(m.widths["C"] for m in chain(path, "C"))
    return {"name": "mac", "expr": "C[m,n] += A[m,k] * B[k,n]", "dims": fixed,
            "operands": {op: path.innermost(op).name for op in OPERANDS},
            "dtypes": {"A": int_dtype(path.bits["A"]), "B": int_dtype(path.bits["B"]), "C": int_dtype(c_bits)},
            "cycles": cycles, "pj_per_mac": spec_number(path.mac_energy * PJ)}


def accelforge_to_acg(doc: dict, einsum: str | None = None) -> dict:
    """The ACG document (docs/formats/acg.md, loadable by `parse_acg`) of the architecture of a worker
    `spec` document, as evaluated for `einsum` (default: the first Einsum with two inputs)."""
    path = read_path(doc, einsum)
    _, stream, _ = array_shape(path)
    nodes = {m.name: storage(m, path, stream, i == 0) for i, m in enumerate(path.memories)}
    nodes[path.compute] = {"kind": "compute", "capabilities": [capability(path)]}
    out = {"name": acg_name(doc), "clock_ghz": spec_number(path.clock_hz / 1e9)}
    if path.leak_w:
        out["power"] = spec_number(path.leak_w)
    return {**out, "nodes": nodes, "edges": edges(path)}


def acg_name(doc: dict) -> str:
    stem = Path(str(doc.get("arch_file") or "arch")).stem
    return "af_" + "".join(c if c.isalnum() or c in "_.-" else "_" for c in stem)[:120]


# --------------------------------------------------------------------------------------------------
# The file

def import_accelforge_arch(spec_json: dict, source: str, einsum: str | None = None) -> str:
    """The ACG YAML text of a worker `spec` document read from `source`, its header naming the
    sources and every approximation the conversion made."""
    doc = accelforge_to_acg(spec_json, einsum)
    return acg_text(doc, describe(spec_json, read_path(spec_json, einsum), source))


def describe(spec: dict, path: MacPath, source: str) -> list[str]:
    """The header of an imported ACG: its sources, what the conversion decided, what it approximates."""
    arch = str(spec.get("arch_file"))
    lines = [f"Imported from AccelForge's architecture {arch} by covenant's AccelForge import "
             f"(mapper/importers/accelforge_arch.py), reading the evaluated document {Path(source).name} of "
             f"`bench/accelforge_worker.py spec` (accelforge {spec.get('accelforge')}; workload "
             f"{spec.get('workload_file')}" + (f", {spec['jinja']}" if spec.get("jinja") else "")
             + f"; Einsum {path.einsum})."]
    if "examples/arches/" in arch:
        lines.append(f"AccelForge's example architectures: github.com/Accelergy-Project/accelforge at commit "
                     f"{EXAMPLES_COMMIT} (tests/data/accelforge/README.md).")
    lines += _decisions(path)
    lines += [f"Not a storage level here: {', '.join(path.skipped)}."] if path.skipped else []
    lines += ["Approximations (docs/design/importers.md#accelforge has the full table):"] + [f"- {a}" for a in GENERAL]
    return [w for line in lines for w in (textwrap.wrap(line, 110, subsequent_indent="  ") or [""])]


GENERAL = (
    "AccelForge overlaps every transfer with compute without double buffering; covenant overlaps "
    "double-buffered tiles only (every on-chip storage may double-buffer, at twice the space).",
    "The MACs' own operand accesses: AccelForge one per operand per MAC at the innermost holder, covenant "
    "each instruction's operand tiles once (their port time is in the cycles when it binds).",
    "A level a tensor may bypass (may_keep) is always on covenant's path of that tensor: a copy more.",
    "A memory holding tensors with different replication or widths takes the largest factor for all.",
    "Separate read and write ports become per-edge bandwidths: two edges leaving one memory do not "
    "share its read port; a shared port is the node's bytes_per_cycle.",
    "A fanout's rank is fixed by its role (AccelForge's mapper picks one per Einsum); splits along a "
    "streaming dim are not dealt over copies (their capacity counts whole tiles).",
    "Leak at full power (power_gateable ignored); area, min_usage and loop_bounds are not read.",
)


def _decisions(path: MacPath) -> list[str]:
    fixed, stream, rate = array_shape(path)
    roles = {"A": "input", "B": "weight", "C": "output"}
    names = ", ".join(f"{op} = {roles[op]} {path.tensors[op]} ({path.bits[op]:g}-bit)" for op in OPERANDS)
    steps = f"{stream} streams {rate} per cycle" if rate > 1 else f"{stream} streams one per cycle"
    array = ", ".join(f"{f.name} {f.size} -> {f.role}" + (" (no reuse constraint: rows)" if f.free else "")
                      for f in path.fanouts) or "no spatial fanout"
    out = [f"Operands: {names}. Path: {' > '.join(_node_text(n) for n in path.nodes)}.",
           f"Clock {spec_number(path.clock_hz / 1e9)} GHz: {path.compute}'s operations per second per instance "
           f"(AccelForge has no clock). Array: {array}; fixed dims "
           + ", ".join(f"{d} {v}" for d, v in fixed.items()) + f"; {steps}."]
    slow, where = slowdown(path)
    if where:
        out.append(f"Cycles x{float(slow):g}: {where}'s port cannot serve the MACs' accesses in one cycle "
                   f"(AccelForge's latency of {where} exceeds the MACs').")
    for mem in path.memories:
        out += _memory_notes(mem, path)
    for op in OPERANDS:
        for outer, inner in hops(path, op):
            uni = unicast(path, outer, inner, op)
            if uni > 1:
                out.append(f"{path.tensors[op]} crosses a fanout between {outer.name} and {inner.name} that may "
                           f"not multicast it: {outer.name} serves it {uni} times (edge bandwidth / {uni}, "
                           f"{uni - 1} extra accesses as its pJ per byte).")
    if path.leak_w:
        out.append(f"power: {spec_number(path.leak_w)} W, the total leak power of every component of the "
                   "Einsum's paths.")
    return out


def _node_text(node: dict) -> str:
    spatial = [f"{s['name']} {s['fanout']}" for s in node.get("spatial") or []]
    return node["name"] + (f" [{', '.join(spatial)}]" if spatial else "")


def _memory_notes(mem: Memory, path: MacPath) -> list[str]:
    out = []
    if math.isinf(mem.bits):
        out.append(f"{mem.name}: size inf -> {UNBOUNDED_BYTES} B.")
    for op in mem.holds:
        if width(mem, op, path) != 1:
            out.append(f"{mem.name} keeps {path.tensors[op]} at {mem.widths[op]:g} bits per value: its capacity, "
                       f"bandwidth and energies are per {path.bits[op]:g}-bit value (factor "
                       f"{spec_number(width(mem, op, path))}); the capability's C is {int_dtype(mem.widths[op])}.")
    if mem.copies > 1:
        _, stream, _ = array_shape(path)
        parts = [f"{path.tensors[op]} {split(mem, op)} shares x {replicas(mem, op)} replicas" for op in mem.holds]
        dealt = min(split(mem, op, stream) for op in mem.holds)
        rows = " (a split along the streaming rows is not dealt: whole tiles per copy)" \
            if dealt < min(split(mem, op) for op in mem.holds) else ""
        out.append(f"{mem.name}: {mem.copies} copies ({'; '.join(parts)}): instances {dealt}{rows}; pJ per byte x "
                   f"{max(replicas(mem, op) for op in mem.holds)} (the replicas).")
    if mem.shared and mem.read.rate != mem.write.rate:
        out.append(f"{mem.name}: one port with different read and write rates: the slower one.")
    return out


__all__ = ["accelforge_to_acg", "import_accelforge_arch", "UNBOUNDED_BYTES", "UNLIMITED_BYTES_PER_CYCLE"]
