"""Run an experiment: compute the cases the database lacks, in worker processes or on Dask.

Only the parent process writes the database, one transaction per finished case; workers return
`ResultRow`s. Cases with the same key (the same computation) run once. Strategies with `same_time_as`
run in a second phase, once the solve times they copy are known.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from mapper import __version__
from mapper.app.experiment import EXPERT, Case, Experiment, cases, parse_expert
from mapper.app.experiment_networks import NetworkCase, network_cases, run_network_case
from mapper.app.results import ResultRow, done_keys, fetch, open_db, store
from mapper.mapping.mapping import acg_digest
from mapper.mapping.mapping_yaml import mapping_to_dict
from mapper.network.flow import LayerResult, Options, layer_key, map_layer, new_record, score_mapping
from mapper.spec.loader import SpecError


@dataclass(frozen=True)
class RunSummary:
    cases: int  # every case of the experiment
    computed: int  # results computed by this run
    reused: int  # results found in the database
    out: Path


def run_case(case: Case | NetworkCase) -> ResultRow:
    """Compute one case's result row (never raises: a failure is a row with status 'error')."""
    if isinstance(case, NetworkCase):
        return run_network_case(case)
    start = time.perf_counter()
    try:
        record = _layer_record(case)
    except Exception as exc:  # a bug must not stop the other cases; the row says what happened
        record = replace(new_record(case.layer, case.strategy.name),
                         error=f"internal error: {type(exc).__name__}: {exc}")
    return ResultRow(
        key=case.key, acg=case.variant.label, acg_digest=acg_digest(case.variant.acg), workload=case.workload,
        layer=case.layer.name, layer_digest=str(hash_layer(case)), strategy=case.strategy.label,
        objective=case.objective, time_limit=case.time_limit, seed=case.seed, status=record.status,
        capability=record.capability, macs=record.macs, predicted_cycles=record.predicted_cycles,
        simulated_cycles=record.simulated_cycles, roofline_cycles=record.roofline_cycles,
        predicted_energy_pj=record.predicted_energy_pj, energy_pj=record.energy_pj,
        utilization=record.utilization, solve_seconds=record.solve_seconds, optimality_gap=record.optimality_gap,
        valid=record.valid, error=record.error,
        mapping=None if record.mapping is None else mapping_to_dict(record.mapping), version=__version__,
        wall_seconds=time.perf_counter() - start, finished=datetime.now(UTC).isoformat(timespec="seconds"))


def _layer_record(case: Case) -> LayerResult:
    """One layer case's record: the given (expert) mapping scored, or the strategy's mapping."""
    if case.strategy.name == EXPERT:
        record = new_record(case.layer, EXPERT)
        try:
            mapping = parse_expert(case)
        except SpecError as exc:
            return replace(record, status="missing" if case.expert_text is None else "error", error=str(exc))
        record, _ = score_mapping(replace(record, status="given"), mapping, case.variant.acg, case.validate,
                                  case.seed)
        return record
    options = Options(case.strategy.name, case.objective, case.time_limit, case.validate, case.seed,
                      case.strategy.options)
    return map_layer(case.layer, case.variant.acg, options, case.workload)[0]


def hash_layer(case: Case) -> str:
    return hashlib.sha256(repr(layer_key(case.layer)).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# Executors: each yields (case, row) as cases finish

def run_local(todo: list[Case], jobs: int) -> Iterable[tuple[Case, ResultRow]]:
    """Run the cases in `jobs` worker processes. The workers never see SIGINT or SIGTERM (Ctrl-C
    reaches every process of the terminal's group): they start with both blocked, and the parent,
    interrupted, kills them and waits for them, so that none is left running or prints a traceback
    (their results are lost: only finished results are stored)."""
    if jobs <= 1 or len(todo) <= 1:
        for case in todo:
            yield case, run_case(case)
        return
    # spawn: workers start clean (no inherited solver threads or open database handles)
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn"))
    try:
        with _interrupts_blocked():  # the workers start here and inherit the mask; an interrupt waits until after
            futures = {pool.submit(run_case, case): case for case in todo}
        for future in cf.as_completed(futures):
            yield futures[future], future.result()
    except BaseException:  # an interrupt, a failure, or the caller stopped reading: the cases left are not awaited
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def _interrupts_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back meanwhile; one that came is delivered at the end. Blocked in
    this thread (and so in the processes and threads it starts), and, in the main thread, their
    Python handlers only note them: the kernel may deliver a signal to another thread (rich's
    progress thread), whose handler would then raise in the middle of starting a worker, after
    its process began and before it was sent its start-up data (it printed a traceback)."""
    main = threading.current_thread() is threading.main_thread()
    came: list[int] = []
    handlers = {s: signal.signal(s, lambda signum, _frame: came.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # one held by the mask arrives here: noted
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if came:
            signal.raise_signal(came[0])  # now handled as usual (the command's handler: an interrupt)


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    """End the pool's workers at once (they write nothing: only the parent writes the database)."""
    workers = list((pool._processes or {}).values())  # no public handle before Python 3.14's terminate_workers
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.kill()
    for worker in workers:
        worker.join()


def run_dask(todo: list[Case], scheduler: str | None, jobs: int) -> Iterable[tuple[Case, ResultRow]]:
    if not todo:  # nothing to do: do not start or contact a cluster
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed  # lazy: dask is the optional extra [dist]
    except ImportError:
        raise SpecError("--executor", None, "", "dask is not installed: pip install 'covenant[dist]'") from None
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="10s")
        else:  # no address: a local cluster of `jobs` single-threaded worker processes
            cluster = LocalCluster(n_workers=max(jobs, 1), threads_per_worker=1, dashboard_address=None)
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpecError("--scheduler", None, "", f"cannot reach the dask scheduler {scheduler}: {exc}") from None
    try:
        futures = client.map(run_case, todo, pure=False)
        index = {f.key: case for f, case in zip(futures, todo, strict=True)}
        for future in as_completed(futures):
            yield index[future.key], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------------------

def run_experiment(exp: Experiment, out: Path, jobs: int = 1, executor: str = "local",
                   scheduler: str | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> RunSummary:
    """Compute every missing result of `exp` into `out/results.db`; return what was done.

    `progress(advance, total, title)` is called with the number of results found stored, then once
    per finished case; `total` counts distinct results (identical layers share one).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SpecError(str(out), None, "--out", f"cannot write to the output folder: {exc.strerror or exc}") \
            from None
    db = open_db(out / "results.db")
    try:
        # Placeholder times give the second phase's cases (and so the number of distinct results).
        placeholder = {(v.label, layer.name, o, r, s.label): 1.0 for v in exp.variants for _, layer in exp.layers
                       for s in exp.strategies for o in exp.objectives for r in range(exp.repetitions)}
        total = len({c.key for c in all_cases(exp, placeholder)})
        computed = 0
        for phase in (1, 2):  # 2: strategies that copy another's solve time, once it is known
            now = [c for c in all_cases(exp, _solve_times(db, exp))
                   if (c.strategy.same_time_as is None) == (phase == 1)]
            done = done_keys(db)
            todo = list({c.key: c for c in now if c.key not in done}.values())
            if progress:
                progress(len({c.key for c in now}) - len(todo), total, "")
            run = run_local(todo, jobs) if executor == "local" else run_dask(todo, scheduler, jobs)
            for case, row in run:
                try:
                    store(db, row)
                except sqlite3.Error as exc:  # a full disk: what is stored stays, the rest is computed next time
                    raise SpecError(str(out / "results.db"), None, "", f"cannot store a result ({exc}); the "
                                    f"results stored before are kept") from None
                computed += 1
                if progress:
                    progress(1, total, case.title)
        every = all_cases(exp, _solve_times(db, exp))
        return RunSummary(len(every), computed, len({c.key for c in every}) - computed, out)
    finally:
        db.close()


def _solve_times(db, exp: Experiment) -> dict[tuple, float]:
    """Solve time of every stored case of a strategy other strategies copy, by case coordinates."""
    wanted = {s.same_time_as for s in exp.strategies if s.same_time_as}
    coords = [c for c in cases(exp) if c.strategy.label in wanted]
    rows = fetch(db, [c.key for c in coords])
    return {(c.variant.label, c.layer.name, c.objective, c.repetition, c.strategy.label): rows[c.key]["solve_seconds"]
            for c in coords if c.key in rows}


def experiment_rows(exp: Experiment, out: Path) -> list[dict]:
    """One row per case of `exp` (layer names and counts from the experiment, figures from the database)."""
    db = open_db(out / "results.db")
    try:
        every = all_cases(exp, _solve_times(db, exp))
        stored = fetch(db, [c.key for c in every])
    finally:
        db.close()
    return [{**stored[c.key], **c.coordinates()} for c in every if c.key in stored]


def all_cases(exp: Experiment, time_of: dict[tuple, float] | None = None) -> list[Case] | list[NetworkCase]:
    """The experiment's cases: layers (`mapper.app.experiment.cases`) or whole networks."""
    return network_cases(exp) if exp.level == "networks" else cases(exp, time_of)
