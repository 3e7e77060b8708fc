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

static vae_status check_option(const vae_optimizer *o, vae_optimizer_option option, const char *what)
{
    if (!o)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: optimizer is NULL", what);
    if ((int)option < 0 || option > VAE_OPT_CLIP_NORM)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: unknown option %d", what, (int)option);
    return VAE_OK;
}

VAE_API vae_status vae_optimizer_set(vae_optimizer *o, vae_optimizer_option option, double value)
{
    int is_rate = option == VAE_OPT_MOMENTUM || option == VAE_OPT_BETA1 ||
                  option == VAE_OPT_BETA2 || option == VAE_OPT_RHO;
    VAE_TRY(check_option(o, option, "vae_optimizer_set"));
    if (!isfinite(value) || value < 0.0 || (is_rate && value >= 1.0) ||
        (option == VAE_OPT_EPSILON && value <= 0.0))
        return vae__fail(VAE_ERR_ARGUMENT, "vae_optimizer_set: value %g is out of range for "
                         "option %d of %s", value, (int)option, kind_names[o->kind]);
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

VAE_API int64_t vae_optimizer_steps(const vae_optimizer *o) { return o ? o->steps : 0; }

/* v = momentum v + g;  p -= lr v   (PyTorch's form) */
VAE_HOT static void sgd(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi)
{
    float lr = (float)o->settings[VAE_OPT_LEARNING_RATE], mom = (float)o->settings[VAE_OPT_MOMENTUM];
    float *v = o->moment1;
    for (int64_t i = lo; i < hi; i++) {
        v[i] = mom * v[i] + scale * g[i];
        p[i] -= lr * v[i];
        g[i] = 0.0f;
    }
}

/* s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + eps)   (Keras's form) */
VAE_HOT static void rmsprop(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi)
{
    float lr = (float)o->settings[VAE_OPT_LEARNING_RATE], rho = (float)o->settings[VAE_OPT_RHO];
    float eps = (float)o->settings[VAE_OPT_EPSILON];
    float *s = o->moment1;
    for (int64_t i = lo; i < hi; i++) {
        float gi = scale * g[i];
        g[i] = 0.0f;
        s[i] = rho * s[i] + (1.0f - rho) * gi * gi;
        p[i] -= lr * gi / (sqrtf(s[i]) + eps);
    }
}

/* Adam with bias correction, as PyTorch computes it:
   p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) */
VAE_HOT static void adam(vae_optimizer *o, float *p, float *g, float scale, int64_t lo, int64_t hi)
{
    const double *s = o->settings;
    float b1 = (float)s[VAE_OPT_BETA1], b2 = (float)s[VAE_OPT_BETA2], eps = (float)s[VAE_OPT_EPSILON];
    float step_size = (float)(s[VAE_OPT_LEARNING_RATE] / (1.0 - pow(s[VAE_OPT_BETA1], (double)o->steps)));
    float inv_sqrt_c2 = (float)(1.0 / sqrt(1.0 - pow(s[VAE_OPT_BETA2], (double)o->steps)));
    float *m = o->moment1, *v = o->moment2;
    for (int64_t i = lo; i < hi; i++) {
        float gi = scale * g[i];
        g[i] = 0.0f;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_c2 + eps);
    }
}

void vae__optimizer_update(vae_optimizer *o, float *params, float *grad, float scale,
                           int64_t lo, int64_t hi)
{
    switch (o->kind) {
    case VAE_OPTIMIZER_SGD: sgd(o, params, grad, scale, lo, hi); break;
    case VAE_OPTIMIZER_RMSPROP: rmsprop(o, params, grad, scale, lo, hi); break;
    case VAE_OPTIMIZER_ADAM: adam(o, params, grad, scale, lo, hi); break;
    }
}
