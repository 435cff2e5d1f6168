"""The Architecture Covenant Graph: an accelerator as data (storage, compute capabilities, edges).

`load_acg` reads and validates the YAML format of docs/formats/acg.md into frozen dataclasses and a networkx
DiGraph; the queries later stages need are plain functions over it:

    >>> acg = load_acg("genesys")
    >>> cap = acg.capability("mvmul")
    >>> peak_ops_per_cycle(cap), acg.storages["OBUF"].total_capacity
    (Fraction(1024, 1), 262144)
    >>> read_paths(acg, "IBUF")
    [('DRAM', 'IBUF')]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import networkx as nx

from mapper.spec.capability import Capability, parse_capability, peak_ops_per_cycle
from mapper.spec.hierarchy import check_cycles
from mapper.spec.loader import Field, SpecError, find_spec, load_yaml


@dataclass(frozen=True)
class Storage:
    """A memory. `capacity` is per instance; `instances` > 1 replicates it (e.g. per-PE registers)."""

    name: str
    capacity: int
    offchip: bool = False
    instances: int = 1
    double_buffer: bool = False  # whether tiles in it may be double-buffered
    read_pj_per_byte: float = 0.0
    write_pj_per_byte: float = 0.0
    bytes_per_cycle: float | None = None  # the node's port bandwidth, shared by all its edges

    @property
    def total_capacity(self) -> int:
        return self.capacity * self.instances


@dataclass(frozen=True)
class Compute:
    name: str
    capabilities: tuple[Capability, ...]


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    bytes_per_cycle: float
    pj_per_byte: float = 0.0
    latency: int = 0  # fixed set-up cycles of every transfer (DMA instruction) along the edge


@dataclass(frozen=True)
class Staging:
    """Where a network's input and weights start and its outputs return to (ACG field `staging`).

    `source` (e.g. the drive's flash, or remote storage) lies outside the memory the layers use: the
    network compiler copies the input and every weight from it to `target` (the off-chip storage the
    layers' mappings read) along `inbound`, and the outputs back along `outbound`. `storages` holds
    the nodes of both routes except `target`; they are not part of the layers' ACG (`ACG.storages`)."""

    source: str
    target: str
    storages: dict[str, Storage]
    inbound: tuple[Edge, ...]  # the route source -> target, edge by edge
    outbound: tuple[Edge, ...]  # the route target -> source

    def storage(self, name: str, acg: ACG) -> Storage:
        return self.storages[name] if name in self.storages else acg.storages[name]


@dataclass(frozen=True)
class ACG:
    name: str
    clock_ghz: float
    storages: dict[str, Storage]
    computes: dict[str, Compute]
    edges: tuple[Edge, ...]
    source: str = ""
    graph: nx.DiGraph = field(default_factory=nx.DiGraph, compare=False, repr=False)
    # Identical copies of the on-chip part (storages, compute nodes, their edges); the off-chip
    # storages and their ports are shared by all (`mapper.network.cores`).
    cores: int = 1
    power: float = 0.0  # static power in watts: static energy = power x run time
    staging: Staging | None = None  # where a network's tensors start (None: in the off-chip storage)

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        return tuple(c for node in self.computes.values() for c in node.capabilities)

    def capability(self, name: str) -> Capability:
        for cap in self.capabilities:
            if cap.name == name:
                return cap
        raise KeyError(f"{self.name} has no capability '{name}'")

    def edge(self, src: str, dst: str) -> Edge | None:
        data = self.graph.get_edge_data(src, dst)
        return data["edge"] if data else None

    @property
    def offchip(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.storages.values() if s.offchip)


# --------------------------------------------------------------------------------------------------
# Queries

def storage_graph(acg: ACG) -> nx.DiGraph:
    """The edges between storage nodes only (data movement), as a view of `acg.graph`."""
    return acg.graph.subgraph(acg.storages)


def read_paths(acg: ACG, node: str) -> list[tuple[str, ...]]:
    """Every simple path along edges from an off-chip memory to storage `node`, shortest first."""
    return _offchip_paths(acg, node, inbound=True)


def write_paths(acg: ACG, node: str) -> list[tuple[str, ...]]:
    """Every simple path along edges from storage `node` back to an off-chip memory, shortest first."""
    return _offchip_paths(acg, node, inbound=False)


def home_paths(acg: ACG, home: str, node: str, is_output: bool) -> list[tuple[str, ...]]:
    """The storage paths of a tensor kept whole in storage `home`, home first: to operand storage
    `node` for an input, from it (reversed) for an output; `(home,)` when the operand is read or written
    in place. Shortest first."""
    if home == node:
        return [(home,)]
    g = acg.graph.subgraph(n for n, st in acg.storages.items() if not st.offchip)  # it stays on chip
    if home not in g or node not in g:
        return []
    found = nx.all_simple_paths(g, node, home) if is_output else nx.all_simple_paths(g, home, node)
    paths = [tuple(reversed(p)) if is_output else tuple(p) for p in found]
    return sorted(paths, key=lambda p: (len(p), p))


def _offchip_paths(acg: ACG, node: str, inbound: bool) -> list[tuple[str, ...]]:
    if acg.storages[node].offchip:
        return [(node,)]
    g = storage_graph(acg)
    ends = [(src, node) if inbound else (node, src) for src in acg.offchip]
    paths = [tuple(p) for u, v in ends for p in nx.all_simple_paths(g, u, v)]
    return sorted(paths, key=lambda p: (len(p), p))


def peak_macs_per_cycle(acg: ACG) -> dict[str, Fraction]:
    """Peak MACs per cycle of every multiply-accumulate capability, by name."""
    return {c.name: peak_ops_per_cycle(c) for c in acg.capabilities if c.expr.is_mac}


# --------------------------------------------------------------------------------------------------
# Loading and validation

ACG_FOLDER = "acg_specs"
MAX_CORES = 64
_STORAGE_FIELDS = ("kind", "capacity", "offchip", "instances", "double_buffer",
                   "read_pj_per_byte", "write_pj_per_byte", "bytes_per_cycle")
MAX_LATENCY = 10**6  # cycles of set-up per transfer


def load_acg(name_or_path: str | Path) -> ACG:
    """Load a shipped ACG by name (`genesys`) or any ACG file by path; raise `SpecError` if invalid."""
    return parse_acg(load_yaml(find_spec(name_or_path, ACG_FOLDER)))


def parse_acg(root: Field) -> ACG:
    top = root.keys(required=("name", "nodes", "edges"), optional=("clock_ghz", "cores", "power", "staging"))
    name = top["name"].ident()
    clock = top["clock_ghz"].number(strict=True) if "clock_ghz" in top else 1.0
    cores = top["cores"].int(minimum=1, maximum=MAX_CORES) if "cores" in top else 1
    power = top["power"].number() if "power" in top else 0.0
    nodes = top["nodes"].mapping()
    if not nodes:
        raise top["nodes"].error("expected at least one node")
    storages: dict[str, Storage] = {}
    compute_fields: dict[str, Field] = {}
    for node_name, node in nodes.items():
        Field(node.source, node.path, node_name, node.line).ident()  # the key is the node's name
        kind = node.child("kind").choice(("storage", "compute"))
        if kind == "storage":
            storages[node_name] = _parse_storage(node_name, node)
        else:
            compute_fields[node_name] = node
    if not any(s.offchip for s in storages.values()):
        raise top["nodes"].error("expected at least one storage node with 'offchip: true' (e.g. DRAM)")
    if cores > 1 and not all(s.bytes_per_cycle for s in storages.values() if s.offchip):
        raise top["cores"].error("several cores share off-chip memory through its port: give every off-chip "
                                 "storage a 'bytes_per_cycle'")

    graph = nx.DiGraph()
    for s in storages.values():
        graph.add_node(s.name, kind="storage", storage=s)
    staging, edges = _parse_edges(top, storages, compute_fields, graph)

    computes, seen_caps = {}, {}
    for node_name, node in compute_fields.items():
        caps = []
        fields = node.keys(required=("kind", "capabilities"))
        for item in fields["capabilities"].items():
            cap = parse_capability(node_name, item, storages, set(compute_fields))
            if cap.name in seen_caps:
                raise item.child("name").error(f"capability name '{cap.name}' is already used by "
                                               f"{seen_caps[cap.name]}")
            seen_caps[cap.name] = node_name
            caps.append(cap)
        if not caps:
            raise fields["capabilities"].error("expected at least one capability")
        computes[node_name] = Compute(node_name, tuple(caps))
        graph.add_node(node_name, kind="compute", compute=computes[node_name])

    acg = ACG(name, clock, storages, computes, edges, root.source, graph, cores, power, staging)
    for node_name, node in compute_fields.items():
        for item, cap in zip(node.child("capabilities").items(), computes[node_name].capabilities,
                             strict=True):
            _check_reachable(acg, cap, item.child("operands"))
            for tensor, places in cap.operands.items():
                for place in places:  # operand edges: which tensors flow between storage and compute
                    is_out = tensor == cap.expr.output.tensor
                    u, v = (node_name, place) if is_out else (place, node_name)
                    known = graph.edges[u, v]["operands"] if graph.has_edge(u, v) else ()
                    graph.add_edge(u, v, operands=tuple(dict.fromkeys((*known, tensor))))
    return acg


def _parse_storage(name: str, node: Field) -> Storage:
    if isinstance(node.value, dict) and "banks" in node.value:  # removed from the format: say why
        raise node.child("banks").error(
            "'banks' is no longer part of the ACG format (bank conflicts are not modelled, and the field "
            "changed nothing); remove it, and give the storage's port bandwidth with bytes_per_cycle")
    f = node.keys(required=("kind", "capacity"), optional=_STORAGE_FIELDS)

    def num(key: str) -> float:
        return f[key].number() if key in f else 0.0

    return Storage(
        name=name,
        capacity=f["capacity"].size(),
        offchip=f["offchip"].bool() if "offchip" in f else False,
        instances=f["instances"].int(minimum=1) if "instances" in f else 1,
        double_buffer=f["double_buffer"].bool() if "double_buffer" in f else False,
        read_pj_per_byte=num("read_pj_per_byte"),
        write_pj_per_byte=num("write_pj_per_byte"),
        bytes_per_cycle=f["bytes_per_cycle"].number(strict=True) if "bytes_per_cycle" in f else None,
    )


def _parse_edges(top: dict[str, Field], storages: dict[str, Storage], computes: dict[str, Field],
                 graph: nx.DiGraph) -> tuple[Staging | None, tuple[Edge, ...]]:
    """The edges (and the staging routes, whose nodes and edges then leave `storages` and `graph`)."""
    edges = tuple(_parse_edge(item, storages, computes, graph) for item in top["edges"].items())
    staging = None
    if "staging" in top:  # its nodes leave the layers' memory before capabilities are checked against it
        staging, edges = _parse_staging(top["staging"], storages, graph, edges, top["edges"].items())
    offchip = [name for name, s in storages.items() if s.offchip]
    check_cycles(graph.subgraph(storages), [n for n in storages if n not in offchip], offchip,
                 [item for item in top["edges"].items() if {item.value["from"], item.value["to"]} <= set(storages)])
    return staging, edges


def _parse_edge(item: Field, storages, computes, graph: nx.DiGraph) -> Edge:
    f = item.keys(required=("from", "to", "bytes_per_cycle"), optional=("pj_per_byte", "latency"))
    ends = []
    for key in ("from", "to"):
        node = f[key].str()
        if node in computes:
            raise f[key].error(f"'{node}' is a compute node: edges connect storage nodes "
                               "(a capability's operands connect it to storage)")
        if node not in storages:
            raise f[key].error(f"unknown node '{node}'; storage nodes: {', '.join(storages)}")
        ends.append(node)
    src, dst = ends
    if src == dst:
        raise item.error(f"an edge from '{src}' to itself")
    if graph.has_edge(src, dst):
        raise item.error(f"a second edge from '{src}' to '{dst}'")
    edge = Edge(src, dst, f["bytes_per_cycle"].number(strict=True),
                f["pj_per_byte"].number() if "pj_per_byte" in f else 0.0,
                f["latency"].int(minimum=0, maximum=MAX_LATENCY) if "latency" in f else 0)
    graph.add_edge(src, dst, edge=edge)
    return edge


def _parse_staging(f: Field, storages: dict[str, Storage], graph: nx.DiGraph, edges: tuple[Edge, ...],
                   edge_fields: list[Field]) -> tuple[Staging, tuple[Edge, ...]]:
    """The `staging` field: its routes (fewest edges, ties by node names), with their nodes removed
    from `storages` and `graph`; returns it and the edges that stay (the layers' ones)."""
    f = f.keys(required=("from",), optional=("to",))
    offchip = [s.name for s in storages.values() if s.offchip]
    source = f["from"].str()
    if source not in storages:
        raise f["from"].error(f"unknown storage node '{source}'; storage nodes: {', '.join(storages)}")
    if "to" in f:
        target = f["to"].str()
        if target not in offchip:
            raise f["to"].error(f"'{target}' is not an off-chip storage; expected one of {', '.join(offchip)}")
    elif len(offchip) == 1:
        target = offchip[0]
    else:
        raise f.error(f"several off-chip storages ({', '.join(offchip)}): say which one the layers use with 'to'")
    if source == target:
        raise f["from"].error(f"'{source}' is where the layers read: staging must start farther out")
    g = graph.subgraph(storages)
    routes = []
    for a, b, way in ((source, target, "to"), (target, source, "back from")):
        paths = sorted(nx.all_shortest_paths(g, a, b)) if nx.has_path(g, a, b) else []
        if not paths:
            raise f["from"].error(f"no path along edges from '{source}' {way} '{target}'")
        routes.append(tuple(graph.edges[u, v]["edge"] for u, v in itertools.pairwise(paths[0])))
    nodes = {e.src for e in routes[0]} | {e.dst for e in routes[1]}
    for node in sorted(nodes):
        if storages[node].offchip:
            raise f["from"].error(f"'{node}' is on the staging route, outside the layers' memory: it must not "
                                  "be 'offchip: true' (only the storage the layers read is)")
    on_route = {(e.src, e.dst) for route in routes for e in route}
    for edge, item in zip(edges, edge_fields, strict=True):
        if (edge.src in nodes or edge.dst in nodes) and (edge.src, edge.dst) not in on_route:
            raise item.error(f"an edge from '{edge.src}' to '{edge.dst}' touches the staging route but is not on it "
                             f"(route: {' -> '.join([source, *(e.dst for e in routes[0])])})")
    staged = {n: storages.pop(n) for n in sorted(nodes)}
    graph.remove_nodes_from(staged)
    kept = tuple(e for e in edges if (e.src, e.dst) not in on_route)
    return Staging(source, target, staged, routes[0], routes[1]), kept


def _check_reachable(acg: ACG, cap: Capability, operands: Field) -> None:
    for tensor, places in cap.operands.items():
        is_output = tensor == cap.expr.output.tensor
        for place in places:
            paths = write_paths(acg, place) if is_output else read_paths(acg, place)
            if not paths:
                direction = "write back to" if is_output else "be reached from"
                raise operands.mapping()[tensor].error(
                    f"operand {tensor} in {place} cannot {direction} off-chip memory "
                    f"({', '.join(acg.offchip)}) along edges")


__all__ = ["ACG", "Capability", "Compute", "Edge", "Staging", "Storage", "SpecError", "load_acg", "parse_acg",
           "read_paths", "write_paths", "home_paths", "peak_ops_per_cycle", "peak_macs_per_cycle", "storage_graph"]
