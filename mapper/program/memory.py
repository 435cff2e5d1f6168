"""The memory model of a network program: live ranges, the activation peak, the off-chip address plan.

What "peak" means everywhere (docs/design/scheduling.md, "Memory model"): activations only (weights
live in their own region); a
buffer occupies its bytes from the start of its first producer's step to the end of its last
reader's step; network inputs are live from the start, network outputs until the end; a
concatenation is one buffer, live from its first part's producer to its last reader.

    >>> from mapper.spec.workload import load_workload
    >>> from mapper.program.network import build_network
    >>> net = build_network(load_workload("resnet18"))
    >>> plan = plan_memory(net)
    >>> peak_bytes(net), plan.arena_bytes >= peak_bytes(net)
    (4014080, True)
"""

from __future__ import annotations

from dataclasses import dataclass

from mapper.program.network import Network

ALIGN = 64  # bytes: every buffer starts on a burst boundary

MEMORY_MODEL = ("activations only; a buffer occupies its bytes from the start of its producer's step to the end "
                "of its last reader's step; network inputs live from the start, outputs until the end; a "
                "concatenation is one buffer, live from its first part's producer to its last reader; the steps "
                "are the network program's (requantisation included); peak = max over steps of the live bytes")


@dataclass(frozen=True)
class Placement:
    buffer: str
    offset: int
    bytes: int
    first: int  # the first step it is live in
    last: int  # the last step it is live in


@dataclass(frozen=True)
class AddressPlan:
    """Where every activation buffer sits in off-chip memory (offsets from the arena's base)."""

    placements: dict[str, Placement]
    arena_bytes: int  # the activation region's size
    weight_bytes: int  # the weights' region, after it

    def overlapping(self) -> list[tuple[str, str]]:
        """Pairs of buffers that are live at the same step and share bytes (a correct plan has none)."""
        items = sorted(self.placements.values(), key=lambda p: p.offset)
        out = []
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if b.offset >= a.offset + a.bytes:
                    break
                if a.first <= b.last and b.first <= a.last:
                    out.append((a.buffer, b.buffer))
        return out


def live_ranges(net: Network, interleaved: tuple[tuple[int, int], ...] = ()) -> dict[str, tuple[int, int]]:
    """Per buffer, the first and last step (inclusive) during which it occupies memory. `interleaved`:
    runs of steps [start, stop) that execute interleaved (a fused group run band by band): a buffer
    any of them touches lives across the whole run."""
    end = len(net.steps) - 1
    first: dict[str, int] = {}
    for i, step in enumerate(net.steps):
        buffer = net.buffer_of(step.writes)
        first.setdefault(buffer, i)
    for name in net.inputs:
        first[net.buffer_of(name)] = 0
    outputs = {net.buffer_of(name) for name in net.outputs}
    ranges = {}
    for buffer, steps in net.readers().items():
        last = end if buffer in outputs else max(steps, default=first[buffer])
        ranges[buffer] = (first[buffer], last)
    for start, stop in interleaved:
        for i in range(start, stop):
            step = net.steps[i]
            for name in (step.writes, *(n for _, n in step.reads)):
                buffer = net.buffer_of(name)
                lo, hi = ranges[buffer]
                ranges[buffer] = (min(lo, start), max(hi, stop - 1))
    return ranges


def live_bytes(net: Network) -> list[int]:
    """The bytes of activations live during each step."""
    out = [0] * len(net.steps)
    for buffer, (lo, hi) in live_ranges(net).items():
        size = net.buffers[buffer].bytes
        for i in range(lo, hi + 1):
            out[i] += size
    return out


def peak_bytes(net: Network) -> int:
    return max(live_bytes(net), default=0)


def plan_memory(net: Network, interleaved: tuple[tuple[int, int], ...] = ()) -> AddressPlan:
    """Offsets for every buffer so that no two buffers live at the same step share a byte: greedy by
    size (largest first, each at the lowest offset free over its live range), as TFLite's arena
    planner does. The arena is at least the peak, usually within a few percent of it. Values a fused
    group keeps on chip take no off-chip memory; `interleaved` as in `live_ranges`."""
    onchip = net.onchip_values()
    ranges = {b: r for b, r in live_ranges(net, interleaved).items() if b not in onchip}
    order = sorted(ranges, key=lambda b: (-net.buffers[b].bytes, ranges[b][0], b))
    placed: list[Placement] = []
    for buffer in order:
        size = _aligned(net.buffers[buffer].bytes)
        lo, hi = ranges[buffer]
        busy = sorted((p.offset, p.offset + _aligned(p.bytes)) for p in placed if p.first <= hi and lo <= p.last)
        offset = 0
        for start, stop in busy:
            if offset + size <= start:
                break
            offset = max(offset, stop)
        placed.append(Placement(buffer, offset, net.buffers[buffer].bytes, lo, hi))
    arena = max((_aligned(p.offset + p.bytes) for p in placed), default=0)
    weights = sum(_aligned(step.layer.tensors[w].bytes) for step in net.steps for w in step.layer.weights)
    return AddressPlan({p.buffer: p for p in placed}, arena, weights)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN
