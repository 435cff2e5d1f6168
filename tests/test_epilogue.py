"""Epilogues: a MAC layer that stores int8. Its complete sums are requantised where they are written
back (`Layer.epilogue`, `Capability.epilogue`): a write-back never revisited moves int8, the
levels above it hold int8, partial sums stay int32, and off-chip memory must receive complete sums.
The three truths check each other: the CP-SAT model fixed to any legal point equals the cost model;
CP-SAT's optimum equals the exhaustive search's; the simulator (which converts where a move goes from
an int32 buffer into an int8 one) moves exactly the bytes the cost model charges, and its output
equals the reference's requantised result bit for bit."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_halo_padding import OS4
from test_mirror import assert_model_equals_evaluate

from mapper.mapping import cost
from mapper.mapping.binding import bind, no_binding_reason
from mapper.mapping.mapping import check_legal, moved_dtype, revisits_output
from mapper.mapping.mapping_yaml import mapping_to_yaml, parse_mapping_text
from mapper.network.compile import CompileOptions, compile_network
from mapper.program.lower import lower
from mapper.spec.acg import load_acg, parse_acg
from mapper.spec.loader import SpecError, load_yaml_text
from mapper.spec.workload import Epilogue, parse_workload, template_layer
from sim.machine import simulate
from solver import cpsat, exhaustive
from solver.space import legal, sample, spaces_of

# OS4 with a requantiser on both arrays' write-back paths and a small buffer, so that partial sums
# are sometimes written back to it (int32) before they leave complete (int8).
SMALL = OS4.replace("pj_per_mac: 0.5}", "pj_per_mac: 0.5, epilogue: true}").replace("capacity: 8192", "capacity: 48")
EPI = Epilogue("int8", shift=3, relu=True)


def small() -> object:
    return parse_acg(load_yaml_text(SMALL, "os4.yaml"))


def with_epilogue(op: str, params: dict) -> object:
    return replace(template_layer(op, params, "g"), epilogue=EPI)


def moved_per_edge(c: cost.Cost) -> Counter:
    out: Counter = Counter()
    for s in c.streams:
        out[f"{s.src}->{s.dst}"] += s.bytes
    return +out


@pytest.mark.parametrize("op, params", [("gemm", dict(M=2, N=4, K=16)), ("conv2d", dict(C=3, K=4, H=5, W=2, R=3, S=1))])
def test_sampled_mappings_move_the_charged_bytes_and_compute_the_reference(op, params) -> None:
    acg, layer = small(), with_epilogue(op, params)
    rng, mixed, checked = random.Random(11), 0, 0
    for space in spaces_of(layer, acg):
        for _ in range(400):
            m = legal(space, sample(space, rng), acg)
            if m is None:
                continue
            assert not revisits_output(m, 1)  # legal: complete sums reach off-chip memory
            result = simulate(lower(m), acg, seed=checked)
            assert result.matches_reference
            assert result.moved == moved_per_edge(cost.evaluate(m, acg))
            out = m.layer.expr.output.tensor
            kinds = {moved_dtype(m, out, k) for k in range(1, len(m.path(out)))}
            mixed += kinds == {"int8", "int32"}  # partial sums written back, then complete ones
            checked += 1
    assert checked >= 20 and mixed >= 1


@pytest.mark.parametrize("acg_name, op, params", [("small", "gemm", dict(M=2, N=4, K=16)),
                                                   ("tpu_like", "gemm", dict(M=8, N=64, K=96))])
def test_the_model_equals_evaluate_at_sampled_points(acg_name, op, params) -> None:
    acg = small() if acg_name == "small" else load_acg(acg_name)
    assert_model_equals_evaluate(with_epilogue(op, params), acg, seed=5)


@pytest.mark.parametrize("params, objective", [(dict(M=2, N=2, K=8), "energy"), (dict(M=2, N=2, K=8), "latency")])
def test_cpsat_equals_exhaustive(params, objective) -> None:
    acg, layer = small(), with_epilogue("gemm", params)
    truth, found = exhaustive.solve(layer, acg, objective), cpsat.solve(layer, acg, objective)
    assert found.status == truth.status == "optimal"
    assert found.objective == truth.objective == cost.evaluate(found.mapping, acg).objective(objective)
    assert simulate(lower(found.mapping), acg, seed=2).matches_reference


def test_the_output_leaves_in_int8_and_costs_less() -> None:
    acg = load_acg("tpu_like")
    plain = template_layer("gemm", dict(M=64, N=64, K=256), "g")
    found = cpsat.solve(replace(plain, epilogue=EPI), acg, "energy")
    c = cost.evaluate(found.mapping, acg)
    to_dram = sum(s.bytes for s in c.streams if s.dst == "DRAM")
    assert to_dram == 64 * 64  # one byte per output, written once
    assert c.energy < cost.evaluate(cpsat.solve(plain, acg, "energy").mapping, acg).energy
    assert simulate(lower(found.mapping), acg, seed=1).matches_reference


def test_partial_sums_may_not_reach_off_chip_memory() -> None:
    acg = small()
    layer = with_epilogue("gemm", dict(M=2, N=4, K=16))
    m = cpsat.solve(layer, acg, "energy").mapping
    assert m.loops[0] == (("k", 4),) and dict(m.spatial)["n"] == 4
    spilled = replace(m, loops=((("k", 4), ("n", 2)), *m.loops[1:]), spatial=(("m", 2), ("n", 2), ("k", 4)))
    assert revisits_output(spilled, 1)  # the k loop runs outside an n loop above the buffer
    assert check_legal(spilled, acg) == [
        "the epilogue of C needs its sums complete where they reach dram, but partial sums are written back there"]


def test_an_epilogue_needs_a_capability_with_one() -> None:
    layer = with_epilogue("gemm", dict(M=4, N=4, K=4))
    acg = load_acg("tiny")
    assert bind(layer, acg) == []
    assert "through an epilogue, the capability has none" in no_binding_reason(layer, acg)


def test_the_mapping_file_keeps_the_epilogue() -> None:
    acg = small()
    m = cpsat.solve(with_epilogue("gemm", dict(M=2, N=4, K=8)), acg, "latency").mapping
    again = parse_mapping_text(mapping_to_yaml(m), "m.yaml", acg)
    assert again.layer.epilogue == EPI and again == m


@pytest.mark.parametrize("entry, where, message", [
    ("{name: p, op: relu, params: {shape: [4]}, epilogue: {dtype: int8}}", "epilogue:", "not a MAC"),
    ("{name: g, op: gemm, params: {M: 2, N: 2, K: 2}, epilogue: {dtype: int32}}", "epilogue.dtype:", "narrower"),
    ("{name: g, op: gemm, params: {M: 2, N: 2, K: 2}, epilogue: {dtype: int8, shift: 40}}", "epilogue.shift:",
     "below 32"),
    ("{name: g, op: gemm, params: {M: 2, N: 2, K: 2}, epilogue: {dtype: int8, round: up}}", "epilogue", "round"),
])
def test_a_bad_epilogue_names_file_line_and_field(entry, where, message) -> None:
    text = f"name: w\nlayers:\n  - {entry}\n"
    with pytest.raises(SpecError) as info:
        parse_workload(load_yaml_text(text, "w.yaml"))
    assert str(info.value).startswith("w.yaml:3: layers[0]." + where) and message in str(info.value)


def test_a_workload_layer_declares_its_epilogue() -> None:
    text = "name: w\nlayers:\n  - {name: g, op: gemm, params: {M: 2, N: 2, K: 2}, epilogue: {dtype: int8, shift: 4}}\n"
    (layer,) = parse_workload(load_yaml_text(text, "w.yaml")).layers
    assert layer.epilogue == Epilogue("int8", 4, False) and layer.stored_dtype("C") == "int8"
    assert layer.output.dtype == "int32"  # the accumulator


def test_whole_network_compilation_says_it_does_not_take_epilogues_yet() -> None:
    text = "name: w\nlayers:\n  - {name: g, op: gemm, params: {M: 2, N: 2, K: 2}, epilogue: {dtype: int8}}\n"
    wl = parse_workload(load_yaml_text(text, "w.yaml"))
    with pytest.raises(SpecError, match="layer g declares an epilogue"):
        compile_network(wl, load_acg("tpu_like"), CompileOptions())


@settings(max_examples=12, deadline=None)
@given(m=st.integers(1, 4), n=st.integers(1, 8), k=st.integers(1, 40), shift=st.integers(0, 12), relu=st.booleans(),
       seed=st.integers(0, 2**16))
def test_any_legal_mapping_of_any_gemm_stores_the_requantised_reference(m, n, k, shift, relu, seed) -> None:
    """Property: whatever the shape, the epilogue and the legal mapping drawn, the simulator's int8
    output equals the reference's requantised one and each edge moves the bytes the model charges."""
    acg = small()
    layer = replace(template_layer("gemm", dict(M=m, N=n, K=k), "g"), epilogue=Epilogue("int8", shift, relu))
    rng = random.Random(seed)
    spaces = spaces_of(layer, acg)
    for _ in range(200):
        space = rng.choice(spaces)
        mapping = legal(space, sample(space, rng), acg)
        if mapping is not None:
            break
    else:
        return  # no legal mapping drawn (the buffer is small): nothing to check
    result = simulate(lower(mapping), acg, seed=seed)
    assert result.matches_reference and result.output.dtype.name == "int8"
    assert result.moved == moved_per_edge(cost.evaluate(mapping, acg))
