"""The network level: passes over whole networks, above the layer-level pipeline (DESIGN.md,
"Whole networks").

    onnx_import.py  an ONNX model becomes a workload (one layer per computing node); onnx_ops.py
                    says what each ONNX op becomes
    program.py      a Workload becomes a Network: steps in order, activation values and the off-chip
                    buffers holding them, requantisation between layers
    memory.py       live ranges, the activation peak and the off-chip address plan
    reference.py    seeded network tensors, the NumPy reference of a whole network, calibration
    schedule.py     the layer order with the smallest activation peak (SERENITY's exact DP)
    rewrite.py      partitioning layers that read a concatenation (same values, lower peak)
    synthetic.py    RandWire-style DAGs and the DARTS cell as workloads (tests, benchmarks)
    compile.py      schedule, map every step, lower, plan memory, simulate end to end
"""

from __future__ import annotations

from pathlib import Path

from mapper.spec import PROJECT_ROOT
from mapper.workload import WORKLOAD_FOLDER, Workload, load_workload


def load_model(name_or_path: str | Path) -> Workload:
    """A network from a `.onnx` model (imported as int8) or a workload YAML / shipped name (loaded).

    A bare name with no shipped `workloads/NAME.yaml` is also looked up as `workloads/NAME.onnx`.

    >>> load_model("resnet18").macs == load_model("workloads/resnet18.yaml").macs
    True
    """
    path = Path(name_or_path)
    if path.suffix.lower() == ".onnx":
        from mapper.network.onnx_import import import_onnx

        return import_onnx(path)
    if not path.suffix and not path.exists():
        bases = (Path.cwd(), PROJECT_ROOT)
        found = [b / WORKLOAD_FOLDER / f"{path}.onnx" for b in bases if (b / WORKLOAD_FOLDER / f"{path}.onnx").exists()]
        if found and not any((b / WORKLOAD_FOLDER / f"{path}.yaml").exists() for b in bases):
            return load_model(found[0])
    return load_workload(name_or_path)
