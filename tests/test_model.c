/* Models through the public API: creation, the inference calls and their
   shapes, chunking, training (loss falls, determinism per thread count,
   non-finite losses, partial batches, progress and stopping), settings
   and memory planning. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 12, HIDDEN = 8, LATENT = 2, ROWS = 200 };

/* Pixel j of row r: four prototypes of three bright pixels each, with a
   little row-dependent noise.  Bytes, scaled by 1/255 everywhere. */
static uint8_t pixel(int64_t r, int j)
{
    int k = (int)(r % 4);
    int noise = (int)((r * 7 + j * 13) % 23);
    return (uint8_t)(j / 3 == k ? 230 + noise : noise);
}

static vae_dataset *make_data(int64_t n)
{
    uint8_t *bytes = malloc((size_t)(n * IN));
    int dims[1] = {IN};
    vae_dataset *ds = NULL;
    for (int64_t r = 0; r < n; r++)
        for (int j = 0; j < IN; j++)
            bytes[r * IN + j] = pixel(r, j);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, n, 1, dims, bytes, NULL, 1.0f / 255.0f), VAE_OK);
    free(bytes);
    return ds;
}

static vae_tensor *tensor2(int64_t rows, int64_t cols)
{
    int64_t dims[2] = {rows, cols};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, 2, dims), VAE_OK);
    return t;
}

/* n rows of the data pattern as a tensor. */
static vae_tensor *make_rows(int64_t n)
{
    vae_tensor *t = tensor2(n, IN);
    float *d = vae_tensor_data(t);
    for (int64_t r = 0; r < n; r++)
        for (int j = 0; j < IN; j++)
            d[r * IN + j] = (float)pixel(r, j) * (1.0f / 255.0f);
    return t;
}

/* 12 -> Dense(8, relu) -> mu, logvar (2) -> z -> Dense(8, relu) -> 12 logits. */
static vae_model *make_vae(uint64_t seed)
{
    return tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, seed);
}

static vae_optimizer *make_adam(vae_model *m, double lr)
{
    vae_optimizer *opt = NULL;
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, lr), VAE_OK);
    return opt;
}

static float *params_of(const vae_model *m)
{
    int64_t n = vae_model_param_count(m);
    float *p = malloc((size_t)n * sizeof *p);
    ck_assert_int_eq(vae_model_params_get(m, p, n), VAE_OK);
    return p;
}

/* A model needs every role: a bare graph is refused with VAE_ERR_STATE,
   *out is untouched, and the caller still owns the graph: it can finish
   building it and then make a model of it (which frees it). */
START_TEST(test_create_requires_roles)
{
    vae_graph *g;
    vae_model *m = NULL;
    int dims[1] = {IN}, x, h, mu, lv, z, logits, loss;
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, dims, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, x, HIDDEN, VAE_ACT_RELU, "enc", &h), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_ERR_STATE);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "role"));
    ck_assert_int_eq(vae_graph_set_role(g, VAE_ROLE_INPUT, x), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_ERR_STATE); /* still incomplete */
    ck_assert_int_eq(vae_model_create(NULL, g), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_create(&m, NULL), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(m);
    /* the graph is still ours: finish it */
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, LATENT, 0, "q", &mu, &lv, NULL),
                     VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, z, 0, VAE_ACT_NONE, IN, "p", &logits), VAE_OK);
    ck_assert_int_eq(vae_elbo_build(g, x, mu, lv, z, logits, VAE_LIKELIHOOD_BERNOULLI,
                                    VAE_OBJECTIVE_ELBO, 1.0f, &loss), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_ptr_eq(vae_model_graph(m), g);
    vae_model_free(m);

    /* a graph that is refused and then freed by its owner */
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, dims, &x), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_ERR_STATE);
    vae_graph_free(g);
}
END_TEST

/* Output shapes of encode, decode, reconstruct and sample_prior, their
   values (decoded means in (0, 1)), and shape errors that leave the
   outputs untouched. */
START_TEST(test_shapes)
{
    vae_model *m = make_vae(3);
    vae_tensor *x = make_rows(5), *mu = tensor2(5, LATENT), *lv = tensor2(5, LATENT);
    vae_tensor *out = tensor2(5, IN), *samples = tensor2(7, IN);
    vae_tensor *x11 = tensor2(5, IN - 1), *mu4 = tensor2(4, LATENT), *mu3 = tensor2(5, 3);
    vae_tensor *out6 = tensor2(6, IN), *out11 = tensor2(5, IN - 1);
    int64_t d3[3] = {5, 3, 4};
    vae_tensor *x3d = NULL;
    ck_assert_int_eq(vae_model_input_size(m), IN);
    ck_assert_int_eq(vae_model_latent_size(m), LATENT);
    ck_assert_int_eq(vae_model_param_count(m),
                     (IN * HIDDEN + HIDDEN) + 2 * (HIDDEN * LATENT + LATENT) +
                         (LATENT * HIDDEN + HIDDEN) + (HIDDEN * IN + IN));
    ck_assert_int_eq(vae_model_encode(m, x, mu, lv), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x, NULL, lv), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x, mu, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, mu, out), VAE_OK);
    for (int i = 0; i < 5 * IN; i++)
        ck_assert(vae_tensor_data(out)[i] > 0.0f && vae_tensor_data(out)[i] < 1.0f);
    ck_assert_int_eq(vae_model_reconstruct(m, x, out), VAE_OK);
    ck_assert_int_eq(vae_model_sample_prior(m, 1, samples), VAE_OK);
    /* (5, 3, 4) is 5 rows of 12 */
    ck_assert_int_eq(vae_tensor_create(&x3d, 3, d3), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x3d, mu, NULL), VAE_OK);

    memset(vae_tensor_data(mu), 0x7f, 5 * LATENT * sizeof(float));
    ck_assert_int_eq(vae_model_encode(m, x11, mu, lv), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_encode(m, x, mu4, NULL), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_encode(m, x, mu, mu4), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_encode(m, x, mu3, NULL), VAE_ERR_SHAPE);
    for (int i = 0; i < 5 * LATENT; i++) /* untouched by the failed calls */
        ck_assert_uint_eq(((uint32_t *)(void *)vae_tensor_data(mu))[i], 0x7f7f7f7fu);
    ck_assert_int_eq(vae_model_decode(m, mu3, out), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_decode(m, mu, out6), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_decode(m, mu, out11), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_reconstruct(m, x, out6), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_reconstruct(m, x11, out), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_sample_prior(m, 1, out11), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_encode(m, NULL, mu, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_decode(m, mu, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_encode(NULL, x, mu, NULL), VAE_ERR_ARGUMENT);
    vae_tensor *ts[] = {x, mu, lv, out, samples, x11, mu4, mu3, out6, out11, x3d};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        vae_tensor_free(ts[i]);
    vae_model_free(m);
}
END_TEST

/* 1000 rows with max_batch 64 are processed in chunks: the same mu and
   logvar as encoding row by row (to float rounding of the GEMM kernels). */
START_TEST(test_chunking)
{
    enum { N = 1000 };
    vae_model *m = make_vae(4);
    vae_tensor *x = make_rows(N), *mu = tensor2(N, LATENT), *lv = tensor2(N, LATENT);
    vae_tensor *x1 = tensor2(1, IN), *mu1 = tensor2(1, LATENT), *lv1 = tensor2(1, LATENT);
    ck_assert_int_eq(vae_model_set_max_batch(m, 64), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x, mu, lv), VAE_OK);
    for (int r = 0; r < N; r++) {
        memcpy(vae_tensor_data(x1), vae_tensor_data(x) + r * IN, IN * sizeof(float));
        ck_assert_int_eq(vae_model_encode(m, x1, mu1, lv1), VAE_OK);
        for (int k = 0; k < LATENT; k++) {
            float a = vae_tensor_data(mu)[r * LATENT + k], b = vae_tensor_data(mu1)[k];
            float c = vae_tensor_data(lv)[r * LATENT + k], d = vae_tensor_data(lv1)[k];
            ck_assert_msg(fabsf(a - b) <= 1e-5f && fabsf(c - d) <= 1e-5f,
                          "row %d: mu %.9g vs %.9g, logvar %.9g vs %.9g", r, a, b, c, d);
        }
    }
    vae_tensor *ts[] = {x, mu, lv, x1, mu1, lv1};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        vae_tensor_free(ts[i]);
    vae_model_free(m);
}
END_TEST

/* decode has no noise: the same z gives bit-identical output; prior
   samples depend on the seed only. */
START_TEST(test_decode_and_sample_determinism)
{
    vae_model *m = make_vae(5);
    vae_tensor *z = tensor2(6, LATENT), *a = tensor2(6, IN), *b = tensor2(6, IN);
    tu_random(vae_tensor_data(z), 6 * LATENT, 9, -2.0f, 2.0f);
    ck_assert_int_eq(vae_model_decode(m, z, a), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(a), vae_tensor_data(b), 6 * IN * sizeof(float));
    ck_assert_int_eq(vae_model_sample_prior(m, 77, a), VAE_OK);
    ck_assert_int_eq(vae_model_sample_prior(m, 77, b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(a), vae_tensor_data(b), 6 * IN * sizeof(float));
    ck_assert_int_eq(vae_model_sample_prior(m, 78, b), VAE_OK);
    ck_assert_int_ne(memcmp(vae_tensor_data(a), vae_tensor_data(b), 6 * IN * sizeof(float)), 0);
    vae_tensor_free(z);
    vae_tensor_free(a);
    vae_tensor_free(b);
    vae_model_free(m);
}
END_TEST

/* 15 short epochs of Adam (lr 1e-2, batch 10) on the structured data: the training
   -ELBO of the last epoch is well below the first, and so is the
   evaluated -ELBO; evaluation is repeatable. */
START_TEST(test_training_reduces_loss)
{
    vae_model *m = make_vae(6);
    vae_optimizer *opt = make_adam(m, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    double first = 0, last = 0, obj, nelbo, eval0, eval0b, eval1;
    ck_assert_int_eq(vae_model_evaluate(m, ds, &eval0), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(m, ds, &eval0b), VAE_OK);
    ck_assert_double_eq(eval0, eval0b);
    for (int e = 0; e < 15; e++) {
        ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 10, NULL, NULL, &obj, &nelbo), VAE_OK);
        ck_assert_double_eq_tol(obj, nelbo, 1e-5 * nelbo); /* beta 1, ELBO objective */
        if (e == 0)
            first = nelbo;
        last = nelbo;
    }
    ck_assert_int_eq(vae_model_epoch(m), 15);
    ck_assert_int_eq(vae_optimizer_steps(opt), 15 * (ROWS / 10));
    ck_assert_msg(last < 0.8 * first, "training -ELBO %g -> %g", first, last);
    ck_assert_int_eq(vae_model_evaluate(m, ds, &eval1), VAE_OK);
    ck_assert_msg(eval1 < 0.8 * eval0, "evaluated -ELBO %g -> %g", eval0, eval1);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

static float *train_two_epochs(int threads, double *nelbo)
{
    vae_model *m = make_vae(11);
    vae_optimizer *opt = make_adam(m, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    float *p;
    ck_assert_int_eq(vae_model_set_threads(m, threads), VAE_OK);
    for (int e = 0; e < 2; e++)
        ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 32, NULL, NULL, NULL, nelbo), VAE_OK);
    p = params_of(m);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
    return p;
}

/* Same seed, same training, same thread count: bit-identical parameters
   (loop index 1 and 2 threads). */
START_TEST(test_determinism)
{
    int threads = _i;
    double n1, n2;
    float *a = train_two_epochs(threads, &n1), *b = train_two_epochs(threads, &n2);
    vae_model *ref = make_vae(11);
    ck_assert_mem_eq(a, b, (size_t)vae_model_param_count(ref) * sizeof(float));
    ck_assert_double_eq(n1, n2);
    vae_model_free(ref);
    free(a);
    free(b);
}
END_TEST

/* One thread against two: the same losses to float rounding (the batch
   is split and the gradient summed in another order), not bitwise. */
START_TEST(test_threads_agree)
{
    vae_model *m1 = make_vae(12), *m2 = make_vae(12);
    vae_optimizer *o1 = make_adam(m1, 1e-2), *o2 = make_adam(m2, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    vae_tensor *x = make_rows(32), *x1 = make_rows(1);
    double s1, s2, n1, n2, e1, e2;
    ck_assert_int_eq(vae_model_set_threads(m2, 2), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(m1, ds, &e1), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(m2, ds, &e2), VAE_OK);
    ck_assert_double_eq_tol(e1, e2, 1e-5 * fabs(e1));
    ck_assert_int_eq(vae_model_train_step(m1, o1, x, &s1, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m2, o2, x, &s2, NULL), VAE_OK);
    ck_assert_double_eq_tol(s1, s2, 1e-5 * fabs(s1));
    /* one row: the second thread has nothing to do */
    ck_assert_int_eq(vae_model_train_step(m1, o1, x1, &s1, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m2, o2, x1, &s2, NULL), VAE_OK);
    ck_assert_double_eq_tol(s1, s2, 1e-5 * fabs(s1));
    ck_assert_int_eq(vae_model_train_epoch(m1, o1, ds, 32, NULL, NULL, NULL, &n1), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m2, o2, ds, 32, NULL, NULL, NULL, &n2), VAE_OK);
    ck_assert_double_eq_tol(n1, n2, 1e-4 * fabs(n1));
    ck_assert_int_eq(vae_model_evaluate(m1, ds, &e1), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(m2, ds, &e2), VAE_OK);
    ck_assert_double_eq_tol(e1, e2, 1e-4 * fabs(e1));
    vae_optimizer_free(o1);
    vae_optimizer_free(o2);
    vae_dataset_free(ds);
    vae_tensor_free(x);
    vae_tensor_free(x1);
    vae_model_free(m1);
    vae_model_free(m2);
}
END_TEST

/* A NaN parameter: the step fails with VAE_ERR_NOT_FINITE and leaves the
   parameters bit for bit as they were (NaN included), the optimizer's
   step count and the epoch position too. */
START_TEST(test_nan_leaves_weights)
{
    vae_model *m = make_vae(7);
    vae_optimizer *opt = make_adam(m, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    vae_tensor *x = make_rows(16);
    int64_t n = vae_model_param_count(m);
    float *p = params_of(m), *after;
    double obj = 123.0;
    p[n - 3] = NAN; /* a decoder bias */
    /* the public setter refuses it and changes nothing ... */
    ck_assert_int_eq(vae_model_params_set(m, p, n), VAE_ERR_NOT_FINITE);
    after = params_of(m);
    ck_assert(isfinite(after[n - 3]));
    free(after);
    /* ... so put it there from inside */
    m->g->params[n - 3] = NAN;
    ck_assert_int_eq(vae_model_train_step(m, opt, x, &obj, NULL), VAE_ERR_NOT_FINITE);
    ck_assert_double_eq(obj, 123.0);
    after = params_of(m);
    ck_assert_mem_eq(p, after, (size_t)n * sizeof *p);
    ck_assert_int_eq(vae_optimizer_steps(opt), 0);
    free(after);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 50, NULL, NULL, NULL, NULL),
                     VAE_ERR_NOT_FINITE);
    after = params_of(m);
    ck_assert_mem_eq(p, after, (size_t)n * sizeof *p);
    ck_assert_int_eq(vae_model_epoch(m), 0);
    ck_assert_int_eq(vae_model_epoch_position(m), 0);
    free(after);
    free(p);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

/* A loss that turns non-finite in the middle of an epoch (Adam at a rate
   of 1e3 after a good epoch): VAE_ERR_NOT_FINITE, and the weights are
   those after the last good step, which the progress callback saw. */
typedef struct last_good {
    vae_model *m;
    float *params;
    int batches;
} last_good;

static int keep_params(void *user, int batch, int batch_count, float objective)
{
    last_good *g = user;
    (void)batch_count;
    ck_assert(isfinite(objective));
    free(g->params);
    g->params = params_of(g->m);
    g->batches = batch;
    return 0;
}

START_TEST(test_nan_mid_epoch_keeps_last_good_step)
{
    vae_model *m = make_vae(5);
    vae_optimizer *opt = make_adam(m, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    last_good g = {m, NULL, 0};
    int64_t n = vae_model_param_count(m);
    float *after;
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 10, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 1e3), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 10, keep_params, &g, NULL, NULL),
                     VAE_ERR_NOT_FINITE);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "not finite"));
    /* it failed mid-epoch: after some good steps, before the last */
    ck_assert_int_ge(g.batches, 1);
    ck_assert_int_lt(g.batches, ROWS / 10);
    ck_assert_int_eq(vae_model_epoch_position(m), g.batches);
    after = params_of(m);
    for (int64_t i = 0; i < n; i++)
        ck_assert(isfinite(after[i]));
    ck_assert_mem_eq(g.params, after, (size_t)n * sizeof *after);
    free(after);
    free(g.params);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

typedef struct progress_log {
    int calls, last_batch, batch_count, stop_after, increasing;
} progress_log;

static int on_progress(void *user, int batch, int batch_count, float objective)
{
    progress_log *l = user;
    if (batch != l->last_batch + 1 || !isfinite(objective))
        l->increasing = 0;
    l->calls++;
    l->last_batch = batch;
    l->batch_count = batch_count;
    return l->stop_after && batch == l->stop_after;
}

/* 200 rows in batches of 64: four batches, the last of 8 rows; the
   callback sees batches 1, 2, 3, 4 of 4; epoch counters advance. */
START_TEST(test_partial_batch_and_progress)
{
    vae_model *m = make_vae(8);
    vae_optimizer *opt = make_adam(m, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    progress_log l = {.increasing = 1};
    double obj, nelbo;
    for (int e = 1; e <= 2; e++) {
        l.calls = l.last_batch = 0;
        ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 64, on_progress, &l, &obj, &nelbo),
                         VAE_OK);
        ck_assert_int_eq(l.calls, 4);
        ck_assert_int_eq(l.last_batch, 4);
        ck_assert_int_eq(l.batch_count, 4);
        ck_assert(l.increasing);
        ck_assert(isfinite(obj) && isfinite(nelbo) && nelbo > 0);
        ck_assert_int_eq(vae_model_epoch(m), e);
        ck_assert_int_eq(vae_model_epoch_position(m), 0);
        ck_assert_int_eq(vae_optimizer_steps(opt), 4 * e);
    }
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

/* A callback returning non-zero after batch 2 stops the epoch with
   VAE_ERR_STOPPED at position 2; the next call finishes the epoch from
   batch 3.  Stopping on the last batch just ends the epoch. */
START_TEST(test_progress_stops)
{
    vae_model *m = make_vae(9);
    vae_optimizer *opt = make_adam(m, 1e-2);
    vae_dataset *ds = make_data(ROWS);
    progress_log l = {.increasing = 1, .stop_after = 2};
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 40, on_progress, &l, NULL, NULL),
                     VAE_ERR_STOPPED);
    ck_assert_int_eq(l.calls, 2);
    ck_assert_int_eq(vae_model_epoch(m), 0);
    ck_assert_int_eq(vae_model_epoch_position(m), 2);
    ck_assert_int_gt(vae_model_epoch_position(m), 0);
    l.stop_after = 0;
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 40, on_progress, &l, NULL, NULL), VAE_OK);
    ck_assert_int_eq(l.calls, 5);
    ck_assert_int_eq(l.last_batch, 5);
    ck_assert(l.increasing);
    ck_assert_int_eq(vae_model_epoch(m), 1);
    ck_assert_int_eq(vae_model_epoch_position(m), 0);
    l = (progress_log){.increasing = 1, .stop_after = 5};
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 40, on_progress, &l, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_epoch(m), 2);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

/* Setters refuse bad values and keep the old ones; batches beyond the
   maximum are refused by training. */
START_TEST(test_setters)
{
    vae_model *m = make_vae(10);
    vae_optimizer *opt = make_adam(m, 1e-3);
    vae_dataset *ds = make_data(ROWS), *other;
    vae_tensor *x = make_rows(33);
    int dims[1] = {IN + 1};
    uint8_t bytes[2 * (IN + 1)] = {0};
    ck_assert_int_eq(vae_model_set_max_batch(m, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_max_batch(m, -5), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_max_batch(m, (1 << 20) + 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_max_batch(NULL, 8), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_threads(m, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_threads(m, -1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_threads(m, 65), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_threads(NULL, 2), VAE_ERR_ARGUMENT);
    /* the default 256 still holds: batch 256 is fine, 257 is not */
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 257, NULL, NULL, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 0, NULL, NULL, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_max_batch(m, 32), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 33, NULL, NULL, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, 32, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_dataset_from_u8(&other, 2, 1, dims, bytes, NULL, 1.0f), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, other, 2, NULL, NULL, NULL, NULL),
                     VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, NULL, 2, NULL, NULL, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    vae_dataset_free(other);
    vae_tensor_free(x);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

/* Nothing is planned before the first use; inference plans values only,
   training adds gradients, so a model only encoded and decoded holds less
   than one that trained.  Changing the thread count drops the plans. */
START_TEST(test_planned_bytes)
{
    vae_model *inf = make_vae(13), *tr = make_vae(13);
    vae_optimizer *opt = make_adam(tr, 1e-3);
    vae_tensor *x = make_rows(10), *mu = tensor2(10, LATENT), *out = tensor2(10, IN);
    int64_t b_inf, b_train;
    ck_assert_int_eq(vae_model_planned_bytes(inf), 0);
    ck_assert_int_eq(vae_model_encode(inf, x, mu, NULL), VAE_OK);
    b_inf = vae_model_planned_bytes(inf);
    ck_assert_int_gt(b_inf, 0);
    ck_assert_int_eq(vae_model_decode(inf, mu, out), VAE_OK);
    ck_assert_int_eq(vae_model_planned_bytes(inf), b_inf);
    ck_assert_int_eq(vae_model_train_step(tr, opt, x, NULL, NULL), VAE_OK);
    b_train = vae_model_planned_bytes(tr);
    ck_assert_int_gt(b_train, b_inf);
    /* values first, gradients added later: the same total */
    ck_assert_int_eq(vae_model_encode(tr, x, mu, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_planned_bytes(tr), b_train);
    ck_assert_int_eq(vae_model_set_threads(tr, 2), VAE_OK);
    ck_assert_int_eq(vae_model_planned_bytes(tr), 0);
    ck_assert_int_eq(vae_model_set_max_batch(inf, 16), VAE_OK);
    ck_assert_int_eq(vae_model_planned_bytes(inf), 0);
    ck_assert_int_eq(vae_model_encode(inf, x, mu, NULL), VAE_OK);
    ck_assert_int_gt(vae_model_planned_bytes(inf), 0);
    ck_assert_int_lt(vae_model_planned_bytes(inf), b_inf); /* 16 rows, not 256 */
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_tensor_free(mu);
    vae_tensor_free(out);
    vae_model_free(inf);
    vae_model_free(tr);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_create_requires_roles);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_chunking);
    tcase_add_test(tc, test_decode_and_sample_determinism);
    tcase_add_test(tc, test_training_reduces_loss);
    tcase_add_loop_test(tc, test_determinism, 1, 3);
    tcase_add_test(tc, test_threads_agree);
    tcase_add_test(tc, test_nan_leaves_weights);
    tcase_add_test(tc, test_nan_mid_epoch_keeps_last_good_step);
    tcase_add_test(tc, test_partial_batch_and_progress);
    tcase_add_test(tc, test_progress_stops);
    tcase_add_test(tc, test_setters);
    tcase_add_test(tc, test_planned_bytes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
