"""ZigZag hardware import: a ZigZag accelerator (and its spatial mapping) becomes an ACG.

ZigZag (KU Leuven, MIT licence) describes an accelerator as a memory hierarchy (memories listed
innermost first, each with a size in bits, ports with bandwidths in bits per cycle, a read and a
write cost per access, the operands I1/I2/O it holds and the array dimensions it serves) and an
operational array (dimensions D1.. with sizes, the energy of one MAC); its mapping file says which
layer dimension each array dimension unrolls. `zigzag_files.py` reads both through the project's
located loader (errors name file, line and field); `zigzag_to_acg` writes the ACG document
(docs/design/importers.md, "ZigZag import", says what maps exactly and what is approximated):

- a memory becomes a storage node: capacity = size / 8 per instance, `instances` = the product of
  the array dimensions it does not serve (a per-PE register file of a 32 x 32 array: 1024), pJ per
  byte = cost per access / (port width / 8), one read/write port -> the node's shared
  `bytes_per_cycle`; the last memory is the off-chip one;
- consecutive memories of an operand become edges (inputs downwards, outputs both ways), with the
  bandwidth of the ports ZigZag allocates to that transfer (`I1, tl` at the source, `I1, fh` at the
  destination...), times the instances;
- the array becomes a `C[m,n] += A[m,k] * B[k,n]` capability: n fixed to the K unrolling, k to the
  C x FX x FY unrolling, and m streaming at the OX x OY x B unrolling per cycle (`cdiv(m, U)`), over
  that many PE lanes (`lanes: {m: U}`: what a per-PE memory holds of its inputs);
- per-PE output registers (the first memory of O, when it has copies) give a second, output-stationary
  capability `mac_os`: m and n fixed to the unrollings, the reduction k streaming over the C x FX x FY
  unrolling's PE lanes (`lanes: {k: U}`: a per-PE weight register holds ceil(k / U) of a stream), C in the
  registers, where partial sums stay across the reduction loops and are written back once (a
  register holds one int32 per 16-bit partial sum ZigZag's layers keep in it; its energies and
  ports are per partial sum). The streaming `mac` keeps them as its int32 accumulators (not a
  storage level); an input register file too small for one instruction's tile is skipped for it;
  both have an `epilogue`: as in ZigZag, where a layer's outputs are complete they are written
  back at their final precision (a layer with an `Epilogue` then stores int8);
- element-wise capabilities (requantisation, ReLU, add, pooling) run on the same array with the lanes
  of the mapping's `Add` / `Pooling` entries, as ZigZag maps those layers.

    >>> from mapper.spec.loader import load_yaml_text
    >>> hw = load_yaml_text(TINY_HARDWARE, "hw.yaml")
    >>> doc = zigzag_to_acg(parse_hardware(hw), None)
    >>> doc["nodes"]["rf"]["instances"], doc["nodes"]["PE_ARRAY"]["capabilities"][0]["dims"]
    (16, {'k': 4, 'n': 4})
    >>> doc = zigzag_to_acg(parse_hardware(load_yaml_text(TINY_HARDWARE_OS, "hw.yaml")), None)
    >>> os = doc["nodes"]["PE_ARRAY"]["capabilities"][1]
    >>> os["name"], os["dims"], os["operands"]["C"], os["cycles"], doc["nodes"]["acc"]["capacity"]
    ('mac_os', {'m': 1, 'n': 4}, 'acc', 'cdiv(k, 4)', 8)
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import yaml

from mapper.importers.zigzag_files import OPERANDS, Hardware, Memory, Unrolling, parse_hardware, parse_mapping
from mapper.spec.acg import ACG, parse_acg
from mapper.spec.loader import SpecError, load_yaml, load_yaml_text

PSUM_BITS = 16  # the partial-sum precision of ZigZag's ONNX layers (operand_precision O)
VALUE_BYTES = 4  # a partial sum in covenant: int32
ELEMENTWISE = (  # as the shipped tpu_like's activation unit; `lanes` and the memory are filled in
    ("requant", "Z[i] = clip(shr(X[i], s), lo, hi)", {"X": "int32", "Z": "int8"}),
    ("relu", "Z[i] = relu(X[i])", {"X": "int32", "Z": "int32"}),
    ("add", "Z[i] = X[i] + Y[i]", {"X": "int32", "Y": "int32", "Z": "int32"}),
    ("add_relu", "Z[i] = relu(X[i] + Y[i])", {"X": "int8", "Y": "int8", "Z": "int8"}),
    ("max_pool", "Z[i] max= X[i]", {"X": "int32", "Z": "int32"}),
    ("sum_pool", "Z[i] += X[i]", {"X": "int32", "Z": "int32"}),
)
TINY_HARDWARE = """\
name: tiny_zz
memories:
  rf: {size: 8, r_cost: 0.1, w_cost: 0.1, latency: 1, operands: [I2], served_dimensions: [],
       ports: [{name: rw_port_1, type: read_write, bandwidth_min: 8, bandwidth_max: 8,
                allocation: ['I2, tl', 'I2, fh']}]}
  dram: {size: 1000000, r_cost: 100, w_cost: 100, latency: 1, operands: [I1, I2, O], served_dimensions: [D1, D2],
         ports: [{name: rw_port_1, type: read_write, bandwidth_min: 64, bandwidth_max: 64,
                  allocation: ['I1, tl', 'I2, tl', 'O, fl', 'O, tl']}]}
operational_array: {unit_energy: 0.5, dimensions: [D1, D2], sizes: [4, 4]}
"""
TINY_HARDWARE_OS = TINY_HARDWARE.replace("memories:\n", """memories:
  acc: {size: 32, r_cost: 0.02, w_cost: 0.02, operands: [O], served_dimensions: [],
        ports: [{name: r, type: read, bandwidth_max: 16, allocation: ['O, th', 'O, tl']},
                {name: w, type: write, bandwidth_max: 16, allocation: ['O, fh', 'O, fl']}]}
""")


# --------------------------------------------------------------------------------------------------
# Building the ACG document

def instances(mem: Memory, hw: Hardware) -> int:
    """Copies of a memory: one per point of the array dimensions it does not serve; the off-chip
    memory is one device (ascend_like's DRAM serves D1, D2 only: its 4 copies would each read the
    same weights, so their ports together are no wider for weights than one)."""
    if mem is hw.memories[-1]:
        return 1
    return math.prod(size for d, size in hw.sizes.items() if d not in mem.served)


def chains(hw: Hardware, unroll: Unrolling) -> dict[str, list[Memory]]:
    """Per ZigZag operand, its memories innermost first, without the levels the array absorbs
    (per-PE output registers; input registers that cannot hold one instruction's operand tile)."""
    k, n = unroll.roles["k"], unroll.roles["n"]
    tile = {unroll.links["I"]: k, unroll.links["W"]: k * n, "O": math.inf}  # int8 bytes; O: always absorbed
    out = {}
    for op in OPERANDS:
        chain = [m for m in hw.memories if op in m.operands]
        while len(chain) > 1 and instances(chain[0], hw) > 1 and \
                instances(chain[0], hw) * (chain[0].bits // 8) < tile[op]:
            chain.pop(0)
        out[op] = chain
    return out


def zigzag_to_acg(hw: Hardware, unroll: Unrolling | None) -> dict:
    """The ACG document (plain data, in the format of docs/formats/acg.md) of a ZigZag accelerator."""
    unroll = unroll or parse_mapping(None, hw)
    ch = chains(hw, unroll)
    reg = out_register(hw)
    nodes = {m.name: _register(m, hw) if m is reg else _storage(m, hw, m is hw.memories[-1])
             for m in hw.memories if m is reg or any(m in c for c in ch.values())}
    caps = [_mac(hw, unroll, ch)] + ([_mac_os(hw, unroll, ch, reg)] if reg else [])
    act = next(m.name for m in ch[unroll.links["I"]] if m in ch["O"])  # activations: read and written
    for name, expr, dtypes in ELEMENTWISE:
        lanes = unroll.pool_lanes if name.endswith("_pool") else unroll.lanes
        caps.append({"name": name, "expr": expr, "dims": {"i": lanes}, "cycles": 1, "pj_per_op": hw.unit_energy,
                     "operands": {t: act for t in dtypes}, "dtypes": dtypes})
    nodes["PE_ARRAY"] = {"kind": "compute", "capabilities": caps}
    edges = _edges(ch, hw) + (_register_edges(reg, ch["O"][0], hw) if reg else [])
    return {"name": _acg_name(hw), "clock_ghz": 1.0, "nodes": nodes, "edges": edges}


def out_register(hw: Hardware) -> Memory | None:
    """ZigZag's per-PE output registers: the first memory of O when it has copies (None: it has one)."""
    first = next(m for m in hw.memories if "O" in m.operands)
    return first if instances(first, hw) > 1 else None


def _mac(hw: Hardware, unroll: Unrolling, ch: dict[str, list[Memory]]) -> dict:
    """The streaming array: n and k fixed to the unrollings, the output pixels m streaming."""
    u = unroll.roles
    a_mem, b_mem, c_mem = (ch[unroll.links[x]][0].name for x in ("I", "W", "O"))
    return {"name": "mac", "expr": "C[m,n] += A[m,k] * B[k,n]", "dims": {"k": u["k"], "n": u["n"]},
            "operands": {"A": a_mem, "B": b_mem, "C": c_mem}, "dtypes": {"A": "int8", "B": "int8", "C": "int32"},
            "cycles": _cycles("m", _mac_rate(hw, unroll, ch)), "pj_per_mac": hw.unit_energy, "epilogue": True,
            **({"lanes": {"m": u["m"]}} if u["m"] > 1 else {})}


def _mac_rate(hw: Hardware, unroll: Unrolling, ch: dict[str, list[Memory]]) -> Fraction:
    """The streaming array's rows per cycle: u_m, or fewer where the shared ports cannot feed the
    inputs and move the partial sums (ZigZag's 16-bit ones: the array reads and writes each
    instruction's output tile where C lives)."""
    u = unroll.roles
    a_mem, c_mem = ch[unroll.links["I"]][0], ch["O"][0]
    return _rate(hw, u["m"], [(a_mem, unroll.links["I"], "tl", 8 * u["k"]), (c_mem, "O", "tl", PSUM_BITS * u["n"]),
                              (c_mem, "O", "fl", PSUM_BITS * u["n"])])


def _mac_os(hw: Hardware, unroll: Unrolling, ch: dict[str, list[Memory]], reg: Memory) -> dict:
    """The output-stationary array: each PE keeps its outputs' partial sums in its register (m x n
    outputs at once) while the reduction k streams through. Weights come from their first level or,
    when that is a per-PE register (sized for weight-stationary use), the next one as well where its
    port keeps up with the array: the solver picks."""
    u = unroll.roles
    w_chain = _weights(hw, unroll, ch)
    b = [m.name for m in w_chain[:2]] if len(w_chain) > 1 and instances(w_chain[0], hw) > 1 and \
        _rate(hw, u["k"], [(w_chain[1], unroll.links["W"], "tl", 8 * u["n"])]) == u["k"] else w_chain[0].name
    return {"name": "mac_os", "expr": "C[m,n] += A[m,k] * B[k,n]", "dims": {"m": u["m"], "n": u["n"]},
            "operands": {"A": ch[unroll.links["I"]][0].name, "B": b, "C": reg.name},
            "dtypes": {"A": "int8", "B": "int8", "C": "int32"}, "cycles": _cycles("k", _os_rate(hw, unroll, ch)),
            "pj_per_mac": hw.unit_energy, "epilogue": True, **({"lanes": {"k": u["k"]}} if u["k"] > 1 else {})}


def _weights(hw: Hardware, unroll: Unrolling, ch: dict[str, list[Memory]]) -> list[Memory]:
    return [m for m in ch[unroll.links["W"]] if m is not hw.memories[-1]]


def _os_rate(hw: Hardware, unroll: Unrolling, ch: dict[str, list[Memory]]) -> Fraction:
    """The output-stationary array's reduction elements per cycle: u_k, or fewer where the shared
    ports cannot feed the inputs and weights."""
    u, a_link, w_link = unroll.roles, unroll.links["I"], unroll.links["W"]
    return _rate(hw, u["k"], [(ch[a_link][0], a_link, "tl", 8 * u["m"]),
                              (_weights(hw, unroll, ch)[0], w_link, "tl", 8 * u["n"])])


def _rate(hw: Hardware, unrolled: int, accesses: list[tuple[Memory, str, str, int]]) -> Fraction:
    """Elements of the streaming dim per cycle: the unrolling, or less where the shared ports the
    array reads and writes cannot keep up. `accesses`: (memory, operand, direction, bits per element
    of the stream); a per-PE memory has a port per PE and never limits. Accesses on one port add up."""
    per_port: dict[tuple[str, int], int] = {}
    mems = {m.name: m for m in hw.memories}
    for mem, op, direction, bits in accesses:
        if instances(mem, hw) > 1:
            continue
        ports = [i for i, p in enumerate(mem.ports) if (op, direction) in p.allocation]
        if not ports:
            raise mem.field.child("ports").error(f"no port of '{mem.name}' is allocated to '{op}, {direction}', "
                                                 "which the array's accesses need")
        key = (mem.name, max(ports, key=lambda i: mem.ports[i].bits))
        per_port[key] = per_port.get(key, 0) + bits
    return min([Fraction(unrolled)] + [Fraction(mems[m].ports[i].bits, bits) for (m, i), bits in per_port.items()])


def _cycles(dim: str, rate: Fraction) -> str:
    """The cycle formula of a stream of `dim` at `rate` elements per cycle."""
    if rate == 1:
        return dim
    return f"cdiv({dim}, {rate.numerator})" if rate.denominator == 1 else \
        f"cdiv({dim} * {rate.denominator}, {rate.numerator})"


def _register(reg: Memory, hw: Hardware) -> dict:
    """A per-PE output register as a storage: one int32 per partial sum it holds (at least one); an
    access of a partial sum costs what ZigZag charges for it (one access per port width)."""
    node = {"kind": "storage", "capacity": max(1, reg.bits // PSUM_BITS) * VALUE_BYTES,
            "instances": instances(reg, hw), "double_buffer": True}
    for key, cost, reads in (("read_pj_per_byte", reg.r_cost, True), ("write_pj_per_byte", reg.w_cost, False)):
        width = reg.width(reads)
        node[key] = spec_number(cost * -(-PSUM_BITS // width) / VALUE_BYTES) if width else 0.0
    return node


def _register_edges(reg: Memory, outer: Memory, hw: Hardware) -> list[dict]:
    """Write-backs from the registers and partial-sum reloads into them, as many int32 values a cycle
    as the two ports move ZigZag's partial sums."""
    def values(mem: Memory, direction: str) -> float:
        return _port(mem, "O", direction, hw) * 8 / PSUM_BITS
    up = min(values(reg, "th"), values(outer, "fl")) * VALUE_BYTES
    down = min(values(outer, "tl"), values(reg, "fh")) * VALUE_BYTES
    return [{"from": reg.name, "to": outer.name, "bytes_per_cycle": spec_number(up)},
            {"from": outer.name, "to": reg.name, "bytes_per_cycle": spec_number(down)}]


def _acg_name(hw: Hardware) -> str:
    name = "".join(c if c.isalnum() or c in "_.-" else "_" for c in hw.name)[:128]
    return name if name and (name[0].isalnum() or name[0] == "_") else f"zz_{name}"[:128]


def _storage(mem: Memory, hw: Hardware, offchip: bool) -> dict:
    n = instances(mem, hw)
    out: dict = {"kind": "storage", "capacity": mem.bits // 8}
    if offchip:
        out["offchip"] = True
    if n > 1 and not offchip:
        out["instances"] = n
    if not offchip:
        out["double_buffer"] = True
    if len(mem.ports) == 1 and mem.ports[0].kind == "read_write":  # one port: every transfer shares it
        out["bytes_per_cycle"] = spec_number(mem.ports[0].bits / 8 * n)
    for key, cost, reads in (("read_pj_per_byte", mem.r_cost, True), ("write_pj_per_byte", mem.w_cost, False)):
        width = mem.width(reads)
        out[key] = spec_number(cost / (width / 8)) if width else 0.0
    return out


def _edges(ch: dict[str, list[Memory]], hw: Hardware) -> list[dict]:
    """Edges between consecutive memories of each operand: down for inputs (and partial-sum reloads),
    up for outputs; the bandwidth is that of the ports ZigZag allocates to the transfer."""
    found: dict[tuple[str, str], float] = {}
    for op, chain in ch.items():
        for inner, outer in zip(chain, chain[1:], strict=False):
            moves = [(outer, inner, "tl", "fh")] + ([(inner, outer, "th", "fl")] if op == "O" else [])
            for src, dst, out_dir, in_dir in moves:
                bw = min(_port(src, op, out_dir, hw), _port(dst, op, in_dir, hw))
                found[src.name, dst.name] = max(found.get((src.name, dst.name), 0.0), bw)
    return [{"from": s, "to": d, "bytes_per_cycle": spec_number(bw)} for (s, d), bw in found.items()]


def _port(mem: Memory, op: str, direction: str, hw: Hardware) -> float:
    bits = mem.port_bits(op, direction)
    if bits is None:
        raise mem.field.child("ports").error(f"no port of '{mem.name}' is allocated to '{op}, {direction}', "
                                             "which the transfer between its levels needs")
    return bits / 8 * instances(mem, hw)


def spec_number(x: float) -> float | int:
    """A figure as written in a spec: an integer when whole, else 10 significant digits."""
    return int(x) if float(x).is_integer() else float(f"{x:.10g}")


# --------------------------------------------------------------------------------------------------
# The file

def acg_text(doc: dict, header: list[str]) -> str:
    """The ACG YAML text: a comment header, one flow-style line per storage node and edge (and the
    static `power` when the document has one)."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"name: {doc['name']}", f"clock_ghz: {_scalar(doc['clock_ghz'])}"]
    lines += [f"power: {_scalar(doc['power'])}"] if doc.get("power") else []
    lines.append("nodes:")
    for name, node in doc["nodes"].items():
        if node["kind"] == "storage":
            lines.append(f"  {name}: {_flow(node)}")
            continue
        lines += [f"  {name}:", "    kind: compute", "    capabilities:"]
        lines += [f"      - {_flow(cap)}" for cap in node["capabilities"]]
    lines.append("edges:")
    lines += [f"  - {_flow(e)}" for e in doc["edges"]]
    return "\n".join(lines) + "\n"


def _scalar(value: float) -> str:
    """A number as YAML reads it back as a number (PyYAML takes `1e-09` for a string: `1.0e-09`)."""
    return yaml.safe_dump(value).removesuffix("\n...\n").strip()


def _flow(value: dict) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()


def describe(hw: Hardware, unroll: Unrolling) -> list[str]:
    """The header of an imported ACG: its sources and what the conversion decided."""
    ch = chains(hw, unroll)
    u = unroll.roles
    lines = [f"Imported from ZigZag's hardware file {Path(hw.source).name} ('{hw.name}')"
             + (f" and mapping file {Path(unroll.source).name}" if unroll.source else "")
             + " by `covenant import zigzag`.",
             f"Array {' x '.join(f'{d}={s}' for d, s in hw.sizes.items())}, {hw.unit_energy} pJ/MAC; unrolled: "
             f"K {u['n']} (n), C*FX*FY {u['k']} (k), OX*OY*B {u['m']}.",
             "Operand levels, innermost first: " + "; ".join(
                 f"{op}: {' <- '.join(m.name for m in ch[op])}" for op in OPERANDS),
             f"Streaming mac: m (OX*OY*B) streams {_mac_rate(hw, unroll, ch)} rows per cycle (the "
             f"unrolling, or what the shared ports feed: inputs, and {PSUM_BITS}-bit partial sums read and written)."]
    reg = out_register(hw)
    if reg is not None:
        rate = _os_rate(hw, unroll, ch)
        lines.append(f"Output-stationary mac_os: m {u['m']} x n {u['n']} outputs held in the per-PE registers "
                     f"{reg.name} (an int32 per {PSUM_BITS}-bit partial sum), k streaming {rate} per cycle; "
                     f"mac keeps them as its accumulators.")
    skipped = [m.name for m in hw.memories if m is not reg and not any(m in c for c in ch.values())]
    absorbed = [f"{m.name} ({op})" for op in OPERANDS for m in hw.memories
                if op in m.operands and m not in ch[op] and m.name not in skipped and m is not reg]
    if skipped or absorbed:
        lines.append("Absorbed into the array (accumulators / operand registers, not a storage level): "
                     + ", ".join(skipped + absorbed) + ".")
    lines.append(f"Element-wise capabilities (not in ZigZag's file): {unroll.lanes} lanes (pooling "
                 f"{unroll.pool_lanes}), as the mapping's Add / Pooling entries; {hw.unit_energy} pJ per op.")
    return lines


def import_zigzag(hardware: str | Path, mapping: str | Path | None = None,
                  header: list[str] | None = None) -> tuple[str, ACG]:
    """The ACG YAML text of a ZigZag accelerator and its parse by the project's loader (what loading
    the written file gives). Bad input raises `SpecError` naming the ZigZag file, line and field."""
    hw = parse_hardware(load_yaml(hardware, foreign=True))
    unroll = parse_mapping(load_yaml(mapping, foreign=True) if mapping else None, hw)
    doc = zigzag_to_acg(hw, unroll)
    text = acg_text(doc, [*(header or []), *describe(hw, unroll)])
    try:
        return text, parse_acg(load_yaml_text(text, str(hardware)))
    except SpecError as exc:  # the generated text is not visible to the user: name the ZigZag file
        raise SpecError(str(hardware), None, exc.field, f"the imported ACG is invalid: {exc.message}") from None


__all__ = ["acg_text", "import_zigzag", "spec_number", "zigzag_to_acg"]
