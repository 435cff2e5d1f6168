"""A slice of a layer: the part [lo, hi) of one output dim as a layer of its own, reading the windows
of its tensors that part touches.

The slice's index expressions are the layer's shifted so that each tensor is indexed from the start of
its window. A convolution sliced along its output rows reads a window of input rows with the halo its
kernel needs (the overlap with the next slice's window), and the window is clipped to the tensor: rows
outside it are read only where the whole layer reads padding, so the slice keeps the layer's padding.
A dim that every tensor indexes plainly (a gemm's m, a conv's output channels) gives windows [lo, hi)
and unchanged indices: the split of work over cores and the channel bands of fused groups are the same
operation as the halo'd row bands of depth-first fusion.

    >>> from mapper.spec.workload import make_layer
    >>> conv = make_layer("c", "O[k,p] += I[c,p+r-1] * W[k,c,r]", {"k": 4, "p": 8, "c": 2, "r": 3},
    ...                   {"I": "int8", "W": "int8", "O": "int32"}, {"I": (2, 8)})
    >>> s = window_slice(conv, "p", 4, 8, "c[1]")
    >>> str(s.layer.expr), s.layer.tensors["I"].shape, s.window("I")
    ('O[k,p] += (I[c,p+r] * W[k,c,r])', (2, 5), Window(tensor='I', axis=1, lo=3, hi=8))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mapper.spec.notation import Access, Affine, BinOp, Call, Expr, TensorExpr
from mapper.spec.workload import Layer, Tensor


@dataclass(frozen=True)
class Window:
    """The part [lo, hi) of axis `axis` of a layer's tensor that a slice reads or writes."""

    tensor: str
    axis: int
    lo: int
    hi: int


@dataclass(frozen=True)
class Slice:
    """The part [lo, hi) of `dim` of a layer, as a layer of its own (named `NAME[j]`), with the windows
    of the tensors it touches (a tensor without one is read whole)."""

    layer: Layer
    dim: str
    lo: int
    hi: int
    windows: tuple[Window, ...] = ()

    def window(self, tensor: str) -> Window | None:
        return next((w for w in self.windows if w.tensor == tensor), None)


def plain_axis(access: Access, dim: str) -> int | None:
    """The axis `access` indexes with exactly `dim` (None: none does)."""
    return next((axis for axis, ix in enumerate(access.indices) if ix.single_dim == dim), None)


def window_slice(layer: Layer, dim: str, lo: int, hi: int, name: str) -> Slice | None:
    """The part [lo, hi) of `dim`, which the output must index plainly, as a layer (None: it does not,
    or a tensor would index `dim` on two axes)."""
    expr = layer.expr
    if plain_axis(expr.output, dim) is None or not 0 <= lo < hi <= layer.dims[dim]:
        return None
    dims = {**layer.dims, dim: hi - lo}
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for access in (expr.output, *expr.accesses):
        axes = [axis for axis, ix in enumerate(access.indices) if dim in ix.dims]
        if len(axes) > 1:
            return None
        for axis in axes:
            a, b = _shifted(access.indices[axis], dim, lo).bounds(dims)
            prev = spans.get((access.tensor, axis), (a, b))
            spans[(access.tensor, axis)] = (min(a, prev[0]), max(b, prev[1]))
    windows, tensors = [], dict(layer.tensors)
    for (tensor, axis), (a, b) in spans.items():
        t = layer.tensors[tensor]
        w = Window(tensor, axis, max(0, a), min(t.shape[axis], b + 1))
        if w.lo >= w.hi:
            return None
        windows.append(w)
        tensors[tensor] = Tensor(t.name, t.shape[:axis] + (w.hi - w.lo,) + t.shape[axis + 1:], t.dtype, t.role)
    starts = {(w.tensor, w.axis): w.lo for w in windows}
    if any((a.tensor, axis) in starts and dim not in ix.dims
           for a in expr.accesses for axis, ix in enumerate(a.indices)):
        return None  # a tensor read along the window's axis without `dim` too: keep it simple, whole

    def shift(access: Access) -> Access:
        return Access(access.tensor, tuple(
            _shifted(ix, dim, lo, starts[(access.tensor, axis)]) if (access.tensor, axis) in starts else ix
            for axis, ix in enumerate(access.indices)))
    output, rhs = shift(expr.output), _map_accesses(expr.rhs, shift)
    text = expr.text if output == expr.output and rhs == expr.rhs else f"{output} {expr.update} {rhs}"
    part = replace(layer, name=name, expr=TensorExpr(output, expr.update, rhs, text), dims=dims, tensors=tensors,
                   count=1)
    return Slice(part, dim, lo, hi, tuple(windows))


def partition(extent: int, count: int) -> list[tuple[int, int]]:
    """[0, extent) cut into `count` contiguous parts of ceil(extent / count) (the last may be smaller;
    fewer parts when the extent is short).

    >>> partition(10, 4)
    [(0, 3), (3, 6), (6, 9), (9, 10)]
    """
    size = -(-extent // count)
    return [(lo, min(extent, lo + size)) for lo in range(0, extent, size)]


def slice_data(s: Slice, tensor: str, data: np.ndarray) -> np.ndarray:
    """The part of a tensor (as the whole layer sees it) that slice `s` reads or writes: a view."""
    w = s.window(tensor)
    if w is None:
        return data
    index = [slice(None)] * data.ndim
    index[w.axis] = slice(w.lo, w.hi)
    return data[tuple(index)]


def _shifted(ix: Affine, dim: str, lo: int, start: int = 0) -> Affine:
    """`ix` with `dim` counted from `lo`, and the result from `start`."""
    return Affine(ix.terms, ix.const + ix.coeff(dim) * lo - start)


def _map_accesses(e: Expr, fn) -> Expr:
    if isinstance(e, Access):
        return fn(e)
    if isinstance(e, BinOp):
        return BinOp(e.op, _map_accesses(e.lhs, fn), _map_accesses(e.rhs, fn))
    if isinstance(e, Call):
        return Call(e.fn, tuple(_map_accesses(a, fn) for a in e.args))
    return e
