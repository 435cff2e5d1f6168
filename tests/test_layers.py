"""The house's plan holds: every import points down a layer, no module cycle, no hidden lazy import.

The layers, bottom up (`mapper/__init__.py` and docs/design/architecture.md say what each holds):
`mapper.spec` → `mapper.mapping` → `mapper.program` → `sim` → `solver` → `mapper.network` →
`mapper.importers` → `mapper.app`. A module may import its own layer and the layers below it. The
simulator is one of three independent truths: nothing it imports, directly or not, reaches the cost
model (`mapper.mapping`) or a solver. Imports are read with `ast` (inside functions too), so a test
fails on an import that points up, closes a cycle, or hides in a function without saying why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

from mapper.spec.loader import PROJECT_ROOT

LAYERS = ("mapper.spec", "mapper.mapping", "mapper.program", "sim", "solver", "mapper.network",
          "mapper.importers", "mapper.app")
PACKAGES = ("mapper", "solver", "sim")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((PROJECT_ROOT / pkg).rglob("*.py"))}


def layer(module: str) -> int:
    """The index of a module's layer in LAYERS; -1 for `mapper` itself (it holds the version only)."""
    if module == "mapper":
        return -1
    return next(i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + "."))


def imports(module: str, source: str | None = None) -> list[tuple[str, int, bool]]:
    """The project modules `module` imports (its file, or `source`): (target, line, inside a function)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8") if source is None else source)
    found = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names if a.name in MODULES)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module in MODULES:
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    found.append((sub if sub in MODULES else child.module, child.lineno, nested))
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module in MODULES:
        graph.add_edges_from((module, target) for target, _, _ in imports(module) if target != module)
    return graph


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer(module)  # StopIteration names a module outside every layer


def upward(module: str, source: str | None = None) -> list[str]:
    """The imports of `module` that point up a layer, as `file:line imports target`."""
    where = MODULES[module].relative_to(PROJECT_ROOT)
    return [f"{where}:{line} imports {target}, a layer above {module}"
            for target, line, _ in imports(module, source) if layer(target) > layer(module)]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    assert upward(module) == []


def test_no_import_cycle() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_the_simulator_never_reaches_the_cost_model_or_a_solver() -> None:
    graph = import_graph()
    for module in (m for m in MODULES if m == "sim" or m.startswith("sim.")):
        reached = nx.descendants(graph, module)
        bad = sorted(m for m in reached if layer(m) in (LAYERS.index("mapper.mapping"), LAYERS.index("solver")))
        assert not bad, f"{module} reaches {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_inside_functions_say_why(module: str) -> None:
    """A project module is never imported inside a function (a cycle is no reason); a third-party
    module may be, with the reason in a comment on the line (an optional or slow dependency)."""
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").splitlines()
    for target, line, nested in imports(module):
        assert not nested, f"{path.relative_to(PROJECT_ROOT)}:{line} imports {target} inside a function"
    tree = ast.parse("\n".join(lines))
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    assert "#" in lines[node.lineno - 1], \
                        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: an import inside a function needs its reason"


def test_the_checks_can_fail() -> None:
    """An upward import is found at module level and inside a function; a cycle is found."""
    source = "from mapper.app import cli\ndef f():\n    import solver.cpsat\n"
    assert [line.split()[0] for line in upward("mapper.spec.acg", source)] == \
        ["mapper/spec/acg.py:1", "mapper/spec/acg.py:3"]
    assert imports("mapper.spec.acg", source)[1] == ("solver.cpsat", 3, True)
    graph = import_graph()
    graph.add_edge("mapper.spec.tokens", "mapper.spec.acg")
    assert list(nx.simple_cycles(graph))
