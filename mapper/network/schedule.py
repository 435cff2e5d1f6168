"""Memory-aware scheduling of whole networks: the operator order with the smallest activation peak.

What is scheduled: the workload's layers, the order `build_network(wl, order)` takes. Each layer is a
*unit*: its own step followed by the conversion steps the network program runs right after it
(requantisation, a stand-alone relu), as the compiler runs them. What is measured: the memory model
of `mapper.program.memory` over the network program's steps, so the peak of an order here is exactly
`peak_bytes(build_network(wl, order))` (tests hold them equal on every shipped network).

The exact algorithm is SERENITY's (Ahn et al., MLSys 2020): dynamic programming over the sets of
scheduled units. The bytes live after a set S of units depends on S only, not on the order inside
it, so the best peak of reaching S is min over the last unit u of max(best(S - u), peak while u runs).
States are bitmasks, expanded one unit at a time from the zero-indegree frontier, and pruned by

- an upper bound: the greedy order's peak (a state that cannot beat it is dropped);
- a soft budget, raised adaptively: states whose peak exceeds the budget are dropped; when no order
  survives, the smallest dropped peak is a proven lower bound and the next budget;
- divide and conquer: a unit every path passes through (comparable to every other unit) splits the
  order into segments scheduled independently, from a known live set;
- a lower bound: the largest single-step footprint (a step's inputs and output are live together).

Past a time limit it returns the best order found with its gap to the proven lower bound.

    >>> from mapper.spec.workload import load_workload
    >>> g = memory_graph(load_workload("tiny_net"))
    >>> best = optimal_schedule(g)
    >>> best.proven_optimal, best.peak_bytes <= order_peak(g, g.units)
    (True, True)
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import networkx as nx

from mapper.program.network import build_network, topological_order
from mapper.spec.loader import SpecError
from mapper.spec.workload import Workload


@dataclass(frozen=True)
class Touch:
    """How one unit touches one buffer: the first of its steps that writes it and the last that
    reads it (-1: none), with the buffer's size and who else writes or reads it."""

    bit: int
    size: int
    writers: int  # bitmask of units
    readers: int  # bitmask of units
    pinned_start: bool  # a network input: allocated before any step
    pinned_end: bool  # a network output: live until the end
    first_write: int
    last_read: int


@dataclass(frozen=True)
class MemoryGraph:
    """The scheduling problem of a network, as plain data over unit indices.

    `units` are the workload's layers in the file's topological order; `preds[u]` is a bitmask of
    the units `u` depends on; `touches[u]` the buffers its steps read or write; `footprints[u]` the
    bytes each of its steps reads and writes (what must be live during that step whatever the order).
    """

    name: str
    units: tuple[str, ...]
    steps: tuple[tuple[str, ...], ...]  # per unit, the network program's steps it runs
    preds: tuple[int, ...]
    touches: tuple[tuple[Touch, ...], ...]
    footprints: tuple[tuple[int, ...], ...]
    input_bytes: int
    output_bytes: int

    @property
    def full(self) -> int:
        return (1 << len(self.units)) - 1

    def lower_bound(self) -> tuple[int, str]:
        """A bound no order beats, and what sets it: the largest single-step footprint, or the network's
        inputs (all live at the first step) or outputs (all live at the last)."""
        best = (self.input_bytes, "the network's inputs")
        best = max(best, (self.output_bytes, "the network's outputs"))
        for steps, sizes in zip(self.steps, self.footprints, strict=True):
            for step, size in zip(steps, sizes, strict=True):
                best = max(best, (size, f"step '{step}'"))
        return best


@dataclass(frozen=True)
class Schedule:
    """An order of the units with its peak; `lower_bound` is proven (equal to the peak when optimal)."""

    order: tuple[str, ...]
    peak_bytes: int
    lower_bound: int
    seconds: float
    states: int = 0  # DP states expanded

    @property
    def proven_optimal(self) -> bool:
        return self.peak_bytes == self.lower_bound

    @property
    def gap(self) -> float:
        return 0.0 if self.proven_optimal else (self.peak_bytes - self.lower_bound) / self.peak_bytes


class ScheduleError(SpecError):
    pass


def onchip_capacity(acg) -> tuple[str, int, int]:
    """Where activations could stay on chip: the largest on-chip storage (its name and the bytes of one
    instance: a tensor lives in one addressable memory, and replicated per-PE storage holds no shared
    tensor), and, for reference, all on-chip storage together."""
    onchip = [s for s in acg.storages.values() if not s.offchip]
    if not onchip:
        return "-", 0, 0
    largest = max(onchip, key=lambda s: s.capacity)
    return largest.name, largest.capacity, sum(s.total_capacity for s in onchip)


def memory_graph(wl: Workload) -> MemoryGraph:
    """The units, dependencies and buffer touches of `wl`'s network program (see the module doc)."""
    net = build_network(wl)
    names = [layer.name for layer in topological_order(wl)]
    index = {name: i for i, name in enumerate(names)}
    unit_of: list[int] = []
    steps: list[list[str]] = [[] for _ in names]
    for step in net.steps:
        u = index.get(step.layer.name, unit_of[-1] if unit_of else -1)
        if u < 0 or (step.layer.name not in index and names[u] != step.reads[0][1]):
            raise AssertionError(f"conversion step '{step.layer.name}' does not follow its producer")
        unit_of.append(u)
        steps[u].append(step.layer.name)
    buffers = list(net.buffers)
    bit = {b: i for i, b in enumerate(buffers)}
    writers = [0] * len(buffers)
    readers = [0] * len(buffers)
    for i, step in enumerate(net.steps):
        writers[bit[net.buffer_of(step.writes)]] |= 1 << unit_of[i]
        for _, name in step.reads:
            readers[bit[net.buffer_of(name)]] |= 1 << unit_of[i]
    inputs = {net.buffer_of(n) for n in net.inputs}
    outputs = {net.buffer_of(n) for n in net.outputs}
    touch: list[dict[str, list[int]]] = [{} for _ in names]  # unit -> buffer -> [first write, last read]
    footprints: list[list[int]] = [[] for _ in names]
    position = [0] * len(net.steps)
    for i, step in enumerate(net.steps):
        u = unit_of[i]
        position[i] = j = len(footprints[u])
        here = {net.buffer_of(step.writes)} | {net.buffer_of(name) for _, name in step.reads}
        footprints[u].append(sum(net.buffers[b].bytes for b in here))
        out = touch[u].setdefault(net.buffer_of(step.writes), [-1, -1])
        out[0] = j if out[0] < 0 else out[0]
        for _, name in step.reads:
            touch[u].setdefault(net.buffer_of(name), [-1, -1])[1] = j
    preds = [0] * len(names)
    for u, v in wl.graph.edges:
        preds[index[v]] |= 1 << index[u]
    touches = tuple(tuple(Touch(bit[b], net.buffers[b].bytes, writers[bit[b]], readers[bit[b]], b in inputs,
                                b in outputs, w, r) for b, (w, r) in t.items()) for t in touch)
    return MemoryGraph(wl.name, tuple(names), tuple(tuple(s) for s in steps), tuple(preds), touches,
                       tuple(tuple(f) for f in footprints), sum(net.buffers[b].bytes for b in inputs),
                       sum(net.buffers[b].bytes for b in outputs))


# --------------------------------------------------------------------------------------------------
# The memory model, incrementally: live bytes after a set of units, the peak while one more runs

def live_after(g: MemoryGraph, done: int) -> int:
    """The bytes live once the units in `done` (a bitmask) have run."""
    seen: dict[int, int] = {}
    for touches in g.touches:
        for t in touches:
            allocated = t.pinned_start or t.writers & done
            if allocated and (t.pinned_end or t.readers & ~done):
                seen[t.bit] = t.size
    return sum(seen.values())


def run_unit(g: MemoryGraph, done: int, live: int, u: int) -> tuple[int, int]:
    """(peak during unit `u`, live bytes after it), from the set `done` with `live` bytes live."""
    during, after = unit_delta(g, done, u)
    return live + during, live + after


def unit_delta(g: MemoryGraph, done: int, u: int) -> tuple[int, int]:
    """What unit `u` adds to the bytes live before it, at its peak and after it, given the set `done`:
    each buffer it touches is live over the steps from its allocation (before `u`, or the step that
    first writes it) to its release (after `u` if anyone else still reads it or it is an output, else
    the step that last reads it). Depends on `done` only through those buffers' writers and readers."""
    after_set = done | (1 << u)
    profile = [0] * len(g.footprints[u])
    last = len(profile) - 1
    freed = stays = 0
    for t in g.touches[u]:
        before = t.pinned_start or t.writers & done
        kept = t.pinned_end or t.readers & ~after_set
        if before:
            freed += t.size
        if kept:
            stays += t.size
        for j in range(0 if before else t.first_write, (last if kept else t.last_read) + 1):
            profile[j] += t.size
    return max(profile) - freed, stays - freed


def order_peak(g: MemoryGraph, order) -> int:
    """The peak of running the units in `order` (names): equal to memory.py's peak of the network
    built with that order."""
    index = {name: i for i, name in enumerate(g.units)}
    done, live, peak = 0, live_after(g, 0), 0
    for name in order:
        u = index[name]
        if g.preds[u] & ~done:
            raise ScheduleError(g.name, None, name, f"'{name}' runs before one of its inputs' producers")
        step_peak, live = run_unit(g, done, live, u)
        peak = max(peak, step_peak)
        done |= 1 << u
    return peak


# --------------------------------------------------------------------------------------------------
# Orders: the file's, greedy, brute force

def file_schedule(g: MemoryGraph) -> Schedule:
    start = time.perf_counter()
    return Schedule(g.units, order_peak(g, g.units), g.lower_bound()[0], time.perf_counter() - start)


def greedy_schedule(g: MemoryGraph) -> Schedule:
    """Repeatedly run the ready unit that leaves the fewest bytes live (ties: the smaller peak while it
    runs, then the file's order): linear in the edges, often optimal on chains with short branches."""
    start = time.perf_counter()
    done, live, peak, order = 0, live_after(g, 0), 0, []
    while done != g.full:
        ready = [u for u in range(len(g.units)) if not done >> u & 1 and not g.preds[u] & ~done]
        best = min(ready, key=lambda u: (*reversed(run_unit(g, done, live, u)), u))
        step_peak, live = run_unit(g, done, live, best)
        peak = max(peak, step_peak)
        done |= 1 << best
        order.append(g.units[best])
    return Schedule(tuple(order), peak, g.lower_bound()[0], time.perf_counter() - start)


def brute_force_schedule(g: MemoryGraph) -> Schedule:
    """Every topological order (for tests on small graphs): the first with the smallest peak."""
    start = time.perf_counter()
    dag = nx.DiGraph()
    dag.add_nodes_from(g.units)
    n = len(g.units)
    dag.add_edges_from((g.units[p], g.units[v]) for v, m in enumerate(g.preds) for p in range(n) if m >> p & 1)
    best = min(((order_peak(g, o), tuple(o)) for o in nx.all_topological_sorts(dag)), key=lambda x: x[0])
    return Schedule(best[1], best[0], best[0], time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------
# The exact DP

def cut_points(g: MemoryGraph) -> list[int]:
    """The states (bitmasks) at the units every path passes through: each unit's ancestors and itself.
    Any order runs them in sequence, so the segments between consecutive ones are independent.

    >>> from mapper.spec.workload import load_workload
    >>> g = memory_graph(load_workload("tiny_net"))
    >>> [g.units[m.bit_length() - 1] for m in cut_points(g)]
    ['conv1', 'mix', 'add', 'pool', 'gap', 'fc']
    """
    n = len(g.units)
    anc = [0] * n
    for u in range(n):  # units are in a topological order
        for p in range(u):
            if g.preds[u] >> p & 1:
                anc[u] |= anc[p] | (1 << p)
    desc = [0] * n
    for u in range(n):
        for a in range(n):
            if anc[u] >> a & 1:
                desc[a] |= 1 << u
    return [anc[u] | 1 << u for u in range(n) if anc[u] | desc[u] | 1 << u == g.full]


@dataclass
class _Search:
    g: MemoryGraph
    deadline: float | None
    states: int = 0
    timed_out: bool = False
    cache: dict = field(default_factory=dict)  # (unit, the relevant part of the state) -> unit_delta

    def __post_init__(self):
        self.relevant = [0] * len(self.g.units)  # per unit, the units whose presence changes its delta
        for u, touches in enumerate(self.g.touches):
            for t in touches:
                self.relevant[u] |= t.writers | t.readers

    def delta(self, state: int, u: int) -> tuple[int, int]:
        key = (u, state & self.relevant[u])
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = unit_delta(self.g, state, u)
        return found


def optimal_schedule(g: MemoryGraph, budget: int | None = None, time_limit: float | None = None,
                     upper: Schedule | None = None) -> Schedule:
    """The order with the smallest peak, proven (or, past `time_limit` seconds, the best found with a
    proven lower bound). `budget` is the first soft budget (default: the lower bound); the order to
    beat, segment by segment, is the best of `upper`, the greedy order and the file's."""
    start = time.perf_counter()
    lb, what = g.lower_bound()
    if budget is not None and budget < lb:
        raise ScheduleError(g.name, None, "--budget", f"the budget of {budget} B is below the largest single-step "
                            f"footprint, {lb} B ({what}): no order fits it")
    upper = min(filter(None, (upper, greedy_schedule(g), file_schedule(g))), key=lambda s: s.peak_bytes)
    search = _Search(g, None if time_limit is None else start + time_limit)
    index = {name: i for i, name in enumerate(g.units)}
    order: list[str] = []
    peak, proven = 0, lb
    for lo, hi in itertools.pairwise(dict.fromkeys([0, *cut_points(g), g.full])):
        fallback = [name for name in upper.order if (hi & ~lo) >> index[name] & 1]
        seg_order, seg_peak, seg_lb = _segment(search, lo, hi, max(lb, budget or 0), fallback)
        order += seg_order
        peak, proven = max(peak, seg_peak), max(proven, seg_lb)
    return Schedule(tuple(order), peak, min(proven, peak), time.perf_counter() - start, search.states)


def _segment(search: _Search, lo: int, hi: int, budget: int, fallback: list[str]) -> tuple[list[str], int, int]:
    """The best order of the units in hi - lo, starting from state lo, with its peak and a proven lower
    bound on that segment's optimum. Orders must beat `fallback` (an order of the same units), first
    improved by a beam search (the DP keeping the best `BEAM` states per level); the soft budget rises
    until an order fits or none can."""
    g = search.g
    live0 = live_after(g, lo)
    done, live, upper = lo, live0, 0
    for name in fallback:
        u = g.units.index(name)
        step_peak, live = run_unit(g, done, live, u)
        upper, done = max(upper, step_peak), done | 1 << u
    if (hi & ~lo).bit_count() > 2:
        found, _ = _dp(search, lo, hi, live0, upper - 1, beam=BEAM)
        if found is not None:
            fallback, upper = found
    proven = 0
    while not search.timed_out:
        cap = min(budget, upper - 1)
        found, dropped = _dp(search, lo, hi, live0, cap)
        if found is not None:
            return found[0], found[1], found[1]
        if search.timed_out:
            break
        proven = max(proven, dropped)  # no order stays within cap: each exceeds it, by `dropped` at least
        if cap >= upper - 1:
            return fallback, upper, upper  # nothing beats the fallback: it is optimal
        budget = max(dropped, budget + (upper - budget) // 4)
    return fallback, upper, proven


BEAM = 64


def _dp(search: _Search, lo: int, hi: int, live0: int, cap: int,
        beam: int | None = None) -> tuple[tuple[list[str], int] | None, int]:
    """Level-by-level DP from state `lo` to `hi`, dropping transitions whose peak exceeds `cap`. Returns
    the best order found (None if none fits `cap`) and the smallest dropped peak (a lower bound on any
    order's peak when none fits). With `beam`, only that many states per level (the smallest peak,
    then live bytes) are kept: a heuristic, its dropped peak bounds nothing."""
    g, delta = search.g, search.delta
    todo = hi & ~lo
    level: dict[int, tuple[int, int]] = {lo: (0, live0)}  # state -> (best peak so far, live bytes)
    parents: list[dict[int, tuple[int, int]]] = []  # per level: state -> (previous state, unit)
    dropped = 1 << 62
    for _ in range(todo.bit_count()):
        nxt: dict[int, tuple[int, int]] = {}
        back: dict[int, tuple[int, int]] = {}
        for state, (peak, live) in level.items():
            search.states += 1
            if search.deadline is not None and search.states % 512 == 0 and time.perf_counter() > search.deadline:
                search.timed_out = True
                return None, dropped
            avail = todo & ~state
            while avail:
                low = avail & -avail
                avail ^= low
                u = low.bit_length() - 1
                if g.preds[u] & ~state:
                    continue
                during, added = delta(state, u)
                new_peak = max(peak, live + during)
                if new_peak > cap:
                    dropped = min(dropped, new_peak)
                    continue
                key = state | low
                if key not in nxt or new_peak < nxt[key][0]:
                    nxt[key] = (new_peak, live + added)
                    back[key] = (state, u)
        if not nxt:
            return None, dropped
        if beam is not None and len(nxt) > beam:
            nxt = dict(sorted(nxt.items(), key=lambda kv: kv[1])[:beam])
        level = nxt
        parents.append(back)
    (peak, _), = level.values()
    order, state = [], hi
    for back in reversed(parents):
        state, u = back[state]
        order.append(g.units[u])
    return (order[::-1], peak), dropped
