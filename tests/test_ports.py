"""Shared ports and write-backs in pieces: a port gives a transfer its idle time from the transfer's
start on (exactly the earliest idle time, checked against a cycle-by-cycle walk), and a lowered
double-buffered output goes back in pieces that alternate with the next tile's loads, bit-exactly
and no slower than in one piece."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigzag_acgs import shipped_with_mac

import mapper.program.lower as lowering
from mapper.mapping.mapping import check_legal
from mapper.program.instructions import Move, region_size
from mapper.spec.workload import template_layer
from sim.machine import simulate
from sim.timing import Timeline, fill
from solver import cpsat

intervals = st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6)), max_size=6)


def timeline(spans: list[tuple[int, int]]) -> tuple[Timeline, set[int]]:
    """A timeline busy on `spans` (start, length), and the cycles it is busy (overlaps merged)."""
    busy = {t for s, n in spans for t in range(s, s + n)}
    tl = Timeline()
    for t in sorted(busy):  # unit cells, added in order: `add` merges them into intervals
        tl.add(float(t), float(t + 1))
    return tl, busy


@settings(max_examples=60, deadline=None)
@given(ports=st.lists(intervals, min_size=1, max_size=3), start=st.integers(0, 30), duration=st.integers(1, 25))
def test_fill_takes_the_earliest_idle_cycles_of_every_port(ports, start, duration) -> None:
    lines, busy = zip(*(timeline(p) for p in ports), strict=True)
    taken = {t for s, e in fill(list(lines), float(start), float(duration)) for t in range(int(s), int(e))}
    idle = (t for t in range(start, 10**4) if not any(t in b for b in busy))
    assert taken == {next(idle) for _ in range(duration)}


def test_a_timeline_merges_what_touches() -> None:
    tl, _ = timeline([(0, 2), (5, 1)])
    tl.add(2.0, 5.0)
    assert (tl.starts, tl.ends) == ([0.0], [6.0])


def test_a_double_buffered_output_goes_back_in_pieces_between_loads() -> None:
    """conv 32 -> 64 channels on edge_tpu_like, output channels in 2 tiles, each reduced over 4 input
    tiles: the first tile's write-back goes in pieces, one per input tile of the second."""
    acg = shipped_with_mac("edge_tpu_like", "mac")  # the streaming array
    layer = template_layer("conv2d", dict(C=32, K=64, H=16, W=16, R=3, pad=1))
    m = cpsat.solve(layer, acg).mapping
    m = replace(m, loops=((("k", 2), ("c", 4)), (("k", 4), ("r", 3), ("s", 3), ("p", 16)), ()),
                spatial=tuple((d, {"k": 8, "c": 8, "q": 16}.get(d, 1)) for d, _ in m.spatial))
    assert not check_legal(m, acg) and ("O", "sram_2MB") in m.double_buffer
    out = layer.expr.output.tensor
    program = lowering.lower(m)
    backs = [i for i in program.instructions if isinstance(i, Move) and i.tensor == out and i.dst == "dram"]
    assert len(backs) == 5 and sum(region_size(i.region) for i in backs) == region_size(
        tuple((0, n) for n in layer.output.shape))
    first = program.instructions.index(backs[0])
    loads = [i for i in program.instructions[first:program.instructions.index(backs[3])]
             if isinstance(i, Move) and i.src == "dram"]
    assert loads, "the pieces alternate with the next tile's loads"
    pieces = simulate(program, acg)
    whole_chunk, lowering.MIN_CHUNK = lowering.MIN_CHUNK, 10**12
    try:
        whole = simulate(lowering.lower(m), acg)
    finally:
        lowering.MIN_CHUNK = whole_chunk
    assert pieces.matches_reference and whole.matches_reference
    assert pieces.cycles < whole.cycles and pieces.moved == whole.moved
    assert pieces.energy_pj == pytest.approx(whole.energy_pj)


def test_nested_output_tiles_drain_innermost_first() -> None:
    """AlexNet's conv1 on ascend_like keeps its output in two on-chip levels, both double-buffered:
    the inner tile's pieces all land in the outer tile before the outer one goes back."""
    acg = shipped_with_mac("ascend_like", "mac")  # the streaming array
    layer = template_layer("conv2d", dict(C=3, K=96, H=224, W=224, R=11, stride=4))
    m = cpsat.solve(layer, acg).mapping  # ZigZag's AlexNet ONNX gets these loops:
    m = replace(m, loops=((("p", 6), ("q", 2)), (("c", 3), ("r", 11)), (("k", 6),), ()),
                spatial=(("k", 16), ("p", 9), ("q", 27), ("s", 11)))
    out = layer.expr.output.tensor
    path = dict(m.placement)[out]
    assert not check_legal(m, acg) and len(path) == 3 and {(out, s) for s in path[1:]} <= set(m.double_buffer)
    result = simulate(lowering.lower(m), acg)
    assert result.matches_reference
