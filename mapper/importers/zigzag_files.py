"""Reading ZigZag's files: a hardware file (memories innermost first, each with a size in bits,
ports with bandwidths in bits per cycle and the transfers allocated to them, a read and a write cost
per access, the operands it holds and the array dimensions it serves; the operational array) and a
mapping file (the spatial unrolling per array dimension, which memory operand holds I and W), read
through the project's located loader: a bad file is one line naming file, line and field.
`mapper.importers.zigzag` builds the ACG from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mapper.spec.loader import KINDS, Field, SpecError, kind_of

OPERANDS = ("I1", "I2", "O")
DIRECTIONS = ("tl", "th", "fh", "fl")  # to low, to high (reads); from high, from low (writes)
# Which capability dim each ZigZag layer dim unrolls into (K output channels, C input channels, ...).
ROLE = {"K": "n", "C": "k", "FX": "k", "FY": "k", "OX": "m", "OY": "m", "B": "m"}


@dataclass(frozen=True)
class Port:
    kind: str  # read | write | read_write
    bits: int  # bandwidth_max, bits per cycle
    allocation: frozenset[tuple[str, str]]  # (operand, direction)


@dataclass(frozen=True)
class Memory:
    name: str
    bits: int
    r_cost: float
    w_cost: float
    operands: tuple[str, ...]
    ports: tuple[Port, ...]
    served: tuple[str, ...]
    field: Field

    def width(self, reads: bool) -> int:
        """The widest port reading (or writing) it: ZigZag's costs are per access of that width."""
        kinds = ("read", "read_write") if reads else ("write", "read_write")
        return max((p.bits for p in self.ports if p.kind in kinds), default=0)

    def port_bits(self, operand: str, direction: str) -> int | None:
        bits = [p.bits for p in self.ports if (operand, direction) in p.allocation]
        return max(bits) if bits else None


@dataclass(frozen=True)
class Hardware:
    name: str
    memories: tuple[Memory, ...]  # innermost first, as ZigZag lists them
    sizes: dict[str, int]  # array dimension -> size
    unit_energy: float
    source: str


@dataclass(frozen=True)
class Unrolling:
    """What the mapping file says: per capability role (m, n, k) the unrolled extent, the lanes of
    element-wise layers, and which memory operand holds each layer operand (I, W, O)."""

    roles: dict[str, int]
    lanes: int
    pool_lanes: int
    links: dict[str, str]
    source: str = ""


def parse_hardware(root: Field) -> Hardware:
    """ZigZag's accelerator file (only the fields the conversion needs are read; others are ignored)."""
    other = _other_kind(root.value, "hardware")
    if other or not isinstance(root.value, dict):
        raise root.error(f"expected a ZigZag hardware file (name, memories, operational_array), got "
                         f"{other or 'a list'}")
    top = root.mapping()
    for key in ("name", "memories", "operational_array"):
        if key not in top:
            raise root.error(f"missing required field '{key}' (is this a ZigZag hardware file?)")
    array = top["operational_array"]
    arr = array.mapping()
    if "is_imc" in arr and arr["is_imc"].value is True:
        raise arr["is_imc"].error("in-memory-computing arrays are not supported by the import")
    dims = [d.str() for d in array.child("dimensions").items()]
    sizes = [s.int(minimum=1) for s in array.child("sizes").items()]
    if len(dims) != len(sizes) or not dims or len(set(dims)) != len(dims):
        raise array.child("sizes").error(f"expected one size per dimension ({len(dims)} distinct dimensions), "
                                         f"got {len(sizes)}")
    energy = arr["unit_energy"].number() if "unit_energy" in arr and arr["unit_energy"].value is not None else 0.0
    mems = top["memories"].mapping()
    if not mems:
        raise top["memories"].error("expected at least one memory")
    memories = tuple(_parse_memory(name, f, dict(zip(dims, sizes, strict=True))) for name, f in mems.items())
    top_mem = memories[-1]
    missing = [op for op in OPERANDS if op not in top_mem.operands]
    if missing:
        raise top_mem.field.child("operands").error(
            f"the last memory ('{top_mem.name}') is taken as off-chip and must hold every operand; "
            f"it lacks {', '.join(missing)}")
    return Hardware(top["name"].str(), memories, dict(zip(dims, sizes, strict=True)), energy, root.source)


def _other_kind(doc: object, expected: str) -> str | None:
    """What a file given in the wrong place is, with where it goes (None: the `expected` kind,
    'hardware' or 'mapping', or a file not recognised)."""
    if isinstance(doc, list) and doc and all(isinstance(e, dict) and "spatial_mapping" in e for e in doc):
        return None if expected == "mapping" else ("a ZigZag mapping file (give it with --mapping: covenant import "
                                                   "zigzag HARDWARE.yaml --mapping MAPPING.yaml)")
    kind = kind_of(doc)
    if kind is None or (kind == "a ZigZag hardware file" and expected == "hardware"):
        return None
    if kind == "a ZigZag hardware file":
        return "a ZigZag hardware file (give it first: covenant import zigzag HARDWARE.yaml)"
    return kind + KINDS[kind][1]


def _parse_memory(name: str, f: Field, sizes: dict[str, int]) -> Memory:
    Field(f.source, f.path, name, f.line).ident()
    m = f.mapping()
    for key in ("size", "operands", "ports", "served_dimensions"):
        if key not in m:
            raise f.error(f"missing required field '{key}'")
    bits = m["size"].int(minimum=8, maximum=2**53)
    costs = {}
    for key in ("r_cost", "w_cost"):
        if key in m and m[key].value is not None:
            costs[key] = m[key].number()
        elif m.get("auto_cost_extraction") and m["auto_cost_extraction"].value is True:
            raise m["auto_cost_extraction"].error("covenant does not run CACTI: give r_cost and w_cost")
        else:
            costs[key] = 0.0
    operands = tuple(o.choice(OPERANDS) for o in m["operands"].items())
    if not operands:
        raise m["operands"].error("expected at least one of I1, I2, O")
    served = tuple(d.choice(tuple(sizes)) for d in m["served_dimensions"].items())
    ports = []
    for item in m["ports"].items():
        p = item.mapping()
        for key in ("type", "bandwidth_max", "allocation"):
            if key not in p:
                raise item.error(f"missing required field '{key}'")
        alloc = set()
        for a in p["allocation"].items():
            parts = [x.strip() for x in a.str().split(",")]
            if len(parts) != 2 or parts[0] not in OPERANDS or parts[1] not in DIRECTIONS:
                raise a.expected("an allocation such as 'I1, tl' (operand I1/I2/O, direction tl/th/fh/fl)")
            alloc.add((parts[0], parts[1]))
        ports.append(Port(p["type"].choice(("read", "write", "read_write")), p["bandwidth_max"].int(minimum=1),
                          frozenset(alloc)))
    if not ports:
        raise m["ports"].error("expected at least one port")
    return Memory(name, bits, costs["r_cost"], costs["w_cost"], operands, tuple(ports), served, f)


def parse_mapping(root: Field | None, hw: Hardware) -> Unrolling:
    """The spatial unrolling of ZigZag's mapping file (its `default` entry, else its first one);
    without a file, ZigZag's default.yaml convention: D1 unrolls K, D2 unrolls C, D3 OX, D4 OY."""
    dims = list(hw.sizes)
    if root is None:
        order = ("K", "C", "OX", "OY")
        if len(dims) > len(order):
            raise SpecError(hw.source, None, "operational_array.dimensions",
                            f"{len(dims)} dimensions: give the spatial mapping with --mapping")
        roles = _roles({d: [(ld, hw.sizes[d])] for d, ld in zip(dims, order, strict=False)}, hw, None)
        return Unrolling(roles, hw.sizes[dims[0]], hw.sizes[dims[0]], {"I": "I1", "W": "I2", "O": "O"})
    entries = {e.child("name").str(): e for e in root.items()} if isinstance(root.value, list) else {}
    if not entries:
        other = _other_kind(root.value, "mapping") or "something else"
        raise root.error(f"expected a ZigZag mapping file: a list of entries with 'name' and 'spatial_mapping', "
                         f"got {other}")
    entry = entries.get("default") or next(iter(entries.values()))
    sm = entry.child("spatial_mapping")
    roles = _roles(_unrollings(sm, hw), hw, sm)
    lanes = {kind: math.prod(f for pairs in _unrollings(entries[kind].child("spatial_mapping"), hw).values()
                             for _, f in pairs) if kind in entries else hw.sizes[dims[0]]
             for kind in ("Add", "Pooling")}
    links = {"I": "I1", "W": "I2", "O": "O"}
    if "memory_operand_links" in entry.mapping():
        f = entry.child("memory_operand_links")
        links = {k: f.child(k).choice(OPERANDS) for k in ("I", "W", "O")}
        if len(set(links.values())) != 3 or links["O"] != "O":
            raise f.error("expected O: O and I, W linked to I1 and I2 (one each)")
    return Unrolling(roles, lanes["Add"], lanes["Pooling"], links, root.source)


def _unrollings(sm: Field, hw: Hardware) -> dict[str, list[tuple[str, int]]]:
    """Per array dimension, its (layer dim, factor) pairs, each factor capped at the dimension's size
    (as ZigZag reduces a user unrolling that exceeds it)."""
    out = {}
    for dim, items in sm.mapping().items():
        if dim not in hw.sizes:
            raise items.error(f"'{dim}' is not a dimension of the array ({', '.join(hw.sizes)})")
        pairs = []
        for item in items.items():
            parts = [x.strip() for x in item.str().split(",")]
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) < 1:
                raise item.expected("an unrolling such as 'K, 32'")
            pairs.append((parts[0], min(int(parts[1]), hw.sizes[dim])))
        if math.prod(f for _, f in pairs) > hw.sizes[dim]:
            raise items.error(f"unrolls {math.prod(f for _, f in pairs)} on {dim}, of size {hw.sizes[dim]}")
        out[dim] = pairs
    return out


def _roles(unrolled: dict[str, list[tuple[str, int]]], hw: Hardware, where: Field | None) -> dict[str, int]:
    roles = {"m": 1, "n": 1, "k": 1}
    for pairs in unrolled.values():
        for layer_dim, factor in pairs:
            if layer_dim not in ROLE:
                message = (f"unrolling '{layer_dim}' has no place on a matrix capability; supported: "
                           f"{', '.join(ROLE)}")
                raise where.error(message) if where else SpecError(hw.source, None, "", message)
            roles[ROLE[layer_dim]] *= factor
    return roles


__all__ = ["DIRECTIONS", "OPERANDS", "Hardware", "Memory", "Port", "Unrolling", "parse_hardware", "parse_mapping"]
