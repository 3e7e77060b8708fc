#!/bin/sh
# Run a command and afterwards print, on its stdout, how much CPU *other*
# processes used meanwhile:  "foreign_cpu_pct N"  (percent of one CPU, averaged
# over the run; ~0 on a quiet machine, ~100 if another job kept a core busy).
# Used by the bench runners to spot disturbed measurements on a shared machine.
# Usage: bench/run_watched.sh COMMAND [ARGS...]
busy() { # prints busy jiffies summed over all CPUs
    set -- $(head -1 /proc/stat)
    echo $(($2 + $3 + $4 + $7 + $8 + $9))
}
tf=$(mktemp)
b1=$(busy)
/usr/bin/time -f "%e %U %S" -o "$tf" "$@"
rc=$?
b2=$(busy)
hz=$(getconf CLK_TCK)
awk -v b="$((b2 - b1))" -v hz="$hz" '{wall = $1; own = $2 + $3;
    f = (b / hz - own) / (wall > 0 ? wall : 1) * 100; if (f < 0) f = 0;
    printf "foreign_cpu_pct %.0f\n", f}' "$tf"
rm -f "$tf"
exit $rc
