"""Lowering: a Mapping becomes a Program, the instruction stream a sequential controller would issue.

The instruction types live in `mapper.program.instructions` (the simulator reads them without the lowering).

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.mapping.binding import bind
    >>> from mapper.mapping.mapping import greedy_mapping
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 4, "n": 4, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> prog = lower(greedy_mapping(layer, bind(layer, acg)[0], acg))
    >>> sum(isinstance(i, Compute) for i in prog.instructions)
    2
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from mapper.mapping.cost import relevant_dims
from mapper.mapping.mapping import Mapping, held_dtype, moved_dtype
from mapper.program.instructions import (
    Alloc,
    Compute,
    Free,
    Init,
    Instruction,
    Move,
    Program,
    Region,
    region_function,
    region_size,
)
from mapper.spec.dtypes import dtype_bytes

# A write-back is cut into pieces of at least this many bytes: longer than a DMA set-up's worth of
# data on the shipped ACGs (genesys: 100 cycles x 64 B/cycle = 6.4 KB), so the set-ups stay hidden.
MIN_CHUNK = 8192


def lower(m: Mapping) -> Program:
    """The instruction stream of mapping `m`, in issue order."""
    layer, levels = m.layer, m.levels
    nest = _Nest(m)
    buffers = _Buffers(m, _drain_periods(m, nest))
    paths, out_t = buffers.paths, buffers.out_t
    held_levels = [(t, j) for t, path in paths.items() for j in range(1, len(path))]
    if len(paths[out_t]) == 1:  # a fused group's output computed in place, in the storage that keeps it
        buffers.code.append(Init(out_t, paths[out_t][0], tuple((0, n) for n in layer.output.shape)))
    places = tuple((t, paths[t][-1]) for t in layer.tensors)
    steps = {(t, j): nest.indexing(t, j) for t, j in held_levels}
    held: dict[tuple[str, int], tuple[int, ...]] = {}  # (tensor, level) -> the indexing loops' values it was loaded at
    for index in itertools.product(*(range(f) for _, _, f in nest.loops)):
        wanted = {}
        for t, j in held_levels:
            at = tuple(index[k] for k in steps[(t, j)])
            if held.get((t, j)) != at or (t, j) not in buffers.resident:
                held[(t, j)] = at
                wanted[(t, j)] = nest.region_at(t, j, index)
        if wanted:
            buffers.stage(wanted)
        ranges = nest.ranges_at(index, levels)
        if all(hi > lo for lo, hi in ranges.values()):  # edge tiles may leave nothing to compute
            buffers.code.append(Compute(m.binding.capability, tuple((d, lo, hi) for d, (lo, hi) in ranges.items()),
                                        places))
    buffers.drain_all()
    for t, j in sorted(buffers.resident, key=lambda key: -key[1]):
        buffers.release(t, j)
    return Program(m.acg, layer, m.binding.capability, m.binding.tensors, m.binding.dims, tuple(buffers.code),
                   m.binding.immediates)


class _Nest:
    """The loop nest of a mapping flattened outermost first: the dim ranges and tensor regions of
    each level at a loop index (regions memoised on the index prefix that decides them)."""

    def __init__(self, m: Mapping) -> None:
        self.layer = m.layer
        self.loops = [(lv, d, f) for lv, loops in enumerate(m.loops) for d, f in loops]
        self.tiles = [m.tile(lv) for lv in range(m.levels + 1)]  # tile extents per level; levels = the instruction
        self.strides = [_stride(m, self.loops, i) for i in range(len(self.loops))]
        # The nest runs outermost level first, so the loops of levels above `level` are its first
        # depth[level] entries: a level's tile depends only on that prefix of the index.
        self.depth = [sum(lv < level for lv, _, _ in self.loops) for level in range(m.levels + 1)]
        self.region_of = {t: region_function(m.layer, t) for t in m.layer.tensors}
        self.memo: dict[tuple[str, int, tuple[int, ...]], Region] = {}

    def indexing(self, t: str, level: int) -> tuple[int, ...]:
        """The positions in the nest of the loops above `level` that index `t` (factor > 1): its tile
        there is loaded again whenever one of them steps (the cost model's `loads`), even when a
        strided window happens to land where it was (2*q+s: q steps while s wraps from 2 to 0)."""
        rel = relevant_dims(self.layer, t)
        return tuple(k for k in range(self.depth[level]) if self.loops[k][1] in rel and self.loops[k][2] > 1)

    def ranges_at(self, index: tuple[int, ...], level: int) -> dict[str, tuple[int, int]]:
        base = dict.fromkeys(self.layer.dims, 0)
        for k in range(self.depth[level]):
            base[self.loops[k][1]] += index[k] * self.strides[k]
        tile = self.tiles[level]
        return {d: (b, min(n, b + tile[d])) for (d, n), b in zip(self.layer.dims.items(), base.values(), strict=True)}

    def region_at(self, t: str, j: int, index: tuple[int, ...]) -> Region:
        key = (t, j, index[:self.depth[j]])
        region = self.memo.get(key)
        if region is None:
            region = self.region_of[t](self.ranges_at(index, j))
            if self.depth[j] < len(self.loops):  # the innermost level never repeats
                self.memo[key] = region
        return region


class _Buffers:
    """The tiles each storage level holds while the nest runs, and the instructions that change them."""

    def __init__(self, m: Mapping, periods: dict[int, int]) -> None:
        self.out_t = m.layer.expr.output.tensor
        self.paths = dict(m.placement)
        self.double = set(m.double_buffer)
        self.code: list[Instruction] = []
        self.resident: dict[tuple[str, int], Region] = {}  # (tensor, level) -> region held in paths[t][level]
        self.slots: dict[tuple[str, int], int] = {}
        self.written_back: set[tuple[int, Region]] = set()  # output regions that already hold partial results
        self.held = {j: held_dtype(m, self.out_t, j) for j in range(len(self.paths[self.out_t]))}
        self.itemsize = {j: dtype_bytes(moved_dtype(m, self.out_t, j)) for j in range(1, len(self.paths[self.out_t]))}
        self.acc_dtype = m.layer.tensors[self.out_t].dtype
        self.periods = periods  # output level -> level-changing stages while its tile stays (`_drain_periods`)
        self.draining: list[_Drain] = []  # write-backs in flight

    def acquire(self, t: str, j: int, region: Region) -> None:
        path = self.paths[t]
        slot = (self.slots.get((t, j), -1) + 1) % (2 if (t, path[j]) in self.double else 1)
        self.slots[(t, j)] = slot
        narrow = t == self.out_t and self.held[j] != self.acc_dtype  # holds requantised sums
        self.code.append(Alloc(t, path[j], region, slot, self.held[j] if narrow else ""))
        if t != self.out_t or (j - 1, region) in self.written_back:  # inputs, and partial sums coming back
            self.code.append(Move(t, path[j - 1], path[j], region))
        else:
            self.code.append(Init(t, path[j], region))
        self.resident[(t, j)] = region

    def release(self, t: str, j: int) -> None:
        region = self.resident.pop((t, j))
        if t == self.out_t:
            self.write_back(t, j, region)
        else:
            self.code.append(Free(t, self.paths[t][j], region))

    def write_back(self, t: str, j: int, region: Region) -> None:
        self.code.append(Move(t, self.paths[t][j], self.paths[t][j - 1], region))
        self.written_back.add((j - 1, region))
        self.code.append(Free(t, self.paths[t][j], region))

    def stage(self, wanted: dict[tuple[str, int], Region]) -> None:
        """Bring in the `wanted` tiles (tensor, level) -> region, releasing the ones they replace.

        Order within an iteration, so that transfers overlap computes as double buffering allows:
        1. double-buffered inputs load their next tile into the other slot first (their engines then
           run while the previous computes finish), shallowest first;
        2. the other changing tiles are written back / freed, deepest first;
        3. the rest load, shallowest first;
        4. double-buffered outputs are written back last. A level moves early (1) or late (4) only
           if every changing level above it of the same tensor does, so data still flows level by level.
        """
        resident, paths, double, out_t = self.resident, self.paths, self.double, self.out_t
        if any(t == out_t for t, _ in wanted):  # the output moves on: earlier tiles are written back first
            self.drain_all()
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
            self.acquire(t, j, wanted[(t, j)])
            self.code.append(Free(t, paths[t][j], old))
        for t, j in sorted(wanted, key=lambda key: -key[1]):
            if (t, j) in resident and (t, j) not in swaps:
                self.release(t, j)
        for t, j in sorted(wanted, key=lambda key: key[1]):
            if (t, j) in early:
                continue
            old = resident.pop((t, j), None) if (t, j) in swaps else None
            self.acquire(t, j, wanted[(t, j)])
            if old is not None:
                self.code.append(Free(t, paths[t][j], old))
        self.drain_step({j for _, j in wanted})
        for t, j in sorted(deferred, key=lambda key: -key[1]):
            self.drain(j, held[(t, j)])

    # A double-buffered output tile is written back in pieces spread evenly over the stages that
    # change tiles at its level while the next tile computes, so that its transfers alternate with
    # that tile's loads on shared ports (the simulator's ports serve transfers in issue order where
    # they overlap, as a single DMA queue would).

    def drain(self, j: int, region: Region) -> None:
        """Start writing back the output tile `region` of level `j`: its first piece now."""
        self.drain_all(deeper_than=j)  # deeper tiles land in this one before it goes
        nbytes = region_size(region) * self.itemsize[j]
        period = self.periods.get(j, 1)
        pieces = _pieces(region, min(period, nbytes // MIN_CHUNK))
        due = [i * period / len(pieces) for i in range(len(pieces))]  # stage at which each piece goes
        self.draining.append(_Drain(j, region, pieces, due))
        self.written_back.add((j - 1, region))
        self.drain_step({j})

    def drain_step(self, levels: set[int]) -> None:
        """Count a stage at `levels` and issue the pieces now due; free the tiles written back whole."""
        for d in self.draining:
            if d.level in levels:
                while d.pieces and d.due[0] <= d.stage:
                    self.code.append(Move(self.out_t, self.paths[self.out_t][d.level],
                                          self.paths[self.out_t][d.level - 1], d.pieces.pop(0)))
                    d.due.pop(0)
                d.stage += 1
        self.drain_all(only_done=True)

    def drain_all(self, only_done: bool = False, deeper_than: int = 0) -> None:
        """Finish the write-backs (with `only_done`, only free the tiles whose pieces are all issued;
        with `deeper_than`, only those of levels below it)."""
        left = []
        for d in self.draining:
            if (only_done and d.pieces) or d.level <= deeper_than:
                left.append(d)
                continue
            src, dst = self.paths[self.out_t][d.level], self.paths[self.out_t][d.level - 1]
            self.code += [Move(self.out_t, src, dst, piece) for piece in d.pieces]
            self.code.append(Free(self.out_t, src, d.region))
        self.draining = left


@dataclass
class _Drain:
    """A write-back in flight: the output tile of `level`, the pieces still to move and the stage
    (counted from its start) each is due at."""

    level: int
    region: Region
    pieces: list[Region]
    due: list[float]
    stage: int = 0


def _drain_periods(m: Mapping, nest: _Nest) -> dict[int, int]:
    """Per level of the output, how many times the tiles at that level change while its output tile
    stays: the product of the loops above the level that run inside the last loop moving the output."""
    out = m.layer.expr.output
    dims = set(out.dims)
    periods = {}
    for j in range(1, len(dict(m.placement)[out.tensor])):
        above = nest.loops[:nest.depth[j]]
        moving = [i for i, (_, d, f) in enumerate(above) if d in dims and f > 1]
        if moving:
            periods[j] = math.prod(f for _, _, f in above[moving[-1] + 1:])
    return periods


def _pieces(region: Region, count: int) -> list[Region]:
    """`region` cut into at most `count` pieces along its outermost unstrided axis longer than 1."""
    axis = next((a for a, ax in enumerate(region) if len(ax) == 2 and ax[1] - ax[0] > 1), None)
    if axis is None or count <= 1:
        return [region]
    lo, hi = region[axis]
    count = min(count, hi - lo)
    cuts = [lo + (hi - lo) * i // count for i in range(count + 1)]
    return [region[:axis] + ((a, b),) + region[axis + 1:] for a, b in zip(cuts, cuts[1:], strict=False)]


def _stride(m: Mapping, nest: list[tuple[int, str, int]], i: int) -> int:
    """How far one iteration of loop `i` of the nest advances its dim: the tile of the next level,
    times the factors of the same dim at the same level that run inside it."""
    level, dim, _ = nest[i]
    inner = 1
    for lv, d, f in nest[i + 1:]:
        if lv == level and d == dim:
            inner *= f
    return m.nominal(dim, level + 1) * inner
