"""Staging (ACG `staging`): the route's transfers timed by the simulator as an independent closed form
says, networks with staging still equal the reference end to end, bad fields named at their line, and
the quick DSCS-Serverless experiment's report."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mapper.app.cli import main
from mapper.app.experiment import load_experiment
from mapper.network.compile import CompileOptions, compile_network
from mapper.network.staging_cost import predict_phase
from mapper.program.staging import Transfer
from mapper.spec.acg import load_acg
from mapper.spec.loader import SpecError
from mapper.spec.workload import load_workload
from sim.machine import SimError
from sim.staging import run_phase

# FAR -> MID -> DRAM: 1 B/cycle with 10 cycles of set-up, then 2 B/cycle with 5; back in one hop.
ACG = textwrap.dedent("""\
    name: staged
    clock_ghz: 2.0
    power: 0.5
    staging: {from: FAR, to: DRAM}
    nodes:
      FAR:  {kind: storage, capacity: 1MiB, read_pj_per_byte: 3}
      MID:  {kind: storage, capacity: 1MiB, read_pj_per_byte: 1, write_pj_per_byte: 1}
      DRAM: {kind: storage, capacity: 1MiB, offchip: true, write_pj_per_byte: 2}
      IBUF: {kind: storage, capacity: 256B}
      WBUF: {kind: storage, capacity: 256B}
      OBUF: {kind: storage, capacity: 512B}
      ARRAY:
        kind: compute
        capabilities:
          - name: mvmul
            expr: "C[m,n] += A[m,k] * B[k,n]"
            dims: {k: 4, n: 4}
            operands: {A: IBUF, B: WBUF, C: OBUF}
            dtypes: {A: int8, B: int8, C: int32}
            cycles: "m + 8"
    edges:
      - {from: FAR, to: MID, bytes_per_cycle: 1, latency: 10, pj_per_byte: 4}
      - {from: MID, to: DRAM, bytes_per_cycle: 2, latency: 5}
      - {from: DRAM, to: FAR, bytes_per_cycle: 8, latency: 7}
      - {from: DRAM, to: IBUF, bytes_per_cycle: 4}
      - {from: DRAM, to: WBUF, bytes_per_cycle: 4}
      - {from: OBUF, to: DRAM, bytes_per_cycle: 4}
    """)


def staged_acg(tmp_path: Path, text: str = ACG):
    path = tmp_path / "staged.yaml"
    path.write_text(text)
    return load_acg(path)


def test_staging_nodes_leave_the_layers_memory(tmp_path: Path) -> None:
    acg = staged_acg(tmp_path)
    assert set(acg.staging.storages) == {"FAR", "MID"} and "FAR" not in acg.storages and "MID" not in acg.graph
    assert [(e.src, e.dst) for e in acg.staging.inbound] == [("FAR", "MID"), ("MID", "DRAM")]
    assert [(e.src, e.dst) for e in acg.staging.outbound] == [("DRAM", "FAR")]
    assert {(e.src, e.dst) for e in acg.edges} == {("DRAM", "IBUF"), ("DRAM", "WBUF"), ("OBUF", "DRAM")}


@pytest.mark.parametrize("n, size", [(1, 100), (2, 100), (3, 100), (4, 7)])
def test_staged_cycles_and_energy_match_a_closed_form(tmp_path: Path, n: int, size: int) -> None:
    """n tensors of `size` bytes over FAR -(1 B/c, set-up 10)-> MID -(2 B/c, set-up 5)-> DRAM.

    With size >= 10 the first hop's data phase is the bottleneck and hides the later set-ups (two
    transfers in flight per channel): the last tensor leaves FAR at 10 + n*size and lands 5 + size/2
    later. With 7 bytes the set-ups are: one every 10 cycles on the first hop. The cost model's
    prediction charges every set-up back to back: n*(10 + size) + 5 + size/2."""
    acg = staged_acg(tmp_path)
    data = {f"t{i}": np.full(size, i, np.int8) for i in range(n)}
    transfers = tuple(Transfer(name, size, acg.staging.inbound) for name in data)
    run = run_phase(transfers, acg, data)
    first_hop = 10 + n * size if size >= 10 else 10 * n + size
    assert run.cycles == first_hop + 5 + size / 2
    assert predict_phase(transfers, acg).cycles == n * (10 + size) + 5 + size / 2
    # per byte: FAR read 3 + edge 4 + MID write 1, then MID read 1 + DRAM write 2; static 0.5 W
    static = 1000 * 0.5 * run.cycles / 2.0
    assert run.energy_pj == pytest.approx(n * size * (3 + 4 + 1 + 1 + 2) + static)
    assert sorted(run.arrived) == sorted(data) and all(np.array_equal(run.arrived[k], data[k]) for k in data)


def test_staging_checks_capacity_and_presence(tmp_path: Path) -> None:
    acg = staged_acg(tmp_path, ACG.replace("MID:  {kind: storage, capacity: 1MiB",
                                           "MID:  {kind: storage, capacity: 64B"))
    big = {"w": np.zeros(100, np.int8)}
    with pytest.raises(SimError, match="MID holds 64 B, needs 100 B"):
        run_phase((Transfer("w", 100, acg.staging.inbound),), acg, big)
    with pytest.raises(SimError, match="'x' is not in FAR"):
        run_phase((Transfer("x", 100, acg.staging.inbound),), acg, big)


def test_network_with_staging_equals_the_reference_end_to_end() -> None:
    """tiny_net on the shipped drive: the layers read what staging brought into DRAM, the output comes
    back to flash, and both equal the reference; the end-to-end figures add up."""
    acg = load_acg("dscs_drive")
    wl = load_workload("tiny_net")
    result = compile_network(wl, acg, CompileOptions(strategy="random", fuse="none",
                                                     strategy_options=(("samples", 10),)))
    assert result.valid and result.first_mismatch is None
    st = result.staging
    assert st.returned_valid and st.simulated_in is not None
    weights = sum(s.layer.tensors[w].bytes for s in result.network.steps for w in s.layer.weights)
    inputs = sum(result.network.buffers[result.network.values[v].buffer].bytes for v in result.network.inputs)
    assert st.plan.inbound_bytes == weights + inputs
    t = result.totals()
    s = t.staging
    assert s.end_to_end_cycles == pytest.approx(s.in_cycles + t.simulated_cycles + s.out_cycles)
    assert s.end_to_end_ms == pytest.approx(s.end_to_end_cycles / 1e6)
    # prefetching: no earlier than the last weight's landing or the compute, no later than serving serially
    lower = max(s.in_cycles, t.simulated_cycles) + s.out_cycles
    assert lower <= s.end_to_end_prefetch_cycles <= s.end_to_end_cycles
    # 80 us per flash read, at most two in flight: the set-ups bound the phase from below
    assert s.in_cycles >= 80_000 * len(st.plan.inbound) / 2


BAD = [
    ("staging: {from: NOPE, to: DRAM}", "staging.from", "unknown storage node 'NOPE'"),
    ("staging: {from: FAR, to: MID}", "staging.to", "'MID' is not an off-chip storage"),
    ("staging: {from: FAR, to: DRAM, via: MID}", "staging.via", "unknown field"),
    ("staging: {from: DRAM}", "staging.from", "staging must start farther out"),
]


@pytest.mark.parametrize("field, where, message", BAD)
def test_bad_staging_is_named_at_its_line(tmp_path: Path, field: str, where: str, message: str) -> None:
    path = tmp_path / "staged.yaml"
    path.write_text(ACG.replace("staging: {from: FAR, to: DRAM}", field))
    with pytest.raises(SpecError) as info:
        load_acg(path)
    assert str(info.value).startswith(f"{path}:4: {where}: "), str(info.value)
    assert message in str(info.value)


def test_staging_node_cannot_be_an_operand(tmp_path: Path) -> None:
    path = tmp_path / "staged.yaml"
    path.write_text(ACG.replace("operands: {A: IBUF,", "operands: {A: MID,"))
    with pytest.raises(SpecError, match=r"operands.A: 'MID' is not a node of the layers' memory"):
        load_acg(path)


def test_quick_experiment_reports_both_designs(tmp_path: Path) -> None:
    assert main(["run", "dscs_serverless_quick", "--out", str(tmp_path), "--jobs", "1"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "| dscs_drive | tiny_net | yes |" in report and "| disaggregated_gpu | tiny_net | yes |" in report
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["acg"] for r in rows] == ["dscs_drive", "disaggregated_gpu"]
    for r in rows:
        parts = float(r["staging_ms"]) + float(r["compute_ms"]) + float(r["return_ms"])
        assert float(r["end_to_end_ms"]) == pytest.approx(parts)
        assert float(r["inferences_per_joule"]) == pytest.approx(1e12 / float(r["end_to_end_energy_pj"]))
    assert (tmp_path / "latency_breakdown.png").stat().st_size > 0 and (tmp_path / "energy.png").exists()


def test_network_experiments_take_whole_workloads(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("name: n\nlevel: networks\nacgs: [dscs_drive]\nworkloads: [{spec: tiny_net, layers: [conv1]}]\n")
    with pytest.raises(SpecError, match=r"exp.yaml:4: workloads\[0\]: expected a workload name or path \(a whole"):
        load_experiment(path)


def test_overrides_reach_edges_by_their_ends(tmp_path: Path) -> None:
    """The shipped experiment's 10 GbE variant: an override path names an edge FROM->TO."""
    exp = load_experiment("dscs_serverless")
    rates = {v.label: v.acg.staging.inbound[0].bytes_per_cycle for v in exp.variants}
    assert rates == {"dscs_drive": 3.2, "disaggregated_gpu": 2.023, "disaggregated_gpu_10gbe": 0.809}
    path = tmp_path / "exp.yaml"
    path.write_text("name: n\nlevel: networks\nacgs:\n  - spec: dscs_drive\n    overrides:\n"
                    "      edges.FLASH->NOPE.latency: 1\nworkloads: [tiny_net]\n")
    with pytest.raises(SpecError, match=r"exp.yaml:6: .*no item named 'FLASH->NOPE' in 'edges'"):
        load_experiment(path)
