"""`covenant show mapping`: the loop nest of a mapping, its trip counts, and bad files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mapper.app.cli import main
from mapper.spec.acg import load_acg
from mapper.spec.loader import PROJECT_ROOT

EXPERT = PROJECT_ROOT / "experiments" / "expert" / "genesys"
PADDED = {"deepbench.train_35x8457x4096"}  # an expert mapping may tile past an extent without good divisors


@pytest.mark.parametrize("path", sorted(EXPERT.glob("*.yaml")), ids=lambda p: p.stem)
def test_trip_counts_multiply_to_the_extents(path: Path, capsys) -> None:
    assert main(["show", "mapping", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    covered = dict.fromkeys(doc["dims"], 1)
    for level in doc["levels"]:
        for loop in level["loops"]:
            covered[loop["dim"]] *= loop["trips"]
    for e in doc["instruction"]["dims"]:
        for d, s in e["layer_dims"].items():
            covered[d] *= s
            assert e["extent"] is None or e["used"] <= e["extent"]
    if path.stem in PADDED:
        assert all(covered[d] >= n for d, n in doc["dims"].items()) and covered != doc["dims"]
    else:
        assert covered == doc["dims"]
    assert doc["levels"][0]["storages"] == ["DRAM"] and doc["predicted"]["cycles"] > 0
    held: dict[str, int] = {}  # the tiles the nest shows in each on-chip storage fit it, buffers counted
    for level in doc["levels"][1:]:
        for t in level["tiles"]:
            held[t["storage"]] = held.get(t["storage"], 0) + t["bytes"] * t["buffers"]
    storages = load_acg("genesys").storages
    assert held and all(n <= storages[s].total_capacity for s, n in held.items())


def test_text_nest_parses_back_to_the_extents(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["show", "mapping", str(EXPERT / "resnet50.layer1.0.conv2.yaml")]) == 0
    out = capsys.readouterr().out
    covered: dict[str, int] = {}
    for dim, n in re.findall(r"for (\w+) in \[0:(\d+)\)", out):
        covered[dim] = covered.get(dim, 1) * int(n)
    for bound in re.findall(r"\| \w+ <- (\S+) \(", out):  # the instruction's dims: 'p=14*q=56'
        for dim, n in (part.split("=") for part in bound.split("*")):
            covered[dim] = covered.get(dim, 1) * int(n)
    dims = dict(part.split("=") for part in re.search(r"dims: (.*)", out).group(1).split())
    assert {d: covered.get(d, 1) for d in dims} == {d: int(n) for d, n in dims.items()}
    assert "stationary: O" in out and "mvmul on PE_ARRAY" in out and "predicted:" in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize("text", ["format: covenant-mapping/1\nacg: {name: genesys}\n", "[1, 2\n", "just text\n",
                                  "\x00\x01binary"])
def test_bad_mapping_exits_2_with_one_line(tmp_path: Path, text: str, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["show", "mapping", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"covenant: error: {bad}"), err


def test_show_mapping_options(capsys) -> None:
    path = str(EXPERT / "resnet50.pool1.yaml")
    assert main(["show", "mapping", path, "--acg", "genesys"]) == 0
    assert main(["show", "mapping", path, "--acg", "tpu_like"]) == 2  # the mapping is for another ACG
    assert main(["show", "mapping", path, "--png", "x.png"]) == 2
    assert main(["show", "acg", "genesys", "--acg", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("covenant: error:") == 3


def test_illegal_mapping_names_lines_and_every_violation(tmp_path: Path, capsys) -> None:
    text = (EXPERT / "resnet50.layer1.0.conv2.yaml").read_text()
    # p's whole extent inside the instruction: neither IBUF nor OBUF can hold the tiles any more
    bad = text.replace("spatial: {k: 32, c: 32, p: 14, q: 56}", "spatial: {k: 32, c: 32, p: 56, q: 56}")
    bad = bad.replace("  - [p, 4]\n", "")
    assert bad.count("p: 56") == 2
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    loops_line = bad.splitlines().index("loops:") + 1
    proc = subprocess.run([sys.executable, "-m", "mapper.app.cli", "simulate", str(path)], capture_output=True,
                          text=True, check=False)  # the real command: exit status 2, one line, no traceback
    assert main(["show", "mapping", str(path)]) == 2
    for err in (proc.stderr, capsys.readouterr().err):
        assert err.count("\n") == 1, err
        assert err.startswith(f"covenant: error: {path}:{loops_line}: loops: illegal mapping: IBUF"), err
        assert f"; line {loops_line} (loops): OBUF" in err and "[2 violations]" in err
    assert proc.returncode == 2
