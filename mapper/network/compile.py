"""Compile a whole network for an ACG: one program, validated end to end.

    Workload ──build_network──► Network (steps in order, requantisation inserted)
             ──calibrate──────► shifts from the reference run on the seeded input
             ──map_layers─────► a Mapping per step (identical computations solved once)
             ──plan_memory────► the off-chip address plan (no two live buffers overlap)
             ──lower──────────► a Program per step
             ──simulate_network► every step on the simulator, reading and writing the simulated
                                 off-chip arena, each output compared with the reference bit for bit

    >>> from mapper.acg import load_acg
    >>> from mapper.workload import load_workload
    >>> result = compile_network(load_workload("tiny_net"), load_acg("tiny"), CompileOptions(time_limit=5))
    >>> result.valid, result.first_mismatch, len(result.records)
    (True, None, 13)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mapper.acg import ACG
from mapper.flow import LayerResult, Options, map_layers
from mapper.lower import lower
from mapper.mapping import Mapping
from mapper.network.memory import AddressPlan, peak_bytes, plan_memory
from mapper.network.program import Network, build_network
from mapper.network.reference import calibrate, seeded_tensors
from mapper.network.schedule import memory_graph, onchip_capacity, optimal_schedule, order_peak
from mapper.spec import SpecError
from mapper.workload import Workload
from sim.machine import SimError
from sim.network import NetworkRun, simulate_network


@dataclass(frozen=True)
class CompileOptions:
    objective: str = "latency"
    strategy: str = "cpsat"
    time_limit: float = 10.0  # per distinct layer
    validate: bool = True
    seed: int = 0  # of the input, the weights and random search
    order: str = "optimal"  # 'optimal': the layer order with the smallest activation peak; 'file'
    strategy_options: tuple[tuple[str, Any], ...] = ()  # given options of the strategy (solver.registry)

    def layer_options(self) -> Options:
        # Steps are validated end to end, on the network's own data, not one by one on random tensors.
        return Options(self.strategy, self.objective, self.time_limit, False, self.seed, self.strategy_options)


@dataclass(frozen=True)
class NetworkResult:
    network: Network
    records: tuple[LayerResult, ...]  # one per step, in order
    mappings: tuple[Mapping | None, ...]  # one per step
    plan: AddressPlan
    peak_activation_bytes: int
    compile_seconds: float
    simulation_seconds: float | None = None
    valid: bool | None = None  # every step's simulated output equals the reference
    first_mismatch: str | None = None
    error: str | None = None  # why the network was not simulated, or what the simulator rejected
    file_peak_bytes: int | None = None  # the activation peak of the file's order
    onchip_bytes: int = 0  # the largest on-chip storage (where activations could stay on chip)

    @property
    def mapped(self) -> bool:
        return all(r.mapped for r in self.records)

    def totals(self) -> dict:
        def total(field: str):
            values = [getattr(r, field) for r in self.records if getattr(r, field) is not None]
            return sum(values) if values else None
        return {"predicted_cycles": total("predicted_cycles"), "simulated_cycles": total("simulated_cycles"),
                "energy_pj": total("energy_pj"), "dram_bytes": total("dram_bytes"),
                "peak_activation_bytes": self.peak_activation_bytes, "arena_bytes": self.plan.arena_bytes,
                "file_order_peak_bytes": self.file_peak_bytes, "onchip_bytes": self.onchip_bytes,
                "activations_fit_on_chip": self.peak_activation_bytes <= self.onchip_bytes,
                "weight_bytes": self.plan.weight_bytes, "compile_seconds": self.compile_seconds,
                "simulation_seconds": self.simulation_seconds,
                "solve_seconds": math.fsum(r.solve_seconds for r in self.records),
                "layers": len(self.records), "mapped": sum(r.mapped for r in self.records),
                "unmapped": [r.name for r in self.records if not r.mapped],
                "valid": sum(r.valid is True for r in self.records), "network_valid": self.valid,
                "first_mismatch": self.first_mismatch}


def compile_network(wl: Workload, acg: ACG, options: CompileOptions,
                    progress: Callable[[str, int, int], None] | None = None) -> NetworkResult:
    """Compile `wl` for `acg` (and, with `options.validate`, simulate it end to end).

    Raises SpecError for a network that cannot be compiled at all (its activations do not fit
    off-chip memory, a conversion between layers that does not exist); a layer with no mapping is
    a record with its reason, and the result is then not simulated."""
    start = time.perf_counter()
    net, file_peak = _ordered(wl, options)
    plan = plan_memory(net)
    _check_fits(wl, acg, net, plan)
    tensors = seeded_tensors(net, options.seed)
    net, reference = calibrate(net, tensors)
    steps = [s.layer for s in net.steps]

    done = itertools.count(1)

    def mapped(name: str) -> None:
        count = next(done)
        if progress:
            progress(f"mapping {name}", count, len(steps))
    results = map_layers(steps, acg, options.layer_options(), progress=mapped)
    records = tuple(r for r, _ in results)
    result = NetworkResult(net, records, tuple(m for _, m in results), plan, peak_bytes(net),
                           time.perf_counter() - start, file_peak_bytes=file_peak, onchip_bytes=onchip_capacity(acg)[1])
    if not options.validate:
        return result
    if not result.mapped:
        return replace(result, error="not simulated: some layers have no mapping")
    return _validate(result, acg, tensors, reference, progress)


def _ordered(wl: Workload, options: CompileOptions) -> tuple[Network, int]:
    """The network in the order `options.order` asks for (the file's unless the optimal one has a lower
    peak: ties keep the file's order), with the file order's peak."""
    g = memory_graph(wl)
    file_peak = order_peak(g, g.units)
    if options.order == "optimal":
        best = optimal_schedule(g, time_limit=options.time_limit)
        if best.peak_bytes < file_peak:
            return build_network(wl, list(best.order)), file_peak
    return build_network(wl), file_peak


def _validate(result: NetworkResult, acg: ACG, tensors, reference, progress) -> NetworkResult:
    net = result.network
    start = time.perf_counter()
    programs = {m.layer.name: lower(m) for m in result.mappings if m is not None}

    done = itertools.count(1)

    def simulated(name: str) -> None:
        count = next(done)
        if progress:
            progress(f"simulating {name}", count, len(net.steps))
    try:
        run = simulate_network(net, programs, result.plan, acg, tensors, reference, progress=simulated)
    except SimError as exc:
        return replace(result, valid=False, error=f"simulation failed: {exc}",
                       simulation_seconds=time.perf_counter() - start)
    return replace(result, records=_with_simulation(result.records, run), valid=run.first_mismatch is None,
                   first_mismatch=run.first_mismatch, simulation_seconds=time.perf_counter() - start,
                   error=None if run.first_mismatch is None else
                   f"the simulated output of '{run.first_mismatch}' differs from the reference")


def _with_simulation(records: tuple[LayerResult, ...], run: NetworkRun) -> tuple[LayerResult, ...]:
    out = []
    for record, step in zip(records, run.steps, strict=True):
        util = record.utilization
        if util is not None and record.predicted_cycles and step.cycles:
            util = util * record.predicted_cycles / step.cycles
        out.append(replace(record, simulated_cycles=step.cycles, energy_pj=step.energy_pj, utilization=util,
                           valid=step.matches, error=record.error if step.matches else
                           "the simulated output differs from the network reference"))
    return tuple(out)


def _check_fits(wl: Workload, acg: ACG, net: Network, plan: AddressPlan) -> None:
    offchip = [acg.storages[name] for name in acg.offchip]
    capacity = max(s.total_capacity for s in offchip)
    need = plan.arena_bytes + plan.weight_bytes
    if need > capacity:
        raise SpecError(wl.source or wl.name, None, "", f"the network needs {need} B of off-chip memory "
                        f"({plan.arena_bytes} B of activations, {plan.weight_bytes} B of weights), "
                        f"{acg.name}'s holds {capacity} B")
