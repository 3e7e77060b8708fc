#!/usr/bin/env bash
# Builds tests/consumer against the libvae installed under PREFIX the ways
# the README tells users to, and runs what it builds with no LD_LIBRARY_PATH:
#  - pkg-config with -Wl,-rpath,$(pkg-config --variable=libdir vae): starts,
#    and loads PREFIX's libvae.so.1; the same without the rpath does not
#    start ("libvae.so.1: cannot open shared object file"), which is why the
#    README gives the rpath (PREFIX must be outside the loader's path);
#  - find_package(vae): starts from its build tree (CMake's build RPATH) and,
#    installed with CMAKE_INSTALL_RPATH_USE_LINK_PATH, from its install tree.
# A check this machine cannot make is reported as "skipped: REASON".
# Usage: tests/consumer/run.sh PREFIX
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 2; }
prefix=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset LD_LIBRARY_PATH
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }

pc=$(find "$prefix" -path '*/pkgconfig/vae.pc' | head -1)
[ -n "$pc" ] || fail "no pkgconfig/vae.pc under $prefix"
export PKG_CONFIG_PATH=${pc%/vae.pc}
libdir=$(pkg-config --variable=libdir vae)
lib=$(realpath -e "$libdir/libvae.so.1") || fail "pkg-config's libdir $libdir has no libvae.so.1"
readelf -d "$lib" | grep -q 'SONAME.*\[libvae\.so\.1\]' || fail "SONAME is not libvae.so.1"
ok "libdir $libdir holds libvae.so.1 with its SONAME"

loads_prefix_lib() {  # program: the loader resolves libvae.so.1 to PREFIX's copy
  local got
  got=$(ldd "$1" | awk '$1 == "libvae.so.1" { print $3 }')
  if [ -z "$got" ] || [ "$(realpath "$got")" != "$lib" ]; then
    echo "$1 loads libvae.so.1 from '${got:-nowhere}', not $lib"; return 1
  fi
}

# pkg-config, with the rpath the README gives
cflags=$(pkg-config --cflags vae) libs=$(pkg-config --libs vae)
# shellcheck disable=SC2086
cc -Wall -Werror "$here/consumer.c" $cflags $libs -Wl,-rpath,"$libdir" -o "$work/with-rpath"
"$work/with-rpath" || fail "pkg-config + -Wl,-rpath program does not run"
loads_prefix_lib "$work/with-rpath" || fail "pkg-config + -Wl,-rpath program loads another libvae"
ok "pkg-config + -Wl,-rpath program runs without LD_LIBRARY_PATH"

# pkg-config alone: links, but does not start while PREFIX is outside the
# loader's path (unless a libvae.so.1 is in the loader's path already).
# shellcheck disable=SC2086
cc -Wall -Werror "$here/consumer.c" $cflags $libs -o "$work/no-rpath"
arch=$(cc -print-multiarch 2>/dev/null || true)
elsewhere=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true) |
             awk '$1 == "libvae.so.1" { print $NF; exit }')
for d in /lib/$arch /usr/lib/$arch /lib /usr/lib; do
  [ -n "$elsewhere" ] || [ ! -e "$d/libvae.so.1" ] || elsewhere=$d/libvae.so.1
done
if [ -n "$elsewhere" ]; then
  echo "skipped: pkg-config program without rpath must not start (the loader finds $elsewhere)"
else
  status=0
  "$work/no-rpath" > "$work/no-rpath.out" 2>&1 || status=$?
  [ "$status" != 0 ] || fail "program without rpath started although $libdir is outside the loader's path"
  grep -q 'libvae\.so\.1: cannot open shared object file' "$work/no-rpath.out" ||
    { cat "$work/no-rpath.out"; fail "program without rpath failed for another reason (status $status)"; }
  ok "pkg-config program without rpath does not start: $(head -1 "$work/no-rpath.out")"
fi

# find_package: CMake links the imported target vae::vae by its full path and
# gives the program in the build tree a RUNPATH to its directory.
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" ||
  { cat "$work/cmake.log"; fail "find_package configure"; }
cmake --build "$work/cmake" > "$work/build.log" || { cat "$work/build.log"; fail "find_package build"; }
readelf -d "$work/cmake/consumer" | grep -E 'R(UN)?PATH' || fail "find_package build has no RPATH/RUNPATH"
"$work/cmake/consumer" || fail "find_package program does not run from its build tree"
loads_prefix_lib "$work/cmake/consumer" || fail "find_package program loads another libvae"
ok "find_package program runs from its build tree without LD_LIBRARY_PATH"

# ... and installed: CMake drops the build RPATH on install;
# CMAKE_INSTALL_RPATH_USE_LINK_PATH (tests/consumer/CMakeLists.txt) keeps it.
cmake --install "$work/cmake" --prefix "$work/app" > /dev/null || fail "find_package install"
readelf -d "$work/app/bin/consumer" | grep -E 'R(UN)?PATH' || fail "installed program has no RPATH/RUNPATH"
"$work/app/bin/consumer" || fail "installed find_package program does not run"
loads_prefix_lib "$work/app/bin/consumer" || fail "installed find_package program loads another libvae"
ok "installed find_package program runs without LD_LIBRARY_PATH"
echo "$passed passed, 0 failed"
