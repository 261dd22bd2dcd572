"""Continual-learning protocol (deep_networks/image_tasks.py, training.py, continual.py): data, permutations,
determinism, resume, bad input."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from deep_networks import continual, permuted_mnist, training
from deep_networks.image_tasks import load_dataset, permuted_tasks, synthetic_dataset
from deep_networks.training import train_sequence
from conftest import tiny_config, tiny_tasks
from harness.command_line import parse_config
from harness.devices import torch_generator
from harness.errors import ConfigError
from harness.paths import data_root


def test_permutation_is_shared_by_train_and_test_and_task_one_is_permuted():
    base = synthetic_dataset(64, 32, torch_generator(0), torch.float32, "cpu")
    tasks = permuted_tasks(base, 3, torch_generator(1))
    for task in tasks:
        # recover the permutation from a one-hot "image" pushed through the same indexing as the data
        train_perm = [int(np.flatnonzero(row)[0]) for row in
                      permuted_tasks(dataclasses.replace(base, x_train=torch.eye(784), x_test=torch.eye(784)),
                                     3, torch_generator(1))[tasks.index(task)].x_train.T]
        torch.testing.assert_close(task.x_train, base.x_train[:, train_perm])
        torch.testing.assert_close(task.x_test, base.x_test[:, train_perm])
        assert train_perm != list(range(784))
        assert torch.equal(task.y_train, base.y_train) and torch.equal(task.y_test, base.y_test)
    assert not torch.equal(tasks[0].x_train, tasks[1].x_train)


def test_same_seed_same_numbers_and_another_seed_differs(tmp_path):
    cfg, tasks = tiny_config(), tiny_tasks()
    cpu = torch.device("cpu")
    first, (shots,) = train_sequence(cfg, tasks, "vcl", (0,), cpu, torch.float32, tmp_path / "a.pt")
    again, (shots_again,) = train_sequence(cfg, tasks, "vcl", (0,), cpu, torch.float32, tmp_path / "b.pt")
    other, _ = train_sequence(cfg, tasks, "vcl", (1,), cpu, torch.float32, tmp_path / "c.pt")
    assert first == again
    assert all(np.array_equal(shots[key], shots_again[key]) for key in shots)
    assert [row["accuracy"] for row in first] != [row["accuracy"] for row in other]
    assert {row["eval_mode"] for row in first} == {"noisy", "mean"}
    assert len({(row["epoch"], row["task_eval"]) for row in first}) == 4 * 2  # every task after every epoch
    assert shots["sigma_mean"].shape == (4 + 1, 3)


@pytest.mark.parametrize("method", ["vcl", "vcl_anchored"])
def test_resume_after_interruption_gives_identical_results(tmp_path, monkeypatch, method):
    cfg, tasks = tiny_config(), tiny_tasks()
    reference, (ref_shots,) = train_sequence(cfg, tasks, method, (0,), torch.device("cpu"), torch.float32,
                                             tmp_path / "ref.pt")
    checkpoint = tmp_path / "run.pt"
    calls = {"count": 0}
    original = training.accuracy

    def interrupting_accuracy(*args, **kwargs):  # dies during the evaluation of epoch 3 (first epoch of task 2)
        calls["count"] += 1
        if calls["count"] > 2 + 2 * 2:  # epoch 1: 2 tasks × noisy; epoch 2: 2 tasks × (noisy, mean)
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "accuracy", interrupting_accuracy)
    with pytest.raises(KeyboardInterrupt):
        train_sequence(cfg, tasks, method, (0,), torch.device("cpu"), torch.float32, checkpoint)
    monkeypatch.setattr(training, "accuracy", original)
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 2
    resumed, (shots,) = train_sequence(dataclasses.replace(cfg, resume=True), tasks, method, (0,),
                                       torch.device("cpu"), torch.float32, checkpoint)
    assert resumed == reference
    assert all(np.array_equal(shots[key], ref_shots[key]) for key in shots)


def test_script_resume_skips_finished_methods(tmp_path, monkeypatch):
    cfg = tiny_config(methods=("vcl", "vcl_no_kl"), out_dir=str(tmp_path / "fresh"))
    permuted_mnist.main(cfg)
    original, trained = continual.train_sequence, []

    def crash_on_second_method(cfg, tasks, method, *args):
        if method == "vcl_no_kl" and not cfg.resume:
            raise KeyboardInterrupt
        trained.append(method)
        return original(cfg, tasks, method, *args)

    monkeypatch.setattr(continual, "train_sequence", crash_on_second_method)
    interrupted = dataclasses.replace(cfg, out_dir=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        permuted_mnist.main(interrupted)
    permuted_mnist.main(dataclasses.replace(interrupted, resume=True))
    assert trained == ["vcl", "vcl_no_kl"]  # vcl once before the crash, only vcl_no_kl after it
    assert (tmp_path / "cut" / "permuted_mnist.csv").read_text() == \
        (tmp_path / "fresh" / "permuted_mnist.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "cut").glob("*.npz")) == [
        "permuted_mnist_snapshots_vcl_no_kl_seed0.npz", "permuted_mnist_snapshots_vcl_seed0.npz"]
    assert not (tmp_path / "cut" / "checkpoints").exists()


@pytest.mark.parametrize("argv", [["--lr", "-0.1"], ["--methods", "sgd"], ["--n_tasks", "0"], ["--dtype", "half"],
                                  ["--batch_size", "0"], ["--eval_images", "20000"], ["--anchor_weight", "-1"],
                                  ["--n_train", "70000"]])
def test_bad_hyperparameters_exit_with_code_2(argv):
    with pytest.raises(SystemExit) as stop:
        parse_config(permuted_mnist.Config, permuted_mnist.QUICK, argv)
    assert stop.value.code == 2


def test_missing_dataset_without_network_is_a_clear_config_error(tmp_path, monkeypatch):
    from torchvision import datasets

    def no_network(self):
        raise OSError("no network")

    monkeypatch.setattr(datasets.MNIST, "download", no_network)
    with pytest.raises(ConfigError, match="--data_root.*VCL_DATA_ROOT"):
        load_dataset("mnist", tmp_path, 100, torch.float32, "cpu")


def test_data_root_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("VCL_DATA_ROOT", str(tmp_path))
    assert data_root("") == tmp_path
    (tmp_path / "x").mkdir()
    assert data_root(str(tmp_path / "x")) == tmp_path / "x"
    with pytest.raises(ConfigError, match="not an existing folder"):
        data_root(str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()  # nothing is created in a folder the user named


def has_mnist() -> bool:
    root = data_root()
    return (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists() or \
        (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


@pytest.mark.realdata
@pytest.mark.skipif(not has_mnist(), reason="MNIST not found under --data_root/$VCL_DATA_ROOT/data "
                                            "(set VCL_DATA_ROOT to a folder holding MNIST/raw and FashionMNIST/raw)")
def test_real_data_loads_and_trains_a_few_steps(tmp_path):
    mnist = load_dataset("mnist", data_root(), 32000, torch.float32, "cpu")
    fashion = load_dataset("fashion", data_root(), 32000, torch.float32, "cpu")
    for task in (mnist, fashion):
        assert task.x_train.shape == (32000, 784) and task.x_test.shape == (10000, 784)
        assert float(task.x_train.min()) == 0.0 and float(task.x_train.max()) == 1.0
        assert set(task.y_test.tolist()) == set(range(10))
    assert int(mnist.y_train[0]) == 5  # the first MNIST training image is a 5 (file order kept)
    tasks = permuted_tasks(mnist, 2, torch_generator(0))
    cfg = tiny_config(n_train=32000, hidden=(64, 64), eval_images=1000, epochs_per_task=1)
    short = [dataclasses.replace(task, x_train=task.x_train[:6400], y_train=task.y_train[:6400]) for task in tasks]
    rows, _ = train_sequence(cfg, short, "vcl", (0,), torch.device("cpu"), torch.float32, tmp_path / "run.pt")
    first_task = [row["accuracy"] for row in rows if row["epoch"] == 1 and row["task_eval"] == 1
                  and row["eval_mode"] == "noisy"]
    assert first_task[0] > 0.25  # 100 steps of a 64-64 network: well above chance (0.1)


def test_batched_seeds_are_statistically_the_separate_runs(tmp_path):
    """Four seeds as one batched run against the same seeds run one by one: same initial fields and data orders,
    the noise drawn differently, so the accuracy matrices agree within the seed-to-seed spread, not exactly."""
    base = synthetic_dataset(512, 200, torch_generator(0), torch.float32, "cpu")
    tasks = permuted_tasks(base, 2, torch_generator(1))  # learnable in a few epochs: accuracy ~0.5–0.8, not 1
    cfg = tiny_config(n_train=512, eval_images=200, epochs_per_task=3, batch_size=32, hidden=(32, 32), lr=0.05)
    seeds, cpu = (0, 1, 2, 3), torch.device("cpu")
    together, shots = train_sequence(cfg, tasks, "vcl", seeds, cpu, torch.float32, tmp_path / "batched.pt")
    apart = [row for seed in seeds
             for row in train_sequence(cfg, tasks, "vcl", (seed,), cpu, torch.float32, tmp_path / f"{seed}.pt")[0]]
    assert len(shots) == len(seeds) and shots[0]["sigma_mean"].shape == (6 + 1, 3)

    def final(rows, seed):
        return [row["accuracy"] for row in rows if row["seed"] == seed and row["epoch"] == 6
                and row["eval_mode"] == "noisy"]

    assert sorted((row["seed"], row["epoch"], row["task_eval"], row["eval_mode"]) for row in together) == \
        sorted((row["seed"], row["epoch"], row["task_eval"], row["eval_mode"]) for row in apart)
    batched = np.array([final(together, seed) for seed in seeds])  # (seed, task)
    separate = np.array([final(apart, seed) for seed in seeds])
    spread = np.sqrt((batched.var(0, ddof=1) + separate.var(0, ddof=1)) / len(seeds))
    assert np.all(np.abs(batched.mean(0) - separate.mean(0)) <= 4 * spread + 0.03)
    assert batched.mean() > 0.2 and separate.mean() > 0.2  # both learn (10 classes: chance 0.1)


def test_permuted_mnist_batches_the_seeds_of_field_methods_only(tmp_path):
    cfg = tiny_config(methods=("vcl", "ewc_fields"), seeds=2, out_dir=str(tmp_path))
    permuted_mnist.main(cfg)
    points = [line.split('"key": "')[1].split('"')[0]
              for line in (tmp_path / ".permuted_mnist.points.jsonl").read_text().splitlines()[1:]]
    assert sorted(points) == ["ewc_fields/seed0", "ewc_fields/seed1", "vcl/seeds0-1"]
    assert sorted(p.name for p in tmp_path.glob("*vcl_seed*.npz")) == [
        "permuted_mnist_snapshots_vcl_seed0.npz", "permuted_mnist_snapshots_vcl_seed1.npz"]
