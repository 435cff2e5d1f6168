"""Ctrl-C at any moment: `covenant: interrupted` on stderr and nothing else, exit status 130, no
process left behind, nothing half-written; a second Ctrl-C while it cleans up changes nothing.

Ctrl-C in a terminal reaches every process of its group (covenant and its workers): the tests start
covenant in a group of its own and signal the group, or only covenant (as `timeout -s INT` or `kill`
do). Every wait is bounded; no test asserts how fast anything is."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mapper.spec.loader import PROJECT_ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc")

WORKLOAD = """\
name: small
layers:
  - {name: g1, op: gemm, params: {M: 8, N: 8, K: 16}}
  - {name: g2, op: gemm, params: {M: 16, N: 8, K: 8}}
  - {name: add, op: add, params: {shape: [1, 8, 4, 4]}}
"""
EXPERIMENT = """\
name: interrupted
acgs: [tiny]
workloads: [WORKLOAD]
strategies: [{name: random, time_limit: 0.5}]
repetitions: 4
"""
DEADLINE = 120  # seconds: a hang guard, never a speed requirement


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mapper.app.cli", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert proc.poll() is None, f"covenant ended before the moment to interrupt it: {proc.communicate()}"
        assert time.monotonic() < deadline, "the moment to interrupt never came"
        time.sleep(0.02)


def _interrupt(proc: subprocess.Popen, group: bool, twice: bool) -> None:
    send = (lambda: os.killpg(proc.pid, signal.SIGINT)) if group else (lambda: proc.send_signal(signal.SIGINT))
    send()
    if twice:
        time.sleep(0.05)
        try:
            send()
        except ProcessLookupError:
            pass  # already gone


def _ends_interrupted(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=DEADLINE)
    assert (proc.returncode, err) == (130, "covenant: interrupted\n")
    deadline = time.monotonic() + DEADLINE
    while True:  # no worker outlives covenant (the group is empty once every one has ended)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a process of covenant's group is still running"
        time.sleep(0.02)


def _stored(db: Path) -> int:
    try:
        return sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.parametrize("moment, group, twice", [
    ("starting", True, False),  # while Python imports covenant's modules (a second or so)
    ("pool starting", True, True),  # the database exists: the worker processes are being started
    ("cases running", True, True),  # a result is stored, workers are solving
    ("cases running", False, True),  # only covenant is signalled (timeout -s INT, kill -INT)
])
def test_run_interrupted_at_any_moment(tmp_path: Path, moment: str, group: bool, twice: bool) -> None:
    (tmp_path / "small.yaml").write_text(WORKLOAD)
    (tmp_path / "exp.yaml").write_text(EXPERIMENT.replace("WORKLOAD", str(tmp_path / "small.yaml")))
    db = tmp_path / "out" / "results.db"
    proc = _start(["run", "exp.yaml", "--out", "out", "--jobs", "2"], tmp_path)
    if moment == "starting":  # Python itself has started (before, an interrupt ends it as Python does)
        _wait_for(lambda: _cpu_seconds(proc.pid) > 0.3, proc)
    elif moment == "pool starting":
        _wait_for(db.exists, proc)
    elif moment == "cases running":
        _wait_for(lambda: _stored(db) >= 1, proc)
    _interrupt(proc, group, twice)
    _ends_interrupted(proc)
    if db.exists():  # what was stored is whole: a finished case a row, nothing half-written
        assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_map_interrupted_inside_a_cpsat_search(tmp_path: Path) -> None:
    """CP-SAT's own Ctrl-C handler ended the search as if its time limit were reached: covenant went
    on with a worse mapping and exit status 0 (and a second Ctrl-C killed it without a word)."""
    proc = _start(["map", "--acg", "meta_prototype", "--workload", "deepbench_gemm", "--layer",
                   "inf_dev_3072x1x128", "--time-limit", "1000", "--no-validate", "-o", "m.yaml"], tmp_path)
    _wait_for(lambda: _cpu_seconds(proc.pid) > 3, proc)  # well into the search (about 1.5 s to load)
    _interrupt(proc, True, True)
    _ends_interrupted(proc)
    assert list(tmp_path.iterdir()) == []  # the mapping was not written

