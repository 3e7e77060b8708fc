"""Exceptions: one class per family of vae_status.

Every non-OK status from the library raises the class of its family, with
.status (a Status) and .message (vae_last_error(), naming the argument, file
or shape at fault).  The package raises the same classes itself for
arguments it refuses before calling C (wrong shapes, object arrays,
non-finite values, a handle already closed or given away).
"""
from .enums import Status


class LibvaeError(Exception):
    """Base of every libvae error; .status is a Status, .message the text."""

    def __init__(self, status, message):
        self.status = Status(status)
        self.message = message
        super().__init__("%s: %s" % (self.status.name, message))

    def __str__(self):
        return "%s: %s" % (self.status.name, self.message)


class ArgumentError(LibvaeError, ValueError):
    """VAE_ERR_ARGUMENT: a bad argument (NULL, size, unknown enum value)."""


class ShapeError(LibvaeError, ValueError):
    """VAE_ERR_SHAPE: tensor or node shapes do not fit together."""


class FileError(LibvaeError, OSError):
    """VAE_ERR_IO, VAE_ERR_FORMAT, VAE_ERR_CHECKSUM: a file could not be
    read or written, is malformed, or its checksum does not match."""


class NotFiniteError(LibvaeError, ArithmeticError):
    """VAE_ERR_NOT_FINITE: a loss, gradient or value became NaN or infinite."""


class StoppedError(LibvaeError):
    """VAE_ERR_STOPPED: a progress callback asked to stop."""


class StateError(LibvaeError, RuntimeError):
    """VAE_ERR_STATE: the call does not fit the handle's state."""


class UnsupportedError(LibvaeError, NotImplementedError):
    """VAE_ERR_UNSUPPORTED: valid, but not supported by this build or model."""


class OutOfMemoryError(LibvaeError, MemoryError):
    """VAE_ERR_NO_MEMORY (also a plan over the model's memory limit)."""


class ThreadError(LibvaeError, RuntimeError):
    """VAE_ERR_THREAD: a worker thread could not be started."""


class CommError(LibvaeError, RuntimeError):
    """VAE_ERR_COMM: a collective operation failed, another rank failed, or
    the ranks disagree.  When a Comm's Python operation raised, that
    exception is this one's __cause__ (and .callback_error)."""
    callback_error = None


_BY_STATUS = {
    Status.ARGUMENT: ArgumentError, Status.SHAPE: ShapeError, Status.IO: FileError,
    Status.FORMAT: FileError, Status.CHECKSUM: FileError, Status.NOT_FINITE: NotFiniteError,
    Status.STOPPED: StoppedError, Status.STATE: StateError, Status.UNSUPPORTED: UnsupportedError,
    Status.NO_MEMORY: OutOfMemoryError, Status.THREAD: ThreadError, Status.COMM: CommError,
}


def error_for(status, message):
    """The exception for a non-OK status (LibvaeError for an unknown one)."""
    try:
        return _BY_STATUS[Status(status)](status, message)
    except ValueError:  # a status newer than this package
        err = LibvaeError.__new__(LibvaeError)
        Exception.__init__(err, "status %d: %s" % (status, message))
        err.status, err.message = status, message
        return err
