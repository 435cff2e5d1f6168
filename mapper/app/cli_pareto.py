"""`covenant map --objective pareto`: per layer, its latency-energy front (`solver/pareto.py`), each
point validated on the simulator (unless --no-validate), as a table per layer or one JSON document.

    {"acg": ..., "workload": ..., "objective": "pareto",
     "layers": [{"name": "conv1", "front": [{"latency_cycles", "energy_pj", "latency_cap", "status",
                 "capability", "solve_seconds", "simulated_cycles", "valid"}, ...]}, ...]}
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from mapper.app.cli_output import add_row, format_si
from mapper.program.lower import lower
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from sim.machine import SimError, simulate
from solver.pareto import front


def map_pareto(acg: ACG, workload: str, layers: list[Layer], points: int, time_limit: float, seed: int,
               validate: bool, as_json: bool, console: Console) -> int:
    """Print each layer's front; exit status 1 if a layer has no mapping or a point fails validation."""
    doc = {"acg": acg.name, "workload": workload, "objective": "pareto", "points": points, "layers": []}
    ok = True
    for layer in layers:
        rows = []
        for p in front(layer, acg, points, time_limit, seed):
            row = p.to_dict()
            if validate:
                row["simulated_cycles"], row["valid"] = _simulated(p.mapping, acg, seed)
                ok &= bool(row["valid"])
            rows.append(row)
        ok &= bool(rows)
        doc["layers"].append({"name": layer.name, "front": rows})
        if not as_json:
            _print_front(console, layer.name, rows)
    if as_json:
        print(json.dumps(doc, indent=2))
    return 0 if ok else 1


def _simulated(mapping, acg: ACG, seed: int) -> tuple[float | None, bool]:
    try:
        result = simulate(lower(mapping), acg, seed=seed)
    except SimError:
        return None, False
    return float(result.cycles), bool(result.matches_reference)


def _print_front(console: Console, name: str, rows: list[dict]) -> None:
    if not rows:
        console.print(f"{name}: no mapping")
        return
    table = Table(title=f"{name}: latency-energy front", title_justify="left")
    for column in ("cycles", "energy", "ratio", "cap", "proof", "capability", "simulated", "valid"):
        table.add_column(column, justify="right" if column not in ("proof", "capability") else "left")
    fastest = rows[0]["latency_cycles"]
    for r in rows:
        add_row(table, f"{r['latency_cycles']:,.0f}", format_si(r["energy_pj"], "J", 1e-12),
                f"{r['latency_cycles'] / fastest:.3f}", "-" if r["latency_cap"] is None else f"{r['latency_cap']:,.0f}",
                r["status"], r["capability"],
                "-" if r.get("simulated_cycles") is None else f"{r['simulated_cycles']:,.0f}",
                "-" if "valid" not in r else ("yes" if r["valid"] else "NO"))
    console.print(table)
