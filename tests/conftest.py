"""Helpers shared by several test modules (import them from here, not from another test module)."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import torch

from deep_networks import permuted_mnist
from deep_networks.continual import permuted_tasks, synthetic_dataset
from vcl_common import run, torch_generator

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
    """Exit code of the script's command line run in this interpreter (vcl_common.run, as `__main__` does)."""
    module = load_script(script)
    try:
        run(module.main, module.Config, getattr(module, "QUICK", None), argv=list(args))
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0
