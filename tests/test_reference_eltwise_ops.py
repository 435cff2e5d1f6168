"""The reference evaluator against direct NumPy implementations: element-wise templates and the GRU cell.

The contract and the comparison rules are those of tests/test_reference_ops.py (the MAC and pooling
templates); the shared helpers are in tests/direct_ops.py.
"""

from __future__ import annotations

import numpy as np
from direct_ops import (
    MAC_DTYPES,
    SEEDS,
    SETTINGS,
    SHAPES,
    assert_matches,
    build,
    random_array,
    random_inputs,
    run,
    sigmoid64,
    sum_error_bound,
    work_dtype,
    wrap,
)
from hypothesis import given
from hypothesis import strategies as st

from mapper.spec.ops import expand
from mapper.spec.workload import make_layer


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
