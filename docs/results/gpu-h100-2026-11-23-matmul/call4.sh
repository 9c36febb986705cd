#!/usr/bin/env bash
# Matmul-kernel measurement, call 4 (ran as .gpu/call9.sh): the SPIRAL run of configs/gpu-qwen3-0.6b-countdown.toml, shortened,
# with double_async_strided_mma as the bf16 matmul (the same run as call 4 of the first H100 measurement).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/measure.sh > /dev/null
R=/tmp/run; rm -rf $R
measure train 270 .gpu/spiral-train --config configs/gpu-qwen3-0.6b-countdown.toml \
  --device cuda --out $R --set warm_start.steps=60 --set train.steps=2 \
  --set eval.problems=32 --set task.test_problems=32
cp $R/metrics.jsonl $R/config.toml "$OUT/" 2>/dev/null
grep -v '^\s*$' "$OUT/train.log" | grep -vE '^\s+"|^\[|^\]' | tail -25
cat "$OUT/metrics.jsonl" | cut -c1-400
