/* Inverse autoregressive flows: MADE masks, the Jacobian of a step, its
   log-determinant, gradients, the ELBO with a flow, and masks that stay
   zero through training, parameter setting and files. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IN = 4, LATENT = 5, CONTEXT = 3, HIDDEN = 8, MAX_STEPS = 3 };

#define LOG_2PI 1.8378770664093453

/* x -> mu, logvar, h (dense) -> z0 = sample -> `steps` IAF steps with
   alternating order.  per_row: weighted sum of z_K plus the log-dets. */
typedef struct flow_net {
    vae_model *m;
    int x, mu, lv, h, noise, z0, z[MAX_STEPS], log_det[MAX_STEPS], steps;
} flow_net;

static flow_net make_flow(int steps, int with_context)
{
    flow_net f = {.steps = steps};
    vae_graph *g = tu_graph(IN, &f.x);
    int z, per_row;
    f.mu = tu_variable(g, f.x, LATENT, "mu");
    f.lv = tu_variable(g, f.x, LATENT, "lv");
    f.h = with_context ? tu_variable(g, f.x, CONTEXT, "h") : -1;
    ck_assert_int_eq(vae_op_sample_normal(g, f.mu, f.lv, &f.z0), VAE_OK);
    f.noise = g->nodes[f.z0].in[2];
    z = f.z0;
    for (int s = 0; s < steps; s++) {
        char name[16];
        snprintf(name, sizeof name, "iaf%d", s);
        ck_assert_int_eq(vae_layer_iaf_step(g, z, f.h, HIDDEN, s % 2, name, &f.z[s],
                                            &f.log_det[s]), VAE_OK);
        z = f.z[s];
    }
    per_row = tu_weighted_sum(g, z);
    for (int s = 0; s < steps; s++)
        ck_assert_int_eq(vae_op_add(g, per_row, f.log_det[s], &per_row), VAE_OK);
    f.m = tu_model(g, f.x, per_row);
    return f;
}

/* One row forward with noise eps given: z_K and the summed log-dets. */
static double flow_forward(const flow_net *f, const float *x, const float *eps, float *z_out)
{
    exec_ctx *c = &f->m->workers[0].c;
    double log_det = 0.0;
    vae__split_rows(f->m, 0, 1, 1, 0);
    memcpy(c->val[f->x], x, IN * sizeof *x);
    memcpy(c->val[f->noise], eps, LATENT * sizeof *eps);
    vae__forward(f->m, &f->m->plans[PLAN_TRAIN], c);
    memcpy(z_out, c->val[f->z[f->steps - 1]], LATENT * sizeof *z_out);
    for (int s = 0; s < f->steps; s++)
        log_det += c->val[f->log_det[s]][0];
    return log_det;
}

/* dz_K/dz_0 by central differences: z0 = mu + sigma eps, so a step of
   d / sigma_j in eps_j moves z0_j by d. */
static void numeric_jacobian(const flow_net *f, const float *x, const float *eps,
                             double jac[LATENT][LATENT])
{
    const double d = 1e-2;
    float e[LATENT], up[LATENT], down[LATENT], z[LATENT], sigma[LATENT];
    flow_forward(f, x, eps, z);
    for (int j = 0; j < LATENT; j++)
        sigma[j] = expf(0.5f * f->m->workers[0].c.val[f->lv][j]);
    for (int j = 0; j < LATENT; j++) {
        memcpy(e, eps, sizeof e);
        e[j] = eps[j] + (float)(d / sigma[j]);
        flow_forward(f, x, e, up);
        e[j] = eps[j] - (float)(d / sigma[j]);
        flow_forward(f, x, e, down);
        for (int i = 0; i < LATENT; i++)
            jac[i][j] = ((double)up[i] - down[i]) / (2.0 * d);
    }
}

/* log |det a| by Gaussian elimination with partial pivoting. */
static double log_abs_det(double a[LATENT][LATENT])
{
    double sum = 0.0;
    for (int k = 0; k < LATENT; k++) {
        int p = k;
        for (int i = k + 1; i < LATENT; i++)
            if (fabs(a[i][k]) > fabs(a[p][k]))
                p = i;
        for (int j = 0; j < LATENT; j++) {
            double t = a[k][j];
            a[k][j] = a[p][j];
            a[p][j] = t;
        }
        sum += log(fabs(a[k][k]));
        for (int i = k + 1; i < LATENT; i++) {
            double r = a[i][k] / a[k][k];
            for (int j = k; j < LATENT; j++)
                a[i][j] -= r * a[k][j];
        }
    }
    return sum;
}

static const float X[IN] = {0.1f, 0.9f, 0.4f, 0.6f};
static const float EPS[LATENT] = {0.3f, -1.1f, 0.8f, 0.05f, -0.4f};

/* One step: output i depends on z0_j only for j before i in the step's
   order (exactly zero otherwise), the diagonal is the gate in (0, 1), and
   log |det| of the numerical Jacobian is the reported log-determinant.
   Two steps in opposite orders: not triangular, but log |det| adds up. */
START_TEST(test_jacobian_and_log_det)
{
    int steps = 1 + _i;
    flow_net f = make_flow(steps, 1);
    double jac[LATENT][LATENT], diag_sum = 0.0, log_det;
    float z[LATENT];
    numeric_jacobian(&f, X, EPS, jac);
    log_det = flow_forward(&f, X, EPS, z);
    if (steps == 1) {
        for (int i = 0; i < LATENT; i++) {
            for (int j = i + 1; j < LATENT; j++)
                ck_assert_msg(jac[i][j] == 0.0, "dz'%d/dz%d = %g, not 0", i, j, jac[i][j]);
            ck_assert(jac[i][i] > 0.0 && jac[i][i] < 1.0);
            diag_sum += log(jac[i][i]);
        }
        ck_assert_double_eq_tol(diag_sum, log_det, 1e-3);
    } else {
        int below = 0;
        for (int i = 0; i < LATENT; i++)
            for (int j = i + 1; j < LATENT; j++)
                below += jac[i][j] != 0.0;
        ck_assert_int_gt(below, 0);
    }
    ck_assert_double_eq_tol(log_abs_det(jac), log_det, 1e-3);
    vae_model_free(f.m);
}
END_TEST

/* The second step alone, in reversed order: output i of dz2/dz1 depends
   only on the inputs after it. */
START_TEST(test_reversed_step_order)
{
    flow_net f = make_flow(2, 1);
    exec_ctx *c = &f.m->workers[0].c;
    float z1[LATENT], up[LATENT], down[LATENT], base[LATENT];
    flow_forward(&f, X, EPS, base);
    memcpy(z1, c->val[f.z[0]], sizeof z1);
    /* perturb z1 directly by rerunning only the second step's nodes */
    for (int j = 0; j < LATENT; j++) {
        for (int sign = 0; sign < 2; sign++) {
            const plan *p = &f.m->plans[PLAN_TRAIN];
            flow_forward(&f, X, EPS, base);
            c->val[f.z[0]][j] = z1[j] + (sign ? -1e-2f : 1e-2f);
            for (int k = 0; k < p->count; k++)
                if (p->nodes[k] > f.z[0])
                    vae__ops[f.m->g->nodes[p->nodes[k]].op]->forward(f.m->g->nodes, p->nodes[k], c);
            memcpy(sign ? down : up, c->val[f.z[1]], sizeof up);
        }
        for (int i = j + 1; i < LATENT; i++)
            ck_assert_msg(up[i] == down[i], "reversed step: dz2_%d/dz1_%d is not 0", i, j);
        ck_assert(up[j] != down[j]);
    }
    vae_model_free(f.m);
}
END_TEST

static int count_nonzero_masked(const vae_model *m)
{
    const vae_graph *g = vae_model_graph(m);
    int count = 0;
    float *copy = malloc((size_t)g->n_params * sizeof *copy);
    memcpy(copy, g->params, (size_t)g->n_params * sizeof *copy);
    vae__graph_apply_masks((vae_graph *)g);
    for (int64_t i = 0; i < g->n_params; i++)
        count += copy[i] != g->params[i];
    memcpy(g->params, copy, (size_t)g->n_params * sizeof *copy);
    free(copy);
    return count;
}

/* A masked weight moved by the gradient check: its gradient is zero by
   design (the optimizer never moves it), so it is skipped. */
static int masked_weight_moved(void *ctx, vae_model *m)
{
    (void)ctx;
    return count_nonzero_masked(m) > 0;
}

static void check_gradient_unmasked(vae_model *m, const float *x, int rows)
{
    int64_t skipped = 0;
    double ratio = tu_gradcheck_skipping(m, x, rows, 1e-3, 2e-3, masked_weight_moved, NULL,
                                         &skipped);
    ck_assert_msg(ratio <= 1.0, "gradient check failed: ratio %g", ratio);
    ck_assert_int_gt(skipped, 0);
}

/* The log-weight plan on the rows and noise of the last tu_objective. */
static void run_log_weight(vae_model *m)
{
    vae__forward(m, &m->plans[PLAN_LOG_WEIGHT], &m->workers[0].c);
}

/* Every parameter of two steps (with and without context), and through
   the dense layers that make mu, logvar and h, the gradients of z and h. */
START_TEST(test_iaf_gradients)
{
    flow_net f = make_flow(2, _i);
    float x[3 * IN];
    tu_random(x, 3 * IN, 5, 0.0f, 1.0f);
    check_gradient_unmasked(f.m, x, 3);
    vae_model_free(f.m);
}
END_TEST

/* The degrees of vae.h: hidden k has k mod (L-1) + 1. */
START_TEST(test_mask_pattern)
{
    /* L = 4 inputs, 6 hidden units of degrees 1 2 3 1 2 3 */
    static const char in_natural[4][7] = {"111111", "011011", "001001", "000000"};
    static const char in_reversed[4][7] = {"000000", "001001", "011011", "111111"};
    /* hidden (rows) to 4 outputs (cols) */
    static const char out_natural[6][5] = {"0111", "0011", "0001", "0111", "0011", "0001"};
    static const char out_reversed[6][5] = {"1110", "1100", "1000", "1110", "1100", "1000"};
    for (int reversed = 0; reversed < 2; reversed++) {
        vae_graph *g = NULL;
        int x, t, w_in, w_out, a, b, dims_in[2] = {4, 6}, dims_out[2] = {6, 4};
        const float *p;
        ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
        ck_assert_int_eq(vae_graph_input(g, "x", 1, &dims_in[0], &x), VAE_OK);
        ck_assert_int_eq(vae_graph_input(g, "t", 1, &dims_in[1], &t), VAE_OK);
        ck_assert_int_eq(vae_graph_param(g, "in", 2, dims_in, 1.0f, &w_in), VAE_OK);
        ck_assert_int_eq(vae_graph_param(g, "out", 2, dims_out, 1.0f, &w_out), VAE_OK);
        ck_assert_int_eq(vae_op_made_matmul(g, x, w_in, VAE_MADE_INPUT_TO_HIDDEN, reversed, &a),
                         VAE_OK);
        ck_assert_int_eq(vae_op_made_matmul(g, t, w_out, VAE_MADE_HIDDEN_TO_OUTPUT, reversed, &b),
                         VAE_OK);
        p = g->params + g->nodes[w_in].param_offset;
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 6; k++)
                ck_assert_int_eq(p[i * 6 + k] != 0.0f,
                                 (reversed ? in_reversed : in_natural)[i][k] == '1');
        p = g->params + g->nodes[w_out].param_offset;
        for (int k = 0; k < 6; k++)
            for (int j = 0; j < 4; j++)
                ck_assert_int_eq(p[k * 4 + j] != 0.0f,
                                 (reversed ? out_reversed : out_natural)[k][j] == '1');
        vae_graph_free(g);
    }
}
END_TEST

START_TEST(test_made_errors)
{
    vae_graph *g = NULL;
    int x, w, y, out = -7, dims[2] = {4, 6};
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &dims[0], &x), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "w", 2, dims, 1.0f, &w), VAE_OK);
    ck_assert_int_eq(vae_op_matmul(g, x, w, &y), VAE_OK);
    /* the weight must be a parameter */
    ck_assert_int_eq(vae_op_made_matmul(g, x, y, VAE_MADE_INPUT_TO_HIDDEN, 0, &out),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_made_matmul(g, x, w, (vae_made_mask)2, 0, &out), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_made_matmul(g, x, w, VAE_MADE_INPUT_TO_HIDDEN, 2, &out),
                     VAE_ERR_ARGUMENT);
    /* a weight another node already uses */
    ck_assert_int_eq(vae_op_made_matmul(g, x, w, VAE_MADE_INPUT_TO_HIDDEN, 0, &out),
                     VAE_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "already used"));
    ck_assert_int_eq(vae_graph_param(g, "w2", 2, dims, 1.0f, &w), VAE_OK);
    ck_assert_int_eq(vae_op_made_matmul(g, w, w, VAE_MADE_INPUT_TO_HIDDEN, 0, &out),
                     VAE_ERR_SHAPE);
    ck_assert_int_eq(out, -7);
    /* a failing layer adds nothing */
    {
        int n = vae_graph_node_count(g), z_out = -7, ld = -7;
        ck_assert_int_eq(vae_layer_iaf_step(g, x, w, 8, 0, "f", &z_out, &ld), VAE_ERR_SHAPE);
        ck_assert_int_eq(vae_layer_iaf_step(g, x, -1, 0, 0, "f", &z_out, &ld), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(vae_layer_iaf_step(g, x, -1, 8, 3, "f", &z_out, &ld), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(vae_layer_iaf_step(g, x, -1, 8, 0, "f", NULL, &ld), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(vae_graph_node_count(g), n);
        ck_assert_int_eq(z_out, -7);
    }
    vae_graph_free(g);
}
END_TEST

/* A small Bernoulli VAE with a context and `steps` IAF steps. */
typedef struct flow_vae {
    vae_model *m;
    int x, mu, lv, h, noise, z0, z, log_det, logits;
} flow_vae;

static flow_vae make_flow_vae(int steps, uint64_t seed)
{
    enum { PIXELS = 6 };
    flow_vae v = {.log_det = -1};
    vae_graph *g = NULL;
    int in = PIXELS, enc, loss;
    ck_assert_int_eq(vae_graph_create(&g, seed), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &in, &v.x), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, v.x, 7, VAE_ACT_TANH, "enc", &enc), VAE_OK);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, enc, 0, VAE_ACT_NONE, LATENT, CONTEXT, "q", &v.mu,
                                            &v.lv, &v.h), VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, v.mu, v.lv, &v.z0), VAE_OK);
    v.noise = g->nodes[v.z0].in[2];
    v.z = v.z0;
    for (int s = 0; s < steps; s++) {
        char name[16];
        int ld;
        snprintf(name, sizeof name, "iaf%d", s);
        ck_assert_int_eq(vae_layer_iaf_step(g, v.z, v.h, HIDDEN, s % 2, name, &v.z, &ld), VAE_OK);
        if (v.log_det < 0)
            v.log_det = ld;
        else
            ck_assert_int_eq(vae_op_add(g, v.log_det, ld, &v.log_det), VAE_OK);
    }
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, v.z, 7, VAE_ACT_TANH, PIXELS, "p", &v.logits),
                     VAE_OK);
    ck_assert_int_eq(vae_elbo_build_flow(g, v.x, v.mu, v.lv, v.z0, v.z, v.log_det, v.logits,
                                         VAE_LIKELIHOOD_BERNOULLI, VAE_OBJECTIVE_ELBO, 1.0f,
                                         &loss), VAE_OK);
    ck_assert_int_eq(vae_model_create(&v.m, g), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(v.m, 1), VAE_OK);
    return v;
}

static float softplus(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

/* -ELBO per row = BCE + log N(z0; mu, sigma) - log_det - log N(z; 0, I),
   computed here from the nodes' values; the log weight is its negative. */
START_TEST(test_flow_elbo_value)
{
    flow_vae v = make_flow_vae(2, 3);
    const vae_graph *g = vae_model_graph(v.m);
    float x[2 * 6];
    tu_random(x, 2 * 6, 9, 0.0f, 1.0f);
    tu_objective(v.m, x, 2);
    run_log_weight(v.m);
    for (int r = 0; r < 2; r++) {
        const exec_ctx *c = &v.m->workers[0].c;
        double bce = 0.0, log_q = 0.0, log_p = 0.0, expected;
        for (int i = 0; i < 6; i++) {
            float l = c->val[v.logits][r * 6 + i];
            bce += softplus(l) - x[r * 6 + i] * l;
        }
        for (int i = 0; i < LATENT; i++) {
            float e = c->val[v.noise][r * LATENT + i], lv = c->val[v.lv][r * LATENT + i];
            float z = c->val[v.z][r * LATENT + i];
            log_q += -0.5 * (e * e + lv + LOG_2PI);
            log_p += -0.5 * (z * z + LOG_2PI);
        }
        expected = bce + log_q - c->val[v.log_det][r] - log_p;
        ck_assert_double_eq_tol(tu_value(v.m, g->roles[VAE_ROLE_NELBO], r), expected, 1e-4);
        ck_assert_double_eq_tol(tu_value(v.m, g->roles[VAE_ROLE_LOG_WEIGHT], r), -expected, 1e-4);
    }
    vae_model_free(v.m);
}
END_TEST

/* Gradients of the whole VAE with a flow: encoder, context, steps, decoder. */
START_TEST(test_flow_vae_gradients)
{
    flow_vae v = make_flow_vae(2, 4);
    float x[3 * 6];
    tu_random(x, 3 * 6, 11, 0.0f, 1.0f);
    check_gradient_unmasked(v.m, x, 3);
    vae_model_free(v.m);
}
END_TEST

/* Without a flow the log weight is log p(x|z) + log p(z) - log q(z|x) at the
   sampled z (not the analytic-KL -ELBO). */
START_TEST(test_plain_log_weight)
{
    vae_model *m = tu_small_vae(6, 7, LATENT, VAE_ACT_TANH, 2);
    const vae_graph *g = vae_model_graph(m);
    int z = g->roles[VAE_ROLE_LATENT], noise = g->nodes[z].in[2];
    int mu = g->roles[VAE_ROLE_LATENT_MEAN], lv = g->roles[VAE_ROLE_LATENT_LOGVAR];
    float x[6];
    double kl = 0.0, log_qp = 0.0, nelbo, log_w;
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    tu_random(x, 6, 3, 0.0f, 1.0f);
    tu_objective(m, x, 1);
    run_log_weight(m);
    for (int i = 0; i < LATENT; i++) {
        const exec_ctx *c = &m->workers[0].c;
        float e = c->val[noise][i], l = c->val[lv][i], u = c->val[mu][i], zi = c->val[z][i];
        log_qp += -0.5 * (e * e + l) + 0.5 * zi * zi;
        kl += 0.5 * (u * u + expf(l) - 1.0 - l);
    }
    nelbo = tu_value(m, g->roles[VAE_ROLE_NELBO], 0);
    log_w = tu_value(m, g->roles[VAE_ROLE_LOG_WEIGHT], 0);
    /* both share the reconstruction term: -ELBO - KL = -log w - (log q - log p) */
    ck_assert_double_eq_tol(nelbo - kl, -log_w - log_qp, 1e-4);
    vae_model_free(m);
}
END_TEST

/* Masked weights stay exactly zero through training, vae_model_params_set
   and a save/load round trip, which also keeps the step's outputs. */
START_TEST(test_masks_held)
{
    flow_vae v = make_flow_vae(2, 5);
    vae_optimizer *opt = NULL;
    vae_model *loaded = NULL;
    vae_tensor *x = NULL;
    int64_t dims[2] = {4, 6}, n = vae_model_param_count(v.m);
    float *ones = malloc((size_t)n * sizeof *ones);
    char path[] = "/tmp/vae_test_flow_XXXXXX";
    double before, after;
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(vae_tensor_create(&x, 2, dims), VAE_OK);
    tu_random(vae_tensor_data(x), 24, 6, 0.0f, 1.0f);
    ck_assert_int_eq(vae_optimizer_create(&opt, v.m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(count_nonzero_masked(v.m), 0);
    for (int s = 0; s < 20; s++)
        ck_assert_int_eq(vae_model_train_step(v.m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(count_nonzero_masked(v.m), 0);
    for (int64_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    ck_assert_int_eq(vae_model_params_set(v.m, ones, n), VAE_OK);
    ck_assert_int_eq(count_nonzero_masked(v.m), 0);
    /* round trip */
    ck_assert_int_eq(vae_model_save(v.m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&loaded, path), VAE_OK);
    ck_assert_int_eq(count_nonzero_masked(loaded), 0);
    ck_assert_int_eq(vae_model_log_likelihood(v.m, NULL, 1, 1, NULL, NULL, &before, NULL),
                     VAE_ERR_ARGUMENT);
    {
        vae_dataset *ds = NULL;
        int row = 6;
        ck_assert_int_eq(vae_dataset_from_f32(&ds, 4, 1, &row, vae_tensor_data(x), NULL), VAE_OK);
        ck_assert_int_eq(vae_model_log_likelihood(v.m, ds, 7, 3, NULL, NULL, &before, NULL), VAE_OK);
        ck_assert_int_eq(vae_model_log_likelihood(loaded, ds, 7, 3, NULL, NULL, &after, NULL),
                         VAE_OK);
        ck_assert_double_eq(before, after);
        vae_dataset_free(ds);
    }
    unlink(path);
    free(ones);
    vae_tensor_free(x);
    vae_optimizer_free(opt);
    vae_model_free(loaded);
    vae_model_free(v.m);
}
END_TEST

/* The live ranges the optimizer visits are exactly the weights no mask
   holds at zero, in order and without overlap. */
START_TEST(test_live_ranges)
{
    flow_vae v = make_flow_vae(3, 7);
    vae_graph *g = v.m->g;
    int64_t n = g->n_params, at = 0, live_count = 0;
    float *saved = malloc((size_t)n * sizeof *saved);
    memcpy(saved, g->params, (size_t)n * sizeof *saved);
    for (int64_t i = 0; i < n; i++)
        g->params[i] = 1.0f;
    vae__graph_apply_masks(g);
    for (int64_t r = 0; r < v.m->n_live; r++) {
        int64_t start = v.m->live[2 * r], end = v.m->live[2 * r + 1];
        ck_assert_int_gt(end, start);
        for (; at < start; at++)
            ck_assert_msg(g->params[at] == 0.0f, "parameter %lld is live but skipped", (long long)at);
        for (; at < end; at++)
            ck_assert_msg(g->params[at] == 1.0f, "parameter %lld is masked but visited", (long long)at);
        live_count += end - start;
    }
    for (; at < n; at++)
        ck_assert(g->params[at] == 0.0f);
    ck_assert_int_lt(live_count, n);
    memcpy(g->params, saved, (size_t)n * sizeof *saved);
    free(saved);
    vae_model_free(v.m);
}
END_TEST

/* A model big enough for the split products (784-256-32, two steps of
   256): at batch 32 two threads run one worker whose products are split by
   columns.  Two such runs give the same weights bit for bit, and they
   agree with one thread's to rounding (a column slice may take another
   BLAS kernel than the whole product). */
static float *train_big(int threads, int steps, int64_t *count)
{
    enum { PIXELS = 784, ROWS = 32 };
    vae_graph *g = NULL;
    vae_model *m = NULL;
    vae_optimizer *opt = NULL;
    vae_tensor *x = NULL;
    int64_t dims[2] = {ROWS, PIXELS};
    float *params;
    g = tu_flow_graph(PIXELS, 256, 32, 64, 11);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_int_eq(vae_model_set_threads(m, threads), VAE_OK);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 1e-3), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&x, 2, dims), VAE_OK);
    tu_random(vae_tensor_data(x), ROWS * PIXELS, 12, 0.0f, 1.0f);
    for (int s = 0; s < steps; s++)
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    *count = vae_model_param_count(m);
    params = malloc((size_t)*count * sizeof *params);
    ck_assert_int_eq(vae_model_params_get(m, params, *count), VAE_OK);
    vae_tensor_free(x);
    vae_optimizer_free(opt);
    vae_model_free(m);
    return params;
}

START_TEST(test_split_products_agree)
{
    int64_t n, moved = 0;
    float *init = train_big(1, 0, &n), *one = train_big(1, 5, &n), *two = train_big(2, 5, &n);
    float *again = train_big(2, 5, &n);
    ck_assert_int_eq(memcmp(two, again, (size_t)n * sizeof *two), 0);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(fabsf(one[i] - two[i]) <= 1e-5f + 1e-5f * fabsf(one[i]),
                      "parameter %lld: %g on one thread, %g on two", (long long)i, one[i], two[i]);
        moved += one[i] != init[i];
    }
    ck_assert_int_gt(moved, n / 2); /* training moved the weights */
    free(init);
    free(one);
    free(two);
    free(again);
}
END_TEST

/* Reconstruction runs the flow at the base mean (noise zero). */
START_TEST(test_reconstruct_through_flow)
{
    flow_vae v = make_flow_vae(1, 6);
    vae_tensor *x = NULL, *out = NULL;
    int64_t dims[2] = {1, 6};
    float eps0[LATENT] = {0};
    const exec_ctx *c;
    ck_assert_int_eq(vae_tensor_create(&x, 2, dims), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&out, 2, dims), VAE_OK);
    tu_random(vae_tensor_data(x), 6, 8, 0.0f, 1.0f);
    ck_assert_int_eq(vae_model_reconstruct(v.m, x, out), VAE_OK);
    /* the training forward with zero noise gives the same decoded mean */
    vae__split_rows(v.m, 0, 1, 1, 0);
    c = &v.m->workers[0].c;
    memcpy(c->val[v.x], vae_tensor_data(x), 6 * sizeof(float));
    memcpy(c->val[v.noise], eps0, sizeof eps0);
    vae__forward(v.m, &v.m->plans[PLAN_TRAIN], &v.m->workers[0].c);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(vae_tensor_data(out)[i],
                               1.0f / (1.0f + expf(-c->val[v.logits][i])), 1e-6f);
    vae_tensor_free(x);
    vae_tensor_free(out);
    vae_model_free(v.m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flow");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_jacobian_and_log_det, 0, 2);
    tcase_add_test(tc, test_reversed_step_order);
    tcase_add_loop_test(tc, test_iaf_gradients, 0, 2);
    tcase_add_test(tc, test_mask_pattern);
    tcase_add_test(tc, test_made_errors);
    tcase_add_test(tc, test_flow_elbo_value);
    tcase_add_test(tc, test_flow_vae_gradients);
    tcase_add_test(tc, test_plain_log_weight);
    tcase_add_test(tc, test_masks_held);
    tcase_add_test(tc, test_reconstruct_through_flow);
    tcase_add_test(tc, test_live_ranges);
    tcase_add_test(tc, test_split_products_agree);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
