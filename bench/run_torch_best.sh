#!/usr/bin/env bash
# Time one training epoch of the reference PyTorch VAE (bench/torch_dense_vae.py
# --time-only) in PyTorch's two best CPU settings on a 2-core machine, plus
# contrasts, and print "name images_per_sec" lines (medians over REPS runs,
# repetitions interleaved round-robin so slow drifts hit every config alike).
#
#   torch_1thread        torch.set_num_threads(1)  (OpenBLAS keeps its default
#                        thread count, i.e. 2 on 2 cores)
#   torch_2thread_ob1    torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1
#   torch_2thread_plain  (contrast) torch.set_num_threads(2), no env: torch's
#                        OpenMP threads and OpenBLAS's threads oversubscribe
#   torch_1thread_ob1    (contrast) fully single-core: 1 torch thread,
#                        OPENBLAS_NUM_THREADS=1
# The first two get OPENBLAS_CORETYPE=SkylakeX when /proc/cpuinfo has avx512f
# (Debian's OpenBLAS otherwise may pick AVX2 kernels; read at load time).
# torch_best = the better of the first two (group "torch").
#
# Usage: bench/run_torch_best.sh            (REPS=3, DATA=/tmp/mn/package/data)
#        REPS=5 bench/run_torch_best.sh
#
# To add another contender (e.g. libvae), call add_config with a name, a shell
# command that prints a line containing "images_per_sec <number>", and
# optionally a group: configs of a group compete for "<group>_best", e.g.
#   add_config libvae_2thr "./build/bench_libvae --time-only --threads 2" libvae
set -u
cd "$(dirname "$0")/.."

PY=/usr/bin/python3 # Debian's python with torch (not the first python3 on PATH)
REPS=${REPS:-3}
DATA=${DATA:-/tmp/mn/package/data}
TORCH="$PY bench/torch_dense_vae.py --time-only --data $DATA"

CORETYPE_ENV=""
if grep -qw avx512f /proc/cpuinfo; then
    CORETYPE_ENV="OPENBLAS_CORETYPE=SkylakeX"
fi

NAMES=()
CMDS=()
GROUPS_=()          # group of each config ("" = contrast only)
declare -A RESULTS  # name -> space-separated list of images/s
declare -A BEST     # group -> best median
declare -A BEST_OF  # group -> name of the best config

add_config() { # NAME COMMAND-STRING [GROUP]
    NAMES+=("$1")
    CMDS+=("$2")
    GROUPS_+=("${3:-}")
}

# Run a command once, print its images/s (the last "images_per_sec N" token).
# Shared-machine hygiene: first wait (up to MAX_WAIT=300 s) until the machine
# is >= MIN_IDLE=90 % idle; repeat the run (up to RETRIES=3 more times) if
# other processes used more than FOREIGN_MAX=10 % of a CPU meanwhile.
images_per_sec_of() { # COMMAND-STRING
    local try out v fc
    for ((try = 0; try <= ${RETRIES:-3}; try++)); do
        bench/wait_idle.sh "${MIN_IDLE:-90}" "${MAX_WAIT:-300}" 2>/dev/null || true
        out=$(env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS -u OPENBLAS_CORETYPE \
            bench/run_watched.sh bash -c "$1" 2>/dev/null)
        v=$(printf '%s\n' "$out" | awk '{for (i = 1; i < NF; i++)
                if ($i == "images_per_sec") v = $(i + 1)}
                END {if (v == "") v = "nan"; print v}')
        fc=$(printf '%s\n' "$out" | awk '$1 == "foreign_cpu_pct" {print $2}')
        echo "#   try $try: images_per_sec $v foreign_cpu_pct ${fc:-?}" >&2
        [ "${fc:-0}" -le "${FOREIGN_MAX:-10}" ] && break
    done
    echo "$v"
}

median() { # numbers...
    printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1}
        END {if (NR == 0) print "nan";
             else if (NR % 2) print a[(NR + 1) / 2];
             else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# The one function that prints a result line.
print_result() { # NAME IMAGES_PER_SEC [COMMENT]
    printf '%-22s %10s%s\n' "$1" "$2" "${3:+   # $3}"
}

# ---- configurations -------------------------------------------------------
add_config torch_1thread "$CORETYPE_ENV $TORCH --threads 1" torch
add_config torch_2thread_ob1 "$CORETYPE_ENV OPENBLAS_NUM_THREADS=1 $TORCH --threads 2" torch
add_config torch_2thread_plain "$TORCH --threads 2"
add_config torch_1thread_ob1 "$CORETYPE_ENV OPENBLAS_NUM_THREADS=1 $TORCH --threads 1"

# ---- run ------------------------------------------------------------------
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cpus," \
     "REPS=$REPS, ${CORETYPE_ENV:-OPENBLAS_CORETYPE unset}"
for ((r = 1; r <= REPS; r++)); do
    for i in "${!NAMES[@]}"; do
        v=$(images_per_sec_of "${CMDS[$i]}")
        RESULTS[${NAMES[$i]}]="${RESULTS[${NAMES[$i]}]:-} $v"
        echo "# rep $r ${NAMES[$i]} $v" >&2
    done
done

GROUP_ORDER=()
for i in "${!NAMES[@]}"; do
    n=${NAMES[$i]}
    g=${GROUPS_[$i]}
    # shellcheck disable=SC2086
    m=$(median ${RESULTS[$n]})
    print_result "$n" "$m" "runs:${RESULTS[$n]}; ${CMDS[$i]}"
    [ -z "$g" ] && continue
    if [ -z "${BEST[$g]:-}" ]; then
        GROUP_ORDER+=("$g")
        BEST[$g]=$m
        BEST_OF[$g]=$n
    elif awk -v a="$m" -v b="${BEST[$g]}" 'BEGIN{exit !(a > b)}'; then
        BEST[$g]=$m
        BEST_OF[$g]=$n
    fi
done
for g in "${GROUP_ORDER[@]}"; do
    print_result "${g}_best" "${BEST[$g]}" "${BEST_OF[$g]}"
done
