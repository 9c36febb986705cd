#!/usr/bin/env bash
# GPU call 4 of the H100 measurement of 2026-11-23: the SPIRAL run of configs/gpu-qwen3-0.6b-countdown.toml, shortened,
# with the warm start's tokens/s now in metrics.jsonl.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/measure.sh env > /dev/null
R=/tmp/run; rm -rf $R
measure train 280 .gpu/spiral-train --config configs/gpu-qwen3-0.6b-countdown.toml \
  --device cuda --out $R --set warm_start.steps=60 --set train.steps=2 \
  --set eval.problems=32 --set task.test_problems=32
cp $R/metrics.jsonl $R/config.toml "$OUT/" 2>/dev/null
grep -v '^\s*$' "$OUT/train.log" | grep -vE '^\s+"|^\[|^\]' | tail -25
cat "$OUT/metrics.jsonl" | cut -c1-400
