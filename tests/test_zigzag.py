"""ZigZag hardware import: ZigZag's example accelerators (copies in tests/data/zigzag, MIT licence)
become ACGs that load, map and simulate a small conv and GEMM validly; the shipped imports equal a
fresh import; a bad ZigZag file is one line naming file, line and field (exit status 2)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from zigzag_acgs import with_mac

from mapper.app.cli import main
from mapper.importers.zigzag import import_zigzag
from mapper.mapping.cost import evaluate
from mapper.network.flow import Options, map_layer
from mapper.program.lower import lower
from mapper.spec.acg import load_acg
from mapper.spec.loader import PROJECT_ROOT, SpecError, load_yaml_text
from mapper.spec.workload import parse_workload, template_layer
from sim.machine import simulate
from solver import cpsat

DATA = Path(__file__).parent / "data" / "zigzag"
# (ZigZag hardware file, its mapping file, the shipped ACG made from them)
PAIRS = [("tpu_like", "tpu_like", None), ("eyeriss_like", "default", "eyeriss_like"),
         ("edge_tpu_like", "edge_tpu_like", "edge_tpu_like"), ("tesla_npu_like", "tesla_npu_like", "tesla_npu_like"),
         ("ascend_like", "ascend_like", "ascend_like"), ("meta_prototype", "meta_prototype_like", "meta_prototype")]
SMALL = """
name: small
layers:
  - {name: conv, op: conv2d, params: {N: 1, C: 16, K: 24, H: 10, W: 10, R: 3, S: 3, pad: 1}}
  - {name: fc, op: gemm, params: {M: 4, N: 40, K: 48}}
"""


def paths(hw: str, mapping: str) -> tuple[Path, Path]:
    return DATA / "hardware" / f"{hw}.yaml", DATA / "mapping" / f"{mapping}.yaml"


def same_acg(a, b) -> bool:
    return (a.storages, a.edges, a.capabilities, a.clock_ghz) == (b.storages, b.edges, b.capabilities, b.clock_ghz)


@pytest.mark.parametrize("hw,mapping,shipped", PAIRS)
def test_import_loads_maps_and_simulates(hw, mapping, shipped, tmp_path: Path) -> None:
    text, acg = import_zigzag(*paths(hw, mapping))
    out = tmp_path / "acg.yaml"
    assert main(["import", "zigzag", str(paths(hw, mapping)[0]), "--mapping", str(paths(hw, mapping)[1]),
                 "-o", str(out)]) == 0
    assert out.read_text() == text and same_acg(load_acg(out), acg)  # round trip through the loader
    if shipped:  # the shipped target is this import (its header and name hand-edited)
        assert same_acg(load_acg(shipped), acg)
    macs = [c.name for c in acg.capabilities if c.name.startswith("mac")]
    assert macs == ["mac", "mac_os"]  # every example has per-PE output registers
    for cap in macs:  # each array capability alone maps and simulates both layers
        alone = with_mac(text, cap)
        for layer in parse_workload(load_yaml_text(SMALL, "small.yaml")).layers:
            record, _ = map_layer(layer, alone, Options(time_limit=5.0))
            assert record.capability == cap and record.valid is True, (layer.name, cap, record.error)



def test_conversion_figures() -> None:
    _, tpu = import_zigzag(*paths("tpu_like", "tpu_like"))  # its file has a duplicated 'ports' (PyYAML: the last)
    rf, sram, dram = (tpu.storages[n] for n in ("rf_128B", "sram_2MB", "dram"))
    assert (rf.capacity, rf.instances, rf.read_pj_per_byte) == (128, 1024, 0.095)
    assert sram.read_pj_per_byte == 416.16 / 256 and sram.capacity == 2 * 2**20 and sram.bytes_per_cycle is None
    assert dram.offchip and dram.bytes_per_cycle == 8 and dram.read_pj_per_byte == 87.5
    reg = tpu.storages["rf_2B"]  # per-PE output registers: one 16-bit partial sum each, an int32 here
    assert (reg.capacity, reg.instances, reg.read_pj_per_byte) == (4, 1024, 0.021 / 4)
    assert tpu.edge("rf_2B", "sram_2MB").bytes_per_cycle == 2048 / 16 * 4  # the SRAM port's partial sums
    mac = tpu.capability("mac")
    assert mac.fixed == {"k": 32, "n": 32} and mac.instruction_cycles({"m": 100}) == 100 and mac.pj_per_op == 0.04
    assert mac.operands == {"A": ("sram_2MB",), "B": ("rf_128B",), "C": ("sram_2MB",)}
    assert tpu.capability("add").fixed == {"i": 32}  # the mapping's Add entry: G 32
    os = tpu.capability("mac_os")  # output-stationary: the reduction streams, 32 elements a cycle
    assert os.fixed == {"m": 1, "n": 32} and os.instruction_cycles({"k": 100}) == 4
    assert os.operands == {"A": ("sram_2MB",), "B": ("rf_128B",), "C": ("rf_2B",)}
    _, tesla = import_zigzag(*paths("tesla_npu_like", "tesla_npu_like"))  # K 32 x OX 8 x OY 4
    os = tesla.capability("mac_os")
    assert os.fixed == {"m": 32, "n": 32} and os.operands["B"] == ("rf_1B", "sram_1KB_W")  # 1-byte rf: or the SRAM
    assert (tesla.storages["rf_4B"].capacity, tesla.storages["rf_4B"].instances) == (8, 4096)
    assert tesla.capability("mac").instruction_cycles({"m": 64}) == 32  # 32 partial sums a row, 1024-bit ports
    assert os.instruction_cycles({"k": 9}) == 9
    _, edge = import_zigzag(*paths("edge_tpu_like", "edge_tpu_like"))  # K 8, C 8, OX 4, OY 4
    mac = edge.capability("mac")
    # 16 rows a cycle on the array, 32/3 through sram_2MB's 2048-bit read port: 64 input bits and 8 x 16
    # partial-sum bits a row
    assert mac.fixed == {"k": 8, "n": 8} and mac.instruction_cycles({"m": 32}) == 3
    assert edge.storages["rf_1B"].instances == 64 and edge.edge("sram_32KB", "rf_1B").bytes_per_cycle == 64
    _, eyeriss = import_zigzag(*paths("eyeriss_like", "default"))  # K 32, C 32 reduced to the 14 x 12 array
    assert eyeriss.capability("mac").fixed == {"k": 12, "n": 14} and eyeriss.storages["rf_64B_A"].instances == 168
    assert eyeriss.storages["sram_1M"].bytes_per_cycle == 48  # one read/write port of 384 bits
    _, default = import_zigzag(paths("tpu_like", "tpu_like")[0])  # no mapping: D1 K, D2 C
    assert default.capability("mac").fixed == {"k": 32, "n": 32}


BAD = [  # (hardware edit: old -> new, mapping text or None, what the message says)
    ("operational_array:", "array:", None, "missing required field 'operational_array'"),
    ("          - I2, tl\n", "          - I2 tl\n", None, "allocation such as 'I1, tl'"),
    ("served_dimensions: [D1, D2]", "served_dimensions: [D1, D7]", None, "expected one of D1, D2"),
    ("size: 1024\n", "size: many\n", None, "size: expected an integer"),
    ("unit_energy: 0.04", "is_imc: true", None, "in-memory-computing"),
    ("", "", "- name: default\n  spatial_mapping:\n    D1: [\"G, 32\"]\n", "unrolling 'G' has no place"),
    ("", "", "- name: default\n  spatial_mapping:\n    D3: [\"K, 32\"]\n", "'D3' is not a dimension"),
    ("", "", "- name: default\n  spatial_mapping:\n    D1: [\"K, 8\", \"OX, 8\"]\n", "unrolls 64 on D1"),
    ("", "", "name: default\n", "expected a ZigZag mapping file"),
]


@pytest.mark.parametrize("old,new,mapping,message", BAD)
def test_bad_zigzag_files_name_file_line_and_field(old, new, mapping, message, tmp_path: Path) -> None:
    hw_text = paths("tpu_like", "tpu_like")[0].read_text()
    assert old in hw_text
    hw = tmp_path / "hw.yaml"
    hw.write_text(hw_text.replace(old, new, 1))
    mp = None
    if mapping is not None:
        mp = tmp_path / "map.yaml"
        mp.write_text(mapping)
    with pytest.raises(SpecError) as info:
        import_zigzag(hw, mp)
    assert message in str(info.value) and str(info.value).startswith(str(mp or hw) + ":")
    assert "\n" not in str(info.value)


def test_cli_forms_and_exit_status(tmp_path: Path) -> None:
    hw = paths("edge_tpu_like", "edge_tpu_like")[0]
    run = [sys.executable, "-m", "mapper.app.cli", "import"]
    ok = subprocess.run([*run, "zigzag", str(hw)], capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    assert ok.returncode == 0 and "name: edge_tpu_like" in ok.stdout
    for args in (["zigzag"], ["zigzag", str(tmp_path / "none.yaml")], ["zigzag", str(hw), "--dtype", "int8"],
                 [str(DATA / "none.onnx"), "--mapping", "m.yaml"]):
        proc = subprocess.run([*run, *args], capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
        assert proc.returncode == 2 and proc.stdout == "", args
        assert proc.stderr.startswith("covenant: error:") and proc.stderr.count("\n") == 1, proc.stderr
    assert not list(tmp_path.iterdir())


def test_partial_sums_stay_in_the_output_registers() -> None:
    """A conv on tesla_npu_like minimising energy takes the output-stationary array: the outputs'
    partial sums stay in rf_4B across the whole reduction (c, r, s), each output goes back to the
    SRAM once, complete, the program matches the reference, and the energy is a fraction of the
    streaming array's (which reads and writes its int32 tile in sram_1MB_A every reduction step)."""
    acg = load_acg("tesla_npu_like")
    layer = template_layer("conv2d", dict(C=32, K=32, H=8, W=8, R=3, pad=1))
    found = cpsat.solve(layer, acg, "energy")
    m = found.mapping
    assert m.binding.capability == "mac_os" and dict(m.placement)["O"][-1] == "rf_4B"
    result = simulate(lower(m), acg)
    assert result.matches_reference
    outputs = math.prod(layer.output.shape)
    assert result.moved["rf_4B->sram_1MB_A"] == outputs * 4 and "sram_1MB_A->rf_4B" not in result.moved
    streaming = cpsat.solve(layer, with_mac(PROJECT_ROOT.joinpath("acg_specs/tesla_npu_like.yaml").read_text(),
                                            "mac"), "energy")
    assert evaluate(m, acg).energy * 4 < evaluate(streaming.mapping, acg).energy
