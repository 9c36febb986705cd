#!/usr/bin/env bash
# Matmul-kernel measurement, call 3 (ran as .gpu/call8.sh): the kernel profile of a train-gpu step (8 x 768, micro-batch 8, as in
# the first H100 measurement) with burn's matmul and with double_async_strided_mma, then train-gpu at 16 x 768,
# micro-batch 4, 8 timed steps, with each kernel in turn.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/measure.sh > /dev/null
: > "$OUT/summary"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$OUT/summary"
for kernel in double_async_strided_mma burn; do
  dir=$(mktemp -d); log="$OUT/prof-$kernel.kernels.log"
  printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\nappend = false\n' "$log" > "$dir/cubecl.toml"
  (cd "$dir" && SPIRAL_CUDA_MATMUL=$kernel CUBECL_DEBUG_OPTION=profile timeout 90 $OLDPWD/.gpu/spiral-bench train-gpu --sequences 8 --micro-batch 8) > "$OUT/prof-$kernel.log" 2>&1
  echo "== prof-$kernel rc=$?" | tee -a "$OUT/summary"
  python3 .gpu/kernel_profile.py "$log" > "$OUT/prof-$kernel.summary" 2>&1; head -30 "$OUT/prof-$kernel.summary"
  xz -T4 "$log"
done
for kernel in double_async_strided_mma burn; do
  measure "train-$kernel" 110 env SPIRAL_CUDA_MATMUL=$kernel .gpu/spiral-bench train-gpu --sequences 16 --micro-batch 4 --steps 8
done
cat "$OUT/summary"
