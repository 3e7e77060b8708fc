#!/usr/bin/env bash
# Training speed of the MLP VAE with inverse autoregressive flow (run R3:
# tanh encoder 3072-500 with mean, log-variance and context heads of 500,
# 3 MADE IAF steps of 500 hidden units, tanh decoder 500-3072; Adam 1e-4,
# batch 32): libvae's vae-cifar10-iaf at its default settings beside PyTorch
# (Debian's python3-torch, bench/torch_iaf_vae.py --time-only) at its best
# settings, in the same run, plus the GFLOP/s each reaches and its fraction
# of the machine's sgemm peak.
#
# Data: DATA=DIR, a CIFAR-10 binary folder (data_batch_1.bin ..
# data_batch_5.bin, test_batch.bin); without it a random stand-in is written
# to a temporary folder: each file RECORDS=10000 records of one label byte
# (0-9) and 3072 random bytes.  Both sides train on the same bytes (pixels
# byte/256); the speed does not depend on the data.
#
# PyTorch's best is the higher of 1 thread and 2 threads with
# OPENBLAS_NUM_THREADS=1, both with OPENBLAS_CORETYPE=SkylakeX where the CPU
# has AVX-512 (all its products are OpenBLAS GEMMs; denormals flushed).
# Runs are interleaved REPS times (default 3); medians. Each run first waits
# for an idle machine (bench/wait_idle.sh) and is repeated (up to RETRIES=3
# times) when other processes used more than FOREIGN_MAX=10 % of a CPU
# meanwhile.
#
# libvae's figure is images_per_sec of its first epoch (row 2 of
# metrics.csv): all 5 x RECORDS training images unless LIMIT=N is set (then
# --limit N for both sides, which is printed). PyTorch's --time-only times
# the same epoch 1 after 5 untimed warm-up steps.
#
# FLOPs: one training step costs 39,360,000 FLOP per image in its matrix
# products, counted exactly (masked products counted dense, as both sides
# run them as full GEMMs). Forward multiply-adds per image:
#   encoder Dense 3072->500                      1,536,000
#   heads mean, log-variance, context 500->500     750,000
#   3 IAF steps: z->hidden, context->hidden,
#                hidden->m, hidden->s (500x500)  3,000,000
#   decoder Dense 500->500                         250,000
#   decoder logits 500->3072                     1,536,000
#   total                                        7,072,000
# backward: the same again for the weight gradients and again for the input
# gradients except the first layer's (x needs none):
# 3 x 7,072,000 - 1,536,000 = 19,680,000 MACs, x 2 FLOP. (Biases,
# activations, the gates, PyTorch's weight*mask products, the loss and the
# optimiser are not counted.)
#
# Usage: bench/iaf_vs_torch.sh          (from anywhere; builds what it needs)
#        REPS=5 LIMIT=20000 CONTRAST=1 bench/iaf_vs_torch.sh
#        DATA=data/cifar-10-batches-bin bench/iaf_vs_torch.sh
#   CONTRAST=1 also times PyTorch with 2 threads and no settings at all (its
#   OpenMP threads and OpenBLAS's own 2 threads oversubscribe the 2 cores).
#   PEAK=0 skips the sgemm peak (and the GFLOP/s fractions).
LIMIT=${LIMIT:-}
CONTRAST=${CONTRAST:-0}
PEAK=${PEAK:-1}
RECORDS=${RECORDS:-10000}
DATA=${DATA:-}
# shellcheck source-path=SCRIPTDIR source=harness.sh
. "$(dirname "$0")/harness.sh"
try_example vae-cifar10-iaf
[ "$PEAK" = 1 ] && bash bench/build_sgemm_peak.sh /tmp/libvae-bench > /dev/null 2>&1

if [ -z "$DATA" ]; then
  DATA=$work/cifar
  what="random stand-in, 5 x $RECORDS train records"
  $PY - "$DATA" "$RECORDS" <<'EOF'
import os, sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(1)
for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
    rec = rng.integers(0, 256, size=(n, 3073), dtype=np.uint8)
    rec[:, 0] %= 10  # the label byte
    rec.tofile(os.path.join(d, name))
EOF
else
  what=$DATA
fi
train_images=0
for f in "$DATA"/data_batch_{1,2,3,4,5}.bin; do
  [ -r "$f" ] || { echo "error: $f is missing" >&2; exit 1; }
  train_images=$((train_images + $(stat -c %s "$f") / 3073))
done
[ -n "$LIMIT" ] && [ "$LIMIT" -lt "$train_images" ] && train_images=$LIMIT

compare vae-cifar10-iaf "$DATA" "bench/torch_iaf_vae.py${LIMIT:+ --limit $LIMIT}" \
  "data: $what, epoch: $train_images images" 39360000 ""
