/* What the library refuses, and the 0.3 additions around it (issue 9):
   a graph belongs to one model, names are unique, roles are checked as
   the builders make them, memory is capped before it is planned, updates
   that would make weights non-finite change nothing, Bernoulli models take
   data in [0, 1], an interrupted epoch continues with its batch size, and
   the history and metadata a model carries. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { IN = 6, HIDDEN = 5, LATENT = 2, ROWS = 40 };

static vae_model *small_vae(void) { return tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_RELU, 3); }

/* ROWS rows of values in [0, 1] (or scaled by `scale`) as a data set. */
static vae_dataset *make_data(float scale)
{
    float *v = malloc(sizeof(float) * ROWS * IN);
    int dims[1] = {IN};
    vae_dataset *ds = NULL;
    tu_random(v, ROWS * IN, 11, 0.0f, 1.0f);
    for (int i = 0; i < ROWS * IN; i++)
        v[i] *= scale;
    ck_assert_int_eq(vae_dataset_from_f32(&ds, ROWS, 1, dims, v, NULL), VAE_OK);
    free(v);
    return ds;
}

static vae_tensor *make_rows(int rows, float value)
{
    int64_t dims[2] = {rows, IN};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, 2, dims), VAE_OK);
    for (int i = 0; i < rows * IN; i++)
        vae_tensor_data(t)[i] = value;
    return t;
}

static void expect_message(const char *part)
{
    ck_assert_msg(strstr(vae_last_error(), part) != NULL, "message '%s' lacks '%s'",
                  vae_last_error(), part);
}

static float *params_of(const vae_model *m)
{
    int64_t n = vae_model_param_count(m);
    float *p = malloc(sizeof(float) * (size_t)n);
    ck_assert_int_eq(vae_model_params_get(m, p, n), VAE_OK);
    return p;
}

/* A second model on the same graph, and layers added to it afterwards,
   are refused; both models then free cleanly (no double free). */
START_TEST(test_graph_belongs_to_one_model)
{
    vae_model *a = small_vae(), *b = NULL;
    vae_graph *g = (vae_graph *)vae_model_graph(a); /* as a careless host would */
    int64_t params = vae_model_param_count(a);
    int nodes = vae_graph_node_count(g), out = -1, x = vae_graph_role(g, VAE_ROLE_INPUT);
    ck_assert_int_eq(vae_model_create(&b, g), VAE_ERR_STATE);
    ck_assert_ptr_null(b);
    expect_message("belongs to a model");
    ck_assert_int_eq(vae_layer_dense(g, x, 4, VAE_ACT_RELU, "late", &out), VAE_ERR_STATE);
    expect_message("read-only");
    ck_assert_int_eq(vae_graph_input(g, "x2", 1, (int[]){3}, &out), VAE_ERR_STATE);
    ck_assert_int_eq(vae_graph_set_role(g, VAE_ROLE_LATENT, x), VAE_ERR_STATE);
    ck_assert_int_eq(vae_graph_node_count(g), nodes);
    ck_assert_int_eq(vae_model_param_count(a), params);
    ck_assert_int_eq(out, -1);
    vae_model_free(b);
    vae_model_free(a);
}
END_TEST

/* Names are unique: a second layer or input of a used name is refused and
   adds nothing, so vae_graph_find is never ambiguous. */
START_TEST(test_unique_names)
{
    vae_graph *g = NULL;
    int x, x2 = -1, h, h2 = -1, n, dims[1] = {IN};
    int64_t params;
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, dims, &x), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, dims, &x2), VAE_ERR_ARGUMENT);
    expect_message("'x' is taken by node 0");
    ck_assert_int_eq(vae_layer_dense(g, x, 4, VAE_ACT_RELU, "enc", &h), VAE_OK);
    n = vae_graph_node_count(g);
    params = g->n_params;
    ck_assert_int_eq(vae_layer_dense(g, x, 3, VAE_ACT_RELU, "enc", &h2), VAE_ERR_ARGUMENT);
    expect_message("'enc.w' is taken");
    ck_assert_int_eq(vae_graph_node_count(g), n);
    ck_assert_int_eq(g->n_params, params);
    ck_assert_int_eq(x2, -1);
    ck_assert_int_eq(h2, -1);
    ck_assert_int_eq(vae_graph_find(g, "x"), x);
    /* unnamed nodes are fine, as many as wanted */
    ck_assert_int_eq(vae_graph_param(g, NULL, 1, dims, 0.0f, &h2), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, NULL, 1, dims, 0.0f, &h2), VAE_OK);
    vae_graph_free(g);
}
END_TEST

/* The VAE of tu_small_vae with one role moved to `node`: create fails. */
static void expect_role_refused(vae_role role, const char *which, vae_status want,
                                const char *part)
{
    vae_graph *g = tu_small_graph(IN, HIDDEN, LATENT, VAE_ACT_RELU, VAE_LIKELIHOOD_BERNOULLI, 1);
    vae_model *m = NULL;
    int target, mu = vae_graph_role(g, VAE_ROLE_LATENT_MEAN);
    target = vae_graph_find(g, which);
    if (strcmp(which, "detached") == 0) /* the latent's size, read by no plan */
        ck_assert_int_eq(vae_op_scale(g, mu, 1.0f, &target), VAE_OK);
    else if (target < 0) { /* a node of the ELBO by role */
        ck_assert_int_eq(sscanf(which, "role %d", &target), 1);
        target = vae_graph_role(g, (vae_role)target);
    }
    ck_assert_int_eq(vae_graph_set_role(g, role, target), VAE_OK);
    ck_assert_msg(vae_model_create(&m, g) == want, "role %d on %s: %s", (int)role, which,
                  vae_last_error());
    expect_message(part);
    ck_assert_ptr_null(m);
    vae_graph_free(g);
}

/* What fuzzed model files did through the roles, refused as the builders
   would: a wider log-variance or decoded node (writes past the caller's
   tensor), a parameter as decoded output, a latent node the decoder does
   not read (memcpy into NULL), an unbatched -ELBO (reads past the arena). */
START_TEST(test_roles_checked)
{
    expect_role_refused(VAE_ROLE_LATENT_LOGVAR, "enc.w", VAE_ERR_SHAPE, "must be batched");
    expect_role_refused(VAE_ROLE_LATENT_LOGVAR, "role 7", VAE_ERR_SHAPE, "expected 2");
    expect_role_refused(VAE_ROLE_DECODED, "p.logits.w", VAE_ERR_SHAPE, "decoded node");
    expect_role_refused(VAE_ROLE_DECODED, "role 3", VAE_ERR_SHAPE, "expected 6");
    expect_role_refused(VAE_ROLE_LOGITS, "role 3", VAE_ERR_SHAPE, "logits node");
    expect_role_refused(VAE_ROLE_NELBO, "role 5", VAE_ERR_SHAPE, "must be batched");
    expect_role_refused(VAE_ROLE_OBJECTIVE, "role 6", VAE_ERR_SHAPE, "must not be batched");
    expect_role_refused(VAE_ROLE_LOG_WEIGHT, "role 0", VAE_ERR_SHAPE, "log weight node");
    /* the latent mean has the latent's size, but decoding does not read it */
    expect_role_refused(VAE_ROLE_LATENT, "role 1", VAE_ERR_STATE, "");
    expect_role_refused(VAE_ROLE_LATENT, "detached", VAE_ERR_STATE, "does not depend on");
}
END_TEST

static long max_rss_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

/* A one-float input doubled 21 times by concat (2^21 floats a row, about
   4 GiB for 256 rows): planning it fails before allocating, with the
   numbers; with a smaller maximum batch or a higher limit it runs. */
START_TEST(test_memory_limit)
{
    vae_graph *g = NULL;
    vae_model *m = NULL, *l = NULL;
    vae_tensor *x = NULL, *mu = NULL;
    int one = 1, in, h, mu_id, lv, z, logits, loss;
    int64_t xd[2] = {1, 1};
    long before;
    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, &one, &in), VAE_OK);
    h = in;
    for (int i = 0; i < 21; i++)
        ck_assert_int_eq(vae_op_concat(g, h, h, &h), VAE_OK);
    ck_assert_int_eq(vae_op_sum(g, h, &mu_id), VAE_OK);
    ck_assert_int_eq(vae_op_scale(g, mu_id, 0.0f, &lv), VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu_id, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_bernoulli_mlp(g, z, 0, VAE_ACT_NONE, 1, "p", &logits), VAE_OK);
    ck_assert_int_eq(vae_elbo_build(g, in, mu_id, lv, z, logits, VAE_LIKELIHOOD_BERNOULLI,
                                    VAE_OBJECTIVE_ELBO, 1.0f, &loss), VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    ck_assert_int_eq(vae_model_memory_limit(m), (int64_t)2 << 30);
    ck_assert_int_eq(vae_tensor_create(&x, 2, xd), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&mu, 2, xd), VAE_OK);
    vae_tensor_data(x)[0] = 0.5f;
    before = max_rss_kb();
    ck_assert_int_eq(vae_model_encode(m, x, mu, NULL), VAE_ERR_NO_MEMORY);
    expect_message("memory limit");
    ck_assert_int_eq(vae_model_planned_bytes(m), 0);
    ck_assert_msg(max_rss_kb() - before < 32 * 1024, "refusing the plan allocated %ld MB",
                  (max_rss_kb() - before) / 1024);
    /* the same graph from a file (1.8 KB with no parameters of note) */
    ck_assert_int_eq(vae_model_save(m, NULL, "test_misuse_concat.vae"), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, "test_misuse_concat.vae"), VAE_OK);
    remove("test_misuse_concat.vae");
    ck_assert_int_eq(vae_model_encode(l, x, mu, NULL), VAE_ERR_NO_MEMORY);
    ck_assert_int_eq(vae_model_planned_bytes(l), 0);
    vae_model_free(l);
    ck_assert_msg(max_rss_kb() - before < 32 * 1024, "refusing the plans allocated %ld MB",
                  (max_rss_kb() - before) / 1024);
    ck_assert_int_eq(vae_model_set_max_batch(m, 2), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x, mu, NULL), VAE_OK);
    ck_assert_float_eq_tol(vae_tensor_data(mu)[0], 0.5f * (1 << 21), 1.0f);
    ck_assert_int_eq(vae_model_set_memory_limit(m, 1 << 20), VAE_OK);
    ck_assert_int_eq(vae_model_set_max_batch(m, 1), VAE_OK);
    ck_assert_int_eq(vae_model_encode(m, x, mu, NULL), VAE_ERR_NO_MEMORY);
    ck_assert_int_eq(vae_model_set_memory_limit(m, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_memory_limit(NULL, 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_max_batch(m, 1 << 30), VAE_ERR_ARGUMENT);
    expect_message("1..1048576");
    vae_tensor_free(x);
    vae_tensor_free(mu);
    vae_model_free(m);
}
END_TEST

/* A restored optimizer whose first moment is near float's limit (a file
   may hold any finite value): the next update would overflow, so the step
   fails, and weights, moments and counts stay as they were; at a rate
   that keeps them finite the training goes on.  Infinite parameters set
   from outside are refused too. */
START_TEST(test_update_to_infinity)
{
    for (int kind = VAE_OPTIMIZER_SGD; kind <= VAE_OPTIMIZER_ADAM; kind += 2) {
        vae_model *m = small_vae();
        vae_optimizer *opt = NULL;
        vae_tensor *x = make_rows(8, 0.25f);
        float *before, *after, *moment = malloc(sizeof(float) * (size_t)vae_model_param_count(m));
        int64_t n = vae_model_param_count(m);
        ck_assert_int_eq(vae_optimizer_create(&opt, m, (vae_optimizer_kind)kind), VAE_OK);
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
        opt->moment1[0] = 3e38f;  /* as vae_model_load may restore it */
        opt->maxima_known = 0;
        ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 10.0), VAE_OK);
        memcpy(moment, opt->moment1, sizeof(float) * (size_t)n);
        before = params_of(m);
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_ERR_NOT_FINITE);
        expect_message("would make weights");
        after = params_of(m);
        ck_assert_mem_eq(before, after, (size_t)n * sizeof *before);
        ck_assert_mem_eq(moment, opt->moment1, (size_t)n * sizeof *moment);
        ck_assert_int_eq(vae_optimizer_steps(opt), 1);
        /* a rate of 0 changes no weight and overflows nothing */
        ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.0), VAE_OK);
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
        ck_assert_int_eq(vae_optimizer_steps(opt), 2);
        free(after);
        after = params_of(m);
        ck_assert_mem_eq(before, after, (size_t)n * sizeof *before);
        after[0] = INFINITY;
        ck_assert_int_eq(vae_model_params_set(m, after, n), VAE_ERR_NOT_FINITE);
        expect_message("value 0 is inf");
        free(before);
        free(after);
        free(moment);
        vae_tensor_free(x);
        vae_optimizer_free(opt);
        vae_model_free(m);
    }
}
END_TEST

/* The bounds that let an update skip the probe: in training's range the
   next update is safe and the bounds grow by one step's worth; near
   float's limit, or with unknown moments, it is not. */
START_TEST(test_update_bound)
{
    vae_model *m = small_vae();
    vae_optimizer *opt = NULL;
    double next[3];
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.5), VAE_OK);
    vae__optimizer_begin_step(opt);
    opt->m1_max = 2.0; /* momentum 0.9: the next velocity is at most 1.8 + 10 */
    ck_assert(vae__optimizer_next_bounds(opt, 3.0, 10.0, next));
    ck_assert_double_eq_tol(next[1], 11.8, 1e-12);
    ck_assert_double_eq_tol(next[0], 3.0 + 0.5 * 11.8, 1e-12);
    ck_assert(!vae__optimizer_next_bounds(opt, 1e38, 1.0, next));
    ck_assert(!vae__optimizer_next_bounds(opt, 1.0, 1e20, next));
    ck_assert(!vae__optimizer_next_bounds(opt, INFINITY, 1.0, next));
    opt->m1_max = 1e38;
    ck_assert(!vae__optimizer_next_bounds(opt, 1.0, 1.0, next));
    opt->m1_max = 1.0;
    opt->maxima_known = 0;
    ck_assert(!vae__optimizer_next_bounds(opt, 1.0, 1.0, next));
    vae_optimizer_free(opt);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    vae__optimizer_begin_step(opt);
    ck_assert(vae__optimizer_next_bounds(opt, 10.0, 100.0, next));
    ck_assert(next[2] >= 100.0 * 100.0);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

/* A Bernoulli decoder on values outside [0, 1]: training, evaluation and
   single steps are refused with the value; a Gaussian one takes them. */
START_TEST(test_bernoulli_needs_unit_range)
{
    vae_model *m = small_vae();
    vae_optimizer *opt = NULL;
    vae_dataset *good = make_data(1.0f), *bad = make_data(3.0f);
    vae_tensor *x = make_rows(4, 0.5f);
    double v;
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, bad, 10, NULL, NULL, NULL, NULL),
                     VAE_ERR_ARGUMENT);
    expect_message("values in [0, 1]");
    ck_assert_int_eq(vae_model_evaluate(m, bad, &v), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_log_likelihood(m, bad, 2, 1, NULL, NULL, &v, NULL),
                     VAE_ERR_ARGUMENT);
    vae_tensor_data(x)[5] = -0.25f;
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_ERR_ARGUMENT);
    expect_message("-0.25");
    vae_tensor_data(x)[5] = NAN;
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_ERR_ARGUMENT);
    vae_tensor_data(x)[5] = 1.0f;
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, good, 10, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_optimizer_steps(opt), 5);
    vae_dataset_free(good);
    vae_dataset_free(bad);
    vae_tensor_free(x);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

static int stop_after_one(void *user, int batch, int batches, float objective)
{
    (void)user, (void)batches, (void)objective;
    return batch >= 1;
}

/* An epoch stopped after a batch continues only with the same batch size
   (the position counts batches), also after a save and load. */
START_TEST(test_interrupted_epoch_keeps_its_batch)
{
    const char *path = "test_misuse_epoch.vae";
    vae_model *m = small_vae(), *l = NULL;
    vae_optimizer *opt = NULL, *r = NULL;
    vae_dataset *data = make_data(1.0f);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_model_epoch_batch(m), 0);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, data, 10, stop_after_one, NULL, NULL, NULL),
                     VAE_ERR_STOPPED);
    ck_assert_int_eq(vae_model_epoch_batch(m), 10);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, data, 20, NULL, NULL, NULL, NULL), VAE_ERR_STATE);
    expect_message("batches of 10, not 20");
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_int_eq(vae_optimizer_restore(&r, l), VAE_OK);
    ck_assert_int_eq(vae_model_epoch_batch(l), 10);
    ck_assert_int_eq(vae_model_train_epoch(l, r, data, 8, NULL, NULL, NULL, NULL), VAE_ERR_STATE);
    ck_assert_int_eq(vae_model_train_epoch(l, r, data, 10, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_epoch_batch(l), 0);
    ck_assert_int_eq(vae_model_epoch(l), 1);
    /* between epochs any size goes */
    ck_assert_int_eq(vae_model_train_epoch(l, r, data, 20, NULL, NULL, NULL, NULL), VAE_OK);
    remove(path);
    vae_dataset_free(data);
    vae_optimizer_free(opt);
    vae_optimizer_free(r);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

/* The history: every completed epoch records its means; hosts add
   columns; a save and load keeps all of it, with NaN where nothing was
   recorded. */
START_TEST(test_history)
{
    const char *path = "test_misuse_history.vae";
    vae_model *m = small_vae(), *l = NULL;
    vae_optimizer *opt = NULL;
    vae_dataset *data = make_data(1.0f);
    double obj[2], nelbo[2];
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_model_history_epochs(m), 0);
    ck_assert(isnan(vae_model_history_get(m, 1, "train_nelbo")));
    for (int e = 0; e < 2; e++)
        ck_assert_int_eq(vae_model_train_epoch(m, opt, data, 16, NULL, NULL, &obj[e], &nelbo[e]),
                         VAE_OK);
    ck_assert_int_eq(vae_model_history_set(m, 2, "test_loss", 12.5), VAE_OK);
    ck_assert_int_eq(vae_model_history_epochs(m), 2);
    ck_assert_int_eq(vae_model_history_columns(m), 5);
    ck_assert_str_eq(vae_model_history_column(m, 0), "train_objective");
    ck_assert_str_eq(vae_model_history_column(m, 2), "train_recon");
    ck_assert_str_eq(vae_model_history_column(m, 3), "train_kl");
    ck_assert_str_eq(vae_model_history_column(m, 4), "test_loss");
    ck_assert_ptr_null(vae_model_history_column(m, 5));
    for (int e = 1; e <= 2; e++) /* the terms add up to -ELBO */
        tu_expect_close(vae_model_history_get(m, e, "train_recon") +
                            vae_model_history_get(m, e, "train_kl"),
                        nelbo[e - 1], "recon + KL", e);
    ck_assert_int_eq(vae_model_history_set(m, 0, "x", 1.0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_history_set(m, 1, "two words", 1.0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_history_set(m, 1, "", 1.0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    for (int e = 1; e <= 2; e++) {
        ck_assert_double_eq(vae_model_history_get(l, e, "train_objective"), obj[e - 1]);
        ck_assert_double_eq(vae_model_history_get(l, e, "train_nelbo"), nelbo[e - 1]);
    }
    ck_assert(isnan(vae_model_history_get(l, 1, "test_loss")));
    ck_assert_double_eq(vae_model_history_get(l, 2, "test_loss"), 12.5);
    ck_assert(isnan(vae_model_history_get(l, 3, "test_loss")));
    ck_assert(isnan(vae_model_history_get(l, 1, "nothing")));
    ck_assert_int_eq(vae_model_history_epochs(l), 2);
    ck_assert_int_eq(vae_model_history_clear(l), VAE_OK);
    ck_assert_int_eq(vae_model_history_epochs(l), 0);
    ck_assert_int_eq(vae_model_history_columns(l), 0);
    ck_assert(isnan(vae_model_history_get(l, 1, "train_nelbo")));
    ck_assert_int_eq(vae_model_history_set(l, 1, "again", 2.0), VAE_OK);
    ck_assert_int_eq(vae_model_history_clear(NULL), VAE_ERR_ARGUMENT);
    remove(path);
    vae_dataset_free(data);
    vae_optimizer_free(opt);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

START_TEST(test_metadata)
{
    const char *path = "test_misuse_meta.vae";
    vae_model *m = small_vae(), *l = NULL;
    char *big = malloc(70000);
    memset(big, 'a', 69999);
    big[69999] = '\0';
    ck_assert_ptr_null(vae_model_metadata(m, "app.hidden"));
    ck_assert_int_eq(vae_model_set_metadata(m, "app.hidden", "400,200"), VAE_OK);
    ck_assert_int_eq(vae_model_set_metadata(m, "app.loss", "bce"), VAE_OK);
    ck_assert_int_eq(vae_model_set_metadata(m, "app.loss", "mse"), VAE_OK);
    ck_assert_int_eq(vae_model_set_metadata(m, "gone", "x"), VAE_OK);
    ck_assert_int_eq(vae_model_set_metadata(m, "gone", NULL), VAE_OK);
    ck_assert_int_eq(vae_model_set_metadata(m, "bad key", "x"), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_metadata(m, "big", big), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_set_metadata(m, "empty", ""), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_str_eq(vae_model_metadata(l, "app.hidden"), "400,200");
    ck_assert_str_eq(vae_model_metadata(l, "app.loss"), "mse");
    ck_assert_str_eq(vae_model_metadata(l, "empty"), "");
    ck_assert_ptr_null(vae_model_metadata(l, "gone"));
    ck_assert_ptr_null(vae_model_metadata(l, "big"));
    remove(path);
    free(big);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

/* log p(x) stopped by its callback leaves per_image as it was. */
static int stop_now(void *user, int done, int count, float nll)
{
    (void)user, (void)done, (void)count, (void)nll;
    return 1;
}

START_TEST(test_outputs_untouched_on_failure)
{
    vae_model *m = small_vae();
    vae_dataset *data = make_data(1.0f);
    double per_image[ROWS], mean = 7.0;
    int64_t zd[1] = {LATENT};
    vae_tensor *z = NULL, *out = make_rows(1, 0.0f);
    for (int i = 0; i < ROWS; i++)
        per_image[i] = -1.0;
    ck_assert_int_eq(vae_model_set_max_batch(m, 8), VAE_OK);
    ck_assert_int_eq(vae_model_log_likelihood(m, data, 4, 1, stop_now, NULL, &mean, per_image),
                     VAE_ERR_STOPPED);
    ck_assert_double_eq(mean, 7.0);
    for (int i = 0; i < ROWS; i++)
        ck_assert_double_eq(per_image[i], -1.0);
    ck_assert_int_eq(vae_model_log_likelihood(m, data, 4, 1, NULL, NULL, &mean, per_image), VAE_OK);
    ck_assert(per_image[0] < 0.0 && per_image[0] != -1.0);
    /* a 1-D z: the message says what was passed and what is needed */
    ck_assert_int_eq(vae_tensor_create(&z, 1, zd), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, out), VAE_ERR_SHAPE);
    expect_message("a 1-D tensor of 2 elements; pass rows: a tensor (n, 2)");
    vae_tensor_free(z);
    vae_tensor_free(out);
    vae_dataset_free(data);
    vae_model_free(m);
}
END_TEST

/* The learned Gaussian variance starts at sigma 0.135, named as vae.h says. */
START_TEST(test_learned_logvar_start)
{
    vae_graph *g = tu_small_graph(IN, HIDDEN, LATENT, VAE_ACT_RELU,
                                  VAE_LIKELIHOOD_GAUSSIAN_LEARNED, 1);
    int p;
    p = vae_graph_find(g, "likelihood.logvar");
    ck_assert_int_ge(p, 0);
    ck_assert_int_eq(vae_graph_node_size(g, p), IN);
    for (int i = 0; i < IN; i++)
        ck_assert_float_eq(g->params[g->nodes[p].param_offset + i], -4.0f);
    vae_graph_free(g);
}
END_TEST

/* Review findings: outputs of a failing layer stay as they were; names
   longer than a model file holds are refused, not cut; a full history
   stops training before it starts rather than saving an unloadable file;
   a successful load leaves the last error alone; truncating a data set
   narrows its value range. */
START_TEST(test_review_findings)
{
    const char *path = "test_misuse_review.vae";
    vae_graph *g = NULL;
    vae_model *m = small_vae(), *l = NULL;
    vae_optimizer *opt = NULL, *r = NULL;
    vae_dataset *data = make_data(1.0f);
    char long_name[300], column[16];
    int x, h, mu = -7, lv = -7, ctx = -7, nodes, dims[1] = {IN};
    float *v = malloc(sizeof(float) * ROWS * IN);
    vae_tensor *t = NULL;
    int64_t td[2] = {1, 1};

    ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 1, dims, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, x, 4, VAE_ACT_RELU, "h", &h), VAE_OK);
    nodes = vae_graph_node_count(g);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, 2, 1 << 25, "q", &mu, &lv, &ctx),
                     VAE_ERR_ARGUMENT);
    ck_assert(mu == -7 && lv == -7 && ctx == -7);
    ck_assert_int_eq(vae_graph_node_count(g), nodes);
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ck_assert_int_eq(vae_layer_dense(g, h, 3, VAE_ACT_NONE, long_name, &mu), VAE_ERR_ARGUMENT);
    expect_message("longer than 255 bytes");
    long_name[256] = '\0';
    ck_assert_int_eq(vae_graph_input(g, long_name, 1, dims, &mu), VAE_ERR_ARGUMENT);
    long_name[255] = '\0';
    ck_assert_int_eq(vae_graph_input(g, long_name, 1, dims, &mu), VAE_OK);
    ck_assert_int_eq(vae_tensor_from_host(NULL, 2, td, v), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_tensor_from_host(&t, 2, td, NULL), VAE_ERR_ARGUMENT);
    vae_graph_free(g);

    for (int c = 0; c < 64; c++) {
        snprintf(column, sizeof column, "c%d", c);
        ck_assert_int_eq(vae_model_history_set(m, 1, column, c), VAE_OK);
    }
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(m, opt, data, 10, NULL, NULL, NULL, NULL), VAE_ERR_STATE);
    expect_message("most it holds");
    ck_assert_int_eq(vae_optimizer_steps(opt), 0);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK);
    ck_assert_int_eq(vae_optimizer_get(opt, VAE_OPT_RHO, &(double){0}), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK); /* an SGD state: reads no rho */
    expect_message("sgd has no rho option");
    ck_assert_int_eq(vae_model_history_columns(l), 64);
    ck_assert_int_eq(vae_optimizer_restore(&r, l), VAE_OK);
    vae_dataset_free(data);

    tu_random(v, ROWS * IN, 11, 0.0f, 1.0f);
    v[ROWS * IN - 1] = 3.0f; /* the last row only */
    ck_assert_int_eq(vae_dataset_from_f32(&data, ROWS, 1, dims, v, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(l, data, &(double){0}), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_truncate(data, ROWS - 1), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(l, data, &(double){0}), VAE_OK);
    remove(path);
    free(v);
    vae_dataset_free(data);
    vae_optimizer_free(opt);
    vae_optimizer_free(r);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_graph_belongs_to_one_model);
    tcase_add_test(tc, test_unique_names);
    tcase_add_test(tc, test_roles_checked);
    tcase_add_test(tc, test_memory_limit);
    tcase_add_test(tc, test_update_to_infinity);
    tcase_add_test(tc, test_update_bound);
    tcase_add_test(tc, test_bernoulli_needs_unit_range);
    tcase_add_test(tc, test_interrupted_epoch_keeps_its_batch);
    tcase_add_test(tc, test_history);
    tcase_add_test(tc, test_metadata);
    tcase_add_test(tc, test_outputs_untouched_on_failure);
    tcase_add_test(tc, test_learned_logvar_start);
    tcase_add_test(tc, test_review_findings);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
