"""Smoke tests: every script of the repository runs in --quick mode on the CPU and writes finite results."""
from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import make_figures
from conftest import check_quick_outputs, run_in_process
from harness.paths import REPO_ROOT

SCRIPT_DIRS = ("single_layer", "mean_field_theory", "deep_networks", "benchmarks")


def discover_scripts() -> list[Path]:
    """Every file with a command line built by harness.command_line.run (figure, experiment and benchmark scripts)."""
    scripts = []
    for folder in SCRIPT_DIRS:
        for path in sorted((REPO_ROOT / folder).glob("*.py")):
            text = path.read_text()
            if 'if __name__ == "__main__":' in text and "run(main" in text:
                scripts.append(path)
    return scripts


SCRIPTS = discover_scripts()
PLAN = {REPO_ROOT / job.command[0] for job in make_figures.JOBS if job.fast is not None}
SMOKE = [script for script in SCRIPTS if script not in PLAN]  # the plan's scripts: tests/test_make_figures.py


def run_script(script: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_scripts_are_discovered():
    names = {path.name for path in SCRIPTS}
    assert {"fig2a_order_parameters.py", "fig1a_learning_curves.py", "fig2b_theory_vs_sgd.py"} <= names
    assert PLAN <= set(SCRIPTS) and len(SMOKE) + len(PLAN) == len(SCRIPTS)


@pytest.mark.parametrize("script", SMOKE, ids=[f"{p.parent.name}/{p.name}" for p in SMOKE])
def test_quick_run_writes_finite_outputs(script: Path, tmp_path: Path):
    result = run_script(script, "--quick", "--device", "cpu", "--out_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    check_quick_outputs(script, tmp_path)


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_help_and_unknown_flag(script: Path, tmp_path: Path, capsys):
    assert run_in_process(script, "--help") == 0
    assert "--quick" in capsys.readouterr().out
    assert run_in_process(script, "--no_such_flag", "1", "--out_dir", str(tmp_path)) == 2
    error = capsys.readouterr().err
    assert "unrecognized arguments" in error and len(error.strip().splitlines()) == 1  # one line, no usage block
    assert not any(tmp_path.iterdir()), "a rejected command line must not write anything"


def test_a_field_redeclared_by_a_script_keeps_the_bounds_of_its_base():
    """Redeclaring a field replaces its metadata: a default changed without `bounded` would drop the range check."""
    for script in SCRIPTS:
        config = importlib.import_module(f"{script.parent.name}.{script.stem}").Config
        own = {field.name: field.metadata.get("bounds") for field in dataclasses.fields(config)}
        for base in config.__mro__[1:]:
            for field in dataclasses.fields(base) if dataclasses.is_dataclass(base) else ():
                assert own[field.name] == field.metadata.get("bounds", own[field.name]), (script.name, field.name)


def test_docs_hold_no_control_characters():
    """A LaTeX escape written through a non-raw Python string ("\\tag", "\\rho") leaves a tab, a carriage return or
    a bell in the text; the rendered equation is then garbage. Only newlines belong in the prose."""
    root = Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        bad = sorted({repr(c) for c in text if ord(c) < 32 and c != "\n"})
        assert not bad, f"{doc.name}: control characters {bad}"
