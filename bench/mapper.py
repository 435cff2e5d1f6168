"""Mapper benchmark: optimality, solve time, prediction accuracy, distance to the roofline, and the
baselines. Prints `name: value` lines (the figures of issue 4).

    python bench/mapper.py            # everything (several minutes on 2 cores)
    python bench/mapper.py --quick    # fewer small layers, one workload
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapper.mapping.cost import roofline_cycles  # noqa: E402
from mapper.network.flow import layer_key  # noqa: E402
from mapper.program.lower import lower  # noqa: E402
from mapper.spec.acg import load_acg  # noqa: E402
from mapper.spec.ops import TemplateError  # noqa: E402
from mapper.spec.workload import load_workload, template_layer  # noqa: E402
from sim.machine import simulate  # noqa: E402
from solver import NoMapping, cpsat, exhaustive, random_search  # noqa: E402
from solver.space import layer_spaces  # noqa: E402


def line(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def small_layers(n: int, seed: int, acg) -> list:
    """Random small layers (fixed seed) whose spaces exhaustive search can enumerate."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        kind = rng.choice(["gemm", "conv2d", "conv2d_s2", "max_pool2d", "add"])
        if kind == "gemm":
            op = "gemm"
            params = dict(M=rng.choice([1, 2, 4, 6, 8]), N=rng.choice([2, 4, 8]), K=rng.choice([2, 4, 8, 12]))
        elif kind.startswith("conv2d"):
            op = "conv2d"
            params = dict(C=rng.choice([1, 2, 4]), K=rng.choice([2, 4]), H=rng.choice([2, 4]), W=rng.choice([2, 4]),
                          R=3, pad=1, stride=2 if kind.endswith("s2") else 1)
        elif kind == "max_pool2d":
            op, params = "max_pool2d", dict(C=rng.choice([1, 2, 4]), H=4, W=4, R=2, stride=2, dtype="int32")
        else:
            op, params = "add", dict(shape=[rng.choice([1, 2, 3]), rng.choice([4, 8, 12])], dtype="int32")
        try:
            layer = template_layer(op, params, f"{op}{len(out)}")
        except TemplateError:
            continue
        spaces = layer_spaces(layer, acg)
        if spaces and sum(s.size() for s in spaces) <= 60_000:
            out.append(layer)
    return out


def geo(xs: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(x) for x in xs)) if xs else float("nan")


def unique_layers(workload):
    seen, out = set(), []
    for layer in workload.layers:
        if layer_key(layer) not in seen:
            seen.add(layer_key(layer))
            out.append(layer)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    against_exhaustive(args.quick)
    on_workloads(args.quick)
    baselines(args.quick)
    whole_resnet18()


def against_exhaustive(quick: bool) -> None:
    """1. CP-SAT vs exhaustive on small random layers."""
    tiny = load_acg("tiny")
    layers = small_layers(10 if quick else 30, seed=7, acg=tiny)
    equal = 0
    for layer in layers:
        a = cpsat.solve(layer, tiny)
        b = exhaustive.solve(layer, tiny)
        equal += a.objective == b.objective
    line("small layers where the CP-SAT optimum equals the exhaustive optimum", f"{equal}/{len(layers)}")


def on_workloads(quick: bool) -> None:
    """2. Solve time, optimality, prediction accuracy and the roofline on the real workloads."""
    workloads = ["resnet50"] if quick else ["resnet50", "bert_base", "covenant14"]
    times, gaps, deltas, ratios = [], [], [], []
    optimal = total = 0
    worst = (0.0, "")
    for acg_name in ("genesys", "tpu_like"):
        acg = load_acg(acg_name)
        for wl_name in workloads:
            for layer in unique_layers(load_workload(wl_name)):
                try:
                    s = cpsat.solve(layer, acg, time_limit=30)
                except NoMapping:
                    continue
                if s.mapping is None:
                    continue
                total += 1
                optimal += s.status == "optimal"
                times.append(s.seconds)
                gaps.append(s.gap or 0.0)
                r = simulate(lower(s.mapping), acg)
                assert r.matches_reference, layer.name
                deltas.append(abs(float(s.objective) - r.cycles) / r.cycles)
                worst = max(worst, (deltas[-1], f"{layer.name} on {acg_name}"))
                cap = acg.capability(s.mapping.binding.capability)
                ratios.append(r.cycles / float(roofline_cycles(layer, acg, cap)))
    line("layers solved (unique, genesys + tpu_like)", total)
    line("solve seconds median", f"{statistics.median(times):.3f}")
    line("solve seconds p95", f"{pct(times, 0.95):.3f}")
    line("solve seconds max", f"{max(times):.3f}")
    line("proven optimal share", f"{optimal / total:.3f}")
    line("mean optimality gap", f"{statistics.fmean(gaps):.4f}")
    line("predicted vs simulated cycles median |delta|", f"{statistics.median(deltas):.4f}")
    line("predicted vs simulated cycles max |delta|", f"{max(deltas):.4f} ({worst[1]})")
    line("layers with |delta| > 2 %", sum(d > 0.02 for d in deltas))
    line("simulated cycles / roofline geomean", f"{geo(ratios):.3f}")


def baselines(quick: bool) -> None:
    """3. Baselines at equal wall time: random search and (time-limited) exhaustive get CP-SAT's time."""
    genesys = load_acg("genesys")
    sample = unique_layers(load_workload("resnet50"))[:: 2 if not quick else 6]
    vs_random, vs_exhaustive = [], []
    for layer in sample:
        try:
            s = cpsat.solve(layer, genesys)
        except NoMapping:
            continue
        budget = max(s.seconds, 0.05)
        rnd = random_search.solve(layer, genesys, time_limit=budget, seed=0)
        exh = exhaustive.solve(layer, genesys, time_limit=budget, max_points=10**18)
        if rnd.objective is not None:
            vs_random.append(float(rnd.objective / s.objective))
        if exh.objective is not None:
            vs_exhaustive.append(float(exh.objective / s.objective))
    line("random search / cpsat cycles at equal time, geomean", f"{geo(vs_random):.2f} "
         f"({len(vs_random)}/{len(sample)} layers found a legal mapping)")
    line("exhaustive (time-limited) / cpsat cycles at equal time, geomean", f"{geo(vs_exhaustive):.2f} "
         f"({len(vs_exhaustive)}/{len(sample)} layers found a legal mapping)")


def whole_resnet18() -> None:
    """4. Whole ResNet-18 on tpu_like."""
    tpu = load_acg("tpu_like")
    start = time.perf_counter()
    cycles = solve_time = 0.0
    done: dict = {}
    for layer in load_workload("resnet18").layers:
        key = layer_key(layer)
        if key not in done:
            try:
                s = cpsat.solve(layer, tpu)
            except NoMapping:
                done[key] = None
                continue
            solve_time += s.seconds
            done[key] = simulate(lower(s.mapping), tpu).cycles if s.mapping else None
        if done[key] is not None:
            cycles += done[key] * layer.count
    mapped = sum(v is not None for v in done.values())
    line("resnet18 on tpu_like: layers with a capability (unique)", f"{mapped}/{len(done)}")
    line("resnet18 on tpu_like: total simulated cycles", f"{cycles:.4g}")
    line("resnet18 on tpu_like: total solve seconds", f"{solve_time:.1f}")
    line("bench wall seconds", f"{time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()
