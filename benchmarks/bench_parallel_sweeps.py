"""Benchmark: the sweep executor (harness/sweep.py) — local process pool against one process, and the Dask overhead.

Measured side by side in one run, on the CPU:
1. a CPU-bound sweep (the Fig. 1a SGD learning curves at `alphas`, one point per α, one torch thread per point;
   nearly equal α, so that the points cost the same and the ratio measures the executor, not the load balance)
   with --workers 1 and with --workers `workers`: wall times and their ratio (the speed-up, pool start-up
   included), and whether the two csv rows are identical;
2. the fixed cost of starting a pool (spawning the processes, importing torch), apart;
3. the overhead per point of the Dask path: `overhead_points` points that do nothing on a LocalCluster of two
   worker processes, (wall time − nothing)/points, after the cluster has started (its start-up is reported apart).
Outputs: figures/bench_parallel_sweeps.{csv,json,png,pdf}.  Command: python benchmarks/bench_parallel_sweeps.py
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from benchmarks.common import benchmark_main
from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.errors import require
from harness.points import PointStore
from harness.sweep import run_points
from single_layer.one_task import Fig1aSGDConfig, learning_curves

STEM = "bench_parallel_sweeps"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    alphas: tuple[float, ...] = (1.5, 1.51, 1.52, 1.53, 1.54, 1.55, 1.56, 1.57)  # points of equal cost (Fig. 1a at α)
    n: int = bounded(1000, at_least=1)  # input dimension of the timed SGD
    trials: int = bounded(10, at_least=1)  # trials per point
    epochs: int = bounded(  # epochs per point (a sweep long enough that starting the pool is a small part of it)
        500, at_least=1)
    parallel_workers: int = bounded(2, at_least=2)  # processes of the parallel run
    overhead_points: int = bounded(200, at_least=1)  # empty points sent to the Dask cluster

    def validate(self):
        super().validate()
        require(len(self.alphas) >= 2, f"--alphas needs at least two values, got {self.alphas}")


QUICK = {"alphas": (1.0, 2.0), "n": 60, "trials": 2, "epochs": 5, "overhead_points": 10}


def nothing(index: int) -> list[dict]:
    return [{"index": index}]


def timed_sweep(cfg: Config, workers: int, folder: Path) -> tuple[float, dict]:
    sweep_cfg = dataclasses.replace(Fig1aSGDConfig(), n=cfg.n, trials=cfg.trials, epochs=cfg.epochs, workers=workers,
                                    threads=1, out_dir=str(folder))
    points = [(f"alpha={alpha!r}", learning_curves, (sweep_cfg, alpha, "cpu")) for alpha in cfg.alphas]
    started = time.perf_counter()
    results = run_points(sweep_cfg, PointStore(folder, f"workers{workers}", {}), points, desc=f"{workers} workers")
    return time.perf_counter() - started, results


def measure(cfg: Config) -> tuple[list[dict], dict]:
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as folder:
        serial, serial_rows = timed_sweep(cfg, 1, Path(folder))
        parallel, parallel_rows = timed_sweep(cfg, cfg.parallel_workers, Path(folder))
        pool_cfg = dataclasses.replace(Fig1aSGDConfig(), workers=cfg.parallel_workers)
        started = time.perf_counter()  # the fixed cost of a pool: spawn the processes, import torch, return
        run_points(pool_cfg, PointStore(Path(folder), "startup", {}),
                   [(f"empty {index}", nothing, (index,)) for index in range(cfg.parallel_workers)], desc="pool start")
        pool_startup = time.perf_counter() - started
        started = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster:
            startup = time.perf_counter() - started
            dask_cfg = dataclasses.replace(Fig1aSGDConfig(), dask=cluster.scheduler_address)
            points = [(f"empty {index}", nothing, (index,)) for index in range(cfg.overhead_points)]
            started = time.perf_counter()
            run_points(dask_cfg, PointStore(Path(folder), "dask", {}), points, desc="dask, empty points")
            dask_seconds = time.perf_counter() - started
    rows = [{"quantity": "sweep_seconds", "workers_1": serial, f"workers_{cfg.parallel_workers}": parallel},
            {"quantity": "dask_seconds_per_empty_point", "workers_1": "", f"workers_{cfg.parallel_workers}":
             dask_seconds / cfg.overhead_points}]
    summary = {"sweep_points": len(cfg.alphas), "sweep_seconds_workers_1": serial,
               f"sweep_seconds_workers_{cfg.parallel_workers}": parallel, "speedup": serial / parallel,
               "pool_startup_seconds": pool_startup, "speedup_after_pool_startup": serial / (parallel - pool_startup),
               "identical_rows": serial_rows == parallel_rows, "dask_cluster_startup_seconds": startup,
               "dask_overhead_seconds_per_point": dask_seconds / cfg.overhead_points,
               "dask_points": cfg.overhead_points}
    return rows, summary


def plot(rows):
    import matplotlib.pyplot as plt

    from harness.plotting import plot_style

    plot_style()
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    sweep = rows[0]
    labels = [key for key in sweep if key.startswith("workers_")]
    ax.bar([label.replace("_", " ") for label in labels], [sweep[label] for label in labels], color=["grey", "k"])
    ax.set(ylabel="wall time of the sweep (s)", title="Fig. 1a sweep, 1 torch thread per point")
    return fig


def main(cfg: Config):
    benchmark_main(cfg, STEM, measure, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
