/* The program behind every vae-* example: build or load a VAE for images,
   train it with progress and per-epoch metrics, keep the last and best
   models, and draw what the reference runs show.  Each program supplies
   its defaults, its network and, if not idx files, its data loader. */
#ifndef APP_H
#define APP_H

#include "common/excommon.h"

typedef struct app_run app_run;

/* Returns the status of a failing call from the function using it. */
#define VAE_CHECK(expr)                   \
    do {                                  \
        vae_status check_s_ = (expr);     \
        if (check_s_ != VAE_OK)           \
            return check_s_;              \
    } while (0)

/* A network: the encoder on input x ((C, H, W) rows) adds the latent mean
   and log-variance and, when with_context, a context vector h for the flow
   steps (else *h is left alone); the decoder on z adds logits shaped like
   x.  The program puts the sample and any flow steps in between. */
typedef struct app_net {
    vae_status (*encoder)(vae_graph *g, int x, const ex_options *o, int with_context, int *mu,
                          int *logvar, int *h);
    vae_status (*decoder)(vae_graph *g, int z, int x, const ex_options *o, int *logits);
    int max_hidden; /* --hidden widths it reads; 0: any number */
} app_net;

typedef struct app {
    const char *name;         /* program name for messages */
    const char *description;  /* for --help */
    const char *fetch_hint;   /* how to get the data when it is missing */
    ex_options defaults;      /* the run's defaults */
    vae_objective objective;  /* training objective and KL weight */
    float beta;
    const struct app_net *net;
    /* Loads the training and test sets; NULL: MNIST-style idx files. */
    int (*load)(const ex_options *o, vae_dataset **train, vae_dataset **test);
    int quantile_grid;        /* 2-D latents: also the 15x15 normal-quantile grid */
    int recon_every_epoch;    /* write reconstructions after every epoch */
} app;

int app_main(int argc, char **argv, const app *a);

/* Networks shared by the programs (nets.c): R1/R4's dense ReLU layers,
   R3's tanh Gaussian/Bernoulli MLPs, R2's convolutions. */
extern const app_net app_dense_net, app_mlp_net, app_conv_net;

#endif
