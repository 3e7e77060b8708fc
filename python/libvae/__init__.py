"""libvae: variational autoencoders, through the C library's stable ABI.

    import libvae as lv
    g = lv.Graph(seed=42)
    x = g.input("x", [784])
    ...
    m = lv.Model(g)            # m owns the graph now
    m.train_epoch(lv.Dataset.from_numpy(images), batch=128)

See python/README.md.  The shared library is found through LIBVAE_LIBRARY,
the prefix this package is installed in, or the dynamic loader.
"""
import ctypes as _C

from ._ffi import fn as _fn, path as library_path
from ._bindings import LOG_FN as _LOG_FN
from ._util import Tensor
from .comm import Comm
from .dataset import Dataset
from .enums import (Activation, CommType, Likelihood, LogLevel, LrSchedule, MadeMask, NodeKind,
                    Objective, OptimizerKind, OptimizerOption, Padding, Role, Status)
from .errors import (ArgumentError, CommError, FileError, LibvaeError, NotFiniteError,
                     OutOfMemoryError, ShapeError, StateError, StoppedError, ThreadError,
                     UnsupportedError)
from .graph import Graph
from .model import Model, Optimizer

__version__ = "0.4.0"


def version():
    """The linked library's version string, e.g. "0.4.0"."""
    return _fn.version_string().decode()


def version_number():
    """major * 10000 + minor * 100 + patch of the linked library."""
    return _fn.version_number()


def strerror(status):
    return _fn.strerror(status).decode()


def last_error():
    """The message of the calling thread's last failure ("" before any)."""
    return _fn.last_error().decode("utf-8", "replace")


def blas_info():
    return _fn.blas_info().decode()


def blas_env_hint():
    """"NAME=VALUE" that would select faster BLAS kernels, or None."""
    h = _fn.blas_env_hint()
    return None if h is None else h.decode()


_log_keep = None  # the installed C callback, kept alive


def set_log_callback(func):
    """func(level: LogLevel, message: str), or None for none.  Process-wide."""
    global _log_keep
    _log_keep = _LOG_FN() if func is None else _LOG_FN(  # _LOG_FN(): NULL
        lambda user, level, msg: func(LogLevel(level), msg.decode("utf-8", "replace")))
    _fn.set_log_callback(_log_keep, None)


def set_log_level(level):
    _fn.set_log_level(level)
