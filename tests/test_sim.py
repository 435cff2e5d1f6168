"""The simulator: outputs equal the reference bit for bit, illegal programs are rejected with the
resource named, and its timing obeys the physical bounds."""

from __future__ import annotations

import math
from dataclasses import replace

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.mapping.binding import bind
from mapper.mapping.mapping import check_legal, greedy_mapping, storage_demand
from mapper.program.instructions import Alloc, Compute, Move
from mapper.program.lower import lower
from mapper.spec.acg import ACG, load_acg
from mapper.spec.formula import parse_arith
from mapper.spec.notation import parse_tensor_expr
from mapper.spec.ops import TemplateError
from mapper.spec.workload import Layer, make_layer, template_layer
from sim.machine import SimError, simulate
from sim.reference import access_view
from solver import cpsat

TINY, GENESYS = load_acg("tiny"), load_acg("genesys")


def layer_from(op: str, **params) -> Layer:
    return template_layer(op, params)


small_layers = st.one_of(
    st.builds(lambda c, k, h, r, s, p, dil, g: ("conv2d", dict(C=c * g, K=k * g, H=h, W=h + 1, R=r, stride=s, pad=p,
                                                              dilation=dil, groups=g)),
              st.integers(1, 5), st.integers(1, 6), st.integers(3, 9), st.sampled_from([1, 2, 3]),
              st.integers(1, 2), st.integers(0, 2), st.integers(1, 2), st.integers(1, 2)),
    st.builds(lambda c, h, s: ("depthwise_conv2d", dict(C=c, H=h, W=h, R=3, pad=1, stride=s)), st.integers(1, 9),
              st.integers(2, 8), st.integers(1, 2)),
    st.builds(lambda m, n, k: ("gemm", dict(M=m, N=n, K=k)), st.integers(1, 24), st.integers(1, 24),
              st.integers(1, 24)),
    st.builds(lambda c, h, p: ("max_pool2d", dict(C=c, H=h, W=h, R=3, stride=2, pad=p)), st.integers(1, 9),
              st.integers(3, 9), st.integers(0, 1)),
    st.builds(lambda c, h: ("avg_pool2d", dict(C=c, H=h, W=h, R=2)), st.integers(1, 9), st.integers(2, 8)),
    st.builds(lambda n, act: ("add", dict(shape=[2, n], dtype="int32", activation=act)), st.integers(1, 30),
              st.just("none")),
)


@settings(max_examples=30, deadline=None)
@given(spec=small_layers, acg=st.sampled_from([TINY, GENESYS]), grow=st.booleans(), seed=st.integers(0, 99),
       data=st.data())
def test_every_binding_simulates_bit_exactly(spec, acg, grow, seed, data) -> None:
    op, params = spec
    try:
        layer = layer_from(op, **params)
    except TemplateError:
        return
    bindings = bind(layer, acg)
    if not bindings:
        return
    for binding in data.draw(st.lists(st.sampled_from(bindings), min_size=1, max_size=3, unique=True)):
        m = greedy_mapping(layer, binding, acg, grow=grow)
        if m is None:
            continue
        result = simulate(lower(m), acg, seed=seed)
        assert result.output.dtype == result.reference.dtype
        assert np.array_equal(result.output, result.reference), binding.describe()


def gemm_program(acg: ACG = TINY, grow: bool = True):
    layer = layer_from("gemm", M=8, N=8, K=16)
    return lower(greedy_mapping(layer, bind(layer, acg)[0], acg, grow=grow))


def test_rejects_over_capacity() -> None:
    prog = gemm_program()
    big = tuple(replace(i, region=((0, 64), (0, 64))) if isinstance(i, Alloc) and i.storage == "IBUF" else i
                for i in prog.instructions)
    with pytest.raises(SimError, match=r"IBUF: needs \d+ B for tensor A .* holds 256 B"):
        simulate(replace(prog, instructions=big), TINY)


def tpu_gemm_mapping(k_inner: int):
    """tpu_like gemm 16x3x8192 (the case of issue 17): A's tile in the per-PE registers W_RF spans
    8 x k_inner x k of 8192 along k, dealt over 8 lanes (k) x 16 lanes (m)."""
    layer = layer_from("gemm", M=16, N=3, K=8192)
    acg = load_acg("tpu_like")
    b = next(b for b in bind(layer, acg) if b.operand_of["A"] == "B" and b.dim_map == {"m": "n", "n": "m", "k": "k"})
    m = greedy_mapping(layer, b, acg, grow=False)
    return acg, replace(m, loops=((("k", 1024 // k_inner),), (("k", k_inner),) if k_inner > 1 else ()),
                        spatial=(("m", 16), ("n", 3), ("k", 8)), placement=(("A", ("DRAM", "W_RF")),
                                                                            ("B", ("DRAM", "SRAM")),
                                                                            ("C", ("DRAM", "SRAM"))),
                        double_buffer=())


def test_rejects_a_tile_that_fits_the_pooled_instances_but_not_one() -> None:
    """256 B per PE in a 128 B register file (32 KiB of A over 1024 PEs would fit if pooled)."""
    acg, m = tpu_gemm_mapping(256)
    assert any("W_RF: needs 256 B per instance (of 1024)" in p for p in check_legal(m, acg))
    with pytest.raises(SimError, match=r"W_RF: needs 256 B per instance \(of 1024\) for tensor A .* "
                                       r"holds 128 B per instance"):
        simulate(lower(m), acg)
    acg, m = tpu_gemm_mapping(128)  # 128 B per PE: fits exactly
    assert check_legal(m, acg) == []
    result = simulate(lower(m), acg)
    assert result.matches_reference and result.buffer_peaks["W_RF"] == 128
    found = cpsat.solve(m.layer, acg)  # the mapper keeps to one instance too
    assert found.status == "optimal" and check_legal(found.mapping, acg) == []
    assert sum(n for _, n in storage_demand(found.mapping, acg).get("W_RF", [])) <= 128
    assert simulate(lower(found.mapping), acg).matches_reference


def test_rejects_double_buffering_where_the_storage_has_none() -> None:
    prog = gemm_program()
    single = replace(TINY, storages={**TINY.storages, "IBUF": replace(TINY.storages["IBUF"], double_buffer=False)})
    second = tuple(replace(i, slot=1) if isinstance(i, Alloc) and i.storage == "IBUF" else i for i in prog.instructions)
    with pytest.raises(SimError, match="IBUF: allocation of A in slot 1, but IBUF does not allow double buffering"):
        simulate(replace(prog, instructions=second), single)
    simulate(replace(prog, instructions=second), TINY)  # the same program where IBUF double-buffers


def test_rejects_a_move_without_an_edge() -> None:
    prog = gemm_program()
    bad = tuple(replace(i, src="WBUF") if isinstance(i, Move) and i.dst == "IBUF" else i for i in prog.instructions)
    with pytest.raises(SimError, match="no edge WBUF->IBUF"):
        simulate(replace(prog, instructions=bad), TINY)


def test_rejects_an_exceeded_extent() -> None:
    prog = gemm_program()

    def widen(ins):
        if isinstance(ins, Compute):
            return replace(ins, ranges=tuple((d, 0, 8) if d == "n" else (d, lo, hi) for d, lo, hi in ins.ranges))
        return ins

    with pytest.raises(SimError, match="mvmul: dim n holds 4, the instruction needs 8"):
        simulate(replace(prog, instructions=tuple(map(widen, prog.instructions))), TINY)


def test_rejects_a_read_before_a_write() -> None:
    prog = gemm_program()
    first_load = next(k for k, i in enumerate(prog.instructions) if isinstance(i, Move) and i.dst == "WBUF")
    bad = prog.instructions[:first_load] + prog.instructions[first_load + 1:]
    with pytest.raises(SimError, match="WBUF: tensor B region .* is read before it is written"):
        simulate(replace(prog, instructions=bad), TINY)


def test_rejects_leaks_and_unwritten_outputs() -> None:
    prog = gemm_program()
    no_writeback = tuple(i for i in prog.instructions if not (isinstance(i, Move) and i.dst == "DRAM"))
    with pytest.raises(SimError, match="never written back"):
        simulate(replace(prog, instructions=no_writeback), TINY)


def with_bandwidth(acg: ACG, scale: float) -> ACG:
    edges = tuple(replace(e, bytes_per_cycle=e.bytes_per_cycle * scale) for e in acg.edges)
    graph = nx.DiGraph(acg.graph)
    for e in edges:
        graph.edges[e.src, e.dst]["edge"] = e
    return replace(acg, edges=edges, graph=graph)


def touched_bytes(layer) -> int:
    """Bytes of every tensor element the layer reads or writes, counted once."""
    total = 0
    for t in layer.tensors.values():
        if t.role == "output":
            total += t.bytes
            continue
        idx = np.arange(t.elements).reshape(t.shape)
        seen = set()
        for a in layer.expr.accesses:
            if a.tensor == t.name:
                view = access_view(idx, a, layer.expr.dims, layer.dims, pad_value=-1)
                seen |= set(np.unique(view).tolist())
        seen.discard(-1)
        total += len(seen) * np.dtype(t.dtype).itemsize
    return total


@settings(max_examples=25, deadline=None)
@given(spec=small_layers, grow=st.booleans(), scale=st.sampled_from([2.0, 4.0, 16.0]))
def test_timing_bounds_and_monotone_bandwidth(spec, grow, scale) -> None:
    op, params = spec
    try:
        layer = layer_from(op, **params)
    except TemplateError:
        return
    for acg in (TINY, GENESYS):
        bindings = bind(layer, acg)
        if not bindings:
            continue
        m = greedy_mapping(layer, bindings[0], acg, grow=grow)
        if m is None:
            continue
        prog = lower(m)
        base = simulate(prog, acg)
        faster = simulate(prog, with_bandwidth(acg, scale))
        assert faster.cycles <= base.cycles + 1e-9  # more bandwidth never adds cycles
        cap = acg.capability(m.binding.capability)
        assert base.cycles >= layer.points / base.peak_ops_per_cycle - 1e-9  # compute roofline
        dram_bw = sum(e.bytes_per_cycle for e in acg.edges if "DRAM" in (e.src, e.dst))
        port = acg.storages["DRAM"].bytes_per_cycle
        dram_bw = min(dram_bw, port) if port else dram_bw
        assert base.cycles >= touched_bytes(layer) / dram_bw - 1e-9  # memory roofline
        assert 0 < base.utilization <= 1 + 1e-9 and f"compute:{cap.node}" in base.busy


def test_double_buffering_overlaps_loads_with_compute() -> None:
    layer = layer_from("gemm", M=64, N=4, K=64)
    m = greedy_mapping(layer, bind(layer, TINY)[0], TINY, grow=False)
    single = replace(m, double_buffer=())
    both = simulate(lower(m), TINY), simulate(lower(single), TINY)
    assert both[0].cycles < both[1].cycles
    assert math.isclose(both[0].energy_pj, both[1].energy_pj)  # same traffic, only overlap differs


def test_tpu_like_dram_port_is_shared() -> None:
    tpu = load_acg("tpu_like")
    layer = layer_from("gemm", M=64, N=64, K=64)
    result = simulate(lower(greedy_mapping(layer, bind(layer, tpu)[0], tpu)), tpu)
    assert result.busy["port:DRAM"] == pytest.approx(sum(v for k, v in result.busy.items() if k.startswith("edge:")
                                                         and "DRAM" in k))


def test_computes_run_the_capabilitys_expression_not_the_layers() -> None:
    """A capability that computes max where the layer sums, operands swapped in a subtraction, another
    immediate: each gives another result than the reference; an operand bound along the wrong dims
    is rejected before anything runs."""
    layer = make_layer("sumpool", "O[c,p] += I[c,2*p+r]", {"c": 4, "p": 3, "r": 2}, {"I": "int32", "O": "int32"},
                       {"I": (4, 6)})
    b = next(b for b in bind(layer, TINY) if b.capability == "vadd_acc")
    prog = lower(greedy_mapping(layer, b, TINY))
    assert simulate(prog, TINY).matches_reference
    cap = TINY.capability("vadd_acc")
    as_max = replace(cap, expr=parse_tensor_expr("Z[i] max= X[i]"))
    node = replace(TINY.computes[cap.node], capabilities=tuple(as_max if c is cap else c
                                                               for c in TINY.computes[cap.node].capabilities))
    assert not simulate(prog, replace(TINY, computes={**TINY.computes, cap.node: node})).matches_reference

    layer = make_layer("softmax_exp", "Z[i] = exp((A[i] - B[i]) * 0.125)", {"i": 64},
                       {"A": "int32", "B": "int32", "Z": "float32"})
    b = next(b for b in bind(layer, GENESYS) if b.capability == "vexp")
    assert b.immediates == (("s", 0.125),)
    prog = lower(greedy_mapping(layer, b, GENESYS))
    assert simulate(prog, GENESYS).matches_reference
    swapped = replace(prog, tensors=(("A", "Y"), ("B", "X"), ("Z", "Z")))
    assert not simulate(swapped, GENESYS).matches_reference
    assert not simulate(replace(prog, immediates=(("s", 0.25),)), GENESYS).matches_reference
    with pytest.raises(SimError, match="vexp: the program gives no value for the immediate 's'"):
        simulate(replace(prog, immediates=()), GENESYS)

    gemm = gemm_program()
    transposed = replace(gemm, dim_map=tuple((d, {"m": "n", "n": "m"}.get(e, e)) for d, e in gemm.dim_map))
    with pytest.raises(SimError, match=r"binding rule: operand A\[m,k\] of mvmul runs over layer dims"):
        simulate(transposed, TINY)


def with_setup(acg: ACG, latency: int) -> ACG:
    edges = tuple(replace(e, latency=latency) if e.src == "DRAM" or e.dst == "DRAM" else e for e in acg.edges)
    graph = nx.DiGraph(acg.graph)
    for e in edges:
        graph.edges[e.src, e.dst]["edge"] = e
    return replace(acg, edges=edges, graph=graph)


def test_every_transfer_pays_its_edges_setup() -> None:
    """Set-ups of one DMA channel run one at a time: n moves along a DRAM edge take >= n x latency;
    with no latency the program's timing is what it was."""
    prog = gemm_program(grow=False)
    base = simulate(prog, TINY).cycles
    assert simulate(prog, with_setup(TINY, 0)).cycles == base
    slow = simulate(prog, with_setup(TINY, 50))
    per_edge: dict[tuple[str, str], int] = {}
    for ins in prog.instructions:
        if isinstance(ins, Move) and "DRAM" in (ins.src, ins.dst):
            per_edge[ins.src, ins.dst] = per_edge.get((ins.src, ins.dst), 0) + 1
    assert slow.matches_reference and slow.cycles >= max(per_edge.values()) * 50 and slow.cycles > base
    assert slow.busy["setup:DRAM->IBUF"] == per_edge["DRAM", "IBUF"] * 50


def test_an_initiation_interval_overlaps_consecutive_instructions() -> None:
    """With `interval: m` beside `cycles: m + 8`, n back-to-back instructions take about n x m + 8,
    not n x (m + 8); the results are unchanged."""
    prog = gemm_program()
    cap = TINY.capability("mvmul")
    piped = replace(cap, interval=parse_arith("m"))
    node = replace(TINY.computes[cap.node], capabilities=tuple(piped if c is cap else c
                                                               for c in TINY.computes[cap.node].capabilities))
    fast = simulate(prog, replace(TINY, computes={**TINY.computes, cap.node: node}))
    slow = simulate(prog, TINY)
    assert fast.matches_reference and fast.cycles < slow.cycles
    assert fast.busy["compute:ARRAY"] < slow.busy["compute:ARRAY"]
