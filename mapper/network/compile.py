"""Compile a whole network for an ACG: one program, validated end to end.

    Workload ──build_network──► Network (steps in order, requantisation inserted)
             ──calibrate──────► shifts from the reference run on the seeded input
             ──map_layers─────► each step solved alone (identical computations solved once)
             ──plan_fusion────► groups of steps whose intermediate values stay on chip (DP over
                                the order, each candidate group's steps solved with that residency)
             ──map_layers─────► a Mapping per step of the fused network (mostly solves made above)
             ──plan_memory────► the off-chip address plan (no two live buffers overlap)
             ──lower──────────► a Program per step
             ──simulate_network► every step on the simulator, reading and writing the simulated
                                 off-chip arena, each output compared with the reference bit for bit

Each phase is timed (`mapper.network.phases`: `NetworkResult.phases`).

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import load_workload
    >>> result = compile_network(load_workload("tiny_net"), load_acg("tiny"), CompileOptions(time_limit=5))
    >>> result.valid, result.first_mismatch, len(result.records)
    (True, None, 13)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mapper.mapping.mapping import Mapping
from mapper.network.cores import Split, best_split, objective_value
from mapper.network.flow import LayerResult, Options, map_layers
from mapper.network.fusion import Costs, FusionPlan, band_layers, fused_network, plan_fusion
from mapper.network.phases import PhaseTimes, Stopwatch
from mapper.network.reference import calibrate, seeded_tensors
from mapper.network.schedule import memory_graph, onchip_capacity, optimal_schedule, order_peak
from mapper.network.staging_cost import PhaseCost, StagingResult, StagingTotals, predict_staging
from mapper.network.step_costs import StepCosts
from mapper.program.lower import lower
from mapper.program.memory import AddressPlan, peak_bytes, plan_memory
from mapper.program.network import Network, build_network
from mapper.spec.acg import ACG
from mapper.spec.loader import SpecError
from mapper.spec.workload import Workload
from sim.machine import SimError, outputs_equal
from sim.network import NetworkRun, Unit, simulate_network
from sim.staging import prefetch_end, run_phase


@dataclass(frozen=True)
class CompileOptions:
    objective: str = "latency"
    strategy: str = "cpsat"
    time_limit: float = 10.0  # per distinct layer
    validate: bool = True
    seed: int = 0  # of the input, the weights and random search
    order: str = "optimal"  # 'optimal': the layer order with the smallest activation peak; 'file'
    fuse: str = "auto"  # 'auto': the solver decides which values stay on chip; 'none': layer by layer
    cores: int = 0  # the most cores a step may run on (0: as many as the ACG has)
    strategy_options: tuple[tuple[str, Any], ...] = ()  # given options of the strategy (solver.registry)
    cache: str | None = None  # the solve cache's folder (solver.cache); None: every solve is made

    def layer_options(self) -> Options:
        # Steps are validated end to end, on the network's own data, not one by one on random tensors.
        return Options(self.strategy, self.objective, self.time_limit, False, self.seed, self.strategy_options,
                       self.cache)


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
    clock_ghz: float = 1.0  # the ACG's (end-to-end times in ms)
    onchip_bytes: int = 0  # the largest on-chip storage (where activations could stay on chip)
    fusion: FusionPlan | None = None  # the groups (None: --fuse none)
    splits: tuple[Split | None, ...] = ()  # per step, its split over cores (None: one core)
    staging: StagingResult | None = None  # a cold request's input, weights and outputs (ACG `staging`)
    phases: PhaseTimes = PhaseTimes()  # where the compile's (and the simulation's) time went

    @property
    def mapped(self) -> bool:
        return all(r.mapped for r in self.records)

    def totals(self) -> NetworkTotals:
        """The network's totals: `total` of `covenant compile --json` (`to_dict`)."""
        def total(field: str):
            values = [getattr(r, field) for r in self.records if getattr(r, field) is not None]
            return sum(values) if values else None
        return NetworkTotals(
            total("predicted_cycles"), total("simulated_cycles"), total("energy_pj"), total("dram_bytes"),
            self.peak_activation_bytes, self.plan.arena_bytes, self.file_peak_bytes, self.onchip_bytes,
            self.peak_activation_bytes <= self.onchip_bytes, self.plan.weight_bytes, self.compile_seconds,
            self.simulation_seconds, math.fsum(r.solve_seconds for r in self.records), len(self.records),
            sum(r.mapped for r in self.records), tuple(r.name for r in self.records if not r.mapped),
            sum(r.valid is True for r in self.records), self.valid, self.first_mismatch,
            sum(s is not None and s.parallel for s in self.splits), self.fusion_totals(), self.staging_totals(),
            self.phases)

    def staging_totals(self) -> StagingTotals | None:
        """Staging and end-to-end figures (None: the ACG has no `staging`); compute = the steps' totals."""
        if self.staging is None:
            return None
        records = [r for r in self.records if r.mapped]
        cycles = [r.simulated_cycles if r.simulated_cycles is not None else r.predicted_cycles for r in records]
        energy = [r.energy_pj for r in records]
        complete = len(records) == len(self.records) and None not in cycles and None not in energy
        return self.staging.totals(math.fsum(cycles) if complete else None,
                                   math.fsum(energy) if complete else None, self.clock_ghz)

    def fusion_totals(self) -> FusionTotals | None:
        """The fused groups' figures (None: compiled with --fuse none)."""
        if self.fusion is None:
            return None
        return FusionTotals(sum(len(g.homes) > 0 for g in self.fusion.groups), len(self.network.onchip_values()),
                            self.fusion.unfused_cost, self.fusion.cost)


@dataclass(frozen=True)
class FusionTotals:
    """What fusion gave a compiled network: groups keeping a value on chip, the values kept, and the
    objective layer by layer and fused (entries of `covenant compile --json`'s `total`)."""

    groups: int
    onchip_values: int
    objective_unfused: float
    objective_fused: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NetworkTotals:
    """A compiled network's whole-network figures (sums over its steps where a step has a figure, else
    None), its memory plan and verdict: `total` of `covenant compile --json`, which `to_dict` gives
    (`fusion`'s and `staging`'s entries in line: `groups`/`staging` null when there is none; then the
    seconds per phase, `phases`, and the solves, `PhaseTimes.to_dict`)."""

    predicted_cycles: float | None
    simulated_cycles: float | None
    energy_pj: float | None
    dram_bytes: int | None
    peak_activation_bytes: int
    arena_bytes: int
    file_order_peak_bytes: int | None
    onchip_bytes: int
    activations_fit_on_chip: bool
    weight_bytes: int
    compile_seconds: float
    simulation_seconds: float | None
    solve_seconds: float
    layers: int
    mapped: int
    unmapped: tuple[str, ...]  # the steps with no mapping
    valid: int  # steps whose simulated output equals the reference
    network_valid: bool | None
    first_mismatch: str | None
    split_steps: int  # steps split over cores
    fusion: FusionTotals | None = None
    staging: StagingTotals | None = None
    phases: PhaseTimes = PhaseTimes()

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("fusion", "staging", "phases")}
        out["unmapped"] = list(self.unmapped)
        out.update(self.fusion.to_dict() if self.fusion is not None else {"groups": None})
        out.update(self.staging.to_dict() if self.staging is not None else {"staging": None})
        out.update(self.phases.to_dict())
        return out


def _check_no_epilogues(wl: Workload) -> None:
    """The network compiler requantises in steps of its own (`program.network.conversion_layer`); a
    layer's own `epilogue` is for layer-by-layer mapping (`covenant map`) so far."""
    named = [layer.name for layer in wl.layers if layer.epilogue is not None]
    if named:
        raise SpecError(wl.source or wl.name, None, f"layers[{named[0]}].epilogue",
                        f"layer {named[0]} declares an epilogue; whole-network compilation inserts its own "
                        "requantisation steps and does not take layer epilogues yet (map the layers with "
                        "`covenant map`, or write a requant layer after it)")


def compile_network(wl: Workload, acg: ACG, options: CompileOptions,
                    progress: Callable[[str, int, int], None] | None = None) -> NetworkResult:
    """Compile `wl` for `acg` (and, with `options.validate`, simulate it end to end), timing each phase
    (`NetworkResult.phases`); `progress(what, done, total)` hears of each phase and step as it goes
    (total 0: not known).

    Raises SpecError for a network that cannot be compiled at all (its activations do not fit
    off-chip memory, a conversion between layers that does not exist); a layer with no mapping is
    a record with its reason, and the result is then not simulated."""
    start, watch, report = time.perf_counter(), Stopwatch(), progress or _silent
    _check_no_epilogues(wl)
    with watch("schedule"):
        report("scheduling", 0, 0)
        order, file_peak = _order(wl, options)
    with watch("build"):
        net = build_network(wl, order)
    with watch("memory_plan"):
        _check_fits(wl, acg, net, plan_memory(net))
    with watch("calibrate"):
        report("calibrating", 0, 0)
        tensors = seeded_tensors(net, options.seed)
        net, reference = calibrate(net, tensors)
    costs = StepCosts(acg, options.layer_options(), options.cores)  # fusion's solves are the final mapping's too
    with watch("layer_mapping"):
        for k, step in enumerate(net.steps):
            report(f"mapping {step.layer.name}", k, len(net.steps))
            if options.fuse != "auto":
                costs.solve(step.layer)  # in full now: its final mapping (else made once no group takes it)
            costs.cost(step.layer)
    fusion, mapped = None, costs.records()
    if options.fuse == "auto":
        with watch("fusion_search"):
            fusion = plan_fusion(net, acg, Costs(costs.cost, costs.floor, costs.parallel if acg.cores > 1 else None),
                                 progress=progress)
            net = fused_network(net, fusion)
    searched = costs.records()
    with watch("final_mapping"):
        records, mappings, splits = _final_mapping(net, fusion, costs, report)
    _note_solves(watch, mapped, searched, costs.records())
    watch.note(fusion_reused=len(costs.reused), fusion_skipped=fusion.search.candidates_skipped if fusion else 0)
    with watch("memory_plan"):
        interleaved = tuple((g.start, g.stop) for g in fusion.groups if g.bands > 1) if fusion else ()
        plan, peak, staging = plan_memory(net, interleaved), peak_bytes(net), predict_staging(net, acg)
    result = NetworkResult(net, tuple(records), mappings, plan, peak, time.perf_counter() - start,
                           file_peak_bytes=file_peak, onchip_bytes=onchip_capacity(acg)[1], fusion=fusion,
                           splits=splits, clock_ghz=acg.clock_ghz, staging=staging, phases=watch.times())
    if not options.validate:
        return result
    if not result.mapped:
        return replace(result, error="not simulated: some layers have no mapping")
    return _validate(result, acg, tensors, reference, report, watch)


def _silent(what: str, done: int, total: int) -> None:
    """A progress callback that tells no one."""


def _note_solves(watch: Stopwatch, mapped: list[LayerResult], searched: list[LayerResult],
                 every: list[LayerResult]) -> None:
    """The solves of layer mapping (`mapped`: all made by its end), of the fusion search (those made
    by its end, `searched`, less those), of the final mapping (`every`, less those), the slowest and
    how many the cache served."""
    def seconds(records: list[LayerResult]) -> float:
        return math.fsum(r.solve_seconds for r in records)
    slowest = max(every, key=lambda r: r.solve_seconds, default=None)
    watch.note(layer_solves=len(mapped), layer_solve_seconds=seconds(mapped),
               fusion_solves=len(searched) - len(mapped),
               fusion_solve_seconds=max(0.0, seconds(searched) - seconds(mapped)),
               final_solves=len(every) - len(searched),
               final_solve_seconds=max(0.0, seconds(every) - seconds(searched)),
               slowest_solve=None if slowest is None else slowest.name,
               slowest_solve_seconds=0.0 if slowest is None else slowest.solve_seconds,
               cache_hits=sum(r.cached for r in every))


def _final_mapping(net: Network, fusion: FusionPlan | None, costs: StepCosts,
                   report: Callable[[str, int, int], None]) -> tuple:
    """Per step of the (fused) network: its record, its mapping (None: banded or unmapped) and its split."""
    steps = [s.layer for s in net.steps]
    banded = _banded_steps(net, fusion, costs)
    todo = [i for i in range(len(steps)) if i not in banded]
    done = itertools.count(1)

    def mapped(name: str) -> None:
        report(f"final mapping {name}", next(done), len(todo))
    results = dict(zip(todo, map_layers([steps[i] for i in todo], costs.acg, costs.options, progress=mapped,
                                        done=costs.solved), strict=True))
    records = [banded[i].record(steps[i].name) if i in banded else results[i][0] for i in range(len(steps))]
    splits = _splits(net, costs, records, banded)
    mappings = tuple(results[i][1] if i in results else None for i in range(len(steps)))
    return records, mappings, splits


def _banded_steps(net: Network, fusion: FusionPlan | None, costs: StepCosts) -> dict[int, Split]:
    """Per step of a fused group that runs in bands, its bands (a Split: one after the other, or at once
    on several cores), each slice solved with what its band keeps on chip."""
    out: dict[int, Split] = {}
    for g in fusion.groups if fusion is not None else ():
        if g.bands == 1:
            continue
        bands = band_layers(net, g)
        for k, i in enumerate(range(g.start, g.stop)):
            column = tuple(band[k] for band in bands if band[k] is not None)
            if g.cores > 1:
                out[i] = costs.parallel_split(list(column))
                continue
            results = map_layers([s.layer for s in column], costs.acg, costs.options, done=costs.solved)
            out[i] = Split(g.dims[k], column, tuple(results), parallel=False)
    return out


def _splits(net: Network, costs: StepCosts, records: list[LayerResult],
            banded: dict[int, Split]) -> tuple[Split | None, ...]:
    """Per step, its bands, or its split over cores where that beats one core (steps a fused group
    keeps values of stay on one core); `records` gets the split steps' records."""
    out: list[Split | None] = []
    for i, step in enumerate(net.steps):
        split = banded.get(i)
        if split is not None:
            out.append(split)
            continue
        if costs.acg.cores > 1 and not step.layer.onchip and records[i].mapped:
            split = best_split(step.layer, costs.acg, costs.options, costs.split_solved, costs.cores)
            if split is not None and objective_value(split.record(step.layer.name), costs.objective) >= \
                    objective_value(records[i], costs.objective):
                split = None
        if split is not None:
            records[i] = split.record(step.layer.name)
        out.append(split)
    return tuple(out)


def _order(wl: Workload, options: CompileOptions) -> tuple[list[str] | None, int]:
    """The order `options.order` asks for (None: the file's, also kept unless the optimal one has a
    lower peak), with the file order's peak."""
    g = memory_graph(wl)
    file_peak = order_peak(g, g.units)
    if options.order == "optimal":
        best = optimal_schedule(g, time_limit=options.time_limit)
        if best.peak_bytes < file_peak:
            return list(best.order), file_peak
    return None, file_peak


def _validate(result: NetworkResult, acg: ACG, tensors, reference, report: Callable[[str, int, int], None],
              watch: Stopwatch) -> NetworkResult:
    """`result` simulated end to end (its lowering and simulation timed on `watch`)."""
    net = result.network
    start = time.perf_counter()
    with watch("lowering"):
        report("lowering", 0, 0)
        units = _units(result)
    done = itertools.count(1)

    def simulated(name: str) -> None:
        report(f"simulating {name}", next(done), len(net.steps))
    try:
        with watch("simulation"):
            staging, run = _simulate(result, acg, units, tensors, reference, simulated)
    except SimError as exc:
        return replace(result, valid=False, error=f"simulation failed: {exc}",
                       simulation_seconds=time.perf_counter() - start, phases=watch.times())
    mismatch = run.first_mismatch or (None if staging is None or staging.returned_valid
                                      else f"{', '.join(net.outputs)} (returned to {staging.plan.source})")
    return replace(result, records=_with_simulation(result.records, run), valid=mismatch is None,
                   first_mismatch=mismatch, simulation_seconds=time.perf_counter() - start, staging=staging,
                   error=None if mismatch is None else
                   f"the simulated output of '{mismatch}' differs from the reference", phases=watch.times())


def _simulate(result: NetworkResult, acg: ACG, units: list[Unit], tensors, reference,
              simulated: Callable[[str], None]) -> tuple[StagingResult | None, NetworkRun]:
    """The staging (its simulated figures filled in) and the network's run: staging in, the steps,
    the outputs back (raises SimError for what the simulator rejects)."""
    net, staging = result.network, result.staging
    if staging is not None:  # the layers read what staging brought into their off-chip memory
        phase_in = run_phase(staging.plan.inbound, acg, tensors)
        tensors = phase_in.arrived
    run = simulate_network(net, units, result.plan, acg, tensors, reference, progress=simulated)
    if staging is None:
        return None, run
    phase_out = run_phase(staging.plan.outbound, acg, run.outputs)
    returned = all(outputs_equal(phase_out.arrived[n], reference[n].reshape(phase_out.arrived[n].shape))
                   for n in net.outputs)
    return replace(staging, simulated_in=PhaseCost(phase_in.cycles, phase_in.energy_pj),
                   simulated_out=PhaseCost(phase_out.cycles, phase_out.energy_pj), returned_valid=returned,
                   prefetch_cycles=prefetch_end(_needs(result, run), phase_in.landed) + phase_out.cycles), run


def _needs(result: NetworkResult, run: NetworkRun) -> list[tuple[float, tuple[str, ...]]]:
    """Per step, its simulated cycles and the staged tensors it needs before it starts: its weights and
    the network inputs it reads (a group run in bands needs every step's from its first band on)."""
    net = result.network
    needs = [tuple(f"{s.layer.name}.{w}" for w in s.layer.weights) + tuple(n for _, n in s.reads if n in net.inputs)
             for s in net.steps]
    for g in (result.fusion.groups if result.fusion else ()):
        if g.bands > 1:
            needs[g.start] = tuple(t for k in range(g.start, g.stop) for t in needs[k])
    return [(step.cycles, need) for step, need in zip(run.steps, needs, strict=True)]


def _units(result: NetworkResult) -> list[Unit]:
    """The network's execution in order: each step whole, or over its cores at once, and the groups
    that run in bands band by band (every step of band 0, then of band 1, ...)."""
    n = len(result.network.steps)
    splits = result.splits or (None,) * n
    banded = {g.start: g for g in (result.fusion.groups if result.fusion else ()) if g.bands > 1}
    units, i = [], 0
    while i < n:
        if i in banded:
            g = banded[i]
            if g.cores > 1:  # each step's bands at once, one per core
                units += [Unit(k, tuple((lower(m), s) for (_, m), s in zip(splits[k].results, splits[k].slices,
                                                                           strict=True)), parallel=True)
                          for k in range(g.start, g.stop)]
                i = g.stop
                continue
            parts = {k: iter(zip(splits[k].results, splits[k].slices, strict=True)) for k in range(g.start, g.stop)}
            for band in band_layers(result.network, g):  # a step with nothing to compute in a band has no slice
                for k, s in zip(range(g.start, g.stop), band, strict=True):
                    if s is not None:
                        (_, m), s = next(parts[k])
                        units.append(Unit(k, ((lower(m), s),)))
            i = g.stop
            continue
        split = splits[i]
        if split is not None:
            units.append(Unit(i, tuple((lower(m), s) for (_, m), s in zip(split.results, split.slices, strict=True)),
                              parallel=True))
        else:
            units.append(Unit(i, ((lower(result.mappings[i]), None),)))
        i += 1
    return units


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
