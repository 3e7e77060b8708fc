#!/usr/bin/env bash
# Data-parallel training on one machine: images/s of 1 rank x 1 thread,
# 2 ranks x 1 thread (mpirun) and 1 process x 2 threads for R1's benchmark
# network (784-400-20, Adam, batch 128), R2 (vae-mnist-conv) and R3
# (vae-cifar10-iaf, batch 32), beside what they predict: the step's compute
# time from the 1 x 1 run and the all-reduce time of the gradient's size
# (bench_allreduce_time).  Images/s are epoch 2's (epoch 1 warms caches);
# runs are interleaved REPS times (default 3), medians.
# Like the other benchmarks it unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# for its own commands and prints the kernels that ran.
# Usage: bench/mpi_scaling.sh [R1|R2|R3 ...] (default all; BATCHES="256 512"
#        adds R1 runs at those batches, R3_BATCHES R3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x build/examples/vae-mnist-dense ] && [ -x build/mpi/bench_allreduce_time ] ||
  { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null && cmake --build build -j2 > /dev/null; }
bash scripts/fetch-mnist.sh data/mnist > /dev/null
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# $1 = ranks, $2 = threads, rest = program and flags: epoch 2's images/s
run() {
  local ranks=$1 threads=$2; shift 2
  rm -rf "$work/out"
  if [ "$ranks" = 1 ]; then
    "$@" --threads "$threads" --epochs 2 --quiet --out "$work/out" > "$work/log" 2>&1
  else
    timeout 3600 mpirun --oversubscribe --bind-to none -np "$ranks" "$@" --threads "$threads" \
      --epochs 2 --quiet --out "$work/out" > "$work/log" 2>&1
  fi || { cat "$work/log" >&2; return 1; }
  awk -F, 'NR == 3 {print $3}' "$work/out/metrics.csv"
}

# $1 name, $2 batch, $3 gradient floats, rest the program and flags
workload() {
  local name=$1 batch=$2 floats=$3; shift 3
  local a=() b=() c=()
  for ((r = 1; r <= REPS; r++)); do
    a+=("$(run 1 1 "$@")"); b+=("$(run 2 1 "$@")"); c+=("$(run 1 2 "$@")")
    echo "# $name round $r: 1x1 ${a[-1]}  2x1 ${b[-1]}  1x2 ${c[-1]}" >&2
  done
  local ar
  ar=$(timeout 300 mpirun --oversubscribe --bind-to none -np 2 build/mpi/bench_allreduce_time "$floats" 2>/dev/null |
       awk -v n="$floats" '{for (i = 1; i <= NF; i++) if ($i == n) {print $(i + 2); exit}}')
  awk -v n="$name" -v B="$batch" -v f="$floats" -v a="$(median "${a[@]}")" -v b="$(median "${b[@]}")" \
      -v c="$(median "${c[@]}")" -v ar="$ar" 'BEGIN {
    step = B / a * 1e3; ar_ms = ar / 1e3
    pred = B / (step / 2 + ar_ms) * 1e3
    printf "%-4s batch %4d  grad %9d floats  1x1 %8.0f  2x1 %8.0f (%.2fx)  1x2 %8.0f (%.2fx)  2x1/1x2 %.2f\n",
           n, B, f, a, b, b / a, c, c / a, b / c
    printf "      step compute (1 thread) %.3f ms, all-reduce %.3f ms: predicted 2x1 %.0f images/s (%.2fx)\n",
           step, ar_ms, pred, pred / a
  }'
}

echo "# $(build/examples/vae-mnist-dense --help > /dev/null; nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "# $(mpirun --version | head -1); kernels: $(build/examples/vae-mnist-dense --data data/mnist --epochs 0 --out "$work/k" 2>/dev/null | head -1 | sed 's/.*parameters, [^,]*, //')"
what=${*:-R1 R2 R3}
for w in $what; do
  case $w in
    R1) for B in 128 ${BATCHES:-}; do
          workload R1 "$B" 652824 build/examples/vae-mnist-dense --data data/mnist --hidden 400 --latent 20 \
            --optimizer adam --lr 1e-3 --batch "$B" --seed 1
        done ;;
    R2) workload R2 128 550629 build/examples/vae-mnist-conv --data data/mnist --limit 20000 --seed 1 ;;
    R3) [ -s /tmp/cifar/data_batch_1.bin ] || bash scripts/make-cifar-demo.sh /tmp/cifar --train 20000 --test 2000 --source mnist > /dev/null
        for B in 32 ${R3_BATCHES:-}; do
          workload R3 "$B" 7082072 build/examples/vae-cifar10-iaf --data /tmp/cifar --seed 1 --batch "$B"
        done ;;
  esac
done
