#!/usr/bin/env bash
# Build bench/sgemm_peak.c for OpenBLAS and BLIS and run it in every
# configuration, REPS times each, interleaved round-robin (so slow drifts on a
# shared machine hit every configuration alike); print the median of every
# "result <key> <value>" line per configuration, as a table.
#
#   ob_default     OpenBLAS, OPENBLAS_CORETYPE unset (runtime CPU detection)
#   ob_skylakex    OpenBLAS, OPENBLAS_CORETYPE=SkylakeX (AVX-512 kernels)
#   ob_haswell     OpenBLAS, OPENBLAS_CORETYPE=Haswell  (contrast: AVX2 kernels)
#   blis_default   BLIS, BLIS_ARCH_TYPE unset
#   blis_skx       BLIS, BLIS_ARCH_TYPE=0 (skx)
#
# Usage: bench/run_sgemm_peak.sh [extra sgemm_peak args, e.g. -l oi]
#   REPS=3 (default)  OUT=/tmp/libvae-bench (binaries and raw logs)
# Shared-machine hygiene: before each run wait (up to MAX_WAIT=300 s) for the
# machine to be >= MIN_IDLE=90 % idle (bench/wait_idle.sh); each run is wrapped
# in bench/run_watched.sh and repeated (up to RETRIES=3 more times) if other
# processes used more than FOREIGN_MAX=10 % of a CPU meanwhile. The last row of
# the table is the largest foreign_cpu_pct among the kept runs.
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
OUT=${OUT:-/tmp/libvae-bench}
bench/build_sgemm_peak.sh "$OUT" >/dev/null 2>&1 || bench/build_sgemm_peak.sh "$OUT"
LOG="$OUT/sgemm_peak_logs.$$"
mkdir -p "$LOG"

NAMES=(ob_default ob_skylakex ob_haswell blis_default blis_skx)
ENVS=("" "OPENBLAS_CORETYPE=SkylakeX" "OPENBLAS_CORETYPE=Haswell" "" "BLIS_ARCH_TYPE=0")
BINS=(openblas openblas openblas blis blis)

for ((r = 1; r <= REPS; r++)); do
    for i in "${!NAMES[@]}"; do
        f="$LOG/${NAMES[$i]}.$r"
        for ((try = 0; try <= ${RETRIES:-3}; try++)); do
            bench/wait_idle.sh "${MIN_IDLE:-90}" "${MAX_WAIT:-300}" 2>/dev/null || true
            # shellcheck disable=SC2086
            env -u OPENBLAS_CORETYPE -u BLIS_ARCH_TYPE -u OPENBLAS_NUM_THREADS \
                -u BLIS_NUM_THREADS -u OMP_NUM_THREADS ${ENVS[$i]} \
                bench/run_watched.sh "$OUT/sgemm_peak_${BINS[$i]}" "$@" >"$f" 2>&1
            fc=$(awk '$1 == "foreign_cpu_pct" {print $2}' "$f")
            echo "# rep $r ${NAMES[$i]} try $try foreign_cpu_pct ${fc:-?}:" \
                 "$(grep -E '^# (openblas_get_corename|blis arch)' "$f" | sed 's/^# //')" >&2
            [ "${fc:-0}" -le "${FOREIGN_MAX:-10}" ] && break
            cp "$f" "$f.disturbed$try"
        done
    done
done

# table: rows = result keys, columns = configurations, cells = medians
{
    for i in "${!NAMES[@]}"; do
        for ((r = 1; r <= REPS; r++)); do
            f="$LOG/${NAMES[$i]}.$r"
            awk -v c="${NAMES[$i]}" '$1 == "result" {print c, $2, $3}
                $1 == "foreign_cpu_pct" {print c, "zz_max_foreign_cpu_pct", $2}' "$f"
        done
    done
} | awk -v cols="${NAMES[*]}" '
    { v[$1 SUBSEP $2] = v[$1 SUBSEP $2] " " $3; if (!($2 in seen)) { seen[$2] = 1; keys[++nk] = $2 } }
    function med(s,   a, n, i, j, t) {
        n = split(s, a, " ");
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function mx(s,   a, n, i, m) {
        n = split(s, a, " "); m = a[1];
        for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i];
        return m
    }
    END {
        nc = split(cols, c, " ");
        printf "%-26s", "median of '"$REPS"'";
        for (j = 1; j <= nc; j++) printf " %13s", c[j];
        printf "\n";
        for (k = 1; k <= nk; k++) {
            printf "%-26s", keys[k];
            for (j = 1; j <= nc; j++)
                printf " %13s", (keys[k] ~ /^zz_max/) ? mx(v[c[j] SUBSEP keys[k]]) : med(v[c[j] SUBSEP keys[k]]);
            printf "\n";
        }
    }'
echo "# raw logs: $LOG"
