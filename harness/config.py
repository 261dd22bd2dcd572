"""`BaseConfig`: the hyperparameter dataclass that every script's `Config` extends (its fields become flags:
harness.command_line), with the validation every script shares."""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import ClassVar

from harness.devices import resolve_device
from harness.errors import ConfigError
from harness.paths import FIGURES_DIR, QUICK_DIR


@dataclasses.dataclass
class BaseConfig:
    """Flags shared by every script."""

    out_dir: str = ""  # output folder (default: figures/, or figures/quick/ with --quick)
    seed: int = 0  # base random seed; repetition k uses seed + k
    device: str = "auto"  # auto | cpu | cuda (auto picks CUDA when present)
    quick: bool = False  # smoke run: tiny sizes, few points (QUICK overrides of the script)
    replot: bool = False  # redraw the figure from the csv/json already in out_dir, compute nothing
    threads: int = 0  # torch CPU threads per point (default 0 = the cores shared among the points that run at once)
    run_only_fields: ClassVar[tuple[str, ...]] = ("out_dir", "replot", "device", "threads", "quick")  # not in numbers
    path_fields: ClassVar[tuple[str, ...]] = ("out_dir",)  # fields that hold machine paths (recorded relative)

    def validate(self) -> None:
        """Raise ConfigError on invalid values: the bounds declared with the fields (`bounded`), then the checks
        of the subclasses, which extend this method (call super().validate())."""
        check_bounds(self)
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu or cuda[:k], got {self.device!r}")
        if self.threads < 0:
            raise ConfigError(f"--threads must be >= 0 (0: the cores shared among the workers), got {self.threads}")
        if self.device.startswith("cuda"):
            resolve_device(self.device)  # refuses when no CUDA device is present
        require_writable_dir(self.output_dir, "--out_dir")

    @property
    def output_dir(self) -> Path:
        if self.out_dir:
            return Path(self.out_dir)
        return QUICK_DIR if self.quick else FIGURES_DIR


BOUNDS = {"at_least": (lambda value, bound: value >= bound, ">="), "above": (lambda value, bound: value > bound, ">"),
          "at_most": (lambda value, bound: value <= bound, "<="), "below": (lambda value, bound: value < bound, "<")}


def bounded(default, **bounds):
    """A config field with its admissible range declared beside it, e.g. `bounded(0.9, at_least=0, below=1)`
    (at_least, above, at_most, below); for a tuple every element must lie in the range."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise TypeError(f"unknown bounds {sorted(unknown)}; use {sorted(BOUNDS)}")
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def check_bounds(cfg) -> None:
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        for kind, bound in field.metadata.get("bounds", {}).items():
            test, relation = BOUNDS[kind]
            if not all(test(item, bound) for item in (value if isinstance(value, tuple) else (value,))):
                raise ConfigError(f"--{field.name} must be {relation} {bound}" + (" (every entry)" if
                                  isinstance(value, tuple) else "") + f", got {value}")


def require_writable_dir(path: Path, flag: str) -> None:
    """`path` is (or can be created as) a folder this process can write into: checked before anything is computed,
    by creating the missing folders and a probe file, then removing both (validation leaves nothing behind).
    Asking the file system rather than the permission bits also catches /proc, read-only mounts and root's view."""
    path = Path(path)
    existing = next(parent for parent in (path.absolute(), *path.absolute().parents) if parent.exists())
    if not existing.is_dir():
        raise ConfigError(f"{flag} {path}: {existing} is a file, not a folder")
    created = [folder for folder in (path.absolute(), *path.absolute().parents) if not folder.exists()]
    try:
        for folder in reversed(created):
            folder.mkdir()
        descriptor, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(f"{flag} {path}: cannot write there ({error.strerror or error})") from None
    finally:
        for folder in created:  # innermost first
            if folder.exists():
                folder.rmdir()


def config_dict(cfg) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(cfg).items()}
