"""Importers: other tools' files as covenant specs (imports every layer below the app).

    model.py                  the workload loader of every command (YAML, shipped name or ONNX)
    onnx_import.py            an ONNX model as a workload; onnx_graph.py the graph being converted,
                              onnx_ops.py what each ONNX op becomes
    zigzag.py                 a ZigZag accelerator as an ACG
    zigzag_files.py           reading ZigZag's hardware and mapping files
    accelforge_arch.py        an AccelForge architecture, as AccelForge evaluates it for one MAC Einsum,
                              as an ACG; accelforge_path.py reads that evaluated path
    synthetic.py              RandWire-style DAGs and the DARTS cell as workloads (tests, benchmarks)
"""
