/* Models: a graph with planned memory, worker threads and training state. */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include "graph.h"

/* What a call computes.  Each plan is the list of nodes its outputs need,
   in creation (topological) order. */
enum {
    PLAN_TRAIN,
    PLAN_EVAL,
    PLAN_ENCODE,
    PLAN_DECODE,
    PLAN_RECONSTRUCT, /* x -> decoded with every noise input zero */
    PLAN_LOG_WEIGHT,  /* x -> log importance weight; empty without that role */
    PLAN_LATENT,      /* x -> the z the decoder reads, every noise input zero */
    PLAN_COUNT
};

typedef struct plan {
    int *nodes;   /* nodes to compute, in order */
    int count;
    int *noise;   /* OP_NOISE nodes among them */
    int n_noise;
    int feed;     /* the node filled from the caller's rows */
} plan;

/* The log-weight plan split for importance sampling: what no noise
   reaches (the input and the encoder) runs once per image, the rest once
   per sample, reading copies of the shared nodes it needs. */
typedef struct shared_split {
    plan once;
    plan per_sample;
    int *expand;  /* nodes of `once` that per_sample reads */
    int n_expand;
} shared_split;

typedef struct worker {
    exec_ctx c;
    float *values;  /* arena of node values for slice_rows rows */
    float *grads;   /* arena of gradients, NULL until the first training step */
    int lo, hi;     /* rows of the current batch this worker takes */
    int64_t *unique; /* per-image runs: the distinct images of the slice */
    int *row_of;     /* and which of them each row is */
    double objective, nelbo_sum; /* results of the last run */
    double recon_sum, kl_sum;    /* ... and its terms, where the roles exist */
} worker;

typedef struct vae_pool vae_pool;
vae_status vae__pool_create(vae_pool **out, int threads);
/* Runs fn(arg, i) for i = 0 .. threads-1, i = 0 on the calling thread, and
   returns when all are done; with no pool (one thread), just fn(arg, 0).
   Denormals are flushed to zero meanwhile. */
void vae__pool_run(vae_pool *p, void (*fn)(void *arg, int index), void *arg);
void vae__pool_free(vae_pool *p);
int vae__pool_threads(const vae_pool *p);

/* Optimizer state; see optim.c. */
enum { OPTIMIZER_SETTINGS = VAE_OPT_WARMUP_STEPS + 1 };
struct vae_optimizer {
    vae_model *model;
    vae_optimizer_kind kind;
    double settings[OPTIMIZER_SETTINGS];
    int64_t steps;
    int64_t n;
    float *moment1, *moment2; /* NULL where the kind has none */
    double rate;              /* the learning rate of the step being taken */
    int maxima_known;         /* m1_max and m2_max bound the moments */
    double m1_max, m2_max;    /* bounds on the moments' magnitudes */
};

/* Training state as saved in model files. */
typedef struct train_state {
    int epoch, epoch_pos;
    int batch;                 /* batch size of the epoch under way; 0 between epochs */
    int64_t steps;             /* training steps taken: picks the noise stream */
    double epoch_objective, epoch_nelbo; /* sums over the epoch so far */
    double epoch_recon, epoch_kl;        /* (saved in section tsum) */
    int64_t epoch_images;
} train_state;

/* Per-epoch values (history.c): columns of doubles by name, row e - 1
   for epoch e, NaN where nothing was recorded. */
typedef struct history {
    int n_cols, n_rows, cap_rows;
    char **names;
    double **cols;
} history;

/* Host-supplied key/value strings saved with the model (history.c). */
typedef struct metadata {
    int count;
    char **keys, **values;
} metadata;

struct vae_model {
    vae_graph *g;
    const vae_model *parent; /* a clone reads its parent's graph and weights */
    int max_batch, threads, slice_rows;
    plan plans[PLAN_COUNT];
    shared_split lw;   /* PLAN_LOG_WEIGHT, split */
    worker *workers;   /* threads of them once planned */
    vae_pool *pool;
    int planned;       /* values are allocated for max_batch and threads */
    int has_conv;      /* the training plan has convolutions */
    int unit_inputs;   /* a Bernoulli likelihood reads the input: values in [0, 1] */
    int64_t planned_bytes;
    int64_t memory_limit; /* planning more bytes than this fails */
    int file_format;      /* of the file it was loaded from; 0 if built */
    char file_writer[32]; /* the libvae version that wrote it; "" if unknown */
    train_state train;
    history hist;
    metadata meta;
    vae_optimizer *saved_optimizer; /* from a loaded file, until restored */
    int64_t *live;     /* (start, end) pairs of parameters not masked out
                          nor frozen: the ones the optimizer must visit */
    unsigned char *frozen; /* per node: a frozen parameter; NULL: none */
    int64_t n_live;
    double param_max;  /* a bound on |parameter|, when param_max_known */
    int param_max_known;
    int64_t *perm;     /* the current epoch's order */
    int64_t perm_count;
    vae_comm *comm;    /* borrowed; training and evaluation are collective
                          over it when it has more than one rank */
};

/* The node of the reconstruction term (BCE or Gaussian), which tells how
   p(x|z) draws; NULL if there is none. */
const node *vae__likelihood_node(const vae_graph *g);

/* Fails for a clone: what changes the shared graph or weights is the
   parent's to do. */
vae_status vae__model_check_writable(const vae_model *m, const char *what);

/* model.c: takes marks (per node, 1 = frozen parameter) and recomputes
   what the optimizer visits */
vae_status vae__model_set_frozen(vae_model *m, unsigned char *marks);

/* exec.c */
vae_status vae__model_build_plans(vae_model *m);
void vae__model_free_plans(vae_model *m);
/* Allocates values (and gradients if `grads`) for max_batch and threads. */
vae_status vae__model_ensure_planned(vae_model *m, int grads);
void vae__model_unplan(vae_model *m);
/* Bytes the plans would take for max_batch and threads, with gradients if
   `grads` (what vae__model_ensure_planned checks against the limit). */
int64_t vae__model_bytes_needed(const vae_model *m, int grads);
void vae__forward(const vae_model *m, const plan *p, exec_ctx *c);
/* Adds the objective's gradient to c->param_grad, which holds zeros
   between training steps: whoever consumes it sets it back to zero
   (the optimizer update, the reduction, vae__clear_gradients). */
void vae__backward(const vae_model *m, const plan *p, exec_ctx *c);
void vae__clear_gradients(vae_model *m);

/* Splits rows lo .. hi-1 of a batch of `total` rows between the workers
   (or, if single, gives them all to the first); fill_noise then fills
   every noise node of plan p with the draws from rng that those rows
   would get in the whole batch, so the draws depend on neither the thread
   count nor the ranks sharing the batch. */
void vae__split_rows(vae_model *m, int lo, int hi, int total, int single);
void vae__fill_noise(vae_model *m, const plan *p, vae_rng *rng);
/* Sets the noise nodes of plan p to zero for every planned row. */
void vae__zero_noise(vae_model *m, const plan *p);

/* The job every worker runs on its slice of a batch. */
typedef struct batch_job {
    vae_model *m;
    const plan *p;
    int rows;
    const float *feed;         /* rows of the fed node, or NULL: */
    const vae_dataset *data;   /* ... rows of a data set, */
    const int64_t *index;      /* ... picked by index, or from first */
    int64_t first;
    int backward;
    int single;                /* worker 0 takes every row, its matrix
                                  products split over all threads */
    int per_image;             /* index is nondecreasing: rows of one image
                                  share the noise-free part (m->lw) */
    int out_node[2];           /* batched nodes to copy out, or -1 */
    float *out[2];
} batch_job;
void vae__run_batch(batch_job *job);

/* Stream ids for vae__rng_seed3: what the noise of a call is drawn from. */
enum { STREAM_TRAIN = 1, STREAM_SHUFFLE = 2, STREAM_EVAL = 3, STREAM_LOG_WEIGHT = 4 };

/* comm.c: the collectives every rank enters the same number of times */
int vae__comm_active(const vae_comm *c); /* more than one rank */
/* This rank's rows [lo, hi) of `rows` (all of them without a comm). */
void vae__comm_share(const vae_comm *c, int64_t rows, int64_t *lo, int64_t *hi);
vae_status vae__comm_sum_floats(vae_comm *c, float *data, int64_t count);
/* The optional halves of the sum: set, and more than one rank. */
int vae__comm_sharded(const vae_comm *c);
/* How many of c's callbacks have failed so far. */
int64_t vae__comm_failures(const vae_comm *c);
vae_status vae__comm_reduce_scatter(vae_comm *c, float *data, int64_t count);
vae_status vae__comm_allgather(vae_comm *c, float *data, int64_t count);
vae_status vae__comm_sum_doubles(vae_comm *c, double *data, int64_t count);
/* What every rank must pass alike (batch rows, data set sizes): n <=
   ALIKE_MAX values as 4 n doubles for an agreement's sums, and whether the
   summed doubles say every rank had the same values. */
enum { ALIKE_MAX = 2 };
void vae__comm_alike_values(const int64_t *values, int n, double *v);
int vae__comm_alike(const vae_comm *c, const int64_t *values, int n, const double *sums);
/* Agrees on the ranks' statuses and sums extra[0 .. n_extra) (at most 16)
   in the same call: VAE_OK if every rank passed VAE_OK, else local's status
   on a failed rank and VAE_ERR_COMM elsewhere ("rank 1 of 2 failed").
   With one rank, returns local. */
vae_status vae__comm_agree_with(vae_comm *c, vae_status local, double *extra, int n_extra,
                                const char *what);
/* Agrees on local as vae__comm_agree_with and then fails with VAE_ERR_COMM
   unless the weights, training position and (if opt) optimizer state are
   those of rank 0, bit for bit. */
vae_status vae__comm_check_same(vae_model *m, const vae_optimizer *opt, vae_status local,
                                const char *what);

/* Fails unless data is a data set of the model's input rows (evaluate.c). */
vae_status vae__check_data(const vae_model *m, const vae_dataset *data, const char *what);

/* optim.c */
/* What a probe over a range saw: probe is NaN if a new value would not
   be finite; the maxima are the new values' largest magnitudes. */
typedef struct update_stats {
    float probe, p_max, m1_max, m2_max;
} update_stats;
/* Updates params[lo..hi) from grad and sets that range of grad to zero. */
void vae__optimizer_update(vae_optimizer *opt, float *params, float *grad, float scale,
                           int64_t lo, int64_t hi);
/* Computes the same update without storing it, into st. */
void vae__optimizer_probe(vae_optimizer *opt, float *params, float *grad, float scale,
                          int64_t lo, int64_t hi, update_stats *st);
int vae__optimizer_next_bounds(const vae_optimizer *o, double p_max, double grad_max,
                               double next[3]);
int vae__optimizer_has_option(vae_optimizer_kind kind, vae_optimizer_option option);
/* Counts the step about to be taken and fixes its learning rate. */
void vae__optimizer_begin_step(vae_optimizer *o);
/* The rate of the step about to be taken, o->steps of them done. */
double vae__optimizer_rate_at(const vae_optimizer *o, int64_t done);
/* Fails unless value is valid for option, as vae_optimizer_set checks it. */
vae_status vae__optimizer_check_value(const vae_optimizer *o, vae_optimizer_option option,
                                      double value, const char *what);
vae_status vae__optimizer_alloc(vae_optimizer **out, vae_model *m, vae_optimizer_kind kind);

/* history.c */
enum { HISTORY_MAX_COLUMNS = 64, HISTORY_MAX_EPOCHS = 1000000, NAME_MAX_BYTES = 255,
       METADATA_MAX_KEYS = 256, METADATA_MAX_VALUE = 1 << 16 };
/* Makes room for epochs 1..epochs in every column. */
vae_status vae__history_reserve(history *h, int epochs);
/* Makes room for `epoch` and adds the columns that are missing, so that
   recording them afterwards cannot fail. */
vae_status vae__history_prepare(history *h, int epoch, const char *const *columns, int n);
/* Records a value; `what` names the calling function in messages. */
vae_status vae__history_set(history *h, int epoch, const char *column, double value,
                            const char *what);
void vae__history_free(history *h);
vae_status vae__metadata_set(metadata *md, const char *key, const char *value, size_t value_len,
                             const char *what);
void vae__metadata_free(metadata *md);
/* Non-zero if name is 1 to NAME_MAX_BYTES printable ASCII characters. */
int vae__valid_name(const char *name, size_t len);

#endif
