"""Array conversion, tensors and callbacks shared by the classes."""
import ctypes as C
import math

import numpy as np

from ._ffi import fn
from .enums import Status
from ._bindings import PROGRESS
from .errors import ArgumentError, NotFiniteError, ShapeError, StateError, StoppedError


def float32_array(x, what, finite=True):
    """x as a C-contiguous float32 array.  float32 C-contiguous input is used
    as it is; anything else (float64, int, a strided view) is converted with
    one copy (np.ascontiguousarray).  Object arrays and, if finite, NaN or
    infinite values are refused before calling C."""
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ArgumentError(Status.ARGUMENT, "%s: need a numeric array, not dtype %s" % (what, a.dtype))
    a = np.ascontiguousarray(a, dtype=np.float32)
    if finite and not np.isfinite(a).all():
        raise NotFiniteError(Status.NOT_FINITE, "%s holds NaN or infinite values" % what)
    return a


def rows(x, size, what):
    """x (n, ...) as float32 rows of `size` elements each (any row shape)."""
    a = float32_array(x, what)
    if a.ndim < 2 or a.shape[0] < 1 or math.prod(a.shape[1:]) != size:
        raise ShapeError(Status.SHAPE, "%s: need shape (n, ...) with n >= 1 and rows of %d "
                         "elements, got %s" % (what, size, a.shape))
    return a if a.ndim <= 4 else a.reshape(a.shape[0], size)


def int_array(values, what, ctype=C.c_int):
    values = [int(v) for v in values]
    return (ctype * max(len(values), 1))(*values), len(values)


def c_str(s):
    return None if s is None else s.encode("utf-8") if isinstance(s, str) else bytes(s)


def py_str(b):
    return None if b is None else b.decode("utf-8", "replace")


def fptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_float))


class Tensor:
    """An owned vae_tensor (float32, 1 to 4 dims).  The model calls use these
    internally: from_numpy copies once into the library (vae_tensor_from_host)
    and numpy() copies once out (vae_tensor_copy_to_host)."""

    def __init__(self, shape=None, _handle=None):
        self._h = _handle
        if _handle is None:
            dims, nd = int_array(shape, "shape", C.c_int64)
            h = C.c_void_p()
            fn.tensor_create(C.byref(h), nd, dims)
            self._h = h
    @classmethod
    def from_numpy(cls, a):
        a = float32_array(a, "tensor data", finite=False)
        dims, nd = int_array(a.shape, "shape", C.c_int64)
        h = C.c_void_p()
        fn.tensor_from_host(C.byref(h), nd, dims, fptr(a))
        return cls(_handle=h)

    @property
    def handle(self):
        if self._h is None:
            raise StateError(Status.STATE, "the Tensor was closed")
        return self._h

    @property
    def shape(self):
        return tuple(fn.tensor_dim(self.handle, i) for i in range(fn.tensor_ndim(self.handle)))

    def __len__(self):
        return self.shape[0]

    @property
    def size(self):
        return fn.tensor_count(self.handle)

    @property
    def address(self):
        """The address of the elements (vae_tensor_data), valid until close()."""
        return C.cast(fn.tensor_data(self.handle), C.c_void_p).value

    def numpy(self):
        out = np.empty(self.shape, dtype=np.float32)
        fn.tensor_copy_to_host(self.handle, fptr(out), out.size)
        return out

    def update(self, a):
        """Copies a (any shape of the same element count) into the tensor."""
        a = float32_array(a, "tensor data", finite=False)
        fn.tensor_copy_from_host(self.handle, fptr(a), a.size)

    def close(self):
        h, self._h = self._h, None
        if h is not None:
            fn.tensor_free(h)

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Progress:
    """A Python progress callable as a C vae_progress_fn for one call.

    The callable gets (done, count, value); returning a true value stops
    the call (StoppedError).  If it raises, the C call is stopped and
    reraise() raises that exception, traceback included, instead of the
    StoppedError.  `self.c` must stay referenced during the call (it does:
    the caller holds this object)."""

    def __init__(self, func):
        self.func, self.error = func, None
        self.c = PROGRESS() if func is None else PROGRESS(self._call)  # PROGRESS(): NULL

    def _call(self, user, done, count, value):
        try:
            return 1 if self.func(done, count, value) else 0
        except BaseException as e:  # KeyboardInterrupt too: stop, then raise it
            self.error = e
            return 1

    def run(self, call, *args):
        """call(*args) (a C function taking self.c); re-raises the callable's error."""
        try:
            call(*args)
        except StoppedError:
            if self.error is None:
                raise
        if self.error is not None:
            err, self.error = self.error, None
            raise err.with_traceback(err.__traceback__)
