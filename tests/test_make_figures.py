"""The README's main command: `make_figures.py` runs its whole fast plan (here as smoke runs), finds every job's
outputs where the job writes them, compares each csv with the committed one and ends with its summary table."""
from __future__ import annotations

import subprocess
import sys

import pytest

import make_figures
from conftest import check_quick_outputs
from harness.paths import REPO_ROOT


FAST = [job for job in make_figures.JOBS if job.fast is not None]
HALVES = [FAST[0::2], FAST[1::2]]  # the whole plan in two runs that pytest-xdist can give to two workers


@pytest.mark.slow
@pytest.mark.parametrize("jobs", HALVES, ids=["first-half", "second-half"])
def test_the_fast_plan_runs_end_to_end_and_ends_with_its_summary(jobs, tmp_path):
    """Also the smoke test of the plan's scripts (finite outputs, --replot): tests/test_scripts.py runs the others."""
    result = subprocess.run([sys.executable, "make_figures.py", "--quick", "--out_dir", str(tmp_path), "--only",
                             *(job.name for job in jobs)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = result.stdout.split("\nsummary\n")[1].splitlines()[1:]
    assert [line.split()[0] for line in summary] == [job.name for job in jobs]
    for job, line in zip(jobs, summary):
        assert line.split()[1] == "ok"
        figure = tmp_path / job.name / f"{job.stem.split('/')[-1]}.png"
        assert figure.exists() and figure.name in line
        assert "rows" in line or "no committed csv" in line  # the comparison ran (quick grids may match no row)
        check_quick_outputs(REPO_ROOT / job.command[0], tmp_path / job.name)


def test_the_two_halves_are_the_whole_plan():
    assert sorted(job.name for half in HALVES for job in half) == sorted(job.name for job in FAST)


def test_an_out_dir_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    result = subprocess.run([sys.executable, "make_figures.py", "--quick", "--out_dir", str(tmp_path / "file")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_job_that_exits_non_zero_is_a_row_of_the_summary_and_the_plan_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make_figures, "run_job", lambda job, flags, env, log: (3, 1.0, "error: it broke")
                        if job.name == "fig2a" else (0, 1.0, ""))
    monkeypatch.setattr(sys, "argv", ["make_figures.py", "--quick", "--only", "fig2a", "classical", "--out_dir",
                                      str(tmp_path)])
    assert make_figures.main() == 1
    summary = capsys.readouterr().out.split("\nsummary\n")[1].splitlines()[1:]
    assert summary[0].split()[:3] == ["fig2a", "exit", "3"] and summary[1].split()[:2] == ["classical", "ok"]
    assert "error: it broke" in summary[0] and "logs/fig2a.log" in summary[0]


def test_a_job_keeps_its_stderr_in_a_log_and_passes_it_through(tmp_path, capfd):
    """A real child process: its stderr (a progress bar with carriage returns, then an error) reaches our stderr and
    the log; the last line comes back for the summary."""
    script = tmp_path / "failing.py"
    script.write_text("import sys\nsys.stderr.write('step 1\\rstep 2\\n')\nsys.stderr.write('error: no data\\n')\n"
                      "raise SystemExit(3)\n")
    job = make_figures.Job("failing", "a job that fails", [str(script)], "seconds", "failing")
    code, _, last_line = make_figures.run_job(job, [], dict(make_figures.os.environ), tmp_path / "logs" / "f.log")
    assert code == 3 and last_line == "error: no data"
    assert "error: no data" in capfd.readouterr().err
    assert (tmp_path / "logs" / "f.log").read_bytes() == b"step 1\rstep 2\nerror: no data\n"


def test_the_readme_table_quotes_the_plan():
    """Every job of make_figures.JOBS has its row in the README's figure table with the same command and runtime
    (footnote marks aside); the jobs that share one templated row (finite-size runs, chains, benchmarks) excepted."""
    import re

    rows = {}
    for line in (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and "`python " in line:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[re.search(r"`(python [^`]*)`", cells[1]).group(1)] = cells[2].rstrip(" †‡")
    grouped = ("fig3_n", "fig2b_n", "chain_alpha", "bench_")
    for job in make_figures.JOBS:
        if job.name.startswith(grouped):
            continue
        command = "python " + " ".join(job.command)
        assert command in rows, f"{job.name}: no README row runs `{command}`"
        assert rows[command] == job.runtime, f"{job.name}: README says {rows[command]!r}, JOBS {job.runtime!r}"


def test_the_scripts_leave_runtimes_to_the_json():
    """A runtime has one record, the json of the committed run (shown by --list and the README table): a script's
    docstring points there and quotes no wall time of its own."""
    import re

    for job in make_figures.JOBS:
        doc = (REPO_ROOT / job.command[0]).read_text(encoding="utf-8").split('"""')[1]
        runtime = re.search(r"^Runtime[^\n]*(\n(?!Command|\n)[^\n]*)*", doc, re.MULTILINE)
        if runtime:
            assert "README" in runtime.group(0), f"{job.command[0]}: its Runtime paragraph does not point to the README"
            assert not re.search(r"\d+(\.\d+)? ?(s|min|h)\b", runtime.group(0).replace("--quick", "")), \
                f"{job.command[0]} quotes a wall time in its docstring: {runtime.group(0)!r}"


def test_the_jobs_run_in_the_checkouts_venv_when_this_python_lacks_the_dependencies(tmp_path, monkeypatch):
    """`python make_figures.py` from a shell without the venv activated: the jobs use `.venv/bin/python`; without a
    venv the command stops with one line (exit 2 via the parser)."""
    real = make_figures.importlib.util.find_spec
    monkeypatch.setattr(make_figures.importlib.util, "find_spec", lambda name: None if name == "torch" else real(name))
    monkeypatch.setattr(make_figures, "REPO_ROOT", tmp_path)
    with pytest.raises(make_figures.ConfigError, match="lacks torch"):
        make_figures.job_interpreter()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    assert make_figures.job_interpreter() == str(tmp_path / ".venv" / "bin" / "python")
