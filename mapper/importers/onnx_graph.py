"""The ONNX graph being converted: its shapes, constants and sources, and the layers made from it.

`OnnxGraph` is what `mapper.importers.onnx_ops` converts node by node (each ONNX op becomes a layer of
the op library, or folds into the layer before it); `OnnxGraph.to_yaml` writes the workload YAML text.

    >>> layer_name("/layer2/layer2.0/downsample/downsample.0/Conv", "Conv", 7)
    'layer2.0.downsample.0'
    >>> layer_name("/layer1/layer1.0/Add", "Add", 9), layer_name("", "Relu", 3)
    ('layer1.0.add', 'Relu_3')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mapper.spec.loader import SpecError
from mapper.spec.ops import expand
from mapper.spec.workload import Concat, Source, make_layer

MAX_NAME = 100
# The slots of each template, in `inputs:` order, and the suffixes of multi-layer templates.
SLOTS = {"conv2d": ("I",), "depthwise_conv2d": ("I",), "gemm": ("A",), "batched_matmul": ("A", "B"),
         "max_pool2d": ("I",), "avg_pool2d": ("I",), "relu": ("X",), "sigmoid": ("X",), "tanh": ("X",),
         "add": ("X", "Y"), "mul": ("X", "Y"), "softmax": ("X",), "lrn": ("X",)}
SUFFIXES = {"softmax": (".max", ".exp", ".sum"), "lrn": (".sq", ".sum", ".den", ".div")}
# Ops that are usually modules of their own in a PyTorch export (the node's scope names them).
_MODULE_OPS = {"Conv", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LRN",
               "Softmax", "Relu", "Clip", "Sigmoid", "Tanh", "BatchNormalization"}

def layer_name(node_name: str, op_type: str, index: int) -> str:
    """A layer name from an ONNX node name (letters, digits, `_ . -`); `OpType_index` when empty.

    PyTorch scopes (`/layer1/layer1.0/conv1/Conv`) become module paths (`layer1.0.conv1`); the op
    type is kept for ops that are not modules of their own (`layer1.0.add`).
    """
    name = node_name
    if "/" in name:
        segs = [s for s in name.split("/") if s]
        tail = ""
        if len(segs) > 1 and re.fullmatch(re.escape(op_type) + r"(_\d+)?", segs[-1]):
            last = segs.pop()
            tail = "" if op_type in _MODULE_OPS else "." + last.lower()
        segs = [s for i, s in enumerate(segs) if not (i + 1 < len(segs) and segs[i + 1].startswith(s + "."))]
        name = ".".join(segs) + tail
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name).strip(".-")[:MAX_NAME - 12]
    return name or f"{op_type}_{index}"


# --------------------------------------------------------------------------------------------------
# The graph being converted

@dataclass
class Entry:
    """A layer under construction (mutable while the graph is walked: folds extend it)."""

    name: str
    op: str
    params: dict
    inputs: dict[str, Source | None]  # slot -> where its data comes from (None: a network input)
    nodes: list[str]  # the ONNX nodes it came from
    out: str  # the ONNX tensor holding its result (moves along folded BN / ReLU / bias nodes)


@dataclass(frozen=True)
class Cat:
    """A concatenation as ONNX sees it: producing layers, their ONNX shapes, the axis and the node."""

    parts: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    axis: int
    node: str


@dataclass
class OnnxGraph:
    """Shapes, constants and sources of an ONNX graph, and the layers made from it so far."""

    path: str
    model: object
    dtype: str
    shapes: dict[str, tuple] = field(default_factory=dict)
    consts: dict[str, object] = field(default_factory=dict)  # constant tensor -> value (None: unread)
    consumers: dict[str, int] = field(default_factory=dict)
    src: dict[str, str | Cat | None] = field(default_factory=dict)  # tensor -> layer, concat or input
    entries: list[Entry] = field(default_factory=list)
    by_name: dict[str, Entry] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    cat_of: dict[str, str] = field(default_factory=dict)  # producing layer -> the Concat node using it
    index: dict[str, int] = field(default_factory=dict)  # node name -> its position in the graph

    def __post_init__(self):
        from onnx import numpy_helper  # lazy: onnx takes 0.8 s to import

        g = self.model.graph
        for i, node in enumerate(g.node):  # unnamed nodes are named OpType_index, in messages and comments
            node.name = node.name or f"{node.op_type}_{i}"
            self.index.setdefault(node.name, i)
        for info in [*g.input, *g.value_info, *g.output]:
            if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
                self.shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                                               for d in info.type.tensor_type.shape.dim)
        for init in g.initializer:
            self.shapes[init.name] = tuple(init.dims)
            try:
                self.consts[init.name] = numpy_helper.to_array(init)
            except Exception:  # noqa: BLE001 - external data not loaded: only the shape is known
                self.consts[init.name] = None
        for info in g.input:
            if info.name not in self.consts:
                self.src[info.name] = None  # a network input
        for node in g.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        for out in g.output:
            self.consumers[out.name] = self.consumers.get(out.name, 0) + 1

    @property
    def opset(self) -> int:
        return next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 1)

    # -- errors and facts about tensors ----------------------------------------------------------------
    def fail(self, node, message: str) -> SpecError:
        return SpecError(self.path, None, f"node '{node_label(node)}' ({node.op_type})", message)

    def shape(self, node, tensor: str) -> tuple[int, ...]:
        shape = self.shapes.get(tensor)
        if shape is None:
            raise self.fail(node, f"the shape of '{tensor}' is unknown (shape inference could not derive it); "
                                  f"covenant needs static shapes")
        if any(not isinstance(d, int) or d < 1 for d in shape):
            dims = ", ".join(str(d) for d in shape)
            raise self.fail(node, f"'{tensor}' has a symbolic or unknown dim in [{dims}]; covenant needs static "
                                  f"shapes (fix the batch size, e.g. with onnx.tools.update_model_dims)")
        return shape

    def is_const(self, tensor: str) -> bool:
        return tensor in self.consts

    def const_value(self, node, tensor: str):
        value = self.consts.get(tensor)
        if value is None:
            raise self.fail(node, f"'{tensor}' must be a constant stored in the model")
        return value

    # -- sources -----------------------------------------------------------------------------------
    def producer(self, tensor: str) -> Entry | None:
        """The layer whose result `tensor` is exactly (not through a reshape), or None."""
        source = self.src.get(tensor)
        entry = self.by_name.get(source) if isinstance(source, str) else None
        return entry if entry is not None and entry.out == tensor else None

    def only_consumer(self, tensor: str) -> bool:
        return self.consumers.get(tensor, 0) == 1

    def raw_source(self, node, tensor: str) -> str | Cat | None:
        if tensor in self.consts:
            raise self.fail(node, f"operand '{tensor}' is a constant; this op is supported on activations only")
        if tensor not in self.src:
            raise self.fail(node, f"input '{tensor}' is produced by no earlier node")
        return self.src[tensor]

    def source(self, node, tensor: str) -> Source | None:
        """Where a layer input's data comes from, as the workload format writes it."""
        source = self.raw_source(node, tensor)
        return self._concat(node, source) if isinstance(source, Cat) else source

    def _concat(self, node, cat: Cat) -> Concat:
        for part in cat.parts:
            if self.cat_of.setdefault(part, cat.node) != cat.node:
                raise self.fail(node, f"layer '{part}' is part of two concatenations ('{self.cat_of[part]}' and "
                                      f"'{cat.node}'); a layer feeding several Concats is not supported yet")
        layer_shapes = [self.layer_shape(self.by_name[p]) for p in cat.parts]
        axis = concat_axis(cat.shapes, layer_shapes, cat.axis)
        if axis is None:
            raise self.fail(node, f"the concatenation '{cat.node}' along axis {cat.axis} of {list(cat.shapes)} "
                                  f"cannot be written along one axis of its parts' layer outputs {layer_shapes}")
        return Concat(cat.parts, axis)

    @staticmethod
    def layer_shape(entry: Entry) -> tuple[int, ...]:
        """The shape of a layer's result (the last layer of its template)."""
        protos, _ = expand(entry.op, entry.params)
        proto = protos[-1]
        return make_layer(entry.name, proto.expr, proto.dims, proto.dtypes, proto.shapes).output.shape

    # -- building layers ---------------------------------------------------------------------------
    def add(self, node, op: str, params: dict, inputs: dict[str, Source | None]) -> Entry:
        base = layer_name(node.name, node.op_type, self.index.get(node.name, 0))
        name, k = base, 1
        while any(n in self.used for n in self._names(name, op)):
            k += 1
            name = f"{base}_{k}"
        self.used.update(self._names(name, op))
        entry = Entry(name, op, params, inputs, [node_label(node)], node.output[0])
        self.entries.append(entry)
        self.by_name[name] = entry
        self.src[entry.out] = name
        return entry

    @staticmethod
    def _names(name: str, op: str) -> list[str]:
        return [name, *(name + s for s in SUFFIXES.get(op, ()))]

    def fold(self, entry: Entry, node) -> None:
        """Record `node` as part of `entry` (an epilogue): its output is the layer's result."""
        entry.nodes.append(node_label(node))
        entry.out = node.output[0]
        self.src[entry.out] = entry.name

    def alias(self, node) -> None:
        """`node` computes nothing: its output is its first input's data."""
        x = node.input[0]
        if x in self.consts:
            self.consts[node.output[0]] = None
        else:
            self.src[node.output[0]] = self.raw_source(node, x)

    # -- output ------------------------------------------------------------------------------------
    def to_yaml(self) -> tuple[str, dict[int, str]]:
        name = layer_name(Path(self.path).stem, "", 0)
        producer = getattr(self.model, "producer_name", "") or "unknown"
        lines = [f"# Imported from {Path(self.path).name} by `covenant import` (ONNX opset {self.opset}, "
                 f"producer {producer}); dtype {self.dtype}.",
                 f"name: {_flow(name)}",
                 f"description: {_flow(f'imported from {Path(self.path).name} ({self.dtype})')}",
                 "layers:"]
        where: dict[int, str] = {}
        for entry in self.entries:
            origin = " + ".join(entry.nodes)
            lines.append(f"  # from {_one_line(origin)}")
            lines.append(f"  - {_flow(entry_dict(entry))}")
            where[len(lines)] = f"layer '{entry.name}' (from ONNX {_one_line(origin)})"
        return "\n".join(lines) + "\n", where


def entry_dict(entry: Entry) -> dict:
    """The YAML entry of a layer: inputs as a list in slot order, or a mapping when a slot is a network input."""
    out = {"name": entry.name, "op": entry.op, "params": entry.params}
    slots = SLOTS[entry.op]
    given = {s: entry.inputs.get(s) for s in slots}
    fed = [s for s in slots if given[s] is not None]

    def item(source: Source):
        return source.to_yaml() if isinstance(source, Concat) else source

    if fed and fed == list(slots[:len(fed)]):
        out["inputs"] = [item(given[s]) for s in fed]
    elif fed:
        out["inputs"] = {s: item(given[s]) for s in fed}
    return out


def concat_axis(onnx_shapes, layer_shapes, axis: int) -> int | None:
    """The axis of the parts' layer output shapes that concatenates them as ONNX does along `axis`, or None.

    Row-major concatenation along an axis copies, per index of the axes before it, each part's
    contiguous block: the same bytes along axis b of other shapes when the product of the axes
    before b equals that before `axis`, and the parts agree on every other axis.

    >>> concat_axis([(1, 4, 2, 2), (1, 6, 2, 2)], [(1, 4, 2, 2), (1, 6, 2, 2)], 1)
    1
    >>> concat_axis([(1, 8), (1, 4)], [(1, 8, 1, 1), (1, 4, 1, 1)], 1)
    1
    >>> concat_axis([(2, 3), (2, 5)], [(6,), (10,)], 1) is None   # rows interleave: no single axis
    True
    """
    outer = math.prod(onnx_shapes[0][:axis])
    rank = len(layer_shapes[0])
    for b in sorted(range(rank), key=lambda k: k != axis):  # the ONNX axis itself first
        if any(len(s) != rank or math.prod(s[:b]) != outer for s in layer_shapes):
            continue
        if all(s[k] == layer_shapes[0][k] for s in layer_shapes for k in range(rank) if k != b) and \
                all(math.prod(s[b:]) == math.prod(o[axis:]) for s, o in zip(layer_shapes, onnx_shapes, strict=True)):
            return b
    return None


def node_label(node) -> str:
    return node.name

def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**9).strip().removesuffix("\n...")


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)
