/* Element-wise arithmetic and concatenation.  In add and mul the second
   operand may be unbatched (one row broadcast over the batch); its gradient
   then sums over the rows. */
#include "graph.h"

#include <string.h>

/* Row stride of operand b: 0 when it is broadcast. */
static int64_t stride_of(const node *b) { return b->batched ? b->size : 0; }

/* y = a + b */
VAE_HOT static void add_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *a = c->val[n->in[0]], *b = c->val[n->in[1]];
    float *y = c->val[id];
    int64_t size = n->size, sb = stride_of(&nodes[n->in[1]]);
    for (int r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < size; i++)
            y[r * size + i] = a[r * size + i] + b[r * sb + i];
}

VAE_HOT static void add_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *dy = c->grad[id];
    int64_t size = n->size, sb = stride_of(&nodes[n->in[1]]);
    float *da = vae__grad_acc(c, nodes, n->in[0]), *db = vae__grad_acc(c, nodes, n->in[1]);
    for (int r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < size; i++) {
            if (da)
                da[r * size + i] += dy[r * size + i];
            if (db)
                db[r * sb + i] += dy[r * size + i];
        }
}

/* y = a * b */
VAE_HOT static void mul_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *a = c->val[n->in[0]], *b = c->val[n->in[1]];
    float *y = c->val[id];
    int64_t size = n->size, sb = stride_of(&nodes[n->in[1]]);
    for (int r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < size; i++)
            y[r * size + i] = a[r * size + i] * b[r * sb + i];
}

VAE_HOT static void mul_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *a = c->val[n->in[0]], *b = c->val[n->in[1]], *dy = c->grad[id];
    int64_t size = n->size, sb = stride_of(&nodes[n->in[1]]);
    float *da = vae__grad_acc(c, nodes, n->in[0]), *db = vae__grad_acc(c, nodes, n->in[1]);
    for (int r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < size; i++) {
            if (da)
                da[r * size + i] += dy[r * size + i] * b[r * sb + i];
            if (db)
                db[r * sb + i] += dy[r * size + i] * a[r * size + i];
        }
}

/* y = factor * x */
VAE_HOT static void scale_forward(const node *nodes, int id, exec_ctx *c)
{
    const float *x = c->val[nodes[id].in[0]];
    float *y = c->val[id], factor = nodes[id].fattr[0];
    for (int64_t i = 0; i < node_count(&nodes[id], c); i++)
        y[i] = factor * x[i];
}

VAE_HOT static void scale_backward(const node *nodes, int id, exec_ctx *c)
{
    const float *dy = c->grad[id];
    float *dx = vae__grad_acc(c, nodes, nodes[id].in[0]), factor = nodes[id].fattr[0];
    if (dx)
        for (int64_t i = 0; i < node_count(&nodes[id], c); i++)
            dx[i] += factor * dy[i];
}

/* y (B, Na+Nb) = [a (B,Na), b (B,Nb)] */
static void concat_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    int64_t na = nodes[n->in[0]].size, nb = nodes[n->in[1]].size;
    for (int r = 0; r < c->rows; r++) {
        memcpy(c->val[id] + r * n->size, c->val[n->in[0]] + r * na, (size_t)na * sizeof(float));
        memcpy(c->val[id] + r * n->size + na, c->val[n->in[1]] + r * nb, (size_t)nb * sizeof(float));
    }
}

static void concat_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    int64_t na = nodes[n->in[0]].size, nb = nodes[n->in[1]].size;
    const float *dy = c->grad[id];
    float *da = vae__grad_acc(c, nodes, n->in[0]), *db = vae__grad_acc(c, nodes, n->in[1]);
    for (int r = 0; r < c->rows; r++) {
        for (int64_t i = 0; da && i < na; i++)
            da[r * na + i] += dy[r * n->size + i];
        for (int64_t i = 0; db && i < nb; i++)
            db[r * nb + i] += dy[r * n->size + na + i];
    }
}

const op_def vae__op_add = {"add", 2, add_forward, add_backward};
const op_def vae__op_mul = {"mul", 2, mul_forward, mul_backward};
const op_def vae__op_scale = {"scale", 1, scale_forward, scale_backward};
const op_def vae__op_concat = {"concat", 2, concat_forward, concat_backward};

VAE_API vae_status vae_op_add(vae_graph *g, int a, int b, int *out)
{
    int in[2] = {a, b};
    VAE_TRY(vae__graph_expect_same(g, a, b, 1, "vae_op_add"));
    return vae__graph_add_like(g, OP_ADD, a, 2, in, out);
}

VAE_API vae_status vae_op_mul(vae_graph *g, int a, int b, int *out)
{
    int in[2] = {a, b};
    VAE_TRY(vae__graph_expect_same(g, a, b, 1, "vae_op_mul"));
    return vae__graph_add_like(g, OP_MUL, a, 2, in, out);
}

VAE_API vae_status vae_op_scale(vae_graph *g, int x, float factor, int *out)
{
    int id;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_op_scale: out is NULL");
    if (!(factor == factor) || factor > 3e38f || factor < -3e38f)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_op_scale: factor is not finite");
    VAE_TRY(vae__graph_add_like(g, OP_SCALE, x, 1, &x, &id));
    g->nodes[id].fattr[0] = factor;
    *out = id;
    return VAE_OK;
}

VAE_API vae_status vae_op_concat(vae_graph *g, int a, int b, int *out)
{
    node n;
    VAE_TRY(vae__graph_expect_batched(g, a, 0, "vae_op_concat"));
    VAE_TRY(vae__graph_expect_batched(g, b, 0, "vae_op_concat"));
    n = (node){.op = OP_CONCAT, .n_in = 2, .in = {a, b, -1, -1}, .batched = 1, .ndim = 1};
    n.size = g->nodes[a].size + g->nodes[b].size;
    if (n.size > (1 << 30))
        return vae__fail(VAE_ERR_SHAPE, "vae_op_concat: result row too large");
    n.dims[0] = (int)n.size;
    return vae__graph_add(g, &n, out);
}
