"""Padded tiles: which dims may take non-divisor tiles, and which padded sizes the space offers.

A dim bound to a fixed capability dim whose divisors fill the array poorly also gets padded
instruction extents (`fixed_sizes`, `padded_sizes`); outer tiles of awkward block counts get
near-equal splits (`padded_blocks`). Only *paddable* dims take them (`paddable`), the ones whose
partial tiles the CP-SAT model sums exactly (docs/design/cpsat.md#padded).

    >>> sorted(padded_sizes(97, 32)), sorted(padded_blocks(265))
    ([25, 32], [67, 89, 133])
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from mapper.mapping.binding import Binding
from mapper.spec.workload import Layer


def divisors(n: int) -> list[int]:
    """The divisors of n, ascending.

    >>> divisors(28)
    [1, 2, 4, 7, 14, 28]
    """
    small = [i for i in range(1, math.isqrt(n) + 1) if n % i == 0]
    return sorted(set(small + [n // i for i in small]))


def fixed_sizes(layer: Layer, b: Binding, d: str, room: int, pad: bool) -> list[int]:
    """Instruction extents of dim d on a fixed capability dim of `room` lanes: the divisors that fit
    and, for a paddable dim they fill poorly, padded sizes (`padded_sizes`). When other dims share
    the capability dim (output rows and columns on one array dim), d's room is also what is left
    beside each divisor extent of theirs: 7 x 7 output pixels on 32 lanes take 4 + 3 rows of 7."""
    extent = layer.dims[d]
    spatial = [s for s in divisors(extent) if s <= room]
    if not pad:
        return spatial
    others = [o for o in b.fused(b.dim_map[d]) if o != d]
    rooms = {room} | {room // s for o in others for s in divisors(layer.dims[o]) if 1 < s <= room}
    sizes = set(spatial)
    for r in rooms:
        fits = [s for s in spatial if s <= r]
        if fits and -(-extent // max(fits)) > -(-extent // r):  # divisors need more instructions
            sizes |= padded_sizes(extent, r)
    return sorted(sizes)


def paddable(layer: Layer) -> frozenset[str]:
    """The dims that may take padded (non-divisor) tiles: each on one axis per tensor, indexed alike
    by a tensor's several accesses, and on every axis either plainly (the dim alone, coefficient
    +-1, within the axis) or as the one output dim of a halo index (p of `p+r-1` or `2*p+r`, whose
    other dims keep divisor tiles). Their partial tiles keep each tensor's bytes summed over its
    tiles a product of per-axis sums, which the CP-SAT model encodes exactly: on a plain axis the
    tiles' extents add up to the dim's extent, on a halo axis to (tiles - 1) x the first tile's
    footprint + the last tile's."""
    return _paddable(layer.expr, tuple(sorted(layer.dims.items())),
                     tuple(sorted((t.name, t.shape) for t in layer.tensors.values())))


@functools.lru_cache(maxsize=1024)
def _paddable(expr, dims: tuple, shapes: tuple) -> frozenset[str]:
    extent, shape = dict(dims), dict(shapes)
    out_dims = {x for idx in expr.output.indices for x, _ in idx.terms}
    ok = set(extent)
    for t in expr.tensors:
        accesses = [a for a in [expr.output, *expr.accesses] if a.tensor == t]
        for d in extent:
            axes = {i for a in accesses for i, idx in enumerate(a.indices) if any(x == d for x, _ in idx.terms)}
            if len(axes) > 1:
                ok.discard(d)
        for axis in range(len(shape[t])):  # several accesses of one tensor index an axis alike
            used = {tuple(x for x, _ in a.indices[axis].terms) for a in accesses}
            if len(used) > 1:
                ok -= {x for u in used for x in u}
        for a in accesses:
            for idx, n in zip(a.indices, shape[t], strict=True):
                plain = len(idx.terms) == 1 and abs(idx.terms[0][1]) == 1 and extent[idx.terms[0][0]] <= n
                outs = [x for x, _ in idx.terms if x in out_dims]
                if not plain:  # a halo index: its one output dim may pad, the kernel dims may not
                    ok -= {x for x, _ in idx.terms if x not in out_dims or len(outs) > 1}
    return frozenset(ok)


PAD_SPLITS = (2, 3, 4)  # padded outer tiles: the instruction blocks split into k near-equal parts
UNIFORM = Fraction(7, 8)  # a padded outer tile's last (partial) tile holds at least this share of a full one


def padded_sizes(extent: int, room: int) -> set[int]:
    """Non-divisor instruction extents for a dim whose divisors fill the capability dim's `room`
    poorly: the room itself and the balanced split ceil(extent / k) for the fewest instructions."""
    return {room, -(-extent // -(-extent // room))}


def padded_blocks(blocks: int) -> set[int]:
    """Padded outer tiles (in instruction blocks) for a count with no divisor in [blocks/4, blocks/2]
    (a prime, 265 = 5 x 53): the blocks split into k near-equal parts, ceil(blocks / k), where the
    last tile is nearly full (`UNIFORM`: 265 -> 133 + 132, 89 x 2 + 87, 67 x 3 + 64; not 7 -> 4 + 3).
    The cost model charges a double-buffered pipeline by its totals, exact for equal tiles; a
    much shorter last tile finishes its compute before the next full tile has loaded, and the
    pipeline stalls (on genesys, resnet50.layer1.0.add with w = 56 in tiles of 24, 24 and 8 was
    predicted 50,440 cycles and simulated 59,800; with divisor tiles, 50,474 both)."""
    if any(blocks <= 4 * d <= 2 * blocks for d in divisors(blocks)):
        return set()
    sizes = {-(-blocks // k) for k in PAD_SPLITS}
    return {t for t in sizes if (blocks - 1) % t + 1 >= UNIFORM * t}


