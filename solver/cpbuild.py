"""The CP-SAT encoding of one binding's space: the formulas of `mapper/mapping/cost.py` as constraints.

The decisions are `space.Point`'s, one literal per choice: per dim a one-hot over its tile chains
(`cptiles.tiles`), per data-moving level the stationary tensor (`_stationary`), per tensor its
placement, per (tensor, storage) double buffering (`_double`); `build` returns their handles and the
latency and energy terms as a `Built`. Every per-dim quantity is a constant coefficient on a chain's
one-hot (`solver/cptiles.py`); per tensor and level the bytes moved are `reuse x once`: `once` is
the bytes of every distinct tile counted once (`cost.tile_sum`), `reuse` how many times each tile
is brought in, which follows from the stationary choice of every level (`reuse`).

The pieces mirror `cost.evaluate`'s by name, in the same order:

    instruction_cycles   compute: the instructions' initiation intervals, plus the last one's drain
    last_tile_cycles     the instructions of the last tile of the innermost data-moving level
    streams              the transfers on every edge of every placement (bytes moved per edge); each
                         edge adds its share of the next five pieces as it is built
    busy                 per engine, bytes / bandwidth + transfers x set-up
    prologue             the first tiles' loads (per engine; their largest sum)
    stalls               the transfers a single-buffered tile waits for
    epilogue             the last output tile's write-back
    chains               the write-back chain of a double-buffered output (a bound of its own)
    latency_bound        the largest of the serial sum, the engines' bounds and the chains
    transfer_energy      bytes moved x pJ per byte (added by `streams`, edge by edge)
    compute_energy       iteration points x pJ per op
    operand_energy       every instruction's operand accesses (added by `streams`, per placement)
    static_energy        static power x latency

cost.py sums or maximises each piece over the streams; here each edge adds its terms to `Flows`
as `streams` walks the edges, because the model's variables are created in that order (CP-SAT's
search depends on it), and `latency_bound` takes the sums and maxima.

Time is counted in 1/`Scales.time` cycles and energy in 1/`Scales.energy` pJ; a coefficient is
floor(figure x scale), exact when the scale is a multiple of every denominator (`Scales.exact`),
else a lower bound of the figure (the model is then a relaxation and its optimum a proven bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from mapper.mapping.cost import Stream, exact, relevant_dims, static_pj_per_cycle, transfer, writeback_engines
from mapper.mapping.mapping import tile_capacity
from mapper.spec.acg import ACG, Capability
from solver.cpmodel import Model, Term, add, lits, neg, scale
from solver.cptiles import Sizes, Tiles, per_instance, sizes, tiles
from solver.space import MAX_SHAPES, NoMapping, Space, instruction_shapes, irrelevant


@dataclass(frozen=True)
class Scales:
    time: int  # model units per cycle
    energy: int  # model units per pJ
    exact_time: bool = True
    exact_energy: bool = True

    def per_byte(self, bandwidth: Fraction) -> int:
        return math.floor(Fraction(self.time) / bandwidth)

    def pj(self, value: Fraction) -> int:
        return math.floor(value * self.energy)


@dataclass(frozen=True)
class Built:
    """One binding's model: the literals of its decisions, named like the `space.Point` fields they
    decide, and its latency and energy (model units)."""

    chains: tuple[list, ...]  # per dim: a one-hot over space.options
    paths: dict[str, list]  # per tensor: a one-hot over its storage paths (space.paths)
    stationary: dict[int, dict]  # per data-moving level: stationary choice -> literal
    double: dict[tuple[str, str], object]  # (tensor, storage) -> literal
    latency: Term
    energy: Term


@dataclass(frozen=True)
class Flows:
    """What the edges add, edge by edge, to the pieces of the latency and the energy."""

    busy: dict[str, list[Term]] = field(default_factory=dict)  # engine -> its transfers' busy time
    first: dict[str, list[Term]] = field(default_factory=dict)  # engine -> its first loads (prologue)
    stalls: list[Term] = field(default_factory=list)
    epilogue: list[Term] = field(default_factory=list)
    energy: list[Term] = field(default_factory=list)  # transfer and operand energy
    chains: list[tuple] = field(default_factory=list)  # (write-backs and reloads, literals, transfers, key)
    need: dict[str, list[Term]] = field(default_factory=dict)  # storage -> the bytes it holds
    loads: dict[tuple[str, int], list[Term]] = field(default_factory=dict)  # (engine, level) -> its loads' busy time


@dataclass(frozen=True)
class _Ctx:
    """What every piece of one binding's model reads."""

    mm: Model
    space: Space
    acg: ACG
    sc: Scales
    tiles: Tiles
    sizes: Sizes
    reuse: dict[tuple[int, str], Term]
    flows: Flows
    enforce: list
    tag: int
    final: dict = field(default_factory=dict)  # output level k -> never revisited (reuse 1), with an epilogue


@dataclass(frozen=True)
class Edge:
    """Level k of a tensor's path under one placement: its tiles move between path[k-1] and path[k]."""

    tensor: str
    path: tuple[str, ...]
    k: int
    lit: object  # the placement's literal
    double: object  # the literal of double buffering in path[k] (0: never)
    traffic: Term  # bytes moved in all: reuse x once
    transfers: Term  # how many transfers (0 where they cost nothing)
    distinct: Term  # how many distinct tiles (0 where the transfers are not counted)
    once: Term  # every distinct tile's bytes, once, in the dtype moved (`mapping.moved_dtype`)
    last: Term  # the last tile's bytes (the output's; else unused), in the dtype moved


def build(mm: Model, space: Space, acg: ACG, pick, sc: Scales) -> Built:
    """Variables and constraints of one binding (enforced when `pick` holds); its decisions'
    literals and its latency and energy terms (model units)."""
    tag = id(space)
    tl = tiles(mm, space)
    enforce = [] if isinstance(pick, int) else [pick]
    stationary = _stationary(mm, space, tl, enforce)
    reused = reuse(mm, space, tl, stationary, tag)
    c = _Ctx(mm, space, acg, sc, tl, sizes(mm, space, tl, tag), reused, Flows(), enforce, tag,
             _final(mm, space, reused, enforce))
    paths = {t: mm.onehot(len(alts), f"place_{t}") for t, alts in zip(space.tensors, space.paths, strict=True)}
    double = _double(mm, space, paths)
    cap = acg.capability(space.binding.capability)
    interval, drain = _interval_and_drain(mm, space, acg, cap, tl, tag)
    compute = instruction_cycles(c, interval, drain)
    last = last_tile_cycles(c, interval, drain)
    streams(c, paths, double, drain[2] > 0)
    _fixed_extents(c, cap)
    latency = latency_bound(c, compute, last, drain, interval)
    energy = add(compute_energy(space, cap, sc), *c.flows.energy)
    static = static_energy(acg, sc, latency)
    if static is not None:
        energy = add(energy, static)
    return Built(tuple(tl.chains[d] for d in space.dims), paths, stationary, double, latency, energy)


def _stationary(mm: Model, space: Space, tl: Tiles, enforce: list) -> dict:
    """The stationary choice per data-moving level, with the admissibility rule of the space."""
    irr = irrelevant(space.layer)
    stationary = {}
    for j in range(space.levels - 1):
        choice = mm.onehot(len(space.stationary), f"stat{j}")
        stationary[j] = dict(zip(space.stationary, choice, strict=True))
        moves = {d: tl.moves[j, d] for d in space.dims}
        empty = mm.none(list(moves.values()), f"empty{j}")
        for s_choice, lit in stationary[j].items():
            if isinstance(lit, int) and lit == 0:
                continue
            wanted = [d for d in space.dims if (not irr[d] if s_choice is None else irr[d] == {s_choice})]
            if any(moves[d][0] == 1 for d in wanted if isinstance(moves[d][0], int)):
                continue
            if s_choice is None and isinstance(empty, int) and empty == 1:
                continue
            witnesses = [moves[d][0] for d in wanted if not isinstance(moves[d][0], int)]
            mm.m.AddBoolOr(witnesses + (lits(empty) if s_choice is None else [])).OnlyEnforceIf(lits(lit) + enforce)
        if None in stationary[j] and not isinstance(stationary[j][None], int):
            for e in lits(empty):
                mm.m.AddImplication(e, stationary[j][None])
    return stationary


def reuse(mm: Model, space: Space, tl: Tiles, stationary: dict, tag) -> dict[tuple[int, str], Term]:
    """(k, t): how many times each distinct tile of t at level k is brought in (`cost.reuse`), the
    product of the factors of the loops that skip t down to the innermost loop that indexes it.
    Level j either has no loop indexing t (as at level j), or t is stationary (the levels above
    only), or not (the levels above and level j)."""
    layer = space.layer

    def skipping(j: int, t: str) -> Term:  # iterations through level j of the loops that skip t
        ds = [d for d in space.dims if d not in relevant_dims(layer, t)]
        if j < 0 or not ds:
            return (1, 1, 1)
        return mm.product([tl.iterations[j, d] for d in ds], [(tag, "cum", j, d) for d in ds])

    out = {(0, t): (1, 1, 1) for t in layer.tensors}
    for j in range(space.levels - 1):
        for t in layer.tensors:
            moving = [tl.moves[j, d] for d in space.dims if d in relevant_dims(layer, t)]
            has = mm.maximum(moving, f"has{j}_{t}") if moving else (0, 0, 0)
            lit = stationary[j].get(t, 0)
            cases = [([neg(has)], out[j, t]), ([has, lit], skipping(j - 1, t)), ([has, neg(lit)], skipping(j, t))]
            out[j + 1, t] = mm.cases(cases, f"W{j + 1}_{t}")
    return out


def _final(mm: Model, space: Space, reused: dict, enforce: list) -> dict:
    """With an epilogue, per output level k: a literal true iff its tiles are written back once each
    (reuse 1: complete sums, moved requantised; `mapping.moved_dtype`); level 1's must be."""
    layer = space.layer
    if layer.epilogue is None:
        return {}
    out_t, final = layer.expr.output.tensor, {}
    for k in range(1, space.levels):
        w = reused[k, out_t]
        if isinstance(w[0], int):
            final[k] = int(w[0] == 1)
            continue
        final[k] = mm.m.NewBoolVar(mm.name(f"final{k}"))
        mm.m.Add(w[0] == 1).OnlyEnforceIf(final[k])
        mm.m.Add(w[0] >= 2).OnlyEnforceIf(final[k].Not())
    if 1 in final and not (isinstance(final[1], int) and final[1] == 1):  # complete where they leave
        mm.m.AddBoolOr(lits(final[1])).OnlyEnforceIf(enforce)
    return final


def _narrow(c: _Ctx, name: str, k: int, wide: Term) -> Term:
    """The output's `name` size at level k in the dtype its level-k write-backs move."""
    if k not in c.final:
        return wide
    fin = c.final[k]
    return c.mm.cases([([fin], c.sizes.narrow[name, k]), ([neg(fin)], wide)], f"narrow_{name}{k}")


def _double(mm: Model, space: Space, paths: dict) -> dict:
    """A literal per (tensor, storage) that may be double-buffered, only where the tensor is placed."""
    double = {}
    for t, storage in space.double:
        alts = space.paths[space.tensors.index(t)]
        on = [lit for p, lit in zip(alts, paths[t], strict=True) if storage in p[1:]]
        v = mm.m.NewBoolVar(mm.name(f"db_{t}_{storage}"))
        if not any(isinstance(o, int) for o in on):
            mm.m.AddBoolOr(on).OnlyEnforceIf(v)
        double[t, storage] = v
    return double


def _interval_and_drain(mm: Model, space: Space, acg: ACG, cap: Capability, tl: Tiles, tag) -> tuple[Term, Term]:
    """(initiation interval, drain) of one instruction: the capability's formulas over its streaming
    dims' extents, as a one-hot over the achievable extent combinations (streaming dims keep divisor
    instructions, so every instruction of a mapping has the same extents). Without an `interval`,
    the interval is the instruction's cycles and the drain 0."""
    streaming = cap.streaming_dims
    names = cap.cycles.names | (cap.interval.names if cap.interval is not None else set())
    if not streaming or not (names & set(streaming)):
        ones = {e: 1 for e in streaming}
        cycles, i = cap.instruction_cycles(ones), cap.instruction_interval(ones)
        return (i, i, i), (cycles - i, cycles - i, cycles - i)
    L = space.levels
    fused = [space.binding.fused(e) for e in streaming]
    exts = [mm.product([tl.extent[L, d] for d in ds], [(tag, "t", L, d) for d in ds]) for ds in fused]
    shapes = instruction_shapes(space, acg)
    if shapes is None:
        raise NoMapping(f"{cap.name}: too many instruction shapes (over {MAX_SHAPES}) for the exact model")
    picks = mm.onehot(len(shapes), "shape")
    for e, ext in zip(streaming, exts, strict=True):
        if not isinstance(ext[0], int):
            mm.m.Add(ext[0] == sum(s[e] * lit for s, lit in zip(shapes, picks, strict=True)))
    intervals = [cap.instruction_interval(s) for s in shapes]
    return mm.select(picks, intervals, "cyc"), \
        mm.select(picks, [cap.instruction_cycles(s) - i for s, i in zip(shapes, intervals, strict=True)], "drain")


def instruction_cycles(c: _Ctx, interval: Term, drain: Term) -> Term:
    """Compute cycles: every instruction's interval, plus the last one's drain."""
    dims = c.space.dims
    return add(c.mm.product([c.tiles.instructions[d] for d in dims] + [interval],
                            [(c.tag, "ninst", d) for d in dims] + [(c.tag, "cyc")]), drain)


def last_tile_cycles(c: _Ctx, interval: Term, drain: Term, level: int | None = None) -> Term:
    """The cycles of the instructions of the last tile of `level` (default: the innermost data-moving one)."""
    dims = c.space.dims
    if level is None or level == c.space.levels - 1:
        counts, keys = [c.tiles.last_instructions[d] for d in dims], [(c.tag, "nlast", d) for d in dims]
    else:
        counts, keys = [c.tiles.last_at[level, d] for d in dims], [(c.tag, "nlast", level, d) for d in dims]
    return add(c.mm.product(counts + [interval], keys + [(c.tag, "cyc")]), drain)


def streams(c: _Ctx, paths: dict, double: dict, drains: bool) -> None:
    """Every edge of every placement of every tensor: its transfers (`cost.streams`: a load, or a
    write-back and a reload) and their share of the busy time, prologue, stalls, epilogue, chains
    and energy; the bytes each storage holds (constrained by its capacity). `drains`: whether the
    last instruction has a drain (the output's transfers are then counted, for the chains)."""
    out_t = c.space.layer.expr.output.tensor
    for t, alts in zip(c.space.tensors, c.space.paths, strict=True):
        for path, lit in zip(alts, paths[t], strict=True):
            if t == out_t and c.final and len(path) == 1:  # an epilogue needs a write-back
                c.mm.m.AddBoolOr(lits(neg(lit))).OnlyEnforceIf(c.enforce)
            for k in range(1, len(path)):
                edge = _edge(c, t, path, k, lit, double.get((t, path[k]), 0), drains)
                _hold(c, edge)
                if t != out_t:
                    _load(c, edge)
                else:
                    _writeback(c, edge)
            operand_energy(c, t, path, lit)
    _capacities(c)


def _edge(c: _Ctx, t: str, path: tuple, k: int, lit, dbl, drains: bool) -> Edge:
    """The bytes an edge moves (reuse x once) and, where they cost something (a set-up latency, or
    the output's drains), its transfers and distinct tiles."""
    traffic = c.mm.product([c.reuse[k, t], c.sizes.once[k, t]], [(c.tag, "W", k, t), (c.tag, "S", k, t)])
    once, last = c.sizes.once[k, t], c.sizes.last.get((k, t), (0, 0, 0))
    if t == c.space.layer.expr.output.tensor and k in c.final:  # complete sums move requantised
        once, last = _narrow(c, "once", k, once), _narrow(c, "last", k, last)
        traffic = c.mm.cases([([c.final[k]], c.sizes.narrow["once", k]), ([neg(c.final[k])], traffic)],
                             f"traffic{k}")
    setups = [c.acg.edge(a, b).latency for a, b in ((path[k - 1], path[k]), (path[k], path[k - 1]))
              if c.acg.edge(a, b) is not None]
    counted = any(setups) or (drains and t == c.space.layer.expr.output.tensor)
    n, distinct = ((0, 0, 0), (0, 0, 0))
    if counted:
        rel = [d for d in c.space.dims if d in relevant_dims(c.space.layer, t)]
        distinct = c.mm.product([c.tiles.iterations[k - 1, d] for d in rel], [(c.tag, "cum", k - 1, d) for d in rel])
        n = c.mm.product([distinct, c.reuse[k, t]], [(c.tag, "tiles", k, t), (c.tag, "W", k, t)])
    return Edge(t, path, k, lit, dbl, traffic, n, distinct, once, last)


def _hold(c: _Ctx, e: Edge) -> None:
    """The bytes of the edge's tile held in path[k] (per instance of a replicated storage), twice if
    double-buffered."""
    instances = c.acg.storages[e.path[e.k]].instances
    held = c.sizes.tile[e.k, e.tensor] if instances == 1 else \
        per_instance(c.mm, c.space, c.acg, c.tiles, e.tensor, e.k, instances, c.tag)
    if e.k + 1 < len(e.path) and e.k + 1 in c.final and e.tensor == c.space.layer.expr.output.tensor:
        narrow = c.sizes.narrow["tile", e.k] if instances == 1 else per_instance(
            c.mm, c.space, c.acg, c.tiles, e.tensor, e.k, instances, c.tag, c.space.layer.epilogue.dtype)
        fin = c.final[e.k + 1]  # what the level below writes back is complete: held requantised
        held = c.mm.cases([([fin], narrow), ([neg(fin)], held)], f"held{e.k}")
    c.flows.need.setdefault(e.path[e.k], []).extend([c.mm.when(held, [e.lit, neg(e.double)], "need"),
                                                      c.mm.when(scale(held, 2), [e.lit, e.double], "need2")])


def _load(c: _Ctx, e: Edge) -> None:
    """An input's tiles brought in along path[k-1] -> path[k]."""
    s = transfer(c.acg, e.tensor, e.path[e.k - 1], e.path[e.k], e.k, "load", 1, 1)
    moved = c.mm.when(e.traffic, [e.lit], "moved")
    busy(c, s, moved, e.transfers, e.lit)
    transfer_energy(c, s, moved)
    prologue(c, s, e)
    per, setup = c.sc.per_byte(s.bandwidth), s.setup * c.sc.time
    tile = c.sizes.tile[e.k, e.tensor]
    stalls(c, e, add(scale(add(e.traffic, scale(tile, -1)), per), scale(add(e.transfers, (-1, -1, -1)), setup)))


def _writeback(c: _Ctx, e: Edge) -> None:
    """The output's tiles written back along path[k] -> path[k-1] and, but for each tile's first
    visit, reloaded (partial sums; without an edge back they may not return)."""
    mm, t, k = c.mm, e.tensor, e.k
    wb = transfer(c.acg, t, e.path[k], e.path[k - 1], k, "writeback", 1, 1)
    per_wb, setup_wb = c.sc.per_byte(wb.bandwidth), wb.setup * c.sc.time
    moved = mm.when(e.traffic, [e.lit], "wb")
    busy(c, wb, moved, e.transfers, e.lit)
    transfer_energy(c, wb, moved)
    last_wb = add(scale(e.last, per_wb), (setup_wb,) * 3)  # the last tile's write-back
    epilogue(c, e, last_wb)
    back = add(e.traffic, scale(e.once, -1))  # every visit but each tile's first reloads
    terms = [add(scale(add(e.traffic, scale(e.last, -1)), per_wb),
                 scale(add(e.transfers, (-1, -1, -1)), setup_wb))]
    if c.acg.edge(e.path[k - 1], e.path[k]) is None:
        mm.m.Add(back[0] == 0).OnlyEnforceIf(lits(e.lit) + c.enforce)
    else:
        rl = transfer(c.acg, t, e.path[k - 1], e.path[k], k, "reload", 1, 1)
        reloads = add(e.transfers, scale(e.distinct, -1))
        moved = mm.when(back, [e.lit], "rl")
        busy(c, rl, moved, reloads, e.lit)
        transfer_energy(c, rl, moved)
        terms.append(add(scale(back, c.sc.per_byte(rl.bandwidth)), scale(reloads, rl.setup * c.sc.time)))
    stalls(c, e, add(*terms))
    c.flows.chains.append((add(terms[0], last_wb, *terms[1:]), [e.lit, e.double], e.transfers, (c.tag, "count", k, t)))


def busy(c: _Ctx, s: Stream, moved: Term, count: Term, lit) -> None:
    """A transfer's busy time on each of its engines: bytes / bandwidth + transfers x set-up."""
    paid = scale(c.mm.when(count, [lit], "count"), s.setup * c.sc.time) if s.setup else (0, 0, 0)
    for e in s.engines:
        term = add(scale(moved, c.sc.per_byte(s.bandwidth)), paid)
        c.flows.busy.setdefault(e, []).append(term)
        if s.kind != "writeback":  # loads and reloads, by level (`cost.loads_then_last_tiles`)
            c.flows.loads.setdefault((e, s.level), []).append(term)


def prologue(c: _Ctx, s: Stream, e: Edge) -> None:
    """A load's first tile (with its set-up) on each of its engines."""
    first = scale(c.mm.when(c.sizes.tile[e.k, e.tensor], [e.lit], "first"), c.sc.per_byte(s.bandwidth))
    setup = s.setup * c.sc.time
    if setup:  # the first tile's transfer pays its set-up too
        first = add(first, c.mm.when((setup,) * 3, [e.lit], "first_setup"))
    for engine in s.engines:
        c.flows.first.setdefault(engine, []).append(first)


def stalls(c: _Ctx, e: Edge, stall: Term) -> None:
    """What a single-buffered tile waits for: every load but the first; every write-back but the last
    and every reload."""
    c.flows.stalls.append(c.mm.when(stall, [e.lit, neg(e.double)], "stall"))


def epilogue(c: _Ctx, e: Edge, last_wb: Term) -> None:
    """The last output tile's write-back at this level."""
    c.flows.epilogue.append(c.mm.when(last_wb, [e.lit], "epi"))


def _capacities(c: _Ctx) -> None:
    """Every storage holds its tiles; what a fused group keeps must fit even where no tile goes."""
    layer = c.space.layer
    for storage, terms in c.flows.need.items():
        c.mm.m.Add(sum(u[0] for u in terms) <= tile_capacity(layer, c.acg, storage)).OnlyEnforceIf(c.enforce)
    kept = {s for _, s in layer.onchip.homes} | {s for s, _ in layer.onchip.reserved}
    for storage in sorted(kept - set(c.flows.need)):
        if storage in c.acg.storages and tile_capacity(layer, c.acg, storage) < 0:
            c.mm.m.AddBoolOr([]).OnlyEnforceIf(c.enforce)


def _fixed_extents(c: _Ctx, cap: Capability) -> None:
    """A capability dim of fixed extent holds the product of the layer dims fused into it."""
    L, tag = c.space.levels, c.tag
    for e, extent in cap.fixed.items():
        fused = c.space.binding.fused(e)
        if len(fused) > 1:
            p = c.mm.product([c.tiles.extent[L, d] for d in fused], [(tag, "t", L, d) for d in fused])
            c.mm.m.Add(p[0] <= extent).OnlyEnforceIf(c.enforce)


def chains(c: _Ctx, compute: Term, drain: Term) -> list[Term]:
    """A double-buffered output: (write-backs + reloads + compute + a drain per visit) / 2."""
    bounds = []
    for chain, when, n, key in c.flows.chains:
        drains = scale(c.mm.product([n, drain], [key, (c.tag, "drain")]), c.sc.time)
        bounds.append(c.mm.half(c.mm.when(add(chain, scale(compute, c.sc.time), drains), when, "chain"), "half"))
    return bounds


def latency_bound(c: _Ctx, compute: Term, last: Term, drain: Term, interval: Term) -> Term:
    """The largest of: prologue + compute + stalls + epilogue; each engine's busy time + the last
    tile's compute; an engine that only brings data in, followed by the last write-back too; per
    level, an engine's loads of that level and above, then the level's last tile and the last
    write-back; the chains."""
    flows, sc = c.flows, c.sc
    first = c.mm.maximum([add((0, 0, 0), *terms) for terms in flows.first.values()] or [(0, 0, 0)], "prologue")
    serial = add(first, scale(compute, sc.time), *flows.stalls, *flows.epilogue)
    bounds = [serial] + [add(scale(last, sc.time), *terms) for terms in flows.busy.values()]
    outbound = writeback_engines(c.space.binding, c.acg, c.space.layer.expr.output.tensor)
    bounds += [add(scale(last, sc.time), *terms, *flows.epilogue) for e, terms in flows.busy.items()
               if e not in outbound]
    return c.mm.maximum(bounds + loads_then_last_tiles(c, drain, interval) + chains(c, compute, drain), "latency")


def loads_then_last_tiles(c: _Ctx, drain: Term, interval: Term) -> list[Term]:
    """Per data-moving level k and engine: its loads of levels <= k, then the instructions of the
    last level-k tile, then the last write-back (`cost.loads_then_last_tiles`)."""
    out = []
    engines = sorted({e for e, _ in c.flows.loads})
    for k in range(1, c.space.levels):
        per_engine = {e: [t for (e2, j), terms in c.flows.loads.items() if e2 == e and j <= k for t in terms]
                      for e in engines}
        per_engine = {e: terms for e, terms in per_engine.items() if terms}
        if per_engine:
            after = add(scale(last_tile_cycles(c, interval, drain, k), c.sc.time), *c.flows.epilogue)
            out += [add(after, *terms) for terms in per_engine.values()]
    return out


def transfer_energy(c: _Ctx, s: Stream, moved: Term) -> None:
    """The bytes a transfer moves x its pJ per byte (source read, destination write, edge)."""
    c.flows.energy.append(scale(moved, c.sc.pj(s.pj_per_byte)))


def compute_energy(space: Space, cap: Capability, sc: Scales) -> Term:
    """Every iteration point x the capability's pJ per op."""
    return (math.prod(space.layer.dims.values()) * sc.pj(exact(cap.pj_per_op)),) * 3


def operand_energy(c: _Ctx, t: str, path: tuple, lit) -> None:
    """Every instruction's access to its operand tile in the storage it reads (and writes): the
    tensor's distinct instruction tiles once, times the instructions along the dims it skips."""
    layer, L = c.space.layer, c.space.levels
    st = c.acg.storages[path[-1]]
    pj = exact(st.read_pj_per_byte) + (exact(st.write_pj_per_byte) if t == layer.expr.output.tensor else 0)
    others = [d for d in c.space.dims if d not in relevant_dims(layer, t)]
    acc = c.mm.product([c.sizes.once[L, t]] + [c.tiles.instructions[d] for d in others],
                       [(c.tag, "S", L, t)] + [(c.tag, "ninst", d) for d in others])
    c.flows.energy.append(scale(c.mm.when(acc, [lit], "acc"), c.sc.pj(pj)))


def static_energy(acg: ACG, sc: Scales, latency: Term) -> Term | None:
    """Static power x time, in energy units per time unit (None without static power)."""
    static = static_pj_per_cycle(acg)
    return scale(latency, math.floor(static * sc.energy / sc.time)) if static else None
