"""The network passes: whole networks, above the layer-level pipeline.

    flow.py         map a workload's layers one by one (solve, score, validate): the layer results
    reference.py    seeded network tensors, the NumPy reference of a whole network, calibration
    schedule.py     the layer order with the smallest activation peak (SERENITY's exact DP)
    rewrite.py      partitioning layers that read a concatenation (same values, lower peak)
    fusion.py       which values stay on chip, by groups of steps chosen by DP over the order
    step_costs.py   the layer solver as the fusion search asks it: costs, floors, solves reused
    bands.py        a fused group computed band by band along an axis, with halos
    cores.py        a step split over several cores that share off-chip memory
    staging_cost.py the predicted cost of staging a network's tensors in and out
    compile.py      schedule, map every step, lower, plan memory, simulate end to end
    phases.py       where a compile's time goes: seconds per phase, the solves

The network program they build and read (`Network`, windows, the memory and staging plans) is one
layer down, in `mapper.program`, where the network simulator reads it too.
"""
