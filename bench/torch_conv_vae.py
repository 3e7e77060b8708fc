#!/usr/bin/python3
"""Reference PyTorch convolutional VAE for libvae benchmarks (Keras book, R2).

Run with Debian's python (the one that has torch):  /usr/bin/python3

The convolutional VAE of Chollet's "Deep Learning with Python" (Keras), in
PyTorch, NCHW, 2-D latent:
  encoder  Conv2d(1,32,3, 'same') ReLU
           Conv2d(32,64,3, stride 2, TF 'same': 28->14 pads 0 top/left and
                  1 bottom/right, i.e. F.pad(x,(0,1,0,1)) then padding 0) ReLU
           Conv2d(64,64,3, 'same') ReLU
           Conv2d(64,64,3, 'same') ReLU
           Flatten (12544) -> Linear(12544,32) ReLU
  heads    Linear(32,2) -> mu,  Linear(32,2) -> logvar
  z        mu + exp(0.5*logvar) * eps,  eps ~ N(0, I)
  decoder  Linear(2, 64*14*14) ReLU -> reshape (64,14,14)
           ConvTranspose2d(64,32,3, stride 2, padding 1, output_padding 1)
                  ReLU  (14 -> 28 like Keras's Conv2DTranspose 'same')
           Conv2d(32,1,3, padding 1) -> logits (the Keras sigmoid is inside
                  the BCE-with-logits)
  Note: TensorFlow's 'same' transposed convolution places its taps one pixel
  differently (it is ConvTranspose2d padding 0 cropped to [:28,:28]); same
  shapes, same work, the weights just learn a shifted kernel.
Weights: PyTorch's default initialisation (as libvae).
Training objective (the Keras book's):
  mean over the batch of
    [ mean over the 784 pixels of BCE-with-logits(logits, x)
      + 5e-4 * KL(N(mu, diag(exp(logvar))) || N(0, I)) ]
  (with a 2-D latent, 5e-4*KL = -5e-4 * mean over the 2 latents of
  (1 + logvar - mu^2 - exp(logvar)), the Keras code's kl_loss).
Optimiser: RMSprop lr 1e-3 with Keras's defaults (rho = alpha = 0.9,
eps = 1e-7 added to sqrt of the mean square, no momentum); batch 100;
training set reshuffled every epoch; pixels / 255 (not binarised).

Printed per epoch (losses like libvae's metrics.csv, NOT the objective):
  epoch E seconds S images_per_sec R train_loss L test_loss T
  train_loss = mean negative ELBO in nats per image (sum over pixels of BCE
               + full KL, beta 1) over the epoch's batches (one z sample,
               model changing during the epoch, as usual);
  test_loss  = the same over the 10k test set, one z sample.
With --time-only: one epoch, timed over the training loop only (data already
a float tensor in memory; perm, batch gather, forward, backward, RMSprop
step); a few untimed warm-up steps run first.
Denormals: flushed to zero by default (torch.set_flush_denormal(True),
FTZ/DAZ, before any torch thread starts; libvae does the same) because it is
never slower and keeps later epochs from slowing down; --no-flush-denormal
turns it off.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# torch_common.py sits beside this file: found even under python3 -P / -I or
# when this file is imported from elsewhere
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common as tc  # noqa: E402


class ConvVAE(nn.Module):
    def __init__(self, d_z=2):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, stride=2, padding=0)  # after F.pad(0,1,0,1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 14 * 14, 32)
        self.mu = nn.Linear(32, d_z)
        self.logvar = nn.Linear(32, d_z)
        self.d1 = nn.Linear(d_z, 64 * 14 * 14)
        self.dt = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.dout = nn.Conv2d(32, 1, 3, padding=1)

    def encode(self, x):
        h = F.relu(self.c1(x))
        h = F.relu(self.c2(F.pad(h, (0, 1, 0, 1))))
        h = F.relu(self.c3(h))
        h = F.relu(self.c4(h))
        h = F.relu(self.fc(h.flatten(1)))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        h = F.relu(self.d1(z)).view(-1, 64, 14, 14)
        h = F.relu(self.dt(h))
        return self.dout(h)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z), mu, logvar


def rec_kl_per_image(logits, x, mu, logvar):
    """Vectors [batch]: sum-over-pixels BCE (nats) and analytic KL (nats)."""
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return rec, kl


def keras_objective(rec, kl, n_pixels=784, kl_weight=5e-4):
    return (rec / n_pixels + kl_weight * kl).mean()


def train_epoch(model, opt, x_train, batch, gen, warmup_steps=0):
    n = x_train.shape[0]
    model.train()
    # untimed warm-up steps (only used by --time-only)
    for _ in range(warmup_steps):
        xb = x_train[:batch]
        logits, mu, logvar = model(xb)
        rec, kl = rec_kl_per_image(logits, xb, mu, logvar)
        loss = keras_objective(rec, kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    total = torch.zeros((), dtype=torch.float64)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch):
        xb = x_train.index_select(0, perm[i:i + batch])
        logits, mu, logvar = model(xb)
        rec, kl = rec_kl_per_image(logits, xb, mu, logvar)
        loss = keras_objective(rec, kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += (rec + kl).detach().sum()
    secs = time.perf_counter() - t0
    return secs, total.item() / n


@torch.no_grad()
def test_loss(model, x_test, batch=1000):
    model.eval()
    total = 0.0
    for i in range(0, x_test.shape[0], batch):
        xb = x_test[i:i + batch]
        logits, mu, logvar = model(xb)
        rec, kl = rec_kl_per_image(logits, xb, mu, logvar)
        total += (rec + kl).sum().item()
    return total / x_test.shape[0]


def main():
    ap = tc.arg_parser(__doc__, epochs=10, batch=100, lr=1e-3)
    ap.add_argument("--data", default="/tmp/mn/package/data")
    ap.add_argument("--time-only", action="store_true",
                    help="one timed epoch (training loop only)")
    ap.add_argument("--flush-denormal", action=argparse.BooleanOptionalAction,
                    default=True,
                    help="torch.set_flush_denormal (FTZ/DAZ); on by default")
    args = ap.parse_args()

    flushed = tc.start(args)
    gen = torch.Generator().manual_seed(args.seed)

    x_train = tc.load_idx_images(os.path.join(args.data, "train-images-idx3-ubyte")).unsqueeze(1)
    x_test = tc.load_idx_images(os.path.join(args.data, "t10k-images-idx3-ubyte")).unsqueeze(1)

    model = ConvVAE()
    opt = torch.optim.RMSprop(model.parameters(), lr=args.lr, alpha=0.9, eps=1e-7)

    tc.print_header(flushed, mkldnn=True)

    epochs = 1 if args.time_only else args.epochs
    for ep in range(1, epochs + 1):
        secs, tr = train_epoch(model, opt, x_train, args.batch, gen,
                               warmup_steps=5 if args.time_only else 0)
        tc.print_epoch(ep, secs, x_train.shape[0], tr, test_loss(model, x_test))


if __name__ == "__main__":
    sys.exit(main())
