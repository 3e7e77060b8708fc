/* Activations.  Backward passes use the output y where they can, so the
   input need not be kept. */
#include "graph.h"
#include "fastmath.h"

#define ACTIVATION_LOOP(expr_y)                              \
    const float *x = c->val[nodes[id].in[0]];                \
    float *y = c->val[id];                                   \
    int64_t count = node_count(&nodes[id], c);               \
    for (int64_t i = 0; i < count; i++) {                    \
        float v = x[i];                                      \
        y[i] = (expr_y);                                     \
    }

#define ACTIVATION_GRAD_LOOP(expr_dydx)                      \
    const float *x = c->val[nodes[id].in[0]];                \
    const float *y = c->val[id], *dy = c->grad[id];          \
    int add;                                                 \
    float *dx = vae__grad_out(c, nodes[id].in[0], &add);     \
    int64_t count = node_count(&nodes[id], c);               \
    (void)x;                                                 \
    (void)y;                                                 \
    if (dx && add)                                           \
        for (int64_t i = 0; i < count; i++)                  \
            dx[i] += dy[i] * (expr_dydx);                    \
    else if (dx)                                             \
        for (int64_t i = 0; i < count; i++)                  \
            dx[i] = dy[i] * (expr_dydx);

VAE_HOT static void relu_forward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_LOOP(fm_select(v > 0.0f, v, 0.0f)) }
VAE_HOT static void relu_backward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_GRAD_LOOP(fm_select(y[i] > 0.0f, 1.0f, 0.0f)) }

VAE_HOT static void leaky_relu_forward(const node *nodes, int id, exec_ctx *c)
{
    float slope = nodes[id].fattr[0];
    ACTIVATION_LOOP(fm_select(v > 0.0f, v, slope * v))
}
VAE_HOT static void leaky_relu_backward(const node *nodes, int id, exec_ctx *c)
{
    float slope = nodes[id].fattr[0];
    ACTIVATION_GRAD_LOOP(fm_select(x[i] > 0.0f, 1.0f, slope))
}

VAE_HOT static void tanh_forward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_LOOP(fm_tanh(v)) }
VAE_HOT static void tanh_backward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_GRAD_LOOP(1.0f - y[i] * y[i]) }

VAE_HOT static void sigmoid_forward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_LOOP(fm_sigmoid(v)) }
VAE_HOT static void sigmoid_backward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_GRAD_LOOP(y[i] * (1.0f - y[i])) }

VAE_HOT static void softplus_forward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_LOOP(fm_softplus(v)) }
/* d softplus(x)/dx = sigmoid(x) = 1 - exp(-y) */
VAE_HOT static void softplus_backward(const node *nodes, int id, exec_ctx *c) { ACTIVATION_GRAD_LOOP(1.0f - fm_exp(-y[i])) }

const op_def vae__op_relu = {"relu", 1, relu_forward, relu_backward};
const op_def vae__op_leaky_relu = {"leaky_relu", 1, leaky_relu_forward, leaky_relu_backward};
const op_def vae__op_tanh = {"tanh", 1, tanh_forward, tanh_backward};
const op_def vae__op_sigmoid = {"sigmoid", 1, sigmoid_forward, sigmoid_backward};
const op_def vae__op_softplus = {"softplus", 1, softplus_forward, softplus_backward};

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
