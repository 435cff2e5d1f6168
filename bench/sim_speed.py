"""Simulator speed on ResNet-50 / genesys with large-tile mappings.

For every layer that binds, the mapping is by default the greedy (grown) mapping of whichever of
the six best-utilising bindings issues the fewest instructions; with `--mapping cpsat` it is the one
the CP-SAT mapper returns (`covenant map`'s default: latency, `--time-limit` seconds per distinct
layer, seed 0). Prints `name: value` lines: per-layer ratio of simulator wall time (lower +
simulate) to the NumPy reference's wall time, their median, and the time to simulate the whole
network functionally. Mapping time is not measured.

    python bench/sim_speed.py [--acg genesys] [--workload resnet50] [--layers N]
                              [--mapping greedy|cpsat] [--time-limit S]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

# The project root first: bench/mapper.py would otherwise shadow the `mapper` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapper.mapping.binding import bind, utilization_bound  # noqa: E402
from mapper.mapping.mapping import greedy_mapping  # noqa: E402
from mapper.network.flow import layer_key  # noqa: E402
from mapper.program.lower import lower  # noqa: E402
from mapper.spec.acg import load_acg  # noqa: E402
from mapper.spec.workload import load_workload  # noqa: E402
from sim.machine import random_inputs, simulate  # noqa: E402
from sim.reference import evaluate  # noqa: E402


def large_tile_mapping(layer, acg):
    bindings = bind(layer, acg)
    bindings.sort(key=lambda b: -utilization_bound(b, layer, acg.capability(b.capability)))
    best = None
    for b in bindings[:6]:
        m = greedy_mapping(layer, b, acg)
        if m is None:
            continue
        count = math.prod(f for lv in m.loops for _, f in lv)
        if best is None or count < best[0]:
            best = (count, m)
    return best[1] if best else None


def cpsat_mapping(layer, acg, time_limit: float, cache: dict):
    """The CP-SAT mapper's latency-optimal mapping (solved once per distinct computation)."""
    from solver import NoMapping, solve

    key = layer_key(layer)
    if key not in cache:
        try:
            cache[key] = solve(layer, acg, "cpsat", "latency", time_limit, seed=0).mapping
        except NoMapping:
            cache[key] = None
    return cache[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acg", default="genesys")
    ap.add_argument("--workload", default="resnet50")
    ap.add_argument("--layers", type=int, default=0, help="only the first N layers (0: all)")
    ap.add_argument("--mapping", choices=["greedy", "cpsat"], default="greedy",
                    help="greedy grown mappings (default) or the CP-SAT mapper's")
    ap.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds per distinct layer")
    args = ap.parse_args()
    acg, wl = load_acg(args.acg), load_workload(args.workload)
    layers = wl.layers[: args.layers or None]
    ratios, sim_total, ref_total, skipped, instructions = [], 0.0, 0.0, [], 0
    start, solved = time.perf_counter(), {}
    for layer in layers:
        if args.mapping == "cpsat":
            m = cpsat_mapping(layer, acg, args.time_limit, solved)
        else:
            m = large_tile_mapping(layer, acg)
        if m is None:
            skipped.append(layer.name)
            continue
        inputs = random_inputs(layer, seed=0)
        t0 = time.perf_counter()
        ref = evaluate(layer.expr, layer.dims, inputs, layer.output.dtype)
        t1 = time.perf_counter()
        result = simulate(lower(m), acg, inputs=inputs)
        t2 = time.perf_counter()
        assert result.matches_reference and (result.output == ref).all(), layer.name
        ratios.append((t2 - t1) / (t1 - t0))
        sim_total += t2 - t1
        ref_total += t1 - t0
        instructions += result.instructions
        print(f"{layer.name}: {ratios[-1]:.2f}x  ({result.instructions} instructions, sim {t2 - t1:.3f} s, "
              f"reference {t1 - t0:.3f} s, {result.cycles:,.0f} cycles, util {100 * result.utilization:.1f} %)",
              flush=True)
    print(f"mapping: {args.mapping}")
    print(f"layers_simulated: {len(ratios)}")
    print(f"layers_without_binding: {len(skipped)} ({', '.join(skipped[:4])}{', ...' if len(skipped) > 4 else ''})")
    print(f"instructions_total: {instructions}")
    print(f"reference_seconds_total: {ref_total:.2f}")
    print(f"simulate_seconds_total: {sim_total:.2f}")
    print(f"wall_seconds_including_mapping: {time.perf_counter() - start:.2f}")
    print(f"median_sim_to_reference_ratio: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
