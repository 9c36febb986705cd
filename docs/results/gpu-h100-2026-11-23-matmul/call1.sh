#!/usr/bin/env bash
# Matmul-kernel measurement, call 1 (ran as .gpu/call6.sh): every cubek-matmul kernel on the bf16 products of a training step
# (matmul-kernels), then train-gpu at micro-batch 4 with burn's kernel and with the fastest.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/measure.sh > /dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/summary"
measure kernels 270 .gpu/matmul-kernels
best=$(python3 .gpu/pick_kernel.py "$OUT/kernels.log" 2> "$OUT/ranking.txt")
cat "$OUT/ranking.txt"; echo "best kernel: $best" | tee -a "$OUT/summary"
measure train-burn 110 .gpu/spiral-bench train-gpu --sequences 16 --micro-batch 4
measure "train-$best" 110 env SPIRAL_CUDA_MATMUL="$best" .gpu/spiral-bench train-gpu --sequences 16 --micro-batch 4
cat "$OUT/summary"
