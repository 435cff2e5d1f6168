"""The solve cache (solver/cache.py): a hit gives what a fresh solve gives; anything that changes the
answer changes the key; an entry that does not hold up is recomputed, never trusted; the commands
report hits and refuse a cache they cannot use before any work."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.app.cli import main
from mapper.spec.acg import load_acg
from mapper.spec.workload import make_layer
from solver import solve
from solver.cache import SolveCache, solve_key
from solver.registry import resolve

ACG = load_acg("tiny")


def gemm(m: int = 8, n: int = 8, k: int = 8, name: str = "g"):
    return make_layer(name, "C[m,n] += A[m,k] * B[k,n]", {"m": m, "n": n, "k": k},
                      {"A": "int8", "B": "int8", "C": "int32"})


def key(layer, acg=ACG, strategy="cpsat", objective="latency", limit=10.0, seed=0):
    return solve_key(layer, acg, strategy, objective, limit, resolve(strategy, {}, seed))


def entries(cache: SolveCache) -> list[tuple[str, str]]:
    with sqlite3.connect(cache.path) as db:
        return db.execute("SELECT key, solution FROM solves").fetchall()


def test_a_hit_is_what_a_fresh_solve_gives_and_takes_the_callers_name(tmp_path):
    cache = SolveCache(tmp_path)
    fresh = solve(gemm(), ACG, cache=cache)
    again = solve(gemm(name="other"), ACG, cache=cache)
    assert not fresh.cached and again.cached and cache.hits == 1
    assert again.mapping == replace(fresh.mapping, layer=replace(fresh.mapping.layer, name="other"))
    assert (again.status, again.objective, again.bound, again.tie_break) == \
        (fresh.status, fresh.objective, fresh.bound, fresh.tie_break)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["m", "n", "k", "objective", "limit", "seed", "strategy", "acg", "dtype"]))
def test_whatever_changes_the_answer_changes_the_key(what):
    base = key(gemm())
    changed = {
        "m": lambda: key(gemm(m=16)), "n": lambda: key(gemm(n=4)), "k": lambda: key(gemm(k=2)),
        "objective": lambda: key(gemm(), objective="energy"), "limit": lambda: key(gemm(), limit=5.0),
        "seed": lambda: key(gemm(), seed=1), "strategy": lambda: key(gemm(), strategy="exhaustive"),
        "acg": lambda: key(gemm(), acg=load_acg("genesys")),
        "dtype": lambda: key(make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
                                        {"A": "int8", "B": "int8", "C": "int8"})),
    }[what]()
    assert changed != base
    assert key(gemm(name="renamed")) == base  # the name is not the computation


@pytest.mark.parametrize("damage", ["garbage", "illegal", "figure", "other_acg"])
def test_an_entry_that_does_not_hold_up_is_solved_again_and_replaced(tmp_path, damage):
    cache = SolveCache(tmp_path)
    fresh = solve(gemm(), ACG, cache=cache)
    (k, text), = entries(cache)
    doc = json.loads(text)
    if damage == "garbage":
        text = text[: len(text) // 2]
    else:
        if damage == "illegal":
            doc["mapping"]["spatial"] = {d: 10_000 for d in doc["mapping"]["spatial"]}
        elif damage == "figure":
            doc["check"] = "1"
        else:
            doc["mapping"]["acg"]["digest"] = "sha256:0000000000000000"
        text = json.dumps(doc)
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE solves SET solution = ? WHERE key = ?", (text, k))
    again = solve(gemm(), ACG, cache=cache)
    assert not again.cached and again.mapping == fresh.mapping and cache.hits == 0
    assert json.loads(entries(cache)[0][1])["mapping"] == json.loads(entries(cache)[0][1])["mapping"]
    assert solve(gemm(), ACG, cache=cache).cached  # the entry was replaced by a sound one


def run_json(capsys, *args) -> dict:
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_map_reports_hits_and_no_cache_solves_afresh(tmp_path, capsys):
    first = run_json(capsys, "--cache", str(tmp_path))
    second = run_json(capsys, "--cache", str(tmp_path))
    afresh = run_json(capsys, "--cache", str(tmp_path), "--no-cache")
    assert first["total"]["cache_hits"] == 0 and not any(r.get("cached") for r in first["layers"])
    assert second["total"]["cache_hits"] == second["total"]["mapped"] > 0
    assert afresh["total"]["cache_hits"] == 0
    for a, b in zip(first["layers"], second["layers"], strict=True):
        assert (a["mapping"], a["simulated_cycles"], a["valid"]) == (b["mapping"], b["simulated_cycles"], b["valid"])


@pytest.mark.parametrize("make", ["file_as_folder", "not_a_database"])
def test_a_cache_that_cannot_be_used_stops_the_command_at_once(tmp_path, capsys, make):
    if make == "file_as_folder":
        folder = tmp_path / "plain"
        folder.write_text("not a folder\n")
    else:
        folder = tmp_path
        (folder / "solves.sqlite").write_bytes(b"this is not an SQLite database, it must stay as it is\n" * 40)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code = main(["map", "--acg", "tiny", "--workload", "tiny_net", "--cache", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and "--cache" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_layer_that_cannot_run_is_remembered_as_such(tmp_path):
    from solver import NoMapping
    cache = SolveCache(tmp_path)
    no_macs = replace(ACG, computes={})
    with pytest.raises(NoMapping) as first:
        solve(gemm(), no_macs, cache=cache)
    with pytest.raises(NoMapping) as again:
        solve(gemm(), no_macs, cache=cache)
    assert str(again.value) == str(first.value) and cache.hits == 1
