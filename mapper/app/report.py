"""Reports of an experiment: `report.md` (tables), `results.csv` (one row per case) and PNG plots.

Every figure comes from the result rows (`mapper.app.runner.experiment_rows`); a layer's *cycles* are the
simulated cycles when it was validated, else the predicted ones. Repetitions are summarised by their
median. Performance relative to a baseline is `baseline cycles / cycles` (above 100 % beats it),
averaged over layers with a geometric mean, as the Covenant paper reports "% of hand-tuned".
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from pathlib import Path

from mapper import __version__
from mapper.app.experiment import Experiment
from mapper.spec.files import save_figure, write_text

CSV_COLUMNS = ("acg", "settings", "workload", "layer", "count", "strategy", "objective", "repetition", "status",
               "capability", "macs", "predicted_cycles", "simulated_cycles", "roofline_cycles", "energy_pj",
               "predicted_energy_pj", "utilization", "solve_seconds", "optimality_gap", "time_limit", "valid",
               "error", "acg_digest", "layer_digest", "version", "key")


def cycles(row: dict) -> float | None:
    return row["simulated_cycles"] if row["simulated_cycles"] is not None else row["predicted_cycles"]


def metric(row: dict, name: str) -> float | None:
    return cycles(row) if name == "cycles" else row["energy_pj"]


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def per_layer(rows: list[dict], name: str) -> dict[tuple, dict]:
    """(acg, objective, strategy) -> {(workload, layer): (median metric over repetitions, count)}."""
    groups: dict[tuple, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    counts = {}
    for r in rows:
        value = metric(r, name)
        if value is not None and r["mapping"] is not None:
            groups[(r["acg"], r["objective"], r["strategy"])][(r["workload"], r["layer"])].append(value)
        counts[(r["workload"], r["layer"])] = r["count"]
    return {g: {lk: (statistics.median(v), counts[lk]) for lk, v in layers.items()} for g, layers in groups.items()}


# --------------------------------------------------------------------------------------------------
# Tables

def md_table(headers: list[str], body: list[list]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in body]
    return "\n".join(lines)


def _num(v, fmt="{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def summary_table(rows: list[dict]) -> list[list]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["acg"], r["objective"], r["strategy"])].append(r)
    out = []
    for (acg, objective, strategy), rs in groups.items():
        layers = {(r["workload"], r["layer"]) for r in rs}
        mapped = {(r["workload"], r["layer"]) for r in rs if r["mapping"] is not None}
        valid = {(r["workload"], r["layer"]) for r in rs if r["valid"]}
        values = per_layer(rs, "cycles").get((acg, objective, strategy), {})
        energies = per_layer(rs, "energy").get((acg, objective, strategy), {})
        total = sum(v * n for v, n in values.values()) if len(values) == len(layers) else None
        energy = sum(v * n for v, n in energies.values()) if len(energies) == len(layers) else None
        deltas = [abs(r["predicted_cycles"] - r["simulated_cycles"]) / r["simulated_cycles"] for r in rs
                  if r["predicted_cycles"] and r["simulated_cycles"]]
        out.append([acg, objective, strategy, f"{len(mapped)}/{len(layers)}", len(valid), _num(total),
                    _num(energy and energy / 1e6, "{:,.1f}"),
                    _num(geomean([r["utilization"] for r in rs if r["utilization"]]), "{:.1%}"),
                    _num(statistics.median(deltas) if deltas else None, "{:.1%}"),
                    _num(math.fsum(r["solve_seconds"] or 0 for r in rs), "{:.1f}")])
    return out


def baseline_tables(rows: list[dict], baseline: str, name: str) -> tuple[list[list], list[list]]:
    """Headline (geomean % of the baseline per ACG, objective, strategy) and the per-layer table."""
    values = per_layer(rows, name)
    headline, detail = [], []
    for (acg, objective, strategy), layers in values.items():
        if strategy == baseline:
            continue
        base = values.get((acg, objective, baseline), {})
        shared = [lk for lk in layers if lk in base]
        ratios = [base[lk][0] / layers[lk][0] for lk in shared if layers[lk][0] > 0]
        headline.append([acg, objective, strategy, f"{len(shared)}", _num(geomean(ratios), "{:.1%}"),
                         _num(min(ratios) if ratios else None, "{:.1%}"), _num(max(ratios) if ratios else None,
                                                                             "{:.1%}")])
        for lk in shared:
            detail.append([acg, objective, strategy, lk[1], _num(base[lk][0]), _num(layers[lk][0]),
                           _num(base[lk][0] / layers[lk][0], "{:.1%}")])
    return headline, detail


def sweep_table(rows: list[dict]) -> list[list]:
    """Per swept variant: whole-experiment totals and whether it is on the cycles/energy Pareto front."""
    points = sweep_points(rows)
    out = []
    for (objective, strategy), pts in points.items():
        front = pareto_front([(c, e) for _, c, e in pts])
        for label, c, e in pts:
            out.append([label, objective, strategy, _num(c), _num(e / 1e6, "{:,.1f}"),
                        "yes" if (c, e) in front else ""])
    return out


def sweep_points(rows: list[dict]) -> dict[tuple, list[tuple[str, float, float]]]:
    """(objective, strategy) -> [(variant, total cycles, total energy)] over variants with sweep settings
    and a result for every layer."""
    swept = {r["acg"] for r in rows if r["settings"]}
    cyc, energy = per_layer(rows, "cycles"), per_layer(rows, "energy")
    layers = {(r["workload"], r["layer"]) for r in rows}
    out: dict[tuple, list] = defaultdict(list)
    for (acg, objective, strategy), values in cyc.items():
        e = energy.get((acg, objective, strategy), {})
        if acg in swept and len(values) == len(layers) and len(e) == len(layers):
            out[(objective, strategy)].append((acg, sum(v * n for v, n in values.values()),
                                               sum(v * n for v, n in e.values())))
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both coordinates (lower is better), sorted.

    >>> pareto_front([(1, 5), (2, 2), (3, 3), (4, 1)])
    [(1, 5), (2, 2), (4, 1)]
    """
    front, best = [], math.inf
    for p in sorted(set(points)):
        if p[1] < best:
            front.append(p)
            best = p[1]
    return front


def detail_table(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        delta = None
        if r["predicted_cycles"] and r["simulated_cycles"]:
            delta = (r["predicted_cycles"] - r["simulated_cycles"]) / r["simulated_cycles"]
        error = (r["error"] or "")[:90]
        out.append([r["acg"], r["layer"] + (f" x{r['count']}" if r["count"] > 1 else ""), r["strategy"],
                    r["objective"], r["repetition"], r["status"], r["capability"] or "-",
                    _num(r["predicted_cycles"]), _num(r["simulated_cycles"]), _num(delta, "{:+.1%}"),
                    _num(r["roofline_cycles"]), _num(r["utilization"], "{:.1%}"),
                    _num(r["solve_seconds"], "{:.2f}"), {True: "yes", False: "NO", None: "-"}[r["valid"]], error])
    return out


def report_markdown(exp: Experiment, rows: list[dict], expected: int) -> str:
    parts = [f"# Experiment {exp.name}", ""]
    if exp.description:
        parts += [exp.description, ""]
    statuses = defaultdict(int)
    for r in rows:
        statuses[r["status"]] += 1
    parts += [f"{len(rows)} of {expected} cases have results ({', '.join(f'{n} {s}' for s, n in statuses.items())}); "
              f"covenant {__version__}, from `{exp.source}`. Cycles are simulated cycles where the mapping was "
              "validated on the simulator, else predicted ones.", ""]
    parts += ["## Summary", "", md_table(
        ["ACG", "objective", "strategy", "mapped", "validated", "total cycles", "energy (uJ)", "utilization (geomean)",
         "median \\|pred - sim\\|", "solve (s)"], summary_table(rows)), ""]
    if exp.report.baseline:
        headline, detail = baseline_tables(rows, exp.report.baseline, exp.report.metric)
        parts += [f"## Performance as % of {exp.report.baseline}", "",
                  f"{exp.report.baseline} {exp.report.metric} / strategy {exp.report.metric}, geometric mean over "
                  "the layers both have (above 100 % beats the baseline).", "",
                  md_table(["ACG", "objective", "strategy", "layers", "geomean", "min", "max"], headline), "",
                  md_table(["ACG", "objective", "strategy", "layer", exp.report.baseline, "strategy", "%"], detail), ""]
    sweep = sweep_table(rows)
    if sweep:
        parts += ["## Sweep", "", "Totals over all layers (weighted by repeat counts) per swept ACG variant.", "",
                  md_table(["variant", "objective", "strategy", "total cycles", "energy (uJ)", "Pareto"], sweep), ""]
    parts += ["## Layers", "", md_table(
        ["ACG", "layer", "strategy", "objective", "rep", "status", "capability", "predicted", "simulated", "Δ",
         "roofline", "util.", "solve (s)", "valid", "error"], detail_table(rows)), ""]
    return "\n".join(parts)


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "settings": ";".join(f"{k}={v}" for k, v in r["settings"].items())})
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# Plots

def pyplot():
    import matplotlib  # lazy: 0.3 s to import, and the Agg backend must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use
    return plt


def plot_utilization(rows: list[dict], path: Path) -> bool:
    plt = pyplot()
    acgs = list(dict.fromkeys(r["acg"] for r in rows))[:6]
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    if not rows:
        return False
    fig, axes = plt.subplots(len(acgs), 1, figsize=(max(8, 0.45 * len(layers) * len(strategies)), 3.2 * len(acgs)),
                             squeeze=False)
    width = 0.8 / len(strategies)
    for ax, acg in zip(axes[:, 0], acgs, strict=True):
        for i, s in enumerate(strategies):
            util = defaultdict(list)
            for r in rows:
                if r["acg"] == acg and r["strategy"] == s and r["utilization"] is not None:
                    util[r["layer"]].append(r["utilization"])
            xs = [j + i * width for j, layer in enumerate(layers)]
            ax.bar(xs, [100 * statistics.median(util[layer]) if util[layer] else 0 for layer in layers], width,
                   label=s)
        ax.set_title(acg)
        ax.set_ylabel("utilization (%)")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))], layers, rotation=60, ha="right", fontsize=7)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _scatter(rows: list[dict], path: Path, x: str, y, xlabel: str, ylabel: str, title: str) -> bool:
    pts = [(r[x], y(r), r["strategy"]) for r in rows if r[x] and y(r)]
    if not pts:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for s in dict.fromkeys(p[2] for p in pts):
        ax.scatter([p[0] for p in pts if p[2] == s], [p[1] for p in pts if p[2] == s], s=18, label=s, alpha=0.8)
    lo, hi = min(min(p[0], p[1]) for p in pts), max(max(p[0], p[1]) for p in pts)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def plot_pareto(rows: list[dict], path: Path) -> bool:
    points = sweep_points(rows)
    if not points:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for (objective, strategy), pts in points.items():
        ax.scatter([p[1] for p in pts], [p[2] / 1e6 for p in pts], s=20, label=f"{strategy} ({objective})")
        front = pareto_front([(c, e) for _, c, e in pts])
        ax.plot([c for c, _ in front], [e / 1e6 for _, e in front], lw=1)
        for label, c, e in pts:
            if (c, e) in front:
                ax.annotate(label.split("[", 1)[-1].rstrip("]"), (c, e / 1e6), fontsize=6)
    ax.set_xlabel("total cycles")
    ax.set_ylabel("total energy (uJ)")
    ax.set_title("cycles / energy per ACG variant (line: Pareto front)")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def write_report(exp: Experiment, rows: list[dict], out: Path, expected: int) -> list[Path]:
    """Write report.md, results.csv and the plots the experiment asks for; return the files written."""
    written = [out / "report.md", out / "results.csv"]
    write_text(written[0], report_markdown(exp, rows, expected))
    write_text(written[1], csv_text(rows))
    plots = {
        "utilization": lambda p: plot_utilization(rows, p),
        "roofline": lambda p: _scatter(rows, p, "roofline_cycles", cycles, "roofline bound (cycles)", "cycles",
                                       "cycles vs the roofline bound"),
        "predicted_vs_simulated": lambda p: _scatter(rows, p, "predicted_cycles", lambda r: r["simulated_cycles"],
                                                     "predicted cycles", "simulated cycles",
                                                     "cost model vs simulator"),
        "pareto": lambda p: plot_pareto(rows, p),
    }
    for name in exp.report.plots:
        if plots[name](out / f"{name}.png"):
            written.append(out / f"{name}.png")
    return written
