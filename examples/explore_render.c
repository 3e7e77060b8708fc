/* Latent points and test images into PNGs.  Every request borrows one
   clone of the model (vae_model_clone), so requests run at once without
   sharing planned memory, and each clone plans its memory once, at start. */
#include "explore.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A request runs at most this many rows at once: a grid of samples. */
#define RENDER_MAX_BATCH EXPLORE_MAX_SAMPLES

static const char NO_MEMORY[] = "out of memory";

static int borrow(explore_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->n_idle == 0)
        pthread_cond_wait(&p->returned, &p->lock);
    int i = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->lock);
    return i;
}

static void give_back(explore_pool *p, int i)
{
    pthread_mutex_lock(&p->lock);
    p->idle[p->n_idle++] = i;
    pthread_cond_signal(&p->returned);
    pthread_mutex_unlock(&p->lock);
}

/* n rows of images (C,H,W floats) as one PNG: a single image as it is
   (pad 0), or a grid with grey gaps and border `pad` pixels wide. */
static const char *rows_png(const explorer *ex, const float *rows, int n, int pad,
                            unsigned char **png, size_t *len)
{
    int cols = 1, width, height;
    while (cols * cols < n)
        cols++;
    uint8_t *pixels = ex_grid_pixels(rows, n, ex->channels, ex->height, ex->width, cols,
                                     pad, 1, &width, &height);
    if (!pixels) /* or a grid over ex_grid_pixels' 1 GiB cap */
        return "out of memory for the image grid";
    int rc = ex_encode_png(pixels, width, height, ex->channels, png, len);
    free(pixels);
    return rc ? "could not encode the PNG" : NULL;
}

/* The three ways a clone makes images: decode the z rows, reconstruct the
   x rows, or sample (rows come from the seed). */
typedef enum render_kind { RENDER_DECODE, RENDER_RECONSTRUCT, RENDER_SAMPLE } render_kind;

static vae_status run_model(vae_model *m, render_kind kind, vae_tensor *in, uint64_t seed,
                            vae_tensor *out)
{
    switch (kind) {
    case RENDER_DECODE: return vae_model_decode(m, in, out);
    case RENDER_RECONSTRUCT: return vae_model_reconstruct(m, in, out);
    default: return vae_model_sample_prior(m, seed, out);
    }
}

/* n rows of `in_size` values (NULL for samples) through clone `m`, into a
   PNG.  NULL, or the reason it failed. */
static const char *render_with(const explorer *ex, vae_model *m, render_kind kind,
                               const float *in, int64_t in_size, int n, uint64_t seed,
                               unsigned char **png, size_t *len)
{
    int64_t in_dims[2] = {n, in_size}, out_dims[2] = {n, ex->pixels};
    vae_tensor *x = NULL, *out = NULL;
    vae_status s = in ? vae_tensor_from_host(&x, 2, in_dims, in) : VAE_OK;
    if (s == VAE_OK)
        s = vae_tensor_create(&out, 2, out_dims);
    if (s == VAE_OK)
        s = run_model(m, kind, x, seed, out);
    /* samples are always a grid, even of one, so that K does not change the layout */
    int pad = kind == RENDER_SAMPLE ? 2 : 0;
    const char *err = s != VAE_OK ? vae_last_error()
                                  : rows_png(ex, vae_tensor_data(out), n, pad, png, len);
    vae_tensor_free(x);
    vae_tensor_free(out);
    return err;
}

static const char *render(explorer *ex, render_kind kind, const float *in, int64_t in_size,
                          int n, uint64_t seed, unsigned char **png, size_t *len)
{
    int i = borrow(&ex->pool);
    const char *err = render_with(ex, ex->pool.clones[i], kind, in, in_size, n, seed, png, len);
    give_back(&ex->pool, i);
    return err;
}

const char *explore_decode_png(explorer *ex, const float *z, unsigned char **png, size_t *len)
{
    return render(ex, RENDER_DECODE, z, ex->latent, 1, 0, png, len);
}

const char *explore_samples_png(explorer *ex, uint64_t seed, int n, unsigned char **png,
                                size_t *len)
{
    return render(ex, RENDER_SAMPLE, NULL, 0, n, seed, png, len);
}

/* Test image i's pixels as floats; NULL after filling *err.  Under the
   pool's lock: a dataset handle is used by one thread at a time (vae.h). */
static float *test_row(explorer *ex, int64_t i, vae_tensor **row, const char **err)
{
    int64_t dims[2] = {1, ex->pixels};
    vae_status s = vae_tensor_create(row, 2, dims);
    if (s == VAE_OK) {
        pthread_mutex_lock(&ex->pool.lock);
        s = vae_dataset_get(ex->test, i, *row);
        pthread_mutex_unlock(&ex->pool.lock);
    }
    if (s != VAE_OK) {
        *err = vae_last_error();
        return NULL;
    }
    return vae_tensor_data(*row);
}

/* Test image i as it is, or its reconstruction. */
static const char *test_png(explorer *ex, int64_t i, bool reconstruct, unsigned char **png,
                            size_t *len)
{
    vae_tensor *row = NULL;
    const char *err = NULL;
    const float *x = test_row(ex, i, &row, &err);
    if (x && reconstruct)
        err = render(ex, RENDER_RECONSTRUCT, x, ex->pixels, 1, 0, png, len);
    else if (x)
        err = rows_png(ex, x, 1, 0, png, len);
    vae_tensor_free(row);
    return err;
}

const char *explore_image_png(explorer *ex, int64_t i, unsigned char **png, size_t *len)
{
    return test_png(ex, i, false, png, len);
}

const char *explore_reconstruct_png(explorer *ex, int64_t i, unsigned char **png, size_t *len)
{
    return test_png(ex, i, true, png, len);
}

int explore_pool_start(explorer *ex, int count)
{
    explore_pool *p = &ex->pool;
    p->clones = calloc((size_t)count, sizeof *p->clones);
    p->idle = calloc((size_t)count, sizeof *p->idle);
    if (!p->clones || !p->idle) {
        fprintf(stderr, "vae-explore: %s\n", NO_MEMORY);
        return 1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->returned, NULL);
    p->ready = 1;
    for (int k = 0; k < count; k++) {
        vae_model **c = &p->clones[k];
        vae_status s = vae_model_clone(c, ex->model);
        p->count += s == VAE_OK;
        if (s == VAE_OK)
            s = vae_model_set_max_batch(*c, RENDER_MAX_BATCH);
        if (s != VAE_OK) {
            fprintf(stderr, "vae-explore: a worker's model: %s\n", vae_last_error());
            return 1;
        }
        /* Plan now, so that the first request does not wait for it. */
        unsigned char *png = NULL;
        size_t len;
        const char *err = render_with(ex, *c, RENDER_SAMPLE, NULL, 0, RENDER_MAX_BATCH, 0, &png,
                                      &len);
        free(png);
        if (err) {
            fprintf(stderr, "vae-explore: a worker's model: %s\n", err);
            return 1;
        }
        p->idle[p->n_idle++] = k;
    }
    return 0;
}

void explore_pool_free(explorer *ex)
{
    explore_pool *p = &ex->pool;
    for (int i = 0; i < p->count; i++)
        vae_model_free(p->clones[i]);
    if (p->ready) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->returned);
    }
    free(p->clones);
    free(p->idle);
    memset(p, 0, sizeof *p);
}
