#!/usr/bin/env bash
# GPU call 5 of the H100 measurement of 2026-11-23: train-gpu step-time spread at micro-batch 8 and 4 (is it memory?).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/measure.sh > /dev/null
measure mb8 90 .gpu/spiral-bench train-gpu --sequences 16 --micro-batch 8
measure mb4 90 .gpu/spiral-bench train-gpu --sequences 16 --micro-batch 4
cat "$OUT/summary"
