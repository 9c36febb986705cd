#!/usr/bin/env bash
# GPU call 1 of the H100 measurement of 2026-11-23: where the time of a train-gpu step goes (CubeCL's per-kernel
# profiler), with and without burn-cubecl-fusion's matmul autotuner (variant B), and PyTorch's
# profile of the same step.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .gpu/measure.sh env
prof() { # name limit cmd...: run under CubeCL's kernel profiler, keep the summaries
  local name=$1 limit=$2; shift 2
  local dir; dir=$(mktemp -d); local log="$OUT/$name.kernels.log"
  printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\nappend = false\n' "$log" > "$dir/cubecl.toml"
  local t0=$SECONDS
  (cd "$dir" && CUBECL_DEBUG_OPTION=profile timeout "$limit" "$@") > "$OUT/$name.log" 2>&1
  echo "== $name rc=$? wall=$((SECONDS - t0))s" | tee -a "$OUT/summary"
  tail -n 6 "$OUT/$name.log"
  awk -F'|' 'NF>=6' "$log" > "$OUT/$name.summary" 2>/dev/null
  grep -c . "$log"; xz -T4 -k "$log" 2>/dev/null; rm -f "$log"
}
R=$PWD/.gpu
prof A-train-prof 90 $R/A/spiral-bench train-gpu --sequences 8 --micro-batch 8
measure B-train 150 $R/B/spiral-bench train-gpu --sequences 16 --micro-batch 8
prof B-train-prof 90 $R/B/spiral-bench train-gpu --sequences 8 --micro-batch 8
measure B-rollout 100 $R/B/spiral-bench rollout-gpu --memory-bandwidth-gbs "$(cat $OUT/bandwidth)"
measure peer-prof 70 python3 .gpu/torch_profile.py
cat "$OUT/peer-prof.log" | head -45
echo; cat "$OUT/summary"
