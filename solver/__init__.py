"""Mapping strategies. Each takes a layer and an ACG and returns a `Solution`; all explore the space
of `solver/space.py` and score with `mapper/mapping/cost.py`, so their figures compare. The strategies, their
options and the plug-ins are in `solver/registry.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.options import OptionError
from solver.registry import names, resolve, run
from solver.space import NoMapping, Solution, SpaceTooLarge

__all__ = ["NoMapping", "OptionError", "Solution", "SpaceTooLarge", "names", "solve"]


def solve(layer: Layer, acg: ACG, strategy: str = "cpsat", objective: str = "latency",
          time_limit: float = 10.0, seed: int = 0,
          options: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> Solution:
    """Map one layer with the named strategy and its options (name -> value or text; see
    `solver.registry.resolve`); raises NoMapping when the layer cannot run at all, OptionError for an
    unknown strategy or a bad option."""
    return run(layer, acg, strategy, objective, time_limit, resolve(strategy, dict(options), seed))
