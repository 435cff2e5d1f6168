"""Mapping strategies. Each takes a layer and an ACG and returns a `Solution`; all explore the space
of `solver/space.py` and score with `mapper/cost.py`, so their figures compare."""

from __future__ import annotations

from mapper.acg import ACG
from mapper.workload import Layer
from solver.space import NoMapping, Solution, SpaceTooLarge

STRATEGIES = ("cpsat", "exhaustive", "random")

__all__ = ["STRATEGIES", "NoMapping", "Solution", "SpaceTooLarge", "solve"]


def solve(layer: Layer, acg: ACG, strategy: str = "cpsat", objective: str = "latency",
          time_limit: float = 10.0, seed: int = 0) -> Solution:
    """Map one layer with the named strategy; raises NoMapping when the layer cannot run at all."""
    if strategy == "cpsat":
        from solver import cpsat
        return cpsat.solve(layer, acg, objective, time_limit=time_limit, seed=seed)
    if strategy == "exhaustive":
        from solver import exhaustive
        return exhaustive.solve(layer, acg, objective, time_limit=time_limit)
    if strategy == "random":
        from solver import random_search
        return random_search.solve(layer, acg, objective, time_limit=time_limit, seed=seed)
    raise ValueError(f"unknown strategy '{strategy}' (choose from {', '.join(STRATEGIES)})")
