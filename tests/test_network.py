"""Whole networks: the network program, its memory model and address plan, calibration, end-to-end
simulation against the network reference, and the `covenant compile` command."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.app.cli import main
from mapper.network.compile import CompileOptions, compile_network
from mapper.network.phases import PHASES, Stopwatch
from mapper.network.reference import calibrate, run_reference, seeded_tensors
from mapper.program.lower import lower
from mapper.program.memory import AddressPlan, Placement, live_bytes, live_ranges, peak_bytes, plan_memory
from mapper.program.network import build_network, shift_for
from mapper.spec.acg import load_acg
from mapper.spec.loader import SpecError, load_yaml_text
from mapper.spec.workload import load_workload, parse_workload
from sim.network import simulate_network

TINY = load_acg("tiny")
CLOCK = 0.05  # seconds of slack between a sum of timed phases and the figure that encloses them


@pytest.fixture(scope="module")
def tiny_net():
    wl = load_workload("tiny_net")
    return wl, compile_network(wl, TINY, CompileOptions(time_limit=5, fuse="none"))  # every value in the arena


def workload(text: str):
    return parse_workload(load_yaml_text(text, "test.yaml"))


def test_tiny_net_validates_end_to_end(tiny_net):
    _, result = tiny_net
    assert result.valid is True and result.first_mismatch is None and result.error is None
    assert all(r.valid is True and r.simulated_cycles > 0 for r in result.records)
    totals = result.totals()
    assert totals.simulated_cycles == pytest.approx(sum(r.simulated_cycles for r in result.records))
    assert totals.dram_bytes > 0 and totals.peak_activation_bytes == peak_bytes(result.network)


def test_network_outputs_equal_the_reference_bit_for_bit(tiny_net):
    _, result = tiny_net
    net = result.network
    tensors = seeded_tensors(net, 0)
    reference = run_reference(net, tensors)
    programs = {m.layer.name: lower(m) for m in result.mappings}
    run = simulate_network(net, programs, result.plan, TINY, tensors, reference)
    assert run.first_mismatch is None
    (out,) = net.outputs
    assert run.outputs[out].dtype == np.int32 and np.array_equal(run.outputs[out], reference[out])
    assert np.abs(reference[out]).max() > 0  # calibration keeps information flowing to the output


def test_a_plan_that_overlaps_live_buffers_is_caught_by_the_simulation(tiny_net):
    """The address plan is checked by the data: put a buffer on top of one still live, and the step
    that reads the clobbered data differs from the reference."""
    _, result = tiny_net
    net = result.network
    ranges = live_ranges(net)
    victim = "conv1.requant"  # read by the branches and, much later, by the residual add
    clobber = next(b for b, (lo, hi) in ranges.items() if b != victim and ranges[victim][0] < lo <= ranges[victim][1]
                   and net.buffers[b].bytes >= net.buffers[victim].bytes // 4)
    placements = dict(result.plan.placements)
    placements[clobber] = replace(placements[clobber], offset=placements[victim].offset)
    bad = replace(result.plan, placements=placements)
    assert (victim, clobber) in bad.overlapping() or (clobber, victim) in bad.overlapping()
    tensors = seeded_tensors(net, 0)
    programs = {m.layer.name: lower(m) for m in result.mappings}
    run = simulate_network(net, programs, bad, TINY, tensors, run_reference(net, tensors))
    assert run.first_mismatch is not None


def test_concatenation_is_one_buffer_written_by_its_parts(tiny_net):
    _, result = tiny_net
    net = result.network
    a, b = net.values["branch_a.requant"], net.values["branch_b.requant"]
    assert a.buffer == b.buffer and a.axis == b.axis == 1 and (a.start, b.start) == (0, 4)
    assert net.step("mix").reads == (("I", a.buffer),)
    assert net.buffers[a.buffer].shape == (1, 8, 8, 8)


@pytest.mark.parametrize("name", ["tiny_net", "resnet18", "resnet50", "mobilenet_v2", "bert_base", "deepbench_gru"])
def test_address_plans_never_overlap_live_buffers(name):
    net = build_network(load_workload(name))
    plan = plan_memory(net)
    assert plan.overlapping() == []
    assert plan.arena_bytes >= peak_bytes(net)
    assert set(plan.placements) == set(net.buffers)


def test_the_memory_model_on_a_hand_checked_chain():
    """a -> b -> c, and a also feeds c: a lives from step 0 to 2; inputs from the start; the output to the end."""
    net = build_network(workload("""
name: chain
layers:
  - {name: a, op: relu, params: {shape: [100]}}
  - {name: b, op: relu, params: {shape: [100]}, inputs: [a]}
  - {name: c, op: add, params: {shape: [100]}, inputs: [b, a]}
"""))
    assert live_ranges(net) == {"a.X": (0, 0), "a": (0, 2), "b": (1, 2), "c": (2, 2)}
    assert live_bytes(net) == [200, 200, 300]
    assert peak_bytes(net) == 300


def test_overlap_detection_itself():
    plan = AddressPlan({"x": Placement("x", 0, 100, 0, 3), "y": Placement("y", 64, 100, 3, 5),
                        "z": Placement("z", 0, 100, 6, 7)}, 256, 0)
    assert plan.overlapping() == [("x", "y")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=20), st.booleans())
def test_calibrated_shift_is_the_smallest_that_fits(data, relu):
    shift = shift_for(np.array(data, np.int64), "int8", relu)
    values = [max(v, 0) if relu else abs(v) for v in data]

    def fits(s):
        return all((v + ((1 << s) >> 1)) >> s <= 127 for v in values)
    assert fits(shift) and (shift == 0 or not fits(shift - 1))


def test_calibration_sets_every_requantisation_shift():
    net = build_network(load_workload("resnet18"))
    calibrated, values = calibrate(net, seeded_tensors(net, 0))
    shifts = [s.layer.params["shift"] for s in calibrated.steps if s.layer.op == "requant"]
    assert len(shifts) == 21 and all(s > 0 for s in shifts)
    for step in calibrated.steps:
        if step.layer.op == "requant":
            out = values[step.writes]
            assert out.dtype == np.int8 and 64 <= np.abs(out.astype(int)).max() <= 127


def test_relu_epilogue_without_requantisation_becomes_a_relu_step():
    net = build_network(workload("""
name: f
layers:
  - {name: g, op: gemm, params: {M: 2, N: 4, K: 8, activation: relu}}
  - {name: h, expr: "Z[m,n] = X[m,n] + X[m,n]", dims: {m: 2, n: 4}, dtypes: {X: int32, Z: int32}, inputs: [g]}
"""))
    assert [s.layer.name for s in net.steps] == ["g", "g.relu", "h"]
    assert net.step("h").reads == (("X", "g.relu"),)


def test_integer_to_float_and_back_compiles_end_to_end_on_genesys():
    """gemm (int32) -> sigmoid (float32) -> gemm (int8): a dequantisation and a quantisation step,
    calibrated, mapped on genesys's SIMD and validated on the simulator."""
    wl = workload("""
name: mlp
layers:
  - {name: fc1, op: gemm, params: {M: 2, N: 32, K: 16}}
  - {name: act, op: sigmoid, params: {shape: [2, 32]}, inputs: [fc1]}
  - {name: fc2, op: gemm, params: {M: 2, N: 8, K: 32}, inputs: [act]}
""")
    result = compile_network(wl, load_acg("genesys"), CompileOptions(time_limit=5))
    names = [s.layer.name for s in result.network.steps]
    assert names == ["fc1", "fc1.dequant", "act", "act.quant", "fc2"]
    scales = {s.layer.op: s.layer.params["scale"] for s in result.network.steps if s.layer.op in ("dequant", "quant")}
    assert scales["quant"] == 64.0 and 0 < scales["dequant"] < 1  # sigmoid outputs in (0, 1): 127 // 1 -> 2**6
    assert result.valid is True and all(r.valid for r in result.records)


# --------------------------------------------------------------------------------------------------
# Bad input and the command line

def test_a_conversion_that_does_not_exist_names_the_layers():
    wl = workload("""
name: f
layers:
  - {name: p, op: relu, params: {shape: [8], dtype: int8}}
  - {name: q, expr: "Z[i] = X[i] + X[i]", dims: {i: 8}, dtypes: {X: int32, Z: int32}, inputs: [p]}
""")
    with pytest.raises(SpecError, match="input X of 'q' is int32, but 'p' produces int8"):
        build_network(wl)


def test_activations_that_do_not_fit_offchip_memory(tmp_path, capsys):
    acg = (tmp_path / "small.yaml")
    text = (load_acg("tiny").source and open(load_acg("tiny").source).read())
    acg.write_text(text.replace("capacity: 16MiB", "capacity: 2KiB"))
    code = main(["compile", "--acg", str(acg), "--workload", "tiny_net", "--no-validate"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs" in err[0] and "off-chip memory" in err[0]


def test_a_layer_without_capability_exits_1_and_reports_the_rest(tmp_path, capsys):
    path = tmp_path / "w.yaml"
    path.write_text("""
name: w
layers:
  - {name: fc, op: gemm, params: {M: 4, N: 32, K: 32}}
  - {name: act, op: sigmoid, params: {shape: [4, 32], dtype: float32}}
""")
    code = main(["compile", "--acg", "tpu_like", "--workload", str(path), "--json", "--time-limit", "5"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    by_name = {r["name"]: r for r in doc["layers"]}
    assert by_name["fc"]["status"] == "optimal" and by_name["act"]["status"] == "infeasible"
    assert "sigmoid" in by_name["act"]["error"] and doc["total"]["unmapped"] == ["act"]


def test_compile_json_document(capsys, tmp_path):
    code = main(["compile", "--acg", "tiny", "--workload", "tiny_net", "--json", "--time-limit", "5",
                 "-o", str(tmp_path / "prog")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    total = doc["total"]
    for key in ("predicted_cycles", "simulated_cycles", "dram_bytes", "energy_pj", "peak_activation_bytes",
                "compile_seconds"):
        assert total[key] is not None and total[key] > 0, key
    assert total["network_valid"] is True and doc["order"][0] == "conv1"
    written = load_yaml_text((tmp_path / "prog" / "network.yaml").read_text(), "network.yaml").value
    assert [s["layer"] for s in written["steps"]] == doc["order"]
    banded = sum((g["bands"] - 1) * len(g["steps"]) for g in doc["fusion"]["groups"])  # a mapping per band
    assert len(list((tmp_path / "prog" / "mappings").glob("*.yaml"))) == len(doc["order"]) + banded
    assert list(total)[-11:] == ["phases", "layer_solves", "layer_solve_seconds", "fusion_solves",
                                 "fusion_solve_seconds", "fusion_reused", "fusion_skipped", "final_solves",
                                 "final_solve_seconds", "slowest_solve", "cache_hits"]  # added at the end
    phases = total["phases"]
    assert list(phases) == list(PHASES) and all(isinstance(s, float) and s >= 0 for s in phases.values())
    compiling = PHASES[:PHASES.index("lowering")]  # the rest is the simulation's
    assert sum(phases[p] for p in compiling) <= total["compile_seconds"] + CLOCK
    assert sum(phases.values()) <= total["compile_seconds"] + total["simulation_seconds"] + CLOCK
    assert phases["layer_mapping"] > 0 and phases["fusion_search"] > 0 and phases["simulation"] > 0
    assert total["fusion_solves"] >= 1 and 0 < total["fusion_solve_seconds"] <= phases["fusion_search"] + CLOCK
    assert total["layer_solves"] >= len(doc["order"]) - sum(r.get("reused_from") is not None for r in doc["layers"])
    assert 0 < total["layer_solve_seconds"] <= phases["layer_mapping"] + CLOCK
    slowest = total["slowest_solve"]
    solving = phases["layer_mapping"] + phases["fusion_search"] + phases["final_mapping"]
    assert slowest["layer"] and 0 < slowest["seconds"] <= solving + CLOCK  # one solve (a banded step's record sums its)


def test_compile_json_without_fusion_has_no_fusion_solves(capsys):
    code = main(["compile", "--acg", "tiny", "--workload", "tiny_net", "--json", "--time-limit", "5",
                 "--fuse", "none", "--no-validate"])
    total = json.loads(capsys.readouterr().out)["total"]
    assert code == 0 and total["fusion_solves"] == 0 and total["fusion_solve_seconds"] == 0
    assert total["layer_solves"] >= 1 and total["slowest_solve"]["seconds"] <= total["layer_solve_seconds"]
    phases = total["phases"]
    assert list(phases) == list(PHASES) and all(isinstance(s, float) and s >= 0 for s in phases.values())
    assert phases["fusion_search"] == phases["lowering"] == phases["simulation"] == 0  # neither ran
    assert phases["layer_mapping"] > 0 and sum(phases.values()) <= total["compile_seconds"] + CLOCK


def test_phases_of_a_layer_by_layer_compile(tiny_net):
    _, result = tiny_net
    times = result.phases
    assert times.fusion_solves == 0 and times.fusion_search == 0 and times.fusion_solve_seconds == 0
    assert all(s >= 0 for s in times.seconds().values()) and times.lowering > 0 and times.simulation > 0
    assert times.total <= result.compile_seconds + result.simulation_seconds + CLOCK


def test_the_stopwatch_adds_up_a_phase_timed_in_several_blocks():
    watch = Stopwatch()
    for _ in range(2):
        with watch("memory_plan"):
            sum(range(10_000))
    with pytest.raises(KeyError, match="unknown phase"), watch("linking"):
        pass
    watch.note(fusion_solves=3, fusion_solve_seconds=1.5)
    times = watch.times()
    assert times.memory_plan > 0 and times.build == 0 and (times.fusion_solves, times.fusion_solve_seconds) == (3, 1.5)
    assert times.to_dict()["slowest_solve"] is None and list(times.to_dict()["phases"]) == list(PHASES)
