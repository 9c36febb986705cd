#!/usr/bin/env bash
# Checks and times the CUDA backend on one GPU machine in one command: parity against the CPU
# and transformers, training and rollout throughput beside PyTorch on the same GPU, the matmul
# kernels, and a kernel profile, each step under its own time limit, then a table.
#
# Needs: an NVIDIA GPU with its driver, Python with torch and transformers, and the bundle that
# `cargo xtask gpu-bundle` builds into .gpu/ (no Rust toolchain is needed on the GPU machine).
# From the repository root:
#   bash scripts/gpu/measure.sh                      # the default steps
#   bash scripts/gpu/measure.sh parity train-cublas  # the steps named, in order
#
# Steps (default: $DEFAULT_STEPS below, most informative first):
#   env                  GPU, driver, libraries found, and the copy bandwidth (the decode floor)
#   parity               tests/cuda.rs: transformers parity, GPU vs CPU gradients, kernels
#   nccl                 tests/nccl.rs: the gradient sum on the GPU by NCCL against the host path
#   train                spiral-bench train-gpu with the default settings
#   train-composed       the same with SPIRAL_CUDA_BACKWARD=composed (autodiff's own backward)
#   train-cublas         the same with SPIRAL_CUDA_MATMUL=cublas
#   train-burn           the same with SPIRAL_CUDA_MATMUL=burn (burn's matmul kernel)
#   peer-train           PyTorch eager on the same train-gpu shape
#   rollout, peer-rollout  rollout-gpu, ours and transformers `generate`
#   kernels              matmul-kernels: every bf16 kernel on a training step's products
#   spiral               a shortened SPIRAL run of configs/gpu-qwen3-0.6b-countdown.toml
#   profile              CUBECL_DEBUG_OPTION=profile on one 8 x 768 training step
# Settings: SEQS (16), MICRO (4) and STEPS (8 timed after the warm-up: the first steps after the
# kernels compile are slower than the later ones) for the train steps. BUDGET_S (540) is the
# time the whole command may take: a step gets the smaller of its own limit and what is left,
# and is skipped when under 30 s is left. Logs go to $OUT (default /tmp/gpu-measure); the last
# lines printed are the table.
set -u
OUT=${OUT:-/tmp/gpu-measure}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/../.."
K=.gpu
DEFAULT_STEPS="env parity nccl train peer-train train-cublas train-composed"
BUDGET=${BUDGET_S:-540}
SEQS=${SEQS:-16}
MICRO=${MICRO:-4}
STEPS=${STEPS:-8}

[ -f $K/BUILT_FROM ] || { echo "no $K/BUILT_FROM: build the bundle with cargo xtask gpu-bundle and copy .gpu/ with the checkout"; exit 2; }
for a in $K/*.tar.xz; do [ -e "$a" ] && tar xJf "$a" -C $K; done
# The test binary reads its fixtures at the path it was built in (CARGO_MANIFEST_DIR).
built_in=$(sed -n 's/^root: //p' $K/BUILT_FROM)
if [ -n "$built_in" ] && [ "$built_in" != "$PWD" ] && [ ! -e "$built_in" ]; then
  mkdir -p "$(dirname "$built_in")" && ln -s "$PWD" "$built_in"
fi
# cuBLAS, NVRTC and the CUDA runtime where CUDA or PyTorch installs keep them (cudarc loads them
# by name).
nvidia_libs=$(python3 -c '
import glob, os, nvidia
print(" ".join(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "lib"))))' 2>/dev/null)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib $nvidia_libs; do
  [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
export LD_LIBRARY_PATH

printf '%-24s %4s %6s %9s %12s\n' step rc wall_s peak_mib tokens_per_s > "$OUT/table"
{ echo "bundle:"; sed 's/^/  /' $K/BUILT_FROM; } > "$OUT/summary"

# Runs a step's command under `timeout`, sampling GPU memory every 50 ms (as xtask's
# gpu_memory does), and adds a row to the table: rc, wall time, peak MiB, the first tokens/s.
measure() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 30 ]; then
    printf '%-24s %4s\n' "$name" skip >> "$OUT/table"; echo "== $name skipped: ${left}s of the budget left"; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local before; before=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$OUT/$name.mem" &
  local sampler=$! t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
  local peak; peak=$(sort -n "$OUT/$name.mem" | tail -1)
  [ -n "$peak" ] && [ -n "$before" ] && peak=$((peak - before)) || peak=-
  local rate; rate=$(grep -o '"tokens_per_s": *[0-9.e+-]*' "$OUT/$name.log" | head -1 | sed 's/.*: *//')
  printf '%-24s %4s %6s %9s %12.0f\n' "$name" "$rc" "$((SECONDS - t0))" "$peak" "${rate:-0}" >> "$OUT/table"
  echo "== $name rc=$rc wall=$((SECONDS - t0))s (limit ${limit}s) peak_mib=$peak"
  grep -v '^\s*$' "$OUT/$name.log" | tail -n 8
}

train() {
  local name=$1; shift
  measure "$name" 120 env "$@" $K/spiral-bench train-gpu --sequences "$SEQS" --micro-batch "$MICRO" --steps "$STEPS"
}

for step in ${@:-$DEFAULT_STEPS}; do
  case $step in
    env)
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee -a "$OUT/summary"
      for l in libcuda.so.1 libnvrtc.so.13 libnvrtc-builtins.so.13.0 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
        found=$(for d in ${LD_LIBRARY_PATH//:/ }; do ls "$d/$l"* 2>/dev/null; done | head -1)
        echo "$l: ${found:-$(ldconfig -p | grep -m1 -o "/.*$l.*" || echo missing)}" | tee -a "$OUT/summary"
      done
      # Bytes read + written by a large device-to-device copy: the ceiling of the decode floor.
      python3 -c '
import torch
x = torch.empty(2**30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record(); [y.copy_(x) for _ in range(20)]; e.record(); torch.cuda.synchronize()
print(round(2 * 20 * x.numel() / (s.elapsed_time(e) / 1e3) / 1e9))' > "$OUT/bandwidth"
      echo "copy bandwidth GB/s: $(cat "$OUT/bandwidth")" | tee -a "$OUT/summary" ;;
    parity) measure parity 150 $K/cuda-tests --test-threads 1 --nocapture ;;
    nccl) measure nccl 60 $K/nccl-tests --test-threads 1 --nocapture ;;
    train) train train ;;
    train-composed) train train-composed SPIRAL_CUDA_BACKWARD=composed ;;
    train-cublas) train train-cublas SPIRAL_CUDA_MATMUL=cublas ;;
    train-cublas-composed) train train-cublas-composed SPIRAL_CUDA_MATMUL=cublas SPIRAL_CUDA_BACKWARD=composed ;;
    train-burn) train train-burn SPIRAL_CUDA_MATMUL=burn ;;
    peer-train) measure peer-train 90 python3 benches/peer/torch_bench.py train-gpu --sequences "$SEQS" ;;
    rollout) measure rollout 180 $K/spiral-bench rollout-gpu --memory-bandwidth-gbs "$(cat "$OUT/bandwidth" 2>/dev/null || echo 3000)" ;;
    peer-rollout) measure peer-rollout 90 python3 benches/peer/torch_bench.py rollout-gpu ;;
    kernels) measure kernels 240 $K/matmul-kernels ;;
    spiral) measure spiral 240 $K/spiral-train --config configs/gpu-qwen3-0.6b-countdown.toml \
              --device cuda --out "$OUT/run" --set warm_start.steps=20 --set train.steps=3 \
              --set eval.problems=32 --set task.test_problems=32 ;;
    profile)
      # CubeCL reads the profiler's log file from a cubecl.toml in the working directory.
      dir=$(mktemp -d); log="$dir/kernels.log"
      printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\nappend = false\n' "$log" > "$dir/cubecl.toml"
      measure profile 120 bash -c "cd $dir && CUBECL_DEBUG_OPTION=profile $PWD/$K/spiral-bench train-gpu --sequences 8 --micro-batch 8 --steps 1"
      # Nothing to summarise when the step was skipped or wrote no log.
      if [ -s "$log" ]; then
        python3 scripts/gpu/kernel_profile.py "$log" > "$OUT/profile.summary" 2>&1; head -30 "$OUT/profile.summary"
        xz -T4 -c "$log" > "$OUT/profile.kernels.log.xz"
      fi ;;
    *) echo "unknown step $step (see the header of $0)" ;;
  esac
done

# Each train variant against the peer measured in this same command.
peer=$(awk '$1 == "peer-train" && $2 == 0 { print $5 }' "$OUT/table")
if [ -n "$peer" ] && [ "$peer" != 0 ]; then
  awk -v p="$peer" '$1 ~ /^train/ && $2 == 0 { printf "%s / peer-train = %.3fx\n", $1, $5 / p }' "$OUT/table" >> "$OUT/table"
fi
echo; cat "$OUT/summary"; echo; cat "$OUT/table"
