"""Simulated annealing over the search space (AutoTVM's and Timeloop's classic local search).

From the best of a few starting points, each step proposes a legal neighbour (`solver.neighbourhood`)
or, with probability `jump`, a fresh random point of any binding; a worse proposal is accepted with
probability exp(-relative loss / T), the temperature falling geometrically from `t_start` to `t_end`
over the steps. Seeded: the same options give the same mapping.

    >>> from mapper.acg import load_acg
    >>> from mapper.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> s = solve(layer, load_acg("tiny"), "latency", None, AnnealOptions(steps=200))
    >>> s.status, s.evaluated <= 200 + 8
    ('feasible', True)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from mapper.acg import ACG
from mapper.workload import Layer
from solver.neighbourhood import random_neighbour
from solver.options import option
from solver.search import MAX_INSTRUCTIONS, Budget, Candidate, Scorer, random_candidate, starts
from solver.space import NoMapping, Solution, explain_infeasible, layer_spaces


@dataclass(frozen=True)
class AnnealOptions:
    steps: int = option(2000, 1, 10**7, "proposals (each scored once: an evaluation, or a measurement)")
    seed: int = option(0, 0, 2**31, "random seed (default: the run's --seed)")
    t_start: float = option(0.2, 1e-6, 100.0, "initial temperature, as a relative loss accepted with p = 1/e")
    t_end: float = option(0.002, 1e-9, 100.0, "final temperature")
    jump: float = option(0.05, 0.0, 1.0, "probability that a proposal is a random point of any binding")
    starts: int = option(8, 1, 1000, "starting points drawn (the best one starts)")
    measure: bool = option(False, help="score by simulator measurements instead of the cost model")
    measurements: int = option(0, 0, 10**6, "stop after this many measurements (0: no limit)")
    max_instructions: int = option(MAX_INSTRUCTIONS, 1, 10**8, "larger programs are not measured")


def solve(layer: Layer, acg: ACG, objective: str, time_limit: float | None, options: AnnealOptions) -> Solution:
    spaces = layer_spaces(layer, acg)
    if not spaces:
        raise NoMapping(explain_infeasible(layer, acg))
    rng = random.Random(options.seed)
    budget = Budget(time_limit, measurements=options.measurements, measure=options.measure,
                    max_instructions=options.max_instructions, seed=options.seed)
    scorer = Scorer(spaces, acg, objective, budget)
    begin = starts(scorer, rng, options.starts)
    if not begin:
        return scorer.solution("anneal", scorer.spent())
    current = min(begin, key=scorer.score)
    value = scorer.score(current)
    for step in range(options.steps):
        if scorer.spent():
            break
        proposal = propose(scorer, current, rng, options.jump)
        new = scorer.score(proposal) if proposal is not None else None
        if new is None:
            continue
        t = options.t_start * (options.t_end / options.t_start) ** (step / max(options.steps - 1, 1))
        loss = float((new - value) / value) if value else float(new > value)
        if loss <= 0 or rng.random() < math.exp(-loss / t):
            current, value = proposal, new
    return scorer.solution("anneal", scorer.spent())


def propose(scorer: Scorer, current: Candidate, rng: random.Random, jump: float) -> Candidate | None:
    """A legal neighbour of `current`, or (with probability `jump`, or when it has none) a random point."""
    k, point = current
    if rng.random() >= jump:
        near = random_neighbour(scorer.spaces[k], point, scorer.acg, rng)
        if near is not None:
            return k, near
    cand = random_candidate(scorer.spaces, rng)
    return cand if scorer.mapping(cand) is not None else None
