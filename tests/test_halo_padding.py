"""Padded tiles along a halo index: an output-stationary array holds 4 output rows, and a
convolution with 5 of them (p of `p+r`, or `2*p+r` strided) fills it with a tile of 4 and a partial
one of 1 instead of 1-row instructions. The CP-SAT model sums the input's footprints over the
tiles as (tiles - 1) x the first + the last (`solver/cptiles._halo_sum`); it must equal the
exhaustive search's optimum, and the program must compute the reference."""

from __future__ import annotations

import pytest

from mapper.mapping.cost import evaluate
from mapper.program.lower import lower
from mapper.spec.acg import parse_acg
from mapper.spec.loader import load_yaml_text
from mapper.spec.workload import template_layer
from sim.machine import simulate
from solver import cpsat, exhaustive
from solver.padding import paddable
from solver.space import layer_spaces

# What `covenant import zigzag` makes of a 4 x 4 array unrolling K 4 x OX 4 with per-PE output
# registers `acc` (its element-wise capabilities left out).
OS4 = """
name: os4
nodes:
  acc: {kind: storage, capacity: 8, instances: 16, double_buffer: true,
        read_pj_per_byte: 0.005, write_pj_per_byte: 0.005}
  buf: {kind: storage, capacity: 8192, double_buffer: true, read_pj_per_byte: 0.03125, write_pj_per_byte: 0.03125}
  dram: {kind: storage, capacity: 125000, offchip: true, bytes_per_cycle: 8,
         read_pj_per_byte: 12.5, write_pj_per_byte: 12.5}
  PE_ARRAY:
    kind: compute
    capabilities:
      - {name: mac, expr: 'C[m,n] += A[m,k] * B[k,n]', dims: {k: 1, n: 4}, operands: {A: buf, B: buf, C: buf},
         dtypes: {A: int8, B: int8, C: int32}, cycles: 'cdiv(m * 9, 32)', pj_per_mac: 0.5}
      - {name: mac_os, expr: 'C[m,n] += A[m,k] * B[k,n]', dims: {m: 4, n: 4}, operands: {A: buf, B: buf, C: acc},
         dtypes: {A: int8, B: int8, C: int32}, cycles: k, pj_per_mac: 0.5}
edges:
  - {from: dram, to: buf, bytes_per_cycle: 8}
  - {from: buf, to: dram, bytes_per_cycle: 8}
  - {from: acc, to: buf, bytes_per_cycle: 64}
  - {from: buf, to: acc, bytes_per_cycle: 64}
"""
CASES = [(dict(C=1, K=2, H=7, W=1, R=3, S=1), "latency"), (dict(C=1, K=2, H=11, W=1, R=3, S=1, stride=2), "energy")]


def test_output_rows_pad_and_kernel_rows_do_not() -> None:
    layer = template_layer("conv2d", dict(C=3, K=2, H=9, W=9, R=3, stride=2))
    assert paddable(layer) == {"n", "k", "c", "p", "q"}  # r and s keep divisor tiles


@pytest.mark.parametrize("params, objective", CASES)
def test_cpsat_equals_exhaustive_with_padded_halo_tiles(params, objective) -> None:
    acg = parse_acg(load_yaml_text(OS4, "os4.yaml"))
    layer = template_layer("conv2d", params, "c")
    os = next(s for s in layer_spaces(layer, acg) if s.binding.capability == "mac_os")
    rows = os.options[os.dims.index("p")]
    assert any(5 % c[-1] for c in rows), "the space holds padded instructions along p"
    truth = exhaustive.solve(layer, acg, objective)
    found = cpsat.solve(layer, acg, objective)
    assert found.status == truth.status == "optimal"
    assert found.objective == truth.objective == evaluate(found.mapping, acg).objective(objective)
    assert dict(found.mapping.spatial)["p"] == 4  # 4 + 1 rows, not 1-row (or 5 = too many) instructions
    assert simulate(lower(found.mapping), acg, seed=3).matches_reference
