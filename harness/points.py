"""The resumable store of a sweep's finished points (one json line per point, appended and fsync'ed)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from harness.config import config_dict
from harness.outputs import _plain


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


def sweep_store(cfg, stem: str, **extra) -> PointStore:
    """The resumable store of a script's sweep, keyed by every config field that changes the numbers (and `extra`,
    e.g. the numerics version of a theory sweep)."""
    return PointStore(cfg.output_dir, stem, {**extra, **{key: value for key, value in config_dict(cfg).items()
                                                         if key not in cfg.run_only_fields}})
