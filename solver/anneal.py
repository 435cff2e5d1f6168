"""Simulated annealing over the search space (AutoTVM's and Timeloop's classic local search).

One chain per binding that has a starting point (the best of those drawn for it; the steps go round
the chains, since a move never changes the binding): each step proposes a legal neighbour
(`solver.neighbourhood`) or, with probability `jump`, a fresh random point of the chain's binding; a
worse proposal is accepted with probability exp(-relative loss / T), the temperature falling
geometrically from `t_start` to `t_end` over the steps. Seeded: the same options give the same mapping.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
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

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.neighbourhood import random_neighbour
from solver.options import option
from solver.search import Candidate, LocalSearchOptions, Scorer, starts
from solver.space import Solution, sample, spaces_of


@dataclass(frozen=True)
class AnnealOptions(LocalSearchOptions):
    steps: int = option(2000, 1, 10**7, "proposals (each scored once: an evaluation, or a measurement)")
    t_start: float = option(0.2, 1e-6, 100.0, "initial temperature, as a relative loss accepted with p = 1/e")
    t_end: float = option(0.002, 1e-9, 100.0, "final temperature")
    jump: float = option(0.05, 0.0, 1.0, "probability that a proposal is a random point (same binding)")
    starts: int = option(8, 1, 1000, "starting points drawn (the best one starts)")


def solve(layer: Layer, acg: ACG, objective: str, time_limit: float | None, options: AnnealOptions) -> Solution:
    spaces = spaces_of(layer, acg)
    rng = random.Random(options.seed)
    scorer = Scorer(spaces, acg, objective, options.budget(time_limit))
    begin = starts(scorer, rng, options.starts, options.greedy_start)
    if not begin:
        return scorer.solution("anneal", scorer.spent())
    chains = [min((c for c in begin if c[0] == k), key=scorer.key) for k in sorted({c[0] for c in begin})]
    values = [scorer.score(c) for c in chains]
    for step in range(options.steps):
        if scorer.spent():
            break
        i = step % len(chains)
        proposal = propose(scorer, chains[i], rng, options.jump)
        new = scorer.score(proposal) if proposal is not None else None
        if new is None:
            continue
        t = options.t_start * (options.t_end / options.t_start) ** (step / max(options.steps - 1, 1))
        loss = float((new - values[i]) / values[i]) if values[i] else float(new > values[i])
        if loss <= 0 or rng.random() < math.exp(-loss / t):
            chains[i], values[i] = proposal, new
    return scorer.solution("anneal", scorer.spent())


def propose(scorer: Scorer, current: Candidate, rng: random.Random, jump: float) -> Candidate | None:
    """A legal neighbour of `current`, or (with probability `jump`, or when it has none) a random point
    of the same binding."""
    k, point = current
    if rng.random() >= jump:
        near = random_neighbour(scorer.spaces[k], point, scorer.acg, rng)
        if near is not None:
            return k, near
    cand = (k, sample(scorer.spaces[k], rng))
    return cand if scorer.mapping(cand) is not None else None
