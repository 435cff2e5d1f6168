"""A lower bound of a layer's optimum on an ACG, without solving: for the fusion search, which leaves
out candidate groups whose steps cannot beat what it already has (`mapper.network.step_costs`).

The bound holds for every mapping of every binding of the layer (`solver.space.layer_spaces`), so it
holds for whatever optimum any strategy finds; it is the least over the bindings of:

    latency >= max(compute floor, compulsory off-chip bytes / off-chip bandwidth)
    energy  >= compute energy + compulsory off-chip bytes x the cheapest pJ per byte across the
               chip's edge + static power x the latency bound
    EDP     >= latency bound x energy bound

Why each piece is a bound of the cost model (`mapper/mapping/cost.py`):

- *compute floor* (`solver.space.compute_floor`): the fewest instructions times the shortest
  interval; the serial sum of the latency contains the compute cycles.
- *compulsory off-chip bytes*: a tensor whose every storage path in the binding starts in off-chip
  memory and leaves it (not one a fused group keeps on chip: its paths start at its home) moves its
  whole footprint at least once over an edge into or out of off-chip memory (its tiles at the first
  level cover it: `cost.tile_sum` >= the footprint). A transfer of b bytes keeps its edge's engine
  busy b / bw_e cycles, bw_e the slowest of the edge and its ports, and the latency is at least the
  busiest engine; so sum_e bytes_e <= latency x sum_e bw_e over the directed edges touching off-chip
  memory. Where every off-chip storage has a port, the ports give the same with their bandwidths.
- *energy*: every iteration point costs the capability's pJ per op, every compulsory byte at least the
  cheapest (source read + destination write + edge) pJ per byte of those edges, the operands'
  accesses are not negative, and static energy is static power x latency.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> gemm = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                   {"A": "int8", "B": "int8", "C": "int32"})
    >>> 0 < objective_floor(gemm, acg, "latency") <= objective_floor(gemm, acg, "edp")
    True
"""

from __future__ import annotations

from fractions import Fraction

from mapper.mapping.cost import compute_energy, exact, static_pj_per_cycle
from mapper.mapping.mapping import tile_bytes
from mapper.spec.acg import ACG, Edge
from mapper.spec.workload import Layer
from solver.space import Space, compute_floor, layer_spaces


def objective_floor(layer: Layer, acg: ACG, objective: str) -> Fraction | None:
    """A lower bound of `objective` over every mapping of `layer` on `acg` (see the module doc); None
    when the layer has no binding at all (no mapping exists)."""
    spaces = layer_spaces(layer, acg)
    if not spaces:
        return None
    return min(space_floor(space, acg, objective) for space in spaces)


def space_floor(space: Space, acg: ACG, objective: str) -> Fraction:
    """The bound over the mappings of one binding."""
    moved, bandwidth = compulsory_bytes(space, acg), offchip_bandwidth(acg)
    latency = max(Fraction(compute_floor(space, acg)), moved / bandwidth if bandwidth else Fraction(0))
    if objective == "latency":
        return latency
    cap = acg.capability(space.binding.capability)
    energy = compute_energy(space.layer, cap) + moved * cheapest_offchip_pj(acg) + static_pj_per_cycle(acg) * latency
    return energy if objective == "energy" else latency * energy


def compulsory_bytes(space: Space, acg: ACG) -> int:
    """The footprints of the tensors that every storage path of the binding takes into or out of
    off-chip memory."""
    offchip = set(acg.offchip)
    layer = space.layer
    return sum(tile_bytes(layer, t, layer.dims) for t, alternatives in zip(space.tensors, space.paths, strict=True)
               if alternatives and all(len(p) >= 2 and p[0] in offchip for p in alternatives))


def offchip_bandwidth(acg: ACG) -> Fraction | None:
    """Bytes per cycle that can cross into and out of off-chip memory at most: the directed edges
    between storages touching it, each at its slowest of edge and ports, summed (or the ports' sum,
    if smaller and every off-chip storage has one); None: no such edge (nothing can cross)."""
    edges = _offchip_edges(acg)
    if not edges:
        return None
    total = sum((_edge_bandwidth(acg, e) for e in edges), Fraction(0))
    ports = [acg.storages[n].bytes_per_cycle for n in acg.offchip]
    if all(ports):
        total = min(total, sum((exact(p) for p in ports), Fraction(0)))
    return total


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
