"""`covenant run`: the experiment format, the result database (resumable, atomic), reports, expert
mappings, and the dask executor."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mapper.app.cli import main
from mapper.app.experiment import cases, load_experiment
from mapper.app.runner import experiment_rows, run_experiment
from mapper.mapping.mapping import check_legal
from mapper.mapping.mapping_yaml import load_mapping
from mapper.network.flow import layer_key
from mapper.spec.acg import load_acg
from mapper.spec.loader import PROJECT_ROOT, SpecError
from mapper.spec.workload import load_workload

WORKLOAD = """\
name: small
layers:
  - {name: g1, op: gemm, params: {M: 8, N: 8, K: 16}}
  - {name: g2, op: gemm, params: {M: 16, N: 8, K: 8}}
  - {name: g1_again, op: gemm, params: {M: 8, N: 8, K: 16}}
  - {name: add, op: add, params: {shape: [1, 8, 4, 4]}}
"""


def write_experiment(tmp_path: Path, body: str) -> Path:
    (tmp_path / "small.yaml").write_text(WORKLOAD)
    path = tmp_path / "exp.yaml"
    path.write_text(body.replace("WORKLOAD", str(tmp_path / "small.yaml")))
    return path


SWEEP = """\
name: sweep
acgs:
  - spec: tiny
    sweep:
      obuf: {paths: [nodes.OBUF.capacity], values: [256B, 512B]}
workloads: [WORKLOAD]
strategies: [cpsat]
time_limit: 5
"""

FIGURES = ("status", "capability", "predicted_cycles", "simulated_cycles", "energy_pj", "valid", "mapping")


def test_sweep_overrides_make_variants(tmp_path: Path) -> None:
    exp = load_experiment(write_experiment(tmp_path, SWEEP))
    assert [v.label for v in exp.variants] == ["tiny[obuf=256B]", "tiny[obuf=512B]"]
    assert [v.acg.storages["OBUF"].capacity for v in exp.variants] == [256, 512]
    assert len(cases(exp)) == 8
    # g1 and g1_again are the same computation: one result each per variant
    assert len({c.key for c in cases(exp)}) == 6


def test_run_twice_does_no_work_the_second_time(tmp_path: Path) -> None:
    exp = load_experiment(write_experiment(tmp_path, SWEEP))
    first = run_experiment(exp, tmp_path / "out")
    assert (first.cases, first.computed, first.reused) == (8, 6, 0)
    rows = experiment_rows(exp, tmp_path / "out")
    assert len(rows) == 8 and all(r["valid"] for r in rows)
    again = run_experiment(exp, tmp_path / "out")
    assert (again.computed, again.reused) == (0, 6)
    assert [{f: r[f] for f in FIGURES} for r in experiment_rows(exp, tmp_path / "out")] == \
        [{f: r[f] for f in FIGURES} for r in rows]


def test_cli_run_writes_report_csv_and_plots(tmp_path: Path, capsys) -> None:
    path = write_experiment(tmp_path, SWEEP + "report: {plots: [roofline, pareto, utilization]}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    out = tmp_path / "out"
    for name in ("report.md", "results.csv", "roofline.png", "pareto.png", "utilization.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "## Sweep" in report and "tiny[obuf=512B]" in report
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 8
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_cli_run_json_prints_every_row(tmp_path: Path, capsys) -> None:
    path = write_experiment(tmp_path, SWEEP)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["cases"], doc["computed"], len(doc["rows"])) == (8, 6, 8)
    assert all(r["valid"] for r in doc["rows"])
    assert main(["run", str(path), "--out", str(out), "--jobs", "1", "--json"]) == 0  # resumed: the same rows
    again = json.loads(capsys.readouterr().out)
    assert (again["computed"], again["reused"]) == (0, 6)
    assert [r["key"] for r in again["rows"]] == [r["key"] for r in doc["rows"]]


def test_kill_and_resume_loses_nothing(tmp_path: Path) -> None:
    # random search spends its whole time limit, so each case takes at least 0.7 s
    path = write_experiment(tmp_path, """\
name: killed
acgs: [tiny]
workloads: [WORKLOAD]
strategies: [{name: random, time_limit: 0.7}]
repetitions: 3
""")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [sys.executable, "-m", "mapper.app.cli", "run", str(path), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "results.db"
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done = sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 2:
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    exp = load_experiment(path)
    expected = {c.key for c in cases(exp)}
    killed = {r[0] for r in sqlite3.connect(db).execute("SELECT key FROM results")}
    assert 2 <= len(killed) < len(expected)  # killed mid-run
    summary = run_experiment(exp, out)
    assert summary.computed == len(expected) - len(killed)
    keys = [r[0] for r in sqlite3.connect(db).execute("SELECT key FROM results")]
    assert sorted(keys) == sorted(expected)  # none missing, none twice
    assert all(r["status"] == "feasible" for r in experiment_rows(exp, out))


def test_dask_local_cluster_gives_the_local_results(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    exp = load_experiment(write_experiment(tmp_path, SWEEP))
    run_experiment(exp, tmp_path / "local", jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        summary = run_experiment(exp, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address)
    assert summary.computed == 6
    local, remote = (experiment_rows(exp, tmp_path / d) for d in ("local", "dask"))
    assert [{f: r[f] for f in FIGURES} for r in remote] == [{f: r[f] for f in FIGURES} for r in local]


def test_same_time_as_gives_random_the_cpsat_time(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, """\
name: equal_time
acgs: [tiny]
workloads: [{spec: WORKLOAD, layers: [g1, g2]}]
strategies: [cpsat, {name: random, same_time_as: cpsat}]
""")
    exp = load_experiment(path)
    run_experiment(exp, tmp_path / "out")
    rows = experiment_rows(exp, tmp_path / "out")
    by = {(r["layer"], r["strategy"]): r for r in rows}
    assert len(rows) == 4
    for layer in ("g1", "g2"):
        assert by[(layer, "random")]["time_limit"] == pytest.approx(max(by[(layer, "cpsat")]["solve_seconds"], 0.05))
        # what random search finds in that time depends on the machine's load; it never beats the optimum
        found = by[(layer, "random")]["predicted_cycles"]
        assert found is None or found >= by[(layer, "cpsat")]["predicted_cycles"]


def test_quick_covenant_table(tmp_path: Path) -> None:
    exp = load_experiment("covenant_table_quick")
    summary = run_experiment(exp, tmp_path, jobs=2)
    rows = experiment_rows(exp, tmp_path)
    assert summary.cases == len(rows) == 12
    assert all(r["valid"] for r in rows), [(r["layer"], r["error"]) for r in rows if not r["valid"]]
    assert {r["status"] for r in rows if r["strategy"] == "expert"} == {"given"}
    assert main(["run", "covenant_table_quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Performance as % of expert" in report
    assert "| genesys | latency | cpsat | 3 |" in report and "| hvx_like | latency | cpsat | 3 |" in report


@pytest.mark.parametrize("acg_name", ["genesys", "hvx_like"])
def test_expert_mappings_are_legal_for_every_covenant14_layer(acg_name: str) -> None:
    acg = load_acg(acg_name)
    folder = PROJECT_ROOT / "experiments" / "expert" / acg_name
    for layer in load_workload("covenant14").layers:
        text = (folder / f"{layer.name}.yaml").read_text()
        assert "# Rationale:" in text
        m = load_mapping(folder / f"{layer.name}.yaml", acg)
        assert check_legal(m, acg) == [], layer.name
        assert layer_key(m.layer) == layer_key(layer)


BAD = [
    ("acgs: [nosuch]", "exp.yaml:2: acgs[0]: no such file, nor a shipped spec in acg_specs/"),
    ("acgs: [{spec: tiny, overrides: {nodes.NOPE.capacity: 1}}]",
     "exp.yaml:2: acgs[0].overrides.nodes.NOPE.capacity: override path 'nodes.NOPE.capacity': no 'NOPE'"),
    ("acgs: [{spec: tiny, overrides: {nodes.OBUF.capacity: -5}}]",
     "exp.yaml:2: acgs[0].overrides.nodes.OBUF.capacity: the overrides make an invalid ACG (tiny): "),
    ("acgs: [tiny]\nstrategies: [annealing]", "exp.yaml:3: strategies[0]: expected one of cpsat, exhaustive, random,"),
    ("acgs: [tiny]\nstrategies:\n  - name: anneal\n    options: {steps: 10, stepz: 3}",
     "exp.yaml:5: strategies[0].options.stepz: strategy anneal has no option 'stepz' (options: steps=1..10000000,"),
    ("acgs: [tiny]\nstrategies:\n  - name: learned\n    options:\n      measurements: many",
     "exp.yaml:6: strategies[0].options.measurements: option measurements=many of strategy learned: expected 1.."),
    ("acgs: [tiny]\nstrategies: [{name: anneal, options: {measure: maybe}}]",
     "exp.yaml:3: strategies[0].options.measure: option measure=maybe of strategy anneal: expected true|false"),
    ("acgs: [tiny]\nstrategies: [{name: random, same_time_as: cpsat}]",
     "exp.yaml:3: strategies[0].same_time_as: expected the label of an earlier search strategy"),
    ("acgs: [tiny]\nstrategies: [expert]", "exp.yaml:1: strategy 'expert' needs 'expert_mappings"),
    ("acgs: [tiny]\nobjectives: [speed]", "exp.yaml:3: objectives[0]: expected one of latency"),
    ("acgs: [tiny, tiny]", "exp.yaml:2: acgs: ACG variant 'tiny' appears twice"),
    # whole networks (level: networks)
    ("level: everything\nacgs: [tiny]", "exp.yaml:2: level: expected one of layers, networks"),
    ("acgs: [tiny]\nfuse: none", "exp.yaml:3: fuse: 'fuse' applies to whole networks: give 'level: networks'"),
    ("acgs: [tiny]\nreport: {prices_usd: {tiny: 5}}", "exp.yaml:3: report.prices_usd: prices apply to whole networks"),
    ("level: networks\nacgs: [tiny]\nreport: {prices_usd: {nosuch: 5}}",
     "exp.yaml:4: report.prices_usd.nosuch: 'nosuch' is not an ACG of the experiment (tiny)"),
    ("level: networks\nacgs: [tiny]\nstrategies: [cpsat, {name: random, same_time_as: cpsat}]",
     "exp.yaml:4: strategies[1]: whole networks are compiled by a search strategy"),
    ("level: networks\nacgs: [tiny]\nreport: {plots: [utilization]}",
     "exp.yaml:4: report.plots[0]: expected one of latency_breakdown, energy"),
]


@pytest.mark.parametrize(("lines", "message"), BAD)
def test_bad_experiments_exit_2_with_one_line(tmp_path: Path, capsys, lines: str, message: str) -> None:
    path = write_experiment(tmp_path, f"name: bad\n{lines}\nworkloads: [WORKLOAD]\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err.replace(str(tmp_path) + "/", ""), err
    assert not (tmp_path / "out").exists()


def test_bad_workload_layer_and_unknown_field(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, "name: bad\nacgs: [tiny]\nworkloads: [{spec: WORKLOAD, layers: [g3]}]\n")
    with pytest.raises(SpecError, match=r"exp.yaml:3: workloads\[0\].layers\[0\]: small has no layer 'g3'"):
        load_experiment(path)
    path = write_experiment(tmp_path, "name: bad\nacgs: [tiny]\nworkloads: [WORKLOAD]\nrepetition: 2\n")
    with pytest.raises(SpecError, match="unknown field 'repetition'; did you mean 'repetitions'"):
        load_experiment(path)


def test_corrupt_database_and_unwritable_folder_exit_2(tmp_path: Path, capsys) -> None:
    path = write_experiment(tmp_path, SWEEP)
    out = tmp_path / "out"
    out.mkdir()
    garbage = b"this is not sqlite" * 100
    (out / "results.db").write_bytes(garbage)
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "not a usable result database" in capsys.readouterr().err
    assert (out / "results.db").read_bytes() == garbage  # nothing lost
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", str(path), "--out", str(blocker / "sub")]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err
