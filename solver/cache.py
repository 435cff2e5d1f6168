"""A solve cache shared by every command: a strategy's `Solution` for one layer, kept in a local
SQLite file and keyed by the content of everything the solve depends on.

The key is the SHA-256 of a canonical JSON document of:

- the layer's computation (`layer_content`: expression, dims, tensors with dtypes and shapes, and
  what a fused group keeps on chip), not its name: two layers computing the same thing share an entry;
- the ACG's digest (`acg_digest`: what the ACG means, not its file's layout);
- the strategy, the objective, the time limit and the strategy's resolved options (seed included);
- the code: a digest of the source a solve runs (`mapper/{spec,mapping,program}`, `solver/`, `sim/`)
  and the OR-tools version, so a change to the cost model, the space or a strategy never serves an
  old answer.

A layer that cannot run at all (`NoMapping`) is stored as that verdict and raised again on a hit.
An entry with a solution is checked on load, never trusted: its mapping is parsed as a mapping file is (`covenant-
mapping/1`, legality checked against the ACG), and the cost model must give it the figure stored
with it. An entry that fails (corrupted, stale, for another ACG) is deleted and the layer solved
again. A cache that cannot be opened (not a database, a folder that cannot be written) is a
`CacheError`; the commands report it and stop before any work.

Concurrent processes (a compile's pool, `covenant run`'s workers) share the file: SQLite's
write-ahead log lets them read while one writes, and a write waits for the lock up to 60 s.

    >>> import tempfile
    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> from solver import solve
    >>> acg = load_acg("tiny")
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> cache = SolveCache(tempfile.mkdtemp())
    >>> first = solve(layer, acg, cache=cache)
    >>> again = solve(layer, acg, cache=cache)
    >>> again.cached, again.mapping == first.mapping, again.objective == first.objective
    (True, True, True)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import sqlite3
from contextlib import closing
from fractions import Fraction
from pathlib import Path
from typing import Any

from mapper.mapping.cost import evaluate
from mapper.mapping.mapping import acg_digest, bare_layer
from mapper.mapping.mapping_yaml import mapping_to_dict, parse_mapping
from mapper.spec.acg import ACG
from mapper.spec.loader import Field, SpecError
from mapper.spec.workload import Layer
from solver.space import NoMapping, Progress, Solution, SpaceTooLarge

FILE = "solves.sqlite"
FORMAT = 1  # of the stored JSON; a change makes every older entry a miss
_CODE_ROOTS = ("mapper/spec", "mapper/mapping", "mapper/program", "solver", "sim")  # what a solve runs
_FRACTIONS = ("objective", "bound", "model_objective")


class CacheError(Exception):
    """The cache cannot be used (its file is not a database, its folder cannot be written)."""


def default_folder() -> Path | None:
    """The cache the commands use without `--cache`: `$COVENANT_CACHE` (`off`: none), else
    `$XDG_CACHE_HOME/covenant`, else `~/.cache/covenant`."""
    given = os.environ.get("COVENANT_CACHE", "").strip()
    if given.lower() in ("off", "none", "0"):
        return None
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "covenant"


@functools.lru_cache(maxsize=8)
def open_cache(folder: str) -> SolveCache:
    """The cache in `folder`, opened once per process (`CacheError` if it cannot be used)."""
    return SolveCache(folder)


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the source a solve runs (`_CODE_ROOTS`) and of OR-tools' version."""
    h = hashlib.sha256(importlib.metadata.version("ortools").encode())
    root = Path(__file__).resolve().parents[1]
    for sub in _CODE_ROOTS:
        for path in sorted((root / sub).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def layer_content(layer: Layer) -> list:
    """The content of a layer's computation, as JSON-ready lists (its name left out)."""
    return [str(layer.expr), sorted(layer.dims.items()),
            sorted([t.name, t.dtype, list(t.shape)] for t in layer.tensors.values()), repr(layer.onchip)] + \
        ([repr(layer.epilogue)] if layer.epilogue else [])


def solve_key(layer: Layer, acg: ACG, strategy: str, objective: str, time_limit: float | None, options: Any) -> str:
    """The content key of one solve (see the module doc)."""
    opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else options
    doc = [FORMAT, code_digest(), layer_content(layer), acg_digest(acg), strategy, objective, time_limit, opts]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class SolveCache:
    """The cache in `folder` (created if missing): `get` and `put` by `solve_key`."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder).expanduser() / FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS solves (key TEXT PRIMARY KEY, solution TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"the solve cache {self.path} cannot be used: {exc}") from None
        self.hits = 0

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, key: str, layer: Layer, acg: ACG) -> Solution | None:
        """The stored solution for `key`, checked against `layer` and `acg`; None if absent or if the
        entry does not hold up (it is then deleted)."""
        try:
            with closing(self._connect()) as db:
                row = db.execute("SELECT solution FROM solves WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        verdict = _no_mapping(row[0])
        if verdict is not None:
            self.hits += 1
            raise verdict
        solution = decode(row[0], layer, acg)
        if solution is None:
            self._delete(key)
            return None
        self.hits += 1
        return solution

    def put(self, key: str, solution: Solution, acg: ACG) -> None:
        """Store `solution` (a strategy's internal error is never stored); a failed write only means
        the next run solves again."""
        if solution.status == "error":
            return
        try:
            with closing(self._connect()) as db, db:
                db.execute("INSERT OR REPLACE INTO solves VALUES (?, ?)", (key, encode(solution, acg)))
        except sqlite3.Error:
            pass

    def put_no_mapping(self, key: str, exc: NoMapping) -> None:
        """Store the verdict that the layer cannot run (the strategy's `NoMapping`, or `SpaceTooLarge`)."""
        doc = {"no_mapping": str(exc), "too_large": isinstance(exc, SpaceTooLarge)}
        try:
            with closing(self._connect()) as db, db:
                db.execute("INSERT OR REPLACE INTO solves VALUES (?, ?)", (key, json.dumps(doc)))
        except sqlite3.Error:
            pass

    def _delete(self, key: str) -> None:
        try:
            with closing(self._connect()) as db, db:
                db.execute("DELETE FROM solves WHERE key = ?", (key,))
        except sqlite3.Error:
            pass


def _no_mapping(text: str) -> NoMapping | None:
    """The stored verdict that a layer cannot run, as the exception its solve raised (None: an entry
    with a solution)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("no_mapping"), str):
        return None
    return (SpaceTooLarge if doc.get("too_large") else NoMapping)(doc["no_mapping"])


def _check(solution: Solution, acg: ACG) -> str:
    """The cost model's figure for the solution's mapping: what an entry must still give on load."""
    return str(evaluate(solution.mapping, acg).objective(solution.objective_name))


def encode(solution: Solution, acg: ACG) -> str:
    """A solution as JSON: its fields, Fractions as 'p/q', the mapping as a mapping document, and the
    cost model's figure for the mapping (`_check`)."""
    doc = {f.name: getattr(solution, f.name) for f in dataclasses.fields(solution) if f.name != "mapping"}
    for name in _FRACTIONS:
        doc[name] = None if doc[name] is None else str(doc[name])
    doc["bounds"] = [[k, str(v)] for k, v in solution.bounds]
    doc["trace"] = [dataclasses.asdict(p) for p in solution.trace]
    if solution.mapping is not None:
        doc["mapping"] = mapping_to_dict(solution.mapping)
        doc["check"] = _check(solution, acg)
    return json.dumps(doc)  # key order kept: a mapping document lists dims in the layer's order


def decode(text: str, layer: Layer, acg: ACG) -> Solution | None:
    """The solution stored as `text`, for `layer` on `acg`; None if it does not hold up: not this
    format, a mapping that is not legal on `acg`, or one the cost model now scores differently."""
    try:
        doc = json.loads(text)
        mapping = None
        if doc.get("mapping") is not None:
            mapping = parse_mapping(Field("solve cache", (), doc.pop("mapping"), 0), acg)
            mapping = dataclasses.replace(mapping, layer=bare_layer(layer))
        check = doc.pop("check", None)
        for name in _FRACTIONS:
            doc[name] = None if doc[name] is None else Fraction(doc[name])
        doc["bounds"] = tuple((k, Fraction(v)) for k, v in doc["bounds"])
        doc["trace"] = tuple(Progress(**p) for p in doc["trace"])
        solution = Solution(mapping=mapping, **doc)
    except (ValueError, TypeError, KeyError, AttributeError, SpecError):
        return None
    if mapping is not None and _check(solution, acg) != check:
        return None
    return dataclasses.replace(solution, cached=True)
