"""The NumPy reference of a whole network, its seeded tensors, and calibration of requantisation.

The reference runs every step's expression (`sim.reference.evaluate`, the same semantics as the
layer-level reference) on the values the earlier steps produced, an integer multiply-accumulate
through a float64 matmul where that is provably exact (`sim.blas.mac_in_float64`: every partial sum
an integer below 2**53; NumPy's integer einsum is a scalar loop, 13 s of ResNet-18's 13.1 s;
tests/test_sim_blas.py holds the two equal); a concatenation is the parts
joined along their axis. Calibration is post-training quantisation on the seeded sample input: each
requantisation step gets the smallest shift that brings its input's largest magnitude into int8
range (`program.shift_for`), and every (de)quantisation a power-of-two scale (`program.scale_for`),
so that every layer of the validation run carries information.

    >>> from mapper.spec.workload import load_workload
    >>> from mapper.program.network import build_network
    >>> net = build_network(load_workload("resnet18"))
    >>> tensors = seeded_tensors(net, seed=0)
    >>> net, values = calibrate(net, tensors)
    >>> values["fc"].shape, net.step("conv1.requant").layer.params["shift"] > 0
    ((1, 1000), True)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mapper.program.network import Network, Step, scale_for, shift_for, with_params
from sim.blas import mac_in_float64
from sim.reference import evaluate

CONVERSIONS = ("requant", "dequant", "quant")  # the steps the network builder inserts between layers


def seeded_tensors(net: Network, seed: int) -> dict[str, np.ndarray]:
    """Random network inputs (by value name) and weights (by `layer.operand`), reproducible from `seed`:
    integers over [-128, 127] (clipped to the dtype), floats standard normal."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in net.inputs:
        value = net.values[name]
        out[name] = _random(rng, value.shape, value.dtype)
    for step in net.steps:
        for w in step.layer.weights:
            t = step.layer.tensors[w]
            out[f"{step.layer.name}.{w}"] = _random(rng, t.shape, t.dtype)
    return out


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -128), min(info.max, 127), size=shape, endpoint=True).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def operands(net: Network, step: Step, values: dict[str, np.ndarray],
             tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays a step reads, in its tensors' shapes: activations from `values`, weights from `tensors`."""
    layer = step.layer
    out = {}
    for operand, name in step.reads:
        if name in net.values:
            data = values[name]
        else:  # a concatenation buffer: its parts, joined
            parts = [v for v in net.values.values() if v.buffer == name]
            parts.sort(key=lambda v: v.start)
            data = np.concatenate([values[v.name] for v in parts], axis=parts[0].axis)
        out[operand] = data.reshape(layer.tensors[operand].shape)
    for w in layer.weights:
        out[w] = tensors[f"{layer.name}.{w}"]
    return out


def run_step(net: Network, step: Step, values: dict[str, np.ndarray], tensors: dict[str, np.ndarray]) -> np.ndarray:
    layer = step.layer
    inputs, dtype = operands(net, step, values, tensors), np.dtype(layer.output.dtype)
    fast = mac_in_float64(layer.expr, layer.dims, inputs, dtype)
    return evaluate(layer.expr, layer.dims, inputs, dtype) if fast is None else fast


def run_reference(net: Network, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every value of the network (inputs included), computed step by step."""
    values = {name: tensors[name] for name in net.inputs}
    for step in net.steps:
        values[step.writes] = run_step(net, step, values, tensors)
    return values


def calibrate(net: Network, tensors: dict[str, np.ndarray]) -> tuple[Network, dict[str, np.ndarray]]:
    """`net` with every requantisation shift set from the reference run on `tensors`, and that run's values."""
    values = {name: tensors[name] for name in net.inputs}
    steps = []
    for step in net.steps:
        layer = step.layer
        if layer.op in CONVERSIONS:
            (operand, name), = step.reads
            data = operands(net, step, values, tensors)[operand]
            if layer.op == "requant":
                params = {"shift": shift_for(data, layer.output.dtype, layer.params.get("activation") == "relu")}
            else:
                params = {"scale": scale_for(data, layer.op)}
            step = replace(step, layer=with_params(layer, **params))
        steps.append(step)
        values[step.writes] = run_step(net, step, values, tensors)
    return replace(net, steps=tuple(steps)), values
