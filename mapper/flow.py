"""Map layers end to end: solve with a strategy, then prove the mapping on the simulator.

One record per layer, in the `covenant map --json` schema of DESIGN.md. Layers with the same
computation (expression, extents, dtypes, shapes) are solved and simulated once: the later ones
reuse the record (`reused_from` names the first; their solve time is 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from mapper.acg import ACG, peak_ops_per_cycle
from mapper.cost import evaluate
from mapper.mapping import Mapping, mapping_to_dict, with_predicted
from mapper.workload import Layer


@dataclass(frozen=True)
class Options:
    strategy: str = "cpsat"
    objective: str = "latency"
    time_limit: float = 10.0
    validate: bool = True
    seed: int = 0


def layer_key(layer: Layer) -> tuple:
    """The content of a layer's computation (what a cached result depends on)."""
    return (str(layer.expr), tuple(sorted(layer.dims.items())),
            tuple(sorted((t.name, t.dtype, t.shape) for t in layer.tensors.values())))


def new_record(layer: Layer, strategy: str) -> dict:
    """A layer's record before anything is known (the `covenant map --json` schema)."""
    return {"name": layer.name, "status": "error", "strategy": strategy, "macs": layer.macs,
            "count": layer.count, "capability": None, "predicted_cycles": None, "simulated_cycles": None,
            "roofline_cycles": None, "energy_pj": None, "utilization": None, "solve_seconds": 0.0,
            "optimality_gap": None, "limit": None, "valid": None, "error": None, "mapping": None}


def map_layer(layer: Layer, acg: ACG, options: Options) -> tuple[dict, Mapping | None]:
    """Solve and validate one layer; never raises for an infeasible layer (status says so)."""
    from solver import NoMapping, SpaceTooLarge, solve

    record = new_record(layer, options.strategy)
    start = time.perf_counter()
    try:
        solution = solve(layer, acg, options.strategy, options.objective, options.time_limit, options.seed)
    except NoMapping as exc:
        status = "skipped" if isinstance(exc, SpaceTooLarge) else "infeasible"  # skipped: too big to enumerate
        record.update(status=status, error=str(exc), solve_seconds=time.perf_counter() - start)
        return record, None
    record["solve_seconds"] = solution.seconds
    record["limit"] = solution.limit or None  # the search limit that stopped it before a proof
    if solution.mapping is None:  # 'error': an internal error of the strategy, named in the reason
        record.update(status="error" if solution.status == "error" else "infeasible", error=solution.reason)
        return record, None
    record.update(status=solution.status)
    mapping = score_mapping(record, solution.mapping, acg, options.validate, options.seed)
    record["optimality_gap"] = solution.gap
    return record, mapping


def score_mapping(record: dict, mapping: Mapping, acg: ACG, validate: bool, seed: int) -> Mapping:
    """Fill `record` with a mapping's predicted figures and, when `validate`, its simulated ones.

    Returns the mapping with its predicted figures attached. A program that breaks a rule of the ACG
    or computes a wrong output is reported in the record (`valid` false, `error`), never raised.
    """
    from mapper.cost import roofline_cycles

    cost = evaluate(mapping, acg)
    mapping = with_predicted(mapping, cycles=float(cost.latency), energy_pj=float(cost.energy))
    cap = acg.capability(mapping.binding.capability)
    peak = float(peak_ops_per_cycle(cap))
    record.update(capability=cap.name, predicted_cycles=float(cost.latency), energy_pj=float(cost.energy),
                  roofline_cycles=float(roofline_cycles(mapping.layer, acg, cap)),
                  utilization=cost.ops / (float(cost.latency) * peak) if cost.latency else 0.0,
                  mapping=mapping_to_dict(mapping))
    if validate:
        from mapper.lower import lower
        from sim.machine import SimError, simulate
        try:
            result = simulate(lower(mapping), acg, seed=seed)
        except SimError as exc:
            record.update(valid=False, error=f"simulation failed: {exc}")
            return mapping
        record.update(simulated_cycles=result.cycles, energy_pj=result.energy_pj, utilization=result.utilization,
                      valid=result.matches_reference)
        if not result.matches_reference:
            record["error"] = "the simulated output differs from the reference"
    return mapping


def map_layers(layers: Iterable[Layer], acg: ACG, options: Options,
               progress: Callable[[str], None] | None = None) -> list[tuple[dict, Mapping | None]]:
    """`map_layer` over layers, reusing results for layers with the same computation."""
    done: dict[tuple, tuple[dict, Mapping | None]] = {}
    out = []
    for layer in layers:
        key = layer_key(layer)
        if key in done:
            first, mapping = done[key]
            record = {**first, "name": layer.name, "count": layer.count, "solve_seconds": 0.0,
                      "reused_from": first["name"]}
            if mapping is not None:
                mapping = replace(mapping, layer=replace(mapping.layer, name=layer.name))
                record["mapping"] = mapping_to_dict(mapping)
        else:
            record, mapping = map_layer(layer, acg, options)
            done[key] = (record, mapping)
        out.append((record, mapping))
        if progress:
            progress(layer.name)
    return out


def totals(records: list[dict]) -> dict:
    """Whole-workload figures (each layer weighted by its repeat count)."""
    def total(field: str):
        values = [r[field] * r["count"] for r in records if r[field] is not None]
        return sum(values) if len(values) == len(records) else None
    return {"predicted_cycles": total("predicted_cycles"), "simulated_cycles": total("simulated_cycles"),
            "solve_seconds": math.fsum(r["solve_seconds"] for r in records),
            "layers": len(records), "mapped": sum(r["mapping"] is not None for r in records),
            "valid": sum(r["valid"] is True for r in records)}


def succeeded(record: dict, validate: bool) -> bool:
    return record["mapping"] is not None and (record["valid"] is True or not validate)
