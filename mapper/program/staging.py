"""Staging: where a network's tensors start, and what moving them costs (the compiler's side).

An ACG with a `staging` field (`mapper.spec.acg.Staging`) keeps a network's input and weights in a storage
farther out than the off-chip memory its layers read: a drive's flash, or remote storage behind a
network and the host. A request is served cold (a serverless invocation finds nothing in the
device's memory), in three phases that run one after the other:

1. **in**: the network inputs, then every step's weights in step order, each one transfer per edge
   of the inbound route (store and forward: a tensor leaves a node once it is wholly there; tensors
   pipeline, the next one's first hop runs while this one's second does);
2. **compute**: the network program, as `covenant compile` runs it;
3. **out**: the network outputs back along the outbound route.

This module builds the transfers (`staging_plan`), plain data that both sides read: the compiler
predicts their time and energy (`mapper.network.staging_cost`), the simulator (`sim.staging`)
executes them with its own engines and clock.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.program.network import build_network
    >>> from mapper.spec.workload import load_workload
    >>> plan = staging_plan(build_network(load_workload("tiny_net")), load_acg("dscs_drive"))
    >>> [t.tensor for t in plan.inbound][:2], [e.dst for e in plan.inbound[0].route]
    (['conv1.I', 'conv1.W'], ['DRAM'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mapper.program.network import Network
from mapper.spec.acg import ACG, Edge
from mapper.spec.dtypes import dtype_bytes


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
