#!/usr/bin/env bash
# Installs the Debian 12 packages dalle.cpp needs, by job, so the first run installs only what
# building and running `dalle` takes. Idempotent: a no-op when all are present. Needs root (or
# sudo) only when something is missing.
#   scripts/install-deps.sh            # build and run `dalle` (what ./dalle and scripts/build.sh use)
#   scripts/install-deps.sh --test     # + GoogleTest and python3-torch for reference twins (scripts/test.sh)
#   scripts/install-deps.sh --fuzz     # + clang and libFuzzer (scripts/fuzz.sh)
#   scripts/install-deps.sh --plot     # + gnuplot (`dalle plot`)
#   scripts/install-deps.sh --dev      # + numpy (regenerating test reference files)
#   scripts/install-deps.sh --all      # everything above
set -euo pipefail

CORE=(
  build-essential cmake ninja-build
  libtorch-dev            # libtorch 1.13 (CPU), with oneDNN for bf16
  libdnnl-dev             # oneDNN's headers: the decoder calls it directly for bf16 batches
  libopenblas0-openmp     # fast fp32 BLAS matching libtorch's OpenMP (PLATFORM.md)
  libstb-dev              # image decode/encode
  libutf8proc-dev         # Unicode categories, NFC and lowercasing for the tokenizer
  libarchive-dev          # WebDataset tar shards (dalle data)
  libcld2-dev             # caption language filter (dalle data prepare)
  libre2-dev              # linear-time regular expressions (caption boilerplate filter)
  libxxhash-dev           # XXH3 hashes (duplicate images, tokenizer fingerprints)
  libwebp-dev             # WebP images in every reader
  libcpp-httplib-dev      # the HTTP server (dalle serve)
  libgloo-dev             # headers of c10d's Gloo process group (data-parallel training)
  nlohmann-json3-dev libcli11-dev
)
TEST=(libgtest-dev googletest
      python3-torch python3-torchvision  # reference twins: tests run PyTorch itself (/usr/bin/python3) on the same weights
      chromium python3-websocket)  # the server's page in a real headless browser, driven over CDP
FUZZ=(clang libclang-rt-14-dev)
PLOT=(gnuplot-nox)
DEV=(python3-numpy)

packages=("${CORE[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) packages+=("${TEST[@]}") ;;
    --fuzz) packages+=("${FUZZ[@]}") ;;
    --plot) packages+=("${PLOT[@]}") ;;
    --dev) packages+=("${DEV[@]}") ;;
    --all) packages+=("${TEST[@]}" "${FUZZ[@]}" "${PLOT[@]}" "${DEV[@]}") ;;
    *) echo "install-deps: unknown option '$arg' (--test, --fuzz, --plot, --dev, --all)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
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
# No recommended packages: libtorch-dev alone would pull hundreds of megabytes it does not need.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# libtorch takes BLAS from the system alternative; point it at the OpenMP OpenBLAS.
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
if [[ -e $blas ]]; then
  $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null 2>&1 || true
fi
