"""The Mapping format: exact YAML round trip, and check_legal naming every violated resource."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.mapping.binding import bind
from mapper.mapping.mapping import (
    check_legal,
    footprint,
    greedy_mapping,
    simple_mappings,
    storage_demand,
    with_predicted,
)
from mapper.mapping.mapping_yaml import load_mapping, mapping_to_yaml, parse_mapping_text, write_mapping
from mapper.spec.acg import load_acg
from mapper.spec.loader import SpecError
from mapper.spec.notation import parse_tensor_expr
from mapper.spec.ops import TemplateError
from mapper.spec.workload import Layer, template_layer

ACGS = {name: load_acg(name) for name in ("tiny", "genesys", "hvx_like", "tpu_like")}


def layer_from(op: str, **params) -> Layer:
    return template_layer(op, params)


def conv_on(acg_name: str = "genesys", **params):
    layer = layer_from("conv2d", **({"C": 16, "K": 64, "H": 28, "W": 28, "R": 3, "pad": 1} | params))
    acg = ACGS[acg_name]
    return layer, acg, greedy_mapping(layer, bind(layer, acg)[0], acg)


def test_footprint_counts_halos() -> None:
    access = parse_tensor_expr("O[p] += I[2*p+r] * W[r]").accesses[0]
    assert footprint(access, {"p": 4, "r": 3}, (100,)) == (9,)
    assert footprint(access, {"p": 4, "r": 3}, (5,)) == (5,)  # clipped to the tensor


small_layers = st.one_of(
    st.builds(lambda c, k, h, r, s: ("conv2d", dict(C=c, K=k, H=h, W=h, R=r, stride=s, pad=r // 2)),
              st.integers(1, 12), st.integers(1, 12), st.integers(3, 12), st.sampled_from([1, 3]),
              st.integers(1, 2)),
    st.builds(lambda c, h: ("depthwise_conv2d", dict(C=c, H=h, W=h, R=3, pad=1)), st.integers(1, 12),
              st.integers(2, 10)),
    st.builds(lambda m, n, k: ("gemm", dict(M=m, N=n, K=k)), st.integers(1, 40), st.integers(1, 40),
              st.integers(1, 40)),
    st.builds(lambda c, h: ("max_pool2d", dict(C=c, H=h, W=h, R=2)), st.integers(1, 12), st.integers(2, 10)),
    st.builds(lambda n: ("add", dict(shape=[3, n], dtype="int32")), st.integers(1, 40)),
)


@settings(max_examples=40, deadline=None)
@given(spec=small_layers, acg_name=st.sampled_from(sorted(ACGS)), grow=st.booleans(), data=st.data())
def test_greedy_mappings_are_legal_and_round_trip(spec, acg_name, grow, data) -> None:
    op, params = spec
    try:
        layer = layer_from(op, **params)
    except TemplateError:
        return
    acg = ACGS[acg_name]
    bindings = bind(layer, acg)
    if not bindings:
        return
    binding = data.draw(st.sampled_from(bindings))
    m = greedy_mapping(layer, binding, acg, grow=grow)
    if m is None:
        return
    assert check_legal(m, acg) == []
    m = with_predicted(m, cycles=123.0, energy_pj=4.5)
    assert parse_mapping_text(mapping_to_yaml(m), "m.yaml") == m


def test_simple_mappings_cover_every_binding_that_fits() -> None:
    layer = layer_from("depthwise_conv2d", C=16, H=8, W=8, R=3, pad=1)
    found = simple_mappings(layer, ACGS["genesys"])
    assert {m.binding.capability for m in found} == {"mvmul", "vmac"}
    assert all(check_legal(m, ACGS["genesys"]) == [] for m in found)


def test_over_capacity_names_the_buffer_and_the_bytes() -> None:
    layer, acg, m = conv_on()
    bigger = replace(m, loops=(tuple(), tuple((d, layer.dims[d] // m.spatial_of(d)) for d in layer.dims
                                              if layer.dims[d] // m.spatial_of(d) > 1)))
    problems = check_legal(bigger, acg)
    over = [p for p in problems if p.startswith("OBUF: needs")]
    assert over, problems
    need = sum(n for _, n in storage_demand(bigger)["OBUF"])
    assert f"OBUF: needs {need} B" in over[0] and "B for tensor O (double-buffered)" in over[0]
    assert over[0].endswith("holds 262144 B")


def test_extent_and_cover_violations() -> None:
    layer, acg, m = conv_on()
    wide = replace(m, spatial=tuple((d, 64 if d == "k" else s) for d, s in m.spatial))
    assert any("mvmul: dim n holds 32, the instruction needs 64" in p for p in check_legal(wide, acg))
    short = replace(m, loops=((),) + m.loops[1:])
    problems = check_legal(short, acg)
    assert any(p.startswith("dim ") and "factors cover" in p for p in problems), problems
    past = replace(m, loops=(m.loops[0] + (("k", 4),),) + m.loops[1:])
    assert any("iterates past the extent" in p for p in check_legal(past, acg))
    temporal = replace(m, spatial=m.spatial + (("s", 3),))
    assert any("dim s is temporal" in p for p in check_legal(temporal, acg))


def test_placement_edges_and_buffering_violations() -> None:
    layer, acg, m = conv_on()
    # Outputs written back through VMEM1: partial sums of a split reduction cannot return VMEM1 -> OBUF.
    assert set(m.binding.fused("k")) == {"c", "r"}
    via_vmem = replace(m, placement=tuple((t, ("DRAM", "VMEM1", "OBUF") if t == "O" else p)
                                          for t, p in m.placement),
                       loops=((("r", 3), ("q", 7)), (("k", 2), ("q", 4), ("s", 3)), ()),
                       spatial=(("k", 32), ("p", 28), ("c", 16)), double_buffer=())
    problems = check_legal(via_vmem, acg)
    assert any("partial sums of O return from VMEM1 to OBUF" in p and "no edge VMEM1->OBUF" in p
               for p in problems), problems
    off_path = replace(m, placement=tuple((t, ("DRAM", "WBUF") if t == "I" else p) for t, p in m.placement))
    assert any("placement DRAM->WBUF is not one of its storage paths" in p for p in check_legal(off_path, acg))
    hvx_layer = layer_from("gemm", M=8, N=32, K=8)
    hvx = ACGS["hvx_like"]
    hm = greedy_mapping(hvx_layer, bind(hvx_layer, hvx)[0], hvx)
    bad = replace(hm, double_buffer=hm.double_buffer + (("A", "VRF"),))
    assert any("VRF does not support double buffering" in p for p in check_legal(bad, hvx))


def test_mapping_files(tmp_path: Path) -> None:
    layer, acg, m = conv_on()
    path = tmp_path / "m.yaml"
    write_mapping(m, path)
    assert load_mapping(path) == m and list(tmp_path.iterdir()) == [path]
    text = path.read_text()
    with pytest.raises(SpecError, match="for ACG 'genesys'"):
        parse_mapping_text(text, "m.yaml", ACGS["tiny"])
    with pytest.raises(SpecError, match=r"m.yaml:\d+: binding: not a valid binding"):
        parse_mapping_text(text.replace("capability: mvmul", "capability: vmac"), "m.yaml")
    whole = replace(m, loops=((), tuple((d, layer.dims[d] // m.spatial_of(d)) for d in layer.dims
                                        if layer.dims[d] // m.spatial_of(d) > 1)))
    with pytest.raises(SpecError, match="illegal mapping: OBUF: needs"):
        parse_mapping_text(mapping_to_yaml(whole), "m.yaml")
    with pytest.raises(SpecError, match=r"m.yaml:\d+: format: expected 'covenant-mapping/1'"):
        parse_mapping_text(text.replace("covenant-mapping/1", "covenant-mapping/9"), "m.yaml")
    with pytest.raises(SpecError, match=r"loops\[0\]\[0\]"):
        parse_mapping_text(text.replace("loops:\n- - [", "loops:\n- - [x, "), "m.yaml")
