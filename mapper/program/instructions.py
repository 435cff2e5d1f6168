"""Programs: the instruction stream of one layer on one ACG, shared by the lowering (which writes it)
and the simulator (which executes it without knowing the mapping).

Instructions name ACG resources only: storage nodes, edges (`src` -> `dst`) and capabilities, with
tile *regions* (half-open [lo, hi) per tensor axis, or per layer dim for a compute; a strided axis is
`(lo, hi, step)`: only the positions lo, lo + step, ... move and are held, see `region_function`).

    Alloc(T, S, region, slot, dt)  reserve a buffer for a tile of T in storage S (slot: double buffering;
                                   dt: its dtype where not T's, the output's stored dtype under an epilogue)
    Move(T, src, dst, region)      copy a tile along the edge src -> dst (a load, a write-back or a
                                   partial-sum reload); from T's dtype into the layer's epilogue dtype
                                   it applies the epilogue (a requantising write-back)
    Init(T, S, region)             set a fresh output tile to the update's identity (0, or the minimum)
    Compute(cap, ranges, places)   one instruction of capability `cap` over the layer-dim ranges
    Free(T, S, region)             release the buffer

    >>> from mapper.spec.workload import make_layer
    >>> conv = make_layer("c", "O[p] += I[p+r-1] * W[r]", {"p": 4, "r": 3}, {"I": "int8", "W": "int8", "O": "int32"},
    ...                   {"I": (4,)})
    >>> tensor_region(conv, "I", {"p": (0, 2), "r": (0, 3)})
    ((0, 3),)
    >>> down = make_layer("d", "O[p] += I[2*p+r] * W[r]", {"p": 4, "r": 1}, {"I": "int8", "W": "int8", "O": "int32"},
    ...                   {"I": (8,)})
    >>> tensor_region(down, "I", {"p": (0, 4), "r": (0, 1)})   # a strided 1 x 1 convolution: 4 rows, not 7
    ((0, 7, 2),)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mapper.spec.workload import Layer

Region = tuple[tuple[int, ...], ...]  # per tensor axis (lo, hi), or (lo, hi, step) when strided


@dataclass(frozen=True)
class Alloc:
    tensor: str
    storage: str
    region: Region
    slot: int
    dtype: str = ""  # '' : the tensor's own


@dataclass(frozen=True)
class Free:
    tensor: str
    storage: str
    region: Region


@dataclass(frozen=True)
class Init:
    tensor: str
    storage: str
    region: Region


@dataclass(frozen=True)
class Move:
    tensor: str
    src: str
    dst: str
    region: Region


@dataclass(frozen=True)
class Compute:
    capability: str
    ranges: tuple[tuple[str, int, int], ...]  # (layer dim, lo, hi)
    places: tuple[tuple[str, str], ...]  # (tensor, storage it is read from / written to)


Instruction = Alloc | Free | Init | Move | Compute


@dataclass(frozen=True)
class Program:
    """The instruction stream of one layer on one ACG, plus what the simulator needs to check it."""

    acg: str
    layer: Layer
    capability: str
    tensors: tuple[tuple[str, str], ...]  # the binding's layer tensor -> capability operand
    dim_map: tuple[tuple[str, str | None], ...]  # the binding's layer dim -> capability dim
    instructions: tuple[Instruction, ...]
    immediates: tuple[tuple[str, int | float], ...] = ()  # the capability's immediates (`s` in shr(X, s))


def tensor_region(layer: Layer, tensor: str, ranges: dict[str, tuple[int, int]]) -> Region:
    """The region of `tensor` that the layer touches over dim `ranges`, clipped to its shape."""
    return region_function(layer, tensor)(ranges)


def axis_span(axis: tuple[int, ...]) -> tuple[int, int, int]:
    """(lo, hi, step) of one region axis: `(lo, hi)` is contiguous, `(lo, hi, step)` the positions
    lo, lo + step, ... below hi (a strided transfer gathers only those)."""
    return (axis[0], axis[1], axis[2]) if len(axis) == 3 else (axis[0], axis[1], 1)


def axis_size(axis: tuple[int, ...]) -> int:
    """How many positions one region axis holds."""
    lo, hi, step = axis_span(axis)
    return max(0, -(-(hi - lo) // step))


def region_size(region: Region) -> int:
    """How many elements a region holds (its strided axes counted at the positions they gather)."""
    return math.prod(axis_size(axis) for axis in region)


def region_function(layer: Layer, tensor: str) -> Callable[[dict[str, tuple[int, int]]], Region]:
    """`tensor_region` for one tensor with the accesses unpacked once: the lowering and the simulator
    call it per instruction, where re-reading the expression dominated their time.

    A tensor read through one access gets, per axis, the positions from the first to the last that
    the ranges read at the step g = gcd of the coefficients of the dims ranging over more than one
    value (`(lo, hi, g)` when g > 1 and it holds several positions); several accesses (offsets) give
    their contiguous bounding box."""
    # Per axis: its extent and, per access of the tensor, (constant, terms) of the index on that axis.
    axes = [(n, [(a.indices[axis].const, a.indices[axis].terms) for a in [layer.expr.output, *layer.expr.accesses]
                 if a.tensor == tensor])
            for axis, n in enumerate(layer.tensors[tensor].shape)]

    def region(ranges: dict[str, tuple[int, int]]) -> Region:
        out = []
        for n, indices in axes:
            lo = hi = None
            step = 0
            for const, terms in indices:
                a_lo = a_hi = const
                for d, c in terms:
                    d_lo, d_hi = ranges[d]
                    if d_hi - d_lo > 1:
                        step = math.gcd(step, c)
                    if c > 0:
                        a_lo += c * d_lo
                        a_hi += c * (d_hi - 1)
                    else:
                        a_lo += c * (d_hi - 1)
                        a_hi += c * d_lo
                lo = a_lo if lo is None else min(lo, a_lo)
                hi = a_hi if hi is None else max(hi, a_hi)
            out.append(_clipped(lo, hi, step if len(indices) == 1 and step > 1 else 1, n))
        return tuple(out)

    return region


def _clipped(lo: int, last: int, step: int, n: int) -> tuple[int, ...]:
    """The positions lo, lo + step, ..., last that lie in [0, n) as a region axis (a tile wholly in
    the padding reads nothing)."""
    if lo < 0:
        lo += (step - 1 - lo) // step * step
    last = min(last, n - 1)
    if last < lo:
        lo = min(max(0, lo), n)
        return (lo, lo)
    last = lo + (last - lo) // step * step
    return (lo, last + 1) if step == 1 or last == lo else (lo, last + 1, step)
