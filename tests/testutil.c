#include "testutil.h"

#include <dirent.h>
#include <unistd.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double ATOL = 2e-3, RTOL = 2e-2;

vae_graph *tu_graph(int in_size, int *x)
{
    vae_graph *g = NULL;
    ck_assert_int_eq(vae_graph_create(&g, 12345), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &in_size, x), VAE_OK);
    return g;
}

int tu_variable(vae_graph *g, int x, int size, const char *name)
{
    int out;
    ck_assert_int_eq(vae_layer_dense(g, x, size, VAE_ACT_NONE, name, &out), VAE_OK);
    return out;
}

int tu_weighted_sum(vae_graph *g, int y)
{
    int dims[1] = {(int)g->nodes[y].size}, w, yw, out;
    char name[32]; /* names are unique in a graph */
    snprintf(name, sizeof name, "weights.%d", g->n_nodes);
    ck_assert_int_eq(vae_graph_param(g, name, 1, dims, 1.0f, &w), VAE_OK);
    ck_assert_int_eq(vae_op_mul(g, y, w, &yw), VAE_OK);
    ck_assert_int_eq(vae_op_sum(g, yw, &out), VAE_OK);
    return out;
}

vae_model *tu_model(vae_graph *g, int x, int per_row)
{
    vae_model *m = NULL;
    int obj;
    ck_assert_int_eq(vae_op_batch_mean(g, per_row, &obj), VAE_OK);
    for (int r = 0; r < VAE_ROLE_COUNT_; r++) /* the roles since 0.3 are optional */
        g->roles[r] = r < VAE_ROLE_RECON ? x : -1;
    g->roles[VAE_ROLE_OBJECTIVE] = obj;
    g->roles[VAE_ROLE_NELBO] = per_row;
    g->roles[VAE_ROLE_LOG_WEIGHT] = per_row;
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    return m;
}

static double run(vae_model *m, const float *x, int rows, int backward)
{
    batch_job job = {.m = m, .p = &m->plans[PLAN_TRAIN], .rows = rows, .feed = x,
                     .backward = backward, .out_node = {-1, -1}};
    vae_rng rng;
    double obj = 0.0;
    ck_assert_int_le(rows, m->max_batch);
    vae__split_rows(m, 0, rows, rows, 0);
    vae__rng_seed(&rng, 7);
    vae__fill_noise(m, job.p, &rng);
    vae__run_batch(&job);
    for (int t = 0; t < m->threads; t++)
        obj += m->workers[t].objective;
    return obj;
}

double tu_objective(vae_model *m, const float *x, int rows) { return run(m, x, rows, 0); }

void tu_gradient(vae_model *m, const float *x, int rows, float *grad)
{
    run(m, x, rows, 1);
    memcpy(grad, m->workers[0].c.param_grad, (size_t)m->g->n_params * sizeof *grad);
    for (int t = 1; t < m->threads; t++)
        for (int64_t i = 0; i < m->g->n_params; i++)
            grad[i] += m->workers[t].c.param_grad[i];
    vae__clear_gradients(m); /* as a training step leaves them */
}

double tu_gradcheck_skipping(vae_model *m, const float *x, int rows, double step, double atol,
                             tu_skip_fn skip, void *ctx, int64_t *skipped)
{
    int64_t n = m->g->n_params, worst_i = -1;
    float *analytic = malloc((size_t)n * sizeof *analytic), *p = m->g->params;
    double worst = 0.0, worst_a = 0, worst_n = 0;
    if (skipped)
        *skipped = 0;
    tu_gradient(m, x, rows, analytic);
    for (int64_t i = 0; i < n; i++) {
        float saved = p[i];
        double up, down, numeric, ratio;
        int crossed = 0;
        p[i] = saved + (float)step;
        up = tu_objective(m, x, rows);
        crossed |= skip && skip(ctx, m);
        p[i] = saved - (float)step;
        down = tu_objective(m, x, rows);
        crossed |= skip && skip(ctx, m);
        p[i] = saved;
        if (crossed) {
            if (skipped)
                (*skipped)++;
            continue;
        }
        numeric = (up - down) / (2.0 * step);
        ratio = fabs(analytic[i] - numeric) /
                (atol + RTOL * fmax(fabs(analytic[i]), fabs(numeric)));
        if (!(ratio <= worst)) {
            worst = isnan(ratio) ? INFINITY : ratio;
            worst_i = i;
            worst_a = analytic[i];
            worst_n = numeric;
        }
    }
    if (worst > 1.0)
        fprintf(stderr, "gradient check: parameter %lld analytic %.6g numeric %.6g\n",
                (long long)worst_i, worst_a, worst_n);
    free(analytic);
    return worst;
}

double tu_gradcheck(vae_model *m, const float *x, int rows, double step)
{
    return tu_gradcheck_skipping(m, x, rows, step, ATOL, NULL, NULL, NULL);
}

void tu_expect_close(double got, double want, const char *what, int i)
{
    ck_assert_msg(fabs(got - want) <= 1e-5 * (1.0 + fabs(want)), "%s[%d]: got %.9g, want %.9g",
                  what, i, got, want);
}

const float *tu_values(vae_model *m, int id) { return m->workers[0].c.val[id]; }

int tu_vector_param(vae_graph *g, const char *name, int size)
{
    int id;
    ck_assert_int_eq(vae_graph_param(g, name, 1, &size, 1.0f, &id), VAE_OK);
    return id;
}

void tu_random(float *v, int64_t n, uint64_t seed, float lo, float hi)
{
    vae_rng rng;
    vae__rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)vae__rng_uniform(&rng);
}

float tu_value(vae_model *m, int id, int r)
{
    int t = 0;
    while (t + 1 < m->threads && r >= m->workers[t].hi)
        t++;
    return m->workers[t].c.val[id][(int64_t)(r - m->workers[t].lo) * m->g->nodes[id].size];
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

vae_graph *tu_small_graph(int in, int hidden, int latent, vae_activation decoder_act,
                          vae_likelihood likelihood, uint64_t seed)
{
    vae_graph *g = NULL;
    int x, h, mu, lv, z, logits, loss;
    ck_assert_int_eq(vae_graph_create(&g, seed), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &in, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, x, hidden, VAE_ACT_RELU, "enc", &h), VAE_OK);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, latent, 0, "q", &mu, &lv, NULL),
                     VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, z, hidden, decoder_act, in, "p", &logits), VAE_OK);
    ck_assert_int_eq(vae_elbo_build(g, x, mu, lv, z, logits, likelihood, VAE_OBJECTIVE_ELBO, 1.0f,
                                    &loss), VAE_OK);
    return g;
}

vae_model *tu_small_vae(int in, int hidden, int latent, vae_activation decoder_act, uint64_t seed)
{
    vae_graph *g = tu_small_graph(in, hidden, latent, decoder_act, VAE_LIKELIHOOD_BERNOULLI, seed);
    vae_model *m = NULL;
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    return m;
}

vae_graph *tu_flow_graph(int in, int hidden, int latent, int context, uint64_t seed)
{
    vae_graph *g = NULL;
    int x, mu, lv, h, z0, z, ld, ld2, logits, loss;
    ck_assert_int_eq(vae_graph_create(&g, seed), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &in, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, x, hidden, VAE_ACT_TANH, latent, context, "q", &mu,
                                            &lv, &h), VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z0), VAE_OK);
    ck_assert_int_eq(vae_layer_iaf_step(g, z0, h, hidden, 0, "f0", &z, &ld), VAE_OK);
    ck_assert_int_eq(vae_layer_iaf_step(g, z, h, hidden, 1, "f1", &z, &ld2), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, ld, ld2, &ld), VAE_OK);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, z, hidden, VAE_ACT_TANH, in, "p", &logits), VAE_OK);
    ck_assert_int_eq(vae_elbo_build_flow(g, x, mu, lv, z0, z, ld, logits, VAE_LIKELIHOOD_BERNOULLI,
                                         VAE_OBJECTIVE_ELBO, 1.0f, &loss), VAE_OK);
    return g;
}

void tu_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}
