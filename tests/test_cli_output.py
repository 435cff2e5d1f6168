"""What `covenant map` and `simulate` print and write: partial totals, the workload a mapping is for,
and a quiet exit when the reader of a pipe goes away."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mapper.cli import main
from mapper.mapping import load_mapping
from mapper.spec import PROJECT_ROOT

FUZZ = str(PROJECT_ROOT / "tests" / "data" / "fuzz_workload.yaml")


def test_map_totals_cover_the_mapped_layers_and_name_the_others(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["map", "--acg", "tiny", "--workload", FUZZ, "--layer", "fc", "--layer", "gru", "--no-validate"]
    assert main([*argv, "--json", "-o", str(out)]) == 1
    doc = json.loads(capsys.readouterr().out)
    fc, gru = doc["layers"]
    assert fc["mapping"] is not None and gru["mapping"] is None and gru["status"] == "infeasible"
    assert doc["total"]["unmapped"] == ["gru"] and doc["total"]["mapped"] == 1
    assert doc["total"]["predicted_cycles"] == fc["predicted_cycles"] * fc["count"] > 0
    assert doc["total"]["simulated_cycles"] is None  # not validated: no simulated figure to add up
    assert fc["mapping"]["layer"]["workload"] == "fuzz"
    assert [p.name for p in out.iterdir()] == ["fc.yaml"]
    assert load_mapping(out / "fc.yaml").workload == "fuzz"
    assert main(argv) == 1
    text = capsys.readouterr().out
    assert "1/2 layers mapped" in text and "(over the mapped layers)" in text and "unmapped: gru" in text


def test_one_layer_into_an_existing_folder(tmp_path: Path, capsys) -> None:
    argv = ["map", "--acg", "tiny", "--workload", FUZZ, "--layer", "fc", "--no-validate", "-o", str(tmp_path)]
    assert main(argv) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["fc.yaml"]


def test_listing_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    from mapper.acg import load_acg
    from mapper.binding import bind
    from mapper.mapping import greedy_mapping, write_mapping
    from mapper.workload import make_layer

    acg = load_acg("tiny")
    layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 32, "k": 32},
                       {"A": "int8", "B": "int8", "C": "int32"})
    path = tmp_path / "m.yaml"
    write_mapping(greedy_mapping(layer, bind(layer, acg)[0], acg, grow=False), path)
    for extra in ([], ["--json"]):  # the listing is far larger than a pipe's buffer
        proc = subprocess.Popen([sys.executable, "-m", "mapper.cli", "simulate", str(path), "--listing", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        assert proc.stdout.readline()  # like `| head -1`
        proc.stdout.close()
        assert proc.wait() == 0
        assert proc.stderr.read() == b""
        proc.stderr.close()
