"""Graph rewriting for memory (SERENITY's partitioning): the same network, computed with a lower peak.

A concatenation is one buffer, live from its first part's producer to its last reader: all its parts
coexist. Two rewrites let each part be read, and freed, on its own:

- a convolution (groups 1) or a GEMM reading a concatenation along its reduction axis (channels; K)
  becomes one partial convolution per part, over that part's slice of the weights, and a chain of
  int32 element-wise adds accumulating them (`X.part0`, `X.part1`, `X.acc1`, ..., the last add named
  `X`, carrying `X`'s epilogue activation): the same int32 sums, so the same requantised output;
- a depthwise convolution reading a concatenation along the channels becomes one depthwise
  convolution per part (`X.part0`, ...), and its readers read their concatenation instead.

Every new layer is a template layer (conv2d, gemm, depthwise_conv2d, add), so every step stays
expressible and mappable wherever the original was (an int32 add is a SIMD vadd). Weights are the
original layer's, sliced (`Rewritten.weights`), so the rewritten network is checked against the
original bit for bit on the same data (`check_rewrite`). A depthwise split's parts are requantised
separately: the check gives them the original's shift (`with_original_shifts`); compiled on its own,
calibration gives each part its own shift (per-part scales, still equal to its own reference).

    >>> from mapper.spec.workload import load_workload
    >>> rw = rewrite(load_workload("tiny_net"))
    >>> rw.rewritten, [layer.name for layer in rw.workload.layers][3:6]
    (('mix',), ['mix.part0', 'mix.part1', 'mix'])
    >>> check_rewrite(load_workload("tiny_net"), rw)
    []
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from mapper.network.reference import calibrate, run_reference, seeded_tensors
from mapper.network.schedule import Schedule, memory_graph, optimal_schedule
from mapper.program.network import Network, build_network, with_params
from mapper.spec.workload import Concat, Layer, Workload, layer_graph, parts_of, template_layer


@dataclass(frozen=True)
class WeightSlice:
    source: str  # the original weight, `layer.operand`
    axis: int
    start: int
    stop: int


@dataclass(frozen=True)
class Rewritten:
    workload: Workload
    rewritten: tuple[str, ...]  # the original layers that were rewritten
    weights: dict[str, WeightSlice]  # a new layer's weight (`layer.operand`) -> the original's slice
    origin: dict[str, str]  # a new layer -> the original layer it computes (part of)


def rewrite(wl: Workload, only: set[str] | None = None) -> Rewritten:
    """`wl` with every convolution, GEMM and depthwise convolution that reads a concatenation (and is
    its only reader) partitioned per part; `only` restricts the rewrites to those layers."""
    layers = list(wl.layers)
    done: list[str] = []
    weights: dict[str, WeightSlice] = {}
    origin: dict[str, str] = {}
    while True:
        target = next((layer for layer in layers if (only is None or layer.name in only)
                       and layer.name not in done and _rewritable(layer, layers)), None)
        if target is None:
            break
        split = _split_depthwise if target.op == "depthwise_conv2d" else _split_reduction
        layers = split(target, layers, weights, origin)
        done.append(target.name)
    return Rewritten(_workload(wl, layers), tuple(done), weights, origin)


def _rewritable(layer: Layer, layers: list[Layer]) -> bool:
    operand = {"conv2d": "I", "depthwise_conv2d": "I", "gemm": "A"}.get(layer.op or "")
    source = layer.producers.get(operand) if operand else None
    if not isinstance(source, Concat) or layer.count != 1:
        return False
    if any(s == source for other in layers if other is not layer for s in other.producers.values()):
        return False  # another layer reads the concatenation: its buffer stays anyway
    if layer.op == "conv2d":
        return source.axis == 1 and layer.params.get("groups", 1) == 1
    if layer.op == "gemm":
        return source.axis == 1 and not layer.params.get("transpose_a", False)
    readers = [s for other in layers for s in other.producers.values() if layer.name in parts_of(s)]
    plain = all(isinstance(s, str) for s in readers)  # (several plain readers share one concatenation)
    one_concat = len(readers) == 1 and isinstance(readers[0], Concat) and readers[0].axis == 1
    return source.axis == 1 and bool(readers) and (plain or one_concat)


def _widths(source: Concat, layers: list[Layer]) -> list[int]:
    by_name = {layer.name: layer for layer in layers}
    return [by_name[p].output.shape[source.axis] for p in source.parts]


def _split_reduction(layer: Layer, layers: list[Layer], weights: dict, origin: dict) -> list[Layer]:
    """Partial convolutions (GEMMs) per part, accumulated by a chain of int32 adds named after `layer`."""
    operand, weight, size, w_axis = ("I", "W", "C", 1) if layer.op == "conv2d" else \
        ("A", "B", "K", 1 if layer.params.get("transpose_b", False) else 0)
    source = layer.producers[operand]
    new: list[Layer] = []
    start = 0
    for i, (part, width) in enumerate(zip(source.parts, _widths(source, layers), strict=True)):
        params = {**layer.params, size: width, "activation": "none"}
        name = f"{layer.name}.part{i}"
        new.append(_wired(template_layer(layer.op, params, name), layer.op, params, {operand: part}))
        weights[f"{name}.{weight}"] = WeightSlice(f"{layer.name}.{weight}", w_axis, start, start + width)
        origin[name] = layer.name
        start += width
    acc = new[0].name
    out = layer.output
    partials = len(new)
    for i, part in enumerate(new[1:], start=1):
        last = i == partials - 1
        name = layer.name if last else f"{layer.name}.acc{i}"
        params = {"shape": list(out.shape), "dtype": out.dtype}
        add = _wired(template_layer("add", params, name), "add", params, {"X": acc, "Y": part.name})
        if last:  # the epilogue activation rides on the requantisation after it, as before
            add = replace(add, params={**params, "activation": layer.params.get("activation", "none")})
        new.append(add)
        origin[name] = layer.name
        acc = name
    return _replace(layers, layer, new)


def _split_depthwise(layer: Layer, layers: list[Layer], weights: dict, origin: dict) -> list[Layer]:
    """One depthwise convolution per part; `layer`'s readers read their concatenation."""
    source = layer.producers["I"]
    new, start = [], 0
    for i, (part, width) in enumerate(zip(source.parts, _widths(source, layers), strict=True)):
        params = {**layer.params, "C": width}
        name = f"{layer.name}.part{i}"
        new.append(_wired(template_layer(layer.op, params, name), layer.op, params, {"I": part}))
        weights[f"{name}.W"] = WeightSlice(f"{layer.name}.W", 0, start, start + width)
        origin[name] = layer.name
        start += width
    parts = tuple(p.name for p in new)

    def reread(s):
        if s == layer.name:
            return Concat(parts, 1)
        if isinstance(s, Concat) and layer.name in s.parts:
            return Concat(tuple(q for p in s.parts for q in (parts if p == layer.name else (p,))), s.axis)
        return s
    rewired = [replace(other, producers={k: reread(s) for k, s in other.producers.items()}) for other in layers]
    return _replace(rewired, next(r for r in rewired if r.name == layer.name), new)


def _wired(layer: Layer, op: str, params: dict, producers: dict) -> Layer:
    return replace(layer, op=op, params=params, producers=producers, slots=tuple(producers))


def _replace(layers: list[Layer], old: Layer, new: list[Layer]) -> list[Layer]:
    i = layers.index(old)
    return layers[:i] + new + layers[i + 1:]


def _workload(wl: Workload, layers: list[Layer]) -> Workload:
    return Workload(wl.name + "+rewritten", tuple(layers), wl.source, layer_graph(layers))


# --------------------------------------------------------------------------------------------------
# Checking a rewrite: the same data in, the same values out

def rewritten_tensors(rw: Rewritten, net: Network, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs and weights of the rewritten network `net`, from the original's `tensors`: the same
    inputs, the original weights for unchanged layers and their slices for new ones."""
    out = {name: tensors[name] for name in net.inputs}
    for step in net.steps:
        for w in step.layer.weights:
            key = f"{step.layer.name}.{w}"
            cut = rw.weights.get(key)
            if cut is None:
                out[key] = tensors[key]
            else:
                index = [slice(None)] * tensors[cut.source].ndim
                index[cut.axis] = slice(cut.start, cut.stop)
                out[key] = tensors[cut.source][tuple(index)]
    return out


def with_original_shifts(net: Network, original: Network, rw: Rewritten) -> Network:
    """`net` (rewritten) with every requantisation shift taken from the calibrated `original`: a new
    layer's requantisation gets the shift of the original layer it computes part of."""
    shifts = {s.layer.name: s.layer.params["shift"] for s in original.steps if s.layer.op == "requant"}
    steps = []
    for step in net.steps:
        if step.layer.op == "requant":
            producer = step.layer.name.removesuffix(".requant")
            key = f"{rw.origin.get(producer, producer)}.requant"
            step = replace(step, layer=with_params(step.layer, shift=shifts[key]))
        steps.append(step)
    return replace(net, steps=tuple(steps))


def check_rewrite(wl: Workload, rw: Rewritten, seed: int = 0, order: list[str] | None = None) -> list[str]:
    """The values that differ between the original network (calibrated on seeded data) and the
    rewritten one (in `order`) on the same data: every value both have, the outputs included. [] when
    the rewrite computes the same thing bit for bit."""
    original = build_network(wl)
    tensors = seeded_tensors(original, seed)
    original, expected = calibrate(original, tensors)
    net = with_original_shifts(build_network(rw.workload, order), original, rw)
    got = run_reference(net, rewritten_tensors(rw, net, tensors))
    if set(net.outputs) != set(original.outputs):
        return sorted(set(net.outputs) ^ set(original.outputs))
    return [name for name in expected if name in got and not np.array_equal(expected[name], got[name])]


# --------------------------------------------------------------------------------------------------
# Choosing the rewrites that pay

def rewrite_for_memory(wl: Workload, time_limit: float | None = None,
                       baseline: Schedule | None = None) -> tuple[Rewritten, Schedule]:
    """The rewrites of `wl` that lower its optimal peak, with the best order of the result.

    A partitioned convolution accumulates int32 partial sums, four times the bytes of an int8
    activation: it pays only when the concatenated parts outweigh them. So each candidate (in the
    order `rewrite` applies them) is kept when the best order with it, and those kept so far, has a
    strictly lower peak than `baseline` (default: the best order of `wl` found in a share of the time)
    and the rewrites kept before it; each trial gets an equal share of half of `time_limit`. Never
    worse than `baseline`: with no rewrite kept, the result is `wl` in the baseline's order."""
    start = time.perf_counter()
    candidates = rewrite(wl).rewritten
    share = None if time_limit is None else time_limit / 2 / (len(candidates) + 1)
    best = baseline or optimal_schedule(memory_graph(wl), time_limit=share)
    spent = baseline.seconds if baseline else 0.0
    kept: set[str] = set()
    for name in candidates:
        trial = rewrite(wl, kept | {name})
        if name not in trial.rewritten:
            continue  # it reads a concatenation only after a rewrite that was not kept
        found = optimal_schedule(memory_graph(trial.workload), time_limit=share)
        if found.peak_bytes < best.peak_bytes:
            kept.add(name)
            best = found
    rw = rewrite(wl, kept)
    if kept and not best.proven_optimal:
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - start), share)
        best = optimal_schedule(memory_graph(rw.workload), time_limit=left, upper=best)
    return rw, replace(best, seconds=spent + time.perf_counter() - start)
