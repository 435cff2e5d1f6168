"""The program layer: what runs on the machine (imports `mapper.spec` and `mapper.mapping`).

    instructions.py  Program, regions and instructions
    lower.py         a Mapping lowered to a Program
    network.py       a Workload as a Network: steps, values, requantisation between layers
    windows.py       slices of a layer's output and the input windows they read (bands, core splits)
    memory.py        live ranges, the activation peak and the off-chip address plan
    staging.py       where a network's tensors start (flash, remote storage) and the transfers in and out

The simulator (`sim/`) reads this layer; it never reads the cost model.
"""
