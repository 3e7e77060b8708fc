"""Model and Optimizer (vae_model_*, vae_optimizer_*)."""
import ctypes as C
import math
import weakref

import numpy as np

from ._ffi import fn
from ._util import Progress, Tensor, c_str, float32_array, fptr, py_str, rows
from .enums import OptimizerKind, OptimizerOption, Role, Status
from .errors import ShapeError, StateError
from .graph import Graph, text_query


class _Handle:
    """Owns one C handle; close() frees dependants (clones, optimizers) first."""
    _free = None

    def _init(self, h, parent=None):
        self._h, self._deps, self._parent = h, weakref.WeakSet(), parent
        if parent is not None:
            parent._deps.add(self)

    @property
    def handle(self):
        if getattr(self, "_h", None) is None:
            raise StateError(Status.STATE, "this %s was closed (or the model it belongs to was)"
                             % type(self).__name__)
        return self._h

    def close(self):
        for d in list(getattr(self, "_deps", ())):
            d.close()
        h, self._h = getattr(self, "_h", None), None
        if h is not None:
            type(self)._free(h)

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Model(_Handle):
    """A model made from a Graph (which it takes over) or loaded from a file.

    Arrays in: any numeric dtype and layout; non-float32 or non-contiguous
    input is converted once to C-contiguous float32, and the library copies
    it once more into its own tensor.  Arrays out are new float32 arrays.
    The optimizer used by train_step/train_epoch when none is given is
    self.optimizer: restored from the file if it holds a training state,
    else a new Adam optimizer (made on first use)."""
    _free = staticmethod(fn.model_free)

    def __init__(self, graph):
        h = C.c_void_p()
        fn.model_create(C.byref(h), graph.handle)
        graph._give_away()
        self._setup(h)

    def _setup(self, h, parent=None):
        self._init(h, parent)
        self._optimizer, self._max_batch, self._threads = None, 256, 1
        self._comm = None
        g = self.graph
        self.input_dims = g.node_dims(g.role(Role.INPUT))

    @classmethod
    def load(cls, path):
        """Reads a model file (format 1 or 2)."""
        h = C.c_void_p()
        fn.model_load(C.byref(h), c_str(str(path)))
        m = cls.__new__(cls)
        m._setup(h)
        return m

    @classmethod
    def from_bytes(cls, data):
        """A model from the bytes of a model file (bytes, bytearray or
        memoryview), as load reads them from a file."""
        buf = bytes(data)
        h = C.c_void_p()
        fn.model_load_from_memory(C.byref(h), buf, len(buf))
        m = cls.__new__(cls)
        m._setup(h)
        return m

    def save(self, path, optimizer=None):
        """Writes the model; with an optimizer (or True: self.optimizer),
        the training state too, so a loaded copy resumes."""
        if optimizer is True:
            optimizer = self.optimizer
        fn.model_save(self.handle, optimizer.handle if optimizer else None, c_str(str(path)))

    def clone(self):
        """A read-only model sharing the weights, for another thread; closed
        before this model is."""
        h = C.c_void_p()
        fn.model_clone(C.byref(h), self.handle)
        m = Model.__new__(Model)
        m._setup(h, parent=self)
        return m

    @property
    def graph(self):
        """The model's graph, read-only and borrowed (valid while the model is)."""
        return Graph._borrowed(fn.model_graph(self.handle), owner=self)

    # ---- settings ----
    @property
    def max_batch(self):
        """Rows per pass (default 256); the value last set from Python."""
        return self._max_batch

    @max_batch.setter
    def max_batch(self, n):
        fn.model_set_max_batch(self.handle, n)
        self._max_batch = n

    @property
    def threads(self):
        """Worker threads (default 1); the value last set from Python."""
        return self._threads

    @threads.setter
    def threads(self, n):
        fn.model_set_threads(self.handle, n)
        self._threads = n

    @property
    def memory_limit(self):
        return fn.model_memory_limit(self.handle)

    @memory_limit.setter
    def memory_limit(self, nbytes):
        fn.model_set_memory_limit(self.handle, nbytes)

    @property
    def beta(self):
        """The KL weight (NaN for graphs without a weighted-KL node)."""
        return fn.model_beta(self.handle)

    @beta.setter
    def beta(self, value):
        fn.model_set_beta(self.handle, value)

    # ---- sizes and state ----
    input_size = property(lambda self: fn.model_input_size(self.handle))
    latent_size = property(lambda self: fn.model_latent_size(self.handle))
    param_count = property(lambda self: fn.model_param_count(self.handle))
    planned_bytes = property(lambda self: fn.model_planned_bytes(self.handle))
    epoch = property(lambda self: fn.model_epoch(self.handle), doc="Completed epochs.")
    epoch_position = property(lambda self: fn.model_epoch_position(self.handle))
    epoch_batch = property(lambda self: fn.model_epoch_batch(self.handle))
    has_training_state = property(lambda self: bool(fn.model_has_training_state(self.handle)))
    file_format = property(lambda self: fn.model_file_format(self.handle))
    file_writer = property(lambda self: py_str(fn.model_file_writer(self.handle)))

    def summary(self):
        """A Keras-style table of layers, shapes and parameter counts."""
        return text_query(fn.model_summary, self.handle)

    # ---- running ----
    def _x(self, x):
        return rows(x, self.input_size, "x")

    def _z(self, z):
        return rows(z, self.latent_size, "z")

    def _run(self, func, inp, out_shape, *extra):
        with Tensor.from_numpy(inp) as ti, Tensor(out_shape) as to:
            func(self.handle, ti.handle, *extra, to.handle)
            return to.numpy()

    def encode(self, x):
        """x (n, *input_dims) or (n, features) -> (mu, logvar), each (n, latent)."""
        x = self._x(x)
        shape = (x.shape[0], self.latent_size)
        with Tensor.from_numpy(x) as tx, Tensor(shape) as mu, Tensor(shape) as lv:
            fn.model_encode(self.handle, tx.handle, mu.handle, lv.handle)
            return mu.numpy(), lv.numpy()

    def encode_latent(self, x):
        """x -> the latent point at the posterior's centre, (n, latent)."""
        x = self._x(x)
        return self._run(fn.model_encode_latent, x, (x.shape[0], self.latent_size))

    def decode(self, z):
        """z (n, latent) -> the decoded mean, (n, *input_dims)."""
        z = self._z(z)
        return self._run(fn.model_decode, z, (z.shape[0],) + self.input_dims)

    def decode_sample(self, z, seed=0):
        """As decode, then a draw from p(x|z) per row."""
        z = self._z(z)
        return self._run(fn.model_decode_sample, z, (z.shape[0],) + self.input_dims, seed)

    def reconstruct(self, x):
        """x -> decode(mu(x)), shaped as self.input_dims per row."""
        x = self._x(x)
        return self._run(fn.model_reconstruct, x, (x.shape[0],) + self.input_dims)

    def sample(self, n, seed=0):
        """n decoded draws from the prior, (n, *input_dims)."""
        with Tensor((int(n),) + self.input_dims) as t:
            fn.model_sample_prior(self.handle, seed, t.handle)
            return t.numpy()

    # ---- training ----
    @property
    def optimizer(self):
        """The default optimizer (see the class docstring)."""
        if self._optimizer is None or self._optimizer._h is None:
            self._optimizer = (Optimizer.restore(self) if self.has_training_state
                               else Optimizer(self))
        return self._optimizer

    @optimizer.setter
    def optimizer(self, opt):
        self._optimizer = opt

    def train_step(self, x, optimizer=None):
        """One step on the batch x (at most max_batch rows) -> (objective, nelbo)."""
        opt = optimizer or self.optimizer
        obj, nelbo = C.c_double(), C.c_double()
        with Tensor.from_numpy(self._x(x)) as t:
            self._collective(fn.model_train_step, self.handle, opt.handle, t.handle,
                             C.byref(obj), C.byref(nelbo))
        return obj.value, nelbo.value

    def train_epoch(self, dataset, batch, progress=None, optimizer=None):
        """One shuffled pass -> (mean objective, mean nelbo).  progress(done,
        count, batch_objective) is called after every batch; a true return
        stops (StoppedError) and an exception stops and is re-raised."""
        opt = optimizer or self.optimizer
        obj, nelbo = C.c_double(), C.c_double()
        p = Progress(progress)
        self._collective(p.run, fn.model_train_epoch, self.handle, opt.handle, dataset.handle,
                         batch, p.c, None, C.byref(obj), C.byref(nelbo))
        return obj.value, nelbo.value

    def evaluate(self, dataset):
        """Mean -ELBO per image over the data set."""
        out = C.c_double()
        self._collective(fn.model_evaluate, self.handle, dataset.handle, C.byref(out))
        return out.value

    def evaluate_terms(self, dataset, per_image=False):
        """-> (nelbo, recon, kl), plus each image's -ELBO if per_image."""
        n, r, k = C.c_double(), C.c_double(), C.c_double()
        pi = np.empty(len(dataset), np.float32) if per_image else None
        self._collective(fn.model_evaluate_terms, self.handle, dataset.handle, C.byref(n),
                         C.byref(r), C.byref(k), None if pi is None else fptr(pi))
        return (n.value, r.value, k.value) + ((pi,) if per_image else ())

    def log_likelihood(self, dataset, samples, seed=0, progress=None, per_image=False):
        """The IWAE estimate of log p(x) -> its mean (and each image's, float64,
        if per_image).  progress(done, count, running -log p) as train_epoch."""
        mean = C.c_double()
        pi = np.empty(len(dataset), np.float64) if per_image else None
        p = Progress(progress)
        self._collective(p.run, fn.model_log_likelihood, self.handle, dataset.handle, samples, seed,
                         p.c, None, C.byref(mean),
                         None if pi is None else pi.ctypes.data_as(C.POINTER(C.c_double)))
        return (mean.value, pi) if per_image else mean.value

    # ---- across processes (since 0.4) ----
    def _collective(self, call, *args):
        """call(*args) through the communicator (which attaches the exception
        a Python operation raised to the CommError), or directly without one."""
        comm = self._comm
        return call(*args) if comm is None else comm.run(call, *args)

    def set_comm(self, comm):
        """Makes training and evaluation (train_step, train_epoch, evaluate,
        evaluate_terms, log_likelihood, comm_check) collective over comm, a
        Comm; None makes them local again.  The model keeps comm referenced
        while it is set.  Every rank must then make the same collective
        calls in the same order with the same arguments."""
        fn.model_set_comm(self.handle, None if comm is None else comm.handle)
        if comm is not None:
            comm._models.add(self)
        self._comm = comm

    @property
    def comm(self):
        """The Comm set with set_comm, or None."""
        return self._comm if fn.model_comm(self.handle) else None

    def checksum(self):
        """A 64-bit checksum of the weights' bytes: equal on two ranks (or
        models) exactly when their weights are identical bit for bit."""
        return fn.model_checksum(self.handle)

    def comm_check(self, optimizer=None):
        """Checks (collectively) that every rank holds the same weights,
        training position and, with an optimizer (True: self.optimizer), the
        same optimizer state; raises CommError naming what differs.  Without
        a communicator it only returns."""
        if optimizer is True:
            optimizer = self.optimizer
        self._collective(fn.model_comm_check, self.handle,
                         optimizer.handle if optimizer else None)

    # ---- parameters ----
    @property
    def params(self):
        """Every parameter as one flat float32 array (a copy)."""
        out = np.empty(self.param_count, np.float32)
        fn.model_params_get(self.handle, fptr(out), out.size)
        return out

    @params.setter
    def params(self, values):
        a = float32_array(values, "params").reshape(-1)
        fn.model_params_set(self.handle, fptr(a), a.size)

    def param(self, name):
        """The parameter called name, shaped as its node."""
        g = self.graph
        node = g.find(name)
        shape = g.node_dims(node) if node >= 0 else (0,)
        out = np.empty(shape, np.float32)
        fn.model_param_get(self.handle, c_str(name), fptr(out), out.size)
        return out

    def set_param(self, name, values):
        a = float32_array(values, "values for %s" % name)
        fn.model_param_set(self.handle, c_str(name), fptr(a), a.size)

    def freeze(self, prefix, frozen=True):
        """(Un)freezes the parameters under prefix -> how many matched."""
        count = C.c_int()
        fn.model_freeze(self.handle, c_str(prefix), int(bool(frozen)), C.byref(count))
        return count.value

    def param_frozen(self, name):
        """True, False, or None if there is no such parameter."""
        r = fn.model_param_frozen(self.handle, c_str(name))
        return None if r < 0 else bool(r)

    # ---- history and metadata ----
    @property
    def history(self):
        """{column: float64 array over epochs 1..n} (NaN where not recorded)."""
        h, n = self.handle, fn.model_history_epochs(self.handle)
        cols = [py_str(fn.model_history_column(h, i)) for i in range(fn.model_history_columns(h))]
        return {c: np.array([fn.model_history_get(h, e, c_str(c)) for e in range(1, n + 1)])
                for c in cols}

    def history_set(self, epoch, column, value):
        fn.model_history_set(self.handle, epoch, c_str(column), value)

    def history_get(self, epoch, column):
        return fn.model_history_get(self.handle, epoch, c_str(column))

    def history_clear(self):
        fn.model_history_clear(self.handle)

    def set_metadata(self, key, value):
        """Sets (value None: removes) a string kept with the model."""
        fn.model_set_metadata(self.handle, c_str(key), c_str(value))

    def metadata(self, key):
        """The string kept under key, or None."""
        return py_str(fn.model_metadata(self.handle, c_str(key)))


class Optimizer(_Handle):
    """An optimizer bound to one model: Optimizer(model, kind, **options)
    with options named as OptimizerOption in lower case (learning_rate=...).
    Closed (with the model's other dependants) when the model is."""
    _free = staticmethod(fn.optimizer_free)

    def __init__(self, model, kind=OptimizerKind.ADAM, **options):
        h = C.c_void_p()
        fn.optimizer_create(C.byref(h), model.handle, kind)
        self._init(h, model)
        for k, v in options.items():
            self.set(OptimizerOption[k.upper()], v)

    @classmethod
    def restore(cls, model):
        """The optimizer saved with a loaded model's training state."""
        h = C.c_void_p()
        fn.optimizer_restore(C.byref(h), model.handle)
        opt = cls.__new__(cls)
        opt._init(h, model)
        return opt

    def set(self, option, value):
        fn.optimizer_set(self.handle, option, value)

    def get(self, option):
        out = C.c_double()
        fn.optimizer_get(self.handle, option, C.byref(out))
        return out.value

    @property
    def kind(self):
        out = C.c_int()
        fn.optimizer_get_kind(self.handle, C.byref(out))
        return OptimizerKind(out.value)

    @property
    def steps(self):
        return fn.optimizer_steps(self.handle)

    @property
    def rate(self):
        """The learning rate the next step uses (after the schedule)."""
        return fn.optimizer_rate(self.handle)
