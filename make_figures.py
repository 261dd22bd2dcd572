"""Regenerate the paper's figures and check them against the committed results.

    python make_figures.py                 # fast tier (≈ 6 min): theory figures, classical checks, a short SGD
                                           # run and one deep run into figures/fast/, each csv compared with the
                                           # committed one in figures/
    python make_figures.py --full          # every command of the README's figure table, into figures/ (hours)
    python make_figures.py --list          # the plan with recorded wall times of the committed runs
    python make_figures.py --only fig2a fig3 [--full]   # a selection (names as in --list)
    python make_figures.py --quick         # the fast plan as smoke runs (tiny sizes, ≈ 2 min): checks the plan

It ends with a table: per job its exit code, wall time, figure and how its csv compares with the committed one
(rows matched by the job's key columns; the largest |difference| of a numeric column against the job's tolerance:
1e-6 for the deterministic theory, larger for stochastic runs whose fast variant batches fewer trials or runs on
another number of threads, which changes rounding and so the trajectories).  A difference beyond the tolerance is
reported, not a failure.  The deep-network runs need MNIST / Fashion-MNIST: torchvision downloads them into data/,
or pass --data_root DIR (or set VCL_DATA_ROOT=DIR) to an existing copy.
Exit code: 0 if every job ran, 1 if one exited non-zero (its own one-line message above the table), 2 on bad flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.command_line import OneLineErrors
from harness.config import require_writable_dir
from harness.errors import ConfigError
from harness.outputs import read_csv, read_json
from harness.paths import DATA_ENV_VAR, FIGURES_DIR, REPO_ROOT

FAST_DIR = FIGURES_DIR / "fast"


@dataclasses.dataclass
class Job:
    name: str  # matched by --only
    figure: str  # what it computes
    command: list[str]  # the committed run (script and flags)
    stem: str  # its outputs: figures/<stem>.*; the committed run's wall time is in figures/<stem>.json
    fast: list[str] | None = None  # flags of the fast-tier run (None: not in the fast tier)
    keys: tuple[str, ...] = ()  # columns that identify a csv row when comparing with the committed csv
    fast_runtime: str = ""  # about how long the fast variant takes

    @property
    def runtime(self) -> str:
        return recorded_runtime(self.stem)
    tolerance: float = 1e-6  # largest |difference| from the committed csv that counts as reproduced (see the docstring)


FIG2B_POINTS = ["--sgd_alphas", "1.0", "1.3", "--batch_sizes", "64", "100", "--learning_rates", "0.002", "0.005",
                "--weight_decays", "0.03", "0.1", "--theory_points", "2"]  # the Fig. 2b settings at these two α
JOBS = [
    Job("fig2a", "Fig. 2a: task-1 order parameters vs α (theory, both branches)",
        ["single_layer/fig2a_order_parameters.py"], "fig2a_order_parameters", [], ("alpha", "branch"), "47 s"),
    Job("classical", "solver validation: classical perceptron results",
        ["mean_field_theory/classical_perceptron.py"], "classical_perceptron", [], ("quantity",), "6 s"),
    Job("phase", "task-1 phase diagram (α, β): spinodals, transition, critical β",
        ["mean_field_theory/phase_diagram.py"], "phase_diagram", ["--betas", "12.5", "20", "50", "--no-critical"],
        ("beta",), "40 s"),
    Job("gibbs", "beyond the paper: the Gibbs measure of eq. 9 sampled (tempered HMC) vs its RS solution and SGD",
        ["mean_field_theory/gibbs_vs_theory.py"], "gibbs_vs_theory"),
    Job("gibbs_long_chains", "beyond the paper: the Gibbs measure at β = 20, α = 1.0 and 1.3 with 4× longer chains",
        ["mean_field_theory/gibbs_vs_theory.py", "--betas", "20", "--alphas", "1.0", "1.3", "--ns", "100", "200", "400",
         "--sweeps", "12000", "--warmup", "4000", "--out_dir", "figures/gibbs_vs_theory_long_chains"],
        "gibbs_vs_theory_long_chains/gibbs_vs_theory"),
    *(Job(f"gibbs_n1600_beta{beta}",
          f"beyond the paper: the Gibbs measure at N = 1600, β = {beta} (α = {' '.join(alphas)})",
          ["mean_field_theory/gibbs_vs_theory.py", "--betas", beta, "--alphas", *alphas, "--ns", "1600",
           "--gradient_dtype", "bfloat16", "--out_dir", f"figures/gibbs_vs_theory_n1600/beta{beta}", "--workers", "1",
           "--threads", "2"], f"gibbs_vs_theory_n1600/beta{beta}/gibbs_vs_theory")
      for beta, alphas in (("5", ("0.5", "1.0", "1.3")), ("20", ("0.5",)))),
    Job("gibbs_n1600_beta20_alpha1", "beyond the paper: the Gibbs measure at N = 1600, β = 20, α = 1.0 (RS-unstable)",
        ["mean_field_theory/gibbs_vs_theory.py", "--betas", "20", "--alphas", "1.0", "--ns", "1600", "--gradient_dtype",
         "bfloat16", "--out_dir", "figures/gibbs_vs_theory_n1600/beta20_alpha1", "--workers", "1", "--threads", "2"],
        "gibbs_vs_theory_n1600/beta20_alpha1/gibbs_vs_theory"),
    Job("gibbs_n1600_beta20_alpha13", "beyond the paper: the Gibbs measure at N = 1600, β = 20, α = 1.3 (RS-unstable)",
        ["mean_field_theory/gibbs_vs_theory.py", "--betas", "20", "--alphas", "1.3", "--ns", "1600", "--gradient_dtype",
         "bfloat16", "--out_dir", "figures/gibbs_vs_theory_n1600/beta20_alpha13", "--workers", "1", "--threads", "2"],
        "gibbs_vs_theory_n1600/beta20_alpha13/gibbs_vs_theory"),
    Job("gibbs_alpha_grid", "beyond the paper: the Gibbs measure at β = 20 on the rest of the 1RSB α grid, N = 100 … 400",
        ["mean_field_theory/gibbs_vs_theory.py", "--betas", "20", "--alphas", "0.8", "0.9", "1.1", "1.2", "1.4", "1.5",
         "--ns", "100", "200", "400", "--gradient_dtype", "bfloat16", "--out_dir", "figures/gibbs_vs_theory_alpha_grid"],
        "gibbs_vs_theory_alpha_grid/gibbs_vs_theory"),
    Job("gibbs_alpha_grid_n800", "beyond the paper: the Gibbs measure at β = 20 on the rest of the 1RSB α grid, N = 800",
        ["mean_field_theory/gibbs_vs_theory.py", "--betas", "20", "--alphas", "0.8", "0.9", "1.1", "1.2", "1.4", "1.5",
         "--ns", "800", "--gradient_dtype", "bfloat16", "--out_dir", "figures/gibbs_vs_theory_alpha_grid_n800"],
        "gibbs_vs_theory_alpha_grid_n800/gibbs_vs_theory"),
    Job("gibbs_size_scaling", "beyond the paper: the sampled measure against 1/N (N = 100 … 1600), its N → ∞ fits, "
        "and the verdict against SGD", ["mean_field_theory/gibbs_size_scaling.py"], "gibbs_size_scaling", [],
        ("source", "beta", "alpha", "observable"), "5 s"),
    Job("gibbs_valleys", "beyond the paper: why the chains at β = 20 do not meet — the valleys of one instance (α = 1.0)",
        ["mean_field_theory/gibbs_valleys.py"], "gibbs_valleys"),
    Job("gibbs_valleys_alpha13", "beyond the paper: the valleys of one instance at β = 20, α = 1.3",
        ["mean_field_theory/gibbs_valleys.py", "--alpha", "1.3", "--q_star_range", "0.86", "0.96", "--out_dir",
         "figures/gibbs_valleys_alpha13"], "gibbs_valleys_alpha13/gibbs_valleys"),
    Job("gibbs_valleys_alpha13_n400", "beyond the paper: the same at α = 1.3, N = 400",
        ["mean_field_theory/gibbs_valleys.py", "--alpha", "1.3", "--q_star_range", "0.86", "0.96", "--ns", "400",
         "--out_dir", "figures/gibbs_valleys_alpha13_n400", "--threads", "2"],
        "gibbs_valleys_alpha13_n400/gibbs_valleys"),
    Job("gibbs_valleys_alpha13_n800", "beyond the paper: the same at α = 1.3, N = 800 (2 instances, populations of 500)",
        ["mean_field_theory/gibbs_valleys.py", "--alpha", "1.3", "--q_star_range", "0.86", "0.96", "--ns", "800",
         "--instances", "2", "--population", "500", "--out_dir", "figures/gibbs_valleys_alpha13_n800", "--workers", "1",
         "--threads", "2"],
        "gibbs_valleys_alpha13_n800/gibbs_valleys"),
    Job("gibbs_valleys_n400", "beyond the paper: the same at α = 1.0, N = 400",
        ["mean_field_theory/gibbs_valleys.py", "--ns", "400", "--out_dir", "figures/gibbs_valleys_n400", "--threads", "2"],
        "gibbs_valleys_n400/gibbs_valleys"),
    Job("gibbs_task2", "beyond the paper: the second task's Gibbs measure sampled vs its Franz–Parisi RS solution",
        ["mean_field_theory/gibbs_task2.py"], "gibbs_task2"),
    Job("rsb_task1", "beyond the paper: task 1 at β = 20 with one step of replica-symmetry breaking vs RS, MCMC, SGD",
        ["mean_field_theory/rsb_task1.py"], "rsb_task1"),
    Job("fig1a", "Fig. 1a: SGD learning curves, task 1", ["single_layer/fig1a_learning_curves.py"],
        "fig1a_learning_curves", ["--trials", "4"], ("alpha", "seed", "epoch"), "20 s"),
    # (a fused minibatch epoch computes each trial alone: a batch of 4 trials gives the committed batch of 20's numbers)
    Job("fig2b", "Fig. 2b: ε_g vs α, theory vs SGD", ["single_layer/fig2b_theory_vs_sgd.py"], "fig2b_theory_vs_sgd"),
    *(Job(f"fig2b_n{n}", f"Fig. 2b finite-size check at α = 1.0 and 1.3: N = {n}",
          ["single_layer/fig2b_theory_vs_sgd.py", *FIG2B_POINTS, "--n", n, "--out_dir",
           f"figures/fig2b_finite_size/n{n}"], f"fig2b_finite_size/n{n}/fig2b_theory_vs_sgd")
      for n in ("250", "500", "1000", "2000")),
    Job("fig2b_diagnostics", "Fig. 2b diagnostics: SGD order parameters vs branches, β_eff, good-branch starts",
        ["single_layer/fig2b_diagnostics.py"], "fig2b_diagnostics"),
    Job("fig1bc", "Fig. 1b–c: learning curves across the task switch", ["single_layer/fig1bc_task_switch.py"],
        "fig1bc_task_switch"),
    Job("fig2d", "Fig. 2d: ε_g vs q⋆ at α = 2", ["single_layer/fig2d_fixed_self_overlap.py"],
        "fig2d_fixed_self_overlap", ["--theory_only"], ("q_star", "source", "seed", "epoch"), "7 s"),
    Job("fig3", "Fig. 3a–d: second task, Franz–Parisi theory vs SGD", ["single_layer/fig3_second_task.py"],
        "fig3_second_task", ["--theory_only", "--gammas", "1", "--r0s", "0"], ("alpha2", "r0", "gamma", "source", "branch"),
        "1 min"),
    Job("fig3_matched", "Fig. 3 diagnostic: task-1 reference matched to the SGD's task-1 state",
        ["single_layer/fig3_matched_reference.py"], "fig3_matched_reference"),
    *(Job(f"fig3_{name}", f"Fig. 3 finite-size check at α₂ = 3, r₀ = 0, γ = 1: N = {n}{note}",
          ["single_layer/fig3_second_task.py", "--r0s", "0", "--gammas", "1", "--sgd_alpha2s", "3", "--trials", "8",
           "--n", n, *extra, "--out_dir", f"figures/fig3_finite_size/{name}"],
          f"fig3_finite_size/{name}/fig3_second_task")
      for name, n, extra, note in (("n250", "250", [], ""), ("n500", "500", [], ""), ("n1000", "1000", [], ""),
                                   ("n1000_wd0", "1000", ["--weight_decay", "0"], ", no weight decay"),
                                   ("n2000", "2000", [], ""))),
    Job("figA1", "Fig. A1a–d: uniform prior, task 1 and task 2", ["single_layer/figA1_uniform_prior.py"],
        "figA1_uniform_prior"),
    Job("fig2c", "Fig. 2c: SGD convergence time vs α (reduced run)",
        ["single_layer/fig2c_convergence_time.py", "--n", "1000", "--samples", "5", "--alphas", "1.0", "1.1", "1.2",
         "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "2.0"], "fig2c_convergence_time"),
    Job("pmnist", "permuted MNIST, 4 field-rule variants", ["deep_networks/permuted_mnist.py", "--methods", "vcl",
                                                            "vcl_no_kl", "vcl_fixed_beta", "vcl_anchored"],
        "permuted_mnist", ["--methods", "vcl"], ("method", "seed", "epoch", "task_eval", "eval_mode"), "3 min",
        tolerance=0.02),  # the fast run uses 2 threads, the committed one 1: rounding changes the trajectory
    Job("pmnist_lambda2e-4", "permuted MNIST, anchored prior with λ = 2·10⁻⁴",
        ["deep_networks/permuted_mnist.py", "--methods", "vcl_anchored", "--anchor_weight", "0.0002", "--out_dir",
         "figures/permuted_mnist_anchored_lambda2e-4"], "permuted_mnist_anchored_lambda2e-4/permuted_mnist"),
    Job("pmnist_3seeds", "permuted MNIST, vcl and vcl_no_kl, 3 seeds",
        ["deep_networks/permuted_mnist.py", "--methods", "vcl", "vcl_no_kl", "--seeds", "3", "--out_dir",
         "figures/permuted_mnist_3seeds"], "permuted_mnist_3seeds/permuted_mnist"),
    Job("weight_uncertainty", "weight uncertainty during permuted MNIST", ["deep_networks/weight_uncertainty.py"],
        "weight_uncertainty"),
    Job("mnist_fashion", "MNIST → Fashion-MNIST", ["deep_networks/sequential_mnist_fashion.py", "--methods", "vcl",
                                                   "vcl_no_kl"], "sequential_mnist_fashion"),
    Job("compare_methods", "field rule vs metaplastic BNN, BNN, EWC (matched protocols, 3 seeds)",
        ["deep_networks/compare_methods.py"], "compare_methods"),
    Job("forgetting", "task 2's first-order transition in the (α₂, r₀) and (α₂, γ) planes",
        ["mean_field_theory/forgetting_phase_diagram.py"], "forgetting_phase_diagram", ["--quick"], ("gamma", "r0"),
        "40 s"),
    Job("forgetting_gamma_scan", "forgetting diagram: finer γ scan where the coexistence window narrows",
        ["mean_field_theory/forgetting_phase_diagram.py", "--gammas", "0.1", "0.125", "0.15", "0.175", "0.2", "0.25",
         "--r0s", "0", "--no-critical", "--workers", "1", "--out_dir", "figures/forgetting_gamma_scan"],
        "forgetting_gamma_scan/forgetting_phase_diagram"),
    *(Job(f"chain_{name}", f"chain of 10 tasks at α = {alpha}, r₀ = {r0}, γ = 1: theory vs SGD",
          ["single_layer/chain_of_tasks.py", "--n_tasks", "10", "--alpha", alpha, "--r0", r0, "--gamma", "1",
           "--out_dir", f"figures/chain_of_tasks/{name}"], f"chain_of_tasks/{name}/chain_of_tasks",
          ["--theory_only", "--n_tasks", "4", "--alpha", alpha, "--r0", r0, "--gamma", "1"] if alpha == "4" else None,
          ("task_trained", "task_eval", "source", "branch"), "1 min")
      for name, alpha, r0 in (("alpha2_r0_gamma1", "2", "0"), ("alpha2_r0.5_gamma1", "2", "0.5"),
                              ("alpha4_r0_gamma1", "4", "0"))),
    Job("chain_tradeoff", "retention–plasticity trade-off: mean ε_g after 5 tasks vs γ",
        ["single_layer/chain_tradeoff.py"], "chain_tradeoff"),
    *(Job(name, f"benchmark: {what}", [f"benchmarks/{name}.py"], name) for name, what in (
        ("bench_task1_solver", "task-1 solver vs the original Monte Carlo"),
        ("bench_franz_parisi", "Franz–Parisi solver vs the original Monte Carlo"),
        ("bench_sgd_batching", "batched SGD trials vs one at a time"),
        ("bench_deep_training", "deep training step, eager and compiled, vs its matrix products"),
        ("bench_parallel_sweeps", "a sweep on 2 worker processes and on Dask vs 1"),
        ("bench_paper_scale", "core-hours of the paper-scale SGD runs from timed subsets"),
        ("bench_perceptron_step", "the perceptron step on int8 inputs vs float32; fused minibatch epochs"),
        ("bench_gibbs_sampler", "the Gibbs sampler's written-out gradient vs autograd"))),
]


def duration(seconds: float) -> str:
    if seconds < 1:
        return "< 1 s"
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.2g} min" if seconds < 600 else f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def recorded_runtime(stem: str) -> str:
    """The wall time of the committed run, from its json (the one record of it), with its workers; for a run that
    took its simulation rows over from an earlier run (--refresh_theory), also that run's time."""
    path = FIGURES_DIR / f"{stem}.json"
    if not path.exists():
        return "no committed run"
    record = read_json(path)
    workers = (record.get("config") or {}).get("workers")
    text = duration(record["wall_time_s"]) + (f" ({workers} worker{'s' * (workers > 1)})" if workers else "")
    earlier = record.get("sgd_rows_from") or {}
    if earlier.get("wall_time_s") is not None:
        text = f"theory {text}; SGD rows: a run of {duration(earlier['wall_time_s'])}"
    return text


RUNTIME_MODULES = ("numpy", "scipy", "matplotlib", "tqdm", "torch", "numba", "dask")


def job_interpreter() -> str:
    """The Python that runs the jobs: this one if it has the project's dependencies, else the checkout's `.venv`
    (made by the Quick start), so that `python make_figures.py` works with or without the venv activated."""
    missing = [name for name in RUNTIME_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return sys.executable
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    raise ConfigError(f"this python ({sys.executable}) lacks {', '.join(missing)} and the checkout has no .venv: "
                      "run the Quick start's install first")


def run_job(job: Job, flags: list[str], env: dict, log: Path) -> tuple[int, float, str]:
    """Run one job; its stderr (progress bars, errors) passes through to ours and is also kept in `log`.  Returns
    the exit code, the wall time and the last line the job wrote to stderr."""
    started = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as kept:
        process = subprocess.Popen([job_interpreter(), job.command[0], *flags], cwd=REPO_ROOT, env=env,
                                   stderr=subprocess.PIPE)
        while chunk := process.stderr.read1(4096):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            kept.write(chunk)
        code = process.wait()
    lines = [line.strip() for line in log.read_text(errors="replace").replace("\r", "\n").splitlines() if line.strip()]
    return code, time.time() - started, lines[-1] if lines else ""


def compare_with_committed(job: Job, regenerated: Path) -> str:
    """How close the regenerated csv is to the committed one, row by row (rows matched by `job.keys`): the largest
    difference of a numeric column, and whether it is within the job's documented tolerance."""
    committed = FIGURES_DIR / f"{job.stem}.csv"
    if not committed.exists():
        return "no committed csv to compare with"
    if not regenerated.exists():
        return f"no csv written ({os.path.relpath(regenerated, REPO_ROOT)})"
    key = lambda row: tuple(str(row.get(column)) for column in job.keys)
    reference = {key(row): row for row in read_csv(committed)}
    rows = read_csv(regenerated)
    matched = [(row, reference[key(row)]) for row in rows if key(row) in reference]
    if not matched:
        return f"0/{len(rows)} rows of the committed csv regenerated (other grid)"
    worst, column = 0.0, None
    for row, old in matched:
        for name, value in row.items():
            if name in job.keys or not isinstance(value, float) or not isinstance(old.get(name), (int, float)):
                continue
            gap = abs(value - old[name]) if math.isfinite(value) and math.isfinite(old[name]) else 0.0
            if gap > worst:
                worst, column = gap, name
    verdict = "within" if worst <= job.tolerance else "BEYOND"
    return (f"{len(matched)}/{len(rows)} rows matched, largest |difference| {worst:.1e}"
            + (f" ({column})" if column else "") + f", {verdict} tolerance {job.tolerance:g}")


def print_summary(results: list[tuple[Job, str, float, str, str]]) -> None:
    """The closing table: per job what happened, how long it took, its figure and the comparison."""
    print("\nsummary")
    print(f"{'job':22s} {'result':8s} {'time':>7s}  {'figure':52s} compared with the committed csv")
    for job, result, seconds, figure, comparison in results:
        print(f"{job.name:22s} {result:8s} {seconds:6.0f}s  {figure:52s} {comparison}")


def main() -> int:
    parser = OneLineErrors(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run the committed commands into figures/ (hours)")
    parser.add_argument("--only", nargs="+", default=[], help="run only these jobs (names of --list)")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--quick", action="store_true",
                        help="each fast job as a smoke run (--quick --device cpu): checks the plan in ≈ 2 min")
    parser.add_argument("--out_dir", default=str(FAST_DIR.relative_to(REPO_ROOT)),
                        help="folder of the fast (or --quick) runs, one sub-folder per job")
    parser.add_argument("--data_root", default=None, help=f"dataset folder (else ${DATA_ENV_VAR}, else data/)")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - {job.name for job in JOBS})
    if unknown:
        parser.error(f"--only: unknown job {', '.join(unknown)}; the jobs are {', '.join(job.name for job in JOBS)}")
    if args.full and args.quick:
        parser.error("--full and --quick exclude each other")
    if args.data_root and not Path(args.data_root).is_dir():
        parser.error(f"--data_root {args.data_root} is not an existing folder")
    out_root = (REPO_ROOT / args.out_dir).resolve()
    if not args.list and not args.full:
        try:
            require_writable_dir(out_root, "--out_dir")
        except ConfigError as error:
            parser.error(str(error))
    if not args.list:
        try:
            job_interpreter()
        except ConfigError as error:
            parser.error(str(error))
    # the jobs import the project's packages from the checkout, installed or not
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env = dict(os.environ, PYTHONPATH=path, **({DATA_ENV_VAR: args.data_root} if args.data_root else {}))
    jobs = [job for job in JOBS if (not args.only or job.name in args.only)]
    results = []
    for job in jobs:
        if not args.full and job.fast is None:
            if args.only:
                print(f"{job.name:20s} has no fast variant: run it with --full ({job.runtime})")
            continue
        job_dir = out_root / job.name
        shown_dir = os.path.relpath(job_dir, REPO_ROOT)
        if args.full:
            flags, runtime = job.command[1:], job.runtime
        elif args.quick:
            flags, runtime = ["--quick", "--device", "cpu", "--out_dir", shown_dir], "seconds"
        else:
            flags, runtime = [*job.fast, "--out_dir", shown_dir], job.fast_runtime
        print(f"{job.name:20s} {job.figure}\n{'':20s} python {job.command[0]} {' '.join(flags)}   [{runtime}]",
              flush=True)
        if args.list:
            continue
        log = (FAST_DIR / "logs" if args.full else out_root / "logs") / f"{job.name}.log"
        code, seconds, last_line = run_job(job, flags, env, log)
        stem = FIGURES_DIR / job.stem if args.full else job_dir / Path(job.stem).name
        figure = os.path.relpath(stem.with_suffix(".png"), REPO_ROOT)
        if code != 0:
            comparison = f"{last_line[:120]} (whole stderr: {os.path.relpath(log, REPO_ROOT)})"
        elif args.full:
            comparison = "(the committed run itself)"
        else:
            comparison = compare_with_committed(job, stem.with_suffix(".csv"))
        print(f"{'':20s} exit {code} after {seconds:.0f} s; {comparison}", flush=True)
        results.append((job, "ok" if code == 0 else f"exit {code}", seconds,
                        figure if stem.with_suffix(".png").exists() else "(none)", comparison))
    if results:
        print_summary(results)
    return 1 if any(result != "ok" for _, result, *_ in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
