"""The network level: passes over whole networks, above the layer-level pipeline.

    program.py    a Workload becomes a Network: steps in order, activation values and the off-chip
                  buffers holding them, requantisation between layers
    memory.py     live ranges, the activation peak and the off-chip address plan
    reference.py  seeded network tensors, the NumPy reference of a whole network, calibration
    compile.py    map every step, lower, plan memory, simulate end to end
"""
