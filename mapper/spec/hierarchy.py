"""The storage hierarchy of an ACG: each storage's level (its distance in edges from off-chip memory)
and the rule its cycles follow.

On chip, data moves back only up the hierarchy: a cycle of storage edges must go down from a storage
(away from off-chip memory) and come back up to it, as a load and its write-back do (hvx_like's
VTCM -> VRF -> VTCM). An edge of an on-chip cycle between two storages at the same level (IBUF ->
WBUF -> IBUF, both loaded from DRAM) gives the data no direction: tiles could circle between the
buffers, and no level holds them; it is refused. Cycles through off-chip memory (a write-back to DRAM
and a reload, partial sums) are the usual spill and are allowed.
"""

from __future__ import annotations

import networkx as nx

from mapper.spec.loader import Field


def storage_levels(graph: nx.DiGraph, offchip: list[str]) -> dict[str, int]:
    """Every storage reachable from off-chip memory, with its fewest edges from it (0: off-chip).

    >>> storage_levels(nx.DiGraph([("DRAM", "SRAM"), ("SRAM", "RF"), ("RF", "SRAM")]), ["DRAM"])
    {'DRAM': 0, 'SRAM': 1, 'RF': 2}
    """
    return dict(nx.multi_source_dijkstra_path_length(graph, offchip, weight=None)) if offchip else {}


def check_cycles(graph: nx.DiGraph, onchip: list[str], offchip: list[str], edge_fields: list[Field]) -> None:
    """Refuse an on-chip cycle with an edge between storages at the same level (see the module doc),
    naming the first such edge's line and the cycle. `graph` holds the storage nodes and their edges;
    `edge_fields` are the ACG's `edges` items."""
    level = storage_levels(graph, offchip)
    chip = graph.subgraph(onchip)
    for part in (p for p in nx.strongly_connected_components(chip) if len(p) > 1):
        for item in edge_fields:
            u, v = item.value["from"], item.value["to"]
            if u in part and v in part and level.get(u) == level.get(v):
                cycle = " -> ".join([u, *nx.shortest_path(chip, v, u)])
                where = f"level {level[u]}" if u in level else "no path from off-chip memory"
                raise item.error(f"the edges {cycle} form a cycle on chip through storages at the same level "
                                 f"({where}): on chip, data moves back only up the hierarchy (a load and its "
                                 "write-back); see docs/formats/acg.md#edges")
