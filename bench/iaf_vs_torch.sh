#!/usr/bin/env bash
# Training speed of the MLP VAE with inverse autoregressive flow (run R3:
# tanh encoder 3072-500 with mean, log-variance and context heads of 500,
# 3 MADE IAF steps of 500 hidden units, tanh decoder 500-3072; Adam 1e-4,
# batch 32): libvae's vae-cifar10-iaf at its default settings beside PyTorch
# (Debian's python3-torch, bench/torch_iaf_vae.py --time-only) at its best
# settings, in the same run, plus the GFLOP/s each reaches and its fraction
# of the machine's sgemm peak.
#
# Data: DATA=DIR, a CIFAR-10 binary folder (data_batch_1.bin ..
# data_batch_5.bin, test_batch.bin); without it a random stand-in is written
# to a temporary folder: each file RECORDS=10000 records of one label byte
# (0-9) and 3072 random bytes.  Both sides train on the same bytes (pixels
# byte/256); the speed does not depend on the data.
#
# PyTorch's best is the higher of 1 thread and 2 threads with
# OPENBLAS_NUM_THREADS=1, both with OPENBLAS_CORETYPE=SkylakeX where the CPU
# has AVX-512 (all its products are OpenBLAS GEMMs; denormals flushed).
# Runs are interleaved REPS times (default 3); medians. Each run first waits
# for an idle machine (bench/wait_idle.sh) and is repeated (up to RETRIES=3
# times) when other processes used more than FOREIGN_MAX=10 % of a CPU
# meanwhile.
#
# libvae's figure is images_per_sec of its first epoch (row 2 of
# metrics.csv): all 5 x RECORDS training images unless LIMIT=N is set (then
# --limit N for both sides, which is printed). PyTorch's --time-only times
# the same epoch 1 after 5 untimed warm-up steps.
#
# FLOPs: one training step costs 39,360,000 FLOP per image in its matrix
# products, counted exactly (masked products counted dense, as both sides
# run them as full GEMMs). Forward multiply-adds per image:
#   encoder Dense 3072->500                      1,536,000
#   heads mean, log-variance, context 500->500     750,000
#   3 IAF steps: z->hidden, context->hidden,
#                hidden->m, hidden->s (500x500)  3,000,000
#   decoder Dense 500->500                         250,000
#   decoder logits 500->3072                     1,536,000
#   total                                        7,072,000
# backward: the same again for the weight gradients and again for the input
# gradients except the first layer's (x needs none):
# 3 x 7,072,000 - 1,536,000 = 19,680,000 MACs, x 2 FLOP. (Biases,
# activations, the gates, PyTorch's weight*mask products, the loss and the
# optimiser are not counted.)
#
# Usage: bench/iaf_vs_torch.sh          (from anywhere; builds what it needs)
#        REPS=5 LIMIT=20000 CONTRAST=1 bench/iaf_vs_torch.sh
#        DATA=data/cifar-10-batches-bin bench/iaf_vs_torch.sh
#   CONTRAST=1 also times PyTorch with 2 threads and no settings at all (its
#   OpenMP threads and OpenBLAS's own 2 threads oversubscribe the 2 cores).
#   PEAK=0 skips the sgemm peak (and the GFLOP/s fractions).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
REPS=${REPS:-3}
LIMIT=${LIMIT:-}
CONTRAST=${CONTRAST:-0}
PEAK=${PEAK:-1}
RECORDS=${RECORDS:-10000}
DATA=${DATA:-}
PY=/usr/bin/python3
bash scripts/deps.sh python3-torch
if [ ! -x build/examples/vae-cifar10-iaf ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build build -j "$(nproc)" > /dev/null || true
fi
have_libvae=1
if [ ! -x build/examples/vae-cifar10-iaf ]; then
  have_libvae=0
  echo "# build/examples/vae-cifar10-iaf does not exist (yet): timing PyTorch only" >&2
fi
[ "$PEAK" = 1 ] && bash bench/build_sgemm_peak.sh /tmp/libvae-bench > /dev/null 2>&1
coretype=""
grep -qw avx512f /proc/cpuinfo && coretype="OPENBLAS_CORETYPE=SkylakeX"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "$DATA" ]; then
  DATA=$work/cifar
  what="random stand-in, 5 x $RECORDS train records"
  $PY - "$DATA" "$RECORDS" <<'EOF'
import os, sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(1)
for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
    rec = rng.integers(0, 256, size=(n, 3073), dtype=np.uint8)
    rec[:, 0] %= 10  # the label byte
    rec.tofile(os.path.join(d, name))
EOF
else
  what=$DATA
fi
train_images=0
for f in "$DATA"/data_batch_{1,2,3,4,5}.bin; do
  [ -r "$f" ] || { echo "error: $f is missing" >&2; exit 1; }
  train_images=$((train_images + $(stat -c %s "$f") / 3073))
done
[ -n "$LIMIT" ] && [ "$LIMIT" -lt "$train_images" ] && train_images=$LIMIT

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
  watched "build/examples/vae-cifar10-iaf --data '$DATA' --out '$work/run' --epochs 1 --seed 1 ${LIMIT:+--limit $LIMIT} > /dev/null" &&
    awk -F, 'NR == 2 {print $3}' "$work/run/metrics.csv" || echo nan
}
torch() {  # extra environment, then torch threads
  watched "$1 $PY bench/torch_iaf_vae.py --time-only --data '$DATA' --threads $2 ${LIMIT:+--limit $LIMIT}" &&
    awk '{for (i = 1; i < NF; i++) if ($i == "images_per_sec") v = $(i + 1)} END {print v}' "$work/out" ||
    echo nan
}
peak() {  # sgemm GFLOP/s, 1024^3, 2 threads
  watched /tmp/libvae-bench/sgemm_peak_openblas &&
    awk '$1 == "result" && $2 == "gflops_square1024_2t" {print $3}' "$work/out" || echo nan
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cpus, REPS=$REPS," \
     "${coretype:-OPENBLAS_CORETYPE unset}, data: $what, epoch: $train_images images"
declare -a lv t1 t2 tp pk
for ((r = 1; r <= REPS; r++)); do
  vl=n/a vp="" vs=n/a
  [ "$have_libvae" = 1 ] && { vl=$(libvae); lv+=("$vl"); }
  v1=$(torch "$coretype" 1); t1+=("$v1")
  v2=$(torch "$coretype OPENBLAS_NUM_THREADS=1" 2); t2+=("$v2")
  [ "$CONTRAST" = 1 ] && { vp=$(torch "" 2); tp+=("$vp"); }
  [ "$PEAK" = 1 ] && { vs=$(peak); pk+=("$vs"); }
  echo "# round $r: libvae $vl  torch-1-thread $v1  torch-2-threads-ob1 $v2${vp:+  torch-2-threads-plain $vp}  sgemm-2t $vs" >&2
done
L=nan S=nan
[ "$have_libvae" = 1 ] && L=$(median "${lv[@]}")
[ "$PEAK" = 1 ] && S=$(median "${pk[@]}")
T1=$(median "${t1[@]}") T2=$(median "${t2[@]}")
T=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print (a > b) ? a : b}')
train_flops=39360000

printf '%-40s %10s%s\n' "libvae vae-cifar10-iaf (default)" "$L" "${LIMIT:+   (--limit $LIMIT)}"
printf '%-40s %10s\n' "PyTorch, 1 thread" "$T1"
printf '%-40s %10s\n' "PyTorch, 2 threads, OpenBLAS 1" "$T2"
[ "$CONTRAST" = 1 ] && printf '%-40s %10s\n' "PyTorch, 2 threads, plain (contrast)" "$(median "${tp[@]}")"
printf '%-40s %10s\n' "PyTorch best" "$T"
awk -v l="$L" -v t="$T" -v s="$S" -v f="$train_flops" 'BEGIN {
  if (l == "nan") printf "libvae / PyTorch best                         n/a\n"
  else printf "libvae / PyTorch best                   %9.2fx\n", l / t
  printf "training FLOPs per image (exact GEMM count) %.2f MFLOP\n", f * 1e-6
  if (s == "nan") exit
  printf "sgemm peak (1024^3, 2 threads)          %10.1f GFLOP/s\n", s
  if (l != "nan") printf "libvae  achieves                        %10.1f GFLOP/s (%.0f%% of peak)\n", l * f * 1e-9, 100 * l * f * 1e-9 / s
  printf "PyTorch achieves                        %10.1f GFLOP/s (%.0f%% of peak)\n", t * f * 1e-9, 100 * t * f * 1e-9 / s
}'
