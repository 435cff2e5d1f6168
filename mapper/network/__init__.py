"""The network level: passes over whole networks, above the layer-level pipeline.

    program.py    a Workload becomes a Network: steps in order, activation values and the off-chip
                  buffers holding them, requantisation between layers
    memory.py     live ranges, the activation peak and the off-chip address plan
    reference.py  seeded network tensors, the NumPy reference of a whole network, calibration
    schedule.py   the layer order with the smallest activation peak (SERENITY's exact DP)
    rewrite.py    partitioning layers that read a concatenation (same values, lower peak)
    synthetic.py  RandWire-style DAGs and the DARTS cell as workloads (tests, benchmarks)
    compile.py    schedule, map every step, lower, plan memory, simulate end to end
"""

from mapper.workload import Workload, load_workload


def load_model(name_or_path: str) -> Workload:
    """A network by shipped name or path (ONNX import comes with `mapper.network.onnx_import`)."""
    return load_workload(name_or_path)
