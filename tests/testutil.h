/* Helpers for the tests: small graphs around an operation, objectives and
   central-difference gradient checks. */
#ifndef VAE_TESTUTIL_H
#define VAE_TESTUTIL_H

#include "model.h"

#include <check.h>

/* A graph with a batched input "x" of in_size values per row. */
vae_graph *tu_graph(int in_size, int *x);
/* A batched node of `size` per row that depends on parameters:
   x (B, in) w (in, size) + b, with w and b random.  Ops under test take it
   as input so their input gradients are checked through w and b. */
int tu_variable(vae_graph *g, int x, int size, const char *name);
/* Per row: sum of y times fixed random weights (a parameter), so that no
   gradient cancels by symmetry.  Returns a (B, 1) node. */
int tu_weighted_sum(vae_graph *g, int y);
/* Turns g into a model whose objective is the batch mean of per_row. */
vae_model *tu_model(vae_graph *g, int x, int per_row);
/* The objective on rows of x (noise fixed by seed 7). */
double tu_objective(vae_model *m, const float *x, int rows);
/* Analytic gradient of the objective with respect to all parameters. */
void tu_gradient(vae_model *m, const float *x, int rows, float *grad);
/* Largest violation of |analytic - numeric| <= atol + rtol * max(|.|)
   over all parameters, as a ratio (<= 1 passes); central differences with
   the given step, computed in float. */
double tu_gradcheck(vae_model *m, const float *x, int rows, double step);
/* The same with a given absolute tolerance, skipping the parameters for
   which skip(ctx, m), asked after each of the two runs, says the step went
   somewhere the derivative does not hold (a ReLU kink); counts them. */
typedef int (*tu_skip_fn)(void *ctx, vae_model *m);
double tu_gradcheck_skipping(vae_model *m, const float *x, int rows, double step, double atol,
                             tu_skip_fn skip, void *ctx, int64_t *skipped);
/* got is within 1e-5 (relative, plus 1e-5 absolute) of want; what[i]
   names the value in the message. */
void tu_expect_close(double got, double want, const char *what, int i);
/* Values of node id in the first worker after the last run. */
const float *tu_values(vae_model *m, int id);
/* A parameter vector of `size` values, uniform in [-1, 1]. */
int tu_vector_param(vae_graph *g, const char *name, int size);
/* Uniform values in [lo, hi) from a seed. */
void tu_random(float *v, int64_t n, uint64_t seed, float lo, float hi);
/* The value of per-row node `id` for row r after the last tu_objective. */
float tu_value(vae_model *m, int id, int r);

/* A small Bernoulli VAE: in -> Dense(hidden, relu) "enc" -> heads "q"
   (latent) -> sample -> Bernoulli MLP "p" (hidden, decoder_act) -> in logits. */
vae_model *tu_small_vae(int in, int hidden, int latent, vae_activation decoder_act, uint64_t seed);
/* x (in) -> tanh Gaussian MLP (hidden, latent, a context) -> two IAF steps
   of alternating order -> tanh Bernoulli MLP, with vae_elbo_build_flow. */
vae_graph *tu_flow_graph(int in, int hidden, int latent, int context, uint64_t seed);
/* Its graph before the model is made, with any likelihood. */
vae_graph *tu_small_graph(int in, int hidden, int latent, vae_activation decoder_act,
                          vae_likelihood likelihood, uint64_t seed);
/* Runs the suite; the process's exit status: 0 if every test passed. */
int tu_run(Suite *s);

#define TU_CHECK_GRADIENT(m, x, rows)                                         \
    do {                                                                      \
        double tu_ratio_ = tu_gradcheck((m), (x), (rows), 1e-3);             \
        ck_assert_msg(tu_ratio_ <= 1.0, "gradient check failed: ratio %g",   \
                      tu_ratio_);                                            \
    } while (0)

/* Removes dir and the files in it (not subfolders). */
void tu_remove_dir(const char *dir);

#endif
