/* Training.  A step splits the batch between the workers (forward and
   backward on each slice), then every worker sums one range of the
   gradient over all workers and updates that range of the weights:
   data-parallel training with one all-reduce.  Small batches go to one
   worker whose matrix products use every thread instead. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many rows per thread a batch is not split between workers:
   one worker takes it and splits each matrix product by columns instead,
   so weights are packed and gradients written once, with no reduction.
   Measured on 2 threads: R3 (7M weights) at batch 32 1,870 vs 1,510
   images/s, at 64 2,600 vs 1,560, at 128 3,190 vs 3,370; R1's 784-400-20
   at 32 27k vs 18k, at 64 38k vs 34k, at 128 46k vs 49k.  Graphs with
   convolutions, whose GEMMs are large for any batch, always split it. */
#define SPLIT_BATCH_MIN_ROWS 64

typedef struct update_job {
    vae_model *m;
    vae_optimizer *opt;
    float scale;
    int single;     /* only worker 0 has a gradient */
    int64_t lo, hi; /* the parameters this rank updates: all of them, or
                       with a sharded update its part */
    double sumsq[64];
    update_stats stats[64];
} update_job;

/* Worker t's range of the job's parameters, 16-float aligned. */
static void param_range(const update_job *job, int t, int64_t *lo, int64_t *hi)
{
    int threads = job->m->threads;
    int64_t n = job->hi - job->lo, per = ((n + threads - 1) / threads + 15) & ~(int64_t)15;
    *lo = job->lo + (per * t < n ? per * t : n);
    *hi = job->lo + (per * (t + 1) < n ? per * (t + 1) : n);
}

/* The first live range that ends after `at`. */
static int64_t first_live(const vae_model *m, int64_t at)
{
    int64_t lo = 0, hi = m->n_live;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (m->live[2 * mid + 1] <= at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Calls fn on each part of thread t's range that holds live parameters:
   masked-out weights have zero gradients and moments for good, so the
   memory-bound passes skip them (a sixth of R3's weights). */
static void each_live(update_job *job, int t, void (*fn)(update_job *, int, int64_t, int64_t))
{
    const vae_model *m = job->m;
    int64_t lo, hi;
    param_range(job, t, &lo, &hi);
    for (int64_t r = first_live(m, lo); r < m->n_live && m->live[2 * r] < hi; r++)
        fn(job, t, m->live[2 * r] > lo ? m->live[2 * r] : lo,
           m->live[2 * r + 1] < hi ? m->live[2 * r + 1] : hi);
}

/* Sums the workers' gradients into worker 0's over [lo, hi). */
VAE_HOT static void sum_workers(update_job *job, int64_t lo, int64_t hi)
{
    vae_model *m = job->m;
    float *total = m->workers[0].c.param_grad;
    for (int k = 1; k < m->threads && !job->single; k++) {
        float *part = m->workers[k].c.param_grad;
        for (int64_t i = lo; i < hi; i++) {
            total[i] += part[i];
            part[i] = 0.0f;
        }
    }
}

/* The sum of squares of worker 0's gradient over [lo, hi). */
VAE_HOT static double sum_squares(const float *g, int64_t lo, int64_t hi)
{
    double s = 0.0;
    /* float sums of short blocks keep the pass as fast as memory, double
       between blocks keeps millions of terms accurate */
    for (int64_t b = lo; b < hi; b += 1024) {
        int64_t end = b + 1024 < hi ? b + 1024 : hi;
        float block = 0.0f;
#pragma omp simd reduction(+ : block)
        for (int64_t i = b; i < end; i++)
            block += g[i] * g[i];
        if (!isfinite(block)) /* huge but finite gradients: redo in double */
            for (int64_t i = b; i < end; i++)
                s += (double)g[i] * g[i];
        else
            s += block;
    }
    return s;
}

/* One pass when the process holds the whole batch: the sum over workers
   and its squares while the range is in cache. */
static void reduce_range(update_job *job, int t, int64_t lo, int64_t hi)
{
    sum_workers(job, lo, hi);
    job->sumsq[t] += sum_squares(job->m->workers[0].c.param_grad, lo, hi);
}

static void reduce_slice(void *arg, int t)
{
    update_job *job = arg;
    job->sumsq[t] = 0.0;
    each_live(job, t, reduce_range);
}

/* With ranks, the squares wait for the sum over ranks in between. */
static void sum_workers_range(update_job *job, int t, int64_t lo, int64_t hi)
{
    (void)t;
    sum_workers(job, lo, hi);
}

static void squares_range(update_job *job, int t, int64_t lo, int64_t hi)
{
    job->sumsq[t] += sum_squares(job->m->workers[0].c.param_grad, lo, hi);
}

static void sum_workers_slice(void *arg, int t) { each_live(arg, t, sum_workers_range); }

static void squares_slice(void *arg, int t)
{
    update_job *job = arg;
    job->sumsq[t] = 0.0;
    each_live(job, t, squares_range);
}

/* The rank's part of the gradient summed over the ranks, the rest zero
   (the update clears the part), and the squares of the part. */
static vae_status scatter_gradient(vae_model *m, update_job *up)
{
    float *grad = m->workers[0].c.param_grad;
    int64_t n = m->g->n_params;
    VAE_TRY(vae__comm_reduce_scatter(m->comm, grad, n));
    vae__comm_share(m->comm, n, &up->lo, &up->hi);
    memset(grad, 0, (size_t)up->lo * sizeof *grad);
    memset(grad + up->hi, 0, (size_t)(n - up->hi) * sizeof *grad);
    vae__pool_run(m->pool, squares_slice, up);
    return VAE_OK;
}

/* Sums the gradient over workers (and ranks); returns its norm. */
static vae_status reduce_gradient(vae_model *m, update_job *up, int sharded, double *norm)
{
    double sumsq = 0.0;
    vae_status s = VAE_OK;
    if (!vae__comm_active(m->comm)) {
        vae__pool_run(m->pool, reduce_slice, up);
    } else {
        vae__pool_run(m->pool, sum_workers_slice, up);
        if (sharded)
            s = scatter_gradient(m, up);
        else if ((s = vae__comm_sum_floats(m->comm, m->workers[0].c.param_grad,
                                           m->g->n_params)) == VAE_OK)
            vae__pool_run(m->pool, squares_slice, up);
    }
    for (int t = 0; t < m->threads && s == VAE_OK; t++)
        sumsq += up->sumsq[t];
    /* each rank has the squares of its part */
    if (s == VAE_OK && sharded)
        s = vae__comm_sum_doubles(m->comm, &sumsq, 1);
    if (s != VAE_OK) {
        vae__clear_gradients(m);
        return s;
    }
    *norm = sqrt(sumsq);
    return VAE_OK;
}

static void update_range(update_job *job, int t, int64_t lo, int64_t hi)
{
    (void)t;
    vae__optimizer_update(job->opt, job->m->g->params, job->m->workers[0].c.param_grad,
                          job->scale, lo, hi);
}

static void probe_range(update_job *job, int t, int64_t lo, int64_t hi)
{
    vae__optimizer_probe(job->opt, job->m->g->params, job->m->workers[0].c.param_grad,
                         job->scale, lo, hi, &job->stats[t]);
}

static void update_slice(void *arg, int t) { each_live(arg, t, update_range); }
static void probe_slice(void *arg, int t) { each_live(arg, t, probe_range); }

/* Probes the update: fails if it would make any weight or moment not
   finite, else measures the bounds the update will leave. */
static vae_status probe(vae_model *m, vae_optimizer *opt, update_job *up, double next[3])
{
    float nan_if_bad = 0.0f;
    memset(up->stats, 0, sizeof up->stats);
    vae__pool_run(m->pool, probe_slice, up);
    next[0] = next[1] = next[2] = 0.0;
    for (int t = 0; t < m->threads; t++) {
        nan_if_bad += up->stats[t].probe;
        next[0] = fmax(next[0], up->stats[t].p_max);
        next[1] = fmax(next[1], up->stats[t].m1_max);
        next[2] = fmax(next[2], up->stats[t].m2_max);
    }
    if (up->hi - up->lo < m->g->n_params) {
        /* each rank probed its part: the ranks' sums of the maxima bound
           every part's, the same bounds on every rank */
        double v[4] = {isnan(nan_if_bad), next[0], next[1], next[2]};
        VAE_TRY(vae__comm_sum_doubles(m->comm, v, 4));
        nan_if_bad = v[0] > 0.0 ? NAN : 0.0f;
        memcpy(next, v + 1, 3 * sizeof *next);
    }
    if (!isnan(nan_if_bad))
        return VAE_OK;
    return vae__fail(VAE_ERR_NOT_FINITE, "the update at step %lld would make weights or "
                     "optimizer moments not finite (learning rate %g); the weights are those "
                     "before this step", (long long)m->train.steps,
                     opt->settings[VAE_OPT_LEARNING_RATE]);
}

/* Updates the weights unless that would make any weight or moment not
   finite; then fails and leaves them (and the step count) as they were. */
static vae_status update(vae_model *m, vae_optimizer *opt, update_job *up, double grad_max)
{
    double next[3], p_max = m->param_max_known ? m->param_max : INFINITY;
    vae_status s;
    vae__optimizer_begin_step(opt);
    if (!vae__optimizer_next_bounds(opt, p_max, grad_max, next) &&
        (s = probe(m, opt, up, next)) != VAE_OK) {
        opt->steps--;
        vae__clear_gradients(m);
        return s;
    }
    vae__pool_run(m->pool, update_slice, up);
    if (up->hi - up->lo < m->g->n_params &&
        (s = vae__comm_allgather(m->comm, m->g->params, m->g->n_params)) != VAE_OK)
        return s;
    m->param_max = next[0];
    opt->m1_max = next[1];
    opt->m2_max = next[2];
    m->param_max_known = opt->maxima_known = 1;
    return VAE_OK;
}

/* A step's sums over its rows, and over the ranks once they agree; then
   what every rank must pass alike (see batch_sizes). */
enum {
    SUM_OBJECTIVE, SUM_NELBO, SUM_RECON, SUM_KL, SUM_STOP,
    SUM_ALIKE, SUM_COUNT = SUM_ALIKE + 8
};

/* The batch's rows and, in an epoch, the data set's size: ranks that
   disagree would sum the gradients of different batches, or make different
   numbers of steps and so of collective calls. */
static void batch_sizes(const batch_job *job, int64_t sizes[2])
{
    sizes[0] = job->rows;
    sizes[1] = job->data ? job->data->count : 0;
}

static vae_status check_alike(const vae_model *m, const batch_job *job, const double *sums,
                              const char *what)
{
    int64_t sizes[2];
    char data[64] = "";
    batch_sizes(job, sizes);
    if (vae__comm_alike(m->comm, sizes, 2, sums))
        return VAE_OK;
    if (job->data)
        snprintf(data, sizeof data, " of a data set of %lld images", (long long)sizes[1]);
    return vae__fail(VAE_ERR_COMM, "%s: the ranks' batches differ (%d rows here%s): every rank "
                     "must pass the same batch and data set", what, job->rows, data);
}

/* Forward and backward on this rank's share of the batch, then the ranks
   agree on their statuses (local: a check that failed here; stop: a stop
   asked for after the previous batch) and sum the results. */
static vae_status forward_backward(vae_model *m, batch_job *job, vae_status local, int stop,
                                   double sums[SUM_COUNT], const char *what)
{
    int64_t lo, hi, sizes[2];
    vae_rng rng;
    memset(sums, 0, SUM_COUNT * sizeof *sums);
    if (local == VAE_OK) {
        vae__comm_share(m->comm, job->rows, &lo, &hi);
        job->single = m->threads > 1 && !m->has_conv && hi - lo <= m->slice_rows &&
                      hi - lo < SPLIT_BATCH_MIN_ROWS * m->threads;
        vae__split_rows(m, (int)lo, (int)hi, job->rows, job->single);
        vae__rng_seed3(&rng, m->g->seed, STREAM_TRAIN, (uint64_t)m->train.steps);
        vae__fill_noise(m, job->p, &rng);
        vae__run_batch(job);
        for (int t = 0; t < m->threads; t++) {
            sums[SUM_OBJECTIVE] += m->workers[t].objective;
            sums[SUM_NELBO] += m->workers[t].nelbo_sum;
            sums[SUM_RECON] += m->workers[t].recon_sum;
            sums[SUM_KL] += m->workers[t].kl_sum;
        }
        sums[SUM_STOP] = stop;
        batch_sizes(job, sizes);
        vae__comm_alike_values(sizes, 2, sums + SUM_ALIKE);
    }
    if (vae__comm_active(m->comm)) {
        local = vae__comm_agree_with(m->comm, local, sums, SUM_COUNT, what);
        if (local == VAE_OK)
            local = check_alike(m, job, sums + SUM_ALIKE, what);
    }
    if (local == VAE_OK && sums[SUM_STOP] > 0.0)
        local = vae__fail(VAE_ERR_STOPPED, "%s: stopped by the progress callback of %d of %d "
                          "ranks after batch %d", what, (int)sums[SUM_STOP],
                          vae_comm_size(m->comm), m->train.epoch_pos);
    if (local != VAE_OK && m->workers)
        vae__clear_gradients(m);
    return local;
}

/* How a step runs: local and stop as forward_backward takes them; sharded:
   each rank updates its part of the weights (vae__comm_sharded). */
typedef struct step_how {
    vae_status local;
    int stop, sharded;
} step_how;

/* Forward, backward and update on one batch whose rows come from job;
   terms (if not NULL) gets the batch's sums of the reconstruction and KL
   terms. */
static vae_status step(vae_model *m, vae_optimizer *opt, batch_job *job, step_how how,
                       double *objective, double *nelbo, double terms[2])
{
    update_job up = {.m = m, .opt = opt, .scale = 1.0f, .lo = 0, .hi = m->g->n_params};
    double sums[SUM_COUNT], nel, clip, norm;
    VAE_TRY(forward_backward(m, job, how.local, how.stop, sums, "training step"));
    nel = sums[SUM_NELBO] / job->rows;
    if (!isfinite(sums[SUM_OBJECTIVE]) || !isfinite(nel)) {
        vae__clear_gradients(m);
        return vae__fail(VAE_ERR_NOT_FINITE, "training loss is not finite (objective %g, -ELBO %g) "
                         "at step %lld; the weights are those before this step",
                         sums[SUM_OBJECTIVE], nel, (long long)m->train.steps);
    }
    up.single = job->single;
    VAE_TRY(reduce_gradient(m, &up, how.sharded, &norm));
    if (!isfinite(norm)) {
        vae__clear_gradients(m);
        return vae__fail(VAE_ERR_NOT_FINITE, "gradient is not finite at step %lld; the weights "
                         "are those before this step", (long long)m->train.steps);
    }
    clip = opt->settings[VAE_OPT_CLIP_NORM];
    if (clip > 0.0 && norm > clip)
        up.scale = (float)(clip / norm);
    VAE_TRY(update(m, opt, &up, norm * up.scale));
    m->train.steps++;
    if (terms) {
        terms[0] = sums[SUM_RECON];
        terms[1] = sums[SUM_KL];
    }
    if (objective)
        *objective = sums[SUM_OBJECTIVE];
    if (nelbo)
        *nelbo = nel;
    return VAE_OK;
}

static vae_status check_training(vae_model *m, vae_optimizer *opt, const char *what)
{
    if (!m || !opt)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL model or optimizer", what);
    if (opt->model != m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the optimizer belongs to another model", what);
    VAE_TRY(vae__model_check_writable(m, what));
    if (!m->g->nodes[m->g->roles[VAE_ROLE_OBJECTIVE]].needs_grad)
        return vae__fail(VAE_ERR_STATE, "%s: the objective depends on no parameter", what);
    return vae__model_ensure_planned(m, 1);
}

/* The checks of vae_model_train_step on this rank. */
static vae_status check_step(vae_model *m, vae_optimizer *opt, const vae_tensor *x,
                             int64_t *rows)
{
    const char *what = "vae_model_train_step";
    VAE_TRY(check_training(m, opt, what));
    VAE_TRY(vae__tensor_check_rows(x, what, vae_model_input_size(m), rows));
    if (*rows > m->max_batch)
        return vae__fail(VAE_ERR_SHAPE, "%s: %lld rows exceed the maximum batch %d", what,
                         (long long)*rows, m->max_batch);
    if (m->unit_inputs)
        return vae__check_unit_range(NULL, x->data, x->count, what);
    return VAE_OK;
}

VAE_API vae_status vae_model_train_step(vae_model *m, vae_optimizer *opt, const vae_tensor *x,
                                        double *objective, double *nelbo)
{
    int64_t rows = 0;
    vae_status local = check_step(m, opt, x, &rows);
    batch_job job;
    /* a rank that failed its checks still meets the others' agreement */
    if (local != VAE_OK && !(m && vae__comm_active(m->comm)))
        return local;
    job = (batch_job){.m = m, .p = &m->plans[PLAN_TRAIN], .rows = (int)rows,
                      .feed = local == VAE_OK ? x->data : NULL, .backward = 1,
                      .out_node = {-1, -1}};
    /* the moments stay whole between the host's steps */
    return step(m, opt, &job, (step_how){.local = local}, objective, nelbo, NULL);
}

/* The epoch's order, made from the seed and the epoch number so that a
   resumed run sees the same order. */
static vae_status shuffle(vae_model *m, int64_t n)
{
    vae_rng rng;
    if (m->perm_count != n) {
        int64_t *perm = vae__realloc(m->perm, (size_t)n * sizeof *perm);
        if (!perm)
            return vae__fail(VAE_ERR_NO_MEMORY, "out of memory for the epoch's order");
        m->perm = perm;
        m->perm_count = n;
    }
    vae__rng_seed3(&rng, m->g->seed, STREAM_SHUFFLE, (uint64_t)m->train.epoch);
    vae__rng_permutation(&rng, m->perm, n);
    return VAE_OK;
}

/* What every completed epoch records in the model's history; the terms
   where the graph marks them (since 0.3). */
static const char *const history_columns[4] = {"train_objective", "train_nelbo", "train_recon",
                                               "train_kl"};

static int has_terms(const vae_model *m)
{
    return m->g->roles[VAE_ROLE_RECON] >= 0 && m->g->roles[VAE_ROLE_KL] >= 0;
}

/* The checks of vae_model_train_epoch on this rank, and what it prepares:
   the history's row and the epoch's order. */
static vae_status start_epoch(vae_model *m, vae_optimizer *opt, const vae_dataset *data,
                              int batch, const char *what)
{
    train_state *ts;
    int batches;
    VAE_TRY(check_training(m, opt, what));
    VAE_TRY(vae__check_data(m, data, what));
    if (batch < 1 || batch > m->max_batch)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: batch %d is not in 1..%d (the maximum batch)",
                         what, batch, m->max_batch);
    ts = &m->train;
    batches = (int)((data->count + batch - 1) / batch);
    /* the position counts batches: another size would skip or repeat images */
    if (ts->epoch_pos > 0 && ts->batch > 0 && batch != ts->batch)
        return vae__fail(VAE_ERR_STATE, "%s: epoch %d stopped after batch %d of %d images; "
                         "finish it with batches of %d, not %d", what, ts->epoch + 1,
                         ts->epoch_pos, ts->batch, ts->batch, batch);
    if (ts->epoch_pos >= batches)
        return vae__fail(VAE_ERR_STATE, "%s: the saved position %d is past this data set's %d "
                         "batches", what, ts->epoch_pos, batches);
    if (ts->epoch >= HISTORY_MAX_EPOCHS)
        return vae__fail(VAE_ERR_STATE, "%s: %d epochs done, the most a model records", what,
                         ts->epoch);
    VAE_TRY(vae__history_prepare(&m->hist, ts->epoch + 1, history_columns, has_terms(m) ? 4 : 2));
    return shuffle(m, data->count);
}

/* Records the completed epoch's means and moves to the next epoch. */
static void end_epoch(vae_model *m, double *objective, double *nelbo, const char *what)
{
    train_state *ts = &m->train;
    double images = (double)ts->epoch_images;
    double means[4] = {ts->epoch_objective / images, ts->epoch_nelbo / images,
                       ts->epoch_recon / images, ts->epoch_kl / images};
    /* prepared before the epoch, so these cannot fail */
    for (int i = 0; i < (has_terms(m) ? 4 : 2); i++)
        vae__history_set(&m->hist, ts->epoch + 1, history_columns[i], means[i], what);
    if (objective)
        *objective = means[0];
    if (nelbo)
        *nelbo = means[1];
    ts->epoch++;
    ts->epoch_pos = ts->batch = 0;
    ts->epoch_objective = ts->epoch_nelbo = ts->epoch_recon = ts->epoch_kl = 0.0;
    ts->epoch_images = 0;
}

/* The epoch's batches from its position on. */
static vae_status run_batches(vae_model *m, vae_optimizer *opt, const vae_dataset *data,
                              int batch, vae_progress_fn progress, void *user, const char *what)
{
    train_state *ts = &m->train;
    int batches = (int)((data->count + batch - 1) / batch);
    step_how how = {.sharded = vae__comm_sharded(m->comm)};
    for (int b = ts->epoch_pos; b < batches; b++) {
        int64_t first = (int64_t)b * batch;
        int rows = (int)(data->count - first < batch ? data->count - first : batch);
        batch_job job = {.m = m, .p = &m->plans[PLAN_TRAIN], .rows = rows, .data = data,
                         .index = m->perm + first, .backward = 1, .out_node = {-1, -1}};
        double obj, nel, terms[2];
        VAE_TRY(step(m, opt, &job, how, &obj, &nel, terms));
        ts->epoch_objective += obj * rows;
        ts->epoch_nelbo += nel * rows;
        ts->epoch_recon += terms[0];
        ts->epoch_kl += terms[1];
        ts->epoch_images += rows;
        ts->epoch_pos = b + 1;
        if (progress && progress(user, b + 1, batches, (float)obj) && b + 1 < batches) {
            /* with ranks, the others learn of it at the next step's agreement */
            if (!vae__comm_active(m->comm))
                return vae__fail(VAE_ERR_STOPPED, "%s: stopped by the progress callback after "
                                 "batch %d", what, b + 1);
            how.stop = 1;
        }
    }
    return VAE_OK;
}

/* After a sharded epoch each rank's moments are current in its part only:
   gathered, they are whole again for a save, a check or the host's steps.
   Not after a failed collective, which the ranks may not all have seen. */
static vae_status gather_moments(vae_model *m, vae_optimizer *opt, vae_status s,
                                 int64_t failures_before)
{
    float *moments[2] = {opt->moment1, opt->moment2};
    if (!vae__comm_sharded(m->comm) || vae__comm_failures(m->comm) != failures_before)
        return s;
    for (int i = 0; i < 2; i++) {
        vae_status g = moments[i] ? vae__comm_allgather(m->comm, moments[i], opt->n) : VAE_OK;
        if (g != VAE_OK)
            return g;
    }
    return s;
}

VAE_API vae_status vae_model_train_epoch(vae_model *m, vae_optimizer *opt,
                                         const vae_dataset *data, int batch,
                                         vae_progress_fn progress, void *user, double *objective,
                                         double *nelbo)
{
    const char *what = "vae_model_train_epoch";
    vae_status local = start_epoch(m, opt, data, batch, what), s;
    int64_t failures;
    if (!m)
        return local;
    /* the ranks start together from the same state, or not at all */
    VAE_TRY(vae__comm_check_same(m, local == VAE_OK ? opt : NULL, local, what));
    m->train.batch = batch;
    failures = vae__comm_failures(m->comm);
    s = run_batches(m, opt, data, batch, progress, user, what);
    VAE_TRY(gather_moments(m, opt, s, failures));
    end_epoch(m, objective, nelbo, what);
    /* a drift between the ranks is an error, never a silent divergence */
    return vae__comm_check_same(m, opt, VAE_OK, what);
}
