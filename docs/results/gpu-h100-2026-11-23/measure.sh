#!/usr/bin/env bash
# The measurement script of the H100 calls: parity tests, then both sides of rollout-gpu and train-gpu, then a short
# SPIRAL run. Usage: bash .gpu/measure.sh STEP... (steps: env parity peer-rollout ours-rollout
# peer-train ours-train kernels train). Each step has its own time limit; logs go to $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
K=.gpu
for a in $K/*.tar.xz; do [ -e "$a" ] && tar xJf "$a" -C $K; done
# Fixture paths are compiled in as /work/main/...: point them at this checkout.
mkdir -p /work && [ -e /work/main ] || ln -s "$PWD" /work/main
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/lib") for p in nvidia.__path__))' 2>/dev/null) \
         $(ls -d /opt/torch/.venv/lib/python3.12/site-packages/nvidia/*/lib 2>/dev/null); do
  [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
export LD_LIBRARY_PATH

# Peak GPU memory of a command, sampled every 50 ms, as xtask's gpu_memory does.
measure() {
  local name=$1 limit=$2; shift 2
  local before; before=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$OUT/$name.mem" &
  local sampler=$!
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
  local peak; peak=$(sort -n "$OUT/$name.mem" | tail -1)
  echo "== $name rc=$rc wall=$((SECONDS - t0))s peak_mib=$((peak - before))" | tee -a "$OUT/summary"
  grep -v '^\s*$' "$OUT/$name.log" | tail -n 12
}

for step in "$@"; do
  case $step in
    env)
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee -a "$OUT/summary"
      echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
      for l in libnvrtc.so.13 libcuda.so.1 libnvrtc-builtins.so.13.0 libcublas.so.13; do
        echo "$l: $(ldconfig -p | grep -c "$l") in ldconfig; $(for d in ${LD_LIBRARY_PATH//:/ }; do ls $d/$l* 2>/dev/null; done | head -2 | tr '\n' ' ')"
      done
      # The copy bandwidth (bytes read + written), the ceiling for the decode floor.
      python3 -c '
import torch
x = torch.empty(2**30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record(); [y.copy_(x) for _ in range(20)]; e.record(); torch.cuda.synchronize()
print(round(2 * 20 * x.numel() / (s.elapsed_time(e) / 1e3) / 1e9))' > "$OUT/bandwidth"
      echo "copy bandwidth GB/s: $(cat $OUT/bandwidth)" | tee -a "$OUT/summary" ;;
    parity) measure parity ${PARITY_LIMIT:-120} $K/cuda-tests --test-threads 1 --nocapture ;;
    peer-rollout) measure peer-rollout 90 python3 $K/torch_bench.py rollout-gpu ;;
    peer-train) export SEQS=${SEQS:-16}; measure peer-train ${PEER_TRAIN_LIMIT:-70} python3 $K/torch_bench.py train-gpu ;;
    ours-rollout) measure ours-rollout ${ROLLOUT_LIMIT:-180} $K/spiral-bench rollout-gpu --memory-bandwidth-gbs "$(cat $OUT/bandwidth 2>/dev/null || echo 3000)" ;;
    kernels) measure kernels ${KERNELS_LIMIT:-240} $K/matmul-kernels ${KERNEL_ARGS:-} ;;
    ours-train) measure ours-train${SPIRAL_CUDA_MATMUL:+-$SPIRAL_CUDA_MATMUL}${SPIRAL_CUDA_BACKWARD:+-$SPIRAL_CUDA_BACKWARD} ${TRAIN_LIMIT:-150} $K/spiral-bench train-gpu --sequences ${SEQS:-16} --micro-batch ${MICRO:-8} ;;
    train) measure train 240 $K/spiral-train --config configs/gpu-qwen3-0.6b-countdown.toml \
             --device cuda --out "$OUT/run" --set warm_start.steps=20 --set train.steps=3 \
             --set eval.problems=32 --set task.test_problems=32 ;;
    *) echo "unknown step $step" ;;
  esac
done
# The kernel compiler's and autotuner's log, when CUBECL_DEBUG_LOG named a file: counts and
# the start and end, small enough to come back.
if [ -n "${CUBECL_DEBUG_LOG:-}" ] && [ -f "$CUBECL_DEBUG_LOG" ]; then
  { wc -l "$CUBECL_DEBUG_LOG"; grep -ciE "autotun" "$CUBECL_DEBUG_LOG"; grep -iE "autotun|fastest|compil" "$CUBECL_DEBUG_LOG" | cut -c1-300 | head -400; } > "$OUT/cubecl-summary.txt"
  grep -vE "^\s" "$CUBECL_DEBUG_LOG" | cut -c1-300 | tail -300 > "$OUT/cubecl-tail.txt"
fi
echo; cat "$OUT/summary"
