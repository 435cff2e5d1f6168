"""The simulator's clock: engines that run their instructions in issue order, worked out from the ACG
alone (never from a cost formula).

- A move occupies its *data engines* (the edge's channel and the ports of nodes that have a
  `bytes_per_cycle`) for bytes / the slowest bandwidth. If the edge has a set-up `latency`, the
  transfer first spends that many cycles in the channel's *set-up unit* (descriptor fetch, address
  translation, the first beat from DRAM). Set-ups run one at a time, but a set-up may proceed while
  earlier transfers move data, with at most `OUTSTANDING` transfers of a channel in flight. (The
  cost model charges set-up and data back to back on every engine of the transfer: the gap between
  the two measures what that approximation misses.)
- A compute occupies its node's engine for the capability's initiation interval (`interval`, or its
  whole `cycles` without one); its result is complete `cycles` after it starts. It reads its input
  tiles while it issues (their buffers may be refilled once the interval is over) and writes its
  output when complete. Instructions of one node complete in issue order (a pipeline), so
  consecutive accumulations into one tile overlap.

    >>> clock = Clock()
    >>> link = Link(("edge:A->B",), 4.0, 0.0, 10, "setup:A->B")
    >>> [clock.transfer(link, 0.0, 8) for _ in range(3)]   # 10 set-up + 2 data; next set-up overlaps
    [12.0, 22.0, 32.0]
    >>> clock.compute("compute:X", 0.0, interval=2, cycles=5), clock.compute("compute:X", 0.0, 2, 5)
    (5.0, 7.0)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from mapper.acg import ACG, Edge, Storage

OUTSTANDING = 2  # transfers of one channel in flight: the next set-up overlaps the current data phase


@dataclass(frozen=True)
class Link:
    """What a move along one edge occupies: its data engines, bandwidth, energy and set-up."""

    engines: tuple[str, ...]
    bandwidth: float  # bytes per cycle: the slowest of the channel and the ports
    pj_per_byte: float
    setup: int  # the edge's `latency`
    queue: str  # the set-up unit's engine name
    shared: tuple[tuple[str, float], ...] = ()  # off-chip ports several cores share: (engine, bytes/cycle)


def link_of(acg: ACG, src: str, dst: str, core: str = "") -> Link | None:
    """The link of edge src -> dst, or None if the ACG has no such edge. `core` prefixes the engine
    names of one core of a multi-core run; its off-chip ports are then shared (a port carries several
    cores' transfers at once up to its bandwidth: each holds it for its bytes / the port's bandwidth)."""
    edge = acg.edge(src, dst)
    return None if edge is None else link_for(edge, acg.storages[src], acg.storages[dst], core)


def link_for(edge: Edge, src: Storage, dst: Storage, core: str = "") -> Link:
    """The link of `edge` between storages `src` and `dst` (see `link_of`; the staging routes of
    `sim.staging` use it directly: their nodes are not among the layers' storages)."""
    bandwidths = [edge.bytes_per_cycle]
    names = [f"{core}edge:{src.name}->{dst.name}"]
    shared = []
    for node in (src, dst):
        port = node.bytes_per_cycle
        if port:
            bandwidths.append(port)
            if core and node.offchip:
                shared.append((f"port:{node.name}", port))
            else:
                names.append(f"{core}port:{node.name}")
    pj = src.read_pj_per_byte + dst.write_pj_per_byte + edge.pj_per_byte
    return Link(tuple(names), min(bandwidths), pj, edge.latency, f"{core}setup:{src.name}->{dst.name}", tuple(shared))


def static_pj(acg: ACG, cycles: float) -> float:
    """The static energy of `cycles` cycles: `power` W x cycles / `clock_ghz` ns (1 W x 1 ns = 1000 pJ)."""
    return 1000.0 * acg.power * cycles / acg.clock_ghz


class Clock:
    """When every engine is next free, how long each was busy, and when the last result is complete."""

    def __init__(self) -> None:
        self.free: dict[str, float] = {}
        self.busy: dict[str, float] = {}
        self.finish = 0.0
        self.inflight: dict[str, deque] = {}

    def occupy(self, names: tuple[str, ...] | list[str], start: float, duration: float,
               slots: tuple[tuple[str, float], ...] = ()) -> float:
        """Occupy the engines for `duration` from `start` or when the last of them frees up, each of
        `slots` (engine, time) only for its time; the end."""
        free, busy = self.free, self.busy
        for e in names:
            start = max(start, free.get(e, 0.0))
        for e, _ in slots:
            start = max(start, free.get(e, 0.0))
        end = start + duration
        for e in names:
            free[e] = end
            busy[e] = busy.get(e, 0.0) + duration
        for e, t in slots:
            free[e] = start + t
            busy[e] = busy.get(e, 0.0) + t
        self.finish = max(self.finish, end)
        return end

    def transfer(self, link: Link, ready: float, nbytes: int) -> float:
        """A move of `nbytes` along `link` whose data and slot are ready at `ready`; when it lands."""
        start = ready
        if link.setup:
            flight = self.inflight.setdefault(link.queue, deque(maxlen=OUTSTANDING))
            if len(flight) == OUTSTANDING:
                start = max(start, flight[0])
            start = self.occupy((link.queue,), start, link.setup)
        end = self.occupy(link.engines, start, nbytes / link.bandwidth,
                          tuple((port, nbytes / rate) for port, rate in link.shared))
        if link.setup:
            flight.append(end)
        return end

    def compute(self, engine: str, ready: float, interval: float, cycles: float) -> float:
        """An instruction on `engine` whose operands are ready at `ready`; when its result is complete."""
        start = max(ready, self.free.get(engine, 0.0))
        self.free[engine] = start + interval
        self.busy[engine] = self.busy.get(engine, 0.0) + interval
        end = start + cycles
        self.finish = max(self.finish, end)
        return end
