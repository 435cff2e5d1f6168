"""The one registry of mapping strategies: every place that names, lists or runs a strategy reads it.

A `Strategy` is a function over the shared search space with its own typed options (a frozen
dataclass whose fields come from `solver.options.option`). The built-in ones are registered here;
third-party packages add theirs through the entry point group `covenant.strategies`, each entry
point naming a `Strategy` object:

    # a plug-in's pyproject.toml
    [project.entry-points."covenant.strategies"]
    tabu = "covenant_tabu:STRATEGY"

A plug-in's name may not shadow a built-in one; one that fails to load is listed with its error and
reported when used (it never breaks the other strategies).

    >>> names()[:6]
    ('cpsat', 'exhaustive', 'random', 'anneal', 'genetic', 'learned')
    >>> o = resolve("anneal", {"steps": "500"}, seed=3)
    >>> o.steps, o.seed, o.measure
    (500, 3, False)
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver import anneal, cpsat, exhaustive, genetic, learned, random_search
from solver.options import OptionError, allowed, option, parse_options
from solver.space import Solution

ENTRY_POINT_GROUP = "covenant.strategies"

# (layer, acg, objective, time limit in seconds or None, options) -> Solution
Search = Callable[[Layer, ACG, str, float | None, Any], Solution]


@dataclass(frozen=True)
class Strategy:
    name: str
    search: Search
    options: type  # a frozen dataclass; every field has a default (see solver.options.option)
    summary: str = ""


@dataclass(frozen=True)
class CpsatOptions:
    seed: int = option(0, 0, 2**31, "CP-SAT's random seed (default: the run's --seed)")
    tie_break: bool = option(True, help="break ties in the objective by the other figure (false: only where "
                                        "the objective is not proven; the fusion search's solves)")


@dataclass(frozen=True)
class NoOptions:
    pass


def _cpsat(layer: Layer, acg: ACG, objective: str, time_limit: float | None, o: CpsatOptions) -> Solution:
    return cpsat.solve(layer, acg, objective, time_limit=time_limit or 10.0, seed=o.seed, tie_break=o.tie_break)


def _exhaustive(layer: Layer, acg: ACG, objective: str, time_limit: float | None,
                o: exhaustive.ExhaustiveOptions) -> Solution:
    return exhaustive.solve(layer, acg, objective, time_limit=time_limit, max_points=o.max_points)


def _random(layer: Layer, acg: ACG, objective: str, time_limit: float | None,
            o: random_search.RandomOptions) -> Solution:
    return random_search.solve(layer, acg, objective, time_limit=time_limit, samples=o.samples or None, seed=o.seed)


BUILTIN = (
    Strategy("cpsat", _cpsat, CpsatOptions, "exact CP-SAT model: the proven optimum under the cost model"),
    Strategy("exhaustive", _exhaustive, exhaustive.ExhaustiveOptions, "every point (ground truth, small layers)"),
    Strategy("random", _random, random_search.RandomOptions, "uniform random sampling (Timeloop's baseline)"),
    Strategy("anneal", anneal.solve, anneal.AnnealOptions, "simulated annealing over the neighbourhood"),
    Strategy("genetic", genetic.solve, genetic.GeneticOptions, "genetic algorithm over points (GAMMA-style)"),
    Strategy("learned", learned.solve, learned.LearnedOptions,
             "learned cost model + adaptive sampling of simulator measurements (Chameleon-style)"),
)


@functools.cache
def registry() -> dict[str, Strategy | str]:
    """Name -> Strategy, built-ins first, then plug-ins in name order; a plug-in that failed to load
    maps to its error message."""
    out: dict[str, Strategy | str] = {s.name: s for s in BUILTIN}
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in out:
            continue  # a built-in (or an earlier plug-in) keeps its name
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plug-in must not break the others
            out[ep.name] = f"the plug-in strategy '{ep.name}' ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            continue
        if not isinstance(loaded, Strategy) or loaded.name != ep.name or not dataclasses.is_dataclass(loaded.options):
            out[ep.name] = (f"the plug-in strategy '{ep.name}' ({ep.value}) is not a solver.registry.Strategy "
                            f"named '{ep.name}' with a dataclass of options")
            continue
        out[ep.name] = loaded
    return out


def names() -> tuple[str, ...]:
    """Every strategy name, built-ins first."""
    return tuple(registry())


def get(name: str) -> Strategy:
    """The named strategy; `OptionError` for an unknown name or a plug-in that failed to load."""
    found = registry().get(name)
    if found is None:
        raise OptionError(f"unknown strategy '{name}' (choose from {', '.join(names())})")
    if isinstance(found, str):
        raise OptionError(found)
    return found


def resolve(name: str, given: Mapping[str, Any] | None = None, seed: int = 0) -> Any:
    """The strategy's options: `given` (text or typed values) over the defaults; a `seed` option not
    given takes the run's seed. `OptionError` names a wrong option and the allowed ones."""
    strategy = get(name)
    given = dict(given or {})
    if "seed" in {f.name for f in dataclasses.fields(strategy.options)}:
        given.setdefault("seed", seed)
    return parse_options(name, strategy.options, given)


def options_help(name: str) -> str:
    return f"{name}: {allowed(get(name).options)}"


def run(layer: Layer, acg: ACG, name: str, objective: str, time_limit: float | None, options: Any) -> Solution:
    """Run a strategy with resolved options (see `resolve`)."""
    return get(name).search(layer, acg, objective, time_limit, options)
