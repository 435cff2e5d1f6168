"""Mapping strategies. Each takes a layer and an ACG and returns a `Solution`; all explore the space
of `solver/space.py` and score with `mapper/mapping/cost.py`, so their figures compare. The strategies, their
options and the plug-ins are in `solver/registry.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.cache import CacheError, SolveCache, solve_key
from solver.options import OptionError
from solver.registry import names, resolve, run
from solver.space import NoMapping, Solution, SpaceTooLarge

__all__ = ["CacheError", "NoMapping", "OptionError", "Solution", "SolveCache", "SpaceTooLarge", "names", "solve"]


def solve(layer: Layer, acg: ACG, strategy: str = "cpsat", objective: str = "latency",
          time_limit: float = 10.0, seed: int = 0,
          options: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), cache: SolveCache | None = None) -> Solution:
    """Map one layer with the named strategy and its options (name -> value or text; see
    `solver.registry.resolve`); raises NoMapping when the layer cannot run at all, OptionError for an
    unknown strategy or a bad option. With `cache`, a solve made before (same content: see
    `solver.cache`) is served from it, checked, and a new one is stored."""
    resolved = resolve(strategy, dict(options), seed)
    if cache is None:
        return run(layer, acg, strategy, objective, time_limit, resolved)
    key = solve_key(layer, acg, strategy, objective, time_limit, resolved)
    solution = cache.get(key, layer, acg)  # raises the NoMapping it stored
    if solution is None:
        try:
            solution = run(layer, acg, strategy, objective, time_limit, resolved)
        except NoMapping as exc:
            cache.put_no_mapping(key, exc)
            raise
        cache.put(key, solution, acg)
    return solution
