"""AccelForge's example inputs (tests/data/accelforge, MIT licence) stay with their licence and their
provenance: the README names the repository, the commit and every file copied, and nothing else
(no AccelForge code) was copied. AccelForge itself is not needed: bench/accelforge_worker.py runs it in
its own environment (bench/setup_accelforge.sh)."""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).parent / "data" / "accelforge"
COMMIT = "1c1929c28dbfc61fb94af812e9e33b25a95933fa"
ARCHES = ("tpu_v4i", "simba", "eyeriss", "nvdla", "simple")


def copied() -> list[Path]:
    return sorted(p for p in (DATA / "examples").rglob("*") if p.is_file())


def test_the_licence_is_accelforges_mit_licence() -> None:
    text = (DATA / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("Copyright (c) 2026 Tanner Andrulis and Michael Gilbert")
    assert "Permission is hereby granted, free of charge" in text


def test_the_readme_names_the_source_the_commit_and_every_file() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "github.com/Accelergy-Project/accelforge" in readme and COMMIT in readme
    listed = set(re.findall(r"[`/]([\w.]+\.yaml)`", readme))
    for path in copied():
        if path.suffix == ".yaml":
            assert path.name in listed or path.parent.name.startswith("_"), f"{path.name} not in README.md"
    for arch in ARCHES:
        assert (DATA / "examples" / "arches" / f"{arch}.yaml").is_file()


def test_only_data_was_copied() -> None:
    assert copied(), "no example files"
    assert {p.suffix for p in copied()} <= {".yaml", ".md"}


INCLUDE = re.compile(r'\b(include_text|include|add_to_path)\("([^"]+)"')


def test_the_includes_resolve() -> None:
    """Every `include`/`include_text` names a copied file, beside the including one or in a folder some
    copied file adds with `add_to_path` (AccelForge's Jinja search path); every such folder was copied."""
    calls = [(path, kind, target) for path in copied() if path.suffix == ".yaml"
             for kind, target in INCLUDE.findall(path.read_text(encoding="utf-8"))]
    search = {(path.parent / target).resolve() for path, kind, target in calls if kind == "add_to_path"}
    assert search and all(folder.is_dir() for folder in search)
    for path, kind, target in calls:
        if kind != "add_to_path":
            places = [path.parent, *search]
            assert any((place / target).is_file() for place in places), f"{path.name} includes {target}"
