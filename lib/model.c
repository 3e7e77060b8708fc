/* Models: creation, settings, and the inference calls (encode, decode,
   reconstruct, sample). */
#include "model.h"

#include <stdlib.h>
#include <string.h>

enum { DEFAULT_MAX_BATCH = 256, MAX_THREADS = 64 };

static const char *const role_names[VAE_ROLE_COUNT_] = {
    "input", "latent mean", "latent log-variance", "latent", "logits",
    "objective", "nelbo", "decoded", "log weight",
};

/* Roles a model can do without (graphs from older versions lack them). */
static int role_optional(int role) { return role == VAE_ROLE_LOG_WEIGHT; }

static vae_status check_roles(const vae_graph *g)
{
    const node *mu, *z;
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        if ((g->roles[r] < 0 && !role_optional(r)) || g->roles[r] >= g->n_nodes)
            return vae__fail(VAE_ERR_STATE, "vae_model_create: the graph has no %s node "
                             "(vae_elbo_build sets every role)", role_names[r]);
    mu = &g->nodes[g->roles[VAE_ROLE_LATENT_MEAN]];
    z = &g->nodes[g->roles[VAE_ROLE_LATENT]];
    if (g->nodes[g->roles[VAE_ROLE_INPUT]].op != OP_INPUT)
        return vae__fail(VAE_ERR_STATE, "vae_model_create: the input role is not an input node");
    if (!mu->batched || !z->batched || mu->size != z->size ||
        g->nodes[g->roles[VAE_ROLE_OBJECTIVE]].batched ||
        g->nodes[g->roles[VAE_ROLE_OBJECTIVE]].size != 1 ||
        g->nodes[g->roles[VAE_ROLE_NELBO]].size != 1 ||
        (g->roles[VAE_ROLE_LOG_WEIGHT] >= 0 && (!g->nodes[g->roles[VAE_ROLE_LOG_WEIGHT]].batched ||
                                                g->nodes[g->roles[VAE_ROLE_LOG_WEIGHT]].size != 1)))
        return vae__fail(VAE_ERR_SHAPE, "vae_model_create: role nodes have the wrong shapes");
    return VAE_OK;
}

VAE_API vae_status vae_model_create(vae_model **out, vae_graph *g)
{
    vae_model *m;
    vae_status s;
    if (!out || !g)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_create: NULL argument");
    VAE_TRY(check_roles(g));
    if (!(m = vae__calloc(1, sizeof *m)))
        return VAE_ERR_NO_MEMORY;
    m->g = g;
    m->max_batch = DEFAULT_MAX_BATCH;
    m->threads = 1;
    if ((s = vae__model_build_plans(m)) != VAE_OK ||
        (s = vae__graph_live_ranges(g, &m->live, &m->n_live)) != VAE_OK) {
        m->g = NULL; /* the caller keeps the graph on failure */
        vae_model_free(m);
        return s;
    }
    *out = m;
    return VAE_OK;
}

VAE_API void vae_model_free(vae_model *m)
{
    if (!m)
        return;
    vae__model_unplan(m);
    vae__model_free_plans(m);
    vae_optimizer_free(m->saved_optimizer);
    vae_graph_free(m->g);
    free(m->perm);
    free(m->live);
    free(m);
}

VAE_API vae_status vae_model_set_max_batch(vae_model *m, int max_batch)
{
    if (!m || max_batch < 1 || max_batch > (1 << 20))
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_max_batch: bad model or size %d", max_batch);
    if (max_batch != m->max_batch)
        vae__model_unplan(m);
    m->max_batch = max_batch;
    return VAE_OK;
}

VAE_API vae_status vae_model_set_threads(vae_model *m, int threads)
{
    if (!m || threads < 1 || threads > MAX_THREADS)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_threads: bad model or count %d (1 to %d)",
                         threads, MAX_THREADS);
    if (threads != m->threads)
        vae__model_unplan(m);
    m->threads = threads;
    return VAE_OK;
}

VAE_API const vae_graph *vae_model_graph(const vae_model *m) { return m ? m->g : NULL; }

VAE_API int64_t vae_model_input_size(const vae_model *m)
{
    return m ? m->g->nodes[m->g->roles[VAE_ROLE_INPUT]].size : 0;
}

VAE_API int vae_model_latent_size(const vae_model *m)
{
    return m ? (int)m->g->nodes[m->g->roles[VAE_ROLE_LATENT]].size : 0;
}

VAE_API int64_t vae_model_param_count(const vae_model *m) { return m ? m->g->n_params : 0; }
VAE_API int vae_model_epoch(const vae_model *m) { return m ? m->train.epoch : 0; }
VAE_API int vae_model_epoch_position(const vae_model *m) { return m ? m->train.epoch_pos : 0; }
VAE_API int64_t vae_model_planned_bytes(const vae_model *m) { return m ? m->planned_bytes : 0; }

VAE_API vae_status vae_model_params_get(const vae_model *m, float *dst, int64_t count)
{
    if (!m || !dst || count != m->g->n_params)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_params_get: NULL argument or count %lld "
                         "is not the parameter count", (long long)count);
    memcpy(dst, m->g->params, (size_t)count * sizeof *dst);
    return VAE_OK;
}

VAE_API vae_status vae_model_params_set(vae_model *m, const float *src, int64_t count)
{
    if (!m || !src || count != m->g->n_params)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_params_set: NULL argument or count %lld "
                         "is not the parameter count", (long long)count);
    memcpy(m->g->params, src, (size_t)count * sizeof *src);
    vae__graph_apply_masks(m->g);
    return VAE_OK;
}

/* Runs plan `which` over n rows of `in` in chunks of max_batch, copying the
   outputs' rows to out0/out1 (either may be NULL). */
static vae_status run_chunks(vae_model *m, int which, const float *in, int64_t n, int node0,
                             float *out0, int node1, float *out1)
{
    const plan *p = &m->plans[which];
    int64_t in_size = m->g->nodes[p->feed].size;
    int64_t size0 = node0 >= 0 ? m->g->nodes[node0].size : 0;
    int64_t size1 = node1 >= 0 ? m->g->nodes[node1].size : 0;
    VAE_TRY(vae__model_ensure_planned(m, 0));
    vae__zero_noise(m, p);
    for (int64_t first = 0; first < n; first += m->max_batch) {
        int rows = (int)(n - first < m->max_batch ? n - first : m->max_batch);
        batch_job job = {.m = m, .p = p, .rows = rows, .feed = in + first * in_size,
                         .out_node = {node0, node1},
                         .out = {out0 ? out0 + first * size0 : NULL, out1 ? out1 + first * size1 : NULL}};
        vae__split_rows(m, rows, 0);
        vae__run_batch(&job);
    }
    return VAE_OK;
}

/* Checks an optional output tensor of n rows of `size`. */
static vae_status check_output(const vae_tensor *t, const char *what, int64_t n, int64_t size)
{
    int64_t rows;
    if (!t)
        return VAE_OK;
    VAE_TRY(vae__tensor_check_rows(t, what, size, &rows));
    if (rows != n)
        return vae__fail(VAE_ERR_SHAPE, "%s: output has %lld rows, input has %lld", what,
                         (long long)rows, (long long)n);
    return VAE_OK;
}

VAE_API vae_status vae_model_encode(vae_model *m, const vae_tensor *x, vae_tensor *mu,
                                    vae_tensor *logvar)
{
    int64_t n;
    const int *r;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_encode: model is NULL");
    r = m->g->roles;
    VAE_TRY(vae__tensor_check_rows(x, "vae_model_encode", vae_model_input_size(m), &n));
    VAE_TRY(check_output(mu, "vae_model_encode", n, vae_model_latent_size(m)));
    VAE_TRY(check_output(logvar, "vae_model_encode", n, vae_model_latent_size(m)));
    return run_chunks(m, PLAN_ENCODE, x->data, n, r[VAE_ROLE_LATENT_MEAN], mu ? mu->data : NULL,
                      r[VAE_ROLE_LATENT_LOGVAR], logvar ? logvar->data : NULL);
}

VAE_API vae_status vae_model_decode(vae_model *m, const vae_tensor *z, vae_tensor *out)
{
    int64_t n;
    if (!m || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_decode: NULL argument");
    VAE_TRY(vae__tensor_check_rows(z, "vae_model_decode", vae_model_latent_size(m), &n));
    VAE_TRY(check_output(out, "vae_model_decode", n, vae_model_input_size(m)));
    return run_chunks(m, PLAN_DECODE, z->data, n, m->g->roles[VAE_ROLE_DECODED], out->data, -1, NULL);
}

VAE_API vae_status vae_model_reconstruct(vae_model *m, const vae_tensor *x, vae_tensor *out)
{
    int64_t n;
    if (!m || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_reconstruct: NULL argument");
    VAE_TRY(vae__tensor_check_rows(x, "vae_model_reconstruct", vae_model_input_size(m), &n));
    VAE_TRY(check_output(out, "vae_model_reconstruct", n, vae_model_input_size(m)));
    return run_chunks(m, PLAN_RECONSTRUCT, x->data, n, m->g->roles[VAE_ROLE_DECODED], out->data,
                      -1, NULL);
}

VAE_API vae_status vae_model_sample_prior(vae_model *m, uint64_t seed, vae_tensor *out)
{
    int64_t n;
    int64_t dims[2];
    vae_tensor *z;
    vae_rng rng;
    vae_status s;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_sample_prior: model is NULL");
    VAE_TRY(vae__tensor_check_rows(out, "vae_model_sample_prior", vae_model_input_size(m), &n));
    dims[0] = n;
    dims[1] = vae_model_latent_size(m);
    VAE_TRY(vae_tensor_create(&z, 2, dims));
    vae__rng_seed(&rng, seed);
    vae__rng_normal(&rng, z->data, z->count);
    s = vae_model_decode(m, z, out);
    vae_tensor_free(z);
    return s;
}
