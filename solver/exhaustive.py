"""Exhaustive search: every point of the space, scored by the cost model. The ground truth on
small layers (the CP-SAT optimum must equal it).

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 4, "n": 4, "k": 4},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> solve(layer, load_acg("tiny")).status
    'optimal'
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.options import option
from solver.space import (
    Solution,
    SpaceTooLarge,
    best_of,
    explain_infeasible,
    legal,
    points,
    spaces_of,
)

MAX_POINTS = 5_000_000


@dataclass(frozen=True)
class ExhaustiveOptions:
    max_points: int = option(MAX_POINTS, 1, 10**9, "refuse layers whose space has more points")


def solve(layer: Layer, acg: ACG, objective: str = "latency", time_limit: float | None = None,
          max_points: int = MAX_POINTS) -> Solution:
    """The optimum over every point; with `time_limit`, the best found so far ('feasible')."""
    start = time.perf_counter()
    spaces = spaces_of(layer, acg)
    total = sum(s.size() for s in spaces)
    if total > max_points:
        raise SpaceTooLarge(f"the space of layer {layer.name} has {total} points, more than the {max_points} "
                        "exhaustive search enumerates")
    complete = True

    def candidates():
        nonlocal complete
        for space in spaces:
            for point in points(space):
                if time_limit is not None and time.perf_counter() - start > time_limit:
                    complete = False
                    return
                yield legal(space, point, acg)

    best, best_value, evaluated = best_of(candidates(), acg, objective)
    seconds = time.perf_counter() - start
    if best is None:
        return Solution("exhaustive", objective, "infeasible", None, None, None, seconds, evaluated,
                        explain_infeasible(layer, acg))
    status = "optimal" if complete else "feasible"
    return Solution("exhaustive", objective, status, best, best_value, best_value if complete else None,
                    seconds, evaluated)
