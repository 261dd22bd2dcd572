"""The shared plumbing: config -> CLI, atomic outputs, resumable point store."""
from __future__ import annotations

import dataclasses

import pytest

from harness.command_line import parse_config
from harness.config import BaseConfig
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
