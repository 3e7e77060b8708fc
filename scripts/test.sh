#!/usr/bin/env bash
# The test suite, as CI runs it: installs what is missing, then builds and
# tests with OpenBLAS, with BLIS, and with AddressSanitizer +
# UndefinedBehaviorSanitizer, and builds a consumer program against an
# installed copy with both pkg-config and CMake's find_package.
# Warnings are errors.  Usage: scripts/test.sh   (from anywhere)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
jobs=$(nproc)
export CK_VERBOSITY=normal

stage() { printf '\n==== %s ====\n' "$*"; }

build_and_test() {  # name, cmake options...
  local dir=build-test-$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVAE_WERROR=ON "$@" > "$dir.log" 2>&1 ||
    { cat "$dir.log"; return 1; }
  cmake --build "$dir" -j "$jobs" >> "$dir.log" 2>&1 || { tail -50 "$dir.log"; return 1; }
  (cd "$dir" && ctest --output-on-failure -j "$jobs" < /dev/null)
}

stage "OpenBLAS"
build_and_test openblas -DVAE_BLAS=openblas
stage "BLIS"
build_and_test blis -DVAE_BLAS=blis -DVAE_BUILD_EXAMPLES=OFF
stage "AddressSanitizer + UndefinedBehaviorSanitizer"
build_and_test asan -DVAE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVAE_BUILD_EXAMPLES=OFF

stage "Consumer of the installed library (pkg-config and find_package)"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install build-test-openblas --prefix "$prefix" > /dev/null
bash tests/consumer/run.sh "$prefix"
