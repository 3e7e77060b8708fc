#!/usr/bin/python3
"""Reference PyTorch MLP VAE with inverse autoregressive flow (run R3, CIFAR-10).

Run with Debian's python (the one that has torch):  /usr/bin/python3

The network of libvae's vae-cifar10-iaf at its defaults (examples/nets.c
app_mlp_net, examples/app.c add_flow/build_graph, lib/layers.c
build_iaf_step/build_elbo_flow), layer for layer:
  x        3072 values in [0, 1) (CIFAR-10 bytes / 256, flattened)
  encoder  h1 = tanh(Linear(3072,500)(x))
           mu = Linear(500,500)(h1), logvar = Linear(500,500)(h1),
           context h = Linear(500,500)(h1)   (no activation)
  z0       mu + exp(0.5*logvar) * eps,  eps ~ N(0, I)       (latent L = 500)
  flow     3 IAF steps (Kingma et al. 2016), MADE style; step i uses the
           reversed order when i is odd.  One step, H = 500 hidden units:
             t = tanh(MaskedLinear_z(z) + Linear_h(h) + b)   (no biases in
                 the two products, one shared bias b)
             m = MaskedLinear_m(t) + bm,  s = MaskedLinear_s(t) + bs
             g = sigmoid(s + 1.5);  z <- g z + (1 - g) m
             log_det += sum(logsigmoid(s + 1.5))
           MADE masks: latent unit i has degree i+1 (L-i reversed), hidden
           unit k degree (k mod (L-1)) + 1; z->hidden weight kept iff
           deg(hidden) >= deg(input), hidden->output kept iff
           deg(output) > deg(hidden).
  decoder  tanh(Linear(500,500)(zK)) -> Linear(500,3072) logits
Masking: the usual PyTorch MADE way, F.linear(x, weight * mask, bias) with
the mask a registered buffer, i.e. one extra elementwise product per masked
layer per forward (and its backward).  libvae instead keeps the masked
weights at exactly zero and zeroes their gradient, so its products are
plain GEMMs; both do dense GEMMs of the full size.  m and s are two
separate layers as in libvae (not one fused Linear(H, 2L)).
Initialisation: PyTorch's default (uniform +-1/sqrt(fan_in)), as libvae;
the flow step's shared bias b uses fan_in = L + C like libvae.
Loss (single-sample Monte Carlo negative ELBO, nats per image):
  per image  sum over pixels of BCE-with-logits(logits, x)
             + log N(z0; mu, exp(logvar)) - log_det - log N(zK; 0, I)
             (normal densities with their constants)
  batch loss = MEAN over the batch.
Optimiser: Adam, lr 1e-4; batch 32; training set reshuffled every epoch.

Data: --data DIR reads CIFAR-10's binary version (data_batch_1..5.bin,
test_batch.bin: records of 1 label byte + 3072 pixel bytes); without it, a
random stand-in (uniform bytes) of --stand-in N images.  Pixels stay bytes
in memory; each batch is gathered and converted (/256) inside the timed
loop, as libvae does.

Printed per epoch:
  epoch E seconds S images_per_sec R train_loss L test_loss T
With --time-only: one epoch (or --max-batches batches), timed over the
training loop only (perm, batch gather + conversion, forward, backward, Adam
step) after --warmup (default 5) untimed steps; no test pass.
Denormals: flushed to zero by default (torch.set_flush_denormal(True)
before any torch thread starts; libvae does the same); --no-flush-denormal.
--check: verifies that the masks make one step (and a 3-step flow)
autoregressive: on L=6, H=10, C=4 in float64, the Jacobian dz'/dz from
torch.autograd.functional.jacobian is triangular in the degree order, full
below the diagonal, with diagonal g, and log_det = log|det J|.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# torch_common.py sits beside this file: found even under python3 -P / -I or
# when this file is imported from elsewhere
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common as tc  # noqa: E402

GATE_SHIFT = 1.5  # lib/layers.c IAF_GATE_SHIFT: a fresh step is near z' = z
LOG_2PI = math.log(2.0 * math.pi)


# ---- data ------------------------------------------------------------------

def load_cifar_bytes(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"{path}: size {raw.size} is not a whole number of records")
    return raw.reshape(-1, 3073)[:, 1:]


def load_data(args):
    """uint8 tensors (N, 3072): train, test."""
    if args.data:
        train = np.concatenate([load_cifar_bytes(os.path.join(args.data, f"data_batch_{i}.bin"))
                                for i in range(1, 6)])
        test = load_cifar_bytes(os.path.join(args.data, "test_batch.bin"))
    else:
        rng = np.random.default_rng(args.seed)
        train = rng.integers(0, 256, size=(args.stand_in, 3072), dtype=np.uint8)
        test = rng.integers(0, 256, size=(min(args.stand_in, 10000), 3072), dtype=np.uint8)
    if args.limit > 0:
        train = train[:args.limit]
    return torch.from_numpy(np.ascontiguousarray(train)), torch.from_numpy(np.ascontiguousarray(test))


def to_float(xb_u8):
    return xb_u8.float().mul_(1.0 / 256.0)


# ---- MADE / IAF --------------------------------------------------------------

def latent_degrees(n_latent, reversed_order):
    i = torch.arange(n_latent)
    return n_latent - i if reversed_order else i + 1


def hidden_degrees(n_hidden, n_latent):
    if n_latent == 1:
        return torch.zeros(n_hidden, dtype=torch.long)
    return torch.arange(n_hidden) % (n_latent - 1) + 1


def made_masks(n_latent, n_hidden, reversed_order):
    """Masks in nn.Linear's (out, in) layout: z->hidden (H, L), hidden->out (L, H)."""
    dz = latent_degrees(n_latent, reversed_order)
    dh = hidden_degrees(n_hidden, n_latent)
    m_in = (dh[:, None] >= dz[None, :]).float()
    m_out = (dz[:, None] > dh[None, :]).float()
    return m_in, m_out


class MaskedLinear(nn.Linear):
    """nn.Linear whose weight is multiplied by a fixed 0/1 mask in forward."""

    def __init__(self, in_features, out_features, mask, bias=True):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    def __init__(self, n_latent, n_hidden, n_context, reversed_order):
        super().__init__()
        m_in, m_out = made_masks(n_latent, n_hidden, reversed_order)
        self.z = MaskedLinear(n_latent, n_hidden, m_in, bias=False)
        self.h = nn.Linear(n_context, n_hidden, bias=False)
        bound = 1.0 / math.sqrt(n_latent + n_context)
        self.b = nn.Parameter(torch.empty(n_hidden).uniform_(-bound, bound))
        self.m = MaskedLinear(n_hidden, n_latent, m_out)
        self.s = MaskedLinear(n_hidden, n_latent, m_out)

    def forward(self, z, h):
        t = torch.tanh(self.z(z) + self.h(h) + self.b)
        m, s = self.m(t), self.s(t)
        g = torch.sigmoid(s + GATE_SHIFT)
        z = g * z + (1.0 - g) * m
        return z, F.logsigmoid(s + GATE_SHIFT).sum(1)


class IAFVAE(nn.Module):
    def __init__(self, d_in=3072, d_h=500, d_z=500, flow_steps=3, iaf_hidden=500):
        super().__init__()
        self.enc = nn.Linear(d_in, d_h)
        self.mu = nn.Linear(d_h, d_z)
        self.logvar = nn.Linear(d_h, d_z)
        self.context = nn.Linear(d_h, d_h)
        self.flow = nn.ModuleList(IAFStep(d_z, iaf_hidden, d_h, i % 2 == 1)
                                  for i in range(flow_steps))
        self.dec1 = nn.Linear(d_z, d_h)
        self.dec2 = nn.Linear(d_h, d_in)

    def forward(self, x):
        h1 = torch.tanh(self.enc(x))
        mu, logvar, h = self.mu(h1), self.logvar(h1), self.context(h1)
        z0 = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        z = z0
        log_det = torch.zeros(x.shape[0], dtype=x.dtype)
        for step in self.flow:
            z, ld = step(z, h)
            log_det = log_det + ld
        logits = self.dec2(torch.tanh(self.dec1(z)))
        return logits, mu, logvar, z0, z, log_det


def neg_elbo_per_image(x, logits, mu, logvar, z0, z, log_det):
    """Vector [batch]: -log p(x|z) + log q(z|x) - log p(z), one sample."""
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    log_q0 = -0.5 * (LOG_2PI + logvar + (z0 - mu).pow(2) * torch.exp(-logvar)).sum(1)
    log_p = -0.5 * (LOG_2PI + z.pow(2)).sum(1)
    return rec + (log_q0 - log_det) - log_p


# ---- training ------------------------------------------------------------------

def train_step(model, opt, xb):
    out = model(xb)
    per_image = neg_elbo_per_image(xb, *out)
    loss = per_image.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return per_image.detach()


def train_epoch(model, opt, x_train, batch, gen, warmup_steps=0, max_batches=0, log_every=0):
    n = x_train.shape[0]
    model.train()
    for _ in range(warmup_steps):  # untimed (only used by --time-only)
        train_step(model, opt, to_float(x_train[:batch]))
    total = torch.zeros((), dtype=torch.float64)
    seen = 0
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for b, i in enumerate(range(0, n, batch)):
        if max_batches and b >= max_batches:
            break
        xb = to_float(x_train.index_select(0, perm[i:i + batch]))
        per_image = train_step(model, opt, xb)
        total += per_image.sum()
        seen += xb.shape[0]
        if log_every and (b + 1) % log_every == 0:
            print("#   batch %d loss %.2f" % (b + 1, per_image.mean().item()), flush=True)
    secs = time.perf_counter() - t0
    return secs, seen, total.item() / seen


@torch.no_grad()
def test_loss(model, x_test, batch=500):
    model.eval()
    total = 0.0
    for i in range(0, x_test.shape[0], batch):
        xb = to_float(x_test[i:i + batch])
        total += neg_elbo_per_image(xb, *model(xb)).sum().item()
    return total / x_test.shape[0]


# ---- --check: the flow really is autoregressive ------------------------------------

def check_autoregressive(n_latent=6, n_hidden=10, n_context=4, seed=0):
    torch.manual_seed(seed)
    ok = True
    dt = torch.float64

    def report(name, good, detail=""):
        nonlocal ok
        ok &= bool(good)
        print("check %-44s %s%s" % (name, "ok" if good else "FAILED", detail))

    h = torch.randn(1, n_context, dtype=dt)
    z = torch.randn(1, n_latent, dtype=dt)
    steps = []
    for rev in (0, 1):
        step = IAFStep(n_latent, n_hidden, n_context, rev == 1).to(dt)
        with torch.no_grad():  # large random weights everywhere, masked ones too
            for p in step.parameters():
                p.uniform_(-1.0, 1.0)
        steps.append(step)
        deg = latent_degrees(n_latent, rev == 1)
        jac = torch.autograd.functional.jacobian(lambda v: step(v, h)[0], z)[0, :, 0, :]
        allowed = deg[:, None] > deg[None, :]          # output j may read input i
        diag = torch.eye(n_latent, dtype=torch.bool)
        forbidden = ~(allowed | diag)
        report("step order %s: zero where deg(i) >= deg(j), i != j" % ("reversed" if rev else "natural"),
               jac[forbidden].abs().max().item() == 0.0,
               " (max |J| there %.1e)" % jac[forbidden].abs().max().item())
        report("  every deg(i) < deg(j) entry nonzero",
               (jac[allowed].abs() > 1e-12).all().item(),
               " (min |J| there %.1e)" % jac[allowed].abs().min().item())
        with torch.no_grad():
            g = torch.sigmoid(step.s(torch.tanh(step.z(z) + step.h(h) + step.b)) + GATE_SHIFT)[0]
            _, ld = step(z, h)
        report("  diagonal = g", torch.allclose(torch.diagonal(jac), g, atol=1e-12))
        sign, logabs = torch.linalg.slogdet(jac)
        report("  log_det = log|det J|", sign.item() > 0 and abs(logabs.item() - ld.item()) < 1e-10,
               " (%.12f vs %.12f)" % (ld.item(), logabs.item()))

    def flow(v):
        for st in (steps[0], steps[1], steps[0]):
            v = st(v, h)[0]
        return v

    jac = torch.autograd.functional.jacobian(flow, z)[0, :, 0, :]
    total = torch.zeros((), dtype=dt)
    v = z
    for st in (steps[0], steps[1], steps[0]):
        v, ld = st(v, h)
        total = total + ld[0]
    sign, logabs = torch.linalg.slogdet(jac)
    report("3 steps (natural, reversed, natural): log_det",
           sign.item() > 0 and abs(logabs.item() - total.item()) < 1e-10,
           " (%.12f vs %.12f)" % (total.item(), logabs.item()))
    m_in, m_out = made_masks(500, 500, False)
    print("check R3 masks (L=H=500): z->hidden keeps %d of %d, hidden->out %d of %d" % (
        int(m_in.sum()), m_in.numel(), int(m_out.sum()), m_out.numel()))
    print("check %s" % ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


# ---- main ---------------------------------------------------------------------------

def main():
    ap = tc.arg_parser(__doc__, epochs=1, batch=32, lr=1e-4)
    ap.add_argument("--data", default="",
                    help="CIFAR-10 binary folder; empty: random stand-in")
    ap.add_argument("--stand-in", type=int, default=50000,
                    help="training images of the random stand-in (no --data)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--time-only", action="store_true",
                    help="one timed epoch (training loop only), no test pass")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before --time-only")
    ap.add_argument("--max-batches", type=int, default=0,
                    help="stop each epoch after N batches (0: whole epoch)")
    ap.add_argument("--log-every", type=int, default=0, help="print the batch loss every N batches")
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--latent", type=int, default=500)
    ap.add_argument("--flow-steps", type=int, default=3)
    ap.add_argument("--iaf-hidden", type=int, default=500)
    ap.add_argument("--flush-denormal", action=argparse.BooleanOptionalAction, default=True,
                    help="torch.set_flush_denormal (FTZ/DAZ); on by default")
    ap.add_argument("--check", action="store_true",
                    help="verify the flow's triangular Jacobian and exit")
    args = ap.parse_args()

    flushed = tc.start(args)
    if args.check:
        return check_autoregressive()
    gen = torch.Generator().manual_seed(args.seed)

    x_train, x_test = load_data(args)
    model = IAFVAE(d_h=args.hidden, d_z=args.latent, flow_steps=args.flow_steps,
                   iaf_hidden=args.iaf_hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    tc.print_header(flushed, tail="; %d training images (%s), %d parameters" % (
        x_train.shape[0], args.data or "random stand-in",
        sum(p.numel() for p in model.parameters())))

    epochs = 1 if args.time_only else args.epochs
    for ep in range(1, epochs + 1):
        secs, seen, tr = train_epoch(model, opt, x_train, args.batch, gen,
                                     warmup_steps=args.warmup if args.time_only else 0,
                                     max_batches=args.max_batches, log_every=args.log_every)
        tc.print_epoch(ep, secs, seen, tr, None if args.time_only else test_loss(model, x_test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
