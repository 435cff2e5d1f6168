"""What keeps CP-SAT's models small without changing its optima: twin bindings (operands the
capability reads alike, swapped) are one space, a binding whose floor exceeds the greedy incumbent
is left out, and padded outer tiles keep their last tile nearly full."""

from __future__ import annotations

import pytest

from mapper.mapping.binding import bind
from mapper.mapping.cost import evaluate
from mapper.mapping.mapping import greedy_mapping
from mapper.program.lower import lower
from mapper.spec.acg import load_acg
from mapper.spec.workload import template_layer
from sim.machine import simulate
from solver import cpsat, exhaustive
from solver.padding import padded_blocks
from solver.space import layer_spaces, legal, points, twin_key

TINY = load_acg("tiny")
GEMM = template_layer("gemm", dict(M=1, N=4, K=8), "g")


def test_twin_bindings_are_one_space_with_the_same_cost_and_timing() -> None:
    bindings = bind(GEMM, TINY)
    kept = {twin_key(s.binding, TINY): s.binding for s in layer_spaces(GEMM, TINY)}
    dropped = [b for b in bindings if b not in kept.values()]
    assert [b.capability for b in dropped] == ["vmac"]  # vmac's X and Y, swapped
    for b in dropped:
        twin = kept[twin_key(b, TINY)]
        mine, theirs = greedy_mapping(GEMM, b, TINY), greedy_mapping(GEMM, twin, TINY)
        assert evaluate(mine, TINY) == evaluate(theirs, TINY)
        ran, ran_twin = simulate(lower(mine), TINY, seed=1), simulate(lower(theirs), TINY, seed=1)
        assert ran.matches_reference and ran_twin.matches_reference
        assert (ran.cycles, ran.energy_pj) == (ran_twin.cycles, ran_twin.energy_pj)


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_a_space_floor_bounds_every_point_and_pruning_keeps_the_optimum(objective) -> None:
    spaces = layer_spaces(GEMM, TINY)
    for space in spaces:
        floor = cpsat.floor_of(space, TINY, objective)
        best = min(evaluate(m, TINY).objective(objective) for m in (legal(space, p, TINY) for p in points(space))
                   if m is not None)
        assert floor <= best
    incumbent = cpsat._greedy(spaces, TINY, objective)[0][0]  # its rank key: the objective first
    if objective == "latency":  # vmac (4 lanes, no array) cannot beat the array's greedy mapping
        assert [s.binding.capability for s in cpsat.prune(spaces, TINY, objective, incumbent)] == ["mvmul"] * 2
    found, truth = cpsat.solve(GEMM, TINY, objective), exhaustive.solve(GEMM, TINY, objective)
    assert found.status == "optimal" and found.objective == truth.objective


def test_padded_outer_tiles_keep_their_last_tile_nearly_full() -> None:
    assert padded_blocks(265) == {133, 89, 67}  # 133 + 132, 89 + 89 + 87, 67 x 3 + 64
    assert padded_blocks(7) == set()  # 4 + 3, 3 + 3 + 1, 2 x 3 + 1: the short tile stalls the pipeline
    assert padded_blocks(12) == set()  # 3, 4 and 6 divide it
