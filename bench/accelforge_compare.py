"""covenant beside AccelForge on AccelForge's own examples (issue 27), unfused: per architecture,
workload and Einsum, AccelForge's latency and energy from its own model and mapper, and covenant's
predicted (and simulated, where the simulator's size limits allow) on the same architecture and
workload imported (`covenant import accelforge`), with both solve times.

    python bench/accelforge_compare.py [--arch tpu_v4i ...] [--workload three_matmuls ...]
        [--figures bench/accelforge_figures] [--af-python /work/af-venv/bin/python]
        [--time-limit S] [--no-validate] [--json FILE]

AccelForge's figures are `bench/accelforge_baseline.py`'s documents (`--figures DIR`, one
ARCH@WORKLOAD.json per pair: run that bench first; it takes minutes per pair). The architecture is
evaluated by AccelForge's loader for the pair's workload (its sizes and keep rules may name the
Einsum's tensors), through `bench/accelforge_worker.py spec`, and imported as an ACG; the workload is
imported from the same document. Both mappers minimise latency; covenant breaks latency ties by
energy, the baseline asks AccelForge for its latency-energy Pareto set and takes the fastest, then
the most frugal, mapping. Latency is compared in seconds (covenant's cycles at the imported clock,
the MAC's throughput), energy in joules. Prints one `name: value` line per figure and a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/mapper.py would shadow `mapper`

from bench.accelforge_baseline import ARCHES, EXAMPLES, WORKLOADS  # noqa: E402
from mapper.importers.accelforge import evaluate  # noqa: E402
from mapper.importers.accelforge_arch import accelforge_to_acg  # noqa: E402
from mapper.importers.accelforge_workload import einsums_to_workload  # noqa: E402
from mapper.network.flow import Options, map_layers  # noqa: E402
from mapper.spec.acg import parse_acg  # noqa: E402
from mapper.spec.loader import Field  # noqa: E402
from mapper.spec.workload import parse_workload  # noqa: E402


def imported(arch: str, workload: str, python: str):
    """The pair's ACG and workload, from one evaluation by AccelForge's loader."""
    path, variables = WORKLOADS[workload]
    sets = [f"{k}={json.dumps(v)}" for k, v in variables.items()]
    doc = evaluate(EXAMPLES / "arches" / f"{arch}.yaml", EXAMPLES / "workloads" / path, sets, python)
    acg = parse_acg(Field(f"{arch}.yaml", (), accelforge_to_acg(doc), 0))
    wl, _ = einsums_to_workload(doc, workload)
    return acg, parse_workload(Field(workload, (), wl, 0))


def compare(arch: str, workload: str, args) -> list[dict]:
    """One row per Einsum of the pair: AccelForge's figures beside covenant's."""
    figures = json.loads((Path(args.figures) / f"{arch}@{workload}.json").read_text())
    theirs = {e["name"]: e for e in figures.get("einsum_results") or []}
    acg, wl = imported(arch, workload, args.af_python)
    options = Options(time_limit=args.time_limit, validate=not args.no_validate)
    rows = []
    for record, _ in map_layers(list(wl.layers), acg, options, workload=wl.name):
        af = theirs.get(record.name, {})
        clock_hz = float(acg.clock_ghz) * 1e9
        rows.append({
            "arch": arch, "workload": workload, "einsum": record.name, "status": record.status,
            "af_latency_s": af.get("latency_s"), "af_energy_j": af.get("energy_j"),
            "cv_predicted_s": None if record.predicted_cycles is None else record.predicted_cycles / clock_hz,
            "cv_simulated_s": None if record.simulated_cycles is None else record.simulated_cycles / clock_hz,
            "cv_energy_j": None if record.predicted_energy_pj is None else record.predicted_energy_pj * 1e-12,
            "cv_simulated_energy_j": None if record.simulated_cycles is None else record.energy_pj * 1e-12,
            "cv_solve_s": record.solve_seconds, "af_pair_solve_s": figures.get("seconds"),
            "valid": record.valid, "error": record.error})
    return rows


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a is not None and b else "-"


def sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.3e}"


def print_rows(rows: list[dict]) -> None:
    """The table: each tool's objective on its own model (covenant: predicted), the ratios covenant /
    AccelForge, and covenant's simulated latency (the judge; '-' where not simulated)."""
    print(f"{'pair':26} {'einsum':11} {'AF s':>9} {'cov s':>9} {'ratio':>6} {'sim s':>9} {'AF J':>9} "
          f"{'cov J':>9} {'ratio':>6} {'solve s':>7}  status")
    for r in rows:
        note = r["status"] + (f" ({r['error'][:60]})" if r["error"] else "")
        print(f"{r['arch'] + '@' + r['workload']:26} {r['einsum']:11} {sci(r['af_latency_s']):>9} "
              f"{sci(r['cv_predicted_s']):>9} {ratio(r['cv_predicted_s'], r['af_latency_s']):>6} "
              f"{sci(r['cv_simulated_s']):>9} {sci(r['af_energy_j']):>9} {sci(r['cv_energy_j']):>9} "
              f"{ratio(r['cv_energy_j'], r['af_energy_j']):>6} {r['cv_solve_s']:7.2f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=ARCHES)
    parser.add_argument("--workload", action="append", choices=tuple(WORKLOADS))
    parser.add_argument("--figures", default=str(Path(__file__).with_name("accelforge_figures")))
    parser.add_argument("--af-python", default="/work/af-venv/bin/python")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--no-validate", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rows = []
    for arch in args.arch or ARCHES:
        for workload in args.workload or WORKLOADS:
            if (Path(args.figures) / f"{arch}@{workload}.json").is_file():
                rows += compare(arch, workload, args)
    print_rows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
