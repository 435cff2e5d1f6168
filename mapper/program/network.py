"""A whole network as one program: steps in execution order over activation values in off-chip memory.

`build_network` turns a Workload (a DAG of layers) into a `Network`:

- every layer becomes a `Step`, in a topological order (the file's order where it is one);
- every activation is a `Value`: a layer's output, or a network input (an activation operand that no
  layer feeds, named `layer.operand`); each lives in a `Buffer` of off-chip memory;
- a concatenation is one buffer; each part's producer writes its slice of it (zero-copy);
- between a layer whose accumulator is wider than what its consumer reads (int32 -> int8) the
  builder inserts a requantisation step (`op: requant`: rounding shift, then saturation; the
  producer's `activation: relu` clips at 0), and where a relu epilogue has no requantisation to ride
  on, a `relu` step; an integer read as a float gets a dequantisation step (`op: dequant`), a float
  read as an integer a quantisation step (`op: quant`). Their shifts and scales are set later by
  calibration (`mapper.network.reference`).

    >>> from mapper.spec.workload import load_workload
    >>> net = build_network(load_workload("resnet18"))
    >>> len(net.steps), net.steps[1].layer.name, net.steps[1].layer.op
    (52, 'conv1.requant', 'requant')
    >>> net.inputs, net.outputs
    (('conv1.I',), ('fc',))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from mapper.spec.dtypes import DTYPES, dtype_bytes
from mapper.spec.loader import SpecError
from mapper.spec.workload import Concat, Layer, Source, Workload, parts_of, template_layer


@dataclass(frozen=True)
class Buffer:
    """A region of off-chip memory holding one activation value, or a concatenation of several."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def bytes(self) -> int:
        return math.prod(self.shape) * dtype_bytes(self.dtype)


@dataclass(frozen=True)
class Value:
    """An activation: the whole of `buffer`, or (in a concatenation) its slice [start, start + shape[axis])
    along `axis`."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: str
    axis: int | None = None
    start: int = 0


@dataclass(frozen=True)
class Step:
    """One layer of the network: which buffer or value each activation operand reads, what it writes."""

    layer: Layer
    reads: tuple[tuple[str, str], ...]  # (operand, value name, or a concatenation buffer's name)
    writes: str  # the value it produces (its layer's name)


@dataclass(frozen=True)
class Network:
    name: str
    steps: tuple[Step, ...]
    values: dict[str, Value]
    buffers: dict[str, Buffer]
    inputs: tuple[str, ...]  # values the network is given
    outputs: tuple[str, ...]  # values no step reads
    source: str = ""

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.layer.name == name)

    def readers(self) -> dict[str, list[int]]:
        """Per buffer, the indices of the steps that read it (a value in a concatenation is read through
        its buffer)."""
        out: dict[str, list[int]] = {b: [] for b in self.buffers}
        for i, step in enumerate(self.steps):
            for _, name in step.reads:
                out[self.buffer_of(name)].append(i)
        return out

    def buffer_of(self, name: str) -> str:
        return self.values[name].buffer if name in self.values else name

    def onchip_values(self) -> dict[str, str]:
        """The values a fused group keeps on chip (`mapper.network.fusion`), with the storage holding each."""
        return {s.writes: home for s in self.steps
                if (home := s.layer.onchip.home(s.layer.expr.output.tensor)) is not None}


def concat_name(source: Concat) -> str:
    return f"concat({','.join(source.parts)};axis={source.axis})"


def topological_order(wl: Workload) -> list[Layer]:
    """The layers in a topological order, as close to the file's order as the edges allow."""
    index = {layer.name: i for i, layer in enumerate(wl.layers)}
    names = nx.lexicographical_topological_sort(wl.graph, key=index.__getitem__)
    by_name = {layer.name: layer for layer in wl.layers}
    return [by_name[n] for n in names]


def build_network(wl: Workload, order: list[str] | None = None) -> Network:
    """The network program's structure for `wl` (steps in `order`, default `topological_order`)."""
    layers = topological_order(wl) if order is None else [wl.layer(n) for n in order]
    layers = _with_conversions(wl, layers)
    values: dict[str, Value] = {}
    buffers: dict[str, Buffer] = {}
    inputs: list[str] = []
    steps = []
    for layer in layers:
        reads = []
        for operand in layer.activations:
            source = layer.producers.get(operand)
            if source is None:  # a network input
                t = layer.tensors[operand]
                name = f"{layer.name}.{operand}"
                buffers[name] = Buffer(name, t.shape, t.dtype)
                values[name] = Value(name, t.shape, t.dtype, name)
                inputs.append(name)
                reads.append((operand, name))
            elif isinstance(source, Concat):
                reads.append((operand, concat_name(source)))
            else:
                reads.append((operand, source))
        steps.append(Step(layer, tuple(reads), layer.name))
    by_name = {layer.name: layer for layer in layers}
    concats = {concat_name(s): s for layer in layers for s in layer.producers.values() if isinstance(s, Concat)}
    in_concat: dict[str, str] = {}
    for name, c in concats.items():
        shapes = [by_name[p].output.shape for p in c.parts]
        shape = tuple(sum(s[c.axis] for s in shapes) if k == c.axis else n for k, n in enumerate(shapes[0]))
        buffers[name] = Buffer(name, shape, by_name[c.parts[0]].output.dtype)
        start = 0
        for part, part_shape in zip(c.parts, shapes, strict=True):
            if part in in_concat:
                raise SpecError(wl.source, None, part, f"layer '{part}' is part of two concatenations "
                                f"({in_concat[part]} and {name}); a value can be written into one only")
            in_concat[part] = name
            values[part] = Value(part, part_shape, by_name[part].output.dtype, name, c.axis, start)
            start += part_shape[c.axis]
    for layer in layers:
        if layer.name not in values:
            out = layer.output
            buffers[layer.name] = Buffer(layer.name, out.shape, out.dtype)
            values[layer.name] = Value(layer.name, out.shape, out.dtype, layer.name)
    read = {name for step in steps for _, name in step.reads}
    read |= {p for name in read if name in concats for p in concats[name].parts}
    outputs = tuple(layer.name for layer in layers if layer.name not in read)
    return Network(wl.name, tuple(steps), values, buffers, tuple(inputs), outputs, wl.source)


# --------------------------------------------------------------------------------------------------
# Conversions between layers

def _with_conversions(wl: Workload, layers: list[Layer]) -> list[Layer]:
    """`layers` with requantisation (and stand-alone relu) steps inserted after the producers whose
    output a consumer reads in another dtype, and consumers rewired to read them."""
    by_name = {layer.name: layer for layer in layers}
    added: dict[str, list[Layer]] = {}  # producer -> the conversion layers after it
    converted: dict[tuple[str, str], str] = {}  # (producer, dtype read) -> the layer to read instead

    def convert(producer: str, want: str, consumer: Layer, operand: str) -> str:
        key = (producer, want)
        if key not in converted:
            layer = conversion_layer(by_name[producer], want)
            if layer is None:
                have = by_name[producer].output.dtype
                raise SpecError(wl.source, None, consumer.name,
                                f"input {operand} of '{consumer.name}' is {want}, but '{producer}' produces {have}; "
                                "the network compiler converts wider integers to narrower ones (requant), integers "
                                "to floats (dequant) and floats to integers (quant)")
            converted[key] = layer.name if layer is not by_name[producer] else producer
            if layer is not by_name[producer]:
                added.setdefault(producer, []).append(layer)
        return converted[key]

    rewired = []
    for layer in layers:
        producers: dict[str, Source] = {}
        for operand, source in layer.producers.items():
            want = layer.tensors[operand].dtype
            parts = tuple(convert(p, want, layer, operand) for p in parts_of(source))
            producers[operand] = Concat(parts, source.axis) if isinstance(source, Concat) else parts[0]
        rewired.append(replace(layer, producers=producers) if producers != layer.producers else layer)
    out = []
    for layer in rewired:
        out.append(layer)
        out.extend(added.get(layer.name, []))
    return out


def conversion_layer(producer: Layer, want: str, shift: int = 0) -> Layer | None:
    """What a consumer reading `want` needs after `producer`: the producer itself, a requantisation
    or a relu step (named `producer.requant` / `producer.relu`), or None when no conversion exists."""
    out = producer.output
    # An epilogue activation (MAC templates); element-wise templates apply theirs in the expression.
    relu = producer.params.get("activation", "none") == "relu" and "relu" not in producer.expr.functions
    if out.dtype == want:
        if not relu:
            return producer
        params = {"shape": list(out.shape), "dtype": out.dtype}
        return _step_layer(producer, "relu", params, f"{producer.name}.relu")
    have_t, want_t = DTYPES[out.dtype], DTYPES[want]
    shape = list(out.shape)
    if have_t.kind in "iu" and want_t.kind in "iu" and have_t.itemsize > want_t.itemsize:
        params = {"shape": shape, "shift": shift, "dtype": out.dtype, "out_dtype": want,
                  "activation": "relu" if relu else "none"}
        return _step_layer(producer, "requant", params, f"{producer.name}.requant")
    if have_t.kind in "iu" and want_t.kind == "f" and not relu:
        params = {"shape": shape, "scale": 1.0, "dtype": out.dtype, "out_dtype": want}
        return _step_layer(producer, "dequant", params, f"{producer.name}.dequant")
    if have_t.kind == "f" and want_t.kind in "iu":
        params = {"shape": shape, "scale": 1.0, "dtype": out.dtype, "out_dtype": want,
                  "activation": "relu" if relu else "none"}
        return _step_layer(producer, "quant", params, f"{producer.name}.quant")
    return None


def with_params(layer: Layer, **params) -> Layer:
    """A conversion layer with other parameters (calibration: a shift or a scale)."""
    params = {**layer.params, **params}
    fresh = template_layer(layer.op, params, layer.name)
    return replace(layer, expr=fresh.expr, params=params)


def _step_layer(producer: Layer, op: str, params: dict, name: str) -> Layer:
    layer = template_layer(op, params, name)
    (operand,) = layer.expr.inputs
    return replace(layer, op=op, params=params, producers={operand: producer.name}, slots=(operand,))


def scale_for(data: np.ndarray, op: str) -> float:
    """A power-of-two scale from sample data: `dequant` maps the largest magnitude to at most 8 (where
    sigmoid and tanh saturate), `quant` maps it to at most 127 (int8 range).

    >>> scale_for(np.array([-3000, 100]), "dequant"), scale_for(np.array([0.2, 0.9]), "quant")
    (0.001953125, 128.0)
    """
    peak = float(np.abs(np.asarray(data, dtype=np.float64)).max(initial=0.0))
    if peak == 0.0:
        return 1.0
    target = 8.0 if op == "dequant" else 127.0
    return float(2.0 ** np.floor(np.log2(target / peak)))


def shift_for(data: np.ndarray, out_dtype: str, relu: bool) -> int:
    """The smallest right shift that brings the largest magnitude of `data` into `out_dtype`'s range
    (for a relu epilogue only the positive values count): post-training calibration on sample data.

    >>> shift_for(np.array([-1000, 300]), "int8", relu=False), shift_for(np.array([-1000, 300]), "int8", relu=True)
    (3, 2)
    """
    top = int(np.iinfo(out_dtype).max)
    values = np.asarray(data, dtype=np.int64)
    peak = int(values.max(initial=0)) if relu else int(np.abs(values).max(initial=0))
    shift = 0
    while (peak + ((1 << shift) >> 1)) >> shift > top:
        shift += 1
    return shift
