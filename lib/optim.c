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

/* Each optimizer's arithmetic for one weight is written once, as an
   inline function that both loops call: the update, which stores the new
   values (as lean as the loop of 0.2.0), and the probe, which only
   computes them (taken when the bounds of vae__optimizer_next_bounds
   cannot promise a finite result) and so sees exactly what the update
   would store.  The probe collects x * 0 of every new value, NaN if any
   is not finite, and the largest magnitudes, which become the next
   bounds. */
#define KEEP_MAX(acc, x) acc = fabsf(x) > acc ? fabsf(x) : acc

/* The rate of the step being taken, from vae__optimizer_begin_step. */
static double step_rate(const vae_optimizer *o) { return o->rate; }

void vae__optimizer_begin_step(vae_optimizer *o)
{
    o->steps++;
    o->rate = vae__optimizer_rate_at(o, o->steps - 1); /* once, not per range */
}

/* The constants of one step, the same for every weight: the rate, what
   decoupled weight decay keeps of a weight (1 without decay, which
   multiplies exactly), the kind's decay rates and epsilon. */
typedef struct step_consts {
    float lr, keep, d1, d2, eps, inv_sqrt_c2;
} step_consts;

static step_consts consts_of(const vae_optimizer *o)
{
    const double *s = o->settings;
    double rate = step_rate(o);
    step_consts k = {.lr = (float)rate, .keep = (float)(1.0 - rate * s[VAE_OPT_WEIGHT_DECAY]),
                     .eps = (float)s[VAE_OPT_EPSILON]};
    switch (o->kind) {
    case VAE_OPTIMIZER_SGD: k.d1 = (float)s[VAE_OPT_MOMENTUM]; break;
    case VAE_OPTIMIZER_RMSPROP: k.d1 = (float)s[VAE_OPT_RHO]; break;
    case VAE_OPTIMIZER_ADAM: /* with bias correction, as PyTorch computes it */
        k.d1 = (float)s[VAE_OPT_BETA1];
        k.d2 = (float)s[VAE_OPT_BETA2];
        k.lr = (float)(rate / (1.0 - pow(s[VAE_OPT_BETA1], (double)o->steps)));
        k.inv_sqrt_c2 = (float)(1.0 / sqrt(1.0 - pow(s[VAE_OPT_BETA2], (double)o->steps)));
        break;
    }
    return k;
}

/* SGD, PyTorch's form:  v = momentum v + g;  p -= lr v */
static inline void sgd_weight(const step_consts *k, float p, float g, float v, float *np, float *nv,
                              float *unused)
{
    (void)unused;
    *nv = k->d1 * v + g;
    *np = k->keep * p - k->lr * *nv;
}

/* RMSprop, Keras's form:  s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + eps) */
static inline void rmsprop_weight(const step_consts *k, float p, float g, float s, float *np,
                                  float *ns, float *unused)
{
    (void)unused;
    *ns = k->d1 * s + (1.0f - k->d1) * g * g;
    *np = k->keep * p - k->lr * g / (sqrtf(*ns) + k->eps);
}

/* Adam:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
   p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) */
static inline void adam_weight(const step_consts *k, float p, float g, float m, float v, float *np,
                               float *nm, float *nv)
{
    *nm = k->d1 * m + (1.0f - k->d1) * g;
    *nv = k->d2 * v + (1.0f - k->d2) * g * g;
    *np = k->keep * p - k->lr * *nm / (sqrtf(*nv) * k->inv_sqrt_c2 + k->eps);
}

/* The update (commit 1) or the probe (commit 0) of a kind with one
   moment (SGD, RMSprop), through its weight function. */
#define ONE_MOMENT_LOOP(weight)                                                               \
    do {                                                                                      \
        step_consts k = consts_of(o);                                                         \
        float *m1 = o->moment1, probe = 0.0f, pm, mm;                                         \
        if (commit) {                                                                         \
            for (int64_t i = lo; i < hi; i++) {                                               \
                weight(&k, p[i], scale * g[i], m1[i], &p[i], &m1[i], NULL);                   \
                g[i] = 0.0f;                                                                  \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        pm = st->p_max;                                                                       \
        mm = st->m1_max;                                                                      \
        _Pragma("omp simd reduction(+ : probe) reduction(max : pm, mm)")                      \
        for (int64_t i = lo; i < hi; i++) {                                                   \
            float pi, mi;                                                                     \
            weight(&k, p[i], scale * g[i], m1[i], &pi, &mi, NULL);                            \
            probe += pi * 0.0f + mi * 0.0f;                                                   \
            KEEP_MAX(pm, pi);                                                                 \
            KEEP_MAX(mm, mi);                                                                 \
        }                                                                                     \
        st->probe += probe;                                                                   \
        st->p_max = pm;                                                                       \
        st->m1_max = mm;                                                                      \
    } while (0)

static inline void sgd(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi,
                       const int commit, update_stats *st)
{
    ONE_MOMENT_LOOP(sgd_weight);
}

static inline void rmsprop(vae_optimizer *o, float *p, float *g, float scale, int64_t lo,
                           int64_t hi, const int commit, update_stats *st)
{
    ONE_MOMENT_LOOP(rmsprop_weight);
}

static inline void adam(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi,
                        const int commit, update_stats *st)
{
    step_consts k = consts_of(o);
    float *m = o->moment1, *v = o->moment2, probe = 0.0f, pm, mm, vm;
    if (commit) {
        for (int64_t i = lo; i < hi; i++) {
            adam_weight(&k, p[i], scale * g[i], m[i], v[i], &p[i], &m[i], &v[i]);
            g[i] = 0.0f;
        }
        return;
    }
    pm = st->p_max;
    mm = st->m1_max;
    vm = st->m2_max;
#pragma omp simd reduction(+ : probe) reduction(max : pm, mm, vm)
    for (int64_t i = lo; i < hi; i++) {
        float pi, mi, vi;
        adam_weight(&k, p[i], scale * g[i], m[i], v[i], &pi, &mi, &vi);
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
