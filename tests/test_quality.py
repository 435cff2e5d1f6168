"""Mapping quality: every objective on real layers of every shipped ACG (no overflow, exact figures,
finite gaps), padded tiles (CP-SAT == exhaustive with them in the space, exact partial-tile
charges, simulated bit-exactly), and honest limits."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from math import isfinite, prod

import networkx as nx
import pytest

from mapper.mapping.cost import evaluate
from mapper.mapping.mapping import check_legal
from mapper.program.lower import Move, lower
from mapper.spec.acg import load_acg
from mapper.spec.dtypes import dtype_bytes
from mapper.spec.workload import load_workload, template_layer
from sim.machine import simulate
from solver import cpsat, exhaustive
from solver.space import layer_spaces

REAL = [
    ("genesys", "resnet18", "layer4.0.downsample"),
    ("genesys", "covenant14", "deepbench.train_35x8457x4096"),  # energy overflowed int64
    ("tpu_like", "resnet18", "conv1"),  # energy overflowed, EDP was an invalid model
    ("tpu_like", "resnet18", "fc"),
    ("hvx_like", "resnet18", "gap"),
    ("hvx_like", "covenant14", "resnet50.layer1.0.add"),
    ("tiny", "resnet18", "fc"),
    ("tiny", "resnet18", "layer4.1.add"),
]


def real_layer(workload: str, name: str):
    return next(layer for layer in load_workload(workload).layers if layer.name == name)


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("acg_name, workload, name", REAL)
def test_every_objective_on_real_layers_of_every_acg(acg_name, workload, name, objective) -> None:
    acg = load_acg(acg_name)
    found = cpsat.solve(real_layer(workload, name), acg, objective)
    assert found.status in ("optimal", "feasible"), found.reason
    assert found.gap is not None and isfinite(found.gap) and 0 <= found.gap < 1e-6
    assert found.bound <= found.objective
    cost = evaluate(found.mapping, acg)
    assert found.objective == cost.objective(objective)  # the decoded mapping's exact figure
    if objective != "edp":  # the model is exact: its own figure is the cost model's
        assert found.exact and found.model_objective == found.objective
    else:  # proven bounds of both figures come with it
        bounds = dict(found.bounds)
        assert bounds["latency"] <= cost.latency and bounds["energy"] <= cost.energy
    assert check_legal(found.mapping, acg) == []


SMALL_PADDED = [
    ("gemm", dict(M=2, N=7, K=2)),  # N > the array's 4 columns: padded instructions
    ("conv2d", dict(C=5, K=2, H=1, W=1, R=1)),
    ("conv2d", dict(C=5, K=1, H=2, W=1, R=2, S=1)),  # padded channels beside a halo axis (p+r)
    ("add", dict(shape=[1, 7], dtype="int32")),
]


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("op, params", SMALL_PADDED)
def test_cpsat_equals_exhaustive_with_padded_tiles(op, params, objective) -> None:
    tiny = load_acg("tiny")
    layer = template_layer(op, params, "small")
    spaces = layer_spaces(layer, tiny)
    padded = [c for s in spaces for d, opts in zip(s.dims, s.options, strict=True) for c in opts
              if layer.dims[d] % c[0]]
    assert padded, "the space holds padded tiles"
    truth = exhaustive.solve(layer, tiny, objective)
    found = cpsat.solve(layer, tiny, objective)
    assert found.status == truth.status == "optimal"
    assert found.objective == truth.objective == evaluate(found.mapping, tiny).objective(objective)
    assert simulate(lower(found.mapping), tiny, seed=2).matches_reference


def moved_bytes(program) -> Counter:
    """Bytes per (tensor, src, dst) that a lowered program moves."""
    out: Counter = Counter()
    for ins in program.instructions:
        if isinstance(ins, Move):
            size = dtype_bytes(program.layer.tensors[ins.tensor].dtype)
            out[ins.tensor, ins.src, ins.dst] += prod(hi - lo for lo, hi in ins.region) * size
    return out


def without_setup_and_intervals(acg):
    """The ACG with no edge set-up latency and no initiation intervals: the timing the cost model
    gets exact (the simulator overlaps set-ups and pipelines write-back chains, which it averages)."""
    edges = tuple(replace(e, latency=0) for e in acg.edges)
    graph = nx.DiGraph(acg.graph)
    for e in edges:
        graph.edges[e.src, e.dst]["edge"] = e
    computes = {name: replace(node, capabilities=tuple(replace(c, interval=None) for c in node.capabilities))
                for name, node in acg.computes.items()}
    return replace(acg, edges=edges, graph=graph, computes=computes)


def test_padded_gemm_is_charged_exactly_and_simulates() -> None:
    """N = 263 is prime: no divisor fills the 32 array columns of genesys."""
    genesys = without_setup_and_intervals(load_acg("genesys"))
    layer = template_layer("gemm", dict(M=35, N=263, K=512), "g")
    found = cpsat.solve(layer, genesys)
    m = found.mapping
    assert any(layer.dims[d] % m.nominal(d, lv) for d in layer.dims for lv in range(1, m.levels + 1))
    # Every stream's bytes equal what the lowered program moves, partial edge tiles included.
    cost = evaluate(m, genesys)
    charged: Counter = Counter()
    for s in cost.streams:
        charged[s.tensor, s.src, s.dst] += s.bytes
    program = lower(m)
    assert +charged == moved_bytes(program)
    result = simulate(program, genesys, seed=4)
    assert result.matches_reference and abs(result.cycles - float(found.objective)) <= 0.02 * result.cycles


def test_padded_conv_simulates_and_beats_divisor_tiles() -> None:
    """C = 97 and K = 131 are prime: divisor tiles leave the 32 x 32 array at 1 x 1."""
    genesys = load_acg("genesys")
    layer = template_layer("conv2d", dict(C=97, K=131, H=13, W=13, R=3, pad=1), "c")
    found = cpsat.solve(layer, genesys)
    assert found.status == "optimal" and found.objective < 60_000  # 246,020 cycles with divisor tiles
    assert any(layer.dims[d] % s for d, s in found.mapping.spatial)
    result = simulate(lower(found.mapping), genesys, seed=1)
    assert result.matches_reference
    assert abs(result.cycles - float(found.objective)) <= 0.02 * result.cycles


def test_a_limit_that_stops_the_search_is_reported() -> None:
    layer = real_layer("covenant14", "mobilenet_v2.features.14.dw")
    found = cpsat.solve(layer, load_acg("hvx_like"), "latency", time_limit=0.05)
    assert found.limit.startswith("deterministic time limit")
    assert found.mapping is not None and found.status == "feasible"  # the greedy mapping, at least
    assert found.bound is not None and found.bound <= found.objective == evaluate(
        found.mapping, load_acg("hvx_like")).latency


def test_an_invalid_model_is_an_internal_error(monkeypatch) -> None:
    real = cpsat._run

    def invalid(*args, **kwargs):
        run = real(*args, **kwargs)
        return cpsat._Run(cpsat.cp_model.MODEL_INVALID, None, None, 0, 0, 0, run.det, run.wall)

    monkeypatch.setattr(cpsat, "_run", invalid)
    for objective in ("latency", "edp"):
        found = cpsat.solve(template_layer("gemm", dict(M=4, N=4, K=4), "g"), load_acg("tiny"), objective)
        assert found.status == "error" and found.reason.startswith("internal error: CP-SAT rejected the model")
