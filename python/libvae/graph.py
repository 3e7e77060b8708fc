"""Graph: building a network node by node (vae_graph_*, vae_op_*, vae_layer_*)."""
import ctypes as C

from ._ffi import fn
from ._util import c_str, int_array, py_str
from .enums import Activation, Likelihood, NodeKind, Objective, Padding, Role, Status
from .errors import StateError


class Graph:
    """A graph of operations; methods that add nodes return their ids (ints).

    Owns its vae_graph until close() (or garbage collection) or until
    Model(graph) takes it: from then on this object refuses every call with
    StateError and frees nothing; use model.graph (read-only) instead."""

    def __init__(self, seed=0):
        h = C.c_void_p()
        fn.graph_create(C.byref(h), seed)
        self._h, self._why, self._owner = h, None, None

    @classmethod
    def _borrowed(cls, handle, owner):
        g = cls.__new__(cls)
        g._h, g._why, g._owner = C.c_void_p(handle), None, owner  # owner keeps it alive
        return g

    @property
    def handle(self):
        if self._h is None:
            raise StateError(Status.STATE, "this Graph " + (self._why or "was closed"))
        return self._h

    def close(self):
        """Frees the graph (nothing for one a Model owns or a borrowed view)."""
        h, self._h = getattr(self, "_h", None), None
        self._why = self._why or "was closed"
        if h is not None and self._owner is None:
            fn.graph_free(h)

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _give_away(self):
        self._h, self._why = None, "belongs to a Model now (Model(graph) took it); use model.graph"

    def _node(self, func, *args):
        out = C.c_int()
        func(self.handle, *args, C.byref(out))
        return out.value

    # ---- nodes ----
    def input(self, name, dims):
        """A batched input with per-row dims (1 to 3 of them)."""
        d, n = int_array(dims, "dims")
        return self._node(fn.graph_input, c_str(name), n, d)

    def param(self, name, dims, scale=0.0):
        """An unbatched parameter of dims, uniform in [-scale, scale]."""
        d, n = int_array(dims, "dims")
        return self._node(fn.graph_param, c_str(name), n, d, scale)

    def op_reshape(self, x, dims):
        d, n = int_array(dims, "dims")
        return self._node(fn.op_reshape, x, n, d)

    def op_conv2d(self, x, w, kernel, stride=1, padding=Padding.SAME):
        return self._node(fn.op_conv2d, x, w, kernel, stride, padding)

    def op_conv2d_transpose(self, x, w, kernel, stride=1, padding=Padding.SAME):
        return self._node(fn.op_conv2d_transpose, x, w, kernel, stride, padding)

    def op_gaussian_loglik(self, x, mean, logvar=-1, logvar_const=0.0):
        return self._node(fn.op_gaussian_loglik, x, mean, logvar, logvar_const)

    def op_normal_logpdf(self, z, mu=-1, logvar=-1):
        return self._node(fn.op_normal_logpdf, z, mu, logvar)

    def op_made_matmul(self, x, w, mask, reversed=False):
        return self._node(fn.op_made_matmul, x, w, mask, int(reversed))

    # ---- layers ----
    def layer_dense(self, x, units, act=Activation.NONE, name=None):
        """act(x w + b); parameters "<name>.w", "<name>.b"."""
        return self._node(fn.layer_dense, x, units, act, c_str(name))

    def layer_conv2d(self, x, filters, kernel, stride=1, padding=Padding.SAME,
                     act=Activation.NONE, name=None):
        return self._node(fn.layer_conv2d, x, filters, kernel, stride, padding, act, c_str(name))

    def layer_conv2d_transpose(self, x, filters, kernel, stride=1, padding=Padding.SAME,
                               act=Activation.NONE, name=None):
        return self._node(fn.layer_conv2d_transpose, x, filters, kernel, stride, padding, act,
                          c_str(name))

    def layer_gaussian_mlp(self, x, hidden, act, latent, context=0, name=None):
        """-> (mu, logvar), or (mu, logvar, h) when context > 0."""
        mu, lv, h = C.c_int(), C.c_int(), C.c_int()
        fn.layer_gaussian_mlp(self.handle, x, hidden, act, latent, context, c_str(name),
                              C.byref(mu), C.byref(lv), C.byref(h) if context else None)
        return (mu.value, lv.value, h.value) if context else (mu.value, lv.value)

    def layer_bernoulli_mlp(self, z, hidden, act, features, name=None):
        """-> the logits node."""
        return self._node(fn.layer_bernoulli_mlp, z, hidden, act, features, c_str(name))

    def layer_iaf_step(self, z, hidden, h=-1, reversed=False, name=None):
        """One inverse autoregressive flow step -> (z_out, log_det)."""
        zo, ld = C.c_int(), C.c_int()
        fn.layer_iaf_step(self.handle, z, h, hidden, int(reversed), c_str(name),
                          C.byref(zo), C.byref(ld))
        return zo.value, ld.value

    def elbo_build(self, x, mu, logvar, z, logits, likelihood=Likelihood.BERNOULLI,
                   objective=Objective.ELBO, beta=1.0):
        """Adds the loss and sets every role -> the objective node."""
        return self._node(fn.elbo_build, x, mu, logvar, z, logits, likelihood, objective, beta)

    def elbo_build_flow(self, x, mu, logvar, z0, z, log_det, logits,
                        likelihood=Likelihood.BERNOULLI, objective=Objective.ELBO, beta=1.0):
        """As elbo_build for a posterior with a flow (z0 the base sample)."""
        return self._node(fn.elbo_build_flow, x, mu, logvar, z0, z, log_det, logits,
                          likelihood, objective, beta)

    # ---- roles and introspection ----
    def set_role(self, role, node):
        fn.graph_set_role(self.handle, role, node)

    def role(self, role):
        """The node with that role, or -1."""
        return fn.graph_role(self.handle, role)

    def find(self, name):
        """The node called name, or -1."""
        return fn.graph_find(self.handle, c_str(name))

    def __len__(self):
        return fn.graph_node_count(self.handle)

    node_count = property(__len__)

    def node_size(self, node):
        return fn.graph_node_size(self.handle, node)

    def node_dims(self, node):
        d = (C.c_int * 3)()
        return tuple(d[:fn.graph_node_dims(self.handle, node, d)])

    def node_kind(self, node):
        k = fn.graph_node_kind(self.handle, node)
        return NodeKind(k) if k >= 0 else k

    def node_name(self, node):
        return py_str(fn.graph_node_name(self.handle, node))

    def node_op(self, node):
        return py_str(fn.graph_node_op(self.handle, node))

    def node_inputs(self, node):
        d = (C.c_int * 4)()
        n = fn.graph_node_inputs(self.handle, node, d)
        return tuple(d[:max(n, 0)])

    def node_batched(self, node):
        return bool(fn.graph_node_batched(self.handle, node))

    def node_role(self, node):
        r = fn.graph_node_role(self.handle, node)
        return Role(r) if r >= 0 else None

    def dot(self):
        """The graph as Graphviz DOT text."""
        return text_query(fn.graph_dot, self.handle)


def text_query(func, handle):
    """Calls a (handle, buf, size, needed) function twice: size, then text."""
    need = C.c_size_t()
    func(handle, None, 0, C.byref(need))
    buf = C.create_string_buffer(need.value)
    func(handle, buf, need.value, None)
    return buf.value.decode("utf-8", "replace")


def _op(cname, params, doc):
    func = getattr(fn, "op_" + cname)

    def method(self, *args):
        if len(args) != len(params):
            raise TypeError("op_%s(%s) takes %d arguments" % (cname, ", ".join(params), len(params)))
        return self._node(func, *args)
    method.__name__ = "op_" + cname
    method.__doc__ = "op_%s(%s) -> node id: %s" % (cname, ", ".join(params), doc)
    return method


# The operations whose arguments are node ids and numbers only, in C order.
_SIMPLE_OPS = {
    "matmul": (("x", "w"), "x (B, K) times w (K, N)"),
    "bias": (("x", "b"), "x plus b on every row or channel"),
    "activation": (("x", "act"), "act(x), an Activation"),
    "relu": (("x",), "max(x, 0)"),
    "leaky_relu": (("x", "slope"), "leaky ReLU, slope in [0, 1)"),
    "tanh": (("x",), "tanh(x)"), "sigmoid": (("x",), "sigmoid(x)"),
    "softplus": (("x",), "log(1 + exp(x))"),
    "add": (("a", "b"), "a + b"), "mul": (("a", "b"), "a * b"),
    "scale": (("x", "factor"), "x * factor"), "concat": (("a", "b"), "rows of a then of b"),
    "sample_normal": (("mu", "logvar"), "mu + exp(logvar / 2) * eps"),
    "bce_logits": (("logits", "target"), "per-row binary cross-entropy"),
    "kl_std_normal": (("mu", "logvar"), "per-row KL to N(0, I)"),
    "sum": (("x",), "per-row sum"), "mean": (("x",), "per-row mean"),
    "batch_mean": (("x",), "mean over the batch of the row sums"),
}
for _name, (_params, _doc) in _SIMPLE_OPS.items():
    setattr(Graph, "op_" + _name, _op(_name, _params, _doc))
