"""Speed of the field-space training step against the machine's GEMM limit: the field step eager and compiled, one
seed and several seeds batched.

In one run, for S = 1 and S = 3 seeds trained as one computation (a leading seed dimension, model.init_fields):
(1) a training step of the 784-512-512-10 Gaussian-field network (forward, autograd backward to the moments, then
model.field_step: chain rule, KL gradient, Adam, new moments; batch 64 per seed, float32) in each of --step_modes —
"eager" (field_step as separate tensor operations) and "compiled" (field_step fused by torch.compile) — from the
same initial fields, the modes alternating in every repeat, (2) the plain float32 matrix products of the same
shapes that one step must do — forward a@m and a²@σ per layer, the two weight-gradient products per layer and the
two input-gradient products of layers 2–3, batched over seeds — timed alone: "the machine's GEMM limit for this
work", (3) a full training epoch (500 steps) and the faithful evaluation of 5 tasks × 9 984 test images (noisy
pass), i.e. one permuted-MNIST epoch.
FLOP count: 2SB(4P + 2(P₂ + P₃)) per step = 411 MFLOP per seed at B = 64; evaluation 4P per image.
Reported per S and mode: ms per step, GFLOP/s, fraction of the GEMM limit, s per epoch, projected full run (25
epochs); the cost of S seeds batched relative to one seed (epoch time ratio; S separate runs would be S×); per S
the eager / compiled ratio of the step time.
Runtime: the README's figure table (the wall time its json records). Uses a GPU automatically when present. On a CPU
shared with other jobs use --threads 1 (two threads oversubscribe the cores and a step becomes several times slower);
the json records the load average before the run (`load_average_before`).

    python benchmarks/bench_deep_training.py
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time

import numpy as np
import torch

from deep_networks.model import FieldLearner, LAYER_SIZES, accuracy, init_fields
from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.devices import resolve_device, torch_generator
from harness.errors import require
from harness.outputs import print_written, read_csv, save_figure, write_csv, write_json
from harness.plotting import plot_style
from harness.provenance import run_metadata

STEM = "bench_deep_training"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    batch_size: int = bounded(64, at_least=1)  # mini-batch size B
    hidden: tuple[int, ...] = (512, 512)  # hidden widths (784-512-512-10)
    steps: int = bounded(100, at_least=1)  # timed training steps per repeat
    repeats: int = bounded(5, at_least=1)  # repeats (the median is reported)
    epoch_steps: int = bounded(500, at_least=1)  # steps of one epoch (32 000 / 64)
    eval_images: int = bounded(9984, at_least=1)  # test images per task and evaluation
    n_tasks: int = 5  # tasks evaluated after every epoch
    epochs: int = 25  # epochs of a full permuted-MNIST run (for the projection)
    dtype: str = "float32"  # float32 | float64
    threads: int = bounded(0, at_least=0)  # torch CPU threads (0: torch default)
    seed_counts: tuple[int, ...] = bounded((1, 3), at_least=1)  # numbers of seeds trained as one batched computation
    step_modes: tuple[str, ...] = ("eager", "compiled")  # the field step op by op and fused (FieldLearner(compiled=))

    def validate(self) -> None:
        super().validate()
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")
        require(len(self.seed_counts) >= 1, "--seed_counts needs at least one value")
        require(len(self.step_modes) >= 1 and set(self.step_modes) <= {"eager", "compiled"},
                f"--step_modes must be among eager compiled, got {self.step_modes}")


QUICK = {"hidden": (64, 64), "steps": 5, "repeats": 2, "epoch_steps": 10, "eval_images": 200, "n_tasks": 2,
         "step_modes": ("eager",)}  # compiling takes longer than the quick run (tests/test_deep_model.py checks it)


def timed(function, device, repeats: int) -> float:
    """Median wall time of function() over repeats (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_flops(sizes, batch: int) -> float:
    """FLOPs: forward 2 GEMMs per layer, weight gradients 2 per layer, input gradients 2 for layers ≥ 2."""
    products = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return 2.0 * batch * (4 * sum(products) + 2 * sum(products[1:]))


def gemm_set(sizes, batch, seeds, generator, dtype, device):
    """The plain matrix products of one training step (batched over `seeds`), preallocated operands and outputs."""
    products = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        def make(*shape):
            return torch.rand(seeds, *shape, generator=generator, dtype=dtype, device=device)
        act, weight, grad_out = make(batch, n_in), make(n_in, n_out), make(batch, n_out)
        products += [(act, weight, make(batch, n_out))] * 2  # forward: a @ m and a² @ σ
        products += [(act.transpose(1, 2), grad_out, make(n_in, n_out))] * 2  # weight gradients of both paths
        if layer > 0:
            products += [(grad_out, weight.transpose(1, 2), make(batch, n_in))] * 2  # input gradients
    return lambda: [torch.bmm(left, right, out=out) for left, right, out in products]


def measure(cfg: Config, seeds: int, device, dtype) -> dict[str, dict]:
    """Per step mode ("eager", "compiled"): the timings of one learner of `seeds` seeds; the two modes start from the
    same fields and alternate in every repeat, so that both see the same machine."""
    sizes = (LAYER_SIZES[0], *cfg.hidden, LAYER_SIZES[-1])
    generator = torch_generator(cfg.seed, device)
    learners = {}
    for mode in cfg.step_modes:
        fields = init_fields(sizes, [torch_generator(cfg.seed + k, device) for k in range(seeds)] if seeds > 1
                             else torch_generator(cfg.seed, device), dtype, device)
        learners[mode] = FieldLearner(fields, lr=0.01, compiled=mode == "compiled")
    lead = (seeds,) if seeds > 1 else ()
    n_images = cfg.epoch_steps * cfg.batch_size
    x = torch.rand(*lead, n_images, sizes[0], generator=generator, dtype=dtype, device=device)
    labels = torch.randint(0, 10, (*lead, n_images), generator=generator, device=device)
    x_test, y_test = x[..., :cfg.eval_images, :], labels[..., :cfg.eval_images]
    beta, batch = 3.0, cfg.batch_size

    def steps(learner, count):
        for step in range(count):
            part = slice(step * batch, (step + 1) * batch)
            learner.step(x[..., part, :], labels[..., part], beta, generator)

    gemms = gemm_set(sizes, batch, seeds, generator, dtype, device)
    for learner in learners.values():
        steps(learner, 2)  # warm-up (the compiled mode compiles here)
    step_times = {mode: [] for mode in cfg.step_modes}
    for _ in range(cfg.repeats):
        for mode, learner in learners.items():
            step_times[mode].append(timed(lambda: steps(learner, cfg.steps), device, 1) / cfg.steps)
    gemm_time = timed(lambda: [gemms() for _ in range(cfg.steps)], device, cfg.repeats) / cfg.steps
    flops = seeds * step_flops(sizes, batch)
    found = {}
    for mode, learner in learners.items():
        step_time = statistics.median(step_times[mode])
        train_epoch = timed(lambda: steps(learner, cfg.epoch_steps), device, 1)
        evaluation = timed(lambda: [accuracy(learner.fields, x_test, y_test, beta, "noisy", generator)
                                    for _ in range(cfg.n_tasks)], device, 1)
        epoch = train_epoch + evaluation
        found[mode] = {
            "step_time_ms": 1e3 * step_time, "gemm_time_ms": 1e3 * gemm_time, "step_gflops": flops / step_time / 1e9,
            "gemm_gflops": flops / gemm_time / 1e9, "fraction_of_gemm_limit": gemm_time / step_time,
            "train_epoch_s": train_epoch, "evaluation_per_epoch_s": evaluation, "epoch_s": epoch,
            "full_run_projected_s": cfg.epochs * epoch,
            "eval_gflops": seeds * cfg.n_tasks * cfg.eval_images * 4 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
            / evaluation / 1e9, "step_mflop": flops / 1e6}
    return found


def plot(rows: list[dict]):
    import matplotlib.pyplot as plt

    counts = sorted({int(row["seeds"]) for row in rows})
    modes = list(dict.fromkeys(row["step"] for row in rows))
    value = {(int(row["seeds"]), row["step"], row["quantity"]): row["value"] for row in rows}
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.4))
    positions = np.arange(len(counts))
    width = 0.8 / (1 + len(modes))
    left.bar(positions - 0.4 + width / 2, [value[(s, "eager", "gemm_time_ms")] for s in counts], width, color="0.6",
             label="GEMMs only")
    for index, mode in enumerate(modes, start=1):
        left.bar(positions - 0.4 + (index + 0.5) * width, [value[(s, mode, "step_time_ms")] for s in counts], width,
                 label=f"step, {mode}")
    left.set(xticks=positions, xticklabels=[f"S = {s}" for s in counts], ylabel="ms per step (B = 64 per seed)",
             title="GEMM share: " + " · ".join(f"S={s} {100 * value[(s, mode, 'fraction_of_gemm_limit')]:.0f} %"
                                                for s in counts for mode in modes[-1:]) + f" ({modes[-1]})")
    left.legend(fontsize=7)
    labels = [f"S={s}\n{mode}" for s in counts for mode in modes]
    train = [value[(s, mode, "train_epoch_s")] for s in counts for mode in modes]
    right.bar(labels, train, label="training (500 steps)")
    right.bar(labels, [value[(s, mode, "evaluation_per_epoch_s")] for s in counts for mode in modes],
              bottom=train, label="evaluation (5 × 9 984)")
    right.set(ylabel="s per epoch (all seeds)")
    right.legend(loc="lower center", framealpha=0.9, frameon=True, fontsize=7)
    fig.tight_layout()
    return fig


def main(cfg: Config) -> None:
    out_dir = cfg.output_dir
    plot_style()
    if cfg.replot:
        print_written(save_figure(plot(read_csv(out_dir / f"{STEM}.csv")), out_dir, STEM))
        return
    started = time.time()
    load = os.getloadavg()  # other jobs on the machine change the numbers: recorded with them
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    rows = []
    for seeds in cfg.seed_counts:
        for mode, values in measure(cfg, seeds, device, getattr(torch, cfg.dtype)).items():
            rows += [{"seeds": seeds, "step": mode, "quantity": key, "value": value, "device": str(device),
                      "dtype": cfg.dtype, "threads": torch.get_num_threads()} for key, value in values.items()]
    results = {f"S={row['seeds']} {row['step']} {row['quantity']}": row["value"] for row in rows}
    first = cfg.seed_counts[0]
    ratios = {f"epoch of S={seeds} relative to S={first} ({mode})":
              results[f"S={seeds} {mode} epoch_s"] / results[f"S={first} {mode} epoch_s"]
              for seeds in cfg.seed_counts for mode in cfg.step_modes}
    speedups = {f"S={seeds} step eager / compiled": results[f"S={seeds} eager step_time_ms"]
                / results[f"S={seeds} compiled step_time_ms"] for seeds in cfg.seed_counts
                if set(cfg.step_modes) == {"eager", "compiled"}}
    for key, value in {**results, **ratios, **speedups}.items():
        print(f"{key:50s} {value:10.3f}")
    paths = [write_csv(out_dir / f"{STEM}.csv", rows),
             write_json(out_dir / f"{STEM}.json", run_metadata(
                 cfg, started, device, results=results, batched_seed_cost=ratios, compiled_speedup=speedups,
                 torch_threads=torch.get_num_threads(), load_average_before=load, cpu_count=os.cpu_count()))]
    paths += save_figure(plot(rows), out_dir, STEM)
    print_written(paths)


if __name__ == "__main__":
    run(main, Config, QUICK)
