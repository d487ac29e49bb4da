#!/usr/bin/env bash
# The GPU check of issue 21, in one go on a GPU machine (made for under 10 minutes on 16 cores and
# one H200): builds dalle, its tests and bench_device against python3's CUDA libtorch, runs the
# device tests on the GPU, a tiny run of every command on CUDA (fp16 training with resume, a
# GPU-trained bundle sampled on the GPU and on the CPU), bf16 and fp16 against fp32 on `small`,
# and the benchmarks, then prints one summary table. Each step is time-boxed and the rest still
# runs when one fails. The shipped model's evaluation runs on the device too (issue 19).
# Usage: scripts/gpu-check.sh [DEBS] [OUT]
#   DEBS: the .deb folder from scripts/cuda-deps.sh, for a machine without Debian's libraries
#   OUT:  logs and summary.txt (default build-cuda/gpu-check)
# Environment: DEVICE (default cuda), PEAK_TFLOPS (the GPU's dense 16-bit datasheet peak for the
# MFU column; default 989, an H100/H200), BUILD=0 to reuse the build as it is, BUILD_DIR (default
# build-cuda), QUICK=1 for a dry run of the script on a CPU (DEVICE=cpu BUILD=0 BUILD_DIR=build):
# the same steps, far fewer updates; STEPS="tests bench ..." to run only some steps.
set -uo pipefail
cd "$(dirname "$0")/.."
debs=${1:-}
out=${2:-build-cuda/gpu-check}
device=${DEVICE:-cuda}
peak=${PEAK_TFLOPS:-989}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
work=$(mktemp -d)
start=$SECONDS

# step NAME SECONDS COMMAND...: runs COMMAND with its output in $out/NAME.log, one summary line.
# With STEPS set, only the steps it names run (STEPS="precisions eval" BUILD=0: the rest of a run
# that a device call's time limit cut short, on the build the first call left).
step() {
  local name=$1 limit=$2
  shift 2
  [[ -n ${STEPS:-} && " $STEPS " != *" $name "* ]] && return 0
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  local verdict=ok
  ((rc == 124)) && verdict="TIMEOUT after ${limit}s" || { ((rc != 0)) && verdict="FAILED (exit $rc)"; }
  printf '%-22s %-24s %4ds\n' "$name" "$verdict" $((SECONDS - t0)) | tee -a "$summary"
  return $rc
}

{
  echo "gpu-check $(date -u +%FT%TZ) on $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
  python3 -c 'import torch; print("python3 torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count())'
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores"
} 2>&1 | tee -a "$summary"

if [[ ${BUILD:-1} != 0 ]]; then
  # shellcheck disable=SC2086
  step build 420 scripts/build-cuda.sh --check $debs || { cat "$out/build.log" | tail -30; exit 1; }
fi
# Why NCCL or CUDA graphs were left out, when they were (cmake/cuda_sources.cmake).
cp "${BUILD_DIR:-build-cuda}"/*-check.log "$out/" 2>/dev/null
# shellcheck disable=SC1091
[[ -f build-cuda/env.sh ]] && source build-cuda/env.sh
bin=${BUILD_DIR:-build-cuda}/bin
dalle=$bin/dalle
quick=${QUICK:-0}
export dalle device work quick
"$dalle" --version | tee -a "$summary"

# The device-agnostic tests, which add a GPU pass when one is visible: logits CPU = GPU, cached =
# full recompute for every mask type, the cache and masks on the GPU, an injected Inf under real
# fp16, autocast and precision plans, --device on every command, Gloo with GPU tensors and NCCL
# (one rank: one GPU cannot hold two), decoding steps replayed as a CUDA graph = the module's.
step tests 180 "$bin/dalle_tests" --gtest_brief=1 \
  --gtest_filter='Device.*:KvCache.*:ReferenceDecoder.*:GradScaling.InfInOneBlock*:Prior.*:Cli.EveryModelCommand*:DistGroup.*:GraphDecoder.*'

# Every command on the device, tiny: dVAE training and encoding, fp16 prior training that resumes
# exactly, fp16 weights (--weights16, prior and dVAE), a reranker, and the GPU-trained bundle sampled on the GPU
# and on the CPU.
e2e() {
  set -e
  local d=$work/e2e
  "$dalle" data shapes -n 600 --size 32 -s 1 -o "$d/shapes"
  "$dalle" vae train -c tiny -d "$d/shapes" -o "$d/vae" --steps 120 -s 1 --device "$device" --quiet
  "$dalle" vae encode --vae "$d/vae" -d "$d/shapes" -o "$d/tokens" --device "$device" --quiet
  "$dalle" vae reconstruct --vae "$d/vae" -d "$d/shapes" -n 64 -o "$d/recon.png" --device "$device"
  "$dalle" train -c tiny -d "$d/tokens" -o "$d/p10" --steps 10 -s 2 --no-samples --device "$device" --precision fp16 --quiet
  "$dalle" train -d "$d/tokens" -o "$d/p10" --steps 20 -s 2 --no-samples --device "$device" --precision fp16 --resume --quiet
  "$dalle" train -c tiny -d "$d/tokens" -o "$d/p20" --steps 20 -s 2 --no-samples --device "$device" --precision fp16 --quiet
  python3 - "$d/p10/metrics.jsonl" "$d/p20/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:])
assert a == b, f"resumed fp16 run differs from the straight one: {a} vs {b}"
print("fp16 training resumed on the device: the 20 losses equal the straight run's")
PY
  local w16=fp16  # 16-bit weights need real 16-bit products: fp16 on a GPU, bf16 on a CPU
  [[ $device == cpu ]] && w16=bf16
  "$dalle" train -c tiny -d "$d/tokens" -o "$d/w16" --steps 20 -s 2 --no-samples --device "$device" --precision $w16 \
    --weights16 --quiet
  "$dalle" vae train -c tiny -d "$d/shapes" -o "$d/vae16" --steps 20 -s 1 --device "$device" --precision $w16 \
    --weights16 --quiet
  "$dalle" rerank train -c tiny -d "$d/shapes" -o "$d/rerank" --steps 40 -s 1 --tokenizer "$d/p20/tokenizer.json" \
    --device "$device" --quiet
  cp "$d/rerank/rerank.safetensors" "$d/p20/"
  "$dalle" generate -m "$d/p20" -p "a red circle" -n 8 -s 3 -o "$d/gpu.png" --device "$device" --json
  "$dalle" generate -m "$d/p20" -p "a red circle" -n 8 -s 3 -o "$d/cpu.png" --device cpu --json
  "$dalle" generate -m "$d/p20" -p "a red circle" -n 8 -s 3 -o "$d/gpu16.png" --device "$device" --weights bf16 --json
  if cmp -s "$d/gpu.png" "$d/cpu.png"; then echo "same seed, same grid on $device and on the CPU"
  else echo "same seed, grids differ between $device and the CPU (logits differ in rounding)"; fi
}
export -f e2e
step e2e 150 bash -c e2e

# SPEC §3's precision scheme on a real model: bf16 and fp16 `small` runs end within 2% of fp32's
# held-out image loss (same data, seed and steps).
precisions() {
  set -e
  local d=$work/small
  local images=4000 vae_steps=400 steps=600
  ((quick)) && images=600 vae_steps=20 steps=20
  "$dalle" data shapes -n $images --size 64 -s 1 -o "$d/shapes"
  "$dalle" vae train -c small -d "$d/shapes" -o "$d/vae" --steps $vae_steps -s 1 --device "$device" --quiet
  "$dalle" vae encode --vae "$d/vae" -d "$d/shapes" -o "$d/tokens" --device "$device" --quiet
  for p in fp32 bf16 fp16; do
    "$dalle" train -c small -d "$d/tokens" -o "$d/$p" --steps $steps -s 1 --no-samples --val-every $steps \
      --device "$device" --precision "$p" --quiet
  done
  python3 - "$d" "$quick" <<'PY'
import json, sys
val = {p: [json.loads(l) for l in open(f"{sys.argv[1]}/{p}/metrics.jsonl")][-1]["val_loss_img"] for p in ("fp32", "bf16", "fp16")}
for p in ("bf16", "fp16"):
    print(f"small: {p} val_loss_img {val[p]:.4f} vs fp32 {val['fp32']:.4f}: {100 * (val[p] / val['fp32'] - 1):+.2f}%")
assert sys.argv[2] == "1" or all(val[p] <= 1.02 * val["fp32"] for p in ("bf16", "fp16")), "a 16-bit run is more than 2% worse than fp32"
PY
}

# Training tokens/s and MFU (bench-m at batch 32, gpu-1b at 8; a row that runs out of memory says
# so and the others still run), sampling seconds per image at batch 1 and 64, and the paper
# dVAE's encoder (bench-m's).
if ((quick)); then
  step bench 240 "$bin/bench_device" "$device" configs/tiny.json:8 2 4 0 "$(nproc)"
else
  step bench 240 "$bin/bench_device" "$device" "configs/bench-m.json:32,configs/gpu-1b.json:8" 5 64 "$peak" "$(nproc)"
fi
export -f precisions
step precisions 200 bash -c precisions

# Evaluation on the device (issue 19): the shipped model's held-out shapes (a judge trained here),
# and the Fréchet distance in the reranker's features against fresh renders.
evals() {
  set -e
  local d=$work/eval candidates=32 prompts=24 judge_steps=400 real=256
  ((quick)) && candidates=8 prompts=4 judge_steps=100 real=64
  "$dalle" eval shapes --device "$device" -o "$d/shapes" --split heldout --seeds 1 --templates 1 --relations 0 \
    --ceiling-renders 0 --judge-steps $judge_steps -n $candidates --max-prompts $prompts --quiet
  python3 - "$d/shapes/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["heldout"]
print(f"eval shapes on the device: held-out first {r['first']['both']:.3f}, reranked {r['reranked']['both']:.3f}")
PY
  "$dalle" data shapes -n $real --size 64 -s 5 -o "$d/real" --quiet
  "$dalle" eval fid --device "$device" --real "$d/real" -n $real -o "$d/fid" --blur 0,2 --kid-subset-size 32 --quiet
  grep -h '"fd_rerank\|"fid' "$d/fid/fid.json" | head -4
}
export -f evals
step eval 150 bash -c evals

echo "--- results" | tee -a "$summary"
grep -h -e 'resumed on the device' -e 'same seed' -e 'generate: "' -e 'val_loss_img' -e 'eval shapes on' -e '\[  PASSED' -e '\[  FAILED' \
  "$out"/e2e.log "$out"/precisions.log "$out"/eval.log "$out"/tests.log 2>/dev/null | tee -a "$summary"
cat "$out/bench.log" | tee -a "$summary"
echo "gpu-check: $((SECONDS - start)) s in all; logs in $out" | tee -a "$summary"
rm -rf "$work"
