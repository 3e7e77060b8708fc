/* Steering training (issue 11): frozen parameters, the KL weight at run
   time, the reconstruction and KL terms apart. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 6, HIDDEN = 5, LATENT = 2, ROWS = 32 };
/* A fixture file written by 0.2.0, beside this source file. */
static const char *fixture(const char *name)
{
    static char path[4096];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*s/fixtures/0.2.0/%s", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".", name);
    return path;
}

static vae_tensor *make_rows(void)
{
    int64_t dims[2] = {ROWS, IN};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, 2, dims), VAE_OK);
    tu_random(vae_tensor_data(t), ROWS * IN, 7, 0.0f, 1.0f);
    return t;
}

static float *param(const vae_model *m, const char *name, int64_t *n)
{
    const vae_graph *g = vae_model_graph(m);
    float *p;
    *n = vae_graph_node_size(g, vae_graph_find(g, name));
    p = malloc(sizeof(float) * (size_t)*n);
    ck_assert_int_eq(vae_model_param_get(m, name, p, *n), VAE_OK);
    return p;
}

/* The offset of a parameter in the flat array (and so in the moments). */
static int64_t offset_of(const vae_model *m, const char *name)
{
    return m->g->nodes[vae_graph_find(m->g, name)].param_offset;
}

/* The encoder frozen: its bytes and its Adam moments are the same after
   100 steps, while the decoder trains; unfrozen, it trains too. */
START_TEST(test_freeze_encoder)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 3);
    vae_optimizer *opt = NULL;
    vae_tensor *x = make_rows();
    const char *frozen[] = {"enc.w", "enc.b", "q.mean.w", "q.mean.b", "q.logvar.w", "q.logvar.b"};
    float *before[6], *moments[6][2], *dec_before, *after;
    int64_t n[6], nd, count = 0;
    int matched = 0;
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 1e-2), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK); /* moments not zero */
    ck_assert_int_eq(vae_model_freeze(m, "enc", 1, &matched), VAE_OK);
    ck_assert_int_eq(matched, 2);
    ck_assert_int_eq(vae_model_freeze(m, "q", 1, &matched), VAE_OK);
    ck_assert_int_eq(matched, 4);
    ck_assert_int_eq(vae_model_param_frozen(m, "enc.w"), 1);
    ck_assert_int_eq(vae_model_param_frozen(m, "p.logits.w"), 0);
    ck_assert_int_eq(vae_model_param_frozen(m, "x"), -1);
    for (int i = 0; i < 6; i++) {
        int64_t at = offset_of(m, frozen[i]);
        before[i] = param(m, frozen[i], &n[i]);
        count += n[i];
        for (int k = 0; k < 2; k++) {
            float *src = k ? opt->moment2 : opt->moment1;
            moments[i][k] = malloc(sizeof(float) * (size_t)n[i]);
            memcpy(moments[i][k], src + at, sizeof(float) * (size_t)n[i]);
        }
    }
    dec_before = param(m, "p.logits.w", &nd);
    for (int step = 0; step < 100; step++)
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    for (int i = 0; i < 6; i++) {
        int64_t at = offset_of(m, frozen[i]);
        after = param(m, frozen[i], &n[i]);
        ck_assert_mem_eq(after, before[i], sizeof(float) * (size_t)n[i]);
        ck_assert_mem_eq(opt->moment1 + at, moments[i][0], sizeof(float) * (size_t)n[i]);
        ck_assert_mem_eq(opt->moment2 + at, moments[i][1], sizeof(float) * (size_t)n[i]);
        free(after);
    }
    after = param(m, "p.logits.w", &nd);
    ck_assert(memcmp(after, dec_before, sizeof(float) * (size_t)nd) != 0); /* the decoder trained */
    /* no gradient was made for the frozen layer */
    ck_assert_ptr_null(m->workers[0].c.grad[vae_graph_find(m->g, "enc.w")]);
    ck_assert_ptr_nonnull(m->workers[0].c.grad[vae_graph_find(m->g, "p.logits.w")]);
    for (int64_t i = 0; i < n[0]; i++)
        ck_assert(m->workers[0].c.param_grad[offset_of(m, "enc.w") + i] == 0.0f);
    free(after);
    /* unfrozen, the encoder trains again */
    ck_assert_int_eq(vae_model_freeze(m, "enc", 0, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    after = param(m, "enc.w", &n[0]);
    ck_assert(memcmp(after, before[0], sizeof(float) * (size_t)n[0]) != 0);
    ck_assert_int_eq(vae_model_param_frozen(m, "enc.w"), 0);
    ck_assert_int_eq(vae_model_param_frozen(m, "q.mean.w"), 1);
    free(after);
    for (int i = 0; i < 6; i++) {
        free(before[i]);
        free(moments[i][0]);
        free(moments[i][1]);
    }
    free(dec_before);
    ck_assert_int_gt(count, 0);
    vae_tensor_free(x);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

/* Prefixes match whole name parts; nothing matched is an error; the
   frozen set comes back from a file and keeps the layer still. */
START_TEST(test_freeze_prefix_and_file)
{
    const char *path = "test_steering_frozen.vae";
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 4), *l = NULL;
    vae_optimizer *opt = NULL, *r = NULL;
    vae_tensor *x = make_rows();
    float *before, *after;
    int64_t n;
    int matched = -1;
    ck_assert_int_eq(vae_model_freeze(m, "en", 1, &matched), VAE_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "'en'"));
    ck_assert_int_eq(matched, -1);
    ck_assert_int_eq(vae_model_freeze(m, "", 1, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_freeze(NULL, "enc", 1, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_freeze(m, "q.", 1, &matched), VAE_OK); /* q.mean.*, q.logvar.* */
    ck_assert_int_eq(matched, 4);
    ck_assert_int_eq(vae_model_freeze(m, "p.logits.w", 1, &matched), VAE_OK);
    ck_assert_int_eq(matched, 1);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_int_eq(vae_model_param_frozen(l, "q.mean.w"), 1);
    ck_assert_int_eq(vae_model_param_frozen(l, "p.logits.w"), 1);
    ck_assert_int_eq(vae_model_param_frozen(l, "p.logits.b"), 0);
    ck_assert_int_eq(vae_optimizer_restore(&r, l), VAE_OK);
    before = param(l, "q.logvar.w", &n);
    for (int step = 0; step < 5; step++)
        ck_assert_int_eq(vae_model_train_step(l, r, x, NULL, NULL), VAE_OK);
    after = param(l, "q.logvar.w", &n);
    ck_assert_mem_eq(after, before, sizeof(float) * (size_t)n);
    remove(path);
    free(before);
    free(after);
    vae_tensor_free(x);
    vae_optimizer_free(opt);
    vae_optimizer_free(r);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

/* beta changes the objective by beta times the mean KL and nothing else;
   the terms add up to -ELBO per row; a file keeps the last beta. */
START_TEST(test_beta_at_run_time)
{
    const char *path = "test_steering_beta.vae";
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 5), *l = NULL;
    vae_tensor *x = make_rows();
    const vae_graph *g = vae_model_graph(m);
    int recon = vae_graph_role(g, VAE_ROLE_RECON), kl = vae_graph_role(g, VAE_ROLE_KL);
    int nelbo = vae_graph_role(g, VAE_ROLE_NELBO);
    double obj[3], mean_kl = 0.0;
    const double betas[3] = {0.0, 1.0, 2.5};
    ck_assert_int_ge(recon, 0);
    ck_assert_int_ge(kl, 0);
    ck_assert_double_eq(vae_model_beta(m), 1.0);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(vae_model_set_beta(m, betas[i]), VAE_OK);
        obj[i] = tu_objective(m, vae_tensor_data(x), ROWS);
    }
    for (int r = 0; r < ROWS; r++) {
        double sum = (double)tu_value(m, recon, r) + tu_value(m, kl, r);
        tu_expect_close(sum, tu_value(m, nelbo, r), "recon + KL = -ELBO", r);
        mean_kl += tu_value(m, kl, r) / ROWS;
    }
    ck_assert_double_gt(mean_kl, 0.0);
    tu_expect_close(obj[1] - obj[0], mean_kl, "beta 1 adds the mean KL", 0);
    tu_expect_close(obj[2] - obj[0], 2.5 * mean_kl, "beta 2.5 adds 2.5 mean KL", 0);
    ck_assert_int_eq(vae_model_set_beta(m, -1.0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_beta(m, NAN), VAE_ERR_ARGUMENT);
    ck_assert_double_eq(vae_model_beta(m), 2.5);
    ck_assert_int_eq(vae_model_set_beta(m, 0.125), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_double_eq(vae_model_beta(l), 0.125);
    vae_model_free(l);
    /* a graph of 0.2 has no weighted KL node */
    ck_assert_int_eq(vae_model_load(&l, fixture("dense.vae")), VAE_OK);
    ck_assert_int_eq(vae_model_set_beta(l, 0.5), VAE_ERR_UNSUPPORTED);
    ck_assert(isnan(vae_model_beta(l)));
    remove(path);
    vae_model_free(l);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

static vae_dataset *make_data(void)
{
    vae_tensor *x = make_rows();
    vae_dataset *ds = NULL;
    int dims[1] = {IN};
    ck_assert_int_eq(vae_dataset_from_f32(&ds, ROWS, 1, dims, vae_tensor_data(x), NULL), VAE_OK);
    vae_tensor_free(x);
    return ds;
}

static int stop_after_two(void *user, int batch, int batches, float objective)
{
    (void)user, (void)batches, (void)objective;
    return batch >= 2;
}

/* Evaluation reports the terms apart and -ELBO per image: they agree
   with the mean; an epoch resumed from a file mid-way records the same
   terms as one never stopped. */
START_TEST(test_terms)
{
    const char *path = "test_steering_terms.vae";
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 6), *l = NULL, *u = NULL;
    vae_optimizer *opt = NULL, *r = NULL, *uo = NULL;
    vae_dataset *ds = make_data();
    float per_image[ROWS], untouched[ROWS];
    double nelbo, recon, kl, plain, sum = 0.0;
    ck_assert_int_eq(vae_model_evaluate_terms(m, ds, &nelbo, &recon, &kl, per_image), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(m, ds, &plain), VAE_OK);
    ck_assert_double_eq(nelbo, plain);
    tu_expect_close(recon + kl, nelbo, "recon + KL", 0);
    ck_assert_double_gt(kl, 0.0);
    for (int i = 0; i < ROWS; i++)
        sum += per_image[i];
    tu_expect_close(sum / ROWS, nelbo, "mean of the per-image -ELBO", 0);
    ck_assert_int_eq(vae_model_evaluate_terms(m, NULL, &nelbo, NULL, NULL, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_evaluate_terms(NULL, ds, &nelbo, NULL, NULL, NULL), VAE_ERR_ARGUMENT);

    /* an epoch stopped after two batches, saved, loaded and finished ... */
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK); /* the same start for both */
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 8, stop_after_two, NULL, NULL, NULL),
                     VAE_ERR_STOPPED);
    ck_assert_int_eq(vae_model_save(m, opt, "test_steering_terms_mid.vae"), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, "test_steering_terms_mid.vae"), VAE_OK);
    ck_assert_int_eq(vae_optimizer_restore(&r, l), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(l, r, ds, 8, NULL, NULL, NULL, NULL), VAE_OK);
    /* ... against one never stopped */
    ck_assert_int_eq(vae_model_load(&u, path), VAE_OK);
    ck_assert_int_eq(vae_optimizer_restore(&uo, u), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(u, uo, ds, 8, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_double_eq(vae_model_history_get(l, 1, "train_recon"),
                        vae_model_history_get(u, 1, "train_recon"));
    ck_assert_double_eq(vae_model_history_get(l, 1, "train_kl"),
                        vae_model_history_get(u, 1, "train_kl"));
    tu_expect_close(vae_model_history_get(u, 1, "train_recon") +
                        vae_model_history_get(u, 1, "train_kl"),
                    vae_model_history_get(u, 1, "train_nelbo"), "epoch terms", 1);
    /* a 0.2 graph has no terms to report, and says so; outputs untouched */
    vae_model_free(l);
    l = NULL;
    for (int i = 0; i < ROWS; i++)
        untouched[i] = -1.0f;
    ck_assert_int_eq(vae_model_load(&l, fixture("dense.vae")), VAE_OK);
    {
        vae_dataset *small = NULL;
        int d16 = 16;
        float v[16 * 4];
        tu_random(v, 16 * 4, 2, 0.0f, 1.0f);
        ck_assert_int_eq(vae_dataset_from_f32(&small, 4, 1, &d16, v, NULL), VAE_OK);
        ck_assert_int_eq(vae_model_evaluate_terms(l, small, &nelbo, &recon, NULL, untouched),
                         VAE_ERR_UNSUPPORTED);
        ck_assert_float_eq(untouched[0], -1.0f);
        ck_assert_int_eq(vae_model_evaluate_terms(l, small, &nelbo, NULL, NULL, untouched), VAE_OK);
        ck_assert_float_ne(untouched[0], -1.0f);
        vae_dataset_free(small);
    }
    remove(path);
    remove("test_steering_terms_mid.vae");
    vae_dataset_free(ds);
    vae_optimizer_free(opt);
    vae_optimizer_free(r);
    vae_optimizer_free(uo);
    vae_model_free(m);
    vae_model_free(l);
    vae_model_free(u);
}
END_TEST

/* n copies of one latent point. */
static vae_tensor *same_z(int n)
{
    int64_t dims[2] = {n, LATENT};
    vae_tensor *z = NULL;
    ck_assert_int_eq(vae_tensor_create(&z, 2, dims), VAE_OK);
    for (int i = 0; i < n; i++) {
        vae_tensor_data(z)[i * LATENT] = 0.3f;
        vae_tensor_data(z)[i * LATENT + 1] = -0.7f;
    }
    return z;
}

/* Draws from p(x|z): Bernoulli draws are 0 or 1 and their mean is the
   decoded sigmoid within its standard error; Gaussian draws (learned
   variance) have the decoded mean and the variance exp(logvar). */
START_TEST(test_decode_sample)
{
    enum { DRAWS = 4000 };
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 8), *gm = NULL;
    vae_tensor *z = same_z(DRAWS), *mean = NULL, *draws = NULL, *before = NULL;
    int64_t xd[2] = {DRAWS, IN};
    float logvar[IN];
    ck_assert_int_eq(vae_tensor_create(&mean, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&draws, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, mean), VAE_OK);
    ck_assert_int_eq(vae_model_decode_sample(m, z, 11, draws), VAE_OK);
    for (int j = 0; j < IN; j++) {
        double p = vae_tensor_data(mean)[j], avg = 0.0;
        for (int i = 0; i < DRAWS; i++) {
            float v = vae_tensor_data(draws)[i * IN + j];
            ck_assert(v == 0.0f || v == 1.0f);
            avg += v / DRAWS;
        }
        ck_assert_msg(fabs(avg - p) <= 4.0 * sqrt(p * (1.0 - p) / DRAWS) + 1e-9,
                      "pixel %d: mean of draws %g, p %g", j, avg, p);
    }
    /* the same seed draws the same */
    ck_assert_int_eq(vae_tensor_create(&before, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_tensor_copy_from_host(before, vae_tensor_data(draws), DRAWS * IN), VAE_OK);
    ck_assert_int_eq(vae_model_decode_sample(m, z, 11, draws), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(draws), vae_tensor_data(before), sizeof(float) * DRAWS * IN);
    /* Gaussian with a learned variance */
    {
        vae_graph *g = tu_small_graph(IN, HIDDEN, LATENT, VAE_ACT_RELU,
                                      VAE_LIKELIHOOD_GAUSSIAN_LEARNED, 9);
        ck_assert_int_eq(vae_model_create(&gm, g), VAE_OK);
    }
    for (int j = 0; j < IN; j++)
        logvar[j] = -2.0f + 0.3f * (float)j;
    ck_assert_int_eq(vae_model_param_set(gm, "likelihood.logvar", logvar, IN), VAE_OK);
    ck_assert_int_eq(vae_model_decode(gm, z, mean), VAE_OK);
    ck_assert_int_eq(vae_model_decode_sample(gm, z, 12, draws), VAE_OK);
    for (int j = 0; j < IN; j++) {
        double mu = vae_tensor_data(mean)[j], var = exp(logvar[j]), avg = 0.0, sq = 0.0;
        for (int i = 0; i < DRAWS; i++) {
            double v = vae_tensor_data(draws)[i * IN + j];
            avg += v / DRAWS;
            sq += (v - mu) * (v - mu) / DRAWS;
        }
        ck_assert_msg(fabs(avg - mu) <= 4.0 * sqrt(var / DRAWS), "pixel %d mean", j);
        ck_assert_msg(fabs(sq - var) <= 4.0 * var * sqrt(2.0 / DRAWS), "pixel %d variance %g vs %g",
                      j, sq, var);
    }
    ck_assert_int_eq(vae_model_decode_sample(NULL, z, 1, draws), VAE_ERR_ARGUMENT);
    vae_tensor_free(z);
    vae_tensor_free(mean);
    vae_tensor_free(draws);
    vae_tensor_free(before);
    vae_model_free(m);
    vae_model_free(gm);
}
END_TEST

/* Views: a range and a seeded split see the parent's rows (values and
   labels) without copying; the split's sides partition the rows; a view
   of a view; the same seed splits the same. */
START_TEST(test_dataset_views)
{
    enum { R = 50, D = 3 };
    uint8_t bytes[R * D];
    int32_t labels[R];
    int dims[1] = {D}, seen[R] = {0};
    vae_dataset *ds = NULL, *range = NULL, *train = NULL, *valid = NULL, *sub = NULL, *again = NULL;
    int64_t td[2] = {1, D};
    vae_tensor *row = NULL;
    for (int r = 0; r < R; r++) {
        labels[r] = r;
        for (int j = 0; j < D; j++)
            bytes[r * D + j] = (uint8_t)(r * 5 + j);
    }
    ck_assert_int_eq(vae_dataset_from_u8(&ds, R, 1, dims, bytes, labels, 1.0f / 255), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&row, 2, td), VAE_OK);
    ck_assert_int_eq(vae_dataset_view(&range, ds, 10, 5), VAE_OK);
    ck_assert_int_eq(vae_dataset_count(range), 5);
    ck_assert_int_eq(vae_dataset_label(range, 0), 10);
    ck_assert_int_eq(vae_dataset_get(range, 4, row), VAE_OK);
    ck_assert_float_eq_tol(vae_tensor_data(row)[1], (14 * 5 + 1) / 255.0f, 1e-6f);
    ck_assert_int_eq(vae_dataset_view(&sub, range, 1, 10), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(sub);
    ck_assert_int_eq(vae_dataset_split(ds, 0.2, 7, &train, &valid), VAE_OK);
    ck_assert_int_eq(vae_dataset_count(valid), 10);
    ck_assert_int_eq(vae_dataset_count(train), 40);
    for (int i = 0; i < 40; i++) {
        int32_t l = vae_dataset_label(train, i);
        ck_assert_int_eq(vae_dataset_get(train, i, row), VAE_OK);
        ck_assert_float_eq_tol(vae_tensor_data(row)[2], (l * 5 + 2) / 255.0f, 1e-6f); /* its pixels */
        seen[l]++;
    }
    for (int i = 0; i < 10; i++)
        seen[vae_dataset_label(valid, i)]++;
    for (int r = 0; r < R; r++)
        ck_assert_int_eq(seen[r], 1);
    /* a range of a shuffled view, and the same seed splits the same */
    ck_assert_int_eq(vae_dataset_view(&sub, train, 3, 2), VAE_OK);
    ck_assert_int_eq(vae_dataset_label(sub, 1), vae_dataset_label(train, 4));
    vae_dataset_free(range);
    ck_assert_int_eq(vae_dataset_split(ds, 10, 7, &again, &range), VAE_OK); /* 10 = 0.2 of 50 */
    ck_assert_int_eq(vae_dataset_label(range, 0), vae_dataset_label(valid, 0));
    vae_dataset_free(again);
    vae_dataset_free(range);
    again = range = NULL;
    ck_assert_int_eq(vae_dataset_split(ds, 0.0, 7, &again, &range), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_split(ds, 50, 7, &again, &range), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_split(ds, 2.5, 7, &again, &range), VAE_ERR_ARGUMENT);
    vae_dataset_free(again);
    vae_dataset_free(range);
    vae_dataset_free(sub);
    vae_dataset_free(train);
    vae_dataset_free(valid);
    vae_tensor_free(row);
    vae_dataset_free(ds);
}
END_TEST

/* The latent point the decoder reads: mu without a flow; with one,
   flow(mu), whose decoding is the reconstruction. */
START_TEST(test_encode_latent)
{
    enum { N = 5, F = 8 };
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 10), *fm = NULL;
    vae_tensor *x = make_rows(), *xs = NULL, *mu = NULL, *z = NULL, *dec = NULL, *rec = NULL;
    int64_t md[2] = {ROWS, LATENT}, fd[2] = {N, 3}, xd[2] = {N, F};
    ck_assert_int_eq(vae_tensor_create(&mu, 2, md), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&z, 2, md), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x, mu, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_encode_latent(m, x, z), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(z), vae_tensor_data(mu), sizeof(float) * ROWS * LATENT);
    vae_tensor_free(mu);
    vae_tensor_free(z);
    /* a flow VAE: 8 inputs, latent 3, two IAF steps with a context */
    ck_assert_int_eq(vae_model_create(&fm, tu_flow_graph(F, 6, 3, 4, 3)), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&xs, 2, xd), VAE_OK);
    tu_random(vae_tensor_data(xs), N * F, 4, 0.0f, 1.0f);
    ck_assert_int_eq(vae_tensor_create(&mu, 2, fd), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&z, 2, fd), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&dec, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&rec, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_model_encode(fm, xs, mu, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_encode_latent(fm, xs, z), VAE_OK);
    ck_assert(memcmp(vae_tensor_data(z), vae_tensor_data(mu), sizeof(float) * N * 3) != 0);
    ck_assert_int_eq(vae_model_decode(fm, z, dec), VAE_OK);
    ck_assert_int_eq(vae_model_reconstruct(fm, xs, rec), VAE_OK);
    for (int i = 0; i < N * F; i++)
        tu_expect_close(vae_tensor_data(dec)[i], vae_tensor_data(rec)[i], "decode(flow(mu))", i);
    ck_assert_int_eq(vae_model_encode_latent(fm, x, z), VAE_ERR_SHAPE); /* 6 values, not 8 */
    vae_tensor_free(x);
    vae_tensor_free(xs);
    vae_tensor_free(mu);
    vae_tensor_free(z);
    vae_tensor_free(dec);
    vae_tensor_free(rec);
    vae_model_free(m);
    vae_model_free(fm);
}
END_TEST

/* A Gaussian decoder with a linear mean: decoded is the logits node, data
   far outside [0, 1] are taken, and training fits them (the reconstruction
   reaches values no sigmoid could). */
START_TEST(test_linear_gaussian)
{
    vae_graph *g = tu_small_graph(IN, 8, LATENT, VAE_ACT_RELU, VAE_LIKELIHOOD_GAUSSIAN_UNIT_LINEAR, 2);
    vae_model *m = NULL;
    vae_optimizer *opt = NULL;
    vae_tensor *x = make_rows(), *rec = NULL;
    int64_t xd[2] = {ROWS, IN};
    double first = 0.0, last = 0.0, most = 0.0;
    for (int i = 0; i < ROWS * IN; i++) /* values in [-3, 5] */
        vae_tensor_data(x)[i] = -3.0f + 8.0f * vae_tensor_data(x)[i];
    ck_assert_int_eq(vae_graph_role(g, VAE_ROLE_DECODED), vae_graph_role(g, VAE_ROLE_LOGITS));
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 1e-2), VAE_OK);
    for (int step = 0; step < 300; step++) {
        double nelbo;
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, &nelbo), VAE_OK);
        if (step < 10)
            first += nelbo / 10;
        if (step >= 290)
            last += nelbo / 10;
    }
    ck_assert_msg(last < first - 5.0, "-ELBO %g -> %g", first, last);
    ck_assert_int_eq(vae_tensor_create(&rec, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_model_reconstruct(m, x, rec), VAE_OK);
    for (int i = 0; i < ROWS * IN; i++)
        most = fmax(most, fabs(vae_tensor_data(rec)[i]));
    ck_assert_double_gt(most, 1.5);
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    {
        int in = 2, xi, zi;
        ck_assert_int_eq(vae_graph_input(g, "x", 1, &in, &xi), VAE_OK);
        ck_assert_int_eq(vae_op_scale(g, xi, 1.0f, &zi), VAE_OK);
        ck_assert_int_eq(vae_elbo_build(g, xi, xi, xi, xi, xi, (vae_likelihood)5,
                                        VAE_OBJECTIVE_ELBO, 1.0f, &zi), VAE_ERR_ARGUMENT);
    }
    vae_graph_free(g);
    vae_tensor_free(x);
    vae_tensor_free(rec);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

typedef struct decode_job {
    vae_model *clone;
    const vae_tensor *z;
    vae_tensor *out;
    vae_status status;
} decode_job;

static void *decode_many(void *arg)
{
    decode_job *j = arg;
    for (int k = 0; k < 20 && j->status == VAE_OK; k++)
        j->status = vae_model_decode(j->clone, j->z, j->out);
    return NULL;
}

/* Four clones decode at once from four threads: each result equals the
   one-thread decoding bit for bit; clones refuse to change the weights. */
START_TEST(test_clones_decode_concurrently)
{
    enum { T = 4, N = 300 };
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 12);
    vae_optimizer *opt = NULL;
    vae_tensor *z = NULL, *want = NULL, *x = make_rows();
    int64_t zd[2] = {N, LATENT}, xd[2] = {N, IN};
    decode_job jobs[T];
    pthread_t th[T];
    float w[IN * HIDDEN];
    ck_assert_int_eq(vae_tensor_create(&z, 2, zd), VAE_OK);
    tu_random(vae_tensor_data(z), N * LATENT, 5, -2.0f, 2.0f);
    ck_assert_int_eq(vae_tensor_create(&want, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, want), VAE_OK);
    for (int t = 0; t < T; t++) {
        jobs[t] = (decode_job){.z = z, .status = VAE_OK};
        ck_assert_int_eq(vae_model_clone(&jobs[t].clone, m), VAE_OK);
        ck_assert_int_eq(vae_tensor_create(&jobs[t].out, 2, xd), VAE_OK);
    }
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, decode_many, &jobs[t]), 0);
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(jobs[t].status, VAE_OK);
        ck_assert_mem_eq(vae_tensor_data(jobs[t].out), vae_tensor_data(want),
                         sizeof(float) * N * IN);
    }
    /* a clone reads; changing or training is the parent's */
    ck_assert_int_eq(vae_model_param_get(jobs[0].clone, "enc.w", w, IN * HIDDEN), VAE_OK);
    ck_assert_int_eq(vae_model_param_set(jobs[0].clone, "enc.w", w, IN * HIDDEN), VAE_ERR_STATE);
    ck_assert_int_eq(vae_model_set_beta(jobs[0].clone, 0.5), VAE_ERR_STATE);
    ck_assert_int_eq(vae_model_freeze(jobs[0].clone, "enc", 1, NULL), VAE_ERR_STATE);
    ck_assert_int_eq(vae_optimizer_create(&opt, jobs[0].clone, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(jobs[0].clone, opt, x, NULL, NULL), VAE_ERR_STATE);
    vae_optimizer_free(opt);
    for (int t = 0; t < T; t++) {
        vae_model_free(jobs[t].clone);
        vae_tensor_free(jobs[t].out);
    }
    vae_tensor_free(z);
    vae_tensor_free(want);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

typedef struct infer_job {
    vae_model *clone;
    const vae_tensor *z;
    const vae_dataset *data;
    vae_tensor *out;
    double log_px;
    vae_status status;
} infer_job;

static void *infer_many(void *arg)
{
    infer_job *j = arg;
    for (int k = 0; k < 5 && j->status == VAE_OK; k++) {
        j->status = vae_model_decode(j->clone, j->z, j->out);
        if (j->status == VAE_OK)
            j->status = vae_model_log_likelihood(j->clone, j->data, 8, 3, NULL, NULL, &j->log_px,
                                                 NULL);
    }
    return NULL;
}

/* Clones with two workers each decode (rows split between the workers) and
   estimate log p(x) (importance weighting) at once from three threads, six
   threads in all: the results are the parent's on two threads, bit for
   bit. */
START_TEST(test_clones_with_workers_concurrently)
{
    enum { T = 3, N = 300 };
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 13);
    vae_dataset *ds = make_data();
    vae_tensor *z = NULL, *want = NULL;
    int64_t zd[2] = {N, LATENT}, xd[2] = {N, IN};
    double want_px;
    infer_job jobs[T];
    pthread_t th[T];
    ck_assert_int_eq(vae_tensor_create(&z, 2, zd), VAE_OK);
    tu_random(vae_tensor_data(z), N * LATENT, 6, -2.0f, 2.0f);
    ck_assert_int_eq(vae_tensor_create(&want, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_model_set_threads(m, 2), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, want), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(m, ds, 8, 3, NULL, NULL, &want_px, NULL), VAE_OK);
    for (int t = 0; t < T; t++) {
        jobs[t] = (infer_job){.z = z, .data = ds, .status = VAE_OK};
        ck_assert_int_eq(vae_model_clone(&jobs[t].clone, m), VAE_OK);
        ck_assert_int_eq(vae_model_set_threads(jobs[t].clone, 2), VAE_OK);
        ck_assert_int_eq(vae_tensor_create(&jobs[t].out, 2, xd), VAE_OK);
    }
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, infer_many, &jobs[t]), 0);
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(jobs[t].status, VAE_OK);
        ck_assert_mem_eq(vae_tensor_data(jobs[t].out), vae_tensor_data(want),
                         sizeof(float) * N * IN);
        ck_assert_double_eq(jobs[t].log_px, want_px);
        vae_model_free(jobs[t].clone);
        vae_tensor_free(jobs[t].out);
    }
    vae_tensor_free(z);
    vae_tensor_free(want);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("steering");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_freeze_encoder);
    tcase_add_test(tc, test_freeze_prefix_and_file);
    tcase_add_test(tc, test_beta_at_run_time);
    tcase_add_test(tc, test_terms);
    tcase_add_test(tc, test_decode_sample);
    tcase_add_test(tc, test_dataset_views);
    tcase_add_test(tc, test_encode_latent);
    tcase_add_test(tc, test_linear_gaussian);
    tcase_add_test(tc, test_clones_decode_concurrently);
    tcase_add_test(tc, test_clones_with_workers_concurrently);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
