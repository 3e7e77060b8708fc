"""Training across "processes": libvae.Comm with ranks as Python threads of
one process, whose sum and broadcast (and reduce-scatter and allgather) run
in Python over shared NumPy buffers; and, when mpirun and mpi4py are there,
Comm.from_mpi4py under mpirun with 2 ranks."""
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import libvae as lv
from test_libvae import data, small_graph  # the package tests' model and data

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BATCH, EPOCHS, LR = 32, 2, 3e-3
JOIN = 60  # seconds: a rank still running by then is a hang


class World:
    """`size` ranks as threads: each rank's sum and broadcast meet the
    others' at a barrier and read their buffers (the library's own, as NumPy
    views).  The sum adds in rank order, so every rank gets the same bits.
    As an engine must, it fails on every rank when it fails on one: a
    rank's operation that raises aborts the barrier, so that the others'
    operations, now or at their next collective, fail too
    (BrokenBarrierError) instead of waiting for that rank."""

    def __init__(self, size, timeout=30):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=timeout)
        self.slots = [None] * size

    def _guarded(self, op):
        def run(*args):
            try:
                return op(*args)
            except BaseException:
                self.barrier.abort()
                raise
        return run

    def sum_op(self, rank):
        def op(a):
            self.slots[rank] = a
            self.barrier.wait()
            total = self.slots[0].copy()
            for r in range(1, self.size):
                total += self.slots[r]
            self.barrier.wait()  # everyone has read every buffer before anyone writes
            a[...] = total
        return op

    def broadcast_op(self, rank):
        def op(a, root):
            if rank == root:
                self.slots[root] = a
            self.barrier.wait()
            if rank != root:
                a[...] = self.slots[root]
            self.barrier.wait()
        return op

    def part(self, count, rank):
        return count * rank // self.size, count * (rank + 1) // self.size

    def reduce_scatter_op(self, rank, returning=False):
        """The sum of this rank's part only, added in rank order as sum_op
        does (the same bits); with returning, the result is returned as a
        new array (the rest of it garbage, as the contract allows)."""
        def op(a):
            self.slots[rank] = a
            self.barrier.wait()
            lo, hi = self.part(a.size, rank)
            total = self.slots[0][lo:hi].copy()
            for r in range(1, self.size):
                total += self.slots[r][lo:hi]
            self.barrier.wait()
            out = np.full_like(a, np.nan) if returning else a
            out[lo:hi] = total
            return out
        return op

    def allgather_op(self, rank, returning=False):
        def op(a):
            self.slots[rank] = a
            self.barrier.wait()
            out = a.copy() if returning else a
            for r in range(self.size):
                if r != rank:
                    lo, hi = self.part(a.size, r)
                    out[lo:hi] = self.slots[r][lo:hi]  # no rank writes another's part of its own
            self.barrier.wait()
            return out
        return op

    def comm(self, rank, sum=None, broadcast=None, reduce_scatter=None, allgather=None):
        return lv.Comm(rank, self.size, sum=self._guarded(sum or self.sum_op(rank)),
                       broadcast=self._guarded(broadcast or self.broadcast_op(rank)),
                       reduce_scatter=reduce_scatter and self._guarded(reduce_scatter),
                       allgather=allgather and self._guarded(allgather))

    def sharded_comm(self, rank, calls=None):
        """A Comm with reduce_scatter and allgather too (rank 1's return new
        arrays, rank 0's work in place); calls (a list) gets their names."""
        def counted(name, op):
            def run(a):
                if calls is not None:
                    calls.append((rank, name, a.size))
                return op(a)
            return run
        return self.comm(rank, reduce_scatter=counted("reduce_scatter",
                                                      self.reduce_scatter_op(rank, rank == 1)),
                         allgather=counted("allgather", self.allgather_op(rank, rank == 1)))


def run_ranks(size, body, make=None):
    """body(rank, comm) on `size` threads, comm = make(rank) (by default a
    World's) -> ([result per rank], [exception per rank])."""
    make = make or World(size).comm
    results, errors = [None] * size, [None] * size

    def main(rank):
        comm = make(rank)
        try:
            results[rank] = body(rank, comm)
        except BaseException as e:
            errors[rank] = e

    threads = [threading.Thread(target=main, args=(r,), daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert not any(t.is_alive() for t in threads), "a rank hangs"
    return results, errors


def new_model(comm=None):
    m = lv.Model(small_graph(seed=42))
    m.optimizer = lv.Optimizer(m, lv.OptimizerKind.ADAM, learning_rate=LR)
    if comm is not None:
        m.set_comm(comm)
    return m


def train(m, ds):
    losses = [m.train_epoch(ds, BATCH) for _ in range(EPOCHS)]
    return {"losses": losses, "evaluate": m.evaluate(ds), "terms": m.evaluate_terms(ds),
            "checksum": m.checksum(), "params": m.params}


@pytest.fixture(scope="module")
def dataset():
    imgs, labels = data(100)  # 100 rows: batches of 32, 32, 32, 4 split over the ranks
    return imgs, labels


@pytest.fixture(scope="module")
def one_process(dataset):
    m = new_model()
    out = train(m, lv.Dataset.from_numpy(*dataset))
    m.close()
    return out


def rel_close(a, b, rel=1e-4):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def two_ranks(dataset, make=None):
    def body(rank, comm):
        m = new_model(comm)
        assert m.comm is comm and comm.rank == rank and comm.size == 2
        m.comm_check(optimizer=True)
        out = train(m, lv.Dataset.from_numpy(*dataset))
        m.comm_check(optimizer=True)  # a sharded epoch gathers the moments when it ends
        out["ll"] = m.log_likelihood(lv.Dataset.from_numpy(*dataset), 4, seed=7)
        out["sharded"] = comm.sharded
        return out

    return run_ranks(2, body, make)


@pytest.fixture(scope="module")
def two_ranks_sum_only(dataset):
    (r0, r1), errors = two_ranks(dataset)
    assert errors == [None, None], errors
    return r0, r1


def test_two_ranks_train_as_one_process(dataset, one_process, two_ranks_sum_only):
    r0, r1 = two_ranks_sum_only
    assert not r0["sharded"] and not r1["sharded"]
    assert r0["checksum"] == r1["checksum"] and np.array_equal(r0["params"], r1["params"])
    assert r0["losses"] == r1["losses"] and r0["evaluate"] == r1["evaluate"]
    assert r0["terms"] == r1["terms"] and r0["ll"] == r1["ll"]
    for (obj, nelbo), (obj1, nelbo1) in zip(r0["losses"], one_process["losses"]):
        assert rel_close(obj, obj1) and rel_close(nelbo, nelbo1), (r0["losses"], one_process["losses"])
    assert rel_close(r0["evaluate"], one_process["evaluate"])
    for a, b in zip(r0["terms"], one_process["terms"]):
        assert rel_close(a, b, 1e-3)
    assert np.allclose(r0["params"], one_process["params"], rtol=1e-3, atol=1e-5)


def test_two_ranks_sharded_train_as_the_sum(dataset, two_ranks_sum_only):
    """With reduce_scatter and allgather too, train_epoch shards the update
    (each rank updates its half of the weights and moments): the same
    training as the sum alone, since the fake adds in the same order."""
    world, calls = World(2), []
    (r0, r1), errors = two_ranks(dataset, lambda rank: world.sharded_comm(rank, calls))
    assert errors == [None, None], errors
    assert r0["sharded"] and r1["sharded"]
    n = r0["params"].size
    names = {name for _, name, _ in calls}
    assert names == {"reduce_scatter", "allgather"}, names
    assert {size for _, _, size in calls} == {n}  # weights, gradients and moments alike
    steps = EPOCHS * 4  # 100 rows in batches of 32
    for rank in (0, 1):
        mine = [name for r, name, _ in calls if r == rank]
        # per step a reduce-scatter of the gradient and an allgather of the
        # weights; per epoch also an allgather of each of Adam's two moments
        assert mine.count("reduce_scatter") == steps, mine
        assert mine.count("allgather") >= steps, mine
    assert r0["checksum"] == r1["checksum"] and np.array_equal(r0["params"], r1["params"])
    assert r0["losses"] == r1["losses"] and r0["evaluate"] == r1["evaluate"]
    assert r0["terms"] == r1["terms"] and r0["ll"] == r1["ll"]
    s0 = two_ranks_sum_only[0]
    for (obj, nelbo), (obj1, nelbo1) in zip(r0["losses"], s0["losses"]):
        assert rel_close(obj, obj1, 1e-6) and rel_close(nelbo, nelbo1, 1e-6), \
            (r0["losses"], s0["losses"])
    assert rel_close(r0["evaluate"], s0["evaluate"], 1e-6)
    assert np.allclose(r0["params"], s0["params"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("op", ["reduce_scatter", "allgather"])
def test_raising_shard_operation_fails_every_rank(dataset, op):
    """Rank 1's reduce_scatter or allgather raises at its first call (the
    first batch): both ranks get a CommError, rank 1's caused by the
    exception, as for the sum; nobody hangs."""
    world = World(2, timeout=20)

    def make(rank):
        comm = world.sharded_comm(rank)
        if rank == 1:
            def boom(a):
                raise Boom("rank 1's %s failed" % op)
            getattr(comm, "set_" + op)(world._guarded(boom))
        return comm

    def body(rank, comm):
        m = new_model(comm)
        with pytest.raises(lv.LibvaeError) as e:
            m.train_epoch(lv.Dataset.from_numpy(*dataset), BATCH)
        assert comm.callback_error is None
        return e.value

    (e0, e1), errors = run_ranks(2, body, make)
    assert errors == [None, None], errors
    assert e0.status == e1.status == lv.Status.COMM
    assert isinstance(e1, lv.CommError) and isinstance(e1.__cause__, Boom)
    assert e1.callback_error is e1.__cause__ and op in str(e1.__cause__)
    assert isinstance(e0, lv.CommError) and isinstance(e0.__cause__, threading.BrokenBarrierError)


def test_comm_check_names_a_difference(dataset):
    def body(rank, comm):
        m = new_model(comm)
        if rank == 1:
            p = m.params
            p[0] += 1e-3
            m.params = p
        with pytest.raises(lv.CommError, match="weights"):
            m.comm_check()
        with pytest.raises(lv.CommError, match="weights"):  # an epoch checks when it starts
            m.train_epoch(lv.Dataset.from_numpy(*dataset), BATCH)
        return m.checksum()

    (c0, c1), errors = run_ranks(2, body)
    assert errors == [None, None], errors
    assert c0 != c1


class Boom(Exception):
    pass


@pytest.mark.parametrize("when", ["after_exchange", "before_exchange"])
def test_raising_operation_fails_every_rank(dataset, when):
    """Rank 1's sum raises at its 3rd call (the first batch's gradient sum),
    before or after taking part in the exchange: rank 0's operation fails
    then or at its next collective (the World breaks its barrier).  Both
    ranks get a CommError, rank 1's caused by the exception; nobody hangs."""
    world = World(2, timeout=20)

    def make(rank):
        if rank == 0:
            return world.comm(0)
        inner, calls = world.sum_op(1), []

        def flaky(a):
            calls.append(a.size)
            if when == "before_exchange" and len(calls) == 3:
                raise Boom("rank 1's sum failed")
            inner(a)
            if when == "after_exchange" and len(calls) == 3:
                raise Boom("rank 1's sum failed")
        return world.comm(1, sum=flaky)

    def body(rank, comm):
        m = new_model(comm)
        with pytest.raises(lv.LibvaeError) as e:
            m.train_epoch(lv.Dataset.from_numpy(*dataset), BATCH)
        assert comm.callback_error is None  # reported, not left behind
        return e.value

    (e0, e1), errors = run_ranks(2, body, make)
    assert errors == [None, None], errors
    assert e0.status == e1.status == lv.Status.COMM
    assert isinstance(e1, lv.CommError) and isinstance(e1.__cause__, Boom)
    assert e1.callback_error is e1.__cause__ and "rank 1's sum failed" in str(e1.__cause__)
    assert e1.__cause__.__traceback__ is not None
    assert isinstance(e0, lv.CommError) and isinstance(e0.__cause__, threading.BrokenBarrierError)


def test_a_rank_failing_alone_fails_every_rank(dataset):
    """A local failure on one rank (a bad batch) is agreed on: that rank
    gets its own error, the other a CommError naming it; the next calls work."""
    imgs = dataset[0][:16] / 255.0

    def body(rank, comm):
        m = new_model(comm)
        bad = imgs * 3 if rank == 1 else imgs  # pixels outside [0, 1] on rank 1 only
        with pytest.raises(lv.LibvaeError) as e:
            m.train_step(bad)
        m.comm_check(optimizer=True)  # nothing changed, on either rank
        m.train_step(imgs)
        return e.value, m.checksum()

    ((e0, c0), (e1, c1)), errors = run_ranks(2, body)
    assert errors == [None, None], errors
    assert isinstance(e1, lv.ArgumentError) and "values in [0, 1]" in e1.message
    assert isinstance(e0, lv.CommError) and "rank 1 of 2 failed" in e0.message
    assert e0.__cause__ is None and c0 == c1


def test_agree_broadcast_guard():
    def body(rank, comm):
        a = np.full(5, rank, np.float64)
        assert comm.broadcast(a, root=1) is a and (a == 1).all()
        b = np.arange(6, dtype=np.int32).reshape(2, 3) * (rank + 1)
        comm.broadcast(b, 0)
        assert np.array_equal(b, np.arange(6).reshape(2, 3))
        with pytest.raises(lv.ArgumentError):
            comm.broadcast(np.zeros((4, 4))[:, 0])  # not contiguous: refused before any exchange
        comm.agree()
        comm.agree(lv.Status.OK)
        if rank == 1:
            with pytest.raises(lv.FileError):  # its own status
                comm.agree(lv.Status.IO)
        else:
            with pytest.raises(lv.CommError, match="rank 1 of 2 failed"):
                comm.agree()
        with pytest.raises((KeyError, lv.CommError)) as e:
            with comm.guard():
                if rank == 0:
                    raise KeyError("rank 0's step")
        assert isinstance(e.value, KeyError if rank == 0 else lv.CommError)
        with comm.guard():
            pass
        return True

    results, errors = run_ranks(2, body)
    assert errors == [None, None] and results == [True, True], errors


def test_comm_lifetime_and_one_rank(dataset, one_process):
    with pytest.raises(lv.ArgumentError):
        lv.Comm(2, 2)
    lone = lv.Comm()  # one rank: no operations needed, training is local
    assert (lone.rank, lone.size) == (0, 1) and "rank 0 of 1" in repr(lone)
    m = new_model(lone)
    out = train(m, lv.Dataset.from_numpy(*dataset))
    assert out["checksum"] == one_process["checksum"] and out["losses"] == one_process["losses"]
    m.comm_check(optimizer=m.optimizer)
    lone.agree()
    assert lone.broadcast(np.arange(3)).tolist() == [0, 1, 2]
    two = lv.Comm(0, 2)
    with pytest.raises(lv.ArgumentError, match="sum and a broadcast"):
        m.set_comm(two)  # no operations yet
    two.set_sum(lambda a: None)
    two.set_broadcast(lambda a, root: None)
    m.set_comm(two)
    assert m.comm is two and m.checksum() == out["checksum"]
    two.close()  # detaches its models first
    assert m.comm is None and "closed" in repr(two)
    with pytest.raises(lv.StateError):
        two.rank
    m.set_comm(None)
    clone = m.clone()
    with pytest.raises(lv.StateError):
        clone.set_comm(lone)
    m.close()
    lone.close()


def test_operation_results_and_errors_in_the_operation():
    seen = []

    def returning_sum(a):  # returns a new array instead of writing in place
        seen.append((a.dtype, a.shape))
        return a * 2

    def bad_broadcast(a, root):
        return np.zeros(a.size + 1, np.uint8)  # wrong size: an error in the operation

    c = lv.Comm(0, 2, sum=returning_sum, broadcast=bad_broadcast)
    m = new_model(c)
    with pytest.raises(lv.CommError) as e:
        m.comm_check()  # starts with a broadcast from rank 0
    assert isinstance(e.value.__cause__, ValueError) and c.callback_error is None
    c.set_broadcast(lambda a, root: None)
    with pytest.raises(lv.FileError):
        c.agree(lv.Status.IO)  # goes through the sum; this rank's own status
    assert seen and seen[-1][0] == np.float64

    def interrupted(a, root):
        raise KeyboardInterrupt

    c.set_broadcast(interrupted)
    with pytest.raises(KeyboardInterrupt):
        c.broadcast(np.zeros(3))
    m.close()
    c.close()


# ---- mpi4py under mpirun ----
MPI_SCRIPT = r"""
import json, sys
import numpy as np
from mpi4py import MPI
import libvae as lv
sys.path.insert(0, sys.argv[1])
from test_libvae import data, small_graph
world = MPI.COMM_WORLD
ds = lv.Dataset.from_numpy(*data(100))


def trained(comm):
    m = lv.Model(small_graph(seed=42))
    m.optimizer = lv.Optimizer(m, lv.OptimizerKind.ADAM, learning_rate=%(lr)r)
    m.set_comm(comm)
    losses = [m.train_epoch(ds, %(batch)d) for _ in range(%(epochs)d)]
    m.comm_check(optimizer=True)
    return m, losses


# the sum alone; then sharded (reduce-scatter and allgather) in pieces of
# 4000 bytes, which split the 4518 weights across the ranks' parts
with lv.Comm.from_mpi4py(world, shard=False) as plain:
    m, losses = trained(plain)
    plain_run = {"sharded": plain.sharded, "losses": losses, "checksum": m.checksum()}
    m.close()
lv.comm.MPI_CHUNK_BYTES, chunk = 4000, lv.comm.MPI_CHUNK_BYTES
with lv.Comm.from_mpi4py(world, shard=True) as pieces:
    m, losses = trained(pieces)
    pieces_run = {"sharded": pieces.sharded, "losses": losses, "checksum": m.checksum()}
    m.close()
lv.comm.MPI_CHUNK_BYTES = chunk
comm = lv.Comm.from_mpi4py(world, shard=True)  # sharded, in one piece
m, losses = trained(comm)
out = {"rank": comm.rank, "size": comm.size, "losses": losses, "evaluate": m.evaluate(ds),
       "checksum": m.checksum(), "sharded": comm.sharded, "plain": plain_run,
       "pieces": pieces_run}
a = np.full(4, comm.rank, np.float32)
comm.broadcast(a, root=1)
out["broadcast"] = a.tolist()
try:
    with comm.guard():
        if comm.rank == 1:
            raise OSError("rank 1 cannot write")
except (OSError, lv.CommError) as e:
    out["guard"] = type(e).__name__
m.close()
comm.close()
with open("%%s/result-%%d.json" %% (sys.argv[2], out["rank"]), "w") as f:  # mpirun mixes stdouts
    json.dump(out, f)
"""


def test_mpi4py_two_ranks(tmp_path, one_process):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("mpirun is not installed (apt-get install openmpi-bin)")
    if subprocess.run([sys.executable, "-c", "import mpi4py"], capture_output=True).returncode:
        pytest.skip("mpi4py is not installed for %s (apt-get install python3-mpi4py)" % sys.executable)
    script = tmp_path / "mpi_train.py"
    script.write_text(MPI_SCRIPT % {"lr": LR, "batch": BATCH, "epochs": EPOCHS})
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none",
               PYTHONPATH=os.pathsep.join(p for p in (os.path.join(ROOT, "python"),
                                                      os.environ.get("PYTHONPATH")) if p))
    if os.environ.get("LIBVAE_LIBRARY"):
        env["LIBVAE_LIBRARY"] = os.path.abspath(os.environ["LIBVAE_LIBRARY"])
    ranks_only = []  # a sanitizer build's preload: for the ranks, not for mpirun itself
    if env.get("LD_PRELOAD"):
        ranks_only = ["-x", "LD_PRELOAD=" + env.pop("LD_PRELOAD")]
    cmd = ([shutil.which("timeout"), "120"] if shutil.which("timeout") else []) + \
        [mpirun, "--oversubscribe", "-np", "2"] + ranks_only + \
        [sys.executable, str(script), HERE, str(tmp_path)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, "mpirun failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    res = [json.loads((tmp_path / ("result-%d.json" % r)).read_text()) for r in (0, 1)]
    assert [r["rank"] for r in res] == [0, 1] and all(r["size"] == 2 for r in res), p.stdout
    r0, r1 = res
    assert r0["checksum"] == r1["checksum"] and r0["losses"] == r1["losses"]
    assert r0["evaluate"] == r1["evaluate"]
    for (obj, nelbo), (obj1, nelbo1) in zip(r0["losses"], one_process["losses"]):
        assert rel_close(obj, obj1) and rel_close(nelbo, nelbo1)
    assert rel_close(r0["evaluate"], one_process["evaluate"])
    assert r0["broadcast"] == r1["broadcast"] == [1.0] * 4
    # sharded or not, in one piece or several: the same training, the same
    # weights on both ranks; in pieces or not, the same bits
    assert r0["sharded"] and r0["pieces"]["sharded"] and not r0["plain"]["sharded"]
    assert r0["plain"] == r1["plain"] and r0["pieces"] == r1["pieces"]
    assert r0["pieces"]["checksum"] == r0["checksum"] and r0["pieces"]["losses"] == r0["losses"]
    for (obj, nelbo), (obj1, nelbo1) in zip(r0["plain"]["losses"], r0["losses"]):
        assert rel_close(obj, obj1, 1e-6) and rel_close(nelbo, nelbo1, 1e-6)
    assert (r0["guard"], r1["guard"]) == ("CommError", "OSError")
