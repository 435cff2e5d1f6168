"""A lower bound of a layer's optimum on an ACG, without solving: for the fusion search, which leaves
out candidate groups whose steps cannot beat what it already has (`mapper.network.step_costs`).

The bound holds for every mapping of every binding of the layer (`solver.space.layer_spaces`), so it
holds for whatever optimum any strategy finds; it is the least over the bindings of:

    latency >= max(compute floor, bytes that must leave a storage / the bandwidth out of it)
    energy  >= compute energy + compulsory off-chip bytes x the cheapest pJ per byte across the
               chip's edge + static power x the latency bound
    EDP     >= latency bound x energy bound

Why each piece is a bound of the cost model (`mapper/mapping/cost.py`):

- *compute floor*: the latency's serial sum holds the compute cycles, the instructions' intervals
  summed; at least the fewest instructions x the shortest interval (`solver.space.compute_floor`),
  and at least the iteration points x the fewest cycles per point of any instruction shape (one of
  shape s covers, per capability dim, at most the product of the spatial extents of the layer dims
  bound to it: s's extent for a streaming dim, at most the fixed extent for the array's dims).
- *bytes that must leave a storage*: a tensor whose every storage path in the binding starts in
  one place and leaves it (off-chip memory, taken as one; or the home a fused group keeps it in)
  moves its whole footprint at least once over an edge touching that place (its tiles at the first
  level cover it: `cost.tile_sum` >= the footprint). A transfer of b bytes keeps its edge's engine
  busy b / bw_e cycles, bw_e the slowest of the edge and its ports, and the latency is at least the
  busiest engine; so sum_e bytes_e <= latency x sum_e bw_e over the directed edges touching the
  place. A port shared by all of them gives the same with its bandwidth (for off-chip memory, the
  ports' sum, where every off-chip storage has one). And one tensor alone keeps the engine of its
  first edge (its first-level loads, or an output's write-backs: at least one transfer) busy for its
  bytes / that edge's bandwidth, plus the edge's set-up `latency`.
- *energy*: every iteration point costs the capability's pJ per op, every compulsory off-chip byte
  at least the cheapest (source read + destination write + edge) pJ per byte of the edges across,
  the operands' accesses are not negative, and static energy is static power x latency.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> gemm = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                   {"A": "int8", "B": "int8", "C": "int32"})
    >>> 0 < objective_floor(gemm, acg, "latency") <= objective_floor(gemm, acg, "edp")
    True
"""

from __future__ import annotations

import math
from fractions import Fraction

from mapper.mapping.cost import compute_energy, exact, static_pj_per_cycle
from mapper.mapping.mapping import tile_bytes
from mapper.spec.acg import ACG, Edge
from mapper.spec.workload import Layer
from solver.space import Space, compute_floor, instruction_shapes, layer_spaces

OFFCHIP = ""  # `starting_bytes`' key for off-chip memory (no storage has an empty name)


def objective_floor(layer: Layer, acg: ACG, objective: str) -> Fraction | None:
    """A lower bound of `objective` over every mapping of `layer` on `acg` (see the module doc); None
    when the layer has no binding at all (no mapping exists)."""
    spaces = layer_spaces(layer, acg)
    if not spaces:
        return None
    return min(space_floor(space, acg, objective) for space in spaces)


def space_floor(space: Space, acg: ACG, objective: str) -> Fraction:
    """The bound over the mappings of one binding."""
    latency = max(compute_cycles_floor(space, acg), transfer_floor(space, acg))
    if objective == "latency":
        return latency
    cap = acg.capability(space.binding.capability)
    moved = starting_bytes(space, acg).get(OFFCHIP, 0)
    energy = compute_energy(space.layer, cap) + moved * cheapest_offchip_pj(acg) + static_pj_per_cycle(acg) * latency
    return energy if objective == "energy" else latency * energy


def compute_cycles_floor(space: Space, acg: ACG) -> Fraction:
    """The larger of `compute_floor` (the fewest instructions x the shortest interval) and the
    iteration points x the fewest cycles per point of any instruction shape of the binding: an
    instruction of streaming shape s takes `instruction_interval(s)` cycles for at most prod(s) x
    the points it can hold along the fixed capability dims (per dim, its extent or, if fewer, the
    largest spatial extents of the layer dims bound to it, multiplied)."""
    fewest = Fraction(compute_floor(space, acg))
    shapes = instruction_shapes(space, acg)
    if not shapes:
        return fewest
    cap, binding = acg.capability(space.binding.capability), space.binding
    widest = {d: max(c[-1] for c in opts) for d, opts in zip(space.dims, space.options, strict=True)}
    held = math.prod(min(room, math.prod(widest[d] for d in binding.fused(e))) for e, room in cap.fixed.items())
    rate = min(Fraction(cap.instruction_interval(s), math.prod(s.values()) * held) for s in shapes)
    return max(fewest, math.prod(space.layer.dims.values()) * rate)


def transfer_floor(space: Space, acg: ACG) -> Fraction:
    """The most cycles the compulsory bytes take to cross out of (or into) the storage they start in,
    over those storages: off-chip memory (all of it as one) and each on-chip storage keeping tensors
    whole (a fused group's homes), each at the bandwidth of the edges touching it; and per tensor, its
    bytes over the first edge of its path (loaded, or written back), plus that edge's set-up."""
    out = Fraction(0)
    for start, moved in starting_bytes(space, acg).items():
        bandwidth = offchip_bandwidth(acg) if start == OFFCHIP else storage_bandwidth(acg, start)
        if bandwidth:
            out = max(out, moved / bandwidth)
    output, layer = space.layer.expr.output.tensor, space.layer
    for t, alternatives in zip(space.tensors, space.paths, strict=True):
        if alternatives and all(len(p) >= 2 for p in alternatives):
            hops = [acg.edge(p[1], p[0]) if t == output else acg.edge(p[0], p[1]) for p in alternatives]
            nbytes = tile_bytes(layer, t, layer.dims, layer.stored_dtype(t))
            out = max(out, min(nbytes / _edge_bandwidth(acg, e) + e.latency if e else Fraction(0) for e in hops))
    return out


def starting_bytes(space: Space, acg: ACG) -> dict[str, int]:
    """Per storage (`OFFCHIP` for off-chip memory), the footprints of the tensors whose every storage
    path in the binding starts there and leaves it."""
    offchip = set(acg.offchip)
    layer, out = space.layer, {}
    for t, alternatives in zip(space.tensors, space.paths, strict=True):
        starts = {OFFCHIP if p[0] in offchip else p[0] for p in alternatives}
        if len(starts) == 1 and all(len(p) >= 2 for p in alternatives):
            start = starts.pop()
            out[start] = out.get(start, 0) + tile_bytes(layer, t, layer.dims, layer.stored_dtype(t))
    return out


def storage_bandwidth(acg: ACG, storage: str) -> Fraction | None:
    """Bytes per cycle that can cross into and out of an on-chip storage at most (`_crossing`)."""
    return _crossing(acg, {storage})


def offchip_bandwidth(acg: ACG) -> Fraction | None:
    """Bytes per cycle that can cross into and out of off-chip memory at most (`_crossing`)."""
    return _crossing(acg, set(acg.offchip))


def _crossing(acg: ACG, nodes: set[str]) -> Fraction | None:
    """The directed edges between storages touching `nodes`, each at its slowest of edge and ports,
    summed, or the nodes' ports summed if smaller and every one has a port; None: no such edge."""
    edges = [e for e in acg.edges if (e.src in nodes or e.dst in nodes)
             and e.src in acg.storages and e.dst in acg.storages]
    if not edges:
        return None
    total = sum((_edge_bandwidth(acg, e) for e in edges), Fraction(0))
    ports = [acg.storages[n].bytes_per_cycle for n in nodes]
    return min(total, sum((exact(p) for p in ports), Fraction(0))) if all(ports) else total


def _offchip_edges(acg: ACG) -> list[Edge]:
    offchip = set(acg.offchip)
    return [e for e in acg.edges if (e.src in offchip or e.dst in offchip)
            and e.src in acg.storages and e.dst in acg.storages]


def _edge_bandwidth(acg: ACG, e: Edge) -> Fraction:
    ports = [exact(acg.storages[n].bytes_per_cycle) for n in (e.src, e.dst) if acg.storages[n].bytes_per_cycle]
    return min([exact(e.bytes_per_cycle), *ports])


def cheapest_offchip_pj(acg: ACG) -> Fraction:
    """The least pJ per byte of a transfer into or out of off-chip memory (0 without such an edge)."""
    costs = [exact(acg.storages[e.src].read_pj_per_byte) + exact(acg.storages[e.dst].write_pj_per_byte)
             + exact(e.pj_per_byte) for e in _offchip_edges(acg)]
    return min(costs, default=Fraction(0))
