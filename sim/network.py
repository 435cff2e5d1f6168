"""End-to-end simulation of a network program: every step's program runs on the simulator, reading
its activations from, and writing its output into, one simulated off-chip arena laid out by the
address plan.

The arena is a byte array; each buffer is a typed view at its planned offset, and a value inside a
concatenation is a slice of its buffer's view, so the parts' producers write into the one buffer
(zero-copy) and a plan that let two live buffers share bytes would corrupt data that the comparison
with the reference then catches. Weights are read-only and come from their own region. Steps run
back to back: the network's cycles and energy are the sums of its steps'.

    >>> from mapper.network.program import build_network
    >>> from mapper.workload import load_workload
    >>> from mapper.network.memory import plan_memory
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

from mapper.acg import ACG
from mapper.network.cores import Slice, slice_data
from mapper.network.memory import AddressPlan
from mapper.network.program import Network, Step
from mapper.program import Move, Program
from sim.machine import outputs_equal, simulate, simulate_cores


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


def simulate_network(net: Network, programs: dict[str, Program], plan: AddressPlan, acg: ACG,
                     tensors: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None = None,
                     progress: Callable[[str], None] | None = None) -> NetworkRun:
    """Run every step's program in order on the arena; compare each step's output with `reference`.

    `tensors` holds the network inputs (by value name) and weights (by `layer.operand`). Raises
    `sim.machine.SimError` when a step's program breaks a rule of the ACG."""
    arena = Arena(net, plan)
    for name in net.inputs:
        arena.view(name)[...] = tensors[name]
    onchip: dict[str, np.ndarray] = {}  # the values fused groups keep on chip, as their producers left them
    kept = net.onchip_values()
    runs = []
    for step in net.steps:
        layer = step.layer
        inputs = _step_inputs(arena, onchip, step, tensors)
        program = programs[layer.name]
        result = simulate(program, acg, inputs=inputs, compare=False) if isinstance(program, Program) else \
            _run_on_cores(program, acg, layer, inputs)
        if step.writes in kept:
            out = onchip[step.writes] = result.output.reshape(net.values[step.writes].shape)
        else:
            out = arena.view(step.writes)
            out[...] = result.output.reshape(out.shape)
        matches = None if reference is None else outputs_equal(out, reference[step.writes].reshape(out.shape))
        parts = [program] if isinstance(program, Program) else [p for p, _ in program]
        runs.append(StepRun(layer.name, result.cycles, result.energy_pj, sum(offchip_bytes(p, acg) for p in parts),
                            result.instructions, matches))
        if progress:
            progress(layer.name)
    return NetworkRun(tuple(runs), {name: np.array(arena.view(name)) for name in net.outputs})  # outputs: off chip


@dataclass(frozen=True)
class _CoresRun:
    output: np.ndarray
    cycles: float
    energy_pj: float
    instructions: int


def _run_on_cores(parts: tuple[tuple[Program, Slice], ...], acg: ACG, layer, inputs: dict) -> _CoresRun:
    """A step split over cores: every core's program at once, each on its slice of the tensors; the
    output assembled from the slices."""
    datas = [{t: slice_data(layer, s, t, data) for t, data in inputs.items()} for _, s in parts]
    results = simulate_cores([p for p, _ in parts], acg, datas)
    output = np.empty(layer.output.shape, results[0].output.dtype)
    for (_, s), r in zip(parts, results, strict=True):
        slice_data(layer, s, layer.expr.output.tensor, output)[...] = r.output
    return _CoresRun(output, max(r.cycles for r in results), math.fsum(r.energy_pj for r in results),
                     sum(r.instructions for r in results))


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
            size = math.prod(hi - lo for lo, hi in ins.region)
            total += size * np.dtype(program.layer.tensors[ins.tensor].dtype).itemsize
    return total
