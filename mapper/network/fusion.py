"""Layer fusion: which consecutive steps keep their intermediate values on chip, decided by dynamic
programming over the step order with each candidate group's optimal cost.

A *group* is a run of consecutive steps. A value produced in the group and read only inside it (not
a network output, not part of a concatenation) may stay whole in an on-chip storage, its *home*,
instead of going to off-chip memory and coming back: the producer writes it there (or computes it in
place), the readers load their tiles from there. Each step of the group is then mapped by the layer
solver with that residency (`Layer.onchip`): a homed tensor's storage paths start at its home, and
everything the group keeps on chip while the step runs shrinks the capacity its tiles may use. The
simulator runs the same steps and checks the same capacity on its own.

A group's cost is the sum of its steps' objective, each the layer solver's optimum for that step in
that residency (for `edp`, the sum of the steps' energy-delay products, a proxy: a network's EDP is
not a sum). `best_partition` finds the partition of the order minimising the total by dynamic
programming over prefixes; `brute_force_partition` enumerates every partition (tests hold them equal).

The search costs only what can change the DP's choice. A candidate [i, j) is costed below a bound,
what it must cost less than to improve the best partition of the steps up to j found so far, and
each of its variants (home choice x whole, bands or cores) below the best variant so far; a variant
is left out unsolved when its steps' floors (`Costs.floor`: lower bounds that solve nothing, e.g.
`mapper.network.step_costs`) reach that bound, and stops as soon as its solved steps plus the floors
of the rest do (`_bounded_sum`: each distinct computation solved once, the heaviest first). A floor
never exceeds the cost, so whatever is left out costs at least its bound, and the DP, which keeps a
run only below it, chooses what costing everything would.

    >>> best_partition(3, lambda i, j, bound: {(0, 1): 5, (1, 2): 5, (2, 3): 5, (0, 2): 7}.get((i, j)))
    (12.0, ((0, 2), (2, 3)))
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from mapper.mapping.binding import bind
from mapper.network.bands import Bands, plan_bands
from mapper.network.cores import core_counts
from mapper.network.flow import layer_key
from mapper.program.network import Network
from mapper.program.windows import Slice
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer, OnChip

MAX_GROUP = 4  # steps per group: longer runs rarely keep a value on chip longer, and cost solves
MAX_HOME_CHOICES = 8  # home assignments tried per group (the first ones, in storage order)
BAND_COUNTS = (2, 4, 8, 16, 32)  # bands tried (at most one row each) for a group whose values do not fit whole

StepCost = Callable[[Layer], float | None]  # a step's objective at its optimum; None: no mapping
StepFloor = Callable[[Layer], float]  # a lower bound of a step's StepCost that solves nothing (math.inf: no mapping)
# A step's slices run at once, one per core: the objective of that split (None: some slice has no mapping).
ParallelCost = Callable[[list[Slice]], float | None]
MAX_PARALLEL_AXES = 2  # axes tried for a group's bands run at once on several cores
SLACK = 1e-9  # relative: a bound prunes only what reaches it by more than float rounding could


def no_floor(layer: Layer) -> float:
    """The floor that knows nothing (every step may cost 0)."""
    return 0.0


@dataclass(frozen=True)
class Costs:
    """What the search asks of the layer solver: `step`, a step's cost (a solve); `floor`, a lower
    bound of it that solves nothing; `parallel`, on several cores, the cost of a step's slices run at
    once (None: one core). `tally` counts the search's work (`SearchCounts`)."""

    step: StepCost
    floor: StepFloor = no_floor
    parallel: ParallelCost | None = None
    tally: Counter = field(default_factory=Counter, compare=False)


@dataclass(frozen=True)
class SearchCounts:
    """What the fusion search costed and what its bounds left out (`compile --json`: `fusion.search`)."""

    candidates: int = 0  # runs of 2..MAX_GROUP steps considered
    candidates_skipped: int = 0  # of those with variants, the ones whose every variant the bounds left out unsolved
    variants: int = 0  # ways to run a candidate costed: home choice x whole, bands or cores
    variants_skipped: int = 0  # left out by their steps' floors before any step was costed
    variants_cut: int = 0  # stopped by the floors of their steps left after some were costed
    steps: int = 0  # step costs asked for (solves, or answers known already)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Group:
    start: int  # steps[start:stop]
    stop: int
    homes: tuple[tuple[str, str], ...] = ()  # value -> the on-chip storage keeping it
    cost: float = 0.0
    bands: int = 1  # the group runs band by band (`mapper.network.bands`), each step over its slice of `dims`
    dims: tuple[str, ...] = ()  # per step of a banded group, the dim its bands cut
    axis: int = 0  # the axis of the group's values the bands cut
    cache: bool = False  # rows two bands share stay on chip (else the later band recomputes them)
    shared: int = 0  # rows two bands share (a convolution's halo), over the steps
    cores: int = 1  # >1: the bands run at once, one per core, each step's bands together


@dataclass(frozen=True)
class FusionPlan:
    groups: tuple[Group, ...]
    cost: float  # the objective summed over the steps, fused
    unfused_cost: float  # the same, every value off chip
    search: SearchCounts = SearchCounts()


def best_partition(n: int, group_cost: Callable[[int, int, float], float | None],
                   max_group: int = MAX_GROUP) -> tuple[float, tuple[tuple[int, int], ...]]:
    """The partition of steps 0..n-1 into runs [i, j) of at most `max_group` steps with the least total
    `group_cost(i, j, bound)` (None: not a group); singletons must have a cost. Ties keep shorter groups.

    `bound` is what the run must cost less than to improve the best partition of steps 0..j-1 found
    so far (best[j] - best[i], a hair above for rounding): `group_cost` may answer None for a run that
    costs at least that much, as the partition could not use it (the DP is the same; a test holds it
    equal to brute force with costs pruned so)."""
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, max(0, j - max_group) - 1, -1):
            c = group_cost(i, j, best[j] - best[i] + SLACK * abs(best[j]))  # (inf while best[j] is)
            if c is not None and best[i] + c < best[j]:
                best[j], cut[j] = best[i] + c, i
    runs, j = [], n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return best[n], tuple(reversed(runs))


def candidate_groups(n: int, max_group: int = MAX_GROUP) -> int:
    """How many runs of 2..`max_group` consecutive steps `best_partition` costs over `n` steps.

    >>> candidate_groups(13), candidate_groups(1)
    (33, 0)
    """
    return sum(min(j, max_group) - 1 for j in range(1, n + 1))


def brute_force_partition(n: int, group_cost: Callable[[int, int, float], float | None],
                          max_group: int = MAX_GROUP) -> tuple[float, tuple[tuple[int, int], ...]]:
    """`best_partition` by enumerating all 2^(n-1) partitions (for tests on small networks); every run
    is costed with no bound."""
    best: tuple[float, tuple[tuple[int, int], ...]] = (math.inf, ())
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0, *(k + 1 for k, c in enumerate(cuts) if c), n]
        runs = tuple(zip(bounds, bounds[1:], strict=False))
        costs = [group_cost(i, j, math.inf) if j - i <= max_group else None for i, j in runs]
        if all(c is not None for c in costs) and sum(costs) < best[0]:
            best = (float(sum(costs)), runs)
    return best


def fusable_values(net: Network, start: int, stop: int) -> list[str]:
    """The values produced in steps [start, stop) and read only there: candidates to stay on chip."""
    readers = net.readers()
    out = []
    for i in range(start, stop):
        value = net.steps[i].writes
        if net.buffer_of(value) != value or value in net.outputs:
            continue
        if readers[value] and all(i < r < stop for r in readers[value]):
            out.append(value)
    return out


def home_options(net: Network, acg: ACG, value: str) -> list[str]:
    """The on-chip storages that can keep `value` (or its bands): one storage (not per-instance) that
    its producer can write to and every reader can read from (each still has a binding)."""
    steps = net.steps
    producer = next(i for i, s in enumerate(steps) if s.writes == value)
    readers = net.readers()[value]
    out = []
    for name, st in acg.storages.items():
        if st.offchip or st.instances != 1:
            continue
        homes = {i: _homes_of(steps[i], {value: name}) for i in (producer, *readers)}
        if all(bind(replace(steps[i].layer, onchip=OnChip(h)), acg) for i, h in homes.items()):
            out.append(name)
    return out


def group_layers(net: Network, start: int, stop: int, homes: dict[str, str], layers: list[Layer] | None = None,
                 held: dict[str, int] | None = None, carried: bool = False,
                 readers: dict[str, list[int]] | None = None) -> list[Layer]:
    """The layers of steps [start, stop) (or `layers`, their slices for one band) with what the group
    keeps on chip while each runs: its own homed tensors, and the bytes of the homed values (or of the
    band's parts of them, `held`) that it does not touch itself, between their producer and last reader
    (`carried`: at every step, as rows cached for the next band stay across the band's end). `readers`:
    `net.readers()`, if the caller has it."""
    layers = layers or [s.layer for s in net.steps[start:stop]]
    first = {v: next(i for i in range(start, stop) if net.steps[i].writes == v) for v in homes}
    held = held or {v: layers[first[v] - start].output.bytes for v in homes}
    readers = readers or net.readers()
    last = {v: max(readers[v]) for v in homes}
    out = []
    for i, layer in zip(range(start, stop), layers, strict=True):
        step = net.steps[i]
        own = _homes_of(step, homes)
        reserved: dict[str, int] = {}
        for v, storage in homes.items():
            tensors = [layer.output] if step.writes == v else []
            tensors += [layer.tensors[operand] for operand, name in step.reads if name == v]
            extra = held.get(v, 0) - max((t.bytes for t in tensors), default=0)
            if (carried or first[v] <= i <= last[v]) and extra > 0:
                reserved[storage] = reserved.get(storage, 0) + extra
        onchip = OnChip(own, tuple(sorted(reserved.items())))
        out.append(replace(layer, onchip=onchip) if onchip else layer)
    return out


def band_layers(net: Network, group: Group) -> list[list[Slice | None]]:
    """Per band, per step of a banded group, its slice, a layer keeping its band's homed rows on chip
    (None: the step has no rows to compute in that band)."""
    plan = plan_bands(net, group.start, group.stop, group.axis, group.bands, group.cache)
    return _onchip_bands(net, group.start, group.stop, dict(group.homes), plan)


def _onchip_bands(net: Network, start: int, stop: int, homes: dict[str, str],
                  plan: Bands) -> list[list[Slice | None]]:
    out, whole, readers = [], [s.layer for s in net.steps[start:stop]], net.readers()
    for band, held in zip(plan.parts, plan.held, strict=True):
        kept = {v: b for v, b in held if v in homes}
        layers = [w if s is None else s.layer for s, w in zip(band, whole, strict=True)]
        layers = group_layers(net, start, stop, homes, layers, kept, carried=plan.cache, readers=readers)
        out.append([None if s is None else replace(s, layer=layer) for s, layer in zip(band, layers, strict=True)])
    return out


def _homes_of(step, homes: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The step's layer tensors that are homed values: its output and the operands reading one."""
    out = [(step.layer.expr.output.tensor, homes[step.writes])] if step.writes in homes else []
    out += [(operand, homes[name]) for operand, name in step.reads if name in homes]
    return tuple(out)


def group_cost(net: Network, acg: ACG, start: int, stop: int, costs: Costs | StepCost,
               options: dict[str, list[str]], parallel_cost: ParallelCost | None = None,
               bound: float = math.inf) -> Group | None:
    """The best way to run the group [start, stop) (None when it keeps nothing on chip that links all
    its steps, or nothing maps): a home for each value that can stay on chip, and the number of bands
    (1: whole values; more: band by band, each value's band on chip, the bands of the inputs that are
    not homed re-read per band where a step reads them whole; on several cores, bands at once on
    them). `costs`: a `Costs`, or a step cost alone (and `parallel_cost`). Only a group cheaper than
    `bound` is of use (None otherwise): a variant is left out, or its solves stop, once its steps'
    costs so far plus the floors of the rest reach the best found so far or `bound`."""
    costs = costs if isinstance(costs, Costs) else Costs(costs, parallel=parallel_cost)
    values = [v for v in fusable_values(net, start, stop) if options.get(v)]
    if not _bridged(net, start, stop, values):
        return None
    best, plans = None, {}  # (the band plans do not depend on the homes: made once for all)

    def limit() -> float:
        return bound if best is None else min(bound, best.cost)
    for choice in itertools.islice(itertools.product(*(options[v] for v in values)), MAX_HOME_CHOICES):
        homes = dict(zip(values, choice, strict=True))
        variants = group_variants(net, acg, start, stop, homes, costs, limit, plans)
        if costs.parallel is not None:
            variants = itertools.chain(variants, parallel_variants(net, acg, start, stop, homes, costs, limit, plans))
        for group in variants:
            if best is None or group.cost < best.cost:
                best = group
    return best


def group_variants(net: Network, acg: ACG, start: int, stop: int, homes: dict[str, str], costs: Costs | StepCost,
                   limit: Callable[[], float] = lambda: math.inf, plans: dict | None = None):
    """The group with `homes`: whole where its values fit their homes, else in each band count where
    every band of every homed value fits (per axis the bands may cut; more bands while they get cheaper);
    only variants cheaper than `limit()`. `plans`: the group's band plans made so far (`_plan`)."""
    costs = costs if isinstance(costs, Costs) else Costs(costs)
    capacity = {v: acg.storages[s].total_capacity for v, s in homes.items()}
    if all(net.buffers[v].bytes <= capacity[v] for v in homes):
        total = _bounded_sum(group_layers(net, start, stop, homes), costs.step, costs.floor, limit(), costs.tally,
                             layer_key)
        if total is not None:
            yield Group(start, stop, tuple(homes.items()), total)
        return  # whole values fit: bands would only re-read what is not homed (and cost solves)
    rank, seen = min(len(net.values[v].shape) for v in homes), set()
    for axis, cache in itertools.product(range(rank), (False, True)):
        previous = math.inf
        for count in BAND_COUNTS:
            plan = _plan(net, start, stop, axis, count, cache, plans)
            if plan is None or (cache and not plan.shared):
                break  # (caching is recomputing when bands share no rows)
            if _shape(plan) in seen:
                continue  # fewer bands than asked (the extent is short), or the mirror of rows: columns
            seen.add(_shape(plan))
            if any(b > capacity[v] for held in plan.held for v, b in held if v in homes):
                continue
            bands = _onchip_bands(net, start, stop, homes, plan)
            total = _bounded_sum([s.layer for band in bands for s in band if s], costs.step, costs.floor,
                                 min(previous, limit()), costs.tally, layer_key)
            if total is None:  # no mapping, or no cheaper than fewer bands or than the best found
                if previous < math.inf:
                    break
                continue
            previous = total
            dims = tuple(s.dim for s in plan.parts[0])
            yield Group(start, stop, tuple(homes.items()), total, plan.count, dims, axis, cache, plan.shared)


def parallel_variants(net: Network, acg: ACG, start: int, stop: int, homes: dict[str, str],
                      costs: Costs | ParallelCost, limit: Callable[[], float] = lambda: math.inf,
                      plans: dict | None = None):
    """The group with `homes` in as many bands as it runs on cores (each core 2..N that the ACG's core
    counts allow), the bands at once, one per core, each keeping its band's part of the homed values in
    its own core's storages; every step's bands run together (and end together) before the next step's.
    Rows two bands share are recomputed: a core cannot read another's storages. `costs`: a `Costs`
    with its `parallel`, or that cost alone."""
    costs = costs if isinstance(costs, Costs) else Costs(no_floor, parallel=costs)
    capacity = {v: acg.storages[s].total_capacity for v, s in homes.items()}
    rank, axes, seen = min(len(net.values[v].shape) for v in homes), 0, set()
    for axis in range(rank):
        made = [_plan(net, start, stop, axis, c, False, plans) for c in core_counts(acg)[1:]]
        made = [p for c, p in zip(core_counts(acg)[1:], made, strict=True) if p is not None and p.count == c]
        axes += bool(made)
        if axes > MAX_PARALLEL_AXES:
            return
        for plan in made:
            if _shape(plan) in seen or any(b > capacity[v] for held in plan.held for v, b in held if v in homes):
                continue
            seen.add(_shape(plan))
            bands = _onchip_bands(net, start, stop, homes, plan)
            total = _bounded_sum([[band[k] for band in bands] for k in range(stop - start)], costs.parallel, no_floor,
                                 limit(), costs.tally)
            if total is not None:
                dims = tuple(s.dim for s in plan.parts[0])
                yield Group(start, stop, tuple(homes.items()), total, plan.count, dims, axis, False,
                            plan.shared, cores=plan.count)


def _bounded_sum(items: list, cost: Callable, floor: Callable, bound: float, tally: Counter,
                 key: Callable | None = None) -> float | None:
    """The sum of `cost(item)` over `items` in their order if every one exists and the sum stays below
    `bound`; None as soon as either fails. Items with the same `key` cost the same: each distinct one
    is evaluated once (each is a solve), the heaviest first (its count x its floor). Before each
    evaluation, what is known of the sum (the items evaluated at their cost, the others at their
    floor, at most their cost) is checked against `bound`: when it reaches the bound the sum would
    too, and the rest is left out (counted in `tally`: the variant skipped, nothing evaluated, or cut
    short)."""
    tally["variants"] += 1
    keys = [key(x) for x in items] if key else list(range(len(items)))
    count, first = Counter(keys), {}
    for k, x in zip(keys, items, strict=True):
        first.setdefault(k, x)  # each key's first item, in the items' order
    floors: dict = {}
    for k, x in first.items():  # (a floor may cost a look at the layer's bindings: none once the bound is reached)
        floors[k] = floor(x)
        if _reaches(math.fsum(count[q] * f for q, f in floors.items()), bound):
            tally["variants_skipped"] += 1
            return None
    known: dict = {}
    todo = sorted(first, key=lambda k: -count[k] * floors[k])
    for n, k in enumerate(todo):
        if n:
            floors.update((q, floor(first[q])) for q in todo[n:])  # (what the solves so far taught)
            if _reaches(math.fsum(count[q] * known.get(q, floors[q]) for q in first), bound):
                tally["variants_cut"] += 1
                return None
        known[k] = cost(first[k])
        tally["steps"] += 1
        if known[k] is None:
            return None
    total = 0.0
    for k in keys:
        total += known[k]
    return total if total < bound else None


def _plan(net: Network, start: int, stop: int, axis: int, count: int, cache: bool, plans: dict | None) -> Bands | None:
    """`plan_bands`, made once per group and kept in `plans` (if given)."""
    if plans is None:
        return plan_bands(net, start, stop, axis, count, cache)
    if (axis, count, cache) not in plans:
        plans[(axis, count, cache)] = plan_bands(net, start, stop, axis, count, cache)
    return plans[(axis, count, cache)]


def _reaches(lower: float, bound: float) -> bool:
    """Whether a lower bound of a sum reaches `bound` by more than rounding could (`SLACK`)."""
    return lower >= bound + SLACK * abs(bound)


def _shape(plan: Bands) -> tuple:
    """What a band plan's solves depend on, up to the names of dims: its slices' extents (sorted), so
    that bands along columns, the mirror image of bands along rows of a square image, count as seen."""
    return plan.cache, tuple(tuple(None if s is None else tuple(sorted(s.layer.dims.values())) for s in band)
                             for band in plan.parts)


def _bridged(net: Network, start: int, stop: int, values: list[str]) -> bool:
    """Whether every boundary inside the run is crossed by a value kept on chip (otherwise the run is
    two independent groups, which the partition already considers)."""
    readers = net.readers()
    spans = [(next(i for i in range(start, stop) if net.steps[i].writes == v), max(readers[v])) for v in values]
    return all(any(p < k <= r for p, r in spans) for k in range(start + 1, stop))


def plan_fusion(net: Network, acg: ACG, costs: Costs | StepCost, max_group: int = MAX_GROUP,
                parallel_cost: ParallelCost | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> FusionPlan:
    """The partition of `net`'s steps into fused groups with the least total cost under `costs` (a
    `Costs`, or a step cost alone and, on several cores, `parallel_cost` for a group's bands run at
    once); `progress(what, done, total)` hears of each candidate group before it is costed, and of the
    last one done. Each candidate is costed only below what it must beat to improve the DP's best
    partition so far (`best_partition`'s bound), hence exactly where the partition can use it."""
    costs = costs if isinstance(costs, Costs) else Costs(costs, parallel=parallel_cost)
    n = len(net.steps)
    single = [costs.step(s.layer) for s in net.steps]
    unfused = math.fsum(c for c in single if c is not None)
    if any(c is None for c in single):  # a step with no mapping: nothing to compare, keep layer by layer
        return FusionPlan(tuple(Group(i, i + 1, (), c or 0.0) for i, c in enumerate(single)), unfused, unfused)
    options: dict[str, list[str]] = {}
    groups: dict[tuple[int, int], Group | None] = {}
    candidates = candidate_groups(n, max_group)
    tally, base = costs.tally, Counter(costs.tally)  # (a Costs may have searched before)

    def cost_of(i: int, j: int, bound: float) -> float | None:
        if j - i == 1:
            return single[i]
        if progress:
            names = f"{net.steps[i].layer.name} .. {net.steps[j - 1].layer.name}"
            progress(f"fusion search: {names} ({j - i} steps)", len(groups), candidates)
        for v in fusable_values(net, i, j):
            if v not in options:
                options[v] = home_options(net, acg, v)
        before = tally["variants"], tally["steps"]
        # no use unless it beats its steps apart, and the best partition of the steps up to j so far
        groups[(i, j)] = group_cost(net, acg, i, j, costs, options, bound=min(math.fsum(single[i:j]), bound))
        tally["candidates_skipped"] += tally["variants"] > before[0] and tally["steps"] == before[1]
        g = groups[(i, j)]
        return None if g is None else g.cost

    total, runs = best_partition(n, cost_of, max_group)
    if progress:
        progress("fusion search: done", len(groups), candidates)
    chosen = tuple(groups[(i, j)] if j - i > 1 else Group(i, j, (), single[i]) for i, j in runs)
    done = tally - base
    counts = SearchCounts(len(groups), *(done[k] for k in ("candidates_skipped", "variants", "variants_skipped",
                                                          "variants_cut", "steps")))
    return FusionPlan(chosen, total, unfused, counts)


def fused_network(net: Network, plan: FusionPlan) -> Network:
    """`net` with each step's layer carrying what its group keeps on chip."""
    steps = list(net.steps)
    for g in plan.groups:
        if g.homes:
            for i, layer in zip(range(g.start, g.stop), group_layers(net, g.start, g.stop, dict(g.homes)),
                                strict=True):
                steps[i] = replace(steps[i], layer=layer)
    return replace(net, steps=tuple(steps))
