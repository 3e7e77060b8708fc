#!/bin/sh
# Build bench/sgemm_peak.c against Debian's OpenBLAS (pthread) and BLIS (openmp).
# Output directory: $1 or $OUT or /tmp/libvae-bench
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/libvae-bench}}
CC=${CC:-cc}
mkdir -p "$OUT"
$CC -O2 -std=c11 -Wall -Wextra bench/sgemm_peak.c \
    $(pkg-config --cflags --libs openblas) -lpthread -ldl \
    -o "$OUT/sgemm_peak_openblas"
BLIS_INC=/usr/include/x86_64-linux-gnu/blis-openmp
BLIS_LIB=/usr/lib/x86_64-linux-gnu/blis-openmp
$CC -O2 -std=c11 -Wall -Wextra -I"$BLIS_INC" bench/sgemm_peak.c \
    -L"$BLIS_LIB" -Wl,-rpath,"$BLIS_LIB" -lblis -fopenmp -lpthread -ldl \
    -o "$OUT/sgemm_peak_blis"
echo "built $OUT/sgemm_peak_openblas $OUT/sgemm_peak_blis"
