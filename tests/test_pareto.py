"""The latency-energy front (`solver/pareto.py`) against brute force: every legal mapping of a small
layer enumerated and scored by the cost model. The front's ends are the lexicographic optima, no
enumerated mapping dominates a front point, and each capped point has the least energy of the
mappings within its cap; `covenant map --objective pareto` prints the front, each point validated."""

from __future__ import annotations

import json
from fractions import Fraction

from test_solver import tiny_variant

from mapper.app.cli import main
from mapper.mapping import cost
from mapper.spec.workload import template_layer
from solver.pareto import front, pick
from solver.space import legal, points, spaces_of


def test_the_front_equals_brute_force() -> None:
    acg = tiny_variant(64, 32, 128, 128, 2, True, 2, setup=3, interval="m", power=0.3)
    layer = template_layer("gemm", dict(M=2, N=8, K=32))
    figures = set()
    for space in spaces_of(layer, acg):
        for point in points(space):
            m = legal(space, point, acg)
            if m is not None:
                c = cost.evaluate(m, acg)
                figures.add((c.latency, c.energy))
    found = front(layer, acg, points=5)
    true_front = [f for f in figures if not any(g[0] <= f[0] and g[1] <= f[1] and g != f for g in figures)]
    assert {(p.latency, p.energy) for p in found} == set(true_front) and len(true_front) == 3
    assert all(p.status == "optimal" for p in found)
    fastest = min(lat for lat, _ in figures)
    assert (found[0].latency, found[0].energy) == (fastest, min(e for lat, e in figures if lat == fastest))
    frugal = min(e for _, e in figures)
    assert (found[-1].latency, found[-1].energy) == (min(lat for lat, e in figures if e == frugal), frugal)
    for p in found:
        assert not any(lat <= p.latency and e <= p.energy and (lat, e) != (p.latency, p.energy)
                       for lat, e in figures), "an enumerated mapping dominates a front point"
        if p.cap is not None:
            assert p.energy == min(e for lat, e in figures if lat <= p.cap)
    assert pick(found, found[0].latency) is found[0] and pick(found, Fraction(10**9)) is found[-1]


def test_covenant_map_prints_the_front(capsys) -> None:
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--layer", "fc", "--objective", "pareto",
                 "--points", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (layer,) = doc["layers"]
    rows = layer["front"]
    assert doc["objective"] == "pareto" and 1 <= len(rows) <= 3 and all(r["valid"] for r in rows)
    assert [r["latency_cycles"] for r in rows] == sorted(r["latency_cycles"] for r in rows)


def test_a_front_is_not_written_with_o(tmp_path, capsys) -> None:
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--objective", "pareto",
                 "-o", str(tmp_path / "x")]) == 2
    assert "not written with -o" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
