"""One exact CP-SAT model per layer: binding, tiles at every level (padded ones included), spatial
factors, loop order, placement and double buffering, chosen jointly under the cost model of
`mapper/mapping/cost.py` (the encoding is `solver/cpbuild.py`).

Scaling. Time is counted in 1/SCALE cycles and energy in 1/ESCALE pJ, SCALE and ESCALE the least
multiples of every bandwidth's and pJ figure's denominator, so every coefficient is an integer and
the decoded mapping's `cost.evaluate` equals the objective exactly. Every domain is derived from
the layer (a tensor moves at most its reuse x its bytes), so the largest term of the objective is
known before solving; only if it would exceed `BUDGET` (~2**58) is the scale lowered, the
coefficients rounded down: the model is then a relaxation, its optimum a proven lower bound, and
the result says so (`Solution.model_objective` beside the exact `objective`).

EDP is not one model (latency x energy overflows int64 in exact units): it is an epsilon-constraint
sweep over the latency/energy Pareto front. Minimise latency (bound Lb), then energy; then, while
the budget lasts, minimise energy among the mappings faster than the last one found and than
incumbent EDP / energy bound. Every mapping left out is proven no better than the incumbent, and
the mappings still in play have EDP >= Lb x their energy bound: a proven bound, never a rescaling
of the incumbent.

Ties. Latency and energy are lexicographic (`cost.rank`): after the objective's solve, a second
solve on the same model minimises the tie-breaker (latency: energy; energy: latency) with the
objective held at most at the value found (model units), hinted with the first solution. It gets
what the first solve left of the deterministic limit and of the wall cap, at least `TIE_FLOOR` of
each (fixed, so deterministic; a layer may take 1 + TIE_FLOOR times its limit). The first solve is
today's single solve, so the objective, status, bound and gap never get worse; the second's mapping
replaces the first's only if its `cost.rank` key is smaller. `Solution.tie_break`: 'optimal' when
the tie-breaker is proven minimal over the mappings no worse in the objective (exact model).

Smaller models, same optima. The best greedy mapping (the search's hint) is an incumbent; a binding
whose floor (`floor_of`: its fewest instructions times its shortest interval, a lower bound of its
compute cycles) exceeds it cannot hold the optimum, nor a tie, and is not built (a floor equal to
the incumbent's figure is kept) (latency and energy only: EDP
reports latency and energy bounds over the whole space).

Limits. `time_limit` (nominal seconds) is a limit on CP-SAT's deterministic time, its own count of
work done (`DET_PER_SECOND` units per second): the same inputs give the same mapping under any
machine load. On an idle core of the development machine a long search ran about one unit per
second of wall time; short solves spend most of their wall time in loading and presolve, which
count little. A wall-clock cap of `WALL_FACTOR` x the limit (at least `WALL_MIN` s) only guards
against runaway solves. One worker and a fixed seed: deterministic.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from fractions import Fraction

from ortools.sat.python import cp_model

from mapper.mapping.cost import TIE_BREAK, evaluate, exact, rank, static_pj_per_cycle, transfer
from mapper.mapping.mapping import Mapping
from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.cpbuild import Built, Scales, build
from solver.cpmodel import Model, interruptible_solve, lits
from solver.space import (
    Point,
    Solution,
    Space,
    compute_floor,
    decode,
    explain_infeasible,
    greedy_point,
    spaces_of,
)

DET_PER_SECOND = 1.0  # CP-SAT deterministic units per nominal second of the time limit
BUDGET = 2**58  # the largest objective term a model may reach (sums stay below cpmodel.LIMIT)
SAFE = 2**40  # terms below it are not checked for sums past int64 (CP-SAT's Validate; huge layers only)
MAX_SCALE = (2**32, 2**56)  # the largest exact time and energy scales (units per cycle, per pJ)
QUANTUM, PRODUCT = 2**30, 2**60  # EDP: latency in at most QUANTUM quanta, the product below PRODUCT
WALL_FACTOR, WALL_MIN = 10, 60.0
TIE_FLOOR = 0.1  # the tie-break solve's least share of the layer's limits (see the module doc)
# CP-SAT's LP relaxation of the model's products (McCormick cuts over wide domains) costs far more than
# it prunes here: with per-transfer counts in the model (edge set-up latency), level 1 (the default)
# spent 40 s of wall time in the LP on ResNet-50 conv1 for a proof that level 0 finds in 1 s.
LINEARIZATION = 0
# Presolve probing off (level 0), not CP-SAT's default 2: level 2 probes every Boolean of the model (its
# thousands of tile-choice literals) and was two thirds of the deterministic time of a latency solve
# on hvx_like; level 1 still spent 3 of the 10 units of a tesla_npu_like GEMM probing, which left
# DeepBench's GEMMs unproven there (docs/results/solve-times.md#gemm). Level 1 was kept once because
# without it the presolve's fixpoint loops took 3.7x the CPU time on a genesys GEMM: that was the
# lin_max presolve of `cpmodel.Model.maximum` over long sums, since removed. The optima are the same
# (tests hold CP-SAT equal to exhaustive search).
PROBING = 0
# One presolve round, not CP-SAT's default 3: a DeepBench GEMM's M dim has up to ~18,000 tile chains,
# whose one-hots presolve expands to ~330,000 at-most-ones, and each round's clause-to-exactly-one
# and at-most-one overlap passes spent their 1-unit work limits again: 6 of the 10 units of
# tesla_npu_like's 7680 x 16 x 2560, which then ended with a 20 % gap (one round: proven in 7.9).
PRESOLVE_ITERATIONS = 1


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
    time_scale, energy_scale = 2 * _lcm_of(bws), _lcm_of(p.denominator for p in pjs)  # 2: the chain halves
    static = static_pj_per_cycle(acg) * energy_scale / time_scale  # energy units per time unit
    return time_scale, energy_scale * static.denominator


@dataclass
class _Problem:
    """The model of a layer, with one latency and one energy variable over its bindings."""

    mm: Model
    spaces: list[Space]
    picks: list
    built: list[Built]
    sc: Scales
    latency: object
    energy: object


class OutOfRange(Exception):
    """The layer's figures do not fit CP-SAT's 64-bit integers at any scale the model takes."""


def _problem(spaces: list[Space], acg: ACG) -> _Problem:
    time_scale, energy_scale = scales(spaces, acg)
    # A bandwidth written with many digits (584.7619047619 B/cycle) makes the exact time scale huge
    # (2**43): its coefficients would leave CP-SAT's 64-bit integers. Past MAX_SCALE the model
    # rounds, a relaxation, as when a term exceeds the budget below.
    sc = Scales(min(time_scale, MAX_SCALE[0]), min(energy_scale, MAX_SCALE[1]),
                time_scale <= MAX_SCALE[0], energy_scale <= MAX_SCALE[1])
    budget = BUDGET
    for _ in range(8):  # rescaling lands near the budget, not always under it: another round then
        pb = _model(spaces, acg, sc)
        lat_hi, en_hi = (max(b.latency[2] for b in pb.built), max(b.energy[2] for b in pb.built))
        if lat_hi <= budget and en_hi <= budget:
            if max(lat_hi, en_hi) <= SAFE or not pb.mm.m.Validate():
                return pb
            budget = max(lat_hi, en_hi) >> 6  # a sum of large terms overflows CP-SAT's int64 check
        sc = _rescaled(sc, lat_hi, en_hi, budget, acg)
    raise OutOfRange(f"latency up to {lat_hi / sc.time:.3g} cycles or energy up to {en_hi / sc.energy:.3g} "
                     f"pJ is past the model's range (2**58 units)")


def _rescaled(sc: Scales, lat_hi: int, en_hi: int, budget: int, acg: ACG) -> Scales:
    """Lower scales (a relaxation: coefficients round down) so that the largest terms fit `budget`."""
    sc = Scales(max(1, sc.time * budget // max(lat_hi, 1)) if lat_hi > budget else sc.time,
                max(1, sc.energy * budget // max(en_hi, 1)) if en_hi > budget else sc.energy,
                sc.exact_time and lat_hi <= budget, sc.exact_energy and en_hi <= budget)
    if (static_pj_per_cycle(acg) * sc.energy / sc.time).denominator != 1:  # static energy rounds down
        sc = Scales(sc.time, sc.energy, sc.exact_time, False)
    return sc


def _model(spaces: list[Space], acg: ACG, sc: Scales) -> _Problem:
    """The model of the bindings at scales `sc`, with one latency and one energy variable."""
    mm = Model()
    picks = mm.onehot(len(spaces), "binding")
    figures = []
    try:
        built = [build(mm, s, acg, p, sc) for s, p in zip(spaces, picks, strict=True)]
        if max(t[2] for b in built for t in (b.latency, b.energy)) > BUDGET:  # to be rescaled: no figures
            return _Problem(mm, spaces, picks, built, sc, None, None)
        for which, terms in (("latency", [b.latency for b in built]), ("energy", [b.energy for b in built])):
            v = mm.var(min(t[1] for t in terms), max(t[2] for t in terms), which)
            for term, pick in zip(terms, picks, strict=True):
                mm.m.Add(v == term[0]).OnlyEnforceIf(lits(pick))
            figures.append(v)
    except (TypeError, OverflowError):  # OR-tools refuses a coefficient past 64 bits
        raise OutOfRange("a coefficient of the model exceeds 64 bits") from None
    return _Problem(mm, spaces, picks, built, sc, *figures)


@dataclass(frozen=True)
class _Run:
    status: int
    mapping: Mapping | None
    point: tuple[int, Point] | None  # (binding index, point) of the solution
    latency: int  # model units of the solution found (0 without one)
    energy: int
    bound: int  # proven lower bound of the minimised figure, model units
    det: float  # deterministic time used
    wall: float


def _run(pb: _Problem, acg: ACG, minimise, det_limit: float, wall_limit: float, seed: int,
         workers: int) -> _Run:
    """Minimise 'latency', 'energy' or a given variable."""
    pb.mm.m.Minimize({"latency": pb.latency, "energy": pb.energy}.get(minimise, minimise)
                     if isinstance(minimise, str) else minimise)
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = workers
    p.random_seed = seed
    p.linearization_level = LINEARIZATION
    p.cp_model_probing_level = PROBING
    p.max_presolve_iterations = PRESOLVE_ITERATIONS
    p.max_deterministic_time = max(det_limit, 1e-3)
    p.max_time_in_seconds = max(wall_limit, 1e-3)
    if workers > 1:
        p.interleave_search = True  # deterministic parallel search
    status = interruptible_solve(solver, pb.mm.m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _Run(status, None, None, 0, 0, int(math.ceil(solver.BestObjectiveBound()))
                    if status == cp_model.UNKNOWN else 0, solver.deterministic_time, solver.wall_time)
    k, point = _solution(pb, solver)
    return _Run(status, decode(pb.spaces[k], point, acg), (k, point), solver.Value(pb.latency),
                solver.Value(pb.energy), int(math.ceil(solver.BestObjectiveBound())), solver.deterministic_time,
                solver.wall_time)


def _solution(pb: _Problem, solver: cp_model.CpSolver) -> tuple[int, Point]:
    def on(lit) -> bool:
        return bool(lit) if isinstance(lit, int) else bool(solver.BooleanValue(lit))

    k = next(i for i, pk in enumerate(pb.picks) if on(pk))
    space, chosen = pb.spaces[k], pb.built[k]
    chains = tuple(opts[next(i for i, lit in enumerate(xs) if on(lit))]
                   for opts, xs in zip(space.options, chosen.chains, strict=True))
    paths = tuple(next(i for i, lit in enumerate(chosen.paths[t]) if on(lit)) for t in space.tensors)
    stationary = tuple(next(s for s, lit in chosen.stationary[j].items() if on(lit)) for j in range(space.levels - 1))
    double = tuple(sorted(pair for pair, lit in chosen.double.items() if on(lit)))
    return k, Point(chains, paths, stationary, double)


def point_values(pb: _Problem, k: int, point: Point) -> list[tuple[object, bool]]:
    """The value of every decision literal of the model (a constant where presolve fixed one) at
    binding k's `point`: the binding's pick, then `Built`'s chains, paths, stationary choices and
    double buffering, in the order the hints are given."""
    space, built = pb.spaces[k], pb.built[k]

    def onehot(literals: list, on: int | None) -> list[tuple[object, bool]]:
        return [(lit, i == on) for i, lit in enumerate(literals)]

    out = onehot(pb.picks, k)
    for opts, xs, chain in zip(space.options, built.chains, point.chains, strict=True):
        out += onehot(xs, opts.index(chain))
    for t, i in zip(space.tensors, point.paths, strict=True):
        out += onehot(built.paths[t], i)
    for j, choice in enumerate(point.stationary):
        out += onehot(list(built.stationary[j].values()), list(built.stationary[j]).index(choice))
    return out + [(lit, pair in point.double) for pair, lit in built.double.items()]


def _hint(pb: _Problem, k: int, point: Point) -> None:
    """Suggest a point of binding k to the solver (its search starts from it)."""
    m = pb.mm.m
    m.ClearHints()
    for lit, on in point_values(pb, k, point):
        if not isinstance(lit, int):
            m.AddHint(lit, on)


def _greedy(spaces: list[Space], acg: ACG, objective: str) -> tuple[tuple[Fraction, ...], Space, Point] | None:
    """The best legal greedy mapping that is a point of the space (its `cost.rank` key, space and
    point): the search's starting hint, the incumbent that prunes bindings, and the fallback when
    the search finds nothing within its limit (on big models the root relaxation alone can take a
    while)."""
    best = None
    for space in spaces:
        point = greedy_point(space, acg)
        if point is not None:
            key = rank(evaluate(decode(space, point, acg), acg), objective)
            if best is None or key < best[0]:
                best = (key, space, point)
    return best


def floor_of(space: Space, acg: ACG, objective: str) -> Fraction:
    """A lower bound of the objective over every point of the space (latency: `compute_floor`;
    energy: every operation's energy plus the static energy of that many cycles)."""
    cycles = compute_floor(space, acg)
    if objective == "latency":
        return Fraction(cycles)
    cap = acg.capability(space.binding.capability)
    return math.prod(space.layer.dims.values()) * exact(cap.pj_per_op) + static_pj_per_cycle(acg) * cycles


def prune(spaces: list[Space], acg: ACG, objective: str, incumbent: Fraction | None) -> list[Space]:
    """The spaces whose floor does not exceed the incumbent's figure (the others cannot hold the
    optimum, so the model leaves them out and stays exact). A floor equal to the incumbent's figure
    is kept: that binding may hold a mapping as fast (as frugal) and better on the tie-breaker. Not
    for EDP: its latency and energy bounds (`Solution.bounds`) are proven over the whole space."""
    if incumbent is None or objective == "edp":
        return spaces
    return [s for s in spaces if floor_of(s, acg, objective) <= incumbent]


def solve(layer: Layer, acg: ACG, objective: str = "latency", time_limit: float = 10.0, workers: int = 1,
          seed: int = 0, tie_break: bool = True, latency_cap: Fraction | None = None) -> Solution:
    """The best mapping of `layer` on `acg` under the cost model (see the module doc): the objective,
    then (latency, energy) its tie-breaker with the objective held at the value found. Without
    `tie_break`, a first solve that proves its objective is the answer (`tie_break` None: not sought;
    the tie-break solve could not change the objective, only the tie-breaker); one that does not prove
    it still gets the tie-break solve, which may improve the objective. `latency_cap` (cycles): only
    mappings at most that slow (exact where the time scale is; `solver/pareto.py` sweeps it)."""
    start = time.perf_counter()
    spaces = spaces_of(layer, acg)
    greedy = _greedy(spaces, acg, objective)
    if greedy is not None and latency_cap is not None and evaluate(decode(greedy[1], greedy[2], acg), acg).latency \
            > latency_cap:
        greedy = None  # neither an incumbent nor a hint: it breaks the cap
    try:
        pb = _problem(prune(spaces, acg, objective, greedy[0][0] if greedy else None), acg)
    except OutOfRange as exc:
        return _error(objective, start, str(exc))
    if latency_cap is not None:
        pb.mm.m.Add(pb.latency <= math.floor(latency_cap * pb.sc.time))
    wall = max(WALL_MIN, WALL_FACTOR * time_limit)
    det = time_limit * DET_PER_SECOND
    if pb.mm.clipped:
        return _error(objective, start, f"{pb.mm.clipped} domains of the model exceed 2**60")
    fallback = None if greedy is None else (pb.spaces.index(greedy[1]), greedy[2])
    if fallback is not None:
        _hint(pb, *fallback)
    if objective == "edp":
        return _edp(pb, layer, acg, det, wall, seed, workers, start, fallback)
    first = _run(pb, acg, objective, det, wall, seed, workers)
    if first.mapping is None and first.status == cp_model.UNKNOWN and fallback is not None:
        first = _greedy_run(pb, first, fallback, acg)
    if first.mapping is None:
        return _no_mapping(first, pb, layer, acg, objective, det, start)
    if fallback is not None and first.status != cp_model.OPTIMAL and \
            greedy[0] < rank(evaluate(first.mapping, acg), objective):
        # the search stopped on a point worse than its hint (CP-SAT may drop a hint): keep the hint
        first = _greedy_run(pb, first, fallback, acg)
    divisor, is_exact = (pb.sc.time, pb.sc.exact_time) if objective == "latency" else \
        (pb.sc.energy, pb.sc.exact_energy)
    if tie_break or Fraction(first.bound, divisor) < evaluate(first.mapping, acg).objective(objective):
        run, tie = _tie_break(pb, acg, objective, first, det, wall, seed, workers)
    else:
        run, tie = first, None
    true = evaluate(run.mapping, acg).objective(objective)
    model_value = Fraction(run.latency if objective == "latency" else run.energy, divisor)
    bound = min(Fraction(first.bound, divisor), true)
    status = "optimal" if bound == true else "feasible"
    return Solution("cpsat", objective, status, run.mapping, true, bound, time.perf_counter() - start,
                    limit=_limit(first, det, wall), model_objective=model_value, exact=is_exact, tie_break=tie)


def _tie_break(pb: _Problem, acg: ACG, objective: str, first: _Run, det_limit: float, wall: float, seed: int,
               workers: int) -> tuple[_Run, str]:
    """Minimise the tie-breaker (`TIE_BREAK`) subject to the objective <= its value in `first` (model
    units), hinted with `first`'s point, within what `first` left of the limits (at least `TIE_FLOOR`
    of them). Its mapping replaces `first`'s only if its `cost.rank` key is smaller (in a relaxed
    model the held value is not the exact figure). 'optimal' when the tie-breaker is proven minimal
    over the mappings no worse in the objective (exact model), else 'feasible'."""
    figures = {"latency": (pb.latency, first.latency), "energy": (pb.energy, first.energy)}
    held, value = figures[objective]
    pb.mm.m.Add(held <= value)
    second = figures[TIE_BREAK[objective]][0]
    _hint(pb, *first.point)
    r = _run(pb, acg, second, max(det_limit - first.det, TIE_FLOOR * det_limit),
             max(wall - first.wall, TIE_FLOOR * wall), seed, workers)
    proven = r.status == cp_model.OPTIMAL and pb.sc.exact_time and pb.sc.exact_energy
    better = r.mapping is not None and rank(evaluate(r.mapping, acg), objective) < \
        rank(evaluate(first.mapping, acg), objective)
    tie = "optimal" if proven else "feasible"
    if not better:
        return first, tie
    return replace(r, bound=first.bound, det=first.det + r.det, wall=first.wall + r.wall), tie


def _greedy_run(pb: _Problem, run: _Run, fallback: tuple[int, Point], acg: ACG) -> _Run:
    """The run with the greedy point as its solution (scored in model units by the cost model)."""
    k, point = fallback
    mapping = decode(pb.spaces[k], point, acg)
    cost = evaluate(mapping, acg)
    return _Run(cp_model.FEASIBLE, mapping, fallback, math.floor(cost.latency * pb.sc.time),
                math.floor(cost.energy * pb.sc.energy), run.bound, run.det, run.wall)


def _limit(run: _Run, det_limit: float, wall: float) -> str:
    if run.status in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
        return ""
    if run.wall >= wall * 0.99:
        return f"wall-clock cap of {wall:g} s"
    return _det_message(det_limit)


def _det_message(det_limit: float) -> str:
    return f"deterministic time limit ({det_limit / DET_PER_SECOND:g} s nominal, {det_limit:g} CP-SAT units)"


def _error(objective: str, start: float, cause: str) -> Solution:
    return Solution("cpsat", objective, "error", None, None, None, time.perf_counter() - start,
                    reason=f"internal error: {cause}")


def _no_mapping(run: _Run, pb: _Problem, layer: Layer, acg: ACG, objective: str, det_limit: float,
                start: float) -> Solution:
    if run.status == cp_model.MODEL_INVALID:
        return _error(objective, start, f"CP-SAT rejected the model: {pb.mm.m.Validate() or 'invalid'}")
    if run.status == cp_model.INFEASIBLE:
        return Solution("cpsat", objective, "infeasible", None, None, None, time.perf_counter() - start,
                        reason=explain_infeasible(layer, acg))
    limit = _limit(run, det_limit, max(WALL_MIN, WALL_FACTOR * det_limit / DET_PER_SECOND))
    return Solution("cpsat", objective, "infeasible", None, None, None, time.perf_counter() - start,
                    reason=f"no mapping found within the {limit}", limit=limit)


def _edp(pb: _Problem, layer: Layer, acg: ACG, det_limit: float, wall: float, seed: int, workers: int,
         start: float, fallback: tuple[int, Point] | None) -> Solution:
    """Latency, then energy, then their product in quanta (see the module doc)."""
    ts, es = pb.sc.time, pb.sc.energy
    used = [0.0, 0.0]  # deterministic, wall
    best: tuple[Fraction, Mapping] | None = None
    best_point = None
    runs: list[_Run] = []

    def run(minimise, share: float) -> _Run:
        nonlocal best, best_point
        r = _run(pb, acg, minimise, (det_limit - used[0]) * share, wall - used[1], seed, workers)
        runs.append(r)
        used[0] += r.det
        used[1] += r.wall
        if r.mapping is not None:
            value = evaluate(r.mapping, acg).edp
            if best is None or value < best[0]:
                best, best_point = (value, r.mapping), r.point
        return r

    fast = run("latency", 1 / 4)
    if fast.status == cp_model.MODEL_INVALID or fast.status == cp_model.INFEASIBLE:
        return _no_mapping(fast, pb, layer, acg, "edp", det_limit, start)
    if best is None and fallback is not None:
        greedy = decode(pb.spaces[fallback[0]], fallback[1], acg)
        best, best_point = (evaluate(greedy, acg).edp, greedy), fallback
    if best_point is not None:
        _hint(pb, *best_point)
    frugal = run("energy", 1 / 3)
    if best_point is not None:
        _hint(pb, *best_point)
    lat_bound, en_bound = fast.bound, frugal.bound  # model units
    bound = Fraction(lat_bound * en_bound, ts * es)
    last, quanta = frugal, (1, 1)
    if best is not None and lat_bound > 0 and en_bound > 0:
        last, quanta = _edp_product(pb, run, best[0], lat_bound, en_bound)
        if last.status == cp_model.MODEL_INVALID:
            return _no_mapping(last, pb, layer, acg, "edp", det_limit, start)
        if last.status == cp_model.OPTIMAL or last.status == cp_model.FEASIBLE or last.status == cp_model.UNKNOWN:
            bound = max(bound, Fraction(last.bound * quanta[0] * quanta[1], ts * es))
        elif last.status == cp_model.INFEASIBLE:  # nothing beats the incumbent
            bound = best[0]
    if best is None:
        return _no_mapping(last, pb, layer, acg, "edp", det_limit, start)
    return _edp_solution(pb, best, min(bound, best[0]), quanta, runs, used, wall, det_limit, (lat_bound, en_bound),
                         start)


def _edp_product(pb: _Problem, run, incumbent: Fraction, lat_bound: int, en_bound: int) -> tuple[_Run, tuple[int, int]]:
    """Any better mapping has L x E <= U (the incumbent's EDP): cap each figure by U over the other's
    bound, then minimise floor(L / a) x floor(E / b) with quanta (a, b) that keep the product within
    int64. The run and the quanta."""
    ts, es = pb.sc.time, pb.sc.energy
    target = incumbent * ts * es
    lat_cap, en_cap = math.floor(target / en_bound), math.floor(target / lat_bound)
    a = max(1, -(-lat_cap // QUANTUM))
    b = max(1, -(-en_cap * (lat_cap // a) // PRODUCT))
    mm = pb.mm
    mm.m.Add(pb.latency <= lat_cap)
    mm.m.Add(pb.energy <= en_cap)
    ql, qe = mm.var(0, lat_cap // a, "qlat"), mm.var(0, en_cap // b, "qen")
    mm.m.AddDivisionEquality(ql, pb.latency, a)
    mm.m.AddDivisionEquality(qe, pb.energy, b)
    product = mm.var(0, (lat_cap // a) * (en_cap // b), "qedp")
    mm.m.AddMultiplicationEquality(product, [ql, qe])
    return run(product, 1), (a, b)


def _edp_solution(pb: _Problem, best: tuple[Fraction, Mapping], bound: Fraction, quanta: tuple[int, int],
                  runs: list[_Run], used: list[float], wall: float, det_limit: float, bounds: tuple[int, int],
                  start: float) -> Solution:
    """The sweep's best mapping, its proven bound, what stopped the sweep and the quantisation's note."""
    status = "optimal" if bound == best[0] else "feasible"
    limit = ""
    if status != "optimal" and any(r.status not in (cp_model.OPTIMAL, cp_model.INFEASIBLE) for r in runs):
        limit = f"wall-clock cap of {wall:g} s" if used[1] >= 0.99 * wall else _det_message(det_limit)
    exact_model = pb.sc.exact_time and pb.sc.exact_energy
    note = "" if status == "optimal" or limit else f"EDP minimised in quanta of {quanta[0]} x {quanta[1]} " \
        "model units (latency, energy)" + ("" if exact_model else " of a relaxed model (coefficients rounded down)") \
        + ": the gap is the quantisation's"
    figures = (("latency", Fraction(bounds[0], pb.sc.time)), ("energy", Fraction(bounds[1], pb.sc.energy)))
    return Solution("cpsat", "edp", status, best[1], best[0], bound, time.perf_counter() - start, reason=note,
                    limit=limit, exact=exact_model, bounds=figures)
