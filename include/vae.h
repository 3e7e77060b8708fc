/*
 * libvae - variational autoencoders in C.
 *
 * Overview
 * --------
 * A host program builds a network as a graph of operations, marks the roles
 * of its nodes (the input x, the latent mean and log-variance, the sampled z,
 * the decoder's logits, the loss), and turns the graph into a model.  The
 * model plans its memory once for a maximum batch size, trains with an
 * optimizer, evaluates the negative ELBO, encodes, decodes, samples, and is
 * saved to and loaded from one self-describing file.
 *
 *     vae_graph *g;  int x, h, mu, lv, z, logits, loss;
 *     int dims[1] = {784};
 *     vae_graph_create(&g, 42);
 *     vae_graph_input(g, "x", 1, dims, &x);
 *     vae_layer_dense(g, x, 400, VAE_ACT_RELU, "enc", &h);
 *     vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, 20, 0, "q", &mu, &lv, NULL);
 *     vae_op_sample_normal(g, mu, lv, &z);
 *     vae_layer_bernoulli_mlp(g, z, 400, VAE_ACT_RELU, 784, "p", &logits);
 *     vae_elbo_build(g, x, mu, lv, z, logits, VAE_LIKELIHOOD_BERNOULLI,
 *                    VAE_OBJECTIVE_ELBO, 1.0f, &loss);
 *     vae_model *m;  vae_model_create(&m, g);        // m now owns g
 *     vae_optimizer *opt; vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM);
 *     vae_model_train_epoch(m, opt, train_set, 128, NULL, NULL, &obj, &nelbo);
 *
 * Shapes
 * ------
 * Every graph node is either batched (its first dimension is the batch, not
 * written in its per-row dims) or a parameter/constant (no batch dimension).
 * Per-row dims have 1 to 3 entries, so a tensor has at most 4 dimensions.
 * Images are stored channel-major (C, H, W) within a row (NCHW for a
 * batch): data sets, convolutions and decoded outputs all use this layout.
 * A tensor passed to a model holds n rows: its first dimension is n and the
 * others multiply to the row size, so (n, 784) and (n, 1, 28, 28) both fit
 * a model of 784 inputs (a 1-D tensor fits only rows of one element).
 *
 * Errors
 * ------
 * Every fallible call returns a vae_status.  VAE_OK is 0; every other value
 * is an error whose description is vae_strerror(status) and whose detailed
 * message (naming the file, argument or shape at fault) is vae_last_error(),
 * kept per thread.  Each function below says which statuses it returns and
 * when.  Results are returned through pointer arguments and output tensors,
 * which are left untouched on failure unless the function says otherwise.
 * Functions that return no status never fail: for a NULL handle or an index
 * out of range they return the value their comment gives (0, -1, NULL, NaN).
 * The library never calls exit() or abort(), never prints unless a log
 * callback is installed, and frees everything it allocated on an error path.
 *
 * Planning errors: a model allocates the memory for its batches (values,
 * and gradients from the first training call on) at the first call that
 * runs it after vae_model_create or vae_model_load, and again after the
 * maximum batch or the thread count changes.  That call can then fail with
 * VAE_ERR_NO_MEMORY (also, before anything is allocated, when the plan
 * would exceed vae_model_set_memory_limit) or VAE_ERR_THREAD (a worker
 * thread could not be started); the model stays usable and plans again at
 * its next call.  "A planning error" below means one of these.
 *
 * Ownership
 * ---------
 * Whoever creates a handle frees it with the matching _free function
 * (passing NULL to a _free function is allowed and does nothing).
 * vae_model_create takes ownership of the graph on success only.  From then
 * on the model frees it (do not call vae_graph_free on it) and it is
 * read-only: every call that adds nodes (vae_graph_input, vae_graph_param,
 * vae_op_*, vae_layer_*, vae_elbo_*) and vae_graph_set_role fail on it with
 * VAE_ERR_STATE, and it cannot make a second model.  An optimizer belongs to the model it was created for (or
 * restored from) and must not be used once that model is freed; either may
 * be freed first.  Strings and pointers returned by the library are
 * borrowed: they stay valid until the handle they came from is freed (or as
 * the function says).  Host buffers passed in are copied; the library keeps
 * no pointer to them after the call returns.
 *
 * Names
 * -----
 * Node names (inputs, parameters, the parameters of layers) are unique in a
 * graph since 0.3: a name already taken is VAE_ERR_ARGUMENT.  A name may be
 * NULL.  Keep names, with the suffixes a layer adds, under 256 bytes: a
 * model file with a longer one does not load.
 *
 * Threads
 * -------
 * A handle is used by one thread at a time (a model, its graph and its
 * optimizers count as one); different handles may be used from different
 * threads concurrently.  A model runs every call with its own worker threads
 * (vae_model_set_threads), splitting each batch between them.  From the
 * first planning of any model (or the first vae_blas_info call) on, the
 * library sets OpenBLAS or BLIS to one thread per call, process-wide.
 * Results are reproducible for the same seed and the same thread count.
 *
 * BLAS kernels
 * ------------
 * OpenBLAS picks its kernels once, when it is loaded, and some builds do not
 * recognise newer AVX-512 CPUs.  vae_blas_env_hint() tells whether setting an
 * environment variable before the process starts would select faster
 * kernels (for example OPENBLAS_CORETYPE=SkylakeX); the bundled programs
 * re-execute themselves with it.  For BLIS the library itself sets
 * BLIS_ARCH_TYPE before its first BLAS call when the CPU reports AVX-512
 * and the variable is unset.  vae_blas_info() says what is in use.
 *
 * ABI
 * ---
 * Handles are opaque, enums are append-only with fixed values (except
 * VAE_ROLE_COUNT_, which hosts must never use), settings go through setter
 * functions, and exported symbols carry the version node of
 * docs/symbols.txt.  The SONAME changes only when the ABI does.
 */
#ifndef VAE_H
#define VAE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(VAE_BUILDING_SHARED)
#define VAE_API __declspec(dllexport)
#elif defined(__GNUC__) && defined(VAE_BUILDING)
#define VAE_API __attribute__((visibility("default")))
#else
#define VAE_API
#endif

#define VAE_VERSION_MAJOR 0
#define VAE_VERSION_MINOR 4
#define VAE_VERSION_PATCH 0
#define VAE_VERSION_STRING "0.4.0"
/* major * 10000 + minor * 100 + patch */
#define VAE_VERSION_NUMBER 400
/* Largest number of per-row dimensions of a node. */
#define VAE_MAX_ROW_DIMS 3

/* ---- Status codes: values are fixed forever; new ones are appended. ---- */
typedef enum vae_status {
    VAE_OK = 0,
    VAE_ERR_ARGUMENT = 1,    /* a NULL handle, bad size, unknown enum value */
    VAE_ERR_NO_MEMORY = 2,
    VAE_ERR_IO = 3,          /* a file could not be opened, read or written */
    VAE_ERR_FORMAT = 4,      /* a file is truncated, malformed, foreign or
                                from a newer libvae */
    VAE_ERR_SHAPE = 5,       /* tensor or node shapes do not fit together */
    VAE_ERR_NOT_FINITE = 6,  /* a loss, gradient or value became NaN or
                                infinite */
    VAE_ERR_STATE = 7,       /* a call that does not fit the handle's state
                                (e.g. adding to a graph a model owns) */
    VAE_ERR_UNSUPPORTED = 8, /* valid, but not supported by this build */
    VAE_ERR_STOPPED = 9,     /* a callback asked to stop */
    VAE_ERR_CHECKSUM = 10,   /* a file's checksum does not match its data */
    VAE_ERR_THREAD = 11,     /* a worker thread could not be started */
    VAE_ERR_COMM = 12        /* a collective operation failed, another rank
                                failed, or the ranks disagree (since 0.4) */
} vae_status;

/* Activations for layers. */
typedef enum vae_activation {
    VAE_ACT_NONE = 0,
    VAE_ACT_RELU = 1,
    VAE_ACT_LEAKY_RELU = 2, /* slope 0.01 below zero */
    VAE_ACT_TANH = 3,
    VAE_ACT_SIGMOID = 4,
    VAE_ACT_SOFTPLUS = 5
} vae_activation;

/* How the decoder's output models p(x|z). */
typedef enum vae_likelihood {
    VAE_LIKELIHOOD_BERNOULLI = 0,      /* logits; mean = sigmoid(logits) */
    VAE_LIKELIHOOD_GAUSSIAN_UNIT = 1,  /* mean = sigmoid(logits), variance 1 */
    VAE_LIKELIHOOD_GAUSSIAN_LEARNED = 2, /* mean = sigmoid(logits), one learned
                                           log-variance per feature: the
                                           parameter "likelihood.logvar"
                                           (the input's row size), starting
                                           at -4 (sigma 0.135 on pixels in
                                           [0, 1]; since 0.3, before: 0);
                                           a host chooses another start
                                           with vae_model_param_set */
    /* Since 0.3: the mean is the logits themselves (no sigmoid), for data
       outside [0, 1] such as standardised features; DECODED is the
       logits node. */
    VAE_LIKELIHOOD_GAUSSIAN_UNIT_LINEAR = 3,
    VAE_LIKELIHOOD_GAUSSIAN_LEARNED_LINEAR = 4
} vae_likelihood;

/* What training minimises.  Reported losses are always -ELBO in nats. */
typedef enum vae_objective {
    /* mean over the batch of  recon + beta * KL  (recon = -log p(x|z)) */
    VAE_OBJECTIVE_ELBO = 0,
    /* mean over the batch of  recon / features + beta * KL  (the Keras
       "mean per-pixel cross-entropy plus weighted KL" objective) */
    VAE_OBJECTIVE_PIXEL_MEAN = 1
} vae_objective;

/* Padding of convolutions, as Keras and TensorFlow define it. */
typedef enum vae_padding {
    VAE_PADDING_VALID = 0, /* no padding */
    VAE_PADDING_SAME = 1   /* output size ceil(input / stride); the extra row or
                              column of padding, if any, at the bottom/right */
} vae_padding;

/* The masks of a MADE layer (see vae_op_made_matmul). */
typedef enum vae_made_mask {
    VAE_MADE_INPUT_TO_HIDDEN = 0, /* from the L autoregressive units to hidden units */
    VAE_MADE_HIDDEN_TO_OUTPUT = 1 /* from hidden units to L outputs */
} vae_made_mask;

/* Which node plays which part; stored in model files. */
typedef enum vae_role {
    VAE_ROLE_INPUT = 0,         /* x */
    VAE_ROLE_LATENT_MEAN = 1,   /* mu of q(z|x) */
    VAE_ROLE_LATENT_LOGVAR = 2, /* log-variance of q(z|x) */
    VAE_ROLE_LATENT = 3,        /* z: fed directly when decoding */
    VAE_ROLE_LOGITS = 4,        /* decoder output before the sigmoid */
    VAE_ROLE_OBJECTIVE = 5,     /* scalar the optimizer minimises */
    VAE_ROLE_NELBO = 6,         /* -ELBO per row, in nats */
    VAE_ROLE_DECODED = 7,       /* decoder mean, sigmoid(logits) */
    VAE_ROLE_LOG_WEIGHT = 8,    /* per row log p(x|z) + log p(z) - log q(z|x)
                                   for the z drawn: the importance weight of
                                   vae_model_log_likelihood.  Optional: models
                                   saved before it existed have none. */
    /* Since 0.3, optional (the ELBO builders set them): */
    VAE_ROLE_RECON = 9,         /* per row -log p(x|z), the reconstruction term */
    VAE_ROLE_KL = 10,           /* per row the KL term (with a flow, the
                                   single-sample log q(z|x) - log p(z)) */
    VAE_ROLE_WEIGHTED_KL = 11,  /* per row beta * KL, the node whose factor
                                   vae_model_set_beta changes */
    VAE_ROLE_COUNT_ = 12        /* NEVER USE: not part of the ABI.  Its
                                   value grows as roles are added (8 in 0.1,
                                   9 in 0.2, 12 since 0.3); it stays only so
                                   that old source compiles.
                                   vae_graph_set_role refuses it. */
} vae_role;

typedef enum vae_optimizer_kind {
    VAE_OPTIMIZER_SGD = 0,     /* with momentum (default 0.9) */
    VAE_OPTIMIZER_RMSPROP = 1, /* Keras defaults: rho 0.9, eps 1e-7 */
    VAE_OPTIMIZER_ADAM = 2     /* beta1 0.9, beta2 0.999, eps 1e-8 */
} vae_optimizer_kind;

/* Optimizer settings, for vae_optimizer_set / vae_optimizer_get.  Each kind
   has only its own options: since 0.3 another is VAE_ERR_ARGUMENT. */
typedef enum vae_optimizer_option {
    VAE_OPT_LEARNING_RATE = 0, /* every kind; default 1e-3 */
    VAE_OPT_MOMENTUM = 1,      /* SGD only */
    VAE_OPT_BETA1 = 2,         /* Adam only */
    VAE_OPT_BETA2 = 3,         /* Adam only */
    VAE_OPT_EPSILON = 4,       /* Adam and RMSprop */
    VAE_OPT_RHO = 5,           /* RMSprop only: decay of the squared-gradient mean */
    VAE_OPT_CLIP_NORM = 6,     /* every kind: clip gradients to this global L2
                                  norm; 0 (the default) = off */
    /* Since 0.3, every kind: */
    VAE_OPT_WEIGHT_DECAY = 7,  /* decoupled, as AdamW: each step first
                                  multiplies every weight by 1 - rate * decay;
                                  default 0 */
    VAE_OPT_SCHEDULE = 8,      /* a vae_lr_schedule; default constant */
    VAE_OPT_SCHEDULE_STEPS = 9, /* step: steps between decays; cosine: the
                                   steps to anneal over (then it stays at
                                   the minimum); a whole number >= 1,
                                   default 1000 */
    VAE_OPT_SCHEDULE_GAMMA = 10, /* step: factor per decay; exponential:
                                    factor per step; in (0, 1], default 0.1 */
    VAE_OPT_MIN_RATE = 11,     /* cosine: the rate it anneals to; default 0 */
    VAE_OPT_WARMUP_STEPS = 12  /* the first N steps scale the rate by
                                  (step + 1) / N, step counted from 0; a whole
                                  number >= 0, default 0 (none) */
} vae_optimizer_option;

/* How the learning rate changes with the optimizer's step t (0 for the
   first batch; vae_optimizer_steps before the step), lr being
   VAE_OPT_LEARNING_RATE:
     constant     lr
     step         lr * gamma^floor(t / steps)
     exponential  lr * gamma^t
     cosine       min + (lr - min) * (1 + cos(pi * min(t, steps) / steps)) / 2
   then times (t + 1) / warmup while t < warmup.  The step count is part of
   the saved training state, so a resumed run continues the schedule. */
typedef enum vae_lr_schedule {
    VAE_LR_CONSTANT = 0,
    VAE_LR_STEP = 1,
    VAE_LR_EXPONENTIAL = 2,
    VAE_LR_COSINE = 3
} vae_lr_schedule;

typedef enum vae_log_level {
    VAE_LOG_ERROR = 0,
    VAE_LOG_WARNING = 1,
    VAE_LOG_INFO = 2,
    VAE_LOG_DEBUG = 3
} vae_log_level;

typedef struct vae_tensor vae_tensor;
typedef struct vae_graph vae_graph;
typedef struct vae_model vae_model;
typedef struct vae_optimizer vae_optimizer;
typedef struct vae_dataset vae_dataset;

/* Called with each message at or below the level set; `user` is passed back.
   The message is borrowed for the duration of the call. */
typedef void (*vae_log_fn)(void *user, vae_log_level level, const char *message);
/* Progress of vae_model_train_epoch, after every batch: the batches of the
   epoch done (counting any done before a resume), the epoch's batch count
   and the batch's objective; and of vae_model_log_likelihood, after every
   pass: the images finished, the image count and the running mean of
   -log p(x).  Return non-zero to stop: the call then returns
   VAE_ERR_STOPPED, unless the work was already complete (a non-zero return
   after the last batch is ignored).  A stopped epoch keeps its place, so a
   saved model resumes from there. */
typedef int (*vae_progress_fn)(void *user, int batch, int batch_count,
                               float batch_objective);

/* ---- Library ---- */
/* The version of the library linked, which may be later than the
   VAE_VERSION_* a program was compiled with; a static string. */
VAE_API const char *vae_version_string(void);
VAE_API int vae_version_number(void);
/* A static description of status; "unknown status" for a value that is
   not a vae_status. */
VAE_API const char *vae_strerror(vae_status status);
/* The message of the last failure on the calling thread ("" before any).
   The buffer is the thread's own; read it right after the failing call,
   since a later call on the thread may replace it. */
VAE_API const char *vae_last_error(void);
/* Installs fn (NULL: none) to receive messages at or below the level set by
   vae_set_log_level (default VAE_LOG_WARNING).  Both are process-wide; not
   to be changed while other threads use the library. */
VAE_API void vae_set_log_callback(vae_log_fn fn, void *user);
VAE_API void vae_set_log_level(vae_log_level level);
/* Which BLAS and which kernels are in use, e.g. "OpenBLAS 0.3.21, SkylakeX
   kernels"; a static string.  The first call sets the BLAS to one thread
   per call (see Threads). */
VAE_API const char *vae_blas_info(void);
/* "NAME=VALUE" to put in the environment before the process starts to get
   faster BLAS kernels on this CPU, or NULL when nothing would help; a
   static string. */
VAE_API const char *vae_blas_env_hint(void);

/* ---- Tensors: float32, 1 to 4 dimensions, row-major. ---- */
/* A tensor of ndim dimensions dims[0..ndim-1], filled with zeros.  Returns
   VAE_OK; VAE_ERR_ARGUMENT if out or dims is NULL, ndim is not 1..4, a
   dimension is below 1 or the tensor would hold more than 2^40 elements;
   VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_tensor_create(vae_tensor **out, int ndim, const int64_t *dims);
/* The same, holding a copy of the elements at data.  out must not be NULL.
   Returns as vae_tensor_create, and VAE_ERR_ARGUMENT if data is NULL. */
VAE_API vae_status vae_tensor_from_host(vae_tensor **out, int ndim, const int64_t *dims,
                                        const float *data);
VAE_API void vae_tensor_free(vae_tensor *t);
/* Number of dimensions, or 0 if t is NULL. */
VAE_API int vae_tensor_ndim(const vae_tensor *t);
/* Size of dimension i, or -1 if t is NULL or i is out of range. */
VAE_API int64_t vae_tensor_dim(const vae_tensor *t, int i);
/* Number of elements, or 0 if t is NULL. */
VAE_API int64_t vae_tensor_count(const vae_tensor *t);
/* Borrowed pointer to the elements, valid until the tensor is freed; NULL
   if t is NULL. */
VAE_API float *vae_tensor_data(vae_tensor *t);
/* Copy all the tensor's elements from src or to dst; count must be
   vae_tensor_count(t).  Return VAE_OK; VAE_ERR_ARGUMENT if a pointer is
   NULL; VAE_ERR_SHAPE if count differs (nothing is copied). */
VAE_API vae_status vae_tensor_copy_from_host(vae_tensor *t, const float *src, int64_t count);
VAE_API vae_status vae_tensor_copy_to_host(const vae_tensor *t, float *dst, int64_t count);

/* ---- Graphs ----
   Node ids are small non-negative integers, valid for the graph that made
   them.  Parameters are initialised when created, from the graph's seed.
   A graph that a model owns is read-only (see Ownership). */
/* An empty graph; seed fixes the initial parameters and the training
   noise, shuffling and evaluation noise of the model made from it.  Returns VAE_OK; VAE_ERR_ARGUMENT if out is
   NULL; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_graph_create(vae_graph **out, uint64_t seed);
/* Frees a graph that no model owns (a model frees its own). */
VAE_API void vae_graph_free(vae_graph *g);
/* A batched input with per-row dims (1 to 3 of them, at most 2^30 elements
   per row); name (copied) may be NULL.  Returns VAE_OK; VAE_ERR_ARGUMENT if
   g, dims or out is NULL, ndim or a dimension is out of range, or the name
   is taken; VAE_ERR_STATE if a model owns g; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_graph_input(vae_graph *g, const char *name, int ndim,
                                   const int *dims, int *out);
/* An (unbatched) parameter of dims, uniform in [-scale, scale] (scale 0:
   zeros).  Returns as vae_graph_input, and VAE_ERR_ARGUMENT for a scale
   outside [0, 1e6]. */
VAE_API vae_status vae_graph_param(vae_graph *g, const char *name, int ndim,
                                   const int *dims, float scale, int *out);
/* Gives role to node (replacing the node that had it).  Shapes are checked
   by vae_model_create.  Returns VAE_OK; VAE_ERR_ARGUMENT for an unknown
   role (VAE_ROLE_COUNT_ included), a NULL g or a node that does not exist;
   VAE_ERR_STATE if a model owns g. */
VAE_API vae_status vae_graph_set_role(vae_graph *g, vae_role role, int node);
/* The node with that role, or -1 if none, g is NULL or role is unknown. */
VAE_API int vae_graph_role(const vae_graph *g, vae_role role);
/* The node with that name, or -1 if none or an argument is NULL.  (A graph
   loaded from a 0.2 file may repeat a name: then the first.) */
VAE_API int vae_graph_find(const vae_graph *g, const char *name);
/* Number of nodes, or 0 if g is NULL. */
VAE_API int vae_graph_node_count(const vae_graph *g);
/* Number of elements of one row of a node (the whole node if unbatched),
   or -1 if g is NULL or the node does not exist. */
VAE_API int64_t vae_graph_node_size(const vae_graph *g, int node);
/* A node's per-row dims (all dims if unbatched): returns their number and
   writes up to VAE_MAX_ROW_DIMS into dims; 0, writing nothing, if g or dims
   is NULL or the node does not exist. */
VAE_API int vae_graph_node_dims(const vae_graph *g, int node, int *dims);

/* ---- Looking inside a graph (since 0.3) ----
   Every node is one of these kinds; its operation has a stable name
   ("input", "param", "noise", "matmul", "bias", "relu", "leaky_relu",
   "tanh", "sigmoid", "softplus", "add", "mul", "scale", "concat",
   "sample_normal", "bce_logits", "gaussian_loglik", "kl_std_normal",
   "sum", "mean", "batch_mean", "conv2d", "conv2d_transpose", "reshape",
   "made_matmul", "iaf_gate", "iaf_log_gate"; new operations add names,
   none changes).  These return -1 (or NULL) for a NULL graph or a node
   that does not exist. */
typedef enum vae_node_kind {
    VAE_NODE_INPUT = 0,   /* filled from the caller's rows (vae_graph_input) */
    VAE_NODE_PARAM = 1,   /* a trained parameter (vae_graph_param, layers) */
    VAE_NODE_NOISE = 2,   /* N(0, I) draws, made by vae_op_sample_normal */
    VAE_NODE_COMPUTED = 3 /* the result of an operation */
} vae_node_kind;
/* Most inputs a node has. */
#define VAE_MAX_NODE_INPUTS 4
VAE_API int vae_graph_node_kind(const vae_graph *g, int node);
/* The node's name, borrowed; NULL if it has none. */
VAE_API const char *vae_graph_node_name(const vae_graph *g, int node);
/* The operation's name (above), static storage. */
VAE_API const char *vae_graph_node_op(const vae_graph *g, int node);
/* Writes the node's inputs (up to VAE_MAX_NODE_INPUTS ids, -1 for an
   optional input left out) and returns how many the operation takes;
   -1 also if inputs is NULL. */
VAE_API int vae_graph_node_inputs(const vae_graph *g, int node, int *inputs);
/* 1 if the node has a row per batch item, 0 if not (parameters, the
   objective). */
VAE_API int vae_graph_node_batched(const vae_graph *g, int node);
/* The role the node plays (vae_role), or -1 for none. */
VAE_API int vae_graph_node_role(const vae_graph *g, int node);
/* The graph as Graphviz DOT text: inputs as boxes, parameters as notes,
   operations as rounded boxes with their output shapes, the roles marked
   ("x: ", "mu: ", "z: ", "loss: ", ...) and drawn bold; `dot -Tsvg` draws
   it.  Written into buf (size bytes, with the terminating NUL).  *needed
   (if not NULL) gets the size needed, also when buf is too small; pass
   buf NULL and size 0 to ask for it.  Returns VAE_OK; VAE_ERR_ARGUMENT if
   g is NULL, buf is too small (buf untouched) or NULL with size > 0;
   VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_graph_dot(const vae_graph *g, char *buf, size_t size, size_t *needed);

/* ---- Operations ----
   Each adds one node (unless it says otherwise) and writes its id to *out.
   They return VAE_OK; VAE_ERR_ARGUMENT for a NULL g or out, an input node
   that does not exist, or a constant or enum value out of range;
   VAE_ERR_SHAPE when the inputs' shapes do not fit as stated (an input
   said to be batched must have rows, a weight or bias must not);
   VAE_ERR_STATE if a model owns g; VAE_ERR_NO_MEMORY.  On failure no node
   is added (but see vae_op_sample_normal). */
/* x (B, K) times w (K, N) -> (B, N): x batched with rows of K elements (of
   any row shape), w an unbatched 2-D node. */
VAE_API vae_status vae_op_matmul(vae_graph *g, int x, int w, int *out);
/* x (B, N) plus b (N) on every row; or x (B, C, H, W) plus b (C) on every
   channel.  x batched, b unbatched. */
VAE_API vae_status vae_op_bias(vae_graph *g, int x, int b, int *out);
/* Convolution (cross-correlation, as in Keras and PyTorch):
   x (B, C, H, W) with w (F, C*k*k) -> (B, F, OH, OW).  w's rows are filters,
   each laid out (C, k, k).  "same": OH = ceil(H / stride); "valid":
   OH = (H - k) / stride + 1 (and likewise OW).  Kernel and stride are 1 to
   64 and padding is one of vae_padding (else VAE_ERR_ARGUMENT); x must be
   batched with (C, H, W) rows and w unbatched (else VAE_ERR_SHAPE, as for
   an input smaller than the kernel or an output over 2^30 elements). */
VAE_API vae_status vae_op_conv2d(vae_graph *g, int x, int w, int kernel, int stride,
                                 vae_padding padding, int *out);
/* Transposed convolution, the gradient of vae_op_conv2d with respect to its
   input: x (B, C, H, W) with w (C, F*k*k) -> (B, F, OH, OW), where "same":
   OH = H * stride (Keras's size: 14 -> 28 at stride 2); "valid":
   OH = (H - 1) * stride + k.  The same checks as vae_op_conv2d. */
VAE_API vae_status vae_op_conv2d_transpose(vae_graph *g, int x, int w, int kernel, int stride,
                                           vae_padding padding, int *out);
/* The same elements of batched x under new per-row dims (1 to 3 of them):
   Flatten is a reshape to one dimension, Keras's Reshape((14,14,64)) is
   (64, 14, 14) here.  VAE_ERR_ARGUMENT for bad ndim or dims (or dims
   NULL), VAE_ERR_SHAPE if the element count differs. */
VAE_API vae_status vae_op_reshape(vae_graph *g, int x, int ndim, const int *dims, int *out);
/* act(x), elementwise, on any node (batched or not).  VAE_ACT_NONE adds no
   node: *out is x. */
VAE_API vae_status vae_op_activation(vae_graph *g, int x, vae_activation act, int *out);
VAE_API vae_status vae_op_relu(vae_graph *g, int x, int *out);
/* slope in [0, 1) (else VAE_ERR_ARGUMENT). */
VAE_API vae_status vae_op_leaky_relu(vae_graph *g, int x, float slope, int *out);
VAE_API vae_status vae_op_tanh(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_sigmoid(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_softplus(vae_graph *g, int x, int *out);
/* Elementwise with a's shape: a batched; b batched with a's row size, or
   an unbatched node of a's row size (the same for every row).  Only the
   row sizes must agree. */
VAE_API vae_status vae_op_add(vae_graph *g, int a, int b, int *out);
VAE_API vae_status vae_op_mul(vae_graph *g, int a, int b, int *out);
/* x * factor on any node; factor must be finite (else VAE_ERR_ARGUMENT). */
VAE_API vae_status vae_op_scale(vae_graph *g, int x, float factor, int *out);
/* Rows of a then rows of b, side by side: (B, Na) and (B, Nb) -> (B, Na+Nb),
   both batched (rows of any shape, taken flat); VAE_ERR_SHAPE past 2^30. */
VAE_API vae_status vae_op_concat(vae_graph *g, int a, int b, int *out);
/* z = mu + exp(0.5 * logvar) * eps, eps ~ N(0, I) drawn on every forward;
   mu and logvar batched with the same row size.  Adds two nodes: the noise
   eps, then z (*out); if memory runs out between the two, the noise node
   stays. */
VAE_API vae_status vae_op_sample_normal(vae_graph *g, int mu, int logvar, int *out);
/* Per row: sum over features of BCE(sigmoid(logits), target) -> (B, 1);
   both batched with the same row size. */
VAE_API vae_status vae_op_bce_logits(vae_graph *g, int logits, int target, int *out);
/* Per row: sum of log N(x; mean, exp(logvar)), constant included -> (B, 1).
   x batched; mean (required: -1 is VAE_ERR_ARGUMENT) and logvar batched
   or unbatched of x's row size; logvar -1 for the constant log-variance
   logvar_const, which must lie in (-80, 80) in any case. */
VAE_API vae_status vae_op_gaussian_loglik(vae_graph *g, int x, int mean, int logvar,
                                          float logvar_const, int *out);
/* Per row: KL(N(mu, exp(logvar)) || N(0, I)) -> (B, 1); both batched with
   the same row size. */
VAE_API vae_status vae_op_kl_std_normal(vae_graph *g, int mu, int logvar, int *out);
/* Per row: log N(z; mu, exp(logvar)), z batched, mu and logvar batched or
   unbatched of z's row size, each -1 for 0 (both: the standard normal). */
VAE_API vae_status vae_op_normal_logpdf(vae_graph *g, int z, int mu, int logvar, int *out);
/* Per row sum / mean over the features of batched x -> (B, 1). */
VAE_API vae_status vae_op_sum(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_mean(vae_graph *g, int x, int *out);
/* Mean over the batch of the row sums of batched x -> an unbatched scalar. */
VAE_API vae_status vae_op_batch_mean(vae_graph *g, int x, int *out);

/* Matrix product with a MADE mask (Germain et al. 2015), the building block
   of autoregressive layers: x (B, K) times w (K, N) -> (B, N), where w must
   be a parameter.  Of L autoregressive units (L = K for
   VAE_MADE_INPUT_TO_HIDDEN, L = N for VAE_MADE_HIDDEN_TO_OUTPUT), unit i has
   degree i + 1, or L - i if `reversed` is 1; hidden unit k has degree
   (k mod (L - 1)) + 1 (0 if L = 1).  Input-to-hidden weights are kept where
   degree(hidden) >= degree(input), hidden-to-output weights where
   degree(output) > degree(hidden), so output j depends only on inputs of
   lower degree.  The other weights are held at exactly zero: set to zero
   now, when parameters are set or loaded, and never updated.  w must be a
   2-D parameter (vae_graph_param) not used by any node yet, mask and
   reversed known values (else VAE_ERR_ARGUMENT); then as vae_op_matmul. */
VAE_API vae_status vae_op_made_matmul(vae_graph *g, int x, int w, vae_made_mask mask,
                                      int reversed, int *out);

/* ---- Layers ----
   Built from the operations above; a layer (and an ELBO builder) adds all
   its nodes or, on failure, none.  Parameters are named "<name>.<suffix>"
   as each layer lists them (just "<suffix>" if name is NULL or ""), and
   are initialised uniform in +-1/sqrt(fan_in) as PyTorch does.  Names are
   unique in a graph: give each layer its own name.  The layers return
   VAE_OK; VAE_ERR_ARGUMENT for a NULL g or output, a node that does not
   exist, a size (units, filters, kernel, ...) out of range, an unknown
   enum value or a parameter name already taken; VAE_ERR_SHAPE for inputs
   of the wrong shape; VAE_ERR_STATE if a model owns g; VAE_ERR_NO_MEMORY.
   Sizes of units, hidden, latent, context and features go up to 2^24. */
/* Dense: act(x w + b) on batched x (rows of any shape, of K elements),
   units >= 1.  Parameters "<name>.w" (K, units) and "<name>.b" (units). */
VAE_API vae_status vae_layer_dense(vae_graph *g, int x, int units, vae_activation act,
                                   const char *name, int *out);
/* Conv2D: x (B, C, H, W) -> act(conv2d(x, w) + b), filters (1 to 65536)
   output channels, kernel and stride 1 to 64 (see vae_op_conv2d);
   parameters "<name>.w" (filters, C*k*k) and "<name>.b" (filters),
   initialised uniform in +-1/sqrt(C*k*k). */
VAE_API vae_status vae_layer_conv2d(vae_graph *g, int x, int filters, int kernel, int stride,
                                    vae_padding padding, vae_activation act, const char *name,
                                    int *out);
/* Conv2DTranspose: x (B, C, H, W) -> act(conv2d_transpose(x, w) + b);
   parameters "<name>.w" (C, filters*k*k) and "<name>.b" (filters),
   initialised uniform in +-1/sqrt(filters*k*k) as PyTorch does.  Limits
   as for vae_layer_conv2d. */
VAE_API vae_status vae_layer_conv2d_transpose(vae_graph *g, int x, int filters, int kernel,
                                              int stride, vae_padding padding, vae_activation act,
                                              const char *name, int *out);
/* Optional hidden Dense(hidden, act) (hidden 0: none), then linear heads
   mean and log-variance (latent units each) and, if context > 0, a linear
   context head h.  h may be NULL when context is 0.  Parameters
   "<name>.hidden.w" and "<name>.hidden.b" (if hidden > 0),
   "<name>.mean.w", "<name>.mean.b", "<name>.logvar.w", "<name>.logvar.b",
   and "<name>.context.w", "<name>.context.b" (if context > 0).  On failure
   *mu and *logvar may have been written (with ids of nodes taken back);
   *h is not. */
VAE_API vae_status vae_layer_gaussian_mlp(vae_graph *g, int x, int hidden, vae_activation act,
                                          int latent, int context, const char *name,
                                          int *mu, int *logvar, int *h);
/* Optional hidden Dense(hidden, act) (hidden 0: none), then a linear
   Dense(features) giving the logits.  Parameters "<name>.hidden.w",
   "<name>.hidden.b" (if hidden > 0), "<name>.logits.w", "<name>.logits.b". */
VAE_API vae_status vae_layer_bernoulli_mlp(vae_graph *g, int z, int hidden, vae_activation act,
                                           int features, const char *name, int *logits);
/* One step of an inverse autoregressive flow (Kingma et al. 2016), MADE
   style, on z (B, L) with an optional context h (B, C) (-1: none):
     t = tanh(made(z) + h Wh + b)            hidden units (masked input)
     m = made(t) + bm,  s = made(t) + bs      L each (masked output)
     g = sigmoid(s + 1.5)                     so a new step starts near z' = z
     z' = g z + (1 - g) m,   log_det = sum log g  (per row, (B, 1))
   Unit i of z' depends on z only through units of lower degree (natural
   order, or reversed if `reversed` is 1: alternate it between steps), so
   dz'/dz is triangular with diagonal g and log_det is exact.  Parameters
   "<name>.z.w", "<name>.h.w" (if h), "<name>.b", "<name>.m.w", "<name>.m.b",
   "<name>.s.w", "<name>.s.b".  z and h batched, hidden >= 1, reversed 0 or
   1.  If memory runs out at the last node, *z_out may have been written. */
VAE_API vae_status vae_layer_iaf_step(vae_graph *g, int z, int h, int hidden, int reversed,
                                      const char *name, int *z_out, int *log_det);
/* Adds the reconstruction term, the analytic KL, -ELBO per row (NELBO role),
   the decoded mean (DECODED role), the log importance weight (LOG_WEIGHT
   role) and the objective (OBJECTIVE role, written to *objective_node), and
   sets the roles of x, mu, logvar, z and logits.  beta weights the KL in
   the objective only.  x and logits are batched with the same row size,
   mu, logvar and z with the same row size (else VAE_ERR_SHAPE); beta lies
   in [0, 1e6] and likelihood and objective are known values (else
   VAE_ERR_ARGUMENT).  VAE_LIKELIHOOD_GAUSSIAN_LEARNED adds the parameter
   "likelihood.logvar", so a graph holds one such ELBO.  On failure no node
   is added and no role changes. */
VAE_API vae_status vae_elbo_build(vae_graph *g, int x, int mu, int logvar, int z, int logits,
                                  vae_likelihood likelihood, vae_objective objective,
                                  float beta, int *objective_node);
/* The same for a posterior with a flow: z0 = vae_op_sample_normal(mu,
   logvar) is the base sample, z the flow's output that the decoder reads
   (the LATENT role: decoding and prior samples feed it), log_det the sum of
   the flow steps' log-determinants per row (-1: none).  -ELBO per row is the
   single-sample estimate  -log p(x|z) + log q(z|x) - log p(z)  with
   log q(z|x) = log N(z0; mu, exp(logvar)) - log_det; beta weights
   log q - log p in the objective.  z0 is batched like mu, and log_det a
   batched node of one value per row (else VAE_ERR_SHAPE); otherwise as
   vae_elbo_build. */
VAE_API vae_status vae_elbo_build_flow(vae_graph *g, int x, int mu, int logvar, int z0, int z,
                                       int log_det, int logits, vae_likelihood likelihood,
                                       vae_objective objective, float beta,
                                       int *objective_node);

/* ---- Models ----
   Calls that run the model take tensors of n rows (see Shapes) and may
   return a planning error (see Errors). */
/* Checks the graph and takes ownership of it, on success only (see
   Ownership).  Every role but VAE_ROLE_LOG_WEIGHT must be set, on a node
   of the shape vae_elbo_build gives it: the input a vae_graph_input node,
   logits and the decoded mean rows of the input's size, logvar and z rows
   of the mean's size, -ELBO and the log weight one value per row, the
   objective an unbatched scalar.  The model starts with a maximum batch of
   256, one thread and a memory limit of 2 GiB, and plans no memory yet.
   Returns VAE_OK; VAE_ERR_ARGUMENT if out or g is NULL; VAE_ERR_STATE if g
   already belongs to a model (a graph makes one model), a role is missing,
   the input role is not an input node, or an output does not depend on the
   node it is computed from (the input, or z for decoding) or needs another
   input node; VAE_ERR_SHAPE if a role's node has the wrong shape;
   VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_model_create(vae_model **out, vae_graph *g);
/* A model for inference from another thread: it reads m's graph and
   weights (no copy) and plans its own memory (maximum batch and memory
   limit as m's, one thread).  Clones of one model encode, decode,
   reconstruct, sample and evaluate concurrently, each from its own thread,
   with the same results as m; they refuse training and every call that
   changes the weights, beta or frozen set (VAE_ERR_STATE).  Free every
   clone before m, and do not train m while clones run.  Returns VAE_OK;
   VAE_ERR_ARGUMENT if a pointer is NULL; VAE_ERR_NO_MEMORY.  (Since 0.3.) */
VAE_API vae_status vae_model_clone(vae_model **out, const vae_model *m);
/* Frees the model, its graph and any saved optimizer not yet restored. */
VAE_API void vae_model_free(vae_model *m);
/* Largest number of rows one pass runs at once (default 256).
   vae_model_encode, _decode, _reconstruct, _sample_prior, _evaluate and
   _log_likelihood take any number of rows and split them into passes of
   this size.  vae_model_train_step and vae_model_train_epoch do not split:
   a step is one batch, and a larger one is refused (train_step:
   VAE_ERR_SHAPE for an x of more rows; train_epoch: VAE_ERR_ARGUMENT for a
   larger `batch`).  A change frees the planned memory; the next call
   plans again.  Returns VAE_OK; VAE_ERR_ARGUMENT for a NULL model or a
   size outside 1..2^20. */
VAE_API vae_status vae_model_set_max_batch(vae_model *m, int max_batch);
/* The most memory the model may plan for values, gradients and scratch
   (vae_model_planned_bytes), default 2 GiB (loaded models too).  A call
   whose plan would need more fails with VAE_ERR_NO_MEMORY before
   allocating anything, so a model file cannot make the library allocate
   without bound.  The limit applies from the next planning on; memory
   already planned stays.  Returns VAE_OK; VAE_ERR_ARGUMENT for a NULL
   model or a limit below 1.  (Since 0.3.) */
VAE_API vae_status vae_model_set_memory_limit(vae_model *m, int64_t bytes);
/* The limit in force, or 0 if m is NULL.  (Since 0.3.) */
VAE_API int64_t vae_model_memory_limit(const vae_model *m);
/* Worker threads used by every call that runs the model (default 1).  A
   change frees the planned memory; the threads start at the next planning
   (VAE_ERR_THREAD then if they cannot).  Returns VAE_OK; VAE_ERR_ARGUMENT
   for a NULL model or a count outside 1..64. */
VAE_API vae_status vae_model_set_threads(vae_model *m, int threads);
/* The graph, borrowed until the model is freed, or NULL if m is NULL: for
   looking up nodes, not for adding any (it is read-only). */
VAE_API const vae_graph *vae_model_graph(const vae_model *m);
/* Elements of an input row (and of a decoded one), of a latent row, and
   the number of parameters; 0 if m is NULL. */
VAE_API int64_t vae_model_input_size(const vae_model *m);
VAE_API int vae_model_latent_size(const vae_model *m);
VAE_API int64_t vae_model_param_count(const vae_model *m);
/* Completed epochs and batches done in the current one; 0 if m is NULL. */
VAE_API int vae_model_epoch(const vae_model *m);
VAE_API int vae_model_epoch_position(const vae_model *m);
/* The batch size of the epoch under way, which continuing it must use; 0
   between epochs, for a NULL model, or when unknown (an epoch stopped in a
   format 1 file, which any size may continue).  (Since 0.3.) */
VAE_API int vae_model_epoch_batch(const vae_model *m);
/* All parameters as one flat array, in creation order; count must be
   vae_model_param_count(m).  Returns VAE_OK; VAE_ERR_ARGUMENT for a NULL
   pointer or another count. */
VAE_API vae_status vae_model_params_get(const vae_model *m, float *dst, int64_t count);
/* Sets them all (weights a MADE mask holds at zero stay zero; optimizer
   moments are kept).  Returns as vae_model_params_get, and
   VAE_ERR_NOT_FINITE, changing nothing, if a value is NaN or infinite. */
VAE_API vae_status vae_model_params_set(vae_model *m, const float *src, int64_t count);
/* Bytes of memory the model's plans hold now (values, gradients, scratch);
   0 before the first planning or if m is NULL. */
VAE_API int64_t vae_model_planned_bytes(const vae_model *m);

/* x (n, input) -> mu, logvar (n, latent) of q(z|x).  Either output may be
   NULL.  Returns VAE_OK; VAE_ERR_ARGUMENT if m or x is NULL; VAE_ERR_SHAPE
   if x does not hold rows of the input size or an output does not hold n
   rows of the latent size; a planning error. */
VAE_API vae_status vae_model_encode(vae_model *m, const vae_tensor *x, vae_tensor *mu,
                                    vae_tensor *logvar);
/* z (n, latent) -> decoded mean (n, input...).  Returns VAE_OK;
   VAE_ERR_ARGUMENT if a pointer is NULL; VAE_ERR_SHAPE if z does not hold
   rows of the latent size or out n rows of the input size; a planning
   error. */
VAE_API vae_status vae_model_decode(vae_model *m, const vae_tensor *z, vae_tensor *out);
/* x (n rows) -> the latent point the decoder reads at the posterior's
   centre: mu(x), or with a flow flow(mu(x)) (every noise input zero), into
   z (n rows of the latent size).  Scatter plots of a flow model want this
   rather than mu.  Returns as vae_model_encode; z is written on VAE_OK
   only.  (Since 0.3.) */
VAE_API vae_status vae_model_encode_latent(vae_model *m, const vae_tensor *x, vae_tensor *z);
/* As vae_model_decode, then a draw x ~ p(x|z) for every row instead of
   the mean: 0 or 1 with probability the mean (Bernoulli), or the mean
   plus Gaussian noise of the model's variance (unit, or the learned
   "likelihood.logvar"), from `seed`.  Returns as vae_model_decode, and
   VAE_ERR_UNSUPPORTED for another likelihood; out is written on VAE_OK
   only.  (Since 0.3.) */
VAE_API vae_status vae_model_decode_sample(vae_model *m, const vae_tensor *z, uint64_t seed,
                                           vae_tensor *out);
/* x -> the decoded mean at the posterior's central point: decode(mu(x)),
   or, with a flow, decode(flow(mu(x))) (every noise input set to zero).
   x and out are n rows of the input size.  Returns as vae_model_decode. */
VAE_API vae_status vae_model_reconstruct(vae_model *m, const vae_tensor *x, vae_tensor *out);
/* Decodes z ~ N(0, I) drawn from seed (not the model's) into out, whose
   first dimension is the number of samples (rows of the input size).
   Returns VAE_OK; VAE_ERR_ARGUMENT if m or out is NULL; VAE_ERR_SHAPE if
   out does not hold rows of the input size; VAE_ERR_NO_MEMORY or a
   planning error. */
VAE_API vae_status vae_model_sample_prior(vae_model *m, uint64_t seed, vae_tensor *out);
/* One optimizer step on the batch x (1 to max_batch rows: never split).
   Outputs the objective and the mean -ELBO of the batch; either may be
   NULL.  Returns VAE_OK; VAE_ERR_ARGUMENT if m, opt or x is NULL, opt
   belongs to another model, or the model's Bernoulli likelihood meets a
   value outside [0, 1]; VAE_ERR_SHAPE if x does not hold rows of the input
   size or has more rows than the maximum batch; VAE_ERR_STATE if the
   objective depends on no parameter; VAE_ERR_NOT_FINITE if the loss or the
   gradient is not finite or the update would make a weight or an optimizer
   moment non-finite, leaving the weights, the optimizer and its step count
   as they were before the step; a planning error; with a communicator
   (since 0.4), VAE_ERR_COMM (see "Training across processes"). */
VAE_API vae_status vae_model_train_step(vae_model *m, vae_optimizer *opt, const vae_tensor *x,
                                        double *objective, double *nelbo);
/* One pass over the data set in batches of `batch` (1 to max_batch),
   shuffled from the seed and the epoch number; the last batch may be
   partial.  An epoch that stopped or failed continues from its position,
   with the same batch size and data set.  A completed epoch records
   "train_objective" and "train_nelbo" in the history, advances
   vae_model_epoch and outputs the mean objective and -ELBO per image over
   the epoch (either output may be NULL; both are written on VAE_OK only).
   progress may be NULL (see vae_progress_fn).  Returns VAE_OK;
   VAE_ERR_ARGUMENT if m, opt or data is NULL, opt belongs to another
   model, batch is out of range, or the Bernoulli likelihood meets a value
   outside [0, 1]; VAE_ERR_SHAPE if the data's rows are not of the input
   size; VAE_ERR_STATE if the objective depends on no parameter, the epoch
   under way used another batch size, its position is past this data set's
   end, or 10^6 epochs are done; VAE_ERR_NOT_FINITE as vae_model_train_step
   (the batches before it stay done); VAE_ERR_STOPPED; VAE_ERR_NO_MEMORY or
   a planning error; with a communicator (since 0.4), VAE_ERR_COMM.  After
   VAE_ERR_NOT_FINITE or VAE_ERR_STOPPED the model keeps its place in the
   epoch. */
VAE_API vae_status vae_model_train_epoch(vae_model *m, vae_optimizer *opt,
                                         const vae_dataset *data, int batch,
                                         vae_progress_fn progress, void *user,
                                         double *objective, double *nelbo);
/* Mean -ELBO per image over the data set (one z per image; the analytic KL,
   or with a flow its single-sample estimate), with noise drawn from a
   stream fixed by the model's seed and maximum batch (the same on any
   number of threads).  Returns VAE_OK; VAE_ERR_ARGUMENT if m, data or nelbo
   is NULL or the Bernoulli likelihood meets a value outside [0, 1];
   VAE_ERR_SHAPE if the data's rows are not of the input size;
   VAE_ERR_NOT_FINITE if the mean is not finite; a planning error; with a
   communicator (since 0.4), VAE_ERR_COMM. */
VAE_API vae_status vae_model_evaluate(vae_model *m, const vae_dataset *data, double *nelbo);

/* As vae_model_evaluate, with the terms apart: the mean reconstruction
   term -log p(x|z) and the mean KL term (with a flow, its single-sample
   estimate log q(z|x) - log p(z)), which add up to -ELBO, and -ELBO of
   each image into per_image (count floats).  Every output may be NULL and
   is written on VAE_OK only.  Returns as vae_model_evaluate, and
   VAE_ERR_UNSUPPORTED if recon or kl is asked of a graph that does not
   mark the terms (VAE_ROLE_RECON, VAE_ROLE_KL: graphs built before 0.3).
   (Since 0.3.) */
VAE_API vae_status vae_model_evaluate_terms(vae_model *m, const vae_dataset *data, double *nelbo,
                                            double *recon, double *kl, float *per_image);

/* Importance-weighted estimate of log p(x) (the IWAE bound of Burda et al.
   2016) with `samples` draws z ~ q(z|x) per image, averaged in a stable
   log-sum-exp:  log p(x) ~ log (1/k) sum_i p(x, z_i) / q(z_i|x).  It is a
   lower bound that tightens as samples grow (k = 1 is the ELBO).  Outputs the
   mean over the data set in nats per image and, if per_image is not NULL,
   each image's estimate (vae_dataset_count(data) entries); both are written
   on VAE_OK only.  Bits per dimension, as usually reported, are
   -log p(x) / (row size * ln 2); with a Bernoulli or
   Gaussian decoder on pixels in [0, 1] this is a density of continuous
   values, comparable between models with the same likelihood but not with
   figures from discretised (256-level) likelihoods.  Rows are processed
   max_batch at a time in the memory planned for the model, the part of the
   graph no noise reaches (the encoder) once per image; draws come from
   `seed` and each batch's first row, so the same seed and maximum batch
   give the same estimate on any number of threads.  progress, if not
   NULL, is called after each batch with the images finished, the image
   count and the running mean of -log p(x); a non-zero return stops with
   VAE_ERR_STOPPED.  Needs the LOG_WEIGHT role (vae_elbo_build and
   vae_elbo_build_flow set it).  Returns VAE_OK; VAE_ERR_ARGUMENT if m,
   data or mean_log_px is NULL, samples is outside 1..2^24, data has more
   than 2^31 - 1 images, or the Bernoulli likelihood meets a value outside
   [0, 1]; VAE_ERR_SHAPE if the data's rows are not of the input size;
   VAE_ERR_UNSUPPORTED without the LOG_WEIGHT role; VAE_ERR_NOT_FINITE if a
   log weight is NaN or +inf or the mean is not finite (as when all of an
   image's weights underflow); VAE_ERR_STOPPED; VAE_ERR_NO_MEMORY or a
   planning error; with a communicator (since 0.4), VAE_ERR_COMM, and each
   rank's progress reports its own share of the images. */
VAE_API vae_status vae_model_log_likelihood(vae_model *m, const vae_dataset *data, int samples,
                                            uint64_t seed, vae_progress_fn progress, void *user,
                                            double *mean_log_px, double *per_image);

/* Writes the model (graph, parameters, history, metadata) and, if opt is
   not NULL, the training state (epoch, position in it, the optimizer with
   its moments) to path, in format 2, through a temporary file
   "<path>.tmp.<pid>.<n>" beside it and a rename, so the previous file
   survives a crash.  Without opt the loaded model starts at epoch 0.  The
   maximum batch, thread count and memory limit are not saved.  Returns
   VAE_OK; VAE_ERR_ARGUMENT if m or path is NULL or opt belongs to another
   model; VAE_ERR_IO if the temporary file cannot be created, written or
   renamed (it is removed and path left as it was); VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_model_save(const vae_model *m, const vae_optimizer *opt,
                                  const char *path);
/* Reads a model file of format 1 (libvae 0.1, 0.2) or 2 (0.3).  The graph
   is rebuilt through the builders, so a file cannot make a graph they
   would refuse; the parameters, history, metadata and, if saved, the
   training state come with it (vae_model_has_training_state,
   vae_optimizer_restore).  Other settings are vae_model_create's defaults.
   Returns VAE_OK; VAE_ERR_ARGUMENT if out or path is NULL; VAE_ERR_IO if
   the file cannot be opened or read or is not a regular file;
   VAE_ERR_FORMAT if it is not a model file, has a newer format, is
   truncated or over 64 GiB, or has malformed or doctored contents (the
   message names the file and the problem); VAE_ERR_CHECKSUM if its
   checksum does not match its contents; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_model_load(vae_model **out, const char *path);
/* As vae_model_load, from the bytes of a model file held in memory (a
   model embedded in a program, or received over a network); data is only
   read, and may be freed on return.  Messages name the file
   "(model in memory)".  Returns as vae_model_load, without VAE_ERR_IO;
   VAE_ERR_ARGUMENT if out is NULL, or data is NULL with len above 0.
   (Since 0.4.) */
VAE_API vae_status vae_model_load_from_memory(vae_model **out, const void *data, size_t len);
/* Non-zero if the model came from a file with a training-state section
   whose optimizer has not been taken by vae_optimizer_restore yet; 0 if m
   is NULL. */
VAE_API int vae_model_has_training_state(const vae_model *m);

/* ---- Training across processes (since 0.4) ----
 * A communicator lets N processes ("ranks", on one machine or several)
 * train one model data-parallel, as one process would: the host plugs in
 * its collective operations (MPI through libvae_mpi, see vae_mpi.h and
 * docs/DISTRIBUTED.md, or any other engine) as callbacks, and sets the
 * communicator on a model with vae_model_set_comm.
 *
 * With a communicator of more than one rank set, these calls are
 * collective: vae_model_train_step, vae_model_train_epoch,
 * vae_model_evaluate, vae_model_evaluate_terms, vae_model_log_likelihood
 * and vae_model_comm_check.  Every rank must make the same collective
 * calls, in the same order, with the same arguments (the same batch, data
 * set contents, samples and seed).  Each rank computes its share of every
 * batch (rows [rows * rank / size, rows * (rank + 1) / size) of it, then
 * split between its threads) with the noise one process would draw for
 * those rows, and the ranks sum gradients and results, so N ranks train
 * the same model as one process up to the order of floating-point sums.
 * A call that fails on one rank fails on every rank at the same point:
 * there with its own status, elsewhere with VAE_ERR_COMM ("rank 1 of 4
 * failed"); none is left waiting.  Ranks whose batches or data sets differ
 * in size fail together with VAE_ERR_COMM before any update, and
 * vae_model_train_epoch fails with VAE_ERR_COMM when it starts or ends
 * with weights, training position or optimizer state that differ from
 * rank 0's.  Every other call (encode, decode,
 * save, ...) is local to the rank that makes it.
 *
 * The callbacks are called from the thread that makes the collective
 * call, never from worker threads, and return 0 on success and non-zero
 * on failure (the library then fails with VAE_ERR_COMM).  A failed
 * operation must fail on every rank, as an MPI collective does when a rank
 * is lost: the library agrees on statuses around its collectives, not
 * after each of them, so an operation that failed on one rank alone would
 * leave the others waiting at their next one. */
typedef struct vae_comm vae_comm;

/* Element types of vae_comm_sum_fn. */
typedef enum vae_comm_type {
    VAE_COMM_FLOAT32 = 0, /* float */
    VAE_COMM_FLOAT64 = 1  /* double */
} vae_comm_type;

/* Replaces data[0 .. count) on every rank by its sum over all ranks.
   Every rank must receive the same bits (MPI_Allreduce does). */
typedef int (*vae_comm_sum_fn)(void *user, void *data, int64_t count, vae_comm_type type);
/* Copies `bytes` bytes of data on rank `root` into data on every rank. */
typedef int (*vae_comm_broadcast_fn)(void *user, void *data, int64_t bytes, int root);

/* Optional, the two halves of a sum; with both, vae_model_train_epoch
   sums the gradient as a reduce-scatter, each rank updates only its part
   of the weights (and of the optimizer's moments) and the parts are
   gathered, the same bytes as one sum and 1/size of the optimizer's work
   per rank.  Rank r's part of `count` values is [count * r / size,
   count * (r + 1) / size).
   reduce_scatter: sums data[0 .. count) over all ranks into (at least)
   this rank's part of data; the rest of data may be left changed.
   allgather: copies every rank's part of data into every rank's data. */
typedef int (*vae_comm_reduce_scatter_fn)(void *user, float *data, int64_t count);
typedef int (*vae_comm_allgather_fn)(void *user, float *data, int64_t count);

/* A communicator for rank `rank` of `size` ranks (0 <= rank < size),
   without operations yet.  Returns VAE_OK; VAE_ERR_ARGUMENT if out is
   NULL or rank and size do not fit; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_comm_create(vae_comm **out, int rank, int size);
/* Frees the communicator (not the host's engine behind it); the models
   using it must be freed or detached (vae_model_set_comm(m, NULL)) first. */
VAE_API void vae_comm_free(vae_comm *c);
/* Set the operations, each with the pointer passed back to it as `user`.
   Both are needed before a communicator of more than one rank is used.
   Return VAE_OK; VAE_ERR_ARGUMENT if c or fn is NULL. */
VAE_API vae_status vae_comm_set_sum(vae_comm *c, vae_comm_sum_fn fn, void *user);
VAE_API vae_status vae_comm_set_broadcast(vae_comm *c, vae_comm_broadcast_fn fn, void *user);
/* Set the optional halves of the sum (see vae_comm_reduce_scatter_fn).
   Return VAE_OK; VAE_ERR_ARGUMENT if c or fn is NULL. */
VAE_API vae_status vae_comm_set_reduce_scatter(vae_comm *c, vae_comm_reduce_scatter_fn fn,
                                               void *user);
VAE_API vae_status vae_comm_set_allgather(vae_comm *c, vae_comm_allgather_fn fn, void *user);
/* The rank and the number of ranks; 0 and 1 for NULL. */
VAE_API int vae_comm_rank(const vae_comm *c);
VAE_API int vae_comm_size(const vae_comm *c);
/* Agreement, for a host's own steps that may fail on one rank (reading a
   file, saving on rank 0): every rank passes its status and gets VAE_OK if
   every rank passed VAE_OK, its own status if it failed (the message
   kept), and VAE_ERR_COMM otherwise, naming the rank that failed.
   Collective.  Returns also VAE_ERR_ARGUMENT for a NULL c and VAE_ERR_COMM
   if the sum callback fails or is not set. */
VAE_API vae_status vae_comm_agree(vae_comm *c, vae_status local);
/* Copies `bytes` bytes from rank root's data to every rank's, through the
   broadcast callback.  Collective.  Returns VAE_OK; VAE_ERR_ARGUMENT for a
   NULL c or data, a negative size or a root out of range; VAE_ERR_COMM if
   the callback fails or is not set. */
VAE_API vae_status vae_comm_broadcast(vae_comm *c, void *data, int64_t bytes, int root);

/* Makes the model's training and evaluation collective over c (see
   above); NULL makes them local again.  c is borrowed: it must outlive its
   use by the model.  Not collective itself.  Returns VAE_OK;
   VAE_ERR_ARGUMENT if m is NULL or c lacks an operation; VAE_ERR_STATE
   for a clone. */
VAE_API vae_status vae_model_set_comm(vae_model *m, vae_comm *c);
/* The communicator set on m, or NULL. */
VAE_API vae_comm *vae_model_comm(const vae_model *m);
/* A 64-bit checksum of the model's weights (their bytes, in order):
   equal on two ranks when their weights are identical bit for bit.
   Returns 0 for a NULL model. */
VAE_API uint64_t vae_model_checksum(const vae_model *m);
/* Checks that every rank holds the same weights, training position and,
   if opt is not NULL, optimizer state, bit for bit.  Collective; with no
   communicator it only returns VAE_OK.  vae_model_train_epoch makes this
   check when it starts and after it ends.  Returns VAE_OK; VAE_ERR_ARGUMENT
   if m is NULL or opt belongs to another model; VAE_ERR_COMM if the ranks
   differ (the message says in what) or a callback fails. */
VAE_API vae_status vae_model_comm_check(vae_model *m, const vae_optimizer *opt);

/* ---- Parameters by name and a summary (since 0.3) ---- */
/* Copies the parameter node called `name` (count = its size) to dst, or
   sets it from src as vae_model_params_set does (finite values only; the
   weights a MADE mask holds at zero stay zero).  Returns VAE_OK;
   VAE_ERR_ARGUMENT if m, name or the buffer is NULL, no node has that
   name or it is not a parameter; VAE_ERR_SHAPE if count is not its size;
   VAE_ERR_NOT_FINITE if a value to set is NaN or infinite (nothing
   changed). */
VAE_API vae_status vae_model_param_get(const vae_model *m, const char *name, float *dst,
                                       int64_t count);
VAE_API vae_status vae_model_param_set(vae_model *m, const char *name, const float *src,
                                       int64_t count);
/* A table in the spirit of Keras's model.summary(): one line per layer
   (the nodes around a parameter group, with an activation or bias that
   follows folded in) or standalone operation, with its kind, output shape
   and parameter count, one line for the loss, then the total, the latent
   size, the likelihood, the input shape and the memory the model would
   plan to evaluate and to train at its maximum batch and thread count.
   Buffer rules and statuses as vae_graph_dot (VAE_ERR_ARGUMENT if m is
   NULL). */
VAE_API vae_status vae_model_summary(const vae_model *m, char *buf, size_t size, size_t *needed);
/* For a model from vae_model_load: the file's format (1 for files of
   libvae 0.1 and 0.2, 2 since 0.3) and the libvae version that wrote it
   ("0.3.0"; "" if the file does not say, as before 0.3).  0 and NULL for
   a model that was built, not loaded. */
VAE_API int vae_model_file_format(const vae_model *m);
VAE_API const char *vae_model_file_writer(const vae_model *m);

/* Freezes (frozen 1) or unfreezes (0) every parameter called `prefix` or
   under it ("encoder" covers "encoder.0.w" and "encoder.mean.b", not
   "encoder2.w"; a prefix ending in '.' covers every name it begins).
   Training then leaves a frozen parameter and its optimizer moments
   untouched; the backward pass computes no gradient for it (skipping its
   weight-gradient products), so it is out of the clipping norm too.  Kept in model files (section FRZN).  *count (if not
   NULL) gets the number of parameters matched.  Returns VAE_OK;
   VAE_ERR_ARGUMENT if m is NULL, prefix NULL or empty, or no parameter
   matches; VAE_ERR_NO_MEMORY.  (Since 0.3.) */
VAE_API vae_status vae_model_freeze(vae_model *m, const char *prefix, int frozen, int *count);
/* 1 if the parameter called name is frozen, 0 if not, -1 if there is no
   such parameter.  (Since 0.3.) */
VAE_API int vae_model_param_frozen(const vae_model *m, const char *name);

/* The KL weight beta of the objective, changed between steps for KL
   warm-up or a beta schedule; saved with the graph, so a resumed run goes
   on with the last value set.  Returns VAE_OK; VAE_ERR_ARGUMENT if m is
   NULL or beta is not in [0, 1e6]; VAE_ERR_UNSUPPORTED if the graph has
   no VAE_ROLE_WEIGHTED_KL node (graphs built before 0.3).  (Since 0.3.) */
VAE_API vae_status vae_model_set_beta(vae_model *m, double beta);
/* The KL weight in force, or NaN without a VAE_ROLE_WEIGHTED_KL node.
   (Since 0.3.) */
VAE_API double vae_model_beta(const vae_model *m);

/* ---- History and metadata (since 0.3), saved in model files ----
   The history is a table of numbers: one row per epoch (1, 2, ...), one
   column per name.  vae_model_train_epoch records "train_objective" and
   "train_nelbo" (the epoch's means) for every epoch it completes (adding
   the two columns when an epoch starts); hosts add their own columns
   (test loss, seconds, ...).  A value never recorded reads as NaN.
   Column names and metadata keys are 1 to 255 printable ASCII characters
   without spaces; at most 64 columns, 10^6 epochs and 256 keys; a metadata
   value is a string of at most 64 KiB. */
/* Records value for epoch (1..10^6) in column, adding the column if it is
   new.  Does not change vae_model_epoch.  Returns VAE_OK; VAE_ERR_ARGUMENT
   for a NULL model, a bad column name, an epoch out of range or a 65th
   column; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_model_history_set(vae_model *m, int epoch, const char *column,
                                         double value);
/* Forgets every column and epoch (a fine-tuning run starts its own).
   Returns VAE_OK; VAE_ERR_ARGUMENT if m is NULL; VAE_ERR_STATE for a
   clone. */
VAE_API vae_status vae_model_history_clear(vae_model *m);
/* The value recorded, or NaN (also for a NULL argument, an unknown column
   or an epoch outside 1..vae_model_history_epochs). */
VAE_API double vae_model_history_get(const vae_model *m, int epoch, const char *column);
/* The highest epoch with a row, and the number of columns; 0 if m is NULL. */
VAE_API int vae_model_history_epochs(const vae_model *m);
VAE_API int vae_model_history_columns(const vae_model *m);
/* The name of column i (0-based, in the order they were added), borrowed
   until the model is freed; NULL if m is NULL or i is out of range. */
VAE_API const char *vae_model_history_column(const vae_model *m, int i);
/* Sets (copying value) or with value NULL removes (nothing to do if unset)
   a string kept with the model, e.g. the settings a program built it
   with.  Returns VAE_OK; VAE_ERR_ARGUMENT for a NULL model, a bad key, a
   value over 64 KiB or a 257th key; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_model_set_metadata(vae_model *m, const char *key, const char *value);
/* The value, borrowed until that key is set or removed again or the model
   is freed; NULL if m or key is NULL or the key is not set. */
VAE_API const char *vae_model_metadata(const vae_model *m, const char *key);

/* ---- Optimizers: bound to one model's parameters (see Ownership). ---- */
/* An optimizer of that kind for m, with default settings, zero moments and
   no steps.  Returns VAE_OK; VAE_ERR_ARGUMENT if out or m is NULL or kind
   is unknown; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_optimizer_create(vae_optimizer **out, vae_model *m,
                                        vae_optimizer_kind kind);
/* The optimizer saved with the model, its settings, moments and step
   included; the caller owns it from then on.  Returns VAE_OK;
   VAE_ERR_ARGUMENT if out or m is NULL; VAE_ERR_STATE if the model was not
   loaded with a training state or it was restored already. */
VAE_API vae_status vae_optimizer_restore(vae_optimizer **out, vae_model *m);
VAE_API void vae_optimizer_free(vae_optimizer *opt);
/* Sets one option of the optimizer's kind (see vae_optimizer_option).
   Returns VAE_OK; VAE_ERR_ARGUMENT if opt is NULL, the option is unknown or
   not one of the kind's, or value is out of range: the learning rate 0 to
   1e30; momentum, beta1, beta2 and rho in [0, 1); epsilon above 0; the
   clip norm 0 or above; every value finite. */
VAE_API vae_status vae_optimizer_set(vae_optimizer *opt, vae_optimizer_option option,
                                     double value);
/* Reads one option into *value.  Returns VAE_OK; VAE_ERR_ARGUMENT if opt or
   value is NULL or the option is unknown or not one of the kind's. */
VAE_API vae_status vae_optimizer_get(const vae_optimizer *opt, vae_optimizer_option option,
                                     double *value);
/* Updates made (restored with the optimizer), or 0 if opt is NULL. */
VAE_API int64_t vae_optimizer_steps(const vae_optimizer *opt);
/* The learning rate the next step will use, from the schedule (above);
   NaN if opt is NULL.  (Since 0.3.) */
VAE_API double vae_optimizer_rate(const vae_optimizer *opt);
/* The optimizer's kind.  Returns VAE_OK; VAE_ERR_ARGUMENT if either
   pointer is NULL.  (Since 0.3.) */
VAE_API vae_status vae_optimizer_get_kind(const vae_optimizer *opt, vae_optimizer_kind *kind);

/* ---- Data sets: rows of pixels kept as bytes (or floats), labels optional. ---- */
/* MNIST-style idx files of unsigned bytes (images of 2 to 4 dimensions,
   the first the count), plain or gzip-compressed; labels_path may be NULL.
   Pixels are scaled by 1/255.  Returns VAE_OK; VAE_ERR_ARGUMENT if out or
   images_path is NULL; VAE_ERR_IO if a file cannot be opened or read;
   VAE_ERR_FORMAT if a file is not such an idx file (a zero dimension, over
   2^34 bytes), is truncated, longer than its header says or corrupt gzip,
   or the label and image counts differ; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_dataset_load_idx(vae_dataset **out, const char *images_path,
                                        const char *labels_path);
/* CIFAR-10's binary version: the files data_batch_1.bin .. data_batch_5.bin
   (train, 50,000 images) or test_batch.bin (test, 10,000) in `dir`.  Each
   record is one label byte (0-9) and 3072 pixel bytes (1024 red, 1024 green,
   1024 blue, rows top to bottom), so rows are (3, 32, 32); value = byte/256,
   in [0, 1).  Returns VAE_OK; VAE_ERR_ARGUMENT if out or dir is NULL or
   dir is empty or too long; VAE_ERR_IO naming a file that is missing,
   unreadable or not a regular file; VAE_ERR_FORMAT for a file whose size
   is not a whole number of records (or over 100,000 of them) or a label
   above 9; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_dataset_load_cifar10(vae_dataset **out, const char *dir, int train);
/* n (>= 1) rows of per-row dims (1 to 3) from host bytes; value = byte *
   scale.  labels may be NULL, else n labels >= 0.  The data are copied.
   Returns VAE_OK; VAE_ERR_ARGUMENT if out, pixels or dims is NULL, scale is
   not finite, n, ndim or a dimension is out of range, the rows hold more
   than 2^40 values, or a label is negative; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_dataset_from_u8(vae_dataset **out, int64_t n, int ndim, const int *dims,
                                       const uint8_t *pixels, const int32_t *labels,
                                       float scale);
/* The same from floats, kept as they are (values NULL: VAE_ERR_ARGUMENT). */
VAE_API vae_status vae_dataset_from_f32(vae_dataset **out, int64_t n, int ndim, const int *dims,
                                        const float *values, const int32_t *labels);
VAE_API void vae_dataset_free(vae_dataset *ds);
/* Number of rows, or 0 if ds is NULL. */
VAE_API int64_t vae_dataset_count(const vae_dataset *ds);
/* Elements of one row, or 0 if ds is NULL. */
VAE_API int64_t vae_dataset_row_size(const vae_dataset *ds);
/* Per-row dims: returns their number and, if dims is not NULL, writes them
   (up to VAE_MAX_ROW_DIMS); 0 if ds is NULL. */
VAE_API int vae_dataset_row_dims(const vae_dataset *ds, int *dims);
/* Non-zero if the rows have labels; 0 if ds is NULL. */
VAE_API int vae_dataset_has_labels(const vae_dataset *ds);
/* The label of row i, or -1 if ds is NULL, there are none or i is out of
   range. */
VAE_API int32_t vae_dataset_label(const vae_dataset *ds, int64_t i);
/* Keeps only the first n rows (1 to the count) and their labels.  Returns
   VAE_OK; VAE_ERR_ARGUMENT for a NULL ds or n out of range. */
VAE_API vae_status vae_dataset_truncate(vae_dataset *ds, int64_t n);
/* Views (since 0.3): data sets that borrow the rows of another without
   copying its pixels.  A view borrows the storage of the data set it was
   made from: free every view before that data set (vae_dataset_free on a
   view frees only the view).  Views of views are allowed.
   vae_dataset_view: rows first .. first+count-1 of ds.
   vae_dataset_split: the rows of ds shuffled from seed, `valid` of them
   (a fraction in (0, 1), rounded, or a whole count >= 1) into *valid and
   the rest into *train; both outputs are written on VAE_OK only.
   Return VAE_OK; VAE_ERR_ARGUMENT for a NULL pointer, rows outside ds, or
   a split that leaves a side empty; VAE_ERR_NO_MEMORY. */
VAE_API vae_status vae_dataset_view(vae_dataset **out, const vae_dataset *ds, int64_t first,
                                    int64_t count);
VAE_API vae_status vae_dataset_split(const vae_dataset *ds, double valid, uint64_t seed,
                                     vae_dataset **train, vae_dataset **valid_out);
/* Rows first .. first+n-1 as floats into out, a tensor of n rows of the
   row size (see Shapes).  Returns VAE_OK; VAE_ERR_ARGUMENT if ds or out is
   NULL or those rows are not all in the set; VAE_ERR_SHAPE if out does not
   hold rows of the row size. */
VAE_API vae_status vae_dataset_get(const vae_dataset *ds, int64_t first, vae_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* VAE_H */
