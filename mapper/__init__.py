"""covenant's compiler, in layers; each folder imports only the folders below it (tests/test_layers.py).

    mapper/spec/       the notation, formulas, dtypes, limits, the YAML loader, op library, ACG, workload
    mapper/mapping/    bindings, the Mapping and its YAML file, the exact cost model
    mapper/program/    programs and lowering; the network program, windows, memory and staging plans
    sim/               the simulator (reads programs, never the cost model or a solver)
    solver/            the mapping strategies (CP-SAT and the baselines) over one search space
    mapper/network/    the network passes: map layers, schedule, rewrite, fuse, bands, cores, compile
    mapper/importers/  ONNX models, ZigZag accelerators, synthetic graphs; the workload loader
    mapper/app/        the command line, experiments, the result database, reports, drawings
"""

__version__ = "0.1.0"
