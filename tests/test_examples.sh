#!/usr/bin/env bash
# The example programs end to end on small idx files written here: outputs,
# exact resume (after SIGINT and SIGTERM too), the history in metrics.csv,
# --resume and --load against the file's settings, --load/--decode, and
# errors for bad flags or missing data.
# Usage: test_examples.sh BUILD_DIR PYTHON
set -euo pipefail
build=$1 python=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 skipped=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
# a check that cannot run here (a tool missing): said, counted, not passed
skip() { skipped=$((skipped + 1)); echo "skipped: $*"; }
tally() {
  local s=""; [ "$skipped" = 0 ] || s=", $skipped skipped"
  echo "$passed passed, $1 failed$s"
}
fail() { echo "FAIL: $*"; tally 1; exit 1; }
# "epoch=E position=P batch=B lr=X rate=R steps=S count=N params=HASH" of
# model files (and with --history COLUMN / --param NAME before the files,
# " history:COLUMN=V1,V2,..." / " param:NAME=HASH")
# Under the sanitizers the library needs the ASan runtime loaded first.
info() {
  LD_PRELOAD=${VAE_ASAN_PRELOAD:-} ASAN_OPTIONS=${VAE_ASAN_PRELOAD:+detect_leaks=0} \
    "$python" "$here/model_info.py" "$build/libvae.so" "$@"
}
# The weights of two model files are the same, bit for bit (the files
# themselves differ in the seconds of their history).
same_params() { [ "$(info "$1" | sed 's/.*params=//')" = "$(info "$2" | sed 's/.*params=//')" ]; }
# Two metrics.csv files have the same rows but for the timings.
same_metrics() {
  "$python" - "$1" "$2" <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
keys = ("epoch", "train_loss", "test_loss", "test_bits_per_dim")
assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b], (a, b)
assert all(r["seconds"] and r["images_per_sec"] for r in b), b
PY
}

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
head -1 "$work/a/metrics.csv" |
  grep -qx 'epoch,seconds,images_per_sec,train_loss,test_loss,test_bits_per_dim,train_recon,train_kl,test_recon,test_kl' ||
  fail "metrics header"
[ "$(wc -l < "$work/a/metrics.csv")" = 3 ] || fail "metrics rows"
# the terms add up to the losses (to the 4 decimals written)
"$python" - "$work/a/metrics.csv" <<'PY' || fail "metrics.csv: recon + KL is not the loss"
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    for split in ("train", "test"):
        recon, kl, loss = (float(r[split + k]) for k in ("_recon", "_kl", "_loss"))
        assert kl >= 0 and abs(recon + kl - loss) < 1e-3, (split, r)
PY
[ "$(wc -l < "$work/a/latent.csv")" = 201 ] || fail "latent.csv rows"
ok "metrics.csv and latent.csv shapes"
grep -q 'kernels\|BLIS' "$work/a.log" || fail "BLAS kernels not reported at start"
ok "kernels reported"
# The model summary follows the header line: its total is the header's count.
header_count=$(sed -n 's/.*, \([0-9]*\) parameters, .*/\1/p' "$work/a.log")
[ -n "$header_count" ] || { cat "$work/a.log"; fail "no parameter count in the header line"; }
[ "$(sed -n 's/^Total parameters: //p' "$work/a.log" | tr -d ,)" = "$header_count" ] ||
  { cat "$work/a.log"; fail "the summary at start: its total is not the header's $header_count parameters"; }
ok "model summary at start"

# One epoch, then resume to two in the same --out with the same flags, and
# into another --out with none but --epochs (the rest comes from the file):
# the same weights, bit for bit, and the whole metrics.csv in both.
"$prog" "${common[@]}" --epochs 1 --out "$work/b" > /dev/null 2>&1 || fail "one-epoch run"
cp -r "$work/b" "$work/b1"
"$prog" "${common[@]}" --resume "$work/b/last.vae" --out "$work/b" > "$work/b.log" 2>&1 ||
  { cat "$work/b.log"; fail "resumed run"; }
same_params "$work/a/last.vae" "$work/b/last.vae" || fail "resumed run differs from the uninterrupted one"
same_metrics "$work/a/metrics.csv" "$work/b/metrics.csv" || fail "resumed metrics.csv"
ok "resume is exact"
"$prog" --data "$work/data" --threads 2 --epochs 2 --resume "$work/b1/last.vae" --out "$work/b2" \
  > "$work/b2.log" 2>&1 || { cat "$work/b2.log"; fail "run resumed into another --out"; }
same_params "$work/a/last.vae" "$work/b2/last.vae" || fail "resumed into another --out: weights differ"
same_metrics "$work/a/metrics.csv" "$work/b2/metrics.csv" ||
  fail "resumed into another --out: metrics.csv is not the whole history"
[ -s "$work/b2/loss.png" ] && [ -s "$work/b2/best.vae" ] || fail "resumed into another --out: loss.png, best.vae"
ok "resume into another --out: the whole history in metrics.csv, settings from the file"

# SIGINT and SIGTERM once training has reported a finished batch (the
# programs print a progress line after the first batch of each epoch when
# stderr is not a terminal): exit 130 or 143 with last.vae saved inside the
# epoch, and --resume ends with the same weights as a run never stopped.
# Batches of 1 make epochs long next to the evaluation between them.
sig=(--data "$work/data" --batch 1 --hidden 64,32 --threads 1 --seed 5)
extra=() # more flags for the interrupted run and its reference
# interrupt SIGNAL STATUS DIR
interrupt() {
  local name=$1 status=$2 dir=$3 pid rc attempt
  for attempt in 1 2 3; do
    rm -rf "$dir"
    "$prog" "${sig[@]}" ${extra[@]+"${extra[@]}"} --epochs 100 --out "$dir" > "$dir.log" 2> "$dir.err" & pid=$!
    until grep -qs '^epoch 1/100  batch [0-9]*/600' "$dir.err"; do
      kill -0 $pid 2> /dev/null || { cat "$dir.log" "$dir.err"; fail "$name: no batch reported"; }
      sleep 0.02
    done
    kill -s "$name" $pid
    set +e; wait $pid; rc=$?; set -e
    [ $rc = "$status" ] || { cat "$dir.log" "$dir.err"; fail "$name: exit status $rc, not $status"; }
    grep -q "$name: stopped .* saved $dir/last.vae" "$dir.err" || { cat "$dir.err"; fail "$name: no word of last.vae"; }
    # a signal during the evaluation between epochs stops there: try again
    info "$dir/last.vae" | grep -q 'position=0 ' || return 0
  done
  fail "$name: three runs stopped between epochs, none inside one"
}
# resumed DIR: --resume DIR/last.vae into DIR-r matches a run never stopped
resumed() {
  local dir=$1 done epochs
  done=$(info "$dir/last.vae" | sed 's/^epoch=\([0-9]*\) .*/\1/')
  epochs=$((done + 1 > 2 ? done + 1 : 2))
  "$prog" --data "$work/data" --threads 1 --epochs $epochs --resume "$dir/last.vae" --out "$dir-r" \
    > "$dir-r.log" 2>&1 || { cat "$dir-r.log"; fail "$dir: resumed run"; }
  "$prog" "${sig[@]}" ${extra[@]+"${extra[@]}"} --epochs $epochs --out "$dir-ref" > /dev/null 2>&1 ||
    fail "$dir: reference run"
  same_params "$dir-ref/last.vae" "$dir-r/last.vae" || fail "$dir: resumed run differs from the one never stopped"
  same_metrics "$dir-ref/metrics.csv" "$dir-r/metrics.csv" || fail "$dir: resumed metrics.csv"
}
interrupt INT 130 "$work/int"
set +e
"$prog" --data "$work/data" --resume "$work/int/last.vae" --batch 7 --out "$work/x" > /dev/null 2> "$work/x.err"
[ $? = 2 ] || fail "--batch 7 inside an epoch of batches of 1 must exit 2"
set -e
grep -q -- "--batch 7, but .* batches of 1" "$work/x.err" || { cat "$work/x.err"; fail "--batch message"; }
resumed "$work/int"
ok "SIGINT: exit 130, last.vae inside the epoch, exact resume; another --batch there is an error"
interrupt TERM 143 "$work/term"
resumed "$work/term"
ok "SIGTERM: exit 143, last.vae inside the epoch, exact resume"
# Every schedule continues from the file: KL warm-up (by epoch number), a
# cosine learning rate with warm-up (by optimizer step), weight decay.
extra=(--kl-warmup 2 --beta 0.5 --lr-schedule cosine --lr-steps 1000 --lr-min 1e-4 --lr-warmup 5
       --weight-decay 0.01)
interrupt INT 130 "$work/wint"
resumed "$work/wint"
info --history beta "$work/wint-r/last.vae" | grep -q " history:beta=0.0,0.25$" ||
  { info --history beta "$work/wint-r/last.vae"; fail "warm-up resumed: beta per epoch"; }
extra=()
ok "SIGINT in a KL warm-up with a cosine schedule: exact resume, the flags from the file"

# --beta and --kl-warmup: beta per epoch is --beta * min(1, (e - 1) / N),
# and each epoch trained with it: its objective is recon + beta * KL (so
# epoch 1 trained on the reconstruction alone).
"$prog" "${common[@]}" --epochs 3 --beta 0.5 --kl-warmup 2 --quiet --out "$work/kw" > "$work/kw.log" 2>&1 ||
  { cat "$work/kw.log"; fail "--kl-warmup run"; }
info --history beta --history train_objective --history train_recon --history train_kl \
  "$work/kw/last.vae" | "$python" -c '
import sys
line = sys.stdin.read().split()
h = {k.split("=")[0][8:]: [float(v) for v in k.split("=")[1].split(",")]
     for k in line if k.startswith("history:")}
assert h["beta"] == [0.0, 0.25, 0.5], h
for b, obj, rec, kl in zip(h["beta"], h["train_objective"], h["train_recon"], h["train_kl"]):
    assert abs(obj - (rec + b * kl)) < 1e-5 * obj, (b, obj, rec, kl)
assert h["train_kl"][0] < h["train_kl"][-1], h  # the KL term rises from near 0
' || fail "--kl-warmup: beta per epoch and the objectives"
ok "--beta and --kl-warmup: beta per epoch in the history, the objectives trained"

# Learning-rate schedules: the saved optimizer's rate after 2 epochs of 12
# batches is the formula's (cosine over the run's steps by default).
# sched NAME EXPECTED FLAGS...
sched() {
  local name=$1 expected=$2; shift 2
  "$prog" "${common[@]}" --quiet "$@" --out "$work/$name" > "$work/$name.log" 2>&1 ||
    { cat "$work/$name.log"; fail "$name run"; }
  info "$work/$name/last.vae" | "$python" -c '
import math, sys
line = dict(kv.split("=", 1) for kv in sys.stdin.read().split())
assert line["steps"] == "24", line
assert abs(float(line["rate"]) - float(sys.argv[1])) <= 1e-12, (line["rate"], sys.argv[1])
' "$expected" || fail "$name: the rate after the run is not $expected"
}
sched cos0 1e-4 --lr-schedule cosine --lr-min 1e-4 --lr-warmup 3
sched cos30 "$("$python" -c 'import math; print(repr(1e-4 + (1e-3 - 1e-4) * (1 + math.cos(math.pi * 24 / 30)) / 2))')" \
  --lr-schedule cosine --lr-steps 30 --lr-min 1e-4
sched step10 2.5e-4 --lr-schedule step --lr-steps 10 --lr-gamma 0.5 --weight-decay 0.01
sched exp "$("$python" -c 'print(repr(1e-3 * 0.9 ** 24))')" --lr-schedule exp --lr-gamma 0.9
info "$work/cos0/last.vae" | grep -q "lr=0.001 " || fail "cosine: the base rate is kept"
! same_params "$work/a/last.vae" "$work/step10/last.vae" || fail "--lr-schedule/--weight-decay changed nothing"
set +e
"$prog" "${common[@]}" --lr-gamma 0.5 --out "$work/x" > /dev/null 2> "$work/x.err"
[ $? = 2 ] && grep -q -- "--lr-gamma needs --lr-schedule step or exp" "$work/x.err" ||
  { cat "$work/x.err"; fail "--lr-gamma without a schedule that reads it"; }
set -e
ok "--lr-schedule step, exp, cosine, --lr-warmup, --weight-decay: the rate is the formula's"

# --freeze with --resume fine-tunes the rest: the frozen parameters keep
# their bytes, the others change.
"$prog" --data "$work/data" --threads 2 --epochs 3 --resume "$work/a/last.vae" --freeze encoder \
  --freeze latent --quiet --out "$work/fz" > "$work/fz.log" 2>&1 || { cat "$work/fz.log"; fail "--freeze run"; }
grep -q -- "--freeze encoder: 4 parameters frozen" "$work/fz.log" || { cat "$work/fz.log"; fail "--freeze: no count"; }
# BEFORE AFTER WHAT: the encoder's parameters kept their bytes, the decoder's changed
expect_encoder_frozen() {
  local p=(--param encoder.0.w --param encoder.1.b --param decoder.0.w) before after name
  before=$(info "${p[@]}" "$1") after=$(info "${p[@]}" "$2")
  for name in encoder.0.w encoder.1.b; do
    [ "$(echo "$before" | grep -o "param:$name=[0-9a-f]*")" = "$(echo "$after" | grep -o "param:$name=[0-9a-f]*")" ] ||
      fail "$3: $name changed"
  done
  [ "$(echo "$before" | grep -o "param:decoder.0.w=[0-9a-f]*")" != "$(echo "$after" | grep -o "param:decoder.0.w=[0-9a-f]*")" ] ||
    fail "$3: the decoder did not train"
}
expect_encoder_frozen "$work/a/last.vae" "$work/fz/last.vae" "--freeze"
set +e
"$prog" --data "$work/data" --epochs 3 --resume "$work/a/last.vae" --freeze nothing --out "$work/x" \
  > /dev/null 2> "$work/x.err"
[ $? = 2 ] && grep -q -- "--freeze nothing: no parameter" "$work/x.err" || { cat "$work/x.err"; fail "--freeze nothing"; }
"$prog" --load "$work/a/last.vae" --data "$work/data" --freeze encoder --out "$work/x" > /dev/null 2> "$work/x.err"
[ $? = 2 ] && grep -q -- "fine-tunes: give --epochs N" "$work/x.err" || { cat "$work/x.err"; fail "--load --freeze without --epochs"; }
set -e
# --load FILE --freeze PREFIX --epochs N fine-tunes a trained model: a run
# of its own from best.vae's weights, the frozen part as it was
"$prog" --data "$work/data" --threads 2 --load "$work/a/best.vae" --freeze encoder --epochs 2 \
  --batch 40 --lr 0.002 --quiet --out "$work/ft" > "$work/ft.log" 2>&1 || { cat "$work/ft.log"; fail "fine-tuning run"; }
expect_encoder_frozen "$work/a/best.vae" "$work/ft/last.vae" "fine-tuning"
[ "$(wc -l < "$work/ft/metrics.csv")" = 3 ] || { cat "$work/ft/metrics.csv"; fail "fine-tuning: its own 2 epochs"; }
ok "--freeze with --resume and with --load --epochs (fine-tuning): frozen parameters unchanged, the rest trained; errors"

# --early-stop N: stops N epochs after the best, says so, draws best.vae.
"$prog" --data "$work/data" --hidden 64,32 --threads 2 --seed 5 --quiet --limit 50 --batch 50 --lr 0.01 \
  --epochs 400 --early-stop 3 --out "$work/es" > "$work/es.log" 2>&1 || { cat "$work/es.log"; fail "--early-stop run"; }
stop=$(sed -n 's/^early stop after epoch \([0-9]*\) of 400: no better test loss in 3 epochs; best epoch \([0-9]*\) .*/\1 \2/p' "$work/es.log")
[ -n "$stop" ] || { tail "$work/es.log"; fail "--early-stop: no word of stopping"; }
grep -q "^drawing best.vae (epoch ${stop#* })" "$work/es.log" || fail "--early-stop: best.vae not drawn"
"$python" - "$work/es/metrics.csv" $stop <<'PY' || fail "--early-stop: metrics.csv"
import csv, sys
rows, stop, best = list(csv.DictReader(open(sys.argv[1]))), int(sys.argv[2]), int(sys.argv[3])
assert len(rows) == stop and stop - best == 3, (len(rows), stop, best)
losses = [float(r["test_loss"]) for r in rows]
assert losses.index(min(losses)) + 1 == best, (losses, best)
PY
[ -s "$work/es/samples.png" ] || fail "--early-stop: no pictures"
ok "--early-stop: stops 3 epochs after the best ($stop), says so"

# --resume holds the network's flags against the file's: another value is
# an error naming both, the same value is accepted, --lr applies.
set +e
for pair in "--hidden 128|64,32" "--latent 3|2" "--loss mse|bce" "--seed 6|5" "--optimizer sgd|adam" \
  "--beta 0.5|1" "--kl-warmup 3|0" "--lr-schedule cosine|constant" "--weight-decay 0.1|0" "--lr-warmup 9|0"; do
  flag=${pair%% *} given=${pair#* }; given=${given%|*} saved=${pair#*|}
  "$prog" --data "$work/data" --resume "$work/b1/last.vae" --epochs 2 --out "$work/x" $flag $given \
    > /dev/null 2> "$work/x.err"
  [ $? = 2 ] || fail "--resume with $flag $given must exit 2"
  grep -qF -- "$flag $given, but $work/b1/last.vae was made with $flag $saved" "$work/x.err" ||
    { cat "$work/x.err"; fail "--resume with $flag $given: the message names both values"; }
done
"$prog" --load "$work/a/best.vae" --data "$work/data" --epochs 1 --out "$work/x" > /dev/null 2> "$work/x.err"
[ $? = 2 ] && grep -q -- "--epochs" "$work/x.err" || fail "--load with --epochs must be an error"
"$prog" --load "$work/a/best.vae" --data "$work/data" --hidden 8 --out "$work/x" > /dev/null 2>&1
[ $? = 2 ] || fail "--load with another --hidden must be an error"
set -e
"$prog" --data "$work/data" --resume "$work/b1/last.vae" --epochs 2 --hidden 64,32 --latent 2 --loss bce \
  --seed 5 --optimizer adam --batch 50 --threads 2 --lr 5e-4 --out "$work/lr" > "$work/lr.log" 2>&1 ||
  { cat "$work/lr.log"; fail "--resume with the file's own values"; }
grep -q "learning rate 0.0005 from here on (it was 0.001)" "$work/lr.log" || fail "--lr not reported"
info "$work/lr/last.vae" | grep -q "lr=0.0005 " || fail "--lr did not apply"
! same_params "$work/a/last.vae" "$work/lr/last.vae" || fail "--lr changed nothing"
ok "--resume and --load: other settings are errors naming both values, the same accepted, --lr applies"

# A batch larger than the training set is the whole set, and says so.
"$prog" --data "$work/data" --limit 100 --batch 100000 --hidden 8 --epochs 1 --out "$work/cl" \
  --quiet > "$work/cl.log" 2>&1 || { cat "$work/cl.log"; fail "--batch 100000 --limit 100"; }
grep -q "batch size 100000 is more than the 100 training images: batches of 100" "$work/cl.log" ||
  fail "no word of the clamped batch"
ok "batch clamped to the training set"
grep -q " parameters, " "$work/cl.log" && ! grep -q "Total parameters\|Output shape" "$work/cl.log" ||
  { cat "$work/cl.log"; fail "--quiet: the header line without the summary"; }
ok "--quiet leaves out the summary"

"$prog" --load "$work/a/best.vae" --decode 0,2.5 --out "$work/c" > /dev/null 2>&1 || fail "--decode"
[ -s "$work/c/decoded.png" ] || fail "decoded.png missing"
ok "--load --decode"

# With a flow: trains, resumes exactly, and --eval-iw writes eval.csv.
flow=(--flow-steps 2 --iaf-hidden 40)
"$prog" "${common[@]}" "${flow[@]}" --eval-iw 30 --eval-limit 50 --out "$work/fl" > "$work/fl.log" 2>&1 ||
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
"$prog" "${common[@]}" "${flow[@]}" --epochs 1 --out "$work/fm" > /dev/null 2>&1 ||
  fail "one-epoch flow run"
"$prog" "${common[@]}" "${flow[@]}" --resume "$work/fm/last.vae" --out "$work/fm" \
  > /dev/null 2>&1 || fail "resumed flow run"
same_params "$work/fl/last.vae" "$work/fm/last.vae" || fail "resumed flow run differs"
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

# vae-inspect on every model file written above: its total is the model's
# parameter count; then the details of one file of each network.
inspect=$build/examples/vae-inspect
version=$(sed -n 's/^Version: //p' "$build/vae.pc")
files=$(find "$work" -name '*.vae' | sort)
[ "$(echo "$files" | wc -l)" -ge 20 ] || fail "too few model files found: $files"
for file in $files; do
  "$inspect" "$file" > "$work/insp.out" 2> "$work/insp.err" ||
    { cat "$work/insp.err"; fail "vae-inspect $file"; }
  count=$(info "$file" | sed 's/.* count=\([0-9]*\) .*/\1/')
  total=$(sed -n 's/^Total parameters: //p' "$work/insp.out" | tr -d ,)
  [ -n "$count" ] && [ "$total" = "$count" ] ||
    { cat "$work/insp.out"; fail "vae-inspect $file: total parameters '$total', the model has $count"; }
  grep -qx "File format 2, written by libvae $version" "$work/insp.out" ||
    { cat "$work/insp.out"; fail "vae-inspect $file: not format 2 written by $version"; }
  grep -q "^Latent size: [0-9]*; likelihood: Bernoulli; input (batch, [0-9, ]*)$" "$work/insp.out" ||
    { cat "$work/insp.out"; fail "vae-inspect $file: latent size, likelihood, input shape"; }
done
ok "vae-inspect: $(echo "$files" | wc -l) model files, each total the model's parameter count"
# inspected FILE: its report in $work/insp.out, which must have each of the
# following lines (grep patterns)
inspected() {
  local file=$1 pattern; shift
  "$inspect" "$file" > "$work/insp.out" 2> "$work/insp.err" || { cat "$work/insp.err"; fail "vae-inspect $file"; }
  for pattern in "$@"; do
    grep -q -- "$pattern" "$work/insp.out" || { cat "$work/insp.out"; fail "vae-inspect $file: no line '$pattern'"; }
  done
}
for dir in a fl r3 conv f; do
  # last.vae: the optimizer with its kind's settings alone, the epochs, the history
  inspected "$work/$dir/last.vae" "^Training state: yes$" "^  epochs done: [12]; none under way; optimizer steps: [1-9]" \
    "^Built with: --hidden [0-9,]* --latent [0-9]* --loss bce --seed " "^History ([12] epochs\{0,1\}):$" \
    "^  epoch  train_objective  *train_nelbo  *train_recon  *train_kl  *seconds  *images_per_sec  *test_loss  *test_bits_per_dim  *test_recon  *test_kl  *beta$" \
    "^      1  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*  *[0-9.e+-]*$"
  inspected "$work/$dir/best.vae" "^Training state: none"
done
inspected "$work/a/last.vae" "^  optimizer: Adam, learning rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-08, clip norm off$"
inspected "$work/conv/last.vae" "^  optimizer: RMSprop, learning rate 0.001, rho 0.9, epsilon 1e-07, clip norm off$" \
  "^encoder.conv1  *conv2d, relu  *(batch, 64, 14, 14)  *18,496$"
inspected "$work/fl/last.vae" "^Built with: .* --flow-steps 2 --iaf-hidden 40 " "^flow.1.m  *masked dense "
grep -q -- "--iaf-hidden" <("$inspect" "$work/a/last.vae") && fail "vae-inspect: --iaf-hidden shown without a flow"
inspected "$work/int/last.vae" "^  epochs done: 0; epoch 1 under way: [1-9][0-9]* batches of 1 done; "
ok "vae-inspect: format, writer, settings, training state, history"
if command -v dot > /dev/null; then
  for dir in a fl r3 conv f; do
    "$inspect" --dot "$work/$dir/last.vae" > "$work/g.dot" || fail "vae-inspect --dot $dir/last.vae"
    dot -Tsvg "$work/g.dot" > "$work/g.svg" 2> "$work/dot.err" && ! [ -s "$work/dot.err" ] ||
      { cat "$work/dot.err"; fail "dot refuses the diagram of $dir/last.vae"; }
    grep -q "<svg" "$work/g.svg" && grep -q "z: " "$work/g.svg" && grep -q "loss: " "$work/g.svg" ||
      fail "the diagram of $dir/last.vae: no z or loss node"
  done
  ok "vae-inspect --dot: Graphviz draws every network's diagram"
else
  skip "no graphviz (dot): vae-inspect --dot not drawn; install the graphviz package"
fi
# Files it cannot load: the library's message (naming the file), exit 1.
cp "$work/a/last.vae" "$work/flip.vae"
"$python" - "$work/flip.vae" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read()); d[len(d) // 2] ^= 0x10
open(sys.argv[1], "wb").write(d)
PY
head -c 1000 "$work/a/last.vae" > "$work/short.vae"
echo "not a model" > "$work/text.vae"
set +e
for bad in flip short text; do
  msg=$(info "$work/$bad.vae" 2>&1 > /dev/null | sed "s|^$work/$bad.vae: ||")
  for mode in "" --dot; do
    "$inspect" $mode "$work/$bad.vae" > "$work/insp.out" 2> "$work/insp.err"
    [ $? = 1 ] && ! [ -s "$work/insp.out" ] || fail "vae-inspect $mode on $bad.vae must exit 1 and print nothing"
    [ -n "$msg" ] && grep -qF -- "$msg" "$work/insp.err" && grep -qF -- "$work/$bad.vae" "$work/insp.err" ||
      { cat "$work/insp.err"; fail "vae-inspect $mode on $bad.vae: not the library's message '$msg' naming the file"; }
  done
done
"$inspect" > /dev/null 2>&1; [ $? = 2 ] || fail "vae-inspect without a file must exit 2"
"$inspect" --bogus "$work/a/last.vae" > /dev/null 2>&1; [ $? = 2 ] || fail "vae-inspect --bogus must exit 2"
"$inspect" "$work/a/last.vae" "$work/a/best.vae" > /dev/null 2>&1; [ $? = 2 ] || fail "vae-inspect of two files must exit 2"
"$inspect" --help > "$work/help" 2>&1; [ $? = 0 ] && grep -q -- "--dot" "$work/help" || fail "vae-inspect --help"
set -e
ok "vae-inspect: corrupt, truncated and foreign files exit 1 with the library's message; usage errors exit 2"
# Files of libvae 0.2.0: format 1, no writer, no history; their optimizers.
for file in "$here"/fixtures/0.2.0/*.vae; do
  inspected "$file" "^File format 1, written by an unknown libvae version" "^History: none$"
  total=$(sed -n 's/^Total parameters: //p' "$work/insp.out" | tr -d ,)
  [ "$total" = "$(info "$file" | sed 's/.* count=\([0-9]*\) .*/\1/')" ] || fail "vae-inspect $file: total"
done
inspected "$here/fixtures/0.2.0/dense_sgd_state.vae" "^  optimizer: SGD, learning rate [0-9.e-]*, momentum [0-9.e-]*, clip norm "
inspected "$here/fixtures/0.2.0/dense.vae" "^Training state: none"
ok "vae-inspect: files of libvae 0.2.0"

set +e
"$prog" --epochs x > /dev/null 2>&1; [ $? = 2 ] || fail "bad flag must exit 2"
"$prog" --data "$work/nowhere" --out "$work/d" > /dev/null 2> "$work/d.err"; [ $? = 1 ] || fail "missing data must exit 1"
grep -q nowhere "$work/d.err" || fail "missing data message names the path"
"$prog" --help > "$work/help" 2>&1; [ $? = 0 ] || fail "--help"
grep -q -- "--resume FILE or --load FILE" "$work/help" || fail "--help says nothing of --resume and --load"
grep -q -- "--quiet" "$work/help" || fail "--help says nothing of --quiet"
for flag in beta kl-warmup lr-schedule lr-steps lr-gamma lr-min lr-warmup weight-decay freeze early-stop; do
  grep -q -- "^  --$flag " "$work/help" || fail "--help says nothing of --$flag"
done
"$prog" --load "$work/nonexistent.vae" --data "$work/data" > /dev/null 2> "$work/e.err"; [ $? = 1 ] || fail "--load of a missing file must exit 1"
[ "$(grep -o "$work/nonexistent.vae" "$work/e.err" | wc -l)" = 1 ] || { cat "$work/e.err"; fail "--load names the missing file once"; }
"$prog" --data "$work/data" --decode 0,1 --out "$work/x" > /dev/null 2>&1; [ $? = 2 ] || fail "--decode without --load"
"$prog" --data "$work/data" --eval-limit 5 --out "$work/x" > /dev/null 2>&1; [ $? = 2 ] || fail "--eval-limit without --eval-iw"
set -e
ok "errors and --help"
tally 0
