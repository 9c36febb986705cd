#!/usr/bin/env bash
# GPU call 2 of the H100 measurement of 2026-11-23: parity (with the two-pass long-row reductions), then both sides of
# rollout-gpu and train-gpu in one run.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PARITY_LIMIT=150 ROLLOUT_LIMIT=200 TRAIN_LIMIT=150 SEQS=16 MICRO=8 \
  bash .gpu/measure.sh env parity peer-rollout ours-rollout peer-train ours-train 2>&1 | tail -n 100
for f in parity peer-rollout ours-rollout peer-train ours-train; do echo "--- $f"; grep -E '^\{|test result|worst|long rows|batch|step|panicked' "$OUT/$f.log" | head -20; done
