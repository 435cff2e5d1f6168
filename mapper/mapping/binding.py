"""Instruction mapping: every way a layer can run on an ACG's capabilities.

A `Binding` pairs a layer with one capability: which layer tensor plays which capability operand,
and which layer dims run *inside* one instruction on which capability dim (the rest are temporal
loops around the instruction). Several layer dims may fuse into one capability dim (conv n,p,q ->
the rows m of a matrix-vector instruction; c,r,s -> its reduction dim k, im2col-style): the buffer
holds the raw tile and the instruction reads it through its address generator.

The rule that makes a binding consistent is the *dim signature*: the set of operands whose access
uses a dim. A layer dim may bind to a capability dim only when their signatures agree under the
tensor correspondence. That one rule sends reduction dims to reduction dims and keeps every operand
indexed by exactly the dims bound to its own dims.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> dw = make_layer("dw", "O[n,c,p,q] += I[n,c,p+r-1,q+s-1] * W[c,r,s]",
    ...                 {"n": 1, "c": 64, "p": 56, "q": 56, "r": 3, "s": 3},
    ...                 {"I": "int8", "W": "int8", "O": "int32"}, {"I": (1, 64, 56, 56)})
    >>> sorted({b.capability for b in bind(dw, load_acg("genesys"))})
    ['mvmul', 'vmac']
"""

from __future__ import annotations

import itertools
import math
import weakref
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mapper.spec.acg import ACG, Capability, home_paths, read_paths, write_paths
from mapper.spec.dtypes import DTYPES
from mapper.spec.notation import Access, BinOp, Call, Const, Expr, Imm
from mapper.spec.workload import Layer

COMMUTATIVE = frozenset({"+", "*", "max", "min"})
MAX_FUSED = 3  # at most this many layer dims fuse into one capability dim


@dataclass(frozen=True)
class Binding:
    """One way to run `layer` on `capability` (all fields are tuples: hashable, a cache key)."""

    layer: str
    capability: str
    tensors: tuple[tuple[str, str], ...]  # (layer tensor, capability operand)
    dims: tuple[tuple[str, str | None], ...]  # (layer dim, capability dim or None = temporal)
    placements: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]  # (layer tensor, its storage paths)
    immediates: tuple[tuple[str, int | float], ...] = ()  # values of the capability's immediates

    @cached_property
    def operand_of(self) -> dict[str, str]:
        return dict(self.tensors)

    @cached_property
    def dim_map(self) -> dict[str, str | None]:
        return dict(self.dims)

    def fused(self, cap_dim: str) -> tuple[str, ...]:
        """The layer dims that run inside one instruction on capability dim `cap_dim`."""
        return tuple(d for d, e in self.dims if e == cap_dim)

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        return tuple(d for d, e in self.dims if e is not None)

    @property
    def temporal_dims(self) -> tuple[str, ...]:
        return tuple(d for d, e in self.dims if e is None)

    @cached_property
    def paths(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Per layer tensor, its eligible storage paths, each from off-chip memory to the operand storage
        (for the output: the path data takes back, reversed so that it too starts off-chip)."""
        return dict(self.placements)

    def describe(self) -> str:
        groups = {}
        for d, e in self.dims:
            groups.setdefault(e, []).append(d)
        inside = " ".join(f"{e}<-{'*'.join(ds)}" for e, ds in groups.items() if e is not None)
        outside = ",".join(groups.get(None, [])) or "-"
        roles = " ".join(f"{t}->{o}" for t, o in self.tensors)
        return f"{self.capability} [{roles}] [{inside}] temporal: {outside}"


def utilization_bound(binding: Binding, layer: Layer, cap: Capability) -> float:
    """The best fraction of the capability's fixed extents a whole-layer instruction could fill.

    A depthwise convolution on a 32x32 array binds nothing to the array's output columns: <= 1/32.
    """
    ratio = 1.0
    for e, extent in cap.fixed.items():
        fused = math.prod(layer.dims[d] for d in binding.fused(e))
        ratio *= min(fused, extent) / extent
    return ratio


def bind(layer: Layer, acg: ACG) -> list[Binding]:
    """Every candidate binding of `layer` on `acg`, in a deterministic order (ACG order, then best
    utilization bound first)."""
    out = []
    for cap in acg.capabilities:
        found = []
        for tensors in match_tensors(layer, cap):
            if dtype_problem(layer, cap, tensors) is not None:
                continue
            placements = _placements(acg, cap, tensors, layer)
            if not all(paths for _, paths in placements):  # a tensor homed where this capability cannot reach
                continue
            for dims in _dim_assignments(layer, cap, tensors):
                found.append(Binding(layer.name, cap.name, tuple(tensors.items()), dims, placements,
                                     immediates(layer.expr.rhs, cap.expr.rhs, tensors)))
        found.sort(key=lambda b: -utilization_bound(b, layer, cap))
        out.extend(found)
    return out


def no_binding_reason(layer: Layer, acg: ACG) -> str:
    """Why `bind` found nothing, naming the operation and the nearest capabilities."""
    kind = layer.expr.kind
    same_kind = [cap for cap in acg.capabilities if list(match_tensors(layer, cap))]
    if not same_kind:
        return (f"{acg.name} has no capability computing '{layer.expr.update} {layer.expr.rhs}' "
                f"({kind}); capabilities: {', '.join(c.name for c in acg.capabilities)}")
    problems = {}
    for cap in same_kind:
        for tensors in match_tensors(layer, cap):
            problems.setdefault(f"{cap.name}: {dtype_problem(layer, cap, tensors) or 'no consistent dims'}")
    return f"no capability of {acg.name} can run layer {layer.name} ({kind}): " + "; ".join(problems)


# --------------------------------------------------------------------------------------------------
# Matching the computations: which layer tensor plays which capability operand

def match_tensors(layer: Layer, cap: Capability):
    """Yield every bijection {layer tensor: capability operand} under which the two right-hand sides
    are the same computation (same update, same tree up to commutative swaps, same constants)."""
    le, ce = layer.expr, cap.expr
    if le.update != ce.update:
        return
    seen = set()
    for pairs in _match_tree(le.rhs, ce.rhs):
        mapping = {le.output.tensor: ce.output.tensor}
        ok = True
        for lt, ct in pairs:
            if mapping.setdefault(lt, ct) != ct:
                ok = False
        if ok and len(set(mapping.values())) == len(mapping):  # a bijection
            key = tuple(sorted(mapping.items()))
            if key not in seen:
                seen.add(key)
                yield mapping


def _match_tree(a: Expr, b: Expr):
    """Yield lists of (layer tensor, capability tensor) pairs making tree `a` match tree `b`."""
    if isinstance(a, Access) and isinstance(b, Access):
        yield [(a.tensor, b.tensor)]
    elif isinstance(a, Const) and isinstance(b, Const):
        if a.value == b.value:
            yield []
    elif isinstance(a, Const) and isinstance(b, Imm):  # an instruction immediate takes any constant
        yield []
    elif isinstance(a, Call) and isinstance(b, Call):
        if a.fn == b.fn and len(a.args) == len(b.args):
            orders = [b.args]
            if a.fn in COMMUTATIVE:
                orders.append(b.args[::-1])
            for args in orders:
                for combo in itertools.product(*(list(_match_tree(x, y)) for x, y in zip(a.args, args,
                                                                                             strict=True))):
                    yield [p for part in combo for p in part]
    elif isinstance(a, BinOp) and isinstance(b, BinOp) and a.op == b.op:
        orders = [(b.lhs, b.rhs)] + ([(b.rhs, b.lhs)] if a.op in COMMUTATIVE else [])
        for lhs, rhs in orders:
            for left in _match_tree(a.lhs, lhs):
                for right in _match_tree(a.rhs, rhs):
                    yield left + right


def immediates(layer_rhs: Expr, cap_rhs: Expr, operand_of: dict[str, str]) -> tuple[tuple[str, int | float], ...]:
    """The values the capability's immediates take for this layer: the layer's constants where the
    capability has immediates, with the two trees aligned as the binding pairs their tensors
    (commutative operands in either order). () when nothing aligns (the simulator then says so).

    >>> from mapper.spec.notation import parse_tensor_expr as p
    >>> immediates(p("Z[i] = clip(shr(A[i], 7), -128, 127)").rhs,
    ...            p("Z[i] = clip(shr(X[i], s), lo, hi)", immediates=True).rhs, {"A": "X"})
    (('hi', 127), ('lo', -128), ('s', 7))
    """
    found = _align(layer_rhs, cap_rhs, operand_of)
    return tuple(sorted(found.items())) if found is not None else ()


def _align(a: Expr, b: Expr, operand_of: dict[str, str]) -> dict | None:
    if isinstance(a, Access) and isinstance(b, Access):
        return {} if operand_of.get(a.tensor) == b.tensor else None
    if isinstance(a, Const) and isinstance(b, Const):
        return {} if a.value == b.value else None
    if isinstance(a, Const) and isinstance(b, Imm):
        return {b.name: a.value}
    if isinstance(a, Call) and isinstance(b, Call) and a.fn == b.fn and len(a.args) == len(b.args):
        pairs = [list(zip(a.args, b.args, strict=True))]
        if a.fn in COMMUTATIVE:
            pairs.append(list(zip(a.args, b.args[::-1], strict=True)))
    elif isinstance(a, BinOp) and isinstance(b, BinOp) and a.op == b.op:
        pairs = [[(a.lhs, b.lhs), (a.rhs, b.rhs)]]
        if a.op in COMMUTATIVE:
            pairs.append([(a.lhs, b.rhs), (a.rhs, b.lhs)])
    else:
        return None
    for order in pairs:
        merged: dict | None = {}
        for x, y in order:
            part = _align(x, y, operand_of)
            if part is None or any(merged.get(k, v) != v for k, v in part.items()):
                merged = None
                break
            merged.update(part)
        if merged is not None:
            return merged
    return None


def dtype_problem(layer: Layer, cap: Capability, tensors: dict[str, str]) -> str | None:
    """Why the layer's data cannot go through the capability, or None.

    A layer with an `epilogue` needs a capability that has one. Inputs must widen safely into the
    capability's operand types. The output may be narrower than
    the capability's only for single ring or selection operations (+, -, *, max, min, relu, abs and
    the reductions), whose narrowed result equals the narrow computation; otherwise it must match.
    """
    out = layer.expr.output.tensor
    if layer.epilogue is not None and not cap.epilogue:
        return f"the layer stores {layer.epilogue.dtype} through an epilogue, the capability has none"
    for lt, ct in sorted(tensors.items(), key=lambda item: item[0] == out):  # inputs first
        have, want = layer.tensors[lt].dtype, cap.dtypes[ct]
        if lt == layer.expr.output.tensor:
            narrowing_ok = cap.expr.functions <= {"+", "-", "*", "max", "min", "relu", "abs", "neg"} and \
                DTYPES[have].kind == DTYPES[want].kind and len(cap.expr.functions) <= 1
            if have != want and not (narrowing_ok and np.can_cast(DTYPES[have], DTYPES[want], "safe")):
                return f"output {lt} is {have}, the capability writes {want}"
        elif not np.can_cast(DTYPES[have], DTYPES[want], "safe"):
            return f"input {lt} is {have}, operand {ct} takes {want}"
    return None


# --------------------------------------------------------------------------------------------------
# Matching the dims

def _signature(expr, dim: str, rename: dict[str, str] | None = None) -> frozenset[str]:
    accesses = [expr.output, *expr.accesses]
    names = {a.tensor for a in accesses if dim in a.dims}
    return frozenset(rename[t] for t in names) if rename else frozenset(names)


def _dim_assignments(layer: Layer, cap: Capability, tensors: dict[str, str]):
    """Yield the dims tuples of every consistent assignment of layer dims to capability dims."""
    if any(idx.single_dim is None for a in (cap.expr.output, *cap.expr.accesses) for idx in a.indices):
        return  # capabilities index their operands with plain dims; anything else is not supported
    cap_sig = {e: _signature(cap.expr, e) for e in cap.expr.dims}
    layer_sig = {d: _signature(layer.expr, d, tensors) for d in layer.expr.dims}
    choices = []
    for e in cap.expr.dims:
        # Dims of extent 1 are never worth fusing: leaving them temporal costs nothing.
        candidates = [d for d in layer.expr.dims if layer_sig[d] == cap_sig[e] and layer.dims[d] > 1]
        subsets = [s for k in range(1, min(MAX_FUSED, len(candidates)) + 1)
                   for s in itertools.combinations(candidates, k)]
        choices.append(subsets or [()])
    for combo in itertools.product(*choices):
        assigned = {d: e for e, subset in zip(cap.expr.dims, combo, strict=True) for d in subset}
        yield tuple((d, assigned.get(d)) for d in layer.expr.dims)


def _placements(acg: ACG, cap: Capability, tensors: dict[str, str], layer: Layer):
    """Per layer tensor, its storage paths from its home (off-chip memory, or the on-chip storage a
    fused group keeps it in) to each operand storage the capability accepts."""
    out = []
    for lt, ct in tensors.items():
        is_output = lt == layer.expr.output.tensor
        home = layer.onchip.home(lt)
        paths = []
        for place in cap.operands[ct]:
            if home is not None:
                paths.extend(_paths(acg, home_paths, home, place, is_output))
            elif is_output:
                paths.extend(tuple(reversed(p)) for p in _paths(acg, write_paths, place))
            else:
                paths.extend(_paths(acg, read_paths, place))
        out.append((lt, tuple(paths)))
    return tuple(out)


# ACG graph -> query -> its paths, as every binding of every layer asks the same few (networkx's search
# was a third of the fusion search's time outside the solver). A graph is never changed once built; the
# key holds what else an answer reads (the storages, which are off chip): an ACG `replace`d keeps its graph.
_PATHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _paths(acg: ACG, find, *args) -> list[tuple[str, ...]]:
    """`find(acg, *args)` (`read_paths`, `write_paths`, `home_paths`), searched once per ACG graph."""
    memo = _PATHS.setdefault(acg.graph, {})
    key = (find.__name__, args, acg.offchip, tuple(acg.storages))
    if key not in memo:
        memo[key] = find(acg, *args)
    return memo[key]
