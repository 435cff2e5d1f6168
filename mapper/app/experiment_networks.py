"""Experiments over whole networks (`level: networks`): one case per ACG variant x network x
strategy x objective, each compiled and simulated end to end by `mapper.network.compile` (the same
pipeline as `covenant compile`), staging included where the ACG has a `staging` field.

A case's row has the database's usual columns, read as a whole network's: `predicted_cycles`,
`simulated_cycles` and `energy_pj` are the network program's (compute), `valid` is the end-to-end
verdict (every step and the returned outputs equal the reference), `macs` the sum over steps; and
the staging columns (`staging_in_cycles`, `staging_out_cycles`, `staging_energy_pj`,
`staging_bytes`, `end_to_end_cycles`, `end_to_end_energy_pj`, `end_to_end_prefetch_cycles`,
`clock_ghz`, `power_w`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mapper import __version__
from mapper.app.experiment import RESULT_FORMAT, Experiment, Strategy, Variant
from mapper.app.results import ResultRow
from mapper.mapping.mapping import acg_digest
from mapper.network.compile import CompileOptions, NetworkResult, compile_network
from mapper.network.flow import layer_key
from mapper.spec.loader import SpecError
from mapper.spec.workload import Workload

NETWORK_LAYER = "(network)"  # the `layer` column of a network row
NETWORK_FORMAT = 2  # bump when a network row's meaning changes (2: end_to_end_prefetch_cycles)


@dataclass(frozen=True)
class NetworkCase:
    """One whole network to compile and simulate (or to find in the database)."""

    variant: Variant
    workload: Workload
    strategy: Strategy
    objective: str
    repetition: int
    seed: int
    validate: bool
    fuse: str

    @property
    def time_limit(self) -> float:
        return self.strategy.time_limit

    @property
    def key(self) -> str:
        """A content hash of what the result depends on: the ACG's meaning, every layer's computation and
        the graph's edges, the compile options."""
        wl = self.workload
        what = (RESULT_FORMAT, "network", NETWORK_FORMAT, acg_digest(self.variant.acg),
                tuple(layer_key(x) for x in wl.layers), tuple(sorted(wl.graph.edges)), self.strategy.name,
                self.strategy.options, self.objective, round(self.time_limit, 3), self.seed, self.validate, self.fuse)
        return hashlib.sha256(repr(what).encode()).hexdigest()[:24]

    @property
    def title(self) -> str:
        return f"{self.workload.name} on {self.variant.label} ({self.strategy.label}, {self.objective})"

    def coordinates(self) -> dict[str, Any]:
        """The row fields that come from the experiment, not from the result."""
        return {"acg": self.variant.label, "settings": dict(self.variant.settings), "workload": self.workload.name,
                "layer": NETWORK_LAYER, "count": 1, "strategy": self.strategy.label, "objective": self.objective,
                "repetition": self.repetition}


def network_cases(exp: Experiment) -> list[NetworkCase]:
    """Every case of a `level: networks` experiment, in a stable order."""
    return [NetworkCase(v, wl, s, o, r, exp.seed + r, exp.validate, exp.fuse)
            for v in exp.variants for wl in exp.networks for s in exp.strategies for o in exp.objectives
            for r in range(exp.repetitions)]


def run_network_case(case: NetworkCase) -> ResultRow:
    """Compile and simulate one network; its result row (never raises: a failure is a row with status
    'error')."""
    start = time.perf_counter()
    options = CompileOptions(case.objective, case.strategy.name, case.time_limit, case.validate, case.seed,
                             fuse=case.fuse, strategy_options=case.strategy.options)
    try:
        row = network_row(compile_network(case.workload, case.variant.acg, options))
    except SpecError as exc:
        row = ResultRow("", status="error", error=str(exc))
    except Exception as exc:  # a bug must not stop the other cases; the row says what happened
        row = ResultRow("", status="error", error=f"internal error: {type(exc).__name__}: {exc}")
    acg = case.variant.acg
    return replace(row, key=case.key, acg=case.variant.label, acg_digest=acg_digest(acg),
                   workload=case.workload.name, layer=NETWORK_LAYER, layer_digest=case.key[:16],
                   strategy=case.strategy.label, objective=case.objective, time_limit=case.time_limit,
                   seed=case.seed, clock_ghz=acg.clock_ghz, power_w=acg.power, version=__version__,
                   wall_seconds=time.perf_counter() - start, finished=datetime.now(UTC).isoformat(timespec="seconds"))


def network_row(result: NetworkResult) -> ResultRow:
    """The figures of a compiled network as a result row (its key and the case's coordinates left to
    `run_network_case`)."""
    t = result.totals()
    records = result.records
    statuses = {r.status for r in records}
    status = "infeasible" if not result.mapped else "optimal" if statuses == {"optimal"} else "feasible"
    row = ResultRow("", status=status, macs=sum(r.macs for r in records), predicted_cycles=t.predicted_cycles,
                    simulated_cycles=t.simulated_cycles, energy_pj=t.energy_pj, solve_seconds=t.solve_seconds,
                    valid=result.valid,
                    error=result.error or (f"unmapped: {', '.join(t.unmapped)}" if t.unmapped else None))
    staging = t.staging
    if staging is None:  # the network's tensors start in the memory the layers read: compute is all
        compute = t.simulated_cycles if t.simulated_cycles is not None else t.predicted_cycles
        return replace(row, staging_in_cycles=0.0, staging_out_cycles=0.0, staging_energy_pj=0.0, staging_bytes=0,
                       end_to_end_cycles=compute, end_to_end_energy_pj=t.energy_pj,
                       end_to_end_prefetch_cycles=compute)
    return replace(row, staging_in_cycles=staging.in_cycles, staging_out_cycles=staging.out_cycles,
                   staging_energy_pj=staging.in_energy_pj + staging.out_energy_pj,
                   staging_bytes=staging.in_bytes + staging.out_bytes,
                   end_to_end_cycles=staging.end_to_end_cycles, end_to_end_energy_pj=staging.end_to_end_energy_pj,
                   end_to_end_prefetch_cycles=staging.end_to_end_prefetch_cycles)
