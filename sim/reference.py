"""Reference evaluation of a tensor expression on NumPy arrays.

Each access becomes a strided view over the iteration dims (no copy, even for `2*p+r`); a product of
accesses under `+=` is one `np.einsum`; anything else is evaluated element-wise on broadcast views
and reduced. Every computation happens in the output dtype, so integer results wrap like the
hardware's accumulators and are bit-exact whatever the summation order.

    >>> import numpy as np
    >>> from mapper.spec.notation import parse_tensor_expr
    >>> e = parse_tensor_expr("C[m,n] += A[m,k] * B[k,n]")
    >>> a, b = np.ones((2, 3), np.int8), np.ones((3, 4), np.int8)
    >>> evaluate(e, {"m": 2, "n": 4, "k": 3}, {"A": a, "B": b}, np.int32).tolist()[0]
    [3, 3, 3, 3]
"""

from __future__ import annotations

import string

import numpy as np
from numpy.lib.stride_tricks import as_strided

from mapper.spec.notation import Access, BinOp, Const, Expr, TensorExpr


def identity(update: str, dtype: np.dtype) -> int | float:
    """The value an out-of-range read yields: the neutral element of the update."""
    dtype = np.dtype(dtype)
    if update != "max=":
        return 0
    return np.iinfo(dtype).min if dtype.kind in "iu" else -np.inf


def access_view(array: np.ndarray, access: Access, dims: tuple[str, ...], extents: dict[str, int],
                pad_value: int | float = 0, broadcast: bool = False) -> np.ndarray:
    """A read-only strided view of `array` as indexed by `access`, with one axis per dim.

    Axes follow `dims`; without `broadcast` only the dims the access uses get an axis, with it every
    dim does (stride 0 for the others). Reads outside the array see `pad_value`.
    """
    if array.ndim != len(access.indices):
        raise ValueError(f"{access.tensor}: array has rank {array.ndim}, access {access} has rank "
                         f"{len(access.indices)}")
    lows, highs = zip(*(idx.bounds(extents) for idx in access.indices), strict=True)
    before = [max(0, -lo) for lo in lows]
    after = [max(0, hi - (n - 1)) for hi, n in zip(highs, array.shape, strict=True)]
    base = array
    if any(before) or any(after):
        base = np.pad(array, list(zip(before, after, strict=True)), constant_values=pad_value)
    start = base[tuple(slice(idx.const + b, None) for idx, b in zip(access.indices, before, strict=True))]
    coeffs = [dict(idx.terms) for idx in access.indices]  # once per index, not per dim
    axes = [d for d in dims if broadcast or any(c.get(d, 0) for c in coeffs)]
    strides = [sum(c.get(d, 0) * s for c, s in zip(coeffs, base.strides, strict=True)) for d in axes]
    return as_strided(start, shape=[extents[d] for d in axes], strides=strides, writeable=False)


def evaluate(expr: TensorExpr, extents: dict[str, int], inputs: dict[str, np.ndarray],
             out_dtype, initial: np.ndarray | None = None) -> np.ndarray:
    """The output tensor of `expr` over dims `extents`, computed in `out_dtype`.

    `initial`, when given, is the output's prior content: `+=` adds to it, `max=` takes the maximum
    with it (this is how the simulator accumulates partial sums tile by tile).
    """
    out = np.dtype(out_dtype)
    dtype = compute_dtype(out, [inputs[t].dtype for t in expr.inputs])
    dims = expr.dims
    out_shape = tuple(extents[d] for d in expr.output.dims)
    pad = identity(expr.update, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        factors = _product_factors(expr.rhs)
        if expr.update == "+=" and factors is not None:
            result = _einsum(expr, factors, extents, inputs, dtype, pad)
        else:
            views = {a: access_view(inputs[a.tensor], a, dims, extents, pad, broadcast=True)
                     for a in expr.accesses}
            full = np.broadcast_to(_element(expr.rhs, views, dtype), [extents[d] for d in dims])
            axes = tuple(range(len(expr.output.dims), len(dims)))
            if expr.update == "+=":
                result = full.sum(axis=axes, dtype=dtype)
            elif expr.update == "max=":
                result = full.max(axis=axes) if axes else np.array(full)
            else:
                result = np.array(full, dtype=dtype)
        result = np.asarray(result, dtype=dtype).reshape(out_shape).astype(out, copy=False)
        if initial is None:
            return result
        if expr.update == "+=":
            return np.add(initial, result, dtype=out)
        if expr.update == "max=":
            return np.maximum(initial, result)
        return result


def compute_dtype(out: np.dtype, inputs: list[np.dtype]) -> np.dtype:
    """The dtype a computation runs in: the output's, or for an integer output with wider (or float)
    inputs, their common type (the result then converts to the output dtype, wrapping).

    >>> compute_dtype(np.dtype("int8"), [np.dtype("int32")]), compute_dtype(np.dtype("int32"), [np.dtype("int8")])
    (dtype('int32'), dtype('int32'))
    """
    if out.kind == "f":
        return out
    return np.result_type(out, *inputs)


def requantise(x: np.ndarray, epilogue) -> np.ndarray:
    """A layer's `Epilogue` on its complete sums: clip(shr(x, shift), lo, hi) in the epilogue's
    dtype (lo = 0 under relu), as the `requant` op computes it.

    >>> from mapper.spec.workload import Epilogue
    >>> requantise(np.array([-300, -3, 5, 6, 1000], np.int32), Epilogue("int8", shift=2)).tolist()
    [-75, -1, 1, 2, 127]
    """
    info = np.iinfo(epilogue.dtype)
    lo = 0 if epilogue.relu else info.min
    return np.clip(_shr(x, epilogue.shift), lo, info.max).astype(epilogue.dtype)


def _shr(x: np.ndarray, n) -> np.ndarray:
    """Arithmetic shift right by n, rounding half up: (x + 2**(n-1)) >> n (wrapping in x's dtype)."""
    n = int(n)
    if n == 0:
        return x
    return np.right_shift(x + np.asarray(1 << (n - 1), x.dtype), n)


def _product_factors(e: Expr) -> list[Access | Const] | None:
    """The factors of a pure product of accesses and constants, or None."""
    if isinstance(e, Access | Const):
        return [e]
    if isinstance(e, BinOp) and e.op == "*":
        lhs, rhs = _product_factors(e.lhs), _product_factors(e.rhs)
        return lhs + rhs if lhs is not None and rhs is not None else None
    return None


def _einsum(expr: TensorExpr, factors, extents, inputs, dtype, pad) -> np.ndarray:
    letters = dict(zip(expr.dims, string.ascii_letters, strict=False))
    operands, subscripts, scale = [], [], None
    for f in factors:
        if isinstance(f, Const):
            scale = np.asarray(f.value, dtype) if scale is None else scale * np.asarray(f.value, dtype)
            continue
        view = access_view(inputs[f.tensor], f, expr.dims, extents, pad)
        used = [d for d in expr.dims if any(idx.coeff(d) for idx in f.indices)]
        operands.append(view)
        subscripts.append("".join(letters[d] for d in used))
    spec = ",".join(subscripts) + "->" + "".join(letters[d] for d in expr.output.dims)
    result = np.einsum(spec, *operands, dtype=dtype, casting="unsafe")
    return result if scale is None else result * scale


_UNARY = {
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "sigmoid": lambda x: np.reciprocal(np.exp(-x) + np.ones((), x.dtype)),
    "tanh": np.tanh,
    "exp": np.exp,
    "neg": np.negative,
    "abs": np.abs,
    "round": np.rint,
}
_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "max": np.maximum,
           "min": np.minimum, "pow": np.power}


def _element(e: Expr, views: dict[Access, np.ndarray], dtype: np.dtype) -> np.ndarray:
    if isinstance(e, Access):
        return views[e].astype(dtype, copy=False)
    if isinstance(e, Const):
        return np.asarray(e.value, dtype=dtype)
    if isinstance(e, BinOp):
        return _BINARY[e.op](_element(e.lhs, views, dtype), _element(e.rhs, views, dtype), dtype=dtype)
    x = _element(e.args[0], views, dtype)
    if e.fn in _UNARY:
        return _UNARY[e.fn](x).astype(dtype, copy=False)
    if e.fn == "clip":
        lo, hi = (np.asarray(a.value, dtype) for a in e.args[1:])
        return np.clip(x, lo, hi)
    if e.fn == "shr":
        return _shr(x, e.args[1].value)
    return _BINARY[e.fn](x, _element(e.args[1], views, dtype), dtype=dtype)
