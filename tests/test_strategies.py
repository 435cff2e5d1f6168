"""Strategies as plug-ins: the registry (typed options, entry points, CLI and experiment errors), the
neighbourhood (every neighbour is legal and scored), and the local searches (they reach the CP-SAT
optimum on tiny layers, return only legal mappings, count their work and are deterministic)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.app.cli import main
from mapper.app.experiment import cases, load_experiment
from mapper.mapping.cost import evaluate, rank
from mapper.mapping.mapping import check_legal
from mapper.network.flow import Options, map_layer
from mapper.spec.acg import load_acg
from mapper.spec.ops import TemplateError
from mapper.spec.workload import template_layer
from solver import OptionError, cpsat, names, registry, solve
from solver.neighbourhood import moves, neighbours, random_neighbour
from solver.options import option
from solver.search import Budget, Scorer
from solver.space import Solution, greedy_point, layer_spaces, legal, points, sample

TINY = load_acg("tiny")


# --------------------------------------------------------------------------------------------------
# The registry

def test_every_builtin_is_registered_with_typed_options() -> None:
    assert names()[:6] == ("cpsat", "exhaustive", "random", "anneal", "genetic", "learned")
    o = registry.resolve("genetic", {"population": "10", "mutation": 0.5, "measure": "yes"}, seed=7)
    assert (o.population, o.mutation, o.measure, o.seed) == (10, 0.5, True, 7)
    assert registry.resolve("anneal", {"seed": 3}, seed=7).seed == 3  # given beats the run's seed
    with pytest.raises(OptionError, match=r"option population=1 of strategy genetic: expected 2\.\.10000 "):
        registry.resolve("genetic", {"population": 1})
    with pytest.raises(OptionError, match="unknown strategy 'tabu'"):
        registry.get("tabu")


@dataclass(frozen=True)
class TabuOptions:
    tries: int = option(3, 1, 10)
    seed: int = option(0, 0, 100)


def _tabu(layer, acg, objective, time_limit, options: TabuOptions) -> Solution:
    return solve(layer, acg, "random", objective, time_limit, options.seed, {"samples": options.tries})


class _EntryPoint:
    def __init__(self, name: str, value):
        self.name, self.value, self._value = name, "fake:STRATEGY", value

    def load(self):
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


@pytest.fixture
def plugins(monkeypatch):
    """A fake installed package offering strategies through the `covenant.strategies` entry points."""
    found = [_EntryPoint("tabu", registry.Strategy("tabu", _tabu, TabuOptions, "a plug-in")),
             _EntryPoint("broken", ImportError("no module named fake")),
             _EntryPoint("anneal", "shadows a built-in: ignored")]

    def entry_points(group=None, **_):
        return found if group == registry.ENTRY_POINT_GROUP else []
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry.registry.cache_clear()
    yield
    registry.registry.cache_clear()


def test_a_plugin_strategy_runs_from_the_cli_and_a_broken_one_is_named(plugins, capsys) -> None:
    assert "tabu" in names() and registry.get("anneal").search is not None
    layer = template_layer("gemm", dict(M=4, N=4, K=4))
    assert solve(layer, TINY, "tabu", options={"tries": "5"}).mapping is not None
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--layer", "fc", "--strategy", "tabu",
                 "--option", "tries=4", "--json"]) == 0
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--strategy", "tabu", "--option", "tries=40"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["covenant: error: --option: option tries=40 of strategy tabu: expected 1..10 "
                   "(options: tries=1..10, seed=0..100)"]
    with pytest.raises(OptionError, match="'broken' .* failed to load: ImportError"):
        registry.get("broken")


@pytest.mark.parametrize(("argv", "message"), [
    (["--option", "stepz=5"], "--option: strategy anneal has no option 'stepz' (options: steps=1..10000000, "),
    (["--option", "steps=many"], "--option: option steps=many of strategy anneal: expected 1..10000000 "),
    (["--option", "steps"], "--option: expected KEY=VALUE, got 'steps'"),
    (["--option", "steps=5", "--option", "steps=6"], "--option: option 'steps' given twice"),
])
def test_bad_options_exit_2_with_one_line(argv, message, capsys) -> None:
    for command in (["map", "--acg", "tiny", "--workload", "tiny_net"], ["compile", "--acg", "tiny",
                                                                          "--workload", "tiny_net"]):
        assert main([*command, "--strategy", "anneal", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("covenant: error: " + message)


def test_options_travel_from_the_cli_and_work_is_counted(capsys) -> None:
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--layer", "fc", "--strategy", "learned",
                 "--option", "measurements=6", "--option", "seed=2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["strategy_options"] == {"measurements": "6", "seed": "2"}
    layer = doc["layers"][0]
    assert layer["valid"] and 0 < layer["measurements"] <= 6 and layer["evaluations"] >= layer["measurements"]


def test_experiment_options_are_part_of_the_case_key(tmp_path: Path) -> None:
    def keys(entry: str) -> list[str]:
        path = tmp_path / "exp.yaml"
        path.write_text(f"name: k\nacgs: [tiny]\nworkloads: [{{spec: tiny_net, layers: [fc]}}]\n"
                        f"strategies: [{entry}]\n")
        return [c.key for c in cases(load_experiment(path))]
    plain = keys("anneal")
    assert keys("{name: anneal, options: {steps: 2000}}") == plain  # the default: the same computation
    assert keys("{name: anneal, options: {steps: 500}}") != plain
    assert keys("{name: anneal, options: {steps: 500, t_end: 0.01}}") != keys("{name: anneal, options: {steps: 500}}")


# --------------------------------------------------------------------------------------------------
# The neighbourhood

small_layers = st.one_of(
    st.builds(lambda m, n, k: ("gemm", dict(M=m, N=n, K=k)), st.sampled_from([1, 2, 4, 6, 8]),
              st.sampled_from([2, 4, 8]), st.sampled_from([2, 3, 4, 8])),
    st.builds(lambda c, k, h, s: ("conv2d", dict(C=c, K=k, H=h, W=h, R=3, stride=s, pad=1)),
              st.sampled_from([1, 2, 4]), st.sampled_from([2, 4]), st.sampled_from([2, 4]), st.integers(1, 2)),
    st.builds(lambda c, h: ("max_pool2d", dict(C=c, H=h, W=h, R=2, stride=2, dtype="int32")),
              st.sampled_from([1, 2, 4]), st.sampled_from([2, 4])),
)


@settings(max_examples=15, deadline=None)
@given(spec=small_layers, acg=st.sampled_from(["tiny", "genesys"]), seed=st.integers(0, 10_000))
def test_every_neighbour_is_legal_and_scored(spec, acg, seed) -> None:
    op, params = spec
    try:
        layer = template_layer(op, params)
    except TemplateError:
        return
    acg = load_acg(acg)
    rng = random.Random(seed)
    for space in layer_spaces(layer, acg):
        start = greedy_point(space, acg) or sample(space, rng)
        if legal(space, start, acg) is None:
            continue
        near = neighbours(space, start, acg)
        assert set(near) <= set(moves(space, start)) and start not in near
        for point in near:
            m = legal(space, point, acg)
            assert m is not None and check_legal(m, acg) == []
            assert evaluate(m, acg).latency > 0
        drawn = random_neighbour(space, start, acg, rng)
        assert drawn is None or drawn in near


# --------------------------------------------------------------------------------------------------
# The searches

OPTIMUM_CASES = [("gemm", dict(M=8, N=8, K=8)), ("conv2d", dict(C=4, K=4, H=4, W=4, R=3, pad=1))]
BUDGETS = {"anneal": {"steps": 1500}, "genetic": {"population": 16, "generations": 40},
           "learned": {"measurements": 40}}


@pytest.mark.parametrize("op, params", OPTIMUM_CASES)
@pytest.mark.parametrize("strategy", ["anneal", "genetic", "learned"])
def test_local_searches_reach_the_cpsat_optimum_with_legal_mappings(strategy, op, params) -> None:
    layer = template_layer(op, params)
    best = cpsat.solve(layer, TINY)
    found = solve(layer, TINY, strategy, options=BUDGETS[strategy], time_limit=120)
    assert found.status == "feasible" and check_legal(found.mapping, TINY) == []
    assert found.objective == evaluate(found.mapping, TINY).latency == best.objective
    bests = [p.best for p in found.trace]  # improvements only, in the strategy's own figure
    assert found.evaluated > 0 and bests and bests == sorted(bests, reverse=True) and len(set(bests)) == len(bests)
    if strategy == "learned":
        assert 0 < found.measurements <= BUDGETS["learned"]["measurements"]
    else:
        assert found.measurements == 0


_HASH_RUN = """
from mapper.spec.acg import load_acg
from mapper.mapping.mapping_yaml import mapping_to_yaml
from mapper.spec.workload import template_layer
from solver import solve
found = solve(template_layer("gemm", dict(M=8, N=8, K=8)), load_acg("tiny"), "genetic",
              options={"population": 16, "generations": 40}, time_limit=120)
print(found.objective, mapping_to_yaml(found.mapping))
"""


def test_searches_do_not_depend_on_the_hash_seed() -> None:
    """Same seed, same result in every process: random draws never follow a set's iteration order
    (genetic's crossover once did, and found another mapping under PYTHONHASHSEED=5)."""
    outputs = set()
    for hash_seed in ("1", "5"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", _HASH_RUN], capture_output=True, text=True, env=env, check=True)
        outputs.add(run.stdout)
    assert len(outputs) == 1


@pytest.mark.parametrize("strategy, budget", [("anneal", {"steps": 80, "measure": True, "measurements": 12}),
                                              ("genetic", {"population": 6, "generations": 4}),
                                              ("learned", {"measurements": 10})])
def test_same_seed_same_result_and_records_count_the_work(strategy, budget) -> None:
    layer = template_layer("conv2d", dict(C=4, K=8, H=6, W=6, R=3, pad=1))
    options = Options(strategy, strategy_options=tuple({**budget, "seed": 5}.items()), time_limit=120)
    first, m1 = map_layer(layer, TINY, options)
    second, m2 = map_layer(layer, TINY, options)
    assert m1 == m2 and first.predicted_cycles == second.predicted_cycles and first.valid
    assert (first.evaluations, first.measurements) == (second.evaluations, second.measurements)
    if budget.get("measure") or strategy == "learned":
        assert 0 < first.measurements <= budget.get("measurements", 10)



def test_the_scorer_keeps_the_least_rank_key_among_equal_objectives() -> None:
    """Every candidate scored: the scorer's best is the least `cost.rank` key (energy, then latency),
    not the first of the most frugal; the layer has most frugal mappings of 8 different latencies."""
    layer = template_layer("gemm", dict(M=1, N=4, K=8))
    spaces = layer_spaces(layer, TINY)
    scorer = Scorer(spaces, TINY, "energy", Budget(None))
    keys = [key for key in (scorer.key((k, p)) for k, s in enumerate(spaces) for p in points(s)) if key is not None]
    assert len({key[1] for key in keys if key[0] == min(keys)[0]}) == 8
    assert scorer.best[0] == min(keys) == rank(evaluate(scorer.solution("t").mapping, TINY), "energy")
    assert scorer.trace[-1].best == float(min(keys)[0])
