"""The simulator's clock: engines that run their instructions in issue order, worked out from the ACG
alone (never from a cost formula).

- A move occupies its edge's *channel* (a DMA engine: it runs its transfers in issue order) and the
  *ports* of the nodes that have a `bytes_per_cycle` for bytes / the slowest bandwidth. A port is
  shared by every channel that touches it and serves them as a memory controller with a queue per
  channel does: a transfer takes the port's idle time from its start on, in as many pieces as that
  takes, so a later-issued load runs in the gaps an earlier write-back leaves, and a write-back
  issued before a load does not hold the load back while the port idles. If the edge has a set-up `latency`, the
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
    >>> up = Link(("edge:S->D",), 1.0, 0.0, 0, "", ("port:D",))
    >>> down = Link(("edge:D->S",), 1.0, 0.0, 0, "", ("port:D",))
    >>> clock.transfer(up, 0.0, 4), clock.transfer(up, 8.0, 4), clock.transfer(down, 0.0, 6)  # in the gaps
    (4.0, 12.0, 14.0)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field

from mapper.spec.acg import ACG, Edge, Storage

OUTSTANDING = 2  # transfers of one channel in flight: the next set-up overlaps the current data phase


@dataclass(frozen=True)
class Link:
    """What a move along one edge occupies: its channel, the ports it goes through, bandwidth, energy
    and set-up."""

    engines: tuple[str, ...]  # the channel: in issue order
    bandwidth: float  # bytes per cycle: the slowest of the channel and the ports
    pj_per_byte: float
    setup: int  # the edge's `latency`
    queue: str  # the set-up unit's engine name
    ports: tuple[str, ...] = ()  # node ports on its way, each held for bytes / bandwidth
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
    ports, shared = [], []
    for node in (src, dst):
        port = node.bytes_per_cycle
        if port:
            bandwidths.append(port)
            if core and node.offchip:
                shared.append((f"port:{node.name}", port))
            else:
                ports.append(f"{core}port:{node.name}")
    pj = src.read_pj_per_byte + dst.write_pj_per_byte + edge.pj_per_byte
    return Link((f"{core}edge:{src.name}->{dst.name}",), min(bandwidths), pj, edge.latency,
                f"{core}setup:{src.name}->{dst.name}", tuple(ports), tuple(shared))


def static_pj(acg: ACG, cycles: float) -> float:
    """The static energy of `cycles` cycles: `power` W x cycles / `clock_ghz` ns (1 W x 1 ns = 1000 pJ)."""
    return 1000.0 * acg.power * cycles / acg.clock_ghz


PRUNE_EVERY = 512  # a port's timeline drops the intervals no transfer can still use every so many pieces


@dataclass
class Timeline:
    """The busy intervals of one port, sorted and disjoint, and the channels that use it. No transfer
    starts before `floor` (the earliest time any of those channels is free), so intervals ending
    before it are dropped."""

    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    channels: set[str] = field(default_factory=set)
    floor: float = 0.0
    added: int = 0

    def blocked(self, t: float) -> tuple[float, float]:
        """The busy interval holding `t` or the next one after it ((inf, inf) if none)."""
        i = bisect_right(self.ends, t)
        return (self.starts[i], self.ends[i]) if i < len(self.starts) else (math.inf, math.inf)

    def add(self, s: float, e: float) -> None:
        """Mark [s, e) busy: it lies in an idle gap, so it only ever merges with its neighbours."""
        i = bisect_right(self.ends, s)
        if i and self.ends[i - 1] == s:
            i -= 1
            s = self.starts[i]
            del self.starts[i], self.ends[i]
        if i < len(self.starts) and self.starts[i] == e:
            e = self.ends[i]
            del self.starts[i], self.ends[i]
        self.starts.insert(i, s)
        self.ends.insert(i, e)
        self.added += 1


def fill(timelines: list[Timeline], start: float, duration: float) -> list[tuple[float, float]]:
    """The pieces, from `start` on, of `duration` cycles during which every port of `timelines` is idle.

    >>> a = Timeline([2.0], [5.0])
    >>> fill([a], 0.0, 4.0), fill([a, Timeline([6.0], [7.0])], 0.0, 4.0)
    ([(0.0, 2.0), (5.0, 7.0)], [(0.0, 2.0), (5.0, 6.0), (7.0, 8.0)])
    """
    pieces, t, left = [], start, duration
    while left > 0:
        nearest = [tl.blocked(t) for tl in timelines]
        if any(s <= t for s, _ in nearest):  # inside a busy interval: skip to its end
            t = max(e for s, e in nearest if s <= t)
            continue
        take = min(left, min(s for s, _ in nearest) - t)
        pieces.append((t, t + take))
        t, left = t + take, left - take
    return pieces


def first(pieces: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """The leading `duration` cycles of `pieces`: a shared port is held only for its own bytes' time."""
    out = []
    for s, e in pieces:
        if duration <= 0:
            break
        out.append((s, min(e, s + duration)))
        duration -= e - s
    return out


class Clock:
    """When every engine is next free, how long each was busy, and when the last result is complete."""

    def __init__(self) -> None:
        self.free: dict[str, float] = {}
        self.busy: dict[str, float] = {}
        self.finish = 0.0
        self.inflight: dict[str, deque] = {}
        self.timelines: dict[str, Timeline] = {}

    def occupy(self, names: tuple[str, ...] | list[str], start: float, duration: float) -> float:
        """Occupy the engines for `duration` from `start` or when the last of them frees up; the end."""
        free, busy = self.free, self.busy
        for e in names:
            start = max(start, free.get(e, 0.0))
        end = start + duration
        for e in names:
            free[e] = end
            busy[e] = busy.get(e, 0.0) + duration
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
        duration = nbytes / link.bandwidth
        if not link.ports and not link.shared:
            end = self.occupy(link.engines, start, duration)
        else:
            end = self.through_ports(link, start, duration, nbytes)
        if link.setup:
            flight.append(end)
        return end

    def through_ports(self, link: Link, start: float, duration: float, nbytes: int) -> float:
        """The data phase of a transfer through node ports: its channel in issue order, the ports in
        their idle time (`fill`); when it ends."""
        free, busy = self.free, self.busy
        holds = [(p, duration) for p in link.ports] + [(p, nbytes / rate) for p, rate in link.shared]
        lines = [self.timelines.setdefault(p, Timeline()) for p, _ in holds]
        for e in link.engines:
            start = max(start, free.get(e, 0.0))
        start = max([start] + [tl.floor for tl in lines])
        pieces = fill(lines, start, duration)
        end = pieces[-1][1] if pieces else start
        for e in link.engines:
            free[e] = end
            busy[e] = busy.get(e, 0.0) + duration
        for (port, held), tl in zip(holds, lines, strict=True):
            for s, e in first(pieces, held):
                tl.add(s, e)
            busy[port] = busy.get(port, 0.0) + held
            tl.channels.update(link.engines)
            if tl.added >= PRUNE_EVERY:
                self.prune(tl)
        self.finish = max(self.finish, end)
        return end

    def prune(self, tl: Timeline) -> None:
        """Drop the intervals of `tl` that end before any of its channels is next free."""
        tl.floor = max(tl.floor, min(self.free.get(c, 0.0) for c in tl.channels))
        i = bisect_right(tl.ends, tl.floor)
        del tl.starts[:i], tl.ends[:i]
        tl.added = 0

    def compute(self, engine: str, ready: float, interval: float, cycles: float) -> float:
        """An instruction on `engine` whose operands are ready at `ready`; when its result is complete."""
        start = max(ready, self.free.get(engine, 0.0))
        self.free[engine] = start + interval
        self.busy[engine] = self.busy.get(engine, 0.0) + interval
        end = start + cycles
        self.finish = max(self.finish, end)
        return end
