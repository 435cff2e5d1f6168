"""The bench scripts still import: each one's module-level code (its imports of the project) runs
as `python bench/X.py` would run it, without calling its main. The workers, which import a peer's
package in the peer's own environment, are left out."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.endswith("_worker.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_imports(script: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the imports; main runs only under __main__
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
