"""The compiler's prediction of a cold request's staging (`mapper.program.staging`), charged the way the
cost model charges a transfer: set-up `latency` and data (bytes / the slowest of the edge and the
ports of its two nodes) back to back on every edge, a flow shop over the route (a tensor's next hop
once it has landed), bytes x (read + write + edge pJ/B), plus the ACG's static `power` x time.
The simulator never reads this module: `sim.staging` times the same transfers on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction

from mapper.program.network import Network
from mapper.program.staging import StagingPlan, Transfer, staging_plan
from mapper.spec.acg import ACG


@dataclass(frozen=True)
class PhaseCost:
    cycles: float
    energy_pj: float  # dynamic (bytes x pJ/B per hop) + static (power x cycles)


def predict_phase(transfers: tuple[Transfer, ...], acg: ACG) -> PhaseCost:
    """Predicted cycles and energy of moving `transfers` in order: on each edge set-up and data back to
    back, a transfer's next hop once this one has landed (flow-shop recurrence, exact rationals)."""
    st = acg.staging
    assert st is not None
    free: dict[tuple[str, str], Fraction] = {}
    end = Fraction(0)
    energy = Fraction(0)
    for t in transfers:
        ready = Fraction(0)
        for e in t.route:
            src, dst = st.storage(e.src, acg), st.storage(e.dst, acg)
            bandwidth = min(Fraction(x) for x in (e.bytes_per_cycle, src.bytes_per_cycle, dst.bytes_per_cycle) if x)
            start = max(ready, free.get((e.src, e.dst), Fraction(0)))
            ready = free[(e.src, e.dst)] = start + e.latency + t.nbytes / bandwidth
            energy += t.nbytes * (Fraction(src.read_pj_per_byte) + Fraction(dst.write_pj_per_byte)
                                  + Fraction(e.pj_per_byte))
        end = max(end, ready)
    static = 1000 * Fraction(acg.power) * end / Fraction(acg.clock_ghz)
    return PhaseCost(float(end), float(energy + static))


@dataclass(frozen=True)
class StagingResult:
    """A cold request's staging: the plan, its predicted phases and (once validated) simulated ones."""

    plan: StagingPlan
    predicted_in: PhaseCost
    predicted_out: PhaseCost
    simulated_in: PhaseCost | None = None
    simulated_out: PhaseCost | None = None
    returned_valid: bool | None = None  # the outputs that came back equal the reference
    prefetch_cycles: float | None = None  # simulated end to end with staging overlapped (sim.staging.prefetch_end)

    @property
    def phase_in(self) -> PhaseCost:
        return self.simulated_in or self.predicted_in

    @property
    def phase_out(self) -> PhaseCost:
        return self.simulated_out or self.predicted_out

    def totals(self, compute_cycles: float | None, compute_energy_pj: float | None,
               clock_ghz: float) -> StagingTotals:
        """The staging entries of `covenant compile --json`'s `total` (simulated figures where there are some)."""
        cycles = None if compute_cycles is None else self.phase_in.cycles + compute_cycles + self.phase_out.cycles
        energy = None if compute_energy_pj is None else \
            self.phase_in.energy_pj + compute_energy_pj + self.phase_out.energy_pj
        return StagingTotals(self.plan.source, self.plan.target, self.plan.inbound_bytes, self.plan.outbound_bytes,
                             len(self.plan.inbound), self.phase_in.cycles, self.phase_out.cycles,
                             self.phase_in.energy_pj, self.phase_out.energy_pj, self.predicted_in.cycles,
                             self.predicted_out.cycles, self.simulated_in is not None, self.returned_valid,
                             cycles, energy, None if cycles is None else cycles / clock_ghz / 1e6,
                             self.prefetch_cycles)


@dataclass(frozen=True)
class StagingTotals:
    """A cold request's staging and end-to-end figures: the `staging` entry of `covenant compile --json`'s
    `total` (`source`, `target`: its `from` and `to`; up to `returned_valid`) and the `end_to_end_*`
    entries beside it (None where a step has no figure). `to_dict` gives those entries."""

    source: str  # the storage the request's tensors start in (JSON `from`)
    target: str  # the storage the layers read them from (JSON `to`)
    in_bytes: int
    out_bytes: int
    in_transfers: int
    in_cycles: float
    out_cycles: float
    in_energy_pj: float
    out_energy_pj: float
    predicted_in_cycles: float
    predicted_out_cycles: float
    simulated: bool
    returned_valid: bool | None
    end_to_end_cycles: float | None
    end_to_end_energy_pj: float | None
    end_to_end_ms: float | None
    end_to_end_prefetch_cycles: float | None

    def to_dict(self) -> dict:
        staging = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("end_to_end")}
        staging = {"from": staging.pop("source"), "to": staging.pop("target"), **staging}
        return {"staging": staging, **{f.name: getattr(self, f.name) for f in fields(self)
                                       if f.name.startswith("end_to_end")}}


def predict_staging(net: Network, acg: ACG) -> StagingResult | None:
    """The plan of a cold request on `acg` and its predicted phases (None without `staging`)."""
    plan = staging_plan(net, acg)
    if plan is None:
        return None
    return StagingResult(plan, predict_phase(plan.inbound, acg), predict_phase(plan.outbound, acg))
