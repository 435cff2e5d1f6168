"""Search strategies against the CP-SAT optimum (issue 16): ResNet-50 and BERT layers on genesys and
tpu_like. Prints `name: value` lines and writes convergence plots (PNG) into --out.

Part 1, the cost model as oracle (every strategy's figure is `cost.evaluate`): at equal evaluation
budgets (--evaluations) and at equal wall time (--seconds), the best predicted cycles as a ratio to the
CP-SAT optimum, and the evaluations needed to come within 5 % of it.

Part 2, measurements as oracle (a measurement lowers a candidate and runs the simulator): at an equal
budget of --measurements, the best simulated cycles as a ratio to the simulated cycles of CP-SAT's
mapping, and the measurements needed to come within 5 %. Measuring strategies skip programs above
--max-instructions (4,000: too costly to simulate), so part 2 runs on genesys only, where the optima
are small, for ResNet-50 fc and BERT attn.scores (the others take seconds per measurement). Anneal and
genetic get step budgets large enough that the measurements run out first.

    python bench/strategies.py                     # about 10 minutes on 2 busy cores
    python bench/strategies.py --quick             # one layer per workload, small budgets
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapper.app.report import pyplot  # noqa: E402
from mapper.program.lower import lower  # noqa: E402
from mapper.spec.acg import load_acg  # noqa: E402
from mapper.spec.files import save_figure  # noqa: E402
from mapper.spec.workload import load_workload  # noqa: E402
from sim.machine import simulate  # noqa: E402
from solver import cpsat, solve  # noqa: E402

LAYERS = [("resnet50", "layer2.0.conv2"), ("resnet50", "layer4.0.conv2"), ("resnet50", "fc"),
          ("bert_base", "attn.query"), ("bert_base", "attn.scores")]
SEARCHES = ("random", "anneal", "genetic")


def budget_options(strategy: str, n: int, measure: bool = False, cap: int = 20_000) -> dict:
    """Options that give `strategy` a budget of n scored candidates (evaluations, or measurements of
    programs up to `cap` instructions)."""
    extra = {"measure": True, "measurements": n, "max_instructions": cap} if measure else {}
    if strategy == "random":
        return {"samples": n}
    if strategy == "anneal":
        return {"steps": n if not measure else 50 * n, "greedy_start": False, **extra}
    if strategy == "genetic":
        return {"population": 16 if not measure else 8, "generations": max(n // 8, 1) if not measure else 50 * n,
                "greedy_start": False, **extra}
    return {"measurements": n, "greedy_start": False, "max_instructions": cap}


def within(trace, optimum: float, kind: str) -> int | None:
    """The work (evaluations or measurements) after which the best came within 5 % of `optimum`."""
    for p in trace:
        if p.best <= 1.05 * optimum:
            return getattr(p, kind)
    return None


def show(x) -> str:
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def part_model(layers, acgs, evaluations: int, seconds: float, out: Path) -> None:
    curves = {}
    for acg_name in acgs:
        acg = load_acg(acg_name)
        ratios = {s: [] for s in SEARCHES}
        timed = {s: [] for s in SEARCHES}
        for wl, name in layers:
            layer = load_workload(wl).layer(name)
            best = float(cpsat.solve(layer, acg, time_limit=30).objective)
            print(f"model/{acg_name}/{name}/cpsat_cycles: {best:.0f}", flush=True)
            for s in SEARCHES:
                r = solve(layer, acg, s, time_limit=None if s != "random" else 600,
                          options=budget_options(s, evaluations))
                ratio = float(r.objective) / best if r.objective else None
                ratios[s].append(ratio)
                curves[(acg_name, name, s)] = [(p.evaluations, p.best / best) for p in r.trace]
                big = {"random": {"samples": 0}, "anneal": {"steps": 10**7, "greedy_start": False},
                       "genetic": {"generations": 10**6, "greedy_start": False}}[s]
                t = solve(layer, acg, s, time_limit=seconds, options=big)
                timed[s].append(float(t.objective) / best if t.objective else None)
                print(f"model/{acg_name}/{name}/{s}: ratio_at_{evaluations}_evaluations {show(ratio)} "
                      f"evaluations_to_5pct {show(within(r.trace, best, 'evaluations'))} "
                      f"ratio_at_{seconds:g}s {show(timed[s][-1])} ({t.evaluated} evaluations)", flush=True)
        for s in SEARCHES:
            ok = [x for x in ratios[s] if x]
            tk = [x for x in timed[s] if x]
            print(f"model/{acg_name}/{s}/geomean_ratio_at_{evaluations}_evaluations: "
                  f"{statistics.geometric_mean(ok):.3f}" if ok else "-")
            print(f"model/{acg_name}/{s}/geomean_ratio_at_{seconds:g}s: "
                  f"{statistics.geometric_mean(tk):.3f}" if tk else "-", flush=True)
    plot(curves, "evaluations (cost model)", out / "convergence_model.png")


def part_measured(layers, budget: int, cap: int, out: Path) -> None:
    acg = load_acg("genesys")
    curves, ratios, reach = {}, {s: [] for s in (*SEARCHES[1:], "learned")}, {}
    for wl, name in layers:
        layer = load_workload(wl).layer(name)
        ref = cpsat.solve(layer, acg, time_limit=30)
        sim = float(simulate(lower(ref.mapping), acg).cycles)
        print(f"measured/genesys/{name}/cpsat_simulated_cycles: {sim:.0f}", flush=True)
        for s in ratios:
            r = solve(layer, acg, s, time_limit=None, options=budget_options(s, budget, True, cap))
            best = r.trace[-1].best if r.trace else None
            ratio = best / sim if best else None
            ratios[s].append(ratio)
            reach[(name, s)] = within(r.trace, sim, "measurements")
            curves[("genesys", name, s)] = [(p.measurements, p.best / sim) for p in r.trace]
            print(f"measured/genesys/{name}/{s}: ratio_at_{budget}_measurements {show(ratio)} "
                  f"measurements_to_5pct {show(reach[(name, s)])} measurements {r.measurements} "
                  f"evaluations {r.evaluated} seconds {r.seconds:.1f}", flush=True)
    for s, values in ratios.items():
        ok = [x for x in values if x]
        print(f"measured/genesys/{s}/geomean_ratio_at_{budget}_measurements: "
              f"{statistics.geometric_mean(ok):.3f}" if ok else "-", flush=True)
    plot(curves, "simulator measurements", out / "convergence_measured.png")


def plot(curves: dict, xlabel: str, path: Path) -> None:
    """Best so far / optimum against work, one panel per (ACG, layer)."""
    plt = pyplot()
    panels = list(dict.fromkeys((a, n) for a, n, _ in curves))
    cols = min(len(panels), 5)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, (acg, name) in zip(axes.flat, panels, strict=False):
        for (a, n, s), pts in curves.items():
            if (a, n) == (acg, name) and pts:
                xs = [x for x, _ in pts] + [max(x for x, _ in pts)]
                ax.step(xs, [y for _, y in pts] + [pts[-1][1]], where="post", label=s)
        ax.axhline(1.05, color="grey", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{name} ({acg})", fontsize=8)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel("best / CP-SAT", fontsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--evaluations", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--measurements", type=int, default=32)
    ap.add_argument("--max-instructions", type=int, default=4000, help="part 2: larger programs are not measured")
    ap.add_argument("--only", choices=("model", "measured"))
    ap.add_argument("--out", type=Path, default=Path("results/strategies"))
    args = ap.parse_args()
    layers = [LAYERS[2], LAYERS[4]] if args.quick else LAYERS
    measured = [LAYERS[2], LAYERS[4]]  # their simulations take well under a second
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only != "measured":
        part_model(layers, ("genesys", "tpu_like"), args.evaluations, args.seconds, args.out)
    if args.only != "model":
        part_measured(measured, args.measurements, args.max_instructions, args.out)


if __name__ == "__main__":
    main()
