#!/usr/bin/env bash
# Retrains the shipped model in models/default from scratch, exactly as it was made.
# Usage: scripts/train-default-model.sh [WORK_DIR]   (default: runs/default)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$root/runs/default}"
dalle="$root/dalle"
mkdir -p "$work"
"$dalle" data shapes -n 20000 --size 32 -s 0 -o "$work/shapes"
"$dalle" vae train -c "$root/configs/default.json" -d "$work/shapes" -o "$work/vae" -s 0 --precision bf16 --save-every 1000 --sample-every 1000
"$dalle" vae encode --vae "$work/vae" -d "$work/shapes" -o "$work/tokens"
"$dalle" train -c "$root/configs/default.json" -d "$work/tokens" -o "$work/prior" -s 0 --steps 2000 --precision bf16 \
  --save-every 500 --sample-every 500
# The reranker sees pixels and the prior's BPE ids only, so it trains independently of both models.
"$dalle" rerank train -c "$root/configs/default.json" -d "$work/shapes" -o "$work/rerank" -s 0 \
  --tokenizer "$work/prior/tokenizer.json"
mkdir -p "$root/models/default"
for f in config.json vae.safetensors prior.safetensors tokenizer.json; do
  cp "$work/prior/$f" "$root/models/default/$f"
done
cp "$work/rerank/rerank.safetensors" "$root/models/default/rerank.safetensors"
echo "models/default updated from $work/prior"
