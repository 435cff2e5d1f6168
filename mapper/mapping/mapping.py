"""A Mapping: one complete decision for running a layer on an ACG, and its legality.

The loop nest has one *level* per storage hop: level 0 runs over tiles held off-chip, level j over
tiles held in the j-th storage of each tensor's placement path, the last level issues one instruction
per iteration. Each tensor is *placed* on a path from off-chip memory to the storage its capability
operand reads (outputs travel it backwards); at level j it lives in `path[j]`, and a tensor with a
shorter path keeps its innermost tile across the remaining levels.

    tile of dim d at level j  =  spatial[d] * prod(factor of d at levels >= j)     (clipped to the extent)

The factors of a dim cover its extent (their product may exceed it: edge tiles are partial). A
tensor's tile in a storage is its footprint over those tiles (halos included), doubled when the
tensor is double-buffered there; the tiles placed in one storage must fit its capacity.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.mapping.binding import bind
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> m = greedy_mapping(layer, bind(layer, acg)[0], acg)
    >>> check_legal(m, acg)
    []

The file format is `mapper.mapping.mapping_yaml`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, replace

from mapper.mapping.binding import Binding, bind
from mapper.mapping.instances import instance_bytes, split_axes, stream_axes
from mapper.spec.acg import ACG
from mapper.spec.dtypes import dtype_bytes
from mapper.spec.notation import Access
from mapper.spec.workload import Layer

FORMAT = "covenant-mapping/1"


@dataclass(frozen=True)
class Mapping:
    """Everything needed to reproduce a decision without re-solving (all fields plain and hashable)."""

    acg: str
    acg_digest: str
    layer: Layer
    binding: Binding
    placement: tuple[tuple[str, tuple[str, ...]], ...]  # (tensor, path from off-chip to operand storage)
    loops: tuple[tuple[tuple[str, int], ...], ...]  # per level, outermost first: (dim, factor)
    spatial: tuple[tuple[str, int], ...]  # (dim, extent inside one instruction)
    double_buffer: tuple[tuple[str, str], ...] = ()  # (tensor, storage)
    predicted: tuple[tuple[str, float], ...] = ()  # figures a strategy predicted, e.g. ('cycles', 1e6)
    workload: str = ""

    @property
    def levels(self) -> int:
        return len(self.loops)

    def path(self, tensor: str) -> tuple[str, ...]:
        return dict(self.placement)[tensor]

    def factor(self, dim: str, level: int) -> int:
        return math.prod(f for d, f in self.loops[level] if d == dim)

    def spatial_of(self, dim: str) -> int:
        return dict(self.spatial).get(dim, 1)

    def nominal(self, dim: str, level: int) -> int:
        """Tile of `dim` at `level` before clipping: the spatial factor times the factors at levels >= level."""
        return self._nominals[dim][level]

    @functools.cached_property
    def _nominals(self) -> dict[str, tuple[int, ...]]:
        """Per dim, its nominal tile at every level 0 .. levels (computed once per mapping)."""
        out = {}
        for d in self.layer.dims:
            tiles = [self.spatial_of(d)]
            for j in range(self.levels - 1, -1, -1):
                tiles.append(tiles[-1] * self.factor(d, j))
            out[d] = tuple(reversed(tiles))
        return out

    def tile(self, level: int) -> dict[str, int]:
        """Tile extent of every dim at `level` (level 0 = the whole layer), clipped to the extents."""
        return {d: min(extent, self._nominals[d][level]) for d, extent in self.layer.dims.items()}

    def storage_level(self, tensor: str, level: int) -> str:
        """The storage holding `tensor`'s tile for loops at `level`."""
        path = self.path(tensor)
        return path[min(level, len(path) - 1)]

    def is_double_buffered(self, tensor: str, storage: str) -> bool:
        return (tensor, storage) in self.double_buffer


def footprint(access: Access, tile: dict[str, int], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Positions per tensor axis that a transfer of the access's tile moves (halos included).

    Along an axis indexed `sum(c_d * d) + const`, the tile reads positions from the first to the last
    at the step g = gcd of the |c_d| of the dims whose tile extent is above 1 (g = 1 if none): a
    transfer moves that arithmetic progression, (span - 1) / g + 1 positions, at most ceil(n / g) of
    an axis of n. `2*p+r` over p=4, r=3 touches 2*3 + 2 + 1 = 9 rows; over p=4, r=1 (a strided
    1 x 1 convolution, or the kernel tiled to 1) it gathers the 4 rows read, not the 7 spanned. The
    progression is exactly the positions read whenever those form one (always when the kernel tile
    is 1 or at least the stride); a kernel tile strictly between 1 and the stride reads runs with
    gaps, and the progression covering them is moved (docs/design/cost-model.md, "Strided transfers")."""
    out = []
    for idx, n in zip(access.indices, shape, strict=True):
        step = math.gcd(*(abs(c) for d, c in idx.terms if tile[d] > 1)) or 1
        span = sum(abs(c) * (tile[d] - 1) for d, c in idx.terms)
        out.append(min(-(-n // step), span // step + 1))
    return tuple(out)


def tile_shape(layer: Layer, tensor: str, tile: dict[str, int]) -> tuple[int, ...]:
    """Elements per axis of `tensor`'s tile over dim extents `tile`: its access's `footprint`; a
    tensor read through several accesses (offsets) moves their bounding box, contiguous (step 1)."""
    t = layer.tensors[tensor]
    accesses = [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == tensor]
    if len(accesses) == 1:
        return footprint(accesses[0], tile, t.shape)
    return tuple(max(min(n, sum(abs(c) * (tile[d] - 1) for d, c in a.indices[axis].terms) + 1) for a in accesses)
                 for axis, n in enumerate(t.shape))


def tile_bytes(layer: Layer, tensor: str, tile: dict[str, int], dtype: str | None = None) -> int:
    """Bytes of `tensor`'s tile over dim extents `tile`, in `dtype` (default: the tensor's)."""
    return math.prod(tile_shape(layer, tensor, tile)) * dtype_bytes(dtype or layer.tensors[tensor].dtype)


def moved_dtype(m: Mapping, tensor: str, level: int) -> str:
    """The dtype a transfer of `tensor`'s tile at `level` moves: with an epilogue, the output's
    write-backs that are never revisited carry complete sums, requantised (`Layer.epilogue`)."""
    if tensor == m.layer.expr.output.tensor and m.layer.epilogue and not revisits_output(m, level):
        return m.layer.epilogue.dtype
    return m.layer.tensors[tensor].dtype


def held_dtype(m: Mapping, tensor: str, level: int) -> str:
    """The dtype `tensor`'s tile at `level` is held in: the output's, narrow above the level whose
    write-backs requantise it (what the next level down writes back is complete), else as declared."""
    if level + 1 < len(m.path(tensor)):
        return moved_dtype(m, tensor, level + 1)
    return m.layer.tensors[tensor].dtype


def bare_layer(layer: Layer) -> Layer:
    """The layer as a mapping records it: its computation only (no template, wiring or count)."""
    return replace(layer, op=None, params={}, producers={}, count=1, slots=None)


def storage_demand(m: Mapping, acg: ACG | None = None) -> dict[str, list[tuple[str, int]]]:
    """Per on-chip storage, the (tensor, bytes) it must hold, double buffering counted. With `acg`,
    a storage with several `instances` counts what one instance holds (see `split_axes`): each
    instance has `capacity` bytes."""
    out: dict[str, list[tuple[str, int]]] = {}
    for tensor, path in m.placement:
        for level, storage in enumerate(path):
            if level == 0:
                continue
            st = acg.storages[storage] if acg is not None else None
            if st is not None and st.instances > 1:
                cap = acg.capability(m.binding.capability)
                lanes = {ax: m.spatial_of(d) for ax, d in split_axes(m.layer, m.binding, cap.fixed, tensor).items()}
                streams = tuple(({ax: m.spatial_of(d) for ax, d in axes.items()}, u)
                                for axes, u in stream_axes(m.layer, m.binding, cap.lanes, tensor))
                need = instance_bytes(tile_shape(m.layer, tensor, m.tile(level)),
                                      dtype_bytes(held_dtype(m, tensor, level)), lanes, st.instances, streams)
            else:
                need = tile_bytes(m.layer, tensor, m.tile(level), held_dtype(m, tensor, level))
            if m.is_double_buffered(tensor, storage):
                need *= 2
            out.setdefault(storage, []).append((tensor, need))
    return out


def tile_capacity(layer: Layer, acg: ACG, storage: str) -> int:
    """What the tiles of `layer` may use of `storage` (of one instance, if replicated): its capacity
    less what a fused group keeps there whole (`Layer.onchip`)."""
    return acg.storages[storage].capacity - layer.onchip_bytes(storage)


def over_capacity(m: Mapping, acg: ACG) -> list[str]:
    """Every storage whose tiles do not fit (one instance of a replicated storage), as a message."""
    problems = []
    for storage, needs in storage_demand(m, acg).items():
        st = acg.storages[storage]
        total, have = sum(n for _, n in needs), tile_capacity(m.layer, acg, storage)
        if total > have:
            parts = " + ".join(f"{n} B for tensor {t}" + (" (double-buffered)" if m.is_double_buffered(t, storage)
                                                          else "") for t, n in needs)
            each = f" per instance (of {st.instances})" if st.instances > 1 else ""
            problems.append(f"{storage}: needs {total} B{each} ({parts}), holds {have} B{each}")
    return problems


def acg_digest(acg: ACG) -> str:
    """A content hash of what an ACG means (not of its file: comments and layout do not count),
    worked out once per ACG object (every decoded mapping records it)."""
    known = _DIGESTS.get(id(acg))
    if known is not None and known[0] is acg:
        return known[1]
    if len(_DIGESTS) > 64:
        _DIGESTS.clear()
    _DIGESTS[id(acg)] = (acg, _digest(acg))
    return _DIGESTS[id(acg)][1]


_DIGESTS: dict[int, tuple[ACG, str]] = {}  # id -> (the ACG, kept alive so that its id is not reused; its digest)


def _digest(acg: ACG) -> str:
    content = repr((acg.name, acg.clock_ghz, sorted(acg.storages.items()),
                    [(c.name, [(cap.name, str(cap.expr), sorted(cap.fixed.items()), sorted(cap.operands.items()),
                                sorted(cap.dtypes.items()), str(cap.cycles), cap.pj_per_op)
                               + ((str(cap.interval),) if cap.interval is not None else ())
                               + (("epilogue",) if cap.epilogue else ())
                               + ((sorted(cap.lanes.items()),) if cap.lanes else ())
                               for cap in c.capabilities]) for c in acg.computes.values()],
                    acg.edges) + (() if acg.cores == 1 else (acg.cores,)) + ((acg.power,) if acg.power else ())
                   + ((acg.staging,) if acg.staging else ()))
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# Legality

def check_legal(m: Mapping, acg: ACG) -> list[str]:
    """Every violation of the mapping on `acg`, each naming the resource; [] when legal."""
    problems = []
    layer, b = m.layer, m.binding
    if m.acg != acg.name or m.acg_digest != acg_digest(acg):
        problems.append(f"the mapping is for ACG '{m.acg}' ({m.acg_digest}), not '{acg.name}' "
                        f"({acg_digest(acg)})")
        return problems
    try:
        acg.capability(b.capability)
    except KeyError:
        return [f"{acg.name} has no capability '{b.capability}'"]
    valid = {(x.capability, x.tensors, x.dims) for x in bind(layer, acg)}
    if (b.capability, b.tensors, b.dims) not in valid:
        problems.append(f"binding '{b.describe()}' is not a valid binding of layer {layer.name}")
    return problems + resource_problems(m, acg)


def resource_problems(m: Mapping, acg: ACG) -> list[str]:
    """The violations of a mapping whose binding is known to be valid: extents, factors, placement,
    edges, buffering and capacity (each group checked only once the ones before it hold)."""
    for check in (_factor_problems, _cover_problems, _edge_problems):
        problems = check(m, acg)
        if problems:
            return problems
    return over_capacity(m, acg)


def _factor_problems(m: Mapping, acg: ACG) -> list[str]:
    """The instruction's extents, the spatial factors and the loop factors."""
    problems = []
    layer, b = m.layer, m.binding
    cap = acg.capability(b.capability)
    for e, extent in cap.fixed.items():
        used = math.prod(m.spatial_of(d) for d in b.fused(e))
        if used > extent:
            problems.append(f"{cap.name}: dim {e} holds {extent}, the instruction needs {used} "
                            f"({'*'.join(f'{d}={m.spatial_of(d)}' for d in b.fused(e))})")
    for d, s in m.spatial:
        if b.dim_map.get(d) is None and s != 1:
            problems.append(f"dim {d} is temporal in the binding but has spatial factor {s}")
        if s < 1:
            problems.append(f"dim {d}: spatial factor {s} < 1")
    for level, loops in enumerate(m.loops):
        for d, f in loops:
            if d not in layer.dims:
                problems.append(f"level {level}: '{d}' is not a dim of layer {layer.name}")
            elif f < 1:
                problems.append(f"level {level}: factor {f} of dim {d} < 1")
    return problems


def _cover_problems(m: Mapping, acg: ACG) -> list[str]:
    """Every dim's factors cover its extent, the outermost one without iterating past it; and every
    tensor's placement is one of its storage paths, no longer than the nest."""
    problems = []
    layer, b = m.layer, m.binding
    for d, extent in layer.dims.items():
        nominal = [m.nominal(d, lv) for lv in range(m.levels + 1)]
        if nominal[0] < extent:
            problems.append(f"dim {d}: factors cover {nominal[0]} of its extent {extent}")
        elif m.levels and nominal[0] - nominal[1] >= extent:
            problems.append(f"dim {d}: the outermost factor {m.factor(d, 0)} iterates past the extent {extent}")
    for tensor in layer.tensors:
        paths = b.paths.get(tensor, ())
        path = dict(m.placement).get(tensor)
        if path is None:
            problems.append(f"tensor {tensor} has no placement")
            continue
        if path not in paths:
            problems.append(f"tensor {tensor}: placement {'->'.join(path)} is not one of its storage paths "
                            f"({'; '.join('->'.join(p) for p in paths)})")
        if len(path) > m.levels:
            problems.append(f"tensor {tensor}: placement has {len(path)} storages but the nest has "
                            f"{m.levels} levels")
    return problems


def _edge_problems(m: Mapping, acg: ACG) -> list[str]:
    """The output's partial sums have an edge to return by, double buffering is where the tensor is
    and the storage supports it, and what a fused group keeps on chip fits where it is kept."""
    problems = []
    layer = m.layer
    out = layer.expr.output.tensor
    for j, (src, dst) in enumerate(zip(m.path(out), m.path(out)[1:], strict=False), start=1):
        if revisits_output(m, j) and acg.edge(src, dst) is None:
            problems.append(f"partial sums of {out} return from {src} to {dst} (a reduction loop runs outside "
                            f"an output loop above level {j}), but there is no edge {src}->{dst}")
    if layer.epilogue and len(m.path(out)) == 1:
        problems.append(f"the epilogue of {out} requantises write-backs, but {out} is computed in place")
    elif layer.epilogue and revisits_output(m, 1):
        problems.append(f"the epilogue of {out} needs its sums complete where they reach {m.path(out)[0]}, "
                        "but partial sums are written back there")
    for tensor, storage in m.double_buffer:
        st = acg.storages.get(storage)
        if st is None or storage not in m.path(tensor)[1:]:
            problems.append(f"tensor {tensor} is double-buffered in {storage}, which is not on its path")
        elif not st.double_buffer:
            problems.append(f"{storage} does not support double buffering (tensor {tensor})")
    for storage, held in layer.onchip.reserved + tuple((s, 0) for _, s in layer.onchip.homes):
        st = acg.storages.get(storage)
        if st is None or st.offchip or st.instances != 1:
            problems.append(f"{storage} cannot keep values of a fused group (not a single on-chip storage)")
        elif held < 0 or layer.onchip_bytes(storage) > st.total_capacity:
            problems.append(f"{storage}: the fused group keeps {layer.onchip_bytes(storage)} B there, "
                            f"it holds {st.total_capacity} B")
    return problems


def revisits_output(m: Mapping, level: int) -> bool:
    """Whether the output tile held at `level` is left and later re-entered: some reduction loop
    (factor > 1) at an outer level runs outside an output loop (factor > 1) of an outer level."""
    reduction = set(m.layer.expr.reduction_dims)
    seen_reduction = False
    for loops in m.loops[:level]:
        for d, f in loops:
            if f <= 1:
                continue
            if d in reduction:
                seen_reduction = True
            elif seen_reduction:
                return True
    return False


# --------------------------------------------------------------------------------------------------
# A simple legal mapping per binding: the floor every strategy must beat

def greedy_mapping(layer: Layer, binding: Binding, acg: ACG, grow: bool = True) -> Mapping | None:
    """A legal mapping for `binding`, or None when even the smallest tiles do not fit.

    Placement: each tensor's shortest path. Instruction: each capability dim filled greedily with
    divisors of the fused dims. Without `grow`, every other factor loops at level 0 (the smallest
    tiles); with it, factors move inward, innermost level first, while the tiles still fit.
    """
    cap = acg.capability(binding.capability)
    layer = bare_layer(layer)
    placement = tuple((t, binding.paths[t][0]) for t in layer.tensors)
    levels = max(len(p) for _, p in placement)
    spatial = {d: 1 for d in layer.dims}
    for e in cap.expr.dims:
        room = cap.fixed.get(e)
        for d in binding.fused(e):
            best = max((f for f in _divisors(layer.dims[d])
                        if room is None or f * math.prod(spatial[x] for x in binding.fused(e)) <= room),
                       default=1)
            spatial[d] = best if room is not None else 1  # streaming dims grow below, with the buffers
    remaining = {d: layer.dims[d] // spatial[d] for d in layer.dims}
    per_level: list[dict[str, int]] = [dict(remaining)] + [{d: 1 for d in layer.dims} for _ in range(levels - 1)]
    double = tuple((t, s) for t, p in placement for s in p[1:] if acg.storages[s].double_buffer)

    def build(spatial_, per_level_, double_) -> Mapping:
        order = list(layer.dims)
        loops = tuple(tuple((d, lv[d]) for d in order if lv[d] > 1) for lv in per_level_)
        return Mapping(acg.name, acg_digest(acg), layer, binding, placement, loops,
                       tuple((d, s) for d, s in spatial_.items() if s > 1), double_)

    def fits(mp: Mapping) -> bool:
        return not over_capacity(mp, acg)

    m = build(spatial, per_level, double)
    if not fits(m):
        m = build(spatial, per_level, ())
        double = ()
        if not fits(m):
            return None
    if grow:
        streaming = [d for d in binding.spatial_dims if cap.fixed.get(binding.dim_map[d]) is None]
        # Grow the instruction along streaming dims first (longer streams amortise fixed costs), then
        # the tiles of each level, innermost first.
        for target in (["spatial"] if streaming else []) + list(range(levels - 1, 0, -1)):
            dims = streaming if target == "spatial" else list(layer.dims)
            changed = True
            while changed:
                changed = False
                for d in dims:
                    for p in _prime_factors(per_level[0][d]):
                        trial_sp, trial_lv = dict(spatial), [dict(lv) for lv in per_level]
                        trial_lv[0][d] //= p
                        if target == "spatial":
                            trial_sp[d] *= p
                        else:
                            trial_lv[target][d] *= p
                        trial = build(trial_sp, trial_lv, double)
                        if fits(trial):
                            spatial, per_level, m, changed = trial_sp, trial_lv, trial, True
                            break
    return m


def simple_mappings(layer: Layer, acg: ACG) -> list[Mapping]:
    """The smallest-tile legal mapping of every binding that has one."""
    return [m for b in bind(layer, acg) if (m := greedy_mapping(layer, b, acg, grow=False)) is not None]


def _divisors(n: int) -> list[int]:
    small = [i for i in range(1, math.isqrt(n) + 1) if n % i == 0]
    return sorted(set(small + [n // i for i in small]))


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return sorted(set(out))


def with_predicted(m: Mapping, **figures: float) -> Mapping:
    return replace(m, predicted=tuple(sorted({**dict(m.predicted), **figures}.items())))
