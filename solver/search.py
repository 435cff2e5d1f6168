"""What the local searches (anneal, genetic, learned) share: candidates over all bindings of a layer,
a scorer that scores each candidate once (a cache keyed by content) and counts the work honestly, and
the starting points.

Two oracles score a candidate. The *model* is `mapper.mapping.cost.evaluate` (exact, cheap: one evaluation).
A *measurement* lowers the mapping and runs it on the simulator (`sim.machine`), the project's
stand-in for hardware: the simulated cycles (energy, or their product for EDP) are the figure. A
measured candidate whose output differs from the reference, or that the simulator rejects, is
illegal. Programs larger than `max_instructions` are not measured (too costly: a hardware tuner's
time-out), which takes one evaluation to know.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> acg = load_acg("tiny")
    >>> scorer = Scorer(layer_spaces(layer, acg), acg, "latency", Budget(None, measure=True))
    >>> first = starts(scorer, random.Random(0), 1)[0]
    >>> scorer.score(first) == scorer.score(first), scorer.measurements, scorer.evaluations
    (True, 1, 1)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from fractions import Fraction

from mapper.mapping.cost import TIE_BREAK, Cost, evaluate, rank
from mapper.mapping.mapping import Mapping
from mapper.program.lower import lower
from mapper.spec.acg import ACG
from sim.machine import SimError, simulate
from solver.options import option
from solver.space import Point, Progress, Solution, Space, greedy_point, layer_spaces, legal, sample

Candidate = tuple[int, Point]  # (index of its space among the layer's spaces, point)
Key = tuple[Fraction, ...]  # `cost.rank`: the objective, then its tie-breaker

MAX_INSTRUCTIONS = 20_000  # default: larger programs are not measured


@dataclass(frozen=True)
class Budget:
    """What a search may spend: wall time, cost-model evaluations, simulator measurements (0: no limit
    of that kind), and which oracle scores candidates."""

    time_limit: float | None
    evaluations: int = 0
    measurements: int = 0
    measure: bool = False  # score by measurement (simulator) rather than by the cost model
    max_instructions: int = MAX_INSTRUCTIONS
    seed: int = 0  # of the simulator's random tensors


@dataclass(frozen=True)
class LocalSearchOptions:
    """The options `anneal` and `genetic` share (each strategy's own come after these)."""

    seed: int = option(0, 0, 2**31, "random seed (default: the run's --seed)")
    measure: bool = option(False, help="score by simulator measurements instead of the cost model")
    measurements: int = option(0, 0, 10**6, "stop after this many measurements (0: no limit)")
    max_instructions: int = option(MAX_INSTRUCTIONS, 1, 10**8, "larger programs are not measured")
    greedy_start: bool = option(True, help="start from the greedy mapping of each binding too (else random only)")

    def budget(self, time_limit: float | None) -> Budget:
        return Budget(time_limit, measurements=self.measurements, measure=self.measure,
                      max_instructions=self.max_instructions, seed=self.seed)


def program_instructions(cost: Cost) -> int:
    """About how many instructions lowering a mapping gives: one per compute plus at most three per
    tile transfer (alloc, move, free); known from `evaluate` before lowering."""
    return cost.instructions + 3 * sum(s.count for s in cost.streams)


class Scorer:
    """Scores candidates of a layer's spaces under one budget, each once, keeping the best and its
    history. The one mutable object of a search: the searches themselves are plain functions."""

    def __init__(self, spaces: list[Space], acg: ACG, objective: str, budget: Budget):
        self.spaces, self.acg, self.objective, self.budget = spaces, acg, objective, budget
        self.start = time.perf_counter()
        self.evaluations = self.measurements = 0
        self._mappings: dict[Candidate, Mapping | None] = {}
        self._predicted: dict[Candidate, Key | None] = {}
        self._measured: dict[Candidate, Key | None] = {}
        self.best: tuple[Key, Candidate] | None = None
        self.trace: list[Progress] = []

    # -- the oracles ---------------------------------------------------------------------------------
    def mapping(self, cand: Candidate) -> Mapping | None:
        """The legal mapping of a candidate, or None (legality is not an evaluation: no cost model)."""
        if cand not in self._mappings:
            self._mappings[cand] = legal(self.spaces[cand[0]], cand[1], self.acg)
        return self._mappings[cand]

    def predict(self, cand: Candidate) -> Fraction | None:
        """The cost model's objective (None: illegal); one evaluation the first time."""
        key = self._predict(cand)
        return None if key is None else key[0]

    def _predict(self, cand: Candidate) -> Key | None:
        if cand not in self._predicted:
            m = self.mapping(cand)
            if m is not None:
                self.evaluations += 1
                cost = evaluate(m, self.acg)
                measurable = program_instructions(cost) <= self.budget.max_instructions
                self._predicted[cand] = rank(cost, self.objective) if measurable or not self.budget.measure else None
            else:
                self._predicted[cand] = None
        return self._predicted[cand]

    def measure(self, cand: Candidate) -> Fraction | None:
        """The simulated objective (None: illegal, wrong or too large to measure); one measurement."""
        key = self._measure(cand)
        return None if key is None else key[0]

    def _measure(self, cand: Candidate) -> Key | None:
        if cand not in self._measured:
            key = None
            if self.predict(cand) is not None:  # legal and small enough
                self.measurements += 1
                try:
                    result = simulate(lower(self.mapping(cand)), self.acg, seed=self.budget.seed)
                except SimError:
                    result = None
                if result is not None and result.matches_reference:
                    cycles, energy = Fraction(result.cycles), Fraction(result.energy_pj)
                    figures = {"latency": cycles, "energy": energy, "edp": cycles * energy}
                    key = tuple(figures[f] for f in (self.objective, TIE_BREAK.get(self.objective)) if f)
            self._measured[cand] = key
        return self._measured[cand]

    def key(self, cand: Candidate) -> Key | None:
        """The budget's oracle as a lexicographic key (`cost.rank`; measured: the simulated figures in
        the same order); the best so far (the least key) and its history follow. The trace records
        improvements of the objective only (a tie-break improvement keeps its figure)."""
        key = self._measure(cand) if self.budget.measure else self._predict(cand)
        if key is not None and (self.best is None or key < self.best[0]):
            if self.best is None or key[0] < self.best[0][0]:
                self.trace.append(Progress(self.seconds, self.evaluations, self.measurements, float(key[0])))
            self.best = (key, cand)
        return key

    def score(self, cand: Candidate) -> Fraction | None:
        """The budget's oracle's objective (`key`'s first figure)."""
        key = self.key(cand)
        return None if key is None else key[0]

    def known(self, cand: Candidate) -> bool:
        """Whether scoring the candidate again would cost nothing."""
        return cand in (self._measured if self.budget.measure else self._predicted)

    # -- the budget ----------------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def spent(self) -> str:
        """The limit the search has reached ('' while it may go on)."""
        b = self.budget
        if b.time_limit is not None and self.seconds >= b.time_limit:
            return "time"
        if b.evaluations and self.evaluations >= b.evaluations:
            return "evaluations"
        if b.measurements and self.measurements >= b.measurements:
            return "measurements"
        return ""

    def solution(self, strategy: str, limit: str = "") -> Solution:
        """The search's result: its best mapping scored by the cost model (as every strategy reports),
        with the work counted."""
        if self.best is None:
            return Solution(strategy, self.objective, "infeasible", None, None, None, self.seconds, self.evaluations,
                            f"no legal mapping found in {self.evaluations} evaluations and {self.measurements} "
                            "measurements", limit, measurements=self.measurements)
        key, cand = self.best
        m = self.mapping(cand)
        objective = evaluate(m, self.acg).objective(self.objective) if self.budget.measure else key[0]
        return Solution(strategy, self.objective, "feasible", m, objective, None, self.seconds, self.evaluations,
                        limit=limit, measurements=self.measurements, trace=tuple(self.trace))


def starts(scorer: Scorer, rng: random.Random, count: int, greedy: bool = True, tries: int = 50) -> list[Candidate]:
    """Up to `count` distinct scorable candidates: the greedy point of each space (with `greedy`), then
    random samples (at most `tries` x count draws). Scored, so the best start is on the trace."""
    out: list[Candidate] = []
    for k, space in enumerate(scorer.spaces if greedy else ()):
        point = greedy_point(space, scorer.acg)
        if point is not None and len(out) < count and scorer.score((k, point)) is not None:
            out.append((k, point))
    for _ in range(tries * count):
        if len(out) >= count or scorer.spent():
            break
        cand = random_candidate(scorer.spaces, rng)
        if cand not in out and scorer.mapping(cand) is not None and scorer.score(cand) is not None:
            out.append(cand)
    return out


def random_candidate(spaces: list[Space], rng: random.Random) -> Candidate:
    k = rng.randrange(len(spaces))
    return k, sample(spaces[k], rng)


__all__ = ["Budget", "Candidate", "Scorer", "layer_spaces", "program_instructions", "random_candidate", "starts"]
