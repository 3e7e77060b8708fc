#!/usr/bin/env bash
# vae-explore over HTTP: two small models trained here (a dense one with a
# 2-D latent, an MLP with a flow, an 8-D latent and 3x32x32 images) served
# with and without data; explore_client.py checks every endpoint's values
# against the library's, decodes from many threads at once and throws
# thousands of malformed requests at the server; SIGINT and SIGTERM stop it
# with status 0 (where the sanitizers report leaks).  Then the errors: a
# missing or foreign model, data that do not fit, bad flags, a port in use;
# and the address it listens on (127.0.0.1 unless --bind says otherwise).
# Skipped (exit 77, which ctest reports as skipped), and says so, where
# PYTHON has no numpy (Debian's python3-numpy).
# Usage: test_explore.sh BUILD_DIR PYTHON
set -euo pipefail
build=$1 python=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
# a failure that leaves the server usable: counted, the test goes on
failed() { failed=$((failed + 1)); echo "FAIL: $*"; }
explore=$build/examples/vae-explore
# explore_client.py's child process loads the library (with
# VAE_ASAN_PRELOAD preloaded under the sanitizers)
export LIBVAE_LIBRARY=$build/libvae.so
[ -x "$explore" ] || fail "$explore is missing"
"$python" -c "import numpy" 2> /dev/null || { echo "skipped: $python has no numpy (python3-numpy)"; exit 77; }

mkdir -p "$work/data"
"$python" "$here/make_idx.py" "$work/data" 600 200 --gz
"$build/examples/vae-mnist-dense" --data "$work/data" --out "$work/m2" --epochs 2 --batch 50 --hidden 64,32 \
  --threads 2 --seed 5 --quiet > "$work/m2.log" 2>&1 || { cat "$work/m2.log"; fail "training the dense model"; }
"$python" "$here/../scripts/make_cifar_demo.py" "$work/cifar" --source "$work/data" --kind mnist \
  --train 100 --test 80 > /dev/null || fail "writing the CIFAR-10 stand-in"
"$build/examples/vae-cifar10-iaf" --data "$work/cifar" --out "$work/m8" --epochs 1 --limit 100 --hidden 32 \
  --latent 8 --flow-steps 1 --iaf-hidden 16 --threads 2 --quiet > "$work/m8.log" 2>&1 ||
  { cat "$work/m8.log"; fail "training the flow model"; }
ok "two models: dense with a 2-D latent (1x28x28); a flow, an 8-D latent, 3x32x32"

# start NAME ARGS...: vae-explore ARGS in the background, its output in
# $work/NAME.log; sets pid, url and port from the address it prints.
start() {
  local name=$1 _
  shift
  "$explore" "$@" > "$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  url=""
  for _ in $(seq 1200); do # 2 minutes: the sanitizers are slow to start
    url=$(grep -o 'http://[0-9.]*:[0-9]*/' "$work/$name.log" | head -1) || true
    if [ -n "$url" ]; then
      port=${url##*:}
      port=${port%/}
      return 0
    fi
    kill -0 "$pid" 2> /dev/null || { cat "$work/$name.log"; fail "$name: vae-explore $* exited without serving"; }
    sleep 0.1
  done
  cat "$work/$name.log"
  fail "$name: vae-explore $* printed no address in 2 minutes"
}
# stop NAME SIGNAL: the signal, then exit status 0 and no sanitizer report
stop() {
  local rc
  kill -s "$2" "$pid"
  set +e
  wait "$pid"
  rc=$?
  set -e
  [ $rc = 0 ] || { cat "$work/$1.log"; fail "$1: exit status $rc after SIG$2, not 0"; }
  ! grep -q "Sanitizer\|runtime error" "$work/$1.log" || { cat "$work/$1.log"; fail "$1: a sanitizer's report"; }
}
# listening PORT: the local addresses (hex, as /proc/net/tcp writes them)
# listening on PORT, IPv4 and IPv6
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2> /dev/null | awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p {print $2}'
}
client() { "$python" "$here/explore_client.py" "$@"; }

# The dense model with data: every check, the concurrency and the fuzzing.
start dense "$work/m2/best.vae" --data "$work/data" --port 0
grep -q "serving best.vae (latent 2, 1x28x28) with 200 test images" "$work/dense.log" ||
  { cat "$work/dense.log"; fail "the first line does not say what is served"; }
[ "$url" = "http://127.0.0.1:$port/" ] || fail "address $url"
[ "$(listening "$port")" = "0100007F:$(printf '%04X' "$port")" ] ||
  { listening "$port"; fail "by default it must listen on 127.0.0.1 alone"; }
ok "serving on $url, listening on 127.0.0.1 only"
client "$url" "$work/m2/best.vae" --data "$work/data" --pid "$pid" --fuzz 2500 || failed "explore_client.py (dense model)"
# a second server on the same port: exit 1 with a message
set +e
timeout 60 "$explore" "$work/m2/best.vae" --port "$port" > /dev/null 2> "$work/busy.err"
rc=$?
set -e
if [ $rc != 1 ] || ! grep -q "$port" "$work/busy.err"; then
  cat "$work/busy.err"
  fail "a port in use: status $rc, not 1 with a message naming it"
fi
ok "a port in use: exit 1, the message names the port"
stop dense INT
ok "SIGINT: exit status 0, nothing from the sanitizers"

# The flow model (8-D latent, RGB) on CIFAR-10 data, the first 60 images.
start flow "$work/m8/best.vae" --data "$work/cifar" --port 0 --limit 60 --workers 3
client "$url" "$work/m8/best.vae" --data "$work/cifar" --limit 60 --pid "$pid" || failed "explore_client.py (flow model)"
stop flow INT

# Without data, listening on every address (asked for): SIGTERM stops it.
start nodata "$work/m2/best.vae" --port 0 --bind 0.0.0.0 --workers 1
[ "$(listening "$port")" = "00000000:$(printf '%04X' "$port")" ] ||
  { listening "$port"; fail "--bind 0.0.0.0: not listening on 0.0.0.0"; }
ok "--bind 0.0.0.0 listens on every IPv4 address"
client "http://127.0.0.1:$port/" "$work/m2/best.vae" --pid "$pid" --quick || failed "explore_client.py (no data)"
stop nodata TERM
ok "SIGTERM: exit status 0"

# --label-names: name k is label k's, empty names kept, other characters
# (a newline) are part of a name; a trailing comma is not one more name.
start names "$work/m2/best.vae" --data "$work/data" --port 0 --limit 20 --workers 1 \
  --label-names "$(printf 'cat,,a\nb,dog,')"
names=$("$python" -c 'import json, sys, urllib.request
print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1] + "api/info"))["label_names"]))' "$url")
[ "$names" = '["cat", "", "a\nb", "dog"]' ] || fail "--label-names: label_names $names"
stop names INT
ok "--label-names: $names"

# Errors: status 1 for what cannot be had, 2 for usage, a message, no crash.
# refused STATUS[|STATUS] WHAT ARGS...
refused() {
  local want=$1 what=$2 rc
  shift 2
  set +e
  timeout 60 "$explore" "$@" > "$work/err.out" 2> "$work/err.log"
  rc=$?
  set -e
  [[ $rc =~ ^($want)$ ]] || { cat "$work/err.log"; fail "$what: exit status $rc, not $want"; }
  if ! [ -s "$work/err.log" ] || grep -q "Sanitizer\|runtime error" "$work/err.log"; then
    cat "$work/err.log"
    fail "$what: no message, or a sanitizer's report"
  fi
  ! grep -q "http://" "$work/err.out" "$work/err.log" || fail "$what: it served"
}
echo "not a model" > "$work/text.vae"
head -c 3000 "$work/m2/best.vae" > "$work/short.vae"
refused 1 "a missing model" "$work/nowhere.vae" --port 0
grep -q "$work/nowhere.vae" "$work/err.log" || { cat "$work/err.log"; fail "the message does not name the missing model"; }
refused 1 "a text file as the model" "$work/text.vae" --port 0
refused 1 "a truncated model" "$work/short.vae" --port 0
refused 1 "missing data" "$work/m2/best.vae" --data "$work/nowhere" --port 0
grep -q "$work/nowhere" "$work/err.log" || { cat "$work/err.log"; fail "the message does not name the missing data"; }
refused 1 "--data a file" "$work/m2/best.vae" --data "$work/text.vae" --port 0
grep -q "not a folder" "$work/err.log" || { cat "$work/err.log"; fail "--data a file: the message does not say so"; }
refused 1 "RGB 32x32 data for a 1x28x28 model" "$work/m2/best.vae" --data "$work/cifar" --port 0
refused 1 "1x28x28 data for an RGB 32x32 model" "$work/m8/best.vae" --data "$work/data" --port 0
refused 1 "an address not on this machine" "$work/m2/best.vae" --port 0 --bind 192.0.2.1
ok "a missing, foreign or truncated model, missing data, data that do not fit the model, an address not here: exit 1 with a message"
for bad in abc -1 65536 99999999999999999999 "" 80x " 80" 0x50; do
  refused 2 "--port '$bad'" "$work/m2/best.vae" --port "$bad"
done
for args in "--workers 0" "--workers 17" "--workers x" "--limit -1" "--limit x" "--bogus" "--port" "--data"; do
  # shellcheck disable=SC2086
  refused 2 "$args" "$work/m2/best.vae" $args
done
# an address that is not one: a usage error
for bad in 1.2.3 abc 1.2.3.256 "" 127.0.0.1:80; do
  refused 2 "--bind '$bad'" "$work/m2/best.vae" --port 0 --bind "$bad"
done
refused 2 "no model" --port 0
refused 2 "two models" "$work/m2/best.vae" "$work/m8/best.vae" --port 0
ok "bad --port, --workers, --limit, unknown flags, no model or two, --bind not an address: exit 2 with a message"
"$explore" --help > "$work/help" 2>&1 || fail "--help: exit status $?"
grep -q -- "--bind" "$work/help" || fail "--help says nothing of --bind"
ok "--help"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
