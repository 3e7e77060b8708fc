#!/usr/bin/env bash
# The main job: installs what is missing (scripts/deps.sh demo: what the
# library and the examples need, not the test-only packages), builds libvae
# and its examples, fetches MNIST, trains the reference dense VAE (R1) and
# says where its pictures are and how to open the model in vae-explore.  Extra arguments go to vae-mnist-dense
# (e.g. --epochs 5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh demo
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$(nproc)" >> build.log 2>&1 || { tail -40 build.log; exit 1; }
bash scripts/fetch-mnist.sh data/mnist
./build/examples/vae-mnist-dense --data data/mnist --out out/mnist-dense "$@" < /dev/null
echo
echo "Pictures: $root/out/mnist-dense/ (loss.png, latent_scatter.png, latent_grid.png,"
echo "          reconstructions.png, samples.png, decoded_0_2.5.png; metrics.csv, latent.csv)"
echo
echo "Explore the model in a browser (the decoder follows the mouse over the latent plane):"
echo "  ./build/examples/vae-explore out/mnist-dense/best.vae --data data/mnist"
echo "then open http://127.0.0.1:8080/ (Ctrl-C stops the server; docs/EXPLORE.md has the rest)"
