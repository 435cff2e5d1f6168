"""Code a reader takes in at once: no function over 60 lines, no source file over 500.

Measured with `ast` over the project's Python (the packages, bench/, experiments/ and tests/): a
function's lines run from its `def` (decorators excluded) to its last statement.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mapper.spec.loader import PROJECT_ROOT

MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 500
FOLDERS = ("mapper", "solver", "sim", "bench", "experiments", "tests", "workloads")


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (PROJECT_ROOT / folder).rglob("*.py"))


def long_functions(text: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function in `text` longer than `limit` lines.

    >>> long_functions("def f():\\n" + "    x = 1\\n" * 3, limit=3)
    [('f', 1, 4)]
    """
    return [(node.name, node.lineno, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_no_function_over_60_lines() -> None:
    found = [f"{p.relative_to(PROJECT_ROOT)}:{line} {name} ({n} lines)"
             for p in sources() for name, line, n in long_functions(p.read_text(encoding="utf-8"))]
    assert not found, "functions over 60 lines: " + ", ".join(found)


def test_no_file_over_500_lines() -> None:
    found = [f"{p.relative_to(PROJECT_ROOT)} ({n} lines)" for p in sources()
             if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES]
    assert not found, "files over 500 lines: " + ", ".join(found)
