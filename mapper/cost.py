"""The analytical cost model: what a Mapping costs on an ACG, in exact rational arithmetic.

Every strategy scores candidates with `evaluate`, and the CP-SAT model encodes exactly these
formulas, so its objective equals `evaluate(decoded mapping)` (tests hold them equal).

Traffic. A tensor's tile at storage level k (k >= 1 on its path) is reloaded whenever it changes
while the loops of levels < k run: with those loops flattened outermost first,

    loads_k(T)    = product of the factors down to the innermost loop that indexes T
    distinct_k(T) = product of the factors of the loops that index T

The output is written back once per visit and reloaded on every visit but the first of each tile
(partial sums). A tile moves its nominal footprint (halos included, clipped to the tensor's shape).

Time. Engines are the simulator's: one per edge, one per storage port, one per compute node; a
transfer of b bytes keeps each of its engines busy b / min(bandwidths) cycles.

    latency = max(prologue + compute + stalls + epilogue, busiest transfer engine + last tile's compute,
                  partial-sum chain)

- compute: the capability's cycle formula summed over the instructions;
- prologue: the first tiles (the largest per-engine sum of first loads);
- stalls: a single-buffered tile cannot load while its predecessor is still in use, so each
  reload after the first adds its transfer time (for the output: write-back plus reload);
- epilogue: the last output tile's write-back, level by level;
- last tile's compute: the instructions of one iteration of the innermost loop level that moves
  data (the busiest engine's last transfer is followed, or preceded, by at least that much compute);
- a double-buffered output whose partial sums return adds a third bound, (write-backs + reloads +
  compute) / 2: a slot is reloaded only once the tile two visits back has been written back.

Energy: bytes moved x (source read + destination write + edge) pJ/B, plus iteration points x the
capability's pJ per op, plus every instruction's operand accesses in the storages it reads.

    >>> from mapper.acg import load_acg
    >>> from mapper.binding import bind
    >>> from mapper.mapping import greedy_mapping
    >>> from mapper.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> c = evaluate(greedy_mapping(layer, bind(layer, acg)[0], acg), acg)
    >>> c.latency >= c.compute_cycles > 0
    True
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from mapper.acg import ACG, Capability, peak_ops_per_cycle
from mapper.mapping import Mapping, tile_bytes
from mapper.workload import Layer

OBJECTIVES = ("latency", "energy", "edp")


@functools.lru_cache(maxsize=4096)
def exact(x: float | int) -> Fraction:
    """A spec number as the decimal it was written as (1.2 -> 6/5, not the nearest binary float)."""
    return Fraction(str(x)) if isinstance(x, float) else Fraction(x)


@dataclass(frozen=True)
class Stream:
    """One kind of transfer of a mapping: `count` tiles of `tile_bytes` along src -> dst."""

    tensor: str
    src: str
    dst: str
    level: int  # the storage level on the tensor's path that the tile belongs to
    kind: str  # 'load', 'writeback' or 'reload'
    tile_bytes: int
    count: int
    engines: tuple[str, ...]
    bandwidth: Fraction  # bytes per cycle: the slowest of the edge and the ports
    pj_per_byte: Fraction

    @property
    def bytes(self) -> int:
        return self.tile_bytes * self.count

    @property
    def tile_cycles(self) -> Fraction:
        return self.tile_bytes / self.bandwidth


@dataclass(frozen=True)
class Cost:
    latency: Fraction  # cycles
    energy: Fraction  # pJ
    compute_cycles: Fraction
    prologue: Fraction
    stalls: Fraction
    epilogue: Fraction
    busy: tuple[tuple[str, Fraction], ...]  # engine -> busy cycles
    streams: tuple[Stream, ...]
    instructions: int
    ops: int

    @property
    def edp(self) -> Fraction:
        return self.latency * self.energy

    def objective(self, name: str) -> Fraction:
        return {"latency": self.latency, "energy": self.energy, "edp": self.edp}[name]

    @property
    def dram_bytes(self) -> int:
        return sum(s.bytes for s in self.streams if s.level == 1)


def relevant_dims(layer: Layer, tensor: str) -> frozenset[str]:
    """The dims whose loops change `tensor`'s tile (those its accesses index)."""
    return _relevant(layer.expr, tensor)


@functools.lru_cache(maxsize=1024)
def _relevant(expr, tensor: str) -> frozenset[str]:
    return frozenset(d for a in [expr.output, *expr.accesses] if a.tensor == tensor for d in a.dims)


def loads(m: Mapping, tensor: str, k: int) -> int:
    """How many times the tile of `tensor` at storage level k is brought in (see the module doc)."""
    rel = relevant_dims(m.layer, tensor)
    flat = [(d, f) for loops in m.loops[:k] for d, f in loops if f > 1]
    last = max((i for i, (d, _) in enumerate(flat) if d in rel), default=-1)
    return math.prod(f for _, f in flat[:last + 1])


def distinct(m: Mapping, tensor: str, k: int) -> int:
    """How many different tiles of `tensor` storage level k holds over the run."""
    rel = relevant_dims(m.layer, tensor)
    return math.prod(f for loops in m.loops[:k] for d, f in loops if d in rel)


def transfer(acg: ACG, tensor: str, src: str, dst: str, level: int, kind: str, nbytes: int, count: int) -> Stream:
    edge = acg.edge(src, dst)
    bandwidths = [exact(edge.bytes_per_cycle)]
    engines = [f"edge:{src}->{dst}"]
    for node in (src, dst):
        port = acg.storages[node].bytes_per_cycle
        if port:
            bandwidths.append(exact(port))
            engines.append(f"port:{node}")
    pj = exact(acg.storages[src].read_pj_per_byte) + exact(acg.storages[dst].write_pj_per_byte) + \
        exact(edge.pj_per_byte)
    return Stream(tensor, src, dst, level, kind, nbytes, count, tuple(engines), min(bandwidths), pj)


def streams(m: Mapping, acg: ACG) -> list[Stream]:
    """Every transfer stream of the mapping, per tensor and storage level."""
    out_t = m.layer.expr.output.tensor
    result = []
    for tensor, path in m.placement:
        for k in range(1, len(path)):
            nbytes = tile_bytes(m.layer, tensor, m.tile(k))
            n = loads(m, tensor, k)
            if tensor != out_t:
                result.append(transfer(acg, tensor, path[k - 1], path[k], k, "load", nbytes, n))
                continue
            result.append(transfer(acg, tensor, path[k], path[k - 1], k, "writeback", nbytes, n))
            back = n - distinct(m, tensor, k)
            if back or acg.edge(path[k - 1], path[k]) is not None:
                result.append(transfer(acg, tensor, path[k - 1], path[k], k, "reload", nbytes, back))
    return result


def instruction_cycles(m: Mapping, cap: Capability) -> tuple[int, int]:
    """(instructions, total compute cycles), exact for any tiling: per dim, the extents its
    instruction ranges take (edge tiles are partial); a streaming capability dim takes the product
    of its fused layer dims' extents."""
    per_dim = {d: _instruction_extents(m, d) for d in m.layer.dims}
    count = math.prod(sum(c.values()) for c in per_dim.values())
    streaming = {d for e in cap.streaming_dims for d in m.binding.fused(e)}
    others = math.prod(sum(c.values()) for d, c in per_dim.items() if d not in streaming)
    combos: dict[tuple[int, ...], int] = {(): others}
    for e in cap.streaming_dims:
        dist = {1: 1}
        for d in m.binding.fused(e):
            new: dict[int, int] = {}
            for v, c in dist.items():
                for x, cx in per_dim[d].items():
                    new[v * x] = new.get(v * x, 0) + c * cx
            dist = new
        combos = {key + (v,): c * cv for key, c in combos.items() for v, cv in dist.items()}
    cycles = sum(c * cap.instruction_cycles(dict(zip(cap.streaming_dims, key, strict=True)))
                 for key, c in combos.items())
    return count, cycles


def _instruction_extents(m: Mapping, dim: str) -> dict[int, int]:
    """Extent -> number of instructions along `dim` (each position of the dim's loops, non-empty)."""
    extent = m.layer.dims[dim]
    starts = [0]
    for level in range(m.levels):
        inner_tile = m.nominal(dim, level + 1)
        factor = m.factor(dim, level)
        starts = [s + i * inner_tile for s in starts for i in range(factor)]
    out: dict[int, int] = {}
    size = m.spatial_of(dim)
    for s in starts:
        e = min(extent, s + size) - s
        if e > 0:
            out[e] = out.get(e, 0) + 1
    return out


def evaluate(m: Mapping, acg: ACG) -> Cost:
    """The cost of mapping `m` on `acg` (assumed legal: see `mapping.check_legal`)."""
    layer, cap = m.layer, acg.capability(m.binding.capability)
    out_t = layer.expr.output.tensor
    result = streams(m, acg)
    instructions, compute = instruction_cycles(m, cap)

    busy: dict[str, Fraction] = {f"compute:{cap.node}": Fraction(compute)}
    first: dict[str, Fraction] = {}
    stalls = epilogue = Fraction(0)
    for s in result:
        for e in s.engines:
            busy[e] = busy.get(e, Fraction(0)) + s.count * s.tile_cycles
        single = not m.is_double_buffered(s.tensor, s.dst if s.kind != "writeback" else s.src)
        if s.kind == "load":
            for e in s.engines:
                first[e] = first.get(e, Fraction(0)) + s.tile_cycles
            if single:
                stalls += (s.count - 1) * s.tile_cycles
        elif s.kind == "writeback":
            epilogue += s.tile_cycles
            if single:
                stalls += (s.count - 1) * s.tile_cycles
        elif single:  # reload
            stalls += s.count * s.tile_cycles
    prologue = max(first.values(), default=Fraction(0))
    # The busiest transfer engine cannot finish before the compute of the last tile it fed.
    outer = math.prod(f for loops in m.loops[:-1] for _, f in loops)
    transfer_bound = max((v for e, v in busy.items() if not e.startswith("compute:")), default=Fraction(0))
    bounds = [prologue + compute + stalls + epilogue, transfer_bound + Fraction(compute, outer)]
    # A double-buffered output tile whose partial sums return: its slot is refilled (reloaded) only
    # after the tile two visits back was written back, so two visits take write-back + reload + compute.
    for s in result:
        if s.kind == "writeback" and m.is_double_buffered(s.tensor, s.src):
            back = sum(r.count * r.tile_cycles for r in result if r.kind == "reload" and r.level == s.level)
            bounds.append((s.count * s.tile_cycles + back + compute) / 2)
    latency = max(bounds)

    ops = math.prod(layer.dims.values())
    energy = sum((s.bytes * s.pj_per_byte for s in result), Fraction(0)) + ops * exact(cap.pj_per_op)
    for tensor, path in m.placement:
        st = acg.storages[path[-1]]
        pj = exact(st.read_pj_per_byte) + (exact(st.write_pj_per_byte) if tensor == out_t else 0)
        energy += instructions * tile_bytes(layer, tensor, m.tile(m.levels)) * pj
    return Cost(latency, energy, compute, prologue, stalls, epilogue, tuple(sorted(busy.items())),
                tuple(result), instructions, ops)


def roofline_cycles(layer: Layer, acg: ACG, cap: Capability) -> Fraction:
    """The physical limit: max(points / peak points per cycle, compulsory off-chip bytes / the
    off-chip bandwidth), the bandwidth being the fastest way in or out of off-chip memory."""
    compute = Fraction(math.prod(layer.dims.values())) / peak_ops_per_cycle(cap)
    offchip = set(acg.offchip)
    bws = []
    for e in acg.edges:
        if e.src in offchip or e.dst in offchip:
            port = [exact(acg.storages[n].bytes_per_cycle) for n in (e.src, e.dst) if acg.storages[n].bytes_per_cycle]
            bws.append(min([exact(e.bytes_per_cycle), *port]))
    ports = [exact(acg.storages[n].bytes_per_cycle) for n in offchip if acg.storages[n].bytes_per_cycle]
    bandwidth = min([sum(bws), *ports]) if bws else Fraction(1)
    return max(compute, Fraction(layer.bytes) / bandwidth)
