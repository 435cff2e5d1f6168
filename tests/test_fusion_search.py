"""The fusion search's shortcuts change its cost, never its answer: the DP's bound, the steps' floors,
the reuse of solves whose reservations do not bind and the search's solves without a tie-break give
the plan that costing every candidate in full gives (`mapper.network.fusion`, `step_costs`,
`solver.bounds`)."""

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.app.cli import main
from mapper.network.bands import plan_bands
from mapper.network.cores import objective_value
from mapper.network.flow import Options, layer_key, map_layer, map_layers
from mapper.network.fusion import (
    Costs,
    Group,
    band_layers,
    best_partition,
    brute_force_partition,
    candidate_groups,
    fusable_values,
    group_layers,
    home_options,
    plan_fusion,
)
from mapper.network.step_costs import StepCosts
from mapper.program.network import build_network
from mapper.spec.acg import load_acg
from mapper.spec.workload import OnChip, load_workload, make_layer
from solver import cpsat
from solver.bounds import objective_floor

OPTIONS = Options(time_limit=5, validate=False)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 7).flatmap(lambda n: st.tuples(
    st.just(n), st.dictionaries(st.tuples(st.integers(0, n - 1), st.integers(2, 4)), st.integers(1, 60)),
    st.sampled_from(["none", "inflated"]))))
def test_the_dp_with_costs_pruned_at_its_bound_equals_brute_force(case):
    """A run that costs at least its bound may be answered None, or by any figure at least the bound:
    the DP's partition costs the same as brute force over the true costs."""
    n, table, pruned = case
    singles = {(i, i + 1): 10 + 3 * i for i in range(n)}

    def true(i, j):
        return singles[(i, j)] if j - i == 1 else table.get((i, j - i))

    def cost(i, j, bound):
        c = true(i, j)
        if c is None or c < bound:
            return c
        return None if pruned == "none" else c + 1000
    assert best_partition(n, cost)[0] == brute_force_partition(n, lambda i, j, bound: true(i, j))[0]


def _fused_layers(acg, wl="tiny_net"):
    """Every candidate group's layers with the first home of each value that can stay on chip, whole
    and in 2 bands (rows cached) along each axis that allows them."""
    net = build_network(load_workload(wl))
    out = {}
    for i in range(len(net.steps)):
        for j in range(i + 2, min(len(net.steps), i + 4) + 1):
            homes = {v: o[0] for v in fusable_values(net, i, j) if (o := home_options(net, acg, v))}
            if not homes:
                continue
            layers = group_layers(net, i, j, homes)
            for axis in range(1, 4):
                if plan_bands(net, i, j, axis, 2, True) is not None:
                    group = Group(i, j, tuple(homes.items()), bands=2, axis=axis, cache=True)
                    layers += [s.layer for band in band_layers(net, group) for s in band if s is not None]
            for layer in layers:
                out.setdefault(layer_key(layer), layer)
    return [s.layer for s in net.steps] + list(out.values())


@pytest.mark.parametrize("acg_name, objective", [("tiny", "latency"), ("genesys", "latency"), ("genesys", "energy"),
                                                 ("hvx_like", "edp")])
def test_a_floor_is_never_above_the_optimum(acg_name, objective):
    acg = load_acg(acg_name)
    layers = _fused_layers(acg)
    assert any(layer.onchip.homes for layer in layers) and any(layer.onchip.reserved for layer in layers)
    checked = 0
    for layer in layers:
        record, _ = map_layer(layer, acg, replace(OPTIONS, objective=objective))
        floor = objective_floor(layer, acg, objective)
        if record.mapped:
            assert floor is not None and float(floor) <= objective_value(record, objective) * (1 + 1e-12), layer.name
            checked += 1
    assert checked >= 20


def _plain_cost(acg, solved):
    def cost(layer):
        record, _ = map_layers([layer], acg, OPTIONS, done=solved)[0]
        return record.predicted_cycles if record.mapped else None
    return cost


@pytest.mark.parametrize("acg_name", ["tiny", "genesys"])
def test_the_pruned_search_finds_the_plan_of_the_full_one(acg_name):
    """Every candidate costed in full (no floors, every solve with its tie-break and every reservation
    solved) and the search as a compile runs it choose the same groups at the same cost; the pruned
    one says what it left out, and solves less."""
    acg, net = load_acg(acg_name), build_network(load_workload("tiny_net"))
    solved: dict = {}
    full = plan_fusion(net, acg, _plain_cost(acg, solved))
    costs = StepCosts(acg, OPTIONS)
    for step in net.steps:
        costs.solve(step.layer)
    pruned = plan_fusion(net, acg, Costs(costs.cost, costs.floor))
    assert pruned.groups == full.groups and pruned.cost == full.cost and pruned.unfused_cost == full.unfused_cost
    assert any(g.homes for g in pruned.groups)
    counts = pruned.search
    assert counts.candidates == candidate_groups(len(net.steps)) == full.search.candidates
    assert counts.variants_skipped > full.search.variants_skipped  # (without floors: only where the DP's bound is <= 0)
    assert counts.candidates_skipped > full.search.candidates_skipped
    assert counts.steps < full.search.steps and len(costs.records()) < len(solved)


def _requant(onchip: OnChip) -> object:
    layer = make_layer("rq", "Z[i] = clip(shr(X[i], 3), -128, 127)", {"i": 2048}, {"X": "int32", "Z": "int8"})
    return replace(layer, onchip=onchip)


def test_a_reservation_that_does_not_bind_is_answered_by_the_solve_without_it():
    acg = load_acg("genesys")
    vmem = acg.storages["VMEM1"].total_capacity
    homes = (("X", "VMEM1"),)
    loose, tight = _requant(OnChip(homes, (("VMEM2", 1024),))), _requant(OnChip(homes, (("VMEM1", vmem - 8192 - 64),)))
    costs = StepCosts(acg, OPTIONS)
    assert costs.cost(loose) == objective_value(map_layer(loose, acg, OPTIONS)[0], "latency")
    assert layer_key(loose) in costs.reused and costs.floor(loose) == costs.cost(loose)  # the relaxation's answer
    assert costs.cost(tight) == objective_value(map_layer(tight, acg, OPTIONS)[0], "latency")
    assert layer_key(tight) not in costs.reused  # it binds: solved itself, at a cost no lower than the relaxation's
    assert costs.cost(tight) >= costs.cost(replace(loose, onchip=OnChip(homes)))
    full = _requant(OnChip(homes, (("VMEM1", vmem),)))  # no room left even without reservations elsewhere
    assert costs.cost(full) is None and costs.floor(full) == math.inf


def test_a_solve_without_its_tie_break_proves_the_same_objective():
    acg, layer = load_acg("genesys"), load_workload("tiny_net").layer("conv1")
    full, probe = cpsat.solve(layer, acg, "latency", 5.0), cpsat.solve(layer, acg, "latency", 5.0, tie_break=False)
    assert probe.status == full.status == "optimal" and probe.objective == full.objective
    assert probe.tie_break is None and full.tie_break is not None


def test_compile_json_says_what_the_search_left_out(capsys):
    code = main(["compile", "--acg", "tiny", "--workload", "tiny_net", "--json", "--time-limit", "5", "--no-validate"])
    doc = json.loads(capsys.readouterr().out)
    search, total = doc["fusion"]["search"], doc["total"]
    assert code == 0 and search["candidates"] == candidate_groups(len(doc["order"]))
    assert 0 < search["candidates_skipped"] == total["fusion_skipped"] <= search["candidates"]
    assert search["variants_skipped"] + search["variants_cut"] <= search["variants"]
    assert total["fusion_reused"] >= 0 and total["final_solves"] >= 1
