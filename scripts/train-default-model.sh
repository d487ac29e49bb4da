#!/usr/bin/env bash
# Retrains the shipped model in models/default from scratch, exactly as it was made
# (configs/default.json: 64x64 shapes, 16x16 dVAE tokens, a 4-layer prior; times in BENCHMARKS.md).
#
# Usage: scripts/train-default-model.sh [WORK_DIR]            (default: runs/default)
#   DEVICE=cuda scripts/train-default-model.sh                 dVAE on the GPU (the prior trains on the CPU
#                                                              until the prior trainer runs on CUDA)
#   PROCS=1 scripts/train-default-model.sh                     prior in one process (default: 2 torchrun
#                                                              ranks of 1 thread when torchrun is installed)
# Safe to rerun after an interruption: each stage resumes from its checkpoint or is skipped when done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$root/runs/default}"
device="${DEVICE:-cpu}"
config="$root/configs/default.json"
dalle="$root/dalle"
procs="${PROCS:-2}"
command -v torchrun >/dev/null || procs=1
mkdir -p "$work"
resume_flag() { [[ -f "$1/checkpoint.safetensors" ]] && echo --resume || true; }

# Data: 40,000 train-split images (the held-out colour-shape pairs never appear) with 3 captions each.
[[ -f "$work/shapes/039999.txt" ]] || "$dalle" data shapes -n 40000 --size 64 -s 0 -o "$work/shapes"

# Stage 1, the dVAE: 3,000 joint updates, then 6,000 on the decoder alone over the argmax tokens.
[[ -f "$work/vae/.done" ]] || {
  "$dalle" vae train -c "$config" -d "$work/shapes" -o "$work/vae" -s 0 --precision bf16 --device "$device" \
    --save-every 250 --sample-every 1000 $(resume_flag "$work/vae") && touch "$work/vae/.done"; }
[[ -f "$work/tokens/.done" ]] || {
  "$dalle" vae encode --vae "$work/vae" -d "$work/shapes" -o "$work/tokens" && touch "$work/tokens/.done"; }

# Stage 2, the prior, with the shipped tokenizer (so the reranker's text ids stay valid).
prior_flags=(-c "$config" -d "$work/tokens" -o "$work/prior" -s 0 --precision bf16 --save-every 100
             --sample-every 1000 --tokenizer "$root/models/default/tokenizer.json" --dist-timeout 3600)
if [[ ! -f "$work/prior/.done" ]]; then
  if [[ "$procs" -gt 1 ]]; then
    # 2 ranks x 16 samples = the config's batch of 32; 1 thread each beats 1 process of 2 threads here.
    torchrun --nproc_per_node "$procs" --no_python --redirects 2 --tee 2 --master_addr 127.0.0.1 --master_port 29611 \
      "$dalle" train "${prior_flags[@]}" -b $((32 / procs)) -t 1 $(resume_flag "$work/prior")
  else
    "$dalle" train "${prior_flags[@]}" $(resume_flag "$work/prior")
  fi
  touch "$work/prior/.done"
fi

# The reranker is the shipped 32x32 one (it downsamples the 64x64 samples); the dVAE, the prior and
# the bundle's config replace the old ones.
mkdir -p "$root/models/default"
# The bundle's config is the preset plus what it was trained on (`dalle serve` reports it).
sed 's|^  "name": "default",$|&\n  "trained_on": "the shapes world (dalle data shapes): 64x64 coloured shapes with captions, its held-out colour-shape pairs never seen",|' \
  "$config" > "$root/models/default/config.json"
# fp32 weights: the bundle is 20 MB (`dalle quantize` makes bf16 or int8 copies).
cp "$work/vae/vae.safetensors" "$work/prior/prior.safetensors" "$root/models/default/"
echo "models/default updated from $work"
