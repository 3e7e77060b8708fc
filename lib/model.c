/* Models: creation, settings, and the inference calls (encode, decode,
   reconstruct, sample). */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_MAX_BATCH = 256, MAX_BATCH = 1 << 20, MAX_THREADS = 64 };
#define DEFAULT_MEMORY_LIMIT ((int64_t)2 << 30)

static const char *const role_names[VAE_ROLE_COUNT_] = {
    "input", "latent mean", "latent log-variance", "latent", "logits",
    "objective", "nelbo", "decoded", "log weight", "reconstruction", "KL",
    "weighted KL",
};

/* Roles a model can do without (graphs from older versions lack them). */
static int role_optional(int role) { return role >= VAE_ROLE_LOG_WEIGHT; }

/* What each role's node must be, as the builders make it: batched or
   not, and its row size (0: any; -1: the input's; -2: the latent mean's). */
static const struct role_rule {
    int batched;
    int64_t size;
} role_rules[VAE_ROLE_COUNT_] = {
    [VAE_ROLE_INPUT] = {1, 0},          [VAE_ROLE_LATENT_MEAN] = {1, 0},
    [VAE_ROLE_LATENT_LOGVAR] = {1, -2}, [VAE_ROLE_LATENT] = {1, -2},
    [VAE_ROLE_LOGITS] = {1, -1},        [VAE_ROLE_OBJECTIVE] = {0, 1},
    [VAE_ROLE_NELBO] = {1, 1},          [VAE_ROLE_DECODED] = {1, -1},
    [VAE_ROLE_LOG_WEIGHT] = {1, 1},     [VAE_ROLE_RECON] = {1, 1},
    [VAE_ROLE_KL] = {1, 1},             [VAE_ROLE_WEIGHTED_KL] = {1, 1},
};

static vae_status check_role(const vae_graph *g, int r)
{
    const node *n = &g->nodes[g->roles[r]];
    int64_t want = role_rules[r].size;
    if (want == -1)
        want = g->nodes[g->roles[VAE_ROLE_INPUT]].size;
    else if (want == -2)
        want = g->nodes[g->roles[VAE_ROLE_LATENT_MEAN]].size;
    if (n->batched != role_rules[r].batched)
        return vae__fail(VAE_ERR_SHAPE, "vae_model_create: the %s node (%d) must %s", role_names[r],
                         g->roles[r], n->batched ? "not be batched" : "be batched");
    if (want && n->size != want)
        return vae__fail(VAE_ERR_SHAPE, "vae_model_create: the %s node (%d) has %lld elements%s, "
                         "expected %lld", role_names[r], g->roles[r], (long long)n->size,
                         n->batched ? " per row" : "", (long long)want);
    return VAE_OK;
}

static vae_status check_roles(const vae_graph *g)
{
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        if ((g->roles[r] < 0 && !role_optional(r)) || g->roles[r] >= g->n_nodes)
            return vae__fail(VAE_ERR_STATE, "vae_model_create: the graph has no %s node "
                             "(vae_elbo_build sets every role)", role_names[r]);
    if (g->nodes[g->roles[VAE_ROLE_INPUT]].op != OP_INPUT)
        return vae__fail(VAE_ERR_STATE, "vae_model_create: the input role is not an input node");
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        if (g->roles[r] >= 0)
            VAE_TRY(check_role(g, r));
    return VAE_OK;
}

VAE_API vae_status vae_model_create(vae_model **out, vae_graph *g)
{
    vae_model *m;
    vae_status s;
    if (!out || !g)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_create: NULL argument");
    if (g->owned)
        return vae__fail(VAE_ERR_STATE, "vae_model_create: the graph belongs to a model already "
                         "(a graph makes one model)");
    VAE_TRY(check_roles(g));
    if (!(m = vae__calloc(1, sizeof *m)))
        return VAE_ERR_NO_MEMORY;
    m->g = g;
    m->max_batch = DEFAULT_MAX_BATCH;
    m->threads = 1;
    m->memory_limit = DEFAULT_MEMORY_LIMIT;
    if ((s = vae__model_build_plans(m)) != VAE_OK ||
        (s = vae__graph_live_ranges(g, NULL, &m->live, &m->n_live)) != VAE_OK) {
        m->g = NULL; /* the caller keeps the graph on failure */
        vae_model_free(m);
        return s;
    }
    g->owned = 1;
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
    vae__history_free(&m->hist);
    vae__metadata_free(&m->meta);
    if (!m->parent)
        vae_graph_free(m->g);
    free(m->perm);
    free(m->live);
    free(m->frozen);
    free(m);
}

VAE_API vae_status vae_model_set_max_batch(vae_model *m, int max_batch)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_max_batch: model is NULL");
    if (max_batch < 1 || max_batch > MAX_BATCH)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_max_batch: %d rows is not in 1..%d",
                         max_batch, MAX_BATCH);
    if (max_batch != m->max_batch)
        vae__model_unplan(m);
    m->max_batch = max_batch;
    return VAE_OK;
}

VAE_API vae_status vae_model_set_threads(vae_model *m, int threads)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_threads: model is NULL");
    if (threads < 1 || threads > MAX_THREADS)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_threads: %d threads is not in 1..%d",
                         threads, MAX_THREADS);
    if (threads != m->threads)
        vae__model_unplan(m);
    m->threads = threads;
    return VAE_OK;
}

VAE_API vae_status vae_model_set_memory_limit(vae_model *m, int64_t bytes)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_memory_limit: model is NULL");
    if (bytes < 1)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_memory_limit: %lld bytes is not positive",
                         (long long)bytes);
    m->memory_limit = bytes;
    return VAE_OK;
}

VAE_API int64_t vae_model_memory_limit(const vae_model *m) { return m ? m->memory_limit : 0; }

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
VAE_API int vae_model_epoch_batch(const vae_model *m) { return m ? m->train.batch : 0; }
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
    VAE_TRY(vae__model_check_writable(m, "vae_model_params_set"));
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(src[i]))
            return vae__fail(VAE_ERR_NOT_FINITE, "vae_model_params_set: value %lld is %g; "
                             "the parameters are unchanged", (long long)i, (double)src[i]);
    memcpy(m->g->params, src, (size_t)count * sizeof *src);
    vae__graph_apply_masks(m->g);
    m->param_max_known = 0;
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
        vae__split_rows(m, 0, rows, rows, 0);
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

VAE_API vae_status vae_model_encode_latent(vae_model *m, const vae_tensor *x, vae_tensor *z)
{
    int64_t n;
    if (!m || !z)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_encode_latent: NULL argument");
    VAE_TRY(vae__tensor_check_rows(x, "vae_model_encode_latent", vae_model_input_size(m), &n));
    VAE_TRY(check_output(z, "vae_model_encode_latent", n, vae_model_latent_size(m)));
    return run_chunks(m, PLAN_LATENT, x->data, n, m->g->roles[VAE_ROLE_LATENT], z->data, -1, NULL);
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

/* Whether parameter node n is `prefix` or inside it ("encoder" holds
   "encoder.0.w", not "encoder2.w"). */
static int under_prefix(const node *n, const char *prefix, size_t len)
{
    return n->op == OP_PARAM && n->name && strncmp(n->name, prefix, len) == 0 &&
           (n->name[len] == '\0' || n->name[len] == '.' || prefix[len - 1] == '.');
}

VAE_API vae_status vae_model_freeze(vae_model *m, const char *prefix, int frozen, int *count)
{
    const char *what = "vae_model_freeze";
    size_t len = prefix ? strlen(prefix) : 0;
    unsigned char *marks;
    int matched = 0;
    vae_status s;
    if (!m || !len)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL model or empty prefix", what);
    VAE_TRY(vae__model_check_writable(m, what));
    if (!(marks = vae__calloc((size_t)m->g->n_nodes, 1)))
        return VAE_ERR_NO_MEMORY;
    if (m->frozen)
        memcpy(marks, m->frozen, (size_t)m->g->n_nodes);
    for (int id = 0; id < m->g->n_nodes; id++)
        if (under_prefix(&m->g->nodes[id], prefix, len)) {
            marks[id] = frozen != 0;
            matched++;
        }
    if (!matched) {
        free(marks);
        return vae__fail(VAE_ERR_ARGUMENT, "%s: no parameter is called '%s' or lies under it",
                         what, prefix);
    }
    if ((s = vae__model_set_frozen(m, marks)) != VAE_OK) {
        free(marks);
        return s;
    }
    if (count)
        *count = matched;
    return VAE_OK;
}

vae_status vae__model_set_frozen(vae_model *m, unsigned char *marks)
{
    int64_t *live, n_live;
    VAE_TRY(vae__graph_live_ranges(m->g, marks, &live, &n_live));
    free(m->live);
    free(m->frozen);
    m->live = live;
    m->n_live = n_live;
    m->frozen = marks;
    /* a frozen parameter gets no gradient at all, so the backward pass
       skips its products; the others keep theirs (zero between steps) */
    for (int t = 0; m->planned && t < m->threads; t++) {
        exec_ctx *c = &m->workers[t].c;
        if (!c->param_grad)
            continue;
        for (int id = 0; id < m->g->n_nodes; id++)
            if (m->g->nodes[id].op == OP_PARAM && (c->grad[id] || marks[id]))
                c->grad[id] = marks[id] ? NULL : c->param_grad + m->g->nodes[id].param_offset;
    }
    if (m->planned)
        vae__clear_gradients(m);
    return VAE_OK;
}

VAE_API int vae_model_param_frozen(const vae_model *m, const char *name)
{
    int id = m && name ? vae_graph_find(m->g, name) : -1;
    if (id < 0 || m->g->nodes[id].op != OP_PARAM)
        return -1;
    return m->frozen ? m->frozen[id] : 0;
}

VAE_API vae_status vae_model_set_beta(vae_model *m, double beta)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_beta: model is NULL");
    VAE_TRY(vae__model_check_writable(m, "vae_model_set_beta"));
    if (!(beta >= 0.0 && beta <= 1e6))
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_beta: beta %g is not in [0, 1e6]", beta);
    if (m->g->roles[VAE_ROLE_WEIGHTED_KL] < 0 ||
        m->g->nodes[m->g->roles[VAE_ROLE_WEIGHTED_KL]].op != OP_SCALE)
        return vae__fail(VAE_ERR_UNSUPPORTED, "vae_model_set_beta: the graph has no weighted KL "
                         "node (graphs built by vae_elbo_build since libvae 0.3 have one)");
    /* the factor of scale(kl, beta): a constant of the graph, saved with it */
    m->g->nodes[m->g->roles[VAE_ROLE_WEIGHTED_KL]].fattr[0] = (float)beta;
    return VAE_OK;
}

VAE_API double vae_model_beta(const vae_model *m)
{
    int id = m ? m->g->roles[VAE_ROLE_WEIGHTED_KL] : -1;
    return id >= 0 && m->g->nodes[id].op == OP_SCALE ? m->g->nodes[id].fattr[0] : NAN;
}

const node *vae__likelihood_node(const vae_graph *g)
{
    for (int id = 0; id < g->n_nodes; id++)
        if (g->nodes[id].op == OP_BCE_LOGITS || g->nodes[id].op == OP_GAUSSIAN_LOGLIK)
            return &g->nodes[id];
    return NULL;
}

/* Replaces each mean in x (n rows) by a draw from p(x|z), lik's:
   Bernoulli, or Gaussian with the model's variance (constant or one
   learned per pixel); noise holds a row. */
static void draw_from_likelihood(const vae_model *m, const node *lik, uint64_t seed, float *x,
                                 int64_t n, float *noise)
{
    int64_t size = vae_model_input_size(m);
    const float *logvar = lik->op == OP_GAUSSIAN_LOGLIK && lik->in[2] >= 0
                              ? m->g->params + m->g->nodes[lik->in[2]].param_offset
                              : NULL;
    vae_rng rng;
    vae__rng_seed(&rng, seed);
    for (int64_t r = 0; r < n; r++) {
        float *row = x + r * size;
        if (lik->op == OP_BCE_LOGITS) {
            for (int64_t j = 0; j < size; j++)
                row[j] = vae__rng_uniform(&rng) < row[j] ? 1.0f : 0.0f;
            continue;
        }
        vae__rng_normal(&rng, noise, size);
        for (int64_t j = 0; j < size; j++)
            row[j] += expf(0.5f * (logvar ? logvar[j] : lik->fattr[0])) * noise[j];
    }
}

VAE_API vae_status vae_model_decode_sample(vae_model *m, const vae_tensor *z, uint64_t seed,
                                           vae_tensor *out)
{
    const node *lik;
    float *noise;
    vae_status s;
    if (!m || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_decode_sample: NULL argument");
    lik = vae__likelihood_node(m->g);
    if (!lik || (lik->op == OP_GAUSSIAN_LOGLIK && lik->in[2] >= 0 &&
                 m->g->nodes[lik->in[2]].op != OP_PARAM))
        return vae__fail(VAE_ERR_UNSUPPORTED, "vae_model_decode_sample: the model's likelihood "
                         "is neither Bernoulli nor Gaussian with a fixed or learned variance");
    /* allocated first, so that decoding into out is the last thing that can fail */
    if (!(noise = vae__alloc_floats(vae_model_input_size(m))))
        return VAE_ERR_NO_MEMORY;
    if ((s = vae_model_decode(m, z, out)) == VAE_OK)
        draw_from_likelihood(m, lik, seed, out->data, out->dims[0], noise);
    vae__free_aligned(noise);
    return s;
}

vae_status vae__model_check_writable(const vae_model *m, const char *what)
{
    if (m && m->parent)
        return vae__fail(VAE_ERR_STATE, "%s: a clone only reads its parent's weights (change "
                         "or train the parent)", what);
    return VAE_OK;
}

VAE_API vae_status vae_model_clone(vae_model **out, const vae_model *m)
{
    vae_model *c;
    vae_status s;
    if (!out || !m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_clone: NULL argument");
    if (!(c = vae__calloc(1, sizeof *c)))
        return VAE_ERR_NO_MEMORY;
    c->g = m->g;
    c->parent = m->parent ? m->parent : m;
    c->max_batch = m->max_batch;
    c->threads = 1;
    c->memory_limit = m->memory_limit;
    if ((s = vae__model_build_plans(c)) != VAE_OK) {
        vae_model_free(c);
        return s;
    }
    *out = c;
    return VAE_OK;
}
