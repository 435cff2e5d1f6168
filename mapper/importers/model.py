"""The one workload loader of every command: a workload YAML, a shipped name, or an ONNX model.

It sits with the importers because an ONNX model is imported on the way (`mapper.importers.onnx_import`);
`mapper.spec.workload.load_workload` reads the YAML files.
"""

from __future__ import annotations

from pathlib import Path

from mapper.importers.onnx_import import import_onnx
from mapper.spec.loader import PROJECT_ROOT
from mapper.spec.workload import WORKLOAD_FOLDER, Workload, load_workload


def load_model(name_or_path: str | Path) -> Workload:
    """A network from a `.onnx` model (imported as int8) or a workload YAML / shipped name (loaded).

    A bare name with no shipped `workloads/NAME.yaml` is also looked up as `workloads/NAME.onnx`.

    >>> load_model("resnet18").macs == load_model("workloads/resnet18.yaml").macs
    True
    """
    path = Path(name_or_path)
    if path.suffix.lower() == ".onnx":
        return import_onnx(path)
    if not path.suffix and not path.exists():
        bases = (Path.cwd(), PROJECT_ROOT)
        found = [b / WORKLOAD_FOLDER / f"{path}.onnx" for b in bases if (b / WORKLOAD_FOLDER / f"{path}.onnx").exists()]
        if found and not any((b / WORKLOAD_FOLDER / f"{path}.yaml").exists() for b in bases):
            return load_model(found[0])
    return load_workload(name_or_path)
