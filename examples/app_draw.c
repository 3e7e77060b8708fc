/* The pictures the reference runs show: reconstructions, samples, the
   latent scatter and grids, and the loss curve from the history. */
#include "app_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- pictures ---- */

static int grid_png(app_run *r, const char *file, const float *images, int n, int cols, int pad,
                    int scale)
{
    return ex_write_grid_png(app_out_path(r, file), images, n, r->channels, r->height, r->width, cols,
                             pad, scale);
}

/* Images are small (28x28) or larger (64x64): magnify the small ones. */
static int magnification(const app_run *r) { return r->height < 48 ? 2 : 1; }

/* Rows of originals above rows of their reconstructions, 10 per row. */
int app_draw_reconstructions(app_run *r, const char *file)
{
    enum { N = 40, COLS = 10 };
    int n = vae_dataset_count(r->test) < N ? (int)vae_dataset_count(r->test) : N;
    int64_t dims[2] = {n, r->pixels}, row = COLS * r->pixels;
    vae_tensor *x = NULL, *y = NULL;
    float *grid = malloc(sizeof(float) * 2 * (size_t)N * (size_t)r->pixels);
    int rc = 1;
    if (grid && vae_tensor_create(&x, 2, dims) == VAE_OK && vae_tensor_create(&y, 2, dims) == VAE_OK &&
        vae_dataset_get(r->test, 0, x) == VAE_OK && vae_model_reconstruct(r->model, x, y) == VAE_OK) {
        int rows = (n + COLS - 1) / COLS, count = 0;
        for (int i = 0; i < rows; i++) {
            int k = n - i * COLS < COLS ? n - i * COLS : COLS;
            memcpy(grid + count * r->pixels, vae_tensor_data(x) + i * row, sizeof(float) * (size_t)(k * r->pixels));
            count += COLS;
            memcpy(grid + count * r->pixels, vae_tensor_data(y) + i * row, sizeof(float) * (size_t)(k * r->pixels));
            count += i + 1 < rows ? COLS : k;
        }
        rc = grid_png(r, file, grid, count, COLS, 2, magnification(r));
    } else {
        app_fail(r, "reconstructing", VAE_ERR_STATE);
    }
    free(grid);
    vae_tensor_free(x);
    vae_tensor_free(y);
    return rc;
}

/* Decodes n latent points (n x latent) into a PNG grid of `cols` columns. */
int app_draw_decoded(app_run *r, const float *z, int n, int cols, int scale, const char *file)
{
    int64_t zd[2] = {n, vae_model_latent_size(r->model)}, xd[2] = {n, r->pixels};
    vae_tensor *zt = NULL, *xt = NULL;
    int rc = 1;
    if (vae_tensor_from_host(&zt, 2, zd, z) == VAE_OK && vae_tensor_create(&xt, 2, xd) == VAE_OK &&
        vae_model_decode(r->model, zt, xt) == VAE_OK)
        rc = grid_png(r, file, vae_tensor_data(xt), n, cols, 0, scale);
    else
        app_fail(r, "decoding", VAE_ERR_STATE);
    vae_tensor_free(zt);
    vae_tensor_free(xt);
    return rc;
}

static int draw_samples(app_run *r)
{
    enum { N = 100 };
    int64_t dims[2] = {N, r->pixels};
    vae_tensor *t = NULL;
    int rc = 1;
    if (vae_tensor_create(&t, 2, dims) == VAE_OK && vae_model_sample_prior(r->model, r->opt.seed, t) == VAE_OK)
        rc = grid_png(r, "samples.png", vae_tensor_data(t), N, 10, 2, magnification(r));
    else
        app_fail(r, "sampling", VAE_ERR_STATE);
    vae_tensor_free(t);
    return rc;
}

/* The scatter of the test set's latent means, coloured by label. */
static int draw_scatter(app_run *r, const float *mu, int64_t n)
{
    float *px = malloc(sizeof(float) * (size_t)n), *py = malloc(sizeof(float) * (size_t)n);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
    int rc = !px || !py || !labels;
    for (int64_t i = 0; !rc && i < n; i++) {
        px[i] = mu[2 * i];
        py[i] = mu[2 * i + 1];
        labels[i] = vae_dataset_label(r->test, i);
    }
    if (!rc)
        rc = ex_plot_scatter(app_out_path(r, "latent_scatter.png"), (int)n, px, py,
                             vae_dataset_has_labels(r->test) ? labels : NULL, 10,
                             "test set: latent means by label");
    free(px);
    free(py);
    free(labels);
    return rc;
}

/* latent.csv (label and latent point of every test image: the mean, or
   with a flow the point the decoder reads, flow(mean)) and, for 2-D
   latents, the scatter. */
static int write_latents(app_run *r)
{
    int64_t n = vae_dataset_count(r->test), L = vae_model_latent_size(r->model);
    int64_t xd[2] = {n, r->pixels}, md[2] = {n, L};
    vae_tensor *x = NULL, *mu = NULL;
    FILE *f = NULL;
    int rc = 1;
    if (vae_tensor_create(&x, 2, xd) != VAE_OK || vae_tensor_create(&mu, 2, md) != VAE_OK ||
        vae_dataset_get(r->test, 0, x) != VAE_OK || vae_model_encode_latent(r->model, x, mu) != VAE_OK) {
        app_fail(r, "encoding the test set", VAE_ERR_STATE);
        goto done;
    }
    if (!(f = fopen(app_out_path(r, "latent.csv"), "w"))) {
        perror(r->path);
        goto done;
    }
    fprintf(f, "label");
    for (int64_t j = 0; j < L; j++)
        fprintf(f, ",z%lld", (long long)j);
    fprintf(f, "\n");
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%d", vae_dataset_label(r->test, i));
        for (int64_t j = 0; j < L; j++)
            fprintf(f, ",%.5f", vae_tensor_data(mu)[i * L + j]);
        fprintf(f, "\n");
    }
    rc = fclose(f) != 0;
    if (rc == 0 && L == 2)
        rc = draw_scatter(r, vae_tensor_data(mu), n);
done:
    vae_tensor_free(x);
    vae_tensor_free(mu);
    return rc;
}

/* An n x n grid of 2-D latent points; axis(i) gives the i-th coordinate.
   The top row has the largest z[1]. */
static int draw_latent_grid(app_run *r, int n, double (*axis)(int i, int n), const char *file)
{
    float *z = malloc(sizeof(float) * 2 * (size_t)(n * n));
    int rc = 1;
    if (!z)
        return 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            z[2 * (i * n + j)] = (float)axis(j, n);
            z[2 * (i * n + j) + 1] = (float)axis(n - 1 - i, n);
        }
    rc = app_draw_decoded(r, z, n * n, n, 1, file);
    free(z);
    return rc;
}

/* Keras's R1 figure: evenly over [-4, 4]. */
static double even_axis(int i, int n) { return -4.0 + 8.0 * i / (n - 1); }

/* The standard normal quantile of p, by bisection on the CDF. */
static double normal_quantile(double p)
{
    double lo = -10.0, hi = 10.0;
    for (int k = 0; k < 100; k++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Keras book's R2 figure: normal quantiles of linspace(0.05, 0.95, n). */
static double quantile_axis(int i, int n) { return normal_quantile(0.05 + 0.9 * i / (n - 1)); }

/* loss.png from the history; epochs without a value (NaN) are left out. */
static int draw_losses(app_run *r)
{
    int n = vae_model_history_epochs(r->model), any = 0, rc = 0;
    double *v = n > 0 ? malloc(sizeof(double) * 3 * (size_t)n) : NULL;
    if (n > 0 && !v) {
        fprintf(stderr, "%s: out of memory for loss.png\n", r->app->name);
        return 1;
    }
    for (int e = 0; e < n; e++) {
        v[e] = e + 1;
        v[n + e] = vae_model_history_get(r->model, e + 1, "train_nelbo");
        v[2 * n + e] = vae_model_history_get(r->model, e + 1, "test_loss");
        any |= isfinite(v[n + e]) || isfinite(v[2 * n + e]);
    }
    if (any)
        rc = ex_plot_losses(app_out_path(r, "loss.png"), n, v, v + n, v + 2 * n,
                            "negative ELBO per image");
    free(v);
    return rc;
}

int app_draw_all(app_run *r)
{
    int rc = draw_losses(r);
    rc |= app_draw_reconstructions(r, "reconstructions.png");
    rc |= draw_samples(r);
    rc |= write_latents(r);
    if (vae_model_latent_size(r->model) == 2) {
        const float point[2] = {0.0f, 2.5f};
        rc |= app_draw_decoded(r, point, 1, 1, 8, "decoded_0_2.5.png");
        rc |= draw_latent_grid(r, 30, even_axis, "latent_grid.png");
        if (r->app->quantile_grid)
            rc |= draw_latent_grid(r, 15, quantile_axis, "latent_grid_quantiles.png");
    }
    return rc;
}

