"""What every json records about the run that wrote it: configuration, commit, package versions, wall time."""
from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

from harness.config import config_dict
from harness.paths import REPO_ROOT


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the code this process runs, read once at the first call (`run` calls it at start: edits made
    while a long run is going do not change what its json records); '-dirty' when code (not figures/) differs."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)figures"], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()  # results being written do not make the code dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + ("-dirty" if dirty else "")


def package_versions(names: Iterable[str] = ("numpy", "scipy", "torch", "torchvision", "matplotlib")) -> dict:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def recorded_path(value: str) -> str:
    """A path as a json records it: relative to the repository, or a placeholder for a folder outside it (a
    machine-specific location is not provenance)."""
    if not value:
        return value
    resolved = Path(value).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else "<outside the repository>"


def run_metadata(cfg, started: float, device: Any = "cpu", **extra) -> dict:
    """What every json carries: resolved config (paths relative to the repository), seed, commit, versions, device,
    wall time + extras."""
    config = {key: recorded_path(value) if key in cfg.path_fields else value for key, value in config_dict(cfg).items()}
    return {"config": config, "seed": cfg.seed, "git_commit": git_commit(),
            "versions": package_versions(), "device": str(device), "platform": platform.platform(),
            "wall_time_s": round(time.time() - started, 3), **extra}
