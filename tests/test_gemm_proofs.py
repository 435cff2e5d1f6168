"""Small and 1-row GEMMs are proven optimal at once (docs/results/solve-times.md#gemm): the model's
maxima take variables, never long sums (`cpmodel.Model.maximum`), whose lin_max presolve spun for a
minute, counted as no deterministic time, on tiny_net's fc (1 x 10 x 8) on genesys."""

from __future__ import annotations

import pytest
from ortools.sat.python import cp_model

from mapper.spec.acg import load_acg
from mapper.spec.workload import load_workload
from solver import cpsat
from solver.cpmodel import Model


def test_maximum_takes_variables_only() -> None:
    mm = Model()
    xs = [mm.var(0, 100, "x") for _ in range(3)]
    top = mm.maximum([(xs[0] + 3 * xs[1] + 7, 7, 407), (xs[2], 0, 100), (5, 5, 5)], "top")
    mm.m.Add(xs[0] == 10)
    mm.m.Add(xs[1] == 20)
    mm.m.Add(xs[2] == 50)
    for c in mm.m.Proto().constraints:
        if c.has_lin_max():
            assert all(len(e.vars) <= 1 for e in c.lin_max.exprs)
    solver = cp_model.CpSolver()
    assert solver.Solve(mm.m) == cp_model.OPTIMAL
    assert solver.Value(top[0]) == 77


@pytest.mark.parametrize("acg", ["genesys", "tpu_like", "hvx_like", "tiny"])
def test_one_row_gemm_is_proven_optimal_within_one_unit(acg) -> None:
    fc = next(layer for layer in load_workload("tiny_net").layers if layer.name == "fc")
    sol = cpsat.solve(fc, load_acg(acg), "latency", time_limit=1.0)
    assert sol.status == "optimal", (acg, sol.status, sol.limit)
    assert sol.seconds < 20  # before: 64 s on genesys, in a presolve that counted no deterministic time
