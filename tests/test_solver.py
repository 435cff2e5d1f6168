"""The mapper: CP-SAT's optimum equals exhaustive search, its objective equals the cost model of the
decoded mapping, every mapping it returns simulates bit-exactly, runs are deterministic, and
infeasible layers are explained."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from zigzag_acgs import shipped_with_mac

from mapper.mapping.cost import evaluate, rank
from mapper.mapping.mapping import check_legal, greedy_mapping
from mapper.program.lower import lower
from mapper.spec.acg import load_acg, parse_acg
from mapper.spec.loader import load_yaml_text
from mapper.spec.ops import TemplateError
from mapper.spec.workload import Layer, make_layer, template_layer
from sim.machine import simulate
from solver import NoMapping, cpsat, exhaustive, random_search
from solver.space import layer_spaces

TINY = load_acg("tiny")


def layer_from(op: str, **params) -> Layer:
    return template_layer(op, params)


def tiny_variant(ibuf: int, wbuf: int, obuf: int, vmem: int, bw: int, db: bool, array: int, winst: int = 1,
                 setup: int = 0, interval: str = "", power: float = 0.0):
    """tiny.yaml with drawn buffer sizes, bandwidths, buffering and array size; WBUF replicated
    `winst` times (per-PE registers: `wbuf` bytes each); a set-up latency on the DRAM edges, an
    initiation interval for both capabilities' instructions, static power."""
    dbl = str(db).lower()
    pipelined = f", interval: '{interval}'" if interval else ""
    pool_interval = ", interval: 1" if interval else ""
    text = f"""
name: tiny_variant
power: {power}
nodes:
  DRAM: {{kind: storage, capacity: 16MiB, offchip: true, read_pj_per_byte: 80, write_pj_per_byte: 80}}
  IBUF: {{kind: storage, capacity: {ibuf}, double_buffer: {dbl}, read_pj_per_byte: 0.5, write_pj_per_byte: 0.5}}
  WBUF: {{kind: storage, capacity: {wbuf}, instances: {winst}, double_buffer: true, read_pj_per_byte: 0.5,
         write_pj_per_byte: 0.5}}
  OBUF: {{kind: storage, capacity: {obuf}, double_buffer: {dbl}, read_pj_per_byte: 0.75, write_pj_per_byte: 0.5}}
  VMEM: {{kind: storage, capacity: {vmem}, double_buffer: true, read_pj_per_byte: 0.5, write_pj_per_byte: 0.5}}
  ARRAY:
    kind: compute
    capabilities:
      - {{name: mvmul, expr: "C[m,n] += A[m,k] * B[k,n]", dims: {{k: {array}, n: {array}}}, cycles: "m + 3"{pipelined},
         operands: {{A: IBUF, B: WBUF, C: OBUF}}, dtypes: {{A: int8, B: int8, C: int32}}, pj_per_mac: 0.25}}
  SIMD:
    kind: compute
    capabilities:
      - {{name: vmax_acc, expr: "Z[i] max= X[i]", dims: {{i: 4}}, cycles: 2, pj_per_op: 0.5{pool_interval},
         operands: {{X: VMEM, Z: VMEM}}, dtypes: {{X: int32, Z: int32}}}}
      - {{name: vadd, expr: "Z[i] = X[i] + Y[i]", dims: {{i: 4}}, cycles: 1, pj_per_op: 0.5,
         operands: {{X: VMEM, Y: VMEM, Z: VMEM}}, dtypes: {{X: int32, Y: int32, Z: int32}}}}
edges:
  - {{from: DRAM, to: IBUF, bytes_per_cycle: {bw}, latency: {setup}}}
  - {{from: DRAM, to: WBUF, bytes_per_cycle: 4}}
  - {{from: DRAM, to: OBUF, bytes_per_cycle: {bw}, latency: {setup}}}
  - {{from: OBUF, to: DRAM, bytes_per_cycle: 4, latency: {setup}}}
  - {{from: DRAM, to: VMEM, bytes_per_cycle: {bw}, latency: {setup}}}
  - {{from: VMEM, to: DRAM, bytes_per_cycle: 2}}
"""
    return parse_acg(load_yaml_text(text, "tiny_variant.yaml"))


acgs = st.builds(tiny_variant, st.sampled_from([16, 32, 64, 128]), st.sampled_from([16, 32, 64]),
                 st.sampled_from([32, 64, 128, 256]), st.sampled_from([32, 64, 128]), st.sampled_from([1, 2, 4, 8]),
                 st.booleans(), st.sampled_from([2, 4]), st.sampled_from([1, 1, 4]))

small_layers = st.one_of(
    st.builds(lambda m, n, k: ("gemm", dict(M=m, N=n, K=k)), st.sampled_from([1, 2, 4, 6, 8]),
              st.sampled_from([2, 4, 8]), st.sampled_from([2, 3, 4, 8])),
    st.builds(lambda c, k, h, s: ("conv2d", dict(C=c, K=k, H=h, W=h, R=3, stride=s, pad=1)),
              st.sampled_from([1, 2, 4]), st.sampled_from([2, 4]), st.sampled_from([2, 4]), st.integers(1, 2)),
    st.builds(lambda c, h: ("max_pool2d", dict(C=c, H=h, W=h, R=2, stride=2, dtype="int32")),
              st.sampled_from([1, 2, 4]), st.sampled_from([2, 4])),
    st.builds(lambda n: ("add", dict(shape=[2, n], dtype="int32")), st.sampled_from([2, 4, 8, 12])),
)


@settings(max_examples=25, deadline=None)
@given(spec=small_layers, acg=acgs, objective=st.sampled_from(["latency", "energy"]))
def test_cpsat_optimum_equals_exhaustive_and_simulates(spec, acg, objective) -> None:
    op, params = spec
    try:
        layer = layer_from(op, **params)
    except TemplateError:
        return
    spaces = layer_spaces(layer, acg)
    assume(spaces and sum(s.size() for s in spaces) <= 12_000)
    truth = exhaustive.solve(layer, acg, objective)
    found = cpsat.solve(layer, acg, objective)
    assert found.status == truth.status
    if truth.mapping is None:
        return
    assert found.status == "optimal" and found.gap == 0
    assert found.objective == truth.objective
    # Lexicographic: ties of the objective broken by the other figure, the same as exhaustive search's.
    assert found.tie_break == "optimal"
    assert rank(evaluate(found.mapping, acg), objective) == rank(evaluate(truth.mapping, acg), objective)
    # The model's objective is the cost model's figure for the decoded mapping, exactly.
    assert evaluate(found.mapping, acg).objective(objective) == found.objective
    assert check_legal(found.mapping, acg) == []
    result = simulate(lower(found.mapping), acg, seed=3)
    assert result.matches_reference


SETUP_CASES = [(dict(setup=5), "gemm", dict(M=4, N=4, K=4), "latency"),
               (dict(setup=3, interval="m"), "gemm", dict(M=6, N=2, K=4), "latency"),
               (dict(setup=4, interval="m", power=0.3), "gemm", dict(M=8, N=2, K=4), "energy"),
               (dict(setup=6, interval="m"), "max_pool2d", dict(C=4, H=4, W=4, R=2, stride=2, dtype="int32"),
                "latency"),
               (dict(setup=2, power=0.7), "add", dict(shape=[2, 8], dtype="int32"), "energy")]


@pytest.mark.parametrize("extra, op, params, objective", SETUP_CASES)
def test_cpsat_is_exact_with_setup_latency_intervals_and_power(extra, op, params, objective) -> None:
    """Per-transfer set-up on the DRAM edges, initiation intervals and static power: CP-SAT's optimum
    equals exhaustive search's, its objective the cost model's, and the mapping simulates."""
    acg = tiny_variant(64, 32, 128, 128, 2, True, 2, **extra)
    layer = layer_from(op, **params)
    truth, found = exhaustive.solve(layer, acg, objective), cpsat.solve(layer, acg, objective)
    assert found.status == "optimal" and found.objective == truth.objective
    assert rank(evaluate(found.mapping, acg), objective) == rank(evaluate(truth.mapping, acg), objective)
    assert evaluate(found.mapping, acg).objective(objective) == found.objective == found.model_objective
    assert simulate(lower(found.mapping), acg, seed=1).matches_reference


@pytest.mark.parametrize("op, params", [
    ("conv2d", dict(C=16, K=32, H=14, W=14, R=3, pad=1)),
    ("conv2d", dict(C=8, K=16, H=16, W=16, R=3, stride=2, pad=1)),
    ("depthwise_conv2d", dict(C=32, H=14, W=14, R=3, pad=1)),
    ("gemm", dict(M=12, N=40, K=96)),
])
def test_cpsat_beats_every_simple_mapping_and_validates(op, params) -> None:
    genesys = load_acg("genesys")
    layer = layer_from(op, **params)
    found = cpsat.solve(layer, genesys)
    assert found.status == "optimal"
    cost = evaluate(found.mapping, genesys)
    assert cost.latency == found.objective
    for space in layer_spaces(layer, genesys):
        floor = greedy_mapping(layer, space.binding, genesys, grow=True)
        if floor is not None:
            assert cost.latency <= evaluate(floor, genesys).latency
    result = simulate(lower(found.mapping), genesys)
    assert result.matches_reference
    assert abs(result.cycles - float(cost.latency)) <= 0.10 * result.cycles


def test_cpsat_is_deterministic() -> None:
    """Two solves that prove optimality (the limit is far above the few seconds they take, so the
    outcome does not depend on the clock) return the same mapping, not merely the same objective."""
    layer = layer_from("conv2d", C=16, K=32, H=14, W=14, R=3, pad=1)
    genesys = load_acg("genesys")
    runs = [cpsat.solve(layer, genesys, "energy", time_limit=600) for _ in range(2)]
    assert [r.status for r in runs] == ["optimal", "optimal"]
    assert runs[0].mapping == runs[1].mapping and runs[0].objective == runs[1].objective


def test_random_search_is_seeded_and_never_beats_the_optimum() -> None:
    layer = layer_from("gemm", M=8, N=8, K=8)
    a = random_search.solve(layer, TINY, samples=300, time_limit=None, seed=4)
    b = random_search.solve(layer, TINY, samples=300, time_limit=None, seed=4)
    assert a.mapping == b.mapping and a.mapping is not None
    assert a.objective >= cpsat.solve(layer, TINY).objective


def test_edp_objective_is_rescored_exactly_and_near_the_optimum() -> None:
    """CP-SAT minimises a quantised latency x energy; it reports the decoded mapping's exact product,
    which is within the quantisation error (about 2**-18 relative) of exhaustive search's optimum."""
    layer = layer_from("gemm", M=2, N=8, K=4)
    found = cpsat.solve(layer, TINY, "edp")
    cost = evaluate(found.mapping, TINY)
    assert found.objective == cost.latency * cost.energy
    assert found.status == "optimal" and cost.latency > 0 and cost.energy > 0
    truth = exhaustive.solve(layer, TINY, "edp")
    assert truth.objective <= found.objective <= truth.objective * (1 + Fraction(1, 10**4))
    assert truth.objective <= evaluate(greedy_mapping(layer, layer_spaces(layer, TINY)[0].binding, TINY), TINY).edp


def test_infeasible_layer_names_the_resource() -> None:
    acg = tiny_variant(16, 16, 2, 32, 4, False, 4)  # OBUF holds 2 B: not even one int32 partial sum
    layer = layer_from("conv2d", C=2, K=2, H=3, W=3, R=3, pad=1)  # small: the exhaustive search sees every point
    found = cpsat.solve(layer, acg)
    assert found.status == "infeasible" and found.mapping is None
    assert "OBUF: needs 4 B even for the smallest tiles" in found.reason and "holds 2 B" in found.reason
    assert exhaustive.solve(layer, acg).status == "infeasible"


def test_no_capability_names_the_operation() -> None:
    layer = layer_from("sigmoid", shape=[4, 4], dtype="float32")
    with pytest.raises(NoMapping, match="sigmoid"):
        cpsat.solve(layer, TINY)


def test_cpsat_stopped_early_is_never_worse_than_its_greedy_hint() -> None:
    """AlexNet's fc7 (1 x 4096 x 4096, weights transposed) on meta_prototype: the search stops on a
    feasible point; CP-SAT may drop the hint and stop on a worse one, and the greedy point is kept.
    (The streaming array alone: with the output-stationary one too, fc7 is proven optimal.)"""
    meta = shipped_with_mac("meta_prototype", "mac")
    layer = make_layer("fc7", "C[m,n] += A[m,k] * B[n,k]", {"m": 1, "n": 4096, "k": 4096},
                       {"A": "int8", "B": "int8", "C": "int32"})
    found = cpsat.solve(layer, meta)  # the default limit
    best_greedy = min(evaluate(m, meta).latency for space in layer_spaces(layer, meta)
                      if (m := greedy_mapping(layer, space.binding, meta, grow=True)) is not None)
    assert found.status == "feasible" and found.objective <= best_greedy


def test_a_bandwidth_with_many_digits_is_solved_not_crashed() -> None:
    """An imported bandwidth such as 584.7619047619 B/cycle (614 GB/s at 1.05 GHz) makes the exact
    time scale 2**43, past what CP-SAT's 64-bit coefficients hold: the model rounds (a relaxation,
    status 'feasible' at worst) and its mapping is still the exhaustive optimum here."""
    text = (Path(__file__).parents[1] / "acg_specs" / "tiny.yaml").read_text()
    digits = text.replace("to: IBUF, bytes_per_cycle: 4", "to: IBUF, bytes_per_cycle: 3.7619047619")
    acg = parse_acg(load_yaml_text(digits, "tiny_digits.yaml"))
    layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 4, "n": 8, "k": 8},
                       {"A": "int8", "B": "int8", "C": "int32"})
    found, truth = cpsat.solve(layer, acg), exhaustive.solve(layer, acg)
    assert found.status in ("optimal", "feasible") and not found.exact
    assert evaluate(found.mapping, acg).latency == truth.objective
