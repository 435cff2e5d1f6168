"""`covenant import accelforge`: an AccelForge architecture or Einsum workload, evaluated by AccelForge
itself, as a covenant ACG or workload.

AccelForge's files are Jinja templates whose fields are Python expressions; covenant never evaluates
them. `bench/accelforge_worker.py spec` loads them with AccelForge's own loader, in the interpreter of
an environment that has AccelForge (`bench/setup_accelforge.sh` makes one; `--python` or
`$COVENANT_ACCELFORGE_PYTHON` names its Python), and prints the evaluated document as JSON, which is
all this module reads. That document can also be given directly (`.json`: the tests and anyone
without AccelForge use the shipped ones under tests/data/accelforge/evaluated/).

What a YAML file is comes from its text, not its evaluation: a line `arch:` at the top level makes
it an architecture, `workload:` a workload (AccelForge's own layout). An architecture is evaluated
for one Einsum of a workload (its keep rules and sizes may name the Einsum's tensors): `--workload`,
by default AccelForge's three-matmul example; a workload is evaluated beside AccelForge's `simple`
architecture (Einsums do not depend on the architecture).

    >>> kind_of_text("{% set X = 1 %}\\narch:\\n  nodes: []\\n"), kind_of_text("workload:\\n  einsums: []\\n")
    ('arch', 'workload')
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from mapper.importers.accelforge_arch import import_accelforge_arch
from mapper.importers.accelforge_workload import einsums_to_workload
from mapper.spec.acg import parse_acg
from mapper.spec.loader import PROJECT_ROOT, SpecError, load_yaml_text
from mapper.spec.workload import parse_workload

WORKER = PROJECT_ROOT / "bench" / "accelforge_worker.py"
EXAMPLES = PROJECT_ROOT / "tests" / "data" / "accelforge" / "examples"
DEFAULT_WORKLOAD = EXAMPLES / "workloads" / "basic" / "three_matmuls_annotated.yaml"
SIMPLE_ARCH = EXAMPLES / "arches" / "simple.yaml"
TIMEOUT = 600  # seconds for AccelForge's loader (it takes seconds; a hung interpreter must not hang covenant)
_TOP = re.compile(r"^(arch|workload):", re.MULTILINE)


def kind_of_text(text: str) -> str | None:
    """'arch' or 'workload' by the first top-level key of those two in an AccelForge file, else None."""
    match = _TOP.search(text)
    return match.group(1) if match else None


def accelforge_python(given: str | None) -> str:
    """The Python of an environment with AccelForge: `given`, else $COVENANT_ACCELFORGE_PYTHON."""
    python = given or os.environ.get("COVENANT_ACCELFORGE_PYTHON")
    if not python:
        raise SpecError("--python", None, "", "AccelForge's files are evaluated by AccelForge itself: give the "
                                              "Python of an environment with it (--python PATH or "
                                              "$COVENANT_ACCELFORGE_PYTHON; bench/setup_accelforge.sh makes one), "
                                              "or an evaluated .json document")
    return python


def evaluate(arch: Path, workload: Path, sets: list[str], python: str) -> dict:
    """The worker's `spec` document for `arch` and `workload` with the Jinja `sets` (KEY=VALUE)."""
    if not WORKER.is_file():
        raise SpecError(str(WORKER), None, "", "the AccelForge worker ships with covenant's source tree, "
                                               "not with an installed wheel")
    command = [python, str(WORKER), "spec", str(arch), str(workload)]
    for item in sets:
        command += ["--set", item]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpecError(python, None, "--python", f"cannot run AccelForge's loader: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise SpecError(str(arch), None, "", f"AccelForge's loader failed: {lines[-1] if lines else done.returncode}")
    return parse_document(done.stdout, "AccelForge's loader")


def parse_document(text: str, source: str) -> dict:
    """A worker `spec` document (JSON), checked for what the importers read."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SpecError(source, None, "", f"not a JSON document: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("einsums"), list):
        raise SpecError(source, None, "einsums", "expected the document `accelforge_worker.py spec` prints")
    return doc


def workload_name(path: str, jinja: dict) -> str:
    """The imported workload's name: the file's stem, with the Jinja settings that shaped it.

    >>> workload_name("gpt/gpt3_6.7B.yaml", {"DECODE": True, "N_NEW_TOKENS": 1})
    'gpt3_6.7B[DECODE=true,N_NEW_TOKENS=1]'
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem).lstrip(".-") or "accelforge"
    sets = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in jinja.items()]
    return f"{stem}[{','.join(sets)}]" if sets else stem


def import_workload(doc: dict, name: str, source: str) -> tuple[str, str]:
    """The workload YAML text of an evaluated document, and a one-line summary."""
    workload, notes = einsums_to_workload(doc, name, source)
    header = [f"{workload['name']}: imported from AccelForge's workload {doc.get('workload_file') or source}",
              f"(accelforge {doc.get('accelforge', '?')}, Jinja settings {json.dumps(doc.get('jinja') or {})})",
              "by `covenant import accelforge` (docs/design/importers.md, 'AccelForge import').",
              *notes]
    text = "".join(f"# {line}\n" for line in header) + \
        yaml.safe_dump(workload, sort_keys=False, default_flow_style=None, width=120)
    loaded = parse_workload(load_yaml_text(text, source))  # what covenant will read back: checked now
    return text, f"{len(loaded.layers)} layers, {loaded.macs:,} MACs"


def import_accelforge(path: str, sets: list[str], python: str | None, what: str | None = None,
                      workload: str | None = None) -> tuple[str, str]:
    """The YAML text (an ACG or a workload) and a summary for `covenant import accelforge PATH`."""
    file = Path(path)
    if not file.is_file():
        raise SpecError(path, None, "", "no such file")
    if file.suffix == ".json":
        if what is None:
            raise SpecError(path, None, "--what", "an evaluated document holds both: say --what acg or --what workload")
        if sets or workload:
            raise SpecError(path, None, "--set", "an evaluated document is already evaluated: no --set or --workload")
        doc = parse_document(file.read_text(encoding="utf-8"), path)
        kind = what
    else:
        found = kind_of_text(file.read_text(encoding="utf-8", errors="replace"))
        if found is None:
            raise SpecError(path, None, "", "not an AccelForge architecture or workload (no top-level 'arch:' "
                                            "or 'workload:')")
        kind = "acg" if found == "arch" else "workload"
        if what is not None and what != kind:
            raise SpecError(path, None, "--what", f"this file is an AccelForge {found}")
        python = accelforge_python(python)
        if kind == "workload":
            doc = evaluate(SIMPLE_ARCH, file, sets, python)
        else:
            doc = evaluate(file, Path(workload) if workload else DEFAULT_WORKLOAD, sets, python)
    if kind == "workload":
        return import_workload(doc, workload_name(doc.get("workload_file") or path, doc.get("jinja") or {}), path)
    text = import_accelforge_arch(doc, path)
    acg = parse_acg(load_yaml_text(text, path))  # what covenant will read back: checked now
    return text, f"ACG {acg.name}: {len(acg.storages)} storage nodes, {len(acg.edges)} edges, " \
                 f"{len(acg.capabilities)} capabilities"
