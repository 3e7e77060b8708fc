#!/usr/bin/env bash
# The example programs end to end on small idx files written here: outputs,
# exact resume, --load/--decode, and errors for bad flags or missing data.
# Usage: test_examples.sh BUILD_DIR PYTHON
set -euo pipefail
build=$1 python=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }

mkdir -p "$work/data"
"$python" "$here/make_idx.py" "$work/data" 600 200 --gz
prog=$build/examples/vae-mnist-dense
common=(--data "$work/data" --epochs 2 --batch 50 --hidden 64,32 --threads 2 --seed 5)

"$prog" "${common[@]}" --out "$work/a" > "$work/a.log" 2>&1 || { cat "$work/a.log"; fail "training run"; }
for f in metrics.csv loss.png reconstructions.png samples.png latent.csv latent_scatter.png \
         decoded_0_2.5.png latent_grid.png last.vae best.vae; do
  [ -s "$work/a/$f" ] || fail "missing output $f"
done
ok "all outputs written"
head -1 "$work/a/metrics.csv" | grep -qx 'epoch,seconds,images_per_sec,train_loss,test_loss,test_bits_per_dim' ||
  fail "metrics header"
[ "$(wc -l < "$work/a/metrics.csv")" = 3 ] || fail "metrics rows"
[ "$(wc -l < "$work/a/latent.csv")" = 201 ] || fail "latent.csv rows"
ok "metrics.csv and latent.csv shapes"
grep -q 'kernels\|BLIS' "$work/a.log" || fail "BLAS kernels not reported at start"
ok "kernels reported"

# One epoch, then resume to two: the same weights, bit for bit.
"$prog" "${common[@]}" --epochs 1 --out "$work/b" > /dev/null 2>&1 || fail "one-epoch run"
"$prog" "${common[@]}" --resume "$work/b/last.vae" --out "$work/b" > "$work/b.log" 2>&1 ||
  { cat "$work/b.log"; fail "resumed run"; }
cmp -s "$work/a/last.vae" "$work/b/last.vae" || fail "resumed run differs from the uninterrupted one"
[ "$(wc -l < "$work/b/metrics.csv")" = 3 ] || fail "resumed metrics rows"
ok "resume is exact"

"$prog" --load "$work/a/best.vae" --decode 0,2.5 --out "$work/c" > /dev/null 2>&1 || fail "--decode"
[ -s "$work/c/decoded.png" ] || fail "decoded.png missing"
ok "--load --decode"

# With a flow: trains, resumes exactly, and --eval-iw writes eval.csv.
flow=(--flow-steps 2 --iaf-hidden 40 --eval-iw 30 --eval-limit 50)
"$prog" "${common[@]}" "${flow[@]}" --out "$work/fl" > "$work/fl.log" 2>&1 ||
  { cat "$work/fl.log"; fail "--flow-steps run"; }
head -1 "$work/fl/eval.csv" | grep -qx 'k,log_px_nats,bits_per_dim' || fail "eval.csv header"
"$python" - "$work/fl/eval.csv" "$work/fl/metrics.csv" <<'PY' || fail "eval.csv values"
import csv, math, sys
row = list(csv.DictReader(open(sys.argv[1])))[0]
last = list(csv.DictReader(open(sys.argv[2])))[-1]
lp, bpd = float(row["log_px_nats"]), float(row["bits_per_dim"])
assert int(row["k"]) == 30 and math.isfinite(lp) and lp < 0, row
assert abs(bpd - (-lp) / (784 * math.log(2))) < 1e-4, row
# the IWAE bound is at least the ELBO (up to the noise of 50 images)
assert -lp < float(last["test_loss"]) + 1.0, (row, last)
assert abs(float(last["test_bits_per_dim"]) - float(last["test_loss"]) / (784 * math.log(2))) < 1e-4
PY
"$prog" "${common[@]}" "${flow[@]}" --epochs 1 --eval-iw 0 --out "$work/fm" > /dev/null 2>&1 ||
  fail "one-epoch flow run"
"$prog" "${common[@]}" "${flow[@]}" --eval-iw 0 --resume "$work/fm/last.vae" --out "$work/fm" \
  > /dev/null 2>&1 || fail "resumed flow run"
cmp -s "$work/fl/last.vae" "$work/fm/last.vae" || fail "resumed flow run differs"
ok "--flow-steps: eval.csv, bits per dimension, exact resume"

# R3 on a CIFAR-10 stand-in in the official format, written from the idx files.
"$python" "$here/../scripts/make_cifar_demo.py" "$work/cifar" --source "$work/data" --kind mnist \
  --train 100 --test 40 > /dev/null || fail "writing the CIFAR-10 stand-in"
cifar=$build/examples/vae-cifar10-iaf
"$cifar" --data "$work/cifar" --epochs 1 --hidden 50 --latent 8 --iaf-hidden 30 --eval-iw 10 \
  --out "$work/r3" > "$work/r3.log" 2>&1 || { cat "$work/r3.log"; fail "vae-cifar10-iaf"; }
for f in metrics.csv reconstructions.png samples.png eval.csv best.vae last.vae; do
  [ -s "$work/r3/$f" ] || fail "vae-cifar10-iaf: missing $f"
done
grep -q "100 training images of 3x32x32" "$work/r3.log" || fail "vae-cifar10-iaf: data shape"
set +e
"$cifar" --data "$work/nowhere" --out "$work/r3b" > /dev/null 2> "$work/r3b.err"; [ $? = 1 ] ||
  fail "missing CIFAR-10 must exit 1"
set -e
grep -q "data_batch_1.bin" "$work/r3b.err" && grep -q "make-cifar-demo.sh" "$work/r3b.err" ||
  fail "missing CIFAR-10: the message names the file and the stand-in script"
ok "vae-cifar10-iaf: outputs, eval.csv, missing-data message"

# The convolutional programs: R2 on the idx files, and on a folder of
# colour PNGs written here (with two broken files to skip).
conv=$build/examples/vae-mnist-conv
"$conv" --data "$work/data" --epochs 1 --batch 50 --out "$work/conv" > "$work/conv.log" 2>&1 ||
  { cat "$work/conv.log"; fail "vae-mnist-conv"; }
for f in latent_grid_quantiles.png latent_grid.png reconstructions.png best.vae; do
  [ -s "$work/conv/$f" ] || fail "vae-mnist-conv: missing $f"
done
ok "vae-mnist-conv outputs"
"$python" "$here/../scripts/make_faces_demo.py" "$work/faces" 60 --with-broken \
  --images "$work/data/train-images-idx3-ubyte.gz" > /dev/null || fail "writing the face folder"
faces=$build/examples/vae-faces-conv
"$faces" --data "$work/faces" --size 32 --epochs 2 --batch 20 --latent 4 --out "$work/f" \
  > "$work/f.log" 2> "$work/f.err" || { cat "$work/f.log" "$work/f.err"; fail "vae-faces-conv"; }
grep -q "broken_text.jpg" "$work/f.err" && grep -q "broken_truncated.png" "$work/f.err" ||
  fail "broken files were not reported by name"
for f in reconstructions_epoch001.png reconstructions_epoch002.png best.vae last.vae samples.png; do
  [ -s "$work/f/$f" ] || fail "vae-faces-conv: missing $f"
done
ok "vae-faces-conv: skips broken files, writes per-epoch reconstructions and best/last models"
mkdir -p "$work/empty"
set +e
"$faces" --data "$work/empty" --out "$work/g" > /dev/null 2> "$work/g.err"; [ $? = 1 ] || fail "empty folder must exit 1"
grep -q "$work/empty" "$work/g.err" || fail "empty-folder message names the folder"
set -e
ok "empty face folder is a clear error"

set +e
"$prog" --epochs x > /dev/null 2>&1; [ $? = 2 ] || fail "bad flag must exit 2"
"$prog" --data "$work/nowhere" --out "$work/d" > /dev/null 2> "$work/d.err"; [ $? = 1 ] || fail "missing data must exit 1"
grep -q nowhere "$work/d.err" || fail "missing data message names the path"
"$prog" --help > "$work/help" 2>&1; [ $? = 0 ] || fail "--help"
set -e
ok "errors and --help"
echo "$passed passed, 0 failed"
