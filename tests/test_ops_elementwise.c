/* Element-wise add, mul (batched and broadcast second operand), scale and
   concat: forward values against double references, backward against
   central differences, and the shape checks. */
#include "testutil.h"

#include <math.h>

enum { ROWS = 3, IN = 4, SIZE = 5 };

/* y = a (op) b for add (_i even) and mul (_i odd), with b batched
   (_i < 2) or an unbatched parameter broadcast over the rows (_i >= 2).
   Both operands depend on parameters, so both gradients are checked; the
   broadcast one sums over the rows. */
START_TEST(test_binary)
{
    int is_mul = _i & 1, broadcast = _i >> 1;
    int x, a, b, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    a = tu_variable(g, x, SIZE, "a");
    b = broadcast ? tu_vector_param(g, "bvec", SIZE) : tu_variable(g, x, SIZE, "b");
    ck_assert_int_eq((is_mul ? vae_op_mul : vae_op_add)(g, a, b, &y), VAE_OK);
    ck_assert(g->nodes[y].batched);
    ck_assert_int_eq(vae_graph_node_size(g, y), SIZE);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 60 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < SIZE; i++) {
            double va = tu_values(m, a)[r * SIZE + i];
            double vb = tu_values(m, b)[broadcast ? i : r * SIZE + i];
            tu_expect_close(tu_values(m, y)[r * SIZE + i], is_mul ? va * vb : va + vb,
                         is_mul ? "mul" : "add", r * SIZE + i);
        }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* a * a and a + a: one node as both operands gets both contributions to
   its gradient (2 a dy and 2 dy). */
START_TEST(test_same_operand)
{
    int x, a, sq, twice, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    a = tu_variable(g, x, SIZE, "a");
    ck_assert_int_eq(vae_op_mul(g, a, a, &sq), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, a, a, &twice), VAE_OK);
    ck_assert_int_eq(vae_op_concat(g, sq, twice, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 70, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int i = 0; i < ROWS * SIZE; i++) {
        double va = tu_values(m, a)[i];
        tu_expect_close(tu_values(m, sq)[i], va * va, "a*a", i);
        tu_expect_close(tu_values(m, twice)[i], 2 * va, "a+a", i);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* scale multiplies every element by a constant, on a batched node and on
   an unbatched parameter (then broadcast by mul); gradients of both. */
START_TEST(test_scale)
{
    static const float factors[3] = {-1.7f, 0.25f, 3.0f};
    float f = factors[_i];
    int x, a, p, sa, sp, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    a = tu_variable(g, x, SIZE, "a");
    p = tu_vector_param(g, "p", SIZE);
    ck_assert_int_eq(vae_op_scale(g, a, f, &sa), VAE_OK);
    ck_assert_int_eq(vae_op_scale(g, p, f, &sp), VAE_OK);
    ck_assert(g->nodes[sa].batched);
    ck_assert(!g->nodes[sp].batched);
    ck_assert_int_eq(vae_op_mul(g, sa, sp, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 80 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int i = 0; i < ROWS * SIZE; i++)
        tu_expect_close(tu_values(m, sa)[i], (double)f * tu_values(m, a)[i], "scale", i);
    for (int i = 0; i < SIZE; i++)
        tu_expect_close(tu_values(m, sp)[i], (double)f * tu_values(m, p)[i], "scale param", i);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* concat puts the rows of a (3 wide) then b (4 wide) side by side; the
   gradient splits back to both halves. */
START_TEST(test_concat)
{
    enum { NA = 3, NB = 4 };
    int x, a, b, y;
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    a = tu_variable(g, x, NA, "a");
    b = tu_variable(g, x, NB, "b");
    ck_assert_int_eq(vae_op_concat(g, a, b, &y), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, y), NA + NB);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 90 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < NA + NB; i++) {
            double want = i < NA ? tu_values(m, a)[r * NA + i] : tu_values(m, b)[r * NB + i - NA];
            ck_assert_msg(tu_values(m, y)[r * (NA + NB) + i] == (float)want,
                          "concat row %d column %d", r, i);
        }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Operands that do not fit give VAE_ERR_SHAPE; bad ids, a NULL graph or
   out, and a non-finite factor give VAE_ERR_ARGUMENT. */
START_TEST(test_errors)
{
    int x, a, b6, p, p6, y = -7;
    vae_graph *g = tu_graph(IN, &x);
    a = tu_variable(g, x, SIZE, "a");
    b6 = tu_variable(g, x, SIZE + 1, "b");
    p = tu_vector_param(g, "p", SIZE);
    p6 = tu_vector_param(g, "p6", SIZE + 1);
    /* row sizes differ, batched or broadcast */
    ck_assert_int_eq(vae_op_add(g, a, b6, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_mul(g, a, b6, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_add(g, a, p6, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_mul(g, a, p6, &y), VAE_ERR_SHAPE);
    /* only the second operand may be unbatched */
    ck_assert_int_eq(vae_op_add(g, p, a, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_mul(g, p, a, &y), VAE_ERR_SHAPE);
    /* concat takes batched nodes only */
    ck_assert_int_eq(vae_op_concat(g, a, p, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_concat(g, p, a, &y), VAE_ERR_SHAPE);
    /* arguments */
    ck_assert_int_eq(vae_op_add(NULL, a, a, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_add(g, a, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_add(g, -1, a, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_add(g, a, a, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_mul(g, 99, a, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_mul(g, a, a, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_scale(g, 99, 2.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_scale(NULL, a, 2.0f, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_scale(g, a, 2.0f, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_scale(g, a, NAN, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_scale(g, a, INFINITY, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_scale(g, a, -INFINITY, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_concat(g, a, 99, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_concat(NULL, a, a, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_concat(g, a, a, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(y, -7);
    vae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_elementwise");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_binary, 0, 4);
    tcase_add_test(tc, test_same_operand);
    tcase_add_loop_test(tc, test_scale, 0, 3);
    tcase_add_loop_test(tc, test_concat, 0, 3);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
