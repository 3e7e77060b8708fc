#!/usr/bin/env bash
# The example programs when things go wrong: an --out that cannot be made
# is reported before training; a loss that turns NaN mid-epoch stops the
# run with the last good files kept, byte for byte; and SIGKILL at random
# moments of runs that save every epoch, over and over, never leaves a
# last.vae or best.vae that does not load.
# Usage: test_robustness.sh BUILD_DIR PYTHON [KILLS]
set -euo pipefail
build=$1 python=$2 kills=${3:-30}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
# "epoch=E position=P ... params=HASH" of a model file; fails if it does not load
info() {
  LD_PRELOAD=${VAE_ASAN_PRELOAD:-} ASAN_OPTIONS=${VAE_ASAN_PRELOAD:+detect_leaks=0} \
    "$python" "$here/model_info.py" "$build/libvae.so" "$@"
}

mkdir -p "$work/data"
"$python" "$here/make_idx.py" "$work/data" 600 200 --gz > /dev/null
prog=$build/examples/vae-mnist-dense
common=(--data "$work/data" --batch 50 --hidden 64,32 --threads 1 --seed 3)

# --out through a regular file: refused at once, nothing trained.
touch "$work/plain"
if "$prog" "${common[@]}" --epochs 1 --out "$work/plain/sub" > "$work/out.log" 2>&1; then
  fail "--out under a regular file was accepted"
fi
grep -q 'Not a directory' "$work/out.log" || { cat "$work/out.log"; fail "--out: no reason given"; }
! grep -q 'epoch 1/' "$work/out.log" || { cat "$work/out.log"; fail "--out: trained before failing"; }
ok "an --out that cannot be made is reported before training"

# A loss that turns NaN in the middle of epoch 2 (a learning rate of 1e3
# from the resume point): exit 1 naming the files kept, which are the
# files of epoch 1, byte for byte, and still load.
"$prog" "${common[@]}" --epochs 1 --out "$work/nan" > /dev/null 2>&1 || fail "one-epoch run"
cp "$work/nan/last.vae" "$work/last.before"
cp "$work/nan/best.vae" "$work/best.before"
if "$prog" "${common[@]}" --resume "$work/nan/last.vae" --epochs 2 --lr 1e3 --out "$work/nan" \
     > "$work/nan.log" 2>&1; then
  cat "$work/nan.log"; fail "a NaN loss did not stop the run"
fi
grep -q 'not finite' "$work/nan.log" || { cat "$work/nan.log"; fail "NaN: not said"; }
grep -q "nothing saved: .*last.vae keeps epoch 1, best.vae epoch 1" "$work/nan.log" ||
  { cat "$work/nan.log"; fail "NaN: the files kept are not named"; }
cmp -s "$work/nan/last.vae" "$work/last.before" || fail "NaN: last.vae changed"
cmp -s "$work/nan/best.vae" "$work/best.before" || fail "NaN: best.vae changed"
info "$work/nan/last.vae" | grep -q '^epoch=1 position=0 ' || fail "NaN: last.vae is not epoch 1"
ok "a NaN loss mid-epoch keeps the files of the last good epoch and says so"

# SIGKILL at random moments (a fixed sequence) of a run that saves every
# epoch, each run resuming from what the last one left: every last.vae and
# best.vae left behind loads, and the run goes on from it.
RANDOM=7
dir=$work/kill
loaded=0 resumed=0
for ((i = 1; i <= kills; i++)); do
  args=("${common[@]}" --epochs 100000 --out "$dir")
  if [ -e "$dir/last.vae" ]; then
    args+=(--resume "$dir/last.vae")
    resumed=$((resumed + 1))
  fi
  "$prog" "${args[@]}" > "$work/kill.log" 2>&1 &
  pid=$!
  # 0.2 to 1.7 s: setup, training, evaluation, pictures and saves alike
  sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
  sleep "0.$((2 + RANDOM % 7))"
  kill -KILL "$pid" 2> /dev/null || { cat "$work/kill.log"; fail "run $i ended before the kill"; }
  wait "$pid" 2> /dev/null || true
  for f in last.vae best.vae; do
    [ -e "$dir/$f" ] || continue
    info "$dir/$f" > /dev/null || fail "kill $i: $f does not load"
    loaded=$((loaded + 1))
  done
done
epoch=$(info "$dir/last.vae" | sed 's/^epoch=\([0-9]*\) .*/\1/')
[ "$epoch" -ge 2 ] || fail "SIGKILL: training made no progress across $kills runs (epoch $epoch)"
# the temporary files of saves that were killed stay behind (no process is
# left to remove them), each beside its target
temps=$(find "$dir" -name '*.tmp.*' | wc -l)
ok "SIGKILL $kills times: $loaded model files left behind, all load; $resumed resumed runs reached epoch $epoch ($temps temporary files of killed saves)"
echo "$passed passed, 0 failed"
