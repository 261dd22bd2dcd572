"""The shared plumbing: config -> CLI, atomic outputs, resumable point store."""
from __future__ import annotations

import dataclasses

import pytest

from harness.command_line import parse_config
from harness.config import BaseConfig, bounded
from harness.errors import ConfigError, require
from harness.outputs import read_csv, write_csv
from harness.points import PointStore


@dataclasses.dataclass
class DemoConfig(BaseConfig):
    alpha: float = 2.0  # data density (α)
    alphas: tuple[float, ...] = (0.5, 1.0)  # grid of α
    epochs: int = 10  # training epochs
    theory_only: bool = False  # skip SGD

    def validate(self):
        super().validate()
        require(self.alpha > 0, f"--alpha must be > 0, got {self.alpha}")


QUICK = {"epochs": 2, "alphas": (1.0,)}


@dataclasses.dataclass
class BoundedConfig(BaseConfig):
    momentum: float = bounded(0.9, at_least=0, below=1)  # heavy-ball momentum (μ)
    r0s: tuple[float, ...] = bounded((0.0, 0.5), at_least=-1, at_most=1)  # teacher overlaps (r₀)


@pytest.mark.parametrize("argv, message", [(["--momentum", "1"], "--momentum must be < 1, got 1.0"),
                                           (["--momentum", "-0.1"], "--momentum must be >= 0"),
                                           (["--r0s", "0", "1.5"], "--r0s must be <= 1 (every entry)")])
def test_bounds_declared_with_the_fields_are_checked(argv, message, capsys):
    assert parse_config(BoundedConfig, {}, ["--momentum", "0", "--r0s", "-1", "1"]).r0s == (-1.0, 1.0)  # ends admitted
    with pytest.raises(SystemExit) as stop:
        parse_config(BoundedConfig, {}, argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(TypeError):
        bounded(1.0, greater=0)  # a misspelt bound is refused when the class is defined


def test_defaults_quick_and_explicit_flags():
    assert parse_config(DemoConfig, QUICK, []).epochs == 10
    cfg = parse_config(DemoConfig, QUICK, ["--quick", "--alphas", "0.1", "0.2", "--theory_only"])
    assert cfg.epochs == 2 and cfg.alphas == (0.1, 0.2) and cfg.theory_only and cfg.quick
    assert parse_config(DemoConfig, QUICK, ["--quick", "--epochs", "7"]).epochs == 7  # explicit wins


def test_help_uses_field_comments(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_config(DemoConfig, QUICK, ["--help"])
    assert stop.value.code == 0
    assert "data density (α)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--alpha", "-1"], ["--alpha", "abc"], ["--alpha", "nan"], ["--bogus"],
                                  ["--device", "tpu"], ["--epochs", "1.5"]])
def test_bad_input_exits_with_code_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_config(DemoConfig, QUICK, argv)
    assert stop.value.code == 2
    assert "error" in capsys.readouterr().err


def test_csv_round_trip_keeps_full_precision(tmp_path):
    rows = [{"alpha": 0.1 + 0.2, "branch": "good", "converged": True, "n": 3}]
    path = write_csv(tmp_path / "x.csv", rows)
    assert read_csv(path) == rows
    assert not list(tmp_path.glob("*.tmp"))


def test_point_store_resumes_and_resets_on_new_config(tmp_path):
    store = PointStore(tmp_path, "demo", {"beta": 20})
    store.put("a=1", [{"q": 0.5}])
    assert PointStore(tmp_path, "demo", {"beta": 20}).get("a=1") == [{"q": 0.5}]
    assert PointStore(tmp_path, "demo", {"beta": 5}).get("a=1") is None
    with pytest.raises(ConfigError):
        read_csv(tmp_path / "missing.csv")


def test_results_are_ordinary_readable_files(tmp_path):
    path = write_csv(tmp_path / "x.csv", [{"a": 1}])
    assert path.stat().st_mode & 0o044 == 0o044  # group/other can read, unlike mkstemp's 0600


def test_refresh_theory_keeps_every_simulation_row(tmp_path):
    """--refresh_theory replaces the theory rows only: rows of any other source ("sgd", "sgd_slow", ...) are kept,
    and a run made with other simulation settings is refused."""
    from harness.config import config_dict
    from harness.outputs import write_json
    from single_layer.theory_refresh import kept_sgd_rows

    cfg = parse_config(DemoConfig, QUICK, ["--out_dir", str(tmp_path)])
    rows = [{"source": "theory", "q": 0.1}, {"source": "sgd", "q": 0.2}, {"source": "sgd_slow", "q": 0.3}]
    write_csv(tmp_path / "demo.csv", rows)
    write_json(tmp_path / "demo.json", {"config": config_dict(cfg)})
    kept, _ = kept_sgd_rows(cfg, "demo", ["epochs"])
    assert kept == rows[1:]
    with pytest.raises(ConfigError):
        kept_sgd_rows(parse_config(DemoConfig, QUICK, ["--out_dir", str(tmp_path), "--epochs", "3"]), "demo",
                      ["epochs"])


@pytest.mark.parametrize("converged", [True, False])
def test_figure_main_writes_then_draws_from_the_files_and_keeps_the_points_of_a_failed_run(tmp_path, converged):
    from harness.errors import SolverError
    from harness.figure import Computed, figure_main
    from harness.outputs import read_json

    drawn = []

    def compute(cfg):
        store = PointStore(cfg.output_dir, "demo", {"alpha": cfg.alpha})
        store.put("alpha=2", [{"alpha": cfg.alpha, "converged": converged}])
        return Computed({"rows": store.get("alpha=2"), "curves": [{"x": 0.5}]}, {"note": "kept"}, stores=[store])

    def draw(cfg, tables, record):
        import matplotlib.pyplot as plt

        drawn.append((tables, record["note"]))
        return plt.figure()

    def failure(tables, record):
        return None if tables["rows"][0]["converged"] else "did not converge at alpha = 2"

    cfg = DemoConfig(out_dir=str(tmp_path))
    runs = [cfg, dataclasses.replace(cfg, replot=True)]
    for run_cfg in runs:
        if converged:
            figure_main(run_cfg, "demo", compute, draw, failure, tables=("rows", "curves"))
        else:
            with pytest.raises(SolverError, match="did not converge"):
                figure_main(run_cfg, "demo", compute, draw, failure, tables=("rows", "curves"))
    assert read_csv(tmp_path / "demo_curves.csv") == [{"x": 0.5}] and read_json(tmp_path / "demo.json")["note"] == "kept"
    assert drawn[0] == drawn[1] and drawn[0][0]["rows"] == [{"alpha": 2.0, "converged": converged}]
    assert (tmp_path / "demo.png").exists() and (tmp_path / ".demo.points.jsonl").exists() is not converged
