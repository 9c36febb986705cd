#!/usr/bin/env bash
# GPU call 3 of the H100 measurement of 2026-11-23: the peer's rollout-gpu at its 64 sequences (call 2 ran it at 16 by
# mistake), the SPIRAL run of configs/gpu-qwen3-0.6b-countdown.toml, and a profiled train-gpu
# step of the new build.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
unset SEQS
source .gpu/measure.sh env
measure peer-rollout 90 python3 .gpu/torch_bench.py rollout-gpu
R=/tmp/run; rm -rf $R
measure train 250 .gpu/spiral-train --config configs/gpu-qwen3-0.6b-countdown.toml \
  --device cuda --out $R --set warm_start.steps=20 --set train.steps=3 \
  --set eval.problems=32 --set task.test_problems=32
cp $R/metrics.jsonl $R/config.toml "$OUT/" 2>/dev/null; du -sh $R; ls $R
dir=$(mktemp -d); log="$OUT/train-prof.kernels.log"
printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\nappend = false\n' "$log" > "$dir/cubecl.toml"
(cd "$dir" && CUBECL_DEBUG_OPTION=profile timeout 80 $OLDPWD/.gpu/spiral-bench train-gpu --sequences 8 --micro-batch 8) > "$OUT/train-prof.log" 2>&1
echo "== train-prof rc=$?" | tee -a "$OUT/summary"; xz -T4 "$log"
echo; cat "$OUT/summary"; grep '^{' "$OUT/peer-rollout.log"; tail -5 "$OUT/metrics.jsonl" | cut -c1-600
