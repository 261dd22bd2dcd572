"""Shared plumbing for every script of this repository (no physics here).

* ``BaseConfig`` + ``run``: a hyperparameter dataclass becomes a command line.  Every field is a flag
  (``--alpha1 1.5``; tuples take several values, ``--alphas 0.5 1.0``; booleans are ``--flag/--no-flag``),
  the trailing ``# comment`` of each field is its ``--help`` text, ``--quick`` applies the script's QUICK
  overrides before the explicit flags, and invalid values stop the script with exit code 2 before anything
  is written.
* seeding (explicit generators), device selection (``--device auto``), dataset root resolution,
* atomic writing of csv/json/png/pdf, the run metadata stored in every json, a resumable point store for
  long sweeps, and the plot style.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import importlib.metadata
import inspect
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent
FIGURES_DIR = REPO_ROOT / "figures"
QUICK_DIR = FIGURES_DIR / "quick"
DATA_ENV_VAR = "VCL_DATA_ROOT"


class ConfigError(ValueError):
    """Invalid user input (hyperparameter, flag, missing dataset...). Scripts exit with code 2."""


class SolverError(RuntimeError):
    """A numerical procedure failed (no convergence, divergence). Scripts exit with code 3."""


# ----------------------------------------------------------------------------- configuration / CLI
@dataclasses.dataclass
class BaseConfig:
    """Flags shared by every script."""

    out_dir: str = ""  # output folder (default: figures/, or figures/quick/ with --quick)
    seed: int = 0  # base random seed; repetition k uses seed + k
    device: str = "auto"  # auto | cpu | cuda (auto picks CUDA when present)
    quick: bool = False  # smoke run: tiny sizes, few points (QUICK overrides of the script)
    replot: bool = False  # redraw the figure from the csv/json already in out_dir, compute nothing
    workers: int = 0  # processes for the independent points of a sweep (default 0 = one per core at --threads each)
    threads: int = 0  # torch CPU threads per point (default 0 = the cores shared among the points that run at once)
    dask: str = ""  # address of a Dask scheduler (tcp://host:8786): compute the points on that cluster

    def validate(self) -> None:
        """Raise ConfigError on invalid values. Subclasses extend it (call super().validate())."""
        from vcl_sweep import check_executor

        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu or cuda[:k], got {self.device!r}")
        check_executor(self)
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


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds (used in Config.validate)."""
    if not condition:
        raise ConfigError(message)


def _field_comments(cls: type) -> dict[str, str]:
    """Trailing '# comment' of each dataclass field, read from the class source (used as --help)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = re.match(r"\s*(\w+)\s*:[^#]*#\s*(.*)$", line)
            if match:
                comments[match.group(1)] = match.group(2).strip()
    return comments


def _scalar_parser(kind: type, name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name} expects {kind.__name__}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"--{name} must be finite, got {text!r}")
        return value

    return parse


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors print one line (the usage block only with --help) and exit with code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser(config_cls: type, description: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrors(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False, argument_default=argparse.SUPPRESS)
    hints = typing.get_type_hints(config_cls)
    comments = _field_comments(config_cls)
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = comments.get(field.name, "") + f" (default: {default})"
        flag = f"--{field.name}"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            parser.add_argument(flag, nargs="+", type=_scalar_parser(element, field.name),
                                metavar=element.__name__.upper(), help=help_text)
        else:
            parser.add_argument(flag, type=_scalar_parser(kind, field.name), metavar=kind.__name__.upper(),
                                help=help_text)
    return parser


def parse_config(config_cls: type, quick: dict | None = None, argv: Sequence[str] | None = None,
                 description: str | None = None):
    """Command line -> validated config. QUICK overrides come first, explicit flags win.

    Invalid input ends the program with a one-line message and exit code 2 (argparse convention)."""
    parser = build_parser(config_cls, description)
    explicit = vars(parser.parse_args(argv))
    if explicit.get("workers", 1) < 1:  # 0 is the default's "one per core", not something to ask for
        parser.error(f"--workers must be >= 1, got {explicit['workers']} (leave it out for one per core)")
    overrides = {"workers": 1, **(quick or {})} if explicit.get("quick") else {}  # smoke runs: no process pool
    overrides.update({key: tuple(value) if isinstance(value, list) else value for key, value in explicit.items()})
    try:
        cfg = dataclasses.replace(config_cls(), **overrides)
        cfg.validate()
    except ConfigError as error:
        parser.error(str(error))
    return cfg


def run(main: Callable[[Any], Any], config_cls: type, quick: dict | None = None,
        argv: Sequence[str] | None = None) -> None:
    """Entry point of every script: parse the flags, run main(cfg), turn known errors into clear messages."""
    cfg = parse_config(config_cls, quick, argv, description=sys.modules[main.__module__].__doc__)
    git_commit()  # the code this run starts with
    try:
        main(cfg)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except SolverError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(3) from None


def config_dict(cfg) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(cfg).items()}


# ----------------------------------------------------------------------------- seeds, device, data
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


def data_root(explicit: str | None = None) -> Path:
    """Dataset folder: --data_root if given, else $VCL_DATA_ROOT, else <repo>/data (where torchvision may download).
    A folder named by the user must exist: nothing is created in it."""
    for source, value in (("--data_root", explicit), (f"${DATA_ENV_VAR}", os.environ.get(DATA_ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise ConfigError(f"{source} {path} is not an existing folder")
            return path
    return REPO_ROOT / "data"


# ----------------------------------------------------------------------------- writing results
def _atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb" if binary else "w", newline=None if binary else "") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary files
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays -> JSON-able python values."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    return value


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> Path:
    """Tidy csv (one row per point), written atomically. Floats keep full precision (repr)."""
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
        for row in rows:
            columns += [key for key in row if key not in columns]

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_value(row.get(key, "")) for key in columns})

    _atomic_write(Path(path), write)
    return Path(path)


def _csv_value(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float):
        return repr(value)
    return value


def read_csv(path: Path) -> list[dict]:
    """Read a csv written by write_csv; numeric-looking fields become int/float, 'True'/'False' bools."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: run the script without --replot first")
    with open(path, newline="") as handle:
        return [{key: _parse_cell(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _parse_cell(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def write_json(path: Path, payload: dict) -> Path:
    _atomic_write(Path(path), lambda handle: json.dump(_plain(payload), handle, indent=2, sort_keys=False))
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    _atomic_write(Path(path), lambda handle: handle.write(text))
    return Path(path)


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: run the script without --replot first")
    return json.loads(path.read_text())


def save_figure(fig, out_dir: Path, stem: str, formats: Iterable[str] = ("png", "pdf")) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    for extension in formats:
        path = Path(out_dir) / f"{stem}.{extension}"
        buffer = io.BytesIO()
        fig.savefig(buffer, format=extension, dpi=150, bbox_inches="tight")
        _atomic_write(path, lambda handle: handle.write(buffer.getvalue()), binary=True)
        paths.append(path)
    plt.close(fig)
    return paths


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


PATH_FIELDS = ("out_dir", "data_root", "snapshot_dir")  # config fields that hold machine paths


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
    config = {key: recorded_path(value) if key in PATH_FIELDS else value for key, value in config_dict(cfg).items()}
    return {"config": config, "seed": cfg.seed, "git_commit": git_commit(),
            "versions": package_versions(), "device": str(device), "platform": platform.platform(),
            "wall_time_s": round(time.time() - started, 3), **extra}


def print_written(paths: Iterable[Path]) -> None:
    print("wrote:")
    for path in paths:
        print(f"  {path}")


def _store_entry(line: str) -> dict | None:
    """A stored point {"key": str, "rows": [dict, ...]}, or None for anything else."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    if (isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(entry.get("rows"), list)
            and all(isinstance(row, dict) for row in entry["rows"])):
        return entry
    return None


class PointStore:
    """Resumable store of finished sweep points: one json line per point, appended and fsync'ed.

    A sweep asks `store.get(key)` before computing a point and `store.put(key, rows)` after; an interrupted
    run restarts where it stopped.  The file remembers the configuration that produced it: if that changes,
    the old points are discarded.  `close()` removes the file once the final outputs are written."""

    def __init__(self, out_dir: Path, stem: str, fingerprint: dict):
        self.path = Path(out_dir) / f".{stem}.points.jsonl"
        self.fingerprint = json.dumps(_plain(fingerprint), sort_keys=True)
        self.points: dict[str, list[dict]] = {}
        if self.path.exists():
            text = self.path.read_text(errors="replace")
            lines = text.splitlines()
            if lines and lines[0] == self.fingerprint:
                for number, line in enumerate(lines[1:], start=2):
                    entry = _store_entry(line)
                    if entry is None:
                        print(f"warning: {self.path} line {number} is not a stored point (cut short by an "
                              f"interruption?); that point will be recomputed", file=sys.stderr)
                        continue
                    self.points[entry["key"]] = entry["rows"]
                if not text.endswith("\n"):  # the last line was cut mid-write: end it before appending
                    with open(self.path, "a") as handle:
                        handle.write("\n")
        if not self.points:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.fingerprint + "\n")

    def __len__(self) -> int:
        return len(self.points)

    def get(self, key: str) -> list[dict] | None:
        return self.points.get(key)

    def put(self, key: str, rows: list[dict]) -> None:
        self.points[key] = _plain(rows)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"key": key, "rows": self.points[key]}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def fetch(self, key: str, compute: Callable[[], list[dict]]) -> list[dict]:
        """The rows of point `key`: stored ones if it is finished, else compute(), store and return them."""
        if self.get(key) is None:
            self.put(key, compute())
        return self.get(key)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def relative_error_bars(rows: Sequence[dict], series: dict[str, str]):
    """Benchmark figure: per quantity (row), log-scale bars of |row[key]| / |row["quadrature"]| for every key of
    `series` (key → legend label)."""
    import matplotlib.pyplot as plt

    plot_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    positions, width = np.arange(len(rows)), 0.8 / len(series)
    for index, (key, label) in enumerate(series.items()):
        ax.bar(positions + width * (index - (len(series) - 1) / 2), width=width, label=label,
               height=[max(abs(row[key]) / abs(row["quadrature"]), 1e-17) for row in rows])
    ax.set_xticks(positions, [row["quantity"] for row in rows], rotation=30)
    ax.set(yscale="log", ylabel="relative to the quadrature value")
    ax.legend(fontsize=7)
    return fig


def benchmark_main(cfg, stem: str, measure: Callable[[Any], tuple[list[dict], dict]],
                   plot: Callable[[list[dict]], Any]) -> None:
    """The main of a benchmark: `measure(cfg)` → (rows, summary) unless --replot, then csv + json (summary and run
    metadata), the summary printed, and the figure drawn from the csv."""
    out_dir, started = cfg.output_dir, time.time()
    if not cfg.replot:
        rows, summary = measure(cfg)
        write_csv(out_dir / f"{stem}.csv", rows)
        write_json(out_dir / f"{stem}.json", run_metadata(cfg, started, "cpu", summary=summary))
    for key, value in read_json(out_dir / f"{stem}.json")["summary"].items():
        print(f"{key:48s} {value}")
    paths = save_figure(plot(read_csv(out_dir / f"{stem}.csv")), out_dir, stem)
    print_written([out_dir / f"{stem}.csv", out_dir / f"{stem}.json", *paths])


RUN_ONLY_FIELDS = ("out_dir", "replot", "device", "threads", "quick", "refresh_theory", "workers",
                   "dask")  # settings that do not change the numbers of a run


def kept_sgd_rows(cfg, stem: str, fields: Sequence[str]) -> tuple[list[dict], dict]:
    """--refresh_theory (the theory changed, the simulations did not): every simulation row (any source but
    "theory": "sgd", "sgd_slow", ...) of the csv already in out_dir and the json of the run that made them.
    Refused (exit 2) when that run's values of `fields`, the settings its SGD points depend on, differ from this
    configuration's."""
    previous = read_json(cfg.output_dir / f"{stem}.json")
    current = config_dict(cfg)
    changed = [key for key in fields if previous["config"].get(key) != current[key]]
    if changed:
        raise ConfigError(f"--refresh_theory: the SGD rows in {cfg.output_dir / stem}.csv were made with other "
                          f"{', '.join(changed)}; pass the same values or rerun the simulations")
    return [row for row in read_csv(cfg.output_dir / f"{stem}.csv") if row["source"] != "theory"], previous


def provenance_of(previous: dict) -> dict:
    """Where rows taken over from an earlier run were computed: that run's commit and wall time, or, if it took
    them over itself, its own record of where they came from."""
    return previous.get("sgd_rows_from") or {"git_commit": previous.get("git_commit"),
                                             "wall_time_s": previous.get("wall_time_s")}


def sweep_store(cfg, stem: str, **extra) -> PointStore:
    """The resumable store of a script's sweep, keyed by every config field that changes the numbers (and `extra`,
    e.g. the numerics version of a theory sweep)."""
    return PointStore(cfg.output_dir, stem, {**extra, **{key: value for key, value in config_dict(cfg).items()
                                                         if key not in RUN_ONLY_FIELDS}})


# ----------------------------------------------------------------------------- plotting
def plot_by_stability(ax, points, style: str = "-", label: str | None = None, **kwargs) -> None:
    """A theory curve from (x, y, rs_stable) points: RS-stable stretches drawn plainly, RS-unstable ones (replicon
    λ_R ≥ 1) thin and faded; consecutive stretches share their end point so the curve stays connected."""
    runs = []
    for x, y, stable in sorted(points):
        stable = stable is not False  # rows written before the replicon existed have no flag: drawn plainly
        if runs and runs[-1][0] == stable:
            runs[-1][1].append((x, y))
        else:
            runs.append((stable, ([runs[-1][1][-1]] if runs else []) + [(x, y)]))
    for index, (stable, run) in enumerate(runs):
        ax.plot(*zip(*run), style, lw=1.5 if stable else 0.7, alpha=1.0 if stable else 0.45,
                label=label if index == 0 else None, **kwargs)


def plot_style() -> None:
    """One look for every figure (headless backend, paper-like sizes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.figsize": (4.8, 3.6), "figure.dpi": 110, "font.size": 10, "axes.labelsize": 11,
        "legend.fontsize": 8, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
        "lines.linewidth": 1.5, "lines.markersize": 4, "errorbar.capsize": 2, "savefig.bbox": "tight",
    })
