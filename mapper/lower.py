"""Lowering: a Mapping becomes a Program, the instruction stream a sequential controller would issue.

The instruction types live in `mapper.program` (the simulator reads them without the lowering).

    >>> from mapper.acg import load_acg
    >>> from mapper.binding import bind
    >>> from mapper.mapping import greedy_mapping
    >>> from mapper.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 4, "n": 4, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> prog = lower(greedy_mapping(layer, bind(layer, acg)[0], acg))
    >>> sum(isinstance(i, Compute) for i in prog.instructions)
    2
"""

from __future__ import annotations

import itertools

from mapper.mapping import Mapping
from mapper.program import Alloc, Compute, Free, Init, Instruction, Move, Program, Region, region_function


def lower(m: Mapping) -> Program:
    """The instruction stream of mapping `m`, in issue order."""
    layer, levels = m.layer, m.levels
    out_t = layer.expr.output.tensor
    nest = [(lv, d, f) for lv, loops in enumerate(m.loops) for d, f in loops]
    tiles = [m.tile(lv) for lv in range(levels + 1)]  # tile extents per level; levels = the instruction
    strides = [_stride(m, nest, i) for i in range(len(nest))]
    paths = dict(m.placement)
    double = set(m.double_buffer)
    code: list[Instruction] = []
    resident: dict[tuple[str, int], Region] = {}  # (tensor, level) -> region held in paths[t][level]
    slots: dict[tuple[str, int], int] = {}
    written_back: set[tuple[int, Region]] = set()  # output regions that already hold partial results

    # The nest runs outermost level first, so the loops of levels above `level` are its first
    # depth[level] entries: a level's tile depends only on that prefix of the index.
    depth = [sum(lv < level for lv, _, _ in nest) for level in range(levels + 1)]

    def ranges_at(index: tuple[int, ...], level: int) -> dict[str, tuple[int, int]]:
        base = dict.fromkeys(layer.dims, 0)
        for k in range(depth[level]):
            base[nest[k][1]] += index[k] * strides[k]
        tile = tiles[level]
        return {d: (b, min(n, b + tile[d])) for (d, n), b in zip(layer.dims.items(), base.values(), strict=True)}

    # Memoise regions on the prefix (the inner loops revisit it many times).
    region_of = {t: region_function(layer, t) for t in layer.tensors}
    memo: dict[tuple[str, int, tuple[int, ...]], Region] = {}

    def region_at(t: str, j: int, index: tuple[int, ...]) -> Region:
        key = (t, j, index[:depth[j]])
        region = memo.get(key)
        if region is None:
            region = region_of[t](ranges_at(index, j))
            if depth[j] < len(nest):  # the innermost level never repeats
                memo[key] = region
        return region

    def acquire(t: str, j: int, region: Region) -> None:
        path = paths[t]
        slot = (slots.get((t, j), -1) + 1) % (2 if (t, path[j]) in double else 1)
        slots[(t, j)] = slot
        code.append(Alloc(t, path[j], region, slot))
        if t != out_t or (j - 1, region) in written_back:  # inputs, and partial sums coming back
            code.append(Move(t, path[j - 1], path[j], region))
        else:
            code.append(Init(t, path[j], region))
        resident[(t, j)] = region

    def release(t: str, j: int) -> None:
        region = resident.pop((t, j))
        if t == out_t:
            write_back(t, j, region)
        else:
            code.append(Free(t, paths[t][j], region))

    def write_back(t: str, j: int, region: Region) -> None:
        code.append(Move(t, paths[t][j], paths[t][j - 1], region))
        written_back.add((j - 1, region))
        code.append(Free(t, paths[t][j], region))

    def stage(wanted: dict[tuple[str, int], Region]) -> None:
        """Bring in the `wanted` tiles (tensor, level) -> region, releasing the ones they replace.

        Order within an iteration, so that transfers overlap computes as double buffering allows:
        1. double-buffered inputs load their next tile into the other slot first (their engines then
           run while the previous computes finish), shallowest first;
        2. the other changing tiles are written back / freed, deepest first;
        3. the rest load, shallowest first;
        4. double-buffered outputs are written back last. A level moves early (1) or late (4) only
           if every changing level above it of the same tensor does, so data still flows level by level.
        """
        swaps = {key for key in wanted if key in resident and key[0] != out_t and (key[0], paths[key[0]][key[1]])
                 in double}
        early: list[tuple[str, int]] = []
        deferred: list[tuple[str, int]] = []
        for t, j in sorted(wanted, key=lambda key: key[1]):
            above = [(t, i) for i in range(1, j) if (t, i) in wanted]
            if (t, j) in swaps and all(key in early for key in above):
                early.append((t, j))
            elif t == out_t and (t, j) in resident and (t, paths[t][j]) in double and \
                    all(key in deferred for key in above if key in resident or key in deferred):
                deferred.append((t, j))
        held = {key: resident.pop(key) for key in deferred}
        for t, j in early:
            old = resident.pop((t, j))
            acquire(t, j, wanted[(t, j)])
            code.append(Free(t, paths[t][j], old))
        for t, j in sorted(wanted, key=lambda key: -key[1]):
            if (t, j) in resident and (t, j) not in swaps:
                release(t, j)
        for t, j in sorted(wanted, key=lambda key: key[1]):
            if (t, j) in early:
                continue
            old = resident.pop((t, j), None) if (t, j) in swaps else None
            acquire(t, j, wanted[(t, j)])
            if old is not None:
                code.append(Free(t, paths[t][j], old))
        for t, j in sorted(deferred, key=lambda key: -key[1]):
            write_back(t, j, held[(t, j)])

    held_levels = [(t, j) for t, path in paths.items() for j in range(1, len(path))]
    if len(paths[out_t]) == 1:  # a fused group's output computed in place, in the storage that keeps it
        code.append(Init(out_t, paths[out_t][0], tuple((0, n) for n in layer.output.shape)))
    places = tuple((t, paths[t][-1]) for t in layer.tensors)
    for index in itertools.product(*(range(f) for _, _, f in nest)):
        wanted = {}
        for t, j in held_levels:
            region = region_at(t, j, index)
            if resident.get((t, j)) != region:
                wanted[(t, j)] = region
        if wanted:
            stage(wanted)
        ranges = ranges_at(index, levels)
        if all(hi > lo for lo, hi in ranges.values()):  # edge tiles may leave nothing to compute
            code.append(Compute(m.binding.capability, tuple((d, lo, hi) for d, (lo, hi) in ranges.items()),
                                places))
    for t, j in sorted(resident, key=lambda key: -key[1]):
        release(t, j)
    return Program(m.acg, layer, m.binding.capability, m.binding.tensors, m.binding.dims, tuple(code),
                   m.binding.immediates)


def _stride(m: Mapping, nest: list[tuple[int, str, int]], i: int) -> int:
    """How far one iteration of loop `i` of the nest advances its dim: the tile of the next level,
    times the factors of the same dim at the same level that run inside it."""
    level, dim, _ = nest[i]
    inner = 1
    for lv, d, f in nest[i + 1:]:
        if lv == level and d == dim:
            inner *= f
    return m.nominal(dim, level + 1) * inner
