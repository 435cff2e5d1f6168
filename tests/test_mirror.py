"""The cost model and the CP-SAT model mirror each other: `mapper/mapping/cost.py` and
`solver/cpbuild.py` define the same pieces under the same names, listed in the same order in their
module docs; and at any legal point of a space (not only at the optimum), the model with its
decisions (`cpbuild.Built`) fixed to the point has `evaluate`'s latency and energy, exactly."""

from __future__ import annotations

import random

import pytest
from ortools.sat.python import cp_model
from test_solver import tiny_variant

from mapper.mapping import cost
from mapper.spec.acg import load_acg
from mapper.spec.workload import template_layer
from solver import cpbuild, cpsat
from solver.space import Point, legal, sample, spaces_of

PIECES = ("instruction_cycles", "last_tile_cycles", "streams", "busy", "prologue", "stalls", "epilogue", "chains",
          "latency_bound", "transfer_energy", "compute_energy", "operand_energy", "static_energy")


def test_both_models_define_the_same_pieces_in_the_same_order() -> None:
    for module in (cost, cpbuild):
        assert all(callable(getattr(module, name)) for name in PIECES), module.__name__
        listed = [line.split()[0] for line in module.__doc__.splitlines()
                  if line.startswith("    ") and line.split() and line.split()[0] in PIECES]
        assert listed == list(PIECES), module.__name__


def _fixed(pb: cpsat._Problem, k: int, point: Point) -> tuple[int, int]:
    """The model's (latency, energy) with its decisions fixed to binding k's point."""
    m = pb.mm.m
    for lit, on in cpsat.point_values(pb, k, point):
        if isinstance(lit, int):
            assert lit == int(on)
        else:
            m.Add(lit == int(on))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.Solve(m) == cp_model.OPTIMAL
    return solver.Value(pb.latency), solver.Value(pb.energy)


CASES = [("tiny", "gemm", dict(M=8, N=8, K=16)),
         ("genesys", "conv2d", dict(C=8, K=16, H=8, W=8, R=3, pad=1)),
         ("genesys", "conv2d", dict(C=8, K=8, H=8, W=8, R=3, stride=2, pad=1)),
         ("setup", "gemm", dict(M=6, N=2, K=4)),
         ("setup", "max_pool2d", dict(C=4, H=4, W=4, R=2, stride=2, dtype="int32"))]


@pytest.mark.parametrize("acg_name, op, params", CASES)
def test_the_model_equals_evaluate_at_sampled_points(acg_name, op, params) -> None:
    acg = tiny_variant(64, 32, 128, 128, 2, True, 2, setup=3, interval="m", power=0.3) \
        if acg_name == "setup" else load_acg(acg_name)
    assert_model_equals_evaluate(template_layer(op, params), acg, seed=7)


def assert_model_equals_evaluate(layer, acg, seed: int) -> None:
    """At up to 4 legal sampled points per binding (at least 3 in all), the CP-SAT model fixed to
    the point has exactly `cost.evaluate`'s latency and energy (in model units, exact scales)."""
    spaces = spaces_of(layer, acg)
    rng = random.Random(seed)
    checked = 0
    for k, space in enumerate(spaces):
        for _ in range(40):
            point = sample(space, rng)
            mapping = legal(space, point, acg)
            if mapping is None:
                continue
            pb = cpsat._problem(spaces, acg)  # a fresh model per point: the fixing constraints stay
            assert pb.sc.exact_time and pb.sc.exact_energy
            figures = cost.evaluate(mapping, acg)
            assert _fixed(pb, k, point) == (figures.latency * pb.sc.time, figures.energy * pb.sc.energy)
            checked += 1
            if checked >= 4 * (k + 1):
                break
    assert checked >= 3
