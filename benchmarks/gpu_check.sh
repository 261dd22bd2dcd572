#!/usr/bin/env bash
# The GPU check: one command, at most GPU_CHECK_SECONDS (default 500 s), on a machine with one CUDA device
# (docs/scaling.md).
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default figures/gpu; commit it with the clean commit it ran at)
# 1. the GPU tests (tests/test_gpu.py: gradient, stacked points, deep forward/backward, a figure script — each
#    against the CPU) and the stacked-points tests;
# 2. the perceptron step and the deep training step on the GPU beside this machine's CPU (the same benchmarks the
#    committed CPU numbers come from: figures/bench_perceptron_step.json, figures/bench_deep_training.json);
# 3. where VCL_DATA_ROOT holds MNIST: the default permuted-MNIST run with --device cuda (compare its accuracies with
#    figures/permuted_mnist.json, made on the CPU);
# 4. one paper-scale figure with the time that is left: Fig. 3 (N = 1000, 20 trials, 63 points) with the task-2
#    points of one γ and learning rate trained as one tensor computation (--points_per_batch); resumable, so a run
#    cut by its time limit keeps its finished points (rerun the line to go on).
# Every step has its own time limit; a step that fails is reported and the next one runs.  The interpreter is
# $PYTHON (default python3) with the repository on PYTHONPATH, so a machine with torch, numba, scipy, matplotlib
# and tqdm needs no install.  GPU_CHECK_COMMIT names the commit of a tree copied without its own .git (written to the
# log; the jsons record what `git` finds there: on a lent machine a stale .git, see figures/gpu/README.md).
# On a lent device machine, whose $OUT returns at most 8 files:
#   GPU_CHECK_COMMIT=<sha> bash benchmarks/gpu_check.sh /tmp/gpu; tar czf $OUT/gpu_check.tgz -C /tmp gpu
set -u
out=${1:-figures/gpu}
budget=${GPU_CHECK_SECONDS:-500}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 2)" 2>/dev/null \
  || { echo "gpu_check: torch sees no CUDA device; nothing was run"; exit 2; }
step() {
  local limit=$1; shift
  echo "== $* (limit ${limit} s)"
  local begin=$SECONDS
  timeout "$limit" "$@"
  echo "== exit $? after $((SECONDS - begin)) s: $*"
}
{
  echo "commit: ${GPU_CHECK_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$py" -c "import torch, numba; print('torch', torch.__version__, 'numba', numba.__version__, 'cpus', torch.get_num_threads())"
  step 120 "$py" -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_point_batches.py
  step 60 "$py" benchmarks/bench_perceptron_step.py --device cuda --out_dir "$out"
  step 150 "$py" benchmarks/bench_deep_training.py --device cuda --repeats 3 --out_dir "$out"
  if [ -d "${VCL_DATA_ROOT:-/nonexistent}/MNIST/raw" ]; then
    step 120 "$py" deep_networks/permuted_mnist.py --device cuda --out_dir "$out/permuted_mnist"
  else
    echo "== permuted MNIST skipped: VCL_DATA_ROOT holds no MNIST/raw"
  fi
  left=$((budget - SECONDS - 10))
  if [ "$left" -ge 30 ]; then
    step "$left" "$py" single_layer/fig3_second_task.py --device cuda --points_per_batch 64 --workers 8 \
      --out_dir "$out/fig3_second_task"
  else
    echo "== Fig. 3 skipped: ${left} s left of ${budget} s"
  fi
} 2>&1 | tee "$out/gpu_check.log"
