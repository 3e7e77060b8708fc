#!/usr/bin/env bash
# The ABI check: compares the libvae.so.1 of a build with the baseline of
# libvae.so.1 as released in 0.2.0 (abi/libvae.so.1-0.2.0.abi, written by
# abidw from a RelWithDebInfo build of 0.2.0, with 0.2.0's public header in
# abi/0.2.0/include), using abidiff on the types of the functions, not only
# the symbol names.  Added functions and enumerators appended to an enum are
# compatible and pass; a removed function, a changed parameter or return
# type, a renumbered enumerator or any other change fails, with abidiff's
# report.  Only public types count (those defined in the headers); the
# entries of abi/suppressions.abignore are silenced (see docs/ABI.md for
# what may go there).
# Usage: scripts/check-abi.sh [BUILD_DIR]   (from anywhere)
#   BUILD_DIR  a build of this tree whose libvae.so was compiled with -g
#              (CMAKE_BUILD_TYPE=RelWithDebInfo or Debug).  Without it, the
#              script configures and builds the vae target in build-abi/
#              (RelWithDebInfo, no tests, examples or MPI adapter) first.
# Exits 0 when the ABI is compatible, 1 when it is not (or on an error),
# 77 when abidiff is missing (apt-get install abigail-tools).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The baseline: the SONAME it describes and the release it was made from.
# These change only together with VAE_SOVERSION (docs/ABI.md).
soname=libvae.so.1 release=0.2.0
baseline=$root/abi/$soname-$release.abi
baseline_headers=$root/abi/$release/include
suppressions=$root/abi/suppressions.abignore

case "${1:-}" in
  -h|--help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac
if [ $# -gt 1 ]; then echo "usage: scripts/check-abi.sh [BUILD_DIR]" >&2; exit 1; fi

if ! command -v abidiff > /dev/null; then
  echo "skipped: ABI check (abidiff missing: apt-get install abigail-tools)"
  exit 77
fi

if [ $# -eq 1 ]; then
  build=$(cd "$1" && pwd)
else
  build=$root/build-abi
  cd "$root"
  options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVAE_BUILD_TESTS=OFF -DVAE_BUILD_EXAMPLES=OFF)
  if grep -q '^option(VAE_WITH_MPI ' CMakeLists.txt; then options+=(-DVAE_WITH_MPI=OFF); fi
  mkdir -p "$build"; log=$build/check-abi-build.log   # inside: build*/ is ignored
  echo "Building libvae with debug information in $build (log: $log)"
  cmake -S . -B "$build" "${options[@]}" > "$log" 2>&1 || { cat "$log"; exit 1; }
  cmake --build "$build" -j "$(nproc)" --target vae >> "$log" 2>&1 || { tail -50 "$log"; exit 1; }
fi

# The baseline describes one SONAME: a library with another SONAME is a new
# ABI, which comes with a new baseline (docs/ABI.md), not with this check.
if [ ! -e "$build/libvae.so" ]; then
  echo "error: no libvae.so in $build: not a build directory of libvae" >&2; exit 1
fi
built=$(readelf -d "$build/libvae.so" | sed -n 's/.*Library soname: \[\(.*\)\]$/\1/p')
if [ "$built" != "$soname" ]; then
  echo "error: $build/libvae.so has the SONAME '$built', the baseline is of $soname:" >&2
  echo "a new SONAME needs a new baseline (docs/ABI.md, \"Regenerating the baseline\")" >&2
  exit 1
fi
lib=$build/$soname

# Without DWARF, abidiff compares only symbol names and, with --headers-dir2,
# filters everything else out: such a library would pass whatever its types.
# (abidiff 2.2's --fail-no-debug-info does not catch that; checked here.)
if ! readelf -S -W "$lib" | grep -Eq '\.z?debug_info\b'; then
  echo "error: $lib has no debug information: build it with -g" >&2
  echo "(-DCMAKE_BUILD_TYPE=RelWithDebInfo), or run this script without arguments" >&2
  exit 1
fi

echo "abidiff: $baseline ($release) against $lib"
args=(--no-added-syms
      --headers-dir1 "$baseline_headers" --headers-dir2 "$root/include")
[ ! -e "$suppressions" ] || args+=(--suppressions "$suppressions")
status=0
abidiff "${args[@]}" "$baseline" "$lib" || status=$?

# abidiff's exit status is a bit field:
#   1  ABIDIFF_ERROR: the tool failed (e.g. a file it cannot read): nothing
#      was compared.  (A malformed suppression entry is not an error: abidiff
#      2.2 ignores it, so the change it was meant for is reported.)
#   2  ABIDIFF_USAGE_ERROR: a bad command line (always together with 1)
#   4  ABIDIFF_ABI_CHANGE: the ABIs differ, compatibly or not: a human reads
#      the report.  Added functions (hidden by --no-added-syms) and changes
#      abidiff knows to be harmless (an enumerator appended to an enum) are
#      filtered out and do not set it; nor does what the suppressions match.
#   8  ABIDIFF_ABI_INCOMPATIBLE_CHANGE: the ABIs differ incompatibly (abidiff
#      recognises only some kinds, e.g. a removed function; always with 4)
# Every non-zero status fails this check: with the suppressions applied, any
# change left (4) is a break of the ABI.
if [ "$status" = 0 ]; then
  echo "ABI check passed: $soname is compatible with $release's"
  exit 0
fi
if [ $((status & 1)) != 0 ]; then
  echo "ABI check FAILED: abidiff could not compare (exit status $status$(
    [ $((status & 2)) = 0 ] || echo ', usage error'), see above)" >&2
else
  echo "ABI check FAILED: abidiff reports $([ $((status & 8)) != 0 ] &&
    echo 'an incompatible change' || echo 'a change') (exit status $status, above)." >&2
  echo "A change to the ABI of $soname breaks the programs built against it:" >&2
  echo "undo it, or bump VAE_SOVERSION and regenerate the baseline (docs/ABI.md)." >&2
fi
exit 1
