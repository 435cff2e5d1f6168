"""Instruction mapping: the candidate bindings of layers on capabilities."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.mapping.binding import MAX_FUSED, bind, match_tensors, no_binding_reason, utilization_bound
from mapper.spec.acg import load_acg
from mapper.spec.ops import TemplateError
from mapper.spec.workload import Layer, make_layer, template_layer

GENESYS, TINY, HVX = load_acg("genesys"), load_acg("tiny"), load_acg("hvx_like")


def layer_from(op: str, **params) -> Layer:
    return template_layer(op, params)


def test_depthwise_binds_to_array_poorly_and_to_simd_fully() -> None:
    dw = layer_from("depthwise_conv2d", C=64, H=56, W=56, R=3, pad=1)
    found = bind(dw, GENESYS)
    array = [b for b in found if b.capability == "mvmul"]
    simd = [b for b in found if b.capability == "vmac"]
    assert array and simd
    cap = GENESYS.capability("mvmul")
    # Nothing of a depthwise conv is indexed by both the weight and the output but not the input, so one
    # of the array's two fixed dims is left to the 3x3 window at best: at most 9/32 of the array.
    assert max(utilization_bound(b, dw, cap) for b in array) <= 9 / 32
    assert all(b.dim_map["c"] is None for b in array)  # channels can only loop around the array
    best_simd = max(simd, key=lambda b: utilization_bound(b, dw, GENESYS.capability("vmac")))
    assert best_simd.dim_map["c"] == "i" and utilization_bound(best_simd, dw, GENESYS.capability("vmac")) == 1


def test_pointwise_conv_is_a_gemm() -> None:
    """ISA Mapper's 'extract GEMM out of depthwise-separable conv': n,p,q -> rows, c -> k, k -> columns."""
    pw = layer_from("conv2d", C=144, K=24, H=56, W=56, R=1)
    found = bind(pw, GENESYS)
    gemm_like = {"c": "k", "k": "n", "p": "m", "q": "m", "n": None, "r": None, "s": None}
    assert any(b.dim_map == gemm_like and b.operand_of == {"I": "A", "W": "B", "O": "C"} for b in found)


def test_conv_fuses_window_into_reduction() -> None:
    conv = layer_from("conv2d", C=3, K=64, H=32, W=32, R=7, stride=2, pad=3)
    found = bind(conv, GENESYS)
    assert any(set(b.fused("k")) == {"c", "r", "s"} and set(b.fused("m")) == {"p", "q"} for b in found)


def test_elementwise_and_pooling() -> None:
    add = layer_from("add", shape=[1, 64, 8, 8], dtype="int32")
    found = bind(add, GENESYS)
    assert {b.capability for b in found} == {"vadd"}
    assert all(set(b.operand_of.values()) == {"X", "Y", "Z"} for b in found)
    pool = layer_from("max_pool2d", C=64, H=16, W=16, R=3, stride=2, pad=1)
    found = bind(pool, GENESYS)
    assert {b.capability for b in found} == {"vmax_acc"}
    assert all(b.dim_map["r"] is None and b.dim_map["s"] is None for b in found)  # windows loop


def test_non_commutative_ops_keep_their_order() -> None:
    cap_acg = load_acg("tiny")
    sub = make_layer("sub", "Z[i] = X[i] - Y[i]", {"i": 8}, {"X": "int32", "Y": "int32", "Z": "int32"})
    assert not bind(sub, cap_acg)  # tiny has no subtraction
    rev = make_layer("rev", "O[i] = B[i] + A[i]", {"i": 8}, {"A": "int32", "B": "int32", "O": "int32"})
    maps = [m for m in match_tensors(rev, cap_acg.capability("vadd"))]
    assert {"O": "Z", "B": "X", "A": "Y"} in maps and {"O": "Z", "A": "X", "B": "Y"} in maps


def test_placements_list_every_eligible_storage() -> None:
    add = layer_from("add", shape=[64], dtype="int32")
    b = bind(add, GENESYS)[0]
    ends = {p[-1] for p in b.paths["X"]}
    assert ends == {"VMEM1", "VMEM2"} and all(p[0] == "DRAM" for p in b.paths["X"])
    conv = layer_from("conv2d", C=8, K=8, H=8, W=8, R=3)
    b = bind(conv, GENESYS)[0]
    assert ("DRAM", "OBUF") in b.paths["O"]  # outputs: listed from off-chip, written back along it


def test_reasons_when_nothing_binds() -> None:
    pool = layer_from("max_pool2d", C=8, H=8, W=8, R=2)
    assert "max-reduction" in no_binding_reason(pool, load_acg("tpu_like"))
    fp = layer_from("gemm", M=4, N=4, K=4, dtype="float32", acc_dtype="float32")
    assert not bind(fp, GENESYS)
    assert "input A is float32, operand A takes int8" in no_binding_reason(fp, GENESYS)


# --- the enumeration equals a brute force over every dim assignment ---------------------------------

def brute_force(layer: Layer, acg) -> set:
    """Every (capability, tensor map, dims) consistent by the definition, by trying all assignments."""
    out = set()
    for cap in acg.capabilities:
        cap_dims = cap.expr.dims
        for tensors in match_tensors(layer, cap):
            accesses = [layer.expr.output, *layer.expr.accesses]
            cap_accesses = {a.tensor: a for a in [cap.expr.output, *cap.expr.accesses]}
            from mapper.mapping.binding import dtype_problem
            if dtype_problem(layer, cap, tensors):
                continue
            for assign in itertools.product([None, *cap_dims], repeat=len(layer.expr.dims)):
                dims = dict(zip(layer.expr.dims, assign, strict=True))
                ok = all(
                    (e in cap_accesses[tensors[a.tensor]].dims) == (d in a.dims)
                    for a in accesses for d, e in dims.items() if e is not None)
                ok = ok and all(layer.dims[d] > 1 for d, e in dims.items() if e is not None)
                ok = ok and all(sum(1 for e2 in assign if e2 == e) <= MAX_FUSED for e in cap_dims)
                # never leave a capability dim empty when some layer dim could run on it
                for e in cap_dims:
                    if e not in assign:
                        could = [d for d in layer.expr.dims if layer.dims[d] > 1 and all(
                            (e in cap_accesses[tensors[a.tensor]].dims) == (d in a.dims) for a in accesses)]
                        ok = ok and not could
                if ok:
                    out.add((cap.name, tuple(sorted(tensors.items())), tuple(dims.items())))
    return out


layers = st.one_of(
    st.builds(lambda c, k, h, r, s, g: ("conv2d", dict(C=c * g, K=k * g, H=h, W=h, R=r, stride=s, groups=g)),
              st.integers(1, 4), st.integers(1, 4), st.integers(3, 6), st.integers(1, 3), st.integers(1, 2),
              st.integers(1, 2)),
    st.builds(lambda c, h: ("depthwise_conv2d", dict(C=c, H=h, W=h, R=3, pad=1)), st.integers(1, 8),
              st.integers(2, 6)),
    st.builds(lambda m, n, k: ("gemm", dict(M=m, N=n, K=k)), st.integers(1, 9), st.integers(1, 9),
              st.integers(1, 9)),
    st.builds(lambda b, m: ("batched_matmul", dict(B=b, M=m, N=3, K=2)), st.integers(1, 3), st.integers(1, 4)),
    st.builds(lambda c, h: ("max_pool2d", dict(C=c, H=h, W=h, R=2)), st.integers(1, 5), st.integers(2, 6)),
    st.builds(lambda n: ("add", dict(shape=[2, n], dtype="int32")), st.integers(1, 6)),
)


@settings(max_examples=40, deadline=None)
@given(spec=layers, acg=st.sampled_from([GENESYS, TINY, HVX]))
def test_enumeration_equals_brute_force(spec, acg) -> None:
    op, params = spec
    try:
        layer = layer_from(op, **params)
    except TemplateError:
        return
    found = {(b.capability, tuple(sorted(b.tensors)), b.dims) for b in bind(layer, acg)}
    assert found == brute_force(layer, acg)
    for b in bind(layer, acg):  # and every binding keeps each operand indexed by its own dims
        cap = acg.capability(b.capability)
        for a in [layer.expr.output, *layer.expr.accesses]:
            cap_dims = cap.expr.access_of(b.operand_of[a.tensor]).dims
            for d in b.spatial_dims:
                assert (d in a.dims) == (b.dim_map[d] in cap_dims)


@pytest.mark.parametrize("acg", [GENESYS, HVX, load_acg("tpu_like")], ids=lambda a: a.name)
def test_every_mac_layer_of_the_evaluation_set_binds(acg) -> None:
    from mapper.spec.workload import load_workload

    for layer in load_workload("covenant14").layers:
        if layer.expr.is_mac:
            assert bind(layer, acg), (acg.name, layer.name, no_binding_reason(layer, acg))
