#!/usr/bin/env bash
# Training speed of the Keras book's convolutional VAE (run R2: four 3x3
# convolutions, 2-D latent, RMSprop, batch 100): libvae's vae-mnist-conv at
# its default settings beside PyTorch (Debian's python3-torch,
# bench/torch_conv_vae.py --time-only) at its best settings, in the same run,
# plus the GFLOP/s each reaches and its fraction of the machine's sgemm peak.
#
# PyTorch's best is the higher of 1 thread and 2 threads with
# OPENBLAS_NUM_THREADS=1, both with OPENBLAS_CORETYPE=SkylakeX where the CPU
# has AVX-512 (PyTorch's convolutions run in oneDNN on its own threads; its
# Linear layers and the transposed convolution use OpenBLAS). Runs are
# interleaved REPS times (default 3); medians. Each run first waits for an
# idle machine (bench/wait_idle.sh) and is repeated (up to RETRIES=3 times)
# when other processes used more than FOREIGN_MAX=10 % of a CPU meanwhile.
#
# libvae's figure is images_per_sec of its first epoch (row 2 of
# metrics.csv), a full 60000-image epoch unless LIMIT=N is set (then
# --limit N, which is printed). PyTorch's --time-only also times a full
# epoch 1, after 5 untimed warm-up steps.
#
# FLOPs: one training step of this network costs 134,873,856 FLOP per image
# in its convolutions and matrix products, counted exactly: forward
# 22,554,240 multiply-adds; backward the same again for the weight gradients
# and again for the input gradients, except the first convolution's input
# gradient, which nobody needs (3 x 22,554,240 - 225,792 = 67,436,928 MACs,
# x 2 FLOP). Per layer (forward MACs per image):
#   conv 1->32, 28x28 out            28*28*32*9*1  =   225,792
#   conv 32->64 stride 2, 14x14 out  14*14*64*9*32 = 3,612,672
#   conv 64->64, 14x14 (twice)       14*14*64*9*64 = 7,225,344 each
#   dense 12544->32                  12544*32      =   401,408
#   dense 32->2 (mu and logvar)      2*32*2        =       128
#   dense 2->12544                   2*12544       =    25,088
#   transposed conv 64->32, 14x14 in 14*14*9*64*32 = 3,612,672
#   conv 32->1, 28x28 out            28*28*9*32*1  =   225,792
# (Biases, activations, the loss and the optimiser are not counted.)
#
# Usage: bench/conv_vs_torch.sh          (from anywhere; builds what it needs)
#        REPS=5 LIMIT=20000 CONTRAST=1 bench/conv_vs_torch.sh
#   CONTRAST=1 also times PyTorch with 2 threads and no settings at all (its
#   OpenMP threads and OpenBLAS's own 2 threads oversubscribe the 2 cores).
LIMIT=${LIMIT:-}
CONTRAST=${CONTRAST:-0}
PEAK=1  # this report always has the peak; only iaf_vs_torch.sh takes PEAK=0
# shellcheck source-path=SCRIPTDIR source=harness.sh
. "$(dirname "$0")/harness.sh"
bash scripts/fetch-mnist.sh data/mnist
try_example vae-mnist-conv
bash bench/build_sgemm_peak.sh /tmp/libvae-bench > /dev/null 2>&1
compare vae-mnist-conv data/mnist bench/torch_conv_vae.py \
  "libvae epoch: ${LIMIT:-60000} images" 134873856 " (target 1.2x)"
