"""Names and numbers in specs are held to the limits of `mapper.spec.limits`, and whatever a name holds,
files named after it stay inside the folder given."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.app.cli import main
from mapper.mapping.cost import evaluate
from mapper.mapping.mapping import bind, greedy_mapping
from mapper.network.flow import Options, map_layer, size_problem
from mapper.spec import limits
from mapper.spec.acg import load_acg
from mapper.spec.files import files_in, write_text
from mapper.spec.loader import PROJECT_ROOT
from mapper.spec.workload import Workload, load_workload, template_layer

FUZZ = PROJECT_ROOT / "tests" / "data" / "fuzz_workload.yaml"
BAD_NAMES = ["../escaped", "/tmp/abs", "a/b", "x" * 300, "caf\u00e9", "..", ".hidden", "a\\b", "a b", ""]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_layer_names_are_rejected_at_file_line_field(tmp_path: Path, name: str, capsys) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(f"name: w\nlayers:\n  - name: {name!r}\n    op: relu\n    params: {{shape: [4]}}\n",
                    encoding="utf-8")
    out = tmp_path / "out"
    assert main(["map", "--acg", "tiny", "--workload", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"covenant: error: {spec}:3: layers[0].name: expected a name of 1 to 128")
    assert err.count("\n") == 1
    assert _files(tmp_path) == [spec]  # nothing written, anywhere under the test folder
    assert not Path("/tmp/abs.yaml").exists()


@pytest.mark.parametrize("where, text, field", [
    ("workload name", "name: '../w'\nlayers: [{name: a, op: relu, params: {shape: [4]}}]\n", ":1: name"),
    ("template suffix", "name: w\nlayers: [{name: " + "g" * 127 + ", op: gru_cell, params: {batch: 1, hidden: 4}}]\n",
     ":2: layers[0].name: the layer name"),
])
def test_bad_workload_names(tmp_path: Path, where: str, text: str, field: str, capsys) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(text)
    assert main(["show", "workload", str(spec)]) == 2
    assert f"{spec}{field}" in capsys.readouterr().err


@pytest.mark.parametrize("old, new, field", [
    ("name: tiny", "name: ti/ny", ":4: name"),
    ("  IBUF:", "  ../IBUF:", "nodes.../IBUF"),
    ("name: mvmul", "name: 'mv mul'", "nodes.ARRAY.capabilities[0].name"),
])
def test_bad_acg_names(tmp_path: Path, old: str, new: str, field: str, capsys) -> None:
    text = (PROJECT_ROOT / "acg_specs" / "tiny.yaml").read_text()
    assert old in text
    spec = tmp_path / "a.yaml"
    text = text.replace(old, new, 1)
    if "IBUF" in old:  # the node's references follow it (the name itself must be what is rejected)
        text = text.replace("from: IBUF", "from: ../IBUF").replace("to: IBUF", "to: ../IBUF")
    spec.write_text(text)
    assert main(["show", "acg", str(spec)]) == 2
    err = capsys.readouterr().err
    assert field in err and "expected a name" in err


def test_map_writes_every_mapping_inside_the_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """Independently of the loaders: layers named anything are written into -o DIR, one file each."""
    fc = load_workload(FUZZ).layer("fc")
    names = [*BAD_NAMES[:-1], "A", "a", "a_b"]
    wl = Workload("w", tuple(replace(fc, name=n) for n in names))
    monkeypatch.setattr("mapper.app.cli.load_model", lambda _: wl)
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        assert main(["map", "--acg", "tiny", "--workload", "w", "--no-validate", "-o", str(out)]) == 0
    finally:
        os.umask(old)
    written = _files(tmp_path)
    assert len(written) == len(names) and all(p.parent == out for p in written)
    assert all(p.suffix == ".yaml" and len(p.name) <= 105 for p in written)
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o644)}
    assert not Path("/tmp/abs.yaml").exists()
    texts = {p.read_text(encoding="utf-8") for p in written}
    assert len(texts) == len(names)  # one distinct file per layer (each names its layer)
    assert "wrote" in capsys.readouterr().out


@settings(max_examples=100, deadline=None)
@given(names=st.lists(st.text(max_size=300), max_size=8))
def test_files_in_stays_in_the_folder(tmp_path_factory, names: list[str]) -> None:
    folder = tmp_path_factory.mktemp("out")
    paths = files_in(folder, names)
    assert set(paths) == set(names)
    assert len({str(p).lower() for p in paths.values()}) == len(paths)
    for path in paths.values():
        assert path.parent == folder.absolute() and path.name not in (".", "..")
        write_text(path, "x")
    assert len(list(folder.iterdir())) == len(paths)


def test_result_files_respect_the_umask(tmp_path: Path) -> None:
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            write_text(tmp_path / f"{mask}.txt", "x")
        finally:
            os.umask(old)
        assert (tmp_path / f"{mask}.txt").stat().st_mode & 0o777 == mode


# --------------------------------------------------------------------------------------------------
# Numbers

TINY = (PROJECT_ROOT / "acg_specs" / "tiny.yaml").read_text()


@pytest.mark.parametrize("capacity, ok", [("'1e30'", False), (str(10**30), False), (str(2**50 + 1), False),
                                          ("'2 PiB'", False), ("'1 TiB'", True), (str(2**50), True)])
def test_capacity_range(tmp_path: Path, capacity: str, ok: bool, capsys) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text(TINY.replace("capacity: 16MiB", f"capacity: {capacity}", 1))
    assert spec.read_text() != TINY
    assert main(["show", "acg", str(spec), "--json"]) == (0 if ok else 2)
    if not ok:
        assert "nodes.DRAM.capacity: expected a size" in capsys.readouterr().err


@pytest.mark.parametrize("old, new, field", [
    ("dims: {k: 4, n: 4}", "dims: {k: 4, n: 1000000000000}", "capabilities[0].dims.n"),
    ("bytes_per_cycle: 4}", "bytes_per_cycle: 1.0e+300}", "bytes_per_cycle"),
])
def test_numbers_above_the_limits_are_rejected(tmp_path: Path, old: str, new: str, field: str, capsys) -> None:
    assert old in TINY
    spec = tmp_path / "a.yaml"
    spec.write_text(TINY.replace(old, new, 1))
    assert main(["show", "acg", str(spec)]) == 2
    err = capsys.readouterr().err
    assert field in err and "<= 2**" in err


def test_template_extents_above_the_limit_are_rejected(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text("name: w\nlayers:\n  - {name: r, op: relu, params: {shape: [4, 4294967296]}}\n")
    assert main(["show", "workload", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:3: layers[0]" in err and "4294967296" in err and "2**31" in err


# --------------------------------------------------------------------------------------------------
# Bounded stages

def test_huge_layer_is_refused_before_lowering(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text("name: huge\nlayers:\n  - {name: big_relu, op: relu, params: {shape: [1000000, 1000000]}}\n")
    assert main(["map", "--acg", "genesys", "--workload", str(spec), "--json", "-o", str(tmp_path / "m.yaml")]) == 1
    import json

    (record,) = json.loads(capsys.readouterr().out)["layers"]
    assert record["status"] == "error" and record["simulated_cycles"] is None and record["predicted_cycles"] > 1e10
    assert "instructions" in record["error"] and f"{limits.MAX_PROGRAM_INSTRUCTIONS:,}" in record["error"]
    assert main(["simulate", str(tmp_path / "m.yaml")]) == 1
    err = capsys.readouterr().err
    assert "layer big_relu" in err and "above the limit" in err and err.count("\n") == 1


def test_layers_too_large_to_solve_are_refused_before_solving() -> None:
    layer = template_layer("gemm", {"M": 2**20, "N": 2**20, "K": 2**20})
    record, mapping = map_layer(layer, load_acg("genesys"), Options())
    assert mapping is None and record.status == "error" and record.solve_seconds == 0
    assert f"{2**60:,} iteration points" in record.error and f"{limits.MAX_LAYER_POINTS:,}" in record.error


def test_size_limits_name_the_size(monkeypatch) -> None:
    acg = load_acg("tiny")
    layer = template_layer("gemm", {"M": 8, "N": 8, "K": 8})
    mapping = greedy_mapping(layer, bind(layer, acg)[0], acg)
    cost = evaluate(mapping, acg)
    assert size_problem(mapping, cost) is None
    monkeypatch.setattr(limits, "MAX_SIMULATED_BYTES", layer.bytes - 1)
    assert size_problem(mapping, cost) == (f"its tensors take {layer.bytes:,} B, above the simulator's limit of "
                                           f"{layer.bytes - 1:,} B")
    monkeypatch.setattr(limits, "MAX_PROGRAM_INSTRUCTIONS", cost.instructions)
    assert "instructions" in size_problem(mapping, cost)
    record, found = map_layer(layer, acg, Options(time_limit=5))
    assert found is not None and record.status == "error" and record.valid is None
