"""Workloads: layers (by op template or raw tensor expression) and, with `inputs:`, a DAG of them.

    >>> wl = load_workload("resnet50")
    >>> conv1 = wl.layer("conv1")
    >>> conv1.macs, conv1.tensors["I"].shape, conv1.tensors["O"].bytes
    (118013952, (1, 3, 224, 224), 3211264)
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx

from mapper.spec.capability import dtype_field, parse_expr_field
from mapper.spec.dtypes import dtype_bytes, expr_dtype_problem
from mapper.spec.limits import MAX_INT, NAME_RULE, name_problem
from mapper.spec.loader import Field, SpecError, find_spec, load_yaml
from mapper.spec.notation import TensorExpr, parse_tensor_expr
from mapper.spec.ops import TEMPLATES, Proto, Slots, TemplateError, expand


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str  # 'input' (an activation or weight read by the layer) or 'output'

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def bytes(self) -> int:
        return self.elements * dtype_bytes(self.dtype)


@dataclass(frozen=True)
class Concat:
    """An input fed by several layers' outputs concatenated along `axis` of their (equal-rank) shapes.

    In a network program the parts are written into one buffer (zero-copy): each part's producer
    writes its slice, and the consumer reads the whole.
    """

    parts: tuple[str, ...]
    axis: int

    def to_yaml(self) -> dict:
        return {"concat": list(self.parts), "axis": self.axis}


Source = str | Concat  # where an operand's data comes from: a layer, or a concatenation of layers


@dataclass(frozen=True)
class OnChip:
    """What a fused group keeps on chip while a layer runs (`mapper.network.fusion`).

    `homes`: layer tensors that live whole in an on-chip storage instead of off-chip memory (their
    storage paths start there); `reserved`: bytes per storage held by other on-chip values of the
    group that this layer does not touch. Both shrink what the layer's tiles may use.
    """

    homes: tuple[tuple[str, str], ...] = ()  # (layer tensor, on-chip storage holding all of it)
    reserved: tuple[tuple[str, int], ...] = ()  # (storage, bytes)

    def home(self, tensor: str) -> str | None:
        return dict(self.homes).get(tensor)

    def __bool__(self) -> bool:
        return bool(self.homes or self.reserved)


@dataclass(frozen=True)
class Epilogue:
    """Requantisation of a MAC layer's complete sums where they are written back, so the layer stores
    `dtype` (e.g. int8) instead of its accumulator: z = clip(shr(acc, shift), lo, hi), with lo = 0
    under `relu` and the dtype's range otherwise (`shr` rounds half up, as the `requant` op).

    A write-back moves complete sums, and so the narrow dtype, when its tile is not revisited (no
    partial sums come back to it); every level above it then holds the narrow dtype, every level
    below it the accumulator (`cost.final_levels`). A mapping must deliver complete sums to its
    outermost storage."""

    dtype: str
    shift: int = 0
    relu: bool = False

    def to_yaml(self) -> dict:
        return {"dtype": self.dtype, "shift": self.shift, "relu": self.relu}


@dataclass(frozen=True)
class Layer:
    """One tensor expression over fixed dim extents, with its tensors and where its inputs come from."""

    name: str
    expr: TensorExpr
    dims: dict[str, int]
    tensors: dict[str, Tensor]
    op: str | None = None  # the template it came from; None for a raw `expr:`
    params: dict = field(default_factory=dict)
    producers: dict[str, Source] = field(default_factory=dict)  # operand -> producing layer(s)
    count: int = 1  # identical occurrences in the model (totals multiply)
    # The operands that are activations (fed by other layers or by the network's input); the rest
    # are weights. None: every input is an activation (raw `expr:` layers).
    slots: tuple[str, ...] | None = None
    onchip: OnChip = OnChip()  # set by fusion: tensors kept on chip, bytes held by the group
    epilogue: Epilogue | None = None  # the output stored requantised (its tensor's dtype: the accumulator)

    @property
    def activations(self) -> tuple[str, ...]:
        return self.expr.inputs if self.slots is None else self.slots

    @property
    def weights(self) -> tuple[str, ...]:
        return tuple(t for t in self.expr.inputs if t not in self.activations)

    @property
    def points(self) -> int:
        """Points of the iteration space: one MAC, comparison or element operation each."""
        return math.prod(self.dims.values())

    @property
    def macs(self) -> int:
        return self.points if self.expr.is_mac else 0

    @property
    def output(self) -> Tensor:
        return self.tensors[self.expr.output.tensor]

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(self.tensors[t] for t in self.expr.inputs)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tensors.values())

    @property
    def offchip_bytes(self) -> int:
        """The bytes of its tensors that live off chip (all but the fused group's on-chip homes)."""
        return sum(t.bytes for t in self.tensors.values() if self.onchip.home(t.name) is None)

    def onchip_bytes(self, storage: str) -> int:
        """Bytes of `storage` held whole for this layer: its tensors homed there, and the group's other
        values (what its tiles cannot use)."""
        homed = sum(self.tensors[t].bytes for t, s in self.onchip.homes if s == storage)
        return homed + dict(self.onchip.reserved).get(storage, 0)

    @property
    def dtypes(self) -> dict[str, str]:
        return {name: t.dtype for name, t in self.tensors.items()}

    def stored_dtype(self, tensor: str) -> str:
        """The dtype `tensor` has where the layer's result is complete: the epilogue's for the output."""
        if self.epilogue and tensor == self.expr.output.tensor:
            return self.epilogue.dtype
        return self.tensors[tensor].dtype


def parse_epilogue(f: Field, layer: Layer) -> Epilogue:
    """An `epilogue:` mapping {dtype, shift, relu} for `layer`: a MAC layer, a narrower integer dtype."""
    g = f.keys(required=("dtype",), optional=("shift", "relu"))
    dtype = dtype_field(g["dtype"])
    acc = layer.output.dtype
    if not layer.expr.is_mac:
        raise f.error("an epilogue requantises a MAC layer's sums; this layer is not a MAC")
    if not (dtype.startswith(("int", "uint")) and acc.startswith("int") and dtype_bytes(dtype) < dtype_bytes(acc)):
        raise g["dtype"].error(f"expected an integer dtype narrower than the accumulator ({acc})")
    shift = g["shift"].int(minimum=0) if "shift" in g else 0
    if shift >= 8 * dtype_bytes(acc):
        raise g["shift"].error(f"expected a shift below {8 * dtype_bytes(acc)} (the accumulator's bits)")
    return Epilogue(dtype, shift, g["relu"].bool() if "relu" in g else False)


@dataclass(frozen=True)
class Workload:
    name: str
    layers: tuple[Layer, ...]
    source: str = ""
    graph: nx.DiGraph = field(default_factory=nx.DiGraph, compare=False, repr=False)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        hint = difflib.get_close_matches(name, [lyr.name for lyr in self.layers], n=1)
        raise KeyError(f"{self.name} has no layer '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else ""))

    @property
    def macs(self) -> int:
        return sum(layer.macs * layer.count for layer in self.layers)


def make_layer(name: str, expr: str | TensorExpr, dims: dict[str, int], dtypes: dict[str, str],
               shapes: dict[str, tuple[int, ...]] | None = None, **extra) -> Layer:
    """A Layer from plain values (for code and tests; files go through `load_workload`).

    Input shapes default to the range the expression indexes; `shapes` overrides them (padding).
    """
    expr = parse_tensor_expr(expr) if isinstance(expr, str) else expr
    shapes = shapes or {}
    tensors = {}
    for t in expr.tensors:
        if t == expr.output.tensor:
            shape, role = tuple(dims[d] for d in expr.output.dims), "output"
        else:
            shape, role = shapes.get(t) or indexed_shape(expr, t, dims), "input"
        tensors[t] = Tensor(t, tuple(shape), dtypes[t], role)
    return Layer(name, expr, dict(dims), tensors, **extra)


def indexed_shape(expr: TensorExpr, tensor: str, dims: dict[str, int]) -> tuple[int, ...]:
    """The smallest shape holding every index the expression reads of `tensor` (from index 0)."""
    accesses = [a for a in expr.accesses if a.tensor == tensor]
    return tuple(max(max(a.indices[i].bounds(dims)[1] + 1, 1) for a in accesses)
                 for i in range(len(accesses[0].indices)))


# --------------------------------------------------------------------------------------------------
# Loading and validation

WORKLOAD_FOLDER = "workloads"
_LAYER_FIELDS = ("name", "op", "params", "expr", "dims", "dtypes", "shapes", "weights", "inputs", "count",
                 "epilogue")


def load_workload(name_or_path: str | Path) -> Workload:
    """Load a shipped workload by name (`resnet50`) or any workload file by path."""
    return parse_workload(load_yaml(find_spec(name_or_path, WORKLOAD_FOLDER)))


def parse_workload(root: Field) -> Workload:
    top = root.keys(required=("name", "layers"), optional=("description",))
    name = top["name"].ident()
    items = top["layers"].items()
    if not items:
        raise top["layers"].error("expected at least one layer")
    layers: list[Layer] = []
    wiring: list[tuple[Field | None, Slots, str]] = []  # an entry's `inputs` field, its slots, its name
    where: dict[str, Field] = {}
    for item in items:
        for layer, slots in _parse_entry(item):
            check_layer_limits(item, layer)
            if layer.name in where:
                raise item.child("name").error(f"duplicate layer name '{layer.name}' (first at line "
                                               f"{where[layer.name].line})")
            where[layer.name] = item
            layers.append(layer)
            if slots is not None:
                wiring.append((item.opt("inputs"), slots, item.child("name").value))
    layers = _wire(layers, wiring)
    graph = layer_graph(layers)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        names = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise where[cycle[0][0]].child("inputs").error(f"the inputs form a cycle: {names}")
    return Workload(name, tuple(layers), root.source, graph)


def layer_graph(layers: list[Layer] | tuple[Layer, ...]) -> nx.DiGraph:
    """The DAG of `layers`: a node per layer (attribute `layer`), an edge per producer -> consumer
    (attribute `operand`; every part of a concatenation is a producer)."""
    graph = nx.DiGraph()
    for layer in layers:
        graph.add_node(layer.name, layer=layer)
    for layer in layers:
        for operand, source in layer.producers.items():
            for producer in parts_of(source):
                graph.add_edge(producer, layer.name, operand=operand)
    return graph


def parts_of(source: Source) -> tuple[str, ...]:
    """The producing layers of a source, in order."""
    return source.parts if isinstance(source, Concat) else (source,)


def check_layer_limits(item: Field, layer: Layer) -> None:
    """The name and extent limits of `mapper.spec.limits` for a layer as built (template suffixes and
    template-computed extents included)."""
    name = item.child("name")
    if name_problem(layer.name):
        raise name.expected(NAME_RULE) if layer.name == name.value else \
            name.error(f"the layer name '{layer.name}' made from it is not {NAME_RULE}")
    extents = {f"dim {d}": n for d, n in layer.dims.items()}
    extents.update({f"tensor {t.name} axis {i}": n for t in layer.tensors.values() for i, n in enumerate(t.shape)})
    for what, n in extents.items():
        if n > MAX_INT:
            raise item.error(f"layer '{layer.name}': {what} has extent {n}, above the limit 2**31")


def _parse_entry(item: Field) -> list[tuple[Layer, Slots | None]]:
    """The layers of one `layers:` entry, each with the activation slots its `inputs:` fill."""
    f = item.keys(required=("name",), optional=_LAYER_FIELDS)
    entries = _parse_layers(item, f)
    if "epilogue" in f:
        if len(entries) != 1:
            raise f["epilogue"].error(f"an epilogue belongs to a one-layer entry; this one makes {len(entries)}")
        (layer, slots), = entries
        entries = [(replace(layer, epilogue=parse_epilogue(f["epilogue"], layer)), slots)]
    return entries


def _parse_layers(item: Field, f: dict[str, Field]) -> list[tuple[Layer, Slots | None]]:
    name = f["name"].ident()
    count = f["count"].int(minimum=1) if "count" in f else 1
    if ("op" in f) == ("expr" in f):
        raise item.error("expected exactly one of 'op' (a template) or 'expr' (a tensor expression)")
    if "op" in f:
        for key in ("dims", "dtypes", "shapes", "weights"):
            if key in f:
                raise f[key].error(f"'{key}' belongs to 'expr:' layers; an 'op:' layer takes 'params'")
        return _parse_template_entry(name, f, count)
    if "params" in f:
        raise f["params"].error("'params' belongs to 'op:' layers; an 'expr:' layer takes dims/dtypes")
    expr = parse_expr_field(f["expr"])
    dims = _parse_dims(f, expr)
    dtypes = {t: "int8" for t in expr.inputs}
    dtypes[expr.output.tensor] = "int32" if expr.update == "+=" else "int8"
    if "dtypes" in f:
        for tensor, value in f["dtypes"].mapping().items():
            if tensor not in expr.tensors:
                raise value.error(f"'{tensor}' is not a tensor of the expression "
                                  f"(tensors: {', '.join(expr.tensors)})")
            dtypes[tensor] = dtype_field(value)
    problem = expr_dtype_problem(expr, dtypes[expr.output.tensor])
    if problem:
        raise (f.get("dtypes") or f["expr"]).error(problem)
    shapes = {}
    if "shapes" in f:
        for tensor, value in f["shapes"].mapping().items():
            if tensor not in expr.inputs:
                raise value.error(f"'{tensor}' is not an input tensor of the expression "
                                  f"(inputs: {', '.join(expr.inputs)})")
            shape = [v.int(minimum=1) for v in value.items()]
            rank = len(expr.access_of(tensor).indices)
            if len(shape) != rank:
                raise value.error(f"expected {rank} extents for tensor {tensor}, got {len(shape)}")
            shapes[tensor] = tuple(shape)
    weights = _parse_weights(f, expr)
    activations = tuple(t for t in expr.inputs if t not in weights)
    layer = make_layer(name, expr, dims, dtypes, shapes, count=count, slots=activations if weights else None)
    slots = {t: (("", t),) for t in activations}
    return [(layer, slots)]


def _parse_weights(f: dict[str, Field], expr: TensorExpr) -> tuple[str, ...]:
    """An `expr:` layer's `weights:`, the inputs that are weights (constant: not fed by `inputs:`, not
    network inputs); none by default."""
    if "weights" not in f:
        return ()
    names = tuple(v.str() for v in f["weights"].items())
    for name, item in zip(names, f["weights"].items(), strict=True):
        if name not in expr.inputs:
            raise item.error(f"'{name}' is not an input tensor of the expression (inputs: {', '.join(expr.inputs)})")
    if len(set(names)) != len(names):
        raise f["weights"].error("a tensor is named twice")
    return names


def _parse_dims(f: dict[str, Field], expr: TensorExpr) -> dict[str, int]:
    if "dims" not in f:
        raise f["expr"].error(f"missing 'dims' giving the extent of each dim ({', '.join(expr.dims)})")
    given = f["dims"].mapping()
    dims = {}
    for dim, value in given.items():
        if dim not in expr.dims:
            raise value.error(f"'{dim}' is not a dim of the expression (dims: {', '.join(expr.dims)})")
        dims[dim] = value.int(minimum=1)
    missing = [d for d in expr.dims if d not in dims]
    if missing:
        raise f["dims"].error(f"dim(s) {', '.join(missing)} used in the expression but missing from dims")
    return {d: dims[d] for d in expr.dims}


def _parse_template_entry(name: str, f: dict[str, Field], count: int) -> list[tuple[Layer, Slots | None]]:
    op_field = f["op"]
    op = op_field.str()
    if op not in TEMPLATES:
        hint = difflib.get_close_matches(op, TEMPLATES, n=1)
        also = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(TEMPLATES)})"
        raise op_field.error(f"unknown op '{op}'{also}")
    params_field = f.get("params")
    params = params_field.keys(optional=TEMPLATES[op].params) if params_field else {}
    try:
        protos, slots = expand(op, {k: v.value for k, v in params.items()})
    except TemplateError as exc:
        target = params[exc.param] if exc.param in params else (params_field or op_field)
        raise target.error(str(exc)) from None
    layers = []
    for proto in protos:
        layer = _proto_layer(name, op, proto, {k: v.value for k, v in params.items()}, count, slots)
        problem = expr_dtype_problem(layer.expr, layer.output.dtype)
        if problem:
            raise (params_field or op_field).error(problem)
        layers.append(layer)
    # Only the first layer of a template carries the slots; the others are wired internally.
    return [(layer, slots if i == 0 else None) for i, layer in enumerate(layers)]


def template_layer(op: str, params: dict, name: str | None = None) -> Layer:
    """The layer of a one-layer template, as a bare computation (no wiring); raises TemplateError.

    >>> template_layer("gemm", {"M": 2, "N": 3, "K": 4}).dims
    {'m': 2, 'n': 3, 'k': 4}
    """
    protos, _ = expand(op, params)
    if len(protos) != 1:
        raise TemplateError(f"template '{op}' makes {len(protos)} layers, not one")
    (proto,) = protos
    return make_layer(name or op, proto.expr, proto.dims, proto.dtypes, proto.shapes)


def _proto_layer(name: str, op: str, proto: Proto, params: dict, count: int, slots: Slots) -> Layer:
    producers = {operand: name + suffix for operand, suffix in proto.internal.items()}
    fed = tuple(operand for entries in slots.values() for suffix, operand in entries if suffix == proto.suffix)
    return make_layer(name + proto.suffix, proto.expr, proto.dims, proto.dtypes, proto.shapes, op=op,
                      params=params, producers=producers, count=count, slots=(*producers, *fed))


def _wire(layers: list[Layer], wiring) -> list[Layer]:
    """Fill each entry's activation slots from its `inputs:` (a list in slot order or a mapping)."""
    by_name = {layer.name: layer for layer in layers}
    extra: dict[str, dict[str, str]] = {}
    for inputs, slots, entry in wiring:
        if inputs is None:
            continue
        if isinstance(inputs.value, list):
            given = inputs.items()
            if len(given) > len(slots):
                raise inputs.error(f"expected at most {len(slots)} input(s) ({', '.join(slots)}), "
                                   f"got {len(given)}")
            pairs = list(zip(slots, given, strict=False))
        else:
            children = inputs.mapping()
            for key, child in children.items():
                if key not in slots:
                    raise child.error(f"'{key}' is not an input of this layer (inputs: {', '.join(slots)})")
            pairs = list(children.items())
        for slot, given in pairs:
            source, shape, what = _source(given, by_name)
            for suffix, operand in slots[slot]:
                consumer = by_name[entry + suffix]
                tensor = consumer.tensors[operand]
                if math.prod(shape) != tensor.elements:
                    raise given.error(
                        f"{what} produces {math.prod(shape)} elements {list(shape)}, but input "
                        f"{operand} of '{consumer.name}' holds {tensor.elements} {list(tensor.shape)}")
                extra.setdefault(consumer.name, {})[operand] = source
    return [replace(layer, producers={**layer.producers, **extra[layer.name]}) if layer.name in extra
            else layer for layer in layers]


def _source(given: Field, by_name: dict[str, Layer]) -> tuple[Source, tuple[int, ...], str]:
    """An `inputs:` item: a layer name, or `{concat: [names], axis: N}`; with its shape and a description."""
    def producer(f: Field) -> Layer:
        name = f.str()
        if name not in by_name:
            hint = difflib.get_close_matches(name, by_name, n=1)
            raise f.error(f"unknown layer '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else ""))
        return by_name[name]

    if not isinstance(given.value, dict):
        layer = producer(given)
        return layer.name, layer.output.shape, f"layer '{layer.name}'"
    f = given.keys(required=("concat", "axis"))
    items = f["concat"].items()
    if len(items) < 2:
        raise f["concat"].error("expected a list of at least two layers to concatenate")
    parts = [producer(item) for item in items]
    shapes = [p.output.shape for p in parts]
    axis = f["axis"].int(minimum=0)
    if axis >= len(shapes[0]):
        raise f["axis"].error(f"expected an axis below the parts' rank {len(shapes[0])}")
    for item, part, shape in zip(items, parts, shapes, strict=True):
        if len(shape) != len(shapes[0]) or any(a != b for k, (a, b) in enumerate(zip(shape, shapes[0],
                                                                                       strict=True)) if k != axis):
            raise item.error(f"the parts of a concatenation along axis {axis} must agree on the other axes: "
                             f"'{part.name}' produces {list(shape)}, '{parts[0].name}' {list(shapes[0])}")
    dtypes = {p.output.dtype for p in parts}
    if len(dtypes) > 1:
        raise f["concat"].error(f"the parts of a concatenation must have one dtype, got {', '.join(sorted(dtypes))}")
    shape = tuple(sum(s[axis] for s in shapes) if k == axis else n for k, n in enumerate(shapes[0]))
    names = tuple(p.name for p in parts)
    return Concat(names, axis), shape, f"the concatenation of {', '.join(names)}"


__all__ = ["Concat", "OnChip", "Source", "layer_graph", "parts_of",
           "Layer", "Tensor", "Workload", "SpecError", "load_workload", "parse_workload", "make_layer"]
