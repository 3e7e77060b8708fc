/* Activations: forward values against libm, backward against central
   differences. */
#include "testutil.h"

#include <math.h>

enum { ROWS = 3, IN = 4, SIZE = 5 };

typedef vae_status (*unary_builder)(vae_graph *, int, int *);

static vae_status leaky(vae_graph *g, int x, int *out) { return vae_op_leaky_relu(g, x, 0.1f, out); }

static double reference(int which, double v)
{
    switch (which) {
    case 0: return v > 0 ? v : 0;
    case 1: return v > 0 ? v : 0.1 * v;
    case 2: return tanh(v);
    case 3: return 1.0 / (1.0 + exp(-v));
    default: return log1p(exp(v));
    }
}

static const unary_builder builders[] = {vae_op_relu, leaky, vae_op_tanh, vae_op_sigmoid,
                                         vae_op_softplus};

/* y = act(variable); forward compared elementwise, then the gradient. */
START_TEST(test_activation)
{
    int x, v, y, id;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    v = tu_variable(g, x, SIZE, "v");
    ck_assert_int_eq(builders[_i](g, v, &y), VAE_OK);
    id = tu_weighted_sum(g, y);
    m = tu_model(g, x, id);
    tu_random(in, ROWS * IN, 100 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int i = 0; i < ROWS * SIZE; i++) {
        float pre = m->workers[0].c.val[v][i], got = m->workers[0].c.val[y][i];
        ck_assert_msg(fabs(got - reference(_i, pre)) <= 2e-6 * (1 + fabs(reference(_i, pre))),
                      "activation %d at %g: %.9g vs %.9g", _i, pre, got, reference(_i, pre));
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* The fast exp/log stay accurate over the whole range the ops use. */
START_TEST(test_extreme_inputs)
{
    int x, y;
    float in[4] = {-100.0f, -30.0f, 30.0f, 100.0f};
    int dims = 1;
    vae_graph *g;
    vae_model *m;
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &dims, &x), VAE_OK);
    ck_assert_int_eq(vae_op_softplus(g, x, &y), VAE_OK);
    m = tu_model(g, x, y);
    tu_objective(m, in, 4);
    ck_assert_float_eq_tol(tu_value(m, y, 0), 0.0f, 1e-30f);
    ck_assert_float_eq_tol(tu_value(m, y, 1), (float)log1p(exp(-30.0)), 1e-18f);
    ck_assert_float_eq_tol(tu_value(m, y, 2), 30.0f, 1e-5f);
    ck_assert_float_eq_tol(tu_value(m, y, 3), 100.0f, 1e-5f);
    vae_model_free(m);
}
END_TEST

START_TEST(test_bad_arguments)
{
    int x, y;
    vae_graph *g = tu_graph(IN, &x);
    ck_assert_int_eq(vae_op_relu(g, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_relu(NULL, x, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_relu(g, x, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_leaky_relu(g, x, -1.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_activation(g, x, (vae_activation)42, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_activation(g, x, VAE_ACT_NONE, &y), VAE_OK);
    ck_assert_int_eq(y, x);
    vae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_activation");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_activation, 0, 5);
    tcase_add_test(tc, test_extreme_inputs);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
