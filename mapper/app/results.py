"""The result database of experiments: one SQLite file per output folder, one row per case key.

A row is written in one transaction when its case finishes, so a killed run leaves only complete
rows, and a re-run computes just the keys that are missing. Rows are keyed by content (see
`mapper.app.experiment.Case.key`), so the same case is never stored twice.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "results.db")
    >>> db = open_db(path)
    >>> store(db, {"key": "k1", "status": "optimal", "predicted_cycles": 10.0})
    >>> done_keys(db), fetch(db, ["k1"])["k1"]["predicted_cycles"]
    ({'k1'}, 10.0)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mapper.spec.loader import SpecError

SCHEMA = 1
COLUMNS = {
    "key": "TEXT PRIMARY KEY", "acg": "TEXT", "acg_digest": "TEXT", "workload": "TEXT", "layer": "TEXT",
    "layer_digest": "TEXT", "strategy": "TEXT", "objective": "TEXT", "time_limit": "REAL", "seed": "INTEGER",
    "status": "TEXT", "capability": "TEXT", "macs": "INTEGER", "predicted_cycles": "REAL",
    "simulated_cycles": "REAL", "roofline_cycles": "REAL", "predicted_energy_pj": "REAL", "energy_pj": "REAL",
    "utilization": "REAL", "solve_seconds": "REAL", "optimality_gap": "REAL", "valid": "INTEGER",
    "error": "TEXT", "mapping": "TEXT", "version": "TEXT", "wall_seconds": "REAL", "finished": "TEXT",
    # whole networks (`level: networks`): staging and end-to-end figures
    "staging_in_cycles": "REAL", "staging_out_cycles": "REAL", "staging_energy_pj": "REAL",
    "staging_bytes": "INTEGER", "end_to_end_cycles": "REAL", "end_to_end_energy_pj": "REAL",
    "end_to_end_prefetch_cycles": "REAL",
    "clock_ghz": "REAL", "power_w": "REAL",
}


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


def store(db: sqlite3.Connection, row: dict) -> None:
    """Insert or replace one result, atomically."""
    values = {c: row.get(c) for c in COLUMNS}
    if isinstance(values["mapping"], dict):
        values["mapping"] = json.dumps(values["mapping"], sort_keys=True)
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
