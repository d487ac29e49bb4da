#!/usr/bin/env bash
# Builds dalle against the CUDA libtorch of the PyTorch 2.x in python3 (as on the GPU machines,
# PLATFORM.md) into build-cuda/. That libtorch links its own oneDNN, so the decoder reaches
# oneDNN through it (DALLE_ONEDNN=OFF).
# Usage: scripts/build-cuda.sh [--check] [DEBS]
#   --check: also the tests and bench_device, what scripts/gpu-check.sh runs (needs GoogleTest:
#     libgtest-dev and libgmock-dev, which scripts/cuda-deps.sh fetches too).
#   DEBS: a folder of .deb files from scripts/cuda-deps.sh, for a machine without Debian's
#     libraries; they are unpacked into build-cuda/deps and found from there (also at run time:
#     run `source build-cuda/env.sh` before build-cuda/bin/dalle).
set -euo pipefail
cd "$(dirname "$0")/.."
check=OFF
targets=(dalle)
if [[ ${1:-} == --check ]]; then
  check=ON
  targets=(dalle dalle_tests bench_device)
  shift
fi
prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
extra=()
mkdir -p build-cuda
: >build-cuda/env.sh
if [[ $# -ge 1 ]]; then
  deps=$PWD/build-cuda/deps
  mkdir -p "$deps"
  for deb in "$1"/*.deb; do dpkg -x "$deb" "$deps"; done
  libdir=$deps/usr/lib/x86_64-linux-gnu
  prefix="$prefix;$deps/usr"
  extra+=(-DCMAKE_LIBRARY_PATH="$libdir" -DCMAKE_INCLUDE_PATH="$deps/usr/include")
  echo "export LD_LIBRARY_PATH=$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" >build-cuda/env.sh
fi
# shellcheck disable=SC1091
source build-cuda/env.sh
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DDALLE_BUILD_TESTS=$check -DDALLE_BUILD_BENCH=$check -DDALLE_ONEDNN=OFF "${extra[@]}"
cmake --build build-cuda --target "${targets[@]}" -j"$(nproc)"
