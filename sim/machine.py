"""The simulator: executes a Program on an ACG with real data, checks every rule on its own, and times
every instruction on engines.

It never calls the mapping code: capacities (at every allocation, double buffering included), edges
(every move follows an ACG edge), capability extents and read-before-write are checked here, from
the instructions alone. Timing is event-driven and independent of any cost formula:

- one engine per edge (a DMA channel), one per compute node, one per storage port that has a
  `bytes_per_cycle` (shared by every edge touching it); each runs its instructions in issue order;
- a move waits for its source data and for its destination slot (the previous occupant's last use);
- a compute waits for its operand tiles and for the previous compute into its output tile;
- a move takes bytes / bandwidth cycles; a compute, the capability's cycle formula.

    >>> from mapper.acg import load_acg
    >>> from mapper.binding import bind
    >>> from mapper.mapping import greedy_mapping
    >>> from mapper.lower import lower
    >>> from mapper.workload import make_layer
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> result = simulate(lower(greedy_mapping(layer, bind(layer, acg)[0], acg)), acg, seed=0)
    >>> result.matches_reference, result.cycles > 0
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mapper.acg import ACG, peak_ops_per_cycle
from mapper.lower import Alloc, Compute, Free, Init, Move, Program, Region, tensor_region
from mapper.notation import Access, Affine, BinOp, Call, Expr, TensorExpr
from mapper.workload import Layer
from sim.reference import evaluate, identity


class SimError(ValueError):
    """A program broke a rule of the ACG; the message names the resource."""


@dataclass
class Buffer:
    tensor: str
    storage: str
    region: Region
    data: np.ndarray
    written: np.ndarray  # bool per element: read-before-write checking
    slot: int = 0
    earliest: float = 0.0  # when its slot is free
    ready: float = 0.0  # when its data is complete
    last_use: float = 0.0

    def view(self, region: Region) -> tuple[slice, ...]:
        for (lo, hi), (blo, bhi) in zip(region, self.region, strict=True):
            if lo < blo or hi > bhi:
                raise KeyError
        return tuple(slice(lo - blo, hi - blo) for (lo, hi), (blo, _) in zip(region, self.region, strict=True))

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


@dataclass
class SimResult:
    output: np.ndarray
    reference: np.ndarray
    cycles: float
    energy_pj: float
    busy: dict[str, float]  # engine -> busy cycles
    buffer_peaks: dict[str, int]  # storage -> peak bytes allocated
    instructions: int
    computes: int
    ops: int
    peak_ops_per_cycle: float
    matches_reference: bool = field(default=False)

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


def simulate(program: Program, acg: ACG, seed: int = 0, inputs: dict[str, np.ndarray] | None = None) -> SimResult:
    """Run `program` on `acg` with seeded random inputs (or `inputs`); raise SimError on any violation."""
    layer = program.layer
    expr = layer.expr
    out_t = expr.output.tensor
    inputs = inputs if inputs is not None else random_inputs(layer, seed)
    try:
        cap = acg.capability(program.capability)
    except KeyError:
        raise SimError(f"{acg.name} has no capability '{program.capability}'") from None
    dim_map, roles = dict(program.dim_map), dict(program.tensors)
    out_dtype = np.dtype(layer.output.dtype)

    offchip = {}  # off-chip memory: whole tensors
    for t in layer.tensors.values():
        full = tuple((0, n) for n in t.shape)
        if t.name == out_t:
            data, written = np.zeros(t.shape, out_dtype), np.zeros(t.shape, bool)
        else:
            data, written = np.ascontiguousarray(inputs[t.name]), np.ones(t.shape, bool)
        offchip[t.name] = Buffer(t.name, "", full, data, written)

    live: dict[str, list[Buffer]] = {s: [] for s in acg.storages}
    used = dict.fromkeys(acg.storages, 0)
    peaks = dict.fromkeys(acg.storages, 0)
    slot_free: dict[tuple[str, str, int], float] = {}
    engines: dict[str, float] = {}
    busy: dict[str, float] = {}
    energy = 0.0
    computes = ops = 0
    shifted_cache: dict = {}

    def find(tensor: str, storage: str, region: Region, what: str, exact: str = "") -> Buffer:
        """The buffer of `tensor` in `storage` holding `region`: the newest that contains it, or with
        `exact` ('newest' or 'oldest') one allocated for exactly that region."""
        if acg.storages[storage].offchip:
            return offchip[tensor]
        candidates = [b for b in live[storage] if b.tensor == tensor]
        same = [b for b in candidates if b.region == region] if exact else []
        if same:
            return same[-1] if exact == "newest" else same[0]
        for buf in reversed(candidates):
            try:
                buf.view(region)
                return buf
            except KeyError:
                continue
        raise SimError(f"{storage}: {what} tensor {tensor} region {_show(region)}, which is not allocated there")

    def run(engine_names: list[str], start: float, duration: float) -> float:
        start = max([start, *(engines.get(e, 0.0) for e in engine_names)])
        end = start + duration
        for e in engine_names:
            engines[e] = end
            busy[e] = busy.get(e, 0.0) + duration
        return end

    pending: list[tuple[dict[str, Buffer], dict[str, tuple[int, int]]]] = []

    def flush() -> None:
        """Execute the data part of the pending computes (all on the same buffers). When their ranges
        exactly partition a box, one evaluation over the box does the work of all of them: the updates
        are associative (integer sums wrap identically in any order), and each instruction was already
        checked and timed on its own."""
        if not pending:
            return
        bufs = pending[0][0]
        groups = [ranges for _, ranges in pending]
        if len(groups) > 1:
            box = {d: (min(r[d][0] for r in groups), max(r[d][1] for r in groups)) for d in layer.dims}
            if _partitions(groups, box):
                groups = [box]
        for ranges in groups:
            extents = {d: hi - lo for d, (lo, hi) in ranges.items()}
            shifted = _shifted(expr, {t: b.region for t, b in bufs.items()}, ranges, shifted_cache)
            out_buf = bufs[out_t]
            sl = out_buf.view(tensor_region(layer, out_t, ranges))
            arrays = {t: b.data for t, b in bufs.items() if t != out_t}
            out_buf.data[sl] = evaluate(shifted, extents, arrays, out_dtype, initial=out_buf.data[sl])
        pending.clear()

    for ins in program.instructions:
        if not isinstance(ins, Compute):
            flush()
        if isinstance(ins, Alloc):
            st = acg.storages.get(ins.storage)
            if st is None or st.offchip:
                raise SimError(f"allocation of {ins.tensor} in '{ins.storage}', which is not an on-chip storage")
            shape = tuple(hi - lo for lo, hi in ins.region)
            dtype = np.dtype(layer.tensors[ins.tensor].dtype)
            need = math.prod(shape) * dtype.itemsize
            if used[ins.storage] + need > st.total_capacity:
                held = ", ".join(f"{b.tensor}{_show(b.region)} {b.nbytes} B" for b in live[ins.storage])
                raise SimError(f"{ins.storage}: needs {used[ins.storage] + need} B for tensor {ins.tensor} "
                               f"({need} B) beside [{held}], holds {st.total_capacity} B")
            used[ins.storage] += need
            peaks[ins.storage] = max(peaks[ins.storage], used[ins.storage])
            buf = Buffer(ins.tensor, ins.storage, ins.region, np.zeros(shape, dtype), np.zeros(shape, bool),
                         ins.slot, earliest=slot_free.get((ins.tensor, ins.storage, ins.slot), 0.0))
            live[ins.storage].append(buf)
        elif isinstance(ins, Free):
            buf = find(ins.tensor, ins.storage, ins.region, "frees", exact="oldest")
            live[ins.storage].remove(buf)
            used[ins.storage] -= buf.nbytes
            slot_free[(ins.tensor, ins.storage, buf.slot)] = max(buf.last_use, buf.ready)
        elif isinstance(ins, Init):
            buf = find(ins.tensor, ins.storage, ins.region, "initialises", exact="newest")
            sl = buf.view(ins.region)
            buf.data[sl] = identity(expr.update, buf.data.dtype)
            buf.written[sl] = True
            buf.ready = max(buf.ready, buf.earliest)
        elif isinstance(ins, Move):
            edge = acg.edge(ins.src, ins.dst)
            if edge is None:
                raise SimError(f"move of {ins.tensor} from {ins.src} to {ins.dst}: the ACG has no edge "
                               f"{ins.src}->{ins.dst}")
            src = find(ins.tensor, ins.src, ins.region, "reads")
            dst = find(ins.tensor, ins.dst, ins.region, "writes", exact="newest")
            s_sl, d_sl = src.view(ins.region), dst.view(ins.region)
            if not src.written[s_sl].all():
                raise SimError(f"{ins.src}: tensor {ins.tensor} region {_show(ins.region)} is read before it is "
                               "written")
            dst.data[d_sl] = src.data[s_sl]
            dst.written[d_sl] = True
            nbytes = src.data[s_sl].nbytes
            bw = [edge.bytes_per_cycle]
            names = [f"edge:{ins.src}->{ins.dst}"]
            for node in (ins.src, ins.dst):
                port = acg.storages[node].bytes_per_cycle
                if port:
                    bw.append(port)
                    names.append(f"port:{node}")
            end = run(names, max(src.ready, dst.earliest), nbytes / min(bw))
            src.last_use = max(src.last_use, end)
            dst.ready = max(dst.ready, end)
            dst.last_use = max(dst.last_use, end)
            energy += nbytes * (acg.storages[ins.src].read_pj_per_byte + acg.storages[ins.dst].write_pj_per_byte
                                + edge.pj_per_byte)
        elif isinstance(ins, Compute):
            if ins.capability != cap.name:
                raise SimError(f"compute on '{ins.capability}', but the program is for '{cap.name}'")
            ranges = {d: (lo, hi) for d, lo, hi in ins.ranges}
            extents = {d: hi - lo for d, (lo, hi) in ranges.items()}
            if set(extents) != set(layer.dims):
                raise SimError(f"{cap.name}: compute ranges name dims {sorted(extents)}, the layer has "
                               f"{sorted(layer.dims)}")
            cap_extents = {}
            for d, e in dim_map.items():
                if e is None:
                    if extents[d] != 1:
                        raise SimError(f"{cap.name}: dim {d} runs {extents[d]} wide in one instruction, but it is "
                                       "not bound to any capability dim")
                else:
                    cap_extents[e] = cap_extents.get(e, 1) * extents[d]
            for e, fixed in cap.fixed.items():
                if cap_extents.get(e, 1) > fixed:
                    raise SimError(f"{cap.name}: dim {e} holds {fixed}, the instruction needs {cap_extents[e]}")
            places = dict(ins.places)
            bufs, start = {}, 0.0
            for t in layer.tensors:
                region = tensor_region(layer, t, ranges)
                storage = places.get(t)
                if storage is None or storage not in cap.operands.get(roles.get(t, ""), ()):
                    raise SimError(f"{cap.name}: tensor {t} is read from {storage}, not from its operand's storage")
                buf = find(t, storage, region, "computes on")
                if not buf.written[buf.view(region)].all():
                    raise SimError(f"{storage}: tensor {t} region {_show(region)} is read before it is written")
                bufs[t] = (buf, region)
                start = max(start, buf.ready)
            if pending and any(pending[0][0][t] is not b for t, (b, _) in bufs.items()):
                flush()
            pending.append(({t: b for t, (b, _) in bufs.items()}, ranges))
            out_buf = bufs[out_t][0]
            streaming = {e: cap_extents.get(e, 1) for e in cap.streaming_dims}
            cycles = cap.instruction_cycles(streaming)
            end = run([f"compute:{cap.node}"], start, cycles)
            for buf, _ in bufs.values():
                buf.last_use = max(buf.last_use, end)
            out_buf.ready = end
            points = math.prod(extents.values())
            computes += 1
            ops += points
            energy += points * cap.pj_per_op
            for t, (buf, region) in bufs.items():
                nbytes = math.prod(hi - lo for lo, hi in region) * buf.data.itemsize
                st = acg.storages[buf.storage]
                energy += nbytes * (st.read_pj_per_byte + (st.write_pj_per_byte if t == out_t else 0.0))
        else:
            raise SimError(f"unknown instruction {ins!r}")

    flush()
    leftover = [f"{b.tensor} in {s}" for s, bufs in live.items() for b in bufs]
    if leftover:
        raise SimError(f"the program ends with buffers still allocated: {', '.join(leftover)}")
    out = offchip[out_t]
    if not out.written.all():
        raise SimError(f"output {out_t}: {int((~out.written).sum())} elements are never written back off-chip")
    reference = evaluate(expr, layer.dims, inputs, out_dtype)
    if out_dtype.kind == "f":
        same = bool(np.allclose(out.data, reference, rtol=1e-4, atol=1e-5))
    else:
        same = bool(np.array_equal(out.data, reference))
    cycles = max(engines.values(), default=0.0)
    return SimResult(out.data, reference, cycles, energy, busy, {s: p for s, p in peaks.items() if p},
                     len(program.instructions), computes, ops, float(peak_ops_per_cycle(cap)), same)


def _partitions(groups: list[dict[str, tuple[int, int]]], box: dict[str, tuple[int, int]]) -> bool:
    """Whether the ranges tile `box` exactly: per dim, the distinct intervals tile the box's interval
    end to end, and the groups are exactly every combination of them (a full grid, each once)."""
    count = 1
    for d, (lo, hi) in box.items():
        intervals = sorted({r[d] for r in groups})
        if intervals[0][0] != lo or intervals[-1][1] != hi:
            return False
        if any(a[1] != b[0] for a, b in zip(intervals, intervals[1:], strict=False)):
            return False
        count *= len(intervals)
    return count == len(groups) == len({tuple(r.values()) for r in groups})


def _show(region: Region) -> str:
    return "[" + ", ".join(f"{lo}:{hi}" for lo, hi in region) + "]"


def _shifted(expr: TensorExpr, origins: dict[str, Region], ranges: dict[str, tuple[int, int]],
             cache: dict) -> TensorExpr:
    """`expr` re-indexed for one instruction: dims start at 0 (the range's lo) and every access indexes
    its buffer (whose region starts at `origins[tensor]`)."""
    key = (tuple(lo for lo, _ in ranges.values()), tuple((t, tuple(lo for lo, _ in r)) for t, r in origins.items()))
    if key in cache:
        return cache[key]

    def shift(a: Access) -> Access:
        idx = tuple(Affine(i.terms, i.const + sum(c * ranges[d][0] for d, c in i.terms) - origins[a.tensor][k][0])
                    for k, i in enumerate(a.indices))
        return Access(a.tensor, idx)

    def walk(e: Expr) -> Expr:
        if isinstance(e, Access):
            return shift(e)
        if isinstance(e, Call):
            return Call(e.fn, tuple(walk(x) for x in e.args))
        if isinstance(e, BinOp):
            return BinOp(e.op, walk(e.lhs), walk(e.rhs))
        return e

    out = TensorExpr(expr.output, expr.update, walk(expr.rhs), expr.text)
    if len(cache) < 4096:
        cache[key] = out
    return out
