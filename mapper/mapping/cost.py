"""The analytical cost model: what a Mapping costs on an ACG, in exact rational arithmetic.

Every strategy scores candidates with `evaluate`, and the CP-SAT model encodes exactly these
formulas, so its objective equals `evaluate(decoded mapping)` (tests hold them equal).

`evaluate` is the sum and maximum of named pieces; `solver/cpbuild.py` builds the CP-SAT
counterpart of each under the same name, in the same order, so the two read side by side:

    instruction_cycles   compute: the instructions' initiation intervals, plus the last one's drain
    last_tile_cycles     the instructions of the last tile of the innermost data-moving level
    streams              the transfers on every edge (bytes moved, tiles, engines, pJ per byte)
    busy                 per engine, bytes / bandwidth + transfers x set-up
    prologue             the first tiles' loads (the largest per-engine sum)
    stalls               the transfers a single-buffered tile waits for
    epilogue             the last output tile's write-back
    chains               the write-back chain of a double-buffered output (a bound of its own)
    latency_bound        the largest of the serial sum, the engines' bounds and the chains
    transfer_energy      bytes moved x pJ per byte (dynamic energy per access)
    compute_energy       iteration points x pJ per op
    operand_energy       every instruction's operand accesses
    static_energy        static power x latency

Traffic. A tensor's tile at storage level k (k >= 1 on its path) is reloaded whenever it changes
while the loops of levels < k run: with those loops flattened outermost first,

    loads_k(T)    = product of the factors down to the innermost loop that indexes T
    distinct_k(T) = product of the factors of the loops that index T

The output is written back once per visit and reloaded on every visit but the first of each tile
(partial sums). A tile moves its nominal footprint (halos included, clipped to the tensor's shape;
along a strided axis only the positions it reads, `mapping.footprint`).

Time. Engines are the simulator's: one per edge, one per storage port, one per compute node; a
transfer of b bytes keeps each of its engines busy b / min(bandwidths) cycles plus its edge's set-up
`latency` (the simulator overlaps set-ups with earlier transfers' data: this model does not).

    latency = max(prologue + compute + stalls + epilogue, busiest transfer engine + last tile's compute,
                  an engine's loads of levels <= k + level k's last tile + epilogue, partial-sum chain)

- compute: the capability's initiation interval summed over the instructions, plus the last one's
  drain (its cycles beyond its interval; without an `interval`, the cycles and no drain);
- prologue: the first tiles (the largest per-engine sum of first loads);
- stalls: a single-buffered tile cannot load while its predecessor is still in use, so each
  reload after the first adds its transfer time (for the output: write-back plus reload);
- epilogue: the last output tile's write-back, level by level;
- last tile's compute: the instructions of one iteration of the innermost loop level that moves
  data (the busiest engine's last transfer is followed, or preceded, by at least that much compute);
- per level k: a tile of level j <= k is loaded before its first instruction, at the latest the
  first of the last level-k tile; so an engine's loads (and reloads) of levels <= k, then that
  tile's instructions, then the last write-back (a layer whose weights arrive in four big tiles
  waits for the last and then computes a quarter of the layer);
- a double-buffered output whose partial sums return adds a third bound, (write-backs + reloads +
  compute) / 2: a slot is reloaded only once the tile two visits back has been written back.

Energy: bytes moved x (source read + destination write + edge) pJ/B, plus iteration points x the
capability's pJ per op, plus every instruction's operand accesses in the storages it reads, plus
the ACG's static `power` x latency.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.mapping.binding import bind
    >>> from mapper.mapping.mapping import greedy_mapping
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> c = evaluate(greedy_mapping(layer, bind(layer, acg)[0], acg), acg)
    >>> c.latency >= c.compute_cycles > 0
    True
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

from mapper.mapping.mapping import Mapping, moved_dtype, tile_bytes
from mapper.spec.acg import ACG, Capability, Edge, Storage, peak_ops_per_cycle
from mapper.spec.workload import Layer

OBJECTIVES = ("latency", "energy", "edp")


@functools.lru_cache(maxsize=4096)
def exact(x: float | int) -> Fraction:
    """A spec number as the decimal it was written as (1.2 -> 6/5, not the nearest binary float)."""
    return Fraction(str(x)) if isinstance(x, float) else Fraction(x)


@dataclass(frozen=True)
class Stream:
    """One kind of transfer of a mapping: `count` tiles along src -> dst, `bytes` in all (edge tiles
    partial); `tile_bytes` is the first tile's size (a full one), `last_bytes` the last one's."""

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
    bytes: int = 0  # every tile's own size, summed
    last_bytes: int = 0
    offchip: bool = False  # to or from off-chip memory
    setup: int = 0  # the edge's fixed cycles per transfer (`latency`), on every engine of the transfer

    @property
    def tile_cycles(self) -> Fraction:
        return self.tile_bytes / self.bandwidth + self.setup

    @property
    def last_cycles(self) -> Fraction:
        return self.last_bytes / self.bandwidth + self.setup

    @property
    def cycles(self) -> Fraction:
        return self.bytes / self.bandwidth + self.count * self.setup


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
        return sum(s.bytes for s in self.streams if s.offchip)


TIE_BREAK = {"latency": "energy", "energy": "latency"}  # the figure that breaks an objective's ties


def rank(cost: Cost, objective: str) -> tuple[Fraction, ...]:
    """The lexicographic key every strategy minimises: the objective, then its tie-breaker (latency:
    energy; energy: latency; EDP: none, its sweep already trades one for the other).

    >>> c = Cost(Fraction(10), Fraction(7), Fraction(0), Fraction(0), Fraction(0), Fraction(0), (), (), 0, 0)
    >>> rank(c, "latency"), rank(c, "energy"), rank(c, "edp")
    ((Fraction(10, 1), Fraction(7, 1)), (Fraction(7, 1), Fraction(10, 1)), (Fraction(70, 1),))
    """
    second = TIE_BREAK.get(objective)
    return (cost.objective(objective),) if second is None else (cost.objective(objective), cost.objective(second))


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


def transfer(acg: ACG, tensor: str, src: str, dst: str, level: int, kind: str, nbytes: int, count: int,
             total: int | None = None, last: int | None = None) -> Stream:
    edge, a, b = acg.edge(src, dst), acg.storages[src], acg.storages[dst]
    engines, bandwidth, pj = _link(edge, a, b)
    return Stream(tensor, src, dst, level, kind, nbytes, count, engines, bandwidth, pj,
                  nbytes * count if total is None else total, nbytes if last is None else last,
                  a.offchip or b.offchip, edge.latency)


@functools.lru_cache(maxsize=4096)
def _link(edge: Edge, src: Storage, dst: Storage) -> tuple[tuple[str, ...], Fraction, Fraction]:
    """An edge's engines (itself and the ports of its ends), bandwidth (the slowest) and pJ per byte
    (source read + destination write + edge): the same for every transfer along it."""
    bandwidths = [exact(edge.bytes_per_cycle)]
    engines = [f"edge:{src.name}->{dst.name}"]
    for node in (src, dst):
        if node.bytes_per_cycle:
            bandwidths.append(exact(node.bytes_per_cycle))
            engines.append(f"port:{node.name}")
    return tuple(engines), min(bandwidths), exact(src.read_pj_per_byte) + exact(dst.write_pj_per_byte) + \
        exact(edge.pj_per_byte)


def tile_extents(m: Mapping, dim: str, level: int) -> dict[int, int]:
    """Extent -> how many non-empty tiles of `dim` at `level` (level `m.levels`: the instructions).
    Tiles nest (a nominal tile divides the one above it) and the outermost factor covers the extent,
    so they are the nominal tile's multiples cut at the extent: full ones and at most one partial."""
    extent, size = m.layer.dims[dim], m.nominal(dim, level)
    out = {size: extent // size} if extent >= size else {}
    if extent % size:
        out[extent % size] = 1
    return out


def last_tile(m: Mapping, level: int) -> dict[str, int]:
    """The extents of the last tile at `level` (partial along every dim whose tiles do not divide it)."""
    return {d: (e - 1) % m.nominal(d, level) + 1 for d, e in m.layer.dims.items()}


def reuse(m: Mapping, tensor: str, k: int) -> int:
    """How many times each distinct tile of `tensor` at level k is brought in: loads / distinct tiles."""
    return loads(m, tensor, k) // distinct(m, tensor, k)


def tile_sum(m: Mapping, tensor: str, level: int, per_dim: dict[str, dict[int, int]] | None = None,
             dtype: str | None = None) -> int:
    """The bytes of every distinct tile of `tensor` at `level`, each counted once (partial tiles at
    their own size), in `dtype` (default the tensor's): per combination of its dims' tile extents,
    how many such tiles x their bytes."""
    rel = sorted(relevant_dims(m.layer, tensor))
    per_dim = per_dim or {d: tile_extents(m, d, level) for d in rel}
    base = m.tile(level)
    if all(len(per_dim[d]) == 1 for d in rel):  # no partial tiles: count x the one tile size
        extents = {**base, **{d: next(iter(per_dim[d])) for d in rel}}
        return math.prod(next(iter(per_dim[d].values())) for d in rel) * tile_bytes(m.layer, tensor, extents, dtype)
    total = 0
    for combo in itertools.product(*(per_dim[d].items() for d in rel)):
        extents = {**base, **{d: e for d, (e, _) in zip(rel, combo, strict=True)}}
        total += math.prod(c for _, c in combo) * tile_bytes(m.layer, tensor, extents, dtype)
    return total


def _cycles_of(cap: Capability, binding, per_dim: dict[str, dict[int, int]]) -> int:
    """Cycles of the instructions whose extents per dim are `per_dim` (extent -> count) run back to
    back: every instruction's initiation interval (its cycles, without an `interval`), plus the
    drain of the last one (its cycles beyond its interval: `drain`)."""
    streaming = {d for e in cap.streaming_dims for d in binding.fused(e)}
    others = math.prod(sum(c.values()) for d, c in per_dim.items() if d not in streaming)
    combos: dict[tuple[int, ...], int] = {(): others}
    for e in cap.streaming_dims:
        dist = {1: 1}
        for d in binding.fused(e):
            new: dict[int, int] = {}
            for v, c in dist.items():
                for x, cx in per_dim[d].items():
                    new[v * x] = new.get(v * x, 0) + c * cx
            dist = new
        combos = {key + (v,): c * cv for key, c in combos.items() for v, cv in dist.items()}
    return sum(c * cap.instruction_interval(dict(zip(cap.streaming_dims, key, strict=True)))
               for key, c in combos.items())


def drain(m: Mapping, cap: Capability) -> int:
    """The last instruction's cycles beyond its initiation interval (0 without an `interval`): the
    instruction at the end of every dim, partial along the dims whose tiles do not divide them."""
    if cap.interval is None:
        return 0
    last = last_tile(m, m.levels)
    extents = {e: math.prod(last[d] for d in m.binding.fused(e)) for e in cap.streaming_dims}
    return cap.instruction_cycles(extents) - cap.instruction_interval(extents)


def instruction_cycles(m: Mapping, cap: Capability) -> tuple[int, int]:
    """(instructions, total compute cycles), exact for any tiling: per dim, the extents its
    instruction ranges take (edge tiles are partial); a streaming capability dim takes the product
    of its fused layer dims' extents."""
    per_dim = {d: tile_extents(m, d, m.levels) for d in m.layer.dims}
    return math.prod(sum(c.values()) for c in per_dim.values()), _cycles_of(cap, m.binding, per_dim) + drain(m, cap)


def last_tile_cycles(m: Mapping, cap: Capability, level: int | None = None) -> int:
    """Cycles of the instructions of the last tile of `level` (default: the innermost data-moving one)."""
    last = last_tile(m, m.levels - 1 if level is None else level)
    per_dim = {}
    for d in m.layer.dims:
        s = m.spatial_of(d)
        per_dim[d] = {k: v for k, v in ((s, last[d] // s), (last[d] % s, 1)) if k and v}
    return _cycles_of(cap, m.binding, per_dim) + drain(m, cap)


def streams(m: Mapping, acg: ACG) -> list[Stream]:
    """Every transfer stream of the mapping, per tensor and storage level."""
    out_t = m.layer.expr.output.tensor
    result = []
    for tensor, path in m.placement:
        for k in range(1, len(path)):
            dtype = moved_dtype(m, tensor, k)  # the output's complete sums requantised by an epilogue
            nbytes = tile_bytes(m.layer, tensor, m.tile(k), dtype)
            last = tile_bytes(m.layer, tensor, last_tile(m, k), dtype)
            n, w, once = loads(m, tensor, k), reuse(m, tensor, k), tile_sum(m, tensor, k, dtype=dtype)
            if tensor != out_t:
                result.append(transfer(acg, tensor, path[k - 1], path[k], k, "load", nbytes, n, w * once, last))
                continue
            result.append(transfer(acg, tensor, path[k], path[k - 1], k, "writeback", nbytes, n, w * once, last))
            back = n - distinct(m, tensor, k)
            if back or acg.edge(path[k - 1], path[k]) is not None:
                result.append(transfer(acg, tensor, path[k - 1], path[k], k, "reload", nbytes, back,
                                       (w - 1) * once, last))
    return result


def operand_bytes(m: Mapping, tensor: str) -> int:
    """The bytes of `tensor` that every instruction reads (or writes), summed over the instructions."""
    per_dim = {d: tile_extents(m, d, m.levels) for d in m.layer.dims}
    rel = relevant_dims(m.layer, tensor)
    others = math.prod(sum(c.values()) for d, c in per_dim.items() if d not in rel)
    return others * tile_sum(m, tensor, m.levels, {d: per_dim[d] for d in rel})


def writeback_engines(binding, acg: ACG, out_t: str) -> frozenset[str]:
    """The engines a write-back of the output may use, over every storage path the binding allows it."""
    return frozenset(e for path in binding.paths[out_t] for a, b in zip(path, path[1:], strict=False)
                     if acg.edge(b, a) is not None for e in transfer(acg, out_t, b, a, 1, "writeback", 1, 1).engines)


def evaluate(m: Mapping, acg: ACG) -> Cost:
    """The cost of mapping `m` on `acg` (assumed legal: see `mapping.check_legal`): its pieces, in the
    order `solver/cpbuild.py` builds their CP-SAT counterparts (see the module doc)."""
    layer, cap = m.layer, acg.capability(m.binding.capability)
    instructions, compute = instruction_cycles(m, cap)
    last = last_tile_cycles(m, cap)
    result = streams(m, acg)
    engines = busy(result)
    first, stall, tail = prologue(result), stalls(m, result), epilogue(result)
    latency = latency_bound(m, acg, cap, result, engines, compute, first + stall + tail, last, tail)
    energy = transfer_energy(result) + compute_energy(layer, cap) + operand_energy(m, acg) + \
        static_energy(acg, latency)
    return Cost(latency, energy, compute, first, stall, tail,
                tuple(sorted({f"compute:{cap.node}": Fraction(compute), **engines}.items())),
                tuple(result), instructions, math.prod(layer.dims.values()))


def busy(result: list[Stream]) -> dict[str, Fraction]:
    """Engine -> the cycles its transfers keep it busy (bytes / bandwidth + transfers x set-up)."""
    engines: dict[str, Fraction] = {}
    for s in result:
        for e in s.engines:
            engines[e] = engines.get(e, Fraction(0)) + s.cycles
    return engines


def _single(m: Mapping, s: Stream) -> bool:
    """Whether the tile a stream moves is single-buffered where it is held (a write-back's source)."""
    return not m.is_double_buffered(s.tensor, s.dst if s.kind != "writeback" else s.src)


def prologue(result: list[Stream]) -> Fraction:
    """The first tiles: the largest per-engine sum of the loads' first tiles."""
    first: dict[str, Fraction] = {}
    for s in result:
        if s.kind == "load":
            for e in s.engines:
                first[e] = first.get(e, Fraction(0)) + s.tile_cycles
    return max(first.values(), default=Fraction(0))


def stalls(m: Mapping, result: list[Stream]) -> Fraction:
    """A single-buffered tile cannot move while its predecessor is in use: every load after the first,
    every write-back but the last, and every reload adds its transfer time."""
    total = Fraction(0)
    for s in result:
        if _single(m, s):
            total += s.cycles - {"load": s.tile_cycles, "writeback": s.last_cycles}.get(s.kind, 0)
    return total


def epilogue(result: list[Stream]) -> Fraction:
    """The last output tile's write-back, level by level."""
    return sum((s.last_cycles for s in result if s.kind == "writeback"), Fraction(0))


def chains(m: Mapping, cap: Capability, result: list[Stream], compute: int) -> list[Fraction]:
    """A double-buffered output tile: its slot is refilled (initialised or reloaded) only after the tile
    two visits back was written back, which waits for that tile's last instruction to complete (its
    drain), so two visits take write-back + reload + compute + a drain per visit."""
    tail = drain(m, cap)
    bounds = []
    for s in result:
        if s.kind == "writeback" and m.is_double_buffered(s.tensor, s.src):
            back = sum(r.cycles for r in result if r.kind == "reload" and r.level == s.level)
            bounds.append((s.cycles + back + compute + s.count * tail) / 2)
    return bounds


def latency_bound(m: Mapping, acg: ACG, cap: Capability, result: list[Stream], engines: dict[str, Fraction],
                  compute: int, waits: Fraction, last: int, tail: Fraction) -> Fraction:
    """The largest of: compute + prologue + stalls + epilogue (`waits`); the busiest transfer engine
    followed by the compute of the last tile it fed (`last`); an engine that only brings data in (never
    a write-back) followed by that and the last write-back (`tail`, the epilogue); per level, an
    engine's loads of that level and above followed by the last tile of the level and the last
    write-back (`loads_then_last_tiles`); the chains."""
    bounds = [compute + waits, max(engines.values(), default=Fraction(0)) + last]
    outbound = writeback_engines(m.binding, acg, m.layer.expr.output.tensor)
    bounds += [v + last + tail for e, v in engines.items() if e not in outbound]
    return max(bounds + loads_then_last_tiles(m, cap, result, tail) + chains(m, cap, result, compute))


def loads_then_last_tiles(m: Mapping, cap: Capability, result: list[Stream], tail: Fraction) -> list[Fraction]:
    """Per data-moving level k and engine: its loads (and partial-sum reloads) of levels <= k, then
    the instructions of the last level-k tile, then the last write-back (`tail`). A tile of level
    j <= k is loaded before its first instruction, which is at the latest the first of the last
    level-k tile, and that tile's instructions all follow it (a DRAM-bound layer whose weights come
    in four big tiles waits for the last one, then computes a quarter of the layer)."""
    out = []
    for k in range(1, m.levels):
        per_engine: dict[str, Fraction] = {}
        for s in result:
            if s.kind != "writeback" and s.level <= k:
                for e in s.engines:
                    per_engine[e] = per_engine.get(e, Fraction(0)) + s.cycles
        if per_engine:
            after = last_tile_cycles(m, cap, k) + tail
            out += [v + after for v in per_engine.values()]
    return out


def transfer_energy(result: list[Stream]) -> Fraction:
    """Every byte moved x (source read + destination write + edge) pJ/B."""
    return sum((s.bytes * s.pj_per_byte for s in result), Fraction(0))


def compute_energy(layer: Layer, cap: Capability) -> Fraction:
    """Every iteration point x the capability's pJ per op."""
    return math.prod(layer.dims.values()) * exact(cap.pj_per_op)


def operand_energy(m: Mapping, acg: ACG) -> Fraction:
    """Every instruction's access to its operand tiles in the storage it reads (and writes: the output)."""
    energy = Fraction(0)
    for tensor, path in m.placement:
        st = acg.storages[path[-1]]
        pj = exact(st.read_pj_per_byte) + (exact(st.write_pj_per_byte) if tensor == m.layer.expr.output.tensor else 0)
        energy += operand_bytes(m, tensor) * pj
    return energy


def static_energy(acg: ACG, latency: Fraction) -> Fraction:
    """The ACG's static power over the latency."""
    return static_pj_per_cycle(acg) * latency


def static_pj_per_cycle(acg: ACG) -> Fraction:
    """The static energy of one cycle: `power` W x 1 / `clock_ghz` ns = 1000 x power / clock pJ."""
    return 1000 * exact(acg.power) / exact(acg.clock_ghz)


def roofline_cycles(layer: Layer, acg: ACG, cap: Capability) -> Fraction:
    """The physical limit: max(points / peak points per cycle, compulsory off-chip bytes / the
    off-chip bandwidth), the bandwidth being the fastest way in or out of off-chip memory. The
    compulsory bytes are the whole layer's footprint of each off-chip tensor (a strided 1 x 1
    convolution's input counts the pixels it reads, not the ones its stride skips)."""
    compute = Fraction(math.prod(layer.dims.values())) / peak_ops_per_cycle(cap)
    offchip = set(acg.offchip)
    bws = []
    for e in acg.edges:
        if e.src in offchip or e.dst in offchip:
            port = [exact(acg.storages[n].bytes_per_cycle) for n in (e.src, e.dst) if acg.storages[n].bytes_per_cycle]
            bws.append(min([exact(e.bytes_per_cycle), *port]))
    ports = [exact(acg.storages[n].bytes_per_cycle) for n in offchip if acg.storages[n].bytes_per_cycle]
    bandwidth = min([sum(bws), *ports]) if bws else Fraction(1)
    compulsory = sum(tile_bytes(layer, t, layer.dims, layer.stored_dtype(t)) for t in layer.tensors
                     if layer.onchip.home(t) is None)
    return max(compute, Fraction(compulsory) / bandwidth)
