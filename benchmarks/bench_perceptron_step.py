"""Benchmark: the perceptron's SGD step — float32 inputs (torch, two batched products), int8 inputs (one pass), and
whole int8 epochs fused into one numba call per step.

Workloads: a Fig. 3 point (N = 1000, α = 2, 20 trials, full batch), a Fig. 2c point (N = 3000, α = 1.5, 20 samples)
and a Fig. A1 task-2 point (N = 1000, α₂ = 3, 20 trials, minibatches of 16, KL anchor).  In one process, side by side:
* the data-term gradient of one full-batch step (docs/theory.md eq. 7; Figs. 3 and 2c; the modes alternate,
  `repeats` times): the float32 torch path reads the (trials, P, N) input tensor twice (bytes = 2·4·T·P·N), the int8
  kernel of `single_layer/data_kernel.py` once (T·P·N);
* the machine's stream bandwidth: a copy of a 256 MB float32 tensor (bytes read + written per second), so the
  float32 step's traffic can be compared with what memory delivers;
* whole runs with the scripts' own `train_task` from the same seed: a Fig. 3 task 1 cut to `steps` full-batch Adam
  steps (float32, int8) and a Fig. A1 task 2 cut to `epochs` epochs (float32, int8 step by step, and int8 fused:
  `train_epoch_int8`, gradient, KL and Adam of every minibatch in one pass, no torch call per step; full-batch
  epochs are not fused, they gained nothing — 0.87× idle, the json of commit 174552e).  The ratios of wall times
  are the speed-ups of a point; the largest field difference at the end says whether the trajectories agree.
With `--device cuda` the float32 torch path also runs on the GPU (inputs cast to float32 once, as `train_task` does
there: the gradient and the Fig. 3 run, mode "cuda float32"), beside the GPU's own copy bandwidth.
Agreement: the relative (norm-wise) difference of one gradient against the float64 torch path.
Reported: ms per step (median over repeats for the gradient, the run's mean for whole runs), GB/s effective,
speed-ups, agreement.  The json records the load average before the run (a 1-minute average: it lags).

Runtime: the README's figure table (the wall time its json records).
Command:  python benchmarks/bench_perceptron_step.py
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time

import torch

from benchmarks.common import benchmark_main
from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.devices import torch_setup
from harness.plotting import plot_style
from single_layer.perceptron import OptimizerSpec, data_term_gradient, task_observer
from single_layer.training import train_task
from teacher_student import Task, n_patterns, sample_trials

STEM = "bench_perceptron_step"
WORKLOADS = {"fig3": (1000, 2.0), "fig2c": (3000, 1.5), "figA1": (1000, 3.0)}  # (N, α); Fig. A1: a b–c task 2


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    trials: int = bounded(20, at_least=1)  # trials per point (20 in Figs. 3 and 2c)
    repeats: int = bounded(7, at_least=1)  # alternating timings of each mode (median reported)
    steps: int = bounded(  # Adam steps of the whole-run comparison (Fig. 3 task 1: lr 1e-3, wd 1e-3, full batch)
        200, at_least=1)
    epochs: int = bounded(  # epochs of the minibatch comparison (a Fig. A1 task 2: batch 16, lr 5e-3, KL anchor)
        10, at_least=1)
    scale: float = bounded(1.0, above=0, at_most=1)  # factor on N of both workloads (a smaller machine, or --quick)


QUICK = {"trials": 2, "repeats": 2, "steps": 5, "epochs": 1, "scale": 0.05}


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def synchronized(function, device):
    """`function`, returning only once the device has finished its work (GPU kernels run asynchronously)."""
    if device.type != "cuda":
        return function
    return lambda: (function(), torch.cuda.synchronize(device))


def stream_bandwidth(repeats: int, device) -> float:
    """Bytes moved per second (read + write) by a copy of a 256 MB float32 tensor on `device`."""
    source = torch.ones(64 * 2**20, device=device)
    target = torch.empty_like(source)
    return 2 * source.numel() * 4 / median_time(synchronized(lambda: target.copy_(source), device), repeats)


def to_device(task: Task, device, dtype=None) -> Task:
    """The task's tensors on `device`, its inputs cast to `dtype` if given."""
    moved = Task(*(None if value is None else value.to(device) for value in dataclasses.astuple(task)))
    return moved if dtype is None else dataclasses.replace(moved, inputs=moved.inputs.to(dtype))


def measure(cfg: Config) -> tuple[list[dict], dict]:
    device = torch_setup(cfg)
    gpu = torch.device("cuda") if device.type == "cuda" else None
    load = os.getloadavg()[0]
    bandwidth = stream_bandwidth(cfg.repeats, torch.device("cpu"))
    rows, summary = [], {"load_average_before": load, "stream_bandwidth_GBps": bandwidth / 1e9,
                         "threads": torch.get_num_threads()}
    if gpu:
        summary["gpu"] = torch.cuda.get_device_name(gpu)
        summary["gpu_stream_bandwidth_GBps"] = stream_bandwidth(cfg.repeats, gpu) / 1e9
    for name in ("fig3", "fig2c"):
        (n, alpha), n = WORKLOADS[name], max(2, round(WORKLOADS[name][0] * cfg.scale))
        fields, (task,) = sample_trials(cfg.trials, n, [alpha], seed=cfg.seed)
        inputs = {"float32": task.inputs.float(), "int8": task.inputs}
        if gpu:
            on_gpu = to_device(task, gpu, torch.float32)
            inputs["cuda float32"] = on_gpu.inputs
        elements = cfg.trials * n_patterns(alpha, n) * n
        exact = data_term_gradient(fields.double(), task.inputs.double(), task.labels.double())

        def gradient(values):
            on = values.device
            return synchronized(lambda: data_term_gradient(fields.to(on), values, task.labels.to(on)), on)

        for values in inputs.values():
            gradient(values)()  # compiles the kernel (or loads it from numba's cache); warms the GPU up
        seconds = {mode: [] for mode in inputs}
        for _ in range(cfg.repeats):  # alternate the modes so that all see the same machine
            for mode, values in inputs.items():
                seconds[mode].append(median_time(gradient(values), 1))
        for mode, values in inputs.items():
            step = statistics.median(seconds[mode])
            moved = elements * (1 if mode == "int8" else 8)
            difference = data_term_gradient(fields.to(values.device), values,
                                             task.labels.to(values.device)).cpu().double() - exact
            rows.append({"workload": name, "n": n, "alpha": alpha, "mode": mode, "ms_per_step": 1e3 * step,
                         "bytes_per_step": moved, "GBps": moved / step / 1e9,
                         "relative_difference_to_float64": float(difference.norm() / exact.norm())})
        float_row, int8_row = rows[-len(inputs)], rows[-len(inputs) + 1]
        if gpu:
            summary[f"{name}: gradient step cuda float32 (ms)"] = rows[-1]["ms_per_step"]
            summary[f"{name}: gradient speed-up, cuda float32 over int8 CPU"] = int8_row["ms_per_step"] / rows[-1]["ms_per_step"]
        summary[f"{name}: gradient step float32 / int8 (ms)"] = (float_row["ms_per_step"], int8_row["ms_per_step"])
        summary[f"{name}: gradient speed-up"] = float_row["ms_per_step"] / int8_row["ms_per_step"]
        summary[f"{name}: float32 traffic / stream bandwidth"] = float_row["GBps"] * 1e9 / bandwidth
    fig3_spec = OptimizerSpec("adam", lr=1e-3, weight_decay=1e-3)
    a1_spec = OptimizerSpec("adam", lr=5e-3, weight_decay=1e-3, batch_size=16)
    for name, (n, alpha), spec, epochs, anchored in (("fig3 run", WORKLOADS["fig3"], fig3_spec, cfg.steps, False),
                                                     ("figA1 run", WORKLOADS["figA1"], a1_spec, cfg.epochs, True)):
        n = max(2, round(n * cfg.scale))
        fields, (task,) = sample_trials(cfg.trials, n, [alpha], seed=cfg.seed)
        steps = epochs * -(-task.labels.shape[1] // (spec.batch_size or task.labels.shape[1]))
        train_task(fields, task, spec, 1, observe=task_observer([task]))  # compiles the fused kernel (or loads it)
        finals, wall = {}, {}
        modes = [("float32", task.inputs.float(), False), ("int8", task.inputs, False)] + \
            [("int8 fused", task.inputs, True)] * (spec.batch_size is not None)  # only minibatch epochs are fused
        modes += [("cuda float32", None, False)] if gpu else []
        for mode, values, fused in modes:
            on = to_device(task, gpu) if values is None else dataclasses.replace(task, inputs=values)
            start = fields.to(on.inputs.device)
            begin = time.perf_counter()
            final, _ = train_task(start, on, spec, epochs, observe=task_observer([on]), record_every=epochs,
                                  anchor=start if anchored else None, fused=fused)
            finals[mode] = final.cpu()
            wall[mode] = time.perf_counter() - begin
            rows.append({"workload": name, "n": n, "alpha": alpha, "mode": mode,
                         "ms_per_step": 1e3 * wall[mode] / steps})
        summary[f"{name}: wall time {' / '.join(wall)} (s)"] = tuple(wall.values())
        summary[f"{name}: speed-up of a point, int8 over float32"] = wall["float32"] / wall["int8"]
        if gpu:
            summary[f"{name}: speed-up of a point, cuda float32 over int8 CPU"] = wall["int8"] / wall["cuda float32"]
        if "int8 fused" in wall:
            summary[f"{name}: speed-up of a point, int8 fused over int8"] = wall["int8"] / wall["int8 fused"]
        for mode in [mode for mode in wall if mode != "float32"]:
            summary[f"{name}: max |h_float32 - h_{mode}| at the end"] = float((finals["float32"] - finals[mode]).abs().max())
        summary[f"{name}: max |h| at the end"] = float(finals["float32"].abs().max())
    return rows, summary


def plot(rows: list[dict]):
    import matplotlib.pyplot as plt

    plot_style()
    fig, axis = plt.subplots(figsize=(4.5, 3.0))
    names = list(dict.fromkeys(row["workload"] for row in rows))
    modes = [mode for mode in ("float32", "int8", "int8 fused", "cuda float32") if any(row["mode"] == mode for row in rows)]
    width = 0.8 / len(modes)
    for index, mode in enumerate(modes):
        found = [(place, row["ms_per_step"]) for place, name in enumerate(names) for row in rows
                 if row["workload"] == name and row["mode"] == mode]
        axis.bar([place + (index + 0.5) * width - 0.4 for place, _ in found], [value for _, value in found],
                 width=width, color=("grey", "royalblue", "navy", "darkorange")[index], label=mode)
    axis.set_xticks(range(len(names)), names)
    axis.set_ylabel("ms per step (median)")
    axis.set_yscale("log")
    axis.legend()
    return fig


def main(cfg: Config) -> None:
    benchmark_main(cfg, STEM, measure, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
