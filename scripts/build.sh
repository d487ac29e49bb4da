#!/usr/bin/env bash
# Configures and builds dalle.cpp in build/ (Release), installing system packages first if any
# are missing. Safe to run repeatedly: rebuilds only what changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
jobs="$(nproc 2>/dev/null || echo 2)"
if [[ ! -f "$root/build/CMakeCache.txt" ]]; then
  # Ninja: with Make, adding a source file rewrites every object's flags and rebuilds them all
  # (the precompiled header's per-file flags); Ninja rebuilds only what changed.
  cmake -G Ninja -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$root/build" -j "$jobs" "$@"
