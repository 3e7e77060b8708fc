"""Python and the C program vae-mnist-dense agree: the same network and seed
trained from Python and by the program give the same weights bit for bit,
and a model the program saved encodes the test set, from Python, to the
means of its latent.csv.  Needs VAE_EXAMPLES_DIR (set by CMake for
test_python) naming the directory with the built vae-mnist-dense."""
import csv
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import libvae as lv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES_DIR = os.environ.get("VAE_EXAMPLES_DIR")
PROGRAM = os.path.join(EXAMPLES_DIR or "", "vae-mnist-dense")

pytestmark = pytest.mark.skipif(
    not EXAMPLES_DIR or not os.access(PROGRAM, os.X_OK),
    reason="VAE_EXAMPLES_DIR is unset or has no vae-mnist-dense "
           "(ctest sets it when the examples are built)")

# A small run: the C program's flags and the Python side's settings.
HIDDEN, LATENT, BATCH, SEED, EPOCHS, N_TRAIN, N_TEST = (64, 32), 2, 50, 7, 1, 230, 60


def _example():
    spec = importlib.util.spec_from_file_location(
        "mnist_dense_example", os.path.join(ROOT, "python", "examples", "mnist_dense.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def c_run(tmp_path_factory):
    """Small idx files and the C program's run on them -> (data dir, out dir)."""
    base = tmp_path_factory.mktemp("parity")
    data, out = base / "data", base / "c-out"
    data.mkdir()
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "make_idx.py"), str(data),
                    str(N_TRAIN), str(N_TEST)], check=True)
    env = dict(os.environ)
    # The program would restart itself with a BLAS kernel hint (only on some
    # CPUs): keep the kernels this process has, as the library is
    # deterministic for the same kernels, seed and thread count.
    env["VAE_REEXECED"] = "1"
    cmd = [PROGRAM, "--data", str(data), "--epochs", str(EPOCHS),
           "--hidden", ",".join(map(str, HIDDEN)), "--latent", str(LATENT),
           "--batch", str(BATCH), "--seed", str(SEED), "--threads", "1", "--quiet",
           "--out", str(out)]
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, "%s\n%s\n%s" % (" ".join(cmd), r.stdout, r.stderr)
    assert (out / "last.vae").exists() and (out / "latent.csv").exists()
    return data, out


def test_same_weights_as_c(c_run):
    data, out = c_run
    ex = _example()
    train, test = ex.load_data(str(data))
    with train, test:
        model, opt, batch = ex.make_model(train, HIDDEN, LATENT, SEED, 1e-3, BATCH, threads=1)
        with model:
            assert batch == BATCH and model.max_batch == 230
            ex.train(model, opt, train, test, batch, EPOCHS, quiet=True)
            with lv.Model.load(str(out / "last.vae")) as c_model:
                assert c_model.epoch == model.epoch == EPOCHS
                assert c_model.param_count == model.param_count
                g, cg = model.graph, c_model.graph
                names = [g.node_name(i) for i in range(len(g))]
                assert names == [cg.node_name(i) for i in range(len(cg))]
                for i, name in enumerate(names):
                    assert g.node_op(i) == cg.node_op(i), name
                    assert g.node_dims(i) == cg.node_dims(i), name
                params = [n for i, n in enumerate(names) if g.node_kind(i) == lv.NodeKind.PARAM]
                assert len(params) == 2 * (2 * len(HIDDEN) + 3)  # w, b of every dense layer
                for name in params:
                    a, b = model.param(name), c_model.param(name)
                    assert a.dtype == b.dtype == np.float32
                    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), \
                        "%s differs: max |diff| %g" % (name, np.abs(a - b).max())
                assert np.array_equal(model.params.view(np.uint32),
                                      c_model.params.view(np.uint32))
                # the training state too: the same optimizer steps
                assert c_model.optimizer.steps == opt.steps == -(-N_TRAIN // BATCH)


def test_c_model_encodes_like_latent_csv(c_run):
    data, out = c_run
    with open(out / "latent.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label"] + ["z%d" % j for j in range(LATENT)]
    labels = np.array([int(r[0]) for r in rows[1:]])
    means = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    with lv.Model.load(str(out / "last.vae")) as model, \
            lv.Dataset.load_idx(str(data / "t10k-images-idx3-ubyte"),
                                str(data / "t10k-labels-idx1-ubyte")) as test:
        assert len(test) == N_TEST == len(rows) - 1
        mu, _ = model.encode(test.get())
        mu_latent = model.encode_latent(test.get())
        assert np.array_equal(mu, mu_latent)  # no flow: the latent point is the mean
        assert np.array_equal(labels, test.labels)
    assert mu.shape == means.shape
    assert np.abs(np.round(mu.astype(np.float64), 5) - means).max() <= 1e-5
