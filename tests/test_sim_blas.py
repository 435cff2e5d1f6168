"""The simulator's float64 matmul path for integer multiply-accumulates equals the reference's integer
einsum bit for bit: on drawn expressions (convolutions with padding and stride, batches, transposes),
at the extremes of the input range, where the int32 accumulators wrap, and exactly at the float64
exactness bound; past that bound it declines (and the simulator falls back to the integer path)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.spec.notation import parse_tensor_expr
from sim.blas import EXACT_LIMIT, exact_in_float64, mac_in_float64
from sim.reference import access_view, evaluate

# Integer MACs of every matmul shape the fast path handles: plain, transposed, batched, element-wise
# (batch only), a vector result, and convolutions whose windows run off the input (padding).
MACS = [
    "C[m,n] += A[m,k] * B[k,n]",
    "C[m,n] += A[k,m] * B[n,k]",
    "Z[b,m,n] += X[b,m,k] * Y[b,k,n]",
    "Z[i] += X[i] * Y[i]",
    "C[m] += A[m,k] * B[k]",
    "O[n,k,p,q] += I[n,c,p+r-1,q+s-1] * W[k,c,r,s]",
    "O[n,k,p,q] += I[n,c,2*p+r-1,2*q+2*s] * W[k,c,r,s]",
    "O[n,k,p,q] += W[k,c,r,s] * I[n,c,p+r,q+s]",
]


def draw_inputs(data, expr, extents, dtype) -> dict[str, np.ndarray]:
    """Arrays for every input, a little larger or smaller than the accesses reach (so some reads pad),
    with values drawn from the whole range of `dtype` and often its extremes."""
    info = np.iinfo(dtype)
    out = {}
    for a in expr.accesses:
        if a.tensor in out:
            continue
        shape = []
        for idx in a.indices:
            _, hi = idx.bounds(extents)
            shape.append(max(1, hi + 1 + data.draw(st.integers(-1, 1))))
        seed = data.draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        values = rng.integers(info.min, info.max, size=shape, endpoint=True)
        extremes = rng.choice([info.min, info.max], size=shape)
        mix = data.draw(st.sampled_from([0.0, 0.5, 1.0]))  # share of extreme values
        out[a.tensor] = np.where(rng.random(shape) < mix, extremes, values).astype(dtype)
    return out


@settings(max_examples=60, deadline=None)
@given(text=st.sampled_from(MACS), in_dtype=st.sampled_from([np.int8, np.uint8, np.int16]),
       out_dtype=st.sampled_from([np.int32, np.int16, np.uint32, np.int64]), data=st.data())
def test_float64_matmul_equals_integer_einsum(text, in_dtype, out_dtype, data) -> None:
    expr = parse_tensor_expr(text)
    extents = {d: data.draw(st.integers(1, 5), label=d) for d in expr.dims}
    inputs = draw_inputs(data, expr, extents, in_dtype)
    fast = mac_in_float64(expr, extents, inputs, out_dtype)
    assert fast is not None
    expected = evaluate(expr, extents, inputs, out_dtype)
    assert fast.dtype == expected.dtype and fast.shape == expected.shape
    assert np.array_equal(fast, expected)


def long_dot(value_a: int, value_b: int, length: int, dtypes, out_dtype=np.int32):
    """C[m,n] += A[m,k] * B[k,n] with one output and a reduction of `length` equal products."""
    expr = parse_tensor_expr("C[m,n] += A[m,k] * B[k,n]")
    extents = {"m": 1, "n": 1, "k": length}
    inputs = {"A": np.full((1, length), value_a, dtypes[0]), "B": np.full((length, 1), value_b, dtypes[1])}
    return expr, extents, inputs, out_dtype


def test_wraps_like_the_int32_accumulator() -> None:
    # 2**18 products of (-128)*(-128) = 2**32: the int32 sum wraps through 2**31 twice, to 0; one
    # product fewer ends at -2**14. Both paths must agree, modulo 2**32 and 2**16.
    for length in (2**18, 2**18 - 1, 131073):
        for out_dtype in (np.int32, np.uint32, np.int16):
            args = long_dot(-128, -128, length, (np.int8, np.int8), out_dtype)
            fast, slow = mac_in_float64(*args), evaluate(*args)
            assert fast is not None and np.array_equal(fast, slow), (length, out_dtype)
    assert mac_in_float64(*long_dot(-128, -128, 2**18, (np.int8, np.int8)))[0, 0] == 0


def test_exact_at_the_bound_and_declines_past_it() -> None:
    # int32 x int8 at their minima: each product is 2**31 * 2**7 = 2**38, so 2**15 of them sum to
    # exactly 2**53, the largest length the bound admits; the sums are exact and wrap to 0 in int32.
    length = EXACT_LIMIT // 2**38
    assert exact_in_float64(np.int32, np.int8, length) and not exact_in_float64(np.int32, np.int8, length + 1)
    args = long_dot(np.iinfo(np.int32).min, -128, length, (np.int32, np.int8), np.int64)
    fast = mac_in_float64(*args)
    assert fast is not None and fast[0, 0] == 2**53 == evaluate(*args)[0, 0]
    # One product more reaches 2**53 + 2**38; the path must decline rather than risk rounding.
    assert mac_in_float64(*long_dot(np.iinfo(np.int32).min, -128, length + 1, (np.int32, np.int8))) is None


def test_declines_what_it_cannot_do_exactly() -> None:
    gemm = parse_tensor_expr("C[m,n] += A[m,k] * B[k,n]")
    extents = {"m": 2, "n": 2, "k": 2}
    ints = {"A": np.ones((2, 2), np.int8), "B": np.ones((2, 2), np.int8)}
    floats = {t: a.astype(np.float32) for t, a in ints.items()}
    assert mac_in_float64(gemm, extents, floats, np.float32) is None  # floats: the reference rounds its way
    assert mac_in_float64(gemm, extents, ints, np.float32) is None
    assert mac_in_float64(gemm, extents, {t: a.astype(np.int64) for t, a in ints.items()}, np.int64) is None
    for text in ["C[m,n] max= A[m,k] * B[k,n]",  # not a sum
                 "C[m,n] += A[m,k] * B[k,n] * 2",  # a constant factor
                 "C[m] += A[m,k] * B[m,j]",  # j: only one operand reduces over it
                 "C[m,n,j] += A[m,k] * B[k,n]"]:  # j: an output dim no operand indexes
        expr = parse_tensor_expr(text)
        assert mac_in_float64(expr, dict.fromkeys(expr.dims, 2), ints, np.int32) is None, text
    diagonal = parse_tensor_expr("C[m] += A[m,k] * B[k,k]")  # a repeated index is one view axis: fine
    fast = mac_in_float64(diagonal, {"m": 2, "k": 2}, ints, np.int32)
    assert fast is not None and np.array_equal(fast, evaluate(diagonal, {"m": 2, "k": 2}, ints, np.int32))


def test_views_pad_with_zero() -> None:
    # The fast path reads through the same padded views as the reference: a window wholly outside
    # the input contributes nothing.
    expr = parse_tensor_expr("O[p] += I[p+r-4] * W[r]")
    inputs = {"I": np.full(2, 127, np.int8), "W": np.full(3, -128, np.int8)}
    fast = mac_in_float64(expr, {"p": 8, "r": 3}, inputs, np.int32)
    assert fast.tolist() == evaluate(expr, {"p": 8, "r": 3}, inputs, np.int32).tolist()
    assert fast[0] == 0 and access_view(inputs["I"], expr.accesses[0], expr.dims, {"p": 8, "r": 3}).shape == (8, 3)
