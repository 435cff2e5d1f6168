"""ONNX import: a model file becomes a covenant workload (one layer per computing node).

Only shapes are read (`onnx.load(..., load_external_data=False)`, then ONNX shape inference): weights may
be absent. Every layer is built through the op library (`mapper.spec.ops`), as the YAML entry a user would
write; the workload is the parse of that YAML text, so `import_onnx(p)` equals loading the file that
`covenant import p -o w.yaml` writes. Which ONNX op becomes what is in `mapper.importers.onnx_ops` and in
the ONNX table of docs/design/importers.md. Every problem (a missing or corrupt file, an unsupported op,
a symbolic batch dim) is a `SpecError`: one line naming the node, its op type and what is supported.

The graph being converted is `mapper.importers.onnx_graph.OnnxGraph`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from mapper.importers.onnx_graph import OnnxGraph
from mapper.importers.onnx_ops import convert
from mapper.spec.loader import SpecError, load_yaml_text
from mapper.spec.workload import Workload, parse_workload

DTYPES = ("int8", "float32")


def import_onnx(path: str | Path, dtype: str = "int8") -> Workload:
    """The workload of an ONNX model: `dtype` int8 (int8 operands, int32 accumulators) or float32."""
    return import_onnx_yaml(path, dtype)[1]


class Imported(NamedTuple):
    text: str  # the workload YAML
    workload: Workload  # its parse (what loading the written file gives)
    notice: str | None  # how a floating-point model was made int8 (None: nothing to say)


def import_onnx_yaml(path: str | Path, dtype: str = "int8") -> Imported:
    """The workload YAML text of a model, its parse, and a notice for a floating-point model imported
    as int8."""
    text, lines, notice = onnx_to_yaml(path, dtype)
    try:
        return Imported(text, parse_workload(load_yaml_text(text, str(path))), notice)
    except SpecError as exc:  # the generated YAML is not visible: name the layer and its ONNX nodes
        where = lines.get(exc.line or 0, "the imported workload")
        raise SpecError(str(path), None, where, exc.message) from None


def onnx_to_yaml(path: str | Path, dtype: str = "int8") -> tuple[str, dict[int, str], str | None]:
    """The workload YAML text of a model, for each layer's line a description of its source, and
    the int8 notice (`int8_notice`), also the text's second comment line."""
    if dtype not in DTYPES:
        raise SpecError(str(path), None, "--dtype", f"expected one of {', '.join(DTYPES)}, got {dtype!r}")
    model = _load(Path(path))
    try:
        graph = OnnxGraph(str(path), model, dtype)
        convert(graph)
        text, lines = graph.to_yaml()
        notice = int8_notice(Path(path).name, model) if dtype == "int8" else None
        if notice:  # the written file says so too
            first, rest = text.split("\n", 1)
            text, lines = f"{first}\n# {notice}\n{rest}", {line + 1: where for line, where in lines.items()}
        return text, lines, notice
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt model (e.g. a name that is not UTF-8): one line
        raise SpecError(str(path), None, "", f"not a valid ONNX model ({type(exc).__name__}: "
                                             f"{_first_line(exc)})") from None


_FLOATS = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}  # ONNX TensorProto element types


def int8_notice(name: str, model) -> str | None:
    """What importing a floating-point model as int8 does (None for a model without float inputs or
    weights): the operands are declared int8, nothing of the model is converted."""
    g = model.graph
    kinds = {i.type.tensor_type.elem_type for i in g.input if i.type.HasField("tensor_type")}
    kinds |= {t.data_type for t in g.initializer}
    floats = sorted(_FLOATS[k] for k in kinds if k in _FLOATS)
    if not floats:
        return None
    return (f"{name} holds {'/'.join(floats)} tensors and was imported as int8 (--dtype float32 keeps it "
            "float): every layer reads int8 operands and accumulates in int32, each MAC layer's output is "
            "requantised to int8 by a scale, a shift and a clip (absorbing batch norm, bias and ReLU); only "
            "shapes are read, no weight is converted (simulations draw seeded random int8 inputs and weights, "
            "and `compile` calibrates the shifts on them)")


def _load(path: Path):
    import onnx  # lazy: onnx takes 0.8 s to import, and only a command that reads a model needs it

    if not path.is_file():
        raise SpecError(str(path), None, "", "no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types on corrupt input
        raise SpecError(str(path), None, "", f"not a readable ONNX model ({_first_line(exc)})") from None
    if not model.graph.node:
        raise SpecError(str(path), None, "", "not an ONNX model: it has no graph nodes")
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for inconsistent graphs
        raise SpecError(str(path), None, "", f"ONNX shape inference failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
