"""The multi-layer `softmax` and `lrn` templates against independent NumPy implementations.

Each template's layers are evaluated by `sim.reference.evaluate` in order (internal operands wired from
earlier layers' results); the result is compared with a direct float64 implementation written from
the ONNX definitions (Softmax over the last axis; LRN across channels with a zero-padded window).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.spec.ops import TemplateError, expand
from mapper.spec.workload import make_layer
from sim.reference import evaluate

SETTINGS = settings(max_examples=20, deadline=None)


def run_template(op: str, params: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's result by suffix; the activation slot's operand reads `x`."""
    protos, slots = expand(op, params)
    fed = {suffix: operand for entries in slots.values() for suffix, operand in entries}
    results: dict[str, np.ndarray] = {}
    for proto in protos:
        layer = make_layer(op + proto.suffix, proto.expr, proto.dims, proto.dtypes, proto.shapes)
        inputs = {}
        for t in layer.inputs:
            if t.name in proto.internal:
                inputs[t.name] = results[proto.internal[t.name]]
            else:
                assert fed.get(proto.suffix) == t.name, (proto.suffix, t.name)
                inputs[t.name] = x
            assert inputs[t.name].shape == t.shape and inputs[t.name].dtype == np.dtype(t.dtype)
        results[proto.suffix] = evaluate(layer.expr, layer.dims, inputs, layer.output.dtype)
    return results


def direct_softmax(x: np.ndarray, scale: float) -> np.ndarray:
    z = x.astype(np.float64) * scale
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def direct_lrn(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """ONNX LRN: square_sum[n,c] = sum of x[n,i]^2 for i in [c - floor((size-1)/2), c + ceil((size-1)/2)]."""
    x64 = x.astype(np.float64)
    C = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    square_sum = np.zeros_like(x64)
    for c in range(C):
        square_sum[:, c] = (x64[:, max(0, c - lo):min(C - 1, c + hi) + 1] ** 2).sum(axis=1)
    return x64 / (bias + alpha / size * square_sum) ** beta


@SETTINGS
@given(m=st.integers(1, 4), n=st.integers(1, 40), dtype=st.sampled_from(["int8", "int32", "float32"]),
       scale=st.sampled_from([0.0625, 0.01, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_softmax(m, n, dtype, scale, seed):
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        x = (rng.standard_normal((m, n)) * 3).astype(dtype)
    else:
        hi = 127 if dtype == "int8" else 2000
        x = rng.integers(-hi, hi, (m, n), endpoint=True).astype(dtype)
    results = run_template("softmax", {"M": m, "N": n, "scale": scale, "dtype": dtype}, x)
    assert list(results) == [".max", ".exp", ".sum", ""]
    assert np.array_equal(results[".max"], x.max(axis=1))  # exact, in the input dtype
    z = results[""]
    assert z.dtype == np.float32 and z.shape == (m, n)
    np.testing.assert_allclose(z, direct_softmax(x, scale), rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, rtol=1e-5)


@SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 9), h=st.integers(1, 4), w=st.integers(1, 4),
       size=st.integers(1, 6), alpha=st.sampled_from([1e-4, 0.01, 0.5]), beta=st.sampled_from([0.75, 1.0, 0.5]),
       bias=st.sampled_from([1.0, 2.0]), seed=st.integers(0, 2**32 - 1))
def test_lrn_int8(n, c, h, w, size, alpha, beta, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 127, (n, c, h, w), endpoint=True).astype(np.int8)
    params = {"shape": [n, c, h, w], "size": size, "alpha": alpha, "beta": beta, "bias": bias}
    results = run_template("lrn", params, x)
    assert list(results) == [".sq", ".sum", ".den", ".div", ""]
    # the integer stages are exact: squares and their window sums in int32
    x64 = x.astype(np.int64)
    assert np.array_equal(results[".sq"], x64 * x64)
    expected = direct_lrn(x, size, alpha, beta, bias)
    np.testing.assert_allclose(results[".div"], expected, rtol=1e-5, atol=1e-5)
    y = results[""]
    assert y.dtype == np.int8
    # the int8 result is the float result rounded (within one unit where float32 rounding straddles .5)
    assert np.abs(y.astype(np.float64) - np.clip(expected, -128, 127)).max(initial=0) <= 0.5 + 1e-4
    assert (np.abs(y.astype(np.int64)) <= np.abs(x64)).all()  # bias >= 1: normalising never grows


@pytest.mark.parametrize("size", [3, 4, 5])
def test_lrn_float32_ends_at_the_division(size):
    rng = np.random.default_rng(size)
    x = rng.standard_normal((1, 7, 3, 2)).astype(np.float32)
    params = {"shape": [1, 7, 3, 2], "size": size, "alpha": 0.1, "beta": 0.75, "bias": 2.0, "dtype": "float32"}
    results = run_template("lrn", params, x)
    assert list(results) == [".sq", ".sum", ".den", ""]
    np.testing.assert_allclose(results[""], direct_lrn(x, size, 0.1, 0.75, 2.0), rtol=1e-5, atol=1e-6)


def test_lrn_q_scales_the_int8_result():
    x = np.full((1, 3, 1, 1), 10, np.int8)
    plain = run_template("lrn", {"shape": [1, 3, 1, 1], "size": 3, "alpha": 0.03, "beta": 1.0}, x)[""]
    doubled = run_template("lrn", {"shape": [1, 3, 1, 1], "size": 3, "alpha": 0.03, "beta": 1.0, "q": 2}, x)[""]
    # centre channel: 10 / (1 + 0.01 * 300) = 2.5 -> 2 (half to even); doubled: 5
    assert plain[0, 1, 0, 0] == 2 and doubled[0, 1, 0, 0] == 5


@pytest.mark.parametrize("op,params,bad", [
    ("softmax", {"M": 1, "N": 4, "scale": 0}, "scale"),
    ("softmax", {"M": 1, "N": 4, "scale": "big"}, "scale"),
    ("lrn", {"shape": [1, 4, 2], "size": 3}, "shape"),
    ("lrn", {"shape": [1, 4, 2, 2], "size": 3, "beta": -1}, "beta"),
])
def test_bad_params_name_the_parameter(op, params, bad):
    with pytest.raises(TemplateError) as info:
        expand(op, params)
    assert info.value.param == bad
