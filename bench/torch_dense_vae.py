#!/usr/bin/python3
"""Reference PyTorch VAE for libvae benchmarks (784-400-20, MNIST).

Run with Debian's python (the one that has torch):  /usr/bin/python3

Model (matches libvae's dense VAE):
  encoder  Linear(784,400) + ReLU
  heads    Linear(400,20) -> mu,  Linear(400,20) -> logvar
  z        mu + exp(0.5*logvar) * eps,  eps ~ N(0, I)
  decoder  Linear(20,400) + ReLU, Linear(400,784) -> logits
Loss (negative ELBO, in nats per image):
  per image: sum over the 784 pixels of BCE-with-logits(logits, x)
             + analytic KL(N(mu, diag(exp(logvar))) || N(0, I))
  batch loss = MEAN over the batch of the per-image sums.
  NOTE: the classic PyTorch examples/vae/main.py instead SUMS the per-image
  losses over the batch (also with Adam lr 1e-3). We use the mean per image;
  Adam is (almost, up to its eps) invariant to that constant scale, so the
  learning curves are practically the same, and the printed numbers are
  directly "nats per image".
Optimiser: Adam, lr 1e-3; batch 128; training set reshuffled every epoch
(last partial batch kept, like DataLoader's drop_last=False); pixels / 255
(not binarised).

Printed per epoch:
  epoch E seconds S images_per_sec R train_loss L test_loss T
  train_loss = mean -ELBO per image over the epoch's batches (model changing
               during the epoch, as usual); test_loss = mean -ELBO per image
               over the 10k test set, one z sample, analytic KL.
With --time-only: one epoch, timed over the training loop only (data already
a float tensor in memory; perm, batch gather, forward, backward, Adam step);
a few untimed warm-up steps run first.
Denormals: without --flush-denormal, epochs 2+ run ~20 % slower than epoch 1
on x86 (Adam moments of weights fed by always-zero border pixels decay into
the denormal range); --flush-denormal (FTZ/DAZ) removes that and leaves the
losses unchanged to 4 decimals. --time-only measures epoch 1.
"""
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


class VAE(nn.Module):
    def __init__(self, d_in=784, d_h=400, d_z=20):
        super().__init__()
        self.enc = nn.Linear(d_in, d_h)
        self.mu = nn.Linear(d_h, d_z)
        self.logvar = nn.Linear(d_h, d_z)
        self.dec1 = nn.Linear(d_z, d_h)
        self.dec2 = nn.Linear(d_h, d_in)

    def forward(self, x):
        h = F.relu(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec2(F.relu(self.dec1(z)))
        return logits, mu, logvar


def neg_elbo_per_image(logits, x, mu, logvar):
    """Vector [batch] of -ELBO per image (nats)."""
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return rec + kl


def train_epoch(model, opt, x_train, batch, gen, warmup_steps=0):
    n = x_train.shape[0]
    model.train()
    # untimed warm-up steps (only used by --time-only)
    for _ in range(warmup_steps):
        xb = x_train[:batch]
        logits, mu, logvar = model(xb)
        loss = neg_elbo_per_image(logits, xb, mu, logvar).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    total = 0.0
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch):
        xb = x_train.index_select(0, perm[i:i + batch])
        logits, mu, logvar = model(xb)
        loss = neg_elbo_per_image(logits, xb, mu, logvar).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * xb.shape[0]
    secs = time.perf_counter() - t0
    return secs, total / n


@torch.no_grad()
def test_loss(model, x_test, batch=1000):
    model.eval()
    total = 0.0
    for i in range(0, x_test.shape[0], batch):
        xb = x_test[i:i + batch]
        logits, mu, logvar = model(xb)
        total += neg_elbo_per_image(logits, xb, mu, logvar).sum().item()
    return total / x_test.shape[0]


def main():
    ap = tc.arg_parser(__doc__, epochs=10, batch=128, lr=1e-3)
    ap.add_argument("--data", default="/tmp/mn/package/data")
    ap.add_argument("--time-only", action="store_true",
                    help="one timed epoch (training loop only)")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True) (FTZ/DAZ); off by default")
    args = ap.parse_args()

    flushed = tc.start(args)
    gen = torch.Generator().manual_seed(args.seed)

    x_train = tc.load_idx_images(os.path.join(args.data, "train-images-idx3-ubyte")).flatten(1)
    x_test = tc.load_idx_images(os.path.join(args.data, "t10k-images-idx3-ubyte")).flatten(1)

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    tc.print_header(flushed)

    epochs = 1 if args.time_only else args.epochs
    for ep in range(1, epochs + 1):
        secs, tr = train_epoch(model, opt, x_train, args.batch, gen,
                               warmup_steps=10 if args.time_only else 0)
        tc.print_epoch(ep, secs, x_train.shape[0], tr, test_loss(model, x_test))


if __name__ == "__main__":
    sys.exit(main())
