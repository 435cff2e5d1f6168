"""The mapping layer: how a layer runs on an ACG, and what it costs (imports `mapper.spec` only).

    binding.py       instruction mapping: a layer's dims bound to a capability's
    mapping.py       the Mapping (binding, tiles per level, loop order, placement, buffering), its legality
    mapping_yaml.py  the Mapping file format
    cost.py          the exact analytical cost model (CP-SAT mirrors its pieces by name)
"""
