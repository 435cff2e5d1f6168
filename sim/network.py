"""End-to-end simulation of a network program: every step's program runs on the simulator, reading
its activations from, and writing its output into, one simulated off-chip arena laid out by the
address plan.

The arena is a byte array; each buffer is a typed view at its planned offset, and a value inside a
concatenation is a slice of its buffer's view, so the parts' producers write into the one buffer
(zero-copy) and a plan that let two live buffers share bytes would corrupt data that the comparison
with the reference then catches. Weights are read-only and come from their own region. Steps run
back to back: the network's cycles and energy are the sums of its steps'.

    >>> from mapper.program.network import build_network
    >>> from mapper.spec.workload import load_workload
    >>> from mapper.program.memory import plan_memory
    >>> net = build_network(load_workload("resnet18"))
    >>> arena = Arena(net, plan_memory(net))
    >>> arena.view("conv1").shape, arena.view("conv1").dtype
    ((1, 64, 112, 112), dtype('int32'))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mapper.program.instructions import Move, Program, region_size
from mapper.program.memory import AddressPlan
from mapper.program.network import Network, Step
from mapper.program.windows import Slice, slice_data
from mapper.spec.acg import ACG
from sim.machine import SimError, outputs_equal, simulate, simulate_cores


@dataclass(frozen=True)
class StepRun:
    name: str
    cycles: float
    energy_pj: float
    dram_bytes: int  # bytes its program moves to or from off-chip memory
    instructions: int
    matches: bool | None  # its output equals the reference's value (None: no reference given)


@dataclass(frozen=True)
class NetworkRun:
    steps: tuple[StepRun, ...]
    outputs: dict[str, np.ndarray]  # the network's outputs, as simulated

    @property
    def cycles(self) -> float:
        return math.fsum(s.cycles for s in self.steps)

    @property
    def energy_pj(self) -> float:
        return math.fsum(s.energy_pj for s in self.steps)

    @property
    def dram_bytes(self) -> int:
        return sum(s.dram_bytes for s in self.steps)

    @property
    def first_mismatch(self) -> str | None:
        return next((s.name for s in self.steps if s.matches is False), None)


class Arena:
    """Simulated off-chip memory for the activations: one byte array, typed views per buffer."""

    def __init__(self, net: Network, plan: AddressPlan) -> None:
        self.net, self.plan = net, plan
        self.bytes = np.zeros(plan.arena_bytes, np.uint8)

    def buffer(self, name: str) -> np.ndarray:
        b, p = self.net.buffers[name], self.plan.placements[name]
        return self.bytes[p.offset:p.offset + b.bytes].view(b.dtype).reshape(b.shape)

    def view(self, name: str) -> np.ndarray:
        """A value's (writable) view, or a concatenation buffer's."""
        if name not in self.net.values:
            return self.buffer(name)
        v = self.net.values[name]
        whole = self.buffer(v.buffer)
        if v.axis is None:
            return whole
        index = [slice(None)] * whole.ndim
        index[v.axis] = slice(v.start, v.start + v.shape[v.axis])
        return whole[tuple(index)]


@dataclass(frozen=True)
class Unit:
    """One piece of a network's execution: step `step` (its index), as one program (slice None), a
    slice of it (a band of a fused group), or several slices at once on several cores (`parallel`)."""

    step: int
    parts: tuple[tuple[Program, Slice | None], ...]
    parallel: bool = False


def units_of(net: Network, programs: dict[str, Program]) -> list[Unit]:
    """One whole-step unit per step, in order."""
    return [Unit(i, ((programs[s.layer.name], None),)) for i, s in enumerate(net.steps)]


def simulate_network(net: Network, units: list[Unit] | dict[str, Program], plan: AddressPlan, acg: ACG,
                     tensors: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None = None,
                     progress: Callable[[str], None] | None = None) -> NetworkRun:
    """Run the units in order on the arena (a dict: one program per step); compare each step's output
    with `reference` once its last unit has run.

    `tensors` holds the network inputs (by value name) and weights (by `layer.operand`). Raises
    `sim.machine.SimError` when a program breaks a rule of the ACG."""
    units = units_of(net, units) if isinstance(units, dict) else units
    arena = Arena(net, plan)
    for name in net.inputs:
        arena.view(name)[...] = tensors[name]
    onchip: dict[str, np.ndarray] = {}  # the values fused groups keep on chip, as their producers left them
    written: dict[tuple[str, int], np.ndarray] = {}  # per value kept on chip and core, the elements computed there
    kept = net.onchip_values()
    last = {u.step: k for k, u in enumerate(units)}
    totals: dict[int, list] = {}  # step -> [cycles, energy, off-chip bytes, instructions]
    runs: dict[int, StepRun] = {}
    for k, unit in enumerate(units):
        step = net.steps[unit.step]
        if step.writes in kept and step.writes not in onchip:
            onchip[step.writes] = np.zeros(net.values[step.writes].shape, step.layer.output.dtype)
        _check_computed(unit, step, kept, written)
        out = onchip[step.writes] if step.writes in kept else arena.view(step.writes)
        result = _run_unit(unit, step, acg, _step_inputs(arena, onchip, step, tensors), out)
        if step.writes in kept:
            for core, (_, s) in enumerate(unit.parts):
                mask = written.setdefault((step.writes, core if unit.parallel else 0),
                                          np.zeros(net.values[step.writes].shape, bool))
                _part(step, s, step.layer.expr.output.tensor, mask)[...] = True
        total = totals.setdefault(unit.step, [0.0, 0.0, 0, 0])
        for i, x in enumerate((result.cycles, result.energy_pj, sum(offchip_bytes(p, acg) for p, _ in unit.parts),
                               result.instructions)):
            total[i] += x
        if last[unit.step] == k:
            matches = None if reference is None else outputs_equal(out, reference[step.writes].reshape(out.shape))
            runs[unit.step] = StepRun(step.layer.name, total[0], total[1], total[2], total[3], matches)
            if progress:
                progress(step.layer.name)
    return NetworkRun(tuple(runs[i] for i in sorted(runs)),
                      {name: np.array(arena.view(name)) for name in net.outputs})  # outputs: off chip


def _check_computed(unit: Unit, step: Step, kept: set[str], written: dict[tuple[str, int], np.ndarray]) -> None:
    """A unit may read only parts of an on-chip value that a unit before it computed on the same core
    (a band whose producer left out rows its reader needs would otherwise read zeros, and a core cannot
    read another core's storages)."""
    for operand, name in step.reads:
        if name not in kept:
            continue
        for core, (_, s) in enumerate(unit.parts):
            mask = written.get((name, core if unit.parallel else 0))
            if mask is None or not _part(step, s, operand, mask).all():
                where = f" on core {core}" if unit.parallel else ""
                raise SimError(f"{step.layer.name}: reads parts of the on-chip value '{name}' that no step has "
                               f"computed{where}")


def _part(step: Step, s: Slice | None, tensor: str, data: np.ndarray) -> np.ndarray:
    """The part of `data` (a value, shaped as the step's tensor `tensor`) that slice `s` touches."""
    data = data.reshape(step.layer.tensors[tensor].shape)
    return data if s is None else slice_data(s, tensor, data)


@dataclass(frozen=True)
class _UnitRun:
    cycles: float
    energy_pj: float
    instructions: int


def _run_unit(unit: Unit, step: Step, acg: ACG, inputs: dict[str, np.ndarray], out: np.ndarray) -> _UnitRun:
    """Run a unit's programs on their slices of `inputs` and write their outputs into their slices of
    `out`: one after the other, or (`parallel`) at once on several cores."""
    layer = step.layer
    out_t = layer.expr.output.tensor
    out = out.reshape(layer.output.shape)

    def part(data: dict, s: Slice | None) -> dict:
        return data if s is None else {t: slice_data(s, t, x) for t, x in data.items()}
    if unit.parallel:
        results = simulate_cores([p for p, _ in unit.parts], acg, [part(inputs, s) for _, s in unit.parts])
        cycles = max(r.cycles for r in results)
    else:
        results = [simulate(p, acg, inputs=part(inputs, s), compare=False) for p, s in unit.parts]
        cycles = math.fsum(r.cycles for r in results)
    for (_, s), r in zip(unit.parts, results, strict=True):
        target = out if s is None else slice_data(s, out_t, out)
        target[...] = r.output.reshape(target.shape)
    return _UnitRun(cycles, math.fsum(r.energy_pj for r in results), sum(r.instructions for r in results))


def _step_inputs(arena: Arena, onchip: dict[str, np.ndarray], step: Step,
                 tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    layer = step.layer
    inputs = {operand: (onchip[name] if name in onchip else arena.view(name)).reshape(layer.tensors[operand].shape)
              for operand, name in step.reads}
    for w in layer.weights:
        inputs[w] = tensors[f"{layer.name}.{w}"]
    return inputs


def offchip_bytes(program: Program, acg: ACG) -> int:
    """Bytes the program moves to or from off-chip memory."""
    offchip = set(acg.offchip)
    total = 0
    for ins in program.instructions:
        if isinstance(ins, Move) and (ins.src in offchip or ins.dst in offchip):
            total += region_size(ins.region) * np.dtype(program.layer.stored_dtype(ins.tensor)).itemsize
    return total
