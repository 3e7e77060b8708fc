/* Optimizers: one and three steps of SGD with momentum, RMSprop and Adam
   against the formulas evaluated here in double precision, gradient
   clipping by global norm, settings and their validation. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 4 };
#define M_PI_VALUE 3.14159265358979323846

/* One input row; the zero makes one gradient exactly 0 (eps keeps 0/0 away). */
static const float X[N] = {1.0f, -0.5f, 2.0f, 0.0f};

/* objective = sum_i x_i w_i^2 for one row, so dL/dw_i = 2 x_i w_i: the
   gradient is known exactly and changes from step to step. */
static vae_model *quadratic_model(void)
{
    int x, w, xw, xww, per_row, dims[1] = {N};
    vae_graph *g = tu_graph(N, &x);
    ck_assert_int_eq(vae_graph_param(g, "w", 1, dims, 1.0f, &w), VAE_OK);
    ck_assert_int_eq(vae_op_mul(g, x, w, &xw), VAE_OK);
    ck_assert_int_eq(vae_op_mul(g, xw, w, &xww), VAE_OK);
    ck_assert_int_eq(vae_op_sum(g, xww, &per_row), VAE_OK);
    return tu_model(g, x, per_row);
}

static vae_tensor *input_row(void)
{
    int64_t dims[2] = {1, N};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_from_host(&t, 2, dims, X), VAE_OK);
    return t;
}

typedef struct ref_state {
    double p[N], m1[N], m2[N];
    int t;
} ref_state;

/* One reference step of `kind` with settings s (indexed by option),
   gradient clipped to global norm s[CLIP] when that is > 0. */
static void ref_step(ref_state *r, vae_optimizer_kind kind, const double *s)
{
    double g[N], sumsq = 0.0, scale = 1.0;
    double lr = s[VAE_OPT_LEARNING_RATE];
    for (int i = 0; i < N; i++) {
        g[i] = 2.0 * X[i] * r->p[i];
        sumsq += g[i] * g[i];
    }
    if (s[VAE_OPT_CLIP_NORM] > 0.0 && sqrt(sumsq) > s[VAE_OPT_CLIP_NORM])
        scale = s[VAE_OPT_CLIP_NORM] / sqrt(sumsq);
    r->t++;
    for (int i = 0; i < N; i++) {
        double gi = g[i] * scale;
        switch (kind) {
        case VAE_OPTIMIZER_SGD:
            r->m1[i] = s[VAE_OPT_MOMENTUM] * r->m1[i] + gi;
            r->p[i] -= lr * r->m1[i];
            break;
        case VAE_OPTIMIZER_RMSPROP:
            r->m1[i] = s[VAE_OPT_RHO] * r->m1[i] + (1.0 - s[VAE_OPT_RHO]) * gi * gi;
            r->p[i] -= lr * gi / (sqrt(r->m1[i]) + s[VAE_OPT_EPSILON]);
            break;
        case VAE_OPTIMIZER_ADAM: {
            double b1 = s[VAE_OPT_BETA1], b2 = s[VAE_OPT_BETA2];
            r->m1[i] = b1 * r->m1[i] + (1.0 - b1) * gi;
            r->m2[i] = b2 * r->m2[i] + (1.0 - b2) * gi * gi;
            r->p[i] -= lr / (1.0 - pow(b1, r->t)) * r->m1[i] /
                       (sqrt(r->m2[i]) / sqrt(1.0 - pow(b2, r->t)) + s[VAE_OPT_EPSILON]);
            break;
        }
        }
    }
}

static void expect_params(vae_model *m, const ref_state *r, const char *what)
{
    float p[N];
    ck_assert_int_eq(vae_model_params_get(m, p, N), VAE_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(p[i] - r->p[i]) <= 2e-6 * (1.0 + fabs(r->p[i])),
                      "%s step %d param %d: got %.9g, expected %.9g", what, r->t, i, p[i], r->p[i]);
}

/* The options each kind has, as vae.h lists them. */
static int kind_has(vae_optimizer_kind kind, int option)
{
    static const char has[3][VAE_OPT_WARMUP_STEPS + 1] = {
        /* lr mom b1 b2 eps rho clip, then decay and the schedule's 5 for all */
        {1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}, /* SGD */
        {1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* RMSprop */
        {1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1}, /* Adam */
    };
    return has[kind][option];
}

/* Runs 3 steps of `kind` with non-default settings through the public
   API and compares the parameters after steps 1 and 3 with ref_step. */
static void check_three_steps(vae_optimizer_kind kind, const double *settings, const char *what)
{
    vae_model *m = quadratic_model();
    vae_tensor *x = input_row();
    vae_optimizer *opt = NULL;
    ref_state r = {0};
    float p0[N];
    ck_assert_int_eq(vae_optimizer_create(&opt, m, kind), VAE_OK);
    for (int o = 0; o <= VAE_OPT_CLIP_NORM; o++)
        if (kind_has(kind, o))
            ck_assert_int_eq(vae_optimizer_set(opt, (vae_optimizer_option)o, settings[o]), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p0, N), VAE_OK);
    for (int i = 0; i < N; i++)
        r.p[i] = p0[i];
    for (int step = 1; step <= 3; step++) {
        double obj = 0.0, expected_obj = 0.0;
        for (int i = 0; i < N; i++)
            expected_obj += X[i] * r.p[i] * r.p[i];
        ck_assert_int_eq(vae_model_train_step(m, opt, x, &obj, NULL), VAE_OK);
        /* the reported objective is the one before the update */
        ck_assert_double_eq_tol(obj, expected_obj, 1e-5);
        ref_step(&r, kind, settings);
        ck_assert_int_eq(vae_optimizer_steps(opt), step);
        if (step == 1 || step == 3)
            expect_params(m, &r, what);
    }
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_model_free(m);
}

/* The analytic gradient of the test objective is 2 x w, as assumed. */
START_TEST(test_gradient_is_known)
{
    vae_model *m = quadratic_model();
    float p[N], g[N];
    ck_assert_int_eq(vae_model_params_get(m, p, N), VAE_OK);
    tu_gradient(m, X, 1, g);
    for (int i = 0; i < N; i++)
        ck_assert_float_eq_tol(g[i], 2.0f * X[i] * p[i], 1e-6f);
    vae_model_free(m);
}
END_TEST

/* SGD with momentum: v = mom v + g; p -= lr v. */
START_TEST(test_sgd_momentum)
{
    double s[7] = {[VAE_OPT_LEARNING_RATE] = 0.1, [VAE_OPT_MOMENTUM] = 0.5, [VAE_OPT_BETA1] = 0.9,
                   [VAE_OPT_BETA2] = 0.999, [VAE_OPT_EPSILON] = 1e-8, [VAE_OPT_RHO] = 0.9};
    check_three_steps(VAE_OPTIMIZER_SGD, s, "sgd");
}
END_TEST

/* RMSprop as Keras: s = rho s + (1 - rho) g^2; p -= lr g / (sqrt(s) + eps). */
START_TEST(test_rmsprop)
{
    double s[7] = {[VAE_OPT_LEARNING_RATE] = 0.05, [VAE_OPT_MOMENTUM] = 0.9, [VAE_OPT_BETA1] = 0.9,
                   [VAE_OPT_BETA2] = 0.999, [VAE_OPT_EPSILON] = 1e-7, [VAE_OPT_RHO] = 0.8};
    check_three_steps(VAE_OPTIMIZER_RMSPROP, s, "rmsprop");
}
END_TEST

/* Adam as PyTorch, with bias correction; non-default betas so that the
   correction matters at steps 1 and 3. */
START_TEST(test_adam)
{
    double s[7] = {[VAE_OPT_LEARNING_RATE] = 0.05, [VAE_OPT_MOMENTUM] = 0.9, [VAE_OPT_BETA1] = 0.8,
                   [VAE_OPT_BETA2] = 0.95, [VAE_OPT_EPSILON] = 1e-8, [VAE_OPT_RHO] = 0.9};
    check_three_steps(VAE_OPTIMIZER_ADAM, s, "adam");
}
END_TEST

/* Adam with its default settings (lr 1e-3): after step 1 each parameter
   with a non-zero gradient has moved by lr against its gradient's sign. */
START_TEST(test_adam_defaults_first_step)
{
    vae_model *m = quadratic_model();
    vae_tensor *x = input_row();
    vae_optimizer *opt;
    float p0[N], p1[N];
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p0, N), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p1, N), VAE_OK);
    for (int i = 0; i < N; i++) {
        double g = 2.0 * X[i] * p0[i];
        double expected = g == 0.0 ? p0[i] : p0[i] - 1e-3 * (g > 0 ? 1 : -1);
        ck_assert_double_eq_tol(p1[i], expected, 1e-6);
    }
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

/* Clipping by global norm: with a gradient of norm > clip, the update is
   that of the gradient scaled to norm = clip (SGD, three steps, so the
   momentum carries clipped gradients); a clip above the norm changes
   nothing. */
START_TEST(test_clip_norm)
{
    double s[7] = {[VAE_OPT_LEARNING_RATE] = 0.1, [VAE_OPT_MOMENTUM] = 0.5, [VAE_OPT_BETA1] = 0.9,
                   [VAE_OPT_BETA2] = 0.999, [VAE_OPT_EPSILON] = 1e-8, [VAE_OPT_RHO] = 0.9,
                   [VAE_OPT_CLIP_NORM] = 0.05};
    vae_model *m = quadratic_model();
    vae_tensor *x = input_row();
    vae_optimizer *opt;
    float p0[N], p1[N];
    double norm = 0.0;
    ck_assert_int_eq(vae_model_params_get(m, p0, N), VAE_OK);
    for (int i = 0; i < N; i++)
        norm += 4.0 * X[i] * X[i] * p0[i] * p0[i];
    norm = sqrt(norm);
    ck_assert_double_gt(norm, 0.05 * 4);  /* the clip does bite */
    check_three_steps(VAE_OPTIMIZER_SGD, s, "sgd clipped");

    /* one step by hand: p1 = p0 - lr * g * clip / |g| */
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.1), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_CLIP_NORM, 0.05), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p1, N), VAE_OK);
    for (int i = 0; i < N; i++)
        ck_assert_double_eq_tol(p1[i], p0[i] - 0.1 * 2.0 * X[i] * p0[i] * 0.05 / norm, 1e-6);
    vae_optimizer_free(opt);

    /* a clip above the norm: the plain SGD step */
    ck_assert_int_eq(vae_model_params_set(m, p0, N), VAE_OK);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.1), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_CLIP_NORM, norm * 1.5), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p1, N), VAE_OK);
    for (int i = 0; i < N; i++)
        ck_assert_double_eq_tol(p1[i], p0[i] - 0.1 * 2.0 * X[i] * p0[i], 1e-6);
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

/* The internal update touches only [lo, hi), scales the gradient and sets
   the range's gradient back to zero (parameter gradients are zero between
   steps). */
START_TEST(test_update_range_and_scale)
{
    vae_model *m = quadratic_model();
    vae_optimizer *opt;
    float p[N] = {1.0f, 2.0f, 3.0f, 4.0f}, g[N] = {1.0f, 1.0f, 1.0f, 1.0f};
    update_stats st = {0};
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    vae__optimizer_begin_step(opt);
    vae__optimizer_update(opt, p, g, 0.5f, 1, 3); /* lr 1e-3, v = 0.5 */
    ck_assert_float_eq(p[0], 1.0f);
    ck_assert_float_eq_tol(p[1], 2.0f - 0.0005f, 1e-7f);
    ck_assert_float_eq_tol(p[2], 3.0f - 0.0005f, 1e-7f);
    ck_assert_float_eq(p[3], 4.0f);
    ck_assert(g[0] == 1.0f && g[1] == 0.0f && g[2] == 0.0f && g[3] == 1.0f);
    g[1] = g[2] = 1.0f;
    /* the probe computes the same update and stores nothing: the largest
       magnitudes it would leave are weight 3 - lr v and momentum 1.45 */
    vae__optimizer_probe(opt, p, g, 1.0f, 1, 3, &st);
    ck_assert(!isnan(st.probe));
    ck_assert_float_eq_tol(st.p_max, 3.0f - 0.0005f - 0.00145f, 1e-7f);
    ck_assert_float_eq_tol(st.m1_max, 1.45f, 1e-7f);
    ck_assert_float_eq_tol(p[1], 2.0f - 0.0005f, 1e-7f);
    ck_assert(g[1] == 1.0f);
    vae__optimizer_update(opt, p, g, 1.0f, 1, 3); /* v = 0.9 * 0.5 + 1 */
    ck_assert_float_eq_tol(p[1], 2.0f - 0.0005f - 0.00145f, 1e-7f);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

/* The schedule's rate by the formulas of vae.h, computed here. */
static double expected_rate(int schedule, double lr, double steps, double gamma, double min,
                            double warmup, int t)
{
    double r = lr;
    if (schedule == VAE_LR_STEP)
        r = lr * pow(gamma, floor(t / steps));
    else if (schedule == VAE_LR_EXPONENTIAL)
        r = lr * pow(gamma, t);
    else if (schedule == VAE_LR_COSINE)
        r = min + (lr - min) * (1.0 + cos(M_PI_VALUE * (t < steps ? t : steps) / steps)) / 2.0;
    return t < warmup ? r * (t + 1.0) / warmup : r;
}

/* A cosine schedule with warm-up: before every step, batch 0 included,
   the rate is the formula's, and the step (SGD without momentum) moves the
   weights by exactly that rate times the gradient.  Step and exponential
   schedules by the formula too. */
START_TEST(test_schedules)
{
    vae_model *m = quadratic_model();
    vae_tensor *x = input_row();
    vae_optimizer *opt;
    float p0[N], p1[N];
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_MOMENTUM, 0.0), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.1), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_SCHEDULE, VAE_LR_COSINE), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_SCHEDULE_STEPS, 8), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_MIN_RATE, 0.01), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_WARMUP_STEPS, 3), VAE_OK);
    for (int k = 0; k < 11; k++) {
        double rate = expected_rate(VAE_LR_COSINE, 0.1, 8, 0.1, 0.01, 3, k);
        ck_assert_double_eq_tol(vae_optimizer_rate(opt), rate, 1e-15);
        ck_assert_int_eq(vae_model_params_get(m, p0, N), VAE_OK);
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
        ck_assert_int_eq(vae_model_params_get(m, p1, N), VAE_OK);
        for (int i = 0; i < N; i++)
            ck_assert_double_eq_tol(p1[i], p0[i] - rate * 2.0 * X[i] * p0[i], 1e-6);
    }
    ck_assert_double_eq_tol(vae_optimizer_rate(opt), 0.01, 1e-15); /* past the steps: the minimum */
    for (int sched = VAE_LR_STEP; sched <= VAE_LR_EXPONENTIAL; sched++) {
        vae_optimizer *o2;
        ck_assert_int_eq(vae_optimizer_create(&o2, m, VAE_OPTIMIZER_ADAM), VAE_OK);
        ck_assert_int_eq(vae_optimizer_set(o2, VAE_OPT_SCHEDULE, sched), VAE_OK);
        ck_assert_int_eq(vae_optimizer_set(o2, VAE_OPT_SCHEDULE_STEPS, 3), VAE_OK);
        ck_assert_int_eq(vae_optimizer_set(o2, VAE_OPT_SCHEDULE_GAMMA, 0.5), VAE_OK);
        for (int k = 0; k < 7; k++) {
            ck_assert_double_eq_tol(vae_optimizer_rate(o2),
                                    expected_rate(sched, 1e-3, 3, 0.5, 0, 0, k), 1e-18);
            ck_assert_int_eq(vae_model_train_step(m, o2, x, NULL, NULL), VAE_OK);
        }
        vae_optimizer_free(o2);
    }
    ck_assert(isnan(vae_optimizer_rate(NULL)));
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

/* Decoupled weight decay (AdamW's): SGD and Adam's first step by hand. */
START_TEST(test_weight_decay)
{
    vae_model *m = quadratic_model();
    vae_tensor *x = input_row();
    vae_optimizer *opt;
    float p0[N], p1[N];
    ck_assert_int_eq(vae_model_params_get(m, p0, N), VAE_OK);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_MOMENTUM, 0.0), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.1), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_WEIGHT_DECAY, 0.5), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p1, N), VAE_OK);
    for (int i = 0; i < N; i++)
        ck_assert_double_eq_tol(p1[i], p0[i] * (1.0 - 0.05) - 0.1 * 2.0 * X[i] * p0[i], 1e-6);
    vae_optimizer_free(opt);
    ck_assert_int_eq(vae_model_params_set(m, p0, N), VAE_OK);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.01), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_WEIGHT_DECAY, 0.1), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(m, p1, N), VAE_OK);
    for (int i = 0; i < N; i++) {
        /* Adam's first step: lr * g / (|g| + eps sqrt(1 - beta2)) */
        double g = 2.0 * X[i] * p0[i];
        double step = 0.01 * g / (fabs(g) + 1e-8 * sqrt(1.0 - 0.999));
        ck_assert_double_eq_tol(p1[i], p0[i] * (1.0 - 0.01 * 0.1) - step, 1e-6);
    }
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_model_free(m);
}
END_TEST

/* Schedule settings out of range are refused; the settings and the step
   count come back from a file, so the schedule goes on where it was. */
START_TEST(test_schedule_settings)
{
    static const struct { vae_optimizer_option o; double v; } bad[] = {
        {VAE_OPT_SCHEDULE, 4}, {VAE_OPT_SCHEDULE, 1.5}, {VAE_OPT_SCHEDULE_STEPS, 0},
        {VAE_OPT_SCHEDULE_STEPS, 2.5}, {VAE_OPT_SCHEDULE_GAMMA, 0}, {VAE_OPT_SCHEDULE_GAMMA, 1.5},
        {VAE_OPT_WARMUP_STEPS, -1}, {VAE_OPT_WARMUP_STEPS, 0.5}, {VAE_OPT_WEIGHT_DECAY, -0.1},
        {VAE_OPT_MIN_RATE, INFINITY},
    };
    const char *path = "test_optim_schedule.vae";
    vae_model *m = quadratic_model(), *l = NULL;
    vae_tensor *x = input_row();
    vae_optimizer *opt, *r = NULL;
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_RMSPROP), VAE_OK);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(vae_optimizer_set(opt, bad[i].o, bad[i].v) == VAE_ERR_ARGUMENT,
                      "option %d value %g accepted", (int)bad[i].o, bad[i].v);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_SCHEDULE, VAE_LR_EXPONENTIAL), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_SCHEDULE_GAMMA, 0.9), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_WEIGHT_DECAY, 0.01), VAE_OK);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(vae_model_train_step(m, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_int_eq(vae_optimizer_restore(&r, l), VAE_OK);
    ck_assert_double_eq(vae_optimizer_rate(r), vae_optimizer_rate(opt));
    ck_assert_double_eq_tol(vae_optimizer_rate(r), 1e-3 * pow(0.9, 5), 1e-18);
    {
        double v;
        ck_assert_int_eq(vae_optimizer_get(r, VAE_OPT_WEIGHT_DECAY, &v), VAE_OK);
        ck_assert_double_eq(v, 0.01);
    }
    remove(path);
    vae_optimizer_free(opt);
    vae_optimizer_free(r);
    vae_tensor_free(x);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

/* Defaults of each kind, documented in vae.h; an option the kind does
   not have can be neither read nor set. */
START_TEST(test_defaults)
{
    /* then for every kind: no decay, constant, 1000 steps, gamma 0.1,
       minimum 0, no warm-up */
    static const double adam[] = {1e-3, 0, 0.9, 0.999, 1e-8, 0, 0.0, 0, 0, 1000, 0.1, 0, 0};
    static const double sgd[] = {1e-3, 0.9, 0, 0, 0, 0, 0.0, 0, 0, 1000, 0.1, 0, 0};
    static const double rmsprop[] = {1e-3, 0, 0, 0, 1e-7, 0.9, 0.0, 0, 0, 1000, 0.1, 0, 0};
    const double *defaults[3] = {sgd, rmsprop, adam};
    vae_model *m = quadratic_model();
    for (int k = VAE_OPTIMIZER_SGD; k <= VAE_OPTIMIZER_ADAM; k++) {
        vae_optimizer *opt;
        vae_optimizer_kind kind;
        double v = -1.0;
        ck_assert_int_eq(vae_optimizer_create(&opt, m, (vae_optimizer_kind)k), VAE_OK);
        ck_assert_int_eq(vae_optimizer_steps(opt), 0);
        ck_assert_int_eq(vae_optimizer_get_kind(opt, &kind), VAE_OK);
        ck_assert_int_eq(kind, k);
        for (int o = 0; o <= VAE_OPT_WARMUP_STEPS; o++) {
            if (kind_has(kind, o)) {
                ck_assert_int_eq(vae_optimizer_get(opt, (vae_optimizer_option)o, &v), VAE_OK);
                ck_assert_double_eq(v, defaults[k][o]);
                continue;
            }
            ck_assert_int_eq(vae_optimizer_get(opt, (vae_optimizer_option)o, &v), VAE_ERR_ARGUMENT);
            ck_assert_int_eq(vae_optimizer_set(opt, (vae_optimizer_option)o, 0.5), VAE_ERR_ARGUMENT);
            ck_assert_ptr_nonnull(strstr(vae_last_error(), "has no"));
        }
        ck_assert_int_eq(vae_optimizer_get_kind(opt, NULL), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(vae_optimizer_get_kind(NULL, &kind), VAE_ERR_ARGUMENT);
        vae_optimizer_free(opt);
    }
    vae_model_free(m);
}
END_TEST

/* Bad values are refused with VAE_ERR_ARGUMENT and leave the setting as
   it was; good boundary values are taken. */
START_TEST(test_set_rejects)
{
    static const struct { vae_optimizer_kind k; vae_optimizer_option o; double v; } bad[] = {
        {VAE_OPTIMIZER_ADAM, VAE_OPT_LEARNING_RATE, -1e-3},
        {VAE_OPTIMIZER_ADAM, VAE_OPT_LEARNING_RATE, NAN},
        {VAE_OPTIMIZER_ADAM, VAE_OPT_LEARNING_RATE, INFINITY},
        {VAE_OPTIMIZER_ADAM, VAE_OPT_LEARNING_RATE, 1e31},
        {VAE_OPTIMIZER_SGD, VAE_OPT_MOMENTUM, 1.0}, {VAE_OPTIMIZER_SGD, VAE_OPT_MOMENTUM, -0.1},
        {VAE_OPTIMIZER_ADAM, VAE_OPT_BETA1, 1.0}, {VAE_OPTIMIZER_ADAM, VAE_OPT_BETA1, NAN},
        {VAE_OPTIMIZER_ADAM, VAE_OPT_BETA2, 1.0}, {VAE_OPTIMIZER_ADAM, VAE_OPT_BETA2, 1.5},
        {VAE_OPTIMIZER_RMSPROP, VAE_OPT_RHO, 1.0}, {VAE_OPTIMIZER_ADAM, VAE_OPT_EPSILON, 0.0},
        {VAE_OPTIMIZER_RMSPROP, VAE_OPT_EPSILON, -1e-8},
        {VAE_OPTIMIZER_ADAM, VAE_OPT_CLIP_NORM, -1.0}, {VAE_OPTIMIZER_SGD, VAE_OPT_CLIP_NORM, NAN},
    };
    vae_model *m = quadratic_model();
    vae_optimizer *opt;
    double before, after;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(vae_optimizer_create(&opt, m, bad[i].k), VAE_OK);
        ck_assert_int_eq(vae_optimizer_get(opt, bad[i].o, &before), VAE_OK);
        ck_assert_msg(vae_optimizer_set(opt, bad[i].o, bad[i].v) == VAE_ERR_ARGUMENT,
                      "option %d value %g accepted", (int)bad[i].o, bad[i].v);
        ck_assert_int_eq(vae_optimizer_get(opt, bad[i].o, &after), VAE_OK);
        ck_assert_double_eq(after, before);
        vae_optimizer_free(opt);
    }
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, (vae_optimizer_option)13, 0.5), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_optimizer_set(opt, (vae_optimizer_option)-1, 0.5), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_optimizer_get(opt, (vae_optimizer_option)13, &after), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_optimizer_get(opt, VAE_OPT_BETA1, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_optimizer_set(NULL, VAE_OPT_BETA1, 0.5), VAE_ERR_ARGUMENT);
    /* boundaries that are valid */
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 0.0), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_BETA1, 0.0), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_BETA2, 0.9999), VAE_OK);
    ck_assert_int_eq(vae_optimizer_get(opt, VAE_OPT_BETA2, &after), VAE_OK);
    ck_assert_double_eq(after, 0.9999);
    vae_optimizer_free(opt);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, (vae_optimizer_kind)3), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_optimizer_create(NULL, m, VAE_OPTIMIZER_SGD), VAE_ERR_ARGUMENT);
    vae_model_free(m);
}
END_TEST

/* An optimizer bound to one model is refused by another, which keeps its
   parameters. */
START_TEST(test_other_model)
{
    vae_model *a = quadratic_model(), *b = quadratic_model();
    vae_tensor *x = input_row();
    vae_optimizer *opt;
    float before[N], after[N];
    ck_assert_int_eq(vae_optimizer_create(&opt, a, VAE_OPTIMIZER_SGD), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(b, before, N), VAE_OK);
    ck_assert_int_eq(vae_model_train_step(b, opt, x, NULL, NULL), VAE_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "another model"));
    ck_assert_int_eq(vae_model_save(b, opt, "/nonexistent-dir/x.vae"), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_params_get(b, after, N), VAE_OK);
    ck_assert_mem_eq(before, after, sizeof before);
    ck_assert_int_eq(vae_optimizer_steps(opt), 0);
    ck_assert_int_eq(vae_model_train_step(a, opt, x, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_optimizer_steps(opt), 1);
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_model_free(a);
    vae_model_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_gradient_is_known);
    tcase_add_test(tc, test_sgd_momentum);
    tcase_add_test(tc, test_rmsprop);
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_adam_defaults_first_step);
    tcase_add_test(tc, test_clip_norm);
    tcase_add_test(tc, test_update_range_and_scale);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_weight_decay);
    tcase_add_test(tc, test_schedule_settings);
    tcase_add_test(tc, test_set_rejects);
    tcase_add_test(tc, test_other_model);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
