#!/usr/bin/env bash
# Training speed of the Keras book's convolutional VAE (run R2: four 3x3
# convolutions, 2-D latent, RMSprop, batch 100): libvae's vae-mnist-conv at
# its default settings beside PyTorch (Debian's python3-torch,
# bench/torch_conv_vae.py --time-only) at its best settings, in the same run,
# plus the GFLOP/s each reaches and its fraction of the machine's sgemm peak.
#
# PyTorch's best is the higher of 1 thread and 2 threads with
# OPENBLAS_NUM_THREADS=1, both with OPENBLAS_CORETYPE=SkylakeX where the CPU
# has AVX-512 (PyTorch's convolutions run in oneDNN on its own threads; its
# Linear layers and the transposed convolution use OpenBLAS). Runs are
# interleaved REPS times (default 3); medians. Each run first waits for an
# idle machine (bench/wait_idle.sh) and is repeated (up to RETRIES=3 times)
# when other processes used more than FOREIGN_MAX=10 % of a CPU meanwhile.
#
# libvae's figure is images_per_sec of its first epoch (row 2 of
# metrics.csv), a full 60000-image epoch unless LIMIT=N is set (then
# --limit N, which is printed). PyTorch's --time-only also times a full
# epoch 1, after 5 untimed warm-up steps.
#
# FLOPs: one training step of this network costs 134,873,856 FLOP per image
# in its convolutions and matrix products, counted exactly: forward
# 22,554,240 multiply-adds; backward the same again for the weight gradients
# and again for the input gradients, except the first convolution's input
# gradient, which nobody needs (3 x 22,554,240 - 225,792 = 67,436,928 MACs,
# x 2 FLOP). Per layer (forward MACs per image):
#   conv 1->32, 28x28 out            28*28*32*9*1  =   225,792
#   conv 32->64 stride 2, 14x14 out  14*14*64*9*32 = 3,612,672
#   conv 64->64, 14x14 (twice)       14*14*64*9*64 = 7,225,344 each
#   dense 12544->32                  12544*32      =   401,408
#   dense 32->2 (mu and logvar)      2*32*2        =       128
#   dense 2->12544                   2*12544       =    25,088
#   transposed conv 64->32, 14x14 in 14*14*9*64*32 = 3,612,672
#   conv 32->1, 28x28 out            28*28*9*32*1  =   225,792
# (Biases, activations, the loss and the optimiser are not counted.)
#
# Usage: bench/conv_vs_torch.sh          (from anywhere; builds what it needs)
#        REPS=5 LIMIT=20000 CONTRAST=1 bench/conv_vs_torch.sh
#   CONTRAST=1 also times PyTorch with 2 threads and no settings at all (its
#   OpenMP threads and OpenBLAS's own 2 threads oversubscribe the 2 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
REPS=${REPS:-3}
LIMIT=${LIMIT:-}
CONTRAST=${CONTRAST:-0}
PY=/usr/bin/python3
bash scripts/deps.sh python3-torch
bash scripts/fetch-mnist.sh data/mnist
if [ ! -x build/examples/vae-mnist-conv ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build build -j "$(nproc)" > /dev/null || true
fi
have_libvae=1
if [ ! -x build/examples/vae-mnist-conv ]; then
  have_libvae=0
  echo "# build/examples/vae-mnist-conv does not exist (yet): timing PyTorch only" >&2
fi
bash bench/build_sgemm_peak.sh /tmp/libvae-bench > /dev/null 2>&1
coretype=""
grep -qw avx512f /proc/cpuinfo && coretype="OPENBLAS_CORETYPE=SkylakeX"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
libvae() {  # images/s of libvae's epoch 1
  rm -rf "$work/run"
  watched "build/examples/vae-mnist-conv --data data/mnist --out '$work/run' --epochs 1 --seed 1 ${LIMIT:+--limit $LIMIT} > /dev/null" &&
    awk -F, 'NR == 2 {print $3}' "$work/run/metrics.csv" || echo nan
}
torch() {  # extra environment, then torch threads
  watched "$1 $PY bench/torch_conv_vae.py --time-only --data data/mnist --threads $2" &&
    awk '{for (i = 1; i < NF; i++) if ($i == "images_per_sec") v = $(i + 1)} END {print v}' "$work/out" ||
    echo nan
}
peak() {  # sgemm GFLOP/s, 1024^3, 2 threads
  watched /tmp/libvae-bench/sgemm_peak_openblas &&
    awk '$1 == "result" && $2 == "gflops_square1024_2t" {print $3}' "$work/out" || echo nan
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cpus, REPS=$REPS," \
     "${coretype:-OPENBLAS_CORETYPE unset}, libvae epoch: ${LIMIT:-60000} images"
declare -a lv t1 t2 tp pk
for ((r = 1; r <= REPS; r++)); do
  vl=n/a vp=""
  [ "$have_libvae" = 1 ] && { vl=$(libvae); lv+=("$vl"); }
  v1=$(torch "$coretype" 1); t1+=("$v1")
  v2=$(torch "$coretype OPENBLAS_NUM_THREADS=1" 2); t2+=("$v2")
  [ "$CONTRAST" = 1 ] && { vp=$(torch "" 2); tp+=("$vp"); }
  vs=$(peak); pk+=("$vs")
  echo "# round $r: libvae $vl  torch-1-thread $v1  torch-2-threads-ob1 $v2${vp:+  torch-2-threads-plain $vp}  sgemm-2t $vs" >&2
done
L=nan
[ "$have_libvae" = 1 ] && L=$(median "${lv[@]}")
T1=$(median "${t1[@]}") T2=$(median "${t2[@]}") S=$(median "${pk[@]}")
T=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print (a > b) ? a : b}')
train_flops=134873856

printf '%-40s %10s%s\n' "libvae vae-mnist-conv (default)" "$L" "${LIMIT:+   (--limit $LIMIT)}"
printf '%-40s %10s\n' "PyTorch, 1 thread" "$T1"
printf '%-40s %10s\n' "PyTorch, 2 threads, OpenBLAS 1" "$T2"
[ "$CONTRAST" = 1 ] && printf '%-40s %10s\n' "PyTorch, 2 threads, plain (contrast)" "$(median "${tp[@]}")"
printf '%-40s %10s\n' "PyTorch best" "$T"
awk -v l="$L" -v t="$T" -v s="$S" -v f="$train_flops" 'BEGIN {
  if (l == "nan") printf "libvae / PyTorch best                         n/a (target 1.2x)\n"
  else printf "libvae / PyTorch best                   %9.2fx (target 1.2x)\n", l / t
  printf "training FLOPs per image (exact GEMM count) %.2f MFLOP\n", f * 1e-6
  printf "sgemm peak (1024^3, 2 threads)          %10.1f GFLOP/s\n", s
  if (l != "nan") printf "libvae  achieves                        %10.1f GFLOP/s (%.0f%% of peak)\n", l * f * 1e-9, 100 * l * f * 1e-9 / s
  printf "PyTorch achieves                        %10.1f GFLOP/s (%.0f%% of peak)\n", t * f * 1e-9, 100 * t * f * 1e-9 / s
}'
