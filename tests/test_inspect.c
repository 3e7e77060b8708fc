/* Looking inside a model (issue 10): nodes, parameters by name, the
   summary and the DOT diagram, and where a loaded model came from. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 4, HIDDEN = 3, LATENT = 2 };

/* The summary (or diagram) as a malloc'ed string, through the two-call
   protocol: ask for the size, then fill a buffer of exactly that size. */
static char *summary_of(const vae_model *m)
{
    size_t need = 0;
    char *buf;
    ck_assert_int_eq(vae_model_summary(m, NULL, 0, &need), VAE_OK);
    buf = malloc(need);
    ck_assert_int_eq(vae_model_summary(m, buf, need, NULL), VAE_OK);
    ck_assert_uint_eq(strlen(buf) + 1, need);
    return buf;
}

static char *dot_of(const vae_graph *g)
{
    size_t need = 0;
    char *buf;
    ck_assert_int_eq(vae_graph_dot(g, NULL, 0, &need), VAE_OK);
    buf = malloc(need);
    ck_assert_int_eq(vae_graph_dot(g, buf, need, &need), VAE_OK);
    ck_assert_uint_eq(strlen(buf) + 1, need);
    return buf;
}

/* "Total parameters: 1,234" as a number. */
static int64_t summary_total(const char *s)
{
    const char *p = strstr(s, "Total parameters: ");
    int64_t v = 0;
    ck_assert_ptr_nonnull(p);
    for (p += strlen("Total parameters: "); *p == ',' || (*p >= '0' && *p <= '9'); p++)
        if (*p != ',')
            v = 10 * v + (*p - '0');
    return v;
}

/* Every node of the small VAE: kinds, names, operations, inputs, roles. */
START_TEST(test_nodes)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 1);
    const vae_graph *g = vae_model_graph(m);
    int x = vae_graph_find(g, "x"), w = vae_graph_find(g, "enc.w"), in[VAE_MAX_NODE_INPUTS];
    int mu = vae_graph_role(g, VAE_ROLE_LATENT_MEAN), z = vae_graph_role(g, VAE_ROLE_LATENT);
    int matmul = -1, noise = 0, counts[4] = {0};
    ck_assert_int_eq(vae_graph_node_kind(g, x), VAE_NODE_INPUT);
    ck_assert_str_eq(vae_graph_node_op(g, x), "input");
    ck_assert_int_eq(vae_graph_node_role(g, x), VAE_ROLE_INPUT);
    ck_assert_int_eq(vae_graph_node_batched(g, x), 1);
    ck_assert_int_eq(vae_graph_node_kind(g, w), VAE_NODE_PARAM);
    ck_assert_str_eq(vae_graph_node_name(g, w), "enc.w");
    ck_assert_int_eq(vae_graph_node_batched(g, w), 0);
    ck_assert_int_eq(vae_graph_node_role(g, w), -1);
    for (int id = 0; id < vae_graph_node_count(g); id++) {
        counts[vae_graph_node_kind(g, id)]++;
        if (matmul < 0 && strcmp(vae_graph_node_op(g, id), "matmul") == 0)
            matmul = id;
    }
    /* x; enc, q.mean, q.logvar, p.hidden, p.logits: 5 weights + 5 biases */
    ck_assert_int_eq(counts[VAE_NODE_INPUT], 1);
    ck_assert_int_eq(counts[VAE_NODE_PARAM], 10);
    ck_assert_int_eq(counts[VAE_NODE_NOISE], 1);
    ck_assert_int_eq(vae_graph_node_inputs(g, matmul, in), 2);
    ck_assert(in[0] == x && in[1] == w); /* the first dense reads x and enc.w */
    ck_assert_int_eq(vae_graph_node_kind(g, matmul), VAE_NODE_COMPUTED);
    ck_assert_ptr_null(vae_graph_node_name(g, matmul));
    ck_assert_str_eq(vae_graph_node_op(g, z), "sample_normal");
    ck_assert_int_eq(vae_graph_node_inputs(g, z, in), 3);
    ck_assert_int_eq(in[0], mu);
    noise = in[2];
    ck_assert_int_eq(vae_graph_node_kind(g, noise), VAE_NODE_NOISE);
    ck_assert_str_eq(vae_graph_node_op(g, vae_graph_role(g, VAE_ROLE_OBJECTIVE)), "batch_mean");
    ck_assert_int_eq(vae_graph_node_batched(g, vae_graph_role(g, VAE_ROLE_OBJECTIVE)), 0);
    /* no such node, no graph */
    ck_assert_int_eq(vae_graph_node_kind(g, 9999), -1);
    ck_assert_ptr_null(vae_graph_node_op(g, -1));
    ck_assert_ptr_null(vae_graph_node_name(NULL, 0));
    ck_assert_int_eq(vae_graph_node_inputs(g, 9999, in), -1);
    ck_assert_int_eq(vae_graph_node_inputs(g, x, NULL), -1);
    ck_assert_int_eq(vae_graph_node_batched(g, 9999), -1);
    ck_assert_int_eq(vae_graph_node_role(NULL, 0), -1);
    vae_model_free(m);
}
END_TEST

/* One layer set by name: it reads back bit for bit, and the encoder's
   output becomes what the formula gives by hand. */
START_TEST(test_param_by_name)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 2);
    float ew[IN * HIDDEN], eb[HIDDEN], mw[HIDDEN * LATENT], mb[LATENT], back[IN * HIDDEN];
    float x[2 * IN] = {0.1f, 0.9f, 0.4f, 0.0f, 1.0f, 0.2f, 0.3f, 0.7f}, got[2 * LATENT];
    int64_t xd[2] = {2, IN}, md[2] = {2, LATENT};
    vae_tensor *xt = NULL, *mt = NULL;
    tu_random(ew, IN * HIDDEN, 3, -1.0f, 1.0f);
    tu_random(eb, HIDDEN, 4, -0.5f, 0.5f);
    tu_random(mw, HIDDEN * LATENT, 5, -1.0f, 1.0f);
    tu_random(mb, LATENT, 6, -0.5f, 0.5f);
    ck_assert_int_eq(vae_model_param_set(m, "enc.w", ew, IN * HIDDEN), VAE_OK);
    ck_assert_int_eq(vae_model_param_set(m, "enc.b", eb, HIDDEN), VAE_OK);
    ck_assert_int_eq(vae_model_param_set(m, "q.mean.w", mw, HIDDEN * LATENT), VAE_OK);
    ck_assert_int_eq(vae_model_param_set(m, "q.mean.b", mb, LATENT), VAE_OK);
    ck_assert_int_eq(vae_model_param_get(m, "enc.w", back, IN * HIDDEN), VAE_OK);
    ck_assert_mem_eq(back, ew, sizeof ew);
    ck_assert_int_eq(vae_tensor_from_host(&xt, 2, xd, x), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&mt, 2, md), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, xt, mt, NULL), VAE_OK);
    ck_assert_int_eq(vae_tensor_copy_to_host(mt, got, 2 * LATENT), VAE_OK);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < LATENT; j++) {
            double mu = mb[j];
            for (int k = 0; k < HIDDEN; k++) {
                double h = eb[k];
                for (int i = 0; i < IN; i++)
                    h += (double)x[r * IN + i] * ew[i * HIDDEN + k];
                mu += (h > 0.0 ? h : 0.0) * mw[k * LATENT + j];
            }
            tu_expect_close(got[r * LATENT + j], mu, "mu by hand", r * LATENT + j);
        }
    /* refusals leave the parameter as it was */
    back[0] = NAN;
    ck_assert_int_eq(vae_model_param_set(m, "enc.w", back, IN * HIDDEN), VAE_ERR_NOT_FINITE);
    ck_assert_int_eq(vae_model_param_set(m, "enc.w", ew, IN * HIDDEN - 1), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_param_set(m, "x", x, IN), VAE_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "not a parameter"));
    ck_assert_int_eq(vae_model_param_get(m, "nothing", back, 1), VAE_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "'nothing'"));
    ck_assert_int_eq(vae_model_param_get(m, "enc.w", NULL, IN * HIDDEN), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_param_get(m, "enc.w", back, IN * HIDDEN), VAE_OK);
    ck_assert_mem_eq(back, ew, sizeof ew);
    vae_tensor_free(xt);
    vae_tensor_free(mt);
    vae_model_free(m);
}
END_TEST

/* A MADE weight set by name keeps its masked zeros. */
START_TEST(test_param_set_keeps_masks)
{
    vae_graph *g = NULL;
    vae_model *m = NULL;
    int dims[2] = {3, 4}, x, w, y, s, loss, three = 3;
    float ones[12], back[12];
    int zeros = 0;
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &three, &x), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "made.w", 2, dims, 1.0f, &w), VAE_OK);
    ck_assert_int_eq(vae_op_made_matmul(g, x, w, VAE_MADE_INPUT_TO_HIDDEN, 0, &y), VAE_OK);
    ck_assert_int_eq(vae_op_sum(g, y, &s), VAE_OK);
    m = tu_model(g, x, s);
    (void)loss;
    for (int i = 0; i < 12; i++)
        ones[i] = 1.0f;
    ck_assert_int_eq(vae_model_param_set(m, "made.w", ones, 12), VAE_OK);
    ck_assert_int_eq(vae_model_param_get(m, "made.w", back, 12), VAE_OK);
    for (int i = 0; i < 12; i++) {
        ck_assert(back[i] == 0.0f || back[i] == 1.0f);
        zeros += back[i] == 0.0f;
    }
    ck_assert_int_gt(zeros, 0);
    vae_model_free(m);
}
END_TEST

/* The summary of the small VAE: its lines, totals and the buffer rules. */
START_TEST(test_summary)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 1);
    char *s = summary_of(m), small[16] = "untouched";
    size_t need = 0;
    ck_assert_int_eq(summary_total(s), vae_model_param_count(m));
    ck_assert_ptr_nonnull(strstr(s, "enc "));
    ck_assert_ptr_nonnull(strstr(s, "dense, relu"));
    ck_assert_ptr_nonnull(strstr(s, "q.mean"));
    ck_assert_ptr_nonnull(strstr(s, "(batch, 2)"));
    ck_assert_ptr_nonnull(strstr(s, "sample_normal"));
    ck_assert_ptr_nonnull(strstr(s, "loss"));
    ck_assert_ptr_nonnull(strstr(s, "Latent size: 2; likelihood: Bernoulli; input (batch, 4)"));
    ck_assert_ptr_nonnull(strstr(s, "Memory for batches of 256 on 1 thread(s)"));
    ck_assert_int_eq(vae_model_summary(m, small, sizeof small, &need), VAE_ERR_ARGUMENT);
    ck_assert_uint_eq(need, strlen(s) + 1);
    ck_assert_str_eq(small, "untouched");
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "needs"));
    ck_assert_int_eq(vae_model_summary(m, NULL, 10, &need), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_summary(NULL, NULL, 0, &need), VAE_ERR_ARGUMENT);
    /* planning nothing: the summary allocates no plan */
    ck_assert_int_eq(vae_model_planned_bytes(m), 0);
    free(s);
    vae_model_free(m);
}
END_TEST

/* The reference networks' shapes, small: the summary's total is the
   parameter count (every parameter on exactly one line), for a conv VAE
   with a learned variance and for a flow VAE with a context. */
START_TEST(test_summary_totals)
{
    vae_graph *g = NULL;
    vae_model *m = NULL;
    int dims[3] = {1, 8, 8}, x, t, mu, lv, z, logits, loss;
    int small[3] = {4, 4, 4};
    char *s;
    /* R2-like */
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 3, dims, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_conv2d(g, x, 4, 3, 2, VAE_PADDING_SAME, VAE_ACT_RELU, "conv", &t),
                     VAE_OK);
    ck_assert_int_eq(vae_op_reshape(g, t, 1, (int[]){64}, &t), VAE_OK);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, t, 8, VAE_ACT_RELU, 2, 0, "q", &mu, &lv, NULL), VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, z, 64, VAE_ACT_RELU, "dec", &t), VAE_OK);
    ck_assert_int_eq(vae_op_reshape(g, t, 3, small, &t), VAE_OK);
    ck_assert_int_eq(vae_layer_conv2d_transpose(g, t, 1, 3, 2, VAE_PADDING_SAME, VAE_ACT_NONE,
                                                "deconv", &logits), VAE_OK);
    ck_assert_int_eq(vae_elbo_build(g, x, mu, lv, z, logits, VAE_LIKELIHOOD_GAUSSIAN_LEARNED,
                                    VAE_OBJECTIVE_PIXEL_MEAN, 0.5f, &loss), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    s = summary_of(m);
    ck_assert_int_eq(summary_total(s), vae_model_param_count(m));
    ck_assert_ptr_nonnull(strstr(s, "conv2d, relu"));
    ck_assert_ptr_nonnull(strstr(s, "(batch, 4, 4, 4)"));
    ck_assert_ptr_nonnull(strstr(s, "likelihood: Gaussian, learned variance"));
    free(s);
    vae_model_free(m);
    /* R3-like */
    g = tu_flow_graph(16, 10, 4, 6, 1);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    s = summary_of(m);
    ck_assert_int_eq(summary_total(s), vae_model_param_count(m));
    ck_assert_ptr_nonnull(strstr(s, "masked dense"));
    ck_assert_ptr_nonnull(strstr(s, "iaf_gate"));
    free(s);
    vae_model_free(m);
}
END_TEST

/* The diagram: one DOT node per graph node, one edge per input, roles
   marked, names escaped. */
START_TEST(test_dot)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 1);
    const vae_graph *g = vae_model_graph(m);
    vae_graph *odd = NULL;
    char *d = dot_of(g), line[64];
    int edges = 0, nodes = 0, in[VAE_MAX_NODE_INPUTS], x;
    for (int id = 0; id < vae_graph_node_count(g); id++) {
        int n = vae_graph_node_inputs(g, id, in);
        for (int k = 0; k < n; k++)
            edges += in[k] >= 0;
        snprintf(line, sizeof line, "  n%d [label=", id);
        nodes += strstr(d, line) != NULL;
    }
    ck_assert_int_eq(nodes, vae_graph_node_count(g));
    {
        int arrows = 0;
        for (const char *p = d; (p = strstr(p, " -> ")) != NULL; p += 4)
            arrows++;
        ck_assert_int_eq(arrows, edges);
    }
    ck_assert(strncmp(d, "digraph vae {", 13) == 0);
    ck_assert_ptr_nonnull(strstr(d, "x: x\\n"));
    ck_assert_ptr_nonnull(strstr(d, "mu: "));
    ck_assert_ptr_nonnull(strstr(d, "z: sample_normal"));
    ck_assert_ptr_nonnull(strstr(d, "loss: batch_mean"));
    free(d);
    /* a name with quotes and a backslash */
    ck_assert_int_eq(vae_graph_create(&odd, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(odd, "a\"b\\c", 1, (int[]){2}, &x), VAE_OK);
    d = dot_of(odd);
    ck_assert_ptr_nonnull(strstr(d, "a\\\"b\\\\c"));
    free(d);
    vae_graph_free(odd);
    ck_assert_int_eq(vae_graph_dot(NULL, NULL, 0, NULL), VAE_ERR_ARGUMENT);
    vae_model_free(m);
}
END_TEST

/* Where a model came from: built (0, NULL), saved and loaded by this
   version (2, "0.3.0"). */
START_TEST(test_file_origin)
{
    const char *path = "test_inspect_origin.vae";
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 1), *l = NULL;
    ck_assert_int_eq(vae_model_file_format(m), 0);
    ck_assert_ptr_null(vae_model_file_writer(m));
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_int_eq(vae_model_file_format(l), 2);
    ck_assert_str_eq(vae_model_file_writer(l), VAE_VERSION_STRING);
    ck_assert_int_eq(vae_model_file_format(NULL), 0);
    remove(path);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_nodes);
    tcase_add_test(tc, test_param_by_name);
    tcase_add_test(tc, test_param_set_keeps_masks);
    tcase_add_test(tc, test_summary);
    tcase_add_test(tc, test_summary_totals);
    tcase_add_test(tc, test_dot);
    tcase_add_test(tc, test_file_origin);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
