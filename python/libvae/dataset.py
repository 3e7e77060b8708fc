"""Dataset: rows of pixels (bytes or floats), labels optional (vae_dataset_*)."""
import ctypes as C
import math
import weakref

import numpy as np

from ._ffi import fn
from ._util import Tensor, c_str, float32_array, int_array
from .enums import Status
from .errors import ArgumentError, ShapeError, StateError


class Dataset:
    """A data set owning its vae_dataset.  Views (view(), split()) borrow the
    parent's rows: they keep the parent alive, and closing the parent closes
    its views first."""

    def __init__(self, _handle, parent=None):
        self._h, self._parent, self._views = _handle, parent, weakref.WeakSet()
        if parent is not None:
            parent._views.add(self)

    @classmethod
    def load_idx(cls, images, labels=None):
        """An MNIST-style idx file (plain or gzip), pixels scaled by 1/255."""
        h = C.c_void_p()
        fn.dataset_load_idx(C.byref(h), c_str(str(images)), c_str(labels and str(labels)))
        return cls(h)

    @classmethod
    def load_cifar10(cls, directory, train=True):
        """CIFAR-10's binary batches in directory; rows (3, 32, 32)."""
        h = C.c_void_p()
        fn.dataset_load_cifar10(C.byref(h), c_str(str(directory)), int(bool(train)))
        return cls(h)

    @classmethod
    def from_numpy(cls, data, labels=None, scale=1.0 / 255):
        """data (n, *row_dims), 1 to 3 row dims.  uint8 data are kept as bytes
        (value = byte * scale, vae_dataset_from_u8); anything else is
        converted once to float32 and kept as it is (scale unused).  labels:
        n integers >= 0, or None.  The library copies the data."""
        a = np.asarray(data)
        if a.ndim < 2 or a.ndim > 4 or a.shape[0] < 1:
            raise ShapeError(Status.SHAPE, "data: need shape (n, d1[, d2[, d3]]), got %s" % (a.shape,))
        n = a.shape[0]
        dims, nd = int_array(a.shape[1:], "dims")
        lab = None
        if labels is not None:
            lab = np.asarray(labels)
            if lab.dtype == object or lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer):
                raise ArgumentError(Status.ARGUMENT, "labels: need %d integers, got %s %s"
                                    % (n, lab.dtype, lab.shape))
            lab = np.ascontiguousarray(lab, dtype=np.int32)
        lab_p = None if lab is None else lab.ctypes.data_as(C.POINTER(C.c_int32))
        h = C.c_void_p()
        if a.dtype == np.uint8:
            if not math.isfinite(scale):
                raise ArgumentError(Status.ARGUMENT, "scale must be finite")
            a = np.ascontiguousarray(a)
            fn.dataset_from_u8(C.byref(h), n, nd, dims, a.ctypes.data_as(C.POINTER(C.c_uint8)),
                               lab_p, scale)
        else:
            a = float32_array(a, "data")
            fn.dataset_from_f32(C.byref(h), n, nd, dims, a.ctypes.data_as(C.POINTER(C.c_float)),
                                lab_p)
        return cls(h)

    @property
    def handle(self):
        if self._h is None:
            raise StateError(Status.STATE, "the Dataset was closed (or the one it views was)")
        return self._h

    def close(self):
        """Frees the data set, after closing its views."""
        for v in list(getattr(self, "_views", ())):
            v.close()
        h, self._h = getattr(self, "_h", None), None
        if h is not None:
            fn.dataset_free(h)

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def view(self, first, count):
        """Rows first .. first+count-1, borrowed (no copy)."""
        h = C.c_void_p()
        fn.dataset_view(C.byref(h), self.handle, first, count)
        return Dataset(h, parent=self)

    def split(self, valid, seed=0):
        """-> (train, valid) views: valid a fraction in (0, 1) or a count >= 1."""
        t, v = C.c_void_p(), C.c_void_p()
        fn.dataset_split(self.handle, valid, seed, C.byref(t), C.byref(v))
        return Dataset(t, parent=self), Dataset(v, parent=self)

    def truncate(self, n):
        """Keeps only the first n rows."""
        fn.dataset_truncate(self.handle, n)

    def __len__(self):
        return fn.dataset_count(self.handle)

    count = property(__len__)

    @property
    def row_size(self):
        return fn.dataset_row_size(self.handle)

    @property
    def row_dims(self):
        d = (C.c_int * 3)()
        return tuple(d[:fn.dataset_row_dims(self.handle, d)])

    @property
    def has_labels(self):
        return bool(fn.dataset_has_labels(self.handle))

    def label(self, i):
        """Row i's label, or -1."""
        return fn.dataset_label(self.handle, i)

    @property
    def labels(self):
        """Every label as an int32 array, or None without labels."""
        if not self.has_labels:
            return None
        return np.array([fn.dataset_label(self.handle, i) for i in range(len(self))], np.int32)

    def get(self, first=0, n=None):
        """Rows first .. first+n-1 as float32, shape (n, *row_dims)."""
        n = len(self) - first if n is None else n
        with Tensor((n,) + self.row_dims) as t:
            fn.dataset_get(self.handle, first, t.handle)
            return t.numpy()
