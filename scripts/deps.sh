#!/usr/bin/env bash
# Installs the Debian packages libvae needs, if any are missing.
# Usage: scripts/deps.sh demo|test|browser [extra-package ...]
#   demo  what building the library and the example programs needs
#         (scripts/demo.sh; libmicrohttpd for vae-explore)
#   test  that, and what only the test suite needs: Check for the C tests,
#         python3 for the ctypes (FFI) test and the examples' test, NumPy,
#         pytest, pycparser and venv for the Python package's tests, Graphviz
#         for its check of vae-inspect --dot, Open MPI for the tests of
#         training across processes, clang's libFuzzer for the fuzz targets,
#         abigail-tools (abidiff) for the ABI check (scripts/test.sh,
#         scripts/check-abi.sh)
#   browser  Chromium and a font, for the browser test of vae-explore
#         (tests/browser/run.sh; its driver comes from npm)
# Without demo or test as the first argument, both sets are installed, with
# any arguments as extra packages (the older form: scripts/deps.sh PKG...).
set -euo pipefail
demo=(gcc make cmake pkg-config libopenblas-dev libblis-openmp-dev zlib1g-dev
      libpng-dev libjpeg62-turbo-dev libstb-dev libplplot-dev plplot-driver-cairo
      libmicrohttpd-dev)
test=(check python3 graphviz python3-numpy python3-pytest python3-pycparser python3-venv
      openmpi-bin libopenmpi-dev python3-mpi4py clang libclang-rt-14-dev abigail-tools)
case "${1:-}" in
  demo) shift; packages=("${demo[@]}" "$@") ;;
  test) shift; packages=("${demo[@]}" "${test[@]}" "$@") ;;
  browser) shift; packages=(chromium fonts-dejavu-core "$@") ;;
  -h|--help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) packages=("${demo[@]}" "${test[@]}" "$@") ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing packages: ${missing[*]}"
if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo -n); else
  echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q < /dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" < /dev/null
