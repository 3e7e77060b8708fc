/* Optimizers: SGD with momentum, RMSprop and Adam, each one loop over a
   range of the flat parameter array (workers update disjoint ranges). */
#include "model.h"

#include <math.h>
#include <stdlib.h>

static const char *const kind_names[] = {"sgd", "rmsprop", "adam"};

static void set_defaults(vae_optimizer *o)
{
    double *s = o->settings;
    s[VAE_OPT_LEARNING_RATE] = 1e-3;
    s[VAE_OPT_MOMENTUM] = 0.9;
    s[VAE_OPT_BETA1] = 0.9;
    s[VAE_OPT_BETA2] = 0.999;
    s[VAE_OPT_EPSILON] = o->kind == VAE_OPTIMIZER_RMSPROP ? 1e-7 : 1e-8;
    s[VAE_OPT_RHO] = 0.9;
    s[VAE_OPT_CLIP_NORM] = 0.0;
    s[VAE_OPT_WEIGHT_DECAY] = 0.0;
    s[VAE_OPT_SCHEDULE] = VAE_LR_CONSTANT;
    s[VAE_OPT_SCHEDULE_STEPS] = 1000.0;
    s[VAE_OPT_SCHEDULE_GAMMA] = 0.1;
    s[VAE_OPT_MIN_RATE] = 0.0;
    s[VAE_OPT_WARMUP_STEPS] = 0.0;
}

vae_status vae__optimizer_alloc(vae_optimizer **out, vae_model *m, vae_optimizer_kind kind)
{
    vae_optimizer *o;
    if ((int)kind < 0 || kind > VAE_OPTIMIZER_ADAM)
        return vae__fail(VAE_ERR_ARGUMENT, "unknown optimizer kind %d", (int)kind);
    if (!(o = vae__calloc(1, sizeof *o)))
        return VAE_ERR_NO_MEMORY;
    o->model = m;
    o->kind = kind;
    o->n = m->g->n_params;
    o->maxima_known = 1; /* zero moments */
    set_defaults(o);
    o->moment1 = vae__alloc_floats(o->n);
    if (o->moment1 && kind == VAE_OPTIMIZER_ADAM)
        o->moment2 = vae__alloc_floats(o->n);
    if (!o->moment1 || (kind == VAE_OPTIMIZER_ADAM && !o->moment2)) {
        vae_optimizer_free(o);
        return VAE_ERR_NO_MEMORY;
    }
    *out = o;
    return VAE_OK;
}

VAE_API vae_status vae_optimizer_create(vae_optimizer **out, vae_model *m, vae_optimizer_kind kind)
{
    if (!out || !m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_optimizer_create: NULL argument");
    return vae__optimizer_alloc(out, m, kind);
}

VAE_API vae_status vae_optimizer_restore(vae_optimizer **out, vae_model *m)
{
    if (!out || !m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_optimizer_restore: NULL argument");
    if (!m->saved_optimizer)
        return vae__fail(VAE_ERR_STATE, "vae_optimizer_restore: the model was not loaded with "
                         "a training state (or it was already restored)");
    *out = m->saved_optimizer;
    m->saved_optimizer = NULL;
    return VAE_OK;
}

VAE_API void vae_optimizer_free(vae_optimizer *o)
{
    if (!o)
        return;
    vae__free_aligned(o->moment1);
    vae__free_aligned(o->moment2);
    free(o);
}

/* Which options each kind has: setting another is an error, not a no-op. */
int vae__optimizer_has_option(vae_optimizer_kind kind, vae_optimizer_option option)
{
    switch (option) {
    case VAE_OPT_LEARNING_RATE:
    case VAE_OPT_CLIP_NORM:
    case VAE_OPT_WEIGHT_DECAY:
    case VAE_OPT_SCHEDULE:
    case VAE_OPT_SCHEDULE_STEPS:
    case VAE_OPT_SCHEDULE_GAMMA:
    case VAE_OPT_MIN_RATE:
    case VAE_OPT_WARMUP_STEPS: return 1;
    case VAE_OPT_MOMENTUM: return kind == VAE_OPTIMIZER_SGD;
    case VAE_OPT_BETA1:
    case VAE_OPT_BETA2: return kind == VAE_OPTIMIZER_ADAM;
    case VAE_OPT_EPSILON: return kind != VAE_OPTIMIZER_SGD;
    case VAE_OPT_RHO: return kind == VAE_OPTIMIZER_RMSPROP;
    }
    return 0;
}

static const char *const option_names[OPTIMIZER_SETTINGS] = {
    "learning rate", "momentum", "beta1", "beta2", "epsilon", "rho", "clip norm",
    "weight decay", "schedule", "schedule steps", "schedule gamma", "minimum rate",
    "warm-up steps",
};

static vae_status check_option(const vae_optimizer *o, vae_optimizer_option option, const char *what)
{
    if (!o)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: optimizer is NULL", what);
    if ((int)option < 0 || (int)option >= OPTIMIZER_SETTINGS)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: unknown option %d", what, (int)option);
    if (!vae__optimizer_has_option(o->kind, option))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: %s has no %s option", what, kind_names[o->kind],
                         option_names[option]);
    return VAE_OK;
}

/* The range each option takes, as text for messages; 0 if value is in it. */
static const char *out_of_range(vae_optimizer_option option, double value)
{
    int whole = value == floor(value) && value < 9007199254740992.0;
    switch (option) {
    case VAE_OPT_MOMENTUM:
    case VAE_OPT_BETA1:
    case VAE_OPT_BETA2:
    case VAE_OPT_RHO: return value >= 0.0 && value < 1.0 ? NULL : "0 <= value < 1";
    case VAE_OPT_EPSILON: return value > 0.0 ? NULL : "value > 0";
    case VAE_OPT_LEARNING_RATE:
    case VAE_OPT_MIN_RATE:
        /* a rate that rounds to infinity in float is no rate */
        return value >= 0.0 && value <= 1e30 ? NULL : "0 <= value <= 1e30";
    case VAE_OPT_SCHEDULE:
        return whole && value >= 0.0 && value <= VAE_LR_COSINE ? NULL : "a vae_lr_schedule";
    case VAE_OPT_SCHEDULE_STEPS: return whole && value >= 1.0 ? NULL : "a whole number >= 1";
    case VAE_OPT_WARMUP_STEPS: return whole && value >= 0.0 ? NULL : "a whole number >= 0";
    case VAE_OPT_SCHEDULE_GAMMA: return value > 0.0 && value <= 1.0 ? NULL : "0 < value <= 1";
    default: return value >= 0.0 ? NULL : "finite, >= 0";
    }
}

vae_status vae__optimizer_check_value(const vae_optimizer *o, vae_optimizer_option option,
                                      double value, const char *what)
{
    const char *range = isfinite(value) ? out_of_range(option, value) : "finite";
    if (range)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: %s %g is out of range for %s (%s)", what,
                         option_names[option], value, kind_names[o->kind], range);
    return VAE_OK;
}

double vae__optimizer_rate_at(const vae_optimizer *o, int64_t t)
{
    const double *s = o->settings;
    double lr = s[VAE_OPT_LEARNING_RATE], gamma = s[VAE_OPT_SCHEDULE_GAMMA];
    double steps = s[VAE_OPT_SCHEDULE_STEPS], warmup = s[VAE_OPT_WARMUP_STEPS];
    switch ((int)s[VAE_OPT_SCHEDULE]) {
    case VAE_LR_STEP: lr *= pow(gamma, floor((double)t / steps)); break;
    case VAE_LR_EXPONENTIAL: lr *= pow(gamma, (double)t); break;
    case VAE_LR_COSINE: {
        double min = s[VAE_OPT_MIN_RATE], done = fmin((double)t, steps) / steps;
        lr = min + (lr - min) * 0.5 * (1.0 + cos(3.14159265358979323846 * done));
        break;
    }
    }
    return warmup > 0.0 && (double)t < warmup ? lr * (fmax((double)t, 0.0) + 1.0) / warmup : lr;
}

VAE_API double vae_optimizer_rate(const vae_optimizer *o)
{
    return o ? vae__optimizer_rate_at(o, o->steps) : NAN;
}

VAE_API vae_status vae_optimizer_set(vae_optimizer *o, vae_optimizer_option option, double value)
{
    VAE_TRY(check_option(o, option, "vae_optimizer_set"));
    VAE_TRY(vae__optimizer_check_value(o, option, value, "vae_optimizer_set"));
    o->settings[option] = value;
    return VAE_OK;
}

VAE_API vae_status vae_optimizer_get(const vae_optimizer *o, vae_optimizer_option option,
                                     double *value)
{
    VAE_TRY(check_option(o, option, "vae_optimizer_get"));
    if (!value)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_optimizer_get: value is NULL");
    *value = o->settings[option];
    return VAE_OK;
}

VAE_API vae_status vae_optimizer_get_kind(const vae_optimizer *o, vae_optimizer_kind *kind)
{
    if (!o || !kind)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_optimizer_get_kind: NULL argument");
    *kind = o->kind;
    return VAE_OK;
}

VAE_API int64_t vae_optimizer_steps(const vae_optimizer *o) { return o ? o->steps : 0; }

/* Each update is written once, as an inline loop with a constant `commit`:
   1 stores the new values (the training step's loop, as lean as ever),
   0 only computes them (the probe, taken when the bounds of
   vae__optimizer_next_bounds cannot promise a finite result): it collects
   x * 0 of every new value, NaN if any is not finite, and the largest
   magnitudes, which become the next bounds. */
#define KEEP_MAX(acc, x) acc = fabsf(x) > acc ? fabsf(x) : acc

/* The rate of the step being taken, from vae__optimizer_begin_step. */
static double step_rate(const vae_optimizer *o) { return o->rate; }

void vae__optimizer_begin_step(vae_optimizer *o)
{
    o->steps++;
    o->rate = vae__optimizer_rate_at(o, o->steps - 1); /* once, not per range */
}

/* What decoupled weight decay leaves of each weight before the step (1
   without decay, which multiplies exactly). */
static float decay_factor(const vae_optimizer *o, double rate)
{
    return (float)(1.0 - rate * o->settings[VAE_OPT_WEIGHT_DECAY]);
}

/* v = momentum v + g;  p -= lr v   (PyTorch's form) */
static inline void sgd(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi,
                       const int commit, update_stats *st)
{
    double rate = step_rate(o);
    float lr = (float)rate, keep = decay_factor(o, rate), mom = (float)o->settings[VAE_OPT_MOMENTUM];
    float *v = o->moment1, probe = 0.0f, pm, vm;
    if (commit) {
        for (int64_t i = lo; i < hi; i++) {
            v[i] = mom * v[i] + scale * g[i];
            p[i] = keep * p[i] - lr * v[i];
            g[i] = 0.0f;
        }
        return;
    }
    pm = st->p_max;
    vm = st->m1_max;
#pragma omp simd reduction(+ : probe) reduction(max : pm, vm)
    for (int64_t i = lo; i < hi; i++) {
        float vi = mom * v[i] + scale * g[i], pi = keep * p[i] - lr * vi;
        probe += pi * 0.0f + vi * 0.0f;
        KEEP_MAX(pm, pi);
        KEEP_MAX(vm, vi);
    }
    st->probe += probe;
    st->p_max = pm;
    st->m1_max = vm;
}

/* s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + eps)   (Keras's form) */
static inline void rmsprop(vae_optimizer *o, float *p, float *g, float scale, int64_t lo,
                           int64_t hi, const int commit, update_stats *st)
{
    double rate = step_rate(o);
    float lr = (float)rate, keep = decay_factor(o, rate), rho = (float)o->settings[VAE_OPT_RHO];
    float eps = (float)o->settings[VAE_OPT_EPSILON];
    float *s = o->moment1, probe = 0.0f, pm, sm;
    if (commit) {
        for (int64_t i = lo; i < hi; i++) {
            float gi = scale * g[i];
            g[i] = 0.0f;
            s[i] = rho * s[i] + (1.0f - rho) * gi * gi;
            p[i] = keep * p[i] - lr * gi / (sqrtf(s[i]) + eps);
        }
        return;
    }
    pm = st->p_max;
    sm = st->m1_max;
#pragma omp simd reduction(+ : probe) reduction(max : pm, sm)
    for (int64_t i = lo; i < hi; i++) {
        float gi = scale * g[i], si = rho * s[i] + (1.0f - rho) * gi * gi;
        float pi = keep * p[i] - lr * gi / (sqrtf(si) + eps);
        probe += pi * 0.0f + si * 0.0f;
        KEEP_MAX(pm, pi);
        KEEP_MAX(sm, si);
    }
    st->probe += probe;
    st->p_max = pm;
    st->m1_max = sm;
}

/* Adam with bias correction, as PyTorch computes it:
   p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) */
static inline void adam(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi,
                        const int commit, update_stats *st)
{
    const double *s = o->settings;
    float b1 = (float)s[VAE_OPT_BETA1], b2 = (float)s[VAE_OPT_BETA2], eps = (float)s[VAE_OPT_EPSILON];
    double rate = step_rate(o);
    float keep = decay_factor(o, rate);
    float step_size = (float)(rate / (1.0 - pow(s[VAE_OPT_BETA1], (double)o->steps)));
    float inv_sqrt_c2 = (float)(1.0 / sqrt(1.0 - pow(s[VAE_OPT_BETA2], (double)o->steps)));
    float *m = o->moment1, *v = o->moment2, probe = 0.0f, pm, mm, vm;
    if (commit) {
        for (int64_t i = lo; i < hi; i++) {
            float gi = scale * g[i];
            g[i] = 0.0f;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] = keep * p[i] - step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_c2 + eps);
        }
        return;
    }
    pm = st->p_max;
    mm = st->m1_max;
    vm = st->m2_max;
#pragma omp simd reduction(+ : probe) reduction(max : pm, mm, vm)
    for (int64_t i = lo; i < hi; i++) {
        float gi = scale * g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi, vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        float pi = keep * p[i] - step_size * mi / (sqrtf(vi) * inv_sqrt_c2 + eps);
        probe += pi * 0.0f + mi * 0.0f + vi * 0.0f;
        KEEP_MAX(pm, pi);
        KEEP_MAX(mm, mi);
        KEEP_MAX(vm, vi);
    }
    st->probe += probe;
    st->p_max = pm;
    st->m1_max = mm;
    st->m2_max = vm;
}

#define UPDATE_BODY(commit)                                                                 \
    switch (o->kind) {                                                                      \
    case VAE_OPTIMIZER_SGD: sgd(o, params, grad, scale, lo, hi, commit, st); break;         \
    case VAE_OPTIMIZER_RMSPROP: rmsprop(o, params, grad, scale, lo, hi, commit, st); break; \
    case VAE_OPTIMIZER_ADAM: adam(o, params, grad, scale, lo, hi, commit, st); break;       \
    }

VAE_HOT void vae__optimizer_update(vae_optimizer *o, float *params, float *grad, float scale,
                                   int64_t lo, int64_t hi)
{
    update_stats *st = NULL; /* unused by the storing loops */
    UPDATE_BODY(1)
}

VAE_HOT void vae__optimizer_probe(vae_optimizer *o, float *params, float *grad, float scale,
                                  int64_t lo, int64_t hi, update_stats *st)
{
    UPDATE_BODY(0)
}

/* Whether the next update (step count already advanced) certainly leaves
   every weight and moment finite, judged from bounds on the magnitudes of
   the weights (p_max), the moments (o->m1_max, o->m2_max) and each
   gradient element (grad_max, the gradient's norm).  If so, next[] gets
   the bounds after the update: the weights' grows by the largest step,
   the moments' by what one gradient adds.  Far from float's range, as
   training always is, this holds and the update runs unchecked, with no
   pass to measure anything; otherwise the caller probes, and the probe's
   measured maxima become the bounds again. */
int vae__optimizer_next_bounds(const vae_optimizer *o, double p_max, double grad_max,
                               double next[3])
{
    const double limit = 1e37, *s = o->settings;
    double lr = step_rate(o), eps = s[VAE_OPT_EPSILON], m1, m2 = 0.0, step;
    double keep = fabs(1.0 - lr * s[VAE_OPT_WEIGHT_DECAY]);
    if (!o->maxima_known || !(p_max < limit) || !(grad_max < 1e18))
        return 0;
    switch (o->kind) {
    case VAE_OPTIMIZER_SGD:
        m1 = s[VAE_OPT_MOMENTUM] * o->m1_max + grad_max;
        step = lr * m1;
        break;
    case VAE_OPTIMIZER_RMSPROP:
        m1 = s[VAE_OPT_RHO] * o->m1_max + grad_max * grad_max;
        step = lr * grad_max / eps; /* sqrt(s) + eps >= eps */
        break;
    default:
        m1 = s[VAE_OPT_BETA1] * o->m1_max + grad_max;
        m2 = s[VAE_OPT_BETA2] * o->m2_max + grad_max * grad_max;
        step = lr / (1.0 - pow(s[VAE_OPT_BETA1], (double)o->steps)) * m1 / eps;
        break;
    }
    next[0] = p_max * fmax(keep, 1.0) + step;
    next[1] = m1;
    next[2] = m2;
    return m1 < limit && m2 < limit && next[0] < limit;
}
