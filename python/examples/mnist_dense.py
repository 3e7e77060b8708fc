#!/usr/bin/python3
"""Reference run R1 from Python: the network and defaults of the C program
vae-mnist-dense (examples/mnist_dense.c, examples/nets.c, examples/app.c).

A dense VAE on MNIST: three ReLU hidden layers 512-256-128 mirrored in the
decoder, a 2-D latent, Bernoulli likelihood (BCE) + KL, Adam with learning
rate 1e-3, batches of 128, 25 epochs, seed 42.  Writes into --out the
pictures the C program draws (with matplotlib): loss.png, latent_scatter.png,
decoded_0_2.5.png, latent_grid.png, reconstructions.png, samples.png, and
latent.csv, metrics.csv and last.vae.  Prints each epoch's time and images/s.

    LIBVAE_LIBRARY=build/libvae.so PYTHONPATH=python \\
        /usr/bin/python3 python/examples/mnist_dense.py --data /tmp/mnist --out out/py-r1

With the same --seed and --threads the weights are those of
`vae-mnist-dense --data DIR --threads N`, bit for bit
(tests/python/test_parity.py).
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    import libvae as lv
except ImportError:  # run from a source tree without PYTHONPATH
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import libvae as lv

A = lv.Activation

# examples/mnist_dense.c and ex_options_init (examples/common/cli.c)
DEFAULTS = dict(data="data/mnist", out="out/mnist-dense", epochs=25, batch=128,
                hidden=(512, 256, 128), latent=2, lr=1e-3, seed=42, limit=0,
                threads=os.cpu_count() or 1)


def build_graph(dims, hidden=DEFAULTS["hidden"], latent=DEFAULTS["latent"], seed=DEFAULTS["seed"],
                likelihood=lv.Likelihood.BERNOULLI, objective=lv.Objective.ELBO, beta=1.0):
    """The graph of vae-mnist-dense (app.c build_graph with nets.c's dense
    encoder and decoder, no flow): input "x" of dims (C, H, W), dense ReLU
    layers "encoder.N", the "latent" heads, a sample, "decoder.N" mirrored,
    "decoder.logits", and the ELBO."""
    g = lv.Graph(seed=seed)
    x = g.input("x", list(dims))
    t = x
    for i, units in enumerate(hidden):
        t = g.layer_dense(t, units, A.RELU, "encoder.%d" % i)
    mu, logvar = g.layer_gaussian_mlp(t, 0, A.NONE, latent, 0, "latent")
    z = g.op_sample_normal(mu, logvar)
    t = z
    for i in reversed(range(len(hidden))):
        t = g.layer_dense(t, hidden[i], A.RELU, "decoder.%d" % i)
    logits = g.layer_dense(t, g.node_size(x), A.NONE, "decoder.logits")
    g.elbo_build(x, mu, logvar, z, logits, likelihood, objective, beta)
    return g


def load_data(directory):
    """(train, test) from MNIST-style idx files (plain or .gz), as the C program."""
    def path(name):
        p = os.path.join(directory, name)
        return p if os.path.exists(p) or not os.path.exists(p + ".gz") else p + ".gz"
    split = lambda prefix: lv.Dataset.load_idx(path(prefix + "-images-idx3-ubyte"),
                                               path(prefix + "-labels-idx1-ubyte"))
    return split("train"), split("t10k")


def make_model(train, hidden, latent, seed, lr, batch, threads):
    """Model and optimizer set up as app.c does: batch clamped to the
    training set, max_batch max(batch, min(n, 256)), threads, Adam with the
    learning rate and a constant schedule.  -> (model, optimizer, batch)."""
    dims = train.row_dims
    if len(dims) == 2:
        dims = (1,) + tuple(dims)
    model = lv.Model(build_graph(dims, hidden, latent, seed))
    n = len(train)
    batch = min(batch, n)
    model.max_batch = max(batch, min(n, 256))
    model.threads = threads
    opt = lv.Optimizer(model, lv.OptimizerKind.ADAM, learning_rate=lr)
    O = lv.OptimizerOption
    opt.set(O.SCHEDULE, lv.LrSchedule.CONSTANT)
    opt.set(O.SCHEDULE_GAMMA, 0.1)
    opt.set(O.MIN_RATE, 0.0)
    opt.set(O.WARMUP_STEPS, 0)
    opt.set(O.WEIGHT_DECAY, 0.0)
    model.optimizer = opt
    return model, opt, batch


def train(model, opt, train_set, test_set, batch, epochs, out=None, quiet=False):
    """Trains `epochs` epochs; after each records train_nelbo, test_loss,
    seconds and images/s in the history, prints a line and (with out) saves
    last.vae and metrics.csv.  The timing covers train_epoch alone."""
    for epoch in range(model.epoch + 1, epochs + 1):
        model.beta = 1.0
        start = time.perf_counter()
        _, train_nelbo = model.train_epoch(train_set, batch)
        seconds = time.perf_counter() - start
        ips = len(train_set) / seconds
        test_loss, recon, kl = model.evaluate_terms(test_set)
        for column, value in (("train_nelbo", train_nelbo), ("test_loss", test_loss),
                              ("test_recon", recon), ("test_kl", kl), ("seconds", seconds),
                              ("images_per_s", ips)):
            model.history_set(epoch, column, value)
        if not quiet:
            print("epoch %d/%d  %.2f s  %.0f images/s  train %.3f  test %.3f nats"
                  % (epoch, epochs, seconds, ips, train_nelbo, test_loss), flush=True)
        if out:
            write_metrics(model, os.path.join(out, "metrics.csv"))
            model.save(os.path.join(out, "last.vae"), optimizer=opt)


def write_metrics(model, path):
    h = model.history
    cols = list(h)
    with open(path, "w") as f:
        f.write("epoch," + ",".join(cols) + "\n")
        for e in range(len(h[cols[0]]) if cols else 0):
            f.write("%d," % (e + 1) + ",".join("%.6g" % h[c][e] for c in cols) + "\n")


# ---- pictures ----

def _grid(images, cols, gap=2, background=1.0):
    """(n, H, W) images in [0, 1] -> one array of rows of `cols`, with gaps."""
    n, hgt, wid = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * (hgt + gap) - gap, cols * (wid + gap) - gap), background, np.float32)
    for k in range(n):
        i, j = divmod(k, cols)
        out[i * (hgt + gap):i * (hgt + gap) + hgt, j * (wid + gap):j * (wid + gap) + wid] = images[k]
    return out


def _save_image(plt, path, array, scale):
    fig = plt.figure(figsize=(array.shape[1] * scale / 100, array.shape[0] * scale / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    fig.savefig(path)
    plt.close(fig)


def draw_all(model, test_set, out, seed):
    """The C program's pictures (app_draw.c) and latent.csv."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    h = model.history
    epochs = np.arange(1, model.epoch + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(epochs, h["train_nelbo"], "o-", label="train")
    ax.plot(epochs, h["test_loss"], "s-", label="test")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("nats")
    ax.set_title("negative ELBO per image")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"))
    plt.close(fig)

    hw = model.input_dims[-2:]
    x = test_set.get(0, min(40, len(test_set)))
    y = model.reconstruct(x)
    rows = []
    for i in range(0, len(x), 10):
        rows += [x[i:i + 10].reshape(-1, *hw), y[i:i + 10].reshape(-1, *hw)]
    pics = np.concatenate([np.pad(r, ((0, 10 - len(r)), (0, 0), (0, 0)), constant_values=1.0)
                           for r in rows])
    _save_image(plt, os.path.join(out, "reconstructions.png"), _grid(pics, 10), 2)
    _save_image(plt, os.path.join(out, "samples.png"),
                _grid(model.sample(100, seed=seed).reshape(-1, *hw), 10), 2)

    mu = model.encode_latent(test_set.get())
    labels = test_set.labels if test_set.has_labels else np.zeros(len(test_set), np.int32)
    with open(os.path.join(out, "latent.csv"), "w") as f:
        f.write("label," + ",".join("z%d" % j for j in range(mu.shape[1])) + "\n")
        for lab, row in zip(labels, mu):
            f.write("%d," % lab + ",".join("%.5f" % v for v in row) + "\n")
    if model.latent_size != 2:
        return
    fig, ax = plt.subplots(figsize=(7, 6))
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="label")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("test set: latent means by label")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latent_scatter.png"))
    plt.close(fig)

    _save_image(plt, os.path.join(out, "decoded_0_2.5.png"),
                model.decode(np.array([[0.0, 2.5]], np.float32)).reshape(*hw), 8)
    n = 30
    axis = np.linspace(-4.0, 4.0, n)
    z = np.array([[axis[j], axis[n - 1 - i]] for i in range(n) for j in range(n)], np.float32)
    _save_image(plt, os.path.join(out, "latent_grid.png"),
                _grid(model.decode(z).reshape(-1, *hw), n, gap=0), 1)


def main(argv=None):
    d = DEFAULTS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=d["data"], help="directory of MNIST idx files")
    p.add_argument("--out", default=d["out"], help="directory for the pictures and models")
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--batch", type=int, default=d["batch"])
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--threads", type=int, default=d["threads"])
    p.add_argument("--limit", type=int, default=d["limit"], help="first N training images (0: all)")
    a = p.parse_args(argv)
    if a.epochs < 0 or a.batch < 1 or a.threads < 1 or a.limit < 0:
        p.error("--epochs and --limit must be >= 0, --batch and --threads >= 1")

    os.makedirs(a.out, exist_ok=True)
    train_set, test_set = load_data(a.data)
    if 0 < a.limit < len(train_set):
        train_set.truncate(a.limit)
    model, opt, batch = make_model(train_set, d["hidden"], d["latent"], a.seed, d["lr"], a.batch,
                                   a.threads)
    print("mnist_dense.py: %d training images of %s, %d parameters, %d threads, %s"
          % (len(train_set), "x".join(map(str, model.input_dims)), model.param_count,
             a.threads, lv.blas_info()), flush=True)
    train(model, opt, train_set, test_set, batch, a.epochs, out=a.out)
    draw_all(model, test_set, a.out, a.seed)
    print("pictures and metrics are in %s/" % a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
