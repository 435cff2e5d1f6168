"""Depth-first bands of fused groups: the halo'd windows of a convolution chain compute the network's
values exactly, band by band, recomputing or caching the rows bands share; and the compiler chooses
such a group where whole values do not fit, validated end to end on the simulator."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mapper.network import compile as compile_module
from mapper.network.bands import plan_bands
from mapper.network.compile import CompileOptions, compile_network
from mapper.network.flow import Options, map_layers
from mapper.network.fusion import FusionPlan, Group, group_variants, parallel_variants
from mapper.network.reference import calibrate, operands, seeded_tensors
from mapper.program.network import build_network
from mapper.program.windows import partition, slice_data, window_slice
from mapper.spec.acg import load_acg
from mapper.spec.loader import load_yaml_text
from mapper.spec.workload import make_layer, parse_workload
from sim.reference import evaluate

DATA = Path(__file__).parent / "data"

CHAIN = """
name: chain
layers:
  - {{name: a, op: conv2d, params: {{C: 2, K: 3, H: {h}, W: {h}, R: {r1}, stride: {s1}, pad: {p1}}}}}
  - {{name: b, op: {op2}, params: {params2}, inputs: [a]}}
"""


def _chain(h, r1, s1, p1, second, r2, s2, p2):
    rows = (h + 2 * p1 - r1) // s1 + 1
    cols = rows
    op2, params2 = {
        "conv": ("conv2d", f"{{C: 3, K: 2, H: {rows}, W: {cols}, R: {r2}, stride: {s2}, pad: {p2}}}"),
        "pool": ("max_pool2d", f"{{C: 3, H: {rows}, W: {cols}, R: {r2}, stride: {s2}, pad: {p2}}}"),
    }[second]
    text = CHAIN.format(h=h, r1=r1, s1=s1, p1=p1, op2=op2, params2=params2)
    return build_network(parse_workload(load_yaml_text(text, "chain.yaml")))


def _run_bands(net, plan, tensors):
    """Run the group's slices band by band with the reference evaluator on whole-value arrays; reading
    a part of a value no band has computed yet is an error."""
    values = {name: tensors[name] for name in net.inputs}
    computed = {}
    for band in plan.parts:
        for step, s in zip(net.steps, band, strict=True):
            if s is None:
                continue
            layer = step.layer
            whole = operands(net, step, values, tensors)
            for operand, name in step.reads:
                if name in computed:
                    assert slice_data(s, operand, computed[name].reshape(whole[operand].shape)).all()
            ins = {t: slice_data(s, t, x) for t, x in whole.items()}
            out = values.setdefault(step.writes, np.zeros(net.values[step.writes].shape, layer.output.dtype))
            mask = computed.setdefault(step.writes, np.zeros(out.shape, bool))
            part = slice_data(s, layer.expr.output.tensor, out.reshape(layer.output.shape))
            part[...] = evaluate(s.layer.expr, s.layer.dims, ins, np.dtype(layer.output.dtype)).reshape(part.shape)
            slice_data(s, layer.expr.output.tensor, mask.reshape(layer.output.shape))[...] = True
    return values


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 12), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.sampled_from(["conv", "pool"]),
       st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.integers(2, 5), st.booleans())
def test_bands_of_a_chain_compute_its_values_exactly(h, r1, s1, p1, second, r2, s2, p2, count, cache):
    assume(p1 < r1 and p2 < r2 and (h + 2 * p1 - r1) // s1 + 1 >= r2)
    net = _chain(h, r1, s1, p1, second, r2, s2, p2)
    tensors = seeded_tensors(net, 0)
    net, reference = calibrate(net, tensors)
    plan = plan_bands(net, 0, len(net.steps), axis=2, count=count, cache=cache)
    if plan is None:  # only when the last step is too short, or it skips rows of the first's output
        last, rows = net.steps[-1].layer.output.shape[2], net.steps[0].layer.output.shape[2]
        read = {s2 * p + r - p2 for p in range(last) for r in range(r2)}
        assert last < 2 or not read >= set(range(rows))
        return
    last = net.steps[-1].layer.output.shape[2]
    assert len(plan.parts) == plan.count == len(partition(last, min(count, last)))
    values = _run_bands(net, plan, tensors)
    for name, want in reference.items():
        assert np.array_equal(values[name], want), name
    if cache:  # a cached row is computed once: each step's slices cut its rows exactly
        for k, step in enumerate(net.steps):
            assert sum(band[k].hi - band[k].lo for band in plan.parts if band[k]) == step.layer.output.shape[2]


def test_a_row_slice_keeps_the_padding_and_reads_its_halo():
    conv = make_layer("c", "O[k,p] += I[c,2*p+r-1] * W[k,c,r]", {"k": 2, "p": 5, "c": 1, "r": 3},
                      {"I": "int8", "W": "int8", "O": "int32"}, {"I": (1, 10)})
    rng = np.random.default_rng(0)
    data = {"I": rng.integers(-9, 9, (1, 10)).astype(np.int8), "W": rng.integers(-9, 9, (2, 1, 3)).astype(np.int8)}
    whole = evaluate(conv.expr, conv.dims, data, np.int32)
    for lo, hi in [(0, 2), (2, 4), (4, 5)]:
        s = window_slice(conv, "p", lo, hi, "c[j]")
        w = s.window("I")
        assert (w.lo, w.hi) == (max(0, 2 * lo - 1), min(10, 2 * hi))  # rows 2p-1 .. 2p+1, clipped
        part = evaluate(s.layer.expr, s.layer.dims, {t: slice_data(s, t, x) for t, x in data.items()}, np.int32)
        assert np.array_equal(part, whole[:, lo:hi])
    assert window_slice(conv, "r", 0, 1, "x") is None  # the output does not index r


CONV_CHAIN = """
name: conv_chain
layers:
  - {name: c1, op: conv2d, params: {C: 4, K: 8, H: 16, W: 16, R: 3, pad: 1, activation: relu}}
  - {name: c2, op: conv2d, params: {C: 8, K: 8, H: 16, W: 16, R: 3, pad: 1, activation: relu}, inputs: [c1]}
  - {name: c3, op: conv2d, params: {C: 8, K: 4, H: 16, W: 16, R: 3, pad: 1}, inputs: [c2]}
"""


@pytest.mark.parametrize("cache", [True, False])
def test_a_depth_first_group_is_simulated_bit_exact(cache, monkeypatch):
    """c1 -> requant -> c2 run row band by row band, c1's rows kept on chip (cached or recomputed where
    bands overlap); the simulator runs every band's programs, checks each one's capacity and that no
    band reads rows of an on-chip value that no band has computed, and the output equals the reference."""
    acg = load_acg(DATA / "tiny_chain.yaml")
    wl = parse_workload(load_yaml_text(CONV_CHAIN, "conv_chain.yaml"))
    solved: dict = {}

    def cost(layer):
        record, _ = map_layers([layer], acg, Options(time_limit=5, validate=False), done=solved)[0]
        return record.predicted_cycles if record.mapped else None

    def forced(net, acg, costs, progress=None):
        variants = [g for g in group_variants(net, acg, 0, 3, {"c1": "OBUF", "c1.requant": "VMEM"}, cost)
                    if g.cache == cache and g.axis == 2]
        assert variants and variants[0].shared > 0 and variants[0].bands > 1
        rest = tuple(Group(i, i + 1, (), cost(net.steps[i].layer)) for i in range(3, len(net.steps)))
        return FusionPlan((variants[0], *rest), 0.0, 0.0)
    monkeypatch.setattr(compile_module, "plan_fusion", forced)
    result = compile_network(wl, acg, CompileOptions(time_limit=5))
    assert result.valid is True, result.error
    g = result.fusion.groups[0]
    assert result.splits[2] is not None and len(result.splits[2].slices) == g.bands  # c2 runs in every band
    rows = sum(s.hi - s.lo for s in result.splits[0].slices)  # c1's rows over the bands
    assert rows == 16 if cache else rows > 16


def test_a_group_split_over_cores_runs_its_bands_at_once_bit_exact(tmp_path, monkeypatch):
    """The same chain on two cores: each core runs one band of rows through c1, the requantisation and
    c2, keeping its band of c1 in its own OBUF (the halo recomputed); the simulator runs each step's
    two bands at once and checks that each core reads only rows it computed itself."""
    text = (DATA / "tiny_chain.yaml").read_text().replace("name: tiny_chain\n", "name: tiny_chain_duo\ncores: 2\n")
    text = text.replace("offchip: true,", "offchip: true, bytes_per_cycle: 4,")
    path = tmp_path / "tiny_chain_duo.yaml"
    path.write_text(text)
    acg = load_acg(path)
    small = CONV_CHAIN.replace("H: 16, W: 16", "H: 8, W: 8").replace("K: 8", "K: 4").replace("C: 8", "C: 4")
    wl = parse_workload(load_yaml_text(small, "conv_chain.yaml"))

    def forced(net, acg, costs, progress=None):
        assert costs.parallel is not None  # an ACG with cores: fusion considers groups over them
        variants = [g for g in parallel_variants(net, acg, 0, 3, {"c1": "OBUF", "c1.requant": "VMEM"}, costs.parallel)
                    if g.axis == 2]
        assert variants and variants[0].cores == 2 and variants[0].shared > 0
        rest = tuple(Group(i, i + 1, (), costs.step(net.steps[i].layer)) for i in range(3, len(net.steps)))
        return FusionPlan((variants[0], *rest), 0.0, 0.0)
    monkeypatch.setattr(compile_module, "plan_fusion", forced)
    result = compile_network(wl, acg, CompileOptions(time_limit=5))
    assert result.valid is True, result.error
    assert [s.cores for s in result.splits[:3]] == [2, 2, 2]
    assert result.records[2].cores == 2 and result.records[2].simulated_cycles > 0
