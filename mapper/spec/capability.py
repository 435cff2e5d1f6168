"""A compute node's instruction as data: the `Capability` record (one tensor expression, its fixed
and streaming dims, operand storages, dtypes, cycle formula, energy; optionally an initiation
interval, an epilogue and the PE lanes its streams span) and its parser, with the field parsers the
workload and mapping formats share (`parse_expr_field`, `dtype_field`). docs/formats/acg.md is the
format; `mapper/spec/acg.py` reads the rest of an ACG.

    >>> from mapper.spec.loader import load_yaml_text
    >>> f = load_yaml_text("{name: mv, expr: 'C[m,n] += A[m,k] * B[k,n]', dims: {k: 4, n: 4}, lanes: {m: 2},"
    ...                    " operands: {A: S, B: S, C: S}, dtypes: {A: int8, B: int8, C: int32}, cycles: m}", "c.yaml")
    >>> cap = parse_capability("ARRAY", f, {"S": None}, set())
    >>> cap.streaming_dims, cap.lanes, peak_ops_per_cycle(cap)
    (('m',), {'m': 2}, Fraction(16, 1))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from mapper.spec.dtypes import DTYPES, expr_dtype_problem
from mapper.spec.formula import Arith, parse_arith
from mapper.spec.loader import Field
from mapper.spec.notation import NotationError, TensorExpr, parse_tensor_expr

_CAPABILITY_FIELDS = ("name", "expr", "dims", "operands", "dtypes", "cycles", "interval", "pj_per_mac", "pj_per_op",
                      "epilogue", "lanes")


@dataclass(frozen=True)
class Capability:
    """One instruction of a compute node, written in the tensor notation.

    `fixed` gives the capability dims whose extent every instruction has (the array's shape);
    the other dims stream: one instruction may cover any extent of them (bounded by buffers).
    `operands` lists, per tensor, the storage nodes it may be read from / written to. `lanes` gives,
    for a streaming dim, the PE lanes its stream is dealt over (element i of an instruction's stream
    on lane i mod lanes): what a per-PE storage holds of a tensor indexed by it (`mapping.instance_bytes`).
    """

    name: str
    node: str
    expr: TensorExpr
    fixed: dict[str, int]
    operands: dict[str, tuple[str, ...]]
    dtypes: dict[str, str]
    cycles: Arith
    pj_per_op: float = 0.0
    interval: Arith | None = None  # initiation interval: the next instruction may start this soon
    epilogue: bool = False  # its output's write-backs can requantise complete sums (`Layer.epilogue`)
    lanes: dict[str, int] = field(default_factory=dict)  # streaming dim -> the PE lanes its stream spans

    def instruction_interval(self, extents: dict[str, int]) -> int:
        """Cycles after which the next instruction may start (at most the instruction's own cycles;
        without an `interval`, all of them: no overlap)."""
        full = self.instruction_cycles(extents)
        return full if self.interval is None else min(full, self.interval.evaluate({**self.fixed, **extents}))

    @property
    def streaming_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.expr.dims if d not in self.fixed)

    def ops_per_instruction(self, extents: dict[str, int]) -> int:
        """Points of the iteration space one instruction covers (MACs for a MAC capability)."""
        return math.prod(extents.get(d, self.fixed.get(d, 1)) for d in self.expr.dims)

    def instruction_cycles(self, extents: dict[str, int]) -> int:
        """Cycles of one instruction; `extents` gives the streaming dims (fixed ones are filled in)."""
        return self.cycles.evaluate({**self.fixed, **extents})


def peak_ops_per_cycle(cap: Capability) -> Fraction:
    """Iteration points (MACs) per cycle in the limit of long streaming dims.

    For `C[m,n] += A[m,k]*B[k,n]` with k, n fixed at 32 and `cycles: m + 64` this is 1024: the
    pipeline fill is amortised away, as for any long enough stream.
    """
    big = 2**40 if cap.streaming_dims else 1
    extents = {d: big for d in cap.streaming_dims}
    ratio = Fraction(cap.ops_per_instruction(extents), cap.instruction_cycles(extents))
    return ratio.limit_denominator(1000) if cap.streaming_dims else ratio


def parse_capability(node_name: str, item: Field, storages: dict[str, object],
                      compute_names: set[str]) -> Capability:
    f = item.keys(required=("name", "expr", "operands", "dtypes", "cycles"), optional=_CAPABILITY_FIELDS)
    name = f["name"].ident()
    expr = parse_expr_field(f["expr"], immediates=True)
    tensors = expr.tensors

    fixed = {}
    if "dims" in f:
        for dim, value in f["dims"].mapping().items():
            if dim not in expr.dims:
                raise value.error(f"'{dim}' is not a dim of '{expr}' (dims: {', '.join(expr.dims)})")
            fixed[dim] = value.int(minimum=1)

    operands = {}
    for tensor, value in _tensor_map(f["operands"], tensors).items():
        places = [p.str() for p in value.items()] if isinstance(value.value, list) else [value.str()]
        if not places:
            raise value.error("expected a storage node or a non-empty list of them")
        for place in places:
            if place not in storages:
                what = "a compute node" if place in compute_names else "not a node of the layers' memory"
                raise value.error(f"'{place}' is {what}: an operand must name a storage node "
                                  f"({', '.join(storages)})")
        operands[tensor] = tuple(places)

    dtypes = {t: dtype_field(v) for t, v in _tensor_map(f["dtypes"], tensors).items()}
    problem = expr_dtype_problem(expr, dtypes[expr.output.tensor])
    if problem:
        raise f["dtypes"].error(problem)

    streaming = [d for d in expr.dims if d not in fixed]
    cycles = _cycle_formula(f["cycles"], expr, fixed, streaming)
    interval = _cycle_formula(f["interval"], expr, fixed, streaming) if "interval" in f else None
    if "pj_per_mac" in f and "pj_per_op" in f:
        raise f["pj_per_op"].error("give either pj_per_mac or pj_per_op (they are the same field)")
    energy = f.get("pj_per_mac") or f.get("pj_per_op")
    epilogue = f["epilogue"].bool() if "epilogue" in f else False
    if epilogue and not expr.is_mac:
        raise f["epilogue"].error("an epilogue requantises a MAC's sums; this capability is not a MAC")
    return Capability(name, node_name, expr, fixed, operands, dtypes, cycles,
                      energy.number() if energy else 0.0, interval, epilogue, _lanes(f, fixed, streaming))


def _lanes(f, fixed: dict[str, int], streaming: list[str]) -> dict[str, int]:
    """The `lanes` field: streaming dim -> PE lanes (a positive integer)."""
    out = {}
    for dim, value in (f["lanes"].mapping().items() if "lanes" in f else ()):
        if dim not in streaming:
            what = "a fixed dim (its lanes are its extent)" if dim in fixed else "not a dim of the expression"
            raise value.error(f"'{dim}' is {what}: lanes are given for streaming dims ({', '.join(streaming)})")
        out[dim] = value.int(minimum=1)
    return out


def _cycle_formula(f: Field, expr: TensorExpr, fixed: dict[str, int], streaming: list[str]) -> Arith:
    """A cycle formula (`cycles` or `interval`) over the capability's dims, >= 1 where probed."""
    formula = parse_arith_field(f)
    unknown = formula.names - set(expr.dims)
    if unknown:
        raise f.error(f"unknown name(s) {', '.join(sorted(unknown))} in the cycle formula; "
                      f"it may use the capability's dims: {', '.join(expr.dims)}")
    for probe in (1, 2, 7, 1024):
        try:
            value = formula.evaluate({**fixed, **{d: probe for d in streaming}})
        except ZeroDivisionError as exc:
            raise f.error(str(exc)) from None
        if value < 1:
            raise f.error(f"the formula gives {value} cycles when the streaming dims are {probe}; "
                          "expected at least 1")
    return formula


def _tensor_map(f: Field, tensors: tuple[str, ...]) -> dict[str, Field]:
    """A mapping keyed by exactly the expression's tensors."""
    children = f.mapping()
    for key, child in children.items():
        if key not in tensors:
            raise child.error(f"'{key}' is not a tensor of the expression (tensors: {', '.join(tensors)})")
    missing = [t for t in tensors if t not in children]
    if missing:
        raise f.error(f"missing entry for tensor(s) {', '.join(missing)}")
    return {t: children[t] for t in tensors}


def parse_expr_field(f: Field, immediates: bool = False) -> TensorExpr:
    try:
        return parse_tensor_expr(f.str(), immediates)
    except NotationError as exc:
        raise f.error(str(exc)) from None


def parse_arith_field(f: Field) -> Arith:
    if isinstance(f.value, bool) or not isinstance(f.value, int | str):
        raise f.expected("an integer or a formula such as 'm + 64'")
    try:
        return parse_arith(f.value)
    except NotationError as exc:
        raise f.error(str(exc)) from None


def dtype_field(f: Field) -> str:
    if not isinstance(f.value, str) or f.value not in DTYPES:
        raise f.expected(f"a dtype ({', '.join(DTYPES)})")
    return f.value


__all__ = ["Capability", "dtype_field", "parse_arith_field", "parse_capability", "parse_expr_field",
           "peak_ops_per_cycle"]
