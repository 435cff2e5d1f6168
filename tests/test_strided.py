"""Strided transfers: a tile whose accessed positions along an axis step by more than one (a strided
1 x 1 convolution, or a kernel tiled to 1) moves and holds only the positions of that progression.
The cost model's count (`mapping.footprint`), the CP-SAT model's and the simulator's (the regions the
lowering writes, measured as they move) agree, and strided layers simulate bit-exactly."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_solver import tiny_variant

from mapper.mapping.binding import bind
from mapper.mapping.cost import evaluate, roofline_cycles
from mapper.mapping.mapping import footprint, greedy_mapping
from mapper.program.instructions import region_size, tensor_region
from mapper.program.lower import lower
from mapper.spec.acg import load_acg
from mapper.spec.notation import parse_tensor_expr
from mapper.spec.workload import template_layer
from sim.machine import simulate
from solver import cpsat, exhaustive
from solver.space import layer_spaces

TINY = load_acg("tiny")


def progression(coeffs: dict[str, int], tile: dict[str, int]) -> set[int]:
    """The positions from the first to the last read, at the gcd of the moving dims' coefficients."""
    read = {sum(c * v for (d, c), v in zip(coeffs.items(), vals, strict=True))
            for vals in itertools.product(*(range(tile[d]) for d in coeffs))}
    step = math.gcd(*(c for d, c in coeffs.items() if tile[d] > 1)) or 1
    return set(range(min(read), max(read) + 1, step))


@settings(max_examples=60, deadline=None)
@given(s=st.integers(1, 4), ta=st.integers(1, 6), tb=st.integers(1, 5))
def test_footprint_counts_the_positions_moved(s, ta, tb) -> None:
    """`s*p+r` over tiles (ta, tb): the progression of the positions read; exactly the positions read
    (ta x tb without overlap) whenever the kernel tile is 1 or at least the stride."""
    access = parse_tensor_expr(f"O[p] += I[{s}*p+r] * W[r]").accesses[0]
    (count,) = footprint(access, {"p": ta, "r": tb}, (1000,))
    read = {s * a + b for a in range(ta) for b in range(tb)}
    assert count == len(progression({"p": s, "r": 1}, {"p": ta, "r": tb})) >= len(read)
    if tb == 1 or tb >= s:
        assert count == len(read) == min(ta * tb, s * (ta - 1) + tb)
    # The lowering's region holds the same positions.
    layer = template_layer("conv2d", dict(C=1, K=1, H=s * (ta - 1) + tb, W=1, R=tb, S=1, stride=[s, 1]), "c")
    region = tensor_region(layer, "I", {"n": (0, 1), "k": (0, 1), "c": (0, 1), "p": (0, ta), "q": (0, 1),
                                        "r": (0, tb), "s": (0, 1)})
    assert region_size(region) == count


def test_a_strided_one_by_one_conv_moves_a_quarter_of_the_span() -> None:
    layer = template_layer("conv2d", dict(C=8, K=8, H=16, W=16, R=1, stride=2), "down")
    region = tensor_region(layer, "I", {d: (0, n) for d, n in layer.dims.items()})
    assert region == ((0, 1), (0, 8), (0, 15, 2), (0, 15, 2))  # 8 x 8 pixels gathered, not 15 x 15


def moved_per_edge(cost) -> Counter:
    out: Counter = Counter()
    for s in cost.streams:
        out[f"{s.src}->{s.dst}"] += s.bytes
    return +out


strided_convs = st.builds(lambda c, k, h, r, s: dict(C=c, K=k, H=h, W=h, R=r, stride=s),
                          st.integers(1, 6), st.integers(1, 6), st.integers(4, 11), st.sampled_from([1, 2, 3]),
                          st.integers(2, 3))


@settings(max_examples=15, deadline=None)
@given(params=strided_convs, grow=st.booleans(), which=st.integers(0, 7))
def test_charged_bytes_equal_the_simulated_ones(params, grow, which) -> None:
    """Property: for strided convolutions without padding, every edge carries in the simulation
    exactly the bytes the cost model charges (the simulator measures the moves of the regions the
    lowering wrote, gathered along strided axes), and the output equals the reference."""
    layer = template_layer("conv2d", params, "c")
    bindings = bind(layer, TINY)
    m = greedy_mapping(layer, bindings[which % len(bindings)], TINY, grow=grow)
    if m is None:
        return
    result = simulate(lower(m), TINY, seed=which)
    assert result.matches_reference
    assert result.moved == moved_per_edge(evaluate(m, TINY))


@pytest.mark.parametrize("params", [dict(C=1, K=2, H=8, W=4, R=1, stride=2),
                                    dict(C=1, K=2, H=5, W=5, R=3, stride=2, pad=1),
                                    dict(C=1, K=2, H=9, W=3, R=2, S=1, stride=[3, 1])])  # kernel < stride: gaps
@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_cpsat_equals_exhaustive_on_strided_layers(params, objective) -> None:
    acg = tiny_variant(64, 32, 128, 128, 2, True, 2)
    layer = template_layer("conv2d", params, "c")
    assert sum(s.size() for s in layer_spaces(layer, acg)) <= 20_000
    truth, found = exhaustive.solve(layer, acg, objective), cpsat.solve(layer, acg, objective)
    assert found.status == truth.status == "optimal"
    assert found.objective == truth.objective == found.model_objective
    assert evaluate(found.mapping, acg).objective(objective) == found.objective
    result = simulate(lower(found.mapping), acg, seed=5)
    assert result.matches_reference
    if params.get("pad", 0) == 0:
        assert result.moved == moved_per_edge(evaluate(found.mapping, acg))


@pytest.mark.parametrize("acg_name", ["tpu_like", "edge_tpu_like"])
def test_resnet_downsample_gathers_and_simulates_bit_exactly(acg_name) -> None:
    """ResNet-18's layer2.0.downsample (1 x 1, stride 2): the input moves 64 x 28 x 28 pixels per
    pass, not 64 x 55 x 55; the mapping simulates bit-exactly and its bytes are the charged ones."""
    acg = load_acg(acg_name)
    layer = template_layer("conv2d", dict(C=64, K=128, H=56, W=56, R=1, stride=2), "layer2.0.downsample")
    found = cpsat.solve(layer, acg, time_limit=5)  # any mapping it finds must gather and simulate
    cost = evaluate(found.mapping, acg)
    loads = [s for s in cost.streams if s.tensor == "I" and s.offchip]
    assert loads and all(s.tile_bytes <= 64 * 28 * 28 <= s.bytes for s in loads)
    result = simulate(lower(found.mapping), acg, seed=0)
    assert result.matches_reference
    assert result.moved == moved_per_edge(cost)
    # The roofline counts the pixels read (int8 input, int8 weights, int32 output; an 8 B/cycle DRAM port).
    roofline = roofline_cycles(layer, acg, acg.capability(found.mapping.binding.capability))
    assert roofline == (64 * 28 * 28 + 128 * 64 + 128 * 28 * 28 * 4) / 8 <= result.cycles
