"""Direct NumPy implementations of the op templates and the helpers the reference tests share.

Used by tests/test_reference_ops.py (MAC and pooling templates, plain cases) and
tests/test_reference_eltwise_ops.py (element-wise templates and the GRU cell); the contract they
test is stated in test_reference_ops.py. Nothing here uses `sim.reference` except `run`, which
evaluates a layer with it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from mapper.spec.ops import expand
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

SHAPES = st.lists(st.integers(1, 4), min_size=1, max_size=5)

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


