#!/usr/bin/env bash
# Builds tests/consumer against the libvae installed under $1, once with
# pkg-config and once with find_package, and runs both.
set -euo pipefail
prefix=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
libdir=$(dirname "$(find "$prefix" -name vae.pc | head -1)")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir
cc -Wall -Werror "$here/consumer.c" $(pkg-config --cflags --libs vae) -o "$work/with-pkg-config"
"$work/with-pkg-config"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/cmake/consumer"
readelf -d "$libdir/libvae.so" | grep -q 'SONAME.*libvae.so.1' || { echo "bad SONAME"; exit 1; }
echo "2 passed, 0 failed"
