#!/usr/bin/env bash
# Training speed of the 784-400-20 Bernoulli VAE (Adam, batch 128): libvae's
# vae-mnist-dense at its default settings beside PyTorch (Debian's
# python3-torch) at its best settings, in the same run, plus the fraction
# of the machine's GEMM-only ceiling that each reaches.
#
# PyTorch's best is the higher of 1 thread and 2 threads with
# OPENBLAS_NUM_THREADS=1, both with OPENBLAS_CORETYPE=SkylakeX where the CPU
# has AVX-512.  Runs are interleaved REPS times (default 3); medians.
# Usage: bench/dense_vs_torch.sh        (from anywhere; builds what it needs)
# shellcheck source-path=SCRIPTDIR source=harness.sh
. "$(dirname "$0")/harness.sh"
bash scripts/fetch-mnist.sh data/mnist
build_example vae-mnist-dense
bash bench/build_sgemm_peak.sh /tmp/libvae-bench > /dev/null 2>&1

libvae() {  # images/s of epoch 2 (epoch 1 warms caches and page-faults)
  build/examples/vae-mnist-dense --data data/mnist --out "$work/run" --hidden 400 --latent 20 \
    --loss bce --optimizer adam --lr 1e-3 --batch 128 --epochs 2 --seed 1 > /dev/null
  awk -F, 'NR == 3 {print $3}' "$work/run/metrics.csv"
}
torch() {  # extra environment, then torch threads
  # shellcheck disable=SC2086  # $1 is a list of VAR=value words for env
  env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS $1 \
    $PY bench/torch_dense_vae.py --time-only --data data/mnist --threads "$2" | images_per_sec
}

declare -a lv t1 t2
for ((r = 1; r <= REPS; r++)); do
  lv+=("$(libvae)")
  t1+=("$(torch "$coretype" 1)")
  t2+=("$(torch "$coretype OPENBLAS_NUM_THREADS=1" 2)")
  echo "# round $r: libvae ${lv[-1]}  torch-1-thread ${t1[-1]}  torch-2-threads-ob1 ${t2[-1]}" >&2
done
L=$(median "${lv[@]}") T1=$(median "${t1[@]}") T2=$(median "${t2[@]}")
T=$(awk -v a="$T1" -v b="$T2" 'BEGIN {print (a > b) ? a : b}')

peak=$(/tmp/libvae-bench/sgemm_peak_openblas)
ceiling=$(awk '$1 == "result" && $2 == "ips_ceiling_dp" {print $3}' <<< "$peak")
square=$(awk '$1 == "result" && $2 == "gflops_square1024_2t" {print $3}' <<< "$peak")
# one training step of this network: 3.28 MFLOP per image in its 14 GEMMs
gemm_flops=3279600

printf '%-34s %10s\n' "libvae vae-mnist-dense (default)" "$L"
printf '%-34s %10s\n' "PyTorch, 1 thread" "$T1"
printf '%-34s %10s\n' "PyTorch, 2 threads, OpenBLAS 1" "$T2"
printf '%-34s %10s\n' "PyTorch best" "$T"
awk -v l="$L" -v t="$T" -v c="$ceiling" -v s="$square" -v f="$gemm_flops" 'BEGIN {
  printf "libvae / PyTorch best               %9.2fx (target 1.5x)\n", l / t
  printf "GEMM-only ceiling (data-parallel)   %10.0f images/s\n", c
  printf "fraction of that ceiling: libvae %.0f%%, PyTorch %.0f%%\n", 100 * l / c, 100 * t / c
  printf "sgemm peak (1024^3, 2 threads)      %10.1f GFLOP/s; libvae runs its GEMMs at %.1f GFLOP/s (%.0f%%)\n",
         s, l * f * 1e-9, 100 * l * f * 1e-9 / s
}'
