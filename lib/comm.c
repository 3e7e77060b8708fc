/* Communicators: the host's collective operations (an all-reduce sum and a
   broadcast) behind an opaque handle, and what the library builds on them:
   each rank's share of a batch, agreement on a status, and checks that
   every rank holds the same weights.  Every collective helper here is
   entered by every rank the same number of times, whatever failed
   locally, so that no rank is left waiting in a collective. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct vae_comm {
    int rank, size;
    vae_comm_sum_fn sum;
    void *sum_user;
    vae_comm_broadcast_fn broadcast;
    void *broadcast_user;
    vae_comm_reduce_scatter_fn reduce_scatter; /* optional, with allgather */
    void *reduce_scatter_user;
    vae_comm_allgather_fn allgather;
    void *allgather_user;
    int64_t failures; /* callbacks that failed: after one, the ranks may
                         not agree on where they are */
};

VAE_API vae_status vae_comm_create(vae_comm **out, int rank, int size)
{
    vae_comm *c;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_create: out is NULL");
    if (size < 1 || rank < 0 || rank >= size)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_create: rank %d of %d ranks (0 <= rank < "
                         "size)", rank, size);
    if (!(c = vae__calloc(1, sizeof *c)))
        return VAE_ERR_NO_MEMORY;
    c->rank = rank;
    c->size = size;
    *out = c;
    return VAE_OK;
}

VAE_API void vae_comm_free(vae_comm *c) { free(c); }

VAE_API vae_status vae_comm_set_sum(vae_comm *c, vae_comm_sum_fn fn, void *user)
{
    if (!c || !fn)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_set_sum: NULL communicator or function");
    c->sum = fn;
    c->sum_user = user;
    return VAE_OK;
}

VAE_API vae_status vae_comm_set_broadcast(vae_comm *c, vae_comm_broadcast_fn fn, void *user)
{
    if (!c || !fn)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_set_broadcast: NULL communicator or "
                         "function");
    c->broadcast = fn;
    c->broadcast_user = user;
    return VAE_OK;
}

VAE_API vae_status vae_comm_set_reduce_scatter(vae_comm *c, vae_comm_reduce_scatter_fn fn,
                                               void *user)
{
    if (!c || !fn)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_set_reduce_scatter: NULL communicator or "
                         "function");
    c->reduce_scatter = fn;
    c->reduce_scatter_user = user;
    return VAE_OK;
}

VAE_API vae_status vae_comm_set_allgather(vae_comm *c, vae_comm_allgather_fn fn, void *user)
{
    if (!c || !fn)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_set_allgather: NULL communicator or "
                         "function");
    c->allgather = fn;
    c->allgather_user = user;
    return VAE_OK;
}

VAE_API int vae_comm_rank(const vae_comm *c) { return c ? c->rank : 0; }
VAE_API int vae_comm_size(const vae_comm *c) { return c ? c->size : 1; }

/* A callback failed: counted, and said. */
static vae_status callback_failed(vae_comm *c, const char *op, int64_t count,
                                  const char *unit, int rc)
{
    c->failures++;
    return vae__fail(VAE_ERR_COMM, "rank %d of %d: the %s of %lld %s failed (the callback "
                     "returned %d)", c->rank, c->size, op, (long long)count, unit, rc);
}

int64_t vae__comm_failures(const vae_comm *c) { return c ? c->failures : 0; }

static int comm_ready(const vae_comm *c) { return c->size == 1 || (c->sum && c->broadcast); }

static vae_status sum_values(vae_comm *c, void *data, int64_t count, vae_comm_type type)
{
    int rc;
    if (c->size == 1 || count == 0)
        return VAE_OK;
    if (!c->sum)
        return vae__fail(VAE_ERR_COMM, "the communicator has no sum operation "
                         "(vae_comm_set_sum)");
    if ((rc = c->sum(c->sum_user, data, count, type)) != 0)
        return callback_failed(c, "sum", count, "values", rc);
    return VAE_OK;
}

int vae__comm_sharded(const vae_comm *c)
{
    return c && c->size > 1 && c->reduce_scatter && c->allgather;
}

vae_status vae__comm_reduce_scatter(vae_comm *c, float *data, int64_t count)
{
    int rc = c->reduce_scatter(c->reduce_scatter_user, data, count);
    if (rc != 0)
        return callback_failed(c, "reduce-scatter", count, "values", rc);
    return VAE_OK;
}

vae_status vae__comm_allgather(vae_comm *c, float *data, int64_t count)
{
    int rc = c->allgather(c->allgather_user, data, count);
    if (rc != 0)
        return callback_failed(c, "allgather", count, "values", rc);
    return VAE_OK;
}

vae_status vae__comm_sum_floats(vae_comm *c, float *data, int64_t count)
{
    return sum_values(c, data, count, VAE_COMM_FLOAT32);
}

vae_status vae__comm_sum_doubles(vae_comm *c, double *data, int64_t count)
{
    return sum_values(c, data, count, VAE_COMM_FLOAT64);
}

VAE_API vae_status vae_comm_broadcast(vae_comm *c, void *data, int64_t bytes, int root)
{
    int rc;
    if (!c || !data || bytes < 0 || root < 0 || root >= c->size)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_broadcast: NULL argument, negative size "
                         "or root out of range");
    if (c->size == 1 || bytes == 0)
        return VAE_OK;
    if (!c->broadcast)
        return vae__fail(VAE_ERR_COMM, "the communicator has no broadcast operation "
                         "(vae_comm_set_broadcast)");
    if ((rc = c->broadcast(c->broadcast_user, data, bytes, root)) != 0)
        return callback_failed(c, "broadcast", bytes, "bytes", rc);
    return VAE_OK;
}

/* The counts an agreement sums: failed ranks, the sum of their statuses and
   of their ranks (exact when one failed, which is the common case). */
enum { AGREE_FAILED, AGREE_STATUS, AGREE_RANK, AGREE_SLOTS };

vae_status vae__comm_agree_with(vae_comm *c, vae_status local, double *extra, int n_extra,
                                const char *what)
{
    double v[AGREE_SLOTS + 16] = {0};
    char keep[1024];
    vae_status s;
    if (c->size == 1)
        return local;
    if (local != VAE_OK) {
        v[AGREE_FAILED] = 1.0;
        v[AGREE_STATUS] = (double)local;
        v[AGREE_RANK] = (double)c->rank;
        /* a failed rank keeps its own message: the sum's may not replace it */
        snprintf(keep, sizeof keep, "%s", vae_last_error());
    }
    if (n_extra > 0) /* extra may be NULL then, which memcpy must not see */
        memcpy(v + AGREE_SLOTS, extra, (size_t)n_extra * sizeof *extra);
    s = vae__comm_sum_doubles(c, v, AGREE_SLOTS + n_extra);
    if (local != VAE_OK)
        return vae__fail(local, "%s", keep);
    if (s != VAE_OK)
        return s;
    if (n_extra > 0)
        memcpy(extra, v + AGREE_SLOTS, (size_t)n_extra * sizeof *extra);
    if (v[AGREE_FAILED] == 0.0)
        return VAE_OK;
    if (v[AGREE_FAILED] == 1.0)
        return vae__fail(VAE_ERR_COMM, "%s: rank %d of %d failed (%s); see its message", what,
                         (int)v[AGREE_RANK], c->size, vae_strerror((vae_status)v[AGREE_STATUS]));
    return vae__fail(VAE_ERR_COMM, "%s: %d of %d ranks failed; see their messages", what,
                     (int)v[AGREE_FAILED], c->size);
}

VAE_API vae_status vae_comm_agree(vae_comm *c, vae_status local)
{
    if (!c)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_comm_agree: communicator is NULL");
    return vae__comm_agree_with(c, local, NULL, 0, "vae_comm_agree");
}

/* Values as 20-bit pieces and their squares: summed over n ranks (exactly,
   in doubles) they are n p and n p^2 only if every rank has p, so every
   rank reaches the same verdict from the same sums. */
void vae__comm_alike_values(const int64_t *values, int n, double *v)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            double piece = (double)(k ? values[i] >> 20 : values[i] & 0xfffff);
            v[4 * i + 2 * k] = piece;
            v[4 * i + 2 * k + 1] = piece * piece;
        }
}

int vae__comm_alike(const vae_comm *c, const int64_t *values, int n, const double *sums)
{
    double mine[4 * ALIKE_MAX], size = vae_comm_size(c);
    vae__comm_alike_values(values, n, mine);
    for (int i = 0; i < 4 * n; i++)
        if (sums[i] != size * mine[i])
            return 0;
    return 1;
}

void vae__comm_share(const vae_comm *c, int64_t rows, int64_t *lo, int64_t *hi)
{
    int rank = c ? c->rank : 0, size = c ? c->size : 1;
    *lo = rows * rank / size;
    *hi = rows * (rank + 1) / size;
}

int vae__comm_active(const vae_comm *c) { return c && c->size > 1; }

VAE_API vae_status vae_model_set_comm(vae_model *m, vae_comm *c)
{
    const char *what = "vae_model_set_comm";
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: model is NULL", what);
    VAE_TRY(vae__model_check_writable(m, what));
    if (c && !comm_ready(c))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the communicator of %d ranks needs both a sum "
                         "and a broadcast operation", what, c->size);
    m->comm = c;
    return VAE_OK;
}

VAE_API vae_comm *vae_model_comm(const vae_model *m) { return m ? m->comm : NULL; }

/* FNV-1a over 64-bit words, then a final mix: fast enough to run over
   millions of weights at every epoch's end, and any flipped bit shows. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t params_hash(const vae_model *m)
{
    return hash_bytes(0xcbf29ce484222325ULL, m->g->params, (size_t)m->g->n_params * sizeof(float));
}

VAE_API uint64_t vae_model_checksum(const vae_model *m)
{
    return m ? mix(params_hash(m)) : 0;
}

/* What must be equal on every rank, hashed apart so a mismatch can be
   named: the weights, the training position, the optimizer. */
enum { SAME_WEIGHTS, SAME_POSITION, SAME_OPTIMIZER, SAME_COUNT };

static void state_hashes(const vae_model *m, const vae_optimizer *opt, uint64_t h[SAME_COUNT])
{
    const train_state *t = &m->train;
    int64_t position[4] = {t->epoch, t->epoch_pos, t->batch, t->steps};
    h[SAME_WEIGHTS] = mix(params_hash(m));
    h[SAME_POSITION] = mix(hash_bytes(1, position, sizeof position));
    h[SAME_OPTIMIZER] = 0;
    if (opt) {
        uint64_t o = hash_bytes(2, opt->settings, sizeof opt->settings);
        o = hash_bytes(o, &opt->steps, sizeof opt->steps);
        if (opt->moment1)
            o = hash_bytes(o, opt->moment1, (size_t)opt->n * sizeof(float));
        if (opt->moment2)
            o = hash_bytes(o, opt->moment2, (size_t)opt->n * sizeof(float));
        h[SAME_OPTIMIZER] = mix(o);
    }
}

vae_status vae__comm_check_same(vae_model *m, const vae_optimizer *opt, vae_status local,
                                const char *what)
{
    static const char *const names[SAME_COUNT] = {"weights", "training position",
                                                  "optimizer state"};
    vae_comm *c = m->comm;
    uint64_t mine[SAME_COUNT], root[SAME_COUNT];
    double differ[SAME_COUNT] = {0};
    vae_status s;
    if (!vae__comm_active(c))
        return local;
    state_hashes(m, opt, mine);
    memcpy(root, mine, sizeof root);
    /* a rank that already failed still takes part, so nobody waits */
    if ((s = vae_comm_broadcast(m->comm, root, sizeof root, 0)) != VAE_OK && local == VAE_OK)
        local = s;
    for (int i = 0; i < SAME_COUNT && local == VAE_OK; i++)
        differ[i] = root[i] != mine[i];
    VAE_TRY(vae__comm_agree_with(c, local, differ, SAME_COUNT, what));
    for (int i = 0; i < SAME_COUNT; i++)
        if (differ[i] > 0.0)
            return vae__fail(VAE_ERR_COMM, "%s: the %s of %d of %d ranks differ from rank 0's "
                             "(ranks must start from the same model and make the same calls)",
                             what, names[i], (int)differ[i], c->size);
    return VAE_OK;
}

VAE_API vae_status vae_model_comm_check(vae_model *m, const vae_optimizer *opt)
{
    const char *what = "vae_model_comm_check";
    vae_status local = VAE_OK;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: model is NULL", what);
    if (opt && opt->model != m)
        local = vae__fail(VAE_ERR_ARGUMENT, "%s: the optimizer belongs to another model", what);
    return vae__comm_check_same(m, opt, local, what);
}
