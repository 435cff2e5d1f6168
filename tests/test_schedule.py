"""Memory-aware scheduling: the incremental memory model equals memory.py's, the DP equals brute force
on random DAGs, budgets, time limits and gaps, rewriting (bit for bit, on the simulator too), the
`covenant schedule` command and the order `covenant compile` runs."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapper.app.cli import main
from mapper.importers.synthetic import dag_workload, darts_normal_cell
from mapper.network.compile import CompileOptions, compile_network
from mapper.network.flow import Options, map_layers
from mapper.network.reference import calibrate, run_reference, seeded_tensors
from mapper.network.rewrite import check_rewrite, rewrite, rewrite_for_memory, rewritten_tensors, with_original_shifts
from mapper.network.schedule import (
    ScheduleError,
    brute_force_schedule,
    cut_points,
    file_schedule,
    greedy_schedule,
    memory_graph,
    optimal_schedule,
    order_peak,
)
from mapper.program.lower import lower
from mapper.program.memory import peak_bytes, plan_memory
from mapper.program.network import build_network
from mapper.spec.acg import load_acg
from mapper.spec.workload import load_workload
from sim.network import simulate_network

SHIPPED = ["tiny_net", "mini_inception", "resnet18", "resnet50", "mobilenet_v2", "bert_base"]


@st.composite
def random_dags(draw, max_nodes: int = 6):
    """A DAG over 1..max_nodes nodes (edges from lower to higher numbers) and how to build a network on it."""
    n = draw(st.integers(1, max_nodes))
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    for v in range(1, n):
        for u in range(v):
            if draw(st.booleans()):
                dag.add_edge(u, v)
    merge = draw(st.sampled_from(["auto", "sum", "adds"]))
    return dag, draw(st.sampled_from([4, 8, 12])), merge, draw(st.sampled_from([1, 3]))


def network_on(dag, channels, merge, kernel):
    return dag_workload("random", dag, channels=channels, hw=4, merge=merge, kernel=kernel)


# --------------------------------------------------------------------------------------------------
# The memory model: one definition (memory.py), the search's incremental form agrees with it

@pytest.mark.parametrize("name", SHIPPED)
def test_peaks_of_every_schedule_equal_memory_py(name):
    wl = load_workload(name)
    g = memory_graph(wl)
    for schedule in (file_schedule(g), greedy_schedule(g), optimal_schedule(g, time_limit=20)):
        assert schedule.peak_bytes == peak_bytes(build_network(wl, list(schedule.order)))
    assert file_schedule(g).peak_bytes == peak_bytes(build_network(wl))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags(), st.randoms(use_true_random=False))
def test_any_topological_order_peak_equals_memory_py(case, rng):
    wl = network_on(*case)
    g = memory_graph(wl)
    order = list(nx.topological_sort(wl.graph))
    rng.shuffle(order)  # a random topological order: repeatedly take a random ready layer
    ready, done, chosen = [], set(), []
    while len(chosen) < len(order):
        ready = [n for n in order if n not in done and all(p in done for p in wl.graph.predecessors(n))]
        pick = rng.choice(ready)
        done.add(pick)
        chosen.append(pick)
    assert order_peak(g, chosen) == peak_bytes(build_network(wl, chosen))


def test_the_memory_model_by_hand():
    """stem (3x8x8 int8 input, 8 channels) -> n0 -> head: conv outputs are int32, requantised to int8."""
    wl = dag_workload("chain", nx.path_graph(1, create_using=nx.DiGraph), channels=8, hw=8)
    net = build_network(wl)
    names = [s.layer.name for s in net.steps]
    assert names == ["stem", "stem.requant", "n0", "n0.requant", "head"]
    x, i32, i8 = 3 * 64, 8 * 64 * 4, 8 * 64  # input, an int32 output, its requantised int8
    # during stem: input + stem's int32; during stem.requant: int32 + int8 (the input is freed) ...
    assert peak_bytes(net) == max(x + i32, i32 + i8, i8 + i32, i32 + i8, i8 + i32)
    assert order_peak(memory_graph(wl), ["stem", "n0", "head"]) == peak_bytes(net)


# --------------------------------------------------------------------------------------------------
# The exact DP

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_dp_equals_brute_force_on_random_dags(case):
    g = memory_graph(network_on(*case))
    best = optimal_schedule(g)
    truth = brute_force_schedule(g)
    assert best.proven_optimal and best.peak_bytes == truth.peak_bytes
    assert order_peak(g, best.order) == best.peak_bytes
    assert sorted(best.order) == sorted(g.units)
    # Any first budget at or above the lower bound reaches the same optimum.
    assert optimal_schedule(g, budget=g.lower_bound()[0]).peak_bytes == truth.peak_bytes
    assert optimal_schedule(g, budget=truth.peak_bytes * 2).peak_bytes == truth.peak_bytes
    assert greedy_schedule(g).peak_bytes >= truth.peak_bytes <= file_schedule(g).peak_bytes


@settings(max_examples=20, deadline=None)
@given(random_dags())
def test_cut_points_are_passed_by_every_order(case):
    wl = network_on(*case)
    g = memory_graph(wl)
    for cut in cut_points(g):
        unit = g.units[cut.bit_length() - 1]
        ancestors = nx.ancestors(wl.graph, unit)
        assert {g.units[u] for u in range(len(g.units)) if cut >> u & 1} == ancestors | {unit}
        assert ancestors | {unit} | nx.descendants(wl.graph, unit) == set(g.units)


def test_the_optimal_order_beats_the_file_order_on_mini_inception():
    g = memory_graph(load_workload("mini_inception"))
    best = optimal_schedule(g)
    assert best.proven_optimal and best.peak_bytes < file_schedule(g).peak_bytes


def test_a_time_limit_returns_the_best_order_with_its_gap():
    """Eleven independent GRU cells: far too many states to finish in a tenth of a second."""
    wl = load_workload("deepbench_gru")
    g = memory_graph(wl)
    best = optimal_schedule(g, time_limit=0.1)
    assert not best.proven_optimal and 0 < best.gap < 1
    assert g.lower_bound()[0] <= best.lower_bound < best.peak_bytes
    assert best.peak_bytes == peak_bytes(build_network(wl, list(best.order)))
    assert best.peak_bytes <= min(file_schedule(g).peak_bytes, greedy_schedule(g).peak_bytes)


def test_a_budget_below_the_largest_step_names_both_numbers(capsys):
    g = memory_graph(load_workload("tiny_net"))
    lb, what = g.lower_bound()
    with pytest.raises(ScheduleError, match=f"budget of 100 B is below .* {lb} B"):
        optimal_schedule(g, budget=100)
    assert main(["schedule", "--workload", "tiny_net", "--budget", "100"]) == 2
    err = capsys.readouterr().err
    assert "100 B" in err and f"{lb} B" in err and what in err and "Traceback" not in err


def test_a_budget_no_order_fits_exits_1(capsys):
    g = memory_graph(load_workload("tiny_net"))
    best = optimal_schedule(g).peak_bytes
    assert main(["schedule", "--workload", "tiny_net", "--budget", str(best - 1), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget"] == {"bytes": best - 1, "fits": False}
    assert main(["schedule", "--workload", "tiny_net", "--budget", str(best)]) == 0


def test_a_cycle_is_rejected_clearly(tmp_path, capsys):
    path = tmp_path / "cyclic.yaml"
    path.write_text("name: cyclic\nlayers:\n"
                    "  - {name: a, op: relu, params: {shape: [4]}, inputs: [b]}\n"
                    "  - {name: b, op: relu, params: {shape: [4]}, inputs: [a]}\n")
    assert main(["schedule", "--workload", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cycle" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# Rewriting

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags(max_nodes=5))
def test_rewrites_compute_the_same_values_bit_for_bit(case):
    wl = network_on(*case)
    rw = rewrite(wl)
    assert check_rewrite(wl, rw) == []
    g = memory_graph(rw.workload)
    assert check_rewrite(wl, rw, seed=1, order=list(optimal_schedule(g).order)) == []


@pytest.mark.parametrize("wl", [load_workload("mini_inception"), darts_normal_cell(channels=8, hw=4)],
                         ids=["mini_inception", "darts"])
def test_rewrites_of_named_networks_are_bit_for_bit(wl):
    rw = rewrite(wl)
    assert rw.rewritten and check_rewrite(wl, rw) == []


def test_a_wrong_weight_slice_is_caught():
    wl = load_workload("mini_inception")
    rw = rewrite(wl, {"mix"})
    bad = dict(rw.weights)
    cut = bad["mix.part1.W"]
    bad["mix.part1.W"] = type(cut)(cut.source, cut.axis, cut.start + 1, cut.stop + 1)
    assert check_rewrite(wl, type(rw)(rw.workload, rw.rewritten, bad, rw.origin)) != []


def test_rewriting_lowers_the_peak_of_mini_inception():
    wl = load_workload("mini_inception")
    rw, best = rewrite_for_memory(wl)
    optimal = optimal_schedule(memory_graph(wl))
    assert rw.rewritten and best.proven_optimal and best.peak_bytes < optimal.peak_bytes
    assert best.peak_bytes == peak_bytes(build_network(rw.workload, list(best.order)))


def test_a_rewritten_network_on_the_simulator_equals_the_original_reference():
    """mini_inception, every rewrite applied, in its optimal order, on the tiny ACG: the simulated
    values equal the rewritten reference, which equals the original network's on the same data."""
    acg = load_acg("tiny")
    wl = load_workload("mini_inception")
    rw = rewrite(wl)
    original = build_network(wl)
    tensors = seeded_tensors(original, 0)
    original, expected = calibrate(original, tensors)
    order = list(optimal_schedule(memory_graph(rw.workload)).order)
    net = with_original_shifts(build_network(rw.workload, order), original, rw)
    data = rewritten_tensors(rw, net, tensors)
    reference = run_reference(net, data)
    results = map_layers([s.layer for s in net.steps], acg, Options("cpsat", "latency", 5, False, 0))
    programs = {m.layer.name: lower(m) for _, m in results}
    run = simulate_network(net, programs, plan_memory(net), acg, data, reference)
    assert run.first_mismatch is None
    (out,) = original.outputs
    assert np.array_equal(run.outputs[out], expected[out])


# --------------------------------------------------------------------------------------------------
# The command and the compiler

def test_schedule_json_document(capsys):
    assert main(["schedule", "--workload", "mini_inception", "--acg", "genesys", "--rewrite", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["workload"] == "mini_inception" and doc["layers"] == 15 and "concatenation" in doc["memory_model"]
    s = doc["schedules"]
    assert set(s) == {"file", "greedy", "optimal", "rewritten"}
    for entry in s.values():
        assert max(step["live_bytes"] for step in entry["steps"]) == entry["peak_bytes"]
        assert {"order", "seconds", "proven_optimal"} <= set(entry)
    assert s["rewritten"]["peak_bytes"] <= s["optimal"]["peak_bytes"] < s["file"]["peak_bytes"]
    assert s["optimal"]["proven_optimal"] and s["rewritten"]["rewrites"] == ["mix"]
    assert doc["acg"]["storage"] == "WBUF" and doc["acg"]["fits_on_chip"] is True


def test_compile_runs_the_optimal_order_unless_told_otherwise():
    wl = load_workload("mini_inception")
    acg = load_acg("tiny")
    best = optimal_schedule(memory_graph(wl)).peak_bytes
    # Layer by layer: the arena then holds every activation (fusion keeps some on chip, below the peak).
    optimal = compile_network(wl, acg, CompileOptions(time_limit=5, validate=False, fuse="none"))
    kept = compile_network(wl, acg, CompileOptions(time_limit=5, validate=False, order="file", fuse="none"))
    assert optimal.peak_activation_bytes == best < kept.peak_activation_bytes == optimal.file_peak_bytes
    assert [s.layer.name for s in kept.network.steps] == [s.layer.name for s in build_network(wl).steps]
    assert optimal.totals().activations_fit_on_chip is False  # 512 B of OBUF
    assert optimal.plan.arena_bytes >= best and not optimal.plan.overlapping()


def test_compile_validates_the_optimal_order_end_to_end():
    result = compile_network(load_workload("mini_inception"), load_acg("tiny"), CompileOptions(time_limit=5))
    assert result.valid is True and result.peak_activation_bytes < result.file_peak_bytes


@pytest.mark.parametrize("name", ["tiny_net", "mini_inception", "resnet50", "bert_base"])
def test_tensor_bytes_agree_with_show_workload(name, capsys):
    """A layer's output occupies the bytes `covenant show workload --json` reports for it; the bytes
    a concatenation's buffer holds are its parts' (after requantisation, which the network inserts)."""
    assert main(["show", "workload", name, "--json"]) == 0
    shown = {layer["name"]: layer for layer in json.loads(capsys.readouterr().out)["layers"]}
    net = build_network(load_workload(name))
    for step in net.steps:
        if step.layer.name in shown:
            out = shown[step.layer.name]["tensors"][step.layer.expr.output.tensor]
            value = net.values[step.writes]
            assert out["bytes"] == math.prod(value.shape) * np.dtype(value.dtype).itemsize
    for buffer in net.buffers.values():
        parts = [v for v in net.values.values() if v.buffer == buffer.name]
        assert buffer.bytes == sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in parts)
