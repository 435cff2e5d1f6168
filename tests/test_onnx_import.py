"""ONNX import: the shared models against the shipped YAML workloads and an independent MAC count from
the ONNX shapes, round trips through the written YAML, every edge case on small graphs built with
`onnx.helper`, and bad input (each one line on stderr, exit status 2)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from mapper.app.cli import main
from mapper.importers.model import load_model
from mapper.importers.onnx_import import import_onnx, import_onnx_yaml
from mapper.mapping.binding import bind, no_binding_reason
from mapper.spec.acg import load_acg
from mapper.spec.loader import SpecError
from mapper.spec.workload import Concat, load_workload

MODELS = Path(__file__).parents[1].parent / "shared" / "models"
PROJECT = Path(__file__).parents[1]
needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason=f"the shared ONNX models are absent ({MODELS})")


def onnx_macs(path: Path) -> int:
    """MACs straight from the ONNX shapes: Conv N*K*P*Q * C/group*R*S, Gemm / MatMul output elements * K."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    g = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.input, *g.value_info, *g.output]}
    shapes |= {i.name: list(i.dims) for i in g.initializer}
    total = 0
    for node in g.node:
        out = shapes[node.output[0]]
        if node.op_type == "Conv":
            total += math.prod(out) * math.prod(shapes[node.input[1]][1:])  # weights [K, C/group, R, S]
        elif node.op_type == "Gemm":
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            total += math.prod(out) * shapes[node.input[0]][0 if trans_a else 1]
        elif node.op_type == "MatMul":
            total += math.prod(out) * shapes[node.input[0]][-1]
    return total


# --------------------------------------------------------------------------------------------------
# The shared models

@needs_models
@pytest.mark.parametrize("model,shipped,layers", [("resnet18", "resnet18", 31), ("mobilenetv2", "mobilenet_v2", 64),
                                                  ("alexnet", None, 25)])
def test_shared_models_against_yaml_and_onnx_shapes(model, shipped, layers):
    wl = import_onnx(MODELS / f"{model}.onnx")
    assert len(wl.layers) == layers
    assert wl.macs == onnx_macs(MODELS / f"{model}.onnx")
    if shipped:  # same network, layer for layer: identical MACs and the same multiset of computations
        ref = load_workload(shipped)
        assert wl.macs == ref.macs
        assert len(wl.layers) == len(ref.layers)
        assert sorted(lyr.macs for lyr in wl.layers) == sorted(lyr.macs for lyr in ref.layers)
        assert sorted(lyr.op for lyr in wl.layers) == sorted(lyr.op for lyr in ref.layers)
    assert {lyr.name for lyr in wl.layers if not lyr.producers} == {wl.layers[0].name}  # one network input


@needs_models
def test_resnet18_names_and_epilogues():
    wl = import_onnx(MODELS / "resnet18.onnx")
    names = {lyr.name for lyr in wl.layers}
    assert {"conv1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.add", "fc"} <= names
    add = wl.layer("layer1.0.add")
    assert add.params["activation"] == "relu" and add.producers == {"X": "layer1.0.conv2", "Y": "maxpool"}
    assert wl.layer("layer1.0.conv1").params["activation"] == "relu"  # BN folded, ReLU the epilogue
    assert "activation" not in wl.layer("layer1.0.conv2").params       # its ReLU comes after the add


@needs_models
def test_alexnet_binds_on_genesys():
    acg = load_acg("genesys")
    wl = import_onnx(MODELS / "alexnet.onnx")
    assert {lyr.op for lyr in wl.layers} == {"conv2d", "lrn", "max_pool2d", "gemm", "softmax"}
    for layer in wl.layers:
        assert bind(layer, acg), no_binding_reason(layer, acg)


@needs_models
@pytest.mark.parametrize("model", ["resnet18", "mobilenetv2", "alexnet"])
def test_written_yaml_loads_to_the_same_layers(model, tmp_path):
    out = tmp_path / f"{model}.yaml"
    assert main(["import", str(MODELS / f"{model}.onnx"), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.count("\n  # from ") == text.count("\n  - {name: ")
    assert load_workload(out).layers == import_onnx(MODELS / f"{model}.onnx").layers


# --------------------------------------------------------------------------------------------------
# Small graphs

def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def weight(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def save(tmp_path, nodes, inputs, output, inits=(), opset=13, name="m") -> Path:
    graph = helper.make_graph(nodes, "g", inputs, [vi(output, None)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def conv_model(tmp_path, hw=(7, 7), c=4, k=4, rs=(3, 3), **attrs):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)]
    group = attrs.get("group", 1)
    return save(tmp_path, nodes, [vi("x", [1, c, *hw])], "y", [weight("w", k, c // group, *rs)])


def onnx_out_shape(path, tensor="y"):
    g = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    return next(tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in [*g.value_info, *g.output]
                if v.name == tensor)


@pytest.mark.parametrize("attrs,hw,pad", [
    ({"pads": [0, 1, 2, 3]}, (7, 7), [0, 1, 2, 3]),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (8, 8), [0, 0, 1, 1]),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, (8, 8), [1, 1, 0, 0]),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (7, 7), 1),
    ({"auto_pad": "VALID", "strides": [2, 1]}, (7, 7), None),
    ({"pads": [2, 2, 2, 2], "dilations": [2, 2]}, (7, 9), 2),
])
def test_conv_padding_forms(tmp_path, attrs, hw, pad):
    path = conv_model(tmp_path, hw=hw, **attrs)
    (layer,) = import_onnx(path).layers
    assert layer.op == "conv2d" and layer.params.get("pad") == pad
    assert layer.output.shape == onnx_out_shape(path)
    if "dilations" in attrs:
        assert layer.params["dilation"] == 2


@pytest.mark.parametrize("c,k,group,op,groups", [(4, 6, 2, "conv2d", 2), (4, 4, 4, "depthwise_conv2d", None),
                                                 (4, 8, 4, "conv2d", 4), (4, 4, 1, "conv2d", None)])
def test_conv_groups(tmp_path, c, k, group, op, groups):
    path = conv_model(tmp_path, c=c, k=k, group=group, pads=[1, 1, 1, 1])
    (layer,) = import_onnx(path).layers
    assert layer.op == op and layer.params.get("groups") == groups
    assert layer.macs == math.prod(onnx_out_shape(path)) * (c // group) * 9
    assert layer.output.elements == math.prod(onnx_out_shape(path))


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_gemm_transposes_and_bias(tmp_path, trans_a, trans_b):
    a, b = ([5, 3] if trans_a else [3, 5]), ([7, 5] if trans_b else [5, 7])
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="fc", transA=trans_a, transB=trans_b, beta=0.5)]
    (layer,) = import_onnx(save(tmp_path, nodes, [vi("a", a)], "y", [weight("b", *b), weight("c", 7)])).layers
    assert layer.op == "gemm" and layer.dims == {"m": 3, "n": 7, "k": 5}
    assert layer.params.get("transpose_a", False) == bool(trans_a)
    assert layer.params.get("transpose_b", False) == bool(trans_b)
    assert layer.tensors["A"].shape == tuple(a) and layer.tensors["B"].shape == tuple(b)


def test_matmul_2d_batched_and_bias_add(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
             helper.make_node("Add", ["h", "bias"], ["hb"], name="proj_bias"),
             helper.make_node("MatMul", ["hb", "k"], ["y"], name="scores")]
    path = save(tmp_path, nodes, [vi("x", [2, 4, 8]), vi("k", [2, 6, 3])], "y", [weight("w", 8, 6), weight("bias", 6)])
    proj, scores = import_onnx(path).layers
    assert (proj.op, proj.dims) == ("gemm", {"m": 8, "n": 6, "k": 8})  # [2, 4] rows flattened
    assert proj.params == {"M": 8, "N": 6, "K": 8}                      # the bias folded away
    assert (scores.op, scores.dims) == ("batched_matmul", {"b": 2, "m": 4, "n": 3, "k": 6})
    assert scores.producers == {"A": "proj"}  # B is a network input


def test_bn_fold_relu_epilogue_and_yaml_comment(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="Conv_0", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="BatchNormalization_1"),
             helper.make_node("Relu", ["n"], ["y"], name="Relu_2")]
    inits = [weight("w", 4, 3, 3, 3), *(weight(p, 4) for p in "sbmv")]
    text, wl, _ = import_onnx_yaml(save(tmp_path, nodes, [vi("x", [1, 3, 5, 5])], "y", inits))
    (layer,) = wl.layers
    assert layer.params["activation"] == "relu"
    assert "# from Conv_0 + BatchNormalization_1 + Relu_2\n" in text


def test_relu_of_a_shared_producer_is_a_layer(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="act"),
             helper.make_node("Add", ["c", "r"], ["y"], name="sum")]
    wl = import_onnx(save(tmp_path, nodes, [vi("x", [1, 2, 4, 4])], "y", [weight("w", 2, 2, 1, 1)]))
    assert [(lyr.name, lyr.op) for lyr in wl.layers] == [("conv", "conv2d"), ("act", "relu"), ("sum", "add")]
    assert "activation" not in wl.layer("conv").params
    assert wl.layer("sum").producers == {"X": "conv", "Y": "act"}


@pytest.mark.parametrize("opset", [11, 6])
def test_clip_is_relu(tmp_path, opset):
    def clip(inp, out, name, lo=0.0):
        if opset >= 11:
            return helper.make_node("Clip", [inp, f"{name}.lo", f"{name}.hi"], [out], name=name)
        return helper.make_node("Clip", [inp], [out], name=name, min=lo, max=6.0)

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), clip("c", "r", "relu6"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             clip("p", "y", "relu6b")]
    bounds = [numpy_helper.from_array(np.array(v, np.float32), f"{n}.{s}")
              for n in ("relu6", "relu6b") for s, v in (("lo", 0.0), ("hi", 6.0))]
    wl = import_onnx(save(tmp_path, nodes, [vi("x", [1, 2, 4, 4])], "y",
                          [weight("w", 2, 2, 1, 1), *(bounds if opset >= 11 else [])], opset=opset))
    assert [lyr.op for lyr in wl.layers] == ["conv2d", "max_pool2d", "relu"]
    assert wl.layer("conv").params["activation"] == "relu"
    assert wl.layer("relu6b").tensors["X"].shape == (1, 2, 2, 2)


def cat_model(tmp_path, nested=False, twice=False):
    nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"c{i}"], name=f"conv{i}") for i in range(3)]
    inits = [weight(f"w{i}", 2 + i, 3, 1, 1) for i in range(3)]
    if nested:
        nodes += [helper.make_node("Concat", ["c0", "c1"], ["a"], name="cat_a", axis=1),
                  helper.make_node("Concat", ["a", "c2"], ["cat"], name="cat_b", axis=-3)]
    else:
        nodes += [helper.make_node("Concat", ["c0", "c1", "c2"], ["cat"], name="cat", axis=1)]
    nodes.append(helper.make_node("Conv", ["cat", "wo"], ["y"], name="mix"))
    inits.append(weight("wo", 4, 9, 1, 1))
    if twice:
        nodes.append(helper.make_node("Concat", ["c0", "y"], ["z"], name="cat_again", axis=1))
        nodes.append(helper.make_node("Relu", ["z"], ["y2"], name="after"))
    return save(tmp_path, nodes, [vi("x", [1, 3, 4, 4])], "y2" if twice else "y", inits)


@pytest.mark.parametrize("nested", [False, True])
def test_concat_input_and_flattening(tmp_path, nested):
    wl = import_onnx(cat_model(tmp_path, nested))
    mix = wl.layer("mix")
    assert mix.producers == {"I": Concat(("conv0", "conv1", "conv2"), 1)}
    assert mix.tensors["I"].shape == (1, 9, 4, 4)
    assert set(wl.graph.predecessors("mix")) == {"conv0", "conv1", "conv2"}


def test_a_layer_in_two_concats_is_rejected(tmp_path, capsys):
    assert main(["import", str(cat_model(tmp_path, twice=True))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "node 'after' (Relu)" in err and "two concatenations" in err


def test_flatten_reshape_dropout_pass_through(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("Dropout", ["f"], ["d"], name="drop"),
             helper.make_node("Gemm", ["d", "w"], ["y"], name="fc", transB=1)]
    wl = import_onnx(save(tmp_path, nodes, [vi("x", [1, 8, 3, 3])], "y", [weight("w", 5, 8)]))
    gap, fc = wl.layers
    assert (gap.op, gap.params["R"], gap.params["S"]) == ("avg_pool2d", 3, 3)
    assert fc.producers == {"A": "gap"} and fc.tensors["A"].shape == (1, 8)


def test_pools_ceil_mode_softmax_lrn_float32(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
             helper.make_node("AveragePool", ["p"], ["a"], name="avg", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                              count_include_pad=1),
             helper.make_node("LRN", ["a"], ["n"], name="norm", size=3),
             helper.make_node("Flatten", ["n"], ["f"], name="flat"),
             helper.make_node("Softmax", ["f"], ["y"], name="prob")]
    path = save(tmp_path, nodes, [vi("x", [1, 4, 8, 8])], "y")
    wl = import_onnx(path, dtype="float32")
    assert [lyr.name for lyr in wl.layers] == ["pool", "avg", "norm.sq", "norm.sum", "norm.den", "norm",
                                               "prob.max", "prob.exp", "prob.sum", "prob"]
    assert wl.layer("pool").output.shape == onnx_out_shape(path, "p") == (1, 4, 4, 4)  # ceil: end padded
    assert wl.layer("pool").params["pad"] == [0, 0, 1, 1]
    assert all(t.dtype == "float32" for lyr in wl.layers for t in lyr.tensors.values())
    assert wl.layer("prob.max").producers == {"X": "norm"} and wl.layer("prob").output.shape == (1, 100)
    assert wl.layer("avg").output.shape == onnx_out_shape(path, "a") == (1, 4, 5, 5)  # ONNX pools: stride 1
    int8 = import_onnx(path)
    assert int8.layer("norm").output.dtype == "int8" and int8.layer("norm.div").output.dtype == "float32"


@pytest.mark.parametrize("attrs", [{"pads": [1, 1, 1, 1], "count_include_pad": 0}, {"ceil_mode": 1, "strides": [2, 2]}])
def test_avg_pool_divisors_float32_only_when_exact(tmp_path, attrs):
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], name="avg", kernel_shape=[2, 2], **attrs)]
    path = save(tmp_path, nodes, [vi("x", [1, 2, 5, 5])], "y")
    (layer,) = import_onnx(path).layers  # int8: the window sum, the divisor is requantisation
    assert layer.output.shape == onnx_out_shape(path) and layer.output.dtype == "int32"
    with pytest.raises(SpecError, match=r"node 'avg' \(AveragePool\): count_include_pad=0"):
        import_onnx(path, dtype="float32")


def test_load_model_dispatch_and_shipped_examples(tmp_path):
    for name in ("tiny_cnn", "tiny_mlp"):
        wl = load_model(PROJECT / "workloads" / f"{name}.onnx")
        assert load_model(name).layers == wl.layers  # a bare name finds workloads/NAME.onnx
    cnn = load_model(PROJECT / "workloads" / "tiny_cnn.onnx")
    assert [lyr.op for lyr in cnn.layers] == ["conv2d", "max_pool2d", "conv2d", "conv2d", "conv2d", "avg_pool2d",
                                              "gemm"]
    assert cnn.layer("down.conv").producers == {"I": Concat(("left.conv", "right.conv"), 1)}
    assert cnn.macs == onnx_macs(PROJECT / "workloads" / "tiny_cnn.onnx")
    assert load_model("resnet18").layers == load_workload("resnet18").layers


def test_examples_are_regenerated_identically(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_onnx_examples", PROJECT / "workloads" / "make_onnx_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.main(tmp_path):
        assert path.read_bytes() == (PROJECT / "workloads" / path.name).read_bytes()


def test_cli_show_import_and_experiment(tmp_path, capsys):
    model = PROJECT / "workloads" / "tiny_mlp.onnx"
    assert main(["show", "workload", str(model)]) == 0
    assert "softmax" in capsys.readouterr().out
    assert main(["import", str(model), "--dtype", "float32"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Imported from tiny_mlp.onnx") and "dtype: float32" in text
    from mapper.app.experiment import load_experiment

    assert main(["map", "--acg", "genesys", "--workload", str(model), "--layer", "fc2", "--time-limit", "5",
                 "--json"]) == 0
    assert '"valid": true' in capsys.readouterr().out
    assert main(["import", str(model), "-o", str(tmp_path / "nowhere" / "w.yaml")]) == 2
    assert "-o: the folder does not exist" in capsys.readouterr().err
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\nacgs: [genesys]\nworkloads: [{{spec: {model}, layers: [fc2]}}]\n")
    assert [(w, lyr.name) for w, lyr in load_experiment(exp).layers] == [("tiny_mlp", "fc2")]


def test_a_float_model_imported_as_int8_says_how(tmp_path, capsys):
    model = PROJECT / "workloads" / "tiny_cnn.onnx"  # float32 input and weights
    assert main(["import", str(model), "-o", str(tmp_path / "w.yaml")]) == 0
    note = capsys.readouterr().err
    assert note.startswith("covenant: note: tiny_cnn.onnx holds float32 tensors and was imported as int8 ") \
        and note.count("\n") == 1 and "no weight is converted" in note and "--dtype float32" in note
    assert note.removeprefix("covenant: note: ") in (tmp_path / "w.yaml").read_text()  # the file says so too
    assert load_workload(tmp_path / "w.yaml").layers  # and still loads
    assert main(["import", str(model), "--dtype", "float32", "-o", str(tmp_path / "f.yaml")]) == 0
    assert capsys.readouterr().err == ""
    ints = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    graph = helper.make_graph(ints, "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "i.onnx"))
    assert main(["import", str(tmp_path / "i.onnx")]) == 0
    assert capsys.readouterr().err == ""  # an int8 model needs no notice


# --------------------------------------------------------------------------------------------------
# Bad input: exit status 2, one line naming the node and op (or the file)

def bad_models(tmp_path) -> dict[str, tuple[Path, list[str]]]:
    text = tmp_path / "text.onnx"
    text.write_text("name: not a model\n")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes((PROJECT / "workloads" / "tiny_cnn.onnx").read_bytes()[:9000])
    einsum = save(tmp_path, [helper.make_node("Einsum", ["a", "b"], ["y"], name="mix", equation="ij,jk->ik")],
                  [vi("a", [2, 3]), vi("b", [3, 4])], "y", name="einsum")
    symbolic = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["batch", 8])], "y", name="sym")
    broadcast = save(tmp_path, [helper.make_node("Add", ["a", "b"], ["y"], name="plus")],
                     [vi("a", [2, 3]), vi("b", [1, 3])], "y", name="bcast")
    clip = save(tmp_path, [helper.make_node("Clip", ["x", "lo"], ["y"], name="clamp")], [vi("x", [2, 3])], "y",
                [numpy_helper.from_array(np.array(-1.0, np.float32), "lo")], name="clip")
    alpha = save(tmp_path, [helper.make_node("Gemm", ["a", "w"], ["y"], name="fc", alpha=2.0)],
                 [vi("a", [2, 3])], "y", [weight("w", 3, 4)], name="alpha")
    return {"text": (text, ["not a readable ONNX model"]), "truncated": (truncated, ["not a readable ONNX model"]),
            "missing": (tmp_path / "missing.onnx", ["no such file"]),
            "einsum": (einsum, ["node 'mix' (Einsum)", "unsupported op", "Conv"]),
            "symbolic": (symbolic, ["node 'Relu_0' (Relu)", "symbolic", "batch"]),
            "broadcast": (broadcast, ["node 'plus' (Add)", "broadcasting"]),
            "clip": (clip, ["node 'clamp' (Clip)", "min -1"]), "alpha": (alpha, ["node 'fc' (Gemm)", "alpha=2"])}


@pytest.mark.parametrize("case", ["text", "truncated", "missing", "einsum", "symbolic", "broadcast", "clip", "alpha"])
@pytest.mark.parametrize("command", ["import", "show"])
def test_bad_models_exit_2_with_one_line(tmp_path, capsys, case, command):
    path, expected = bad_models(tmp_path)[case]
    argv = ["import", str(path)] if command == "import" else ["show", "workload", str(path)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"covenant: error: {path}: ") and "\n" not in err, err
    assert all(word in err for word in expected), err
    assert captured.out == ""
    with pytest.raises(SpecError):
        import_onnx(path)


def test_layer_names_are_sanitised_and_unique(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="weird name:1"),
             helper.make_node("Relu", ["a"], ["b"], name="weird name:1"),
             helper.make_node("Relu", ["b"], ["c"]),
             helper.make_node("Softmax", ["c"], ["d"], name="s"),
             helper.make_node("Relu", ["d"], ["y"], name="s.max" + "x" * 200)]
    wl = import_onnx(save(tmp_path, nodes, [vi("x", [2, 3])], "y"))
    names = [lyr.name for lyr in wl.layers]
    assert names[:3] == ["weird_name_1", "weird_name_1_2", "Relu_2"]
    assert len(set(names)) == len(names) and all(len(n) <= 100 for n in names)
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for n in names)


def test_quantize_dequantize_are_identities(tmp_path):
    scale, zero = numpy_helper.from_array(np.array(0.1, np.float32), "s"), \
        numpy_helper.from_array(np.array(0, np.int8), "z")
    w8 = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.int8), "w8")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
             helper.make_node("DequantizeLinear", ["w8", "s", "z"], ["w"], name="dqw"),
             helper.make_node("Conv", ["xd", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    (layer,) = import_onnx(save(tmp_path, nodes, [vi("x", [1, 3, 6, 6])], "y", [scale, zero, w8])).layers
    assert (layer.op, layer.producers, layer.macs) == ("conv2d", {}, 4 * 36 * 27)


def test_lrn_without_size_is_one_line(tmp_path):
    path = save(tmp_path, [helper.make_node("LRN", ["x"], ["y"], name="norm")], [vi("x", [1, 4, 2, 2])], "y")
    with pytest.raises(SpecError, match=r"node 'norm' \(LRN\): malformed node"):
        import_onnx(path)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 28247), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_models_only_raise_spec_error(edits):
    data = bytearray((PROJECT / "workloads" / "tiny_cnn.onnx").read_bytes())
    for offset, value in edits:
        data[offset % len(data)] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.onnx"
        path.write_bytes(bytes(data))
        try:
            import_onnx(path)
        except SpecError as exc:
            assert "\n" not in str(exc)


def test_lrn_and_softmax_map_and_simulate_on_genesys(tmp_path, capsys):
    """The new SIMD capabilities run the imported LRN and softmax layers, equal to the reference."""
    import json

    nodes = [helper.make_node("LRN", ["x"], ["n"], name="norm", size=5, alpha=1e-4, beta=0.75, bias=1.0),
             helper.make_node("Flatten", ["n"], ["f"], name="flat"),
             helper.make_node("Softmax", ["f"], ["y"], name="prob")]
    path = save(tmp_path, nodes, [vi("x", [1, 8, 4, 4])], "y")
    assert main(["map", "--acg", "genesys", "--workload", str(path), "--time-limit", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    caps = {r["name"]: r["capability"] for r in doc["layers"] if r["valid"]}
    assert caps == {"norm.sq": "vsquare", "norm.sum": "vadd_acc", "norm.den": "vpow", "norm.div": "vdiv",
                    "norm": "vquant_f32", "prob.max": "vmax_acc", "prob.exp": "vexp", "prob.sum": "vadd_acc_f32",
                    "prob": "vdiv"}
