"""What each ONNX op becomes (the ONNX table of docs/design/importers.md): one handler per op type over an `OnnxGraph`.

Conventions of an imported int8 network (docs/design/importers.md, "The int8 convention"): activations
between layers are int8; MAC layers accumulate in int32, and their requantisation epilogue (scale,
shift, clip) absorbs a folded BatchNormalization, a bias (Conv B, Gemm C with any beta, an Add of a
constant right after a MAC layer) and the ReLU (`activation: relu`); Clip(0, m) is a ReLU whose upper
bound m is the requantisation's saturation point (ReLU6 maps 6.0 to 127). Quantize/DequantizeLinear
are identities. float32 imports keep every value in float32 (there Clip(0, m) loses its bound m).
"""

from __future__ import annotations

import math

import numpy as np

from mapper.importers.onnx_graph import Cat, OnnxGraph
from mapper.spec.loader import SpecError

MAC_OPS = ("conv2d", "depthwise_conv2d", "gemm", "batched_matmul")
RELU_INTO = (*MAC_OPS, "add", "mul")  # producers whose epilogue can take the ReLU
BN_INTO = ("conv2d", "depthwise_conv2d", "gemm")
PASS_THROUGH = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout", "QuantizeLinear",
                "DequantizeLinear")


def convert(g: OnnxGraph) -> None:
    """Walk the nodes in order (ONNX graphs are topologically sorted), making or extending layers."""
    for node in g.model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise g.fail(node, f"ops of domain '{node.domain}' are not supported (only the default ONNX domain)")
        if node.op_type in PASS_THROUGH:
            if node.op_type == "Dropout" and len(node.output) > 1 and g.consumers.get(node.output[1]):
                raise g.fail(node, "its mask output is used; only inference Dropout (an identity) is supported")
            g.alias(node)
            continue
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise g.fail(node, f"unsupported op; supported: {', '.join(sorted([*HANDLERS, *PASS_THROUGH]))}")
        try:
            handler(g, node)
        except SpecError:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed node (missing attribute, odd input): one line
            raise g.fail(node, f"malformed node ({type(exc).__name__}: {str(exc)[:160]})") from None


def attrs(node) -> dict:
    from onnx import helper  # lazy: onnx takes 0.8 s to import

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def compact(params: dict, pool: bool = False) -> dict:
    """Window params as a person writes them: pad 0 and dilation 1 omitted, equal values as one number,
    and stride 1 omitted for convolutions (a pool's default stride is its window, so pools keep it).

    >>> compact({"C": 3, "stride": [1, 1], "pad": [1, 2, 1, 2], "dilation": [2, 2]})
    {'C': 3, 'pad': [1, 2], 'dilation': 2}
    >>> compact({"stride": [1, 1], "pad": [0, 0, 0, 0]}, pool=True)
    {'stride': 1}
    """
    out = {}
    for key, value in params.items():
        if key in ("stride", "pad", "dilation"):
            if key == "pad" and value[:2] == value[2:]:
                value = value[:2]
            if len(set(value)) == 1:
                value = value[0]
            if value == {"pad": 0, "dilation": 1, "stride": None if pool else 1}[key]:
                continue
        out[key] = value
    return out


def _typed(g: OnnxGraph, **mac) -> dict:
    """The dtype params of a template in this import's dtype (int8: the templates' defaults)."""
    return {} if g.dtype == "int8" else mac


# --------------------------------------------------------------------------------------------------
# Convolution and pooling

def window_pads(g: OnnxGraph, node, a: dict, size, kernel, strides, dilations) -> list[int]:
    """[top, left, bottom, right] from `pads` or `auto_pad` (SAME_UPPER: the odd pixel at the end)."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "NOTSET":
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or min(pads) < 0:
            raise g.fail(node, f"expected 4 non-negative pads, got {pads}")
        return pads
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise g.fail(node, f"unknown auto_pad '{auto}' (NOTSET, SAME_UPPER, SAME_LOWER or VALID)")
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
        total = max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return begin + end


def _window(g: OnnxGraph, node, kernel_default=None, ceil_ok=True):
    """(N, C, H, W), kernel, strides, dilations, pads of a 2-D window op, with ceil_mode as extra end padding."""
    x = node.input[0]
    shape = g.shape(node, x)
    if len(shape) != 4:
        raise g.fail(node, f"expected a 4-D NCHW input, got {list(shape)} (only 2-D windows are supported)")
    a = attrs(node)
    kernel = list(a.get("kernel_shape", kernel_default or []))
    if len(kernel) != 2:
        raise g.fail(node, f"expected a 2-D kernel_shape, got {kernel}")
    strides, dilations = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    pads = window_pads(g, node, a, shape[2:], kernel, strides, dilations)
    out = g.shape(node, node.output[0])
    for axis in range(2):  # ceil_mode (or any rounding up): pad the end until floor() reaches ONNX's size
        n, k, s, d = shape[2 + axis], kernel[axis], strides[axis], dilations[axis]
        need = (out[2 + axis] - 1) * s + (k - 1) * d + 1 - (n + pads[axis] + pads[axis + 2])
        if need > 0 and not (ceil_ok and a.get("ceil_mode", 0)):
            raise g.fail(node, f"output size {out[2 + axis]} does not follow from its attributes")
        pads[axis + 2] += max(0, need)
        if (n + pads[axis] + pads[axis + 2] - (k - 1) * d - 1) // s + 1 != out[2 + axis]:
            raise g.fail(node, f"output size {out[2 + axis]} does not follow from its attributes")
    return shape, kernel, strides, dilations, pads


def conv(g: OnnxGraph, node) -> None:
    w = node.input[1]
    if not g.is_const(w):
        raise g.fail(node, "the weights are computed by the graph; only constant Conv weights are supported")
    wshape = g.shape(node, w)
    if len(wshape) != 4:
        raise g.fail(node, f"expected 4-D weights [K, C/group, R, S], got {list(wshape)} (only 2-D convolutions)")
    K, Cg, R, S = wshape
    (N, C, H, W), _, strides, dilations, pads = _window(g, node, [R, S], ceil_ok=False)
    group = attrs(node).get("group", 1)
    if C != Cg * group:
        raise g.fail(node, f"input channels {C} != weight channels {Cg} x group {group}")
    depthwise = group > 1 and group == C and K == C
    params = {"N": N, "C": C} | ({} if depthwise else {"K": K}) | {"H": H, "W": W, "R": R, "S": S,
                                                                  "stride": strides, "pad": pads,
                                                                  "dilation": dilations}
    if group > 1 and not depthwise:
        params["groups"] = group
    g.add(node, "depthwise_conv2d" if depthwise else "conv2d",
          compact(params) | _typed(g, dtype="float32", acc_dtype="float32"), {"I": g.source(node, node.input[0])})


def max_pool(g: OnnxGraph, node) -> None:
    if len(node.output) > 1 and g.consumers.get(node.output[1]):
        raise g.fail(node, "its Indices output is used; only the pooled values are supported")
    (N, C, H, W), (R, S), strides, dilations, pads = _window(g, node)
    if dilations != [1, 1]:
        raise g.fail(node, f"dilations {dilations} are not supported for pooling (only 1)")
    params = compact({"N": N, "C": C, "H": H, "W": W, "R": R, "S": S, "stride": strides, "pad": pads}, pool=True)
    g.add(node, "max_pool2d", params | _typed(g, dtype="float32"), {"I": g.source(node, node.input[0])})


def avg_pool(g: OnnxGraph, node) -> None:
    """int8: the window sum (the divisor is requantisation, whatever count_include_pad says; at the
    borders of a padded count_include_pad=0 pool the true divisor is smaller). float32: the mean over
    the whole window, so count_include_pad=0 with padding is rejected there."""
    (N, C, H, W), (R, S), strides, dilations, pads = _window(g, node)
    if dilations != [1, 1]:
        raise g.fail(node, f"dilations {dilations} are not supported for pooling (only 1)")
    given = window_pads(g, node, attrs(node), (H, W), (R, S), strides, dilations)
    if g.dtype == "float32" and (pads != given or (any(pads) and not attrs(node).get("count_include_pad", 0))):
        raise g.fail(node, "count_include_pad=0 with padding, or ceil_mode windows past the padding, are not "
                           "supported in float32 (the avg_pool2d template divides by the whole window); import "
                           "as int8, where the divisor is part of the requantisation")
    params = compact({"N": N, "C": C, "H": H, "W": W, "R": R, "S": S, "stride": strides, "pad": pads}, pool=True)
    g.add(node, "avg_pool2d", params | _typed(g, dtype="float32", acc_dtype="float32"),
          {"I": g.source(node, node.input[0])})


def global_pool(g: OnnxGraph, node) -> None:
    shape = g.shape(node, node.input[0])
    if len(shape) != 4:
        raise g.fail(node, f"expected a 4-D NCHW input, got {list(shape)}")
    N, C, H, W = shape
    op = "avg_pool2d" if node.op_type == "GlobalAveragePool" else "max_pool2d"
    typed = _typed(g, dtype="float32", acc_dtype="float32") if op == "avg_pool2d" else _typed(g, dtype="float32")
    g.add(node, op, {"N": N, "C": C, "H": H, "W": W, "R": H, "S": W} | typed, {"I": g.source(node, node.input[0])})


# --------------------------------------------------------------------------------------------------
# Matrix products

def gemm(g: OnnxGraph, node) -> None:
    """Gemm: alpha must be 1; the bias C (any beta) is folded into the requantisation epilogue."""
    a = attrs(node)
    if a.get("alpha", 1.0) != 1.0:
        raise g.fail(node, f"alpha={a['alpha']:g} is not supported (only alpha=1)")
    if len(node.input) > 2 and node.input[2] and not g.is_const(node.input[2]):
        raise g.fail(node, "its bias C is computed by the graph; only a constant bias (folded into the "
                           "requantisation epilogue) is supported")
    ta, tb = bool(a.get("transA", 0)), bool(a.get("transB", 0))
    sa, sb = g.shape(node, node.input[0]), g.shape(node, node.input[1])
    if len(sa) != 2 or len(sb) != 2:
        raise g.fail(node, f"expected 2-D operands, got {list(sa)} and {list(sb)}")
    (M, K), (_, N) = (sa[::-1] if ta else sa), (sb[::-1] if tb else sb)
    typed = _typed(g, dtype="float32", acc_dtype="float32")
    if g.is_const(node.input[1]):
        params = {"M": M, "N": N, "K": K} | ({"transpose_a": True} if ta else {}) | \
            ({"transpose_b": True} if tb else {})
        g.add(node, "gemm", params | typed, {"A": g.source(node, node.input[0])})
    elif ta:
        raise g.fail(node, "transA with a computed B is not supported (batched_matmul has no transpose_a)")
    else:
        params = {"B": 1, "M": M, "N": N, "K": K} | ({"transpose_b": True} if tb else {})
        g.add(node, "batched_matmul", params | typed,
              {"A": g.source(node, node.input[0]), "B": g.source(node, node.input[1])})


def matmul(g: OnnxGraph, node) -> None:
    """2-D (or [..., M, K] x a constant [K, N]) -> gemm; two activations -> batched_matmul."""
    sa, sb = g.shape(node, node.input[0]), g.shape(node, node.input[1])
    if len(sa) < 2 or len(sb) < 2:
        raise g.fail(node, f"expected operands of rank >= 2, got {list(sa)} and {list(sb)}")
    typed = _typed(g, dtype="float32", acc_dtype="float32")
    if g.is_const(node.input[0]):
        raise g.fail(node, "a constant first operand is not supported (the activation must come first)")
    if g.is_const(node.input[1]):
        if len(sb) != 2:
            raise g.fail(node, f"a constant second operand must be 2-D, got {list(sb)}")
        params = {"M": math.prod(sa[:-1]), "N": sb[1], "K": sa[-1]}
        g.add(node, "gemm", params | typed, {"A": g.source(node, node.input[0])})
        return
    if len(sa) != len(sb) or sa[:-2] != sb[:-2]:
        raise g.fail(node, f"operands {list(sa)} and {list(sb)} need broadcasting, which is not supported yet")
    params = {"B": math.prod(sa[:-2]), "M": sa[-2], "N": sb[-1], "K": sa[-1]}
    g.add(node, "batched_matmul", params | typed,
          {"A": g.source(node, node.input[0]), "B": g.source(node, node.input[1])})


# --------------------------------------------------------------------------------------------------
# Element-wise ops, activations and folds

def elementwise(g: OnnxGraph, node) -> None:
    x, y = node.input[0], node.input[1]
    for const, other in ((y, x), (x, y)):
        if g.is_const(const) and not g.is_const(other):
            producer = g.producer(other)
            if node.op_type == "Add" and producer and producer.op in MAC_OPS and g.only_consumer(other) \
                    and "activation" not in producer.params:
                g.fold(producer, node)  # a bias: part of the requantisation epilogue
                return
            raise g.fail(node, f"operand '{const}' is a constant; only two activations, or a bias Add right "
                               f"after a Conv/Gemm/MatMul, are supported")
    sx, sy = g.shape(node, x), g.shape(node, y)
    if sx != sy:
        raise g.fail(node, f"operand shapes {list(sx)} and {list(sy)} differ; broadcasting is not supported yet")
    g.add(node, node.op_type.lower(), {"shape": list(sx)} | _typed(g, dtype="float32"),
          {"X": g.source(node, x), "Y": g.source(node, y)})


def relu(g: OnnxGraph, node) -> None:
    """ReLU (and Clip(0, m)): the producer's epilogue when it is a MAC layer or an add/mul whose result
    feeds only this node; otherwise a `relu` layer."""
    if node.op_type == "Clip":
        lo, _ = clip_bounds(g, node)
        if lo != 0:
            raise g.fail(node, f"Clip with min {lo:g} is not supported (only Clip(0, max): ReLU, ReLU6)")
    x = node.input[0]
    producer = g.producer(x)
    if producer and producer.op in RELU_INTO and g.only_consumer(x) and "activation" not in producer.params:
        producer.params["activation"] = "relu"
        g.fold(producer, node)
        return
    g.add(node, "relu", {"shape": list(g.shape(node, x))} | _typed(g, dtype="float32"), {"X": g.source(node, x)})


def clip_bounds(g: OnnxGraph, node) -> tuple[float, float]:
    if g.opset < 11:
        a = attrs(node)
        return a.get("min", -math.inf), a.get("max", math.inf)
    bounds = []
    for k, default in ((1, -math.inf), (2, math.inf)):
        name = node.input[k] if len(node.input) > k else ""
        bounds.append(float(np.asarray(g.const_value(node, name)).reshape(-1)[0]) if name else default)
    return bounds[0], bounds[1]


def batch_norm(g: OnnxGraph, node) -> None:
    x = node.input[0]
    producer = g.producer(x)
    if any(g.consumers.get(out) for out in node.output[1:]):
        raise g.fail(node, "its training outputs (running mean/var) are used; only inference BN is supported")
    if not (producer and producer.op in BN_INTO and g.only_consumer(x) and "activation" not in producer.params):
        raise g.fail(node, "BatchNormalization is folded into the Conv or Gemm right before it, whose output must "
                           "feed only it; here it follows something else")
    g.fold(producer, node)


def unary(g: OnnxGraph, node) -> None:
    g.add(node, node.op_type.lower(), {"shape": list(g.shape(node, node.input[0]))},
          {"X": g.source(node, node.input[0])})


def softmax(g: OnnxGraph, node) -> None:
    """Opset < 13: the input as [prod(shape[:axis]), prod(shape[axis:])]; opset >= 13: the last axis only."""
    shape = g.shape(node, node.input[0])
    axis = attrs(node).get("axis", 1 if g.opset < 13 else -1)
    axis = axis + len(shape) if axis < 0 else axis
    if g.opset >= 13 and axis != len(shape) - 1:
        raise g.fail(node, f"softmax over axis {axis} of {list(shape)} is not supported (only the last axis)")
    params = {"M": math.prod(shape[:axis]), "N": math.prod(shape[axis:])}
    g.add(node, "softmax", params | _typed(g, dtype="float32", scale=1.0), {"X": g.source(node, node.input[0])})


def lrn(g: OnnxGraph, node) -> None:
    shape = g.shape(node, node.input[0])
    if len(shape) != 4:
        raise g.fail(node, f"expected a 4-D NCHW input, got {list(shape)}")
    a = attrs(node)
    params = {"shape": list(shape), "size": a["size"], "alpha": float(a.get("alpha", 1e-4)),
              "beta": float(a.get("beta", 0.75)), "bias": float(a.get("bias", 1.0))}
    g.add(node, "lrn", params | _typed(g, dtype="float32"), {"X": g.source(node, node.input[0])})


def concat(g: OnnxGraph, node) -> None:
    """A concatenation is the consumer's input `{concat: [...], axis: N}`; nested ones along the same
    axis flatten into one."""
    out_shape = g.shape(node, node.output[0])
    axis = attrs(node).get("axis", 0)
    axis = axis + len(out_shape) if axis < 0 else axis
    parts, shapes = [], []
    for x in node.input:
        source, shape = g.raw_source(node, x), g.shape(node, x)
        if source is None:
            raise g.fail(node, f"'{x}' is a network input; concatenating network inputs is not supported yet")
        if isinstance(source, Cat):
            if source.axis != axis or len(shape) != len(out_shape):
                raise g.fail(node, f"it concatenates the concatenation '{source.node}' along another axis; "
                                   f"only nested Concats along the same axis are supported (they flatten)")
            parts.extend(source.parts)
            shapes.extend(source.shapes)
        else:
            parts.append(source)
            shapes.append(shape)
    if len(set(parts)) != len(parts):
        raise g.fail(node, "a layer appears twice in the concatenation; that is not supported yet")
    if len(parts) == 1:
        g.src[node.output[0]] = parts[0]
        return
    g.src[node.output[0]] = Cat(tuple(parts), tuple(tuple(s) for s in shapes), axis, node.name)


def constant(g: OnnxGraph, node) -> None:
    from onnx import numpy_helper  # lazy: onnx takes 0.8 s to import

    a = attrs(node)
    value = a.get("value")
    g.consts[node.output[0]] = numpy_helper.to_array(value) if value is not None else next(
        (np.asarray(v) for k, v in a.items() if k in ("value_float", "value_floats", "value_int", "value_ints")),
        None)


HANDLERS = {
    "Conv": conv, "MaxPool": max_pool, "AveragePool": avg_pool, "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool, "Gemm": gemm, "MatMul": matmul, "Add": elementwise, "Mul": elementwise,
    "Relu": relu, "Clip": relu, "BatchNormalization": batch_norm, "Sigmoid": unary, "Tanh": unary,
    "Softmax": softmax, "LRN": lrn, "Concat": concat, "Constant": constant,
}
