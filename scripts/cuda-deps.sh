#!/usr/bin/env bash
# Downloads the .deb files of the Debian libraries dalle.cpp links (the runtime and -dev packages
# of scripts/install-deps.sh that a PyTorch machine lacks, and GoogleTest for the GPU tests) into
# DIR, for a GPU machine that cannot reach Debian's registry: carry DIR there and pass it to
# scripts/build-cuda.sh or scripts/gpu-check.sh.
# Usage: scripts/cuda-deps.sh DIR   (run on Debian 12)
set -euo pipefail
dir=${1:?usage: scripts/cuda-deps.sh DIR}
mkdir -p "$dir"
cd "$dir"
apt-get download libstb-dev libstb0 libutf8proc-dev libutf8proc2 libarchive-dev libarchive13 \
  libcld2-dev libcld2-0 libre2-dev libre2-9 libxxhash-dev libxxhash0 libwebp-dev libwebp7 libwebpdemux2 libwebpmux3 nlohmann-json3-dev libcli11-dev libxml2 \
  libicu72 libnettle8 libb2-1 libcpp-httplib-dev libcpp-httplib0.11 libgtest-dev libgmock-dev \
  libgloo-dev  # headers only, for c10d's ProcessGroupGloo.hpp where the wheel ships none
