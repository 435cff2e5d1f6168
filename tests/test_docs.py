"""The documentation holds: the site builds without a warning, the README stays a short front door
that starts with the set-up commands CI runs, and every measured figure says how to reprint it and
when it was measured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mapper.spec.loader import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
RESULTS = DOCS / "results"
README_MAX_LINES = 200
MAIN_JOB = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && "
            "covenant compile --acg genesys --workload resnet18")
TEST_JOB = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest -q"

DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
COMMAND = re.compile(r"^(covenant |python3? bench/)")
TABLE_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=PROJECT_ROOT, capture_output=True, text=True,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # no banner about mkdocs 2
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "design" / "architecture" / "index.html").is_file()


def commands(text: str) -> list[str]:
    """The indented or fenced code lines and code spans of a Markdown text (stripped)."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            found.append(line.strip())
        else:
            found.extend(span.strip() for span in re.findall(r"`([^`]+)`", line))
    return found


def test_the_readme_is_a_short_front_door() -> None:
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"
    code = [line for line in commands("\n".join(lines)) if line]
    assert code[:2] == [MAIN_JOB, TEST_JOB], f"README.md must start with the set-up commands, got {code[:2]}"
    # they open the file: CI (.ci/run) runs exactly the README's test command, a newcomer reads them first
    assert [line.strip() for line in lines].index(TEST_JOB) < 20


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) per `#`/`##` section (deeper headings stay inside their section)."""
    parts = re.split(r"^(#{1,2} .*)$", text, flags=re.MULTILINE)
    return [("(top)", parts[0])] + list(zip(parts[1::2], parts[2::2], strict=True))


def has_figures(body: str) -> bool:
    """A Markdown table or a fenced ```text printout."""
    return any(TABLE_RULE.match(line) for line in body.splitlines()) or "```text" in body


def missing_provenance(text: str) -> list[str]:
    """The sections holding figures that do not name the command reprinting them or a measurement date."""
    problems = []
    for heading, body in sections(text):
        if not has_figures(body):
            continue
        if not any(COMMAND.match(c) for c in commands(body)):
            problems.append(f"{heading}: no command (`covenant ...` or `python bench/...` in code)")
        if not DATE.search(body):
            problems.append(f"{heading}: no date (YYYY-MM-DD)")
    return problems


def test_results_pages_name_a_command_and_a_date() -> None:
    pages = sorted(RESULTS.rglob("*.md"))
    assert pages, "docs/results/ has no pages"
    with_figures = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if has_figures(text):
            with_figures += 1
            assert any(COMMAND.match(c) for c in commands(text)), f"{page.name}: names no command"
            assert DATE.search(text), f"{page.name}: names no date"
        assert missing_provenance(text) == [], f"{page.relative_to(PROJECT_ROOT)}: {missing_provenance(text)}"
    assert with_figures >= 5


def test_the_provenance_check_can_fail() -> None:
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert missing_provenance(f"# T\n\n## Figures\n\n{table}") == [
        "## Figures: no command (`covenant ...` or `python bench/...` in code)", "## Figures: no date (YYYY-MM-DD)"]
    good = f"## Figures\n\n*Reprint:* `python bench/fusion.py`; measured 2026-11-30.\n\n{table}"
    assert missing_provenance(good) == []
    # a command in prose, not code, does not count; a printout counts as figures
    assert missing_provenance("## F\n\nrun python bench/x.py on 2026-11-30\n\n```text\n1 2\n```\n") == [
        "## F: no command (`covenant ...` or `python bench/...` in code)"]
