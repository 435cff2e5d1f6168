"""AccelForge's evaluated architecture, read for one MAC Einsum (the input of `accelforge_arch`).

`bench/accelforge_worker.py spec ARCH.yaml WORKLOAD.yaml` prints what AccelForge's own loader
evaluates (docs/design/accelforge-model.md): per Einsum, the flattened path of every compute unit,
each node with its size in bits, its actions (energy in J per action, throughput in actions per second
per instance, bits per action), its spatial fanouts and what it may keep. This module reads one path
of that JSON into frozen records. It never evaluates AccelForge's Python: the one expression left
unevaluated in the document, a component's `total_latency`, is parsed with `ast` and matched against
the forms the examples use (`sum(...)`: one shared port; `max(...)`: separate read and write ports;
either divided or multiplied by constants, as eyeriss's `sum(a.n_calls for a in actions) / 32 / 200e6`).

The algorithm:

1. the Einsum: the one named, else the first with two input tensors; AccelForge's renames say which
   tensor plays which capability operand: `input` -> A, `weight` -> B, `output` -> C;
2. the path: the Einsum's enabled compute path (the one with the most MAC instances if several);
3. every spatial fanout gets the capability dim it unrolls, from the tensors it may multicast or
   reduce: `reuse: input` (the input is multicast along it: output columns) -> n, `reuse: output`
   (spatial reduction) -> k, `reuse: weight` -> m; a fanout without `reuse` lets AccelForge's mapper
   pick any rank per Einsum (tpu_v4i's LocalBuffer `Z`, simba's `reuse_all`): it goes to m, the rows,
   which the array's own fanouts leave free in every example (and where AccelForge's mapper puts `Z`
   on tpu_v4i's three matmuls);
4. every enabled memory of size > 0 that may keep one of the three tensors (AccelForge's own storage
   choices, its `keep` and `may_keep`): the operands it holds, their bits per value there, its read
   and write actions (rates per instance after its `total_latency`), the fanouts at or above it.

    >>> form = latency_form("sum(a.n_calls for a in actions) / 32 / 200e6")
    >>> form.shared, form.rate(1e9)
    (True, 6400000000.0)
    >>> latency_form("max(a.n_calls / a.throughput for a in actions)").shared
    False
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

OPERANDS = ("A", "B", "C")
RENAMES = {"A": "input", "B": "weight", "C": "output"}
DIMS = {"A": ("m", "k"), "B": ("k", "n"), "C": ("m", "n")}  # the dims indexing each operand
ROLE_OF = {"A": "n", "C": "k", "B": "m"}  # reuse of that operand -> the dim the fanout unrolls
DEFAULT_LATENCY = "sum(a.n_calls / a.throughput for a in actions)"


class AccelForgeError(ValueError):
    """The document cannot be imported (says which node or field, and why)."""


@dataclass(frozen=True)
class LatencyForm:
    """A component's `total_latency`: `agg(a.n_calls [/ a.throughput] for a in actions) * factor`."""

    shared: bool  # sum: reads and writes share one port; max: separate ports
    per_throughput: bool  # each call takes 1 / throughput (else 1: the constants are the rate)
    factor: float

    def rate(self, throughput: float) -> float:
        """Actions per second per instance that the expression grants an action of `throughput`."""
        return throughput / self.factor if self.per_throughput else 1 / self.factor


def latency_form(text: str | None) -> LatencyForm:
    """Parse a `total_latency` expression (never evaluated) into its `LatencyForm`."""
    try:
        tree = ast.parse(text or DEFAULT_LATENCY, mode="eval").body
    except SyntaxError:
        tree = None
    found = _form(tree) if tree is not None else None
    if found is None:
        raise AccelForgeError(f"total_latency '{text}' is not a form the import understands: sum(...) or max(...) "
                           "of a.n_calls or a.n_calls / a.throughput over actions, times or over constants")
    return found


def _form(node: ast.AST) -> LatencyForm | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Mult):
        const, inner = (node.right, node.left) if _number(node.right) is not None else (node.left, node.right)
        if _number(const) is None or (isinstance(node.op, ast.Div) and const is node.left):
            return None
        form = _form(inner)
        value = _number(const)
        if form is None or value <= 0:
            return None
        factor = form.factor / value if isinstance(node.op, ast.Div) else form.factor * value
        return LatencyForm(form.shared, form.per_throughput, factor)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("sum", "max")
            and len(node.args) == 1 and isinstance(node.args[0], ast.GeneratorExp)):
        return None
    gen = node.args[0]
    loop = gen.generators[0] if len(gen.generators) == 1 else None
    if loop is None or loop.ifs or not (isinstance(loop.iter, ast.Name) and loop.iter.id == "actions"
                                        and isinstance(loop.target, ast.Name)):
        return None
    var, elt = loop.target.id, gen.elt
    if _attr(elt, var, "n_calls"):
        return LatencyForm(node.func.id == "sum", False, 1.0)
    if isinstance(elt, ast.BinOp) and isinstance(elt.op, ast.Div) and _attr(elt.left, var, "n_calls") \
            and _attr(elt.right, var, "throughput"):
        return LatencyForm(node.func.id == "sum", True, 1.0)
    return None


def _attr(node: ast.AST, var: str, name: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.value, ast.Name) \
        and node.value.id == var


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def number(value, where: str) -> float:
    """A figure of the document: a number, or "inf" (the worker prints infinities as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AccelForgeError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        if value not in ("inf", "Infinity"):
            raise AccelForgeError(f"{where}: expected a number, got the unevaluated expression {value!r}")
        return math.inf
    return float(value)


@dataclass(frozen=True)
class Fanout:
    """One spatial dimension of a node: `size` copies of the node and everything below it."""

    name: str
    node: str
    position: int  # index of its node in the path
    size: int
    role: str  # the capability dim it unrolls: m, n or k
    free: bool  # no `reuse` constraint: AccelForge's mapper may iterate any rank on it
    reuse: frozenset[str]  # operands it multicasts (inputs) or reduces (output): may_reuse

    def indexes(self, operand: str) -> bool:
        return self.role in DIMS[operand]


@dataclass(frozen=True)
class Action:
    energy: float  # J per action (actions_scale folded in)
    rate: float  # actions per second per instance, after total_latency (inf: no limit)
    bits: float  # bits per action

    def bits_per_second(self) -> float:
        return self.rate * self.bits


@dataclass(frozen=True)
class Memory:
    name: str
    position: int
    bits: float  # size per instance, in bits (inf for DRAM)
    holds: tuple[str, ...]  # operands it may keep
    widths: dict[str, float]  # operand -> bits per value here (its own bits_per_value override)
    read: Action
    write: Action
    shared: bool  # one port for reads and writes (total_latency sums them)
    fanouts: tuple[Fanout, ...]  # at or above it (its own spatial included)

    @property
    def copies(self) -> int:
        return math.prod(f.size for f in self.fanouts)


@dataclass(frozen=True)
class MacPath:
    """The evaluated path of one MAC Einsum: what the ACG is made from."""

    einsum: str
    tensors: dict[str, str]  # operand -> AccelForge tensor name
    bits: dict[str, float]  # operand -> the Einsum's bits per value
    nodes: tuple[dict, ...]  # the path as the worker printed it
    memories: tuple[Memory, ...]  # outermost first
    fanouts: tuple[Fanout, ...]
    compute: str
    clock_hz: float  # the compute's operations per second per instance
    mac_energy: float  # J per MAC
    leak_w: float  # total leak power of every component of the Einsum's paths
    skipped: tuple[str, ...]  # memories of the path that are not storage levels here, with why

    def innermost(self, operand: str) -> Memory:
        return [m for m in self.memories if operand in m.holds][-1]

    def below(self, mem: Memory) -> tuple[Fanout, ...]:
        return tuple(f for f in self.fanouts if f.position > mem.position)


def pick_einsum(doc: dict, name: str | None) -> dict:
    """The named Einsum, else the first with two input tensors (a MAC Einsum)."""
    einsums = doc.get("einsums") or []
    if name is not None:
        for e in einsums:
            if e["name"] == name:
                return e
        raise AccelForgeError(f"no Einsum '{name}'; Einsums: {', '.join(e['name'] for e in einsums)}")
    for e in einsums:
        if sum(not t["output"] for t in e["tensors"]) == 2 and not e["is_copy_operation"]:
            return e
    raise AccelForgeError("no Einsum with two input tensors (give the worker a workload with a matrix multiply)")


def read_path(doc: dict, einsum: str | None = None) -> MacPath:
    """The MAC path of `einsum` (default: the first two-input Einsum) of a worker `spec` document."""
    e = pick_einsum(doc, einsum)
    tensors = {}
    for op in OPERANDS:
        names = e["renames"].get(RENAMES[op]) or []
        if len(names) != 1:
            raise AccelForgeError(f"Einsum {e['name']}: AccelForge's '{RENAMES[op]}' is {names}, expected one tensor")
        tensors[op] = names[0]
    bits = {op: number(next(t["bits_per_value"] for t in e["tensors"] if t["name"] == tensors[op]),
                       f"{tensors[op]}.bits_per_value") for op in OPERANDS}
    paths = [p for p in e["paths"] if p["enabled"] is True]
    if not paths:
        raise AccelForgeError(f"Einsum {e['name']}: no enabled compute path")
    path = max(paths, key=lambda p: math.prod(s["fanout"] for n in p["nodes"] for s in n.get("spatial", [])))
    nodes = tuple(path["nodes"])
    fanouts = tuple(f for i, node in enumerate(nodes) for f in _fanouts(node, i, tensors))
    memories, skipped = _memories(nodes, path, tensors, bits, fanouts)
    compute = nodes[-1]
    if compute.get("n_parallel_instances", 1) != 1:
        raise AccelForgeError(f"{compute['name']}: n_parallel_instances != 1 is not supported")
    act = _action(compute, "compute", latency_form(compute.get("total_latency")))
    leaks = {n["name"]: number(n.get("total_leak_power") or 0, f"{n['name']}.total_leak_power")
             for p in e["paths"] for n in p["nodes"] if "total_leak_power" in n}
    if not 0 < act.rate < math.inf:
        raise AccelForgeError(f"{compute['name']}: its compute throughput {act.rate} cannot be the clock")
    return MacPath(e["name"], tensors, bits, nodes, memories, fanouts, compute["name"], act.rate, act.energy,
                   sum(leaks.values()), skipped)


def _fanouts(node: dict, position: int, tensors: dict[str, str]) -> list[Fanout]:
    operand_of = {t: op for op, t in tensors.items()}
    out = []
    for s in node.get("spatial") or []:
        reuse = _operand_set(s.get("reuse"), operand_of)
        may = _operand_set(s.get("may_reuse"), operand_of)
        if len(reuse) > 1:
            raise AccelForgeError(f"{node['name']}.{s['name']}: reuse of {sorted(reuse)} leaves no rank to unroll")
        sole = reuse or (may if len(may) == 1 else set())  # the one operand it multicasts or reduces
        role = ROLE_OF[next(iter(sole))] if sole else "m"
        size = int(number(s["fanout"], f"{node['name']}.{s['name']}.fanout"))
        if size > 1:
            out.append(Fanout(s["name"], node["name"], position, size, role, not reuse, frozenset(may)))
    return out


def _operand_set(value, operand_of: dict[str, str]) -> set[str]:
    if not isinstance(value, list):
        return set()
    return {operand_of[t] for t in value if t in operand_of}


def _memories(nodes, path, tensors, bits, fanouts) -> tuple[tuple[Memory, ...], tuple[str, ...]]:
    kept = _kept(path)
    operand_of = {t: op for op, t in tensors.items()}
    memories, skipped = [], []
    for i, node in enumerate(nodes[:-1]):
        if node["kind"] in ("Toll", "Network"):
            raise AccelForgeError(f"{node['name']}: a !{node['kind']} node is not supported by the import")
        if node["kind"] != "Memory":
            continue
        size = number(node["size"], f"{node['name']}.size")
        holds = tuple(op for op in OPERANDS if tensors[op] in kept.get(node["name"], ()))
        why = "disabled" if node.get("enabled") is not True else "size 0" if size <= 0 else \
            "keeps none of the Einsum's tensors" if not holds else None
        if i == 0:  # the outermost memory is covenant's off-chip storage: it holds every tensor
            holds, why = OPERANDS, None
        if why:
            skipped.append(f"{node['name']} ({why})")
            continue
        form = latency_form(node.get("total_latency"))
        override = {operand_of[t]: number(b, f"{node['name']}.bits_per_value")
                    for t, b in (node.get("bits_per_value") or {}).items() if t in operand_of}
        memories.append(Memory(node["name"], i, size, holds, {op: override.get(op, bits[op]) for op in holds},
                               _action(node, "read", form), _action(node, "write", form), form.shared,
                               tuple(f for f in fanouts if f.position <= i)))
    return tuple(memories), tuple(skipped)


def _kept(path: dict) -> dict[str, set[str]]:
    """Per memory, every tensor it may keep: AccelForge's own storage choices, plus `keep` and
    `may_keep` where the document lists them evaluated."""
    out: dict[str, set[str]] = {}
    for choice in path.get("storage_choices") or []:
        for name, held in choice.items():
            out.setdefault(name, set()).update(held)
    for node in path["nodes"]:
        for key in ("keep", "may_keep"):
            value = (node.get("tensors") or {}).get(key)
            if isinstance(value, list):
                out.setdefault(node["name"], set()).update(value)
    return out


def _action(node: dict, name: str, form: LatencyForm) -> Action:
    found = [a for a in node.get("actions") or [] if a["name"] == name]
    if not found:
        raise AccelForgeError(f"{node['name']}: no '{name}' action")
    a = found[0]
    where = f"{node['name']}.{name}"
    if a.get("values_per_action"):
        raise AccelForgeError(f"{where}: values_per_action is not supported by the import")
    scale = number(node.get("actions_scale", 1), f"{node['name']}.actions_scale")
    energy = number(a["energy"], f"{where}.energy") * scale
    rate = form.rate(number(a["throughput"], f"{where}.throughput")) / scale
    return Action(energy, rate, number(a.get("bits_per_action") or 1, f"{where}.bits_per_action"))


__all__ = ["AccelForgeError", "Action", "Fanout", "LatencyForm", "MacPath", "Memory", "latency_form", "pick_einsum",
           "read_path"]
