"""The libvae Python package over the shared library (LIBVAE_LIBRARY)."""
import ctypes
import gzip
import math
import struct

import numpy as np
import pytest

import libvae as lv
from libvae import _bindings, _ffi

A = lv.Activation
ROWS = 128


def small_graph(seed=42, features=64, latent=3):
    g = lv.Graph(seed)
    x = g.input("x", [1, 8, 8])
    h = g.layer_dense(x, 32, A.RELU, "enc")
    mu, lv_ = g.layer_gaussian_mlp(h, 0, A.NONE, latent, name="q")
    z = g.op_sample_normal(mu, lv_)
    logits = g.layer_bernoulli_mlp(z, 32, A.RELU, features, "p")
    g.elbo_build(x, mu, lv_, z, logits, lv.Likelihood.BERNOULLI, lv.Objective.ELBO, 1.0)
    return g


def data(n=ROWS, seed=0):
    """Two kinds of 8x8 binary pictures, as uint8 0/255 with labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int32)
    imgs = np.zeros((n, 1, 8, 8), np.uint8)
    imgs[labels == 0, :, :4, :] = 255
    imgs[labels == 1, :, :, :4] = 255
    flip = rng.random(imgs.shape) < 0.05
    imgs[flip] = 255 - imgs[flip]
    return imgs, labels


@pytest.fixture
def model():
    m = lv.Model(small_graph())
    yield m
    m.close()


def test_version_and_library():
    assert lv.version() == lv.__version__ == "0.4.0" and lv.version_number() >= 400
    assert lv.strerror(lv.Status.SHAPE) and isinstance(lv.blas_info(), str)
    assert lv.blas_env_hint() is None or "=" in lv.blas_env_hint()
    assert isinstance(lv.last_error(), str)


def test_train_loss_falls_and_history(model):
    imgs, labels = data()
    ds = lv.Dataset.from_numpy(imgs, labels)
    model.optimizer = lv.Optimizer(model, lv.OptimizerKind.ADAM, learning_rate=3e-3)
    first = model.evaluate(ds)
    calls = []
    for _ in range(15):
        obj, nelbo = model.train_epoch(ds, 32, progress=lambda d, c, o: calls.append((d, c)))
        assert math.isfinite(obj) and math.isfinite(nelbo)
    assert model.evaluate(ds) < first - 5
    assert calls[-1] == (4, 4) and model.epoch == 15 and model.epoch_position == 0
    assert model.epoch_batch == 0
    h = model.history
    assert len(h["train_nelbo"]) == 15 and h["train_nelbo"][-1] < h["train_nelbo"][0]
    model.history_set(2, "test_loss", 1.5)
    assert model.history_get(2, "test_loss") == 1.5 and math.isnan(model.history["test_loss"][0])
    model.history_clear()
    assert model.history == {}
    obj, nelbo = model.train_step(imgs[:16] / 255.0)  # float64: converted once
    assert math.isfinite(obj)
    nelbo, recon, kl, per = model.evaluate_terms(ds, per_image=True)
    assert abs(recon + kl - nelbo) < 1e-3 and per.shape == (ROWS,) and per.dtype == np.float32
    assert model.evaluate_terms(ds)[0] == pytest.approx(nelbo)
    ll, per = model.log_likelihood(ds, 8, seed=3, per_image=True)
    assert ll < 0 and per.shape == (ROWS,)
    steps = []
    assert model.log_likelihood(ds, 4, 1, progress=lambda d, c, v: steps.append(d)) < 0
    assert steps[-1] == ROWS


def test_shapes_dtypes_and_sampling(model):
    imgs, _ = data(10)
    for x in (imgs / 255.0, (imgs / 255.0).reshape(10, 64), (imgs / 255.0).astype(np.float32)):
        mu, logvar = model.encode(x)
        assert mu.shape == logvar.shape == (10, 3) and mu.dtype == np.float32
    strided = np.asfortranarray((imgs / 255.0).reshape(10, 64))
    assert np.allclose(model.encode(strided)[0], mu, atol=1e-6)
    z = model.encode_latent(imgs / 255.0)
    assert np.allclose(z, mu)
    dec = model.decode(z)
    assert dec.shape == (10, 1, 8, 8) and dec.dtype == np.float32 and (0 <= dec).all() and (dec <= 1).all()
    draw = model.decode_sample(z, seed=5)
    assert set(np.unique(draw)) <= {0.0, 1.0}
    assert np.array_equal(draw, model.decode_sample(z, seed=5))
    assert model.reconstruct(imgs / 255.0).shape == (10, 1, 8, 8)
    s = model.sample(7, seed=1)
    assert s.shape == (7, 1, 8, 8) and np.array_equal(s, model.sample(7, seed=1))
    assert model.input_size == 64 and model.latent_size == 3 and model.input_dims == (1, 8, 8)


def test_bad_arguments_raise(model):
    with pytest.raises(lv.ShapeError) as e:
        model.encode(np.zeros((4, 63)))
    assert e.value.status == lv.Status.SHAPE and "64" in str(e.value)
    with pytest.raises(lv.ShapeError):
        model.decode(np.zeros(3))  # no row dimension
    with pytest.raises(lv.ArgumentError):
        model.encode(np.array([[None] * 64], dtype=object))
    with pytest.raises(lv.NotFiniteError):
        model.encode(np.full((2, 64), np.nan))
    with pytest.raises(lv.NotFiniteError):
        model.params = np.full(model.param_count, np.inf)
    with pytest.raises(lv.ArgumentError) as e:  # from the library: pixels outside [0, 1]
        model.train_step(np.full((2, 64), 3.0))
    assert e.value.status == lv.Status.ARGUMENT and e.value.message
    with pytest.raises(lv.ShapeError):  # more rows than the maximum batch
        model.max_batch = 4
        model.train_step(np.zeros((5, 64)))
    with pytest.raises(lv.ArgumentError):
        model.threads = 0
    with pytest.raises(lv.FileError) as e:
        lv.Model.load("/nonexistent/model.vae")
    assert e.value.status == lv.Status.IO and "/nonexistent" in e.value.message
    with pytest.raises(lv.ArgumentError):
        lv.Dataset.from_numpy(np.zeros((3, 4), np.uint8), labels=np.array([1, 2, None]))
    with pytest.raises(lv.LibvaeError):
        lv.Graph().layer_dense(99, 4)
    assert issubclass(lv.FileError, OSError) and issubclass(lv.OutOfMemoryError, MemoryError)


def test_progress_exception_propagates(model):
    ds = lv.Dataset.from_numpy(data()[0])

    class Boom(Exception):
        pass

    def progress(done, count, objective):
        if done == 2:
            raise Boom("stop at 2")

    with pytest.raises(Boom, match="stop at 2") as e:
        model.train_epoch(ds, 16, progress)
    assert any(f.name == "progress" for f in e.traceback)
    assert model.epoch_position == 2 and model.epoch_batch == 16
    with pytest.raises(lv.StoppedError):
        model.train_epoch(ds, 16, lambda d, c, o: True)
    model.train_epoch(ds, 16)  # continues the epoch
    assert model.epoch == 1
    with pytest.raises(Boom):
        model.log_likelihood(ds, 2, progress=lambda d, c, v: (_ for _ in ()).throw(Boom()))


def test_ownership():
    g = small_graph()
    m = lv.Model(g)
    with pytest.raises(lv.StateError, match="belongs to a Model"):
        g.input("y", [3])
    with pytest.raises(lv.StateError):
        lv.Model(g)
    g.close()  # frees nothing
    view = m.graph
    assert view.role(lv.Role.INPUT) == view.find("x") >= 0
    with pytest.raises(lv.StateError):  # the library refuses additions to a model's graph
        view.input("y", [3])
    opt, clone = lv.Optimizer(m), m.clone()
    m.close()
    for obj, call in ((m, lambda: m.encode(np.zeros((1, 64)))), (opt, lambda: opt.rate),
                      (clone, lambda: clone.sample(1))):
        with pytest.raises(lv.StateError, match="closed"):
            call()
    free_g = lv.Graph(1)
    free_g.input("x", [2])
    with free_g:
        pass
    with pytest.raises(lv.StateError):
        free_g.node_count


def test_save_load_round_trip(model, tmp_path):
    imgs, _ = data()
    ds = lv.Dataset.from_numpy(imgs)
    model.train_epoch(ds, 32)
    model.set_metadata("note", "hello")
    model.beta = 0.5
    path = tmp_path / "m.vae"
    model.save(path, optimizer=True)
    steps = model.optimizer.steps
    with lv.Model.load(path) as m2:
        x = imgs[:9] / 255.0
        assert np.array_equal(m2.encode(x)[0], model.encode(x)[0])
        assert np.array_equal(m2.sample(4, 2), model.sample(4, 2))
        assert np.array_equal(m2.params, model.params)
        assert m2.metadata("note") == "hello" and m2.beta == 0.5
        assert m2.file_format == 2 and m2.file_writer == lv.version() and m2.epoch == 1
        assert m2.has_training_state
        opt = m2.optimizer  # restored
        assert opt.steps == steps and not m2.has_training_state
        m2.train_epoch(ds, 32)
    with lv.Model.from_bytes(path.read_bytes()) as m4:  # the same file, from memory
        assert np.array_equal(m4.params, model.params) and m4.has_training_state
    with pytest.raises(lv.FileError, match="truncated"):
        lv.Model.from_bytes(path.read_bytes()[:-9])
    m3 = lv.Model.load(path)
    m3.save(tmp_path / "plain.vae")
    assert not lv.Model.load(tmp_path / "plain.vae").has_training_state
    model.set_metadata("note", None)
    assert model.metadata("note") is None


def test_params_freeze_settings(model):
    p = model.params
    assert p.shape == (model.param_count,) and p.dtype == np.float32
    model.params = p * 0.5
    assert np.allclose(model.params, p * 0.5)
    w = model.param("enc.w")
    assert w.shape == (64, 32)
    model.set_param("enc.b", np.arange(32))
    assert np.array_equal(model.param("enc.b"), np.arange(32, dtype=np.float32))
    with pytest.raises(lv.ArgumentError):
        model.param("nope")
    assert model.freeze("enc") == 2 and model.param_frozen("enc.w") is True
    assert model.param_frozen("nope") is None
    model.freeze("enc", False)
    assert model.param_frozen("enc.w") is False
    model.max_batch, model.threads, model.memory_limit = 64, 2, 1 << 28
    assert (model.max_batch, model.threads, model.memory_limit) == (64, 2, 1 << 28)
    model.sample(2)
    assert model.planned_bytes > 0 and "Parameters" in model.summary()
    assert model.beta == 1.0 and model.file_format == 0 and model.file_writer is None


def test_optimizer_options(model):
    O = lv.OptimizerOption
    opt = lv.Optimizer(model, lv.OptimizerKind.SGD, learning_rate=0.01, momentum=0.5)
    assert opt.kind == lv.OptimizerKind.SGD and opt.get(O.MOMENTUM) == 0.5
    with pytest.raises(lv.ArgumentError):
        opt.get(O.BETA1)
    adam = lv.Optimizer(model)
    for o, v in ((O.BETA1, 0.8), (O.BETA2, 0.99), (O.EPSILON, 1e-6), (O.CLIP_NORM, 5.0),
                 (O.WEIGHT_DECAY, 1e-4), (O.SCHEDULE, lv.LrSchedule.COSINE),
                 (O.SCHEDULE_STEPS, 10), (O.SCHEDULE_GAMMA, 0.5), (O.MIN_RATE, 1e-5),
                 (O.WARMUP_STEPS, 2)):
        adam.set(o, v)
        assert adam.get(o) == pytest.approx(v)
    rms = lv.Optimizer(model, lv.OptimizerKind.RMSPROP, rho=0.8)
    assert rms.get(O.RHO) == pytest.approx(0.8)
    assert adam.steps == 0 and adam.rate == pytest.approx(1e-3 / 2)
    model.train_step(np.zeros((2, 64)), optimizer=adam)
    assert adam.steps == 1
    with pytest.raises(lv.StateError):
        lv.Optimizer.restore(model)


def test_dataset(tmp_path):
    imgs, labels = data(20)
    ds = lv.Dataset.from_numpy(imgs, labels)
    assert len(ds) == ds.count == 20 and ds.row_dims == (1, 8, 8) and ds.row_size == 64
    assert ds.has_labels and ds.label(3) == labels[3] and np.array_equal(ds.labels, labels)
    rows = ds.get(2, 3)
    assert rows.shape == (3, 1, 8, 8) and np.allclose(rows, imgs[2:5] / 255.0)
    v = ds.view(5, 10)
    assert len(v) == 10 and np.array_equal(v.get(), ds.get(5, 10))
    tr, va = ds.split(0.25, seed=1)
    assert (len(tr), len(va)) == (15, 5)
    ds.close()
    with pytest.raises(lv.StateError):
        len(v)  # views close with the data set they borrow
    f = lv.Dataset.from_numpy(np.linspace(0, 1, 30).reshape(10, 3))
    assert f.labels is None and np.allclose(f.get()[:, 0], np.linspace(0, 1, 30)[::3])
    f.truncate(4)
    assert len(f) == 4
    with pytest.raises(lv.NotFiniteError):
        lv.Dataset.from_numpy(np.array([[np.nan, 1.0]]))
    with pytest.raises(lv.ShapeError):
        lv.Dataset.from_numpy(np.zeros(5))
    # an idx file (gzip) with labels
    ip, lp = tmp_path / "img.idx.gz", tmp_path / "lab.idx"
    with gzip.open(ip, "wb") as fh:
        fh.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 20, 8, 8) + imgs.tobytes())
    lp.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 20) + labels.astype(np.uint8).tobytes())
    idx = lv.Dataset.load_idx(ip, lp)
    assert idx.row_dims == (8, 8) and np.array_equal(idx.labels, labels)
    with pytest.raises(lv.FileError) as e:
        lv.Dataset.load_cifar10(tmp_path, train=False)
    assert e.value.status == lv.Status.IO


def test_tensor():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    with lv.Tensor.from_numpy(a) as t:
        assert t.shape == (2, 3) and t.size == 6 and len(t) == 2 and t.address
        assert np.array_equal(t.numpy(), a.astype(np.float32))
        t.update(np.ones(6))
        assert (t.numpy() == 1).all()
        with pytest.raises(lv.ShapeError):
            t.update(np.ones(5))
    z = lv.Tensor((2, 2))
    assert (z.numpy() == 0).all()


def test_every_operation_and_introspection():
    g = lv.Graph(3)
    x = g.input("x", [1, 8, 8])
    w = g.param("w", [4, 9], 0.1)
    c = g.op_conv2d(x, w, 3, 1, lv.Padding.SAME)
    c = g.op_bias(c, g.param("cb", [4], 0.0))
    wt = g.param("wt", [4, 9], 0.1)
    t = g.op_conv2d_transpose(c, wt, 3, 1, lv.Padding.SAME)
    assert g.node_dims(t) == (1, 8, 8)
    r = g.op_reshape(t, [64])
    h = g.op_matmul(r, g.param("m", [64, 16], 0.1))
    for name in ("relu", "tanh", "sigmoid", "softplus"):
        h = getattr(g, "op_" + name)(h)
    h = g.op_leaky_relu(h, 0.1)
    h = g.op_activation(h, A.TANH)
    h = g.op_scale(g.op_mul(g.op_add(h, h), h), 0.5)
    cat = g.op_concat(h, h)
    assert g.node_size(cat) == 32
    mu, logvar, ctx = g.layer_gaussian_mlp(cat, 8, A.RELU, 4, context=5, name="q")
    z0 = g.op_sample_normal(mu, logvar)
    z1, ld1 = g.layer_iaf_step(z0, 6, h=ctx, reversed=False, name="iaf0")
    z2, ld2 = g.layer_iaf_step(z1, 6, reversed=True, name="iaf1")
    mw = g.param("made", [4, 4], 0.1)
    g.op_made_matmul(z2, mw, lv.MadeMask.INPUT_TO_HIDDEN, False)
    g.op_normal_logpdf(z2)
    g.op_gaussian_loglik(z2, mu, -1, 0.0)
    g.op_sum(g.op_kl_std_normal(mu, logvar))
    g.op_batch_mean(g.op_mean(z2))
    d = g.layer_dense(z2, 64, A.RELU, "dec")
    d = g.op_reshape(d, [4, 4, 4])
    logits = g.op_reshape(g.layer_conv2d_transpose(d, 1, 3, 2, lv.Padding.SAME, A.NONE, "dct"), [1, 8, 8])
    g.layer_conv2d(x, 2, 3, 2, lv.Padding.VALID, A.RELU, "conv")
    g.op_bce_logits(logits, x)
    obj = g.elbo_build_flow(x, mu, logvar, z0, z2, g.op_add(ld1, ld2), logits,
                            lv.Likelihood.GAUSSIAN_LEARNED, lv.Objective.PIXEL_MEAN, 1.0)
    assert g.node_role(obj) == lv.Role.OBJECTIVE and g.role(lv.Role.LATENT) == z2
    g.set_role(lv.Role.LATENT, z2)
    assert g.node_kind(x) == lv.NodeKind.INPUT and g.node_kind(w) == lv.NodeKind.PARAM
    assert g.node_name(w) == "w" and g.node_op(c) == "bias" and g.node_inputs(c)[0] >= 0
    assert g.node_batched(x) and not g.node_batched(w) and g.node_role(w) is None
    assert g.find("nope") == -1 and len(g) == g.node_count > 30
    assert "digraph" in g.dot()
    m = lv.Model(g)
    assert m.decode(np.zeros((2, 4))).shape == (2, 1, 8, 8)
    assert m.encode_latent(np.zeros((2, 64))).shape == (2, 4)


def test_log_callback(model):
    got = []
    lv.set_log_level(lv.LogLevel.DEBUG)
    lv.set_log_callback(lambda level, msg: got.append((level, msg)))
    try:
        lv.Model.load(__file__).close()
    except lv.FileError:
        pass
    model.sample(1)
    lv.set_log_callback(None)
    lv.set_log_level(lv.LogLevel.WARNING)
    assert all(isinstance(l, lv.LogLevel) and isinstance(m, str) for l, m in got)


def test_comm_one_rank(model):
    """The communicator calls in this file too (test_comm.py has the ranks)."""
    with lv.Comm(0, 1, sum=lambda a: None, broadcast=lambda a, root: None,
                 reduce_scatter=lambda a: None, allgather=lambda a: None) as c:
        assert (c.rank, c.size) == (0, 1)
        assert not c.sharded and c.part(10) == (0, 10)  # one rank: nothing to shard
        model.set_comm(c)
        assert model.comm is c and model.checksum() == model.checksum() != 0
        model.comm_check(optimizer=True)
        c.agree()
        assert c.broadcast(np.arange(4.0)).tolist() == [0, 1, 2, 3]
    assert model.comm is None
    with pytest.raises(lv.CommError) as e:  # the status's class
        raise lv.errors.error_for(lv.Status.COMM, "rank 1 of 2 failed")
    assert e.value.status == lv.Status.COMM and issubclass(lv.CommError, RuntimeError)


def test_zz_every_binding_called():
    """Runs last: every function of the table was called by the tests above."""
    missing = sorted(set(_bindings.TABLE) - _ffi.called)
    assert not missing, "bindings never called: %s" % missing
