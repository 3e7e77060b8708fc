/* libvae_mpi: libvae's communicator callbacks on an MPI communicator. */
#include "vae_mpi.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes per MPI call.  MPI counts are int, so long arrays need several
   calls anyway; 8 MiB pieces also avoid a cliff of Open MPI 4.1 over
   shared memory without single-copy (no CMA, as in containers), where an
   all-reduce of more than 32 MB fell from 6 GB/s to 0.35 GB/s.  Splitting
   costs nothing measurable: a 40 MB sum of 2 ranks took 6 ms in 8 MiB
   pieces against 110-140 ms whole, a 28 MB one 4.1-4.5 ms either way, and
   a 40 MB broadcast 2.4-2.5 ms either way (bench/allreduce_time.c).
   The reduce-scatter and the all-gather are one MPI call each, over the
   whole array whose parts libvae defines, and so meet that cliff: for 2
   ranks the pair took 8.6-9.0 ms on 28 MB (all-reduce in pieces 4.4-4.7
   ms) but 180 ms on 40 MB (6.4-6.5 ms), almost all in the reduce-scatter. */
#define CHUNK_BYTES ((int64_t)8 << 20)

struct vae_mpi {
    MPI_Comm comm; /* the duplicate: libvae's collectives only */
    vae_comm *vc;
    int rank, size, local_size, local_rank;
    double seconds;
    int64_t calls, bytes;
    /* The ranks' parts of the last count of reduce_scatter_cb or
       allgather_cb (-1: none yet): counts[r] floats at displs[r]. */
    int64_t parts_of;
    int *counts, *displs;
};

static _Thread_local char last_error[512];

static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

/* Keeps MPI's text for code rc as the last error; returns rc (non-zero). */
static int mpi_error(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    set_error("%s: %s", what, text);
    return rc;
}

static void account(vae_mpi *m, double start, int64_t bytes)
{
    m->seconds += MPI_Wtime() - start;
    m->calls++;
    m->bytes += bytes;
}

static int sum_cb(void *user, void *data, int64_t count, vae_comm_type type)
{
    vae_mpi *m = user;
    MPI_Datatype dt;
    int64_t elem, done;
    int rc = MPI_SUCCESS;
    double start = MPI_Wtime();
    if (type == VAE_COMM_FLOAT32) {
        dt = MPI_FLOAT;
        elem = sizeof(float);
    } else if (type == VAE_COMM_FLOAT64) {
        dt = MPI_DOUBLE;
        elem = sizeof(double);
    } else {
        set_error("vae_mpi: sum of an unknown element type %d", (int)type);
        return -1;
    }
    for (done = 0; done < count && rc == MPI_SUCCESS;) {
        int n = (int)(count - done < CHUNK_BYTES / elem ? count - done : CHUNK_BYTES / elem);
        rc = MPI_Allreduce(MPI_IN_PLACE, (char *)data + done * elem, n, dt, MPI_SUM, m->comm);
        done += n;
    }
    account(m, start, count * elem);
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "vae_mpi: MPI_Allreduce");
}

static int broadcast_cb(void *user, void *data, int64_t bytes, int root)
{
    vae_mpi *m = user;
    int64_t done;
    int rc = MPI_SUCCESS;
    double start = MPI_Wtime();
    for (done = 0; done < bytes && rc == MPI_SUCCESS;) {
        int n = (int)(bytes - done < CHUNK_BYTES ? bytes - done : CHUNK_BYTES);
        rc = MPI_Bcast((char *)data + done, n, MPI_BYTE, root, m->comm);
        done += n;
    }
    account(m, start, bytes);
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "vae_mpi: MPI_Bcast");
}

/* Rank r's part of count values starts at count * r / size (include/vae.h),
   computed as (q * size + rem) * r / size = q * r + rem * r / size so that
   no product overflows: rem * r < size^2 <= 2^62, and q * r < 2^62 once
   q = count / size <= INT_MAX. */
static int64_t part_start(int64_t count, int r, int size)
{
    int64_t q = count / size, rem = count % size;
    return q * r + rem * r / size;
}

/* Sets m->counts and m->displs to the parts of count; 0, or non-zero with
   a message when a part or its start does not fit MPI's int. */
static int set_parts(vae_mpi *m, int64_t count, const char *what)
{
    int r;
    if (count == m->parts_of)
        return 0;
    if (count < 0) {
        set_error("vae_mpi: %s of a negative count, %lld", what, (long long)count);
        return -1;
    }
    if (count / m->size > INT_MAX || part_start(count, m->size - 1, m->size) > INT_MAX) {
        set_error("vae_mpi: %s of %lld floats over %d ranks: a part or its offset is more "
                  "than MPI's int counts allow (INT_MAX = %d)",
                  what, (long long)count, m->size, INT_MAX);
        return -1;
    }
    for (r = 0; r < m->size; r++) {
        int64_t lo = part_start(count, r, m->size), hi = part_start(count, r + 1, m->size);
        if (hi - lo > INT_MAX) {
            set_error("vae_mpi: %s of %lld floats over %d ranks: rank %d's part of %lld floats is "
                      "more than MPI's int counts allow (INT_MAX = %d)",
                      what, (long long)count, m->size, r, (long long)(hi - lo), INT_MAX);
            return -1;
        }
        m->displs[r] = (int)lo;
        m->counts[r] = (int)(hi - lo);
    }
    m->parts_of = count;
    return 0;
}

/* One MPI_Reduce_scatter over the whole array (not in pieces: the parts
   are those of the whole).  In place, MPI leaves this rank's sum at the
   start of data; it is moved to the part's own place. */
static int reduce_scatter_cb(void *user, float *data, int64_t count)
{
    vae_mpi *m = user;
    int rc;
    double start = MPI_Wtime();
    if (set_parts(m, count, "reduce_scatter") != 0)
        return -1;
    rc = MPI_Reduce_scatter(MPI_IN_PLACE, data, m->counts, MPI_FLOAT, MPI_SUM, m->comm);
    if (rc == MPI_SUCCESS && m->displs[m->rank] > 0)
        memmove(data + m->displs[m->rank], data, (size_t)m->counts[m->rank] * sizeof *data);
    account(m, start, count * (int64_t)sizeof *data);
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "vae_mpi: MPI_Reduce_scatter");
}

/* One MPI_Allgatherv, in place: each rank's part is already at its place. */
static int allgather_cb(void *user, float *data, int64_t count)
{
    vae_mpi *m = user;
    int rc;
    double start = MPI_Wtime();
    if (set_parts(m, count, "allgather") != 0)
        return -1;
    rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, m->counts, m->displs, MPI_FLOAT,
                        m->comm);
    account(m, start, count * (int64_t)sizeof *data);
    return rc == MPI_SUCCESS ? 0 : mpi_error(rc, "vae_mpi: MPI_Allgatherv");
}

VAE_MPI_API vae_status vae_mpi_shard_update(vae_mpi *m)
{
    if (!m) {
        set_error("vae_mpi_shard_update: NULL handle");
        return VAE_ERR_ARGUMENT;
    }
    vae_comm_set_reduce_scatter(m->vc, reduce_scatter_cb, m);
    vae_comm_set_allgather(m->vc, allgather_cb, m);
    return VAE_OK;
}

/* The duplicate's rank and size, and the size and rank of its ranks that
   share this machine's memory. */
static int describe(MPI_Comm comm, int *rank, int *size, int *local_size, int *local_rank)
{
    MPI_Comm local;
    int rc;
    if ((rc = MPI_Comm_rank(comm, rank)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(comm, size)) != MPI_SUCCESS)
        return mpi_error(rc, "vae_mpi_create: MPI_Comm_rank/size");
    if ((rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &local)) !=
        MPI_SUCCESS)
        return mpi_error(rc, "vae_mpi_create: MPI_Comm_split_type");
    MPI_Comm_size(local, local_size);
    MPI_Comm_rank(local, local_rank);
    MPI_Comm_free(&local);
    return MPI_SUCCESS;
}

static void destroy(vae_mpi *m)
{
    if (m) {
        vae_comm_free(m->vc);
        free(m->counts);
        free(m->displs);
        free(m);
    }
}

VAE_MPI_API vae_status vae_mpi_create(vae_mpi **out, MPI_Comm comm)
{
    MPI_Comm dup;
    vae_mpi *m = NULL;
    vae_status status = VAE_OK;
    int initialized = 0, finalized = 0, rc, rank, size, local_size, local_rank, first_failed;
    if (!out) {
        set_error("vae_mpi_create: out is NULL");
        return VAE_ERR_ARGUMENT;
    }
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) {
        set_error("vae_mpi_create: MPI is %s", finalized ? "finalised"
                                                          : "not initialised (call MPI_Init first)");
        return VAE_ERR_COMM;
    }
    if (comm == MPI_COMM_NULL) {
        set_error("vae_mpi_create: comm is MPI_COMM_NULL");
        return VAE_ERR_ARGUMENT;
    }
    if ((rc = MPI_Comm_dup(comm, &dup)) != MPI_SUCCESS) {
        mpi_error(rc, "vae_mpi_create: MPI_Comm_dup");
        return VAE_ERR_COMM;
    }
    if ((rc = MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
        mpi_error(rc, "vae_mpi_create: MPI_Comm_set_errhandler");
    else
        rc = describe(dup, &rank, &size, &local_size, &local_rank);
    if (rc != MPI_SUCCESS) {
        MPI_Comm_free(&dup);
        return VAE_ERR_COMM;
    }

    /* The steps that can fail on one rank alone, then an agreement, so
       that no rank goes on with a communicator the others dropped. */
    if (!(m = calloc(1, sizeof *m)) || !(m->counts = malloc((size_t)size * sizeof(int))) ||
        !(m->displs = malloc((size_t)size * sizeof(int)))) {
        set_error("vae_mpi_create: out of memory");
        status = VAE_ERR_NO_MEMORY;
    } else if ((status = vae_comm_create(&m->vc, rank, size)) != VAE_OK) {
        set_error("vae_mpi_create: %s", vae_last_error());
    } else {
        m->comm = dup;
        m->rank = rank;
        m->size = size;
        m->parts_of = -1;
        m->local_size = local_size;
        m->local_rank = local_rank;
        vae_comm_set_sum(m->vc, sum_cb, m);
        vae_comm_set_broadcast(m->vc, broadcast_cb, m);
    }
    first_failed = status == VAE_OK ? size : rank;
    rc = MPI_Allreduce(MPI_IN_PLACE, &first_failed, 1, MPI_INT, MPI_MIN, dup);
    if (rc != MPI_SUCCESS) {
        mpi_error(rc, "vae_mpi_create: MPI_Allreduce");
        status = VAE_ERR_COMM;
    } else if (status == VAE_OK && first_failed < size) {
        set_error("vae_mpi_create: rank %d of %d failed", first_failed, size);
        status = VAE_ERR_COMM;
    }
    if (status != VAE_OK) {
        destroy(m);
        MPI_Comm_free(&dup);
        return status;
    }
    *out = m;
    return VAE_OK;
}

VAE_MPI_API vae_comm *vae_mpi_comm(const vae_mpi *m) { return m ? m->vc : NULL; }

VAE_MPI_API void vae_mpi_free(vae_mpi *m)
{
    int finalized = 0;
    if (!m)
        return;
    MPI_Finalized(&finalized);
    if (!finalized) /* MPI_Comm_free is erroneous after MPI_Finalize */
        MPI_Comm_free(&m->comm);
    destroy(m);
}

VAE_MPI_API int vae_mpi_local_size(const vae_mpi *m) { return m ? m->local_size : 1; }
VAE_MPI_API int vae_mpi_local_rank(const vae_mpi *m) { return m ? m->local_rank : 0; }

VAE_MPI_API void vae_mpi_stats(const vae_mpi *m, double *seconds, int64_t *calls, int64_t *bytes)
{
    if (seconds)
        *seconds = m ? m->seconds : 0.0;
    if (calls)
        *calls = m ? m->calls : 0;
    if (bytes)
        *bytes = m ? m->bytes : 0;
}

VAE_MPI_API void vae_mpi_stats_reset(vae_mpi *m)
{
    if (m) {
        m->seconds = 0.0;
        m->calls = m->bytes = 0;
    }
}

/* A positive int from the environment variable name, or 0. */
static int env_count(const char *name)
{
    const char *s = getenv(name);
    char *end;
    long v;
    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    return errno == 0 && *end == '\0' && v > 0 && v <= INT_MAX ? (int)v : 0;
}

VAE_MPI_API int vae_mpi_launched_size(void)
{
    int n;
    if ((n = env_count("OMPI_COMM_WORLD_SIZE")) > 0 || (n = env_count("PMI_SIZE")) > 0)
        return n;
    /* A PMIx launcher gives the rank but not the size in the environment. */
    return getenv("PMIX_RANK") ? 1 : 0;
}

VAE_MPI_API const char *vae_mpi_last_error(void) { return last_error; }
