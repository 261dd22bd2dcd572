"""Benchmark: SGD trials of the field-space perceptron batched as one tensor computation vs one trial at a time.

Workload: one α point of Fig. 2b (N = 1000, α = 1.0, Adam lr 0.002, weight decay 0.03, batch 64, no early stop),
20 trials.  "batched" trains the 20 trials as (20, P, N) tensors with torch.bmm (single_layer/perceptron.py);
"sequential" runs the same code with one trial per call, in a Python loop.  Both must give the same final fields
(trial k is seeded with seed + k either way).  Output: wall time per mode, the speed-up, the max field difference.

Runtime: the README's figure table (the wall time its json records); --quick takes a few seconds.
Command:  python benchmarks/bench_sgd_batching.py
"""
from __future__ import annotations

import dataclasses
import time

import torch

from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.devices import torch_setup
from harness.errors import require
from harness.outputs import print_written, read_csv, read_json, save_figure, write_csv, write_json
from harness.plotting import plot_style
from harness.provenance import run_metadata
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import n_patterns, sample_trials

STEM = "bench_sgd_batching"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    n: int = bounded(1000, at_least=1)  # input dimension (N)
    alpha: float = bounded(1.0, above=0)  # data density P/N (α)
    trials: int = bounded(20, at_least=1)  # independent trials
    epochs: int = bounded(200, at_least=1)  # training epochs per trial
    batch_size: int = bounded(64, at_least=1)  # Adam minibatch size
    lr: float = bounded(0.002, above=0)  # Adam learning rate (η)
    weight_decay: float = bounded(0.03, at_least=0)  # decoupled Adam weight decay
    dtype: str = "float32"  # torch dtype (float32 | float64)
    threads: int = bounded(1, at_least=1)  # torch CPU threads

    def validate(self):
        super().validate()
        require(n_patterns(self.alpha, self.n) >= 1, "--alpha must give >= 1 pattern")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")


QUICK = {"n": 60, "trials": 2, "epochs": 3}


def train(cfg: Config, seed: int, trials: int, device) -> torch.Tensor:
    fields, (task,) = sample_trials(trials, cfg.n, [cfg.alpha], seed=seed, device=device,
                                    dtype=getattr(torch, cfg.dtype))
    spec = OptimizerSpec("adam", lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size)
    final, _ = train_task(fields, task, spec, cfg.epochs, observe=task_observer([task]), record_every=cfg.epochs)
    return final


def plot(rows: list[dict]):
    import matplotlib.pyplot as plt

    plot_style()
    fig, axis = plt.subplots(figsize=(3.6, 3.0))
    axis.bar([row["mode"] for row in rows], [row["seconds"] for row in rows], color=["royalblue", "grey"])
    axis.set_ylabel("wall time (s)")
    axis.set_title(f"{rows[0]['trials']} trials × {rows[0]['epochs']} epochs", fontsize=9)
    return fig


def main(cfg: Config) -> None:
    out_dir = cfg.output_dir
    if not cfg.replot:
        started = time.time()
        device = torch_setup(cfg)
        timings, finals = {}, {}
        for mode in ("batched", "sequential"):
            begin = time.perf_counter()
            if mode == "batched":
                finals[mode] = train(cfg, cfg.seed, cfg.trials, device)
            else:
                finals[mode] = torch.cat([train(cfg, cfg.seed + trial, 1, device) for trial in range(cfg.trials)])
            timings[mode] = time.perf_counter() - begin
        difference = float((finals["batched"] - finals["sequential"]).abs().max())
        rows = [{"mode": mode, "trials": cfg.trials, "epochs": cfg.epochs, "seconds": seconds,
                 "seconds_per_trial_epoch": seconds / (cfg.trials * cfg.epochs)} for mode, seconds in timings.items()]
        speedup = timings["sequential"] / timings["batched"]
        write_csv(out_dir / f"{STEM}.csv", rows)
        write_json(out_dir / f"{STEM}.json", run_metadata(
            cfg, started, device, speedup=speedup, max_field_difference=difference,
            summary=f"batched {timings['batched']:.1f} s vs sequential {timings['sequential']:.1f} s: "
                    f"{speedup:.1f}x faster, max |Δh| = {difference:.2e}"))
        print(read_json(out_dir / f"{STEM}.json")["summary"])
    figure = plot(read_csv(out_dir / f"{STEM}.csv"))
    print_written([out_dir / f"{STEM}.csv", out_dir / f"{STEM}.json", *save_figure(figure, out_dir, STEM)])


if __name__ == "__main__":
    run(main, Config, QUICK)
