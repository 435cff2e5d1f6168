"""Streams dealt over PE lanes (`Capability.lanes`): an output-stationary array whose reduction k
streams over 4 PE lanes keeps its weights in per-PE registers, each holding ceil(S / 4) elements of
every instruction's stream of S reduction elements (as ZigZag's tpu_like keeps a 3 x 3 x 64
reduction in its 128 B weight registers). The three truths agree on the rule: the cost model's
legality (`storage_demand`), the CP-SAT model (fixed to legal points, and its optimum against the
exhaustive search) and the simulator (which works out each instance's share from the program)."""

from __future__ import annotations

import random

import pytest
from test_mirror import assert_model_equals_evaluate

from mapper.importers.zigzag import import_zigzag
from mapper.mapping.cost import evaluate
from mapper.mapping.mapping import check_legal, storage_demand
from mapper.program.lower import lower
from mapper.spec.acg import parse_acg
from mapper.spec.loader import SpecError, load_yaml_text
from mapper.spec.workload import template_layer
from sim.machine import SimError, simulate
from solver import cpsat, exhaustive
from solver.space import decode, sample, spaces_of

LANES = """
name: lanes4
nodes:
  wrf: {kind: storage, capacity: 3, instances: 16, double_buffer: true, read_pj_per_byte: 0.01,
        write_pj_per_byte: 0.01}
  acc: {kind: storage, capacity: 8, instances: 4, double_buffer: true, read_pj_per_byte: 0.005,
        write_pj_per_byte: 0.005}
  buf: {kind: storage, capacity: 4096, double_buffer: true, read_pj_per_byte: 0.5, write_pj_per_byte: 0.5}
  dram: {kind: storage, capacity: 125000, offchip: true, bytes_per_cycle: 8, read_pj_per_byte: 12.5,
         write_pj_per_byte: 12.5}
  PE_ARRAY:
    kind: compute
    capabilities:
      - {name: mac_os, expr: 'C[m,n] += A[m,k] * B[k,n]', dims: {m: 1, n: 4}, lanes: {k: 4},
         operands: {A: buf, B: wrf, C: acc}, dtypes: {A: int8, B: int8, C: int32}, cycles: 'cdiv(k, 4)',
         pj_per_mac: 0.1}
edges:
  - {from: dram, to: buf, bytes_per_cycle: 8}
  - {from: buf, to: dram, bytes_per_cycle: 8}
  - {from: dram, to: wrf, bytes_per_cycle: 8}
  - {from: acc, to: buf, bytes_per_cycle: 16}
  - {from: buf, to: acc, bytes_per_cycle: 16}
"""
LAYERS = [("gemm", dict(M=2, N=8, K=12)), ("conv2d", dict(C=4, K=4, H=4, W=3, R=3, S=1, pad=1))]


def lanes_acg(text: str = LANES):
    return parse_acg(load_yaml_text(text, "lanes4.yaml"))


def test_a_streams_lanes_deal_its_tile_over_the_registers() -> None:
    """A 12-long reduction on 4 lanes: 3 weights per PE fit the 3-byte registers; without the lanes
    every PE would hold all 12, and the reduction would have to be split into partial sums."""
    acg, layer = lanes_acg(), template_layer("gemm", dict(M=2, N=4, K=12))
    found = cpsat.solve(layer, acg, "energy")
    assert found.status == "optimal" and found.mapping.spatial_of("k") == 12
    assert dict(storage_demand(found.mapping, acg))["wrf"] == [("B", 3)]
    result = simulate(lower(found.mapping), acg)
    assert result.matches_reference and result.buffer_peaks["wrf"] == 3
    without = lanes_acg(LANES.replace("lanes: {k: 4},", ""))
    split = cpsat.solve(layer, without, "energy").mapping
    assert split.spatial_of("k") < 12 and evaluate(split, without).energy > evaluate(found.mapping, acg).energy


@pytest.mark.parametrize("op, params", LAYERS)
def test_the_cost_model_and_the_simulator_agree_on_every_sampled_tile(op, params) -> None:
    """At sampled points, legal and not (single-buffered in the registers): a point the model finds
    too big for the registers the simulator refuses; one it accepts runs, within the model's count."""
    acg, layer = lanes_acg(), template_layer(op, params)
    rng, fits, refused = random.Random(5), 0, 0
    for space in spaces_of(layer, acg):
        for _ in range(150):
            mapping = decode(space, sample(space, rng), acg)
            problems = check_legal(mapping, acg)
            if any(not p.startswith("wrf:") for p in problems) or any(s == "wrf" for _, s in mapping.double_buffer):
                continue  # another rule, or a second slot the model counts and the program may leave unused
            if problems:
                with pytest.raises(SimError, match=r"wrf: needs \d+ B per instance \(of 16\) for tensor"):
                    simulate(lower(mapping), acg)
                refused += 1
            else:
                result = simulate(lower(mapping), acg)
                assert result.matches_reference
                assert result.buffer_peaks["wrf"] <= sum(n for _, n in storage_demand(mapping, acg)["wrf"])
                fits += 1
    assert fits >= 5 and refused >= 5


@pytest.mark.parametrize("op, params", LAYERS)
def test_the_cpsat_model_equals_the_cost_model_at_sampled_points(op, params) -> None:
    """Roomier registers, so that enough sampled points are legal (a CP-SAT share above the cost
    model's would make a legal point infeasible)."""
    roomy = LANES.replace("wrf: {kind: storage, capacity: 3", "wrf: {kind: storage, capacity: 12") \
        .replace("acc: {kind: storage, capacity: 8", "acc: {kind: storage, capacity: 32")
    assert_model_equals_evaluate(template_layer(op, params), lanes_acg(roomy), seed=3)


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_cpsat_equals_exhaustive(objective) -> None:
    acg, layer = lanes_acg(), template_layer("gemm", dict(M=1, N=4, K=8))
    found, truth = cpsat.solve(layer, acg, objective), exhaustive.solve(layer, acg, objective)
    assert found.status == "optimal" and truth.status == "optimal"
    assert evaluate(found.mapping, acg).objective(objective) == truth.objective
    assert check_legal(found.mapping, acg) == []


@pytest.mark.parametrize("bad, message", [
    ("lanes: {n: 4}", "'n' is a fixed dim"),
    ("lanes: {j: 4}", "'j' is not a dim of the expression"),
    ("lanes: {k: 0}", "lanes"),
])
def test_bad_lanes_name_file_line_and_field(bad, message) -> None:
    with pytest.raises(SpecError) as err:
        lanes_acg(LANES.replace("lanes: {k: 4}", bad))
    text = str(err.value)
    assert text.startswith("lanes4.yaml:") and message in text


def test_zigzag_tpu_like_keeps_a_3x3x64_reduction_in_its_weight_registers() -> None:
    """ZigZag's tpu_like: 1024 PEs with 128 B of weights each; a 3 x 3 x 64 reduction (576 weights
    per output channel) streams over the 32 lanes of C, 18 weights per PE, so the least-energy
    mapping keeps every partial sum in the output registers (no reload) as ZigZag's mapping does."""
    from pathlib import Path  # noqa: PLC0415 (only this test reads ZigZag's files)
    data = Path(__file__).parent / "data" / "zigzag"
    _, acg = import_zigzag(data / "hardware" / "tpu_like.yaml", data / "mapping" / "tpu_like.yaml")
    assert acg.capability("mac_os").lanes == {"k": 32}
    layer = template_layer("conv2d", dict(C=64, K=32, H=8, W=8, R=3, pad=1))
    found = cpsat.solve(layer, acg, "energy")
    assert found.mapping.binding.capability == "mac_os"
    reloads = [s for s in evaluate(found.mapping, acg).streams if s.kind == "reload" and s.bytes]
    assert reloads == [] and found.mapping.spatial_of("c") * found.mapping.spatial_of("r") * \
        found.mapping.spatial_of("s") == 576
