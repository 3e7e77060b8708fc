"""Comm: a communicator for training across processes (vae_comm_*, since 0.4).

The host supplies the two collective operations as Python callables:

    sum(array)              replace the 1-D float32/float64 NumPy view by its
                            sum over all ranks, in place (every rank must get
                            the same bits)
    broadcast(array, root)  copy rank root's bytes (a 1-D uint8 view) into
                            every rank's, in place

and optionally the two halves of a sum (with both, train_epoch shards the
optimizer's update: each rank updates its part of the weights and moments),
on a 1-D float32 view of `count` values, where rank r's part is
[count * r // size, count * (r + 1) // size) (see Comm.part):

    reduce_scatter(array)   sum the array over all ranks into (at least) this
                            rank's part, in place; the rest may be changed
    allgather(array)        copy every rank's part into every rank's array,
                            in place

Each gets a view of the library's own buffer (np.ctypeslib.as_array on the
pointer), valid during the call only; a callable may also return an array
of the same size, which is then copied into the view.  The callables run in
the thread that makes the collective call.  If one raises, the library sees
a failed operation (the callback returns non-zero) and the call fails with
VAE_ERR_COMM on every rank; the rank whose callable raised gets a CommError
whose __cause__ (and .callback_error) is that exception, with its traceback
(a KeyboardInterrupt or SystemExit is raised as itself).

Comm.from_mpi4py(comm) makes the operations of an mpi4py communicator.
"""
import ctypes as C
import weakref

import numpy as np

from ._bindings import COMM_ALLGATHER, COMM_BCAST, COMM_REDUCE_SCATTER, COMM_SUM
from ._ffi import fn
from .enums import CommType, Status
from .errors import ArgumentError, LibvaeError, StateError

_SUM_TYPES = {CommType.FLOAT32: (C.c_float, np.float32), CommType.FLOAT64: (C.c_double, np.float64)}
MPI_CHUNK_BYTES = 8 << 20  # as libvae_mpi: MPI counts are int, and large all-reduces are slow


class _Ops:
    """The Python operations and the first exception they raised.  Held by
    the C trampolines, which therefore do not keep the Comm alive."""

    def __init__(self):
        self.sum = self.broadcast = self.reduce_scatter = self.allgather = None
        self.error = None

    @staticmethod
    def _view(data, ctype, dtype, count):
        if count == 0 or not data:  # nothing to see (and no NULL pointer to NumPy)
            return np.empty(0, dtype)
        # .view(dtype): a plain NumPy buffer format ("d", not ctypes' "<d",
        # which e.g. mpi4py 3 does not take)
        return np.ctypeslib.as_array(C.cast(data, C.POINTER(ctype)), shape=(count,)).view(dtype)

    def _keep(self, e):
        if self.error is None:
            self.error = e
        return 1

    def call_sum(self, user, data, count, ctype):
        try:
            if ctype not in _SUM_TYPES:
                raise ArgumentError(Status.ARGUMENT, "sum: unknown vae_comm_type %d" % ctype)
            a = self._view(data, *_SUM_TYPES[ctype], count)
            out = self.sum(a)
            if out is not None and out is not a:
                a[...] = np.asarray(out).reshape(a.shape)
            return 0
        except BaseException as e:  # never across the C boundary
            return self._keep(e)

    def call_broadcast(self, user, data, nbytes, root):
        try:
            a = self._view(data, C.c_uint8, np.uint8, nbytes)
            out = self.broadcast(a, root)
            if out is not None and out is not a:
                a[...] = np.asarray(out).reshape(-1).view(np.uint8)
            return 0
        except BaseException as e:
            return self._keep(e)

    def _call_floats(self, func, data, count):
        try:
            a = self._view(data, C.c_float, np.float32, count)
            out = func(a)
            if out is not None and out is not a:
                a[...] = np.asarray(out).reshape(a.shape)
            return 0
        except BaseException as e:
            return self._keep(e)

    def call_reduce_scatter(self, user, data, count):
        return self._call_floats(self.reduce_scatter, data, count)

    def call_allgather(self, user, data, count):
        return self._call_floats(self.allgather, data, count)


def _part(count, rank, size):
    return count * rank // size, count * (rank + 1) // size


def _status_of(local):
    """A status for agree(): a Status/int, None (OK), a LibvaeError (its
    status) or another exception (OSError: IO, MemoryError: NO_MEMORY,
    ValueError/TypeError: ARGUMENT, anything else: STATE)."""
    if local is None:
        return Status.OK
    if isinstance(local, LibvaeError):
        return int(local.status)
    if isinstance(local, BaseException):
        for cls, st in ((OSError, Status.IO), (MemoryError, Status.NO_MEMORY),
                        ((ValueError, TypeError), Status.ARGUMENT)):
            if isinstance(local, cls):
                return st
        return Status.STATE
    return int(local)


class Comm:
    """Rank `rank` of `size` ranks, with the host's collective operations.

    Comm(rank, size, sum=f, broadcast=g); both are needed before a
    communicator of more than one rank is set on a model (model.set_comm).
    A communicator of one rank needs neither.  reduce_scatter= and
    allgather= are optional; with both (see .sharded), train_epoch shards
    the optimizer's update over the ranks.  The model keeps the Comm
    referenced; close() detaches it from its models first.  See the module
    docstring for the callables' contract."""

    def __init__(self, rank=0, size=1, sum=None, broadcast=None, reduce_scatter=None,
                 allgather=None):
        self._h = None
        self._ops = _Ops()
        # the C trampolines, alive as long as self
        self._c_sum = self._c_broadcast = self._c_reduce_scatter = self._c_allgather = None
        self._models = weakref.WeakSet()
        self.mpi_comm, self._mpi_owned = None, False
        h = C.c_void_p()
        fn.comm_create(C.byref(h), rank, size)
        self._h = h
        if sum is not None:
            self.set_sum(sum)
        if broadcast is not None:
            self.set_broadcast(broadcast)
        if reduce_scatter is not None:
            self.set_reduce_scatter(reduce_scatter)
        if allgather is not None:
            self.set_allgather(allgather)

    @classmethod
    def from_mpi4py(cls, comm, dup=True, shard=False):
        """A Comm over an mpi4py communicator (e.g. MPI.COMM_WORLD): sum is
        comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM), broadcast
        comm.Bcast(array, root), and with shard (off by default, as in
        libvae_mpi: on one machine Open MPI's pair is slower than its
        all-reduce, see docs/DISTRIBUTED.md) reduce_scatter
        comm.Reduce_scatter(MPI.IN_PLACE, ...) and allgather
        comm.Allgatherv(MPI.IN_PLACE, ...), all in pieces of at most 8 MiB.
        With dup (the default) it works on comm.Dup() with MPI.ERRORS_RETURN
        (so the library's messages never match the host's own, and an MPI
        failure becomes a CommError instead of aborting); then this call and
        close() are collective over comm, and close() frees the duplicate.
        The communicator used is .mpi_comm."""
        from mpi4py import MPI
        c = comm.Dup() if dup else comm
        if dup:
            c.Set_errhandler(MPI.ERRORS_RETURN)
        rank, size = c.Get_rank(), c.Get_size()

        def mpi_sum(a):
            step = max(1, MPI_CHUNK_BYTES // a.itemsize)
            for i in range(0, a.size, step):
                c.Allreduce(MPI.IN_PLACE, a[i:i + step], op=MPI.SUM)

        def mpi_broadcast(a, root):
            for i in range(0, a.size, MPI_CHUNK_BYTES):
                c.Bcast(a[i:i + MPI_CHUNK_BYTES], root=root)

        def pieces(a):
            """The pieces [i, j) of a, and in each the length and offset of
            every rank's part (in its piece, which may hold none of it)."""
            bounds = [_part(a.size, r, size) for r in range(size)]
            step = max(1, MPI_CHUNK_BYTES // a.itemsize)
            for i in range(0, a.size, step):
                j = min(a.size, i + step)
                lens, offs = [], []
                for lo, hi in bounds:
                    lo, hi = max(lo, i), min(hi, j)
                    lens.append(max(0, hi - lo))
                    offs.append(min(lo, j) - i)
                yield i, j, lens, offs

        def mpi_reduce_scatter(a):
            for i, j, lens, offs in pieces(a):
                piece, n = a[i:j], lens[rank]
                # in place, this rank's sums land at the start of the piece
                c.Reduce_scatter(MPI.IN_PLACE, piece, lens, op=MPI.SUM)
                if n and offs[rank]:
                    piece[offs[rank]:offs[rank] + n] = piece[:n].copy()

        def mpi_allgather(a):
            for i, j, lens, offs in pieces(a):
                c.Allgatherv(MPI.IN_PLACE, [a[i:j], lens, offs, MPI.FLOAT])

        self = cls(rank, size, sum=mpi_sum, broadcast=mpi_broadcast,
                   reduce_scatter=mpi_reduce_scatter if shard else None,
                   allgather=mpi_allgather if shard else None)
        self.mpi_comm, self._mpi_owned = c, dup
        return self

    @property
    def handle(self):
        if self._h is None:
            raise StateError(Status.STATE, "this Comm was closed")
        return self._h

    def set_sum(self, func):
        """Sets the sum operation, func(array) (see the class docstring)."""
        cb = COMM_SUM(self._ops.call_sum)
        fn.comm_set_sum(self.handle, cb, None)
        self._ops.sum, self._c_sum = func, cb

    def set_broadcast(self, func):
        """Sets the broadcast operation, func(uint8_array, root)."""
        cb = COMM_BCAST(self._ops.call_broadcast)
        fn.comm_set_broadcast(self.handle, cb, None)
        self._ops.broadcast, self._c_broadcast = func, cb

    def set_reduce_scatter(self, func):
        """Sets the optional reduce-scatter, func(float32_array): the sum
        over all ranks into (at least) this rank's part, in place."""
        cb = COMM_REDUCE_SCATTER(self._ops.call_reduce_scatter)
        fn.comm_set_reduce_scatter(self.handle, cb, None)
        self._ops.reduce_scatter, self._c_reduce_scatter = func, cb

    def set_allgather(self, func):
        """Sets the optional allgather, func(float32_array): every rank's
        part into every rank's array, in place."""
        cb = COMM_ALLGATHER(self._ops.call_allgather)
        fn.comm_set_allgather(self.handle, cb, None)
        self._ops.allgather, self._c_allgather = func, cb

    rank = property(lambda self: fn.comm_rank(self.handle), doc="This process's rank.")
    size = property(lambda self: fn.comm_size(self.handle), doc="The number of ranks.")

    @property
    def sharded(self):
        """True if train_epoch shards the optimizer's update: more than one
        rank, and both reduce_scatter and allgather set."""
        return (self.size > 1 and self._ops.reduce_scatter is not None
                and self._ops.allgather is not None)

    def part(self, count, rank=None):
        """(lo, hi): the part [lo, hi) of `count` values that belongs to
        rank (by default this one) in reduce_scatter and allgather."""
        return _part(count, self.rank if rank is None else rank, self.size)

    def __repr__(self):
        if self._h is None:
            return "<libvae.Comm closed>"
        return "<libvae.Comm rank %d of %d>" % (self.rank, self.size)

    @property
    def callback_error(self):
        """The exception a Python operation raised and no call has reported
        yet (None normally)."""
        return self._ops.error

    def run(self, call, *args):
        """call(*args), a C call that may use this communicator's operations:
        a CommError it raises gets the exception an operation raised as
        __cause__ and .callback_error (a BaseException that is not an
        Exception, e.g. KeyboardInterrupt, is raised as itself)."""
        self._ops.error = None
        try:
            return call(*args)
        except LibvaeError as e:
            err = self._ops.error
            if err is None:
                raise
            if not isinstance(err, Exception):
                raise err.with_traceback(err.__traceback__) from e
            e.callback_error = err
            raise e from err
        finally:
            self._ops.error = None

    # ---- collectives ----
    def agree(self, local=Status.OK):
        """Agreement on a step of the host's own that may fail on one rank
        (collective).  local: this rank's Status (or int), None for OK, or
        the exception it got (see guard()).  Returns None if every rank
        passed OK; raises the error of this rank's own status if it failed
        (with the calling thread's last libvae message), else a CommError
        naming the rank that failed."""
        self.run(fn.comm_agree, self.handle, _status_of(local))

    def guard(self):
        """A context manager for a host step that may fail on some ranks:

            with comm.guard():
                if comm.rank == 0:
                    model.save(path)

        Every rank agrees at the end of the block: a rank whose block raised
        re-raises its exception, the others raise a CommError."""
        return _Guard(self)

    def broadcast(self, array, root=0):
        """Copies root's array into every rank's, in place (collective):
        array must be a writable C-contiguous NumPy array of the same nbytes
        on every rank.  Returns it."""
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous \
                or not array.flags.writeable:
            raise ArgumentError(Status.ARGUMENT, "broadcast: need a writable C-contiguous "
                                "NumPy array, got %r" % type(array).__name__)
        if array.nbytes:
            self.run(fn.comm_broadcast, self.handle, array.ctypes.data, array.nbytes, root)
        else:  # the library's checks, without a NULL data pointer
            self.run(fn.comm_broadcast, self.handle, C.byref(C.c_char()), 0, root)
        return array

    # ---- lifetime ----
    def _free(self):
        h, self._h = getattr(self, "_h", None), None
        if h is None:
            return
        for m in list(getattr(self, "_models", ())):
            if getattr(m, "_comm", None) is self:
                if getattr(m, "_h", None) is not None:
                    fn.model_set_comm(m._h, None)
                m._comm = None
        fn.comm_free(h)

    def close(self):
        """Detaches the communicator from its models and frees it; for
        from_mpi4py(dup=True), also frees the duplicate MPI communicator
        (collective then)."""
        self._free()
        c, self.mpi_comm = self.mpi_comm, None
        if c is not None and self._mpi_owned:
            from mpi4py import MPI
            if not MPI.Is_finalized():
                c.Free()

    def __del__(self):
        self._free()  # never an MPI collective at garbage collection

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Guard:
    def __init__(self, comm):
        self.comm = comm

    def __enter__(self):
        return self.comm

    def __exit__(self, typ, exc, tb):
        if exc is None:
            self.comm.agree(Status.OK)
            return False
        try:
            self.comm.agree(exc)
        except LibvaeError:
            pass  # this rank's own exception is the one to raise
        return False
