#!/usr/bin/env bash
# The test suite, as CI runs it: installs what is missing, then builds and
# tests with OpenBLAS, with BLIS, and with AddressSanitizer +
# UndefinedBehaviorSanitizer and with ThreadSanitizer (the example programs
# and their photo loader included), and builds a consumer program against an
# installed copy with both pkg-config and CMake's find_package.  Its last
# stage drives vae-explore's page in headless Chromium (Debian's, through
# puppeteer-core from npm); it is skipped, and says why, where either cannot
# be had.  Warnings are errors.  Usage: scripts/test.sh   (from anywhere)
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

# GCC's -fanalyzer over every lib/*.c, and clang's analyzer (clang --analyze)
# when clang is there, each file compiled as the library build compiles it
# (flags from compile_commands.json) plus:
#   LC_ALL=C        plain quotes in the messages, whatever the locale
#   -DVAE_ANALYZER  the analysers' view of vae__fail (internal.h, see
#                   analyzer-contract.diff): a failure returns its status,
#                   never VAE_OK.  clang defines __clang_analyzer__ itself.
#   -fno-openmp-simd -Wno-unknown-pragmas  (GCC only)
#                   GCC 12's analyzer does not model the per-lane arrays
#                   "#pragma omp simd reduction" makes and reports every
#                   such loop (all nine reductions of lib/, 60 reports) as
#                   "cc1: use of uninitialized value '<unknown>'"; without
#                   the pragma it checks the same scalar loop.
#   --param=analyzer-bb-explosion-factor=50  (GCC only)
#                   with the default (5) GCC 12 stops exploring parts of 16
#                   of the 27 files (-Wanalyzer-too-complex, off by default,
#                   shows it) and missed a FILE leak put into read_file of
#                   model_file.c for a test; with 50 it finds it, and the
#                   stage takes about 2 minutes on 2 cores (1 GB for
#                   model_file.c).
# Every warning becomes "analyser <TAB> source file <TAB> message [checker]"
# (no line numbers: edits elsewhere in a file do not move it) and is compared with
# tests/analyzer.reviewed, which gives each reviewed false positive its
# reason.  A warning not in the list fails the stage; so does an entry no
# analyser reports any more (the list stays true).
analyzer_test() {
  local dir=build-test-analyzer t new gone tools=gcc
  t=$(mktemp -d); tmpdirs+=("$t")
  command -v clang > /dev/null && tools="gcc clang" ||
    skipped+=("$current: clang's analyzer (no clang)")
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVAE_BUILD_TESTS=OFF \
    -DVAE_BUILD_EXAMPLES=OFF -DVAE_WITH_MPI=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    > "$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
  # a script per library source and analyser, its output beside it
  /usr/bin/python3 - "$dir/compile_commands.json" "$t" "$root" $tools <<'PY'
import json, shlex, sys
db, out, root, tools = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
extra = {"gcc": ["-fanalyzer", "--param=analyzer-bb-explosion-factor=50",
                 "-fno-openmp-simd", "-Wno-unknown-pragmas",
                 "-fdiagnostics-plain-output", "-fno-diagnostics-color"],
         "clang": ["--analyze", "-fno-color-diagnostics"]}
for i, e in enumerate(c for c in json.load(open(db)) if "/lib/" in c["file"]):
    a = shlex.split(e["command"])[1:]
    skip = {k + 1 for k, w in enumerate(a) if w == "-o"} | {k for k, w in enumerate(a) if w == "-o"}
    a = [w for k, w in enumerate(a) if k not in skip and w != "-c" and w != e["file"]]
    for tool in tools:
        cmd = [tool] + a + ["-DVAE_ANALYZER"] + extra[tool] + \
              (["-c"] if tool == "gcc" else []) + ["-o", "/dev/null", e["file"]]
        with open("%s/%03d.%s.sh" % (out, i, tool), "w") as f:
            # the first line of the log names the source: GCC places some
            # reports at a macro's definition (internal.h)
            src = e["file"][len(root) + 1:] if e["file"].startswith(root + "/") else e["file"]
            f.write("cd %s && { echo %s; LC_ALL=C %s; } > %s/%03d.%s.log 2>&1\n" % (
                shlex.quote(e["directory"]), shlex.quote("source: " + src),
                " ".join(map(shlex.quote, cmd)), out, i, tool))
PY
  ls "$t"/*.sh | xargs -P "$jobs" -n 1 sh || { cat "$t"/*.log; echo "an analysis did not compile"; return 1; }
  for tool in $tools; do
    cat "$t"/*."$tool".log > "$dir.$tool.log"
    for log in "$t"/*."$tool".log; do
      # "analyser <TAB> source <TAB> message [checker]"
      awk -v tool="$tool" 'NR == 1 { src = $2; next }
        / warning: / { sub(/^.* warning: /, ""); gsub(/ \[CWE-[0-9]+\]/, ""); print tool "\t" src "\t" $0 }' "$log"
    done
  done | sort -u > "$t/found"
  grep -v -E '^(#|$)' tests/analyzer.reviewed | cut -f 1-3 | grep -E "^(${tools// /|})	" |
    sort -u > "$t/reviewed" || true
  new=$(comm -23 "$t/found" "$t/reviewed")
  gone=$(comm -13 "$t/found" "$t/reviewed")
  if [ -n "$new" ]; then
    echo "Warnings not reviewed (add a reason to tests/analyzer.reviewed, or fix; paths in $dir.*.log):"
    printf '%s\n' "$new" | sed 's/^/  /'
  fi
  if [ -n "$gone" ]; then
    echo "Reviewed warnings no analyser reports any more (remove them from tests/analyzer.reviewed):"
    printf '%s\n' "$gone" | sed 's/^/  /'
  fi
  [ -z "$new$gone" ] || return 1
  echo "$(wc -l < "$t/found") distinct warnings ($tools), each reviewed in tests/analyzer.reviewed"
}


tsan_test() {  # the whole suite, the example programs included, under ThreadSanitizer
  # OpenBLAS: BLIS's OpenMP runtime is not instrumented (false reports); no
  # MPI: Open MPI is not ours (test_mpi says skipped).  The options and the
  # suppressions (tests/tsan.supp) come from VAE_TSAN; the flags are reset
  # for a directory configured by the older stage (-fsanitize=thread in
  # CMAKE_C_FLAGS, no examples).
  build_and_test tsan -DVAE_TSAN=ON -DVAE_BLAS=openblas -DVAE_WITH_MPI=OFF \
    -DVAE_BUILD_EXAMPLES=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS= -DCMAKE_EXE_LINKER_FLAGS= -DCMAKE_SHARED_LINKER_FLAGS=
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

if echo 'int f(void);' | gcc -fanalyzer -x c -c -o /dev/null - 2> /dev/null; then
  stage "Static analysis of lib/ (gcc -fanalyzer, clang --analyze)"
  analyzer_test
else
  skip "Static analysis" "gcc has no -fanalyzer (GCC 10 or later)"
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
  stage "ThreadSanitizer (the whole suite, OpenBLAS)"
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

# vae-explore in a real browser: Debian's Chromium driven by puppeteer-core
# from npm.  A stage of its own because it installs from npm; where
# Chromium or the npm package cannot be had, run.sh says why and exits 77.
stage "Browser (vae-explore in headless Chromium, puppeteer-core)"
browser_log=$(mktemp); tmpdirs+=("$browser_log")
if ! bash scripts/deps.sh browser > "$browser_log" 2>&1; then
  cat "$browser_log"
  skip "Browser" "scripts/deps.sh browser could not install Chromium and a font (see above)"
else
  set +e
  bash tests/browser/run.sh "$root/build-test-openblas" 2>&1 | tee "$browser_log"
  browser_status=${PIPESTATUS[0]}
  set -e
  if [ "$browser_status" = 77 ]; then
    reason=$(grep '^skipped: ' "$browser_log" | tail -1)
    skip "Browser" "${reason#skipped: }"
  elif [ "$browser_status" != 0 ]; then
    echo "error: the browser test failed (see above)" >&2; exit 1
  else
    end_stage
  fi
fi
