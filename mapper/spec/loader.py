"""Located YAML: the one loader path for every user-facing spec (ACGs, workloads, mappings, experiments).

`load_yaml` parses with a safe loader that remembers the line of every mapping key and list item, and
returns a `Field`: a cursor holding a value, its file, its line and its field path. Validators walk a
document through `Field`s, so every error they raise names the file, the line, the field and what was
expected, on one line:

    >>> root = load_yaml_text("name: x\\ncapacity: 12 KiBB\\n", "a.yaml")
    >>> root.child("capacity").size()
    Traceback (most recent call last):
    ...
    mapper.spec.loader.SpecError: a.yaml:2: capacity: expected a size such as 4096, 256KiB or 2MiB, got '12 KiBB'
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mapper.spec.limits import MAX_INT, MAX_NUMBER, MAX_SIZE, MAX_SPEC_BYTES, NAME_RULE, name_problem


class SpecError(Exception):
    """A user mistake in a spec file: reported as one line, never as a traceback."""

    def __init__(self, source: str, line: int | None, field: str, message: str):
        # One line, whatever the document holds (a key may contain a newline).
        field, message = (text.replace("\r", "\\r").replace("\n", "\\n") for text in (field, message))
        self.source, self.line, self.field, self.message = source, line, field, message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


KINDS = {  # the files covenant reads, told by their top-level fields: (fields, where the file goes)
    "a covenant ACG": (("nodes", "edges"), " (give it with --acg, or to covenant show acg)"),
    "a covenant workload": (("layers",), " (give it with --workload, or to covenant show workload)"),
    "a covenant experiment": (("acgs", "workloads"), " (give it to covenant run)"),
    "a covenant mapping": (("format", "binding", "loops"), " (give it to covenant simulate or show mapping)"),
    "a covenant network program": (("format", "steps", "address_plan"), " (written by covenant compile -o)"),
    "a ZigZag hardware file": (("operational_array", "memories"), " (covenant import zigzag HARDWARE.yaml makes "
                                                                  "an ACG of it)"),
}


def kind_of(doc: object) -> str | None:
    """Which of the files covenant reads `doc` is (`KINDS`), by its top-level fields; None: none.

    >>> kind_of({"name": "x", "layers": []}), kind_of({"name": "x"})
    ('a covenant workload', None)
    """
    if isinstance(doc, dict):
        return next((kind for kind, (keys, _) in KINDS.items() if all(key in doc for key in keys)), None)
    return None


class _LocDict(dict):
    """A mapping that remembers the line of each key and of itself (1-based)."""

    line: int = 0
    key_lines: dict


class _LocList(list):
    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    """SafeLoader that records lines and rejects duplicate keys (PyYAML keeps the last silently)."""

    last_wins = False

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)  # resolve merge keys (<<) first
        out = _LocDict()
        out.line, out.key_lines = node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "found an unhashable mapping key", key_node.start_mark) from None
            if key in out and not self.last_wins:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            out[key] = self.construct_object(value_node, deep=True)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out

    def construct_sequence(self, node, deep=False):
        out = _LocList(self.construct_object(child, deep=True) for child in node.value)
        out.line = node.start_mark.line + 1
        out.item_lines = [child.start_mark.line + 1 for child in node.value]
        return out


_Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node))
_Loader.add_constructor("tag:yaml.org,2002:seq", lambda loader, node: loader.construct_sequence(node))


class _ForeignLoader(_Loader):
    """For files written for another tool (ZigZag's): a duplicate key keeps its last value, as PyYAML."""

    last_wins = True

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def parse_size(text: str) -> int | None:
    """Bytes in `text` ('256KiB', '2 MiB', '4096'), or None when it is not a whole number of bytes.

    >>> parse_size("256KiB"), parse_size("1.5 KiB"), parse_size("12 KiBB")
    (262144, 1536, None)
    """
    m = _SIZE.match(text)
    if not m:
        return None
    number, unit = m.groups()
    value = float(number) * _UNITS[unit]
    return int(value) if math.isfinite(value) and value == int(value) else None


@dataclass(frozen=True)
class Field:
    """A value of a loaded spec with its location; typed accessors raise `SpecError` on a mismatch."""

    source: str
    path: tuple[str | int, ...]
    value: Any
    line: int

    # -- location and errors ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out

    def error(self, message: str) -> SpecError:
        return SpecError(self.source, self.line, self.name, message)

    def expected(self, what: str) -> SpecError:
        return self.error(f"expected {what}, got {_show(self.value)}")

    # -- structure ----------------------------------------------------------------------------------
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    def mapping(self) -> dict[str, Field]:
        """The children of a mapping, keyed by (string) key, in file order."""
        if not isinstance(self.value, dict):
            raise self.expected("a mapping")
        lines = getattr(self.value, "key_lines", {})
        out = {}
        for key, value in self.value.items():
            line = lines.get(key, self.line)
            if not isinstance(key, str):
                raise SpecError(self.source, line, self.name, f"expected string keys, got {_show(key)}")
            out[key] = Field(self.source, (*self.path, key), value, line)
        return out

    def items(self) -> list[Field]:
        if not isinstance(self.value, list):
            raise self.expected("a list")
        lines = getattr(self.value, "item_lines", [self.line] * len(self.value))
        pairs = enumerate(zip(self.value, lines, strict=True))
        return [Field(self.source, (*self.path, i), v, ln) for i, (v, ln) in pairs]

    def keys(self, required: Iterable[str] = (), optional: Iterable[str] = ()) -> dict[str, Field]:
        """The mapping's children after checking it has every required key and no unknown one."""
        children = self.mapping()
        required, allowed = list(required), set(required) | set(optional)
        kind = kind_of(self.value) if not self.path else None
        if kind is not None and not set(KINDS[kind][0]) <= allowed:  # a whole file of another kind
            raise self.error(f"this is {kind}{KINDS[kind][1]}, not the file expected here")
        for key, child in children.items():
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                also = f"; did you mean '{hint[0]}'?" if hint else f"; allowed: {', '.join(sorted(allowed))}"
                raise child.error(f"unknown field '{key}'{also}")
        for key in required:
            if key not in children:
                raise self.error(f"missing required field '{key}'")
        return children

    def child(self, key: str) -> Field:
        children = self.mapping()
        if key not in children:
            raise self.error(f"missing required field '{key}'")
        return children[key]

    def opt(self, key: str) -> Field | None:
        return self.mapping().get(key)

    # -- scalars ------------------------------------------------------------------------------------
    def str(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.expected("a non-empty string")
        return self.value

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.expected("true or false")
        return self.value

    def ident(self) -> str:
        """A name (layer, workload, ACG, node, capability, experiment): see `mapper.spec.limits.NAME_RULE`."""
        if name_problem(self.value):
            raise self.expected(NAME_RULE)
        return self.value

    def int(self, minimum: int | None = None, maximum: int = MAX_INT) -> int:
        """An integer in [minimum, maximum] (every integer of a spec is at most `MAX_INT` = 2**31)."""
        low = "an integer" if minimum is None else f"an integer >= {minimum}"
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.expected(low)
        if minimum is not None and self.value < minimum:
            raise self.expected(low)
        if self.value > maximum:
            raise self.expected(f"{low} and <= {_power(maximum)}")
        return self.value

    def number(self, minimum: float = 0.0, strict: bool = False, maximum: float = MAX_NUMBER) -> float:
        """A finite number >= minimum (> minimum when strict) and <= maximum (2**50 unless given)."""
        v = self.value
        ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
        if not ok or v < minimum or (strict and v == minimum) or v > maximum:
            raise self.expected(f"a number {'>' if strict else '>='} {minimum:g} and <= {_power(maximum)}")
        return float(v)

    def size(self) -> int:
        """A size in bytes, 1 B to 1 PiB: an integer or a string with a unit (B, KiB, MiB, GiB, KB, ...)."""
        v = self.value
        n = None
        if isinstance(v, int) and not isinstance(v, bool):
            n = v
        elif isinstance(v, str):
            n = parse_size(v)
        if n is not None and 0 < n <= MAX_SIZE:
            return n
        if n is not None and n > MAX_SIZE:
            raise self.expected("a size of at most 1 PiB (2**50 B)")
        raise self.expected("a size such as 4096, 256KiB or 2MiB")

    def choice(self, options: Iterable[str]) -> str:
        options = list(options)
        if not isinstance(self.value, str) or self.value not in options:
            raise self.expected(f"one of {', '.join(options)}")
        return self.value


def _power(n: float) -> str:
    """2**31 rather than 2147483648 in messages, when `n` is a power of two."""
    if n == math.inf:
        return "inf"
    k = math.frexp(n)[1] - 1
    return f"2**{k}" if n == 2**k else f"{n:g}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_yaml_text(text: str, source: str, foreign: bool = False) -> Field:
    """Parse YAML text safely; a syntax error becomes a `SpecError` at its line and column. The top
    level must be a mapping; `foreign` (a file of another tool, e.g. ZigZag's) also allows a list and
    reads a duplicate key as PyYAML does (the last one wins)."""
    try:
        value = yaml.load(text, Loader=_ForeignLoader if foreign else _Loader)  # noqa: S506 - SafeLoader subclasses
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        column = f" (column {mark.column + 1})" if mark else ""
        raise SpecError(source, line, "", f"YAML syntax error: {problem}{column}") from None
    except yaml.YAMLError as exc:
        raise SpecError(source, None, "", f"YAML error: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise SpecError(source, None, "", "YAML nesting is too deep") from None
    root = Field(source, (), value, getattr(value, "line", 1))
    if not isinstance(value, dict) and not (foreign and isinstance(value, list)):
        raise SpecError(source, 1, "", f"expected a YAML mapping at the top level, got {_show(value)}")
    return root


PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_FOLDERS = ("acg_specs", "workloads", "experiments")
SHIPPED_PACKAGE = "covenant_specs"  # the shipped acg_specs/, workloads/, experiments/ (see pyproject.toml)


def shipped_folder(folder: str) -> Path:
    """The folder of shipped specs (`acg_specs`, `workloads`, `experiments`): in the installed
    package's resources, which any install carries (a wheel, an editable install), else the source
    tree's. The package is a namespace package: its locations are read from its import spec (on
    Python 3.11, `importlib.resources.files` fails on an editable install's placeholder entry)."""
    spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / folder
        if path.is_dir():
            return path
    return PROJECT_ROOT / folder


def find_spec(name_or_path: str | Path, folder: str) -> Path:
    """The file for a spec given by path, or by the name of a shipped spec in `folder`.

    A name resolves to `<folder>/<name>.yaml` under the current directory first, then among the
    shipped specs (so `--acg genesys` works from anywhere, with any install).
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    for base in (Path.cwd() / folder, shipped_folder(folder)):
        candidate = base / f"{name_or_path}.yaml"
        if candidate.exists():
            return candidate
    elsewhere = [other for other in SHIPPED_FOLDERS if other != folder and (shipped_folder(other) /
                                                                              f"{name_or_path}.yaml").exists()]
    if elsewhere:  # `--acg resnet18`: a name of the wrong kind
        raise SpecError(str(name_or_path), None, "", f"a shipped spec in {elsewhere[0]}/, not in {folder}/")
    shipped = sorted(p.stem for p in shipped_folder(folder).glob("*.yaml"))
    raise SpecError(str(name_or_path), None, "", f"no such file, nor a shipped spec in {folder}/ "
                    f"(shipped: {', '.join(shipped) or 'none'})")


def load_yaml(path: str | Path, foreign: bool = False) -> Field:
    """Load a spec file; an unreadable file is a `SpecError` too."""
    return load_yaml_text(read_spec(path), str(path), foreign)


def read_spec(path: str | Path) -> str:
    """The text of a spec or mapping file, at most `MAX_SPEC_BYTES`: a larger file is refused at once
    (before it is read, when its size is known; else after that many bytes: a device, a pipe)."""
    path = Path(path)
    limit = f"{MAX_SPEC_BYTES // 2**20} MiB"
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_SPEC_BYTES:
                raise SpecError(str(path), None, "", f"the file has {size:,} bytes, more than the {limit} a spec "
                                                     "or mapping file may have")
            data = file.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(str(path), None, "", "no such file") from None
    except OSError as exc:
        raise SpecError(str(path), None, "", f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(str(path), None, "", f"more than the {limit} a spec or mapping file may have")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), None, "", f"cannot read the file: not UTF-8 text ({exc.reason} at byte "
                                             f"{exc.start})") from None
