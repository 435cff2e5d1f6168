"""A CP-SAT model with typed helpers: every integer term is a triple (variable or int, lo, hi).

Domains are kept tight: a product's domain is the product of its factors' (or a sound bound the
caller knows to be tighter), so that no domain and no linear sum comes near int64 overflow
(`LIMIT`). A bound that would exceed it is clipped and counted in `Model.clipped`: the model is then
a restriction (mappings beyond it are left out), which the caller reports.

A maximum's arguments are variables (`Model.named`), never sums. CP-SAT's presolve of a lin_max
whose arguments are long linear expressions (the latency's serial sum and per-engine busy sums: ten
terms and more, coefficients up to ~1e6) ran for minutes in its fixpoint loop, which counts no
deterministic time and does not heed the time limit: 82 s on the 1 x 10 x 8 GEMM on genesys
(tiny_net's fc), which then stopped after presolve with no search at all. With each sum a variable
of its own, defined by one linear equality, the same model presolves in 20 ms and is proven
optimal in 0.07 s (figures: docs/results/solve-times.md#gemm). The model is the same relation.

Interrupts. `interruptible_solve` never lets CP-SAT catch SIGINT: its handler ends the search as if
the time limit were reached (the command carried on with a worse mapping and exit status 0) and
then resets SIGINT to the system's default (a second Ctrl-C killed covenant without cleaning up).
In the main thread the search runs in a helper thread, so that Ctrl-C (a `KeyboardInterrupt`)
stops it at once.
"""

from __future__ import annotations

import threading

from ortools.sat.python import cp_model

LIMIT = 2**60  # every domain and every linear sum of the model stays below this

Term = tuple  # (var | int, lo, hi)
# sum(value_i * var_i) built in one call (a Python sum of products is slow on big one-hots)
_WEIGHTED_SUM = getattr(cp_model.LinearExpr, "weighted_sum", None) or cp_model.LinearExpr.WeightedSum


class Model:
    def __init__(self) -> None:
        self.m = cp_model.CpModel()
        self.products: dict[tuple, Term] = {}
        self.count = 0
        self.clipped = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def var(self, lo: int, hi: int, prefix: str):
        if hi > LIMIT:  # counted: the solver then reports the model as out of range, never solves it
            self.clipped += 1
            lo, hi = min(lo, LIMIT), LIMIT
        return self.m.NewIntVar(lo, hi, self.name(prefix))

    def onehot(self, n: int, prefix: str) -> list:
        if n == 1:
            return [1]
        bs = [self.m.NewBoolVar(self.name(prefix)) for _ in range(n)]
        self.m.AddExactlyOne(bs)
        return bs

    def select(self, bools: list, values: list[int], prefix: str) -> Term:
        """sum(value_i * bool_i) over a one-hot: a constant if all values agree."""
        lo, hi = min(values), max(values)
        if lo == hi:
            return (lo, lo, lo)
        v = self.m.NewBoolVar(self.name(prefix)) if (lo, hi) == (0, 1) else self.var(lo, hi, prefix)
        self.m.Add(v == _WEIGHTED_SUM(bools, values))
        return (v, lo, hi)

    def product(self, terms: list[Term], keys: list, hi: int | None = None) -> Term:
        """The product of terms (keys identify them, for sharing sub-products); `hi`, when given, is
        a sound upper bound of the product tighter than the product of the factors' bounds."""
        const = 1
        rest = []
        for t, k in zip(terms, keys, strict=True):
            if isinstance(t[0], int):
                const *= t[0]
            else:
                rest.append((k, t))
        rest.sort(key=lambda kt: repr(kt[0]))
        cap = None if hi is None else max(1, hi // max(const, 1))
        acc, acc_key = None, ()
        for i, (k, t) in enumerate(rest):
            if acc is None:
                acc, acc_key = t, (k,)
                continue
            acc_key = acc_key + (k,)
            if acc_key not in self.products:
                lo, top = acc[1] * t[1], acc[2] * t[2]
                if cap is not None and i == len(rest) - 1:
                    top = max(lo, min(top, cap))
                v = self.var(lo, top, "prod")
                self.m.AddMultiplicationEquality(v, [acc[0], t[0]])
                self.products[acc_key] = (v, lo, min(top, LIMIT))
            acc = self.products[acc_key]
        if acc is None:
            return (const, const, const)
        if const == 1:
            return acc
        return (acc[0] * const, acc[1] * const, acc[2] * const)

    def when(self, value: Term, literals: list, prefix: str) -> Term:
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

    def maximum(self, terms: list[Term], prefix: str) -> Term:
        lo, hi = max(t[1] for t in terms), max(t[2] for t in terms)
        if all(isinstance(t[0], int) for t in terms):
            return (hi, hi, hi)
        if lo == hi:
            return (lo, lo, lo)
        v = self.m.NewBoolVar(self.name(prefix)) if (lo, hi) == (0, 1) else self.var(lo, hi, prefix)
        self.m.AddMaxEquality(v, [self.named(t, f"{prefix}_arg") for t in terms])
        return (v, lo, hi)

    def named(self, term: Term, prefix: str):
        """The term as a constant or a variable: a sum gets a variable of its own, defined by a linear
        equality (`maximum`'s arguments; see the module doc)."""
        if isinstance(term[0], int | cp_model.IntVar):
            return term[0]
        v = self.var(term[1], term[2], prefix)
        self.m.Add(v == term[0])
        return v

    def half(self, term: Term, prefix: str) -> Term:
        """floor(term / 2)."""
        v = self.var(term[1] // 2, term[2] // 2, prefix)
        self.m.Add(2 * v <= term[0])
        self.m.Add(2 * v >= term[0] - 1)
        return (v, term[1] // 2, term[2] // 2)

    def none(self, terms: list[Term], prefix: str):
        """A literal true iff every 0/1 term is 0 (an int when decided)."""
        if any(isinstance(t[0], int) and t[0] == 1 for t in terms):
            return 0
        free = [t[0] for t in terms if not isinstance(t[0], int)]
        if not free:
            return 1
        v = self.m.NewBoolVar(self.name(prefix))
        self.m.Add(sum(free) == 0).OnlyEnforceIf(v)
        self.m.Add(sum(free) >= 1).OnlyEnforceIf(v.Not())
        return v

    def cases(self, cases: list[tuple[list, Term]], prefix: str) -> Term:
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
        v = self.var(lo, hi, prefix)
        for lits, value in live:
            self.m.Add(v == value[0]).OnlyEnforceIf(lits)
        return (v, lo, hi)


def add(*terms: Term) -> Term:
    return (sum(t[0] for t in terms), sum(t[1] for t in terms), sum(t[2] for t in terms))


def scale(t: Term, c: int) -> Term:
    return (t[0] * c, t[1] * c, t[2] * c) if c >= 0 else (t[0] * c, t[2] * c, t[1] * c)


def neg(lit):
    if isinstance(lit, tuple):
        lit = lit[0]
    if isinstance(lit, int):
        return 1 - lit
    return lit.Not()


def lits(lit) -> list:
    if isinstance(lit, tuple):
        lit = lit[0]
    return [] if isinstance(lit, int) else [lit]


def interruptible_solve(solver: cp_model.CpSolver, model: cp_model.CpModel) -> int:
    """`solver.Solve(model)`, interruptible (see the module doc). CP-SAT releases the GIL while it
    searches; the main thread waits on an event (an interrupted `Thread.join` may return early on
    Python 3.11), and on an interrupt stops the search, waits for it to end and raises again."""
    solver.parameters.catch_sigint_signal = False
    if threading.current_thread() is not threading.main_thread():
        return solver.Solve(model)  # only the main thread receives signals
    outcome: dict = {}
    done = threading.Event()

    def search() -> None:
        try:
            outcome["status"] = solver.Solve(model)
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc
        finally:
            done.set()
    threading.Thread(target=search, name="cp-sat", daemon=True).start()
    try:
        done.wait()
    except BaseException:
        solver.StopSearch()
        done.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]
