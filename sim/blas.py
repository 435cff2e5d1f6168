"""An exact fast path for integer multiply-accumulates: compute them in float64 with BLAS.

NumPy's integer einsum runs a scalar loop; a float64 matmul runs BLAS. The two agree bit for bit
whenever every partial sum is an integer below 2**53 in magnitude, since float64 represents all of
those exactly (so no product or addition rounds, in whatever order BLAS sums). The bound is checked
from the operand dtypes' ranges and the reduction length before the fast path is taken; the exact
sum is then cast to the output dtype through int64, which wraps it modulo 2**bits exactly as the
integer accumulation does.

    >>> import numpy as np
    >>> from mapper.notation import parse_tensor_expr
    >>> e = parse_tensor_expr("C[m,n] += A[m,k] * B[k,n]")
    >>> a, b = np.full((1, 3), -128, np.int8), np.full((3, 1), -128, np.int8)
    >>> mac_in_float64(e, {"m": 1, "n": 1, "k": 3}, {"A": a, "B": b}, np.int32).tolist()
    [[49152]]
    >>> exact_in_float64(np.int8, np.int8, 2**39 - 1), exact_in_float64(np.int32, np.int32, 1)
    (True, False)
"""

from __future__ import annotations

import math

import numpy as np

from mapper.notation import Access, TensorExpr
from sim.reference import access_view

EXACT_LIMIT = 2**53  # every integer of magnitude up to this is a float64


def magnitude(dtype) -> int:
    """The largest absolute value of an integer dtype (128 for int8)."""
    info = np.iinfo(dtype)
    return max(-int(info.min), int(info.max))


def exact_in_float64(a_dtype, b_dtype, length: int) -> bool:
    """Whether every partial sum of `length` products of an `a_dtype` and a `b_dtype` value is a
    float64 integer (so a float64 matmul of them is exact)."""
    return magnitude(a_dtype) * magnitude(b_dtype) * length <= EXACT_LIMIT


def mac_in_float64(expr: TensorExpr, extents: dict[str, int], inputs: dict[str, np.ndarray],
                   out_dtype) -> np.ndarray | None:
    """What `reference.evaluate(expr, extents, inputs, out_dtype)` returns, through a float64
    matmul; None unless `expr` is an integer multiply-accumulate the matmul provably gets exact."""
    dtype = np.dtype(out_dtype)
    if not expr.is_mac or dtype.kind not in "iu":
        return None
    a, b = expr.rhs.lhs, expr.rhs.rhs
    x, y = inputs[a.tensor], inputs[b.tensor]
    if x.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        return None
    roles = _roles(expr, _used(a, expr.dims), _used(b, expr.dims))
    if roles is None:
        return None
    batch, free_a, free_b, contract = roles
    if not exact_in_float64(x.dtype, y.dtype, math.prod(extents[d] for d in contract)):
        return None
    # Padding reads the `+=` identity, 0, as the reference's views do.
    va = access_view(x, a, expr.dims, extents)
    vb = access_view(y, b, expr.dims, extents)
    ma = _matrix(va, _used(a, expr.dims), batch, free_a, contract, extents)
    mb = _matrix(vb, _used(b, expr.dims), batch, contract, free_b, extents)
    product = np.matmul(ma, mb).reshape([extents[d] for d in (*batch, *free_a, *free_b)])
    order = (*batch, *free_a, *free_b)
    product = product.transpose([order.index(d) for d in expr.output.dims])
    # Exact integers below 2**53: int64 holds them; casting on to the output dtype wraps mod 2**bits.
    return product.astype(np.int64).astype(dtype)


def _used(access: Access, dims: tuple[str, ...]) -> list[str]:
    """The dims `access_view` gives an axis, in its order."""
    return [d for d in dims if any(idx.coeff(d) for idx in access.indices)]


def _roles(expr: TensorExpr, used_a: list[str], used_b: list[str]) -> tuple[list[str], ...] | None:
    """Dims as (batch, free of a, free of b, contracted), or None when some dim fits no matmul role:
    an output dim neither operand indexes, a reduction only one operand runs over, an affine output."""
    out = expr.output.dims
    if any(idx.single_dim is None for idx in expr.output.indices) or len(set(out)) != len(expr.output.indices):
        return None
    batch = [d for d in out if d in used_a and d in used_b]
    free_a = [d for d in out if d in used_a and d not in used_b]
    free_b = [d for d in out if d in used_b and d not in used_a]
    reduced = [d for d in expr.dims if d not in out]
    contract = [d for d in reduced if d in used_a and d in used_b]
    if len(batch) + len(free_a) + len(free_b) != len(out) or contract != reduced:
        return None
    return batch, free_a, free_b, contract


def _matrix(view: np.ndarray, axes: list[str], batch: list[str], rows: list[str], cols: list[str],
            extents: dict[str, int]) -> np.ndarray:
    """`view` (one axis per dim in `axes`) as a float64 stack of matrices (batch, rows, cols)."""
    moved = view.transpose([axes.index(d) for d in (*batch, *rows, *cols)])
    shape = (math.prod(extents[d] for d in batch), math.prod(extents[d] for d in rows),
             math.prod(extents[d] for d in cols))
    return np.ascontiguousarray(moved, dtype=np.float64).reshape(shape)  # one copy (im2col for a conv)
