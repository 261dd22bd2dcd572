"""Smoke tests: every script of the repository runs in --quick mode on the CPU and writes finite results."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_in_process
from vcl_common import REPO_ROOT

SCRIPT_DIRS = ("single_layer", "mean_field_theory", "deep_networks", "benchmarks")


def discover_scripts() -> list[Path]:
    """Every file with a command line built by vcl_common.run (figure, experiment and benchmark scripts)."""
    scripts = []
    for folder in SCRIPT_DIRS:
        for path in sorted((REPO_ROOT / folder).glob("*.py")):
            text = path.read_text()
            if 'if __name__ == "__main__":' in text and "run(main" in text:
                scripts.append(path)
    return scripts


SCRIPTS = discover_scripts()


def run_script(script: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


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


def test_scripts_are_discovered():
    names = {path.name for path in SCRIPTS}
    assert {"fig2a_order_parameters.py", "fig1a_learning_curves.py", "fig2b_theory_vs_sgd.py"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_quick_run_writes_finite_outputs(script: Path, tmp_path: Path):
    result = run_script(script, "--quick", "--device", "cpu", "--out_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    for extension in ("png", "csv", "json"):
        assert list(tmp_path.glob(f"*.{extension}")), f"no .{extension} written by {script.name}"
    for csv_path in tmp_path.glob("*.csv"):
        assert finite_numbers(csv_path) > 0, f"{csv_path.name} is empty"
    for json_path in tmp_path.glob("*.json"):
        meta = json.loads(json_path.read_text())
        assert "config" in meta and "git_commit" in meta and "wall_time_s" in meta
    # --replot redraws from the raw data without recomputing
    for png in tmp_path.glob("*.png"):
        png.unlink()
    assert run_in_process(script, "--quick", "--replot", "--device", "cpu", "--out_dir", str(tmp_path)) == 0
    assert list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_help_and_unknown_flag(script: Path, tmp_path: Path, capsys):
    assert run_in_process(script, "--help") == 0
    assert "--quick" in capsys.readouterr().out
    assert run_in_process(script, "--no_such_flag", "1", "--out_dir", str(tmp_path)) == 2
    error = capsys.readouterr().err
    assert "unrecognized arguments" in error and len(error.strip().splitlines()) == 1  # one line, no usage block
    assert not any(tmp_path.iterdir()), "a rejected command line must not write anything"
