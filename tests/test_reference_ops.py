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
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.spec.ops import TEMPLATES, TemplateError, expand
from mapper.spec.workload import Layer, make_layer
from sim.reference import evaluate

SETTINGS = settings(max_examples=25, deadline=None)

# (input dtype, accumulator dtype) pairs for the MAC templates
MAC_DTYPES = st.sampled_from([("int8", "int32"), ("float32", "float32")])
SEEDS = st.integers(0, 2**32 - 1)
STRIDES = st.one_of(st.integers(1, 2), st.lists(st.integers(1, 2), min_size=2, max_size=2))
DILATIONS = st.one_of(st.integers(1, 2), st.lists(st.integers(1, 2), min_size=2, max_size=2))
PADS = st.one_of(st.integers(0, 2), st.lists(st.integers(0, 2), min_size=2, max_size=2),
                 st.lists(st.integers(0, 2), min_size=4, max_size=4))


# --------------------------------------------------------------------------------------------------
# Helpers

def as_pair(value: int | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def as_pads(value: int | list[int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from n, [h, w] or [top, left, bottom, right]."""
    if isinstance(value, int):
        return (value,) * 4
    if len(value) == 2:
        return (value[0], value[1], value[0], value[1])
    return tuple(value)


def out_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    return rng.standard_normal(shape).astype(dt)


def random_inputs(layer: Layer, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One random array per input tensor, in its declared shape and dtype."""
    return {t.name: random_array(rng, t.shape, t.dtype) for t in layer.inputs}


def build(op: str, params: dict) -> Layer:
    protos, _ = expand(op, params)
    assert len(protos) == 1
    p = protos[0]
    return make_layer(op, p.expr, p.dims, p.dtypes, p.shapes)


def run(layer: Layer, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return evaluate(layer.expr, layer.dims, inputs, layer.output.dtype)


def work_dtype(dtype: str) -> type:
    """The exact (int64) or high-precision (float64) dtype the direct implementations compute in."""
    return np.int64 if np.dtype(dtype).kind in "iu" else np.float64


def wrap(values: np.ndarray, dtype: str) -> np.ndarray:
    """Two's-complement wrap of exact int64 values into `dtype` (written out, not left to NumPy casts)."""
    bits = np.dtype(dtype).itemsize * 8
    half = 1 << (bits - 1)
    wrapped = (values.astype(np.int64) + half) % (1 << bits) - half
    return wrapped.astype(dtype)


U32 = float(np.finfo(np.float32).eps) / 2  # float32 unit roundoff


def sum_error_bound(terms: int, abs_sum: np.ndarray) -> np.ndarray:
    """A rigorous bound on the float32 rounding error of a sum of `terms` rounded products, whatever
    the summation order: (terms + 1) * u * sum(|term|) (Higham's gamma_n, first order)."""
    return (terms + 1) * U32 * np.asarray(abs_sum, np.float64)


def assert_matches(actual: np.ndarray, expected: np.ndarray, dtype: str,
                   bound: np.ndarray | float = 0.0) -> None:
    """Integers bit-exact in `dtype` (the exact value must fit); floats within rtol=1e-5, atol=1e-6 plus
    `bound`, the (element-wise) rounding-error bound of a float32 reduction (0 for element-wise ops)."""
    dt = np.dtype(dtype)
    assert actual.dtype == dt, (actual.dtype, dt)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        assert expected.dtype == dt or (expected.min(initial=0) >= info.min
                                        and expected.max(initial=0) <= info.max)
        expected = expected.astype(dt)
        assert np.array_equal(actual, expected), (actual, expected)
    else:
        diff = np.abs(actual.astype(np.float64) - expected)
        allowed = 1e-6 + 1e-5 * np.abs(expected) + bound
        worst = np.unravel_index(np.argmax(diff - allowed), diff.shape) if diff.size else ()
        assert (diff <= allowed).all(), (f"at {worst}: actual {actual[worst]!r}, "
                                         f"expected {expected[worst]!r}, "
                                         f"allowed {np.broadcast_to(allowed, diff.shape)[worst]!r}")


# --------------------------------------------------------------------------------------------------
# Direct implementations (torch-like semantics, written from the definitions)

def direct_conv2d(x: np.ndarray, w: np.ndarray, stride, pads, dilation, groups: int, acc: str) -> np.ndarray:
    """x [N,C,H,W], w [K,C/G,R,S] -> [N,K,P,Q], zero padding, computed exactly/in float64."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G = groups
    assert C == G * Cg and K % G == 0
    Kg = K // G
    (sh, sw), (dh, dw), (top, left, bottom, right) = stride, dilation, pads
    P = out_size(H, R, sh, dh, top, bottom)
    Q = out_size(W, S, sw, dw, left, right)
    work = work_dtype(acc)
    xp = np.pad(x.astype(work), ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=0)
    xg = xp.reshape(N, G, Cg, H + top + bottom, W + left + right)
    wg = w.astype(work).reshape(G, Kg, Cg, R, S)
    out = np.zeros((N, G, Kg, P, Q), work)
    for r in range(R):
        for s in range(S):
            h0, w0 = r * dh, s * dw
            patch = xg[:, :, :, h0:h0 + sh * (P - 1) + 1:sh, w0:w0 + sw * (Q - 1) + 1:sw]
            assert patch.shape == (N, G, Cg, P, Q)
            out += np.einsum("ngcpq,gkc->ngkpq", patch, wg[:, :, :, r, s])
    return out.reshape(N, K, P, Q)


def direct_pool2d(x: np.ndarray, kernel, stride, pads, mode: str) -> np.ndarray:
    """mode 'max' (pad with -inf / the dtype minimum), 'sum' (zero padding) or 'mean' (zeros counted)."""
    N, C, H, W = x.shape
    (R, S), (sh, sw), (top, left, bottom, right) = kernel, stride, pads
    P = out_size(H, R, sh, 1, top, bottom)
    Q = out_size(W, S, sw, 1, left, right)
    if mode == "max":
        lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=lowest)
        out = np.full((N, C, P, Q), lowest, x.dtype)
    else:
        work = work_dtype(x.dtype.name)
        xp = np.pad(x.astype(work), ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=0)
        out = np.zeros((N, C, P, Q), work)
    for r in range(R):
        for s in range(S):
            patch = xp[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw]
            assert patch.shape == (N, C, P, Q)
            out = np.maximum(out, patch) if mode == "max" else out + patch
    return out / (R * S) if mode == "mean" else out


def sigmoid64(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


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


SHAPES = st.lists(st.integers(1, 4), min_size=1, max_size=5)


@SETTINGS
@given(shape=SHAPES, dtype=st.sampled_from(["int8", "int32", "float32"]), seed=SEEDS)
def test_relu(shape, dtype, seed):
    layer = build("relu", {"shape": shape, "dtype": dtype})
    assert layer.tensors["X"].shape == tuple(shape)
    inputs = random_inputs(layer, np.random.default_rng(seed))
    x = inputs["X"]
    expected = np.where(x > 0, x, np.zeros_like(x))
    result = run(layer, inputs)
    assert result.dtype == x.dtype and result.shape == x.shape
    assert np.array_equal(result, expected)


@SETTINGS
@given(shape=SHAPES, seed=SEEDS, scale=st.sampled_from([1.0, 10.0, 100.0]))
def test_sigmoid(shape, seed, scale):
    layer = build("sigmoid", {"shape": shape, "dtype": "float32"})
    inputs = random_inputs(layer, np.random.default_rng(seed))
    inputs["X"] = (inputs["X"] * np.float32(scale)).astype(np.float32)  # large scale: saturation
    assert_matches(run(layer, inputs), sigmoid64(inputs["X"]), "float32")


@SETTINGS
@given(shape=SHAPES, seed=SEEDS, scale=st.sampled_from([1.0, 10.0, 100.0]))
def test_tanh(shape, seed, scale):
    layer = build("tanh", {"shape": shape, "dtype": "float32"})
    inputs = random_inputs(layer, np.random.default_rng(seed))
    inputs["X"] = (inputs["X"] * np.float32(scale)).astype(np.float32)
    assert_matches(run(layer, inputs), np.tanh(inputs["X"].astype(np.float64)), "float32")


def _direct_binary(op: str, x: np.ndarray, y: np.ndarray, activation: str) -> np.ndarray:
    if x.dtype.kind in "iu":  # exact in int64, then an explicit two's-complement wrap to the dtype
        exact = x.astype(np.int64) + y if op == "add" else x.astype(np.int64) * y
        out = wrap(exact, x.dtype.name)
        zero = np.zeros((), out.dtype)
    else:  # float32 arithmetic, as the layer's dtype (a single op: correctly rounded either way)
        out = x + y if op == "add" else x * y
        zero = np.float32(0)
    return np.maximum(out, zero) if activation == "relu" else out


@SETTINGS
@given(op=st.sampled_from(["add", "mul"]), shape=SHAPES, dtype=st.sampled_from(["int8", "int32", "float32"]),
       activation=st.sampled_from(["none", "relu"]), seed=SEEDS)
def test_add_mul(op, shape, dtype, activation, seed):
    layer = build(op, {"shape": shape, "dtype": dtype, "activation": activation})
    assert layer.tensors["X"].shape == layer.tensors["Y"].shape == tuple(shape)
    inputs = random_inputs(layer, np.random.default_rng(seed))
    result = run(layer, inputs)
    expected = _direct_binary(op, inputs["X"], inputs["Y"], activation)
    assert result.dtype == np.dtype(dtype)
    if dtype == "float32":
        np.testing.assert_array_equal(result, expected)
    else:
        assert np.array_equal(result, expected), (result, expected)


@SETTINGS
@given(shape=SHAPES, shift=st.integers(0, 12), relu=st.booleans(), seed=SEEDS)
def test_requant(shape, shift, relu, seed):
    """Rounding right shift (half up), then saturation to int8 ([0, 127] with relu)."""
    layer = build("requant", {"shape": shape, "shift": shift, "activation": "relu" if relu else "none"})
    x = np.random.default_rng(seed).integers(-2**20, 2**20, size=tuple(shape)).astype(np.int32)
    half = (1 << shift) >> 1
    expected = np.clip((x.astype(np.int64) + half) // 2**shift, 0 if relu else -128, 127).astype(np.int8)
    result = run(layer, {"X": x})
    assert result.dtype == np.int8 and np.array_equal(result, expected)


@SETTINGS
@given(shape=SHAPES, k=st.integers(-12, 0), seed=SEEDS)
def test_dequant(shape, k, seed):
    """Integers times a (power-of-two) scale, in float32."""
    layer = build("dequant", {"shape": shape, "scale": 2.0 ** k})
    x = np.random.default_rng(seed).integers(-2**20, 2**20, size=tuple(shape)).astype(np.int32)
    result = run(layer, {"X": x})
    assert result.dtype == np.float32 and np.array_equal(result, (x.astype(np.float64) * 2.0 ** k).astype(np.float32))


@SETTINGS
@given(shape=SHAPES, k=st.integers(0, 8), relu=st.booleans(), seed=SEEDS)
def test_quant(shape, k, relu, seed):
    """Scale, round half to even, saturate to int8 ([0, 127] with relu)."""
    layer = build("quant", {"shape": shape, "scale": 2.0 ** k, "activation": "relu" if relu else "none"})
    x = np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)
    expected = np.clip(np.rint(x.astype(np.float64) * 2.0 ** k), 0 if relu else -128, 127).astype(np.int8)
    result = run(layer, {"X": x})
    assert result.dtype == np.int8 and np.array_equal(result, expected)


def _direct_gru(x, wx, hp, wh, acc: str) -> np.ndarray:
    """h' of one GRU step (gate order r, z, n), gate arithmetic in float32 as the template declares."""
    work = work_dtype(acc)
    gx = (x.astype(work) @ wx.astype(work)).astype(acc)
    gh = (hp.astype(work) @ wh.astype(work)).astype(acc)
    H = hp.shape[1]
    f32 = np.float32
    gx, gh, h = gx.astype(f32), gh.astype(f32), hp.astype(f32)
    with np.errstate(over="ignore"):  # exp overflow to inf gives the correct sigmoid limit 0
        rz = f32(1) / (f32(1) + np.exp(-(gx[:, :2 * H] + gh[:, :2 * H])))
    r, z = rz[:, :H], rz[:, H:]
    n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
    return n + z * (h - n)


def _gru_bound(x, wx, hp, wh, acc: str) -> np.ndarray | float:
    """Propagated float32 GEMM rounding (0 for integer GEMMs, which are exact): with e the row's largest
    gate pre-activation error, sigmoid' <= 1/4 and tanh' <= 1, h' = n + z*(h - n) moves by at most
    e * (2 + |gh_n|/4) through n and (|h| + 1) * e/4 through z."""
    if np.dtype(acc).kind in "iu":
        return 0.0
    H = hp.shape[1]
    ax, aw, ah, awh = (abs(a.astype(np.float64)) for a in (x, wx, hp, wh))
    e = sum_error_bound(x.shape[1], ax @ aw) + sum_error_bound(H, ah @ awh)  # [B, 3H]
    e_row = e.max(axis=1, keepdims=True)
    gh_n = abs(hp.astype(np.float64) @ wh.astype(np.float64))[:, 2 * H:]
    return e_row * (2 + (gh_n + e_row) / 4 + (ah + 1) / 4)


@SETTINGS
@given(batch=st.integers(1, 3), hidden=st.integers(1, 5), input_size=st.one_of(st.none(), st.integers(1, 6)),
       dtypes=MAC_DTYPES, seed=SEEDS)
def test_gru_cell(batch, hidden, input_size, dtypes, seed):
    dtype, acc = dtypes
    params = {"batch": batch, "hidden": hidden, "dtype": dtype, "acc_dtype": acc}
    if input_size is not None:
        params["input"] = input_size
    protos, slots = expand("gru_cell", params)
    assert [p.suffix for p in protos] == [".gx", ".gh", ".rz", ".n", ""]
    rng = np.random.default_rng(seed)
    results: dict[str, np.ndarray] = {}
    external: dict[str, np.ndarray] = {}
    for proto in protos:
        layer = make_layer("gru" + proto.suffix, proto.expr, proto.dims, proto.dtypes, proto.shapes)
        inputs = {}
        for t in layer.inputs:
            if t.name in proto.internal:
                inputs[t.name] = results[proto.internal[t.name]]
                assert inputs[t.name].shape == t.shape, (t.name, inputs[t.name].shape, t.shape)
            else:  # external: X, HP (shared by .gh and '') and the weights
                if t.name not in external:
                    external[t.name] = random_array(rng, t.shape, t.dtype)
                inputs[t.name] = external[t.name]
        results[proto.suffix] = run(layer, inputs)
    x, hp = external["X"], external["HP"]
    assert x.shape == (batch, input_size or hidden) and hp.shape == (batch, hidden)
    assert external["WX"].shape == (input_size or hidden, 3 * hidden)
    assert external["WH"].shape == (hidden, 3 * hidden)
    expected = _direct_gru(x, external["WX"], hp, external["WH"], acc)
    assert_matches(results[""], expected, "float32", _gru_bound(x, external["WX"], hp, external["WH"], acc))


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
