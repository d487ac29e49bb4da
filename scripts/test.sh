#!/usr/bin/env bash
# The test command: install what is missing (the build's packages plus GoogleTest and gnuplot),
# build everything, run the whole CTest suite. Extra arguments go to ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh" --test --plot
# A build folder first configured by ./dalle (before GoogleTest was installed) has no test
# targets yet: configuring again finds it.
if [[ -f "$root/build/CMakeCache.txt" ]] && ! grep -q '^GTest_DIR:PATH=/' "$root/build/CMakeCache.txt"; then
  cmake -S "$root" -B "$root/build" >/dev/null
fi
"$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
