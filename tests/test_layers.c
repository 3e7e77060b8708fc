/* Layers and the ELBO: the Gaussian and Bernoulli MLPs (parameter names,
   node sizes, values, gradients), gradient checks of whole small VAEs for
   every likelihood and objective, and the -ELBO against a hand computation
   with every parameter set to a known value. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { IN = 6, HIDDEN = 5, LATENT = 3, CONTEXT = 4, ROWS = 4 };

static const double LOG_2PI = 1.8378770664093453;

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

/* The parameter node "<prefix>.<suffix>", which must exist. */
static const node *named(const vae_graph *g, const char *prefix, const char *suffix)
{
    char buf[64];
    int id;
    snprintf(buf, sizeof buf, "%s.%s", prefix, suffix);
    id = vae_graph_find(g, buf);
    ck_assert_msg(id >= 0, "no node named %s", buf);
    ck_assert_int_eq(g->nodes[id].op, OP_PARAM);
    return &g->nodes[id];
}

static int has(const vae_graph *g, const char *name) { return vae_graph_find(g, name) >= 0; }

/* Dense layer "<name>" in double: out (rows, units) = act(in (rows, k) W + b),
   act one of none, ReLU, tanh. */
static void dense_ref(const vae_graph *g, const char *name, const double *in, int rows,
                      vae_activation act, double *out)
{
    const node *w = named(g, name, "w"), *b = named(g, name, "b");
    const float *wv = g->params + w->param_offset, *bv = g->params + b->param_offset;
    int k = w->dims[0], units = w->dims[1];
    for (int r = 0; r < rows; r++)
        for (int u = 0; u < units; u++) {
            double s = bv[u];
            for (int i = 0; i < k; i++)
                s += in[r * k + i] * wv[i * units + u];
            out[r * units + u] = act == VAE_ACT_RELU ? fmax(s, 0.0)
                                 : act == VAE_ACT_TANH ? tanh(s) : s;
        }
}

static void to_double(const float *v, int n, double *out)
{
    for (int i = 0; i < n; i++)
        out[i] = v[i];
}

static void expect_node(vae_model *m, int id, const double *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        tu_expect_close(tu_values(m, id)[i], want[i], what, i);
}

/* Gaussian MLP with and without a hidden layer (_i & 1) and with and
   without a context head (_i & 2): parameters "q.hidden.*", "q.mean.*",
   "q.logvar.*", "q.context.*" exist exactly when they should, with the
   right shapes; node sizes, values and gradients of every head. */
START_TEST(test_gaussian_mlp)
{
    int hidden = (_i & 1) ? HIDDEN : 0, context = (_i & 2) ? CONTEXT : 0;
    int head_in = hidden ? hidden : IN;
    int x, mu, lv, h = -1, y;
    float in[ROWS * IN];
    double xin[ROWS * IN], t[ROWS * HIDDEN], want[ROWS * CONTEXT];
    const double *trunk = xin;
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, hidden, VAE_ACT_TANH, LATENT, context, "q", &mu,
                                            &lv, context ? &h : NULL),
                     VAE_OK);
    ck_assert_int_eq(has(g, "q.hidden.w"), hidden > 0);
    ck_assert_int_eq(has(g, "q.hidden.b"), hidden > 0);
    ck_assert_int_eq(has(g, "q.context.w"), context > 0);
    ck_assert_int_eq(has(g, "q.context.b"), context > 0);
    ck_assert_int_eq(named(g, "q", "mean.w")->dims[0], head_in);
    ck_assert_int_eq(named(g, "q", "mean.w")->dims[1], LATENT);
    ck_assert_int_eq(named(g, "q", "mean.b")->size, LATENT);
    ck_assert_int_eq(named(g, "q", "logvar.w")->dims[0], head_in);
    ck_assert_int_eq(named(g, "q", "logvar.w")->dims[1], LATENT);
    ck_assert_int_eq(named(g, "q", "logvar.b")->size, LATENT);
    ck_assert_int_eq(vae_graph_node_size(g, mu), LATENT);
    ck_assert_int_eq(vae_graph_node_size(g, lv), LATENT);
    ck_assert(mu != lv);
    if (hidden) {
        ck_assert_int_eq(named(g, "q", "hidden.w")->dims[0], IN);
        ck_assert_int_eq(named(g, "q", "hidden.w")->dims[1], HIDDEN);
    }
    if (context) {
        ck_assert_int_eq(vae_graph_node_size(g, h), CONTEXT);
        ck_assert_int_eq(named(g, "q", "context.w")->dims[0], head_in);
        ck_assert_int_eq(named(g, "q", "context.w")->dims[1], CONTEXT);
        ck_assert_int_eq(vae_op_concat(g, mu, h, &y), VAE_OK);
        ck_assert_int_eq(vae_op_concat(g, y, lv, &y), VAE_OK);
    } else
        ck_assert_int_eq(vae_op_concat(g, mu, lv, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 300 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    to_double(in, ROWS * IN, xin);
    if (hidden) {
        dense_ref(m->g, "q.hidden", xin, ROWS, VAE_ACT_TANH, t);
        trunk = t;
    }
    dense_ref(m->g, "q.mean", trunk, ROWS, VAE_ACT_NONE, want);
    expect_node(m, mu, want, ROWS * LATENT, "mu");
    dense_ref(m->g, "q.logvar", trunk, ROWS, VAE_ACT_NONE, want);
    expect_node(m, lv, want, ROWS * LATENT, "logvar");
    if (context) {
        dense_ref(m->g, "q.context", trunk, ROWS, VAE_ACT_NONE, want);
        expect_node(m, h, want, ROWS * CONTEXT, "context");
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Bernoulli MLP with and without a hidden ReLU layer: parameter names and
   shapes, logits size, values and gradients. */
START_TEST(test_bernoulli_mlp)
{
    int hidden = _i ? HIDDEN : 0;
    int z, logits;
    float in[ROWS * LATENT];
    double zin[ROWS * LATENT], t[ROWS * HIDDEN], want[ROWS * IN];
    vae_graph *g = tu_graph(LATENT, &z);
    vae_model *m;
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, z, hidden, VAE_ACT_RELU, IN, "p", &logits), VAE_OK);
    ck_assert_int_eq(vae_graph_node_size(g, logits), IN);
    ck_assert_int_eq(has(g, "p.hidden.w"), hidden > 0);
    ck_assert_int_eq(named(g, "p", "logits.w")->dims[0], hidden ? hidden : LATENT);
    ck_assert_int_eq(named(g, "p", "logits.w")->dims[1], IN);
    ck_assert_int_eq(named(g, "p", "logits.b")->size, IN);
    m = tu_model(g, z, tu_weighted_sum(g, logits));
    /* ReLU: seeds 310/311 keep every hidden pre-activation away from the
       kink by more than the finite-difference step. */
    tu_random(in, ROWS * LATENT, 310 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    to_double(in, ROWS * LATENT, zin);
    if (hidden)
        dense_ref(m->g, "p.hidden", zin, ROWS, VAE_ACT_RELU, t);
    dense_ref(m->g, "p.logits", hidden ? t : zin, ROWS, VAE_ACT_NONE, want);
    expect_node(m, logits, want, ROWS * IN, "logits");
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Nodes of a VAE built the way a host program builds one. */
typedef struct vae_ids {
    int x, mu, lv, z, logits, objective;
} vae_ids;

/* x (in) -> [Dense(hidden, ReLU)] -> mu, logvar (latent) -> z ->
   [Dense(hidden, tanh)] -> logits (in) -> vae_elbo_build; hidden 0: no
   hidden layers.  Returns a model planned for training. */
static vae_model *build_vae(int in, int hidden, int latent, vae_likelihood likelihood,
                            vae_objective objective, float beta, vae_ids *ids)
{
    vae_graph *g;
    vae_model *m = NULL;
    ck_assert_int_eq(vae_graph_create(&g, 4242), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &in, &ids->x), VAE_OK);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, ids->x, hidden, VAE_ACT_RELU, latent, 0, "q",
                                            &ids->mu, &ids->lv, NULL),
                     VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, ids->mu, ids->lv, &ids->z), VAE_OK);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, ids->z, hidden, VAE_ACT_TANH, in, "p",
                                             &ids->logits),
                     VAE_OK);
    ck_assert_int_eq(vae_elbo_build(g, ids->x, ids->mu, ids->lv, ids->z, ids->logits, likelihood,
                                    objective, beta, &ids->objective),
                     VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    return m;
}

/* The objective rebuilt from the last run's node values: KL in closed form
   from mu and logvar, recon = -ELBO - KL, then the mean over the rows of
   recon * (1 or 1/features) + beta * KL. */
static double objective_from_nodes(vae_model *m, const vae_ids *ids, vae_objective objective,
                                   double beta)
{
    const vae_graph *g = vae_model_graph(m);
    int nelbo = vae_graph_role(g, VAE_ROLE_NELBO);
    int64_t latent = vae_graph_node_size(g, ids->mu), features = vae_graph_node_size(g, ids->x);
    double w = objective == VAE_OBJECTIVE_PIXEL_MEAN ? 1.0 / (double)features : 1.0, sum = 0.0;
    for (int r = 0; r < m->workers[0].c.rows; r++) {
        double kl = 0.0, recon;
        for (int64_t i = r * latent; i < (r + 1) * latent; i++) {
            double u = tu_values(m, ids->mu)[i], v = tu_values(m, ids->lv)[i];
            kl += 0.5 * (u * u + exp(v) - 1.0 - v);
        }
        recon = tu_value(m, nelbo, r) - kl;
        sum += recon * w + beta * kl;
    }
    return sum / m->workers[0].c.rows;
}

/* The whole VAE's gradient (encoder, reparameterised sample, decoder, loss)
   for each likelihood x objective x beta in {1, 0.5}: 12 cases.  Also the
   roles vae_elbo_build sets, and the objective's weighting of its terms. */
START_TEST(test_vae_gradient)
{
    vae_likelihood likelihood = (vae_likelihood)(_i % 3);
    vae_objective objective = (vae_objective)((_i / 3) % 2);
    float beta = _i < 6 ? 1.0f : 0.5f;
    float in[ROWS * IN];
    double got;
    vae_ids ids;
    vae_model *m = build_vae(IN, HIDDEN, LATENT, likelihood, objective, beta, &ids);
    const vae_graph *g = vae_model_graph(m);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_INPUT), ids.x);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_LATENT_MEAN), ids.mu);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_LATENT_LOGVAR), ids.lv);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_LATENT), ids.z);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_LOGITS), ids.logits);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_OBJECTIVE), ids.objective);
    ck_assert_int_ge(vae_graph_role(g, VAE_ROLE_NELBO), 0);
    ck_assert_int_ge(vae_graph_role(g, VAE_ROLE_DECODED), 0);
    ck_assert_int_eq(has(g, "likelihood.logvar"), likelihood == VAE_LIKELIHOOD_GAUSSIAN_LEARNED);
    tu_random(in, ROWS * IN, 320 + (uint64_t)_i, 0.0f, 1.0f);
    got = tu_objective(m, in, ROWS); /* before reading the nodes it computes */
    tu_expect_close(got, objective_from_nodes(m, &ids, objective, beta), "objective", _i);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Parameters of the hand-computed model: 2 inputs, latent 1, no hidden
   layers. */
static const float MEAN_W[2] = {0.3f, -0.2f}, MEAN_B[1] = {0.1f};
static const float LV_W[2] = {-0.4f, 0.5f}, LV_B[1] = {-0.2f};
static const float DEC_W[2] = {1.5f, -0.7f}, DEC_B[2] = {0.2f, -0.1f};
static const float LIK_LV[2] = {-0.5f, 0.3f};

static void put(const vae_graph *g, float *params, const char *name, const float *v, int n)
{
    int id = vae_graph_find(g, name);
    ck_assert_msg(id >= 0, "no parameter %s", name);
    ck_assert_int_eq(g->nodes[id].size, n);
    for (int i = 0; i < n; i++)
        params[g->nodes[id].param_offset + i] = v[i];
}

static void set_known_params(vae_model *m)
{
    const vae_graph *g = vae_model_graph(m);
    int64_t n = vae_model_param_count(m);
    float *p = calloc((size_t)n, sizeof *p);
    ck_assert_int_eq(vae_model_params_get(m, p, n), VAE_OK);
    put(g, p, "q.mean.w", MEAN_W, 2);
    put(g, p, "q.mean.b", MEAN_B, 1);
    put(g, p, "q.logvar.w", LV_W, 2);
    put(g, p, "q.logvar.b", LV_B, 1);
    put(g, p, "p.logits.w", DEC_W, 2);
    put(g, p, "p.logits.b", DEC_B, 2);
    if (has(g, "likelihood.logvar"))
        put(g, p, "likelihood.logvar", LIK_LV, 2);
    ck_assert_int_eq(n, has(g, "likelihood.logvar") ? 12 : 10);
    ck_assert_int_eq(vae_model_params_set(m, p, n), VAE_OK);
    free(p);
}

/* -ELBO per row and the objective against a hand computation in double:
   mu and logvar from the encoder weights, z from the noise node (z - 1),
   the reconstruction term (BCE sum, or minus the Gaussian log-likelihood
   with variance 1 or the learned one), the closed-form KL, and the
   objective as the mean of recon * (1 or 1/features) + beta * KL. */
START_TEST(test_elbo_by_hand)
{
    static const struct {
        vae_likelihood likelihood;
        vae_objective objective;
        float beta;
    } cases[] = {
        {VAE_LIKELIHOOD_BERNOULLI, VAE_OBJECTIVE_ELBO, 1.0f},
        {VAE_LIKELIHOOD_BERNOULLI, VAE_OBJECTIVE_PIXEL_MEAN, 0.5f},
        {VAE_LIKELIHOOD_BERNOULLI, VAE_OBJECTIVE_ELBO, 2.0f},
        {VAE_LIKELIHOOD_BERNOULLI, VAE_OBJECTIVE_PIXEL_MEAN, 1.0f},
        {VAE_LIKELIHOOD_GAUSSIAN_UNIT, VAE_OBJECTIVE_PIXEL_MEAN, 0.5f},
        {VAE_LIKELIHOOD_GAUSSIAN_LEARNED, VAE_OBJECTIVE_ELBO, 0.5f},
    };
    enum { R = 3, F = 2 };
    const float in[R * F] = {0.0f, 1.0f, 0.8f, 0.3f, 1.0f, 0.05f};
    vae_likelihood likelihood = cases[_i].likelihood;
    double beta = cases[_i].beta, recon_weight;
    double objective = 0.0;
    vae_ids ids;
    vae_model *m = build_vae(F, 0, 1, likelihood, cases[_i].objective, cases[_i].beta, &ids);
    int nelbo = vae_graph_role(vae_model_graph(m), VAE_ROLE_NELBO);
    int decoded = vae_graph_role(vae_model_graph(m), VAE_ROLE_DECODED);
    recon_weight = cases[_i].objective == VAE_OBJECTIVE_PIXEL_MEAN ? 1.0 / F : 1.0;
    set_known_params(m);
    double got_objective = tu_objective(m, in, R);
    ck_assert_int_eq(m->g->nodes[ids.z - 1].op, OP_NOISE);
    for (int r = 0; r < R; r++) {
        const float *x = in + r * F;
        double mu = x[0] * (double)MEAN_W[0] + x[1] * (double)MEAN_W[1] + MEAN_B[0];
        double lv = x[0] * (double)LV_W[0] + x[1] * (double)LV_W[1] + LV_B[0];
        double eps = tu_values(m, ids.z - 1)[r];
        double z = mu + exp(0.5 * lv) * eps;
        double kl = 0.5 * (mu * mu + exp(lv) - 1.0 - lv), recon = 0.0;
        for (int j = 0; j < F; j++) {
            double l = z * DEC_W[j] + DEC_B[j];
            if (likelihood == VAE_LIKELIHOOD_BERNOULLI)
                recon += log1p(exp(l)) - x[j] * l;
            else {
                double v = likelihood == VAE_LIKELIHOOD_GAUSSIAN_LEARNED ? LIK_LV[j] : 0.0;
                double d = x[j] - sigmoid(l);
                recon += 0.5 * (LOG_2PI + v + d * d * exp(-v));
            }
            tu_expect_close(tu_values(m, ids.logits)[r * F + j], l, "logits", r * F + j);
            /* the training plan computes the decoded mean only when the
               Gaussian loss uses it (BCE works on the logits) */
            if (likelihood != VAE_LIKELIHOOD_BERNOULLI)
                tu_expect_close(tu_values(m, decoded)[r * F + j], sigmoid(l), "decoded", r * F + j);
        }
        tu_expect_close(tu_value(m, ids.mu, r), mu, "mu", r);
        tu_expect_close(tu_value(m, ids.lv, r), lv, "logvar", r);
        tu_expect_close(tu_value(m, ids.z, r), z, "z", r);
        tu_expect_close(tu_value(m, nelbo, r), recon + kl, "-ELBO", r);
        objective += (recon * recon_weight + beta * kl) / R;
    }
    tu_expect_close(got_objective, objective, "objective", 0);
    tu_expect_close(tu_values(m, ids.objective)[0], objective, "objective node", 0);
    vae_model_free(m);
}
END_TEST

/* Bad layer arguments give VAE_ERR_ARGUMENT, shapes that do not fit give
   VAE_ERR_SHAPE; vae_elbo_build checks its sizes, beta, objective and
   likelihood; a graph without roles cannot become a model. */
START_TEST(test_errors)
{
    int x, p, mu, lv, z, logits, small, obj = -7;
    int dims = IN;
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m = NULL;
    ck_assert_int_eq(vae_graph_param(g, "p", 1, &dims, 1.0f, &p), VAE_OK);
    /* gaussian MLP */
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, 0, VAE_ACT_NONE, LATENT, 0, "e", NULL, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, 0, VAE_ACT_NONE, LATENT, 0, "e", &mu, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, 0, VAE_ACT_NONE, LATENT, 2, "e", &mu, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, 0, VAE_ACT_NONE, LATENT, -1, "e", &mu, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, -1, VAE_ACT_NONE, LATENT, 0, "e", &mu, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, 0, VAE_ACT_NONE, 0, 0, "e", &mu, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, 99, 0, VAE_ACT_NONE, LATENT, 0, "e", &mu, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(NULL, x, 0, VAE_ACT_NONE, LATENT, 0, "e", &mu, &lv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, p, 0, VAE_ACT_NONE, LATENT, 0, "e", &mu, &lv, NULL),
                     VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, p, 3, VAE_ACT_NONE, LATENT, 0, "e", &mu, &lv, NULL),
                     VAE_ERR_SHAPE);
    /* bernoulli MLP */
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, x, 0, VAE_ACT_NONE, 0, "d", &logits),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, x, 0, VAE_ACT_NONE, IN, "d", NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, x, -2, VAE_ACT_NONE, IN, "d", &logits),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, p, 0, VAE_ACT_NONE, IN, "d", &logits),
                     VAE_ERR_SHAPE);
    /* a graph with no roles is not a model */
    ck_assert_int_eq(vae_model_create(&m, g), VAE_ERR_STATE);
    ck_assert_ptr_null(m);
    /* vae_elbo_build */
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, 0, VAE_ACT_NONE, LATENT, 0, "q", &mu, &lv, NULL),
                     VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, z, 0, VAE_ACT_NONE, IN, "p", &logits), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, z, IN - 1, VAE_ACT_NONE, "small", &small), VAE_OK);
#define ELBO(xx, mm, ll, zz, lg, lik, objv, beta, out)                                         \
    vae_elbo_build(g, xx, mm, ll, zz, lg, (vae_likelihood)(lik), (vae_objective)(objv), beta, out)
    ck_assert_int_eq(ELBO(x, mu, lv, z, small, 0, 0, 1.0f, &obj), VAE_ERR_SHAPE);
    ck_assert_int_eq(ELBO(x, mu, lv, logits, logits, 0, 0, 1.0f, &obj), VAE_ERR_SHAPE);
    ck_assert_int_eq(ELBO(x, mu, logits, z, logits, 0, 0, 1.0f, &obj), VAE_ERR_SHAPE);
    ck_assert_int_eq(ELBO(x, mu, p, z, logits, 0, 0, 1.0f, &obj), VAE_ERR_SHAPE);
    ck_assert_int_eq(ELBO(x, mu, lv, z, 99, 0, 0, 1.0f, &obj), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(ELBO(x, mu, lv, z, logits, 0, 0, -1.0f, &obj), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(ELBO(x, mu, lv, z, logits, 0, 0, NAN, &obj), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(ELBO(x, mu, lv, z, logits, 0, 7, 1.0f, &obj), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(ELBO(x, mu, lv, z, logits, 9, 0, 1.0f, &obj), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(ELBO(x, mu, lv, z, logits, 0, 0, 1.0f, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(obj, -7);
    ck_assert_int_eq(ELBO(x, mu, lv, z, logits, 0, 0, 1.0f, &obj), VAE_OK);
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_OBJECTIVE), obj);
#undef ELBO
    vae_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_gaussian_mlp, 0, 4);
    tcase_add_loop_test(tc, test_bernoulli_mlp, 0, 2);
    tcase_add_loop_test(tc, test_vae_gradient, 0, 12);
    tcase_add_loop_test(tc, test_elbo_by_hand, 0, 6);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
