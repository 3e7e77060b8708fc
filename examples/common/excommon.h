/*
 * excommon - helpers shared by the libvae example programs: PNG pictures,
 * PLplot charts, command-line flags, a training progress bar and the
 * BLAS re-exec trick.  Not part of the library itself.
 *
 * Every function that can fail prints one message naming what failed on
 * stderr and returns non-zero; none of them exits the process.
 */
#ifndef EXCOMMON_H
#define EXCOMMON_H

#include <stdint.h>
#include <stdio.h>

#include "vae.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Pictures (image.c, libpng) ---- */

/* Write an 8-bit PNG; channels is 1 (gray) or 3 (interleaved RGB).  Writes
   path + ".tmp" first and renames it, so a reader never sees half a file.
   Returns 0, or -1 after a message on stderr. */
int ex_write_png(const char *path, const uint8_t *pixels, int width, int height,
                 int channels);

/* Tile `count` images, each stored channel-major (C,H,W) with values in
   [0,1] (clamped; NaN becomes 0), into a grid of `cols` columns (fewer when
   count < cols) and ceil(count/cols) rows, `pad` gray pixels around and
   between tiles, every pixel magnified `scale` times.  channels is 1 or 3.
   Returns 0, or -1 after a message on stderr. */
int ex_write_grid_png(const char *path, const float *images, int count, int channels,
                      int height, int width, int cols, int pad, int scale);

/* The same 8-bit image as a PNG in memory: *png (malloc'ed, the
   caller frees it) of *len bytes.  Returns 0, or -1 (nothing allocated). */
int ex_encode_png(const uint8_t *pixels, int width, int height, int channels,
                  unsigned char **png, size_t *len);

/* The pixels ex_write_grid_png encodes, interleaved, malloc'ed (the caller
   frees them), *out_width x *out_height; NULL after a message on stderr. */
uint8_t *ex_grid_pixels(const float *images, int count, int channels, int height, int width,
                        int cols, int pad, int scale, int *out_width, int *out_height);

/* ---- Charts (plot.c, PLplot "pngcairo") ---- */

/* Loss curves against epochs: train and test (test may be NULL) with a
   legend, "epoch" and "loss (nats per image)" axes.  n >= 1; non-finite
   values are left out, and the epoch axis spans only the epochs with a
   value.  Returns 0, or -1 after a message on stderr. */
int ex_plot_losses(const char *path, int n, const double *epochs, const double *train,
                   const double *test, const char *title);

/* Scatter of n points (x[i], y[i]) coloured by labels[i] in 0..nclasses-1
   (1 <= nclasses <= 10), with a legend of the classes; labels may be NULL
   for one colour and no legend.  Points with other labels or non-finite
   coordinates are left out.  Axes "z[0]" and "z[1]", 800x800 pixels.
   Returns 0, or -1 after a message on stderr. */
int ex_plot_scatter(const char *path, int n, const float *x, const float *y,
                    const int32_t *labels, int nclasses, const char *title);

/* ---- Command line (cli.c) ---- */

#define EX_MAX_HIDDEN 8
#define EX_MAX_DECODE 64
#define EX_MAX_FREEZE 16

typedef enum ex_loss {
    EX_LOSS_BCE = 0, /* binary cross-entropy: Bernoulli decoder */
    EX_LOSS_MSE = 1  /* squared error: Gaussian decoder */
} ex_loss;

/* Settings of an example program.  Fill it with ex_options_init, change
   the defaults the program wants, then call ex_parse_args.  Strings point
   into argv (or at the caller's defaults); nothing is allocated. */
typedef struct ex_options {
    const char *description; /* one paragraph for --help; may be NULL */
    const char *data_dir;    /* --data DIR */
    const char *out_dir;     /* --out DIR */
    int epochs;              /* --epochs N (0 = no training, e.g. with --load) */
    int batch;               /* --batch N */
    int hidden[EX_MAX_HIDDEN]; /* --hidden N[,N...] */
    int n_hidden;
    int latent;              /* --latent N */
    ex_loss loss;            /* --loss bce|mse */
    vae_optimizer_kind optimizer; /* --optimizer sgd|rmsprop|adam */
    double lr;               /* --lr X */
    uint64_t seed;           /* --seed N */
    int threads;             /* --threads N; 0 = every core, resolved by
                                ex_parse_args to the number of online CPUs */
    int limit;               /* --limit N: use the first N images; 0 = all */
    int size;                /* --size N, for programs that resize images;
                                0 (the default) means the program takes no
                                --size flag */
    int flow_steps;          /* --flow-steps N: IAF steps after the encoder (0: none) */
    int iaf_hidden;          /* --iaf-hidden N: hidden units of each IAF step */
    int eval_iw;             /* --eval-iw K: importance-weighted log p(x) of the
                                test set with K samples at the end (0: off) */
    int eval_limit;          /* --eval-limit N: only the first N test images
                                for --eval-iw (0: all) */
    double beta;             /* --beta X: the KL weight (the program's default) */
    int kl_warmup;           /* --kl-warmup N: beta rises over N epochs (0: off) */
    int lr_schedule;         /* --lr-schedule: a vae_lr_schedule */
    int lr_steps;            /* --lr-steps N (0: the schedule's default) */
    double lr_gamma;         /* --lr-gamma X, in (0, 1] */
    double lr_min;           /* --lr-min X: cosine's final rate */
    int lr_warmup;           /* --lr-warmup N optimizer steps (0: none) */
    double weight_decay;     /* --weight-decay X (0: none) */
    char freeze[EX_MAX_FREEZE][64]; /* --freeze PREFIX[,PREFIX...], repeatable */
    int n_freeze;
    int early_stop;          /* --early-stop N: patience in epochs (0: off) */
    const char *resume;      /* --resume FILE, or NULL */
    const char *load;        /* --load FILE, or NULL */
    float decode[EX_MAX_DECODE]; /* --decode X,Y,... */
    int n_decode;
    int help;                /* --help (or -h) was given */
    int quiet;               /* --quiet: no model summary at start */
    uint32_t given;          /* which flags the command line set (ex_flag_given) */
} ex_options;

/* Generic defaults: data "data", out "out", 10 epochs, batch 100, hidden
   512, latent 2, bce, adam, lr 1e-3, seed 42, every core, no limit, no
   flow (IAF hidden 500), no importance-weighted evaluation, the model
   summary printed (not --quiet); beta 1 without KL warm-up, a constant
   learning rate (gamma 0.1, minimum 0, no warm-up), no weight decay,
   nothing frozen, no early stopping. */
void ex_options_init(ex_options *opt);

/* Parse argv over the defaults already in *opt ("--flag value" and
   "--flag=value" both work).  Returns 0 when the program should run, 1 when
   --help printed the usage (with the defaults) on stdout, and 2 after a
   message on stderr naming the bad flag; exit with status 2 then. */
int ex_parse_args(int argc, char **argv, ex_options *opt);

/* Non-zero if the command line gave --flag (flag without the dashes), so a
   program can tell an explicit value from a default. */
int ex_flag_given(const ex_options *opt, const char *flag);

/* Set --flag from its text as the command line would, but without marking
   it given (for settings read back from a file).  Returns 0, or 2 after a
   message on stderr. */
int ex_set_option(ex_options *opt, const char *flag, const char *value);

/* The value of --flag in the syntax the flag takes, e.g. "512,256" for
   hidden or "adam" for optimizer, so that equal settings give equal text.
   For hidden, latent, loss, seed, optimizer, flow-steps, iaf-hidden, size,
   epochs, batch, lr, beta, kl-warmup, lr-schedule, lr-steps, lr-gamma,
   lr-min, lr-warmup, weight-decay, freeze and early-stop.  Returns 0, or -1 for another flag. */
int ex_option_text(const ex_options *opt, const char *flag, char *buf, size_t size);

/* Print the flags, each with its default from *defaults. */
void ex_print_usage(FILE *out, const char *prog, const ex_options *defaults,
                    const char *description);

/* Like mkdir -p.  Returns 0, or -1 after a message on stderr. */
int ex_mkdir_p(const char *dir);

/* ---- Progress (progress.c) ---- */

/* State of the progress display of one epoch; the fields are private. */
typedef struct ex_progress {
    int epoch, epochs, batches;
    int tty;          /* stderr is a terminal: draw the bar */
    int drawn_len;    /* characters of the bar line now on screen */
    double start;     /* ex_now() at ex_progress_begin */
    double last_draw; /* ex_now() at the last redraw or line */
} ex_progress;

/* Start an epoch (1-based, out of `epochs`) of `batches` batches. */
void ex_progress_begin(ex_progress *p, int epoch, int epochs, int batches);

/* After `batch` of the batches are done (1..batches): redraw the bar on a
   terminal, at most about 10 times a second.  Off a terminal, print the
   line "epoch E/N  batch B/M  loss L  R img/s" after the first update of
   the epoch, then at most one every 10 seconds. */
void ex_progress_update(ex_progress *p, int batch, float loss, double images_per_sec);

/* Erase the bar so that the caller's one-line epoch summary, printed the
   same way on a terminal or not, starts on a clean line. */
void ex_progress_end(ex_progress *p);

/* Seconds from an arbitrary fixed point, monotonic (CLOCK_MONOTONIC). */
double ex_now(void);

/* ---- BLAS kernels (reexec.c) ---- */

/* If hint ("NAME=VALUE", from vae_blas_env_hint()) is non-NULL and NAME is
   unset, set it and VAE_REEXECED=1 and restart the program with the same
   argv.  Returns when there is nothing to do, when already restarted, or
   when the restart fails.  Call it first thing in main. */
void ex_reexec_for_blas(int argc, char **argv, const char *hint);

#ifdef __cplusplus
}
#endif

#endif
