#!/usr/bin/env bash
# Training across processes under mpirun (Open MPI), on small idx files
# written here: 2 ranks against 1 process (losses, weights), the ranks'
# weights bit for bit, failures on one rank (a NaN, a bad call, a stop, a
# missing data folder, a rank killed) ending every rank with no hang,
# rank 0 alone writing, and resuming on another number of ranks.
# Usage: test_mpi.sh BUILD_DIR PYTHON
# Skipped (exit 77, which ctest reports as skipped), and says so, where
# mpirun or the MPI programs are missing.
set -euo pipefail
build=$1 python=$2
here=$(cd "$(dirname "$0")" && pwd)
host=$build/tests/mpi_host prog=$build/examples/vae-mnist-dense
if ! command -v mpirun > /dev/null || [ ! -x "$host" ]; then
  echo "skipped: MPI tests (mpirun or the MPI adapter is missing: install openmpi-bin and libopenmpi-dev)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }

# Open MPI as root in a container: allowed explicitly; 2 ranks may share
# one core; no single-copy (CMA) transport, which containers forbid
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
# every run is bounded: a hang fails the test instead of stalling CI
mpi() { timeout 120 mpirun --oversubscribe "$@"; }

mkdir -p "$work/data"
"$python" "$here/make_idx.py" "$work/data" 3000 500
images=$work/data/train-images-idx3-ubyte

# ---- a host of the library: weights, failures, stop, a rank killed ----
"$host" weights "$images" "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "1 process"; }
mpi -np 2 "$host" weights "$images" "$work/two" > "$work/two.log" 2>&1 ||
  { cat "$work/two.log"; fail "2 ranks"; }
cmp -s "$work/two.rank0" "$work/two.rank1" || fail "the 2 ranks' weights differ"
ok "2 ranks hold the same weights, bit for bit ($(grep checksum "$work/two.log"))"
"$python" - "$work/one.log" "$work/two.log" "$work/one.rank0" "$work/two.rank0" <<'PY' || fail "2 ranks against 1 process"
import array, re, sys
loss = lambda p: [float(x) for x in re.findall(r"train_nelbo (\S+)", open(p).read())]
a, b = loss(sys.argv[1]), loss(sys.argv[2])
assert len(a) == len(b) == 3, (a, b)
rel = max(abs(x - y) / abs(x) for x, y in zip(a, b))
assert rel < 1e-4, (a, b, rel)
w1, w2 = (array.array("f", open(p, "rb").read()) for p in sys.argv[3:5])
dw = max(abs(x - y) for x, y in zip(w1, w2))
print("losses %s vs %s: max relative difference %.2e; weights max abs difference %.2e" % (a, b, rel, dw))
assert dw < 1e-3, dw
PY
ok "2 ranks train as 1 process: 3 epochs' losses within 1e-4"
mpi -np 2 "$host" sharded "$images" "$work/shard" > "$work/shard.log" 2>&1 ||
  { cat "$work/shard.log"; fail "2 ranks, sharded update"; }
cmp -s "$work/shard.rank0" "$work/shard.rank1" || fail "the sharded ranks' weights differ"
"$python" - "$work/two.log" "$work/shard.log" "$work/two.rank0" "$work/shard.rank0" <<'PY' || fail "sharded against summed"
import array, re, sys
loss = lambda p: [float(x) for x in re.findall(r"train_nelbo (\S+)", open(p).read())]
a, b = loss(sys.argv[1]), loss(sys.argv[2])
rel = max(abs(x - y) / abs(x) for x, y in zip(a, b))
w1, w2 = (array.array("f", open(p, "rb").read()) for p in sys.argv[3:5])
dw = max(abs(x - y) for x, y in zip(w1, w2))
print("sharded update: losses within %.2e relative, weights within %.2e of the summed update" % (rel, dw))
assert len(a) == len(b) == 3 and rel < 1e-4 and dw < 1e-3
PY
ok "2 ranks with the sharded update (MPI_Reduce_scatter + MPI_Allgatherv): same weights on both, as the summed update"

mpi -np 2 "$host" nan "$images" "$work/x" > "$work/nan.log" 2>&1 || { cat "$work/nan.log"; fail "nan"; }
[ "$(grep -c 'stopped at step 3: loss is not finite' "$work/nan.log")" = 2 ] || { cat "$work/nan.log"; fail "nan on rank 1"; }
ok "a NaN on rank 1 stops both ranks at the same step with VAE_ERR_NOT_FINITE"
mpi -np 2 "$host" check "$images" "$work/x" > "$work/check.log" 2>&1 || { cat "$work/check.log"; fail "check"; }
grep -q 'rank 1: stopped at step 3: shapes do not fit' "$work/check.log" &&
  grep -q 'rank 0: stopped at step 3: a collective operation failed.*rank 1 of 2 failed' "$work/check.log" ||
  { cat "$work/check.log"; fail "a bad call on rank 1"; }
ok "a bad call on rank 1: VAE_ERR_SHAPE there, VAE_ERR_COMM naming rank 1 on rank 0"
mpi -np 2 "$host" stop "$images" "$work/x" > "$work/stop.log" 2>&1 || { cat "$work/stop.log"; fail "stop"; }
ok "rank 1's callback stops both ranks after batch 2; finishing = never stopped"
start=$(date +%s)
if mpi -np 2 "$host" die "$images" "$work/x" > "$work/die.log" 2>&1; then fail "a killed rank: the job succeeded"; fi
took=$(( $(date +%s) - start ))
[ "$took" -lt 100 ] || { cat "$work/die.log"; fail "a killed rank: the others waited until the timeout"; }
ok "rank 1 killed (SIGKILL) mid-epoch: mpirun ended the job in ${took} s"

# ---- the example programs ----
common=(--data "$work/data" --batch 100 --hidden 128 --seed 3 --quiet)
"$prog" "${common[@]}" --epochs 3 --threads 1 --out "$work/p1" > "$work/p1.log" 2>&1 ||
  { cat "$work/p1.log"; fail "vae-mnist-dense"; }
mkdir "$work/r0" "$work/r1"
# one rank per folder: only rank 0's may get --out
mpi -np 1 -wdir "$work/r0" "$prog" "${common[@]}" --epochs 3 --out out : \
    -np 1 -wdir "$work/r1" "$prog" "${common[@]}" --epochs 3 --out out > "$work/p2.log" 2>&1 ||
  { cat "$work/p2.log"; fail "vae-mnist-dense on 2 ranks"; }
head -1 "$work/p2.log" | grep -q "2 ranks x 1 thread" || { head -3 "$work/p2.log"; fail "first line"; }
[ "$(grep -c '^epoch 3/3 .* images/s  train' "$work/p2.log")" = 1 ] || fail "rank 0 alone prints"
[ -s "$work/r0/out/last.vae" ] && [ -s "$work/r0/out/metrics.csv" ] && [ -s "$work/r0/out/samples.png" ] ||
  fail "rank 0's outputs"
[ ! -e "$work/r1/out" ] || fail "rank 1 wrote $(ls "$work/r1/out")"
ok "vae-mnist-dense -np 2: rank 0 alone writes and prints; first line: $(head -1 "$work/p2.log" | grep -o '[0-9]* ranks x [0-9]* thread[s]*')"
close_metrics() {
  "$python" - "$1" "$2" <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(a) == len(b) == 3, (len(a), len(b))
rel = max(abs(float(x[k]) - float(y[k])) / abs(float(x[k]))
          for x, y in zip(a, b) for k in ("train_loss", "test_loss", "train_kl"))
print("metrics.csv: max relative difference %.2e" % rel)
assert rel < 1e-4, rel
PY
}
close_metrics "$work/p1/metrics.csv" "$work/r0/out/metrics.csv" || fail "2 ranks against 1 process (metrics.csv)"
ok "vae-mnist-dense: 2 ranks against 1 process within 1e-4"

# resume on another number of ranks: 1 epoch on 2, 2 more on 1; and the reverse
mpi -np 2 "$prog" "${common[@]}" --epochs 1 --out "$work/a" > "$work/a.log" 2>&1 || { cat "$work/a.log"; fail "epoch 1 on 2 ranks"; }
"$prog" --resume "$work/a/last.vae" --data "$work/data" --epochs 3 --threads 1 --quiet --out "$work/a" > "$work/a2.log" 2>&1 ||
  { cat "$work/a2.log"; fail "resumed on 1"; }
close_metrics "$work/p1/metrics.csv" "$work/a/metrics.csv" || fail "2 ranks then 1"
"$prog" "${common[@]}" --epochs 1 --threads 1 --out "$work/b" > "$work/b.log" 2>&1 || fail "epoch 1 on 1"
mpi -np 2 "$prog" --resume "$work/b/last.vae" --data "$work/data" --epochs 3 --quiet --out "$work/b" > "$work/b2.log" 2>&1 ||
  { cat "$work/b2.log"; fail "resumed on 2"; }
close_metrics "$work/p1/metrics.csv" "$work/b/metrics.csv" || fail "1 rank then 2"
ok "stopped after epoch 1 and resumed on another number of ranks (2 -> 1, 1 -> 2): within 1e-4"

# a rank that cannot read its data stops every rank before training
if mpi -np 1 "$prog" "${common[@]}" --epochs 1 --out "$work/c" : \
       -np 1 "$prog" --data "$work/nothing" --batch 100 --hidden 128 --seed 3 --quiet --epochs 1 --out "$work/c" \
       > "$work/c.log" 2>&1; then fail "missing data on rank 1: the job succeeded"; fi
grep -q "rank 1 of 2 failed" "$work/c.log" || { cat "$work/c.log"; fail "missing data on rank 1: the message"; }
ok "missing data on rank 1: every rank stops (rank 0: \"$(grep -o 'rank 1 of 2 failed[^;]*' "$work/c.log" | head -1)\")"

# SIGTERM to rank 1 alone: both stop at the same batch, rank 0 saves
mpi -np 2 "$prog" "${common[@]}" --epochs 50 --out "$work/d" > "$work/d.log" 2>&1 &
job=$!
rank1=""
for _ in $(seq 100); do
  for p in $(pgrep -f "vae-mnist-dense.*$work/d" || true); do
    grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$p/environ" 2>/dev/null && rank1=$p
  done
  [ -n "$rank1" ] && grep -q '^epoch 1/50' "$work/d.log" && break
  sleep 0.2
done
[ -n "$rank1" ] || fail "rank 1's process not found"
kill -TERM "$rank1"
rc=0; wait "$job" || rc=$?
[ "$rc" != 0 ] || fail "SIGTERM on rank 1: the job went on"
grep -q "stopped .* and saved .*last.vae" "$work/d.log" || { cat "$work/d.log"; fail "SIGTERM on rank 1: rank 0 did not save"; }
"$prog" --resume "$work/d/last.vae" --data "$work/data" --epochs 50 --threads 2 --quiet --out "$work/d" > "$work/d2.log" 2>&1 ||
  { cat "$work/d2.log"; fail "resuming after SIGTERM"; }
ok "SIGTERM to rank 1 alone: both ranks stop, rank 0 saves last.vae ($(grep -o 'stopped [^;]*' "$work/d.log" | head -1)); it resumes"

echo "$passed passed, 0 failed"
