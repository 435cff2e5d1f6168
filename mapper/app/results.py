"""The result database of experiments: one SQLite file per output folder, one row per case key.

A row is written in one transaction when its case finishes, so a killed run leaves only complete
rows, and a re-run computes just the keys that are missing. Rows are keyed by content (see
`mapper.app.experiment.Case.key`), so the same case is never stored twice.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "results.db")
    >>> db = open_db(path)
    >>> store(db, ResultRow("k1", status="optimal", predicted_cycles=10.0))
    >>> done_keys(db), fetch(db, ["k1"])["k1"]["predicted_cycles"]
    ({'k1'}, 10.0)
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import get_args, get_origin, get_type_hints

from mapper.spec.loader import SpecError

SCHEMA = 1


@dataclass(frozen=True)
class ResultRow:
    """One case's result as the database stores it: a layer's (`mapper.app.runner.run_case`) or a whole
    network's (`mapper.app.experiment_networks.network_row`). The fields, in order, are the columns of
    the `results` table, their annotations its SQLite types (`COLUMNS`); a figure a case lacks is None.
    `mapping` is the mapping document (`mapping_to_dict`), stored as sorted JSON."""

    key: str = field(metadata={"sql": "TEXT PRIMARY KEY"})  # the case's content hash
    acg: str | None = None
    acg_digest: str | None = None
    workload: str | None = None
    layer: str | None = None
    layer_digest: str | None = None
    strategy: str | None = None
    objective: str | None = None
    time_limit: float | None = None
    seed: int | None = None
    status: str | None = None
    capability: str | None = None
    macs: int | None = None
    predicted_cycles: float | None = None
    simulated_cycles: float | None = None
    roofline_cycles: float | None = None
    predicted_energy_pj: float | None = None
    energy_pj: float | None = None
    utilization: float | None = None
    solve_seconds: float | None = None
    optimality_gap: float | None = None
    valid: bool | None = None
    error: str | None = None
    mapping: dict | None = None
    version: str | None = None
    wall_seconds: float | None = None
    finished: str | None = None  # ISO time, UTC
    # whole networks (`level: networks`): staging and end-to-end figures
    staging_in_cycles: float | None = None
    staging_out_cycles: float | None = None
    staging_energy_pj: float | None = None
    staging_bytes: int | None = None
    end_to_end_cycles: float | None = None
    end_to_end_energy_pj: float | None = None
    end_to_end_prefetch_cycles: float | None = None
    clock_ghz: float | None = None
    power_w: float | None = None

    def values(self) -> dict:
        """The row's column values as SQLite takes them (`mapping` as JSON text)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(out["mapping"], dict):
            out["mapping"] = json.dumps(out["mapping"], sort_keys=True)
        return out


SQL_TYPES = {int: "INTEGER", float: "REAL", str: "TEXT", bool: "INTEGER", dict: "TEXT"}


def _sql_type(f: Field, annotation) -> str:
    """A field's SQLite column type: its `sql` metadata, else that of its annotation's non-None type."""
    if "sql" in f.metadata:
        return f.metadata["sql"]
    kinds = [t for t in get_args(annotation) or (annotation,) if t is not type(None)]
    assert len(kinds) == 1, f"{f.name}: one type besides None, got {annotation}"
    return SQL_TYPES[get_origin(kinds[0]) or kinds[0]]


def _columns() -> dict[str, str]:
    hints = get_type_hints(ResultRow)
    return {f.name: _sql_type(f, hints[f.name]) for f in fields(ResultRow)}


COLUMNS = _columns()  # the `results` table: column -> SQLite type, in ResultRow's order


def open_db(path: str | Path) -> sqlite3.Connection:
    """Open (or create) a result database; a file that is not one is a `SpecError`, left untouched."""
    path = Path(path)
    existed = path.exists()
    try:
        db = sqlite3.connect(path, timeout=30)
        db.row_factory = sqlite3.Row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if existed and tables and not {"meta", "results"} <= tables:
            raise SpecError(str(path), None, "", "not a covenant result database (it has other tables); "
                            "choose another --out folder")
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None or row[0] != str(SCHEMA):
                raise SpecError(str(path), None, "", f"result database schema {row and row[0]} is not "
                                f"{SCHEMA}; move it away or choose another --out folder")
        else:
            with db:
                db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
                db.execute(f"CREATE TABLE results ({', '.join(f'{c} {t}' for c, t in COLUMNS.items())})")
        present = {r[1] for r in db.execute("PRAGMA table_info(results)")}
        with db:  # a database from before a column was added gets it (empty for its rows)
            for column in (c for c in COLUMNS if c not in present):
                db.execute(f"ALTER TABLE results ADD COLUMN {column} {COLUMNS[column]}")
        db.execute("PRAGMA journal_mode = WAL")  # readers (reports) never block the writer
        return db
    except sqlite3.DatabaseError as exc:
        raise SpecError(str(path), None, "", f"not a usable result database ({exc}); "
                        "move it away or choose another --out folder") from None


def store(db: sqlite3.Connection, row: ResultRow) -> None:
    """Insert or replace one result, atomically."""
    values = row.values()
    with db:
        db.execute(f"INSERT OR REPLACE INTO results ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                   list(values.values()))


def done_keys(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT key FROM results")}


def fetch(db: sqlite3.Connection, keys) -> dict[str, dict]:
    """The stored rows of `keys` (missing keys are absent), `mapping` decoded."""
    keys = list(dict.fromkeys(keys))
    out = {}
    for start in range(0, len(keys), 500):  # SQLite bounds the number of parameters
        chunk = keys[start:start + 500]
        for r in db.execute(f"SELECT * FROM results WHERE key IN ({', '.join('?' * len(chunk))})", chunk):
            row = dict(r)
            row["mapping"] = json.loads(row["mapping"]) if row["mapping"] else None
            row["valid"] = None if row["valid"] is None else bool(row["valid"])
            out[row["key"]] = row
    return out
