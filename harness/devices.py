"""Torch devices, CPU threads and explicit random generators (never the global RNG)."""
from __future__ import annotations

import os

from harness.errors import ConfigError


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} requested but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_setup(cfg):
    """Set the torch CPU threads of this process (`--threads`, default every core; a sweep sets its points' own)
    and return the run's device."""
    import torch

    torch.set_num_threads(cfg.threads or available_cores())
    return resolve_device(cfg.device)


def torch_generator(seed: int, device=None):
    """An explicit torch.Generator (never the global RNG) on `device`."""
    import torch

    generator = torch.Generator(device=device if device is not None else "cpu")
    generator.manual_seed(int(seed))
    return generator
