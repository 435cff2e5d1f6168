"""The CP-SAT terms of one binding's tiles: what `mapper/mapping/mapping.py` and `cost.py` compute from a
mapping's tile sizes, as selections on each dim's one-hot over its tile chains (`solver/cpbuild.py`
builds the cost model's pieces from them).

- `tiles`: per dim a one-hot over its chains (`space.Point.chains`); every per-dim quantity (a loop
  factor, an iteration count, the first and the last tile's extent, instruction counts) is a
  constant coefficient on it (`Tiles`).
- `sizes`: per tensor and level, the first tile's bytes, the last one's (the output's) and every
  distinct tile's bytes counted once (`cost.tile_sum`): partial tiles at their size; on a plain axis
  the tiles' extents sum to the dim's extent, on a halo axis tile count x footprint, or, when its
  output dim pads, (tiles - 1) x the first tile's footprint + the last tile's.
- `footprint`: the positions an axis moves, as `mapping.tile_shape` counts them (halos, strides).
- `per_instance`: the bytes one instance of a replicated storage holds (`mapping.instance_bytes`).

Products are shared through `Model.product`'s keys, which also fix the order of the factors: the keys
keep their short names ("t", "last", "cum", "fp", "S", "W"), since renaming them would reorder the
model's variables.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from mapper.mapping.instances import split_axes, stream_axes
from mapper.spec.acg import ACG
from mapper.spec.dtypes import dtype_bytes
from solver.cpmodel import Model, Term, add, neg, scale
from solver.space import NoMapping, Space


@dataclass(frozen=True)
class Tiles:
    """Per dim, its one-hot over the chains and, as selections on it, the quantities of every level
    (j: a loop level 0 .. L-1, k: a storage level 1 .. L)."""

    chains: dict[str, list]  # dim -> one-hot over space.options (the decision of Point.chains)
    factor: dict[tuple[int, str], Term] = field(default_factory=dict)  # (j, dim): its loop factor
    moves: dict[tuple[int, str], Term] = field(default_factory=dict)  # (j, dim): factor > 1 (0/1)
    iterations: dict[tuple[int, str], Term] = field(default_factory=dict)  # (j, dim): iterations through j
    extent: dict[tuple[int, str], Term] = field(default_factory=dict)  # (k, dim): the first tile's extent
    last: dict[tuple[int, str], Term] = field(default_factory=dict)  # (k, dim): the last tile's extent
    instructions: dict[str, Term] = field(default_factory=dict)  # dim: its non-empty instruction positions
    last_instructions: dict[str, Term] = field(default_factory=dict)  # dim: those of the last data tile
    last_at: dict[tuple[int, str], Term] = field(default_factory=dict)  # (k, dim): those of level k's last tile
    shared: dict[tuple, object] = field(default_factory=dict)  # sub-terms built once ('above 1', shares)

    def of(self, name: str, k: int, d: str) -> Term:
        """The extent of dim d in the tile `name` ('t': the first, 'last': the last) at level k."""
        return (self.extent if name == "t" else self.last)[k, d]


@dataclass(frozen=True)
class Sizes:
    """Per (level k, tensor): the bytes of its first tile, of its last (the output's only), and of
    every distinct tile counted once (`cost.tile_sum`)."""

    tile: dict[tuple[int, str], Term]
    last: dict[tuple[int, str], Term]
    once: dict[tuple[int, str], Term]
    narrow: dict[tuple[str, int], Term] = field(default_factory=dict)  # ('tile' | 'last' | 'once', k):
    # the output's, in its epilogue's dtype (`Layer.epilogue`)


def tiles(mm: Model, space: Space) -> Tiles:
    """Every dim's one-hot (all dims first), then per dim its quantities: per loop level the factor,
    'factor > 1' and the iterations so far; per storage level the first and the last tile; the
    instruction positions, and those of the last innermost data tile."""
    L = space.levels
    onehots = [mm.onehot(len(opts), f"chain_{d}") for d, opts in zip(space.dims, space.options, strict=True)]
    out = Tiles(dict(zip(space.dims, onehots, strict=True)))
    for xs, d, opts in zip(onehots, space.dims, space.options, strict=True):
        E = space.layer.dims[d]

        def fac(c, j, E=E):
            return -(-E // c[0]) if j == 0 else c[j - 1] // c[j]

        for j in range(L):
            out.factor[j, d] = mm.select(xs, [fac(c, j) for c in opts], f"f{j}_{d}")
            out.moves[j, d] = mm.select(xs, [int(fac(c, j) > 1) for c in opts], f"g{j}_{d}")
            out.iterations[j, d] = mm.select(xs, [math.prod(fac(c, i) for i in range(j + 1)) for c in opts],
                                             f"cum{j}_{d}")
        for k in range(1, L + 1):
            out.extent[k, d] = mm.select(xs, [min(E, c[k - 1]) for c in opts], f"t{k}_{d}")
            out.last[k, d] = mm.select(xs, [(E - 1) % c[k - 1] + 1 for c in opts], f"last{k}_{d}")
        out.instructions[d] = mm.select(xs, [-(-E // c[-1]) for c in opts], f"ninst_{d}")
        for k in range(1, L):
            out.last_at[k, d] = mm.select(xs, [-(-((E - 1) % c[k - 1] + 1) // c[-1]) for c in opts], f"nlast{k}_{d}")
        out.last_instructions[d] = out.last_at[L - 1, d] if L > 1 else \
            mm.select(xs, [-(-((E - 1) % c[L - 2] + 1) // c[-1]) for c in opts], f"nlast_{d}")
    return out


def accesses_of(layer, t: str) -> list:
    """The accesses of tensor t, the output's first."""
    return [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == t]


def sizes(mm: Model, space: Space, tl: Tiles, tag) -> Sizes:
    """Per tensor and level k: the first tile's bytes, the last tile's (the output's) and every
    distinct tile's bytes counted once."""
    layer, L = space.layer, space.levels
    out_t = layer.expr.output.tensor
    result = Sizes({}, {}, {})
    for t, tensor in layer.tensors.items():
        accesses = accesses_of(layer, t)
        size = dtype_bytes(tensor.dtype)
        plain, halo = axes(layer, t, accesses)
        for k in range(1, L + 1):
            for name, out in (("t", result.tile), ("last", result.last)):
                if name == "last" and t != out_t:
                    continue
                terms = [tl.of(name, k, plain[axis]) if axis in plain
                         else footprint(mm, layer, accesses, axis, tl, name, k) for axis in range(len(tensor.shape))]
                keys = [(tag, name, k, plain[axis]) if axis in plain else (tag, "fp", name, k, t, axis)
                        for axis in range(len(tensor.shape))]
                out[k, t] = mm.product(terms + [(size,) * 3], keys + ["const"])
                if t == out_t and layer.epilogue:
                    narrow = dtype_bytes(layer.epilogue.dtype)
                    result.narrow["tile" if name == "t" else name, k] = mm.product(terms + [(narrow,) * 3],
                                                                                  keys + ["const"])
            result.once[k, t] = _once(mm, space, tl, tag, t, k, (plain, halo))
            if t == out_t and layer.epilogue:
                result.narrow["once", k] = _once(mm, space, tl, tag, t, k, (plain, halo), layer.epilogue.dtype)
    return result


def _once(mm: Model, space: Space, tl: Tiles, tag, t: str, k: int, split: tuple, dtype: str | None = None) -> Term:
    """Every distinct tile of t at level k, counted once: the plain axes whole; the tile count of
    each halo dim with divisor tiles (once, on however many axes); per halo axis, the first tile's
    footprint or, where its one padded dim (`padding.paddable`) is, (tiles - 1) x the first tile's
    footprint + the last tile's (`_halo_sum`)."""
    layer = space.layer
    plain, halo = split
    accesses = accesses_of(layer, t)
    const = dtype_bytes(dtype or layer.tensors[t].dtype) * math.prod(layer.dims[d] for d in plain.values())
    hdims = sorted({d for axis in halo for d, _ in accesses[0].indices[axis].terms})
    padded = {d for d in hdims if any(layer.dims[d] % c[k - 1] for c in space.options[space.dims.index(d)])}
    terms = [tl.iterations[k - 1, d] for d in hdims if d not in padded]
    keys = [(tag, "cum", k - 1, d) for d in hdims if d not in padded]
    for axis in halo:
        pad = sorted({d for a in accesses for d, _ in a.indices[axis].terms} & padded)
        if len(pad) > 1:
            raise NoMapping(f"internal error: dims {pad} both padded on one halo axis of {t}")
        terms.append(_halo_sum(mm, layer, accesses, axis, tl, k, pad[0], tag) if pad else
                     footprint(mm, layer, accesses, axis, tl, "t", k))
        keys.append((tag, "fpsum", k, t, axis) if pad else (tag, "fp", "t", k, t, axis))
    hi = _once_bound(space, t, k, halo, hdims, dtype)
    return mm.product(terms + [(const,) * 3], keys + ["const"], hi=hi)


def _halo_sum(mm: Model, layer, accesses, axis: int, tl: Tiles, k: int, d: str, tag) -> Term:
    """The footprints along a halo axis summed over the tiles of its padded dim d at level k:
    (tiles - 1) x the first tile's + the last tile's (the other dims of the axis keep divisor
    tiles, so their first and last tiles are alike)."""
    first = footprint(mm, layer, accesses, axis, tl, "t", k)
    last = footprint(mm, layer, accesses, axis, tl, "last", k)
    count = tl.iterations[k - 1, d]
    t = accesses[0].tensor
    full = mm.product([add(count, (-1, -1, -1)), first], [(tag, "cum-1", k - 1, d), (tag, "fp", "t", k, t, axis)])
    return add(full, last)


def axes(layer, t: str, accesses) -> tuple[dict[int, str], list[int]]:
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


def footprint(mm: Model, layer, accesses, axis: int, tl: Tiles, name: str, k: int) -> Term:
    """The positions along `axis` moved for the tile `name` at level k, as `mapping.tile_shape`
    counts them: one access, the arithmetic progression of the positions it reads (`_progression`);
    several, their largest span (halos included, clipped)."""
    n = layer.tensors[accesses[0].tensor].shape[axis]
    if len(accesses) == 1 and any(abs(c) > 1 for _, c in accesses[0].indices[axis].terms):
        return _progression(mm, accesses[0].indices[axis], n, tl, name, k)
    per_access = []
    for a in accesses:
        idx = a.indices[axis]
        span = add((1, 1, 1), *(scale(add(tl.of(name, k, d), (-1, -1, -1)), abs(c)) for d, c in idx.terms))
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


def _above_one(mm: Model, tl: Tiles, name: str, k: int, d: str):
    """A literal (built once) true iff the extent of d in the tile `name` at level k is above 1."""
    key = ("above", name, k, d)
    if key not in tl.shared:
        t = tl.of(name, k, d)
        if isinstance(t[0], int):
            tl.shared[key] = int(t[0] > 1)
        else:
            b = mm.m.NewBoolVar(mm.name(f"gt1_{name}{k}_{d}"))
            mm.m.Add(t[0] >= 2).OnlyEnforceIf(b)
            mm.m.Add(t[0] <= 1).OnlyEnforceIf(b.Not())
            tl.shared[key] = b
    return tl.shared[key]


def _progression(mm: Model, idx, n: int, tl: Tiles, name: str, k: int) -> Term:
    """The positions an index with a coefficient above 1 reads over the tile, moved as one
    arithmetic progression: with U the dims whose tile extent is above 1 and g = gcd of their
    coefficients, 1 + sum over U of (|c| / g) x (tile - 1) positions, at most ceil(n / g). One case
    per subset U (a stride-2 `2*p+r`: r's tile 1 gives t_p rows, else 2 x (t_p - 1) + t_r)."""
    dims = [d for d, _ in idx.terms]
    coeff = {d: abs(c) for d, c in idx.terms}
    above = {d: _above_one(mm, tl, name, k, d) for d in dims}
    cases = []
    for picks in itertools.product((False, True), repeat=len(dims)):
        inside = [d for d, p in zip(dims, picks, strict=True) if p]
        g = math.gcd(*(coeff[d] for d in inside)) or 1
        count = add((1, 1, 1), *(scale(add(tl.of(name, k, d), (-1, -1, -1)), coeff[d] // g) for d in inside))
        literals = [above[d] if p else neg(above[d]) for d, p in zip(dims, picks, strict=True)]
        if any(isinstance(x, int) and x == 0 for x in literals):
            continue
        cases.append((literals, _at_most(mm, count, -(-n // g), f"fp{k}")))
    return mm.cases(cases, f"fps{k}")


def _once_bound(space: Space, t: str, k: int, halo: list[int], hdims: list[str],
                dtype: str | None = None) -> int | None:
    """An upper bound of the distinct tiles' bytes of t at level k: per halo axis, the largest tile
    count x footprint over the tiles its dims may take at level k (a dim on two axes counts twice:
    still a bound), times the rest."""
    layer = space.layer
    if not halo:
        return None
    accesses = accesses_of(layer, t)
    shape = layer.tensors[t].shape
    choices = {d: sorted({min(layer.dims[d], c[k - 1]) for c in space.options[space.dims.index(d)]}) for d in hdims}
    bound = dtype_bytes(dtype or layer.tensors[t].dtype) * math.prod(
        layer.dims[accesses[0].indices[ax].terms[0][0]] for ax in range(len(shape)) if ax not in halo)
    for ax in halo:
        dims = sorted({d for a in accesses for d, _ in a.indices[ax].terms})
        best = 0
        for combo in itertools.product(*(choices[d] for d in dims)):
            tile = dict(zip(dims, combo, strict=True))
            fp = max(min(shape[ax], sum(abs(c) * (tile[d] - 1) for d, c in a.indices[ax].terms) + 1) for a in accesses)
            best = max(best, fp * math.prod(-(-layer.dims[d] // tile[d]) for d in dims))
        bound *= best
    return bound


def per_instance(mm: Model, space: Space, acg: ACG, tl: Tiles, t: str, k: int, instances: int, tag,
                 dtype: str | None = None) -> Term:
    """The bytes of t's tile at level k that one instance of a replicated storage holds, as
    `mapping.instance_bytes` counts them: split axes ceil(tile / lanes), a stream's axes ceil(S /
    lanes) per instruction-stream, the others whole."""
    layer, L = space.layer, space.levels
    cap = acg.capability(space.binding.capability)
    accesses = accesses_of(layer, t)
    split = split_axes(layer, space.binding, cap.fixed, t)
    streams = stream_axes(layer, space.binding, cap.lanes, t)
    dealt = {**split, **{ax: d for axes, _ in streams for ax, d in axes.items()}}
    plain, _ = axes(layer, t, accesses)
    terms, keys = [], []
    for axis in range(len(layer.tensors[t].shape)):
        if axis in dealt:
            terms.append(_share(mm, space, tl, k, dealt[axis], tag))
            key = (tag, "share", k, dealt[axis])
        elif axis in plain:
            terms.append(tl.extent[k, plain[axis]])
            key = (tag, "t", k, plain[axis])
        else:
            terms.append(footprint(mm, layer, accesses, axis, tl, "t", k))
            key = (tag, "fp", "t", k, t, axis)
        keys.append(key)
    lanes = [(tl.extent[L, d], (tag, "t", L, d)) for d in split.values()]
    for axes_, u in streams:
        per_lane, used = _stream(mm, tl, L, sorted(axes_.values()), u, tag)
        terms.append(per_lane)
        keys.append((tag, "per lane", tuple(sorted(axes_.values())), u))
        lanes.append((used, (tag, "lanes used", tuple(sorted(axes_.values())), u)))
    if math.prod(x[2] for x, _ in lanes) > instances:  # several lanes share an instance
        p = mm.product([x for x, _ in lanes], [key for _, key in lanes])
        q = mm.var(1, -(-p[2] // instances), "lanes")
        mm.m.AddDivisionEquality(q, p[0] + instances - 1, instances)
        terms.append((q, 1, -(-p[2] // instances)))
        keys.append((tag, "lanes", t, instances))
    size = dtype_bytes(dtype or layer.tensors[t].dtype)
    return mm.product(terms + [(size,) * 3], keys + ["const"])


def _share(mm: Model, space: Space, tl: Tiles, k: int, d: str, tag) -> Term:
    """ceil(the level-k tile's extent along d / the instruction's): the instructions it holds along d."""
    key = (tag, "share", k, d)
    if key not in tl.shared:
        E, opts = space.layer.dims[d], space.options[space.dims.index(d)]
        tl.shared[key] = mm.select(tl.chains[d], [-(-min(E, c[k - 1]) // c[-1]) for c in opts], f"share{k}_{d}")
    return tl.shared[key]


def _stream(mm: Model, tl: Tiles, L: int, dims: list[str], u: int, tag) -> tuple[Term, Term]:
    """An instruction's stream over `dims` dealt on u lanes: (ceil(S / u), min(S, u)), S the product
    of the instruction's extents along them."""
    key = (tag, "stream", tuple(dims), u)
    if key not in tl.shared:
        span = mm.product([tl.extent[L, d] for d in dims], [(tag, "t", L, d) for d in dims])
        lo, hi = -(-span[1] // u), -(-span[2] // u)
        if span[2] <= u:
            tl.shared[key] = ((1, 1, 1), span)
        elif isinstance(span[0], int):
            tl.shared[key] = ((lo, lo, lo), (min(span[0], u),) * 3)
        else:
            per, used = mm.var(lo, hi, "per_lane"), mm.var(min(span[1], u), u, "lanes_used")
            mm.m.AddDivisionEquality(per, span[0] + u - 1, u)
            mm.m.AddMinEquality(used, [span[0], u])
            tl.shared[key] = ((per, lo, hi), (used, min(span[1], u), u))
    return tl.shared[key]
