/* The latent plane the page shows: the test images' latent points, the
   axes (the latent's own, or the points' principal directions) and the two
   JSON answers, /api/info and /api/scatter, written once at start. */
#include "explore.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ENCODE_ROWS 1024   /* test images encoded at once */
#define POWER_STEPS 500    /* most steps of orthogonal iteration */

/* Every test image's latent point (points x latent floats), the point the
   decoder reads at the posterior's centre; NULL after a message. */
static float *encode_points(explorer *ex, int threads)
{
    size_t latent = (size_t)ex->latent;
    float *z = malloc((size_t)ex->points * latent * sizeof *z);
    vae_status s = z ? vae_model_set_threads(ex->model, threads) : VAE_ERR_NO_MEMORY;
    for (int64_t first = 0; s == VAE_OK && first < ex->points; first += ENCODE_ROWS) {
        int64_t n = ex->points - first < ENCODE_ROWS ? ex->points - first : ENCODE_ROWS;
        int64_t x_dims[2] = {n, ex->pixels}, z_dims[2] = {n, ex->latent};
        vae_tensor *x = NULL, *zt = NULL;
        s = vae_tensor_create(&x, 2, x_dims);
        if (s == VAE_OK)
            s = vae_tensor_create(&zt, 2, z_dims);
        if (s == VAE_OK)
            s = vae_dataset_get(ex->test, first, x);
        if (s == VAE_OK)
            s = vae_model_encode_latent(ex->model, x, zt);
        if (s == VAE_OK)
            memcpy(z + (size_t)first * latent, vae_tensor_data(zt), (size_t)n * latent * sizeof *z);
        vae_tensor_free(x);
        vae_tensor_free(zt);
    }
    if (s != VAE_OK) {
        fprintf(stderr, "vae-explore: encoding the test images: %s\n",
                z ? vae_last_error() : "out of memory");
        free(z);
        return NULL;
    }
    /* the JSON answers and the plane need numbers */
    for (size_t k = 0; k < (size_t)ex->points * latent; k++)
        if (!isfinite(z[k])) {
            fprintf(stderr, "vae-explore: test image %zu encodes to a non-finite latent point\n",
                    k / latent);
            free(z);
            return NULL;
        }
    return z;
}

/* The points' mean into origin and their covariance (latent x latent). */
static void moments(const explorer *ex, const float *z, double *origin, double *cov)
{
    int d = ex->latent;
    for (int64_t i = 0; i < ex->points; i++)
        for (int j = 0; j < d; j++)
            origin[j] += z[i * d + j];
    for (int j = 0; j < d; j++)
        origin[j] /= (double)ex->points;
    for (int64_t i = 0; i < ex->points; i++)
        for (int j = 0; j < d; j++) {
            double dj = z[i * d + j] - origin[j];
            for (int k = 0; k <= j; k++)
                cov[j * d + k] += dj * (z[i * d + k] - origin[k]);
        }
    for (int j = 0; j < d; j++)
        for (int k = 0; k <= j; k++)
            cov[k * d + j] = cov[j * d + k] /= (double)ex->points;
}

/* Gram-Schmidt on the k rows of q (each d long): orthonormal, in order. */
static void orthonormalise(double *q, int k, int d)
{
    for (int a = 0; a < k; a++) {
        double *qa = q + (size_t)a * d;
        for (int b = 0; b < a; b++) {
            const double *qb = q + (size_t)b * d;
            double dot = 0;
            for (int j = 0; j < d; j++)
                dot += qa[j] * qb[j];
            for (int j = 0; j < d; j++)
                qa[j] -= dot * qb[j];
        }
        double norm = 0;
        for (int j = 0; j < d; j++)
            norm += qa[j] * qa[j];
        norm = sqrt(norm);
        for (int j = 0; j < d; j++) /* a rank-deficient cov: any unit vector */
            qa[j] = norm > 1e-300 ? qa[j] / norm : (j == a);
    }
}

/* The k leading eigenvectors of the symmetric cov, by orthogonal
   iteration from a fixed start (so the page is the same every run), each
   signed so that its largest component is positive.  -1 if out of memory. */
static int principal_axes(const double *cov, int d, int k, double *q)
{
    double *next = malloc((size_t)k * (size_t)d * sizeof *next);
    if (!next)
        return -1;
    for (int a = 0; a < k; a++)
        for (int j = 0; j < d; j++)
            q[a * d + j] = (j == a) + 0.01 * sin(1.0 + a * 7.0 + j * 3.0);
    orthonormalise(q, k, d);
    for (int step = 0; step < POWER_STEPS; step++) {
        for (int a = 0; a < k; a++)
            for (int j = 0; j < d; j++) {
                double sum = 0;
                for (int m = 0; m < d; m++)
                    sum += cov[j * d + m] * q[a * d + m];
                next[a * d + j] = sum;
            }
        orthonormalise(next, k, d);
        double change = 0;
        for (int i = 0; i < k * d; i++) {
            change = fmax(change, fabs(next[i] - q[i]));
            q[i] = next[i];
        }
        if (change < 1e-12)
            break;
    }
    free(next);
    for (int a = 0; a < k; a++) {
        int big = 0;
        for (int j = 1; j < d; j++)
            big = fabs(q[a * d + j]) > fabs(q[a * d + big]) ? j : big;
        double sign = q[a * d + big] < 0 ? -1.0 : 1.0;
        for (int j = 0; j < d; j++)
            q[a * d + j] *= sign;
    }
    return 0;
}

/* Coordinate of latent point z along axis a. */
static double along(const explorer *ex, const float *z, int a)
{
    double sum = 0;
    for (int j = 0; j < ex->latent; j++)
        sum += (z[j] - ex->origin[j]) * ex->axes[(size_t)a * ex->latent + j];
    return sum;
}

/* Spreads along the axes, the points' places and the extent to show. */
static void place(explorer *ex, const float *z)
{
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    double sum[EXPLORE_MAX_AXES] = {0}, sum2[EXPLORE_MAX_AXES] = {0};
    for (int64_t i = 0; i < ex->points; i++) {
        const float *zi = z + (size_t)i * ex->latent;
        for (int a = 0; a < ex->n_axes; a++) {
            double c = along(ex, zi, a);
            sum[a] += c;
            sum2[a] += c * c;
            if (a < 2) {
                lo[a] = fmin(lo[a], c);
                hi[a] = fmax(hi[a], c);
            }
        }
        ex->plane_u[i] = (float)along(ex, zi, 0);
        ex->plane_v[i] = (float)along(ex, zi, 1);
    }
    /* the standard deviation: a 2-D latent's origin is 0, not the mean */
    for (int a = 0; a < ex->n_axes; a++) {
        double mean = sum[a] / (double)ex->points;
        ex->spread[a] = sqrt(fmax(sum2[a] / (double)ex->points - mean * mean, 0));
    }
    for (int a = 0; a < 2; a++) {
        double margin = hi[a] > lo[a] ? 0.05 * (hi[a] - lo[a]) : 1.0;
        ex->extent[2 * a] = lo[a] - margin;
        ex->extent[2 * a + 1] = hi[a] + margin;
    }
}

int explore_place_points(explorer *ex, int threads)
{
    int d = ex->latent;
    ex->n_axes = d < EXPLORE_MAX_AXES ? d : EXPLORE_MAX_AXES;
    ex->origin = calloc((size_t)d, sizeof *ex->origin);
    ex->axes = calloc((size_t)ex->n_axes * (size_t)d, sizeof *ex->axes);
    if (!ex->origin || !ex->axes)
        goto no_memory;
    /* the latent's own axes: always for a 2-D latent, and without data */
    for (int a = 0; a < ex->n_axes; a++) {
        ex->axes[(size_t)a * d + a] = 1.0;
        ex->spread[a] = 1.0;
    }
    memcpy(ex->extent, (double[4]){-3, 3, -3, 3}, sizeof ex->extent);
    if (ex->points == 0)
        return 0;
    float *z = encode_points(ex, threads);
    if (!z)
        return 1;
    ex->plane_u = malloc((size_t)ex->points * sizeof *ex->plane_u);
    ex->plane_v = malloc((size_t)ex->points * sizeof *ex->plane_v);
    double *cov = d > 2 ? calloc((size_t)d * (size_t)d, sizeof *cov) : NULL;
    bool ok = ex->plane_u && ex->plane_v && (d == 2 || cov);
    if (ok && d > 2) {
        moments(ex, z, ex->origin, cov);
        ok = principal_axes(cov, d, ex->n_axes, ex->axes) == 0;
    }
    if (ok)
        place(ex, z);
    free(cov);
    free(z);
    if (ok)
        return 0;
no_memory:
    fprintf(stderr, "vae-explore: out of memory placing the test images\n");
    return 1;
}

/* ---- JSON ---- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_numbers(FILE *f, const double *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? ", " : "", v[i]);
    fputc(']', f);
}

static void write_info(const explorer *ex, FILE *f)
{
    fputs("{\"model\": ", f);
    json_string(f, ex->model_name);
    fprintf(f, ", \"latent\": %d, \"channels\": %d, \"height\": %d, \"width\": %d,"
               " \"points\": %lld, \"labelled\": %s, \"label_names\": ",
            ex->latent, ex->channels, ex->height, ex->width, (long long)ex->points,
            ex->label_names ? "true" : "false");
    if (!ex->label_names)
        fputs("null", f);
    for (int i = 0; ex->label_names && i < ex->n_label_names; i++) {
        fputs(i ? ", " : "[", f);
        json_string(f, ex->label_names[i]);
    }
    fputs(ex->label_names ? "], \"origin\": " : ", \"origin\": ", f);
    json_numbers(f, ex->origin, ex->latent);
    fputs(", \"axes\": [", f);
    for (int a = 0; a < ex->n_axes; a++) {
        fputs(a ? ", " : "", f);
        json_numbers(f, ex->axes + (size_t)a * ex->latent, ex->latent);
    }
    fputs("], \"spread\": ", f);
    json_numbers(f, ex->spread, ex->n_axes);
    fputs(", \"extent\": ", f);
    json_numbers(f, ex->extent, 4);
    fprintf(f, ", \"flow\": %s}\n", ex->flow ? "true" : "false");
}

static void write_scatter(const explorer *ex, FILE *f)
{
    const float *coords[2] = {ex->plane_u, ex->plane_v};
    for (int c = 0; c < 2; c++) {
        fputs(c ? "], \"y\": [" : "{\"x\": [", f);
        for (int64_t i = 0; i < ex->points; i++)
            fprintf(f, "%s%.6g", i ? "," : "", (double)coords[c][i]);
    }
    fputs("], \"label\": ", f);
    int labelled = ex->test && vae_dataset_has_labels(ex->test);
    fputs(labelled || !ex->test ? "[" : "null", f); /* no data: empty */
    for (int64_t i = 0; labelled && i < ex->points; i++)
        fprintf(f, "%s%d", i ? "," : "", (int)vae_dataset_label(ex->test, i));
    fputs(labelled || !ex->test ? "]}\n" : "}\n", f);
}

/* One JSON answer written by `emit` into a malloc'ed buffer. */
static int write_json(const explorer *ex, void (*emit)(const explorer *, FILE *), char **out,
                      size_t *len)
{
    FILE *f = open_memstream(out, len);
    if (!f)
        return 1;
    emit(ex, f);
    return fclose(f) != 0;
}

int explore_write_json(explorer *ex)
{
    if (write_json(ex, write_info, &ex->info_json, &ex->info_len) ||
        write_json(ex, write_scatter, &ex->scatter_json, &ex->scatter_len)) {
        fprintf(stderr, "vae-explore: out of memory writing JSON\n");
        return 1;
    }
    return 0;
}

void explore_plane_free(explorer *ex)
{
    free(ex->plane_u);
    free(ex->plane_v);
    free(ex->origin);
    free(ex->axes);
    free(ex->info_json);
    free(ex->scatter_json);
}
