"""The search space every strategy explores, as small value objects and pure functions over them.

For one layer on one ACG the space has one `Space` per candidate binding. A `Point` of a space picks:

- per layer dim, a *chain* of tile sizes, one per level below off-chip memory, ending with the
  instruction's spatial extent: (t_1, ..., t_{L-1}, s) with s | t_{L-1} | ... | t_1; t_1 divides the
  extent or, for a *paddable* dim (`solver/padding.py`), is a padded size: the last tile is partial and
  the outermost loop runs ceil(extent / t_1) times (candidates per dim stay few: the divisors, plus
  for paddable dims that need them the capability dim's extent and the balanced split as instruction
  extents, and ceil(blocks / k) outer tiles when the blocks have no divisor near a half or a quarter);
- per tensor, one of its storage paths (placement; paths that only stage through an extra
  storage are left out);
- per loop level that moves data (0 .. L-2), which tensor is *stationary*: the loops that do not
  index it run innermost, so its tile stays while they iterate (None: no tensor is);
- which (tensor, storage) tiles are double-buffered.

Loop order is canonical given the stationary tensor X of a level: the loops that index X, then
those that do not. A level admits X only if some loop there (factor > 1) indexes every tensor but X,
so that exactly X gets reuse (and None only if some loop indexes every tensor, or the level is
empty). This is what makes the CP-SAT encoding of the cost model exact; it leaves out only orders in
which every loop of a level skips two or more tensors.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> spaces = layer_spaces(layer, load_acg("tiny"))
    >>> [s.binding.capability for s in spaces], spaces[0].levels
    (['mvmul', 'mvmul', 'vmac'], 2)
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass
from fractions import Fraction

from mapper.mapping.binding import Binding, bind, no_binding_reason
from mapper.mapping.cost import evaluate, rank
from mapper.mapping.mapping import (
    Mapping,
    acg_digest,
    bare_layer,
    greedy_mapping,
    resource_problems,
    storage_demand,
    tile_capacity,
)
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.padding import divisors, fixed_sizes, paddable, padded_blocks

Chain = tuple[int, ...]


@dataclass(frozen=True)
class Space:
    """The decisions available for one binding of a layer."""

    layer: Layer
    binding: Binding
    levels: int  # L: level 0 loops over off-chip tiles, level L-1 issues the instructions
    dims: tuple[str, ...]
    options: tuple[tuple[Chain, ...], ...]  # per dim: its chains (t_1, ..., t_{L-1}, s)
    paths: tuple[tuple[tuple[str, ...], ...], ...]  # per tensor (layer order): its storage paths
    stationary: tuple[str | None, ...]  # the stationary choices a level may admit
    double: tuple[tuple[str, str], ...]  # (tensor, storage) pairs that may be double-buffered

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(self.layer.tensors)

    def size(self) -> int:
        """How many points the space has (before legality)."""
        return math.prod(len(o) for o in self.options) * math.prod(len(p) for p in self.paths) * \
            len(self.stationary) ** (self.levels - 1) * 2 ** len(self.double)


@dataclass(frozen=True)
class Point:
    chains: tuple[Chain, ...]  # per dim
    paths: tuple[int, ...]  # per tensor: index into Space.paths
    stationary: tuple[str | None, ...]  # per level 0 .. L-2
    double: tuple[tuple[str, str], ...]  # sorted


@dataclass(frozen=True)
class Progress:
    """The best figure a search had found after so much work (one entry per improvement)."""

    seconds: float
    evaluations: int  # cost-model evaluations so far
    measurements: int  # simulator measurements so far
    best: float  # the best figure so far, in the strategy's own terms (predicted or measured)


@dataclass(frozen=True)
class Solution:
    """What every strategy returns for one layer."""

    strategy: str
    objective_name: str
    status: str  # 'optimal', 'feasible', 'infeasible' or 'error' (an internal error: see reason)
    mapping: Mapping | None
    objective: Fraction | None  # the strategy's figure for its mapping (cycles, pJ or cycles x pJ)
    bound: Fraction | None  # a proven lower bound (None when the strategy proves nothing)
    seconds: float
    evaluated: int = 0  # candidates scored (exhaustive and random)
    reason: str = ""  # why there is no mapping (or, with status 'error', the internal error)
    limit: str = ""  # the limit that stopped the search before it proved optimality ('' if none)
    model_objective: Fraction | None = None  # the model's own figure for the mapping (CP-SAT)
    exact: bool = True  # whether the model's figures are the cost model's (else a relaxation: a bound)
    bounds: tuple[tuple[str, Fraction], ...] = ()  # proven lower bounds of other figures (EDP: latency, energy)
    measurements: int = 0  # simulator runs of lowered candidates (the learned strategy's costly oracle)
    trace: tuple[Progress, ...] = ()  # each improvement of the best so far (the local searches)
    # CP-SAT's tie-break (`cost.rank`'s second figure, minimised with the objective held at its value):
    # 'optimal' (proven minimal), 'feasible' (not proven) or None (no tie-break: EDP, other strategies)
    tie_break: str | None = None
    cached: bool = False  # served by the solve cache (solver/cache.py), not solved in this run

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return float((self.objective - self.bound) / self.objective) if self.objective else 0.0


class NoMapping(ValueError):
    """The layer cannot run on the ACG at all; the message says why."""


class SpaceTooLarge(NoMapping):
    """The space is larger than an enumerating strategy takes on (not a property of the layer)."""


# --------------------------------------------------------------------------------------------------
# Building the space

def irrelevant(layer: Layer) -> dict[str, frozenset[str]]:
    """Per dim, the tensors whose accesses do not use it (the tensors its loop reuses)."""
    return dict(_irrelevant(layer.expr))


@functools.lru_cache(maxsize=1024)
def _irrelevant(expr) -> tuple[tuple[str, frozenset[str]], ...]:
    accesses = [expr.output, *expr.accesses]
    return tuple((d, frozenset(t for t in expr.tensors if not any(d in a.dims for a in accesses if a.tensor == t)))
                 for d in expr.dims)


def layer_spaces(layer: Layer, acg: ACG) -> list[Space]:
    """One Space per non-dominated binding. A binding that fuses, into every capability dim, a subset
    of what another binding of the same capability and tensors fuses is dominated: the larger one
    with spatial factor 1 on the extra dims is the same program."""
    layer = bare_layer(layer)
    bindings = bind(layer, acg)

    def fused_sets(b: Binding) -> dict[str | None, frozenset[str]]:
        return {e: frozenset(b.fused(e)) for e in acg.capability(b.capability).expr.dims}

    kept, twins, sets = [], set(), [fused_sets(b) for b in bindings]
    for b, mine in zip(bindings, sets, strict=True):
        dominated = any(o is not b and o.capability == b.capability and o.tensors == b.tensors
                        and theirs != mine and all(mine[e] <= s for e, s in theirs.items())
                        for o, theirs in zip(bindings, sets, strict=True))
        key = twin_key(b, acg)
        if not dominated and key not in twins:
            twins.add(key)
            kept.append(b)
    return [_space(layer, b, acg) for b in kept]


def twin_key(b: Binding, acg: ACG) -> tuple:
    """The binding up to interchangeable operands: inputs the capability reads alike (the same
    indices, operand storages and dtype, as vrmpy's A and B or vmac's X and Y) play the same part,
    so two bindings that differ only by which layer tensor plays which of them run the same
    instructions on the same storages at the same cost (the binder admits both only where the
    computation is commutative in them). `layer_spaces` keeps the first of such twins."""
    cap = acg.capability(b.capability)
    out = cap.expr.output.tensor

    def role(operand: str) -> tuple:
        return (operand == out, tuple(a.indices for a in cap.expr.accesses if a.tensor == operand),
                cap.operands[operand], cap.dtypes[operand])

    return (b.capability, b.dims, b.placements, b.immediates,
            tuple(sorted((t, role(o)) for t, o in b.tensors)))


def _space(layer: Layer, b: Binding, acg: ACG) -> Space:
    cap = acg.capability(b.capability)
    paths = tuple(_direct(b.paths[t]) for t in layer.tensors)
    levels = max(len(p) for alts in paths for p in alts)
    pad = paddable(layer)
    options = []
    for d, extent in layer.dims.items():
        e = b.dim_map[d]
        if e is None:
            spatial = [1]
        elif e not in cap.fixed:  # streaming: instructions stay uniform (their cycles are exact)
            spatial = divisors(extent)
        else:
            spatial = fixed_sizes(layer, b, d, cap.fixed[e], d in pad)
        options.append(tuple(c for s in spatial for c in _chains(extent, s, levels - 1, d in pad)))
    irr = irrelevant(layer)
    stationary = tuple(t for t in layer.tensors if any(v == {t} for v in irr.values())) + (None,)
    double = tuple(sorted({(t, s) for t, alts in zip(layer.tensors, paths, strict=True) for p in alts
                           for s in p[1:] if acg.storages[s].double_buffer}))
    return Space(layer, b, levels, tuple(layer.dims), tuple(options), paths, stationary, double)


def _direct(paths: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """The paths that do not merely stage through an extra storage: a path is dropped when another
    path of the tensor is a proper subsequence of it (same ends, fewer hops). Staging could add reuse
    only at the price of a whole extra loop level for every tensor; it is not searched."""
    def within(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
        it = iter(long)
        return len(short) < len(long) and all(node in it for node in short)
    return tuple(p for p in paths if not any(within(q, p) for q in paths))


def _chains(extent: int, spatial: int, cuts: int, pad: bool = False) -> list[Chain]:
    """Every (t_1, ..., t_cuts, spatial) with spatial | t_cuts | ... | t_1, where t_1 is `spatial`
    times a divisor of the number of instruction blocks ceil(extent / spatial) or, for a paddable
    dim with awkward blocks, those split in k parts (`padded_blocks`); t_1 need not divide the
    extent (the last tile is partial), the tiles below it divide it."""
    if cuts == 0:
        return [(spatial,)]
    blocks = -(-extent // spatial)
    firsts = set(divisors(blocks)) | (padded_blocks(blocks) if pad else set())
    return [(spatial * b,) + rest for b in sorted(firsts) for rest in _inner(b, spatial, cuts - 1)]


def _inner(blocks: int, spatial: int, cuts: int) -> list[Chain]:
    if cuts == 0:
        return [(spatial,)]
    return [(spatial * b,) + rest for b in divisors(blocks) for rest in _inner(b, spatial, cuts - 1)]


MAX_SHAPES = 20000  # instruction shapes (streaming extent combinations) an exact model enumerates


def instruction_shapes(space: Space, acg: ACG) -> list[dict[str, int]] | None:
    """Every combination of streaming-dim extents an instruction of the space can have (a streaming
    capability dim's extent is the product of its fused layer dims' spatial extents); None when
    there are more than MAX_SHAPES."""
    cap = acg.capability(space.binding.capability)
    options = dict(zip(space.dims, space.options, strict=True))
    values = []
    for e in cap.streaming_dims:
        achievable = {1}
        for d in space.binding.fused(e):
            achievable = {v * c[-1] for v in achievable for c in options[d]}
        values.append(sorted(achievable))
    if math.prod(len(v) for v in values) > MAX_SHAPES:
        return None
    return [dict(zip(cap.streaming_dims, combo, strict=True)) for combo in itertools.product(*values)]


def compute_floor(space: Space, acg: ACG) -> int:
    """A lower bound of the compute cycles of every point of the space, hence of its latency: the
    fewest instructions (per dim, ceil(extent / the largest spatial extent)) times the shortest
    initiation interval. A binding that leaves a capability's lanes idle (vrmpy with nothing on
    its 32 lanes) has a floor far above what a better-suited binding achieves."""
    cap = acg.capability(space.binding.capability)
    fewest = math.prod(min(-(-space.layer.dims[d] // c[-1]) for c in opts)
                       for d, opts in zip(space.dims, space.options, strict=True))
    names = cap.cycles.names | (cap.interval.names if cap.interval is not None else set())
    if names & set(cap.streaming_dims):
        shapes = instruction_shapes(space, acg)
        interval = 0 if shapes is None else min(cap.instruction_interval(s) for s in shapes)
    else:
        interval = cap.instruction_interval({e: 1 for e in cap.streaming_dims})
    return fewest * interval


# --------------------------------------------------------------------------------------------------
# Points: admissibility, decoding, enumeration, sampling

def factors(space: Space, point: Point) -> list[dict[str, int]]:
    """Per level, the loop factor of every dim."""
    out = []
    for j in range(space.levels):
        out.append({d: -(-space.layer.dims[d] // c[0]) if j == 0 else c[j - 1] // c[j]
                    for d, c in zip(space.dims, point.chains, strict=True)})
    return out


def admissible(space: Space, point: Point) -> bool:
    """Whether each level's stationary choice is one the canonical order realises exactly."""
    irr = irrelevant(space.layer)
    for level, x in zip(factors(space, point), point.stationary, strict=False):
        moving = [d for d, f in level.items() if f > 1]
        if x is None:
            if moving and not any(not irr[d] for d in moving):
                return False
        elif not any(irr[d] == {x} for d in moving):
            return False
    return True


def decode(space: Space, point: Point, acg: ACG) -> Mapping:
    """The Mapping a point stands for (loops in canonical order, factor-1 loops omitted)."""
    irr = irrelevant(space.layer)
    loops = []
    for j, level in enumerate(factors(space, point)):
        x = point.stationary[j] if j < len(point.stationary) else None
        moving = [d for d in space.dims if level[d] > 1]
        if j == space.levels - 1:
            order = moving
        elif x is None:
            order = [d for d in moving if irr[d]] + [d for d in moving if not irr[d]]
        else:
            order = [d for d in moving if x not in irr[d]] + \
                    [d for d in moving if x in irr[d] and irr[d] != {x}] + [d for d in moving if irr[d] == {x}]
        loops.append(tuple((d, level[d]) for d in order))
    placement = tuple((t, space.paths[i][k]) for i, (t, k) in enumerate(zip(space.tensors, point.paths,
                                                                             strict=True)))
    spatial = tuple((d, c[-1]) for d, c in zip(space.dims, point.chains, strict=True) if c[-1] > 1)
    return Mapping(acg.name, acg_digest(acg), space.layer, space.binding, placement, tuple(loops), spatial,
                   point.double)


def legal(space: Space, point: Point, acg: ACG) -> Mapping | None:
    """The decoded mapping if the point is admissible and legal, else None."""
    if not admissible(space, point):
        return None
    m = decode(space, point, acg)
    return None if resource_problems(m, acg) else m


def double_choices(space: Space, path_choice: tuple[int, ...]) -> list[tuple[str, str]]:
    on_path = {(t, s) for t, alts, k in zip(space.tensors, space.paths, path_choice, strict=True)
               for s in alts[k][1:]}
    return [pair for pair in space.double if pair in on_path]


def points(space: Space):
    """Every point of the space (admissible or not), in a deterministic order."""
    for chains in itertools.product(*space.options):
        for path_choice in itertools.product(*(range(len(p)) for p in space.paths)):
            doubles = double_choices(space, path_choice)
            for stationary in itertools.product(space.stationary, repeat=space.levels - 1):
                for mask in itertools.product((False, True), repeat=len(doubles)):
                    yield Point(chains, path_choice, stationary,
                                tuple(p for p, on in zip(doubles, mask, strict=True) if on))


def sample(space: Space, rng: random.Random) -> Point:
    """A uniformly random point (each decision drawn independently)."""
    chains = tuple(rng.choice(o) for o in space.options)
    path_choice = tuple(rng.randrange(len(p)) for p in space.paths)
    stationary = tuple(rng.choice(space.stationary) for _ in range(space.levels - 1))
    doubles = tuple(p for p in double_choices(space, path_choice) if rng.random() < 0.5)
    return Point(chains, path_choice, stationary, doubles)


def greedy_point(space: Space, acg: ACG) -> Point | None:
    """The point of `mapper.mapping.mapping.greedy_mapping` (a simple legal mapping that fills the buffers) in
    this space, with the first stationary choices that make it legal; None when it is not a point of
    the space. The local searches start from it."""
    m = greedy_mapping(space.layer, space.binding, acg, grow=True)
    if m is None or m.levels != space.levels:
        return None
    chains = tuple(tuple(m.nominal(d, j) for j in range(1, space.levels)) + (m.spatial_of(d),) for d in space.dims)
    if any(c not in opts for c, opts in zip(chains, space.options, strict=True)):
        return None
    try:
        paths = tuple(alts.index(m.path(t)) for t, alts in zip(space.tensors, space.paths, strict=True))
    except ValueError:
        return None
    double = tuple(sorted(p for p in m.double_buffer if p in space.double))
    for stationary in itertools.product(space.stationary, repeat=space.levels - 1):
        point = Point(chains, paths, stationary, double)
        if legal(space, point, acg) is not None:
            return point
    return None


def best_of(candidates, acg: ACG, objective: str) -> tuple[Mapping | None, Fraction | None, int]:
    """(best mapping, its objective, how many were scored) over candidate mappings (None = illegal),
    ranked by `cost.rank`: the objective, ties broken by the other figure (the first one found wins
    an exact tie)."""
    best = best_key = None
    scored = 0
    for m in candidates:
        if m is None:
            continue
        scored += 1
        key = rank(evaluate(m, acg), objective)
        if best_key is None or key < best_key:
            best, best_key = m, key
    return best, None if best_key is None else best_key[0], scored


# --------------------------------------------------------------------------------------------------
# Infeasibility explained

def spaces_of(layer: Layer, acg: ACG) -> list[Space]:
    """`layer_spaces`, for a strategy: raises NoMapping, saying why, when the layer cannot run at all."""
    spaces = layer_spaces(layer, acg)
    if not spaces:
        raise NoMapping(explain_infeasible(layer, acg))
    return spaces


def explain_infeasible(layer: Layer, acg: ACG) -> str:
    """Why no mapping exists: no binding at all, or the resource that cannot hold even the smallest
    tiles (bytes needed vs held), for the binding that comes closest."""
    spaces = layer_spaces(layer, acg)
    if not spaces:
        return no_binding_reason(layer, acg)
    best = None
    for space in spaces:
        smallest = Point(tuple(min(o) for o in space.options), tuple(0 for _ in space.paths),
                         (None,) * (space.levels - 1), ())
        m = decode(space, smallest, acg)
        for storage, needs in storage_demand(m, acg).items():
            have = tile_capacity(layer, acg, storage)
            total = sum(n for _, n in needs)
            if total > have and (best is None or total / max(have, 1) < best[0]):
                parts = " + ".join(f"{n} B for tensor {t}" for t, n in needs)
                each = " per instance" if acg.storages[storage].instances > 1 else ""
                best = (total / max(have, 1), f"{storage}: needs {total} B even for the smallest tiles ({parts}), "
                                              f"holds {have} B{each} (binding {space.binding.describe()})")
    if best is None:
        return f"no legal mapping of layer {layer.name} on {acg.name} in the search space"
    return best[1]
