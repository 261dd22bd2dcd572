"""Bad input ends with one line and exit code 2 before anything is computed or written; a corrupted store or
checkpoint is named with what to do; a diverging sweep keeps its finished rows and exits 3.  One test per class."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from deep_networks.image_tasks import load_dataset
from deep_networks.training import load_checkpoint
from conftest import run_in_process
from harness.errors import ConfigError
from harness.outputs import read_csv
from harness.paths import REPO_ROOT
from harness.points import PointStore

FIG2A = REPO_ROOT / "single_layer" / "fig2a_order_parameters.py"
FIG2B = REPO_ROOT / "single_layer" / "fig2b_theory_vs_sgd.py"


def test_an_out_dir_that_is_a_file_is_refused_before_computing(tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    for out_dir in (blocker, blocker / "below"):
        assert run_in_process(FIG2A, "--alphas", "0.5", "--out_dir", str(out_dir)) == 2
        assert "is a file, not a folder" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [blocker]


@pytest.mark.parametrize("out_dir", ["/proc/nowhere", "/proc/nowhere/below", "/sys/nowhere"])
def test_an_out_dir_the_system_refuses_is_refused_before_computing(out_dir, capsys):
    """A missing parent that cannot be made (/proc, /sys: no folders can be created there, not even by root)."""
    assert run_in_process(FIG2A, "--alphas", "0.5", "--out_dir", out_dir) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "cannot write there" in error[0]


def test_a_read_only_out_dir_is_refused_before_computing(tmp_path):
    """A 0o555 folder, read-only for its owner.  Root writes there anyway, so under root the script runs without the
    capabilities that override file permissions (util-linux `setpriv`)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]
    try:
        result = subprocess.run([*prefix, sys.executable, str(FIG2A), "--alphas", "0.5", "--out_dir",
                                 str(locked / "out")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "cannot write there" in result.stderr and not any(locked.iterdir())


def test_checking_an_out_dir_that_is_missing_leaves_nothing_behind(tmp_path, capsys):
    """Missing parents are created by a run; a run refused for another reason leaves no folder behind."""
    out_dir = tmp_path / "a" / "b" / "c"
    assert run_in_process(FIG2A, "--alphas", "-1", "--out_dir", str(out_dir)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_a_device_is_refused_even_by_a_theory_script(tmp_path, capsys):
    assert run_in_process(FIG2A, "--device", "cuda", "--out_dir", str(tmp_path)) == 2
    assert "no CUDA device" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_store_lines_of_the_wrong_shape_are_skipped_and_a_cut_line_is_repaired(tmp_path, capsys):
    store = PointStore(tmp_path, "demo", {"a": 1})
    store.put("first", [{"x": 1.0}])
    with open(store.path, "a") as handle:  # valid JSON of the wrong shape, then a line cut mid-write
        handle.write(json.dumps({"rows": 3}) + "\n" + json.dumps([1, 2]) + "\n" + '{"key": "second", "ro')
    reopened = PointStore(tmp_path, "demo", {"a": 1})
    assert reopened.get("first") == [{"x": 1.0}] and reopened.get("second") is None
    assert capsys.readouterr().err.count("warning:") == 3
    reopened.put("third", [{"x": 3.0}])  # appended on a line of its own, so it survives the next resume
    assert PointStore(tmp_path, "demo", {"a": 1}).get("third") == [{"x": 3.0}]


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", None])
def test_an_unreadable_checkpoint_stops_resume_with_its_name(tmp_path, content):
    path = tmp_path / "run_vcl_seed0.pt"
    if content is None:  # a real checkpoint cut in half
        torch.save({"fingerprint": {}, "rows": list(range(1000))}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"{path.name}.*unreadable.*delete it"):
        load_checkpoint(path, "cpu")


def test_a_truncated_dataset_file_is_reported_as_corrupt_not_missing(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)  # a header, then nothing
    with pytest.raises(ConfigError, match="truncated or corrupt"):
        load_dataset("mnist", tmp_path, 100, torch.float32, "cpu")


def test_make_figures_refuses_an_unknown_job():
    result = subprocess.run([sys.executable, "make_figures.py", "--only", "figZZ"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown job figZZ" in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_diverging_sweep_keeps_its_finished_rows_and_exits_3(tmp_path, capsys):
    code = run_in_process(FIG2B, "--quick", "--device", "cpu", "--learning_rates", "0.008", "1e9",
                          "--check_betas", "20", "--out_dir", str(tmp_path))
    assert code == 3 and "diverged at alpha=1.0" in capsys.readouterr().err
    sgd = [row for row in read_csv(tmp_path / "fig2b_theory_vs_sgd.csv") if row["source"] == "sgd"]
    assert {row["alpha"] for row in sgd if row["converged"]} == {0.5}
    assert [row["alpha"] for row in sgd if not row["converged"]] == [1.0]


def test_a_transition_that_cannot_be_located_is_reported_not_guessed(tmp_path, monkeypatch, capsys):
    from mean_field_theory import forgetting_phase_diagram as fpd
    from harness.command_line import run
    from harness.errors import SolverError
    from harness.outputs import read_json

    def coexistence(family, *args, **kwargs):  # the solver loses a branch at one point, finds one branch at the other
        if family.task.gamma == 0.1:
            raise SolverError("gamma=0.1, r0=0.0: the poor branch was lost at alpha=1.79")
        return dict.fromkeys(fpd.ENDS), [], {"kind": "one branch", "isola_check": True}

    monkeypatch.setattr(fpd, "coexistence", coexistence)
    with pytest.raises(SystemExit) as stop:
        run(fpd.main, fpd.Config, fpd.QUICK, argv=["--gammas", "0.1", "0.2", "--r0s", "0", "--no-critical",
                                                     "--workers", "1", "--out_dir", str(tmp_path)])
    assert stop.value.code == 3 and "not located at gamma=0.1 r0=0" in capsys.readouterr().err
    per_point = read_json(tmp_path / "forgetting_phase_diagram.json")["per_point"]
    assert per_point["gamma=0.1 r0=0"]["kind"] == "not located" and "lost" in per_point["gamma=0.1 r0=0"]["reason"]
    assert per_point["gamma=0.2 r0=0"]["kind"] == "one branch"
    assert len(read_csv(tmp_path / "forgetting_phase_diagram.csv")) == 3  # every point written, γ = 1 too
    assert (tmp_path / "forgetting_phase_diagram.png").exists()


def test_a_trade_off_chain_that_stops_early_is_kept_and_exits_3(tmp_path, monkeypatch, capsys):
    from single_layer import chain_tradeoff
    from harness.command_line import run

    def theory_point(n_tasks, alpha, r0, gamma, beta, tol):  # the chain stops after task 1 of 2
        rows = [{"task_trained": 1, "task_eval": 1, "alpha": alpha, "r0": r0, "gamma": gamma, "eps_g": 0.3,
                 "thermodynamic": True, "converged": True}]
        return [chain_tradeoff.final_row(rows, n_tasks, source="theory", seed="")]

    monkeypatch.setattr(chain_tradeoff, "theory_point", theory_point)
    with pytest.raises(SystemExit) as stop:
        run(chain_tradeoff.main, chain_tradeoff.Config, chain_tradeoff.QUICK,
            argv=["--quick", "--theory_only", "--workers", "1", "--out_dir", str(tmp_path)])
    assert stop.value.code == 3 and "did not reach its last task" in capsys.readouterr().err
    rows = read_csv(tmp_path / "chain_tradeoff.csv")
    assert len(rows) == 1 and not rows[0]["converged"]
