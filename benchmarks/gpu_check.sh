#!/usr/bin/env bash
# The checks only a CUDA card can make, as one script for a lent GPU machine (15 minutes of
# device time a session, start included): the CUDA-only tests, one training run of the default
# schedule and of the journal's batch-2048 schedule, the engine against the naive pipeline,
# bf16 against fp32 per step, eager against graphed steps and populations
# (benchmarks/graph_population.py), and a default 100-trial study with its confirmation.
#
#   DATA=path/to/cifar10-images.tar.gz OUT=folder bash benchmarks/gpu_check.sh
#
# DEVICE=cpu TRIALS=3 rehearses the script on a machine without a card. Each step has its own
# time limit, so a slow step cannot take the ones after it down with it.
set -u
OUT=${OUT:-/tmp/gpu-check}
DATA=${DATA:-.gpudata/cifar10-images.tar.gz}
DEVICE=${DEVICE:-cuda}
TRIALS=${TRIALS:-100}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 LENET_CACHE=${LENET_CACHE:-/tmp/lenet-cache}
PY=${PY:-python3}
if ! $PY -c 'import optuna' 2>/dev/null; then  # the GPU image lacks optuna and friends: wheels carried from here
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
LS="$PY -m search.cli"
step() { echo; echo "== $1 ($(date +%T))"; }

step environment
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
$PY -c 'import torch, optuna; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "optuna", optuna.__version__); print(torch.cuda.get_device_name() if torch.cuda.is_available() else "no cuda")'
nproc

step "CUDA-only tests and the device policy's tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/lenet/test_cuda.py tests/lenet/test_device.py 2>&1 | tail -8

step "train: the default schedule (decodes the archive first)"
timeout ${TRAIN_LIMIT:-120} $LS train --data "$DATA" --device "$DEVICE" --quiet --out "$OUT/train-default" 2>&1 | tail -25

step "train: the journal's schedule (batch 2048, lr 0.01, StepLR 10 x 0.1, momentum 0.9, 30 epochs)"
timeout ${TRAIN_LIMIT:-120} $LS train --data "$DATA" --device "$DEVICE" --quiet --batch-size 2048 --lr 0.01 --step-size 10 \
    --gamma 0.1 --momentum 0.9 --epochs 30 --out "$OUT/train-journal" 2>&1 | tail -25

step "step precision: the policy (bf16 autocast on capability >= 8.0) against fp32"
timeout 120 $PY benchmarks/step_precision.py --data "$DATA" --device "$DEVICE" --rounds 5 2>&1 | tail -8

step "bench: engine against the naive DataLoader pipeline"
timeout 150 $LS bench --data "$DATA" --device "$DEVICE" --batch-sizes 128,512,2048 --epochs 2 --workers 8 2>&1 | tail -12

step "graphed steps and populations: ms per step, members against solo runs, a sync-checked epoch"
timeout 240 $PY benchmarks/graph_population.py --data "$DATA" --device "$DEVICE" --rounds 3 2>&1 | tail -30

step "optimize --trials $TRIALS, defaults, confirmation included"
start=$(date +%s)
timeout 330 $LS optimize --trials "$TRIALS" --data "$DATA" --device "$DEVICE" --storage "sqlite:///$OUT/gpu.db" \
    --study gpu-default --quiet 2>&1 | tail -40
echo "optimize wall: $(( $(date +%s) - start )) s"
timeout 30 $LS studies show gpu-default --storage "sqlite:///$OUT/gpu.db" 2>&1 | tail -40
timeout 30 $LS export --study gpu-default --storage "sqlite:///$OUT/gpu.db" -o "$OUT/best-gpu.json" 2>&1 | tail -3
