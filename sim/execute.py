"""What one compute instruction does to its operand tiles: the *capability's* expression, executed on
the layer tensors the binding feeds it (never the layer's own expression).

`bound_expression` rewrites the capability's right-hand side over the program's operands: each
capability operand becomes the access of the layer tensor bound to it (the buffer holds the raw
tile; the instruction reads it through its address generator, which is the layer's index), each
immediate takes the value the program gives it, and the update is the capability's. A capability
that computes something else than the layer (max where the layer sums, operands swapped in a
non-commutative operation, another immediate) therefore gives another result, which the comparison
with the reference exposes. Two rules are checked before anything runs: the binding is a bijection
of tensors (output to output), and every operand is indexed inside one instruction by exactly the
layer dims bound to its own capability dims.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("s", "Z[i] = X[i] - Y[i]", {"i": 8}, {"X": "int32", "Y": "int32", "Z": "int32"})
    >>> cap = load_acg("tiny").capability("vmac")
    >>> str(bound_expression(layer, cap, {"Z": "Z", "X": "X", "Y": "Y"}, {"i": "i"}, {}))
    'Z[i] += (X[i] * Y[i])'
"""

from __future__ import annotations

import numpy as np

from mapper.program.instructions import Region, axis_span
from mapper.spec.acg import Capability
from mapper.spec.notation import Access, Affine, BinOp, Call, Const, Expr, Imm, TensorExpr
from mapper.spec.workload import Layer
from sim.blas import mac_in_float64
from sim.reference import compute_dtype, evaluate


class BindingError(ValueError):
    """The program binds the capability's operands inconsistently (the message names the rule)."""


def bound_expression(layer: Layer, cap: Capability, tensors: dict[str, str], dim_map: dict[str, str | None],
                     immediates: dict[str, int | float]) -> TensorExpr:
    """The capability's expression over the layer tensors bound to its operands (see the module doc)."""
    operand_of = dict(tensors)
    tensor_of = {c: t for t, c in operand_of.items()}
    cexpr, lexpr = cap.expr, layer.expr
    if len(tensor_of) != len(operand_of) or set(tensor_of) != set(cexpr.tensors) or \
            set(operand_of) != set(lexpr.tensors):
        raise BindingError(f"binding rule: the tensors {operand_of} are not a one-to-one match of layer tensors "
                           f"{', '.join(lexpr.tensors)} and capability operands {', '.join(cexpr.tensors)}")
    if operand_of[lexpr.output.tensor] != cexpr.output.tensor:
        raise BindingError(f"binding rule: the layer's output {lexpr.output.tensor} feeds operand "
                           f"{operand_of[lexpr.output.tensor]}, not the capability's output {cexpr.output.tensor}")
    for access in (cexpr.output, *cexpr.accesses):
        t = tensor_of[access.tensor]
        inside = {d for a in (lexpr.output, *lexpr.accesses) if a.tensor == t for d in a.dims if dim_map.get(d)}
        wanted = {d for d, e in dim_map.items() if e in access.dims}
        if inside != wanted:
            raise BindingError(f"binding rule: operand {access} of {cap.name} runs over layer dims "
                               f"{', '.join(sorted(wanted)) or 'none'} inside an instruction, but layer tensor {t} "
                               f"bound to it is indexed by {', '.join(sorted(inside)) or 'none'}")
    seen: dict[str, int] = {}

    def walk(e: Expr) -> Expr:
        if isinstance(e, Access):
            t = tensor_of[e.tensor]
            options = [a for a in lexpr.accesses if a.tensor == t]
            k = seen.get(e.tensor, 0)
            seen[e.tensor] = k + 1
            return options[k % len(options)]
        if isinstance(e, Imm):
            if e.name not in immediates:
                raise BindingError(f"{cap.name}: the program gives no value for the immediate '{e.name}'")
            return Const(immediates[e.name])
        if isinstance(e, Call):
            return Call(e.fn, tuple(walk(x) for x in e.args))
        if isinstance(e, BinOp):
            return BinOp(e.op, walk(e.lhs), walk(e.rhs))
        return e

    rhs = walk(cexpr.rhs)
    return TensorExpr(lexpr.output, cexpr.update, rhs, f"{lexpr.output} {cexpr.update} {rhs}")


def operand_dtypes(layer: Layer, cap: Capability, tensors: dict[str, str]) -> dict[str, np.dtype]:
    """Per layer input, the dtype its operand is read in: the capability's. Only a multiply-accumulate
    whose inputs widen safely reads its tiles as they are (the same values and the same computation
    type, and the exact float64 matmul stays available for narrow integers)."""
    out = np.dtype(cap.dtypes[tensors[layer.expr.output.tensor]])
    layer_in = [np.dtype(layer.tensors[t].dtype) for t in layer.expr.inputs]
    cap_in = [np.dtype(cap.dtypes[tensors[t]]) for t in layer.expr.inputs]
    as_is = cap.expr.is_mac and compute_dtype(out, layer_in) == compute_dtype(out, cap_in) and \
        all(np.can_cast(a, b, "safe") for a, b in zip(layer_in, cap_in, strict=True))
    return {t: a if as_is else b for t, a, b in zip(layer.expr.inputs, layer_in, cap_in, strict=True)}


def accumulate(expr: TensorExpr, extents: dict[str, int], arrays: dict[str, np.ndarray], dtype: np.dtype,
               initial: np.ndarray) -> np.ndarray:
    """`initial` updated by `expr` over `extents`, computed in `dtype` (the capability's output type)
    and stored in `initial`'s: through the exact float64 matmul when it applies (an integer MAC,
    bit-identical and much faster than NumPy's integer einsum), else as the reference."""
    start = initial if initial.dtype == dtype else initial.astype(dtype)
    product = mac_in_float64(expr, extents, arrays, dtype)
    if product is None:
        result = evaluate(expr, extents, arrays, dtype, initial=start)
    else:
        with np.errstate(over="ignore"):
            result = np.add(start, product, dtype=dtype)  # wraps as the reference's `+=` does
    with np.errstate(over="ignore", invalid="ignore"):
        return result if result.dtype == initial.dtype else result.astype(initial.dtype)


def partitions(groups: list[dict[str, tuple[int, int]]], box: dict[str, tuple[int, int]]) -> bool:
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


def shifted(expr: TensorExpr, origins: dict[str, Region], ranges: dict[str, tuple[int, int]],
            cache: dict) -> TensorExpr:
    """`expr` re-indexed for one instruction: dims start at 0 (the range's lo) and every access indexes
    its buffer (whose region starts at `origins[tensor]`). A buffer strided along an axis (it holds
    every step-th position) is indexed at (position - its lo) / step: each coefficient of a dim that
    ranges over several values is divided by the step (the region check made it a multiple), a dim
    fixed in this instruction is 0 in the shifted frame (its value sits in the constant), whatever
    its coefficient (kept, so that the dim still appears in every access it indexes). Keyed by the
    shifted indices, so every instruction whose tiles sit alike in their buffers shares one expression
    (and its caches)."""
    consts = []
    strided = False
    for a in expr.accesses:
        for k, i in enumerate(a.indices):
            lo, _, step = axis_span(origins[a.tensor][k])
            consts.append((i.const + sum(c * ranges[d][0] for d, c in i.terms) - lo, step))
            strided = strided or step > 1
    fixed = tuple(hi - lo == 1 for lo, hi in ranges.values()) if strided else ()
    key = (tuple(consts), fixed)
    out = cache.get(key)
    if out is not None:
        return out
    fresh = iter(consts)

    def index(i: Affine) -> Affine:
        const, step = next(fresh)
        if step == 1:
            return Affine(i.terms, const)
        if const % step:
            raise ValueError(f"an index starts between the positions of a buffer holding every {step}-th one")
        terms = []
        for d, c in i.terms:
            lo, hi = ranges[d]
            if hi - lo > 1 and c % step:
                raise ValueError(f"dim {d} steps by {c} through a buffer holding every {step}-th position")
            terms.append((d, c if hi - lo == 1 else c // step))  # a fixed dim is 0 here: any coefficient
        return Affine(tuple(terms), const // step)

    def walk(e: Expr) -> Expr:  # visits the accesses in `expr.accesses` order
        if isinstance(e, Access):
            return Access(e.tensor, tuple(index(i) for i in e.indices))
        if isinstance(e, Call):
            return Call(e.fn, tuple(walk(x) for x in e.args))
        if isinstance(e, BinOp):
            return BinOp(e.op, walk(e.lhs), walk(e.rhs))
        return e

    out = TensorExpr(expr.output, expr.update, walk(expr.rhs), expr.text)
    if len(cache) < 4096:
        cache[key] = out
    return out
