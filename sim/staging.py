"""The simulator's side of staging: tensors copied hop by hop along the ACG's staging routes.

Each storage of a route holds real arrays; a transfer copies a tensor from an edge's source node to
its destination (it must be wholly there: store and forward), checks the destination's capacity,
and is timed by the simulator's own engines (`sim.timing`: one channel per edge with its set-up
unit, the ports of nodes with a `bytes_per_cycle`). An intermediate node (the host's memory on the
way to a GPU) frees a tensor once it has been passed on. What arrives at the route's end is what
the next phase reads: the network simulation gets its input and weights from there, and the
returned outputs are compared with the reference where they land.

Energy: bytes x (source read + destination write + edge pJ/B) per hop, plus the ACG's static
`power` x the phase's cycles. The cost model's prediction is `mapper.program.staging.predict_phase`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapper.program.staging import Transfer
from mapper.spec.acg import ACG
from sim.machine import SimError
from sim.timing import Clock, link_for, static_pj


@dataclass(frozen=True)
class PhaseRun:
    cycles: float
    energy_pj: float
    arrived: dict[str, np.ndarray]  # what the route's last node holds at the end, by tensor
    landed: dict[str, float]  # when each tensor was wholly in the route's last node


def run_phase(transfers: tuple[Transfer, ...], acg: ACG, data: dict[str, np.ndarray]) -> PhaseRun:
    """Move `transfers` in order, starting from `data` (the tensors in the routes' first node).

    Raises SimError when a tensor is missing where a hop starts, or a node cannot hold it."""
    st = acg.staging
    assert st is not None
    clock = Clock()
    held: dict[str, dict[str, np.ndarray]] = {}  # node -> tensor -> array
    energy = 0.0
    last = None
    landed: dict[str, float] = {}
    for t in transfers:
        if not t.route:
            continue
        first, last = t.route[0].src, t.route[-1].dst
        if t.tensor not in data:
            raise SimError(f"staging: '{t.tensor}' is not in {first}")
        held.setdefault(first, {})[t.tensor] = data[t.tensor]
        ready = 0.0
        for e in t.route:
            src, dst = st.storage(e.src, acg), st.storage(e.dst, acg)
            here = held.get(e.src, {})
            if t.tensor not in here:
                raise SimError(f"staging: '{t.tensor}' is not in {e.src} when its move to {e.dst} starts")
            array = here[t.tensor]
            if array.nbytes != t.nbytes:
                raise SimError(f"staging: '{t.tensor}' has {array.nbytes} B, the transfer moves {t.nbytes} B")
            there = held.setdefault(e.dst, {})
            used = sum(a.nbytes for a in there.values())
            if used + t.nbytes > dst.total_capacity:
                raise SimError(f"staging: {e.dst} holds {dst.total_capacity} B, needs {used + t.nbytes} B "
                               f"to receive '{t.tensor}'")
            link = link_for(e, src, dst)
            ready = clock.transfer(link, ready, t.nbytes)
            energy += t.nbytes * link.pj_per_byte
            there[t.tensor] = array.copy()
            if e.src != first:
                del here[t.tensor]  # an intermediate node forwards and frees
        landed[t.tensor] = ready
    cycles = clock.finish
    return PhaseRun(cycles, energy + static_pj(acg, cycles), dict(held.get(last, {})) if last else {}, landed)


def prefetch_end(steps: list[tuple[float, tuple[str, ...]]], landed: dict[str, float]) -> float:
    """When the last step ends if each starts as soon as the previous one has ended and the tensors it
    needs have landed (`steps`: simulated cycles and needed tensors, in order): staging overlapped with
    compute. The two phases' runs are composed, not co-simulated: their sharing of the target's port is
    not modelled (a lower bound on a prefetching request's time).

    >>> prefetch_end([(5.0, ("w1",)), (5.0, ("w2",))], {"w1": 10.0, "w2": 12.0})
    20.0
    """
    end = 0.0
    for cycles, needs in steps:
        end = max([end, *(landed[t] for t in needs)]) + cycles
    return end
