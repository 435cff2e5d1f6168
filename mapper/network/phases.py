"""Where a compile's time goes: wall seconds per phase (`time.perf_counter`), in the order they run.

    schedule       the order with the smallest activation peak (`--order optimal`)
    build          the network program from the workload, in that order
    calibrate      the seeded tensors and the reference run that sets the requantisation shifts
    layer_mapping  each step solved alone (and, on several cores, its splits over them)
    fusion_search  the candidate groups of steps, each step solved with what its group keeps on chip
                   (for its objective only, `mapper.network.step_costs`), most left out by bounds
    final_mapping  each step's mapping in the chosen groups (solved in full), its split
    memory_plan    the off-chip address plan and the staging plan
    lowering       the mappings lowered to programs (only when simulating)
    simulation     the network on the simulator, compared with the reference

The phases up to `memory_plan` fall within `compile_seconds`, `lowering` and `simulation` within
`simulation_seconds`. `Stopwatch` measures them during one compile; `PhaseTimes` is the record.

    >>> watch = Stopwatch()
    >>> with watch("build"):
    ...     pass
    >>> times = watch.times()
    >>> list(times.seconds())[:3], times.build >= 0.0
    (['schedule', 'build', 'calibrate'], True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PHASES = ("schedule", "build", "calibrate", "layer_mapping", "fusion_search", "final_mapping", "memory_plan",
          "lowering", "simulation")


@dataclass(frozen=True)
class PhaseTimes:
    """A compile's wall seconds per phase (`PHASES`), the solves of the three phases that solve (each
    distinct layer or slice once: how many, the solver's seconds over them; the fusion search's steps
    answered without a solve, and its candidates left out unsolved) and the slowest solve:
    `total.phases` and the entries after it in `covenant compile --json`."""

    schedule: float = 0.0
    build: float = 0.0
    calibrate: float = 0.0
    layer_mapping: float = 0.0
    fusion_search: float = 0.0
    final_mapping: float = 0.0
    memory_plan: float = 0.0
    lowering: float = 0.0
    simulation: float = 0.0
    layer_solves: int = 0  # the steps solved alone (and their slices over cores)
    layer_solve_seconds: float = 0.0
    fusion_solves: int = 0  # the candidate groups' steps (and bands) solved with what the group keeps on chip
    fusion_solve_seconds: float = 0.0
    fusion_reused: int = 0  # steps answered by their solve without reservations (which did not bind)
    fusion_skipped: int = 0  # candidate groups left out by their bounds with none of their steps solved
    final_solves: int = 0  # the chosen groups' steps solved in full (the search solves for the objective only)
    final_solve_seconds: float = 0.0
    slowest_solve: str | None = None  # the layer (or slice) whose solve took longest, of the whole compile
    slowest_solve_seconds: float = 0.0
    cache_hits: int = 0  # the solves (of every phase) the solve cache served (solver/cache.py)

    def seconds(self) -> dict[str, float]:
        """Phase name -> seconds, in the order the phases run."""
        return {name: getattr(self, name) for name in PHASES}

    @property
    def total(self) -> float:
        return math.fsum(self.seconds().values())

    def to_dict(self) -> dict:
        """The entries of `total` in `covenant compile --json`."""
        slowest = None if self.slowest_solve is None else \
            {"layer": self.slowest_solve, "seconds": self.slowest_solve_seconds}
        return {"phases": self.seconds(), "layer_solves": self.layer_solves,
                "layer_solve_seconds": self.layer_solve_seconds, "fusion_solves": self.fusion_solves,
                "fusion_solve_seconds": self.fusion_solve_seconds, "fusion_reused": self.fusion_reused,
                "fusion_skipped": self.fusion_skipped, "final_solves": self.final_solves,
                "final_solve_seconds": self.final_solve_seconds, "slowest_solve": slowest,
                "cache_hits": self.cache_hits}


class Stopwatch:
    """One compile's clock: `with watch("build"): ...` adds the block's wall seconds to the phase
    (a phase may be timed in several blocks); `note` sets the record's other figures; `times` gives
    the record."""

    def __init__(self) -> None:
        self._seconds = dict.fromkeys(PHASES, 0.0)
        self._figures: dict = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if phase not in self._seconds:
            raise KeyError(f"unknown phase '{phase}' (one of {', '.join(PHASES)})")
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[phase] += time.perf_counter() - start

    def note(self, **figures) -> None:
        """The record's figures other than seconds (`PhaseTimes`' solve counts, seconds, slowest solve)."""
        self._figures.update(figures)

    def times(self) -> PhaseTimes:
        """The record so far."""
        return PhaseTimes(**self._seconds, **self._figures)
