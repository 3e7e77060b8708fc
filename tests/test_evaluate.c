/* The importance-weighted estimate of log p(x) on a model whose log p(x) is
   known in closed form: probabilistic PCA, a linear Gaussian decoder
   p(x|z) = N(z W + b, s2 I) with p(z) = N(0, I), so x ~ N(b, W^T W + s2 I). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { D = 3, L = 2, IMAGES = 16 };
#define S2 0.5
#define LOG_2PI 1.8378770664093453

/* Rows of W are orthogonal, so the exact posterior has a diagonal covariance. */
static const double W[L][D] = {{1.0, 0.5, 0.0}, {-0.25, 0.5, 0.8}};
static const double B[D] = {0.2, -0.1, 0.3};

typedef struct ppca {
    vae_model *m;
    vae_dataset *data;
    double exact[IMAGES]; /* log p(x) of each image */
} ppca;

static void set_param(vae_graph *g, const char *name, const double *v, int n)
{
    int id = vae_graph_find(g, name);
    ck_assert_int_ge(id, 0);
    ck_assert_int_eq(g->nodes[id].size, n);
    for (int i = 0; i < n; i++)
        g->params[g->nodes[id].param_offset + i] = (float)v[i];
}

/* The graph: q(z|x) from two linear heads, z sampled, the linear decoder
   and its Gaussian log-likelihood; roles set by hand. */
static vae_model *ppca_model(void)
{
    vae_graph *g = NULL;
    vae_model *m = NULL;
    int d = D, x, mu, lv, z, mean, ll, log_q, log_p, t, log_w, nelbo, obj;
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &d, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, x, L, VAE_ACT_NONE, "q.mean", &mu), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, x, L, VAE_ACT_NONE, "q.logvar", &lv), VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, z, D, VAE_ACT_NONE, "p", &mean), VAE_OK);
    ck_assert_int_eq(vae_op_gaussian_loglik(g, x, mean, -1, (float)log(S2), &ll), VAE_OK);
    ck_assert_int_eq(vae_op_normal_logpdf(g, z, mu, lv, &log_q), VAE_OK);
    ck_assert_int_eq(vae_op_normal_logpdf(g, z, -1, -1, &log_p), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, ll, log_p, &t), VAE_OK);
    ck_assert_int_eq(vae_op_scale(g, log_q, -1.0f, &log_q), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, t, log_q, &log_w), VAE_OK);
    ck_assert_int_eq(vae_op_scale(g, log_w, -1.0f, &nelbo), VAE_OK);
    ck_assert_int_eq(vae_op_batch_mean(g, nelbo, &obj), VAE_OK);
    {
        const int roles[][2] = {{VAE_ROLE_INPUT, x}, {VAE_ROLE_LATENT_MEAN, mu},
                                {VAE_ROLE_LATENT_LOGVAR, lv}, {VAE_ROLE_LATENT, z},
                                {VAE_ROLE_LOGITS, mean}, {VAE_ROLE_DECODED, mean},
                                {VAE_ROLE_OBJECTIVE, obj}, {VAE_ROLE_NELBO, nelbo},
                                {VAE_ROLE_LOG_WEIGHT, log_w}};
        for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
            ck_assert_int_eq(vae_graph_set_role(g, (vae_role)roles[i][0], roles[i][1]), VAE_OK);
    }
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    return m;
}

/* The decoder is (W, B); the encoder is the exact posterior
   N(M^-1 W (x - b), s2 M^-1) with M = W W^T + s2 I (diagonal), moved by
   mean_shift and with its log-variance widened by logvar_shift. */
static void set_ppca_params(vae_model *m, double mean_shift, double logvar_shift)
{
    vae_graph *g = m->g;
    double wq[D * L], bq[L], wlv[D * L] = {0}, blv[L], wp[L * D];
    for (int i = 0; i < L; i++) {
        double norm2 = 0.0, wb = 0.0, mii;
        for (int j = 0; j < D; j++) {
            norm2 += W[i][j] * W[i][j];
            wb += W[i][j] * B[j];
        }
        mii = norm2 + S2;
        for (int j = 0; j < D; j++) {
            wq[j * L + i] = W[i][j] / mii; /* dense weights are (in, out) */
            wp[i * D + j] = W[i][j];
        }
        bq[i] = -wb / mii + mean_shift;
        blv[i] = log(S2 / mii) + logvar_shift;
    }
    set_param(g, "q.mean.w", wq, D * L);
    set_param(g, "q.mean.b", bq, L);
    set_param(g, "q.logvar.w", wlv, D * L);
    set_param(g, "q.logvar.b", blv, L);
    set_param(g, "p.w", wp, L * D);
    set_param(g, "p.b", B, D);
}

/* log N(x; b, W^T W + s2 I) through a Cholesky factor. */
static double exact_log_px(const float *x)
{
    double c[D][D], r[D], quad = 0.0, log_det = 0.0;
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            c[a][b] = a == b ? S2 : 0.0;
            for (int i = 0; i < L; i++)
                c[a][b] += W[i][a] * W[i][b];
        }
    for (int j = 0; j < D; j++) { /* c = l l^T, l stored in c's lower part */
        for (int k = 0; k < j; k++)
            c[j][j] -= c[j][k] * c[j][k];
        c[j][j] = sqrt(c[j][j]);
        for (int i = j + 1; i < D; i++) {
            for (int k = 0; k < j; k++)
                c[i][j] -= c[i][k] * c[j][k];
            c[i][j] /= c[j][j];
        }
    }
    for (int i = 0; i < D; i++) { /* solve l r = x - b */
        r[i] = x[i] - B[i];
        for (int k = 0; k < i; k++)
            r[i] -= c[i][k] * r[k];
        r[i] /= c[i][i];
        quad += r[i] * r[i];
        log_det += 2.0 * log(c[i][i]);
    }
    return -0.5 * (quad + log_det + D * LOG_2PI);
}

static ppca make_ppca(void)
{
    ppca p = {.m = ppca_model()};
    float x[IMAGES * D];
    int d = D;
    tu_random(x, IMAGES * D, 21, -1.5f, 1.5f);
    for (int n = 0; n < IMAGES; n++)
        p.exact[n] = exact_log_px(x + n * D);
    ck_assert_int_eq(vae_dataset_from_f32(&p.data, IMAGES, 1, &d, x, NULL), VAE_OK);
    return p;
}

static void free_ppca(ppca *p)
{
    vae_model_free(p->m);
    vae_dataset_free(p->data);
}

static double mean_exact(const ppca *p)
{
    double s = 0.0;
    for (int n = 0; n < IMAGES; n++)
        s += p->exact[n];
    return s / IMAGES;
}

/* With the exact posterior as q every weight equals log p(x): the estimate
   is exact for any k, image by image. */
START_TEST(test_exact_posterior)
{
    ppca p = make_ppca();
    double per_image[IMAGES], mean;
    set_ppca_params(p.m, 0.0, 0.0);
    for (int k = 1; k <= 100; k *= 10) {
        ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, k, 3, NULL, NULL, &mean, per_image),
                         VAE_OK);
        for (int n = 0; n < IMAGES; n++)
            ck_assert_double_eq_tol(per_image[n], p.exact[n], 2e-5 * (1.0 + fabs(p.exact[n])));
        ck_assert_double_eq_tol(mean, mean_exact(&p), 1e-5);
    }
    free_ppca(&p);
}
END_TEST

/* With a poorer q the estimate rises with k towards log p(x) (from below,
   as a bound must) and is within 0.01 nats of it at k = 5000. */
START_TEST(test_converges_with_k)
{
    static const int ks[] = {1, 10, 100, 5000};
    ppca p = make_ppca();
    double exact = mean_exact(&p), last = -INFINITY, est[4];
    set_ppca_params(p.m, 0.4, log(2.0));
    ck_assert_int_eq(vae_model_set_max_batch(p.m, 1000), VAE_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, ks[i], 5, NULL, NULL, &est[i], NULL),
                         VAE_OK);
        ck_assert_msg(est[i] > last && est[i] < exact + 0.005,
                      "k=%d: estimate %.5f (previous %.5f, exact %.5f)", ks[i], est[i], last, exact);
        last = est[i];
    }
    ck_assert_msg(exact - est[0] > 0.1, "k=1 gap only %g: q is too good for this test", exact - est[0]);
    ck_assert_msg(fabs(est[3] - exact) < 0.01, "k=5000: %.5f vs exact %.5f", est[3], exact);
    free_ppca(&p);
}
END_TEST

/* The same draws whatever the thread count (a batch's noise is seeded from
   its first row, so the same maximum batch gives the same draws); a
   different seed gives a different estimate. */
START_TEST(test_reproducible)
{
    ppca p = make_ppca();
    double a, b, c, d, per_image[IMAGES], sum = 0.0;
    set_ppca_params(p.m, 0.4, log(2.0));
    ck_assert_int_eq(vae_model_set_max_batch(p.m, 64), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 50, 9, NULL, NULL, &a, per_image), VAE_OK);
    ck_assert_int_eq(vae_model_set_threads(p.m, 2), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 50, 9, NULL, NULL, &b, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 50, 9, NULL, NULL, &c, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 50, 10, NULL, NULL, &d, NULL), VAE_OK);
    ck_assert_double_eq_tol(a, b, 1e-6);
    ck_assert_double_eq(b, c);
    ck_assert_double_ne(c, d);
    for (int n = 0; n < IMAGES; n++)
        sum += per_image[n];
    ck_assert_double_eq_tol(sum / IMAGES, a, 1e-12);
    free_ppca(&p);
}
END_TEST

/* Samples whose weight underflows to zero (log weight -inf: the decoder's
   squared error overflows) count as zero, wherever they fall among an
   image's samples; the estimate stays finite from the others. */
START_TEST(test_zero_weights)
{
    ppca p = make_ppca();
    double mean, per_image[IMAGES];
    int w = vae_graph_find(p.m->g, "p.w");
    set_ppca_params(p.m, 0.0, log(8.0));
    for (int64_t i = 0; i < p.m->g->nodes[w].size; i++)
        p.m->g->params[p.m->g->nodes[w].param_offset + i] *= 1e19f;
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 50, 4, NULL, NULL, &mean, per_image),
                     VAE_OK);
    ck_assert(isfinite(mean));
    for (int n = 0; n < IMAGES; n++)
        ck_assert(isfinite(per_image[n]));
    free_ppca(&p);
}
END_TEST

/* The encoder runs once per image and its outputs are copied to the
   image's samples: the estimate equals one from the whole plan run on
   every replicated row with the same noise. */
START_TEST(test_shared_encoder_matches_rows)
{
    enum { K = 7, BATCH = 32, ROWS = IMAGES * K };
    ppca p = make_ppca();
    double mean, per_image[IMAGES];
    float x[ROWS * D], weights[ROWS];
    vae_tensor *images = NULL;
    int64_t dims[2] = {IMAGES, D};
    set_ppca_params(p.m, 0.4, log(2.0));
    ck_assert_int_eq(vae_model_set_max_batch(p.m, BATCH), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, K, 5, NULL, NULL, &mean, per_image),
                     VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&images, 2, dims), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(p.data, 0, images), VAE_OK);
    for (int r = 0; r < ROWS; r++)
        memcpy(x + r * D, vae_tensor_data(images) + (r / K) * D, D * sizeof *x);
    for (int first = 0; first < ROWS; first += BATCH) {
        int rows = ROWS - first < BATCH ? ROWS - first : BATCH;
        batch_job job = {.m = p.m, .p = &p.m->plans[PLAN_LOG_WEIGHT], .rows = rows,
                         .feed = x + first * D,
                         .out_node = {p.m->g->roles[VAE_ROLE_LOG_WEIGHT], -1},
                         .out = {weights + first, NULL}};
        vae_rng rng;
        vae__split_rows(p.m, 0, rows, rows, 0);
        vae__rng_seed3(&rng, 5, STREAM_LOG_WEIGHT, (uint64_t)first);
        vae__fill_noise(p.m, job.p, &rng);
        vae__run_batch(&job);
    }
    for (int n = 0; n < IMAGES; n++) {
        double top = -INFINITY, sum = 0.0;
        for (int j = 0; j < K; j++)
            top = fmax(top, weights[n * K + j]);
        for (int j = 0; j < K; j++)
            sum += exp(weights[n * K + j] - top);
        ck_assert_double_eq_tol(per_image[n], top + log(sum / K), 1e-5);
    }
    vae_tensor_free(images);
    free_ppca(&p);
}
END_TEST

static int stop_after_first(void *user, int done, int count, float nll)
{
    int *calls = user;
    ck_assert_int_gt(done, 0);
    ck_assert_int_eq(count, IMAGES);
    ck_assert(nll > 0.0f);
    return ++*calls >= 1;
}

START_TEST(test_progress_and_errors)
{
    ppca p = make_ppca();
    double mean = 123.0;
    int calls = 0, four = 4;
    vae_dataset *wrong = NULL;
    float v[4] = {0};
    set_ppca_params(p.m, 0.0, 0.0);
    ck_assert_int_eq(vae_model_set_max_batch(p.m, 8), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 4, 1, stop_after_first, &calls, &mean,
                                              NULL), VAE_ERR_STOPPED);
    ck_assert_int_eq(calls, 1);
    ck_assert_double_eq(mean, 123.0);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 0, 1, NULL, NULL, &mean, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, p.data, 4, 1, NULL, NULL, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_log_likelihood(NULL, p.data, 4, 1, NULL, NULL, &mean, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_f32(&wrong, 1, 1, &four, v, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(p.m, wrong, 4, 1, NULL, NULL, &mean, NULL),
                     VAE_ERR_SHAPE);
    ck_assert_double_eq(mean, 123.0);
    vae_dataset_free(wrong);
    free_ppca(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evaluate");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exact_posterior);
    tcase_add_test(tc, test_converges_with_k);
    tcase_add_test(tc, test_reproducible);
    tcase_add_test(tc, test_progress_and_errors);
    tcase_add_test(tc, test_zero_weights);
    tcase_add_test(tc, test_shared_encoder_matches_rows);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
