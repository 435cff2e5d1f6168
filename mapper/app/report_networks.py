"""Reports of whole-network experiments (`level: networks`): end-to-end latency, energy and cost
efficiency per design (ACG variant) and model, `results.csv` and two plots.

Figures per row (a network compiled and simulated end to end, `mapper.app.experiment_networks`):
end-to-end time = staging in + compute + return (serial phases of a cold request, see
`mapper.program.staging`), converted with the ACG's clock; energy = the three phases' (dynamic and
static). Cost efficiency: **inferences per joule** (1 / energy per request: throughput per watt of a
device serving requests back to back) and, where the experiment gives prices, **inferences per
second per $1,000** of hardware (1 / (latency x price)).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mapper import __version__
from mapper.app.experiment import Experiment
from mapper.app.report import md_table, pyplot, write_report
from mapper.spec.files import save_figure, write_text

CSV_COLUMNS = ("acg", "workload", "strategy", "objective", "repetition", "status", "valid", "macs",
               "staging_in_cycles", "simulated_cycles", "predicted_cycles", "staging_out_cycles", "end_to_end_cycles",
               "clock_ghz", "end_to_end_ms", "prefetch_ms", "staging_ms", "compute_ms", "return_ms", "staging_bytes",
               "staging_energy_pj", "energy_pj", "end_to_end_energy_pj", "power_w", "average_power_w",
               "inferences_per_joule", "inferences_per_second_per_kusd", "solve_seconds", "wall_seconds", "error",
               "acg_digest", "version", "key")


def write_experiment_report(exp: Experiment, rows: list[dict], out: Path, expected: int) -> list[Path]:
    """The report an experiment's level calls for (`mapper.app.report.write_report` for layers)."""
    if exp.level == "networks":
        return write_network_report(exp, rows, out, expected)
    return write_report(exp, rows, out, expected)


def figures(row: dict, prices: dict[str, float]) -> dict:
    """A network row's derived figures (None where the row has no end-to-end result)."""
    e2e, clock = row.get("end_to_end_cycles"), row.get("clock_ghz") or 1.0
    energy = row.get("end_to_end_energy_pj")
    if e2e is None or energy is None:
        return {}

    def ms(cycles: float | None) -> float | None:
        return None if cycles is None else cycles / clock / 1e6
    compute = row["simulated_cycles"] if row["simulated_cycles"] is not None else row["predicted_cycles"]
    seconds = e2e / clock / 1e9
    price = prices.get(row["acg"])
    return {"end_to_end_ms": ms(e2e), "prefetch_ms": ms(row.get("end_to_end_prefetch_cycles")),
            "staging_ms": ms(row["staging_in_cycles"]), "compute_ms": ms(compute),
            "return_ms": ms(row["staging_out_cycles"]), "end_to_end_mj": energy / 1e9,
            "staging_mj": (row["staging_energy_pj"] or 0.0) / 1e9, "average_power_w": energy * 1e-12 / seconds,
            "inferences_per_joule": 1e12 / energy,
            "inferences_per_second_per_kusd": None if price is None else 1000 / (seconds * price)}


def _f(v, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def network_table(rows: list[dict], prices: dict[str, float]) -> list[list]:
    base = rows[0]["acg"] if rows else None
    first = {r["workload"]: figures(r, prices) for r in rows if r["acg"] == base}
    out = []
    for r in rows:
        f, b = figures(r, prices), first.get(r["workload"], {})
        speedup = b["end_to_end_ms"] / f["end_to_end_ms"] if f and b else None
        out.append([r["acg"], r["workload"], {True: "yes", False: "NO", None: "-"}[r["valid"]],
                    _f(f.get("end_to_end_ms"), "{:,.3f}"), _f(f.get("prefetch_ms"), "{:,.3f}"),
                    _f(f.get("staging_ms"), "{:,.3f}"),
                    _f(f.get("compute_ms"), "{:,.3f}"), _f(f.get("return_ms"), "{:,.3f}"),
                    _f(f.get("end_to_end_mj"), "{:,.2f}"), _f(f.get("staging_mj"), "{:,.2f}"),
                    _f(f.get("average_power_w"), "{:,.1f}"), _f(f.get("inferences_per_joule"), "{:,.2f}"),
                    _f(f.get("inferences_per_second_per_kusd"), "{:,.2f}"), _f(speedup, "{:.2f}x")])
    return out


def network_markdown(exp: Experiment, rows: list[dict], expected: int) -> str:
    prices = dict(exp.report.prices_usd)
    base = rows[0]["acg"] if rows else "-"
    parts = [f"# Experiment {exp.name}", ""]
    if exp.description:
        parts += [exp.description, ""]
    valid = sum(r["valid"] is True for r in rows)
    parts += [f"{len(rows)} of {expected} networks have results, {valid} validated end to end (every step and "
              f"the outputs returned equal the NumPy reference bit for bit); covenant {__version__}, from "
              f"`{exp.source}`.", "",
              "A request is served cold, in three phases one after the other: **staging** (the input and every "
              "weight from where they start to the memory the layers read, along the ACG's staging route), "
              "**compute** (the network program, simulated) and **return** (the outputs back). Times and energies "
              "are the simulator's (static power x time included). Cost efficiency: inferences per joule "
              "(= requests per second per watt) and inferences per second per $1,000 of hardware "
              f"({', '.join(f'{k}: ${v:,.0f}' for k, v in prices.items()) or 'no prices given'}). "
              f"Speed-up: {base}'s end-to-end time / this one's. *With prefetch*: the same simulated runs "
              "composed with staging overlapped (each step starts once its weights have landed; the two phases' "
              "sharing of the device memory's port is not simulated, so this is a lower bound; energy as "
              "served serially).", ""]
    parts += [md_table(["design", "model", "valid", "end to end (ms)", "with prefetch (ms)", "staging (ms)",
                        "compute (ms)", "return (ms)",
                        "energy (mJ)", "staging energy (mJ)", "avg power (W)", "inferences/J", "inf/s per $1k",
                        "speed-up"], network_table(rows, prices)), ""]
    failed = [r for r in rows if r["valid"] is not True]
    if failed:
        parts += ["## Not validated", ""] + [f"- {r['workload']} on {r['acg']}: {r['error'] or r['status']}"
                                             for r in failed] + [""]
    return "\n".join(parts)


def network_csv(rows: list[dict], prices: dict[str, float]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, **figures(r, prices)})
    return buf.getvalue()


def plot_phases(rows: list[dict], path: Path, prices: dict[str, float], energy: bool) -> bool:
    """One panel per model, one stacked bar per design: the phases' time (or staging vs the rest's energy)."""
    models = list(dict.fromkeys(r["workload"] for r in rows))
    designs = list(dict.fromkeys(r["acg"] for r in rows))
    data = {(r["acg"], r["workload"]): figures(r, prices) for r in rows}
    if not any(data.values()):
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models) + 1, 4), squeeze=False)
    parts = (("staging_mj", "staging"), (None, "compute + return")) if energy else \
        (("staging_ms", "staging"), ("compute_ms", "compute"), ("return_ms", "return"))
    for ax, model in zip(axes[0], models, strict=True):
        for i, design in enumerate(designs):
            f = data.get((design, model)) or {}
            bottom = 0.0
            for j, (key, label) in enumerate(parts):
                value = (f.get(key) or 0.0) if key else (f.get("end_to_end_mj", 0.0) - f.get("staging_mj", 0.0))
                ax.bar(i, value, 0.6, bottom=bottom, color=f"C{j}", label=label if i == 0 else None)
                bottom += value
        ax.set_xticks(range(len(designs)), designs, rotation=20, ha="right", fontsize=8)
        ax.set_title(model, fontsize=9)
        ax.set_ylabel("energy per request (mJ)" if energy else "end-to-end latency (ms)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def write_network_report(exp: Experiment, rows: list[dict], out: Path, expected: int) -> list[Path]:
    """Write report.md, results.csv and the plots of a `level: networks` experiment."""
    prices = dict(exp.report.prices_usd)
    written = [out / "report.md", out / "results.csv"]
    write_text(written[0], network_markdown(exp, rows, expected))
    write_text(written[1], network_csv(rows, prices))
    for name in exp.report.plots:
        if plot_phases(rows, out / f"{name}.png", prices, energy=name == "energy"):
            written.append(out / f"{name}.png")
    return written
