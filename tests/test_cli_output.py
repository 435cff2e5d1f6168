"""What the commands print: the per-layer table fits 80 columns without cutting a cell; `--wide` has
every column."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console

from mapper.app.cli import main
from mapper.app.cli_output import format_phases, format_si, print_map
from mapper.network.phases import PHASES

WIDE_COLUMNS = ("layer", "capability", "status", "MACs", "predicted", "simulated", "Δ", "util.", "energy",
                "solve", "gap", "valid")


def _row(name: str, **fields) -> dict:
    row = {"name": name, "status": "optimal", "strategy": "cpsat", "macs": 118013952, "count": 1,
           "capability": "mvmul", "predicted_cycles": 190110, "simulated_cycles": 190078.5,
           "energy_pj": 531.52e6, "utilization": 0.606, "solve_seconds": 0.67, "optimality_gap": 0.0,
           "limit": None, "valid": True, "error": None, "mapping": None}
    return {**row, **fields}


def _doc() -> dict:
    """A map document with every kind of row: long names, reused, unmapped, predicted only, huge figures."""
    long = "deepbench.train_35x8457x4096_" + "and_a_long_suffix_" * 6
    layers = [
        _row("conv1"), _row("layer1.0.conv1", count=4),
        _row(long, status="infeasible", capability=None, predicted_cycles=None, simulated_cycles=None,
             energy_pj=None, utilization=None, valid=None, error="IBUF cannot hold the smallest tiles " * 5),
        _row("layer4.1.conv2", reused_from="layer4.0.conv2_with_a_longer_name", simulated_cycles=None,
             predicted_cycles=123456789012345, energy_pj=9.99e20, utilization=1.0, valid=None),
        _row("fc", capability="a_capability_with_a_long_name", status="feasible", optimality_gap=0.125),
    ]
    total = {"predicted_cycles": 123456789202455, "simulated_cycles": None, "solve_seconds": 2.7, "layers": 5,
             "mapped": 4, "valid": 3, "unmapped": [long]}
    return {"acg": "genesys[array=16,ibuf=32KiB]", "workload": "covenant14", "objective": "latency",
            "strategy": "cpsat", "layers": layers, "total": total}


def _render(doc: dict, wide: bool, width: int = 80) -> list[str]:
    console = Console(file=io.StringIO(), width=width, record=True)
    print_map(console, doc, wide)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 100])
def test_default_table_fits_and_cuts_nothing(width: int) -> None:
    lines = _render(_doc(), wide=False, width=width)
    assert max(cell_len(line) for line in lines) <= width
    text = "\n".join(lines)
    assert "…" not in text
    header = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    first = lines[header].index("capability")  # the layer column's width: wrapped names come back whole
    column = "".join(line[:first].strip() for line in lines[header + 2:] if not line.startswith("~"))
    for row in _doc()["layers"]:
        assert row["name"] in column
    assert "~123T" in text and "999 MJ" in text and "+0.0%" in text and "60.6%" in text


def test_wide_table_has_every_column_uncut() -> None:
    lines = _render(_doc(), wide=True)
    header = next(line for line in lines if "layer" in line and "capability" in line)
    assert all(col in header for col in WIDE_COLUMNS)
    text = "\n".join(lines)
    assert "…" not in text and "123,456,789,012,345" in text and "12.5 %" in text


def test_format_si() -> None:
    assert [format_si(v) for v in (0, 7, 999, 999.6, 17586, 1234567)] == ["0", "7", "999", "1k", "17.6k", "1.23M"]
    assert format_si(45.6e3, "B") == "45.6 kB" and format_si(2.5e3, "J", 1e-12) == "2.5 nJ"


def test_compile_and_map_at_80_columns(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    small = ["--acg", "tiny", "--workload", "tiny_net", "--time-limit", "2", "--no-validate"]
    for argv in (["map", *small, "--layer", "conv1", "--layer", "add"], ["map", *small, "--layer", "conv1", "--wide"],
                 ["compile", *small]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "conv1" in out and "…" not in out
        if "--wide" in argv:
            assert all(col in out for col in WIDE_COLUMNS)
        else:
            assert max(cell_len(line) for line in out.splitlines()) <= 80 and "Δ model" in out


@pytest.mark.parametrize("what,name", [("acg", "genesys"), ("acg", "hvx_like"), ("acg", "tpu_like"),
                                       ("workload", "mini_inception"), ("workload", "resnet18"),
                                       ("workload", "deepbench_gru")])
def test_show_tables_fit_80_columns(what: str, name: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["show", what, name]) == 0
    out = capsys.readouterr().out
    assert max(cell_len(line) for line in out.splitlines()) <= 80 and "…" not in out
    assert main(["show", what, name, "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "…" not in wide
    headers = ("instances", "write pJ/B", "pJ/op") if what == "acg" else ("kind", "dtypes", "shapes (inputs")
    assert all(h in wide for h in headers) and not any(h in out for h in headers)


def test_the_time_line_names_every_phase_and_the_solves() -> None:
    total = {"phases": dict.fromkeys(PHASES, 0.5), "layer_solves": 13, "layer_solve_seconds": 94.2,
             "fusion_solves": 60, "fusion_solve_seconds": 2.71, "slowest_solve": {"layer": "fc", "seconds": 93.67}}
    line = format_phases(total)
    assert line.startswith("time (s): schedule 0.50, build 0.50,") and line.endswith("; slowest solve fc 93.67")
    assert "layer mapping 0.50 (13 solves, 94.20 in the solver), fusion search 0.50 (60 solves, 2.71 in" in line
    line = format_phases({**total, "fusion_solves": 0, "slowest_solve": None})
    assert "fusion search 0.50, final mapping" in line and line.endswith("simulation 0.50")
    line = format_phases({**total, "fusion_reused": 7, "fusion_skipped": 4, "final_solves": 5,
                          "final_solve_seconds": 0.3})
    assert "fusion search 0.50 (60 solves, 2.71 in the solver; 7 reused, 4 candidates skipped)" in line
    assert "final mapping 0.50 (5 solves, 0.30 in the solver)" in line
    assert format_phases({}) is None


def test_compile_piped_fits_80_columns_and_says_what_it_wrote(tmp_path, capsys, monkeypatch) -> None:
    """Piped (stdout is not a terminal) and without COLUMNS: the table, the prose and the fusion lines
    fit 80 columns (they were 200 wide); a legend says what `Δ model` and `util.` mean."""
    monkeypatch.delenv("COLUMNS", raising=False)
    small = ["compile", "--acg", "genesys", "--workload", "tiny_net", "--time-limit", "2", "--no-validate"]
    assert main(small) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert any(line.startswith("fusion: ") for line in lines) and any(line.startswith("time (s): ") for line in lines)
    assert "Δ model: the cost model's error, (predicted - simulated) / simulated cycles;" in out
    assert "util.: ops per cycle over the capability's peak" in out
    assert lines[-1] == "nothing written (-o DIR writes the network program)"
    assert main([*small, "-o", str(tmp_path / "out"), "--wide"]) == 0
    out = capsys.readouterr().out
    assert all(col in out for col in WIDE_COLUMNS) and "Δ: the cost model's error" in out
    written = len(list((tmp_path / "out" / "mappings").iterdir()))
    assert out.splitlines()[-1] == f"wrote {tmp_path / 'out' / 'network.yaml'} and {written} mappings in " \
                                   f"{tmp_path / 'out' / 'mappings'}"


def test_map_says_what_it_wrote(tmp_path, capsys) -> None:
    small = ["map", "--acg", "tiny", "--workload", "tiny_net", "--time-limit", "2", "--no-validate", "--layer", "fc"]
    assert main(small) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "nothing written (-o PATH writes the mappings)"
    assert main([*small, "-o", str(tmp_path / "fc.yaml")]) == 0
    assert " ".join(capsys.readouterr().out.split()).endswith(f" wrote {tmp_path / 'fc.yaml'}")
    assert main([*small, "--layer", "gap", "-o", str(tmp_path / "out")]) == 0  # (a long path wraps at a space)
    assert " ".join(capsys.readouterr().out.split()).endswith(f" wrote 2 mappings into {tmp_path / 'out'}")


@pytest.mark.parametrize("width", [80, 100, 200])
def test_a_reused_layer_is_named_whole(width: int) -> None:
    """The status cell `= LAYER` breaks only between the words of the name (after '.', '_', '-')."""
    lines = _render(_doc(), wide=False, width=width)
    header = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    start, end = lines[header].index("status"), lines[header].index("cycles")
    row = next(i for i, line in enumerate(lines) if line.startswith("layer4.1.conv2"))
    cell = [lines[row][start:end].strip()]
    for line in lines[row + 1:]:
        if line[:start].strip() or not line[start:end].strip():
            break
        cell.append(line[start:end].strip())
    assert "".join(cell) == "= layer4.0.conv2_with_a_longer_name"
    assert all(part[-1] in "._- " or part == "=" for part in cell[:-1]), cell  # never inside a word
    assert max(cell_len(line) for line in lines) <= width
