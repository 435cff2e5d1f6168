"""The judge's rules that need more than one instruction to check, worked out from the program and
the ACG alone (never from the mapping code): how a tile in a replicated storage (`instances`, e.g.
per-PE registers) is dealt over its instances, and which storages allow a second buffer slot.

Per-instance capacity. A storage with `instances: N` has `capacity` bytes per instance. The array's
PEs are the capability's *fixed* dims; an instruction of extent s along a layer dim bound to a fixed
dim puts its element i on lane i. A tensor axis indexed by that dim alone (coefficient +-1) is
therefore dealt over s lanes: a buffer of extent T along it leaves ceil(T / s) elements per lane.
Every other axis is replicated: each lane holds the buffer's whole extent there. With more lanes
than instances, an instance serves ceil(lanes / N) of them.

    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 4, "n": 8, "k": 64},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> share = InstanceShare(layer, "B", {"k": 32, "n": 8}, instances=1024)
    >>> share.bytes(((0, 64), (0, 8)), itemsize=1)      # 64 x 8 over 32 x 8 lanes: 2 B each
    2
"""

from __future__ import annotations

import math

from mapper.program.instructions import Compute, Program, Region, axis_size
from mapper.spec.workload import Layer


class InstanceShare:
    """How one tensor's buffers spread over the instances of a replicated storage."""

    def __init__(self, layer: Layer, tensor: str, lanes_of: dict[str, int], instances: int,
                 streams: tuple[tuple[dict[str, int], int], ...] = ()) -> None:
        """`lanes_of`: layer dim -> lanes it spans (the instructions' extent along it), for the dims
        bound to a fixed capability dim; `streams`: per streamed capability dim with lanes, (its layer
        dims -> the instructions' extent along them, its lanes)."""
        accesses = [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == tensor]
        shape = layer.tensors[tensor].shape
        first = accesses[0]
        own: dict[str, int] = {}  # layer dim -> the axis it alone indexes
        for axis, n in enumerate(shape):
            dims = {tuple(sorted((d, abs(c)) for d, c in a.indices[axis].terms)) for a in accesses}
            if len(dims) != 1:
                continue
            (terms,) = dims
            if len(terms) != 1 or terms[0][1] != 1:
                continue
            d = terms[0][0]
            elsewhere = any(d in idx.dims for ax, idx in enumerate(first.indices) if ax != axis)
            if layer.dims[d] <= n and not elsewhere:
                own[d] = axis
        self.lanes = {own[d]: s for d, s in lanes_of.items() if d in own}  # dealt axis -> its lanes
        self.streams = [({own[d]: s for d, s in extents.items()}, u) for extents, u in streams
                        if all(d in own for d in extents)]  # ({axis: the instructions' extent}, lanes)
        used = math.prod(self.lanes.values()) * math.prod(min(math.prod(e.values()), u) for e, u in self.streams)
        self.per_instance = -(-used // instances)

    def bytes(self, region: Region, itemsize: int) -> int:
        """The bytes of a buffer holding `region` that the fullest instance holds: along a stream,
        ceil(S / lanes) elements per instruction-stream the buffer spans (S: one stream's length)."""
        share = [-(-axis_size(axis) // self.lanes[ax]) if ax in self.lanes else axis_size(axis)
                 for ax, axis in enumerate(region)]
        for extents, u in self.streams:
            for ax, s in extents.items():
                share[ax] = -(-axis_size(region[ax]) // s)
            share.append(-(-math.prod(extents.values()) // u))
        return self.per_instance * math.prod(share) * itemsize


def instruction_streams(program: Program, lanes: dict[str, int]) -> tuple[tuple[dict[str, int], int], ...]:
    """Per streaming capability dim with lanes: (its layer dims -> the widest extent an instruction
    gives them, its lanes)."""
    widest = instruction_lanes(program, lanes)
    return tuple(({d: widest[d] for d, c in program.dim_map if c == e}, u) for e, u in sorted(lanes.items())
                 if any(c == e for _, c in program.dim_map))


def instruction_lanes(program: Program, fixed: dict[str, int]) -> dict[str, int]:
    """Per layer dim bound to a capability dim of `fixed`, the widest extent an instruction gives it."""
    bound = {d for d, e in program.dim_map if e in fixed}
    lanes = dict.fromkeys(bound, 1)
    seen: set = set()
    for ins in program.instructions:
        if isinstance(ins, Compute):
            key = tuple(hi - lo for _, lo, hi in ins.ranges)
            if key in seen:
                continue
            seen.add(key)
            for d, lo, hi in ins.ranges:
                if d in lanes:
                    lanes[d] = max(lanes[d], hi - lo)
    return lanes
