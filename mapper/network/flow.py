"""Map layers end to end: solve with a strategy, then prove the mapping on the simulator.

One `LayerResult` per layer (`to_dict`: the `covenant map --json` schema of docs/cli.md). Layers with the same
computation (expression, extents, dtypes, shapes) are solved and simulated once: the later ones
reuse the record (`reused_from` names the first; their solve time is 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from mapper.mapping.cost import Cost, evaluate, roofline_cycles
from mapper.mapping.mapping import Mapping, with_predicted
from mapper.mapping.mapping_yaml import mapping_to_dict
from mapper.program.lower import lower
from mapper.spec import limits
from mapper.spec.acg import ACG, peak_ops_per_cycle
from mapper.spec.workload import Layer
from sim.machine import SimError, simulate
from solver import NoMapping, SpaceTooLarge, solve
from solver.cache import open_cache
from solver.search import program_instructions


@dataclass(frozen=True)
class Options:
    strategy: str = "cpsat"
    objective: str = "latency"
    time_limit: float = 10.0
    validate: bool = True
    seed: int = 0
    strategy_options: tuple[tuple[str, Any], ...] = ()  # given options of the strategy (solver.registry)
    cache: str | None = None  # the solve cache's folder (solver.cache); None: every layer is solved


def layer_key(layer: Layer) -> tuple:
    """The content of a layer's computation (what a cached result depends on)."""
    return (str(layer.expr), tuple(sorted(layer.dims.items())),
            tuple(sorted((t.name, t.dtype, t.shape) for t in layer.tensors.values())), layer.onchip) + \
        ((layer.epilogue,) if layer.epilogue else ())  # absent: the keys of results stored before epilogues


@dataclass(frozen=True)
class LayerResult:
    """What mapping one layer gave: the one record of `covenant map`/`compile` output, experiment rows
    and reports (`to_dict` is the JSON schema of docs/cli.md)."""

    name: str
    strategy: str
    macs: int
    count: int = 1
    status: str = "error"  # optimal | feasible | infeasible | skipped | given | missing | error
    capability: str | None = None
    predicted_cycles: float | None = None
    simulated_cycles: float | None = None
    roofline_cycles: float | None = None
    energy_pj: float | None = None  # simulated when validated, else predicted
    dram_bytes: int | None = None  # predicted off-chip traffic
    utilization: float | None = None
    solve_seconds: float = 0.0
    optimality_gap: float | None = None
    limit: str | None = None  # the search limit that stopped the strategy before a proof
    valid: bool | None = None
    error: str | None = None
    mapping: Mapping | None = None  # the mapping, its predicted figures attached (`to_dict`: mapping_to_dict)
    reused_from: str | None = None  # the layer with the same computation whose result this is
    evaluations: int | None = None  # cost-model evaluations the strategy made (None: it counts none)
    measurements: int | None = None  # simulator measurements the strategy made (learned; measure=true)
    cores: int = 1  # how many cores run it (a network step split over cores: `mapper.network.cores`)
    tie_break: str | None = None  # cpsat: whether the tie-breaking figure is proven minimal ('optimal', 'feasible')
    cached: bool = False  # the solve came from the solve cache (solver.cache): solve_seconds is the original's

    @property
    def mapped(self) -> bool:
        return self.mapping is not None

    @property
    def predicted_energy_pj(self) -> float | None:
        """The energy the cost model predicted for the mapping (None: no mapping, or none predicted)."""
        return None if self.mapping is None else dict(self.mapping.predicted).get("energy_pj")

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["mapping"] = None if self.mapping is None else mapping_to_dict(self.mapping)
        if out["reused_from"] is None:
            del out["reused_from"]
        if out["cores"] == 1:
            del out["cores"]
        if out["tie_break"] is None:
            del out["tie_break"]
        if not out["cached"]:
            del out["cached"]
        return out


def new_record(layer: Layer, strategy: str) -> LayerResult:
    """A layer's record before anything is known."""
    return LayerResult(layer.name, strategy, layer.macs, layer.count)


def map_layer(layer: Layer, acg: ACG, options: Options, workload: str = "") -> tuple[LayerResult, Mapping | None]:
    """Solve and validate one layer (of the named workload); never raises for an infeasible layer
    (status says so)."""
    record = new_record(layer, options.strategy)
    if layer.points > limits.MAX_LAYER_POINTS:
        return replace(record, error=f"the layer has {layer.points:,} iteration points, above the mapper's "
                                     f"limit of {limits.MAX_LAYER_POINTS:,}"), None
    start = time.perf_counter()
    try:
        solution = solve(layer, acg, options.strategy, options.objective, options.time_limit, options.seed,
                         options.strategy_options, open_cache(options.cache) if options.cache else None)
    except NoMapping as exc:
        status = "skipped" if isinstance(exc, SpaceTooLarge) else "infeasible"  # skipped: too big to enumerate
        return replace(record, status=status, error=str(exc), solve_seconds=time.perf_counter() - start), None
    record = replace(record, solve_seconds=solution.seconds, limit=solution.limit or None,
                     evaluations=solution.evaluated or None, measurements=solution.measurements or None,
                     tie_break=solution.tie_break, cached=solution.cached)
    if solution.mapping is None:  # 'error': an internal error of the strategy, named in the reason
        return replace(record, status="error" if solution.status == "error" else "infeasible",
                       error=solution.reason), None
    record, mapping = score_mapping(replace(record, status=solution.status),
                                    replace(solution.mapping, workload=workload), acg, options.validate, options.seed)
    return replace(record, optimality_gap=solution.gap), mapping


def score_mapping(record: LayerResult, mapping: Mapping, acg: ACG, validate: bool,
                  seed: int) -> tuple[LayerResult, Mapping]:
    """`record` with a mapping's predicted figures and, when `validate`, its simulated ones; and the
    mapping with its predicted figures attached. A program that breaks a rule of the ACG or computes
    a wrong output is reported in the record (`valid` false, `error`), never raised."""
    cost = evaluate(mapping, acg)
    mapping = with_predicted(mapping, cycles=float(cost.latency), energy_pj=float(cost.energy))
    cap = acg.capability(mapping.binding.capability)
    peak = float(peak_ops_per_cycle(cap))
    record = replace(record, capability=cap.name, predicted_cycles=float(cost.latency),
                     energy_pj=float(cost.energy), dram_bytes=cost.dram_bytes,
                     roofline_cycles=float(roofline_cycles(mapping.layer, acg, cap)),
                     utilization=cost.ops / (float(cost.latency) * peak) if cost.latency else 0.0,
                     mapping=mapping)
    if not validate:
        return record, mapping
    problem = size_problem(mapping, cost)
    if problem:
        return replace(record, status="error", error=f"not validated: {problem}"), mapping
    try:
        result = simulate(lower(mapping), acg, seed=seed)
    except SimError as exc:
        return replace(record, valid=False, error=f"simulation failed: {exc}"), mapping
    record = replace(record, simulated_cycles=result.cycles, energy_pj=result.energy_pj,
                     utilization=result.utilization, valid=result.matches_reference,
                     error=None if result.matches_reference else "the simulated output differs from the reference")
    return record, mapping


def size_problem(mapping: Mapping, cost: Cost) -> str | None:
    """Why lowering and simulating `mapping` is refused (`mapper.spec.limits`), or None; `cost` is its
    `evaluate`. Known before lowering: the program's size (`solver.search.program_instructions`) and
    the bytes of the layer's tensors."""
    instructions = program_instructions(cost)
    if instructions > limits.MAX_PROGRAM_INSTRUCTIONS:
        return (f"the lowered program would have about {instructions:,} instructions ({cost.instructions:,} "
                f"computes), above the limit of {limits.MAX_PROGRAM_INSTRUCTIONS:,}")
    nbytes = mapping.layer.bytes
    if nbytes > limits.MAX_SIMULATED_BYTES:
        return (f"its tensors take {nbytes:,} B, above the simulator's limit of "
                f"{limits.MAX_SIMULATED_BYTES:,} B")
    return None


def map_layers(layers: Iterable[Layer], acg: ACG, options: Options, progress: Callable[[str], None] | None = None,
               workload: str = "", done: dict | None = None) -> list[tuple[LayerResult, Mapping | None]]:
    """`map_layer` over layers, reusing results for layers with the same computation (`done`: results
    of earlier calls with the same ACG and options, by `layer_key`, which this call extends)."""
    done = {} if done is None else done
    out = []
    for layer in layers:
        key = layer_key(layer)
        if key in done and done[key][0].name == layer.name:  # solved before, by an earlier call
            record, mapping = done[key]
        elif key in done:
            first, mapping = done[key]
            record = replace(first, name=layer.name, count=layer.count, solve_seconds=0.0, reused_from=first.name)
            if mapping is not None:
                mapping = replace(mapping, layer=replace(mapping.layer, name=layer.name))
                record = replace(record, mapping=mapping)
        else:
            record, mapping = map_layer(layer, acg, options, workload)
            done[key] = (record, mapping)
        out.append((record, mapping))
        if progress:
            progress(layer.name)
    return out


@dataclass(frozen=True)
class WorkloadTotals:
    """Whole-workload figures of `covenant map` (its `total`, `to_dict`): cycles over the mapped layers,
    each weighted by its repeat count (None when no layer is mapped or a mapped layer lacks the figure,
    e.g. no simulated cycles without validation), the solve time, and the layers with no mapping."""

    predicted_cycles: float | None
    simulated_cycles: float | None
    solve_seconds: float
    layers: int
    mapped: int
    valid: int  # layers whose simulated output equals the reference
    unmapped: tuple[str, ...]
    cache_hits: int = 0  # layers whose solve came from the solve cache

    def to_dict(self) -> dict:
        return {**asdict(self), "unmapped": list(self.unmapped)}


def totals(records: list[LayerResult]) -> WorkloadTotals:
    """The `WorkloadTotals` of `records`."""
    mapped = [r for r in records if r.mapped]

    def total(field: str):
        values = [getattr(r, field) * r.count for r in mapped if getattr(r, field) is not None]
        return sum(values) if mapped and len(values) == len(mapped) else None
    return WorkloadTotals(total("predicted_cycles"), total("simulated_cycles"),
                          math.fsum(r.solve_seconds for r in records), len(records), len(mapped),
                          sum(r.valid is True for r in records), tuple(r.name for r in records if not r.mapped),
                          sum(r.cached for r in records))


def succeeded(record: LayerResult, validate: bool) -> bool:
    return record.mapped and (record.valid is True or not validate)
