"""The result database's row record: `ResultRow`'s fields are the `results` table's columns (names,
order, SQLite types), a row round-trips through the database, and a database from before a column was
added still opens (and resumes) with the column added."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from mapper.app.results import COLUMNS, ResultRow, done_keys, fetch, open_db, store

FULL = ResultRow(
    key="k1", acg="tiny", acg_digest="sha256:0123", workload="small", layer="g1", layer_digest="abcd",
    strategy="cpsat", objective="latency", time_limit=5.0, seed=3, status="optimal", capability="mac",
    macs=1024, predicted_cycles=100.0, simulated_cycles=101.0, roofline_cycles=64.0, predicted_energy_pj=7.5,
    energy_pj=7.25, utilization=0.5, solve_seconds=0.25, optimality_gap=0.0, valid=True, error=None,
    mapping={"format": "covenant-mapping/1", "predicted": {"cycles": 100.0}, "loops": [["k", 2]]},
    version="0.1.0", wall_seconds=1.5, finished="2025-01-01T00:00:00+00:00", staging_in_cycles=10.0,
    staging_out_cycles=2.0, staging_energy_pj=3.0, staging_bytes=4096, end_to_end_cycles=113.0,
    end_to_end_energy_pj=10.25, end_to_end_prefetch_cycles=111.0, clock_ghz=1.0, power_w=0.5)


def test_result_row_fields_are_the_database_columns(tmp_path: Path) -> None:
    db = open_db(tmp_path / "results.db")
    try:
        table = [(r[1], r[2]) for r in db.execute("PRAGMA table_info(results)")]
        primary = [r[1] for r in db.execute("PRAGMA table_info(results)") if r[5]]
    finally:
        db.close()
    names = [f.name for f in dataclasses.fields(ResultRow)]
    assert [name for name, _ in table] == names == list(COLUMNS)
    assert primary == ["key"]
    types = {"key": "TEXT", "time_limit": "REAL", "seed": "INTEGER", "macs": "INTEGER", "valid": "INTEGER",
             "mapping": "TEXT", "staging_bytes": "INTEGER", "finished": "TEXT", "power_w": "REAL"}
    assert {name: kind for name, kind in table if name in types} == types
    assert all(kind in ("TEXT", "REAL", "INTEGER") for _, kind in table)


def test_a_row_round_trips_through_the_database(tmp_path: Path) -> None:
    db = open_db(tmp_path / "results.db")
    try:
        store(db, FULL)
        store(db, ResultRow("k2", status="error", error="no mapping"))
        rows = fetch(db, ["k1", "k2", "absent"])
        assert done_keys(db) == {"k1", "k2"}
    finally:
        db.close()
    assert rows["k1"] == dataclasses.asdict(FULL)
    assert ResultRow(**rows["k1"]) == FULL
    assert ResultRow(**rows["k2"]) == ResultRow("k2", status="error", error="no mapping")


def test_an_older_database_gets_the_new_columns_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    old = list(COLUMNS)[:27]  # up to `finished`: before the whole-network columns
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
        db.execute(f"CREATE TABLE results ({', '.join(f'{c} {COLUMNS[c]}' for c in old)})")
        db.execute("INSERT INTO results (key, status, predicted_cycles) VALUES ('old', 'optimal', 5.0)")
    db.close()
    db = open_db(path)
    try:
        assert [r[1] for r in db.execute("PRAGMA table_info(results)")] == list(COLUMNS)
        assert done_keys(db) == {"old"}
        store(db, FULL)
        rows = fetch(db, ["old", "k1"])
    finally:
        db.close()
    assert rows["old"]["predicted_cycles"] == 5.0 and rows["old"]["end_to_end_cycles"] is None
    assert ResultRow(**rows["k1"]) == FULL
