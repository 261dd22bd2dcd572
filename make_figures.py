"""Regenerate every figure of the paper into figures/ (full runs, in the order of the README table).

A figure whose json already exists in figures/ is not recomputed (finished results are kept); --force reruns
it, --only runs the scripts whose path contains one of the given words, --list shows the plan.  Fig. 2c
(≈ 30 h on a 2-core CPU) only runs when named with --only.  The deep-network
experiments need MNIST / Fashion-MNIST: torchvision downloads them into data/, or point VCL_DATA_ROOT (or
--data_root) at an existing copy.

    python make_figures.py                      # everything that is missing
    python make_figures.py --only fig2a fig2b   # selected figures
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from vcl_common import DATA_ENV_VAR, FIGURES_DIR, REPO_ROOT

GPU_ONLY = "~30 h on a 2-core CPU: run with --only fig2c (on a GPU; the committed reduced run is in the README)"
# (script, output stem, extra arguments, typical runtime on a 2-core CPU)
FIGURES = [
    ("mean_field_theory/fig2a_order_parameters.py", "fig2a_order_parameters", [], "20 s"),
    ("mean_field_theory/classical_perceptron.py", "classical_perceptron", [], "15 s"),
    ("single_layer/fig1a_learning_curves.py", "fig1a_learning_curves", [], "1 min"),
    ("single_layer/fig2b_theory_vs_sgd.py", "fig2b_theory_vs_sgd", [], "14 min"),
    ("single_layer/fig1bc_task_switch.py", "fig1bc_task_switch", [], "13 min"),
    ("single_layer/fig2d_fixed_self_overlap.py", "fig2d_fixed_self_overlap", [], "45 min"),
    ("single_layer/fig3_second_task.py", "fig3_second_task", [], "theory 4 min, SGD ~10 h"),
    ("single_layer/figA1_uniform_prior.py", "figA1_uniform_prior", [], "theory 2 min, SGD hours"),
    ("single_layer/fig2c_convergence_time.py", "fig2c_convergence_time", [], GPU_ONLY),
    ("deep_networks/permuted_mnist.py", "permuted_mnist", ["--methods", "vcl", "vcl_no_kl", "vcl_fixed_beta",
                                                           "vcl_anchored"], "3 min per method"),
    ("deep_networks/weight_uncertainty.py", "weight_uncertainty", [], "seconds"),
    ("deep_networks/sequential_mnist_fashion.py", "sequential_mnist_fashion", ["--methods", "vcl", "vcl_no_kl"],
     "10 min per method"),
    ("deep_networks/compare_methods.py", "compare_methods", [], "~2.5 h (7 methods x 3 seeds x 2 protocols)"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=[], help="run only scripts whose path contains one of these")
    parser.add_argument("--force", action="store_true", help="recompute figures whose json already exists")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--data_root", default=None, help=f"dataset folder (else ${DATA_ENV_VAR}, else data/)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.data_root:
        env[DATA_ENV_VAR] = args.data_root
    failures = []
    for script, stem, extra, runtime in FIGURES:
        if args.only and not any(word in script for word in args.only):
            continue
        if runtime == GPU_ONLY and not args.only:
            print(f"{script:48s} skipped ({runtime})", flush=True)
            continue
        done = (FIGURES_DIR / f"{stem}.json").exists()
        status = "done, skipped" if done and not args.force else f"{'to run' if args.list else 'running'} (typical {runtime})"
        print(f"{script:48s} {status}", flush=True)
        if args.list or (done and not args.force):
            continue
        started = time.time()
        result = subprocess.run([sys.executable, script, *extra], cwd=REPO_ROOT, env=env)
        print(f"  -> exit {result.returncode} after {time.time() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failures.append(script)
    if failures:
        print("failed:", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
