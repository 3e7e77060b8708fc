#!/usr/bin/env bash
# vae-explore in a real browser, end to end: trains a tiny model on small
# MNIST-format data written here, serves it with vae-explore, runs
# explore.test.mjs in headless Chromium (puppeteer-core) against it and
# check_decoded.py on what the page showed, then again without --data, and
# stops the server with SIGINT (it must exit 0).  The screenshot is copied to
# BUILD_DIR/explore.png.
# Usage: tests/browser/run.sh BUILD_DIR
# Env: CHROMIUM (default /usr/bin/chromium, else chromium on PATH),
#      PYTHON (default /usr/bin/python3), VAE_ASAN_PRELOAD (as test_examples.sh).
# Exits 77 with "skipped: reason" when Chromium, npm or puppeteer-core cannot
# be had; puppeteer-core is installed once into BUILD_DIR/browser-node.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
passed=0
skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*"; echo "$passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok: $*"; }

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || chromium=$(command -v chromium || true)
[ -n "$chromium" ] && [ -x "$chromium" ] || skip "no Chromium (apt-get install chromium)"
export CHROMIUM=$chromium
command -v node > /dev/null || skip "no node"
command -v npm > /dev/null || skip "no npm"
[ -x "$build/examples/vae-explore" ] || skip "$build/examples/vae-explore not built (libmicrohttpd missing?)"

# puppeteer-core, once per build directory (again when package.json changes)
node_dir=$build/browser-node
if ! cmp -s "$here/package.json" "$node_dir/package.json" || [ ! -d "$node_dir/node_modules/puppeteer-core" ]; then
  mkdir -p "$node_dir"
  cp "$here/package.json" "$node_dir/package.json"
  npm install --no-audit --no-fund --prefix "$node_dir" > "$node_dir/npm.log" 2>&1 || {
    tail -n 5 "$node_dir/npm.log"; rm -f "$node_dir/package.json"; skip "npm install puppeteer-core failed"; }
fi
# the test imports puppeteer-core from beside itself
cp "$here/explore.test.mjs" "$node_dir/explore.test.mjs"

work=$(mktemp -d)
server=''
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2> /dev/null; then kill -KILL "$server" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# starts vae-explore with the arguments given, sets $server and $url
start_server() {
  local log=$work/server.log
  "$build/examples/vae-explore" "$@" > "$log" 2>&1 &
  server=$!
  url=''
  for _ in $(seq 200); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log" | head -n 1 || true)
    [ -n "$url" ] && break
    kill -0 "$server" 2> /dev/null || { cat "$log"; fail "vae-explore exited at start"; }
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$log"; fail "vae-explore printed no address in 20 s"; }
  ok "vae-explore $* serves $url"
}

# SIGINT, then it must exit 0 within 10 s
stop_server() {
  kill -INT "$server"
  local status=0
  for _ in $(seq 100); do kill -0 "$server" 2> /dev/null || break; sleep 0.1; done
  kill -0 "$server" 2> /dev/null && fail "vae-explore still running 10 s after SIGINT"
  wait "$server" || status=$?
  server=''
  [ "$status" = 0 ] || { cat "$work/server.log"; fail "vae-explore exited $status after SIGINT"; }
  ok "vae-explore exits 0 on SIGINT"
}

# runs the browser test, counting its ok lines
browser_test() {
  local out=$work/node.out status=0
  timeout 240 node "$node_dir/explore.test.mjs" "$@" > "$out" 2>&1 || status=$?
  cat "$out"
  passed=$((passed + $(grep -c '^ok: ' "$out" || true)))
  [ "$status" = 0 ] || { echo "--- server log:"; cat "$work/server.log"; fail "explore.test.mjs $* (exit $status)"; }
}

mkdir -p "$work/data" "$work/out" "$work/nodata"
"$python" "$root/tests/make_idx.py" "$work/data" 600 200 --gz
"$build/examples/vae-mnist-dense" --data "$work/data" --out "$work/model" --epochs 2 --batch 50 \
  --hidden 64,32 --threads 2 --seed 5 > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "training"; }
ok "trained a tiny model"

start_server "$work/model/best.vae" --data "$work/data" --port 0
browser_test "$url" "$work/out"
out=$work/check.out status=0
LD_PRELOAD=${VAE_ASAN_PRELOAD:-} ASAN_OPTIONS=${VAE_ASAN_PRELOAD:+detect_leaks=0} \
  PYTHONPATH="$root/python" LIBVAE_LIBRARY="$build/libvae.so" \
  "$python" "$here/check_decoded.py" "$work/out/decoded.json" "$work/model/best.vae" "$work/data" \
  > "$out" 2>&1 || status=$?
cat "$out"
passed=$((passed + $(grep -c '^ok: ' "$out" || true)))
[ "$status" = 0 ] || fail "check_decoded.py (exit $status)"
stop_server
cp "$work/out/explore.png" "$build/explore.png"

start_server "$work/model/best.vae" --port 0
browser_test "$url" "$work/nodata" --no-data
stop_server

echo "$passed passed, 0 failed"
