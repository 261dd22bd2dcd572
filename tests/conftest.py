"""Helpers shared by several test modules (import them from here, not from another test module)."""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import torch

from deep_networks import permuted_mnist
from deep_networks.image_tasks import permuted_tasks, synthetic_dataset
from harness.command_line import run
from harness.devices import torch_generator

def pytest_configure(config):
    """Under pytest-xdist (pyproject: one worker per core), each worker keeps to cores of its own: the scripts a test
    runs size their torch threads and sweep workers by the cores they may use (harness.devices.available_cores), and
    without this two workers with two OpenMP threads each would share two cores and wait on each other's threads."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker and count > 1 and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) >= count:
            share = cores[int(worker.removeprefix("gw")) % count::count]
            os.sched_setaffinity(0, share)
            torch.set_num_threads(len(share))


TINY = {"n_tasks": 2, "epochs_per_task": 2, "n_train": 256, "hidden": (16, 16), "eval_images": 100,
        "diagnostic_modes": ("mean",), "quick": True, "workers": 1}


def tiny_tasks(n_tasks=2, seed=0):
    """Two synthetic permuted tasks of 256 training images."""
    base = synthetic_dataset(256, 100, torch_generator(seed), torch.float32, "cpu")
    return permuted_tasks(base, n_tasks, torch_generator(seed + 1))


def tiny_config(**overrides):
    """A permuted-MNIST configuration small enough for a unit test."""
    return dataclasses.replace(permuted_mnist.Config(), **{**TINY, **overrides})


def load_script(script: Path):
    """A script as a module (its `main`, `Config`, `QUICK`), without running it: by its package name where it has
    one (so that worker processes can import its functions), else from its file."""
    if (script.parent / "__init__.py").exists():
        return importlib.import_module(f"{script.parent.name}.{script.stem}")
    spec = importlib.util.spec_from_file_location(f"smoke_{script.parent.name}_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_in_process(script: Path, *args: str) -> int:
    """Exit code of the script's command line run in this interpreter (harness.command_line.run, as `__main__` does)."""
    module = load_script(script)
    try:
        run(module.main, module.Config, getattr(module, "QUICK", None), argv=list(args))
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def finite_numbers(csv_path: Path) -> int:
    """Number of rows; fails if a numeric cell is NaN/inf."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, cell in row.items():
            try:
                value = float(cell)
            except (TypeError, ValueError):
                continue
            assert math.isfinite(value), f"{csv_path.name}: column {key} holds {cell}"
    return len(rows)


def check_quick_outputs(script: Path, folder: Path) -> None:
    """What a --quick run of `script` must have left in `folder`: png, csv (non-empty, finite) and json (config,
    commit, wall time); and --replot redraws the figure from them without recomputing."""
    for extension in ("png", "csv", "json"):
        assert list(folder.glob(f"*.{extension}")), f"no .{extension} written by {script.name}"
    for csv_path in folder.glob("*.csv"):
        assert finite_numbers(csv_path) > 0, f"{csv_path.name} is empty"
    for json_path in folder.glob("*.json"):
        meta = json.loads(json_path.read_text())
        assert "config" in meta and "git_commit" in meta and "wall_time_s" in meta
    for png in folder.glob("*.png"):
        png.unlink()
    assert run_in_process(script, "--quick", "--replot", "--device", "cpu", "--out_dir", str(folder)) == 0
    assert list(folder.glob("*.png"))
