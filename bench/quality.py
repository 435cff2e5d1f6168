"""Mapping-quality benchmark (issue 14): per objective, CP-SAT solve times and proven gaps on the
unique layers of ResNet-50 on genesys and tpu_like; then, for awkward (prime) extents, the best
latency with divisor tiles only (before) and with padded tiles (after), each simulated.
Prints `name: value` lines.

    python bench/quality.py            # everything (about 10-20 minutes on 2 busy cores)
    python bench/quality.py --quick    # latency only, every 4th layer, two awkward layers
    python bench/quality.py --only awkward --acg tpu_like   # one part, one ACG
    python bench/quality.py --only times --simulate   # latency mappings simulated: simulated / roofline

Wall seconds count whatever else the machine runs; CPU seconds (of this process) and CP-SAT's
deterministic units do not, or much less: compare those across runs on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ortools.sat.python import cp_model  # noqa: E402

import solver.space as space  # noqa: E402
from mapper.mapping.cost import evaluate, roofline_cycles  # noqa: E402
from mapper.network.flow import layer_key  # noqa: E402
from mapper.program.lower import lower  # noqa: E402
from mapper.spec.acg import load_acg  # noqa: E402
from mapper.spec.workload import load_workload, template_layer  # noqa: E402
from sim.machine import simulate  # noqa: E402
from solver import NoMapping, cpsat  # noqa: E402

AWKWARD = [
    ("conv C=97 K=131 13x13 3x3", "conv2d", dict(C=97, K=131, H=13, W=13, R=3, pad=1)),
    ("gemm M=35 N=8457 K=4096", "gemm", dict(M=35, N=8457, K=4096)),
    ("resnet50 fc gemm M=1 N=1000 K=2048", "gemm", dict(M=1, N=1000, K=2048)),
    ("conv C=67 K=89 28x28 3x3", "conv2d", dict(C=67, K=89, H=28, W=28, R=3, pad=1)),
    ("gemm M=128 N=1000 K=100", "gemm", dict(M=128, N=1000, K=100)),
    ("depthwise C=97 28x28 3x3", "depthwise_conv2d", dict(C=97, H=28, W=28, R=3, pad=1)),
]

MAX_SIMULATED = 100_000  # instructions; larger mappings are predicted only (nan simulated)
DETERMINISTIC: list[float] = []
_solve = cp_model.CpSolver.Solve


def _counting_solve(self, *args, **kwargs):
    status = _solve(self, *args, **kwargs)
    DETERMINISTIC.append(self.deterministic_time)
    return status


cp_model.CpSolver.Solve = _counting_solve


def line(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def unique_layers(workload, step: int = 1):
    seen, out = set(), []
    for layer in workload.layers:
        if layer_key(layer) not in seen:
            seen.add(layer_key(layer))
            out.append(layer)
    return out[::step]


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def roofline(acg, tag: str, found: list, simulated: bool) -> None:
    """Geometric means of predicted (and, with `simulated`, simulated) cycles over the roofline bound,
    over the latency mappings (simulated: those of at most MAX_SIMULATED instructions)."""
    bounds = [float(roofline_cycles(s.mapping.layer, acg, acg.capability(s.mapping.binding.capability)))
              for s in found]
    line(f"{tag}: predicted / roofline cycles, geomean",
         f"{geomean([float(s.objective) / b for s, b in zip(found, bounds, strict=True)]):.2f}")
    if not simulated:
        return
    ratios = []
    for s, b in zip(found, bounds, strict=True):
        if evaluate(s.mapping, acg).instructions <= MAX_SIMULATED:
            r = simulate(lower(s.mapping), acg)
            assert r.matches_reference, s.mapping.layer.name
            ratios.append(r.cycles / b)
    line(f"{tag}: simulated / roofline cycles, geomean (layers of <= {MAX_SIMULATED:,} instructions)",
         f"{geomean(ratios):.2f} over {len(ratios)} of {len(found)} layers")


def solve_times(acg_name: str, objectives: list[str], step: int, simulated: bool = False) -> None:
    acg = load_acg(acg_name)
    layers = unique_layers(load_workload("resnet50"), step)
    for objective in objectives:
        wall, cpu, det, gaps, statuses, limited, found = [], [], [], [], [], 0, []
        for layer in layers:
            DETERMINISTIC.clear()
            used = time.process_time()
            try:
                s = cpsat.solve(layer, acg, objective)
            except NoMapping:
                continue
            cpu.append(time.process_time() - used)
            wall.append(s.seconds)
            found.append(s)
            det.append(sum(DETERMINISTIC))
            statuses.append(s.status)
            limited += bool(s.limit)
            if s.gap is not None:
                gaps.append(s.gap)
        tag = f"resnet50 on {acg_name}, {objective}"
        line(f"{tag}: layers (unique, with a capability)", len(wall))
        line(f"{tag}: solve seconds median / p95 / max",
             f"{statistics.median(wall):.2f} / {pct(wall, 0.95):.2f} / {max(wall):.2f}")
        line(f"{tag}: solve CPU seconds (this process: model building and CP-SAT) median / p95 / max",
             f"{statistics.median(cpu):.2f} / {pct(cpu, 0.95):.2f} / {max(cpu):.2f}")
        line(f"{tag}: CP-SAT deterministic units median / p95",
             f"{statistics.median(det):.3f} / {pct(det, 0.95):.3f}")
        line(f"{tag}: status", ", ".join(f"{k} {statuses.count(k)}" for k in sorted(set(statuses))))
        line(f"{tag}: stopped by a limit", limited)
        line(f"{tag}: optimality gap max / mean", f"{max(gaps):.2e} / {statistics.fmean(gaps):.2e}")
        if objective == "latency":
            roofline(acg, tag, found, simulated)


def before_after(acg_name: str, cases) -> None:
    acg = load_acg(acg_name)
    for label, op, params in cases:
        layer = template_layer(op, params, "awkward")
        figures = []
        for padded in (False, True):
            saved = space.paddable
            if not padded:
                space.paddable = lambda layer: frozenset()
            try:
                s = cpsat.solve(layer, acg)
            except NoMapping:
                figures.append(None)
                continue
            finally:
                space.paddable = saved
            simulated = float("nan")
            if evaluate(s.mapping, acg).instructions <= MAX_SIMULATED:
                r = simulate(lower(s.mapping), acg)
                assert r.matches_reference, label
                simulated = r.cycles
            figures.append((float(s.objective), simulated, s.seconds, s.status))
        if None in figures:
            line(f"{label} on {acg_name}", "no capability")
            continue
        (b, bs, bt, bst), (a, as_, at, ast) = figures
        line(f"{label} on {acg_name}: cycles before / after (predicted; simulated)",
             f"{b:,.0f} / {a:,.0f} ({bs:,.0f} / {as_:,.0f}), {b / a:.2f}x; solve {bt:.2f} s {bst} / {at:.2f} s {ast}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["times", "awkward"], help="run one part")
    ap.add_argument("--acg", action="append", help="only these ACGs (default genesys and tpu_like)")
    ap.add_argument("--simulate", action="store_true",
                    help="simulate the latency mappings too (simulated / roofline cycles)")
    args = ap.parse_args()
    start = time.perf_counter()
    objectives = ["latency"] if args.quick else ["latency", "energy", "edp"]
    acgs = args.acg or ["genesys", "tpu_like"]
    if args.only != "awkward":
        for acg_name in acgs:
            solve_times(acg_name, objectives, 4 if args.quick else 1, args.simulate)
    if args.only != "times":
        for acg_name in acgs:
            before_after(acg_name, AWKWARD[:2] if args.quick else AWKWARD)
    line("bench wall seconds", f"{time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()
