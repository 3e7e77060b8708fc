#!/usr/bin/env bash
# Builds tests/consumer against the libvae installed under PREFIX the ways
# the README tells users to, and runs what it builds with no LD_LIBRARY_PATH:
#  - pkg-config with -Wl,-rpath,$(pkg-config --variable=libdir vae): starts,
#    and loads PREFIX's libvae.so.1; the same without the rpath does not
#    start ("libvae.so.1: cannot open shared object file"), which is why the
#    README gives the rpath (PREFIX must be outside the loader's path);
#  - find_package(vae): starts from its build tree (CMake's build RPATH) and,
#    installed with CMAKE_INSTALL_RPATH_USE_LINK_PATH, from its install tree;
#    configured with MPI made unfindable, and none of these programs loads
#    libmpi: a consumer of vae alone needs no MPI;
#  - when PREFIX has the MPI adapter (vae-mpi.pc, libvae_mpi.so.1):
#    mpi_consumer.c built with `pkg-config --cflags --libs vae-mpi` (and the
#    rpath) and with find_package(vae COMPONENTS mpi) / vae::vae_mpi runs
#    alone (a singleton) and under `mpirun -np 2`, loading PREFIX's
#    libvae_mpi.so.1 and libvae.so.1.
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

loads_prefix_lib() {  # program [soname]: the loader resolves soname
  # (libvae.so.1 unless given) to PREFIX's copy
  local so=${2:-libvae.so.1} want got
  want=$(realpath -e "$libdir/$so") || { echo "$libdir has no $so"; return 1; }
  got=$(ldd "$1" | awk -v so="$so" '$1 == so { print $3 }')
  if [ -z "$got" ] || [ "$(realpath "$got")" != "$want" ]; then
    echo "$1 loads $so from '${got:-nowhere}', not $want"; return 1
  fi
}
no_mpi() {  # program: neither it nor a library it loads is MPI's
  if ldd "$1" | grep -E '^\s*lib(mpi|open-rte|open-pal|pmix)[._]'; then
    echo "$1 loads MPI"; return 1
  fi
}

# pkg-config, with the rpath the README gives
cflags=$(pkg-config --cflags vae) libs=$(pkg-config --libs vae)
for w in $cflags $libs; do  # (PREFIX's own directories may have "mpi" in their names)
  case "${w#-[IL]"$PKG_CONFIG_PATH"/}" in
    -lmpi* | -lopen-* | -lpmix* | -[IL]*mpi*) fail "pkg-config vae gives MPI's flag $w";;
  esac
done
readelf -d "$lib" | grep NEEDED | grep -i mpi && fail "libvae.so.1 needs an MPI library"
# shellcheck disable=SC2086
cc -Wall -Werror "$here/consumer.c" $cflags $libs -Wl,-rpath,"$libdir" -o "$work/with-rpath"
"$work/with-rpath" || fail "pkg-config + -Wl,-rpath program does not run"
loads_prefix_lib "$work/with-rpath" || fail "pkg-config + -Wl,-rpath program loads another libvae"
no_mpi "$work/with-rpath" || fail "a program of pkg-config vae loads MPI"
ok "pkg-config + -Wl,-rpath program runs without LD_LIBRARY_PATH (and without MPI)"

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
# gives the program in the build tree a RUNPATH to its directory.  MPI is
# made unfindable (as on a machine without it): vae::vae must not need it.
cmake --no-warn-unused-cli -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON > "$work/cmake.log" ||
  { cat "$work/cmake.log"; fail "find_package configure (MPI unfindable)"; }
cmake --build "$work/cmake" > "$work/build.log" || { cat "$work/build.log"; fail "find_package build"; }
readelf -d "$work/cmake/consumer" | grep -E 'R(UN)?PATH' || fail "find_package build has no RPATH/RUNPATH"
"$work/cmake/consumer" || fail "find_package program does not run from its build tree"
loads_prefix_lib "$work/cmake/consumer" || fail "find_package program loads another libvae"
no_mpi "$work/cmake/consumer" || fail "find_package program of vae::vae loads MPI"
ok "find_package program runs from its build tree without LD_LIBRARY_PATH (configured with MPI unfindable)"

# ... and installed: CMake drops the build RPATH on install;
# CMAKE_INSTALL_RPATH_USE_LINK_PATH (tests/consumer/CMakeLists.txt) keeps it.
cmake --install "$work/cmake" --prefix "$work/app" > /dev/null || fail "find_package install"
readelf -d "$work/app/bin/consumer" | grep -E 'R(UN)?PATH' || fail "installed program has no RPATH/RUNPATH"
"$work/app/bin/consumer" || fail "installed find_package program does not run"
loads_prefix_lib "$work/app/bin/consumer" || fail "installed find_package program loads another libvae"
ok "installed find_package program runs without LD_LIBRARY_PATH"

# ---- the MPI adapter, libvae_mpi, when PREFIX has it ----
mpi_pc=$PKG_CONFIG_PATH/vae-mpi.pc
if [ ! -e "$mpi_pc" ] && [ ! -e "$libdir/libvae_mpi.so.1" ]; then
  echo "skipped: MPI adapter consumer ($prefix has no vae-mpi.pc nor libvae_mpi.so.1: libvae was built without MPI)"
  echo "$passed passed, 0 failed"; exit 0
fi
[ -e "$mpi_pc" ] || fail "$prefix has libvae_mpi.so.1 but no pkgconfig/vae-mpi.pc"
mpi_lib=$(realpath -e "$libdir/libvae_mpi.so.1") || fail "vae-mpi.pc is installed but $libdir has no libvae_mpi.so.1"
readelf -d "$mpi_lib" | grep -q 'SONAME.*\[libvae_mpi\.so\.1\]' || fail "SONAME is not libvae_mpi.so.1"
ok "libdir $libdir holds libvae_mpi.so.1 with its SONAME"

# vae-mpi.pc requires the MPI's own module (ompi-c, mpich or mpi-c): without
# it (no MPI development files here) no consumer of vae-mpi can be built.
mpi_modules=$(sed -n 's/^Requires://p' "$mpi_pc" | tr ',' '\n' | awk '$1 != "vae" && NF { print $1 }')
for mod in $mpi_modules; do
  if ! pkg-config --exists "$mod"; then
    echo "skipped: MPI adapter consumer (pkg-config has no $mod, which vae-mpi.pc requires: install libopenmpi-dev)"
    echo "$passed passed, 0 failed"; exit 0
  fi
done
pkg-config --print-errors --exists vae-mpi || fail "pkg-config cannot resolve vae-mpi"

# Open MPI as root in a container: allowed explicitly; no single-copy (CMA)
# transport, which containers forbid (README, "Training on several processes").
mpi_env=(env OMPI_MCA_btl_vader_single_copy_mechanism=none)
[ "$(id -u)" != 0 ] || mpi_env+=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
have_mpirun=0
if command -v mpirun > /dev/null; then
  have_mpirun=1
else
  echo "skipped: running the MPI adapter consumers (mpirun is missing: install openmpi-bin); they are only built"
fi
runs_mpi() {  # program how: runs alone and on 2 ranks, each rank agreeing
  local out=$work/mpi.out status=0
  [ "$have_mpirun" = 1 ] || return 0
  timeout 60 "${mpi_env[@]}" "$1" > "$out" 2>&1 || status=$?
  { [ "$status" = 0 ] && grep -q '^mpi_consumer: rank 0 of 1 agreed' "$out"; } ||
    { cat "$out"; fail "$2 program does not run as a singleton (status $status)"; }
  ok "$2 program runs as a singleton without LD_LIBRARY_PATH: $(grep '^mpi_consumer:' "$out")"
  timeout 60 "${mpi_env[@]}" mpirun --oversubscribe -np 2 "$1" > "$out" 2>&1 || status=$?
  { [ "$status" = 0 ] && grep -q '^mpi_consumer: rank 0 of 2 agreed' "$out" &&
      grep -q '^mpi_consumer: rank 1 of 2 agreed' "$out"; } ||
    { cat "$out"; fail "$2 program does not run under mpirun -np 2 (status $status)"; }
  ok "$2 program runs under mpirun -np 2 without LD_LIBRARY_PATH: $(grep '^mpi_consumer:' "$out" | sort | paste -sd ';' | sed 's/;/; /g')"
}

# pkg-config, with the rpath the README gives for libvae
mpi_flags=$(pkg-config --cflags --libs vae-mpi)
# shellcheck disable=SC2086
cc -Wall -Werror "$here/mpi_consumer.c" $mpi_flags -Wl,-rpath,"$libdir" -o "$work/mpi-with-rpath" ||
  fail "pkg-config vae-mpi program does not build ($mpi_flags)"
loads_prefix_lib "$work/mpi-with-rpath" libvae_mpi.so.1 || fail "pkg-config vae-mpi program loads another libvae_mpi"
loads_prefix_lib "$work/mpi-with-rpath" || fail "pkg-config vae-mpi program loads another libvae"
ok "pkg-config vae-mpi + -Wl,-rpath program builds and loads $prefix's libvae_mpi and libvae"
runs_mpi "$work/mpi-with-rpath" "pkg-config vae-mpi"

# find_package(vae COMPONENTS mpi): the target vae::vae_mpi brings MPI::MPI_C;
# vae::vae, in the same project, still does not.
cmake -S "$here" -B "$work/cmake-mpi" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_MPI=ON > "$work/cmake-mpi.log" ||
  { cat "$work/cmake-mpi.log"; fail "find_package(vae COMPONENTS mpi) configure"; }
cmake --build "$work/cmake-mpi" > "$work/build-mpi.log" ||
  { cat "$work/build-mpi.log"; fail "find_package vae::vae_mpi build"; }
readelf -d "$work/cmake-mpi/mpi_consumer" | grep -E 'R(UN)?PATH' || fail "vae::vae_mpi build has no RPATH/RUNPATH"
loads_prefix_lib "$work/cmake-mpi/mpi_consumer" libvae_mpi.so.1 || fail "vae::vae_mpi program loads another libvae_mpi"
loads_prefix_lib "$work/cmake-mpi/mpi_consumer" || fail "vae::vae_mpi program loads another libvae"
no_mpi "$work/cmake-mpi/consumer" || fail "vae::vae program loads MPI when the package found MPI"
ok "find_package vae::vae_mpi program builds and loads $prefix's libvae_mpi and libvae (vae::vae beside it without MPI)"
runs_mpi "$work/cmake-mpi/mpi_consumer" "find_package vae::vae_mpi"
echo "$passed passed, 0 failed"
