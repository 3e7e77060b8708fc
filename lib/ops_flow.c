/* The pieces of an inverse autoregressive flow: matrix products whose
   weights carry a MADE mask, the gated update z' = g z + (1 - g) m and its
   log-determinant.
 *
 * Masks.  L units are ordered by degree: unit i has degree i + 1, or L - i
 * when the order is reversed.  Hidden unit k has degree (k mod (L - 1)) + 1
 * (0 when L = 1).  A weight from latent unit i to hidden unit k is kept when
 * degree(k) >= degree(i); one from hidden unit k to output j when
 * degree(j) > degree(k).  An output therefore depends only on latent units
 * of lower degree, which makes the flow's Jacobian triangular.
 *
 * The masked-out weights are held at exactly zero instead of being masked
 * on every product: the builder, vae_model_params_set and the loader zero
 * them, and the backward pass zeroes their gradient, so no optimizer moves
 * them.  The products are then plain GEMMs. */
#include "graph.h"
#include "fastmath.h"

#include <stdlib.h>
#include <string.h>

static int latent_degree(int i, int units, int reversed)
{
    return reversed ? units - i : i + 1;
}

static int hidden_degree(int k, int units)
{
    return units > 1 ? k % (units - 1) + 1 : 0;
}

typedef void (*run_fn)(void *ctx, int64_t start, int64_t len);

/* Calls fn(ctx, start, len) for each run of a (rows, cols) weight matrix
   that the mask holds at zero, in order.  Hidden degrees repeat 1 .. L-1,
   so in each period of L-1 hidden units an input of degree d reaches all
   but the first d-1; an output of degree d hears the hidden units of
   degree below d. */
static void masked_runs(int kind, int reversed, int rows, int cols, run_fn fn, void *ctx)
{
    if (kind == VAE_MADE_INPUT_TO_HIDDEN) {
        int period = rows - 1;
        for (int i = 0; i < rows; i++) {
            int64_t row = (int64_t)i * cols;
            int cut = latent_degree(i, rows, reversed) - 1;
            if (period == 0)
                fn(ctx, row, cols);
            for (int start = 0; period > 0 && cut > 0 && start < cols; start += period)
                fn(ctx, row + start, cut < cols - start ? cut : cols - start);
        }
    } else {
        for (int k = 0; k < rows; k++) {
            /* outputs of degree <= hidden_degree(k): the first t in the
               natural order, the last t reversed */
            int t = hidden_degree(k, cols);
            if (t > 0)
                fn(ctx, (int64_t)k * cols + (reversed ? cols - t : 0), t);
        }
    }
}

static void zero_run(void *ctx, int64_t start, int64_t len)
{
    memset((float *)ctx + start, 0, (size_t)len * sizeof(float));
}

static void zero_masked(float *w, int kind, int reversed, int rows, int cols)
{
    masked_runs(kind, reversed, rows, cols, zero_run, w);
}

/* Masked runs of the whole parameter array, collected as (start, end). */
typedef struct run_list {
    int64_t *pairs, count, cap, base;
    int failed;
} run_list;

static void collect_run(void *ctx, int64_t start, int64_t len)
{
    run_list *l = ctx;
    if (l->failed)
        return;
    if (l->count == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024, *p = vae__realloc(l->pairs, (size_t)cap * 2 * sizeof *p);
        if (!p) {
            l->failed = 1;
            return;
        }
        l->pairs = p;
        l->cap = cap;
    }
    l->pairs[2 * l->count] = l->base + start;
    l->pairs[2 * l->count + 1] = l->base + start + len;
    l->count++;
}

static int by_start(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

vae_status vae__graph_live_ranges(const vae_graph *g, const unsigned char *frozen,
                                  int64_t **ranges, int64_t *count)
{
    run_list masked = {0};
    int64_t at = 0, n = 0, *live;
    for (int id = 0; id < g->n_nodes; id++) {
        const node *nd = &g->nodes[id], *w;
        if (frozen && frozen[id]) { /* a frozen parameter is left alone whole */
            masked.base = 0;
            collect_run(&masked, nd->param_offset, nd->size);
        }
        if (nd->op != OP_MADE_MATMUL)
            continue;
        w = &g->nodes[nd->in[1]];
        masked.base = w->param_offset;
        masked_runs(nd->iattr[0], nd->iattr[1], w->dims[0], w->dims[1], collect_run, &masked);
    }
    live = masked.failed ? NULL : vae__alloc((size_t)(masked.count + 1) * 2 * sizeof *live);
    if (!live) {
        free(masked.pairs);
        return vae__fail(VAE_ERR_NO_MEMORY, "out of memory listing the masked weights");
    }
    if (masked.count)
        qsort(masked.pairs, (size_t)masked.count, 2 * sizeof *masked.pairs, by_start);
    /* the gaps between masked runs (which may overlap) */
    for (int64_t r = 0; r <= masked.count; r++) {
        int64_t start = r < masked.count ? masked.pairs[2 * r] : g->n_params;
        if (start > at) {
            live[2 * n] = at;
            live[2 * n + 1] = start;
            n++;
        }
        if (r < masked.count && masked.pairs[2 * r + 1] > at)
            at = masked.pairs[2 * r + 1];
    }
    free(masked.pairs);
    *ranges = live;
    *count = n;
    return VAE_OK;
}

void vae__graph_apply_masks(vae_graph *g)
{
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id], *w;
        if (n->op != OP_MADE_MATMUL)
            continue;
        w = &g->nodes[n->in[1]];
        zero_masked(g->params + w->param_offset, n->iattr[0], n->iattr[1], w->dims[0], w->dims[1]);
    }
}

/* The forward is matmul's: the masked weights are zero.  The backward is
   matmul's, then the masked weights' gradient is zeroed. */
static void made_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id], *w = &nodes[n->in[1]];
    vae__matmul_backward(nodes, id, c);
    if (c->grad[n->in[1]])
        zero_masked(c->grad[n->in[1]], n->iattr[0], n->iattr[1], w->dims[0], w->dims[1]);
}

VAE_API vae_status vae_op_made_matmul(vae_graph *g, int x, int w, vae_made_mask mask,
                                      int reversed, int *out)
{
    const char *what = "vae_op_made_matmul";
    node wn; /* a copy: adding the product may move the node table */
    int id;
    VAE_TRY(vae__graph_check_node(g, w, what));
    wn = g->nodes[w];
    if (wn.op != OP_PARAM || wn.ndim != 2)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: weight node %d must be a (K, N) parameter "
                         "(its masked entries are held at zero)", what, w);
    if ((int)mask < VAE_MADE_INPUT_TO_HIDDEN || mask > VAE_MADE_HIDDEN_TO_OUTPUT ||
        (reversed != 0 && reversed != 1))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: unknown mask %d or order %d", what, (int)mask,
                         reversed);
    /* an earlier user of w would add gradient to the masked weights after
       this op zeroes it (the backward runs in reverse order) */
    for (int k = w + 1; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_in; i++)
            if (g->nodes[k].in[i] == w)
                return vae__fail(VAE_ERR_ARGUMENT, "%s: weight node %d is already used by node "
                                 "%d; a masked weight must be used by this product first", what,
                                 w, k);
    VAE_TRY(vae_op_matmul(g, x, w, &id));
    g->nodes[id].op = OP_MADE_MATMUL;
    g->nodes[id].iattr[0] = (int)mask;
    g->nodes[id].iattr[1] = reversed;
    zero_masked(g->params + wn.param_offset, (int)mask, reversed, wn.dims[0], wn.dims[1]);
    *out = id;
    return VAE_OK;
}

/* z' = g z + (1 - g) m with g = sigmoid(s + shift);  in = {z, m, s} */
VAE_HOT static void gate_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *z = c->val[n->in[0]], *m = c->val[n->in[1]], *s = c->val[n->in[2]];
    float *y = c->val[id], shift = n->fattr[0];
    int64_t count = node_count(n, c);
    for (int64_t i = 0; i < count; i++) {
        float gate = fm_sigmoid(s[i] + shift);
        y[i] = m[i] + gate * (z[i] - m[i]);
    }
}

/* dz = dy g;  dm = dy (1 - g);  ds = dy (z - m) g (1 - g) */
VAE_HOT static void gate_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *z = c->val[n->in[0]], *m = c->val[n->in[1]], *s = c->val[n->in[2]];
    const float *dy = c->grad[id];
    float *dz = vae__grad_acc(c, nodes, n->in[0]), *dm = vae__grad_acc(c, nodes, n->in[1]);
    float *ds = vae__grad_acc(c, nodes, n->in[2]), shift = n->fattr[0];
    int64_t count = node_count(n, c);
    for (int64_t i = 0; i < count; i++) {
        float gate = fm_sigmoid(s[i] + shift);
        if (dz)
            dz[i] += dy[i] * gate;
        if (dm)
            dm[i] += dy[i] * (1.0f - gate);
        if (ds)
            ds[i] += dy[i] * (z[i] - m[i]) * gate * (1.0f - gate);
    }
}

vae_status vae__build_iaf_gate(vae_graph *g, int z, int m, int s, float shift, int *out)
{
    int in[3] = {z, m, s};
    VAE_TRY(vae__graph_expect_same(g, z, m, 0, "iaf_gate"));
    VAE_TRY(vae__graph_expect_same(g, z, s, 0, "iaf_gate"));
    if (!(shift > -80.0f && shift < 80.0f))
        return vae__fail(VAE_ERR_ARGUMENT, "iaf_gate: shift %g is not in (-80, 80)", (double)shift);
    VAE_TRY(vae__graph_add_like(g, OP_IAF_GATE, z, 3, in, out));
    g->nodes[*out].fattr[0] = shift;
    return VAE_OK;
}

/* Per row: sum log sigmoid(s + shift) = -sum softplus(-(s + shift)) */
VAE_HOT static void log_gate_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    int64_t size = nodes[n->in[0]].size;
    float shift = n->fattr[0];
    for (int r = 0; r < c->rows; r++) {
        const float *s = c->val[n->in[0]] + r * size;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < size; i++)
            sum += fm_softplus(-(s[i] + shift));
        c->val[id][r] = -sum;
    }
}

/* ds = dy (1 - sigmoid(s + shift)) */
VAE_HOT static void log_gate_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    int64_t size = nodes[n->in[0]].size;
    float *ds = vae__grad_acc(c, nodes, n->in[0]), shift = n->fattr[0];
    for (int r = 0; ds && r < c->rows; r++) {
        const float *s = c->val[n->in[0]] + r * size;
        float dy = c->grad[id][r], *dsr = ds + r * size;
        for (int64_t i = 0; i < size; i++)
            dsr[i] += dy * fm_sigmoid(-(s[i] + shift));
    }
}

vae_status vae__build_iaf_log_gate(vae_graph *g, int s, float shift, int *out)
{
    VAE_TRY(vae__graph_expect_batched(g, s, 0, "iaf_log_gate"));
    if (!(shift > -80.0f && shift < 80.0f))
        return vae__fail(VAE_ERR_ARGUMENT, "iaf_log_gate: shift %g is not in (-80, 80)",
                         (double)shift);
    VAE_TRY(vae__graph_add_per_row(g, OP_IAF_LOG_GATE, 1, &s, out));
    g->nodes[*out].fattr[0] = shift;
    return VAE_OK;
}

const op_def vae__op_made_matmul = {"made_matmul", 2, vae__matmul_forward, made_backward};
const op_def vae__op_iaf_gate = {"iaf_gate", 3, gate_forward, gate_backward};
const op_def vae__op_iaf_log_gate = {"iaf_log_gate", 1, log_gate_forward, log_gate_backward};
