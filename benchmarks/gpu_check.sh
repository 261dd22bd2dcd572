#!/usr/bin/env bash
# The GPU check: one command, at most about 8 minutes, on a machine with one CUDA device (docs/scaling.md).
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default figures/gpu; commit it with the clean commit it ran at)
# 1. the GPU tests (tests/test_gpu.py: gradient, stacked points, deep forward/backward, a figure script — each
#    against the CPU) and the stacked-points tests;
# 2. the deep training step and the perceptron step on the GPU (the same benchmarks the CPU numbers come from:
#    compare with figures/bench_deep_training.json and figures/bench_perceptron_step.json);
# 3. one paper-scale figure: Fig. 3 (N = 1000, 20 trials, 63 points) with the task-2 points of one γ and
#    learning rate trained as one tensor computation (--points_per_batch); resumable, so a run cut by its time
#    limit keeps its finished points (rerun the line to go on).
# Every step has its own time limit; a step that fails is reported and the next one runs.  The interpreter is
# $PYTHON (default python3) with the repository on PYTHONPATH, so a machine with torch, numba, scipy, matplotlib
# and tqdm needs no install.  On a lent device machine, whose $OUT returns at most 8 files:
#   bash benchmarks/gpu_check.sh /tmp/gpu; tar czf $OUT/gpu_check.tgz -C /tmp gpu
set -u
out=${1:-figures/gpu}
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
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  step 120 "$py" -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_point_batches.py
  step 60 "$py" benchmarks/bench_deep_training.py --device cuda --out_dir "$out"
  step 60 "$py" benchmarks/bench_perceptron_step.py --device cuda --out_dir "$out"
  step 240 "$py" single_layer/fig3_second_task.py --device cuda --points_per_batch 64 --workers 8 \
    --out_dir "$out/fig3_second_task"
} 2>&1 | tee "$out/gpu_check.log"
