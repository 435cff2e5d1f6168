"""Write the small ONNX examples shipped beside the YAML workloads (deterministic: fixed seed, opset, IR).

    python workloads/make_onnx_examples.py            # rewrites workloads/tiny_cnn.onnx, workloads/tiny_mlp.onnx

tiny_cnn: conv + BatchNorm + ReLU, max pool, two branches concatenated along channels, a SAME_UPPER
strided conv with ReLU6 (Clip), global average pool, flatten, fully connected (Gemm, transB).
tiny_mlp: MatMul + bias Add + ReLU, Gemm + Sigmoid, Gemm + Softmax, batch 4.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET, IR_VERSION = 13, 8
HERE = Path(__file__).resolve().parent


class Builder:
    """Nodes and initializers of one graph, with random weights from a fixed seed."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def weight(self, name: str, *shape: int) -> str:
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(shape) * 0.1).astype(np.float32), name))
        return name

    def const(self, name: str, value: float, *shape: int) -> str:
        self.inits.append(numpy_helper.from_array(np.full(shape, value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, outputs: int = 1, **attrs) -> str:
        outs = [f"{name}_out{k}" if k else f"{name}_out" for k in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, producer_name="covenant make_onnx_examples.py",
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def tiny_cnn() -> onnx.ModelProto:
    b = Builder(0)
    x = b.node("Conv", ["image", b.weight("stem.w", 16, 3, 3, 3), b.weight("stem.b", 16)], "stem.conv",
               pads=[1, 1, 1, 1])
    x = b.node("BatchNormalization", [x, *(b.weight(f"stem.bn.{p}", 16) for p in ("scale", "bias", "mean")),
                                      b.const("stem.bn.var", 1.0, 16)],
               "stem.bn")
    x = b.node("Relu", [x], "stem.relu")
    x = b.node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    left = b.node("Relu", [b.node("Conv", [x, b.weight("left.w", 8, 16, 1, 1)], "left.conv")], "left.relu")
    right = b.node("Relu", [b.node("Conv", [x, b.weight("right.w", 8, 16, 3, 3)], "right.conv",
                                   pads=[1, 1, 1, 1])], "right.relu")
    x = b.node("Concat", [left, right], "cat", axis=1)
    x = b.node("Conv", [x, b.weight("down.w", 32, 16, 3, 3)], "down.conv", strides=[2, 2], auto_pad="SAME_UPPER")
    x = b.node("Clip", [x, b.const("relu6.min", 0.0), b.const("relu6.max", 6.0)], "down.relu6")
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flatten")
    b.node("Gemm", [x, b.weight("fc.w", 10, 32), b.weight("fc.b", 10)], "fc", transB=1)
    return b.model("tiny_cnn", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
                   [helper.make_tensor_value_info("fc_out", TensorProto.FLOAT, [1, 10])])


def tiny_mlp() -> onnx.ModelProto:
    b = Builder(1)
    x = b.node("MatMul", ["features", b.weight("fc1.w", 64, 32)], "fc1.matmul")
    x = b.node("Relu", [b.node("Add", [x, b.weight("fc1.b", 32)], "fc1.bias")], "fc1.relu")
    x = b.node("Sigmoid", [b.node("Gemm", [x, b.weight("fc2.w", 16, 32), b.weight("fc2.b", 16)], "fc2",
                                  transB=1)], "fc2.sigmoid")
    x = b.node("Gemm", [x, b.weight("head.w", 16, 10)], "head")
    b.node("Softmax", [x], "prob", axis=-1)
    return b.model("tiny_mlp", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [4, 64])],
                   [helper.make_tensor_value_info("prob_out", TensorProto.FLOAT, [4, 10])])


def main(folder: Path = HERE) -> list[Path]:
    written = []
    for make in (tiny_cnn, tiny_mlp):
        path = folder / f"{make.__name__}.onnx"
        path.write_bytes(make().SerializeToString(deterministic=True))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {p}")
