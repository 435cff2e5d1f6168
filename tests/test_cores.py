"""Several cores: steps split over identical cores sharing off-chip memory, solved per slice and
simulated at once with a shared off-chip port."""

from pathlib import Path

import numpy as np
import pytest

from mapper.network.compile import CompileOptions, compile_network
from mapper.network.cores import shared_view, slices, split_dims
from mapper.network.flow import Options, map_layer
from mapper.program.lower import lower
from mapper.program.windows import slice_data
from mapper.spec.acg import load_acg
from mapper.spec.loader import SpecError
from mapper.spec.workload import load_workload, make_layer
from sim.machine import random_inputs, simulate, simulate_cores
from sim.reference import evaluate

TINY = Path(__file__).parents[1] / "acg_specs" / "tiny.yaml"


def _duo(tmp_path, port: int) -> Path:
    text = TINY.read_text().replace("name: tiny\n", "name: tiny_duo\ncores: 2\n").replace(
        "DRAM: {kind: storage, capacity: 16MiB, offchip: true,",
        f"DRAM: {{kind: storage, capacity: 16MiB, offchip: true, bytes_per_cycle: {port},")
    path = tmp_path / "tiny_duo.yaml"
    path.write_text(text)
    return path


def test_cores_need_a_shared_port(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY.read_text().replace("name: tiny\n", "name: bad\ncores: 2\n"))
    with pytest.raises(SpecError, match=r"bad.yaml:\d+: cores: .*bytes_per_cycle"):
        load_acg(path)


GEMM = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 24, "n": 8, "k": 16},
                  {"A": "int8", "B": "int8", "C": "int32"})


@pytest.mark.parametrize("dim", split_dims(GEMM))
def test_slices_compute_the_layer(dim):
    """The slices' outputs, each computed by its own simulated program, assemble into the layer's."""
    acg = load_acg("tiny")
    inputs = random_inputs(GEMM, 3)
    out = np.zeros(GEMM.output.shape, np.int32)
    for s in slices(GEMM, dim, 3):
        _, m = map_layer(s.layer, acg, Options(time_limit=5, validate=False))
        data = {t: slice_data(s, t, inputs[t]) for t in inputs}
        slice_data(s, "C", out)[...] = simulate(lower(m), acg, inputs=data, compare=False).output
    assert np.array_equal(out, evaluate(GEMM.expr, GEMM.dims, inputs, np.dtype(np.int32)))


def test_cores_contend_for_the_shared_port(tmp_path):
    """Two cores running the same program at once: with a port wider than both cores' edges together
    they run about as fast as one alone (each transfer holds the port only for bytes / 64 cycles); with
    a port no wider than one edge they take turns on it, so the run lasts at least the port's time for
    both cores' off-chip bytes."""
    for port in (64, 4):
        acg = load_acg(_duo(tmp_path, port))
        half = slices(GEMM, "m", 2)[0].layer
        _, m = map_layer(half, shared_view(acg, 2), Options(time_limit=5, validate=False))
        program = lower(m)
        alone = simulate_cores([program], acg, [random_inputs(half, 1)])[0]
        both = simulate_cores([program, program], acg, [random_inputs(half, 1)] * 2)
        offchip_bytes = sum(v for k, v in alone.busy.items() if k.startswith("edge:DRAM")) * 4  # edges: 4 B/cycle
        if port == 64:
            assert alone.cycles <= both[0].cycles <= 1.05 * alone.cycles  # a slot of b/64 cycles per transfer
        else:
            assert both[0].cycles > alone.cycles
            assert both[0].cycles >= 2 * offchip_bytes / port


def test_a_network_split_over_cores_is_simulated_bit_exact(tmp_path):
    acg = load_acg(_duo(tmp_path, 6))
    result = compile_network(load_workload("tiny_net"), acg, CompileOptions(time_limit=5))
    assert result.valid is True
    split = [r for r in result.records if r.cores == 2]
    assert split and result.totals().split_steps == len(split)
    one = compile_network(load_workload("tiny_net"), load_acg("tiny"), CompileOptions(time_limit=5))
    assert result.totals().predicted_cycles < one.totals().predicted_cycles
