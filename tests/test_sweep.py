"""The sweep executor on the real engines (no mocks): a local process pool and a Dask LocalCluster with two worker
processes give the csv of --workers 1, also when a worker process dies in the middle of a point."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conftest import run_in_process
from harness.command_line import parse_config
from harness.paths import REPO_ROOT
from harness.points import PointStore
from harness.sweep import crash_once, run_points
from single_layer import fig1a_learning_curves
from single_layer.one_task import learning_curves

FIG1A = REPO_ROOT / "single_layer" / "fig1a_learning_curves.py"
ARGS = ("--quick", "--device", "cpu", "--threads", "1", "--alphas", "0.5", "1.0", "1.5", "2.0")  # same threads: same bits


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local:
        yield local


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_worker")
    assert run_in_process(FIG1A, *ARGS, "--workers", "1", "--out_dir", str(out)) == 0
    return (out / "fig1a_learning_curves.csv").read_text()


def test_a_process_pool_gives_the_csv_of_one_worker(reference, tmp_path):
    assert run_in_process(FIG1A, *ARGS, "--workers", "2", "--out_dir", str(tmp_path)) == 0
    assert (tmp_path / "fig1a_learning_curves.csv").read_text() == reference


def test_a_dask_cluster_gives_the_csv_of_one_worker(cluster, reference, tmp_path):
    assert run_in_process(FIG1A, *ARGS, "--dask", cluster.scheduler_address, "--out_dir", str(tmp_path)) == 0
    assert (tmp_path / "fig1a_learning_curves.csv").read_text() == reference


@pytest.mark.parametrize("engine", ["pool", "dask"])
def test_a_worker_that_dies_mid_point_has_its_point_rerun(engine, cluster, tmp_path):
    cfg = parse_config(fig1a_learning_curves.Config, fig1a_learning_curves.QUICK,
                       [*ARGS, "--out_dir", str(tmp_path), "--workers", "2"]
                       + (["--dask", cluster.scheduler_address] if engine == "dask" else []))
    points = [(f"alpha={alpha!r}", learning_curves, (cfg, alpha, "cpu")) for alpha in cfg.alphas]
    expected = {key: function(*args) for key, function, args in points}
    marker = tmp_path / "crashed"
    dying = [(key, crash_once, (str(marker), function, args)) if index == 1 else (key, function, args)
             for index, (key, function, args) in enumerate(points)]
    store = PointStore(tmp_path, "demo", {"engine": engine})
    results = run_points(cfg, store, dying)
    assert marker.exists()  # a worker did die
    assert results == expected
    assert len(store.path.read_text().splitlines()) == 1 + len(points)  # every point stored once, none twice


def test_an_address_where_nothing_listens_is_refused(tmp_path, capsys):
    assert run_in_process(FIG1A, *ARGS, "--dask", "tcp://127.0.0.1:9", "--out_dir", str(tmp_path)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no Dask scheduler answers" in error[0] and not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags, message", [(["--workers", "0"], "--workers must be >= 1"),
                                            (["--workers", "-2"], "--workers must be >= 1"),
                                            (["--dask", "not an address"], "expects a scheduler address")])
def test_bad_executor_flags_are_refused_before_anything_is_written(flags, message, tmp_path, capsys):
    assert run_in_process(FIG1A, *ARGS, *flags, "--out_dir", str(tmp_path)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and not any(tmp_path.iterdir())


def test_the_workers_of_a_killed_sweep_end_with_it(tmp_path):
    """`kill -9` of the process that runs a sweep: its pool workers, busy with long points, end within seconds."""
    psutil = pytest.importorskip("psutil")
    script = ("import time, types\n"
              "from harness.points import PointStore\n"
              "from harness.sweep import run_points\n"
              "cfg = types.SimpleNamespace(workers=2, threads=1, dask='')\n"
              f"store = PointStore({str(tmp_path)!r}, 'sleepy', {{}})\n"
              "run_points(cfg, store, [(f'p{k}', time.sleep, (120,)) for k in range(2)])\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        deadline = time.time() + 60
        workers = []
        while time.time() < deadline and len(workers) < 2:  # the pool's workers (the resource tracker aside)
            workers = [child for child in psutil.Process(parent.pid).children()
                       if "resource_tracker" not in " ".join(child.cmdline())]
            time.sleep(0.5)
        assert len(workers) == 2
        parent.kill()
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers still running: {[process.pid for process in alive]}"
    finally:
        parent.kill()
