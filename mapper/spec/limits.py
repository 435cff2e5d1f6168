"""What covenant accepts, in one place: names, numbers in specs, and the size of what it simulates.

The spec loaders (`mapper.spec.loader.Field` accessors) apply the name and number limits, so every ACG,
workload, mapping and experiment file is held to the same ranges; `mapper.network.flow` applies the stage
limits before lowering a mapping, so a huge layer is rejected with its size instead of hanging.

    >>> name_problem("layer1.0.conv1") is None, name_problem("genesys[array=16,ibuf=32KiB]") is None
    (True, True)
    >>> [name_problem(bad) is None for bad in ("../escaped", "a/b", "x" * 129, "caf\u00e9", ".hidden", "")]
    [False, False, False, False, False, False]
"""

from __future__ import annotations

import re

NAME_MAX = 128
"""Longest name of a layer, workload, ACG, node, capability or experiment (characters)."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+=,\[\]-]*")
NAME_RULE = (f"a name of 1 to {NAME_MAX} characters: ASCII letters, digits and _ . - : + = , [ ], "
             "starting with a letter, a digit or '_'")

MAX_INT = 2**31
"""Largest integer a spec may give: dim extents, shapes, counts, instances, loop factors, seeds."""

MAX_SIZE = 2**50
"""Largest size in bytes (a storage capacity): 1 PiB."""

MAX_NUMBER = 2.0**50
"""Largest real number a spec may give: energies, bandwidths, clock, time limits (about 1.1e15)."""

MAX_SPEC_BYTES = 16 * 2**20
"""Largest spec or mapping file (YAML: an ACG, a workload, a mapping, an experiment, a ZigZag file) the
loader reads: 16 MiB, about a hundred times the largest shipped one; a larger file is refused before
it is parsed."""

MAX_JOBS = 256
"""Most worker processes `covenant run --jobs` starts (each holds a solver and a simulator, a few
hundred MB): more would exhaust memory on any machine covenant is meant for, not run faster."""

MAX_LAYER_POINTS = 2**48
"""Largest iteration space (points) a layer may have to be mapped: the CP-SAT model's integers (cycles
and energies in fixed point) overflow near 2**54 points on the shipped ACGs."""

MAX_PROGRAM_INSTRUCTIONS = 10_000_000
"""Largest lowered program `covenant` builds and simulates (the lowering and the simulator run at
roughly 10^4 to 10^5 instructions per second)."""

MAX_SIMULATED_BYTES = 2**30
"""Largest total of a layer's tensors (bytes) the simulator and the reference hold in memory."""


def name_problem(text: object) -> str | None:
    """None when `text` is an acceptable name, else what a name must be."""
    if isinstance(text, str) and len(text) <= NAME_MAX and _NAME.fullmatch(text):
        return None
    return NAME_RULE
