/* Reductions: per-row sum and mean, and the batch mean of row sums, with
   one and with two worker threads.  Values against double references,
   gradients against central differences. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

enum { ROWS = 3, IN = 4, SIZE = 7 };

/* A model whose objective is node obj itself (no extra batch mean);
   per_row is a (B, 1) node for the NELBO role. */
static vae_model *model_with_objective(vae_graph *g, int x, int obj, int per_row)
{
    vae_model *m = NULL;
    for (int r = 0; r < VAE_ROLE_RECON; r++) /* the later roles are optional */
        ck_assert_int_eq(vae_graph_set_role(g, (vae_role)r, x), VAE_OK);
    ck_assert_int_eq(vae_graph_set_role(g, VAE_ROLE_OBJECTIVE, obj), VAE_OK);
    ck_assert_int_eq(vae_graph_set_role(g, VAE_ROLE_NELBO, per_row), VAE_OK);
    ck_assert_int_eq(vae_graph_set_role(g, VAE_ROLE_LOG_WEIGHT, per_row), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    return m;
}

/* sum (_i even) or mean (_i odd) of each row of a 7-wide variable.  The
   result is multiplied by a per-row variable before the batch mean so that
   rows get different upstream gradients. */
START_TEST(test_rowsum)
{
    int is_mean = _i & 1;
    int x, v, u, y, yu;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    v = tu_variable(g, x, SIZE, "v");
    u = tu_variable(g, x, 1, "u");
    ck_assert_int_eq((is_mean ? vae_op_mean : vae_op_sum)(g, v, &y), VAE_OK);
    ck_assert(g->nodes[y].batched);
    ck_assert_int_eq(vae_graph_node_size(g, y), 1);
    ck_assert_int_eq(vae_op_mul(g, y, u, &yu), VAE_OK);
    m = tu_model(g, x, yu);
    tu_random(in, ROWS * IN, 200 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++) {
        double want = 0.0;
        for (int i = 0; i < SIZE; i++)
            want += tu_values(m, v)[r * SIZE + i];
        tu_expect_close(tu_value(m, y, r), is_mean ? want / SIZE : want, is_mean ? "mean" : "sum",
                     r);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* batch_mean of a 7-wide node is an unbatched scalar equal to the mean over
   the rows of the row sums; it is the objective, so its gradient is checked
   directly, for 1, 3 and 5 rows. */
START_TEST(test_batch_mean)
{
    int rows = 1 + 2 * _i;
    int x, v, w, vw, bm, per_row;
    float in[5 * IN];
    double want = 0.0;
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    v = tu_variable(g, x, SIZE, "v");
    ck_assert_int_eq(vae_graph_param(g, "w", 1, (const int[]){SIZE}, 1.0f, &w), VAE_OK);
    ck_assert_int_eq(vae_op_mul(g, v, v, &vw), VAE_OK); /* non-linear, so rows differ */
    ck_assert_int_eq(vae_op_mul(g, vw, w, &vw), VAE_OK);
    ck_assert_int_eq(vae_op_batch_mean(g, vw, &bm), VAE_OK);
    ck_assert(!g->nodes[bm].batched);
    ck_assert_int_eq(vae_graph_node_size(g, bm), 1);
    ck_assert_int_eq(vae_op_sum(g, vw, &per_row), VAE_OK);
    m = model_with_objective(g, x, bm, per_row);
    tu_random(in, rows * IN, 210 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, rows);
    for (int i = 0; i < rows * SIZE; i++)
        want += tu_values(m, vw)[i];
    want /= rows;
    tu_expect_close(tu_values(m, bm)[0], want, "batch mean", 0);
    tu_expect_close(tu_objective(m, in, rows), want, "objective", 0);
    TU_CHECK_GRADIENT(m, in, rows);
    vae_model_free(m);
}
END_TEST

/* With two worker threads and 5 rows (split 2 + 3) each thread's batch
   mean divides by the whole batch: the objective and the gradient equal
   those of one thread. */
START_TEST(test_batch_mean_threads)
{
    enum { R = 5 };
    int x, v, n;
    float in[R * IN], *grad1, *grad2;
    double obj1, obj2;
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    v = tu_variable(g, x, SIZE, "v");
    ck_assert_int_eq(vae_op_tanh(g, v, &v), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, v));
    n = (int)m->g->n_params;
    grad1 = malloc((size_t)n * sizeof *grad1);
    grad2 = malloc((size_t)n * sizeof *grad2);
    tu_random(in, R * IN, 220, -2.0f, 2.0f);
    obj1 = tu_objective(m, in, R);
    tu_gradient(m, in, R, grad1);
    ck_assert_int_eq(vae_model_set_threads(m, 2), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    obj2 = tu_objective(m, in, R);
    ck_assert_int_eq(m->workers[0].c.rows, 2);
    ck_assert_int_eq(m->workers[1].c.rows, 3);
    tu_gradient(m, in, R, grad2);
    tu_expect_close(obj2, obj1, "objective", 0);
    for (int i = 0; i < n; i++)
        tu_expect_close(grad2[i], grad1[i], "gradient", i);
    TU_CHECK_GRADIENT(m, in, R);
    free(grad1);
    free(grad2);
    vae_model_free(m);
}
END_TEST

/* Reductions need a batched input (VAE_ERR_SHAPE otherwise); bad ids, a
   NULL graph or out give VAE_ERR_ARGUMENT. */
START_TEST(test_errors)
{
    int x, p, y = -7;
    vae_graph *g = tu_graph(IN, &x);
    ck_assert_int_eq(vae_graph_param(g, "p", 1, (const int[]){SIZE}, 1.0f, &p), VAE_OK);
    ck_assert_int_eq(vae_op_sum(g, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_mean(g, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_batch_mean(g, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_sum(g, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_mean(g, -1, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_batch_mean(g, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_sum(NULL, x, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_mean(NULL, x, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_batch_mean(NULL, x, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_sum(g, x, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_mean(g, x, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_batch_mean(g, x, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(y, -7);
    /* a batch mean is unbatched, so it cannot be reduced again */
    ck_assert_int_eq(vae_op_batch_mean(g, x, &y), VAE_OK);
    ck_assert_int_eq(vae_op_sum(g, y, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_batch_mean(g, y, &y), VAE_ERR_SHAPE);
    vae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_reduce");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_rowsum, 0, 6);
    tcase_add_loop_test(tc, test_batch_mean, 0, 3);
    tcase_add_test(tc, test_batch_mean_threads);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
