#!/usr/bin/env bash
# Installs every system package dalle.cpp needs (Debian 12). Idempotent: a no-op when all are
# present. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build
  libtorch-dev            # libtorch 1.13 (CPU), with oneDNN for bf16
  libopenblas0-openmp     # fast fp32 BLAS matching libtorch's OpenMP (PLATFORM.md)
  libstb-dev              # image decode/encode
  libutf8proc-dev         # Unicode categories, NFC and lowercasing for the tokenizer
  libarchive-dev          # WebDataset tar shards (dalle data)
  libcld2-dev             # caption language filter (dalle data prepare)
  clang libclang-rt-14-dev  # libFuzzer for scripts/fuzz.sh (the data-path fuzz target)
  nlohmann-json3-dev libcli11-dev
  libgtest-dev googletest libbenchmark-dev
  python3-numpy           # only for regenerating test reference files
  gnuplot-nox             # `dalle plot` (later issues)
)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# libtorch takes BLAS from the system alternative; point it at the OpenMP OpenBLAS.
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
if [[ -e $blas ]]; then
  $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null 2>&1 || true
fi
