/* Linear maps: matmul, bias and the dense layer.  Forward values against
   plain double-precision loops, backward against central differences, and
   the shape and argument checks. */
#include "testutil.h"

#include <math.h>

enum { ROWS = 3, K = 5, N = 7 };

/* Forward values: 1e-5 relative (absolute below 1). */
/* Values of node id in the (single) worker after the last tu_objective. */
static int param(vae_graph *g, const char *name, int rows, int cols)
{
    int dims[2] = {rows, cols}, id;
    ck_assert_int_eq(vae_graph_param(g, name, cols ? 2 : 1, dims, 1.0f, &id), VAE_OK);
    return id;
}

/* y[r][n] = sum_k x[r][k] w[k][n] in double. */
static double matmul_ref(const float *x, const float *w, int r, int n)
{
    double s = 0.0;
    for (int k = 0; k < K; k++)
        s += (double)x[r * K + k] * w[k * N + n];
    return s;
}

static double act_ref(vae_activation act, double v)
{
    switch (act) {
    case VAE_ACT_NONE: return v;
    case VAE_ACT_RELU: return v > 0 ? v : 0;
    case VAE_ACT_LEAKY_RELU: return v > 0 ? v : 0.01 * v;
    case VAE_ACT_TANH: return tanh(v);
    case VAE_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case VAE_ACT_SOFTPLUS: return log1p(exp(v));
    }
    return NAN;
}

/* matmul of the raw input by a (K, N) parameter equals the naive triple
   loop, for 1, 3 and 5 rows; the weight gradient is right while the input
   takes none. */
START_TEST(test_matmul_forward)
{
    int x, w, y, rows = 1 + 2 * _i;
    float in[5 * K];
    vae_graph *g = tu_graph(K, &x);
    vae_model *m;
    w = param(g, "w", K, N);
    ck_assert_int_eq(vae_op_matmul(g, x, w, &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), N);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, rows * K, 10 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, rows);
    for (int r = 0; r < rows; r++)
        for (int n = 0; n < N; n++)
            tu_expect_close(tu_values(m, y)[r * N + n], matmul_ref(in, tu_values(m, w), r, n), "matmul",
                         r * N + n);
    TU_CHECK_GRADIENT(m, in, rows);
    vae_model_free(m);
}
END_TEST

/* matmul gradient with respect to both the weights and the input (a
   preceding variable), over several seeds. */
START_TEST(test_matmul_gradient)
{
    int x, v, w, y;
    float in[ROWS * K];
    vae_graph *g = tu_graph(K, &x);
    vae_model *m;
    v = tu_variable(g, x, K, "v");
    w = param(g, "w", K, N);
    ck_assert_int_eq(vae_op_matmul(g, v, w, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * K, 20 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        for (int n = 0; n < N; n++)
            tu_expect_close(tu_values(m, y)[r * N + n], matmul_ref(tu_values(m, v), tu_values(m, w), r, n),
                         "matmul", r * N + n);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* One weight used by two products, and one input feeding both: the GEMM
   gradients accumulate (beta 1) instead of overwriting. */
START_TEST(test_matmul_shared)
{
    int x, v, u, w, y1, y2, y3, s;
    float in[ROWS * K];
    vae_graph *g = tu_graph(K, &x);
    vae_model *m;
    v = tu_variable(g, x, K, "v");
    u = tu_variable(g, x, K, "u");
    w = param(g, "w", K, N);
    ck_assert_int_eq(vae_op_matmul(g, v, w, &y1), VAE_OK);
    ck_assert_int_eq(vae_op_matmul(g, u, w, &y2), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, y1, y2, &s), VAE_OK);
    ck_assert_int_eq(vae_op_matmul(g, v, w, &y3), VAE_OK);
    ck_assert_int_eq(vae_op_mul(g, s, y3, &s), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, s));
    tu_random(in, ROWS * K, 30, -2.0f, 2.0f);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* The weight may be a computed unbatched (K, N) node, here 0.5 * w: its
   gradient flows back through the scale to the parameter. */
START_TEST(test_matmul_computed_weight)
{
    int x, v, w, hw, y;
    float in[ROWS * K];
    vae_graph *g = tu_graph(K, &x);
    vae_model *m;
    v = tu_variable(g, x, K, "v");
    w = param(g, "w", K, N);
    ck_assert_int_eq(vae_op_scale(g, w, 0.5f, &hw), VAE_OK);
    ck_assert_int_eq(vae_op_matmul(g, v, hw, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * K, 35, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        for (int n = 0; n < N; n++)
            tu_expect_close(tu_values(m, y)[r * N + n], 0.5 * matmul_ref(tu_values(m, v), tu_values(m, w), r, n),
                         "matmul", r * N + n);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* bias adds the same vector to every row; gradients for input and bias. */
START_TEST(test_bias)
{
    int x, v, b, y;
    float in[ROWS * K];
    vae_graph *g = tu_graph(K, &x);
    vae_model *m;
    v = tu_variable(g, x, N, "v");
    b = param(g, "b", N, 0);
    ck_assert_int_eq(vae_op_bias(g, v, b, &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), N);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * K, 40 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int i = 0; i < ROWS * N; i++)
        tu_expect_close(tu_values(m, y)[i], (double)tu_values(m, v)[i] + tu_values(m, b)[i % N], "bias", i);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* dense = act(x W + b) for every activation, values and gradients.  The
   input is a variable so the gradient also flows through the layer's input. */
START_TEST(test_dense)
{
    vae_activation act = (vae_activation)_i;
    int x, v, y, w, b;
    float in[ROWS * K];
    vae_graph *g = tu_graph(K, &x);
    vae_model *m;
    v = tu_variable(g, x, K, "v");
    ck_assert_int_eq(vae_layer_dense(g, v, N, act, "d", &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), N);
    w = vae_graph_find(g, "d.w");
    b = vae_graph_find(g, "d.b");
    ck_assert_int_ge(w, 0);
    ck_assert_int_ge(b, 0);
    ck_assert_int_eq(g->nodes[w].dims[0], K);
    ck_assert_int_eq(g->nodes[w].dims[1], N);
    ck_assert_int_eq(g->nodes[b].size, N);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    /* ReLU (act 1) passes the check with seed 50 + act: no pre-activation
       lies within the finite-difference step of the kink. */
    tu_random(in, ROWS * K, 50 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        for (int n = 0; n < N; n++) {
            double pre = matmul_ref(tu_values(m, v), tu_values(m, w), r, n) + tu_values(m, b)[n];
            tu_expect_close(tu_values(m, y)[r * N + n], act_ref(act, pre), "dense", r * N + n);
        }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* dense initialises w and b uniform in +-1/sqrt(fan_in), not all zero, and
   with VAE_ACT_NONE its output is the bias node itself. */
START_TEST(test_dense_init)
{
    int x, y, w, b;
    double bound = 1.0 / sqrt((double)K), largest = 0.0;
    vae_graph *g = tu_graph(K, &x);
    ck_assert_int_eq(vae_layer_dense(g, x, N, VAE_ACT_NONE, "d", &y), VAE_OK);
    ck_assert_int_eq(g->nodes[y].op, OP_BIAS);
    w = vae_graph_find(g, "d.w");
    b = vae_graph_find(g, "d.b");
    for (int i = 0; i < K * N; i++)
        largest = fmax(largest, fabs(g->params[g->nodes[w].param_offset + i]));
    for (int i = 0; i < N; i++)
        largest = fmax(largest, fabs(g->params[g->nodes[b].param_offset + i]));
    ck_assert(largest > 0.0 && largest <= bound);
    /* No name: parameters are called just "w" and "b". */
    ck_assert_int_eq(vae_layer_dense(g, x, 2, VAE_ACT_TANH, NULL, &y), VAE_OK);
    ck_assert_int_ge(vae_graph_find(g, "w"), 0);
    ck_assert_int_ge(vae_graph_find(g, "b"), 0);
    vae_graph_free(g);
}
END_TEST

/* Shapes that do not fit give VAE_ERR_SHAPE, and the out id is untouched. */
START_TEST(test_shape_errors)
{
    int x, v, w, w_bad_k, w_vec, b_bad, y = -7, dims[2] = {K + 1, N};
    vae_graph *g = tu_graph(K, &x);
    v = tu_variable(g, x, N, "v");
    w = param(g, "w", K, N);
    ck_assert_int_eq(vae_graph_param(g, "wk", 2, dims, 1.0f, &w_bad_k), VAE_OK);
    w_vec = param(g, "wvec", K * N, 0);
    b_bad = param(g, "bbad", N + 1, 0);
    /* mismatched K */
    ck_assert_int_eq(vae_op_matmul(g, x, w_bad_k, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_matmul(g, v, w, &y), VAE_ERR_SHAPE);
    /* batched "weight", and a weight that is not a matrix */
    ck_assert_int_eq(vae_op_matmul(g, x, x, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_matmul(g, x, w_vec, &y), VAE_ERR_SHAPE);
    /* unbatched input */
    ck_assert_int_eq(vae_op_matmul(g, w, w, &y), VAE_ERR_SHAPE);
    /* bias size mismatch, batched bias, unbatched input */
    ck_assert_int_eq(vae_op_bias(g, v, b_bad, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bias(g, v, v, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bias(g, b_bad, b_bad, &y), VAE_ERR_SHAPE);
    /* dense on an unbatched node */
    ck_assert_int_eq(vae_layer_dense(g, w, 3, VAE_ACT_RELU, "d", &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(y, -7);
    vae_graph_free(g);
}
END_TEST

/* NULL graph or out, node ids that do not exist and bad sizes give
   VAE_ERR_ARGUMENT. */
START_TEST(test_bad_arguments)
{
    int x, w, y = -7, n;
    vae_graph *g = tu_graph(K, &x);
    w = param(g, "w", K, N);
    n = vae_graph_node_count(g);
    ck_assert_int_eq(vae_op_matmul(NULL, x, w, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_matmul(g, x, w, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_matmul(g, 99, w, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_matmul(g, x, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_matmul(g, -1, w, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_matmul(g, x, -1, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_bias(NULL, x, w, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_bias(g, 99, w, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_bias(g, x, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_bias(g, x, -1, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_dense(NULL, x, 3, VAE_ACT_RELU, "d", &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_dense(g, 99, 3, VAE_ACT_RELU, "d", &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_dense(g, x, 0, VAE_ACT_RELU, "d", &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_dense(g, x, -3, VAE_ACT_RELU, "d", &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_dense(g, x, 3, VAE_ACT_RELU, "d", NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(y, -7);
    /* None of the failures above added a node. */
    ck_assert_int_eq(vae_graph_node_count(g), n);
    vae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_linear");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_matmul_forward, 0, 3);
    tcase_add_loop_test(tc, test_matmul_gradient, 0, 3);
    tcase_add_test(tc, test_matmul_shared);
    tcase_add_test(tc, test_matmul_computed_weight);
    tcase_add_loop_test(tc, test_bias, 0, 3);
    tcase_add_loop_test(tc, test_dense, VAE_ACT_NONE, VAE_ACT_SOFTPLUS + 1);
    tcase_add_test(tc, test_dense_init);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
