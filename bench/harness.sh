# shellcheck shell=bash
# Sourced by bench/{iaf,conv,dense}_vs_torch.sh, so that their set-up, the
# shared-machine hygiene and the report stay one copy and the comparisons
# measure and print alike. Sourcing it cds to the repository root (relative
# paths such as DATA are taken from there, as before) and sets REPS, PY,
# coretype and work (a temporary folder, removed on exit).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPS=${REPS:-3}
PY=/usr/bin/python3  # Debian's python, the one with torch
bash scripts/deps.sh python3-torch
coretype=""
grep -qw avx512f /proc/cpuinfo && coretype="OPENBLAS_CORETYPE=SkylakeX"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Builds build/examples/$1 unless it is there; fails if it still is not.
build_example() {
  if [ ! -x "build/examples/$1" ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
    cmake --build build -j "$(nproc)" > /dev/null || true
  fi
  [ -x "build/examples/$1" ]
}

# A tree where the example does not build yet still gets its PyTorch baseline.
have_libvae=1
try_example() {
  build_example "$1" && return
  have_libvae=0
  echo "# build/examples/$1 does not exist (yet): timing PyTorch only" >&2
}

images_per_sec() { awk '{for (i = 1; i < NF; i++) if ($i == "images_per_sec") v = $(i + 1)} END {print v}' "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# Run a command (a string for bash -c) on an idle machine; its stdout goes to
# $work/out. Retried while others used more than FOREIGN_MAX % of a CPU.
watched() {
  local try fc
  for ((try = 0; try <= ${RETRIES:-3}; try++)); do
    bash bench/wait_idle.sh "${MIN_IDLE:-90}" "${MAX_WAIT:-600}" 2> /dev/null || true
    env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS -u OPENBLAS_CORETYPE \
      bash bench/run_watched.sh bash -c "$1" > "$work/out" 2> "$work/err" || {
        cat "$work/err" >&2; return 1; }
    fc=$(awk '$1 == "foreign_cpu_pct" {print $2}' "$work/out")
    [ "${fc:-0}" -le "${FOREIGN_MAX:-10}" ] && return 0
    echo "#   disturbed (foreign_cpu_pct $fc), again" >&2
  done
}
watched_libvae() {  # example, its --data: images/s of epoch 1
  rm -rf "$work/run"
  watched "build/examples/$1 --data '$2' --out '$work/run' --epochs 1 --seed 1 ${LIMIT:+--limit $LIMIT} > /dev/null" &&
    awk -F, 'NR == 2 {print $3}' "$work/run/metrics.csv" || echo nan
}
watched_torch() {  # extra environment, torch threads, script and its options
  watched "$1 $PY $3 --threads $2" && images_per_sec "$work/out" || echo nan
}
peak() {  # sgemm GFLOP/s, 1024^3, 2 threads
  watched /tmp/libvae-bench/sgemm_peak_openblas &&
    awk '$1 == "result" && $2 == "gflops_square1024_2t" {print $3}' "$work/out" || echo nan
}

# The interleaved rounds and the report of iaf_ and conv_vs_torch.sh (which
# set LIMIT, CONTRAST and PEAK). Arguments: the example, the data folder of
# both sides, the PyTorch script with its own options, the header's note on
# data and epoch, the training FLOP per image, what follows the ratio.
compare() {
  local example=$1 data=$2 tcmd="$3 --time-only --data '$2'" flops=$5 note=$6
  local r vl v1 v2 vp vs L=nan S=nan T T1 T2
  local -a lv=() t1=() t2=() tp=() pk=()
  echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cpus, REPS=$REPS," \
       "${coretype:-OPENBLAS_CORETYPE unset}, $4"
  for ((r = 1; r <= REPS; r++)); do
    vl=n/a vp="" vs=n/a
    [ "$have_libvae" = 1 ] && { vl=$(watched_libvae "$example" "$data"); lv+=("$vl"); }
    v1=$(watched_torch "$coretype" 1 "$tcmd"); t1+=("$v1")
    v2=$(watched_torch "$coretype OPENBLAS_NUM_THREADS=1" 2 "$tcmd"); t2+=("$v2")
    [ "$CONTRAST" = 1 ] && { vp=$(watched_torch "" 2 "$tcmd"); tp+=("$vp"); }
    [ "$PEAK" = 1 ] && { vs=$(peak); pk+=("$vs"); }
    echo "# round $r: libvae $vl  torch-1-thread $v1  torch-2-threads-ob1 $v2${vp:+  torch-2-threads-plain $vp}  sgemm-2t $vs" >&2
  done
  [ "$have_libvae" = 1 ] && L=$(median "${lv[@]}")
  [ "$PEAK" = 1 ] && S=$(median "${pk[@]}")
  T1=$(median "${t1[@]}") T2=$(median "${t2[@]}")
  T=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print (a > b) ? a : b}')

  printf '%-40s %10s%s\n' "libvae $example (default)" "$L" "${LIMIT:+   (--limit $LIMIT)}"
  printf '%-40s %10s\n' "PyTorch, 1 thread" "$T1"
  printf '%-40s %10s\n' "PyTorch, 2 threads, OpenBLAS 1" "$T2"
  [ "$CONTRAST" = 1 ] && printf '%-40s %10s\n' "PyTorch, 2 threads, plain (contrast)" "$(median "${tp[@]}")"
  printf '%-40s %10s\n' "PyTorch best" "$T"
  awk -v l="$L" -v t="$T" -v s="$S" -v f="$flops" -v note="$note" 'BEGIN {
    if (l == "nan") printf "libvae / PyTorch best                         n/a%s\n", note
    else printf "libvae / PyTorch best                   %9.2fx%s\n", l / t, note
    printf "training FLOPs per image (exact GEMM count) %.2f MFLOP\n", f * 1e-6
    if (s == "nan") exit
    printf "sgemm peak (1024^3, 2 threads)          %10.1f GFLOP/s\n", s
    if (l != "nan") printf "libvae  achieves                        %10.1f GFLOP/s (%.0f%% of peak)\n", l * f * 1e-9, 100 * l * f * 1e-9 / s
    printf "PyTorch achieves                        %10.1f GFLOP/s (%.0f%% of peak)\n", t * f * 1e-9, 100 * t * f * 1e-9 / s
  }'
}
