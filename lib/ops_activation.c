/* Activations.  Backward passes use the output y, so the input need not
   be kept; convolutions apply the same functions to their outputs. */
#include "graph.h"
#include "fastmath.h"

/* y = act(x) over n values (y may be x). */
VAE_HOT void vae__activate(vae_activation act, float slope, const float *x, float *y, int64_t n)
{
    switch (act) {
    case VAE_ACT_NONE:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i];
        break;
    case VAE_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = fm_select(x[i] > 0.0f, x[i], 0.0f);
        break;
    case VAE_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = fm_select(x[i] > 0.0f, x[i], slope * x[i]);
        break;
    case VAE_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = fm_tanh(x[i]);
        break;
    case VAE_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = fm_sigmoid(x[i]);
        break;
    case VAE_ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            y[i] = fm_softplus(x[i]);
        break;
    }
}

/* The derivative of each activation from its output y: relu and leaky
   relu from the sign of y (that of x, for slopes >= 0), tanh 1 - y^2,
   sigmoid y (1 - y), softplus 1 - exp(-y) (= sigmoid(x)). */
#define GRAD_LOOP(expr)                                  \
    if (add)                                             \
        for (int64_t i = 0; i < n; i++)                  \
            dx[i] += dy[i] * (expr);                     \
    else                                                 \
        for (int64_t i = 0; i < n; i++)                  \
            dx[i] = dy[i] * (expr);

/* dx (+)= dy act'(x), computed from y = act(x); dx may be dy. */
VAE_HOT void vae__activation_grad(vae_activation act, float slope, const float *y, const float *dy,
                                  float *dx, int64_t n, int add)
{
    switch (act) {
    case VAE_ACT_NONE: GRAD_LOOP(1.0f) break;
    case VAE_ACT_RELU: GRAD_LOOP(fm_select(y[i] > 0.0f, 1.0f, 0.0f)) break;
    case VAE_ACT_LEAKY_RELU: GRAD_LOOP(fm_select(y[i] > 0.0f, 1.0f, slope)) break;
    case VAE_ACT_TANH: GRAD_LOOP(1.0f - y[i] * y[i]) break;
    case VAE_ACT_SIGMOID: GRAD_LOOP(y[i] * (1.0f - y[i])) break;
    case VAE_ACT_SOFTPLUS: GRAD_LOOP(1.0f - fm_exp(-y[i])) break;
    }
}

static vae_activation activation_of(int op)
{
    switch (op) {
    case OP_RELU: return VAE_ACT_RELU;
    case OP_LEAKY_RELU: return VAE_ACT_LEAKY_RELU;
    case OP_TANH: return VAE_ACT_TANH;
    case OP_SIGMOID: return VAE_ACT_SIGMOID;
    default: return VAE_ACT_SOFTPLUS;
    }
}

static void activation_forward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    vae__activate(activation_of(n->op), n->fattr[0], c->val[n->in[0]], c->val[id], node_count(n, c));
}

static void activation_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    int add;
    float *dx = vae__grad_out(c, n->in[0], &add);
    if (dx)
        vae__activation_grad(activation_of(n->op), n->fattr[0], c->val[id], c->grad[id], dx,
                             node_count(n, c), add);
}

const op_def vae__op_relu = {"relu", 1, activation_forward, activation_backward};
const op_def vae__op_leaky_relu = {"leaky_relu", 1, activation_forward, activation_backward};
const op_def vae__op_tanh = {"tanh", 1, activation_forward, activation_backward};
const op_def vae__op_sigmoid = {"sigmoid", 1, activation_forward, activation_backward};
const op_def vae__op_softplus = {"softplus", 1, activation_forward, activation_backward};

static vae_status add_activation(vae_graph *g, int op, int x, float slope, int *out)
{
    int id;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: out is NULL", vae__ops[op]->name);
    VAE_TRY(vae__graph_add_like(g, op, x, 1, &x, &id));
    g->nodes[id].fattr[0] = slope;
    *out = id;
    return VAE_OK;
}

VAE_API vae_status vae_op_relu(vae_graph *g, int x, int *out) { return add_activation(g, OP_RELU, x, 0.0f, out); }
VAE_API vae_status vae_op_tanh(vae_graph *g, int x, int *out) { return add_activation(g, OP_TANH, x, 0.0f, out); }
VAE_API vae_status vae_op_sigmoid(vae_graph *g, int x, int *out) { return add_activation(g, OP_SIGMOID, x, 0.0f, out); }
VAE_API vae_status vae_op_softplus(vae_graph *g, int x, int *out) { return add_activation(g, OP_SOFTPLUS, x, 0.0f, out); }

VAE_API vae_status vae_op_leaky_relu(vae_graph *g, int x, float slope, int *out)
{
    if (!(slope >= 0.0f && slope < 1.0f))
        return vae__fail(VAE_ERR_ARGUMENT, "vae_op_leaky_relu: slope %g is not in [0, 1)", (double)slope);
    return add_activation(g, OP_LEAKY_RELU, x, slope, out);
}

VAE_API vae_status vae_op_activation(vae_graph *g, int x, vae_activation act, int *out)
{
    switch (act) {
    case VAE_ACT_NONE:
        VAE_TRY(vae__graph_check_node(g, x, "vae_op_activation"));
        if (!out)
            return vae__fail(VAE_ERR_ARGUMENT, "vae_op_activation: out is NULL");
        *out = x;
        return VAE_OK;
    case VAE_ACT_RELU: return vae_op_relu(g, x, out);
    case VAE_ACT_LEAKY_RELU: return vae_op_leaky_relu(g, x, 0.01f, out);
    case VAE_ACT_TANH: return vae_op_tanh(g, x, out);
    case VAE_ACT_SIGMOID: return vae_op_sigmoid(g, x, out);
    case VAE_ACT_SOFTPLUS: return vae_op_softplus(g, x, out);
    }
    return vae__fail(VAE_ERR_ARGUMENT, "vae_op_activation: unknown activation %d", (int)act);
}
