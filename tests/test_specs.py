"""The shipped specs load and answer the queries later stages rely on."""

from __future__ import annotations

import math
from fractions import Fraction

import networkx as nx
import pytest

from mapper.spec.acg import load_acg, peak_macs_per_cycle, read_paths, write_paths
from mapper.spec.loader import PROJECT_ROOT
from mapper.spec.workload import Concat, load_workload

ACGS = sorted(p.stem for p in (PROJECT_ROOT / "acg_specs").glob("*.yaml"))
WORKLOADS = sorted(p.stem for p in (PROJECT_ROOT / "workloads").glob("*.yaml"))


def test_shipped_sets_are_complete() -> None:
    assert {"genesys", "hvx_like", "tpu_like", "tiny"} <= set(ACGS)
    assert {"resnet50", "resnet18", "mobilenet_v2", "bert_base", "deepbench_gemm", "deepbench_gru",
            "covenant14"} <= set(WORKLOADS)


@pytest.mark.parametrize("name", ACGS)
def test_every_operand_has_paths_both_ways_as_needed(name: str) -> None:
    acg = load_acg(name)
    text = (PROJECT_ROOT / "acg_specs" / f"{name}.yaml").read_text()
    assert text.startswith("#"), "each shipped spec opens with a comment saying where its numbers come from"
    for cap in acg.capabilities:
        for tensor, places in cap.operands.items():
            for place in places:
                paths = write_paths(acg, place) if tensor == cap.expr.output.tensor else read_paths(acg, place)
                assert paths, (cap.name, tensor, place)
                for path in paths:  # every hop is an edge of the ACG
                    assert all(acg.edge(u, v) for u, v in zip(path, path[1:], strict=False))


def test_peaks_and_capacities() -> None:
    genesys, tpu, hvx, tiny = (load_acg(n) for n in ("genesys", "tpu_like", "hvx_like", "tiny"))
    assert peak_macs_per_cycle(genesys)["mvmul"] == 1024
    assert peak_macs_per_cycle(tpu) == {"mvmul": Fraction(1024)}
    assert peak_macs_per_cycle(hvx)["vrmpy"] == 128
    assert peak_macs_per_cycle(tiny)["mvmul"] == 16
    assert genesys.storages["WBUF"].total_capacity == 512 * 1024
    assert tpu.storages["W_RF"].total_capacity == 128 * 1024 and tpu.storages["W_RF"].instances == 1024
    assert tpu.storages["DRAM"].bytes_per_cycle == 8
    # tpu_like's SRAM is shared by inputs and outputs, as in ZigZag; weights bypass it
    mvmul = tpu.capability("mvmul")
    assert mvmul.operands["A"] == mvmul.operands["C"] == ("SRAM",)
    assert read_paths(tpu, "W_RF") == [("DRAM", "W_RF")]
    assert genesys.capability("vadd").operands["X"] == ("VMEM1", "VMEM2")
    assert mvmul.instruction_cycles({"m": 100}) == 100
    assert genesys.capability("mvmul").instruction_cycles({"m": 100}) == 164


@pytest.mark.parametrize("name", WORKLOADS)
def test_workloads_load_as_dags(name: str) -> None:
    wl = load_workload(name)
    assert nx.is_directed_acyclic_graph(wl.graph)
    assert set(wl.graph) == {layer.name for layer in wl.layers}
    for layer in wl.layers:
        assert layer.points == math.prod(layer.dims.values()) > 0
        assert layer.output.shape == tuple(layer.dims[d] for d in layer.expr.output.dims)
        for operand, source in layer.producers.items():  # a layer, or a concatenation of layers
            parts = source.parts if isinstance(source, Concat) else (source,)
            assert sum(wl.layer(p).output.elements for p in parts) == layer.tensors[operand].elements


def test_model_totals() -> None:
    """MAC totals of the published networks (torchvision shapes)."""
    assert load_workload("resnet50").macs == 4_087_136_256 + 2_048_000
    assert load_workload("resnet18").macs == 1_813_561_344 + 512_000
    assert load_workload("mobilenet_v2").macs == 299_494_272 + 1_280_000
    bert = load_workload("bert_base")
    assert bert.macs == 12 * 931_135_488
    r50 = load_workload("resnet50")
    convs = [lyr for lyr in r50.layers if lyr.op == "conv2d"]
    assert len(convs) == 53 and r50.layer("fc").dims == {"m": 1, "n": 1000, "k": 2048}
    assert len(load_workload("covenant14").layers) == 14


def test_deepbench_has_the_skinny_shapes() -> None:
    wl = load_workload("deepbench_gemm")
    shapes = {(lyr.dims["m"], lyr.dims["n"], lyr.dims["k"]) for lyr in wl.layers}
    assert {(1760, 16, 1760), (35, 8457, 4096)} <= shapes and len(shapes) >= 10
    gru = load_workload("deepbench_gru")
    cells = [lyr for lyr in gru.layers if lyr.op == "gru_cell" and lyr.name.endswith(".gx")]
    assert len(cells) >= 6
