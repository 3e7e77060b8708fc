/* Evaluation: the mean -ELBO of a data set and the importance-weighted
   estimate of log p(x). */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

vae_status vae__check_data(const vae_model *m, const vae_dataset *data, const char *what)
{
    if (!data)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: data set is NULL", what);
    if (data->row_size != vae_model_input_size(m))
        return vae__fail(VAE_ERR_SHAPE, "%s: data rows have %lld values, the model takes %lld",
                         what, (long long)data->row_size, (long long)vae_model_input_size(m));
    return m->unit_inputs ? vae__check_unit_range(data, NULL, 0, what) : VAE_OK;
}

/* The batches of max_batch rows one process would run over `count` rows,
   each cut to this rank's rows [lo, hi), and seeded as one process seeds
   them: each rank computes what one process would for its rows. */
typedef struct share_batch {
    int64_t first; /* the batch's first row */
    int rows;      /* its rows */
    int lo, hi;    /* this rank's rows of it */
} share_batch;

/* The first row of the batch that holds `row`. */
static int64_t batch_of(const vae_model *m, int64_t row)
{
    return row / m->max_batch * m->max_batch;
}

/* Fills b for the batch from b->first; 0 past this rank's rows. */
static int next_batch(const vae_model *m, int64_t count, int64_t lo, int64_t hi, share_batch *b)
{
    if (b->first >= hi)
        return 0;
    b->rows = (int)(count - b->first < m->max_batch ? count - b->first : m->max_batch);
    b->lo = (int)((lo > b->first ? lo : b->first) - b->first);
    b->hi = (int)((hi < b->first + b->rows ? hi : b->first + b->rows) - b->first);
    return 1;
}

/* Sums -ELBO and its terms over this rank's images, and writes -ELBO per
   image into images (if not NULL). */
static vae_status evaluate_share(vae_model *m, const vae_dataset *data, double sums[3],
                                 float *images)
{
    int64_t lo, hi;
    share_batch b;
    VAE_TRY(vae__model_ensure_planned(m, 0));
    vae__comm_share(m->comm, data->count, &lo, &hi);
    for (b.first = batch_of(m, lo); next_batch(m, data->count, lo, hi, &b); b.first += m->max_batch) {
        batch_job job = {.m = m, .p = &m->plans[PLAN_EVAL], .rows = b.rows, .data = data,
                         .first = b.first,
                         .out_node = {images ? m->g->roles[VAE_ROLE_NELBO] : -1, -1},
                         .out = {images ? images + b.first : NULL, NULL}};
        vae_rng rng;
        vae__split_rows(m, b.lo, b.hi, b.rows, 0);
        vae__rng_seed3(&rng, m->g->seed, STREAM_EVAL, (uint64_t)b.first);
        vae__fill_noise(m, job.p, &rng);
        vae__run_batch(&job);
        for (int t = 0; t < m->threads; t++) {
            sums[0] += m->workers[t].nelbo_sum;
            sums[1] += m->workers[t].recon_sum;
            sums[2] += m->workers[t].kl_sum;
        }
    }
    return VAE_OK;
}

/* Ranks with data sets of other sizes would compute other shares and sum
   per-image results of other lengths. */
static vae_status check_count(vae_comm *c, int64_t count, const double *sums,
                              const char *what)
{
    if (vae__comm_alike(c, &count, 1, sums))
        return VAE_OK;
    return vae__fail(VAE_ERR_COMM, "%s: the ranks' data sets differ in size (%lld images here): "
                     "every rank must pass the same data set", what, (long long)count);
}

/* Sums -ELBO and its terms over the data set, and -ELBO per image into
   images (if not NULL, zeros); with ranks, each computes its share and
   they agree on local (a check that failed on this rank) and sum. */
static vae_status evaluate(vae_model *m, const vae_dataset *data, vae_status local,
                           double sums[3], float *images, const char *what)
{
    double v[3 + 4] = {0};
    if (local == VAE_OK)
        local = evaluate_share(m, data, v, images);
    if (vae__comm_active(m->comm)) {
        if (local == VAE_OK)
            vae__comm_alike_values(&data->count, 1, v + 3);
        local = vae__comm_agree_with(m->comm, local, v, 3 + 4, what);
        if (local == VAE_OK)
            local = check_count(m->comm, data->count, v + 3, what);
        /* the others' images are zeros here, so the sum is each one's value */
        if (local == VAE_OK && images)
            local = vae__comm_sum_floats(m->comm, images, data->count);
    }
    memcpy(sums, v, 3 * sizeof *sums);
    VAE_TRY(local);
    if (!isfinite(sums[0]))
        return vae__fail(VAE_ERR_NOT_FINITE, "%s: -ELBO is not finite", what);
    return VAE_OK;
}

VAE_API vae_status vae_model_evaluate(vae_model *m, const vae_dataset *data, double *nelbo)
{
    const char *what = "vae_model_evaluate";
    double sums[3];
    vae_status local = VAE_OK;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: model is NULL", what);
    if (!nelbo)
        local = vae__fail(VAE_ERR_ARGUMENT, "%s: nelbo is NULL", what);
    else
        local = vae__check_data(m, data, what);
    VAE_TRY(evaluate(m, data, local, sums, NULL, what));
    *nelbo = sums[0] / (double)data->count;
    return VAE_OK;
}

VAE_API vae_status vae_model_evaluate_terms(vae_model *m, const vae_dataset *data, double *nelbo,
                                            double *recon, double *kl, float *per_image)
{
    const char *what = "vae_model_evaluate_terms";
    double sums[3];
    float *images = NULL;
    vae_status s;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: model is NULL", what);
    s = vae__check_data(m, data, what);
    if (s == VAE_OK && (recon || kl) &&
        (m->g->roles[VAE_ROLE_RECON] < 0 || m->g->roles[VAE_ROLE_KL] < 0))
        s = vae__fail(VAE_ERR_UNSUPPORTED, "%s: the graph does not mark its reconstruction "
                      "and KL terms (graphs built by the ELBO builders since 0.3 do)", what);
    /* per image into a buffer of ours: the caller's is written on success only */
    if (s == VAE_OK && per_image && !(images = vae__alloc_floats(data->count)))
        s = VAE_ERR_NO_MEMORY;
    s = evaluate(m, data, s, sums, images, what);
    if (s == VAE_OK) {
        if (nelbo)
            *nelbo = sums[0] / (double)data->count;
        if (recon)
            *recon = sums[1] / (double)data->count;
        if (kl)
            *kl = sums[2] / (double)data->count;
        if (per_image)
            memcpy(per_image, images, (size_t)data->count * sizeof *images);
    }
    vae__free_aligned(images);
    return s;
}

/* log (1/k) sum exp(w_i) over one image's weights, kept as a running
   maximum and a sum of exp(w - max) so no term overflows. */
typedef struct log_mean_exp {
    double max, sum;
} log_mean_exp;

static void lme_add(log_mean_exp *a, double w)
{
    if (w == -INFINITY) /* a zero weight adds nothing (and -inf - -inf is NaN) */
        return;
    if (w <= a->max) {
        a->sum += exp(w - a->max);
    } else {
        a->sum = a->sum * exp(a->max - w) + 1.0;
        a->max = w;
    }
}

static double lme_result(const log_mean_exp *a, int k)
{
    return a->sum > 0.0 ? a->max + log(a->sum) - log((double)k) : -INFINITY;
}

typedef struct iw_state {
    int64_t *index;       /* image of each row of a batch */
    float *weights;       /* log weight of each row */
    log_mean_exp current; /* the image being summed */
    double total;         /* sum of finished images' log p(x) */
    int64_t done;         /* finished images (from this rank's first) */
} iw_state;

/* Folds rows lo .. hi-1 of a batch's weights into the images they belong
   to. */
static vae_status iw_fold(iw_state *st, const share_batch *b, int k, double *per_image)
{
    for (int j = b->lo; j < b->hi; j++) {
        double w = st->weights[j];
        if (isnan(w) || w == INFINITY)
            return vae__fail(VAE_ERR_NOT_FINITE, "vae_model_log_likelihood: the log weight of "
                             "image %lld is %g", (long long)st->index[j], w);
        lme_add(&st->current, w);
        if ((b->first + j + 1) % k == 0) {
            double lp = lme_result(&st->current, k);
            if (per_image)
                per_image[st->done] = lp;
            st->total += lp;
            st->done++;
            st->current = (log_mean_exp){-INFINITY, 0.0};
        }
    }
    return VAE_OK;
}

/* This rank's images, whole: their k rows each, in the batches one
   process would run. */
static vae_status log_likelihood(vae_model *m, const vae_dataset *data, int k, uint64_t seed,
                                 vae_progress_fn progress, void *user, iw_state *st,
                                 double *per_image)
{
    const plan *p = &m->plans[PLAN_LOG_WEIGHT];
    int64_t first_image, end_image, total_rows = data->count * k;
    share_batch b;
    vae__comm_share(m->comm, data->count, &first_image, &end_image);
    st->done = first_image;
    for (b.first = batch_of(m, first_image * k);
         next_batch(m, total_rows, first_image * k, end_image * k, &b); b.first += m->max_batch) {
        batch_job job = {.m = m, .p = p, .rows = b.rows, .data = data, .index = st->index,
                         .per_image = 1, .out_node = {m->g->roles[VAE_ROLE_LOG_WEIGHT], -1},
                         .out = {st->weights, NULL}};
        vae_rng rng;
        int64_t done;
        for (int j = b.lo; j < b.hi; j++)
            st->index[j] = (b.first + j) / k;
        vae__split_rows(m, b.lo, b.hi, b.rows, 0);
        vae__rng_seed3(&rng, seed, STREAM_LOG_WEIGHT, (uint64_t)b.first);
        vae__fill_noise(m, p, &rng);
        vae__run_batch(&job);
        VAE_TRY(iw_fold(st, &b, k, per_image));
        done = st->done - first_image;
        if (progress && done > 0 &&
            progress(user, (int)done, (int)(end_image - first_image), (float)(-st->total / done)) &&
            b.first + b.hi < end_image * k)
            return vae__fail(VAE_ERR_STOPPED, "vae_model_log_likelihood: stopped by the "
                             "progress callback after %lld images", (long long)done);
    }
    return VAE_OK;
}

static vae_status check_log_likelihood(vae_model *m, const vae_dataset *data, int samples,
                                       const double *mean_log_px, const char *what)
{
    if (!mean_log_px)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL output", what);
    VAE_TRY(vae__check_data(m, data, what));
    if (samples < 1 || samples > (1 << 24) || data->count < 1 || data->count > INT32_MAX)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: %d samples (1 to 2^24) for %lld images", what,
                         samples, (long long)data->count);
    if (m->plans[PLAN_LOG_WEIGHT].count == 0)
        return vae__fail(VAE_ERR_UNSUPPORTED, "%s: the model has no log-weight node (graphs "
                         "built by vae_elbo_build since libvae 0.2 have one)", what);
    return vae__model_ensure_planned(m, 0);
}

VAE_API vae_status vae_model_log_likelihood(vae_model *m, const vae_dataset *data, int samples,
                                            uint64_t seed, vae_progress_fn progress, void *user,
                                            double *mean_log_px, double *per_image)
{
    const char *what = "vae_model_log_likelihood";
    iw_state st = {.current = {-INFINITY, 0.0}};
    double *images = NULL;
    vae_status s;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL model", what);
    s = check_log_likelihood(m, data, samples, mean_log_px, what);
    if (s == VAE_OK) {
        st.index = vae__alloc((size_t)m->max_batch * sizeof *st.index);
        st.weights = vae__alloc((size_t)m->max_batch * sizeof *st.weights);
        /* per image into a buffer of ours (zeros where other ranks write):
           the caller's is written on success only */
        images = per_image ? vae__calloc((size_t)data->count, sizeof *images) : NULL;
        if (!st.index || !st.weights || (per_image && !images))
            s = vae__fail(VAE_ERR_NO_MEMORY, "%s: out of memory", what);
        else
            s = log_likelihood(m, data, samples, seed, progress, user, &st, images);
    }
    free(st.index);
    free(st.weights);
    if (vae__comm_active(m->comm)) {
        double v[1 + 4] = {st.total};
        if (s == VAE_OK)
            vae__comm_alike_values(&data->count, 1, v + 1);
        s = vae__comm_agree_with(m->comm, s, v, 1 + 4, what);
        st.total = v[0];
        if (s == VAE_OK)
            s = check_count(m->comm, data->count, v + 1, what);
        if (s == VAE_OK && images)
            s = vae__comm_sum_doubles(m->comm, images, data->count);
    }
    if (s == VAE_OK && !isfinite(st.total))
        s = vae__fail(VAE_ERR_NOT_FINITE, "%s: log p(x) is not finite (%g)", what, st.total);
    if (s == VAE_OK) {
        *mean_log_px = st.total / (double)data->count;
        if (per_image)
            memcpy(per_image, images, (size_t)data->count * sizeof *images);
    }
    free(images);
    return s;
}
