/* Linear maps: matrix products through the BLAS, and bias. */
#include "model.h"

#include <cblas.h>
#include <string.h>

/* A product this small is not worth waking other threads for. */
#define SPLIT_MIN_MACS ((int64_t)1 << 19)

typedef struct gemm_job {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, parts;
    const float *a, *b;
    float beta;
    float *c;
} gemm_job;

static void gemm_columns(const gemm_job *j, int lo, int hi)
{
    const float *b = j->trans_b ? j->b + (int64_t)lo * j->ldb : j->b + lo;
    if (hi > lo)
        cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                    j->trans_b ? CblasTrans : CblasNoTrans, j->m, hi - lo, j->k, 1.0f, j->a,
                    j->lda, b, j->ldb, j->beta, j->c + lo, j->ldc);
}

/* Thread t's share of the columns: even shares balance best (the one
   cache line per row that two threads then write is no matter). */
static void gemm_part(void *arg, int t)
{
    const gemm_job *j = arg;
    gemm_columns(j, (int)((int64_t)j->n * t / j->parts), (int)((int64_t)j->n * (t + 1) / j->parts));
}

void vae__gemm(const exec_ctx *c, int trans_a, int trans_b, int m, int n, int k, const float *a,
               int lda, const float *b, int ldb, float beta, float *cc, int ldc)
{
    gemm_job j = {trans_a, trans_b, m, n, k, lda, ldb, ldc, 1, a, b, beta, cc};
    if (c->pool && (int64_t)m * n * k >= SPLIT_MIN_MACS && n >= 64) {
        j.parts = vae__pool_threads(c->pool);
        vae__pool_run(c->pool, gemm_part, &j);
    } else {
        gemm_columns(&j, 0, n);
    }
}

/* y (B,N) = x (B,K) w (K,N) */
void vae__matmul_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id], *w = &nodes[n->in[1]];
    int k = w->dims[0], cols = w->dims[1];
    vae__gemm(c, 0, 0, c->rows, cols, k, c->val[n->in[0]], k, c->val[n->in[1]], cols, 0.0f,
              c->val[id], cols);
}

/* dx (B,K) += dy w^T;  dw (K,N) += x^T dy */
void vae__matmul_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id], *w = &nodes[n->in[1]];
    int k = w->dims[0], cols = w->dims[1];
    float beta, *dx, *dw;
    if ((dx = vae__grad_beta(c, nodes, n->in[0], &beta)))
        vae__gemm(c, 0, 1, c->rows, k, cols, c->grad[id], cols, c->val[n->in[1]], cols, beta, dx, k);
    if ((dw = vae__grad_beta(c, nodes, n->in[1], &beta)))
        vae__gemm(c, 1, 0, k, cols, c->rows, c->val[n->in[0]], k, c->grad[id], cols, beta, dw, cols);
}

VAE_API vae_status vae_op_matmul(vae_graph *g, int x, int w, int *out)
{
    node n;
    VAE_TRY(vae__graph_expect_batched(g, x, 0, "vae_op_matmul"));
    VAE_TRY(vae__graph_check_node(g, w, "vae_op_matmul"));
    if (g->nodes[w].batched || g->nodes[w].ndim != 2)
        return vae__fail(VAE_ERR_SHAPE, "vae_op_matmul: weight node %d must be an unbatched (K, N) matrix", w);
    if (g->nodes[w].dims[0] != g->nodes[x].size)
        return vae__fail(VAE_ERR_SHAPE, "vae_op_matmul: input rows have %lld elements, weight expects %d",
                         (long long)g->nodes[x].size, g->nodes[w].dims[0]);
    n = (node){.op = OP_MATMUL, .n_in = 2, .in = {x, w, -1, -1}, .batched = 1, .ndim = 1,
               .dims = {g->nodes[w].dims[1]}, .size = g->nodes[w].dims[1]};
    return vae__graph_add(g, &n, out);
}

/* A bias is one value per element of a row, or one per channel of a
   (C, H, W) row: `run` elements share each bias value. */
static int64_t bias_run(const node *nodes, int id)
{
    return nodes[id].size / nodes[nodes[id].in[1]].size;
}

/* y = x + b on every row (and every position of a channel) */
VAE_HOT static void bias_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *x = c->val[n->in[0]], *b = c->val[n->in[1]];
    float *y = c->val[id];
    int64_t run = bias_run(nodes, id), nb = nodes[n->in[1]].size;
    if (run == 1)
        for (int r = 0; r < c->rows; r++) {
            const float *xr = x + r * nb;
            float *yr = y + r * nb;
            for (int64_t i = 0; i < nb; i++)
                yr[i] = xr[i] + b[i];
        }
    else
        for (int64_t r = 0; r < c->rows * nb; r++) {
            const float *xr = x + r * run;
            float *yr = y + r * run;
            float br = b[r % nb];
            for (int64_t i = 0; i < run; i++)
                yr[i] = xr[i] + br;
        }
}

/* dx += dy;  db += dy summed over rows (and positions) */
VAE_HOT static void bias_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *dy = c->grad[id];
    int64_t run = bias_run(nodes, id), nb = nodes[n->in[1]].size, count = c->rows * n->size;
    int add;
    float *dx = vae__grad_out(c, n->in[0], &add), *db = vae__grad_acc(c, nodes, n->in[1]);
    if (dx && add)
        for (int64_t i = 0; i < count; i++)
            dx[i] += dy[i];
    else if (dx)
        memcpy(dx, dy, (size_t)count * sizeof *dx);
    if (db && run == 1)
        for (int r = 0; r < c->rows; r++) {
            const float *dyr = dy + r * nb;
            for (int64_t i = 0; i < nb; i++)
                db[i] += dyr[i];
        }
    else if (db)
        for (int64_t r = 0; r < c->rows * nb; r++) {
            const float *dyr = dy + r * run;
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < run; i++)
                sum += dyr[i];
            db[r % nb] += sum;
        }
}

VAE_API vae_status vae_op_bias(vae_graph *g, int x, int b, int *out)
{
    int in[2] = {x, b};
    const node *xn, *bn;
    VAE_TRY(vae__graph_expect_batched(g, x, 0, "vae_op_bias"));
    VAE_TRY(vae__graph_check_node(g, b, "vae_op_bias"));
    xn = &g->nodes[x];
    bn = &g->nodes[b];
    if (bn->batched)
        return vae__fail(VAE_ERR_SHAPE, "vae_op_bias: bias node %d must be unbatched", b);
    if (bn->size != xn->size && !(xn->ndim == 3 && bn->size == xn->dims[0]))
        return vae__fail(VAE_ERR_SHAPE, "vae_op_bias: bias of %lld values fits neither the "
                         "row (%lld) nor its channels", (long long)bn->size, (long long)xn->size);
    return vae__graph_add_like(g, OP_BIAS, x, 2, in, out);
}

const op_def vae__op_matmul = {"matmul", 2, vae__matmul_forward, vae__matmul_backward};
const op_def vae__op_bias = {"bias", 2, bias_forward, bias_backward};
