/* The probabilistic pieces of a VAE: the reparameterised sample, the
   reconstruction log-likelihoods and the KL term.  Per-row results are
   (B, 1) nodes; sums are accumulated in double. */
#include "graph.h"
#include "fastmath.h"

#include <math.h>

#define LOG_2PI 1.8378770664093453

/* z = mu + exp(0.5 logvar) * eps;  in = {mu, logvar, eps} */
VAE_HOT static void sample_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *mu = c->val[n->in[0]], *lv = c->val[n->in[1]], *eps = c->val[n->in[2]];
    float *z = c->val[id];
    int64_t count = node_count(n, c);
    for (int64_t i = 0; i < count; i++)
        z[i] = mu[i] + fm_exp(0.5f * lv[i]) * eps[i];
}

VAE_HOT static void sample_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *lv = c->val[n->in[1]], *eps = c->val[n->in[2]], *dz = c->grad[id];
    float *dmu = vae__grad_acc(c, nodes, n->in[0]), *dlv = vae__grad_acc(c, nodes, n->in[1]);
    int64_t count = node_count(n, c);
    for (int64_t i = 0; dmu && i < count; i++)
        dmu[i] += dz[i];
    if (dlv)
        for (int64_t i = 0; i < count; i++)
            dlv[i] += dz[i] * 0.5f * fm_exp(0.5f * lv[i]) * eps[i];
}

VAE_API vae_status vae_op_sample_normal(vae_graph *g, int mu, int logvar, int *out)
{
    node noise;
    int in[3] = {mu, logvar, -1};
    vae_status s;
    VAE_TRY(vae__graph_expect_same(g, mu, logvar, 0, "vae_op_sample_normal"));
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_op_sample_normal: out is NULL");
    noise = g->nodes[mu];
    noise.op = OP_NOISE;
    noise.n_in = 0;
    noise.needs_grad = 0;
    VAE_TRY(vae__graph_add_raw(g, &noise, NULL, &in[2]));
    if ((s = vae__graph_add_like(g, OP_SAMPLE_NORMAL, mu, 3, in, out)) != VAE_OK)
        vae__graph_rollback(g, in[2], g->n_params); /* both nodes or neither */
    return s;
}

/* Per row: sum softplus(l) - t * l, the BCE of sigmoid(l) against t.
   in = {logits, target} */
VAE_HOT static void bce_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *in = &nodes[nodes[id].in[0]];
    const float *l = c->val[nodes[id].in[0]], *t = c->val[nodes[id].in[1]];
    int64_t size = in->size;
    for (int r = 0; r < c->rows; r++) {
        const float *lr = l + r * size, *tr = t + r * size;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < size; i++)
            sum += fm_softplus(lr[i]) - tr[i] * lr[i];
        c->val[id][r] = sum;
    }
}

/* dl = dy (sigmoid(l) - t);  dt = -dy l */
VAE_HOT static void bce_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *in = &nodes[nodes[id].in[0]];
    const float *l = c->val[nodes[id].in[0]], *t = c->val[nodes[id].in[1]];
    float *dl = vae__grad_acc(c, nodes, nodes[id].in[0]);
    float *dt = vae__grad_acc(c, nodes, nodes[id].in[1]);
    int64_t size = in->size;
    for (int r = 0; r < c->rows; r++) {
        const float *lr = l + r * size, *tr = t + r * size;
        float dy = c->grad[id][r];
        if (dl) {
            float *dlr = dl + r * size;
            for (int64_t i = 0; i < size; i++)
                dlr[i] += dy * (fm_sigmoid(lr[i]) - tr[i]);
        }
        if (dt) {
            float *dtr = dt + r * size;
            for (int64_t i = 0; i < size; i++)
                dtr[i] -= dy * lr[i];
        }
    }
}

VAE_API vae_status vae_op_bce_logits(vae_graph *g, int logits, int target, int *out)
{
    int in[2] = {logits, target};
    VAE_TRY(vae__graph_expect_same(g, logits, target, 0, "vae_op_bce_logits"));
    return vae__graph_add_per_row(g, OP_BCE_LOGITS, 2, in, out);
}

/* The operands of a Gaussian log-density, absent ones as constants. */
typedef struct gauss_args {
    const float *x, *mean, *logvar;
    int64_t mean_stride, logvar_stride; /* 0: broadcast */
    float mean_const, logvar_const;
} gauss_args;

static gauss_args gauss_operands(const node *nodes, int id, const exec_ctx *c)
{
    const node *n = &nodes[id];
    int64_t size = nodes[n->in[0]].size;
    gauss_args a = {c->val[n->in[0]], NULL, NULL, 0, 0, 0.0f, n->fattr[0]};
    if (n->in[1] >= 0) {
        a.mean = c->val[n->in[1]];
        a.mean_stride = nodes[n->in[1]].batched ? size : 0;
    }
    if (n->in[2] >= 0) {
        a.logvar = c->val[n->in[2]];
        a.logvar_stride = nodes[n->in[2]].batched ? size : 0;
    }
    return a;
}

/* Per row: sum log N(x; mean, exp(logvar)).  in = {x, mean?, logvar?} */
VAE_HOT static void gauss_forward(const node *nodes, int id, exec_ctx *c)
{
    gauss_args a = gauss_operands(nodes, id, c);
    int64_t size = nodes[nodes[id].in[0]].size;
    for (int r = 0; r < c->rows; r++) {
        double sum = 0.0;
        for (int64_t i = 0; i < size; i++) {
            float m = a.mean ? a.mean[r * a.mean_stride + i] : a.mean_const;
            float lv = a.logvar ? a.logvar[r * a.logvar_stride + i] : a.logvar_const;
            float d = a.x[r * size + i] - m;
            sum += d * d * fm_exp(-lv) + lv;
        }
        c->val[id][r] = (float)(-0.5 * (sum + (double)size * LOG_2PI));
    }
}

VAE_HOT static void gauss_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    gauss_args a = gauss_operands(nodes, id, c);
    int64_t size = nodes[n->in[0]].size;
    float *dx = vae__grad_acc(c, nodes, n->in[0]);
    float *dm = n->in[1] >= 0 ? vae__grad_acc(c, nodes, n->in[1]) : NULL;
    float *dlv = n->in[2] >= 0 ? vae__grad_acc(c, nodes, n->in[2]) : NULL;
    for (int r = 0; r < c->rows; r++) {
        float dy = c->grad[id][r];
        for (int64_t i = 0; i < size; i++) {
            float m = a.mean ? a.mean[r * a.mean_stride + i] : a.mean_const;
            float lv = a.logvar ? a.logvar[r * a.logvar_stride + i] : a.logvar_const;
            float d = a.x[r * size + i] - m, inv_var = fm_exp(-lv);
            if (dx)
                dx[r * size + i] -= dy * d * inv_var;
            if (dm)
                dm[r * a.mean_stride + i] += dy * d * inv_var;
            if (dlv)
                dlv[r * a.logvar_stride + i] += dy * 0.5f * (d * d * inv_var - 1.0f);
        }
    }
}

static vae_status add_gaussian(vae_graph *g, int x, int mean, int logvar, float logvar_const,
                               const char *what, int *out)
{
    int in[3] = {x, mean, logvar}, id;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: out is NULL", what);
    /* only -1 means "absent"; other negative ids are bad node ids */
    if (mean < -1 || logvar < -1)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: node %d does not exist (use -1 for none)",
                         what, mean < -1 ? mean : logvar);
    VAE_TRY(vae__graph_expect_batched(g, x, 0, what));
    if (mean >= 0)
        VAE_TRY(vae__graph_expect_same(g, x, mean, 1, what));
    if (logvar >= 0)
        VAE_TRY(vae__graph_expect_same(g, x, logvar, 1, what));
    if (!(logvar_const > -80.0f && logvar_const < 80.0f))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: constant log-variance %g is not in (-80, 80)",
                         what, (double)logvar_const);
    VAE_TRY(vae__graph_add_per_row(g, OP_GAUSSIAN_LOGLIK, 3, in, &id));
    g->nodes[id].fattr[0] = logvar_const;
    *out = id;
    return VAE_OK;
}

VAE_API vae_status vae_op_gaussian_loglik(vae_graph *g, int x, int mean, int logvar,
                                          float logvar_const, int *out)
{
    if (mean < 0)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_op_gaussian_loglik: mean node is required");
    return add_gaussian(g, x, mean, logvar, logvar_const, "vae_op_gaussian_loglik", out);
}

vae_status vae__op_gaussian(vae_graph *g, int x, int mean, int logvar, float logvar_const, int *out)
{
    return add_gaussian(g, x, mean, logvar, logvar_const, "gaussian_loglik", out);
}

VAE_API vae_status vae_op_normal_logpdf(vae_graph *g, int z, int mu, int logvar, int *out)
{
    return add_gaussian(g, z, mu, logvar, 0.0f, "vae_op_normal_logpdf", out);
}

/* Per row: KL(N(mu, exp(lv)) || N(0, I)) = 0.5 sum(mu^2 + exp(lv) - 1 - lv) */
VAE_HOT static void kl_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *mu = c->val[n->in[0]], *lv = c->val[n->in[1]];
    int64_t size = nodes[n->in[0]].size;
    for (int r = 0; r < c->rows; r++) {
        const float *mr = mu + r * size, *lr = lv + r * size;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < size; i++)
            sum += mr[i] * mr[i] + fm_exp(lr[i]) - 1.0f - lr[i];
        c->val[id][r] = 0.5f * sum;
    }
}

VAE_HOT static void kl_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *mu = c->val[n->in[0]], *lv = c->val[n->in[1]];
    float *dmu = vae__grad_acc(c, nodes, n->in[0]), *dlv = vae__grad_acc(c, nodes, n->in[1]);
    int64_t size = nodes[n->in[0]].size;
    for (int r = 0; r < c->rows; r++) {
        float dy = c->grad[id][r];
        for (int64_t i = r * size; dmu && i < (r + 1) * size; i++)
            dmu[i] += dy * mu[i];
        for (int64_t i = r * size; dlv && i < (r + 1) * size; i++)
            dlv[i] += dy * 0.5f * (fm_exp(lv[i]) - 1.0f);
    }
}

VAE_API vae_status vae_op_kl_std_normal(vae_graph *g, int mu, int logvar, int *out)
{
    int in[2] = {mu, logvar};
    VAE_TRY(vae__graph_expect_same(g, mu, logvar, 0, "vae_op_kl_std_normal"));
    return vae__graph_add_per_row(g, OP_KL_STD_NORMAL, 2, in, out);
}

const op_def vae__op_sample_normal = {"sample_normal", 3, sample_forward, sample_backward};
const op_def vae__op_bce_logits = {"bce_logits", 2, bce_forward, bce_backward};
const op_def vae__op_gaussian_loglik = {"gaussian_loglik", 3, gauss_forward, gauss_backward};
const op_def vae__op_kl_std_normal = {"kl_std_normal", 2, kl_forward, kl_backward};
