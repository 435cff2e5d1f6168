"""Bands of a fused group: the group run band by band along one axis of its values, each step over the
slice of its output that the band needs (depth-first fusion, as in DeFiNES).

The last step's output is cut into `count` bands. Walking the group backwards, each step computes the
rows of its output that the band's slices of its readers in the group read (`windows.window_slice`):
along a convolution's rows that is the band's rows plus the halo of the kernels after it. Rows two
bands share are computed in both (`cache=False`: recomputed) or kept on chip from the band that
computed them first (`cache=True`: the step computes only rows no earlier band did, and its home holds
the rows its readers still need, as a line buffer does). Along a dim every step indexes plainly (a
conv's output channels through a requantisation and a residual add) bands share nothing and the two
are the same.

    >>> from mapper.program.network import build_network
    >>> from mapper.spec.workload import load_workload
    >>> net = build_network(load_workload("resnet18"))
    >>> [s.layer.name for s in net.steps[3:6]]
    ['layer1.0.conv1', 'layer1.0.conv1.requant', 'layer1.0.conv2']
    >>> b = plan_bands(net, 3, 6, axis=2, count=4, cache=False)
    >>> [(s.lo, s.hi) for s in b.parts[1]]  # conv2's rows 14-27 read rows 13-28 of conv1's
    [(13, 29), (13, 29), (14, 28)]
    >>> b.shared, [(s.lo, s.hi) for s in plan_bands(net, 3, 6, axis=2, count=4, cache=True).parts[1]]
    (12, [(15, 29), (15, 29), (14, 28)])
"""

from __future__ import annotations

from dataclasses import dataclass

from mapper.program.network import Network, Step
from mapper.program.windows import Slice, partition, plain_axis, window_slice


@dataclass(frozen=True)
class Bands:
    axis: int  # of the group's values
    count: int  # bands
    cache: bool
    parts: tuple[tuple[Slice | None, ...], ...]  # per band, per step of the group, its slice (None: no new rows)
    held: tuple[tuple[tuple[str, int], ...], ...]  # per band, (value, bytes of it the band keeps)
    shared: int  # rows two bands share, over all steps: recomputed, or (cache) kept on chip


def plan_bands(net: Network, start: int, stop: int, axis: int, count: int, cache: bool) -> Bands | None:
    """The bands of steps [start, stop) along `axis` (None: some step's output is not indexed plainly
    along it, a value leaves the group before its last step, or a step would not compute all its rows)."""
    last = net.steps[stop - 1]
    dim = _band_dim(net, last, axis)
    if dim is None or count < 2 or last.layer.dims[dim] < 2:
        return None
    # At most one row per band; fewer bands when parts of ceil(extent / count) make fewer.
    bands = partition(last.layer.dims[dim], min(count, last.layer.dims[dim]))
    producer = {net.steps[i].writes: i for i in range(start, stop)}
    read = {name for i in range(start, stop) for _, name in net.steps[i].reads if producer.get(name, i) < i}
    done: dict[str, int] = {}  # value -> the end of the rows computed so far (cache)
    kept_from: dict[str, int] = {}  # value -> the first row its home still holds (cache)
    computed: dict[int, list[tuple[int, int]]] = {i: [] for i in range(start, stop)}
    parts, held, shared = [], [], 0
    for j, band in enumerate(bands):
        need: dict[str, tuple[int, int]] = {}
        slices: dict[int, Slice | None] = {}
        for i in reversed(range(start, stop)):
            step = net.steps[i]
            rows = band if i == stop - 1 else need.get(step.writes)
            step_dim = _band_dim(net, step, axis)
            if step_dim is None or (i < stop - 1 and step.writes not in read):
                return None  # (a value leaving the group before its last step)
            if rows is None:
                slices[i] = None  # its readers compute nothing in this band
                continue
            a, b = rows
            if cache and i != stop - 1:
                if a < kept_from.get(step.writes, 0):
                    return None  # a reader goes back to rows already dropped
                kept_from[step.writes], a = a, max(a, done.get(step.writes, 0))
                shared += min(a, b) - rows[0]
                if a >= b:
                    slices[i] = None  # its readers need only rows an earlier band computed
                    continue
            s = window_slice(step.layer, step_dim, a, b, f"{step.layer.name}[{j}]")
            if s is None:
                return None
            slices[i], done[step.writes] = s, b
            computed[i].append((a, b))
            for operand, name in step.reads:
                if name not in producer or producer[name] >= i:
                    continue
                if step.layer.tensors[operand].shape != net.values[name].shape:
                    return None
                w = s.window(operand)
                lo, hi = (w.lo, w.hi) if w is not None and w.axis == axis else (0, net.values[name].shape[axis])
                old = need.get(name, (lo, hi))
                need[name] = (min(lo, old[0]), max(hi, old[1]))
        parts.append(tuple(slices[i] for i in range(start, stop)))
        # On chip after the band: the rows its readers read (cache: every row from the first a reader
        # still needs to the last computed, kept for the next bands too).
        spans = {v: (kept_from.get(v, 0), done[v]) for v in done if v in kept_from} if cache else need
        held.append(tuple((v, _row_bytes(net, v, axis) * (hi - lo)) for v, (lo, hi) in sorted(spans.items())))
    extents = {i: net.steps[i].layer.dims[_band_dim(net, net.steps[i], axis)] for i in computed}
    if not all(_covers(computed[i], extents[i]) for i in computed):
        return None
    shared += sum(b - a for spans in computed.values() for a, b in spans) - sum(extents.values())
    return Bands(axis, len(bands), cache, tuple(parts), tuple(held), shared)


def _band_dim(net: Network, step: Step, axis: int) -> str | None:
    """The dim that indexes `axis` of the step's output plainly (its output laid out as its value)."""
    out = step.layer.expr.output
    if step.layer.output.shape != net.values[step.writes].shape or axis >= len(out.indices):
        return None
    dim = out.indices[axis].single_dim
    return dim if dim is not None and plain_axis(out, dim) == axis else None


def _row_bytes(net: Network, value: str, axis: int) -> int:
    return net.buffers[net.buffer_of(value)].bytes // net.values[value].shape[axis] if \
        net.buffer_of(value) == value else 0


def _covers(spans: list[tuple[int, int]], extent: int) -> bool:
    end = 0
    for a, b in sorted(spans):
        if a > end:
            return False
        end = max(end, b)
    return end >= extent
