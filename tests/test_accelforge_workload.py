"""AccelForge workload import (mapper/importers/accelforge_workload.py): the Einsums AccelForge's own
loader evaluated (tests/data/accelforge/evaluated/workloads/, printed by bench/accelforge_worker.py
spec) become a covenant workload with the same computation, the same wiring and the same bits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mapper.app.cli import main
from mapper.importers.accelforge import import_accelforge
from mapper.spec.loader import SpecError, load_yaml_text
from mapper.spec.workload import parse_workload

DOCS = sorted((Path(__file__).parent / "data" / "accelforge" / "evaluated" / "workloads").glob("*.json"))
BITS = {"int8": 8, "int16": 16, "int32": 32}


def imported(path: Path):
    text, _ = import_accelforge(str(path), [], None, "workload")
    return json.loads(path.read_text()), parse_workload(load_yaml_text(text, str(path)))


@pytest.mark.parametrize("path", DOCS, ids=[p.stem for p in DOCS])
def test_every_einsum_that_computes_is_a_layer_with_its_points_ranks_and_bits(path):
    doc, workload = imported(path)
    einsums = {e["name"]: e for e in doc["einsums"] if not e["is_copy_operation"]}
    assert [layer.name for layer in workload.layers] == list(einsums)
    for layer in workload.layers:
        e = einsums[layer.name]
        assert layer.dims == e["rank_variable_bounds"]
        assert layer.points == math.prod(e["rank_variable_bounds"].values()) == e["n_computes"]
        for t in e["tensors"]:
            name = t["name"] if t["name"] in layer.tensors else None
            if name is None:  # read through a copy left out
                continue
            assert BITS[layer.tensors[name].dtype] == t["bits_per_value"]
            assert len(layer.tensors[name].shape) == len(t["projection"])


@pytest.mark.parametrize("path", DOCS, ids=[p.stem for p in DOCS])
def test_wiring_follows_the_tensors_and_persistent_inputs_are_weights(path):
    doc, workload = imported(path)
    writer = {t["name"]: e["name"] for e in doc["einsums"] for t in e["tensors"] if t["output"]}
    copies = {e["name"] for e in doc["einsums"] if e["is_copy_operation"]}
    persistent = {t["name"] for e in doc["einsums"] for t in e["tensors"] if t["persistent"]}
    for layer in workload.layers:
        for operand in layer.expr.inputs:
            source = writer.get(operand)
            if source is not None and source not in copies:
                assert layer.producers[operand] == source
            else:
                assert operand not in layer.producers
                assert (operand in layer.weights) == (operand in persistent)


def test_gpt3_decode_is_a_one_token_step_over_a_2047_token_cache():
    _, workload = imported(next(p for p in DOCS if p.stem == "gpt3_6.7B_decode"))
    qk = next(layer for layer in workload.layers if layer.name == "QK")
    assert qk.dims["m"] == 1 and qk.dims["p"] == 2047 and "K_cache" in qk.weights
    assert workload.name == "gpt3_6.7B[DECODE=true,N_NEW_TOKENS=1,N_CACHED_TOKENS=2047,BATCH_SIZE=1]"


def test_the_cli_writes_the_workload_and_names_bad_input(tmp_path, capsys):
    doc = next(p for p in DOCS if p.stem == "three_matmuls")
    out = tmp_path / "mm.yaml"
    assert main(["import", "accelforge", str(doc), "--what", "workload", "-o", str(out)]) == 0
    assert "3 layers" in " ".join(capsys.readouterr().out.split())  # the line may wrap at 80 columns
    assert [layer.name for layer in parse_workload(load_yaml_text(out.read_text(), "mm")).layers] == \
        ["Matmul1", "Matmul2", "Matmul3"]
    for args, word in ((["import", "accelforge", str(doc)], "--what"),
                       (["import", "accelforge", str(tmp_path / "none.json")], "no such file"),
                       (["import", "accelforge", str(out)], "not an AccelForge")):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert word in err and "Traceback" not in err


def test_a_yaml_file_needs_accelforge_to_evaluate_it(monkeypatch):
    monkeypatch.delenv("COVENANT_ACCELFORGE_PYTHON", raising=False)
    wl = Path(__file__).parent / "data" / "accelforge" / "examples" / "workloads" / "basic" / "matmuls.yaml"
    with pytest.raises(SpecError, match="AccelForge itself"):
        import_accelforge(str(wl), [], None)
