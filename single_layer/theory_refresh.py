"""--refresh_theory: a script recomputes its theory and keeps the simulation rows of the run already in out_dir."""
from __future__ import annotations

from typing import Sequence

from harness.config import config_dict
from harness.errors import ConfigError
from harness.outputs import read_csv, read_json


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
