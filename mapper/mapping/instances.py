"""How a tile in a replicated storage (`instances`: per-PE registers) is dealt over its instances
(docs/formats/acg.md#instances): the array's PEs are the capability's fixed dims and the lanes its
streams span (`Capability.lanes`). A tensor axis that a layer dim bound to a fixed dim indexes alone
is split over the instruction's extent there; the axes of a stream with lanes are dealt element i on
lane i mod lanes; every other axis is replicated. `mapping.storage_demand` counts with it, the
CP-SAT model mirrors it (`solver/cptiles.per_instance`), the simulator has its own (`sim/checks.py`).
"""

from __future__ import annotations

import functools
import math

from mapper.mapping.binding import Binding
from mapper.spec.workload import Layer


def plain_axes(layer: Layer, tensor: str) -> dict[int, str]:
    """The axes of `tensor` that every access indexes with one layer dim alone (coefficient +-1, the
    dim's extent within the axis, the dim on no other axis), axis -> that dim."""
    return dict(_plain_axes(layer.expr, tuple(layer.dims.items()), tensor, tuple(layer.tensors[tensor].shape)))


@functools.lru_cache(maxsize=4096)
def _plain_axes(expr, dims: tuple, tensor: str, shape: tuple[int, ...]) -> tuple[tuple[int, str], ...]:
    extents = dict(dims)
    accesses = [a for a in [expr.output, *expr.accesses] if a.tensor == tensor]
    out = {}
    for axis, n in enumerate(shape):
        idx = [a.indices[axis] for a in accesses]
        if len(idx[0].terms) != 1:
            continue
        d = idx[0].terms[0][0]
        plain = extents[d] <= n and all(len(i.terms) == 1 and i.terms[0][0] == d and abs(i.terms[0][1]) == 1
                                        for i in idx)
        alone = sum(any(x == d for x, _ in accesses[0].indices[ax].terms) for ax in range(len(shape))) == 1
        if plain and alone:
            out[axis] = d
    return tuple(out.items())


def split_axes(layer: Layer, binding: Binding, fixed: dict[str, int], tensor: str) -> dict[int, str]:
    """The axes of `tensor` along which its tile is dealt over the instances of a replicated storage
    (per-PE registers), axis -> layer dim: its plain axes (`plain_axes`) whose dim is bound to a
    *fixed* capability dim (the array's PEs). An instruction of spatial extent s along that dim puts
    its element i on PE lane i, so a tile of extent T leaves ceil(T / s) elements per lane; every
    other axis is replicated (each instance holds the tile's whole extent along it), unless a
    streamed dim deals it (`stream_axes`)."""
    return {ax: d for ax, d in plain_axes(layer, tensor).items() if binding.dim_map.get(d) in fixed}


def stream_axes(layer: Layer, binding: Binding, lanes: dict[str, int], tensor: str) -> list[tuple[dict[int, str], int]]:
    """Per streaming capability dim with `lanes` (`Capability.lanes`) whose every bound layer dim is
    a plain axis of `tensor`: (axis -> layer dim, its lanes). An instruction's stream along it, of
    S = the product of its extents on those dims, is dealt element i on lane i mod lanes: ceil(S /
    lanes) elements on the fullest lane, for each instruction-stream the tile holds along them."""
    plain = {d: ax for ax, d in plain_axes(layer, tensor).items()}
    out = []
    for e, u in sorted(lanes.items()):
        dims = [d for d, c in binding.dims if c == e]
        if dims and all(d in plain for d in dims):
            out.append(({plain[d]: d for d in dims}, u))
    return out


def instance_bytes(shape: tuple[int, ...], itemsize: int, lanes: dict[int, int], instances: int,
                   streams: tuple = ()) -> int:
    """Bytes of a tile of `shape` that ONE instance of a replicated storage holds: along each split
    axis (`lanes`: axis -> the instruction's spatial extent there) ceil(extent / lanes); along a
    stream (`streams`: ({axis: the instruction's extent there}, lanes)) ceil(S / lanes) per
    instruction-stream, S the product of those extents; when the lanes in use outnumber the
    instances, an instance holds ceil(lanes / instances) lanes' shares.

    A 576 x 64 weight tile (k x n) on 1024 PEs, n fixed at 32 and k streaming over 32 lanes:

    >>> instance_bytes((576, 64), 1, {1: 32}, 1024, streams=(({0: 576}, 32),))
    36
    """
    share = [-(-e // lanes[ax]) if ax in lanes else e for ax, e in enumerate(shape)]
    used = math.prod(lanes.values())
    for axes, u in streams:
        span = math.prod(axes.values())
        for ax, s in axes.items():
            share[ax] = -(-shape[ax] // s)
        share.append(-(-span // u))
        used *= min(span, u)
    return -(-used // instances) * math.prod(share) * itemsize
