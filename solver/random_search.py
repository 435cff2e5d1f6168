"""Random search, the Timeloop-style baseline: sample points of the space uniformly (a binding, then
each decision independently), keep the best legal one, under a sample and/or time budget.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> s = solve(layer, load_acg("tiny"), samples=200, seed=1)
    >>> s.status, s.mapping == solve(layer, load_acg("tiny"), samples=200, seed=1).mapping
    ('feasible', True)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.options import option
from solver.space import Solution, best_of, legal, sample, spaces_of


@dataclass(frozen=True)
class RandomOptions:
    samples: int = option(0, 0, 10**9, "points drawn (0: as many as the time limit allows)")
    seed: int = option(0, 0, 2**31, "random seed (default: the run's --seed)")


def solve(layer: Layer, acg: ACG, objective: str = "latency", time_limit: float | None = 10.0,
          samples: int | None = None, seed: int = 0) -> Solution:
    """The best of `samples` random points (or as many as `time_limit` allows)."""
    if time_limit is None and samples is None:
        raise ValueError("random search needs a sample budget or a time limit")
    start = time.perf_counter()
    spaces = spaces_of(layer, acg)
    rng = random.Random(seed)
    drawn = 0

    def candidates():
        nonlocal drawn
        while (samples is None or drawn < samples) and (time_limit is None or
                                                       time.perf_counter() - start < time_limit):
            drawn += 1
            space = rng.choice(spaces)
            yield legal(space, sample(space, rng), acg)

    best, best_value, evaluated = best_of(candidates(), acg, objective)
    seconds = time.perf_counter() - start
    if best is None:
        return Solution("random", objective, "infeasible", None, None, None, seconds, evaluated,
                        f"no legal mapping among {drawn} random samples")
    return Solution("random", objective, "feasible", best, best_value, None, seconds, evaluated)
