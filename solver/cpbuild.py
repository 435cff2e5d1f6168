"""The CP-SAT encoding of one binding's space: the formulas of `mapper/mapping/cost.py` as constraints.

- Per dim, a one-hot over its tile chains; every per-dim quantity (a loop factor, an iteration
  count, the first and the last tile's extent, instruction counts) is a constant coefficient on it.
- Per tensor and level, the bytes moved are `reuse x once`: `once` is the bytes of every distinct
  tile counted once (partial tiles at their size: on a plain axis the tiles' extents sum to the
  dim's extent, on a halo axis the dims keep divisor tiles, so it is tile count x footprint), and
  `reuse` is how many times each tile is brought in, which follows from the stationary choice of
  every level (`_reuse`).
- Time is counted in 1/`Scales.time` cycles and energy in 1/`Scales.energy` pJ; a coefficient is
  floor(figure x scale), exact when the scale is a multiple of every denominator (`Scales.exact`),
  else a lower bound of the figure (the model is then a relaxation and its optimum a proven bound).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

from mapper.mapping.cost import exact, relevant_dims, static_pj_per_cycle, transfer, writeback_engines
from mapper.mapping.mapping import split_axes, tile_capacity
from mapper.spec.acg import ACG
from mapper.spec.dtypes import dtype_bytes
from solver.cpmodel import Model, Term, add, lits, neg, scale
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


def build(mm: Model, space: Space, acg: ACG, pick, sc: Scales) -> dict:
    """Variables and constraints of one binding (enforced when `pick` holds); returns its latency
    and energy terms (in model units) and its decision variables."""
    tag = id(space)
    x, T = _dim_terms(mm, space)
    enforce = [] if isinstance(pick, int) else [pick]
    y = _stationary(mm, space, T, enforce)
    W = _reuse(mm, space, T, y, tag)
    Bt, Blast, S = _bytes(mm, space, T, tag)
    z = {t: mm.onehot(len(alts), f"place_{t}") for t, alts in zip(space.tensors, space.paths, strict=True)}
    db = _double(mm, space, z)
    cap = acg.capability(space.binding.capability)
    dims = space.dims
    interval, drain = _instruction_cycles(mm, space, acg, cap, T, tag)
    compute = add(mm.product([T["ninst", d] for d in dims] + [interval],
                             [(tag, "ninst", d) for d in dims] + [(tag, "cyc")]), drain)
    last = add(mm.product([T["nlast", d] for d in dims] + [interval],
                          [(tag, "nlast", d) for d in dims] + [(tag, "cyc")]), drain)
    flows = _streams(mm, space, acg, sc, (W, Bt, Blast, S), T, z, db, enforce, tag, drain[2] > 0)
    for e, extent in cap.fixed.items():
        fused = space.binding.fused(e)
        if len(fused) > 1:
            p = mm.product([T["t", space.levels, d] for d in fused], [(tag, "t", space.levels, d) for d in fused])
            mm.m.Add(p[0] <= extent).OnlyEnforceIf(enforce)

    prologue = mm.maximum([add((0, 0, 0), *terms) for terms in flows["first"].values()] or [(0, 0, 0)], "prologue")
    serial = add(prologue, scale(compute, sc.time), *flows["stalls"], *flows["epilogue"])
    bounds = [serial] + [add(scale(last, sc.time), *terms) for terms in flows["busy"].values()]
    outbound = writeback_engines(space.binding, acg, space.layer.expr.output.tensor)
    bounds += [add(scale(last, sc.time), *terms, *flows["epilogue"]) for e, terms in flows["busy"].items()
               if e not in outbound]  # an engine that only brings data in: the last write-back follows
    for chain, when, n, key in flows["chains"]:  # the write-back chain of a double-buffered output (cost.py)
        drains = scale(mm.product([n, drain], [key, (tag, "drain")]), sc.time)
        bounds.append(mm.half(mm.when(add(chain, scale(compute, sc.time), drains), when, "chain"), "half"))
    latency = mm.maximum(bounds, "latency")
    points = math.prod(space.layer.dims.values())
    energy = add((points * sc.pj(exact(cap.pj_per_op)),) * 3, *flows["energy"])
    static = static_pj_per_cycle(acg)
    if static:  # static energy: power x time, in energy units per time unit
        energy = add(energy, scale(latency, math.floor(static * sc.energy / sc.time)))
    return {"latency": latency, "energy": energy, "vars": {"x": x, "z": z, "y": y, "db": db}}


def _dim_terms(mm: Model, space: Space) -> tuple[list, dict]:
    """Per dim its one-hot and, as selections on it: loop factors f and 'factor > 1' g per level,
    iterations through each level (cum), the first (t) and last (last) tile per level, the
    non-empty instruction positions (ninst) and those of the last innermost data tile (nlast)."""
    L, T = space.levels, {}
    x = [mm.onehot(len(opts), f"chain_{d}") for d, opts in zip(space.dims, space.options, strict=True)]
    for xs, d, opts in zip(x, space.dims, space.options, strict=True):
        E = space.layer.dims[d]
        T["x", d] = xs

        def fac(c, j, E=E):
            return -(-E // c[0]) if j == 0 else c[j - 1] // c[j]

        for j in range(L):
            T["f", j, d] = mm.select(xs, [fac(c, j) for c in opts], f"f{j}_{d}")
            T["g", j, d] = mm.select(xs, [int(fac(c, j) > 1) for c in opts], f"g{j}_{d}")
            T["cum", j, d] = mm.select(xs, [math.prod(fac(c, i) for i in range(j + 1)) for c in opts], f"cum{j}_{d}")
        for k in range(1, L + 1):
            T["t", k, d] = mm.select(xs, [min(E, c[k - 1]) for c in opts], f"t{k}_{d}")
            T["last", k, d] = mm.select(xs, [(E - 1) % c[k - 1] + 1 for c in opts], f"last{k}_{d}")
        T["ninst", d] = mm.select(xs, [-(-E // c[-1]) for c in opts], f"ninst_{d}")
        T["nlast", d] = mm.select(xs, [-(-((E - 1) % c[L - 2] + 1) // c[-1]) for c in opts], f"nlast_{d}")
    return x, T


def _stationary(mm: Model, space: Space, T: dict, enforce: list) -> dict:
    """The stationary choice per data-moving level, with the admissibility rule of the space."""
    irr = irrelevant(space.layer)
    y = {}
    for j in range(space.levels - 1):
        choice = mm.onehot(len(space.stationary), f"stat{j}")
        y[j] = dict(zip(space.stationary, choice, strict=True))
        g = {d: T["g", j, d] for d in space.dims}
        empty = mm.none(list(g.values()), f"empty{j}")
        for s_choice, lit in y[j].items():
            if isinstance(lit, int) and lit == 0:
                continue
            wanted = [d for d in space.dims if (not irr[d] if s_choice is None else irr[d] == {s_choice})]
            if any(g[d][0] == 1 for d in wanted if isinstance(g[d][0], int)):
                continue
            if s_choice is None and isinstance(empty, int) and empty == 1:
                continue
            witnesses = [g[d][0] for d in wanted if not isinstance(g[d][0], int)]
            mm.m.AddBoolOr(witnesses + (lits(empty) if s_choice is None else [])).OnlyEnforceIf(lits(lit) + enforce)
        if None in y[j] and not isinstance(y[j][None], int):
            for e in lits(empty):
                mm.m.AddImplication(e, y[j][None])
    return y


def _reuse(mm: Model, space: Space, T: dict, y: dict, tag) -> dict:
    """reuse[k, t]: how many times each distinct tile of t at level k is brought in, the product of
    the factors of the loops that skip t down to the innermost loop that indexes it. Level j either
    has no loop indexing t (as at level j), or t is stationary (the levels above only), or not (the
    levels above and level j)."""
    layer = space.layer

    def skipping(j: int, t: str) -> Term:  # iterations through level j of the loops that skip t
        ds = [d for d in space.dims if d not in relevant_dims(layer, t)]
        if j < 0 or not ds:
            return (1, 1, 1)
        return mm.product([T["cum", j, d] for d in ds], [(tag, "cum", j, d) for d in ds])

    W = {(0, t): (1, 1, 1) for t in layer.tensors}
    for j in range(space.levels - 1):
        for t in layer.tensors:
            moving = [T["g", j, d] for d in space.dims if d in relevant_dims(layer, t)]
            has = mm.maximum(moving, f"has{j}_{t}") if moving else (0, 0, 0)
            lit = y[j].get(t, 0)
            cases = [([neg(has)], W[j, t]), ([has, lit], skipping(j - 1, t)), ([has, neg(lit)], skipping(j, t))]
            W[j + 1, t] = mm.cases(cases, f"W{j + 1}_{t}")
    return W


def _bytes(mm: Model, space: Space, T: dict, tag) -> tuple[dict, dict, dict]:
    """Per tensor and level k: Bt (the first tile's bytes), Blast (the last tile's, for the output)
    and S (every distinct tile's bytes, counted once)."""
    layer, L = space.layer, space.levels
    out_t = layer.expr.output.tensor
    Bt, Blast, S = {}, {}, {}
    for t, tensor in layer.tensors.items():
        accesses = [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == t]
        size = dtype_bytes(tensor.dtype)
        plain, halo = _axes(layer, t, accesses)
        for k in range(1, L + 1):
            for name, out in (("t", Bt), ("last", Blast)):
                if name == "last" and t != out_t:
                    continue
                terms = [T[name, k, plain[axis]] if axis in plain else _footprint(mm, layer, accesses, axis, T, name, k)
                         for axis in range(len(tensor.shape))]
                keys = [(tag, name, k, plain[axis]) if axis in plain else (tag, "fp", name, k, t, axis)
                        for axis in range(len(tensor.shape))]
                out[k, t] = mm.product(terms + [(size,) * 3], keys + ["const"])
            const = size * math.prod(layer.dims[d] for d in plain.values())
            hdims = sorted({d for axis in halo for d, _ in accesses[0].indices[axis].terms})
            for d in hdims:
                opts = space.options[space.dims.index(d)]
                if any(layer.dims[d] % c[k - 1] for c in opts):
                    raise NoMapping(f"internal error: dim {d} has padded tiles but a halo index")
            terms = [_footprint(mm, layer, accesses, axis, T, "t", k) for axis in halo] + \
                [T["cum", k - 1, d] for d in hdims]
            keys = [(tag, "fp", "t", k, t, axis) for axis in halo] + [(tag, "cum", k - 1, d) for d in hdims]
            S[k, t] = mm.product(terms + [(const,) * 3], keys + ["const"], hi=_sum_bound(space, t, k, halo, hdims))
    return Bt, Blast, S


def _axes(layer, t: str, accesses) -> tuple[dict[int, str], list[int]]:
    """The tensor's axes indexed by one dim alone (coefficient +-1, within the axis, on no other
    axis), axis -> dim; and the other ('halo') axes."""
    plain, halo = {}, []
    shape = layer.tensors[t].shape
    for axis, n in enumerate(shape):
        idx = [a.indices[axis] for a in accesses]
        d = idx[0].terms[0][0] if len(idx[0].terms) == 1 else None
        ok = d is not None and layer.dims[d] <= n and all(
            len(i.terms) == 1 and i.terms[0][0] == d and abs(i.terms[0][1]) == 1 for i in idx) and \
            sum(any(x == d for x, _ in a.indices[ax].terms) for a in accesses[:1] for ax in range(len(shape))) == 1
        if ok:
            plain[axis] = d
        else:
            halo.append(axis)
    return plain, halo


def _footprint(mm: Model, layer, accesses, axis: int, T: dict, name: str, k: int) -> Term:
    """The positions along `axis` moved for the tile `name` at level k, as `mapping.tile_shape`
    counts them: one access, the arithmetic progression of the positions it reads (`_progression`);
    several, their largest span (halos included, clipped)."""
    n = layer.tensors[accesses[0].tensor].shape[axis]
    if len(accesses) == 1 and any(abs(c) > 1 for _, c in accesses[0].indices[axis].terms):
        return _progression(mm, accesses[0].indices[axis], n, T, name, k)
    per_access = []
    for a in accesses:
        idx = a.indices[axis]
        span = add((1, 1, 1), *(scale(add(T[name, k, d], (-1, -1, -1)), abs(c)) for d, c in idx.terms))
        per_access.append(_at_most(mm, span, n, f"fp{k}_{a.tensor}{axis}"))
    return mm.maximum(per_access, f"fpx{k}_{accesses[0].tensor}{axis}") if len(per_access) > 1 else per_access[0]


def _at_most(mm: Model, term: Term, n: int, prefix: str) -> Term:
    """min(term, n)."""
    if term[1] >= n:
        return (n, n, n)
    if isinstance(term[0], int):
        return term
    if term[2] <= n:
        v = mm.var(term[1], term[2], prefix)
        mm.m.Add(v == term[0])
        return (v, term[1], term[2])
    v = mm.var(term[1], n, prefix)
    mm.m.AddMinEquality(v, [term[0], n])
    return (v, term[1], n)


def _progression(mm: Model, idx, n: int, T: dict, name: str, k: int) -> Term:
    """The positions an index with a coefficient above 1 reads over the tile, moved as one
    arithmetic progression: with U the dims whose tile extent is above 1 and g = gcd of their
    coefficients, 1 + sum over U of (|c| / g) x (tile - 1) positions, at most ceil(n / g). One case
    per subset U (a stride-2 `2*p+r`: r's tile 1 gives t_p rows, else 2 x (t_p - 1) + t_r)."""
    dims = [d for d, _ in idx.terms]
    coeff = {d: abs(c) for d, c in idx.terms}
    above = {}
    for d in dims:
        t = T[name, k, d]
        key = ("above", name, k, d)
        if key not in T:
            if isinstance(t[0], int):
                T[key] = int(t[0] > 1)
            else:
                b = mm.m.NewBoolVar(mm.name(f"gt1_{name}{k}_{d}"))
                mm.m.Add(t[0] >= 2).OnlyEnforceIf(b)
                mm.m.Add(t[0] <= 1).OnlyEnforceIf(b.Not())
                T[key] = b
        above[d] = T[key]
    cases = []
    for picks in itertools.product((False, True), repeat=len(dims)):
        inside = [d for d, p in zip(dims, picks, strict=True) if p]
        g = math.gcd(*(coeff[d] for d in inside)) or 1
        count = add((1, 1, 1), *(scale(add(T[name, k, d], (-1, -1, -1)), coeff[d] // g) for d in inside))
        literals = [above[d] if p else neg(above[d]) for d, p in zip(dims, picks, strict=True)]
        if any(isinstance(x, int) and x == 0 for x in literals):
            continue
        cases.append((literals, _at_most(mm, count, -(-n // g), f"fp{k}")))
    return mm.cases(cases, f"fps{k}")


def _sum_bound(space: Space, t: str, k: int, halo: list[int], hdims: list[str]) -> int | None:
    """An upper bound of S[k, t]: per halo axis, the largest tile count x footprint over the tiles
    its dims may take at level k (a dim on two axes counts twice: still a bound), times the rest."""
    layer = space.layer
    if not halo:
        return None
    accesses = [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == t]
    shape = layer.tensors[t].shape
    tiles = {d: sorted({min(layer.dims[d], c[k - 1]) for c in space.options[space.dims.index(d)]}) for d in hdims}
    bound = dtype_bytes(layer.tensors[t].dtype) * math.prod(
        layer.dims[accesses[0].indices[ax].terms[0][0]] for ax in range(len(shape)) if ax not in halo)
    for ax in halo:
        dims = sorted({d for a in accesses for d, _ in a.indices[ax].terms})
        best = 0
        for combo in itertools.product(*(tiles[d] for d in dims)):
            tile = dict(zip(dims, combo, strict=True))
            fp = max(min(shape[ax], sum(abs(c) * (tile[d] - 1) for d, c in a.indices[ax].terms) + 1) for a in accesses)
            best = max(best, fp * math.prod(layer.dims[d] // tile[d] for d in dims))
        bound *= best
    return bound


def _double(mm: Model, space: Space, z: dict) -> dict:
    db = {}
    for t, storage in space.double:
        alts = space.paths[space.tensors.index(t)]
        on = [lit for p, lit in zip(alts, z[t], strict=True) if storage in p[1:]]
        v = mm.m.NewBoolVar(mm.name(f"db_{t}_{storage}"))
        if not any(isinstance(o, int) for o in on):  # double buffering only where the tensor is placed
            mm.m.AddBoolOr(on).OnlyEnforceIf(v)
        db[t, storage] = v
    return db


def _streams(mm: Model, space: Space, acg: ACG, sc: Scales, sizes: tuple, T: dict, z: dict, db: dict,
             enforce: list, tag, drains: bool) -> dict:
    """Transfers per tensor, placement and level: engine busy time, first loads, stalls, the
    epilogue, energy, buffer needs (constrained here) and partial-sum chains."""
    W, Bt, Blast, S = sizes
    layer = space.layer
    out_t = layer.expr.output.tensor
    flows: dict = {"busy": {}, "first": {}, "stalls": [], "epilogue": [], "energy": [], "chains": []}
    need: dict[str, list] = {}

    def charge(s, moved: Term, count: Term, lit) -> None:
        """Busy time (bytes / bandwidth + transfers x set-up) on every engine, and energy."""
        paid = scale(mm.when(count, [lit], "count"), s.setup * sc.time) if s.setup else (0, 0, 0)
        for e in s.engines:
            flows["busy"].setdefault(e, []).append(add(scale(moved, sc.per_byte(s.bandwidth)), paid))
        flows["energy"].append(scale(moved, sc.pj(s.pj_per_byte)))

    def transfers(k: int, t: str) -> tuple[Term, Term]:
        """(how many transfers bring in t's tiles at level k, how many distinct tiles there are)."""
        rel = [d for d in space.dims if d in relevant_dims(layer, t)]
        tiles = mm.product([T["cum", k - 1, d] for d in rel], [(tag, "cum", k - 1, d) for d in rel])
        return mm.product([tiles, W[k, t]], [(tag, "tiles", k, t), (tag, "W", k, t)]), tiles

    for t, alts in zip(space.tensors, space.paths, strict=True):
        for path, lit in zip(alts, z[t], strict=True):
            for k in range(1, len(path)):
                traffic = mm.product([W[k, t], S[k, t]], [(tag, "W", k, t), (tag, "S", k, t)])
                setups = [acg.edge(a, b).latency for a, b in ((path[k - 1], path[k]), (path[k], path[k - 1]))
                          if acg.edge(a, b) is not None]
                counted = any(setups) or (drains and t == out_t)  # counts only where they cost something
                n, tiles = transfers(k, t) if counted else ((0, 0, 0), (0, 0, 0))
                dbl = db.get((t, path[k]), 0)
                instances = acg.storages[path[k]].instances
                held = Bt[k, t] if instances == 1 else _per_instance(mm, space, acg, T, t, k, instances, tag)
                need.setdefault(path[k], []).extend([mm.when(held, [lit, neg(dbl)], "need"),
                                                     mm.when(scale(held, 2), [lit, dbl], "need2")])
                if t != out_t:
                    s = transfer(acg, t, path[k - 1], path[k], k, "load", 1, 1)
                    per, setup = sc.per_byte(s.bandwidth), s.setup * sc.time
                    charge(s, mm.when(traffic, [lit], "moved"), n, lit)
                    first = scale(mm.when(Bt[k, t], [lit], "first"), per)
                    if setup:  # the first tile's transfer pays its set-up too
                        first = add(first, mm.when((setup,) * 3, [lit], "first_setup"))
                    for e in s.engines:
                        flows["first"].setdefault(e, []).append(first)
                    stall = add(scale(add(traffic, scale(Bt[k, t], -1)), per), scale(add(n, (-1, -1, -1)), setup))
                    flows["stalls"].append(mm.when(stall, [lit, neg(dbl)], "stall"))
                    continue
                wb = transfer(acg, t, path[k], path[k - 1], k, "writeback", 1, 1)
                per_wb, setup_wb = sc.per_byte(wb.bandwidth), wb.setup * sc.time
                charge(wb, mm.when(traffic, [lit], "wb"), n, lit)
                last_wb = add(scale(Blast[k, t], per_wb), (setup_wb,) * 3)  # the last tile's write-back
                flows["epilogue"].append(mm.when(last_wb, [lit], "epi"))
                back = add(traffic, scale(S[k, t], -1))  # every visit but each tile's first reloads
                terms = [add(scale(add(traffic, scale(Blast[k, t], -1)), per_wb),
                             scale(add(n, (-1, -1, -1)), setup_wb))]
                if acg.edge(path[k - 1], path[k]) is None:
                    mm.m.Add(back[0] == 0).OnlyEnforceIf(lits(lit) + enforce)
                else:
                    rl = transfer(acg, t, path[k - 1], path[k], k, "reload", 1, 1)
                    reloads = add(n, scale(tiles, -1))
                    charge(rl, mm.when(back, [lit], "rl"), reloads, lit)
                    terms.append(add(scale(back, sc.per_byte(rl.bandwidth)), scale(reloads, rl.setup * sc.time)))
                flows["stalls"].append(mm.when(add(*terms), [lit, neg(dbl)], "stall"))
                flows["chains"].append((add(terms[0], last_wb, *terms[1:]), [lit, dbl], n, (tag, "count", k, t)))
            _operand_energy(mm, space, acg, sc, t, path, lit, S, T, flows, tag)
    for storage, terms in need.items():
        mm.m.Add(sum(u[0] for u in terms) <= tile_capacity(space.layer, acg, storage)).OnlyEnforceIf(enforce)
    kept = {s for _, s in layer.onchip.homes} | {s for s, _ in layer.onchip.reserved}
    for storage in sorted(kept - set(need)):  # what a fused group keeps must fit even where no tile goes
        if storage in acg.storages and tile_capacity(layer, acg, storage) < 0:
            mm.m.AddBoolOr([]).OnlyEnforceIf(enforce)
    return flows


def _per_instance(mm: Model, space: Space, acg: ACG, T: dict, t: str, k: int, instances: int, tag) -> Term:
    """The bytes of t's tile at level k that one instance of a replicated storage holds, as
    `mapping.instance_bytes` counts them: split axes ceil(tile / lanes), the others whole."""
    layer, L = space.layer, space.levels
    cap = acg.capability(space.binding.capability)
    accesses = [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == t]
    split = split_axes(layer, space.binding, cap.fixed, t)
    plain, _ = _axes(layer, t, accesses)
    terms, keys = [], []
    for axis in range(len(layer.tensors[t].shape)):
        if axis in split:
            d = split[axis]
            E, opts = layer.dims[d], space.options[space.dims.index(d)]
            key = (tag, "share", k, d)
            if key not in T:
                T[key] = mm.select(T["x", d], [-(-min(E, c[k - 1]) // c[-1]) for c in opts], f"share{k}_{d}")
            terms.append(T[key])
        elif axis in plain:
            terms.append(T["t", k, plain[axis]])
            key = (tag, "t", k, plain[axis])
        else:
            terms.append(_footprint(mm, layer, accesses, axis, T, "t", k))
            key = (tag, "fp", "t", k, t, axis)
        keys.append(key)
    lanes = [T["t", L, d] for d in split.values()]
    if math.prod(x[2] for x in lanes) > instances:  # several lanes share an instance
        p = mm.product(lanes, [(tag, "t", L, d) for d in split.values()])
        q = mm.var(1, -(-p[2] // instances), "lanes")
        mm.m.AddDivisionEquality(q, p[0] + instances - 1, instances)
        terms.append((q, 1, -(-p[2] // instances)))
        keys.append((tag, "lanes", t, instances))
    size = dtype_bytes(layer.tensors[t].dtype)
    return mm.product(terms + [(size,) * 3], keys + ["const"])


def _operand_energy(mm: Model, space: Space, acg: ACG, sc: Scales, t: str, path, lit, S: dict, T: dict,
                    flows: dict, tag) -> None:
    """Every instruction's access to its operand tile in the storage it reads (and writes): the
    tensor's distinct instruction tiles once, times the instructions along the dims it skips."""
    layer, L = space.layer, space.levels
    st = acg.storages[path[-1]]
    pj = exact(st.read_pj_per_byte) + (exact(st.write_pj_per_byte) if t == layer.expr.output.tensor else 0)
    others = [d for d in space.dims if d not in relevant_dims(layer, t)]
    acc = mm.product([S[L, t]] + [T["ninst", d] for d in others],
                     [(tag, "S", L, t)] + [(tag, "ninst", d) for d in others])
    flows["energy"].append(scale(mm.when(acc, [lit], "acc"), sc.pj(pj)))


def _instruction_cycles(mm: Model, space: Space, acg: ACG, cap, T: dict, tag) -> tuple[Term, Term]:
    """(initiation interval, drain) of one instruction: the capability's formulas over its streaming
    dims' extents, as a one-hot over the achievable extent combinations (streaming dims keep divisor
    instructions, so every instruction of a mapping has the same extents). Without an `interval`,
    the interval is the instruction's cycles and the drain 0."""
    streaming = cap.streaming_dims
    names = cap.cycles.names | (cap.interval.names if cap.interval is not None else set())
    if not streaming or not (names & set(streaming)):
        ones = {e: 1 for e in streaming}
        c, i = cap.instruction_cycles(ones), cap.instruction_interval(ones)
        return (i, i, i), (c - i, c - i, c - i)
    L = space.levels
    fused = [space.binding.fused(e) for e in streaming]
    exts = [mm.product([T["t", L, d] for d in ds], [(tag, "t", L, d) for d in ds]) for ds in fused]
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
