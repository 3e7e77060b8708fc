/* Training across processes (since 0.4), tested in one process: a fake
   communicator whose W ranks are W threads, each with its own model, data
   set and optimizer built the same way, and whose sum and broadcast meet
   at a barrier on shared memory.  The sum adds every rank's copy in rank
   order, so every rank gets the same bits, as MPI_Allreduce gives them.

   The fake also checks the library's side of the contract: every rank
   enters the same collectives, in the same order, with the same sizes
   (else "mismatches"), and no rank waits for one that has left its script
   ("abandoned": the hang a real engine would have) or for longer than
   BARRIER_SECONDS ("timeouts").  It can fail a rank's n-th sum or
   broadcast, on that rank only or on every rank in that call.

   Assertions run on the main thread only (Check's nofork mode cannot fail
   a test from another thread): the rank threads record statuses,
   messages and values, and the main thread compares them once they are
   joined.

   Measured on x86-64 with OpenBLAS (the tests print it as they run):
   2 and 3 ranks against one process, 1 or 2 threads each, after 3 epochs
   the epoch means of the objective and -ELBO differ by at most 4.2e-8
   relative (the bound asserted is 1e-4) and the weights by at most 3e-8
   (one ulp; 1e-3 asserted); train_step 4.2e-8; the evaluations, per
   image too, by at most 1.7e-7 (1e-5 asserted). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { IN = 16, HIDDEN = 12, LATENT = 3, ROWS = 289 };
enum { MAX_RANKS = 4, MAX_CALLS = 16, BARRIER_SECONDS = 120 };

/* ---- the fake communicator ---- */

enum { FAKE_SUM = 1, FAKE_BROADCAST = 2, FAKE_REDUCE_SCATTER = 3, FAKE_ALLGATHER = 4 };
enum { FAULT_NONE = 0, FAULT_ONE = 1, FAULT_ALL = 2 };

typedef struct fake_call {
    int op;
    int64_t count; /* elements of a sum, bytes of a broadcast */
    int type, root;
    void *copy;    /* this rank's values (a sum) or bytes (a broadcast's root) */
    int fail;      /* an injected fault that fails every rank's call */
} fake_call;

typedef struct world {
    int size;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int arrived;
    unsigned generation;
    int departed[MAX_RANKS];
    int broken; /* a rank left or waited too long: every call fails from then on */
    fake_call call[MAX_RANKS];
    int sums[MAX_RANKS], broadcasts[MAX_RANKS]; /* calls made, by each rank's thread */
    int scatters[MAX_RANKS], gathers[MAX_RANKS];
    /* a fault: rank fault_rank's fault_at-th call of fault_op fails */
    int fault_rank, fault_op, fault_at, fault_scope;
    /* what went wrong, for the tests to assert */
    int mismatches, abandoned, timeouts;
} world;

static void world_init(world *w, int size)
{
    memset(w, 0, sizeof *w);
    w->size = size;
    w->fault_rank = -1;
    ck_assert_int_eq(pthread_mutex_init(&w->lock, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&w->cond, NULL), 0);
}

static void world_destroy(world *w)
{
    for (int r = 0; r < MAX_RANKS; r++)
        free(w->call[r].copy);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}

static void world_fault(world *w, int rank, int op, int at, int scope)
{
    w->fault_rank = rank;
    w->fault_op = op;
    w->fault_at = at;
    w->fault_scope = scope;
}

/* The barrier: 0 once every rank has arrived; non-zero if the world is
   broken, a rank left its script without arriving, or the wait timed out. */
static int world_wait(world *w)
{
    struct timespec until;
    unsigned gen;
    int failed = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BARRIER_SECONDS;
    pthread_mutex_lock(&w->lock);
    gen = w->generation;
    if (w->broken) {
        failed = 1;
    } else if (++w->arrived == w->size) {
        w->arrived = 0;
        w->generation++;
        pthread_cond_broadcast(&w->cond);
    } else {
        while (w->generation == gen && !w->broken) {
            int gone = 0;
            for (int r = 0; r < w->size; r++)
                gone |= w->departed[r];
            if (gone) {
                w->broken = 1;
                w->abandoned++;
            } else if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT) {
                w->broken = 1;
                w->timeouts++;
            }
        }
        failed = w->generation == gen;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return failed;
}

static void world_leave(world *w, int rank)
{
    pthread_mutex_lock(&w->lock);
    w->departed[rank] = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int world_broken(world *w)
{
    int b;
    pthread_mutex_lock(&w->lock);
    b = w->broken;
    pthread_mutex_unlock(&w->lock);
    return b;
}

typedef struct rank_ctx rank_ctx;

/* The fault this call of rank's meets, if any. */
static int fault_here(const world *w, int rank, int op, int nth)
{
    return w->fault_rank == rank && w->fault_op == op && w->fault_at == nth ? w->fault_scope
                                                                            : FAULT_NONE;
}

/* Publishes this rank's call (copying `bytes` of data, if any) and meets
   the others; returns non-zero if the call cannot go on. */
static int publish(world *w, int rank, fake_call call, const void *data, size_t bytes)
{
    fake_call *c = &w->call[rank];
    if (world_broken(w))
        return 1;
    free(c->copy); /* every rank passed the last call's second barrier */
    *c = call;
    c->copy = malloc(bytes + 1);
    if (!c->copy)
        return 1;
    if (bytes)
        memcpy(c->copy, data, bytes);
    return world_wait(w);
}

/* After the first barrier: non-zero unless every rank made the same call. */
static int calls_differ(world *w, int rank)
{
    const fake_call *a = &w->call[0];
    int differ = 0, fail = 0;
    for (int r = 0; r < w->size; r++) {
        const fake_call *b = &w->call[r];
        differ |= b->op != a->op || b->count != a->count || b->type != a->type ||
                  b->root != a->root;
        fail |= b->fail;
    }
    if (differ && rank == 0) {
        pthread_mutex_lock(&w->lock);
        w->mismatches++;
        pthread_mutex_unlock(&w->lock);
    }
    return differ || fail;
}

static int fake_sum(void *user, void *data, int64_t count, vae_comm_type type);
static int fake_broadcast(void *user, void *data, int64_t bytes, int root);
static int fake_reduce_scatter(void *user, float *data, int64_t count);
static int fake_allgather(void *user, float *data, int64_t count);

/* ---- a rank: its handles, and what its script recorded ---- */

typedef void (*script_fn)(rank_ctx *r);

struct rank_ctx {
    world *w; /* NULL: one process, no communicator */
    int rank, size;
    vae_comm *comm;
    vae_model *m;
    vae_optimizer *opt;
    vae_dataset *data;
    vae_tensor *x;
    const void *job; /* the test's parameters, shared and read-only */
    script_fn script;
    /* results, one entry per call recorded */
    int n;
    vae_status status[MAX_CALLS];
    char message[MAX_CALLS][512];
    int position[MAX_CALLS];
    double a[MAX_CALLS], b[MAX_CALLS], c[MAX_CALLS];
    float *images_f;
    double *images_d;
};

static int fake_sum(void *user, void *data, int64_t count, vae_comm_type type)
{
    rank_ctx *me = user;
    world *w = me->w;
    int r = me->rank, fault = fault_here(w, r, FAKE_SUM, ++w->sums[r]), rc;
    size_t elem = type == VAE_COMM_FLOAT64 ? sizeof(double) : sizeof(float);
    fake_call call = {.op = FAKE_SUM, .count = count, .type = type, .root = -1,
                      .fail = fault == FAULT_ALL};
    if (publish(w, r, call, data, (size_t)count * elem))
        return 1;
    if (!(rc = calls_differ(w, r))) {
        for (int64_t i = 0; i < count; i++) { /* in rank order: the same bits everywhere */
            if (type == VAE_COMM_FLOAT64) {
                double s = ((const double *)w->call[0].copy)[i];
                for (int k = 1; k < w->size; k++)
                    s += ((const double *)w->call[k].copy)[i];
                ((double *)data)[i] = s;
            } else {
                float s = ((const float *)w->call[0].copy)[i];
                for (int k = 1; k < w->size; k++)
                    s += ((const float *)w->call[k].copy)[i];
                ((float *)data)[i] = s;
            }
        }
    }
    if (world_wait(w))
        return 2;
    return fault == FAULT_ONE ? 3 : rc;
}

static int fake_broadcast(void *user, void *data, int64_t bytes, int root)
{
    rank_ctx *me = user;
    world *w = me->w;
    int r = me->rank, fault = fault_here(w, r, FAKE_BROADCAST, ++w->broadcasts[r]), rc;
    fake_call call = {.op = FAKE_BROADCAST, .count = bytes, .root = root,
                      .fail = fault == FAULT_ALL};
    if (publish(w, r, call, data, r == root ? (size_t)bytes : 0))
        return 1;
    if (!(rc = calls_differ(w, r)) && r != root)
        memcpy(data, w->call[root].copy, (size_t)bytes);
    if (world_wait(w))
        return 2;
    return fault == FAULT_ONE ? 3 : rc;
}

/* Rank r's part of count values, as vae.h defines it. */
static void part_of(int r, int size, int64_t count, int64_t *lo, int64_t *hi)
{
    *lo = count * r / size;
    *hi = count * (r + 1) / size;
}

/* The part summed in rank order (the bits fake_sum gives those values);
   the rest NaN, which the library must not read. */
static int fake_reduce_scatter(void *user, float *data, int64_t count)
{
    rank_ctx *me = user;
    world *w = me->w;
    int r = me->rank, fault = fault_here(w, r, FAKE_REDUCE_SCATTER, ++w->scatters[r]), rc;
    fake_call call = {.op = FAKE_REDUCE_SCATTER, .count = count, .root = -1,
                      .fail = fault == FAULT_ALL};
    int64_t lo, hi;
    if (publish(w, r, call, data, (size_t)count * sizeof *data))
        return 1;
    if (!(rc = calls_differ(w, r))) {
        part_of(r, w->size, count, &lo, &hi);
        for (int64_t i = 0; i < count; i++) {
            float sum = ((const float *)w->call[0].copy)[i];
            for (int k = 1; k < w->size; k++)
                sum += ((const float *)w->call[k].copy)[i];
            data[i] = i >= lo && i < hi ? sum : NAN;
        }
    }
    if (world_wait(w))
        return 2;
    return fault == FAULT_ONE ? 3 : rc;
}

static int fake_allgather(void *user, float *data, int64_t count)
{
    rank_ctx *me = user;
    world *w = me->w;
    int r = me->rank, fault = fault_here(w, r, FAKE_ALLGATHER, ++w->gathers[r]), rc;
    fake_call call = {.op = FAKE_ALLGATHER, .count = count, .root = -1,
                      .fail = fault == FAULT_ALL};
    if (publish(w, r, call, data, (size_t)count * sizeof *data))
        return 1;
    if (!(rc = calls_differ(w, r)))
        for (int k = 0; k < w->size; k++) {
            int64_t lo, hi;
            part_of(k, w->size, count, &lo, &hi);
            memcpy(data + lo, (const float *)w->call[k].copy + lo, (size_t)(hi - lo) * sizeof *data);
        }
    if (world_wait(w))
        return 2;
    return fault == FAULT_ONE ? 3 : rc;
}

/* Records a call's status, message and epoch position; returns s. */
static vae_status note(rank_ctx *r, vae_status s)
{
    if (r->n < MAX_CALLS) {
        r->status[r->n] = s;
        snprintf(r->message[r->n], sizeof r->message[r->n], "%s", s != VAE_OK ? vae_last_error()
                                                                             : "");
        r->position[r->n] = vae_model_epoch_position(r->m);
        r->n++;
    }
    return s;
}

static void *rank_main(void *arg)
{
    rank_ctx *r = arg;
    r->script(r);
    world_leave(r->w, r->rank);
    return NULL;
}

/* Runs fn on every rank, each on its own thread, and waits for them. */
static void run_ranks(rank_ctx *ctx, int size, script_fn fn)
{
    pthread_t th[MAX_RANKS];
    if (ctx[0].w) /* a world may serve several runs: every rank is back */
        memset(ctx[0].w->departed, 0, sizeof ctx[0].w->departed);
    for (int r = 0; r < size; r++) {
        ctx[r].script = fn;
        ck_assert_int_eq(pthread_create(&th[r], NULL, rank_main, &ctx[r]), 0);
    }
    for (int r = 0; r < size; r++)
        ck_assert_int_eq(pthread_join(th[r], NULL), 0);
}

/* The fake saw no mismatched call, no rank waiting for one that had left
   and no timeout: the library kept the ranks in step by itself. */
static void expect_clean(const world *w)
{
    ck_assert_msg(w->mismatches == 0, "%d mismatched collective call(s)", w->mismatches);
    ck_assert_msg(w->abandoned == 0, "a rank waited in a collective for a rank that had left");
    ck_assert_msg(w->timeouts == 0, "a collective timed out");
    ck_assert_int_eq(w->broken, 0);
}

/* ---- models, data, optimizers ---- */

static vae_model *make_model(uint64_t seed, int threads, int max_batch)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, seed);
    ck_assert_int_eq(vae_model_set_threads(m, threads), VAE_OK);
    ck_assert_int_eq(vae_model_set_max_batch(m, max_batch), VAE_OK);
    return m;
}

static vae_optimizer *make_opt(vae_model *m)
{
    vae_optimizer *opt = NULL;
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 3e-3), VAE_OK);
    return opt;
}

/* Rows of two blurred prototypes in [0, 1], the same for every seed-alike
   call: something to learn. */
static vae_dataset *make_data(int64_t rows)
{
    int dims[1] = {IN};
    float *v = malloc(sizeof(float) * (size_t)(rows * IN));
    vae_dataset *ds = NULL;
    tu_random(v, rows * IN, 77, 0.0f, 0.5f);
    for (int64_t i = 0; i < rows; i++)
        for (int j = 0; j < IN; j++)
            if ((j < IN / 2) == (i % 3 == 0))
                v[i * IN + j] += 0.5f;
    ck_assert_int_eq(vae_dataset_from_f32(&ds, rows, 1, dims, v, NULL), VAE_OK);
    free(v);
    return ds;
}

typedef struct setup {
    int size;      /* ranks; with w NULL, one process */
    int threads, max_batch;
    int64_t rows;  /* of the data set */
    uint64_t seed; /* of every rank's model */
    int sharded;   /* the communicators also reduce-scatter and allgather */
} setup;

/* Each rank's handles, built as separate processes would build them. */
static void ranks_create(rank_ctx *ctx, world *w, setup s)
{
    if (w)
        world_init(w, s.size);
    for (int r = 0; r < s.size; r++) {
        rank_ctx *c = &ctx[r];
        memset(c, 0, sizeof *c);
        c->w = w;
        c->rank = r;
        c->size = s.size;
        c->m = make_model(s.seed, s.threads, s.max_batch);
        if (w) {
            ck_assert_int_eq(vae_comm_create(&c->comm, r, s.size), VAE_OK);
            ck_assert_int_eq(vae_comm_set_sum(c->comm, fake_sum, c), VAE_OK);
            ck_assert_int_eq(vae_comm_set_broadcast(c->comm, fake_broadcast, c), VAE_OK);
            if (s.sharded) {
                ck_assert_int_eq(vae_comm_set_reduce_scatter(c->comm, fake_reduce_scatter, c),
                                 VAE_OK);
                ck_assert_int_eq(vae_comm_set_allgather(c->comm, fake_allgather, c), VAE_OK);
            }
            ck_assert_int_eq(vae_model_set_comm(c->m, c->comm), VAE_OK);
            ck_assert_ptr_eq(vae_model_comm(c->m), c->comm);
        }
        c->opt = make_opt(c->m);
        c->data = make_data(s.rows);
    }
}

static void ranks_free(rank_ctx *ctx, int size)
{
    for (int r = 0; r < size; r++) {
        vae_optimizer_free(ctx[r].opt);
        vae_model_free(ctx[r].m);
        vae_comm_free(ctx[r].comm);
        vae_dataset_free(ctx[r].data);
        vae_tensor_free(ctx[r].x);
        free(ctx[r].images_f);
        free(ctx[r].images_d);
    }
    if (size > 0 && ctx[0].w)
        world_destroy(ctx[0].w);
}

static float *params_of(const vae_model *m)
{
    int64_t n = vae_model_param_count(m);
    float *p = malloc(sizeof(float) * (size_t)n);
    ck_assert_int_eq(vae_model_params_get(m, p, n), VAE_OK);
    return p;
}

/* Every rank holds the same weights, bit for bit. */
static void expect_ranks_identical(rank_ctx *ctx, int size)
{
    int64_t n = vae_model_param_count(ctx[0].m);
    float *p0 = params_of(ctx[0].m);
    for (int r = 1; r < size; r++) {
        float *p = params_of(ctx[r].m);
        ck_assert_uint_eq(vae_model_checksum(ctx[r].m), vae_model_checksum(ctx[0].m));
        ck_assert_msg(memcmp(p, p0, sizeof(float) * (size_t)n) == 0,
                      "rank %d's weights differ from rank 0's", r);
        ck_assert_int_eq(vae_model_epoch(ctx[r].m), vae_model_epoch(ctx[0].m));
        ck_assert_int_eq(vae_model_epoch_position(ctx[r].m), vae_model_epoch_position(ctx[0].m));
        ck_assert_int_eq(vae_optimizer_steps(ctx[r].opt), vae_optimizer_steps(ctx[0].opt));
        free(p);
    }
    free(p0);
}

static double rel_diff(double got, double want)
{
    return fabs(got - want) / fmax(fabs(want), 1e-30);
}

/* The largest |a - b| over the weights of two models. */
static double max_param_diff(const vae_model *a, const vae_model *b)
{
    int64_t n = vae_model_param_count(a);
    float *pa = params_of(a), *pb = params_of(b);
    double worst = 0.0;
    ck_assert_int_eq(vae_model_param_count(b), n);
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)pa[i] - pb[i]));
    free(pa);
    free(pb);
    return worst;
}

/* Every rank recorded the same calls with the same results, bit for bit. */
static void expect_same_records(rank_ctx *ctx, int size)
{
    for (int r = 1; r < size; r++) {
        ck_assert_int_eq(ctx[r].n, ctx[0].n);
        for (int i = 0; i < ctx[0].n; i++) {
            ck_assert_int_eq(ctx[r].status[i], ctx[0].status[i]);
            ck_assert_int_eq(ctx[r].position[i], ctx[0].position[i]);
            ck_assert_mem_eq(&ctx[r].a[i], &ctx[0].a[i], sizeof(double));
            ck_assert_mem_eq(&ctx[r].b[i], &ctx[0].b[i], sizeof(double));
            ck_assert_mem_eq(&ctx[r].c[i], &ctx[0].c[i], sizeof(double));
        }
    }
}

static int contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* ---- 1. N ranks train as one process ---- */

typedef struct train_job {
    int epochs, batch;
    int stop_rank, stop_after; /* the progress callback of that rank stops there; -1: none */
} train_job;

static int stop_cb(void *user, int batch, int batch_count, float objective)
{
    const rank_ctx *r = user;
    const train_job *job = r->job;
    (void)batch_count;
    (void)objective;
    return r->rank == job->stop_rank && batch == job->stop_after;
}

/* Trains job->epochs epochs: a = objective, b = -ELBO of each. */
static void train_script(rank_ctx *r)
{
    const train_job *job = r->job;
    for (int e = 0; e < job->epochs; e++) {
        double obj = NAN, nelbo = NAN;
        vae_status s = vae_model_train_epoch(r->m, r->opt, r->data, job->batch,
                                             job->stop_rank >= 0 ? stop_cb : NULL, r, &obj,
                                             &nelbo);
        r->a[r->n] = obj;
        r->b[r->n] = nelbo;
        if (note(r, s) != VAE_OK)
            break;
    }
}

/* Loop: ranks 2 or 3, batch 32 (the last of 289 rows has one: a rank gets
   none), 37 (uneven shares) or 150 (split between threads in one process,
   not on a rank), 1 or 2 threads per rank. */
START_TEST(test_train_matches_one_process)
{
    static const int batches[3] = {32, 37, 150};
    int size = 2 + _i % 2, batch = batches[_i / 2 % 3], threads = 1 + _i / 6;
    train_job job = {.epochs = 3, .batch = batch, .stop_rank = -1};
    setup s = {.size = size, .threads = threads, .max_batch = 256, .rows = ROWS, .seed = 11};
    setup one = s;
    rank_ctx base, ctx[MAX_RANKS];
    world w;
    double worst_obj = 0.0, worst_param;
    ck_assert_int_eq(ROWS % 32, 1); /* batch 32's last batch: one row, for one rank */
    one.size = 1;
    ranks_create(&base, NULL, one);
    ranks_create(ctx, &w, s);
    base.job = &job;
    train_script(&base);
    for (int r = 0; r < size; r++)
        ctx[r].job = &job;
    run_ranks(ctx, size, train_script);
    expect_clean(&w);
    ck_assert_int_eq(base.n, 3);
    for (int r = 0; r < size; r++) {
        ck_assert_int_eq(ctx[r].n, 3);
        for (int e = 0; e < 3; e++) {
            ck_assert_msg(ctx[r].status[e] == VAE_OK, "rank %d epoch %d: %s", r, e,
                          ctx[r].message[e]);
            worst_obj = fmax(worst_obj, rel_diff(ctx[r].a[e], base.a[e]));
            worst_obj = fmax(worst_obj, rel_diff(ctx[r].b[e], base.b[e]));
        }
    }
    expect_same_records(ctx, size);
    expect_ranks_identical(ctx, size);
    ck_assert_int_eq(vae_model_epoch(ctx[0].m), 3);
    ck_assert_int_eq(vae_optimizer_steps(ctx[0].opt), vae_optimizer_steps(base.opt));
    ck_assert_int_eq(vae_model_history_epochs(ctx[0].m), 3);
    tu_expect_close(vae_model_history_get(ctx[1].m, 3, "train_nelbo"), base.b[2],
                    "history", 0);
    worst_param = max_param_diff(ctx[0].m, base.m);
    printf("test_comm: %d ranks x %d thread(s), batch %d: epoch objective/-ELBO within %.2g "
           "relative, weights within %.2g of one process\n", size, threads, batch, worst_obj,
           worst_param);
    ck_assert_msg(worst_obj <= 1e-4, "epoch means differ by %g relative", worst_obj);
    ck_assert_msg(worst_param <= 1e-3, "weights differ by %g", worst_param);
    /* the training did something */
    ck_assert(base.b[2] < base.b[0]);
    ranks_free(&base, 1);
    ranks_free(ctx, size);
}
END_TEST

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/vae_test_comm_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) { tu_remove_dir(tmpdir); }

/* The bytes of a file. */
static unsigned char *file_bytes(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    b = malloc((size_t)*size);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(fread(b, 1, (size_t)*size, f), (size_t)*size);
    fclose(f);
    return b;
}

/* The sharded update (reduce-scatter, each rank's part, allgather) against
   the summed one, both summing in rank order: the same bits, weights,
   losses and saved optimizer moments; also after a stop on one rank.
   Loop: 2 or 3 ranks, 1 or 2 threads. */
START_TEST(test_sharded_update)
{
    int size = 2 + _i % 2, threads = 1 + _i / 2;
    train_job job = {.epochs = 3, .batch = 37, .stop_rank = size - 1, .stop_after = 2};
    setup s = {.size = size, .threads = threads, .max_batch = 64, .rows = ROWS, .seed = 19};
    setup sh = s;
    rank_ctx plain[MAX_RANKS], shard[MAX_RANKS];
    world w1, w2;
    char path[2][96];
    unsigned char *bytes[2];
    long size_of[2];
    sh.sharded = 1;
    ranks_create(plain, &w1, s);
    ranks_create(shard, &w2, sh);
    for (int r = 0; r < size; r++)
        plain[r].job = shard[r].job = &job;
    run_ranks(plain, size, train_script);
    run_ranks(shard, size, train_script);
    expect_clean(&w1);
    expect_clean(&w2);
    /* the stop, then the rest of epoch 1 and epochs 2 and 3 */
    ck_assert_int_eq(shard[0].status[0], VAE_ERR_STOPPED);
    ck_assert_int_eq(plain[0].status[0], VAE_ERR_STOPPED);
    job.stop_rank = -1;
    for (int r = 0; r < size; r++)
        plain[r].n = shard[r].n = 0;
    run_ranks(plain, size, train_script);
    run_ranks(shard, size, train_script);
    expect_clean(&w1);
    expect_clean(&w2);
    expect_ranks_identical(shard, size);
    for (int r = 0; r < size; r++) {
        ck_assert_int_gt(w2.scatters[r], 0);
        ck_assert_int_gt(w2.gathers[r], w2.scatters[r]); /* weights, and moments */
        ck_assert_int_eq(w1.scatters[r], 0);
        for (int e = 0; e < 3; e++) {
            ck_assert_msg(shard[r].status[e] == VAE_OK, "%s", shard[r].message[e]);
            ck_assert_double_eq(shard[r].a[e], plain[r].a[e]);
            ck_assert_double_eq(shard[r].b[e], plain[r].b[e]);
        }
        ck_assert_uint_eq(vae_model_checksum(shard[r].m), vae_model_checksum(plain[r].m));
    }
    /* the moments are whole again: the saved files are the same bytes */
    make_tmpdir();
    for (int k = 0; k < 2; k++) {
        rank_ctx *c = k ? &shard[0] : &plain[0];
        snprintf(path[k], sizeof path[k], "%s/sharded%d.vae", tmpdir, k);
        ck_assert_int_eq(vae_model_save(c->m, c->opt, path[k]), VAE_OK);
        bytes[k] = file_bytes(path[k], &size_of[k]);
    }
    ck_assert_int_eq(size_of[0], size_of[1]);
    ck_assert(memcmp(bytes[0], bytes[1], (size_t)size_of[0]) == 0);
    free(bytes[0]);
    free(bytes[1]);
    remove_tmpdir();
    printf("test_comm: sharded update on %d ranks x %d thread(s): the summed update's bits "
           "(%d reduce-scatters, %d allgathers on rank 0)\n", size, threads, w2.scatters[0],
           w2.gathers[0]);
    ranks_free(plain, size);
    ranks_free(shard, size);
}
END_TEST

/* A reduce-scatter or an allgather failing on every rank: VAE_ERR_COMM on
   each, nobody left waiting. */
START_TEST(test_sharded_callback_fails)
{
    int op = _i ? FAKE_ALLGATHER : FAKE_REDUCE_SCATTER;
    train_job job = {.epochs = 1, .batch = 37, .stop_rank = -1};
    setup s = {.size = 2, .threads = 1, .max_batch = 64, .rows = ROWS, .seed = 19,
               .sharded = 1};
    rank_ctx ctx[MAX_RANKS];
    world w;
    ranks_create(ctx, &w, s);
    world_fault(&w, 1, op, 3, FAULT_ALL);
    for (int r = 0; r < 2; r++)
        ctx[r].job = &job;
    run_ranks(ctx, 2, train_script);
    ck_assert_int_eq(w.abandoned, 0);
    ck_assert_int_eq(w.timeouts, 0);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(ctx[r].status[0], VAE_ERR_COMM);
        ck_assert_msg(contains(ctx[r].message[0], op == FAKE_ALLGATHER ? "allgather"
                                                                       : "reduce-scatter"),
                      "%s", ctx[r].message[0]);
    }
    ranks_free(ctx, 2);
}
END_TEST

/* ---- 2. Evaluation ---- */

typedef struct eval_job {
    int samples;
    uint64_t seed;
} eval_job;

/* a, b, c = evaluate, evaluate_terms' -ELBO, recon; then kl in a, the
   log-likelihood in b. */
static void eval_script(rank_ctx *r)
{
    const eval_job *job = r->job;
    int64_t n = vae_dataset_count(r->data);
    double nelbo = NAN, nelbo2 = NAN, recon = NAN, kl = NAN, lp = NAN;
    r->images_f = calloc((size_t)n, sizeof *r->images_f);
    r->images_d = calloc((size_t)n, sizeof *r->images_d);
    note(r, vae_model_evaluate(r->m, r->data, &nelbo));
    r->a[r->n - 1] = nelbo;
    note(r, vae_model_evaluate_terms(r->m, r->data, &nelbo2, &recon, &kl, r->images_f));
    r->a[r->n - 1] = nelbo2;
    r->b[r->n - 1] = recon;
    r->c[r->n - 1] = kl;
    note(r, vae_model_log_likelihood(r->m, r->data, job->samples, job->seed, NULL, NULL, &lp,
                                     r->images_d));
    r->a[r->n - 1] = lp;
}

/* Loop: 1 (a communicator of one rank), 2 and 3 ranks, times 1 and 2
   threads; max batch 16, 101 images, 5 samples (an image's samples cross
   batches). */
START_TEST(test_evaluate_matches_one_process)
{
    int size = 1 + _i % 3, threads = 1 + _i / 3;
    eval_job job = {.samples = 5, .seed = 99};
    setup s = {.size = size, .threads = threads, .max_batch = 16, .rows = 101, .seed = 12};
    setup one = {.size = 1, .threads = 1, .max_batch = 16, .rows = 101, .seed = 12};
    rank_ctx base, ctx[MAX_RANKS];
    world w;
    double worst = 0.0;
    ranks_create(&base, NULL, one);
    ranks_create(ctx, &w, s);
    base.job = &job;
    eval_script(&base);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(base.status[i] == VAE_OK, "%s", base.message[i]);
    for (int r = 0; r < size; r++)
        ctx[r].job = &job;
    run_ranks(ctx, size, eval_script);
    expect_clean(&w);
    expect_same_records(ctx, size);
    for (int r = 0; r < size; r++) {
        ck_assert_int_eq(ctx[r].n, 3);
        for (int i = 0; i < 3; i++) {
            ck_assert_msg(ctx[r].status[i] == VAE_OK, "rank %d call %d: %s", r, i,
                          ctx[r].message[i]);
            worst = fmax(worst, rel_diff(ctx[r].a[i], base.a[i]));
        }
        worst = fmax(worst, rel_diff(ctx[r].b[1], base.b[1]));
        worst = fmax(worst, rel_diff(ctx[r].c[1], base.c[1]));
        ck_assert_mem_eq(ctx[r].images_f, ctx[0].images_f, sizeof(float) * 101);
        ck_assert_mem_eq(ctx[r].images_d, ctx[0].images_d, sizeof(double) * 101);
        for (int i = 0; i < 101; i++) {
            ck_assert(ctx[r].images_f[i] > 0.0f);
            ck_assert(ctx[r].images_d[i] < 0.0);
            worst = fmax(worst, rel_diff(ctx[r].images_f[i], base.images_f[i]));
            worst = fmax(worst, rel_diff(ctx[r].images_d[i], base.images_d[i]));
        }
    }
    /* -ELBO is recon + KL, and IWAE with 5 samples is a tighter bound */
    tu_expect_close(ctx[0].a[1], ctx[0].b[1] + ctx[0].c[1], "terms", 0);
    ck_assert(-ctx[0].a[2] < ctx[0].a[0]);
    tu_expect_close(ctx[0].a[0], ctx[0].a[1], "evaluate", 0);
    printf("test_comm: evaluation on %d rank(s) x %d thread(s): within %.2g relative of one "
           "process\n", size, threads, worst);
    ck_assert_msg(worst <= 1e-5, "evaluation differs by %g relative", worst);
    ranks_free(&base, 1);
    ranks_free(ctx, size);
}
END_TEST

/* ---- 3. Resume across rank counts, and a stop on one rank ---- */


typedef struct save_job {
    train_job train;
    const char *path;
} save_job;

/* Trains, then rank 0 saves with the optimizer and every rank agrees. */
static void train_save_script(rank_ctx *r)
{
    const save_job *job = r->job;
    vae_status s;
    r->job = &job->train;
    train_script(r);
    r->job = job;
    s = r->rank == 0 ? vae_model_save(r->m, r->opt, job->path) : VAE_OK;
    note(r, vae_comm_agree(r->comm, s));
}

START_TEST(test_resume_on_other_rank_count)
{
    enum { BATCH = 37 };
    train_job three = {.epochs = 3, .batch = BATCH, .stop_rank = -1};
    train_job two = {.epochs = 2, .batch = BATCH, .stop_rank = -1};
    char path[128];
    save_job first = {.train = {.epochs = 1, .batch = BATCH, .stop_rank = -1}, .path = path};
    setup s2 = {.size = 2, .threads = 1, .max_batch = 256, .rows = ROWS, .seed = 13};
    setup one = s2;
    rank_ctx base, ctx[MAX_RANKS], ctx3[MAX_RANKS];
    world w, w3;
    double worst = 0.0, worst_param;
    snprintf(path, sizeof path, "%s/ranks.vae", tmpdir);
    one.size = 1;
    ranks_create(&base, NULL, one);
    base.job = &three;
    train_script(&base);
    ck_assert_int_eq(base.n, 3);

    ranks_create(ctx, &w, s2);
    for (int r = 0; r < 2; r++)
        ctx[r].job = &first;
    run_ranks(ctx, 2, train_save_script);
    expect_clean(&w);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(ctx[r].n, 2);
        ck_assert_msg(ctx[r].status[0] == VAE_OK && ctx[r].status[1] == VAE_OK, "rank %d: %s %s",
                      r, ctx[r].message[0], ctx[r].message[1]);
    }

    /* three processes load the file: each its model and optimizer */
    world_init(&w3, 3);
    for (int r = 0; r < 3; r++) {
        rank_ctx *c = &ctx3[r];
        memset(c, 0, sizeof *c);
        c->w = &w3;
        c->rank = r;
        c->size = 3;
        ck_assert_int_eq(vae_model_load(&c->m, path), VAE_OK);
        ck_assert_int_eq(vae_model_epoch(c->m), 1);
        ck_assert_int_eq(vae_model_epoch_position(c->m), 0);
        ck_assert_int_eq(vae_optimizer_restore(&c->opt, c->m), VAE_OK);
        ck_assert_int_eq(vae_optimizer_steps(c->opt), vae_optimizer_steps(ctx[0].opt));
        ck_assert_int_eq(vae_comm_create(&c->comm, r, 3), VAE_OK);
        ck_assert_int_eq(vae_comm_set_sum(c->comm, fake_sum, c), VAE_OK);
        ck_assert_int_eq(vae_comm_set_broadcast(c->comm, fake_broadcast, c), VAE_OK);
        ck_assert_int_eq(vae_model_set_comm(c->m, c->comm), VAE_OK);
        c->data = make_data(ROWS);
        c->job = &two;
    }
    run_ranks(ctx3, 3, train_script);
    expect_clean(&w3);
    expect_same_records(ctx3, 3);
    expect_ranks_identical(ctx3, 3);
    for (int e = 0; e < 2; e++) {
        ck_assert_msg(ctx3[0].status[e] == VAE_OK, "%s", ctx3[0].message[e]);
        worst = fmax(worst, rel_diff(ctx3[0].a[e], base.a[e + 1]));
        worst = fmax(worst, rel_diff(ctx3[0].b[e], base.b[e + 1]));
    }
    ck_assert_int_eq(vae_model_epoch(ctx3[2].m), 3);
    ck_assert_int_eq(vae_optimizer_steps(ctx3[2].opt), vae_optimizer_steps(base.opt));
    /* the history came with the file: epoch 1 from the 2 ranks */
    tu_expect_close(vae_model_history_get(ctx3[1].m, 1, "train_nelbo"), base.b[0], "history", 1);
    tu_expect_close(vae_model_history_get(ctx3[1].m, 3, "train_nelbo"), base.b[2], "history", 3);
    worst_param = max_param_diff(ctx3[0].m, base.m);
    printf("test_comm: 1 epoch on 2 ranks, then 2 on 3: epoch means within %.2g relative, "
           "weights within %.2g of one process\n", worst, worst_param);
    ck_assert_msg(worst <= 1e-4, "epoch means differ by %g relative", worst);
    ck_assert_msg(worst_param <= 1e-3, "weights differ by %g", worst_param);
    ranks_free(&base, 1);
    ranks_free(ctx, 2);
    ranks_free(ctx3, 3);
}
END_TEST

/* Epoch 1 whole, then epoch 2 stopped by rank `stop_rank`'s callback
   after batch 3, then finished. */
static void stop_script(rank_ctx *r)
{
    const train_job *job = r->job;
    train_job whole = *job, stopping = *job;
    double obj = NAN, nelbo = NAN;
    whole.stop_rank = -1;
    r->job = &whole;
    note(r, vae_model_train_epoch(r->m, r->opt, r->data, job->batch, NULL, NULL, NULL, NULL));
    r->job = &stopping;
    note(r, vae_model_train_epoch(r->m, r->opt, r->data, job->batch, stop_cb, r, NULL, NULL));
    r->a[r->n] = vae_optimizer_steps(r->opt);
    note(r, vae_model_comm_check(r->m, r->opt));
    r->job = &whole;
    note(r, vae_model_train_epoch(r->m, r->opt, r->data, job->batch, NULL, NULL, &obj, &nelbo));
    r->a[r->n - 1] = obj;
    r->b[r->n - 1] = nelbo;
    r->job = job;
}

/* Loop: 2 ranks (rank 1 stops), 3 ranks (rank 2 stops, and rank 0). */
START_TEST(test_stop_on_one_rank)
{
    int size = 2 + (_i > 0), stopper = _i == 2 ? 0 : size - 1;
    train_job stop = {.epochs = 2, .batch = 37, .stop_rank = stopper, .stop_after = 3};
    train_job plain = {.epochs = 2, .batch = 37, .stop_rank = -1};
    setup s = {.size = size, .threads = 2, .max_batch = 256, .rows = ROWS, .seed = 14};
    setup one = s;
    rank_ctx base, ref[MAX_RANKS], ctx[MAX_RANKS];
    world w, wref;
    char expect[64];
    one.size = 1;
    ranks_create(&base, NULL, one);
    base.job = &plain;
    train_script(&base);
    ranks_create(ref, &wref, s);
    for (int r = 0; r < size; r++)
        ref[r].job = &plain;
    run_ranks(ref, size, train_script);
    expect_clean(&wref);
    ranks_create(ctx, &w, s);
    for (int r = 0; r < size; r++)
        ctx[r].job = &stop;
    run_ranks(ctx, size, stop_script);
    expect_clean(&w);
    snprintf(expect, sizeof expect, "1 of %d ranks after batch 3", size);
    for (int r = 0; r < size; r++) {
        ck_assert_int_eq(ctx[r].n, 4);
        ck_assert_int_eq(ctx[r].status[0], VAE_OK);
        ck_assert_msg(ctx[r].status[1] == VAE_ERR_STOPPED, "rank %d: %d %s", r, ctx[r].status[1],
                      ctx[r].message[1]);
        ck_assert_msg(contains(ctx[r].message[1], expect), "rank %d: %s", r, ctx[r].message[1]);
        ck_assert_int_eq(ctx[r].position[1], 3);
        ck_assert_int_eq((int)ctx[r].a[2], 8 + 3); /* 8 batches of 289 at 37, then 3 */
        ck_assert_msg(ctx[r].status[2] == VAE_OK, "%s", ctx[r].message[2]);
        ck_assert_msg(ctx[r].status[3] == VAE_OK, "%s", ctx[r].message[3]);
        ck_assert_int_eq(ctx[r].position[3], 0);
        /* finished as the uninterrupted ranks finished it, bit for bit */
        ck_assert_double_eq(ctx[r].a[3], ref[r].a[1]);
        ck_assert_double_eq(ctx[r].b[3], ref[r].b[1]);
        ck_assert_double_le(rel_diff(ctx[r].b[3], base.b[1]), 1e-4);
    }
    expect_ranks_identical(ctx, size);
    ck_assert_uint_eq(vae_model_checksum(ctx[0].m), vae_model_checksum(ref[0].m));
    ck_assert_int_eq(vae_model_epoch(ctx[0].m), 2);
    ranks_free(&base, 1);
    ranks_free(ref, size);
    ranks_free(ctx, size);
}
END_TEST

/* ---- 4. Failures: every rank fails at the same call, none hangs ---- */

static void epoch_script(rank_ctx *r)
{
    const train_job *job = r->job;
    note(r, vae_model_train_epoch(r->m, r->opt, r->data, job->batch, NULL, NULL, NULL, NULL));
}

/* Rank `bad` failed with `own`, the others with VAE_ERR_COMM naming it;
   call i of every rank. */
static void expect_failed_on(rank_ctx *ctx, int size, int i, int bad, vae_status own)
{
    char name[32];
    snprintf(name, sizeof name, "rank %d of %d failed", bad, size);
    for (int r = 0; r < size; r++) {
        ck_assert_int_gt(ctx[r].n, i);
        if (r == bad) {
            ck_assert_msg(ctx[r].status[i] == own, "rank %d: status %d (%s)", r,
                          ctx[r].status[i], ctx[r].message[i]);
            ck_assert_msg(!contains(ctx[r].message[i], "failed; see its message"),
                          "the failed rank lost its own message: %s", ctx[r].message[i]);
        } else {
            ck_assert_msg(ctx[r].status[i] == VAE_ERR_COMM, "rank %d: status %d (%s)", r,
                          ctx[r].status[i], ctx[r].message[i]);
            ck_assert_msg(contains(ctx[r].message[i], name), "rank %d: %s", r,
                          ctx[r].message[i]);
        }
    }
}

/* Every rank still has its starting weights (the checksums given). */
static void expect_untrained(rank_ctx *ctx, int size, uint64_t start)
{
    for (int r = 0; r < size; r++) {
        ck_assert_uint_eq(vae_model_checksum(ctx[r].m), start);
        ck_assert_int_eq(vae_optimizer_steps(ctx[r].opt), 0);
        ck_assert_int_eq(vae_model_epoch(ctx[r].m), 0);
    }
}

/* One rank's data has a value outside [0, 1] for the Bernoulli model:
   that rank fails with VAE_ERR_ARGUMENT, the others with VAE_ERR_COMM,
   before any step; the same for the evaluations. */
START_TEST(test_bad_data_on_one_rank)
{
    setup s = {.size = 3, .threads = 1, .max_batch = 32, .rows = 50, .seed = 15};
    train_job job = {.batch = 32, .stop_rank = -1};
    eval_job ejob = {.samples = 3, .seed = 1};
    rank_ctx ctx[MAX_RANKS];
    world w;
    float *v = malloc(sizeof(float) * 50 * IN);
    int dims[1] = {IN};
    uint64_t start;
    ranks_create(ctx, &w, s);
    start = vae_model_checksum(ctx[0].m);
    vae_dataset_free(ctx[1].data);
    tu_random(v, 50 * IN, 3, 0.0f, 1.0f);
    v[7 * IN + 3] = 1.5f;
    ck_assert_int_eq(vae_dataset_from_f32(&ctx[1].data, 50, 1, dims, v, NULL), VAE_OK);
    free(v);
    for (int r = 0; r < 3; r++)
        ctx[r].job = &job;
    run_ranks(ctx, 3, epoch_script);
    expect_clean(&w);
    expect_failed_on(ctx, 3, 0, 1, VAE_ERR_ARGUMENT);
    ck_assert_msg(contains(ctx[1].message[0], "[0, 1]") || contains(ctx[1].message[0], "1.5"),
                  "%s", ctx[1].message[0]);
    expect_untrained(ctx, 3, start);
    for (int r = 0; r < 3; r++) {
        ctx[r].n = 0;
        ctx[r].job = &ejob;
    }
    run_ranks(ctx, 3, eval_script);
    expect_clean(&w);
    for (int i = 0; i < 3; i++)
        expect_failed_on(ctx, 3, i, 1, VAE_ERR_ARGUMENT);
    ranks_free(ctx, 3);
}
END_TEST

/* A batch size out of range on one rank is that rank's error; a valid but
   different one (every rank must pass the same) fails every rank with
   VAE_ERR_COMM at the first step, before any weight changes. */
static void two_batches_script(rank_ctx *r)
{
    const int *batches = r->job;
    note(r, vae_model_train_epoch(r->m, r->opt, r->data, batches[r->rank], NULL, NULL, NULL,
                                  NULL));
}

START_TEST(test_batch_differs_on_one_rank)
{
    setup s = {.size = 2, .threads = 1, .max_batch = 64, .rows = 100, .seed = 16};
    static const int out_of_range[2] = {32, 65}, differ[2] = {32, 37};
    rank_ctx ctx[MAX_RANKS];
    world w;
    uint64_t start;
    ranks_create(ctx, &w, s);
    start = vae_model_checksum(ctx[0].m);
    for (int r = 0; r < 2; r++)
        ctx[r].job = out_of_range;
    run_ranks(ctx, 2, two_batches_script);
    expect_clean(&w);
    expect_failed_on(ctx, 2, 0, 1, VAE_ERR_ARGUMENT);
    expect_untrained(ctx, 2, start);
    for (int r = 0; r < 2; r++) {
        ctx[r].n = 0;
        ctx[r].job = differ;
    }
    run_ranks(ctx, 2, two_batches_script);
    expect_clean(&w);
    for (int r = 0; r < 2; r++) {
        ck_assert_msg(ctx[r].status[0] == VAE_ERR_COMM, "rank %d: %d %s", r, ctx[r].status[0],
                      ctx[r].message[0]);
        ck_assert_msg(contains(ctx[r].message[0], "rows"), "%s", ctx[r].message[0]);
        ck_assert_int_eq(ctx[r].position[0], 0);
    }
    expect_untrained(ctx, 2, start);
    ranks_free(ctx, 2);
}
END_TEST

/* Rank 1's data set has one image fewer: every call fails on every rank
   with VAE_ERR_COMM at once (training: at the first step, whose batches
   are alike; evaluating: before the per-image results, which would be
   sums of other lengths). */
START_TEST(test_data_size_differs)
{
    setup s = {.size = 3, .threads = 1, .max_batch = 16, .rows = 101, .seed = 28};
    train_job job = {.batch = 16, .stop_rank = -1};
    eval_job ejob = {.samples = 3, .seed = 1};
    rank_ctx ctx[MAX_RANKS];
    world w;
    uint64_t start;
    ranks_create(ctx, &w, s);
    start = vae_model_checksum(ctx[0].m);
    ck_assert_int_eq(vae_dataset_truncate(ctx[1].data, 100), VAE_OK);
    for (int r = 0; r < 3; r++)
        ctx[r].job = &job;
    run_ranks(ctx, 3, epoch_script);
    expect_clean(&w);
    for (int r = 0; r < 3; r++) {
        ck_assert_msg(ctx[r].status[0] == VAE_ERR_COMM, "rank %d: %d %s", r, ctx[r].status[0],
                      ctx[r].message[0]);
        ck_assert_msg(contains(ctx[r].message[0], r == 1 ? "of a data set of 100 images"
                                                         : "of a data set of 101 images"),
                      "%s", ctx[r].message[0]);
        ck_assert_int_eq(ctx[r].position[0], 0);
        ctx[r].n = 0;
        ctx[r].job = &ejob;
    }
    expect_untrained(ctx, 3, start);
    run_ranks(ctx, 3, eval_script);
    expect_clean(&w);
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 3; i++) {
            ck_assert_msg(ctx[r].status[i] == VAE_ERR_COMM, "rank %d call %d: %d %s", r, i,
                          ctx[r].status[i], ctx[r].message[i]);
            ck_assert_msg(contains(ctx[r].message[i], "data sets differ in size"), "%s",
                          ctx[r].message[i]);
        }
    ranks_free(ctx, 3);
}
END_TEST

/* A sum or broadcast that fails.  Loop over where:
   0: rank 1's 2nd sum (the first step's agreement), on every rank;
   1: rank 0's 3rd sum (the first step's gradient), on every rank;
   2: rank 1's 1st broadcast (the check of the weights), on that rank only;
   3: rank 0's 2nd broadcast (the check after the epoch), on every rank.
   Every rank fails with VAE_ERR_COMM in the same call, none waits. */
START_TEST(test_callback_fails)
{
    static const int where[4][4] = {{1, FAKE_SUM, 2, FAULT_ALL},
                                    {0, FAKE_SUM, 3, FAULT_ALL},
                                    {1, FAKE_BROADCAST, 1, FAULT_ONE},
                                    {0, FAKE_BROADCAST, 2, FAULT_ALL}};
    setup s = {.size = 3, .threads = 1, .max_batch = 64, .rows = 100, .seed = 17};
    train_job job = {.batch = 40, .stop_rank = -1};
    rank_ctx ctx[MAX_RANKS];
    world w;
    uint64_t start;
    ranks_create(ctx, &w, s);
    start = vae_model_checksum(ctx[0].m);
    world_fault(&w, where[_i][0], where[_i][1], where[_i][2], where[_i][3]);
    for (int r = 0; r < 3; r++)
        ctx[r].job = &job;
    run_ranks(ctx, 3, epoch_script);
    expect_clean(&w);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(ctx[r].n, 1);
        ck_assert_msg(ctx[r].status[0] == VAE_ERR_COMM, "rank %d: %d %s", r, ctx[r].status[0],
                      ctx[r].message[0]);
        /* a rank whose own callback failed says so */
        if (where[_i][3] == FAULT_ALL || r == where[_i][0])
            ck_assert_msg(contains(ctx[r].message[0], "callback returned"), "rank %d: %s", r,
                          ctx[r].message[0]);
    }
    if (_i < 3)
        expect_untrained(ctx, 3, start);
    else /* the epoch was done, its check failed */
        ck_assert_int_eq(vae_model_epoch(ctx[0].m), 1);
    expect_ranks_identical(ctx, 3);
    ranks_free(ctx, 3);
}
END_TEST

/* A sum that fails on one rank alone, the others getting their result:
   outside the contract (vae.h: a failed operation must fail on every
   rank), since the library agrees on statuses around its collectives, not
   after each one.  That rank fails with VAE_ERR_COMM; the other, which
   took the step, is left waiting at its next collective until the fake,
   as an MPI job that loses a rank, fails it because the rank has gone
   (one "abandoned" wait).  No rank hangs for good, and both fail in the
   same call. */
START_TEST(test_sum_fails_on_one_rank)
{
    setup s = {.size = 2, .threads = 1, .max_batch = 64, .rows = 100, .seed = 18};
    train_job job = {.batch = 40, .stop_rank = -1};
    rank_ctx ctx[MAX_RANKS];
    world w;
    ranks_create(ctx, &w, s);
    /* the second step's gradient: sums 1 (check), 2 and 3 (step 1), 4, 5 */
    world_fault(&w, 1, FAKE_SUM, 5, FAULT_ONE);
    for (int r = 0; r < 2; r++)
        ctx[r].job = &job;
    run_ranks(ctx, 2, epoch_script);
    ck_assert_int_eq(w.mismatches, 0);
    ck_assert_int_eq(w.timeouts, 0);
    ck_assert_int_eq(w.abandoned, 1);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(ctx[r].n, 1);
        ck_assert_msg(ctx[r].status[0] == VAE_ERR_COMM, "rank %d: %d %s", r, ctx[r].status[0],
                      ctx[r].message[0]);
    }
    ck_assert_msg(contains(ctx[1].message[0], "callback returned 3"), "%s", ctx[1].message[0]);
    ck_assert_msg(contains(ctx[0].message[0], "callback returned 1"), "%s", ctx[0].message[0]);
    ranks_free(ctx, 2);
}
END_TEST

/* Ranks started from different seeds: the epoch refuses to start. */
START_TEST(test_different_seeds)
{
    setup s = {.size = 3, .threads = 1, .max_batch = 64, .rows = 100, .seed = 19};
    train_job job = {.batch = 40, .stop_rank = -1};
    rank_ctx ctx[MAX_RANKS];
    world w;
    uint64_t before[3];
    ranks_create(ctx, &w, s);
    vae_optimizer_free(ctx[2].opt);
    vae_model_free(ctx[2].m);
    ctx[2].m = make_model(20, 1, 64);
    ck_assert_int_eq(vae_model_set_comm(ctx[2].m, ctx[2].comm), VAE_OK);
    ctx[2].opt = make_opt(ctx[2].m);
    for (int r = 0; r < 3; r++) {
        ctx[r].job = &job;
        before[r] = vae_model_checksum(ctx[r].m);
    }
    ck_assert_uint_ne(before[2], before[0]);
    ck_assert_uint_eq(before[1], before[0]);
    run_ranks(ctx, 3, epoch_script);
    expect_clean(&w);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(ctx[r].status[0], VAE_ERR_COMM);
        ck_assert_msg(contains(ctx[r].message[0], "weights of 1 of 3 ranks differ"), "%s",
                      ctx[r].message[0]);
        ck_assert_uint_eq(vae_model_checksum(ctx[r].m), before[r]);
        ck_assert_int_eq(vae_optimizer_steps(ctx[r].opt), 0);
    }
    ranks_free(ctx, 3);
}
END_TEST

/* vae_model_comm_check: equal ranks pass; rank 2 with a weight one ulp
   apart, another optimizer setting, or a step taken alone. */
typedef struct check_job {
    int what; /* 0 the same, 1 a weight, 2 the optimizer, 3 the position */
} check_job;

static void check_script(rank_ctx *r)
{
    const check_job *job = r->job;
    if (r->rank == 2 && job->what == 1) {
        float b[HIDDEN] = {0};
        r->a[0] = vae_model_param_get(r->m, "enc.b", b, HIDDEN);
        b[HIDDEN - 1] = nextafterf(b[HIDDEN - 1], 1.0f);
        r->b[0] = vae_model_param_set(r->m, "enc.b", b, HIDDEN);
    } else if (r->rank == 2 && job->what == 2) {
        vae_optimizer_set(r->opt, VAE_OPT_LEARNING_RATE, 1e-4);
    } else if (r->rank == 2 && job->what == 3) {
        /* a step taken alone (the communicator detached) at rate 0: the
           weights stay, the position and the moments move */
        vae_tensor *x = NULL;
        int64_t dims[2] = {4, IN};
        vae_tensor_create(&x, 2, dims);
        vae_dataset_get(r->data, 0, x);
        vae_model_set_comm(r->m, NULL);
        vae_optimizer_set(r->opt, VAE_OPT_LEARNING_RATE, 0.0);
        r->a[0] = vae_model_train_step(r->m, r->opt, x, NULL, NULL);
        vae_optimizer_set(r->opt, VAE_OPT_LEARNING_RATE, 3e-3);
        vae_model_set_comm(r->m, r->comm);
        vae_tensor_free(x);
    }
    note(r, vae_model_comm_check(r->m, r->opt));
    note(r, vae_model_comm_check(r->m, NULL));
}

START_TEST(test_comm_check)
{
    static const char *const differs[4] = {NULL, "the weights of 1 of 3 ranks",
                                           "the optimizer state of 1 of 3 ranks",
                                           "the training position of 1 of 3 ranks"};
    check_job job = {.what = _i};
    setup s = {.size = 3, .threads = 1, .max_batch = 64, .rows = 40, .seed = 21};
    rank_ctx ctx[MAX_RANKS];
    world w;
    ranks_create(ctx, &w, s);
    for (int r = 0; r < 3; r++)
        ctx[r].job = &job;
    run_ranks(ctx, 3, check_script);
    expect_clean(&w);
    ck_assert_double_eq(ctx[2].a[0], VAE_OK); /* the change on rank 2 was made */
    ck_assert_double_eq(ctx[2].b[0], VAE_OK);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq(ctx[r].n, 2);
        if (_i == 0) {
            ck_assert_msg(ctx[r].status[0] == VAE_OK, "%s", ctx[r].message[0]);
        } else {
            ck_assert_int_eq(ctx[r].status[0], VAE_ERR_COMM);
            ck_assert_msg(contains(ctx[r].message[0], differs[_i]), "%s", ctx[r].message[0]);
            ck_assert_msg(contains(ctx[r].message[0], "vae_model_comm_check"), "%s",
                          ctx[r].message[0]);
        }
        /* without the optimizer, only the optimizer's difference is gone */
        ck_assert_int_eq(ctx[r].status[1], _i == 0 || _i == 2 ? VAE_OK : VAE_ERR_COMM);
    }
    ranks_free(ctx, 3);
}
END_TEST

/* An optimizer of another model on one rank: that rank's
   VAE_ERR_ARGUMENT, the others' VAE_ERR_COMM. */
static void foreign_opt_script(rank_ctx *r)
{
    vae_optimizer *opt = r->opt;
    vae_model *other = NULL;
    vae_optimizer *foreign = NULL;
    if (r->rank == 1) {
        other = (vae_model *)r->job;
        vae_optimizer_create(&foreign, other, VAE_OPTIMIZER_ADAM);
        opt = foreign;
    }
    note(r, vae_model_comm_check(r->m, opt));
    vae_optimizer_free(foreign);
}

START_TEST(test_comm_check_foreign_optimizer)
{
    setup s = {.size = 2, .threads = 1, .max_batch = 64, .rows = 40, .seed = 22};
    rank_ctx ctx[MAX_RANKS];
    world w;
    vae_model *other = make_model(22, 1, 64);
    ranks_create(ctx, &w, s);
    for (int r = 0; r < 2; r++)
        ctx[r].job = other;
    run_ranks(ctx, 2, foreign_opt_script);
    expect_clean(&w);
    expect_failed_on(ctx, 2, 0, 1, VAE_ERR_ARGUMENT);
    ck_assert_msg(contains(ctx[1].message[0], "another model"), "%s", ctx[1].message[0]);
    vae_model_free(other);
    ranks_free(ctx, 2);
}
END_TEST

/* vae_comm_agree and vae_comm_broadcast called by the host. */
typedef struct agree_job {
    vae_status local[MAX_RANKS];
} agree_job;

static void agree_script(rank_ctx *r)
{
    const agree_job *job = r->job;
    double data[5] = {r->rank + 0.5, -1.0, 2.0, 3.0, (double)r->rank};
    vae_status local = job->local[r->rank];
    if (local != VAE_OK)
        vae__fail(local, "rank %d's own message", r->rank);
    note(r, vae_comm_agree(r->comm, local));
    /* root 1's five doubles reach every rank */
    note(r, vae_comm_broadcast(r->comm, data, sizeof data, 1));
    r->a[r->n - 1] = data[0];
    r->b[r->n - 1] = data[4];
    /* nothing to copy: no call */
    note(r, vae_comm_broadcast(r->comm, data, 0, 0));
    note(r, vae_comm_agree(r->comm, VAE_OK));
}

START_TEST(test_agree_and_broadcast)
{
    setup s = {.size = 3, .threads = 1, .max_batch = 8, .rows = 8, .seed = 23};
    agree_job ok = {{VAE_OK, VAE_OK, VAE_OK}};
    agree_job one = {{VAE_OK, VAE_OK, VAE_ERR_IO}};
    agree_job two = {{VAE_ERR_FORMAT, VAE_OK, VAE_ERR_IO}};
    rank_ctx ctx[MAX_RANKS];
    world w;
    ranks_create(ctx, &w, s);
    for (int r = 0; r < 3; r++)
        ctx[r].job = &ok;
    run_ranks(ctx, 3, agree_script);
    expect_clean(&w);
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < 4; i++)
            ck_assert_msg(ctx[r].status[i] == VAE_OK, "%s", ctx[r].message[i]);
        ck_assert_double_eq(ctx[r].a[1], 1.5);
        ck_assert_double_eq(ctx[r].b[1], 1.0);
        ck_assert_int_eq(w.broadcasts[r], 1); /* the empty one made no call */
        ck_assert_int_eq(w.sums[r], 2);
        ctx[r].n = 0;
        ctx[r].job = &one;
    }
    run_ranks(ctx, 3, agree_script);
    expect_clean(&w);
    expect_failed_on(ctx, 3, 0, 2, VAE_ERR_IO);
    ck_assert_str_eq(ctx[2].message[0], "rank 2's own message");
    ck_assert_msg(contains(ctx[0].message[0], "input/output error"), "%s", ctx[0].message[0]);
    ck_assert_msg(contains(ctx[0].message[0], "vae_comm_agree"), "%s", ctx[0].message[0]);
    for (int r = 0; r < 3; r++) {
        ctx[r].n = 0;
        ctx[r].job = &two;
    }
    run_ranks(ctx, 3, agree_script);
    expect_clean(&w);
    ck_assert_int_eq(ctx[0].status[0], VAE_ERR_FORMAT);
    ck_assert_int_eq(ctx[2].status[0], VAE_ERR_IO);
    ck_assert_int_eq(ctx[1].status[0], VAE_ERR_COMM);
    ck_assert_msg(contains(ctx[1].message[0], "2 of 3 ranks failed"), "%s", ctx[1].message[0]);
    for (int r = 0; r < 3; r++)
        ck_assert_int_eq(ctx[r].status[3], VAE_OK); /* and they go on */
    /* a broadcast whose callback fails on one rank: that rank's VAE_ERR_COMM */
    world_fault(&w, 0, FAKE_BROADCAST, w.broadcasts[0] + 1, FAULT_ONE);
    for (int r = 0; r < 3; r++) {
        ctx[r].n = 0;
        ctx[r].job = &ok;
    }
    run_ranks(ctx, 3, agree_script);
    expect_clean(&w);
    ck_assert_int_eq(ctx[0].status[1], VAE_ERR_COMM);
    ck_assert_msg(contains(ctx[0].message[1], "broadcast of 40 bytes failed"), "%s",
                  ctx[0].message[1]);
    ck_assert_int_eq(ctx[1].status[1], VAE_OK);
    ranks_free(ctx, 3);
}
END_TEST

/* vae_model_train_step with a communicator: every rank passes the same
   global batch, and the step is one process's step; a rank whose batch
   has the wrong shape makes every rank fail, before any update. */
typedef struct step_job {
    int steps;
    int bad_rank; /* passes a tensor of rows of the wrong size; -1: none */
    int other_rows_rank; /* passes one row fewer; -1: none */
} step_job;

static void step_script(rank_ctx *r)
{
    const step_job *job = r->job;
    for (int i = 0; i < job->steps; i++) {
        double obj = NAN, nelbo = NAN;
        vae_tensor *x = r->x, *wrong = NULL;
        if (r->rank == job->bad_rank || r->rank == job->other_rows_rank) {
            int rank_bad = r->rank == job->bad_rank;
            int64_t dims[2] = {vae_tensor_dim(r->x, 0) - !rank_bad, rank_bad ? IN + 1 : IN};
            vae_tensor_create(&wrong, 2, dims);
            if (!rank_bad)
                vae_tensor_copy_from_host(wrong, vae_tensor_data(r->x), dims[0] * IN);
            x = wrong;
        }
        note(r, vae_model_train_step(r->m, r->opt, x, &obj, &nelbo));
        r->a[r->n - 1] = obj;
        r->b[r->n - 1] = nelbo;
        vae_tensor_free(wrong);
    }
}

START_TEST(test_train_step)
{
    enum { BATCH = 37 };
    setup s = {.size = 3, .threads = 2, .max_batch = 64, .rows = BATCH, .seed = 24};
    setup one = s;
    step_job job = {.steps = 4, .bad_rank = -1, .other_rows_rank = -1};
    step_job bad = {.steps = 1, .bad_rank = 1, .other_rows_rank = -1};
    step_job rows = {.steps = 1, .bad_rank = -1, .other_rows_rank = 2};
    int64_t dims[2] = {BATCH, IN};
    rank_ctx base, ctx[MAX_RANKS];
    world w;
    double worst = 0.0, worst_param;
    uint64_t sum;
    one.size = 1;
    ranks_create(&base, NULL, one);
    ranks_create(ctx, &w, s);
    for (int r = 0; r < 4; r++) {
        rank_ctx *c = r < 3 ? &ctx[r] : &base;
        ck_assert_int_eq(vae_tensor_create(&c->x, 2, dims), VAE_OK);
        ck_assert_int_eq(vae_dataset_get(c->data, 0, c->x), VAE_OK);
        c->job = &job;
    }
    step_script(&base);
    run_ranks(ctx, 3, step_script);
    expect_clean(&w);
    expect_same_records(ctx, 3);
    expect_ranks_identical(ctx, 3);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(ctx[0].status[i] == VAE_OK, "%s", ctx[0].message[i]);
        worst = fmax(worst, rel_diff(ctx[0].a[i], base.a[i]));
        worst = fmax(worst, rel_diff(ctx[0].b[i], base.b[i]));
    }
    worst_param = max_param_diff(ctx[0].m, base.m);
    printf("test_comm: 4 train_steps on 3 ranks: objective/-ELBO within %.2g relative, weights "
           "within %.2g of one process\n", worst, worst_param);
    ck_assert_double_le(worst, 1e-5);
    ck_assert_double_le(worst_param, 1e-5);
    ck_assert_int_eq(vae_optimizer_steps(ctx[1].opt), 4);

    sum = vae_model_checksum(ctx[0].m);
    for (int r = 0; r < 3; r++) {
        ctx[r].n = 0;
        ctx[r].job = &bad;
    }
    run_ranks(ctx, 3, step_script);
    expect_clean(&w);
    expect_failed_on(ctx, 3, 0, 1, VAE_ERR_SHAPE);
    for (int r = 0; r < 3; r++) {
        ck_assert_uint_eq(vae_model_checksum(ctx[r].m), sum);
        ck_assert_int_eq(vae_optimizer_steps(ctx[r].opt), 4);
        ctx[r].n = 0;
        ctx[r].job = &rows;
    }
    /* 36 rows on rank 2, 37 elsewhere: the ranks disagree */
    run_ranks(ctx, 3, step_script);
    expect_clean(&w);
    for (int r = 0; r < 3; r++) {
        ck_assert_msg(ctx[r].status[0] == VAE_ERR_COMM, "rank %d: %d %s", r, ctx[r].status[0],
                      ctx[r].message[0]);
        ck_assert_msg(contains(ctx[r].message[0], r == 2 ? "(36 rows here)" : "(37 rows here)"),
                      "%s", ctx[r].message[0]);
        ck_assert_uint_eq(vae_model_checksum(ctx[r].m), sum);
        ck_assert_int_eq(vae_optimizer_steps(ctx[r].opt), 4);
    }
    ranks_free(&base, 1);
    ranks_free(ctx, 3);
}
END_TEST

/* ---- 5. Arguments, and a communicator of one rank ---- */

static int never_sum(void *user, void *data, int64_t count, vae_comm_type type)
{
    (void)user;
    (void)data;
    (void)count;
    (void)type;
    return 1;
}

static int never_broadcast(void *user, void *data, int64_t bytes, int root)
{
    (void)user;
    (void)data;
    (void)bytes;
    (void)root;
    return 1;
}

START_TEST(test_arguments)
{
    vae_comm *c = NULL, *half = NULL, *solo = NULL;
    vae_model *m = make_model(25, 1, 16), *clone = NULL;
    double d = 1.0;
    ck_assert_int_eq(vae_comm_create(NULL, 0, 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_create(&c, 0, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_create(&c, -1, 2), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_create(&c, 2, 2), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(c);
    ck_assert_msg(contains(vae_last_error(), "rank 2 of 2"), "%s", vae_last_error());
    ck_assert_int_eq(vae_comm_rank(NULL), 0);
    ck_assert_int_eq(vae_comm_size(NULL), 1);
    ck_assert_int_eq(vae_comm_create(&c, 1, 2), VAE_OK);
    ck_assert_int_eq(vae_comm_rank(c), 1);
    ck_assert_int_eq(vae_comm_size(c), 2);

    /* operations missing */
    ck_assert_int_eq(vae_comm_set_sum(NULL, never_sum, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_set_sum(c, NULL, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_set_broadcast(NULL, never_broadcast, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_set_broadcast(c, NULL, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_comm(m, c), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_agree(c, VAE_OK), VAE_ERR_COMM);
    ck_assert_msg(contains(vae_last_error(), "vae_comm_set_sum"), "%s", vae_last_error());
    ck_assert_int_eq(vae_comm_broadcast(c, &d, sizeof d, 0), VAE_ERR_COMM);
    ck_assert_msg(contains(vae_last_error(), "vae_comm_set_broadcast"), "%s", vae_last_error());
    ck_assert_int_eq(vae_comm_set_sum(c, never_sum, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_set_comm(m, c), VAE_ERR_ARGUMENT); /* no broadcast yet */
    ck_assert_ptr_null(vae_model_comm(m));
    ck_assert_int_eq(vae_comm_create(&half, 0, 2), VAE_OK);
    ck_assert_int_eq(vae_comm_set_broadcast(half, never_broadcast, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_set_comm(m, half), VAE_ERR_ARGUMENT); /* no sum */
    ck_assert_int_eq(vae_comm_set_broadcast(c, never_broadcast, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_set_comm(m, c), VAE_OK);
    ck_assert_ptr_eq(vae_model_comm(m), c);

    /* callbacks that fail: VAE_ERR_COMM with the code */
    ck_assert_int_eq(vae_comm_agree(c, VAE_OK), VAE_ERR_COMM);
    ck_assert_msg(contains(vae_last_error(), "callback returned 1"), "%s", vae_last_error());
    ck_assert_int_eq(vae_comm_agree(c, VAE_ERR_IO), VAE_ERR_IO); /* its own, even so */
    ck_assert_int_eq(vae_comm_broadcast(c, &d, sizeof d, 1), VAE_ERR_COMM);
    ck_assert_int_eq(vae_model_comm_check(m, NULL), VAE_ERR_COMM);

    /* bad arguments */
    ck_assert_int_eq(vae_comm_agree(NULL, VAE_OK), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_broadcast(NULL, &d, sizeof d, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_broadcast(c, NULL, sizeof d, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_broadcast(c, &d, -1, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_broadcast(c, &d, sizeof d, 2), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_comm_broadcast(c, &d, sizeof d, -1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_comm(NULL, c), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(vae_model_comm(NULL));
    ck_assert_uint_eq(vae_model_checksum(NULL), 0);
    ck_assert_int_eq(vae_model_comm_check(NULL, NULL), VAE_ERR_ARGUMENT);

    /* a clone cannot take one */
    ck_assert_int_eq(vae_model_clone(&clone, m), VAE_OK);
    ck_assert_int_eq(vae_model_set_comm(clone, c), VAE_ERR_STATE);
    ck_assert_int_eq(vae_model_set_comm(clone, NULL), VAE_ERR_STATE);
    ck_assert_ptr_null(vae_model_comm(clone));
    ck_assert_uint_eq(vae_model_checksum(clone), vae_model_checksum(m));
    {
        /* and evaluates alone, though its parent's communicator would fail */
        vae_dataset *ds = make_data(20);
        double nelbo = 0.0;
        ck_assert_int_eq(vae_model_evaluate(clone, ds, &nelbo), VAE_OK);
        ck_assert(nelbo > 0.0);
        ck_assert_int_eq(vae_model_evaluate(m, ds, &nelbo), VAE_ERR_COMM);
        vae_dataset_free(ds);
    }
    vae_model_free(clone);

    /* detached again; one rank needs no operations */
    ck_assert_int_eq(vae_model_set_comm(m, NULL), VAE_OK);
    ck_assert_ptr_null(vae_model_comm(m));
    ck_assert_int_eq(vae_model_comm_check(m, NULL), VAE_OK);
    ck_assert_int_eq(vae_comm_create(&solo, 0, 1), VAE_OK);
    ck_assert_int_eq(vae_model_set_comm(m, solo), VAE_OK);
    ck_assert_int_eq(vae_comm_agree(solo, VAE_OK), VAE_OK);
    ck_assert_int_eq(vae_comm_agree(solo, VAE_ERR_IO), VAE_ERR_IO);
    ck_assert_int_eq(vae_comm_broadcast(solo, &d, sizeof d, 0), VAE_OK);
    ck_assert_int_eq(vae_comm_broadcast(solo, &d, sizeof d, 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_comm_check(m, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_set_comm(m, NULL), VAE_OK);
    vae_comm_free(NULL);
    vae_comm_free(c);
    vae_comm_free(half);
    vae_comm_free(solo);
    vae_model_free(m);
}
END_TEST

/* A communicator of one rank changes nothing: the same bits as none. */
START_TEST(test_one_rank_is_no_comm)
{
    setup s = {.size = 1, .threads = 2, .max_batch = 64, .rows = ROWS, .seed = 26};
    train_job job = {.epochs = 2, .batch = 37, .stop_rank = -1};
    eval_job ejob = {.samples = 3, .seed = 5};
    rank_ctx plain, solo;
    vae_comm *c = NULL;
    int64_t n;
    ranks_create(&plain, NULL, s);
    ranks_create(&solo, NULL, s);
    ck_assert_int_eq(vae_comm_create(&c, 0, 1), VAE_OK); /* no operations */
    ck_assert_int_eq(vae_model_set_comm(solo.m, c), VAE_OK);
    plain.job = solo.job = &job;
    train_script(&plain);
    train_script(&solo);
    ck_assert_int_eq(solo.n, 2);
    for (int e = 0; e < 2; e++) {
        ck_assert_msg(solo.status[e] == VAE_OK, "%s", solo.message[e]);
        ck_assert_double_eq(solo.a[e], plain.a[e]);
        ck_assert_double_eq(solo.b[e], plain.b[e]);
    }
    ck_assert_uint_eq(vae_model_checksum(solo.m), vae_model_checksum(plain.m));
    ck_assert_double_eq(max_param_diff(solo.m, plain.m), 0.0);
    plain.n = solo.n = 0;
    plain.job = solo.job = &ejob;
    eval_script(&plain);
    eval_script(&solo);
    n = vae_dataset_count(plain.data);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(solo.status[i], VAE_OK);
        ck_assert_double_eq(solo.a[i], plain.a[i]);
    }
    ck_assert_mem_eq(solo.images_f, plain.images_f, sizeof(float) * (size_t)n);
    ck_assert_mem_eq(solo.images_d, plain.images_d, sizeof(double) * (size_t)n);
    ranks_free(&plain, 1);
    ranks_free(&solo, 1);
    vae_comm_free(c);
}
END_TEST

/* ---- 6. The noise of a row depends on neither threads nor ranks ---- */

/* vae__rng_normal_at is the matching part of vae__rng_normal's sequence,
   for every start and count up to 20, odd and even. */
START_TEST(test_normal_at)
{
    enum { N = 41 };
    float all[N], part[N + 1];
    vae_rng rng, after, skipped;
    vae__rng_seed3(&rng, 123, STREAM_TRAIN, 7);
    after = rng;
    vae__rng_normal(&after, all, N);
    for (int start = 0; start <= 20; start++)
        for (int n = 0; n <= 20; n++) {
            vae_rng copy = rng;
            part[n] = 12345.0f; /* the one past the end stays */
            vae__rng_normal_at(&rng, part, start, n);
            ck_assert_msg(memcmp(part, all + start, sizeof(float) * (size_t)n) == 0,
                          "start %d count %d", start, n);
            ck_assert_float_eq(part[n], 12345.0f);
            ck_assert_mem_eq(&copy, &rng, sizeof rng); /* r is left as it was */
        }
    /* skipping n normals leaves the generator where drawing them does */
    for (int n = 0; n <= 20; n++) {
        vae_rng drawn = rng;
        skipped = rng;
        vae__rng_normal(&drawn, all, n);
        vae__rng_skip_normals(&skipped, n);
        ck_assert_mem_eq(&drawn, &skipped, sizeof drawn);
    }
}
END_TEST

/* The noise a row of a batch gets: filled by any thread count for any
   share of the batch, it is the one-process, one-thread value. */
START_TEST(test_fill_noise_shares)
{
    enum { TOTAL = 37 };
    vae_model *one = make_model(27, 1, 64), *many = make_model(27, 3, 64);
    const plan *p1, *p3;
    float ref[TOTAL * LATENT];
    ck_assert_int_eq(vae__model_ensure_planned(one, 0), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(many, 0), VAE_OK);
    p1 = &one->plans[PLAN_TRAIN];
    p3 = &many->plans[PLAN_TRAIN];
    ck_assert_int_eq(p1->n_noise, 1);
    ck_assert_int_eq(one->g->nodes[p1->noise[0]].size, LATENT);
    {
        vae_rng rng;
        vae__rng_seed3(&rng, 5, STREAM_TRAIN, 2);
        vae__split_rows(one, 0, TOTAL, TOTAL, 0);
        vae__fill_noise(one, p1, &rng);
        memcpy(ref, one->workers[0].c.val[p1->noise[0]], sizeof ref);
    }
    /* the shares of 1, 2 and 3 ranks, split between 3 threads or given to one */
    for (int size = 1; size <= 3; size++)
        for (int rank = 0; rank < size; rank++)
            for (int single = 0; single < 2; single++) {
                int lo = TOTAL * rank / size, hi = TOTAL * (rank + 1) / size;
                vae_rng rng;
                vae__rng_seed3(&rng, 5, STREAM_TRAIN, 2);
                vae__split_rows(many, lo, hi, TOTAL, single);
                vae__fill_noise(many, p3, &rng);
                for (int t = 0; t < 3; t++) {
                    const worker *wk = &many->workers[t];
                    ck_assert_int_eq(wk->c.rows, wk->hi - wk->lo);
                    ck_assert_msg(memcmp(wk->c.val[p3->noise[0]], ref + wk->lo * LATENT,
                                         sizeof(float) * (size_t)(wk->c.rows * LATENT)) == 0,
                                  "rank %d of %d, thread %d (rows %d..%d)", rank, size, t,
                                  wk->lo, wk->hi);
                }
                ck_assert_int_eq(many->workers[0].lo, lo);
                ck_assert_int_eq(many->workers[2].hi, hi);
            }
    vae_model_free(one);
    vae_model_free(many);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("comm");
    TCase *equal = tcase_create("as one process");
    TCase *resume = tcase_create("resume and stop");
    TCase *fail = tcase_create("failures");
    TCase *args = tcase_create("arguments and noise");
    tcase_set_timeout(equal, 300);
    tcase_add_loop_test(equal, test_train_matches_one_process, 0, 12);
    tcase_add_loop_test(equal, test_evaluate_matches_one_process, 0, 6);
    tcase_add_test(equal, test_train_step);
    tcase_add_loop_test(equal, test_sharded_update, 0, 4);
    suite_add_tcase(s, equal);
    tcase_set_timeout(resume, 300);
    tcase_add_checked_fixture(resume, make_tmpdir, remove_tmpdir);
    tcase_add_test(resume, test_resume_on_other_rank_count);
    tcase_add_loop_test(resume, test_stop_on_one_rank, 0, 3);
    suite_add_tcase(s, resume);
    /* each under a timeout: a hang is a failure, not a stuck suite */
    tcase_set_timeout(fail, 60);
    tcase_add_test(fail, test_bad_data_on_one_rank);
    tcase_add_test(fail, test_batch_differs_on_one_rank);
    tcase_add_test(fail, test_data_size_differs);
    tcase_add_loop_test(fail, test_callback_fails, 0, 4);
    tcase_add_test(fail, test_sum_fails_on_one_rank);
    tcase_add_loop_test(fail, test_sharded_callback_fails, 0, 2);
    tcase_add_test(fail, test_different_seeds);
    tcase_add_loop_test(fail, test_comm_check, 0, 4);
    tcase_add_test(fail, test_comm_check_foreign_optimizer);
    tcase_add_test(fail, test_agree_and_broadcast);
    suite_add_tcase(s, fail);
    tcase_set_timeout(args, 60);
    tcase_add_test(args, test_arguments);
    tcase_add_test(args, test_one_rank_is_no_comm);
    tcase_add_test(args, test_normal_at);
    tcase_add_test(args, test_fill_noise_shares);
    suite_add_tcase(s, args);
    return tu_run(s);
}
