"""An exact fast path for integer multiply-accumulates: compute them in float64 with BLAS.

NumPy's integer einsum runs a scalar loop; a float64 matmul runs BLAS. The two agree bit for bit
whenever every partial sum is an integer below 2**53 in magnitude, since float64 represents all of
those exactly (so no product or addition rounds, in whatever order BLAS sums). The bound is checked
from the operand dtypes' ranges and the reduction length before the fast path is taken; the exact
sum is then cast to the output dtype through int64, which wraps it modulo 2**bits exactly as the
integer accumulation does.

    >>> import numpy as np
    >>> from mapper.spec.notation import parse_tensor_expr
    >>> e = parse_tensor_expr("C[m,n] += A[m,k] * B[k,n]")
    >>> a, b = np.full((1, 3), -128, np.int8), np.full((3, 1), -128, np.int8)
    >>> mac_in_float64(e, {"m": 1, "n": 1, "k": 3}, {"A": a, "B": b}, np.int32).tolist()
    [[49152]]
    >>> exact_in_float64(np.int8, np.int8, 2**39 - 1), exact_in_float64(np.int32, np.int32, 1)
    (True, False)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mapper.spec.notation import Affine, TensorExpr
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
    if dtype.kind not in "iu" or not expr.is_mac:
        return None
    a, b = expr.rhs.lhs, expr.rhs.rhs
    x, y = inputs[a.tensor], inputs[b.tensor]
    if x.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        return None
    plan = _plan(expr.output.indices, tuple(i.terms for i in a.indices), tuple(i.terms for i in b.indices), expr.dims)
    if plan is None:
        return None
    if not exact_in_float64(x.dtype, y.dtype, math.prod(extents[d] for d in plan.contract)):
        return None
    # Padding reads the `+=` identity, 0, as the reference's views do.
    ma = _matrix(access_view(x, a, expr.dims, extents), plan.perm_a, plan.batch, plan.free_a, plan.contract, extents)
    mb = _matrix(access_view(y, b, expr.dims, extents), plan.perm_b, plan.batch, plan.contract, plan.free_b, extents)
    product = np.matmul(ma, mb).reshape([extents[d] for d in plan.order]).transpose(plan.out_perm)
    # Exact integers below 2**53: int64 holds them; casting on to the output dtype wraps mod 2**bits.
    return product.astype(np.int64).astype(dtype)


@dataclass(frozen=True)
class _Plan:
    """How a MAC's dims map onto a batched matmul (batch, free_a, contract) @ (batch, contract, free_b)."""

    batch: tuple[str, ...]
    free_a: tuple[str, ...]
    free_b: tuple[str, ...]
    contract: tuple[str, ...]
    perm_a: tuple[int, ...]  # a's view axes -> (batch, free_a, contract)
    perm_b: tuple[int, ...]  # b's view axes -> (batch, contract, free_b)
    order: tuple[str, ...]  # the matmul result's dims: batch, free_a, free_b
    out_perm: tuple[int, ...]  # those -> the output's dims


@functools.lru_cache(maxsize=256)
def _plan(out: tuple[Affine, ...], a_terms: tuple, b_terms: tuple, dims: tuple[str, ...]) -> _Plan | None:
    """The matmul plan of a MAC from its index structure alone (the simulator's per-tile expressions
    differ only in constants, so this is worked out once), or None when some dim fits no matmul role:
    an output dim neither operand indexes, a reduction only one operand runs over, an affine output."""
    out_dims = [i.single_dim for i in out]
    if None in out_dims or len(set(out_dims)) != len(out_dims):
        return None
    # The dims `access_view` gives an axis (those with a coefficient in some index), in its order.
    used_a = [d for d in dims if any(dict(terms).get(d, 0) for terms in a_terms)]
    used_b = [d for d in dims if any(dict(terms).get(d, 0) for terms in b_terms)]
    batch = tuple(d for d in out_dims if d in used_a and d in used_b)
    free_a = tuple(d for d in out_dims if d in used_a and d not in used_b)
    free_b = tuple(d for d in out_dims if d in used_b and d not in used_a)
    reduced = tuple(d for d in dims if d not in out_dims)
    contract = tuple(d for d in reduced if d in used_a and d in used_b)
    if len(batch) + len(free_a) + len(free_b) != len(out_dims) or contract != reduced:
        return None
    order = (*batch, *free_a, *free_b)
    return _Plan(batch, free_a, free_b, contract, tuple(used_a.index(d) for d in (*batch, *free_a, *contract)),
                 tuple(used_b.index(d) for d in (*batch, *contract, *free_b)), order,
                 tuple(order.index(d) for d in out_dims))


def _matrix(view: np.ndarray, perm: tuple[int, ...], batch: tuple[str, ...], rows: tuple[str, ...],
            cols: tuple[str, ...], extents: dict[str, int]) -> np.ndarray:
    """`view` as a float64 stack of matrices (batch, rows, cols); `perm` orders its axes so."""
    shape = (math.prod(extents[d] for d in batch), math.prod(extents[d] for d in rows),
             math.prod(extents[d] for d in cols))
    return np.ascontiguousarray(view.transpose(perm), dtype=np.float64).reshape(shape)  # one copy (im2col for a conv)
