#!/usr/bin/env bash
# The test suite, as CI runs it: installs what is missing, then builds and
# tests with OpenBLAS, with BLIS, and with AddressSanitizer +
# UndefinedBehaviorSanitizer (the example programs and their photo loader
# included), and builds a consumer program against an
# installed copy with both pkg-config and CMake's find_package.
# Warnings are errors.  Usage: scripts/test.sh   (from anywhere)
# Prints how long each stage took and, at the end, the total and the stages
# (or parts of stages) it skipped, with the reason.  Stops at the first
# failure and exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
export CK_VERBOSITY=normal

# ---- stage bookkeeping: times, skips, and a summary however the run ends ----
t_start=$EPOCHREALTIME
timings=()   # "duration<TAB>stage"
skipped=()   # "stage: reason"
current='' t_current=''
tmpdirs=()

elapsed() {  # start time (EPOCHREALTIME) -> "12.3s" or "4m05s"
  local now=$EPOCHREALTIME ms
  ms=$(( (${now//[.,]/} - ${1//[.,]/}) / 1000 ))
  if [ "$ms" -lt 60000 ]; then
    printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
  else
    printf '%dm%02ds' $((ms / 60000)) $((ms % 60000 / 1000))
  fi
}

stage() {  # name: starts a stage (and ends the one before)
  end_stage
  current=$1 t_current=$EPOCHREALTIME
  printf '\n==== %s ====\n' "$current"
}

end_stage() {
  [ -n "$current" ] || return 0
  local d; d=$(elapsed "$t_current")
  timings+=("$d	$current")
  printf -- '---- %s: %s ----\n' "$current" "$d"
  current=''
}

skip() {  # stage, reason: a stage not run at all
  end_stage
  skipped+=("$1: $2")
  printf '\n==== %s: skipped (%s) ====\n' "$1" "$2"
}

summary() {
  local status=$? line
  if [ -n "$current" ] && [ "$status" != 0 ]; then
    timings+=("$(elapsed "$t_current")	$current (FAILED)")
    current=''
  fi
  end_stage > /dev/null
  printf '\n==== Summary ====\n'
  for line in "${timings[@]}"; do
    printf '  %8s  %s\n' "${line%%	*}" "${line#*	}"
  done
  printf '  %8s  total\n' "$(elapsed "$t_start")"
  if [ ${#skipped[@]} -eq 0 ]; then
    echo "Skipped: nothing"
  else
    echo "Skipped:"
    for line in "${skipped[@]}"; do echo "  $line"; done
  fi
  [ "$status" = 0 ] && echo "All stages passed." || echo "FAILED (exit status $status)"
  [ ${#tmpdirs[@]} -eq 0 ] || rm -rf "${tmpdirs[@]}"
  exit "$status"
}
trap summary EXIT

# ---- the stages ----
build_and_test() {  # name, cmake options...
  local dir=build-test-$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVAE_WERROR=ON "$@" > "$dir.log" 2>&1 ||
    { cat "$dir.log"; return 1; }
  cmake --build "$dir" -j "$jobs" >> "$dir.log" 2>&1 || { tail -50 "$dir.log"; return 1; }
  # Tests CMake leaves out when their interpreter is missing.
  if grep -q '^VAE_PYTHON:.*NOTFOUND' "$dir/CMakeCache.txt"; then
    skipped+=("$current: test_ffi_python and test_examples (no /usr/bin/python3)")
  fi
  (cd "$dir" && ctest --output-on-failure -j "$jobs" < /dev/null)
}

blis_found() {  # the directories CMakeLists.txt searches
  local arch d
  arch=$(cc -print-multiarch 2>/dev/null || true)
  for d in blis-openmp blis-pthread blis-serial blis; do
    [ -e "/usr/lib/$arch/$d/libblis.so" ] && [ -e "/usr/include/$arch/$d/cblas.h" ] && return 0
  done
  return 1
}

sanitizers_work() {  # flags: the compiler builds, and the system runs, such a program
  local t; t=$(mktemp -d); tmpdirs+=("$t")
  printf 'int main(void) { return 0; }\n' > "$t/probe.c"
  cc "$@" "$t/probe.c" -o "$t/probe" > "$t/log" 2>&1 && "$t/probe" >> "$t/log" 2>&1
}

tsan_test() {  # the tests that run the library from several threads at once
  local dir=build-test-tsan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVAE_WERROR=ON -DVAE_BUILD_EXAMPLES=OFF \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread > "$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
  cmake --build "$dir" -j "$jobs" --target test_steering test_comm >> "$dir.log" 2>&1 || { tail -50 "$dir.log"; return 1; }
  TSAN_OPTIONS=halt_on_error=1 CK_FORK=no "$dir/tests/test_steering" < /dev/null
  # ranks as threads, each model with its own workers, meeting in the fake collectives
  TSAN_OPTIONS=halt_on_error=1 CK_FORK=no "$dir/tests/test_comm" < /dev/null
}

stage "Dependencies (scripts/deps.sh test)"
bash scripts/deps.sh test

stage "OpenBLAS"
build_and_test openblas -DVAE_BLAS=openblas

abi_test() {  # the ABI of libvae.so.1, type by type, against 0.2.0's (abi/)
  local dir=build-test-abi
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVAE_WERROR=ON -DVAE_BUILD_TESTS=OFF \
    -DVAE_BUILD_EXAMPLES=OFF -DVAE_WITH_MPI=OFF > "$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
  cmake --build "$dir" -j "$jobs" --target vae >> "$dir.log" 2>&1 || { tail -50 "$dir.log"; return 1; }
  bash scripts/check-abi.sh "$dir"
}

if command -v abidiff > /dev/null; then
  stage "ABI against 0.2.0 (abidiff, scripts/check-abi.sh)"
  abi_test
else
  skip "ABI against 0.2.0" "abidiff missing (abigail-tools: scripts/deps.sh test)"
fi

if blis_found; then
  stage "BLIS"
  build_and_test blis -DVAE_BLAS=blis -DVAE_BUILD_EXAMPLES=OFF
else
  skip "BLIS" "no BLIS library and cblas.h in Debian's blis-* directories (libblis-openmp-dev)"
fi

if sanitizers_work -fsanitize=address,undefined; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer"
  build_and_test asan -DVAE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
else
  skip "AddressSanitizer + UndefinedBehaviorSanitizer" \
       "cc cannot build or run a -fsanitize=address,undefined program"
fi

if sanitizers_work -fsanitize=thread; then
  stage "ThreadSanitizer (model clones decoding from four threads; ranks as threads)"
  tsan_test
else
  skip "ThreadSanitizer" "the compiler or the system cannot build and run a -fsanitize=thread program"
fi

fuzz_works() {  # clang builds and runs a libFuzzer program here
  local t; t=$(mktemp -d); tmpdirs+=("$t")
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$t/probe.c"
  command -v clang > /dev/null && clang -fsanitize=fuzzer "$t/probe.c" -o "$t/probe" > "$t/log" 2>&1 &&
    "$t/probe" -runs=1 >> "$t/log" 2>&1
}

fuzz_test() {  # short, deterministic runs of each target from its corpus
  local dir=build-test-fuzz target corpus runs limit
  # with the examples: the images target needs their libpng, libjpeg and stb
  CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVAE_FUZZ=ON -DVAE_SANITIZE=ON \
    -DVAE_BUILD_EXAMPLES=ON -DVAE_WITH_MPI=OFF > "$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
  cmake --build "$dir" -j "$jobs" --target fuzz_model fuzz_idx fuzz_cifar fuzz_images >> "$dir.log" 2>&1 ||
    { tail -50 "$dir.log"; return 1; }
  for target in model idx cifar images; do
    corpus=$(mktemp -d); tmpdirs+=("$corpus")
    cp tests/fuzz/corpus/$target/* "$corpus/"
    [ "$target" != model ] || cp tests/fixtures/0.2.0/*.vae "$corpus/"
    # runs a second under ASan on 2 busy cores: model 10,000, images 4,000,
    # cifar 2,000, idx 1,000 or more: 10 to 20 s each.  No data file may
    # make a loader allocate over 8 MiB at once; the model's plan is
    # capped at 64 MiB
    case $target in
      model) runs=50000 limit=64 ;;
      idx) runs=20000 limit=8 ;;
      cifar) runs=20000 limit=8 ;;
      images) runs=50000 limit=8 ;;
    esac
    # a fixed seed and run count: the same inputs every time, under a
    # minute; a crash leaves its input beside the corpus (and goes into
    # tests/fuzz/crashes/ once fixed); -close_fd_mask=2 drops the image
    # loader's "skipping" lines, not libFuzzer's or the sanitizers' reports
    if ! "$dir/tests/fuzz_$target" -seed=1 -runs=$runs -max_len=65536 -rss_limit_mb=2048 \
           -malloc_limit_mb=$limit -close_fd_mask=2 -timeout=30 \
           -artifact_prefix="$corpus/../fuzz-$target-" "$corpus" < /dev/null \
           > "$dir.$target.log" 2>&1; then
      tail -60 "$dir.$target.log"; return 1
    fi
    echo "fuzz_$target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir.$target.log")"
  done
}

if fuzz_works; then
  stage "libFuzzer (model-file, idx, CIFAR and image-folder targets, short deterministic runs)"
  fuzz_test
else
  skip "libFuzzer" "clang cannot build and run a -fsanitize=fuzzer program (clang, libclang-rt-14-dev)"
fi

stage "Consumer of the installed library (pkg-config and find_package)"
prefix=$(mktemp -d); tmpdirs+=("$prefix")
cmake --install build-test-openblas --prefix "$prefix" > /dev/null
consumer_log=$prefix.log; tmpdirs+=("$consumer_log")
bash tests/consumer/run.sh "$prefix" 2>&1 | tee "$consumer_log"
# run.sh reports checks it could not make on this machine as "skipped: ..."
while IFS= read -r line; do
  skipped+=("$current: ${line#skipped: }")
done < <(grep '^skipped: ' "$consumer_log" || true)
end_stage

# The Python package installed as users install it: a venv over Debian's
# NumPy, pip without network or build isolation, the library from the
# OpenBLAS build.
if /usr/bin/python3 -c 'import venv, ensurepip, numpy, setuptools' 2> /dev/null; then
  stage "Python package (venv + pip install ./python)"
  venv=$(mktemp -d); tmpdirs+=("$venv")
  /usr/bin/python3 -m venv --system-site-packages "$venv" ||
    { echo "error: python3 -m venv failed (python3-venv installed?)" >&2; exit 1; }
  # pip writes build/ and *.egg-info beside the sources: build from a copy.
  cp -r python "$venv/src"
  "$venv/bin/pip" install -q --no-build-isolation --no-deps "$venv/src" ||
    { echo "error: pip could not install ./python (see above)" >&2; exit 1; }
  (cd "$venv" && LIBVAE_LIBRARY="$root/build-test-openblas/libvae.so" "$venv/bin/python" -c \
    'import libvae; print("libvae", libvae.version(), "from", libvae.library_path)') ||
    { echo "error: the installed package does not import (see above)" >&2; exit 1; }
  end_stage
else
  skip "Python package" "/usr/bin/python3 lacks venv, ensurepip, numpy or setuptools (scripts/deps.sh test)"
fi
