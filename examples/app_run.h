/* What the driver's files share (app.c, app_settings.c, app_draw.c): the
   state of one run and the helpers that report on it.  Not installed. */
#ifndef APP_RUN_H
#define APP_RUN_H

#include "app.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct app_run {
    const app *app;
    ex_options opt;
    vae_dataset *train, *test;
    vae_model *model;
    vae_optimizer *optimizer;
    int channels, height, width; /* of one image */
    int64_t pixels;
    char path[4096];
    double best_test; /* the test loss of the best.vae in --out */
    int best_epoch;   /* its epoch; 0: none yet */
    int rank, ranks;  /* 0 and 1 unless started by mpirun */
    int local_ranks;  /* ranks on this machine */
    vae_comm *comm;   /* NULL for one rank */
    void *mpi;        /* the MPI adapter's handle */
};

/* Prints the library's error for a failed call and returns 1. */
int app_fail(const app_run *r, const char *what, vae_status s);
#define CALL(r, what, expr)                        \
    do {                                           \
        vae_status call_s_ = (expr);               \
        if (call_s_ != VAE_OK)                     \
            return app_fail((r), (what), call_s_); \
    } while (0)

/* A command line that cannot work: says why and returns 2. */
int app_usage_error(const app_run *r, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* Something the program chose for the user, on stderr. */
void app_note(const app_run *r, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* --out/file, in a buffer of r's. */
const char *app_out_path(app_run *r, const char *file);
/* The image shape from the model's input node. */
void app_model_shape(app_run *r);

/* app_settings.c: settings kept in the model, and the history behind
   metrics.csv */
int app_save_settings(app_run *r, int built);
int app_open_model(app_run *r);
int app_write_metrics(app_run *r);
double app_bits_per_dim(const app_run *r, double nats);
int app_record_epoch(app_run *r, int epoch, double seconds, double ips, double test_loss,
                     double test_recon, double test_kl);
void app_find_best(app_run *r);

/* app_ranks.c: the ranks of an MPI run.  Initialises MPI if mpirun (or
   another launcher) started the program as one of several ranks; returns
   0, or 2 when that cannot work. */
int app_ranks_start(app_run *r, int *argc, char ***argv);
void app_ranks_end(app_run *r);
/* After the flags are read: without --threads, a rank takes its share of
   the machine's cores (the cores divided by the ranks on it). */
void app_ranks_apply(app_run *r);
/* Every rank's rc: each rank's own if it failed, 1 if another failed, else
   0; so that the ranks stop together.  Collective. */
int app_agree(const app_run *r, int rc);
/* Non-zero if any rank has a stop request.  Collective. */
int app_agree_stop(const app_run *r, int stop);
/* Rank 0's best epoch and test loss (it alone reads --out) to every rank. */
int app_share_best(app_run *r);
/* "4 threads" or "2 ranks x 2 threads", for the first line. */
void app_describe_ranks(const app_run *r, char *buf, size_t size);

/* app_draw.c: the pictures of the reference runs */
int app_draw_reconstructions(app_run *r, const char *file);
int app_draw_decoded(app_run *r, const float *z, int n, int cols, int scale, const char *file);
int app_draw_all(app_run *r);

#endif
