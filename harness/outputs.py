"""Result files written atomically (csv, json, text, figures) and read back; a crash never leaves half a file."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from harness.errors import ConfigError


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


def print_written(paths: Iterable[Path]) -> None:
    print("wrote:")
    for path in paths:
        print(f"  {path}")
