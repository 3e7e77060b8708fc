#!/bin/sh
# Wait until the machine looks idle: at least MIN_IDLE percent (default 90) of
# all CPUs idle over a 2-second window, for at most MAX_WAIT seconds (default
# 300). Prints the last measured idle percentage to stderr. Used by the bench
# runners so a shared machine's other jobs disturb the numbers less.
# Usage: bench/wait_idle.sh [MIN_IDLE] [MAX_WAIT]
MIN_IDLE=${1:-90}
MAX_WAIT=${2:-300}
idle_pct() {
    set -- $(head -1 /proc/stat)
    t1=$(($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9)); i1=$(($5 + $6))
    sleep 2
    set -- $(head -1 /proc/stat)
    t2=$(($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9)); i2=$(($5 + $6))
    echo $(( 100 * (i2 - i1) / (t2 - t1 + (t2 == t1)) ))
}
start=$(date +%s)
while :; do
    p=$(idle_pct)
    if [ "$p" -ge "$MIN_IDLE" ]; then
        echo "# idle ${p}%" >&2
        exit 0
    fi
    if [ $(( $(date +%s) - start )) -ge "$MAX_WAIT" ]; then
        echo "# WARNING: machine still busy (idle ${p}%) after ${MAX_WAIT}s; measuring anyway" >&2
        exit 1
    fi
done
