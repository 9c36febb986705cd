#!/usr/bin/env bash
# Matmul-kernel measurement, call 2 (ran as .gpu/call7.sh): with double_async_strided_mma as the default bf16 kernel: parity tests
# (the new one checks every kernel's product and gradients against burn's), both sides of
# train-gpu at 16 x 768, and our rollout-gpu.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
unset SEQS
PARITY_LIMIT=240
source .gpu/measure.sh env parity > /dev/null
measure ours-train-mb4 110 .gpu/spiral-bench train-gpu --sequences 16 --micro-batch 4
SEQS=16 measure peer-train 80 env SEQS=16 python3 .gpu/torch_bench.py train-gpu
measure ours-rollout 150 .gpu/spiral-bench rollout-gpu --memory-bandwidth-gbs "$(cat $OUT/bandwidth 2>/dev/null || echo 3000)"
echo; cat "$OUT/summary"; grep -E "relative error|worst|long rows|test result|FAILED|panicked" "$OUT/parity.log" | head -60
grep '^{' "$OUT"/*.log | cut -c1-400
