/* The probabilistic ops: the reparameterised sample, BCE with logits, the
   Gaussian log-likelihood (constant, batched and learned log-variance), the
   standard normal log-density and the KL to N(0, I).  Values against
   double-precision references, gradients against central differences. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>

enum { ROWS = 3, IN = 4, SIZE = 5 };

static const double LOG_2PI = 1.8378770664093453;

/* One row of sum_i log N(x_i; m_i, exp(lv_i)) in double. */
static double gauss_ref(const float *x, const float *mean, const float *lv, float lv_const)
{
    double s = 0.0;
    for (int i = 0; i < SIZE; i++) {
        double d = (double)x[i] - (mean ? mean[i] : 0.0), v = lv ? lv[i] : lv_const;
        s += -0.5 * (LOG_2PI + v + d * d * exp(-v));
    }
    return s;
}

/* z = mu + exp(lv / 2) eps with eps read from the noise node (z - 1);
   gradients for mu and logvar with that noise held fixed. */
START_TEST(test_sample_normal)
{
    int x, mu, lv, z;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    double eps_sq = 0.0;
    mu = tu_variable(g, x, SIZE, "mu");
    lv = tu_variable(g, x, SIZE, "lv");
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(g->nodes[z - 1].op, OP_NOISE);
    ck_assert_int_eq(vae_graph_node_size(g, z), SIZE);
    m = tu_model(g, x, tu_weighted_sum(g, z));
    tu_random(in, ROWS * IN, 100 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int i = 0; i < ROWS * SIZE; i++) {
        double eps = tu_values(m, z - 1)[i];
        eps_sq += eps * eps;
        tu_expect_close(tu_values(m, z)[i], tu_values(m, mu)[i] + exp(0.5 * tu_values(m, lv)[i]) * eps,
                     "z", i);
    }
    /* the noise is really there: not all zero, of a plausible size */
    ck_assert(eps_sq > 0.5 && eps_sq < 10.0 * ROWS * SIZE);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* BCE with logits against targets in [0, 1] (the input):
   sum log1p(exp(l)) - t l per row, and its gradient for the logits. */
START_TEST(test_bce_logits)
{
    int x, l, y;
    float in[ROWS * SIZE];
    vae_graph *g = tu_graph(SIZE, &x);
    vae_model *m;
    l = tu_variable(g, x, SIZE, "l");
    ck_assert_int_eq(vae_op_scale(g, l, 3.0f, &l), VAE_OK); /* logits up to about +-6 */
    ck_assert_int_eq(vae_op_bce_logits(g, l, x, &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), 1);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * SIZE, 110 + (uint64_t)_i, 0.0f, 1.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++) {
        double want = 0.0;
        for (int i = 0; i < SIZE; i++) {
            double li = tu_values(m, l)[r * SIZE + i];
            want += log1p(exp(li)) - in[r * SIZE + i] * li;
        }
        tu_expect_close(tu_value(m, y, r), want, "bce", r);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* BCE where the target is a variable too (sigmoid of one, so in (0, 1)):
   gradients for the logits and the target. */
START_TEST(test_bce_variable_target)
{
    int x, l, t, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    l = tu_variable(g, x, SIZE, "l");
    t = tu_variable(g, x, SIZE, "t");
    ck_assert_int_eq(vae_op_sigmoid(g, t, &t), VAE_OK);
    ck_assert_int_eq(vae_op_bce_logits(g, l, t, &y), VAE_OK);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * IN, 120 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++) {
        double want = 0.0;
        for (int i = 0; i < SIZE; i++) {
            double li = tu_values(m, l)[r * SIZE + i], ti = tu_values(m, t)[r * SIZE + i];
            want += log1p(exp(li)) - ti * li;
        }
        tu_expect_close(tu_value(m, y, r), want, "bce", r);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Gaussian log-likelihood with a constant log-variance (0 and -1.3):
   value with the 0.5 log(2 pi) constant, gradients for x and the mean. */
START_TEST(test_gaussian_const)
{
    static const float lv_const[2] = {0.0f, -1.3f};
    int x, xv, mean, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    xv = tu_variable(g, x, SIZE, "xv");
    mean = tu_variable(g, x, SIZE, "mean");
    ck_assert_int_eq(vae_op_gaussian_loglik(g, xv, mean, -1, lv_const[_i], &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), 1);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * IN, 130 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        tu_expect_close(tu_value(m, y, r),
                     gauss_ref(tu_values(m, xv) + r * SIZE, tu_values(m, mean) + r * SIZE, NULL,
                               lv_const[_i]),
                     "gaussian", r);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Gaussian log-likelihood with a per-row (batched) log-variance node, and
   with an unbatched learned one (a parameter shared by the rows):
   values and gradients for x, mean and logvar. */
START_TEST(test_gaussian_logvar_node)
{
    int learned = _i & 1;
    int x, xv, mean, lv, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    xv = tu_variable(g, x, SIZE, "xv");
    mean = tu_variable(g, x, SIZE, "mean");
    lv = learned ? tu_vector_param(g, "logvar", SIZE) : tu_variable(g, x, SIZE, "lv");
    ck_assert_int_eq(vae_op_gaussian_loglik(g, xv, mean, lv, 0.0f, &y), VAE_OK);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * IN, 140 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        tu_expect_close(tu_value(m, y, r),
                     gauss_ref(tu_values(m, xv) + r * SIZE, tu_values(m, mean) + r * SIZE,
                               tu_values(m, lv) + (learned ? 0 : r * SIZE), 0.0f),
                     "gaussian", r);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* The mean may be broadcast too: an unbatched parameter mean with a
   batched log-variance; its gradient sums over the rows. */
START_TEST(test_gaussian_broadcast_mean)
{
    int x, xv, mean, lv, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    xv = tu_variable(g, x, SIZE, "xv");
    mean = tu_vector_param(g, "mean", SIZE);
    lv = tu_variable(g, x, SIZE, "lv");
    ck_assert_int_eq(vae_op_gaussian_loglik(g, xv, mean, lv, 0.0f, &y), VAE_OK);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * IN, 150, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        tu_expect_close(tu_value(m, y, r),
                     gauss_ref(tu_values(m, xv) + r * SIZE, tu_values(m, mean),
                               tu_values(m, lv) + r * SIZE, 0.0f),
                     "gaussian", r);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* normal_logpdf(z, -1, -1) is the standard normal: -0.5 sum(z^2 + log 2pi);
   with mu and logvar nodes it equals the Gaussian log-likelihood. */
START_TEST(test_normal_logpdf)
{
    int x, z, mu, lv, std, full, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    z = tu_variable(g, x, SIZE, "z");
    mu = tu_variable(g, x, SIZE, "mu");
    lv = tu_variable(g, x, SIZE, "lv");
    ck_assert_int_eq(vae_op_normal_logpdf(g, z, -1, -1, &std), VAE_OK);
    ck_assert_int_eq(vae_op_normal_logpdf(g, z, mu, lv, &full), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, std, full, &y), VAE_OK);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * IN, 160 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++) {
        double want = 0.0;
        for (int i = 0; i < SIZE; i++) {
            double zi = tu_values(m, z)[r * SIZE + i];
            want += -0.5 * (zi * zi + LOG_2PI);
        }
        tu_expect_close(tu_value(m, std, r), want, "standard normal", r);
        tu_expect_close(tu_value(m, std, r), gauss_ref(tu_values(m, z) + r * SIZE, NULL, NULL, 0.0f),
                     "standard normal", r);
        tu_expect_close(tu_value(m, full, r),
                     gauss_ref(tu_values(m, z) + r * SIZE, tu_values(m, mu) + r * SIZE,
                               tu_values(m, lv) + r * SIZE, 0.0f),
                     "normal", r);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* KL(N(mu, exp(lv)) || N(0, I)) against 0.5 sum(mu^2 + exp(lv) - 1 - lv),
   and its gradient. */
START_TEST(test_kl)
{
    int x, mu, lv, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    mu = tu_variable(g, x, SIZE, "mu");
    lv = tu_variable(g, x, SIZE, "lv");
    ck_assert_int_eq(vae_op_kl_std_normal(g, mu, lv, &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), 1);
    m = tu_model(g, x, y);
    tu_random(in, ROWS * IN, 170 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++) {
        double want = 0.0;
        for (int i = 0; i < SIZE; i++) {
            double u = tu_values(m, mu)[r * SIZE + i], v = tu_values(m, lv)[r * SIZE + i];
            want += 0.5 * (u * u + exp(v) - 1.0 - v);
        }
        ck_assert(want >= 0.0);
        tu_expect_close(tu_value(m, y, r), want, "kl", r);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Sets a dense variable to the constant row b (w = 0). */
static void set_constant(vae_graph *g, const char *name, const float *b, int size)
{
    char buf[64];
    int w, bias;
    snprintf(buf, sizeof buf, "%s.w", name);
    w = vae_graph_find(g, buf);
    snprintf(buf, sizeof buf, "%s.b", name);
    bias = vae_graph_find(g, buf);
    ck_assert_int_ge(w, 0);
    ck_assert_int_ge(bias, 0);
    for (int64_t i = 0; i < g->nodes[w].size; i++)
        g->params[g->nodes[w].param_offset + i] = 0.0f;
    for (int i = 0; i < size; i++)
        g->params[g->nodes[bias].param_offset + i] = b[i];
}

/* A hand-computed KL: mu = (0.5, -1), logvar = (0, log 2) gives
   0.5 ((0.25 + 1 - 1 - 0) + (1 + 2 - 1 - log 2)) on every row, and z is
   mu + sqrt(exp(lv)) eps exactly as the reparameterisation says. */
START_TEST(test_kl_known_value)
{
    const float mu_v[2] = {0.5f, -1.0f}, lv_v[2] = {0.0f, (float)log(2.0)};
    const double want = 0.5 * ((0.25 + 1.0 - 1.0 - 0.0) + (1.0 + 2.0 - 1.0 - log(2.0)));
    int x, mu, lv, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    mu = tu_variable(g, x, 2, "mu");
    lv = tu_variable(g, x, 2, "lv");
    ck_assert_int_eq(vae_op_kl_std_normal(g, mu, lv, &y), VAE_OK);
    m = tu_model(g, x, y);
    set_constant(m->g, "mu", mu_v, 2);
    set_constant(m->g, "lv", lv_v, 2);
    tu_random(in, ROWS * IN, 180, -2.0f, 2.0f);
    tu_expect_close(tu_objective(m, in, ROWS), want, "kl objective", 0);
    for (int r = 0; r < ROWS; r++)
        tu_expect_close(tu_value(m, y, r), want, "kl", r);
    vae_model_free(m);
}
END_TEST

/* Shapes that do not fit give VAE_ERR_SHAPE; missing operands, a bad
   constant log-variance, bad ids and NULL pointers give VAE_ERR_ARGUMENT. */
START_TEST(test_errors)
{
    int x, a, b, c6, p, y = -7;
    vae_graph *g = tu_graph(IN, &x);
    a = tu_variable(g, x, SIZE, "a");
    b = tu_variable(g, x, SIZE, "b");
    c6 = tu_variable(g, x, SIZE + 1, "c");
    p = tu_vector_param(g, "p", SIZE);
    /* sample: logvar must be batched and of mu's size */
    ck_assert_int_eq(vae_op_sample_normal(g, a, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_sample_normal(g, p, a, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_sample_normal(g, a, c6, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_sample_normal(g, a, b, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_sample_normal(g, a, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_sample_normal(NULL, a, b, &y), VAE_ERR_ARGUMENT);
    /* bce: the target is batched and of the logits' size */
    ck_assert_int_eq(vae_op_bce_logits(g, a, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bce_logits(g, a, c6, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bce_logits(g, a, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_bce_logits(g, a, b, NULL), VAE_ERR_ARGUMENT);
    /* gaussian: sizes, a required mean, a sane constant */
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, c6, -1, 0.0f, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, c6, 0.0f, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, p, b, -1, 0.0f, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, -1, -1, 0.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, -1, 100.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, -1, NAN, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, 99, -1, 0.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, 99, 0.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, -1, 0.0f, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_normal_logpdf(g, a, c6, -1, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_normal_logpdf(g, p, -1, -1, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_normal_logpdf(g, a, -1, -1, NULL), VAE_ERR_ARGUMENT);
    /* kl: logvar batched and of mu's size */
    ck_assert_int_eq(vae_op_kl_std_normal(g, a, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_kl_std_normal(g, a, c6, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_kl_std_normal(g, a, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_kl_std_normal(g, a, b, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(y, -7);
    vae_graph_free(g);
}
END_TEST

/* Only -1 means "absent": any other negative id is a bad argument, as in
   every other op, instead of silently becoming the standard normal or the
   constant log-variance. */
START_TEST(test_absent_operand_ids)
{
    int x, a, b, y = -7;
    vae_graph *g = tu_graph(IN, &x);
    a = tu_variable(g, x, SIZE, "a");
    b = tu_variable(g, x, SIZE, "b");
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, -1, 0.0f, &y), VAE_OK);
    ck_assert_int_eq(vae_op_normal_logpdf(g, a, -1, -1, &y), VAE_OK);
    y = -7;
    ck_assert_int_eq(vae_op_gaussian_loglik(g, a, b, -2, 0.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_normal_logpdf(g, a, -2, -1, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_normal_logpdf(g, a, -1, -2, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_normal_logpdf(g, a, b, -1000, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(y, -7);
    vae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_probability");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_sample_normal, 0, 3);
    tcase_add_loop_test(tc, test_bce_logits, 0, 3);
    tcase_add_loop_test(tc, test_bce_variable_target, 0, 2);
    tcase_add_loop_test(tc, test_gaussian_const, 0, 2);
    tcase_add_loop_test(tc, test_gaussian_logvar_node, 0, 4);
    tcase_add_test(tc, test_gaussian_broadcast_mean);
    tcase_add_loop_test(tc, test_normal_logpdf, 0, 2);
    tcase_add_loop_test(tc, test_kl, 0, 3);
    tcase_add_test(tc, test_kl_known_value);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_absent_operand_ids);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
