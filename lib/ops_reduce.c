/* Reductions: per-row sum and mean, and the batch mean that makes a loss.
   In data-parallel runs each thread holds part of the batch, so the batch
   mean divides by the whole batch's row count (total_rows). */
#include "graph.h"

/* y (B,1) = sum of each row, scaled by fattr[0] (1 for sum, 1/N for mean) */
static void rowsum_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *in = &nodes[nodes[id].in[0]];
    const float *x = c->val[nodes[id].in[0]];
    for (int r = 0; r < c->rows; r++) {
        double sum = 0.0;
        for (int64_t i = 0; i < in->size; i++)
            sum += x[r * in->size + i];
        c->val[id][r] = (float)(sum * nodes[id].fattr[0]);
    }
}

static void rowsum_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *in = &nodes[nodes[id].in[0]];
    float *dx = vae__grad_acc(c, nodes, nodes[id].in[0]);
    if (!dx)
        return;
    for (int r = 0; r < c->rows; r++) {
        float d = c->grad[id][r] * nodes[id].fattr[0];
        for (int64_t i = 0; i < in->size; i++)
            dx[r * in->size + i] += d;
    }
}

/* y (scalar) = sum of all elements / total_rows */
static void batch_mean_forward(const node *nodes, int id, exec_ctx *c)
{
    const float *x = c->val[nodes[id].in[0]];
    double sum = 0.0;
    for (int64_t i = 0; i < node_count(&nodes[nodes[id].in[0]], c); i++)
        sum += x[i];
    c->val[id][0] = (float)(sum / c->total_rows);
}

static void batch_mean_backward(const node *nodes, int id, exec_ctx *c)
{
    float *dx = vae__grad_acc(c, nodes, nodes[id].in[0]);
    float d = c->grad[id][0] / (float)c->total_rows;
    if (dx)
        for (int64_t i = 0; i < node_count(&nodes[nodes[id].in[0]], c); i++)
            dx[i] += d;
}

const op_def vae__op_sum = {"sum", 1, rowsum_forward, rowsum_backward};
const op_def vae__op_mean = {"mean", 1, rowsum_forward, rowsum_backward};
const op_def vae__op_batch_mean = {"batch_mean", 1, batch_mean_forward, batch_mean_backward};

static vae_status add_rowsum(vae_graph *g, int op, int x, const char *what, int *out)
{
    int id;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: out is NULL", what);
    VAE_TRY(vae__graph_expect_batched(g, x, 0, what));
    VAE_TRY(vae__graph_add_per_row(g, op, 1, &x, &id));
    g->nodes[id].fattr[0] = op == OP_MEAN ? 1.0f / (float)g->nodes[x].size : 1.0f;
    *out = id;
    return VAE_OK;
}

VAE_API vae_status vae_op_sum(vae_graph *g, int x, int *out) { return add_rowsum(g, OP_SUM, x, "vae_op_sum", out); }
VAE_API vae_status vae_op_mean(vae_graph *g, int x, int *out) { return add_rowsum(g, OP_MEAN, x, "vae_op_mean", out); }

VAE_API vae_status vae_op_batch_mean(vae_graph *g, int x, int *out)
{
    node n = {.op = OP_BATCH_MEAN, .n_in = 1, .in = {x, -1, -1, -1}, .ndim = 1, .dims = {1}, .size = 1};
    VAE_TRY(vae__graph_expect_batched(g, x, 0, "vae_op_batch_mean"));
    return vae__graph_add(g, &n, out);
}
