"""One exact CP-SAT model per layer: binding, tiles at every level, spatial factors, loop order,
placement and double buffering, chosen jointly under the cost model of `mapper/cost.py`.

How the model stays exact and small:

- every per-dim quantity (a tile, a loop factor, a trip count, "factor > 1") is a constant
  coefficient on the one-hot Booleans that pick the dim's tile chain (see `solver/space.py`);
- products (trip counts, tile bytes, traffic) are built from two-factor multiplications, shared
  between every expression that needs the same sub-product;
- loop order is one "stationary tensor" choice per level; with the admissibility rule of the space,
  the loads of every tensor follow from it exactly (the recurrence in `_loads`);
- time is counted in 1/SCALE cycles and energy in 1/ESCALE pJ, so that every bandwidth and every
  pJ/B figure becomes an integer coefficient.

The decoded mapping's `cost.evaluate` equals the objective exactly for latency and energy. EDP is a
product of two large integers: the model minimises a quantised product (latency and energy each
rounded down to about 2^24 steps of the greedy floor's value) and the reported figure is the exact
re-scoring of the decoded mapping.
"""

from __future__ import annotations

import itertools
import math
import time
from fractions import Fraction

from ortools.sat.python import cp_model

from mapper.acg import ACG
from mapper.cost import evaluate, exact, relevant_dims, transfer
from mapper.dtypes import dtype_bytes
from mapper.mapping import greedy_mapping
from mapper.workload import Layer
from solver.space import NoMapping, Point, Solution, Space, decode, explain_infeasible, irrelevant, layer_spaces

CAP = 2**52  # domains of products are capped here; a mapping moving more bytes is never optimal
QUANTUM_STEPS = 2**24


class _Model:
    """A CpModel with typed helpers: every integer term is (var or int, lo, hi)."""

    def __init__(self) -> None:
        self.m = cp_model.CpModel()
        self.products: dict[tuple, tuple] = {}
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def onehot(self, n: int, prefix: str) -> list:
        if n == 1:
            return [1]
        bs = [self.m.NewBoolVar(self.name(prefix)) for _ in range(n)]
        self.m.AddExactlyOne(bs)
        return bs

    def select(self, bools: list, values: list[int], prefix: str) -> tuple:
        """sum(value_i * bool_i) over a one-hot: a constant if all values agree."""
        lo, hi = min(values), max(values)
        if lo == hi:
            return (lo, lo, lo)
        v = self.m.NewBoolVar(self.name(prefix)) if (lo, hi) == (0, 1) else self.m.NewIntVar(lo, hi, self.name(prefix))
        self.m.Add(v == sum(c * b for c, b in zip(values, bools, strict=True)))
        return (v, lo, hi)

    def product(self, terms: list[tuple], keys: list) -> tuple:
        """The product of terms (keys identify them, for sharing sub-products)."""
        const = 1
        rest = []
        for t, k in zip(terms, keys, strict=True):
            if isinstance(t[0], int):
                const *= t[0]
            else:
                rest.append((k, t))
        rest.sort(key=lambda kt: repr(kt[0]))
        acc, acc_key = None, ()
        for k, t in rest:
            if acc is None:
                acc, acc_key = t, (k,)
                continue
            acc_key = acc_key + (k,)
            if acc_key not in self.products:
                lo, hi = acc[1] * t[1], min(acc[2] * t[2], CAP)
                v = self.m.NewIntVar(lo, hi, self.name("prod"))
                self.m.AddMultiplicationEquality(v, [acc[0], t[0]])
                self.products[acc_key] = (v, lo, hi)
            acc = self.products[acc_key]
        if acc is None:
            return (const, const, const)
        if const == 1:
            return acc
        return (acc[0] * const, acc[1] * const, min(acc[2] * const, CAP))

    def var(self, lo: int, hi: int, prefix: str):
        return self.m.NewIntVar(lo, hi, self.name(prefix))

    def when(self, value: tuple, literals: list, prefix: str) -> tuple:
        """`value` if all literals hold, else 0."""
        lits = [x for x in literals if not isinstance(x, int)]
        if any(isinstance(x, int) and x == 0 for x in literals):
            return (0, 0, 0)
        if not lits:
            return value
        v = self.var(min(0, value[1]), max(0, value[2]), prefix)
        self.m.Add(v == value[0]).OnlyEnforceIf(lits)
        for x in lits:
            self.m.Add(v == 0).OnlyEnforceIf(x.Not())
        return (v, min(0, value[1]), max(0, value[2]))

    def maximum(self, terms: list[tuple], prefix: str) -> tuple:
        lo, hi = max(t[1] for t in terms), max(t[2] for t in terms)
        if all(isinstance(t[0], int) for t in terms):
            return (hi, hi, hi)
        if lo == hi:
            return (lo, lo, lo)
        v = self.m.NewBoolVar(self.name(prefix)) if (lo, hi) == (0, 1) else self.var(lo, hi, prefix)
        self.m.AddMaxEquality(v, [t[0] for t in terms])
        return (v, lo, hi)


def _add(*terms: tuple) -> tuple:
    return (sum(t[0] for t in terms), sum(t[1] for t in terms), sum(t[2] for t in terms))


def _scale(t: tuple, c: int) -> tuple:
    return (t[0] * c, t[1] * c, t[2] * c)


def _lcm_of(values) -> int:
    out = 1
    for v in values:
        out = math.lcm(out, v)
    return out


def scales(spaces: list[Space], acg: ACG) -> tuple[int, int]:
    """(SCALE, ESCALE): multiples of every 1/bandwidth and every pJ figure's denominator."""
    bws, pjs = [], []
    for space in spaces:
        cap = acg.capability(space.binding.capability)
        pjs.append(exact(cap.pj_per_op))
        for alts in space.paths:
            for path in alts:
                for a, b in zip(path, path[1:], strict=False):
                    for src, dst in ((a, b), (b, a)):
                        if acg.edge(src, dst) is not None:
                            s = transfer(acg, "", src, dst, 1, "load", 1, 1)
                            bws.append((1 / s.bandwidth).denominator)
                            pjs.append(s.pj_per_byte)
                st = acg.storages[path[-1]]
                pjs += [exact(st.read_pj_per_byte), exact(st.read_pj_per_byte) + exact(st.write_pj_per_byte)]
    return 2 * _lcm_of(bws), _lcm_of(p.denominator for p in pjs)  # 2: the partial-sum chain halves


def _build_space(mm: _Model, space: Space, acg: ACG, pick, scale: int, escale: int) -> dict:
    """Variables and constraints of one binding; returns its decision variables and figures."""
    layer, b = space.layer, space.binding
    cap = acg.capability(b.capability)
    L = space.levels
    dims = space.dims
    out_t = layer.expr.output.tensor
    enforce = [] if isinstance(pick, int) else [pick]

    # Per dim: the one-hot over chains and the per-level quantities.
    x = [mm.onehot(len(opts), f"chain_{d}") for d, opts in zip(dims, space.options, strict=True)]
    full = [[(layer.dims[d],) + c for c in opts] for d, opts in zip(dims, space.options, strict=True)]
    f, g, cum, tile = {}, {}, {}, {}
    for i, d in enumerate(dims):
        for j in range(L):
            f[j, d] = mm.select(x[i], [c[j] // c[j + 1] for c in full[i]], f"f{j}_{d}")
            gv = [1 if c[j] // c[j + 1] > 1 else 0 for c in full[i]]
            g[j, d] = mm.select(x[i], gv, f"g{j}_{d}")
            cum[j, d] = mm.select(x[i], [layer.dims[d] // c[j + 1] for c in full[i]], f"cum{j}_{d}")
        for k in range(1, L + 1):
            tile[k, d] = mm.select(x[i], [c[k] for c in full[i]], f"t{k}_{d}")

    tag = id(space)
    A = {-1: (1, 1, 1)}
    for j in range(L):
        A[j] = mm.product([cum[j, d] for d in dims], [(tag, "cum", j, d) for d in dims])
    rel = {t: relevant_dims(layer, t) for t in layer.tensors}
    R = {(j, t): mm.product([f[j, d] for d in dims if d in rel[t]], [(tag, "f", j, d) for d in dims if d in rel[t]])
         for j in range(L) for t in layer.tensors}

    def any_of(terms: list[tuple], prefix: str) -> tuple:
        return mm.maximum(terms, prefix) if terms else (0, 0, 0)

    # Stationary choice per data-moving level, with the admissibility rule.
    irr = irrelevant(layer)
    y = {}
    for j in range(L - 1):
        choice = mm.onehot(len(space.stationary), f"stat{j}")
        y[j] = dict(zip(space.stationary, choice, strict=True))
        moving = [g[j, d] for d in dims]
        empty = _none(mm, moving, f"empty{j}")
        for s_choice, lit in y[j].items():
            if isinstance(lit, int) and lit == 0:
                continue
            lits = ([] if isinstance(lit, int) else [lit]) + enforce
            wanted = [d for d in dims if (not irr[d] if s_choice is None else irr[d] == {s_choice})]
            if any(g[j, d][0] == 1 for d in wanted if isinstance(g[j, d][0], int)):
                continue
            if s_choice is None and isinstance(empty, int) and empty == 1:
                continue
            witnesses = [g[j, d][0] for d in wanted if not isinstance(g[j, d][0], int)]
            mm.m.AddBoolOr(witnesses + (_lits(empty) if s_choice is None else [])).OnlyEnforceIf(lits)
        if None in y[j] and not isinstance(y[j][None], int):
            for e in _lits(empty):
                mm.m.AddImplication(e, y[j][None])

    # Loads per tensor and storage level: the recurrence of the space's canonical orders.
    V = {(0, t): (1, 1, 1) for t in layer.tensors}
    for j in range(L - 1):
        for t in layer.tensors:
            has = any_of([g[j, d] for d in dims if d in rel[t]], f"has{j}_{t}")
            prev, all_j = V[j, t], A[j]
            own = mm.product([A[j - 1], R[j, t]], [(tag, "A", j - 1), (tag, "R", j, t)]) if j else R[j, t]
            lit = y[j].get(t, 0)
            cases = [([_neg(has)], prev), ([has, lit], own), ([has, _neg(lit)], all_j)]
            V[j + 1, t] = _cases(mm, cases, f"V{j + 1}_{t}")
    Dist = {}
    for k in range(1, L):
        Dist[k] = mm.product([R[j, out_t] for j in range(k)], [(tag, "R", j, out_t) for j in range(k)])

    # Tile bytes per tensor per level (footprints with halos, clipped to the shape).
    Bt = {}
    for t, tensor in layer.tensors.items():
        accesses = [a for a in [layer.expr.output, *layer.expr.accesses] if a.tensor == t]
        for k in range(1, L + 1):
            axes, keys = [], []
            for axis, n in enumerate(tensor.shape):
                per_access = []
                for a in accesses:
                    idx = a.indices[axis]
                    if len(idx.terms) == 1 and abs(idx.terms[0][1]) == 1 and layer.dims[idx.terms[0][0]] <= n:
                        per_access.append(tile[k, idx.terms[0][0]])
                        continue
                    span = _add((1, 1, 1), *(_scale(_add(tile[k, d], (-1, -1, -1)), abs(c)) for d, c in idx.terms))
                    if span[1] >= n:
                        per_access.append((n, n, n))
                    elif span[2] <= n:
                        v = mm.var(span[1], span[2], f"fp{k}_{t}{axis}")
                        mm.m.Add(v == span[0])
                        per_access.append((v, span[1], span[2]))
                    else:
                        v = mm.var(span[1], n, f"fp{k}_{t}{axis}")
                        mm.m.AddMinEquality(v, [span[0], n])
                        per_access.append((v, span[1], n))
                axes.append(mm.maximum(per_access, f"fpx{k}_{t}{axis}") if len(per_access) > 1 else per_access[0])
                keys.append((tag, "fp", k, t, axis))
            Bt[k, t] = mm.product(axes + [(dtype_bytes(tensor.dtype),) * 3], keys + ["const"])

    # Placement, double buffering, streams.
    z = {t: mm.onehot(len(alts), f"place_{t}") for t, alts in zip(space.tensors, space.paths, strict=True)}
    db = {}
    for t, storage in space.double:
        alts = space.paths[space.tensors.index(t)]
        on = [lit for p, lit in zip(alts, z[t], strict=True) if storage in p[1:]]
        v = mm.m.NewBoolVar(mm.name(f"db_{t}_{storage}"))
        if not any(isinstance(o, int) for o in on):  # double buffering only where the tensor is placed
            mm.m.AddBoolOr(on).OnlyEnforceIf(v)
        db[t, storage] = v
    busy: dict[str, list] = {}
    first: dict[str, list] = {}
    stalls, epilogue, energy, need, chains = [], [], [], {}, []
    for t, alts in zip(space.tensors, space.paths, strict=True):
        for path, lit in zip(alts, z[t], strict=True):
            for k in range(1, len(path)):
                traffic = mm.product([V[k, t], Bt[k, t]], [(tag, "V", k, t), (tag, "Bt", k, t)])
                dbl = db.get((t, path[k]), 0)
                u_single = mm.when(Bt[k, t], [lit, _neg(dbl)], "need")
                u_double = mm.when(_scale(Bt[k, t], 2), [lit, dbl], "need2")
                need.setdefault(path[k], []).extend([u_single, u_double])
                if t != out_t:
                    s = transfer(acg, t, path[k - 1], path[k], k, "load", 1, 1)
                    moved = mm.when(traffic, [lit], "moved")
                    _charge(busy, s, moved, scale)
                    energy.append(_scale(moved, int(s.pj_per_byte * escale)))
                    for e in s.engines:
                        first.setdefault(e, []).append(_scale(mm.when(Bt[k, t], [lit], "first"), _per(s, scale)))
                    stall = _add(traffic, _scale(Bt[k, t], -1))
                    stalls.append(_scale(mm.when(stall, [lit, _neg(dbl)], "stall"), _per(s, scale)))
                    continue
                wb = transfer(acg, t, path[k], path[k - 1], k, "writeback", 1, 1)
                moved = mm.when(traffic, [lit], "wb")
                _charge(busy, wb, moved, scale)
                energy.append(_scale(moved, int(wb.pj_per_byte * escale)))
                epilogue.append(_scale(mm.when(Bt[k, t], [lit], "epi"), _per(wb, scale)))
                stall_terms = [_scale(_add(traffic, _scale(Bt[k, t], -1)), _per(wb, scale))]
                distinct_bytes = mm.product([Dist[k], Bt[k, t]], [(tag, "D", k), (tag, "Bt", k, t)])
                back = _add(traffic, _scale(distinct_bytes, -1))
                if acg.edge(path[k - 1], path[k]) is None:
                    mm.m.Add(back[0] == 0).OnlyEnforceIf(_lits(lit) + enforce)
                else:
                    rl = transfer(acg, t, path[k - 1], path[k], k, "reload", 1, 1)
                    moved_back = mm.when(back, [lit], "rl")
                    _charge(busy, rl, moved_back, scale)
                    energy.append(_scale(moved_back, int(rl.pj_per_byte * escale)))
                    stall_terms.append(_scale(back, _per(rl, scale)))
                stalls.append(mm.when(_add(*stall_terms), [lit, _neg(dbl)], "stall"))
                chains.append((_add(*stall_terms[:1], _scale(Bt[k, t], _per(wb, scale)), *stall_terms[1:]), [lit, dbl]))
            # operand accesses by every instruction
            st = acg.storages[path[-1]]
            pj = exact(st.read_pj_per_byte) + (exact(st.write_pj_per_byte) if t == out_t else 0)
            acc = mm.product([A[L - 1], Bt[L, t]], [(tag, "A", L - 1), (tag, "Bt", L, t)])
            energy.append(_scale(mm.when(acc, [lit], "acc"), int(pj * escale)))

    for storage, terms in need.items():
        mm.m.Add(sum(u[0] for u in terms) <= acg.storages[storage].total_capacity).OnlyEnforceIf(enforce)

    # Instruction extents and cycles.
    for e, extent in cap.fixed.items():
        fused = b.fused(e)
        if len(fused) > 1:
            p = mm.product([tile[L, d] for d in fused], [(tag, "t", L, d) for d in fused])
            mm.m.Add(p[0] <= extent).OnlyEnforceIf(enforce)
    cycles = _instruction_cycles(mm, space, cap, tile, tag)
    compute = mm.product([A[L - 1], cycles], [(tag, "A", L - 1), (tag, "cyc")])
    inner = [f[L - 1, d] for d in dims]
    last_tile = mm.product(inner + [cycles], [(tag, "f", L - 1, d) for d in dims] + [(tag, "cyc")])

    prologue = mm.maximum([_add((0, 0, 0), *terms) for terms in first.values()] or [(0, 0, 0)], "prologue")
    serial = _add(prologue, _scale(compute, scale), *stalls, *epilogue)
    bounds = [serial] + [_add(_scale(last_tile, scale), *terms) for e, terms in busy.items()]
    for chain, lits in chains:  # the partial-sum chain of a double-buffered output (see cost.py)
        term = mm.when(_add(chain, _scale(compute, scale)), lits, "chain")
        half = mm.var(term[1] // 2, term[2] // 2, "half")
        mm.m.Add(2 * half == term[0])
        bounds.append((half, term[1] // 2, term[2] // 2))
    latency = mm.maximum(bounds, "latency")
    points = math.prod(layer.dims.values())
    energy_total = _add((points * int(exact(cap.pj_per_op) * escale),) * 3, *energy)
    chosen = {"x": x, "z": z, "y": y, "db": db}
    return {"latency": latency, "energy": energy_total, "vars": chosen}


def _per(s, scale: int) -> int:
    """Scaled cycles per byte of a stream."""
    value = Fraction(scale) / s.bandwidth
    assert value.denominator == 1
    return int(value)


def _charge(busy: dict, s, moved: tuple, scale: int) -> None:
    for e in s.engines:
        busy.setdefault(e, []).append(_scale(moved, _per(s, scale)))


def _neg(lit):
    if isinstance(lit, int):
        return 1 - lit
    if isinstance(lit, tuple):
        lit = lit[0]
        if isinstance(lit, int):
            return 1 - lit
    return lit.Not()


def _lits(lit) -> list:
    if isinstance(lit, tuple):
        lit = lit[0]
    return [] if isinstance(lit, int) else [lit]


def _none(mm: _Model, terms: list[tuple], prefix: str):
    """A literal true iff every 0/1 term is 0 (an int when decided)."""
    if any(isinstance(t[0], int) and t[0] == 1 for t in terms):
        return 0
    free = [t[0] for t in terms if not isinstance(t[0], int)]
    if not free:
        return 1
    v = mm.m.NewBoolVar(mm.name(prefix))
    mm.m.Add(sum(free) == 0).OnlyEnforceIf(v)
    mm.m.Add(sum(free) >= 1).OnlyEnforceIf(v.Not())
    return v


def _cases(mm: _Model, cases: list[tuple[list, tuple]], prefix: str) -> tuple:
    """A variable equal to the value of the case whose literals all hold (cases are exhaustive)."""
    live = []
    for lits, value in cases:
        lits = [(x[0] if isinstance(x, tuple) else x) for x in lits]
        if any(isinstance(x, int) and x == 0 for x in lits):
            continue
        live.append(([x for x in lits if not isinstance(x, int)], value))
    if len(live) == 1 and not live[0][0]:
        return live[0][1]
    lo, hi = min(v[1] for _, v in live), max(v[2] for _, v in live)
    v = mm.var(lo, hi, prefix)
    for lits, value in live:
        mm.m.Add(v == value[0]).OnlyEnforceIf(lits)
    return (v, lo, hi)


def _instruction_cycles(mm: _Model, space: Space, cap, tile: dict, tag) -> tuple:
    """Cycles of one instruction: the capability's formula over its streaming dims' extents, as a
    one-hot over the achievable extent combinations."""
    streaming = cap.streaming_dims
    if not streaming or not (cap.cycles.names & set(streaming)):
        c = cap.instruction_cycles({e: 1 for e in streaming})
        return (c, c, c)
    L = space.levels
    options = dict(zip(space.dims, space.options, strict=True))
    values, exts = [], []
    for e in streaming:
        fused = space.binding.fused(e)
        achievable = {1}
        for d in fused:
            achievable = {v * c[-1] for v in achievable for c in options[d]}
        values.append(sorted(achievable))
        exts.append(mm.product([tile[L, d] for d in fused], [(tag, "t", L, d) for d in fused]))
    combos = list(itertools.product(*values))
    if len(combos) > 20000:
        raise NoMapping(f"{cap.name}: too many instruction shapes ({len(combos)}) for the exact model")
    lits = mm.onehot(len(combos), "shape")
    for k, ext in enumerate(exts):
        if not isinstance(ext[0], int):
            mm.m.Add(ext[0] == sum(c[k] * lit for c, lit in zip(combos, lits, strict=True)))
    return mm.select(lits, [cap.instruction_cycles(dict(zip(streaming, c, strict=True))) for c in combos], "cyc")


def solve(layer: Layer, acg: ACG, objective: str = "latency", time_limit: float = 10.0, workers: int = 1,
          seed: int = 0) -> Solution:
    """The best mapping of `layer` on `acg` under the cost model (see the module doc)."""
    start = time.perf_counter()
    spaces = layer_spaces(layer, acg)
    if not spaces:
        raise NoMapping(explain_infeasible(layer, acg))
    scale, escale = scales(spaces, acg)
    mm = _Model()
    picks = mm.onehot(len(spaces), "binding")
    built = [_build_space(mm, s, acg, p, scale, escale) for s, p in zip(spaces, picks, strict=True)]

    if objective == "edp":
        qlat, qen = _quanta(layer, spaces, acg, scale, escale)
    objs = []
    for b, pick in zip(built, picks, strict=True):
        if objective == "latency":
            value = b["latency"]
        elif objective == "energy":
            value = b["energy"]
        else:
            lat = mm.var(0, QUANTUM_STEPS * 64, "qlat")
            en = mm.var(0, QUANTUM_STEPS * 64, "qen")
            mm.m.AddDivisionEquality(lat, b["latency"][0], qlat)
            mm.m.AddDivisionEquality(en, b["energy"][0], qen)
            prod = mm.var(0, (QUANTUM_STEPS * 64) ** 2, "qedp")
            mm.m.AddMultiplicationEquality(prod, [lat, en])
            value = (prod, 0, (QUANTUM_STEPS * 64) ** 2)
        objs.append((value, pick))
    lo = min(v[1] for v, _ in objs)
    hi = max(v[2] for v, _ in objs)
    obj = mm.var(lo, hi, "objective")
    for value, pick in objs:
        mm.m.Add(obj == value[0]).OnlyEnforceIf(_lits(pick))
    mm.m.Minimize(obj)

    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = workers
    p.random_seed = seed
    p.max_time_in_seconds = time_limit
    if workers > 1:
        p.interleave_search = True  # deterministic parallel search
    status = solver.Solve(mm.m)
    seconds = time.perf_counter() - start
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        reason = explain_infeasible(layer, acg) if status == cp_model.INFEASIBLE else \
            f"no mapping found within the time limit of {time_limit:g} s"
        return Solution("cpsat", objective, "infeasible", None, None, None, seconds, reason=reason)

    k = next(i for i, pk in enumerate(picks) if _value(solver, pk))
    space, chosen = spaces[k], built[k]["vars"]
    chains = tuple(opts[next(i for i, lit in enumerate(xs) if _value(solver, lit))]
                   for opts, xs in zip(space.options, chosen["x"], strict=True))
    paths = tuple(next(i for i, lit in enumerate(chosen["z"][t]) if _value(solver, lit)) for t in space.tensors)
    stationary = tuple(next(s for s, lit in chosen["y"][j].items() if _value(solver, lit))
                       for j in range(space.levels - 1))
    double = tuple(sorted(pair for pair, lit in chosen["db"].items() if _value(solver, lit)))
    mapping = decode(space, Point(chains, paths, stationary, double), acg)
    cost = evaluate(mapping, acg)
    divisor = {"latency": scale, "energy": escale}.get(objective)
    if divisor:
        model_value = Fraction(int(solver.ObjectiveValue()), divisor)
        bound = Fraction(int(math.ceil(solver.BestObjectiveBound())), divisor)
    else:
        model_value = cost.edp
        ratio = cost.edp / max(int(solver.ObjectiveValue()), 1)
        bound = Fraction(int(math.ceil(solver.BestObjectiveBound()))) * ratio
    found = "optimal" if status == cp_model.OPTIMAL else "feasible"
    return Solution("cpsat", objective, found, mapping, model_value, min(bound, model_value), seconds)


def _value(solver: cp_model.CpSolver, lit) -> bool:
    return bool(lit) if isinstance(lit, int) else bool(solver.BooleanValue(lit))


def _quanta(layer: Layer, spaces: list[Space], acg: ACG, scale: int, escale: int) -> tuple[int, int]:
    """EDP quanta: the greedy floor's latency and energy split into QUANTUM_STEPS steps."""
    best = None
    for s in spaces:
        m = greedy_mapping(layer, s.binding, acg, grow=False)
        if m is not None:
            c = evaluate(m, acg)
            if best is None or c.edp < best.edp:
                best = c
    if best is None:
        return 1, 1
    return (max(1, int(best.latency * scale) // QUANTUM_STEPS), max(1, int(best.energy * escale) // QUANTUM_STEPS))
