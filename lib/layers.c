/* Layers and the ELBO, built from primitive operations as a host program
   would build them. */
#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Room for names past the longest allowed (255 bytes), so none is cut. */
#define NAME_BUF 320

/* "<prefix>.<suffix>", or just the suffix without a prefix.  A prefix too
   long for buf gives a name of 256 bytes or more, which the graph refuses
   (names are at most 255 bytes), rather than a cut one. */
static const char *join_name(char *buf, size_t size, const char *prefix, const char *suffix)
{
    int n = prefix && *prefix ? snprintf(buf, size, "%s.%s", prefix, suffix)
                              : snprintf(buf, size, "%s", suffix);
    if (n >= (int)size) /* cut: make it long enough to be refused */
        memset(buf, 'x', size - 1);
    return buf;
}

static vae_status build_layer_dense(vae_graph *g, int x, int units, vae_activation act,
                                   const char *name, int *out)
{
    char buf[NAME_BUF];
    int w, b, xw, xwb, dims[2];
    float scale;
    VAE_TRY(vae__graph_expect_batched(g, x, 0, "vae_layer_dense"));
    if (units < 1 || units > (1 << 24) || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_layer_dense: bad units %d or NULL out", units);
    if ((int)act < VAE_ACT_NONE || act > VAE_ACT_SOFTPLUS)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_layer_dense: unknown activation %d", (int)act);
    dims[0] = (int)g->nodes[x].size;
    dims[1] = units;
    /* PyTorch's default initialisation: uniform in +-1/sqrt(fan_in) */
    scale = 1.0f / sqrtf((float)dims[0]);
    VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "w"), 2, dims, scale, &w));
    VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "b"), 1, &units, scale, &b));
    VAE_TRY(vae_op_matmul(g, x, w, &xw));
    VAE_TRY(vae_op_bias(g, xw, b, &xwb));
    return vae_op_activation(g, xwb, act, out);
}

static vae_status optional_hidden(vae_graph *g, int x, int hidden, vae_activation act,
                                  const char *name, int *out)
{
    char buf[NAME_BUF];
    if (hidden < 0)
        return vae__fail(VAE_ERR_ARGUMENT, "hidden units %d < 0", hidden);
    if (hidden == 0) {
        VAE_TRY(vae__graph_expect_batched(g, x, 0, "layer input"));
        *out = x;
        return VAE_OK;
    }
    return build_layer_dense(g, x, hidden, act, join_name(buf, sizeof buf, name, "hidden"), out);
}

static vae_status build_layer_gaussian_mlp(vae_graph *g, int x, int hidden, vae_activation act,
                                          int latent, int context, const char *name, int *mu,
                                          int *logvar, int *h)
{
    char buf[NAME_BUF];
    int t;
    if (!mu || !logvar || (context > 0 && !h) || context < 0)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_layer_gaussian_mlp: NULL output or bad context");
    VAE_TRY(optional_hidden(g, x, hidden, act, name, &t));
    VAE_TRY(build_layer_dense(g, t, latent, VAE_ACT_NONE, join_name(buf, sizeof buf, name, "mean"), mu));
    VAE_TRY(build_layer_dense(g, t, latent, VAE_ACT_NONE, join_name(buf, sizeof buf, name, "logvar"), logvar));
    if (context > 0)
        VAE_TRY(build_layer_dense(g, t, context, VAE_ACT_NONE, join_name(buf, sizeof buf, name, "context"), h));
    return VAE_OK;
}

static vae_status build_layer_bernoulli_mlp(vae_graph *g, int z, int hidden, vae_activation act,
                                           int features, const char *name, int *logits)
{
    char buf[NAME_BUF];
    int t;
    VAE_TRY(optional_hidden(g, z, hidden, act, name, &t));
    return build_layer_dense(g, t, features, VAE_ACT_NONE, join_name(buf, sizeof buf, name, "logits"), logits);
}

/* -log p(x|z) per row, and the decoded mean. */
/* Where a learned per-pixel log-variance starts: sigma = exp(-2) = 0.135
   on pixels in [0, 1].  At 0 (sigma 1) the reconstruction term is so
   weak against the KL that a short run collapses the posterior. */
#define LEARNED_LOGVAR_INIT (-4.0f)

static vae_status reconstruction(vae_graph *g, int x, int logits, vae_likelihood likelihood,
                                 int *nll, int *decoded)
{
    int ll, logvar = -1, size = (int)g->nodes[x].size;
    int linear = likelihood == VAE_LIKELIHOOD_GAUSSIAN_UNIT_LINEAR ||
                 likelihood == VAE_LIKELIHOOD_GAUSSIAN_LEARNED_LINEAR;
    int learned = likelihood == VAE_LIKELIHOOD_GAUSSIAN_LEARNED ||
                  likelihood == VAE_LIKELIHOOD_GAUSSIAN_LEARNED_LINEAR;
    if ((int)likelihood < 0 || likelihood > VAE_LIKELIHOOD_GAUSSIAN_LEARNED_LINEAR)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_elbo_build: unknown likelihood %d", (int)likelihood);
    /* the mean: sigmoid(logits), or the logits themselves for data on any scale */
    if (linear)
        *decoded = logits;
    else
        VAE_TRY(vae_op_sigmoid(g, logits, decoded));
    if (likelihood == VAE_LIKELIHOOD_BERNOULLI)
        return vae_op_bce_logits(g, logits, x, nll);
    if (learned) {
        VAE_TRY(vae__graph_add_param(g, "likelihood.logvar", 1, &size, 0.0f, &logvar));
        for (int i = 0; i < size; i++)
            g->params[g->nodes[logvar].param_offset + i] = LEARNED_LOGVAR_INIT;
    }
    VAE_TRY(vae_op_gaussian_loglik(g, x, *decoded, logvar, 0.0f, &ll));
    return vae_op_scale(g, ll, -1.0f, nll);
}

/* Per row: nll * recon_weight + beta * kl.  The KL is always scaled, even
   by 1, so that beta can change at run time (*weighted_kl). */
static vae_status weighted_sum(vae_graph *g, int nll, float recon_weight, int kl, float beta,
                               int *weighted_kl, int *out)
{
    int a = nll;
    if (recon_weight != 1.0f)
        VAE_TRY(vae_op_scale(g, nll, recon_weight, &a));
    VAE_TRY(vae_op_scale(g, kl, beta, weighted_kl));
    return vae_op_add(g, a, *weighted_kl, out);
}

/* The nodes an ELBO builder is given and makes; the roles come from them. */
typedef struct elbo_nodes {
    int x, mu, logvar, z, logits;            /* given */
    int nll, decoded, kl, nelbo, log_weight; /* made */
} elbo_nodes;

/* The options and the shapes both ELBO builders take. */
static vae_status check_elbo(vae_graph *g, const elbo_nodes *e, vae_objective objective,
                             float beta, const int *objective_node, const char *what)
{
    if (!g || !objective_node)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL graph or objective_node", what);
    if (!(beta >= 0.0f && beta <= 1e6f))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: beta %g is not in [0, 1e6]", what, (double)beta);
    if (objective != VAE_OBJECTIVE_ELBO && objective != VAE_OBJECTIVE_PIXEL_MEAN)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: unknown objective %d", what, (int)objective);
    VAE_TRY(vae__graph_expect_same(g, e->x, e->logits, 0, what));
    VAE_TRY(vae__graph_expect_same(g, e->mu, e->logvar, 0, what));
    return vae__graph_expect_same(g, e->mu, e->z, 0, what);
}

/* Per row, for one z: log q(z|x) - log p(z), from the base sample z0 of
   N(mu, exp(logvar)) and the flow's log-determinant (-1: no flow, z = z0). */
static vae_status sampled_kl(vae_graph *g, int mu, int logvar, int z0, int log_det, int z,
                             int *out)
{
    int log_q, log_p, minus;
    VAE_TRY(vae_op_normal_logpdf(g, z0, mu, logvar, &log_q));
    if (log_det >= 0) {
        VAE_TRY(vae_op_scale(g, log_det, -1.0f, &minus));
        VAE_TRY(vae_op_add(g, log_q, minus, &log_q));
    }
    VAE_TRY(vae_op_normal_logpdf(g, z, -1, -1, &log_p));
    VAE_TRY(vae_op_scale(g, log_p, -1.0f, &minus));
    return vae_op_add(g, log_q, minus, out);
}

/* The terms both ELBO builders share: the objective from nll and the KL
   term, and every role. */
static vae_status finish_elbo(vae_graph *g, const elbo_nodes *e, vae_objective objective,
                              float beta, int *objective_node)
{
    int per_row, obj, weighted_kl;
    float recon_weight =
        objective == VAE_OBJECTIVE_PIXEL_MEAN ? 1.0f / (float)g->nodes[e->x].size : 1.0f;
    VAE_TRY(weighted_sum(g, e->nll, recon_weight, e->kl, beta, &weighted_kl, &per_row));
    VAE_TRY(vae_op_batch_mean(g, per_row, &obj));
    g->roles[VAE_ROLE_INPUT] = e->x;
    g->roles[VAE_ROLE_LATENT_MEAN] = e->mu;
    g->roles[VAE_ROLE_LATENT_LOGVAR] = e->logvar;
    g->roles[VAE_ROLE_LATENT] = e->z;
    g->roles[VAE_ROLE_LOGITS] = e->logits;
    g->roles[VAE_ROLE_DECODED] = e->decoded;
    g->roles[VAE_ROLE_NELBO] = e->nelbo;
    g->roles[VAE_ROLE_OBJECTIVE] = obj;
    g->roles[VAE_ROLE_LOG_WEIGHT] = e->log_weight;
    g->roles[VAE_ROLE_RECON] = e->nll;
    g->roles[VAE_ROLE_KL] = e->kl;
    g->roles[VAE_ROLE_WEIGHTED_KL] = weighted_kl;
    *objective_node = obj;
    return VAE_OK;
}

static vae_status build_elbo(vae_graph *g, int x, int mu, int logvar, int z, int logits,
                             vae_likelihood likelihood, vae_objective objective, float beta,
                             int *objective_node)
{
    elbo_nodes e = {.x = x, .mu = mu, .logvar = logvar, .z = z, .logits = logits};
    int mc_kl, neg_weight;
    VAE_TRY(check_elbo(g, &e, objective, beta, objective_node, "vae_elbo_build"));
    VAE_TRY(reconstruction(g, x, logits, likelihood, &e.nll, &e.decoded));
    VAE_TRY(vae_op_kl_std_normal(g, mu, logvar, &e.kl));
    VAE_TRY(vae_op_add(g, e.nll, e.kl, &e.nelbo));
    /* the importance weight needs the sampled KL, not the analytic one */
    VAE_TRY(sampled_kl(g, mu, logvar, z, -1, z, &mc_kl));
    VAE_TRY(vae_op_add(g, e.nll, mc_kl, &neg_weight));
    VAE_TRY(vae_op_scale(g, neg_weight, -1.0f, &e.log_weight));
    return finish_elbo(g, &e, objective, beta, objective_node);
}

static vae_status build_elbo_flow(vae_graph *g, int x, int mu, int logvar, int z0, int z,
                                  int log_det, int logits, vae_likelihood likelihood,
                                  vae_objective objective, float beta, int *objective_node)
{
    const char *what = "vae_elbo_build_flow";
    elbo_nodes e = {.x = x, .mu = mu, .logvar = logvar, .z = z, .logits = logits};
    VAE_TRY(check_elbo(g, &e, objective, beta, objective_node, what));
    VAE_TRY(vae__graph_expect_same(g, mu, z0, 0, what));
    if (log_det < -1)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: log_det node %d does not exist (-1: none)", what,
                         log_det);
    if (log_det >= 0)
        VAE_TRY(vae__graph_expect_batched(g, log_det, 1, what));
    VAE_TRY(reconstruction(g, x, logits, likelihood, &e.nll, &e.decoded));
    VAE_TRY(sampled_kl(g, mu, logvar, z0, log_det, z, &e.kl));
    VAE_TRY(vae_op_add(g, e.nll, e.kl, &e.nelbo));
    VAE_TRY(vae_op_scale(g, e.nelbo, -1.0f, &e.log_weight));
    return finish_elbo(g, &e, objective, beta, objective_node);
}

/* One IAF step; see vae.h.  The gate's shift of 1.5 makes a fresh step
   close to the identity (g = 0.82). */
#define IAF_GATE_SHIFT 1.5f

static vae_status made_dense(vae_graph *g, int x, int units, vae_made_mask mask, int reversed,
                             const char *name, int with_bias, int *out)
{
    char buf[NAME_BUF];
    int w, b, xw, dims[2] = {(int)g->nodes[x].size, units};
    float scale = 1.0f / sqrtf((float)dims[0]);
    VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "w"), 2, dims, scale, &w));
    VAE_TRY(vae_op_made_matmul(g, x, w, mask, reversed, &xw));
    if (!with_bias) {
        *out = xw;
        return VAE_OK;
    }
    VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "b"), 1, &units, scale, &b));
    return vae_op_bias(g, xw, b, out);
}

static vae_status build_iaf_step(vae_graph *g, int z, int h, int hidden, int reversed,
                                 const char *name, int *z_out, int *log_det)
{
    const char *what = "vae_layer_iaf_step";
    char buf[NAME_BUF];
    int latent, pre, t, m, s, b, fan_in;
    VAE_TRY(vae__graph_expect_batched(g, z, 0, what));
    if (h != -1)
        VAE_TRY(vae__graph_expect_batched(g, h, 0, what));
    if (hidden < 1 || hidden > (1 << 24) || !z_out || !log_det || (reversed != 0 && reversed != 1))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: bad hidden units %d or order %d, or NULL output",
                         what, hidden, reversed);
    latent = (int)g->nodes[z].size;
    fan_in = latent + (h >= 0 ? (int)g->nodes[h].size : 0);
    VAE_TRY(made_dense(g, z, hidden, VAE_MADE_INPUT_TO_HIDDEN, reversed,
                       join_name(buf, sizeof buf, name, "z"), 0, &pre));
    if (h >= 0) {
        int wh, hw, dims[2] = {(int)g->nodes[h].size, hidden};
        VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "h.w"), 2, dims,
                                     1.0f / sqrtf((float)dims[0]), &wh));
        VAE_TRY(vae_op_matmul(g, h, wh, &hw));
        VAE_TRY(vae_op_add(g, pre, hw, &pre));
    }
    VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "b"), 1, &hidden,
                                 1.0f / sqrtf((float)fan_in), &b));
    VAE_TRY(vae_op_bias(g, pre, b, &pre));
    VAE_TRY(vae_op_tanh(g, pre, &t));
    VAE_TRY(made_dense(g, t, latent, VAE_MADE_HIDDEN_TO_OUTPUT, reversed,
                       join_name(buf, sizeof buf, name, "m"), 1, &m));
    VAE_TRY(made_dense(g, t, latent, VAE_MADE_HIDDEN_TO_OUTPUT, reversed,
                       join_name(buf, sizeof buf, name, "s"), 1, &s));
    VAE_TRY(vae__build_iaf_gate(g, z, m, s, IAF_GATE_SHIFT, z_out));
    return vae__build_iaf_log_gate(g, s, IAF_GATE_SHIFT, log_det);
}

/* The public builders: all of a layer's nodes, or none, and their outputs
   written on success only (the internal builders write them as they go). */
typedef struct outputs {
    int *dst[3];
    int val[3];
} outputs;

/* Our slot k for the caller's output dst (NULL stays NULL). */
static int *slot(outputs *o, int k, int *dst)
{
    o->dst[k] = dst;
    o->val[k] = -1;
    return dst ? &o->val[k] : NULL;
}

static vae_status settle(vae_graph *g, int n_nodes, int64_t n_params, vae_status s,
                         const outputs *o)
{
    if (s != VAE_OK && g)
        vae__graph_rollback(g, n_nodes, n_params);
    for (int k = 0; s == VAE_OK && k < 3; k++)
        if (o->dst[k])
            *o->dst[k] = o->val[k];
    return s;
}

#define TRANSACTION(g, outs, call)                                                      \
    do {                                                                                \
        int n_nodes_ = (g) ? (g)->n_nodes : 0;                                          \
        int64_t n_params_ = (g) ? (g)->n_params : 0;                                    \
        return settle((g), n_nodes_, n_params_, (call), &(outs));                       \
    } while (0)

VAE_API vae_status vae_layer_dense(vae_graph *g, int x, int units, vae_activation act,
                                   const char *name, int *out)
{
    outputs o = {0};
    TRANSACTION(g, o, build_layer_dense(g, x, units, act, name, slot(&o, 0, out)));
}

VAE_API vae_status vae_layer_gaussian_mlp(vae_graph *g, int x, int hidden, vae_activation act,
                                          int latent, int context, const char *name, int *mu,
                                          int *logvar, int *h)
{
    outputs o = {0};
    TRANSACTION(g, o, build_layer_gaussian_mlp(g, x, hidden, act, latent, context, name,
                                               slot(&o, 0, mu), slot(&o, 1, logvar),
                                               slot(&o, 2, h)));
}

VAE_API vae_status vae_layer_bernoulli_mlp(vae_graph *g, int z, int hidden, vae_activation act,
                                           int features, const char *name, int *logits)
{
    outputs o = {0};
    TRANSACTION(g, o, build_layer_bernoulli_mlp(g, z, hidden, act, features, name,
                                                slot(&o, 0, logits)));
}

VAE_API vae_status vae_elbo_build(vae_graph *g, int x, int mu, int logvar, int z, int logits,
                                  vae_likelihood likelihood, vae_objective objective, float beta,
                                  int *objective_node)
{
    outputs o = {0};
    TRANSACTION(g, o, build_elbo(g, x, mu, logvar, z, logits, likelihood, objective, beta,
                                 slot(&o, 0, objective_node)));
}

VAE_API vae_status vae_elbo_build_flow(vae_graph *g, int x, int mu, int logvar, int z0, int z,
                                       int log_det, int logits, vae_likelihood likelihood,
                                       vae_objective objective, float beta, int *objective_node)
{
    outputs o = {0};
    TRANSACTION(g, o, build_elbo_flow(g, x, mu, logvar, z0, z, log_det, logits, likelihood,
                                      objective, beta, slot(&o, 0, objective_node)));
}

VAE_API vae_status vae_layer_iaf_step(vae_graph *g, int z, int h, int hidden, int reversed,
                                      const char *name, int *z_out, int *log_det)
{
    outputs o = {0};
    TRANSACTION(g, o, build_iaf_step(g, z, h, hidden, reversed, name, slot(&o, 0, z_out),
                                     slot(&o, 1, log_det)));
}

/* Conv2D or Conv2DTranspose with bias and activation. */
static vae_status build_conv_layer(vae_graph *g, int transposed, int x, int filters, int kernel,
                                   int stride, vae_padding padding, vae_activation act,
                                   const char *name, int *out)
{
    const char *what = transposed ? "vae_layer_conv2d_transpose" : "vae_layer_conv2d";
    char buf[NAME_BUF];
    int w, b, dims[2], channels;
    VAE_TRY(vae__graph_expect_batched(g, x, 0, what));
    if (g->nodes[x].ndim != 3)
        return vae__fail(VAE_ERR_SHAPE, "%s: input node %d must have (C, H, W) rows", what, x);
    if (filters < 1 || filters > (1 << 16) || kernel < 1 || kernel > 64 || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: bad filters %d, kernel %d or NULL out", what,
                         filters, kernel);
    if ((int)act < VAE_ACT_NONE || act > VAE_ACT_SOFTPLUS)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: unknown activation %d", what, (int)act);
    channels = g->nodes[x].dims[0];
    dims[0] = transposed ? channels : filters;
    {
        int64_t cols = (int64_t)(transposed ? filters : channels) * kernel * kernel;
        if (cols > (1 << 30))
            return vae__fail(VAE_ERR_SHAPE, "%s: %lld weights per %s is too many", what,
                             (long long)cols, transposed ? "input channel" : "filter");
        dims[1] = (int)cols;
    }
    /* PyTorch's initialisation: uniform in +-1/sqrt(fan_in), where fan_in
       is C k k for a convolution and (as PyTorch computes it) F k k for a
       transposed one */
    {
        float scale = 1.0f / sqrtf((float)dims[1]);
        VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "w"), 2, dims, scale, &w));
        VAE_TRY(vae__graph_add_param(g, join_name(buf, sizeof buf, name, "b"), 1, &filters, scale, &b));
    }
    return vae__op_conv(g, transposed, x, w, b, kernel, stride, padding, act, out);
}

VAE_API vae_status vae_layer_conv2d(vae_graph *g, int x, int filters, int kernel, int stride,
                                    vae_padding padding, vae_activation act, const char *name,
                                    int *out)
{
    outputs o = {0};
    TRANSACTION(g, o, build_conv_layer(g, 0, x, filters, kernel, stride, padding, act, name,
                                       slot(&o, 0, out)));
}

VAE_API vae_status vae_layer_conv2d_transpose(vae_graph *g, int x, int filters, int kernel,
                                              int stride, vae_padding padding, vae_activation act,
                                              const char *name, int *out)
{
    outputs o = {0};
    TRANSACTION(g, o, build_conv_layer(g, 1, x, filters, kernel, stride, padding, act, name,
                                       slot(&o, 0, out)));
}
