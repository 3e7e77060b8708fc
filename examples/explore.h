/* vae-explore: a trained model served to a browser page (docs/EXPLORE.md).
   explore.c reads the command line, the model and the data; explore_plane.c
   places the test images on the latent plane and writes the page's JSON;
   explore_render.c turns latent points and test images into PNGs with a
   pool of model clones; explore_http.c answers HTTP with libmicrohttpd. */
#ifndef EXPLORE_H
#define EXPLORE_H

#include "common/excommon.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define EXPLORE_MAX_AXES 8     /* the plane's two and six sliders */
#define EXPLORE_MAX_SAMPLES 64 /* images in one /api/samples grid */

/* Clones of the model, one per request answered at once. */
typedef struct explore_pool {
    pthread_mutex_t lock;
    pthread_cond_t returned;
    vae_model **clones;
    int *idle; /* indices of the clones not in use */
    int count, n_idle;
    int ready; /* lock and condition initialised */
} explore_pool;

typedef struct explorer {
    vae_model *model;
    char *model_name; /* the file's base name, for the page */
    int latent, channels, height, width;
    int64_t pixels;
    int flow; /* the decoder reads a flow's output, not the mean */

    vae_dataset *test; /* NULL without --data */
    int64_t points;
    float *plane_u, *plane_v;  /* test image i's place on the plane */
    char **label_names;        /* n_label_names names, or NULL */
    int n_label_names;

    int n_axes;
    double *origin;                  /* latent values */
    double *axes;                    /* n_axes unit vectors of latent values */
    double spread[EXPLORE_MAX_AXES]; /* standard deviation along each axis */
    double extent[4];                /* umin, umax, vmin, vmax */

    char *info_json, *scatter_json;
    size_t info_len, scatter_len;

    explore_pool pool;
} explorer;

/* explore_plane.c: the axes and the points' places (encoding the test set
   on `threads` threads), then the two JSON answers.  0, or 1 after a
   message. */
int explore_place_points(explorer *ex, int threads);
int explore_write_json(explorer *ex);
void explore_plane_free(explorer *ex);

/* explore_render.c.  explore_pool_start makes `count` clones and plans
   their memory; 0, or 1 after a message.  The renderers give a malloc'ed
   PNG of *len bytes and return NULL, or return why they could not (a
   message valid until this thread's next libvae call).  Arguments are
   checked by the caller. */
int explore_pool_start(explorer *ex, int count);
void explore_pool_free(explorer *ex);
const char *explore_decode_png(explorer *ex, const float *z, unsigned char **png, size_t *len);
const char *explore_image_png(explorer *ex, int64_t i, unsigned char **png, size_t *len);
const char *explore_reconstruct_png(explorer *ex, int64_t i, unsigned char **png,
                                    size_t *len);
const char *explore_samples_png(explorer *ex, uint64_t seed, int n, unsigned char **png,
                                size_t *len);

/* explore_http.c: starts serving on worker threads and returns the daemon
   (stop it with MHD_stop_daemon) and the port it listens on, or NULL after
   a message. */
struct MHD_Daemon;
struct MHD_Daemon *explore_http_start(explorer *ex, const char *bind_addr, int port,
                                      int workers, int *bound_port);

/* The embedded page (generated from explore/page.html at build time). */
extern const char explore_page_html[];
extern const size_t explore_page_html_len;

#endif
