"""Staging: where a network's tensors start, and what moving them costs (the compiler's side).

An ACG with a `staging` field (`mapper.acg.Staging`) keeps a network's input and weights in a storage
farther out than the off-chip memory its layers read: a drive's flash, or remote storage behind a
network and the host. A request is served cold (a serverless invocation finds nothing in the
device's memory), in three phases that run one after the other:

1. **in**: the network inputs, then every step's weights in step order, each one transfer per edge
   of the inbound route (store and forward: a tensor leaves a node once it is wholly there; tensors
   pipeline, the next one's first hop runs while this one's second does);
2. **compute**: the network program, as `covenant compile` runs it;
3. **out**: the network outputs back along the outbound route.

This module builds the transfers (`staging_plan`) and predicts their time and energy the way the
cost model charges a transfer: set-up `latency` and data (bytes / the slowest of the edge and the
ports it touches) back to back on every edge, a flow shop over the route, and bytes x (read + write +
edge pJ/B) plus the ACG's static `power` x time. The simulator (`sim.staging`) executes the same
transfers with its own engines and clock.

    >>> from mapper.acg import load_acg
    >>> from mapper.network.program import build_network
    >>> from mapper.workload import load_workload
    >>> plan = staging_plan(build_network(load_workload("tiny_net")), load_acg("dscs_drive"))
    >>> [t.tensor for t in plan.inbound][:2], [e.dst for e in plan.inbound[0].route]
    (['conv1.I', 'conv1.W'], ['DRAM'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from mapper.acg import ACG, Edge
from mapper.dtypes import dtype_bytes
from mapper.network.program import Network


@dataclass(frozen=True)
class Transfer:
    """One tensor moved whole along a route (one transfer per edge)."""

    tensor: str  # a network input or output value, or a weight `layer.operand`
    nbytes: int
    route: tuple[Edge, ...]


@dataclass(frozen=True)
class StagingPlan:
    source: str
    target: str
    inbound: tuple[Transfer, ...]  # inputs, then weights in step order
    outbound: tuple[Transfer, ...]  # the network's outputs

    @property
    def inbound_bytes(self) -> int:
        return sum(t.nbytes for t in self.inbound)

    @property
    def outbound_bytes(self) -> int:
        return sum(t.nbytes for t in self.outbound)


@dataclass(frozen=True)
class PhaseCost:
    cycles: float
    energy_pj: float  # dynamic (bytes x pJ/B per hop) + static (power x cycles)


def staging_plan(net: Network, acg: ACG) -> StagingPlan | None:
    """The transfers of a cold request on `acg` (None when the ACG has no `staging`)."""
    st = acg.staging
    if st is None:
        return None

    def value_bytes(name: str) -> int:
        v = net.values[name] if name in net.values else net.buffers[name]
        return math.prod(v.shape) * dtype_bytes(v.dtype)
    inbound = [Transfer(name, value_bytes(name), st.inbound) for name in net.inputs]
    inbound += [Transfer(f"{s.layer.name}.{w}", s.layer.tensors[w].bytes, st.inbound)
                for s in net.steps for w in s.layer.weights]
    outbound = tuple(Transfer(name, value_bytes(name), st.outbound) for name in net.outputs)
    return StagingPlan(st.source, st.target, tuple(inbound), outbound)


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

    @property
    def phase_in(self) -> PhaseCost:
        return self.simulated_in or self.predicted_in

    @property
    def phase_out(self) -> PhaseCost:
        return self.simulated_out or self.predicted_out

    def totals(self, compute_cycles: float | None, compute_energy_pj: float | None, clock_ghz: float) -> dict:
        """The `total` entries of `covenant compile --json` (simulated figures where there are some)."""
        cycles = None if compute_cycles is None else self.phase_in.cycles + compute_cycles + self.phase_out.cycles
        energy = None if compute_energy_pj is None else \
            self.phase_in.energy_pj + compute_energy_pj + self.phase_out.energy_pj
        return {"staging": {"from": self.plan.source, "to": self.plan.target,
                            "in_bytes": self.plan.inbound_bytes, "out_bytes": self.plan.outbound_bytes,
                            "in_transfers": len(self.plan.inbound),
                            "in_cycles": self.phase_in.cycles, "out_cycles": self.phase_out.cycles,
                            "in_energy_pj": self.phase_in.energy_pj, "out_energy_pj": self.phase_out.energy_pj,
                            "predicted_in_cycles": self.predicted_in.cycles,
                            "predicted_out_cycles": self.predicted_out.cycles,
                            "simulated": self.simulated_in is not None, "returned_valid": self.returned_valid},
                "end_to_end_cycles": cycles, "end_to_end_energy_pj": energy,
                "end_to_end_ms": None if cycles is None else cycles / clock_ghz / 1e6}


def predict_staging(net: Network, acg: ACG) -> StagingResult | None:
    """The plan of a cold request on `acg` and its predicted phases (None without `staging`)."""
    plan = staging_plan(net, acg)
    if plan is None:
        return None
    return StagingResult(plan, predict_phase(plan.inbound, acg), predict_phase(plan.outbound, acg))
