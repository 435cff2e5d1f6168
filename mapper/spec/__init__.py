"""The spec layer: what a user writes, parsed and validated (imports nothing else of covenant).

    tokens.py, notation.py, formula.py   the tensor-expression notation and the cycle formulas
    dtypes.py, limits.py                 value types; the bounds every loader applies
    loader.py, files.py                  the one YAML loader path (file, line, field in every error); safe writes
    ops.py                               the op library (templates that expand to tensor expressions)
    acg.py, workload.py                  the ACG and the workload, loaded and checked
    hierarchy.py                         an ACG's storage levels and the rule its cycles of edges follow
"""
