"""Several identical cores: a step's work split over `count` of them, each running a slice of the layer.

An ACG with `cores: N` has N copies of its on-chip part (storages, compute nodes, their edges) that
share the off-chip storages and their ports. A step may run on c <= N cores by splitting one dim of
its layer into c contiguous slices (DLFusion's and Stream's split of output channels, pixels or
batch): a dim the output indexes plainly (`windows.window_slice`), so that each slice is the same
computation over a smaller extent, reading and writing the windows of the tensors that dim indexes
(a convolution's input rows with their halo when it splits output rows) and the whole of the others
(each core loads them itself). A fused group may run on several cores too: its bands at once, one
per core (`mapper.network.fusion.parallel_variants`).

Each slice is mapped by the layer solver on the view one core has while c cores run: the off-chip
ports give each core 1/c of their bandwidth (`shared_view`). The step then takes its slowest slice's
time and all slices' energy. The simulator runs the c programs at once on one set of engines where
the off-chip ports are shared, so the contention it finds is its own (`sim.machine.simulate_cores`).

    >>> from mapper.spec.workload import make_layer
    >>> conv = make_layer("c", "O[k,p] += I[c,p+r] * W[k,c,r]", {"k": 64, "p": 14, "c": 8, "r": 3},
    ...                   {"I": "int8", "W": "int8", "O": "int32"}, {"I": (8, 16)})
    >>> split_dims(conv)
    ('k', 'p')
    >>> [(s.lo, s.hi, s.layer.tensors["W"].shape) for s in slices(conv, "k", 3)]
    [(0, 22, (22, 8, 3)), (22, 44, (22, 8, 3)), (44, 64, (20, 8, 3))]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from mapper.mapping.mapping import Mapping
from mapper.network.flow import LayerResult, Options, map_layers
from mapper.program.windows import Slice, partition, window_slice
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer


def split_dims(layer: Layer) -> tuple[str, ...]:
    """The dims a step may split over cores: those the output indexes plainly that `windows.window_slice`
    can cut (a convolution's output channels or batch, its output rows or columns with their input
    halo, any axis of an element-wise layer); largest extent first."""
    out = [d for d in layer.expr.output.dims
           if layer.dims[d] > 1 and window_slice(layer, d, 0, 1, layer.name) is not None]
    return tuple(sorted(out, key=lambda d: (-layer.dims[d], out.index(d))))


def slices(layer: Layer, dim: str, count: int) -> tuple[Slice, ...]:
    """`layer` split along `dim` (a split dim) into `count` contiguous slices (`windows.partition`)."""
    return tuple(window_slice(layer, dim, lo, hi, f"{layer.name}[{j}]")
                 for j, (lo, hi) in enumerate(partition(layer.dims[dim], count)))


def shared_view(acg: ACG, count: int) -> ACG:
    """What one of `count` cores running at once sees: each off-chip port at 1/count of its bandwidth
    (its fair share; the simulator lets the cores' transfers share the port up to its bandwidth)."""
    if count == 1:
        return acg
    storages = {name: replace(st, bytes_per_cycle=st.bytes_per_cycle / count) if st.offchip else st
                for name, st in acg.storages.items()}
    graph = acg.graph.copy()
    for name, st in storages.items():
        graph.nodes[name]["storage"] = st
    return replace(acg, storages=storages, graph=graph)


def core_counts(acg: ACG) -> tuple[int, ...]:
    """The core counts tried per step: powers of two up to the ACG's cores, and all of them."""
    counts = {1, acg.cores}
    c = 2
    while c < acg.cores:
        counts.add(c)
        c *= 2
    return tuple(sorted(counts))


@dataclass(frozen=True)
class Split:
    """A step run in slices, each with its mapping's record and mapping: at once on several cores
    (`parallel`), or one after the other (the bands of a fused group, `mapper.network.fusion`)."""

    dim: str
    slices: tuple[Slice, ...]
    results: tuple[tuple[LayerResult, Mapping], ...]
    parallel: bool = True

    @property
    def cores(self) -> int:
        return len(self.slices) if self.parallel else 1

    def record(self, name: str) -> LayerResult:
        """The step's record: its slowest slice's time (in bands: the sum), all slices' energy and
        traffic (the mapping shown is the first slice's)."""
        records = [r for r, _ in self.results]
        first = records[0]
        cycles = max(r.predicted_cycles for r in records) if self.parallel else \
            math.fsum(r.predicted_cycles for r in records)
        return replace(first, name=name, count=1, cores=self.cores, reused_from=None,
                       predicted_cycles=cycles,
                       energy_pj=math.fsum(r.energy_pj for r in records),
                       dram_bytes=sum(r.dram_bytes for r in records),
                       macs=sum(r.macs for r in records),
                       roofline_cycles=max(r.roofline_cycles for r in records) if self.parallel else
                       math.fsum(r.roofline_cycles for r in records),
                       utilization=math.fsum(r.utilization * r.predicted_cycles for r in records) /
                       (self.cores * cycles),
                       solve_seconds=math.fsum(r.solve_seconds for r in records))


def objective_value(record: LayerResult, objective: str) -> float:
    latency, energy = record.predicted_cycles, record.energy_pj
    return {"latency": latency, "energy": energy, "edp": latency * energy}[objective]


def best_split(layer: Layer, acg: ACG, options: Options, solved: dict[int, dict],
               max_cores: int = 0) -> Split | None:
    """The best way to run `layer` on more than one core of `acg` (at most `max_cores`, 0: all) under
    `options.objective` (None when no split maps or only one core may run it); `solved[c]` caches the
    slices' solves on `shared_view(acg, c)`."""
    best, best_value = None, math.inf
    for count in core_counts(acg)[1:]:
        if max_cores and count > max_cores:
            break
        view = shared_view(acg, count)
        for dim in split_dims(layer)[:2]:
            parts = slices(layer, dim, count)
            if len(parts) < count:
                continue
            results = map_layers([p.layer for p in parts], view, options, done=solved.setdefault(count, {}))
            if not all(r.mapped for r, _ in results):
                continue
            split = Split(dim, parts, tuple(results))
            value = objective_value(split.record(layer.name), options.objective)
            if value < best_value:
                best, best_value = split, value
    return best
