"""Layer fusion and core count against layer by layer: per network and ACG, cycles, energy and
off-chip traffic of `covenant compile --fuse none --cores 1` (layer by layer on one core) and of the
solver's choice (`--fuse auto`, as many cores as pay), the speed-up and the traffic reduction, and
(with --validate) whether both end-to-end simulations equal the reference bit for bit.

    python bench/fusion.py                                  # ResNet-18 and the ONNX CNN, predicted
    python bench/fusion.py --validate --workload resnet18 --acg genesys
    python bench/fusion.py --workload resnet18 resnet50 mobilenet_v2 --acg genesys tpu_like

With --search, what the fusion search costs instead (`mapper.network.fusion`, issue 24): per network
and ACG, the search as `compile` runs it ('pruned': floors, the DP's bound, reservations reused,
solves for the objective only, the chosen steps solved in full) against every candidate costed in
full ('full': no floors, no reuse, every solve with its tie-break: the search before its bounds, the
DP's incumbent bound aside), each compiling without simulation: wall and CPU seconds of the compile,
of the layer mapping, of the fusion search and of the final mapping, the solves of the last two
(the search's and the final mapping's), the candidate groups its bounds left out
unsolved, the steps answered by a solve without reservations, and the objective (which must agree).

    python bench/fusion.py --search --workload resnet18 tiny_net --acg genesys tpu_like

Published anchors (their own models, not comparable one to one): DLFusion reports 3.6x-7.9x over no
optimisation on Cambricon-like hardware (fusion and core count jointly); Stream reports 1.64x lower
latency, 1.44x lower energy and 2.36x lower EDP than its own layer-by-layer schedule for ResNet-18 on
a 4-core TPU-like accelerator.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project first: bench/mapper.py would shadow it

import mapper.network.compile as compile_module  # noqa: E402
from mapper.importers.model import load_model  # noqa: E402
from mapper.network.compile import CompileOptions, compile_network  # noqa: E402
from mapper.network.step_costs import StepCosts  # noqa: E402
from mapper.spec.acg import load_acg  # noqa: E402


def run(workload: str, acg_name: str, fuse: str, cores: int, validate: bool, time_limit: float) -> dict:
    start = time.perf_counter()
    result = compile_network(load_model(workload), load_acg(acg_name),
                             CompileOptions(time_limit=time_limit, validate=validate, fuse=fuse, cores=cores))
    tot = result.totals()
    cycles = tot.simulated_cycles if validate and tot.simulated_cycles else tot.predicted_cycles
    groups = [g for g in result.fusion.groups if g.homes] if result.fusion else []
    return {"cycles": cycles, "energy": tot.energy_pj, "dram": tot.dram_bytes, "valid": result.valid,
            "groups": tot.fusion.groups if tot.fusion else None,
            "onchip": tot.fusion.onchip_values if tot.fusion else 0, "split": tot.split_steps,
            "depth": sum(g.shared > 0 for g in groups), "parallel": sum(g.cores > 1 for g in groups),
            "seconds": time.perf_counter() - start}


class FullCosts(StepCosts):
    """The fusion search with nothing left out: no floors (every variant costed until its steps' costs
    reach its bound), every step solved in full, reservations solved as they are."""

    def floor(self, layer) -> float:
        return 0.0

    def probe(self, layer):
        return self.solve(layer)


def search(workload: str, acg_name: str, full: bool, time_limit: float) -> dict:
    """One compile without simulation, the search pruned (as shipped) or full; its figures."""
    compile_module.StepCosts = FullCosts if full else StepCosts
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        result = compile_network(load_model(workload), load_acg(acg_name),
                                 CompileOptions(time_limit=time_limit, validate=False))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        compile_module.StepCosts = StepCosts
    p, tot = result.phases, result.totals()
    return {"wall": wall, "cpu": cpu, "layers": p.layer_mapping, "fusion": p.fusion_search, "final": p.final_mapping,
            "solves": p.fusion_solves + p.final_solves, "candidates": result.fusion.search.candidates,
            "skipped": p.fusion_skipped, "reused": p.fusion_reused, "objective": result.fusion.cost,
            "cycles": tot.predicted_cycles, "energy": tot.energy_pj}


def search_table(workloads: list[str], acgs: list[str], full: bool, time_limit: float) -> None:
    print(f"{'network':<12} {'acg':<10} {'search':<7} {'wall s':>7} {'cpu s':>7} {'layers s':>8} {'fusion s':>8} "
          f"{'final s':>7} {'solves':>6} {'skipped':>11} {'reused':>6} {'objective':>14} {'energy uJ':>10}")
    for workload in workloads:
        for acg in acgs:
            for mode in (("full", "pruned") if full else ("pruned",)):
                r = search(workload, acg, mode == "full", time_limit)
                print(f"{workload:<12} {acg:<10} {mode:<7} {r['wall']:>7.1f} {r['cpu']:>7.1f} {r['layers']:>8.1f} "
                      f"{r['fusion']:>8.1f} {r['final']:>7.1f} {r['solves']:>6} {r['skipped']:>4} of "
                      f"{r['candidates']:>4} {r['reused']:>6} {r['objective']:>14,.3f} {r['energy'] / 1e6:>10.1f}",
                      flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", nargs="+", default=["resnet18", "tiny_cnn"])
    ap.add_argument("--acg", nargs="+", default=["genesys", "tpu_like"])
    ap.add_argument("--validate", action="store_true", help="simulate both programs end to end (minutes per network)")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--search", action="store_true", help="what the fusion search costs, pruned and full")
    ap.add_argument("--no-full", action="store_true", help="with --search: the pruned search only")
    args = ap.parse_args()
    if args.search:
        search_table(args.workload, args.acg, not args.no_full, args.time_limit)
        return
    kind = "simulated" if args.validate else "predicted"
    print("baseline: layer by layer on one core (--fuse none --cores 1); 'cores' rows: layer by layer on as many\n"
          "cores as pay (--fuse none); 'fused' rows: the solver's choice (--fuse auto, as many cores as pay);\n"
          "halo: groups run depth-first in bands that share rows; multi: groups whose bands run at once on cores")
    print(f"{'network':<16} {'acg':<14} {'against':<7} {kind + ' cycles':>24} {'speed-up':>8} {'DRAM MB':>17} "
          f"{'traffic':>8} {'energy uJ':>19} {'groups':>6} {'halo':>4} {'multi':>5} {'split':>5} {'valid':>11} "
          f"{'compile s':>9}")
    for workload in args.workload:
        for acg in args.acg:
            a = run(workload, acg, "none", 1, args.validate, args.time_limit)
            rows = [("fused", run(workload, acg, "auto", 0, args.validate, args.time_limit))]
            if load_acg(acg).cores > 1:
                rows.insert(0, ("cores", run(workload, acg, "none", 0, args.validate, args.time_limit)))
            for label, b in rows:
                speedup, saved = a["cycles"] / b["cycles"], 1 - b["dram"] / a["dram"]
                print(f"{workload:<16} {acg:<14} {label:<7} {a['cycles']:>11,.0f} {b['cycles']:>12,.0f} "
                      f"{speedup:>7.2f}x {a['dram'] / 1e6:>8.2f} {b['dram'] / 1e6:>8.2f} {saved:>7.1%} "
                      f"{a['energy'] / 1e6:>9.1f} {b['energy'] / 1e6:>9.1f} {b['groups'] or 0:>6} {b['depth']:>4} "
                      f"{b['parallel']:>5} {b['split']:>5} "
                      f"{str(a['valid']):>5} {str(b['valid']):>5} {b['seconds']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
