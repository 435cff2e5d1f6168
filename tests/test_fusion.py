"""Layer fusion: values kept on chip by a group of steps, the DP over partitions, and the end-to-end
simulation of the fused program."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.mapping.mapping import check_legal
from mapper.mapping.mapping_yaml import mapping_to_yaml, parse_mapping_text
from mapper.network.bands import plan_bands
from mapper.network.compile import CompileOptions, compile_network
from mapper.network.flow import Options, map_layer, map_layers
from mapper.network.fusion import (
    best_partition,
    brute_force_partition,
    candidate_groups,
    fusable_values,
    group_cost,
    home_options,
    plan_fusion,
)
from mapper.program.lower import lower
from mapper.program.network import build_network
from mapper.spec.acg import load_acg
from mapper.spec.workload import OnChip, load_workload, make_layer
from sim.machine import SimError, simulate


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7).flatmap(lambda n: st.tuples(
    st.just(n), st.dictionaries(st.tuples(st.integers(0, n - 1), st.integers(1, 4)), st.integers(1, 50)))))
def test_dp_equals_brute_force(case):
    n, table = case
    singles = {(i, i + 1): 10 + i for i in range(n)}

    def cost(i, j, bound):
        return singles[(i, j)] if j - i == 1 else table.get((i, j - i))
    assert best_partition(n, cost)[0] == brute_force_partition(n, cost)[0]


@pytest.fixture(scope="module")
def tiny_net():
    acg, wl = load_acg("tiny"), load_workload("tiny_net")
    return acg, build_network(wl)


def _cost(acg, solved):
    def cost(layer):
        record, _ = map_layers([layer], acg, Options(time_limit=5, validate=False), done=solved)[0]
        return record.predicted_cycles if record.mapped else None
    return cost


def test_chosen_partition_equals_brute_force_on_a_network(tiny_net):
    acg, net = tiny_net
    solved: dict = {}
    cost = _cost(acg, solved)
    plan = plan_fusion(net, acg, cost)
    n = len(net.steps)
    options = {v: home_options(net, acg, v) for i in range(n) for v in fusable_values(net, i, min(n, i + 4))}

    groups: dict = {}  # a group's cost does not depend on the partition around it: each is computed once

    def group(i, j, bound):
        if (i, j) not in groups:
            g = cost(net.steps[i].layer) if j - i == 1 else group_cost(net, acg, i, j, cost, options)
            groups[i, j] = g if j - i == 1 or g is None else g.cost
        return groups[i, j]
    best, runs = brute_force_partition(len(net.steps), group)
    assert plan.cost == pytest.approx(best)
    assert plan.cost <= plan.unfused_cost
    assert any(g.homes for g in plan.groups)  # tiny_net keeps the pooling chain on chip


def test_fused_network_is_simulated_bit_exact():
    result = compile_network(load_workload("tiny_net"), load_acg("tiny"), CompileOptions(time_limit=5))
    assert result.valid is True and result.first_mismatch is None
    assert result.network.onchip_values()  # something stays on chip, and the data still matches
    acg, net = load_acg("tiny"), result.network
    banded = [g for g in result.fusion.groups if g.bands > 1]
    assert banded  # tiny's 512-byte OBUF holds these values only band by band
    for g in banded:
        room = {value: acg.storages[storage].total_capacity for value, storage in g.homes}
        assert any(net.buffers[value].bytes > room[value] for value in room)  # bands only when needed
        plan = plan_bands(net, g.start, g.stop, g.axis, g.bands, g.cache)
        assert all(held <= room[v] for band in plan.held for v, held in band if v in room)  # a band fits
        # Band-major execution interleaves the group's steps: what they touch must not share bytes with
        # anything until the group ends (a later step's output over an input of band 1 corrupted it).
        for i in range(g.start, g.stop):
            step = net.steps[i]
            for name in (step.writes, *(n for _, n in step.reads)):
                p = result.plan.placements.get(net.buffer_of(name))
                assert p is None or (p.first <= g.start and p.last >= g.stop - 1)
    assert not result.plan.overlapping()
    unfused = compile_network(load_workload("tiny_net"), load_acg("tiny"), CompileOptions(time_limit=5, fuse="none"))
    assert result.totals().dram_bytes < unfused.totals().dram_bytes
    assert unfused.fusion is None and not unfused.network.onchip_values()


def _requant(onchip: OnChip | None = None):
    layer = make_layer("rq", "Z[i] = clip(shr(X[i], 3), -128, 127)", {"i": 2048}, {"X": "int32", "Z": "int8"})
    return replace(layer, onchip=onchip or OnChip())


def test_a_value_kept_on_chip_is_read_in_place_and_leaves_dram_alone():
    acg = load_acg("genesys")
    off, _ = map_layer(_requant(), acg, Options(time_limit=5))
    on, m = map_layer(_requant(OnChip((("X", "VMEM1"),))), acg, Options(time_limit=5))
    assert off.valid and on.valid
    assert m.path("X") == ("VMEM1",)
    assert on.dram_bytes == 2048 < off.dram_bytes  # only Z goes off chip
    again = parse_mapping_text(mapping_to_yaml(m), "m.yaml", acg)  # the residency travels with the mapping
    assert again.layer.onchip == m.layer.onchip and again.placement == m.placement


def test_what_a_group_keeps_shrinks_the_room_for_tiles_and_is_checked_by_both_judges():
    acg = load_acg("genesys")
    vmem = acg.storages["VMEM1"].total_capacity
    _, m = map_layer(_requant(OnChip((("X", "VMEM1"),))), acg, Options(time_limit=5))
    full = replace(m, layer=replace(m.layer, onchip=OnChip((("X", "VMEM1"),), (("VMEM1", vmem - 100),))))
    assert any("fused group keeps" in p for p in check_legal(full, acg))
    with pytest.raises(SimError, match="fused group keeps"):
        simulate(lower(full), acg)
    # A group that leaves too little room: the solver finds no mapping and says which storage is short.
    crowded = OnChip((("X", "VMEM1"),), (("VMEM1", vmem - 2048 * 4), ("VMEM2", acg.storages["VMEM2"].capacity)))
    record, _ = map_layer(_requant(crowded), acg, Options(time_limit=5))
    assert not record.mapped and "VMEM" in record.error and "holds 0 B" in record.error


def test_compile_cli_reports_groups_and_writes_simulable_fused_steps(tmp_path):
    import json
    import subprocess
    import sys
    out = tmp_path / "prog"
    run = subprocess.run([sys.executable, "-m", "mapper.app.cli", "compile", "--acg", "tiny", "--workload", "tiny_net",
                          "--time-limit", "5", "--json", "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    groups = doc["fusion"]["groups"]
    assert groups and doc["total"]["onchip_values"] == sum(len(g["onchip"]) for g in groups)
    whole = next(g for g in groups if g["bands"] == 1)
    kept = next(iter(whole["onchip"]))
    mapping = out / "mappings" / f"{kept}.yaml"
    assert "onchip" in mapping.read_text()
    sim = subprocess.run([sys.executable, "-m", "mapper.app.cli", "simulate", str(mapping), "--json"],
                         capture_output=True, text=True)
    assert sim.returncode == 0 and json.loads(sim.stdout)["valid"] is True, sim.stdout + sim.stderr


def test_progress_is_heard_through_the_fusion_search():
    """A recording callback hears every phase in turn, and the fusion search once per candidate group
    (before it is solved: the group's steps named) and once when done."""
    calls: list[tuple[str, int, int]] = []
    result = compile_network(load_workload("tiny_net"), load_acg("tiny"), CompileOptions(time_limit=5, validate=False),
                             progress=lambda what, done, total: calls.append((what, done, total)))
    candidates = candidate_groups(len(result.network.steps))
    search = [(i, c) for i, c in enumerate(calls) if c[0].startswith("fusion search: ")]
    assert [c[1:] for _, c in search] == [(k, candidates) for k in range(candidates + 1)]
    assert search[0][1][0] == "fusion search: conv1 .. conv1.requant (2 steps)" and search[-1][1][0].endswith("done")
    first, last = search[0][0], search[-1][0]
    assert calls[0][0] == "scheduling" and any(c[0].startswith("mapping ") for c in calls[:first])
    assert any(c[0].startswith("final mapping ") for c in calls[last:])
    assert result.phases.fusion_solves >= 1 and result.phases.fusion_search > 0
