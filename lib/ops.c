/* The operation table, indexed by the stable operation ids of graph.h. */
#include "graph.h"

/* Inputs, parameters and noise are filled from outside; nothing flows back
   through them. */
static void no_op(const node *nodes, int id, exec_ctx *c)
{
    (void)nodes;
    (void)id;
    (void)c;
}

static const op_def op_input = {"input", 0, no_op, NULL};
static const op_def op_param = {"param", 0, no_op, NULL};
static const op_def op_noise = {"noise", 0, no_op, NULL};

extern const op_def vae__op_matmul, vae__op_bias, vae__op_relu, vae__op_leaky_relu,
    vae__op_tanh, vae__op_sigmoid, vae__op_softplus, vae__op_add, vae__op_mul, vae__op_scale,
    vae__op_concat, vae__op_sample_normal, vae__op_bce_logits, vae__op_gaussian_loglik,
    vae__op_kl_std_normal, vae__op_sum, vae__op_mean, vae__op_batch_mean, vae__op_conv2d,
    vae__op_conv2d_transpose, vae__op_reshape, vae__op_made_matmul, vae__op_iaf_gate,
    vae__op_iaf_log_gate;

const op_def *const vae__ops[OP_COUNT] = {
    [OP_INPUT] = &op_input,
    [OP_PARAM] = &op_param,
    [OP_NOISE] = &op_noise,
    [OP_MATMUL] = &vae__op_matmul,
    [OP_BIAS] = &vae__op_bias,
    [OP_RELU] = &vae__op_relu,
    [OP_LEAKY_RELU] = &vae__op_leaky_relu,
    [OP_TANH] = &vae__op_tanh,
    [OP_SIGMOID] = &vae__op_sigmoid,
    [OP_SOFTPLUS] = &vae__op_softplus,
    [OP_ADD] = &vae__op_add,
    [OP_MUL] = &vae__op_mul,
    [OP_SCALE] = &vae__op_scale,
    [OP_CONCAT] = &vae__op_concat,
    [OP_SAMPLE_NORMAL] = &vae__op_sample_normal,
    [OP_BCE_LOGITS] = &vae__op_bce_logits,
    [OP_GAUSSIAN_LOGLIK] = &vae__op_gaussian_loglik,
    [OP_KL_STD_NORMAL] = &vae__op_kl_std_normal,
    [OP_SUM] = &vae__op_sum,
    [OP_MEAN] = &vae__op_mean,
    [OP_BATCH_MEAN] = &vae__op_batch_mean,
    [OP_CONV2D] = &vae__op_conv2d,
    [OP_CONV2D_TRANSPOSE] = &vae__op_conv2d_transpose,
    [OP_RESHAPE] = &vae__op_reshape,
    [OP_MADE_MATMUL] = &vae__op_made_matmul,
    [OP_IAF_GATE] = &vae__op_iaf_gate,
    [OP_IAF_LOG_GATE] = &vae__op_iaf_log_gate,
};
