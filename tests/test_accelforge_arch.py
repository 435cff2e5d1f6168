"""AccelForge architecture import: AccelForge's five example architectures, as AccelForge evaluated
them for the three-matmul workload (the worker's `spec` documents, saved in
tests/data/accelforge/evaluated: AccelForge is not needed here), become the shipped ACGs; their figures
are AccelForge's converted by hand; each maps and simulates a GEMM validly; AccelForge's expressions
are parsed, never evaluated; what the import cannot express is refused by name."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path

import pytest

from mapper.importers.accelforge_arch import (
    UNBOUNDED_BYTES,
    UNLIMITED_BYTES_PER_CYCLE,
    accelforge_to_acg,
    bandwidth,
    import_accelforge_arch,
)
from mapper.importers.accelforge_path import AccelForgeError, latency_form
from mapper.network.flow import Options, map_layer
from mapper.spec.acg import load_acg, peak_macs_per_cycle
from mapper.spec.loader import PROJECT_ROOT, load_yaml_text
from mapper.spec.workload import make_layer

EVALUATED = Path(__file__).parent / "data" / "accelforge" / "evaluated"
ARCHES = ("tpu_v4i", "simba", "eyeriss", "nvdla", "simple")
GEMM = "C[m,n] += A[m,k] * B[k,n]"


def document(arch: str, workload: str = "three_matmuls") -> dict:
    return json.loads((EVALUATED / f"{arch}.{workload}.json").read_text(encoding="utf-8"))


def source(arch: str) -> str:
    return str((EVALUATED / f"{arch}.three_matmuls.json").relative_to(PROJECT_ROOT))


@pytest.mark.parametrize("arch", ARCHES)
def test_shipped_acg_is_the_import_and_loads(arch: str) -> None:
    text = import_accelforge_arch(document(arch), source(arch))
    shipped = PROJECT_ROOT / "acg_specs" / f"af_{arch}.yaml"
    assert shipped.read_text(encoding="utf-8") == text
    acg = load_acg(f"af_{arch}")
    assert acg.name == f"af_{arch}" and acg.offchip == ("MainMemory",)
    assert "1c1929c28dbfc61fb94af812e9e33b25a95933fa" in text and "accelforge 1.0.467" in text
    assert "Approximations" in text and text.startswith("# Imported from AccelForge's architecture")


# The peak MACs per cycle are AccelForge's MAC instances (the product of the fanouts), divided by
# simba's accumulation-buffer port (8 partial sums of 24 bits read and written per PE per cycle:
# 384 bits, its port moves 392.5e9 / 2.5e9 = 157 per cycle: 2.446 -> 2.45).
PEAKS = {"tpu_v4i": 4 * 128 * 128, "simba": Fraction(16 * 64 * 100, 245), "eyeriss": 14 * 12, "nvdla": 32 * 192,
         "simple": 1}


@pytest.mark.parametrize("arch", ARCHES)
def test_peak_is_accelforges_array(arch: str) -> None:
    assert peak_macs_per_cycle(load_acg(f"af_{arch}"))["mac"] == PEAKS[arch]


def test_tpu_v4i_figures() -> None:
    acg = load_acg("af_tpu_v4i")
    assert acg.clock_ghz == 1.05  # the MAC's 1.05e9 operations per second
    dram, gb, lb, reg = (acg.storages[n] for n in ("MainMemory", "GlobalBuffer", "LocalBuffer", "Register"))
    assert 614e9 / 1.05e9 == pytest.approx(584.7619047) and bandwidth(614e9 / 1.05e9) == 584  # 614 GB/s
    assert dram.bytes_per_cycle == 584 and dram.capacity == UNBOUNDED_BYTES  # one port; size inf
    assert dram.read_pj_per_byte == pytest.approx(56.24)  # 7.03e-12 J per bit
    assert gb.bytes_per_cycle is None and gb.capacity == 128 * 2**20  # separate ports: edge bandwidths
    assert (gb.read_pj_per_byte, gb.write_pj_per_byte) == (pytest.approx(15.04), pytest.approx(18.88))
    assert acg.edge("GlobalBuffer", "LocalBuffer").bytes_per_cycle == 1950  # 2048 GB/s of reads
    assert acg.edge("LocalBuffer", "GlobalBuffer").bytes_per_cycle == 975  # 1024 GB/s of writes
    # Z (may_reuse: Nothing) unrolls rows: the weight reaches the four arrays unicast, GlobalBuffer
    # reads it four times (AccelForge: 524,288 bits for a 131,072-bit W0): a quarter of the bandwidth,
    # three more reads per byte.
    edge = acg.edge("GlobalBuffer", "Register")
    assert edge.bytes_per_cycle == 487 and edge.pj_per_byte == pytest.approx(3 * 15.04)
    assert (lb.capacity, lb.instances) == (4 * 2**20, 1)  # rows are not dealt over copies
    assert (reg.capacity, reg.instances) == (1, 128 * 128)  # one weight per PE (x 4 replicas)
    mac = acg.capability("mac")
    assert mac.fixed == {"k": 128, "n": 128} and mac.instruction_cycles({"m": 32}) == 8
    assert mac.operands == {"A": ("LocalBuffer",), "B": ("Register",), "C": ("LocalBuffer",)}
    assert mac.dtypes == {"A": "int8", "B": "int8", "C": "int8"} and mac.pj_per_op == pytest.approx(0.084)
    assert acg.power == 0


def test_eyeriss_figures() -> None:
    acg = load_acg("af_eyeriss")
    assert acg.clock_ghz == 0.2  # its MAC's total_latency: sum(a.n_calls for a in actions) / 200e6
    gb = acg.storages["GlobalBuffer"]
    assert gb.bytes_per_cycle == 32 * 64 / 8  # 32 accesses of 64 bits per 200 MHz cycle
    assert gb.read_pj_per_byte == pytest.approx(9.056430299e-11 / 64 * 8e12)  # 64-bit actions
    mac = acg.capability("mac")  # rows (reuse_weight) and reduction (reuse_output) fixed: n streams
    assert mac.fixed == {"m": 14, "k": 12} and mac.instruction_cycles({"n": 10}) == 10
    # per PE: the input split over rows and reduction, the weight over the reduction (14 replicas),
    # the partial sums over rows (12 replicas: the spatial reduction's inputs)
    assert [acg.storages[s].instances for s in ("InputScratchpad", "WeightScratchpad", "OutputScratchpad")] \
        == [168, 12, 14]
    assert acg.storages["WeightScratchpad"].capacity == 192 * 16 // 8
    assert acg.power == pytest.approx(sum(n["total_leak_power"] for p in document("eyeriss")["einsums"][0]["paths"]
                                          for n in p["nodes"] if "total_leak_power" in n), rel=1e-9)


def test_simba_figures() -> None:
    acg = load_acg("af_simba")
    acc = acg.storages["AccumulationBuffer"]  # 24-bit partial sums of 8-bit outputs: 1024 of them
    assert acc.capacity == 24576 // 24 and acg.capability("mac").dtypes["C"] == "int32"
    assert acc.read_pj_per_byte == pytest.approx(7.074774078e-15 * 24 * 1e12)  # per 8-bit value: 24 bits
    # every PE's WeightBuffer gets the weights (rows across PEs): AccelForge charges 16 writes
    assert acg.storages["WeightBuffer"].write_pj_per_byte == pytest.approx(6.873086384e-14 * 8e12 * 16)
    assert acg.capability("mac").instruction_cycles({"m": 320}) == 49  # 16 rows per 2.45 cycles
    assert acg.edge("MainMemory", "WeightBuffer") is not None  # the weight bypasses GlobalBuffer
    assert acg.power == pytest.approx(1.508209708e-3)


def test_nvdla_and_simple_figures() -> None:
    nvdla = load_acg("af_nvdla")
    assert nvdla.storages["MainMemory"].bytes_per_cycle == 38.4  # 38.4 GB/s at 1 GHz
    assert nvdla.edge("GlobalBuffer", "Register").bytes_per_cycle == 512  # 512 GB/s of reads
    assert nvdla.edge("GlobalBuffer", "MainMemory").bytes_per_cycle == 38.4
    simple = load_acg("af_simple")  # no fanout, every throughput inf, 1 J per action, 1 MAC per second
    assert simple.clock_ghz == 1e-9 and simple.capability("mac").fixed == {"k": 1, "n": 1}
    assert {e.bytes_per_cycle for e in simple.edges} == {UNLIMITED_BYTES_PER_CYCLE}
    assert simple.storages["GlobalBuffer"].capacity == UNBOUNDED_BYTES
    assert simple.storages["MainMemory"].read_pj_per_byte == 8e12 and simple.capability("mac").pj_per_op == 1e12


def test_gpt3_differs_in_widths_only() -> None:
    """GPT-3's 16-bit values: int16 operands, simba's 48-bit partial sums (int64, and their port takes
    twice as long), two-byte registers; every other figure is the three matmuls' one."""
    eight, sixteen = accelforge_to_acg(document("simba")), accelforge_to_acg(document("simba", "gpt3_6.7B_prefill"))
    cap8, cap16 = (d["nodes"]["MAC"]["capabilities"][0] for d in (eight, sixteen))
    assert cap16["dtypes"] == {"A": "int16", "B": "int16", "C": "int64"}
    assert (cap8["cycles"], cap16["cycles"]) == ("cdiv(m * 49, 320)", "cdiv(m * 49, 160)")
    assert sixteen["nodes"]["Register"]["capacity"] == 2 * eight["nodes"]["Register"]["capacity"] == 2
    same = copy.deepcopy(sixteen)
    same["nodes"]["MAC"]["capabilities"][0].update(dtypes=cap8["dtypes"], cycles=cap8["cycles"])
    same["nodes"]["Register"]["capacity"] = 1
    assert same == eight


SIZES = {arch: {"m": 32, "n": 64, "k": 48} for arch in ARCHES} | {"simple": {"m": 8, "n": 8, "k": 8}}


@pytest.mark.parametrize("arch", ARCHES)
def test_gemm_maps_and_simulates(arch: str) -> None:
    """A GEMM with the Einsum's dtypes maps, and its simulated output equals the reference. (simple's
    1 J per action is 1e12 pJ: a larger layer overflows CP-SAT's 2**60 domains.)"""
    acg = load_acg(f"af_{arch}")
    layer = make_layer("g", GEMM, SIZES[arch], {"A": "int8", "B": "int8", "C": "int8"})
    record, _ = map_layer(layer, acg, Options(time_limit=5.0))
    assert record.capability == "mac" and record.valid is True, record.error
    assert record.predicted_cycles >= layer.points / float(PEAKS[arch])


def test_output_width_decides_what_binds() -> None:
    """A layer accumulating in int32 runs where AccelForge keeps wider partial sums (simba), not where
    every level holds 8-bit outputs (tpu_v4i)."""
    layer = make_layer("g", GEMM, {"m": 16, "n": 16, "k": 16}, {"A": "int8", "B": "int8", "C": "int32"})
    record, _ = map_layer(layer, load_acg("af_simba"), Options(time_limit=5.0))
    assert record.valid is True
    record, _ = map_layer(layer, load_acg("af_tpu_v4i"), Options(time_limit=5.0))
    assert record.status == "infeasible" and "output C is int32" in record.error


def test_latency_forms_are_parsed_not_evaluated() -> None:
    assert latency_form(None) == latency_form("sum(a.n_calls / a.throughput for a in actions)")
    form = latency_form("max(x.n_calls / x.throughput for x in actions) * 2")
    assert not form.shared and form.rate(8e9) == 4e9
    assert latency_form("sum(a.n_calls for a in actions) / 200e6").rate(615e6) == 200e6
    for text in ("__import__('os').system('false')", "sum(a.n_calls ** 2 for a in actions)",
                 "100 / sum(a.n_calls for a in actions)", "sum(a.n_calls for a in nodes)", "sum("):
        with pytest.raises(AccelForgeError, match="not a form the import understands"):
            latency_form(text)


def edited(arch: str, edit) -> dict:
    doc = document(arch)
    edit(doc["einsums"][0]["paths"][-1]["nodes"])
    return doc


@pytest.mark.parametrize("edit,message", [
    (lambda nodes: nodes[1].update(kind="Toll"), "GlobalBuffer: a !Toll node is not supported"),
    (lambda nodes: nodes[1]["actions"][0].update(values_per_action={"T0": 2}), "values_per_action"),
    (lambda nodes: nodes[1].update(size="1024 * x"), "unevaluated expression"),
    (lambda nodes: nodes[-1]["actions"][0].update(throughput="inf"), "cannot be the clock"),
])
def test_what_cannot_be_expressed_is_refused(edit, message) -> None:
    with pytest.raises(AccelForgeError, match=message):
        accelforge_to_acg(edited("nvdla", edit))
    with pytest.raises(AccelForgeError, match="no Einsum 'Nope'; Einsums: Matmul1, Matmul2, Matmul3"):
        accelforge_to_acg(document("nvdla"), "Nope")


def test_another_einsum_and_a_round_trip() -> None:
    """Matmul3 of the same workload gives the same architecture; the text parses to the document."""
    doc = document("tpu_v4i")
    assert accelforge_to_acg(doc, "Matmul3") == accelforge_to_acg(doc)
    text = import_accelforge_arch(doc, source("tpu_v4i"), "Matmul3")
    parsed = load_yaml_text(text, "af.yaml").value
    assert parsed == json.loads(json.dumps(accelforge_to_acg(doc)))
