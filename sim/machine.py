"""The simulator: executes a Program on an ACG with real data, checks every rule on its own, and times
every instruction on engines.

It never calls the mapping code: capacities (at every allocation, double buffering included, and
only in storages that allow it; one instance's share in a replicated storage, `sim/checks.py`), edges
(every move follows an ACG edge), capability extents and read-before-write are checked here, from
the instructions alone. A compute runs the capability's expression on the operands the binding
feeds it (`sim/execute.py`). Timing is event-driven and independent of any cost formula:

- one engine per edge (a DMA channel), one per compute node, one per storage port that has a
  `bytes_per_cycle` (shared by every edge touching it); each runs its instructions in issue order;
- a move waits for its source data and for its destination slot (the previous occupant's last use);
- a compute waits for its input tiles and for the moves into its output tile (earlier computes into
  it are ahead of it in the node's pipeline);
- a move takes its edge's set-up latency and bytes / bandwidth cycles, a compute its initiation
  interval on the engine and its cycles to complete (`sim/timing.py`);
- a region strided along an axis (`(lo, hi, step)`) moves, occupies and is charged at the positions
  it gathers (`sim/buffers.py`); a compute reads such a buffer at (position - lo) / step.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.mapping.binding import bind
    >>> from mapper.mapping.mapping import greedy_mapping
    >>> from mapper.program.lower import lower
    >>> from mapper.spec.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> result = simulate(lower(greedy_mapping(layer, bind(layer, acg)[0], acg)), acg, seed=0)
    >>> result.matches_reference, result.cycles > 0
    (True, True)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from mapper.program.instructions import (
    Alloc,
    Free,
    Init,
    Instruction,
    Move,
    Program,
    Region,
    axis_size,
    region_function,
    region_size,
)
from mapper.program.instructions import Compute as ComputeIns
from mapper.spec.acg import ACG, Capability, peak_ops_per_cycle
from mapper.spec.workload import Layer
from sim.buffers import Buffer
from sim.checks import InstanceShare, instruction_lanes, instruction_streams
from sim.execute import BindingError, accumulate, bound_expression, operand_dtypes, partitions, shifted
from sim.reference import evaluate, identity, requantise
from sim.timing import Clock, Link, link_of, static_pj


class SimError(ValueError):
    """A program broke a rule of the ACG; the message names the resource."""


def outputs_equal(output: np.ndarray, reference: np.ndarray) -> bool:
    """Bit for bit for integer types; floats within 1e-4 relative (summation order may differ)."""
    if output.dtype.kind == "f":
        return bool(np.allclose(output, reference, rtol=1e-4, atol=1e-5))
    return bool(np.array_equal(output, reference))


@dataclass
class SimResult:
    output: np.ndarray
    reference: np.ndarray | None
    cycles: float
    energy_pj: float
    busy: dict[str, float]  # engine -> busy cycles
    buffer_peaks: dict[str, int]  # storage -> peak bytes allocated (one instance's, if replicated)
    instructions: int
    computes: int
    ops: int
    peak_ops_per_cycle: float
    matches_reference: bool = field(default=False)
    moved: dict[str, int] = field(default_factory=dict)  # edge 'src->dst' -> bytes its moves carried

    @property
    def utilization(self) -> float:
        """Achieved ops per cycle over the capability's peak."""
        return self.ops / (self.cycles * self.peak_ops_per_cycle) if self.cycles else 0.0


def random_inputs(layer: Layer, seed: int) -> dict[str, np.ndarray]:
    """Seeded random input tensors in their declared shapes and dtypes (full range for integers)."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in layer.inputs:
        dt = np.dtype(t.dtype)
        if dt.kind in "iu":
            info = np.iinfo(dt)
            lo, hi = max(info.min, -128), min(info.max, 127)
            out[t.name] = rng.integers(lo, hi, size=t.shape, endpoint=True).astype(dt)
        else:
            out[t.name] = rng.standard_normal(t.shape).astype(dt)
    return out


def simulate(program: Program, acg: ACG, seed: int = 0, inputs: dict[str, np.ndarray] | None = None,
             compare: bool = True) -> SimResult:
    """Run `program` on `acg` with seeded random inputs (or `inputs`); raise SimError on any violation.

    With `compare` false the output is not checked against the layer's reference (a caller that holds
    its own reference, as the network simulation does, compares it): `reference` is then None."""
    layer = program.layer
    inputs = inputs if inputs is not None else random_inputs(layer, seed)
    try:
        cap = acg.capability(program.capability)
    except KeyError:
        raise SimError(f"{acg.name} has no capability '{program.capability}'") from None
    machine = _Machine(program, acg, cap, inputs)
    for ins in program.instructions:
        machine.execute(ins)
    result = machine.finish(program, inputs, compare)
    return replace(result, energy_pj=result.energy_pj + static_pj(acg, result.cycles))


def simulate_cores(programs: list[Program], acg: ACG, inputs: list[dict[str, np.ndarray]]) -> list[SimResult]:
    """Run one program per core at once: each core has its own storages, edges and compute engines,
    the off-chip ports are shared (a transfer waits while another core's holds the port). The
    controllers issue in turn, one instruction each; every result's cycles are the whole run's."""
    machines = []
    for j, (program, data) in enumerate(zip(programs, inputs, strict=True)):
        try:
            cap = acg.capability(program.capability)
        except KeyError:
            raise SimError(f"{acg.name} has no capability '{program.capability}'") from None
        machines.append(_Machine(program, acg, cap, data, core=f"core{j}/"))
    for m in machines[1:]:
        m.clock = machines[0].clock  # one clock: the shared off-chip ports, and the whole run's cycles
    for step in itertools.zip_longest(*(p.instructions for p in programs)):
        for m, ins in zip(machines, step, strict=True):
            if ins is not None:
                m.execute(ins)
    results = [m.finish(p, data, compare=False) for m, p, data in zip(machines, programs, inputs, strict=True)]
    # static power is the whole chip's: charged once, over the run's cycles (every result's)
    results[0] = replace(results[0], energy_pj=results[0].energy_pj + static_pj(acg, results[0].cycles))
    return results


class _Machine:
    """The state of one simulation: buffers, engines, energy, and the computes awaiting their data."""

    def __init__(self, program: Program, acg: ACG, cap: Capability, inputs: dict[str, np.ndarray],
                 core: str = "") -> None:
        layer = program.layer
        self.core = core  # the prefix of its engines' names; off-chip ports have none (cores share them)
        self.acg, self.cap, self.layer = acg, cap, layer
        try:  # each compute runs the capability's expression on the operands bound to it
            self.expr = bound_expression(layer, cap, dict(program.tensors), dict(program.dim_map),
                                         dict(program.immediates))
        except BindingError as exc:
            raise SimError(str(exc)) from None
        self.cap_dtype = np.dtype(cap.dtypes[cap.expr.output.tensor])
        self.read_as = operand_dtypes(layer, cap, dict(program.tensors))
        self.out_t = self.expr.output.tensor
        self.out_dtype = np.dtype(layer.stored_dtype(self.out_t))  # the epilogue's, if it has one
        self.dim_map, self.roles = dict(program.dim_map), dict(program.tensors)
        self.tensors = tuple(layer.tensors)
        self.region_of = {t: region_function(layer, t) for t in layer.tensors}
        # Whole tensors: off-chip, or (a fused group's values) in the on-chip storage that keeps them.
        self.home = {t: layer.onchip.home(t) for t in layer.tensors}
        self.whole: dict[str, Buffer] = {}
        for t in layer.tensors.values():
            full = tuple((0, n) for n in t.shape)
            if t.name == self.out_t:
                data, written = np.zeros(t.shape, self.out_dtype), np.zeros(t.shape, bool)
            else:
                data, written = np.ascontiguousarray(inputs[t.name]), np.ones(t.shape, bool)
            self.whole[t.name] = Buffer(t.name, self.home[t.name] or "", full, data, written)
        self.live: dict[str, list[Buffer]] = {s: [] for s in acg.storages}
        self.held: dict[tuple[str, str], list[Buffer]] = {}  # (storage, tensor) -> its live buffers, oldest first
        self.used = dict.fromkeys(acg.storages, 0)
        self.peaks = dict.fromkeys(acg.storages, 0)
        self.slot_free: dict[tuple[str, str, int], float] = {}
        self.clock = Clock()
        self.energy = 0.0
        self.moved: dict[str, int] = {}
        self.computes = self.ops = 0
        self.pending: list[tuple[dict[str, Buffer], dict[str, tuple[int, int]]]] = []
        self.shifted_cache: dict = {}
        # Per-instruction facts that depend only on a few fields, worked out once per distinct value.
        self.links: dict[tuple[str, str], Link] = {}
        self.shapes: dict[tuple, tuple[float, int]] = {}  # compute extents -> (cycles, points)
        self.placings: dict[tuple, list] = {}  # compute places -> per tensor (storage, allowed, pJ/B)
        self.compute_engine = f"{core}compute:{cap.node}"
        self.program = program
        self.shares: dict[tuple[str, str], InstanceShare] = {}
        self.lanes: dict[str, int] | None = None
        self.streams: tuple = ()
        self.keep_onchip(layer)

    def share(self, storage: str, tensor: str) -> InstanceShare:
        """How `tensor`'s buffers spread over `storage`'s instances (worked out on first use)."""
        key = (storage, tensor)
        if key not in self.shares:
            if self.lanes is None:
                self.lanes = instruction_lanes(self.program, self.cap.fixed)
                self.streams = instruction_streams(self.program, self.cap.lanes)
            self.shares[key] = InstanceShare(self.layer, tensor, self.lanes, self.acg.storages[storage].instances,
                                             self.streams)
        return self.shares[key]

    def keep_onchip(self, layer) -> None:
        """Count what the fused group keeps whole on chip: the layer's homed tensors and the bytes
        reserved for the group's other values; they must fit before any tile is allocated."""
        for storage, nbytes in layer.onchip.reserved:
            self.used[storage] += nbytes
        for t, storage in layer.onchip.homes:
            st = self.acg.storages.get(storage)
            if st is None or st.offchip or st.instances != 1:
                raise SimError(f"tensor {t} is kept whole in '{storage}', which is not a single on-chip storage")
            self.used[storage] += self.whole[t].nbytes
        for storage, used in self.used.items():
            if used > self.acg.storages[storage].total_capacity:
                raise SimError(f"{storage}: the fused group keeps {used} B there, it holds "
                               f"{self.acg.storages[storage].total_capacity} B")
            self.peaks[storage] = used

    def execute(self, ins: Instruction) -> None:
        if isinstance(ins, ComputeIns):
            self.compute(ins)  # its data part waits in `pending`, to run batched with its neighbours
            return
        self.flush()
        if isinstance(ins, Alloc):
            self.alloc(ins)
        elif isinstance(ins, Free):
            self.free(ins)
        elif isinstance(ins, Init):
            self.init(ins)
        elif isinstance(ins, Move):
            self.move(ins)
        else:
            raise SimError(f"unknown instruction {ins!r}")

    # ---------------------------------------------------------------------------------------------
    # Buffers

    def find(self, tensor: str, storage: str, region: Region, what: str,
             exact: str = "") -> tuple[Buffer, tuple[slice, ...]]:
        """The buffer of `tensor` in `storage` holding `region` (and the slices of it): the newest that
        contains it, or with `exact` ('newest' or 'oldest') one allocated for exactly that region."""
        home = self.home.get(tensor)
        if storage == home or (home is None and self.acg.storages[storage].offchip):
            buf = self.whole[tensor]
            return buf, buf.view(region)
        candidates = self.held.get((storage, tensor), [])
        same = [b for b in candidates if b.region == region] if exact else []
        if same:
            buf = same[-1] if exact == "newest" else same[0]
            return buf, buf.view(region)
        for buf in reversed(candidates):
            try:
                return buf, buf.view(region)
            except KeyError:
                continue
        raise SimError(f"{storage}: {what} tensor {tensor} region {_show(region)}, which is not allocated there")

    def alloc(self, ins: Alloc) -> None:
        st = self.acg.storages.get(ins.storage)
        if st is None or st.offchip:
            raise SimError(f"allocation of {ins.tensor} in '{ins.storage}', which is not an on-chip storage")
        if ins.slot not in (0, 1) or (ins.slot and not st.double_buffer):
            raise SimError(f"{ins.storage}: allocation of {ins.tensor} in slot {ins.slot}, but {ins.storage} "
                           + ("does not allow double buffering" if ins.slot == 1 else "has slots 0 and 1 at most"))
        shape = tuple(axis_size(axis) for axis in ins.region)  # a strided axis holds only its positions
        dtype = np.dtype(ins.dtype or self.layer.tensors[ins.tensor].dtype)
        if ins.dtype and (ins.tensor != self.out_t or dtype != self.out_dtype):
            raise SimError(f"allocation of {ins.tensor} in '{ins.storage}' as {ins.dtype}: only the output "
                           f"of a layer with an epilogue is held in another dtype ({self.out_dtype})")
        need = math.prod(shape) * dtype.itemsize
        each = ""
        if st.instances > 1:  # capacity is per instance: count what the fullest instance holds
            need = self.share(ins.storage, ins.tensor).bytes(ins.region, dtype.itemsize)
            each = f" per instance (of {st.instances})"
        used = self.used[ins.storage] + need
        if used > st.capacity:
            held = ", ".join(f"{b.tensor}{_show(b.region)} {b.charged} B" for b in self.live[ins.storage])
            raise SimError(f"{ins.storage}: needs {used} B{each} for tensor {ins.tensor} "
                           f"({need} B) beside [{held}], holds {st.capacity} B{each}")
        self.used[ins.storage] = used
        self.peaks[ins.storage] = max(self.peaks[ins.storage], used)
        buf = Buffer(ins.tensor, ins.storage, ins.region, np.zeros(shape, dtype), np.zeros(shape, bool),
                     ins.slot, earliest=self.slot_free.get((ins.tensor, ins.storage, ins.slot), 0.0), charged=need)
        self.live[ins.storage].append(buf)
        self.held.setdefault((ins.storage, ins.tensor), []).append(buf)

    def free(self, ins: Free) -> None:
        buf, _ = self.find(ins.tensor, ins.storage, ins.region, "frees", exact="oldest")
        self.live[ins.storage].remove(buf)
        self.held[(ins.storage, ins.tensor)].remove(buf)
        self.used[ins.storage] -= buf.charged
        self.slot_free[(ins.tensor, ins.storage, buf.slot)] = max(buf.last_use, buf.ready)

    def init(self, ins: Init) -> None:
        buf, sl = self.find(ins.tensor, ins.storage, ins.region, "initialises", exact="newest")
        buf.data[sl] = identity(self.layer.expr.update, buf.data.dtype)
        buf.mark_written(sl)
        buf.ready = max(buf.ready, buf.earliest)
        buf.fed = max(buf.fed, buf.earliest)

    # ---------------------------------------------------------------------------------------------
    # Moves and computes

    def move(self, ins: Move) -> None:
        link = self.links.get((ins.src, ins.dst))
        if link is None:
            link = link_of(self.acg, ins.src, ins.dst, self.core)
            if link is None:
                raise SimError(f"move of {ins.tensor} from {ins.src} to {ins.dst}: the ACG has no edge "
                               f"{ins.src}->{ins.dst}")
            self.links[(ins.src, ins.dst)] = link
        src, s_sl = self.find(ins.tensor, ins.src, ins.region, "reads")
        dst, d_sl = self.find(ins.tensor, ins.dst, ins.region, "writes", exact="newest")
        if not src.is_written(s_sl):
            raise SimError(f"{ins.src}: tensor {ins.tensor} region {_show(ins.region)} is read before it is "
                           "written")
        data = src.data[s_sl]
        if data.dtype != dst.data.dtype:  # a requantising write-back
            if data.dtype != self.layer.output.dtype or dst.data.dtype != self.out_dtype \
                    or self.layer.epilogue is None:
                raise SimError(f"move of {ins.tensor} from {ins.src} ({data.dtype}) to {ins.dst} "
                               f"({dst.data.dtype}): only an epilogue converts, from the accumulator")
            data = requantise(data, self.layer.epilogue)
        dst.data[d_sl] = data
        dst.mark_written(d_sl)
        nbytes = data.nbytes
        end = self.clock.transfer(link, max(src.ready, dst.earliest), nbytes)
        src.last_use = max(src.last_use, end)
        dst.ready = max(dst.ready, end)
        dst.fed = max(dst.fed, end)
        dst.last_use = max(dst.last_use, end)
        self.energy += nbytes * link.pj_per_byte
        edge = f"{ins.src}->{ins.dst}"
        self.moved[edge] = self.moved.get(edge, 0) + nbytes

    def shape(self, ranges: dict[str, tuple[int, int]]) -> tuple[float, float, int]:
        """Check one instruction's extents against the capability; its cycles, initiation interval
        and iteration points."""
        cap, layer = self.cap, self.layer
        extents = {d: hi - lo for d, (lo, hi) in ranges.items()}
        if set(extents) != set(layer.dims):
            raise SimError(f"{cap.name}: compute ranges name dims {sorted(extents)}, the layer has "
                           f"{sorted(layer.dims)}")
        cap_extents = {}
        for d, e in self.dim_map.items():
            if e is None:
                if extents[d] != 1:
                    raise SimError(f"{cap.name}: dim {d} runs {extents[d]} wide in one instruction, but it is "
                                   "not bound to any capability dim")
            else:
                cap_extents[e] = cap_extents.get(e, 1) * extents[d]
        for e, fixed in cap.fixed.items():
            if cap_extents.get(e, 1) > fixed:
                raise SimError(f"{cap.name}: dim {e} holds {fixed}, the instruction needs {cap_extents[e]}")
        streaming = {e: cap_extents.get(e, 1) for e in cap.streaming_dims}
        return cap.instruction_cycles(streaming), cap.instruction_interval(streaming), math.prod(extents.values())

    def placing(self, places: tuple[tuple[str, str], ...]) -> list[tuple[str | None, bool, float]]:
        """Per layer tensor: the storage a compute names for it, whether its operand may be read
        there, and the pJ per byte of that access."""
        named = dict(places)
        out = []
        for t in self.tensors:
            storage = named.get(t)
            allowed = storage is not None and storage in self.cap.operands.get(self.roles.get(t, ""), ())
            pj = 0.0
            if allowed:
                st = self.acg.storages[storage]
                pj = st.read_pj_per_byte + (st.write_pj_per_byte if t == self.out_t else 0.0)
            out.append((storage, allowed, pj))
        return out

    def compute(self, ins: ComputeIns) -> None:
        cap = self.cap
        if ins.capability != cap.name:
            raise SimError(f"compute on '{ins.capability}', but the program is for '{cap.name}'")
        ranges = {d: (lo, hi) for d, lo, hi in ins.ranges}
        key = tuple((d, hi - lo) for d, lo, hi in ins.ranges)
        shape = self.shapes.get(key)
        if shape is None:
            shape = self.shapes[key] = self.shape(ranges)
        cycles, interval, points = shape
        placing = self.placings.get(ins.places)
        if placing is None:
            placing = self.placings[ins.places] = self.placing(ins.places)
        bufs, regions, start = {}, [], 0.0
        for t, (storage, allowed, _) in zip(self.tensors, placing, strict=True):
            region = self.region_of[t](ranges)
            if not allowed:
                raise SimError(f"{cap.name}: tensor {t} is read from {storage}, not from its operand's storage")
            buf, sl = self.find(t, storage, region, "computes on")
            if not buf.is_written(sl):
                raise SimError(f"{storage}: tensor {t} region {_show(region)} is read before it is written")
            bufs[t] = buf
            regions.append(region)
            # The output waits for what moves put there; earlier computes into it are ahead in the pipeline.
            start = max(start, buf.fed if t == self.out_t else buf.ready)
        pending = self.pending
        if pending and any(pending[0][0][t] is not b for t, b in bufs.items()):
            self.flush()
        pending.append((bufs, ranges))
        end = self.clock.compute(self.compute_engine, start, interval, cycles)
        issued = end - cycles + interval  # the operands enter while it issues; the result lands at `end`
        for t, buf in bufs.items():
            buf.last_use = max(buf.last_use, end if t == self.out_t else issued)
        out = bufs[self.out_t]
        out.ready = max(out.ready, end)
        self.computes += 1
        self.ops += points
        energy = self.energy + points * cap.pj_per_op
        for buf, region, (_, _, pj) in zip(bufs.values(), regions, placing, strict=True):
            energy += region_size(region) * buf.data.itemsize * pj
        self.energy = energy

    def flush(self) -> None:
        """Execute the data part of the pending computes (all on the same buffers). When their ranges
        exactly partition a box, one evaluation over the box does the work of all of them: the updates
        are associative (integer sums wrap identically in any order), and each instruction was already
        checked and timed on its own."""
        pending = self.pending
        if not pending:
            return
        layer, out_t = self.layer, self.out_t
        bufs = pending[0][0]
        groups = [ranges for _, ranges in pending]
        if len(groups) > 1:
            box = {d: (min(r[d][0] for r in groups), max(r[d][1] for r in groups)) for d in layer.dims}
            if partitions(groups, box):
                groups = [box]
        out_buf = bufs[out_t]
        arrays = {t: b.data if b.data.dtype == self.read_as[t] else b.data.astype(self.read_as[t])
                  for t, b in bufs.items() if t != out_t}
        for ranges in groups:
            extents = {d: hi - lo for d, (lo, hi) in ranges.items()}
            try:
                expr = shifted(self.expr, {t: b.region for t, b in bufs.items()}, ranges, self.shifted_cache)
            except ValueError as exc:
                raise SimError(f"{self.cap.name}: {exc}") from None
            sl = out_buf.view(self.region_of[out_t](ranges))
            out_buf.data[sl] = accumulate(expr, extents, arrays, self.cap_dtype, out_buf.data[sl])
        pending.clear()

    def finish(self, program: Program, inputs: dict[str, np.ndarray], compare: bool) -> SimResult:
        """Check the end state (no leaks, the whole output written back) and compare with the reference."""
        self.flush()
        leftover = [f"{b.tensor} in {s}" for s, bufs in self.live.items() for b in bufs]
        if leftover:
            raise SimError(f"the program ends with buffers still allocated: {', '.join(leftover)}")
        out = self.whole[self.out_t]
        if not out.complete:
            raise SimError(f"output {self.out_t}: {int((~out.written).sum())} elements are never written back "
                           f"to {self.home[self.out_t] or 'off-chip memory'}")
        reference, same = None, False
        if compare:
            reference = evaluate(self.layer.expr, self.layer.dims, inputs, np.dtype(self.layer.output.dtype))
            if self.layer.epilogue:
                reference = requantise(reference, self.layer.epilogue)
            same = outputs_equal(out.data, reference)
        return SimResult(out.data, reference, self.clock.finish, self.energy, self.clock.busy,
                         {s: p for s, p in self.peaks.items() if p}, len(program.instructions), self.computes,
                         self.ops, float(peak_ops_per_cycle(self.cap)), same, dict(self.moved))


def _show(region: Region) -> str:
    return "[" + ", ".join(":".join(map(str, axis)) for axis in region) + "]"

