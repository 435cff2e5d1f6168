"""The reference evaluator against independent, direct NumPy implementations of every op template.

Contract: for every op template, `sim.reference.evaluate` on the template's expression equals a direct
NumPy implementation written here from the op's mathematical (torch-like) definition, on
hypothesis-drawn small shapes including stride 2, asymmetric padding, dilation 2 and groups > 1.

The direct implementations deliberately use none of `sim.reference` (no `access_view`): convolution and
pooling pad with `np.pad` and loop over the kernel taps with plain slicing; groups are an explicit
reshape [N,C,H,W] -> [N,G,C/G,H,W]. Integer results are computed exactly in int64 and must match
bit for bit (after checking they fit the output dtype, or after an explicit two's-complement wrap for
the element-wise ops); float results are computed in float64 and compared with rtol=1e-5, atol=1e-6 plus,
for reductions, the rigorous float32 rounding bound (n + 1) * u * sum|terms| (any summation order).
"""

from __future__ import annotations

import numpy as np
import pytest
from direct_ops import (
    DILATIONS,
    MAC_DTYPES,
    PADS,
    SEEDS,
    SETTINGS,
    STRIDES,
    as_pads,
    as_pair,
    assert_matches,
    build,
    direct_conv2d,
    direct_pool2d,
    out_size,
    random_inputs,
    run,
    sum_error_bound,
    work_dtype,
)
from hypothesis import given
from hypothesis import strategies as st

from mapper.spec.ops import TEMPLATES, TemplateError, expand
from mapper.spec.workload import make_layer

# --------------------------------------------------------------------------------------------------
# Property tests, one per template

def test_every_template_is_covered():
    covered = {"conv2d", "depthwise_conv2d", "gemm", "batched_matmul", "max_pool2d", "avg_pool2d",
               "relu", "sigmoid", "tanh", "add", "mul", "gru_cell",
               "softmax", "lrn",  # these two: tests/test_reference_norm_ops.py
               "requant", "dequant", "quant"}
    assert set(TEMPLATES) == covered


@SETTINGS
@given(data=st.data(), seed=SEEDS, dtypes=MAC_DTYPES)
def test_conv2d(data, seed, dtypes):
    dtype, acc = dtypes
    N, C, K = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    G = data.draw(st.sampled_from([g for g in range(1, min(C, K) + 1) if C % g == 0 and K % g == 0]))
    H, W = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    R = data.draw(st.integers(1, 3))
    S = data.draw(st.one_of(st.none(), st.integers(1, 3)))  # None: the template's default S = R
    stride, pad, dilation = data.draw(STRIDES), data.draw(PADS), data.draw(DILATIONS)
    params = {"N": N, "C": C, "K": K, "H": H, "W": W, "R": R, "stride": stride, "pad": pad,
              "dilation": dilation, "groups": G, "dtype": dtype, "acc_dtype": acc}
    if S is not None:
        params["S"] = S
    S = S or R
    (sh, sw), (dh, dw), (top, left, bottom, right) = as_pair(stride), as_pair(dilation), as_pads(pad)
    P, Q = out_size(H, R, sh, dh, top, bottom), out_size(W, S, sw, dw, left, right)
    if P < 1 or Q < 1:
        with pytest.raises(TemplateError):
            expand("conv2d", params)
        return
    layer = build("conv2d", params)
    if G == 1:
        assert layer.tensors["I"].shape == (N, C, H, W)
        assert layer.tensors["W"].shape == (K, C, R, S)
    else:
        assert layer.tensors["I"].shape == (N, G, C // G, H, W)
        assert layer.tensors["W"].shape == (G, K // G, C // G, R, S)
    inputs = random_inputs(layer, np.random.default_rng(seed))
    result = run(layer, inputs)
    x, w = inputs["I"].reshape(N, C, H, W), inputs["W"].reshape(K, C // G, R, S)

    def conv(x, w):
        return direct_conv2d(x, w, (sh, sw), (top, left, bottom, right), (dh, dw), G, acc)

    bound = sum_error_bound(C // G * R * S, conv(abs(x), abs(w)))
    assert_matches(result.reshape(N, K, P, Q), conv(x, w), acc, bound)


@SETTINGS
@given(data=st.data(), seed=SEEDS, dtypes=MAC_DTYPES)
def test_depthwise_conv2d(data, seed, dtypes):
    dtype, acc = dtypes
    N, C = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 6))
    H, W = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    R, S = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride, pad, dilation = data.draw(STRIDES), data.draw(PADS), data.draw(DILATIONS)
    params = {"N": N, "C": C, "H": H, "W": W, "R": R, "S": S, "stride": stride, "pad": pad,
              "dilation": dilation, "dtype": dtype, "acc_dtype": acc}
    (sh, sw), (dh, dw), (top, left, bottom, right) = as_pair(stride), as_pair(dilation), as_pads(pad)
    P, Q = out_size(H, R, sh, dh, top, bottom), out_size(W, S, sw, dw, left, right)
    if P < 1 or Q < 1:
        with pytest.raises(TemplateError):
            expand("depthwise_conv2d", params)
        return
    layer = build("depthwise_conv2d", params)
    assert layer.tensors["I"].shape == (N, C, H, W)
    assert layer.tensors["W"].shape == (C, R, S)
    inputs = random_inputs(layer, np.random.default_rng(seed))
    result = run(layer, inputs)

    def conv(x, w):  # depthwise = grouped conv with groups = C and one filter per group
        return direct_conv2d(x, w.reshape(C, 1, R, S), (sh, sw), (top, left, bottom, right), (dh, dw), C, acc)

    bound = sum_error_bound(R * S, conv(abs(inputs["I"]), abs(inputs["W"])))
    assert_matches(result, conv(inputs["I"], inputs["W"]), acc, bound)


@SETTINGS
@given(M=st.integers(1, 6), N=st.integers(1, 6), K=st.integers(1, 8), transpose_a=st.booleans(),
       transpose_b=st.booleans(), dtypes=MAC_DTYPES, seed=SEEDS)
def test_gemm(M, N, K, transpose_a, transpose_b, dtypes, seed):
    dtype, acc = dtypes
    layer = build("gemm", {"M": M, "N": N, "K": K, "transpose_a": transpose_a, "transpose_b": transpose_b,
                           "dtype": dtype, "acc_dtype": acc})
    assert layer.tensors["A"].shape == ((K, M) if transpose_a else (M, K))
    assert layer.tensors["B"].shape == ((N, K) if transpose_b else (K, N))
    inputs = random_inputs(layer, np.random.default_rng(seed))
    work = work_dtype(acc)
    a = inputs["A"].astype(work)
    b = inputs["B"].astype(work)
    a = a.T if transpose_a else a
    b = b.T if transpose_b else b
    assert_matches(run(layer, inputs), a @ b, acc, sum_error_bound(K, abs(a) @ abs(b)))


@SETTINGS
@given(B=st.integers(1, 3), M=st.integers(1, 5), N=st.integers(1, 5), K=st.integers(1, 6),
       transpose_b=st.booleans(), dtypes=MAC_DTYPES, seed=SEEDS)
def test_batched_matmul(B, M, N, K, transpose_b, dtypes, seed):
    dtype, acc = dtypes
    layer = build("batched_matmul", {"B": B, "M": M, "N": N, "K": K, "transpose_b": transpose_b,
                                     "dtype": dtype, "acc_dtype": acc})
    assert layer.tensors["A"].shape == (B, M, K)
    assert layer.tensors["B"].shape == ((B, N, K) if transpose_b else (B, K, N))
    inputs = random_inputs(layer, np.random.default_rng(seed))
    work = work_dtype(acc)
    a = inputs["A"].astype(work)
    b = inputs["B"].astype(work)
    if transpose_b:
        b = np.swapaxes(b, 1, 2)
    assert_matches(run(layer, inputs), np.matmul(a, b), acc, sum_error_bound(K, np.matmul(abs(a), abs(b))))


def _pool_case(data):
    """Draw pooling params; return (params, kernel, stride, pads, output size)."""
    N, C = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4))
    H, W = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    R = data.draw(st.integers(1, 3))
    S = data.draw(st.one_of(st.none(), st.integers(1, 3)))
    stride = data.draw(st.one_of(st.none(), STRIDES))  # None: the template's default stride = window
    pad = data.draw(PADS)
    params = {"N": N, "C": C, "H": H, "W": W, "R": R, "pad": pad}
    if S is not None:
        params["S"] = S
    if stride is not None:
        params["stride"] = stride
    S = S or R
    sh, sw = as_pair(stride) if stride is not None else (R, S)
    pads = as_pads(pad)
    P, Q = out_size(H, R, sh, 1, pads[0], pads[2]), out_size(W, S, sw, 1, pads[1], pads[3])
    return params, (R, S), (sh, sw), pads, (P, Q)


@SETTINGS
@given(data=st.data(), seed=SEEDS, dtype=st.sampled_from(["int8", "float32"]))
def test_max_pool2d(data, seed, dtype):
    params, kernel, stride, pads, (P, Q) = _pool_case(data)
    params["dtype"] = dtype
    if P < 1 or Q < 1:
        with pytest.raises(TemplateError):
            expand("max_pool2d", params)
        return
    layer = build("max_pool2d", params)
    assert layer.tensors["I"].shape == (params["N"], params["C"], params["H"], params["W"])
    inputs = random_inputs(layer, np.random.default_rng(seed))
    result = run(layer, inputs)
    expected = direct_pool2d(inputs["I"], kernel, stride, pads, "max")
    assert result.dtype == np.dtype(dtype)
    assert np.array_equal(result, expected), (result, expected)  # max is exact for floats too


@SETTINGS
@given(data=st.data(), seed=SEEDS, dtypes=MAC_DTYPES)
def test_avg_pool2d(data, seed, dtypes):
    dtype, acc = dtypes
    params, kernel, stride, pads, (P, Q) = _pool_case(data)
    params.update(dtype=dtype, acc_dtype=acc)
    if P < 1 or Q < 1:
        with pytest.raises(TemplateError):
            expand("avg_pool2d", params)
        return
    layer = build("avg_pool2d", params)
    inputs = random_inputs(layer, np.random.default_rng(seed))
    result = run(layer, inputs)
    if dtype == "int8":  # integer: the int32 window sum, padding reads 0
        expected = direct_pool2d(inputs["I"], kernel, stride, pads, "sum")
        assert_matches(result, expected, "int32")
    else:  # float: the mean with padded zeros counted in the divisor (count_include_pad=True)
        expected = direct_pool2d(inputs["I"], kernel, stride, pads, "mean")
        abs_mean = direct_pool2d(abs(inputs["I"]), kernel, stride, pads, "mean")
        bound = sum_error_bound(kernel[0] * kernel[1], abs_mean)
        assert_matches(result, expected, dtype, bound)


# --------------------------------------------------------------------------------------------------
# Plain cases

@pytest.mark.parametrize("dtype,acc", [("int8", "int32"), ("float32", "float32")])
def test_conv_7x7_stride2_pad3(dtype, acc):
    """The ResNet stem shape at 16x16: 1x3x16x16, 7x7, stride 2, pad 3 -> 8x8."""
    layer = build("conv2d", {"C": 3, "K": 4, "H": 16, "W": 16, "R": 7, "stride": 2, "pad": 3,
                             "dtype": dtype, "acc_dtype": acc})
    assert layer.dims["p"] == layer.dims["q"] == 8
    inputs = random_inputs(layer, np.random.default_rng(7))

    def conv(x, w):
        return direct_conv2d(x, w, (2, 2), (3, 3, 3, 3), (1, 1), 1, acc)

    bound = sum_error_bound(3 * 7 * 7, conv(abs(inputs["I"]), abs(inputs["W"])))
    assert_matches(run(layer, inputs), conv(inputs["I"], inputs["W"]), acc, bound)


def test_grouped_dilated_conv():
    N, C, K, G, H, W, R = 1, 4, 6, 2, 9, 8, 3
    layer = build("conv2d", {"N": N, "C": C, "K": K, "H": H, "W": W, "R": R, "groups": G, "dilation": 2,
                             "pad": [2, 1], "stride": [1, 2]})
    inputs = random_inputs(layer, np.random.default_rng(11))
    result = run(layer, inputs)
    P, Q = out_size(H, R, 1, 2, 2, 2), out_size(W, R, 2, 2, 1, 1)
    assert result.shape == (N, G, K // G, P, Q)
    expected = direct_conv2d(inputs["I"].reshape(N, C, H, W), inputs["W"].reshape(K, C // G, R, R),
                             (1, 2), (2, 1, 2, 1), (2, 2), G, "int32")
    assert_matches(result.reshape(N, K, P, Q), expected, "int32")
    # the groups really are independent: group 1's output does not change with group 0's input
    i2 = inputs["I"].copy()
    i2[:, 0] = 0
    result2 = run(layer, {"I": i2, "W": inputs["W"]})
    assert np.array_equal(result2[:, 1], result[:, 1])


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_max_pool_padding_never_wins(dtype):
    """All-negative input with padding on every side: every output is a real input element."""
    layer = build("max_pool2d", {"C": 2, "H": 5, "W": 5, "R": 3, "stride": 2, "pad": 1, "dtype": dtype})
    rng = np.random.default_rng(3)
    x = rng.integers(-127, -1, size=(1, 2, 5, 5), endpoint=True).astype(dtype)
    result = run(layer, {"I": x})
    assert result.shape == (1, 2, 3, 3)
    assert (result < 0).all() and np.isin(result, x).all()
    if dtype == "int8":
        assert (result > -128).all()
    else:
        assert np.isfinite(result).all()
    # the corner window covers rows/cols 0..1 only
    assert result[0, 0, 0, 0] == x[0, 0, :2, :2].max()
    assert np.array_equal(result, direct_pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1), "max"))


def test_negative_coefficient_index():
    a = np.array([1, 2, 3, 4, 5], np.int8)
    b = np.array([10, 20, 30, 40, 50], np.int8)
    layer = make_layer("rev", "O[i] += A[4-i] * B[i]", {"i": 5}, {"A": "int8", "B": "int8", "O": "int32"})
    assert layer.tensors["A"].shape == (5,)
    result = run(layer, {"A": a, "B": b})
    assert result.dtype == np.int32
    assert result.tolist() == [5 * 10, 4 * 20, 3 * 30, 2 * 40, 1 * 50]


def test_negative_coefficient_index_with_padding():
    """A[2-i] over i in 0..4 on a 3-element A: reversed, then zero padding for i > 2."""
    a = np.array([1, 2, 3], np.int8)
    b = np.array([1, 1, 1, 1, 1], np.int8)
    layer = make_layer("rev", "O[i] += A[2-i] * B[i]", {"i": 5}, {"A": "int8", "B": "int8", "O": "int32"},
                       {"A": (3,)})
    assert run(layer, {"A": a, "B": b}).tolist() == [3, 2, 1, 0, 0]
    ew = make_layer("rev", "O[i] = A[2-i] + B[i]", {"i": 5}, {"A": "int8", "B": "int8", "O": "int8"},
                    {"A": (3,)})
    assert run(ew, {"A": a, "B": b}).tolist() == [4, 3, 2, 1, 1]
    # a reduction through a negative coefficient: O[i] = sum_j A[i-j+2] * B[j] (a flipped correlation)
    conv = make_layer("flip", "O[i] += A[i-j+2] * B[j]", {"i": 3, "j": 3},
                      {"A": "int8", "B": "int8", "O": "int32"}, {"A": (3,)})
    got = run(conv, {"A": a, "B": np.array([1, 10, 100], np.int8)}).tolist()
    # i=0: A[2]*1 + A[1]*10 + A[0]*100 = 3 + 20 + 100; i=1: A[3]=0, A[2]*10, A[1]*100; i=2: A[2]*100
    assert got == [123, 30 + 200, 300]


def test_int8_add_wraps():
    layer = build("add", {"shape": [4], "dtype": "int8"})
    x = np.array([127, -128, 100, -100], np.int8)
    y = np.array([1, -1, 100, -100], np.int8)
    result = run(layer, {"X": x, "Y": y})
    assert result.dtype == np.int8
    assert result.tolist() == [-128, 127, -56, 56]
    assert np.array_equal(result, np.add(x, y))
