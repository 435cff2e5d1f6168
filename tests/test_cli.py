"""`covenant show`: tables, JSON, drawings, and exit status 2 with one line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mapper.app.cli import main
from mapper.app.cli_output import format_bytes
from mapper.spec.loader import PROJECT_ROOT

ACGS = sorted(p.stem for p in (PROJECT_ROOT / "acg_specs").glob("*.yaml"))
WORKLOADS = sorted(p.stem for p in (PROJECT_ROOT / "workloads").glob("*.yaml"))


@pytest.mark.parametrize("name", ACGS)
def test_show_acg(name: str, capsys) -> None:
    assert main(["show", "acg", name]) == 0
    out = capsys.readouterr().out
    assert name in out and "capabilities" in out and "edges" in out
    assert "C[m,n] += A[m,k] * B[k,n]" in out or "Z[i]" in out  # indices survive the table renderer


@pytest.mark.parametrize("name", WORKLOADS)
def test_show_workload_json(name: str, capsys) -> None:
    assert main(["show", "workload", name, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] and doc["total"]["layers"] == len(doc["layers"]) > 0
    assert doc["total"]["macs"] == sum(lyr["macs"] * lyr["count"] for lyr in doc["layers"])


def test_show_acg_json_has_peaks_and_paths(capsys) -> None:
    assert main(["show", "acg", "genesys", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    mvmul = next(c for c in doc["capabilities"] if c["name"] == "mvmul")
    assert mvmul["peak_ops_per_cycle"] == 1024
    assert mvmul["paths"]["A"] == [["DRAM", "IBUF"]] and ["OBUF", "DRAM"] in mvmul["paths"]["C"]
    assert {s["name"]: s["total_capacity"] for s in doc["storages"]}["IBUF"] == 64 * 1024


def test_png_drawings(tmp_path: Path, capsys) -> None:
    acg_png, wl_png = tmp_path / "acg.png", tmp_path / "wl.png"
    assert main(["show", "acg", "hvx_like", "--png", str(acg_png)]) == 0
    assert main(["show", "workload", "resnet18", "--png", str(wl_png)]) == 0
    for png in (acg_png, wl_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(tmp_path.iterdir()) == sorted([acg_png, wl_png])  # no temporary file left behind


def test_bad_spec_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes:\n  DRAM: {kind: storage, capacity: 12 KiBB, offchip: true}\nedges: []\n")
    proc = subprocess.run([sys.executable, "-m", "mapper.app.cli", "show", "acg", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{bad}:3: nodes.DRAM.capacity" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["show", "acg", "no_such_acg"], ["show", "workload", "/no/such.yaml"],
                                  ["show", "acg", "genesys", "--png", "/no/such/dir/x.png"]])
def test_unknown_names_exit_2(argv, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("covenant: error:") and err.count("\n") == 1


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["show", "nonsense", "x"])
    assert info.value.code == 2


def test_format_bytes() -> None:
    assert format_bytes(262144) == "256 KiB" and format_bytes(100) == "100 B" and format_bytes(2**31) == "2 GiB"


def _write_mapping(tmp_path: Path, acg_name: str = "tiny") -> Path:
    from mapper.mapping.binding import bind
    from mapper.mapping.mapping import greedy_mapping
    from mapper.mapping.mapping_yaml import write_mapping
    from mapper.spec.acg import load_acg
    from mapper.spec.workload import make_layer

    acg = load_acg(acg_name)
    layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
                       {"A": "int8", "B": "int8", "C": "int32"})
    path = tmp_path / "m.yaml"
    write_mapping(greedy_mapping(layer, bind(layer, acg)[0], acg), path)
    return path


def test_simulate_json_and_listing(tmp_path: Path, capsys) -> None:
    path = _write_mapping(tmp_path)
    assert main(["simulate", str(path), "--json", "--listing", "--seed", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["cycles"] > 0 and doc["macs"] == 512 and doc["seed"] == 3
    assert any("compute  mvmul" in line for line in doc["listing"])
    assert main(["simulate", str(path)]) == 0
    assert "output equals reference" in capsys.readouterr().out


def test_simulate_bad_files_exit_2(tmp_path: Path, capsys) -> None:
    path = _write_mapping(tmp_path)
    assert main(["simulate", str(path), "--acg", "genesys"]) == 2
    assert "the mapping is for ACG 'tiny'" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text(path.read_text().replace("capacity", "x").replace("format: covenant-mapping/1", "format: 7"))
    assert main(["simulate", str(broken)]) == 2
    assert f"{broken}:2: format: expected 'covenant-mapping/1'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# covenant map

FUZZ = str(PROJECT_ROOT / "tests" / "data" / "fuzz_workload.yaml")


def test_map_json_maps_and_validates_every_layer(tmp_path, capsys) -> None:
    code = main(["map", "--acg", "tiny", "--workload", FUZZ, "--layer", "conv1", "--layer", "pool", "--layer", "fc",
                 "--layer", "add", "--json", "-o", str(tmp_path / "out")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["name"] for r in doc["layers"]] == ["conv1", "pool", "add", "fc"]
    for r in doc["layers"]:
        assert r["status"] == "optimal" and r["valid"] is True and r["error"] is None
        assert r["tie_break"] == "optimal"  # energy proven minimal among the fastest mappings
        assert r["predicted_cycles"] > 0 and r["simulated_cycles"] > 0 and r["mapping"]["format"]
        assert (tmp_path / "out" / f"{r['name']}.yaml").is_file()
    assert doc["total"]["simulated_cycles"] == sum(r["simulated_cycles"] for r in doc["layers"])
    # a written mapping runs on its own
    assert main(["simulate", str(tmp_path / "out" / "conv1.yaml"), "--json"]) == 0


def test_map_table_and_single_file_output(tmp_path, capsys) -> None:
    out = tmp_path / "fc.yaml"
    assert main(["map", "--acg", "tiny", "--workload", FUZZ, "--layer", "fc", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fc" in text and "optimal" in text and "1/1 layers mapped" in text
    assert out.read_text().startswith("# covenant mapping of layer fc")


def test_map_reports_a_layer_without_capability_with_exit_1(capsys) -> None:
    code = main(["map", "--acg", "tpu_like", "--workload", "deepbench_gru", "--layer", "train_gru_h512_b32_t1.rz",
                 "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    (r,) = doc["layers"]
    assert r["status"] == "infeasible" and "element-wise" in r["error"] and r["mapping"] is None


@pytest.mark.parametrize("argv, message", [
    (["--time-limit", "0"], "positive number of seconds"),
    (["--layer", "nope"], "no layer named 'nope'"),
    (["--acg", "nope"], "nope"),
])
def test_map_bad_input_exits_2_with_one_line(argv, message) -> None:
    base = {"--acg": "tiny", "--workload": FUZZ}
    args = ["map"]
    for flag, value in base.items():
        if flag not in argv:
            args += [flag, value]
    proc = subprocess.run([sys.executable, "-m", "mapper.app.cli", *args, *argv], capture_output=True, text=True,
                          cwd=PROJECT_ROOT)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _special(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """An output path that is not ours to replace, and the file whose content must survive."""
    victim = tmp_path / "elsewhere" / "victim.yaml"
    victim.parent.mkdir()
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    if kind == "fifo":
        os.mkfifo(out / "m.yaml")
    else:  # a symbolic link leading out of its folder
        (out / "m.yaml").symlink_to(victim)
    return out / "m.yaml", victim


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_outputs_never_replace_what_is_not_a_regular_file(tmp_path, capsys, monkeypatch, kind) -> None:
    target, victim = _special(tmp_path, kind)
    before = os.lstat(target).st_mode
    monkeypatch.setattr("mapper.app.cli.map_layers", lambda *a, **k: pytest.fail("mapped before refusing -o"))
    assert main(["map", "--acg", "tiny", "--workload", FUZZ, "--layer", "add", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["show", "acg", "tiny", "--png", str(target)]) == 2
    assert os.lstat(target).st_mode == before and victim.read_text() == "keep me\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.yaml"]  # no temporary file left
