"""The one executor of every sweep: independent points on a local process pool, or on a Dask cluster by address.

A sweep is a list of points, each a key (its name in the resumable `PointStore`) and a picklable call
(function, args) that returns the point's csv rows.  `run_points` computes the points that are not in the store
yet and puts each into the store the moment it finishes, so an interrupted sweep resumes with any number of
workers; the caller assembles the rows in the order of its point list, so the csv does not depend on which point
finished first.  Each point runs with `--threads` torch threads, by default the machine's cores shared among the
points that run at once (`layout`): a sweep of one point, or `--workers 1`, uses every core in this process.  The
same seed and `--threads` give the same numbers whatever `--workers`; a different thread count may change the
last bits (torch splits its reductions by thread), and a long stochastic run may then drift within its spread.

* `--workers 1`: in this process, one point after the other.
* `--workers N` (default: one per core, or as many as the cores allow at an explicit `--threads` each): a
  `ProcessPoolExecutor` with the spawn start method.  A worker process that dies takes the pool with it: the pool
  is rebuilt and the points that had not finished are submitted again (up to RETRIES times).  A worker whose parent
  is gone (killed with `kill PID`) ends itself instead of computing on for nothing.
* `--dask ADDRESS` (e.g. tcp://scheduler:8786 from `dask scheduler` and `dask worker` processes, or from
  dask-jobqueue on SLURM/PBS): the points go to that cluster through `distributed.Client`; the scheduler reruns
  the point of a worker that dies elsewhere.  Refused (exit 2) when nothing answers at the address.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
import sys
import threading
import time
from typing import Callable, ClassVar, Sequence

from tqdm import tqdm

from harness.config import BaseConfig
from harness.devices import available_cores
from harness.errors import ConfigError, SolverError
from harness.points import PointStore, sweep_store

RETRIES = 3  # pool rebuilds after a worker process died


CONNECT_TIMEOUT = "5s"  # how long --dask waits for the scheduler


def worker_count(cfg) -> int:
    """--workers, or (0) one worker per core, or as many as the cores allow at an explicit --threads each."""
    return cfg.workers or max(1, available_cores() // max(1, cfg.threads))


def layout(cfg, n_points: int) -> tuple[int, int]:
    """(local worker processes, torch threads per point) of a sweep of `n_points` points: no more workers than
    points, and the cores shared among them unless --threads says otherwise, so that a sweep of one point (or
    --workers 1) runs in this process on every core.  It depends on the configuration and the machine, not on how
    many points a resumed run still has to do: the same seed and --threads give the same numbers whatever --workers.
    On Dask the workers are the cluster's: one thread per point unless --threads says otherwise."""
    if cfg.dask:
        return 1, max(1, cfg.threads)
    workers = max(1, min(worker_count(cfg), n_points))
    return workers, cfg.threads or max(1, available_cores() // workers)


def check_executor(cfg) -> None:
    """Validation of --workers / --dask (called by SweepConfig.validate): one line, exit 2."""
    if cfg.workers < 0:
        raise ConfigError(f"--workers must be >= 0 (0: one per core), got {cfg.workers}")
    if cfg.dask:
        connect(cfg.dask).close()


def connect(address: str, as_default: bool = False):
    """A distributed.Client on the scheduler at `address`, or ConfigError."""
    from distributed import Client

    if "://" not in address and ":" not in address:
        raise ConfigError(f"--dask expects a scheduler address like tcp://host:8786, got {address!r}")
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=as_default)
    except (OSError, TimeoutError, ValueError) as error:
        raise ConfigError(f"--dask {address}: no Dask scheduler answers there ({type(error).__name__})") from None


class PointsFailed(SolverError):
    """Some points raised SolverError (a diverging run, a solver that did not converge); the others finished.
    `failures` maps their keys to the messages, `results` holds {key: rows} of every finished point."""

    def __init__(self, failures: dict, results: dict):
        super().__init__("; ".join(f"{key}: {message}" for key, message in failures.items()))
        self.failures, self.results = failures, results


def crash_once(marker: str, function: Callable, args: tuple):
    """function(*args), except that the first call (no file `marker` yet) kills its own process midway: how the
    tests and the benchmark check that a point whose worker dies is computed again elsewhere."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return function(*args)


def _guarded(function: Callable, args: tuple):
    """('rows', rows), or ('failed', message) for a SolverError: one failing point does not stop the others."""
    try:
        return "rows", function(*args)
    except SolverError as error:
        return "failed", str(error)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _start_worker(threads: int, parent: int) -> None:
    """Initializer of a pool worker: its torch threads, and a watcher that ends the worker once the process that
    started the sweep is gone (killed with `kill PID`, it cannot tell its workers; they would compute on for nothing)."""
    _set_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _call_with_threads(threads: int, function: Callable, args: tuple):
    _set_threads(threads)
    return _guarded(function, args)


def run_points(cfg, store: PointStore, points: Sequence[tuple[str, Callable, tuple]], desc: str = "points") -> dict:
    """Compute every point of `points` = [(key, function, args), ...] that `store` does not hold; returns
    {key: rows} for all of them (stored ones included).  Points that raise SolverError are not stored: once the
    others have finished, PointsFailed reports them (with the finished results)."""
    todo = [(key, function, args) for key, function, args in points if store.get(key) is None]
    (workers, threads), failures = layout(cfg, len(points)), {}

    def finish(key, outcome):
        kind, value = outcome
        if kind == "rows":
            store.put(key, value)
        else:
            failures[key] = value
        progress.update(1)

    with tqdm(total=len(points), initial=len(points) - len(todo), desc=desc, unit="point") as progress:
        if todo and cfg.dask:
            _run_on_dask(cfg.dask, todo, threads, finish)
        elif todo and workers > 1 and len(todo) > 1:
            _run_on_pool(min(workers, len(todo)), store, todo, threads, finish)
        else:
            _set_threads(threads)
            for key, function, args in todo:
                finish(key, _guarded(function, args))
    results = {key: store.get(key) for key, _, _ in points if store.get(key) is not None}
    if failures:
        raise PointsFailed(failures, results)
    return results


@contextlib.contextmanager
def _worker_environment(**variables: str):
    """Environment variables that the worker processes spawned meanwhile inherit (this process's are restored).
    OMP_WAIT_POLICY = PASSIVE: OpenMP threads that wait sleep instead of spinning (torch's and numba's OpenMP runtime
    reads it when a worker loads it, before any initializer); spinning threads of one worker take the cores the other
    workers compute on (docs/results.md §14)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_on_pool(workers: int, store: PointStore, todo, threads: int, finish) -> None:
    done = set()
    for attempt in range(RETRIES + 1):
        pending = [(key, function, args) for key, function, args in todo if key not in done]
        if not pending:
            return
        context = multiprocessing.get_context("spawn")
        try:
            with _worker_environment(OMP_WAIT_POLICY="PASSIVE"), concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=context, initializer=_start_worker, initargs=(threads, os.getpid())) as pool:
                futures = {pool.submit(_guarded, function, args): key for key, function, args in pending}
                for future in concurrent.futures.as_completed(futures):
                    finish(futures[future], future.result())
                    done.add(futures[future])
            return
        except concurrent.futures.process.BrokenProcessPool:
            if attempt == RETRIES:
                raise SolverError(f"worker processes kept dying ({RETRIES + 1} pools); finished points are stored")
            print(f"a worker process died: restarting the pool for the {len(pending) - len(done)} unfinished points",
                  file=sys.stderr)


def _run_on_dask(address: str, todo, threads: int, finish) -> None:
    """The scheduler reruns the task of a worker that dies (its `allowed-failures` setting, 3 by default)."""
    from distributed import as_completed

    client = connect(address, as_default=True)  # distributed.as_completed works on the default client
    try:
        futures = {client.submit(_call_with_threads, threads, function, args, key=f"{key}-{os.getpid()}",
                                 pure=False): key for key, function, args in todo}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    finally:
        client.close()


def sweep(cfg, stem: str, points: Sequence[tuple[str, Callable, tuple]], desc: str) -> tuple[list[dict], PointStore]:
    """`run_points` on the script's own resumable store (`.<stem>.points.jsonl` in out_dir, keyed by every setting
    that changes the numbers): the rows of every point in the order of `points`, and the store (close it once the
    outputs are written)."""
    store = sweep_store(cfg, stem)
    results = run_points(cfg, store, points, desc)
    return [row for key, _, _ in points for row in results[key]], store


@dataclasses.dataclass
class SweepConfig(BaseConfig):
    """The flags of a script whose independent points go to this executor."""

    workers: int = 0  # processes for the independent points of a sweep (default 0 = one per core at --threads each)
    dask: str = ""  # address of a Dask scheduler (tcp://host:8786): compute the points on that cluster
    run_only_fields: ClassVar[tuple[str, ...]] = (*BaseConfig.run_only_fields, "workers", "dask")

    def validate(self) -> None:
        super().validate()
        check_executor(self)
