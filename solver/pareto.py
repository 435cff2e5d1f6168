"""The latency-energy Pareto front of a layer, by epsilon constraints on CP-SAT.

The two ends are the lexicographic optima: the fastest mapping (then the most frugal among the
fastest) and the most frugal (then the fastest among those). Between them, for `points` - 2 latency
caps, the least energy of a mapping at most that slow (then the least latency at that energy). The
caps double their distance from the fast end (1, 3, 7, 15, ... parts of 2**(points-1) - 1 of the
span): the knee, where a few percent of latency buys most of the energy, sits near the fast end.
Every point is a `cpsat.solve`, so each is proven optimal for its cap when its status is 'optimal'
(the exact model, within the limit). Points that another dominates (no slower and no hungrier, one
of the two strictly) are dropped, so the front is sorted
by latency with energy falling.

`pick` chooses a point under a latency budget (the most frugal point within it), as a network-level
budget would per layer.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import template_layer
    >>> points = front(template_layer("gemm", {"M": 64, "N": 64, "K": 256}), load_acg("tpu_like"), points=4)
    >>> [p.latency for p in points] == sorted(p.latency for p in points)
    True
    >>> all(a.energy > b.energy for a, b in zip(points, points[1:]))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mapper.mapping.cost import evaluate
from mapper.mapping.mapping import Mapping
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver import cpsat
from solver.space import Solution

MAX_POINTS = 16


@dataclass(frozen=True)
class FrontPoint:
    """One mapping of the front: its figures (the cost model's), the latency cap it was found under
    (None for the two ends) and whether its energy is proven minimal for that cap."""

    mapping: Mapping
    latency: Fraction
    energy: Fraction
    cap: Fraction | None
    status: str  # 'optimal' or 'feasible' (the solve stopped at its limit)
    seconds: float

    def to_dict(self) -> dict:
        return {"latency_cycles": float(self.latency), "energy_pj": float(self.energy),
                "latency_cap": None if self.cap is None else float(self.cap), "status": self.status,
                "capability": self.mapping.binding.capability, "solve_seconds": round(self.seconds, 3)}


def front(layer: Layer, acg: ACG, points: int = 5, time_limit: float = 10.0, seed: int = 0) -> tuple[FrontPoint, ...]:
    """The Pareto front of `layer` on `acg` in at most `points` points (2 <= points <= MAX_POINTS);
    empty when the layer has no mapping."""
    if not 2 <= points <= MAX_POINTS:
        raise ValueError(f"a front has 2 to {MAX_POINTS} points, not {points}")
    fast = _point(cpsat.solve(layer, acg, "latency", time_limit, seed=seed), None, acg)
    frugal = _point(cpsat.solve(layer, acg, "energy", time_limit, seed=seed), None, acg)
    found = [p for p in (fast, frugal) if p is not None]
    if len(found) == 2 and frugal.latency > fast.latency:
        span, parts = frugal.latency - fast.latency, 2 ** (points - 1) - 1
        for i in range(1, points - 1):
            cap = fast.latency + span * (2 ** i - 1) / parts
            found.append(_point(cpsat.solve(layer, acg, "energy", time_limit, seed=seed, latency_cap=cap), cap, acg))
    return _non_dominated([p for p in found if p is not None])


def _point(solution: Solution, cap: Fraction | None, acg: ACG) -> FrontPoint | None:
    if solution.mapping is None:
        return None
    c = evaluate(solution.mapping, acg)
    proven = solution.status == "optimal" and solution.tie_break in ("optimal", None)
    return FrontPoint(solution.mapping, c.latency, c.energy, cap, "optimal" if proven else "feasible",
                      solution.seconds)


def _non_dominated(found: list[FrontPoint]) -> tuple[FrontPoint, ...]:
    """The points no other point dominates, by latency; of equal figures, the first found."""
    out: list[FrontPoint] = []
    for p in sorted(found, key=lambda p: (p.latency, p.energy)):
        if not out or p.energy < out[-1].energy:
            out.append(p)
    return tuple(out)


def pick(points: tuple[FrontPoint, ...], latency_budget: Fraction) -> FrontPoint | None:
    """The most frugal point at most `latency_budget` cycles slow (None if every point is slower).

    >>> from types import SimpleNamespace as P
    >>> pts = (P(latency=10, energy=9), P(latency=12, energy=5), P(latency=20, energy=2))
    >>> pick(pts, 15).energy, pick(pts, 9)
    (5, None)
    """
    within = [p for p in points if p.latency <= latency_budget]
    return min(within, key=lambda p: (p.energy, p.latency)) if within else None
