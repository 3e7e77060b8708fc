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
 *
 * Errors
 * ------
 * Every fallible call returns a vae_status.  VAE_OK is 0; every other value
 * is an error whose description is vae_strerror(status) and whose detailed
 * message (naming the file, argument or shape at fault) is vae_last_error(),
 * kept per thread until the next failing call on that thread.  Results are
 * returned through pointer arguments, which are left untouched on failure.
 * The library never calls exit() or abort(), never prints unless a log
 * callback is installed, and frees everything it allocated on an error path.
 *
 * Ownership
 * ---------
 * Whoever creates a handle frees it with the matching _free function
 * (passing NULL to a _free function is allowed and does nothing).
 * vae_model_create takes ownership of the graph on success only.
 * Strings and pointers returned by the library are borrowed: they stay valid
 * until the handle they came from is freed (or, for vae_last_error, until
 * the next failing call on the same thread).  Host buffers passed in are
 * copied; the library keeps no pointer to them after the call returns.
 *
 * Threads
 * -------
 * A handle is used by one thread at a time; different handles may be used
 * from different threads concurrently.  A model trains and evaluates with
 * its own worker threads (vae_model_set_threads), splitting each batch
 * between them; the BLAS is then set to one thread per call.  Results are
 * reproducible for the same seed and the same thread count.
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
 * Handles are opaque, enums are append-only with fixed values, settings go
 * through setter functions, and exported symbols carry the version node of
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
#define VAE_VERSION_MINOR 2
#define VAE_VERSION_PATCH 0
#define VAE_VERSION_STRING "0.2.0"
/* major * 10000 + minor * 100 + patch */
#define VAE_VERSION_NUMBER 200
/* Largest number of per-row dimensions of a node. */
#define VAE_MAX_ROW_DIMS 3

/* ---- Status codes: values are fixed forever; new ones are appended. ---- */
typedef enum vae_status {
    VAE_OK = 0,
    VAE_ERR_ARGUMENT = 1,    /* a NULL handle, bad size, unknown enum value */
    VAE_ERR_NO_MEMORY = 2,
    VAE_ERR_IO = 3,          /* a file could not be opened, read or written */
    VAE_ERR_FORMAT = 4,      /* a file is truncated, malformed or foreign */
    VAE_ERR_SHAPE = 5,       /* tensor or node shapes do not fit together */
    VAE_ERR_NOT_FINITE = 6,  /* the loss became NaN or infinite */
    VAE_ERR_STATE = 7,       /* a call that does not fit the handle's state */
    VAE_ERR_UNSUPPORTED = 8, /* valid, but not supported by this build */
    VAE_ERR_STOPPED = 9,     /* a callback asked to stop */
    VAE_ERR_CHECKSUM = 10,   /* a file's checksum does not match its data */
    VAE_ERR_THREAD = 11      /* a worker thread could not be started */
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
    VAE_LIKELIHOOD_GAUSSIAN_LEARNED = 2 /* mean = sigmoid(logits), one learned
                                           log-variance per feature */
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
    VAE_ROLE_COUNT_ = 9         /* number of roles in this version */
} vae_role;

typedef enum vae_optimizer_kind {
    VAE_OPTIMIZER_SGD = 0,     /* with momentum (default 0.9) */
    VAE_OPTIMIZER_RMSPROP = 1, /* Keras defaults: rho 0.9, eps 1e-7 */
    VAE_OPTIMIZER_ADAM = 2     /* beta1 0.9, beta2 0.999, eps 1e-8 */
} vae_optimizer_kind;

/* Optimizer settings, for vae_optimizer_set / vae_optimizer_get. */
typedef enum vae_optimizer_option {
    VAE_OPT_LEARNING_RATE = 0, /* default 1e-3 */
    VAE_OPT_MOMENTUM = 1,      /* SGD momentum */
    VAE_OPT_BETA1 = 2,         /* Adam */
    VAE_OPT_BETA2 = 3,         /* Adam */
    VAE_OPT_EPSILON = 4,       /* Adam and RMSprop */
    VAE_OPT_RHO = 5,           /* RMSprop decay of the squared-gradient mean */
    VAE_OPT_CLIP_NORM = 6      /* clip gradients to this global L2 norm; 0 = off */
} vae_optimizer_option;

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

/* Called with each message at or below the level set; `user` is passed back. */
typedef void (*vae_log_fn)(void *user, vae_log_level level, const char *message);
/* Called after every training batch; return non-zero to stop the epoch
   (vae_model_train_epoch then returns VAE_ERR_STOPPED and the model keeps its
   place in the epoch, so a saved model resumes from there). */
typedef int (*vae_progress_fn)(void *user, int batch, int batch_count,
                               float batch_objective);

/* ---- Library ---- */
VAE_API const char *vae_version_string(void);
VAE_API int vae_version_number(void);
VAE_API const char *vae_strerror(vae_status status);
VAE_API const char *vae_last_error(void);
/* Process-wide; not to be changed while other threads use the library. */
VAE_API void vae_set_log_callback(vae_log_fn fn, void *user);
VAE_API void vae_set_log_level(vae_log_level level);
/* Which BLAS and which kernels are in use, e.g. "OpenBLAS 0.3.21 SkylakeX". */
VAE_API const char *vae_blas_info(void);
/* "NAME=VALUE" to put in the environment before the process starts to get
   faster BLAS kernels on this CPU, or NULL when nothing would help. */
VAE_API const char *vae_blas_env_hint(void);

/* ---- Tensors: float32, 1 to 4 dimensions, row-major. ---- */
VAE_API vae_status vae_tensor_create(vae_tensor **out, int ndim, const int64_t *dims);
VAE_API vae_status vae_tensor_from_host(vae_tensor **out, int ndim, const int64_t *dims,
                                        const float *data);
VAE_API void vae_tensor_free(vae_tensor *t);
VAE_API int vae_tensor_ndim(const vae_tensor *t);
/* Size of dimension i, or -1 if t is NULL or i is out of range. */
VAE_API int64_t vae_tensor_dim(const vae_tensor *t, int i);
VAE_API int64_t vae_tensor_count(const vae_tensor *t);
/* Borrowed pointer to the elements, valid until the tensor is freed. */
VAE_API float *vae_tensor_data(vae_tensor *t);
VAE_API vae_status vae_tensor_copy_from_host(vae_tensor *t, const float *src, int64_t count);
VAE_API vae_status vae_tensor_copy_to_host(const vae_tensor *t, float *dst, int64_t count);

/* ---- Graphs ----
   Node ids are small non-negative integers, valid for the graph that made
   them.  Parameters are initialised when created, from the graph's seed. */
VAE_API vae_status vae_graph_create(vae_graph **out, uint64_t seed);
VAE_API void vae_graph_free(vae_graph *g);
/* A batched input with per-row dims. */
VAE_API vae_status vae_graph_input(vae_graph *g, const char *name, int ndim,
                                   const int *dims, int *out);
/* A parameter, uniform in [-scale, scale] (scale 0: zeros). */
VAE_API vae_status vae_graph_param(vae_graph *g, const char *name, int ndim,
                                   const int *dims, float scale, int *out);
VAE_API vae_status vae_graph_set_role(vae_graph *g, vae_role role, int node);
/* The node with that role, or -1 if none. */
VAE_API int vae_graph_role(const vae_graph *g, vae_role role);
/* The first node with that name, or -1 if none. */
VAE_API int vae_graph_find(const vae_graph *g, const char *name);
VAE_API int vae_graph_node_count(const vae_graph *g);
/* Number of elements of one row of a node (the whole node if unbatched). */
VAE_API int64_t vae_graph_node_size(const vae_graph *g, int node);
/* A node's per-row dims (all dims if unbatched): returns their number and
   writes up to VAE_MAX_ROW_DIMS into dims; 0 if the node does not exist. */
VAE_API int vae_graph_node_dims(const vae_graph *g, int node, int *dims);

/* ---- Operations (each adds one node; shapes are checked) ---- */
/* x (B, K) times w (K, N) -> (B, N) */
VAE_API vae_status vae_op_matmul(vae_graph *g, int x, int w, int *out);
/* x (B, N) plus b (N) on every row; or x (B, C, H, W) plus b (C) on every
   channel */
VAE_API vae_status vae_op_bias(vae_graph *g, int x, int b, int *out);
/* Convolution (cross-correlation, as in Keras and PyTorch):
   x (B, C, H, W) with w (F, C*k*k) -> (B, F, OH, OW).  w's rows are filters,
   each laid out (C, k, k).  "same": OH = ceil(H / stride); "valid":
   OH = (H - k) / stride + 1 (and likewise OW).  Kernel and stride are 1 to
   64 (else VAE_ERR_ARGUMENT). */
VAE_API vae_status vae_op_conv2d(vae_graph *g, int x, int w, int kernel, int stride,
                                 vae_padding padding, int *out);
/* Transposed convolution, the gradient of vae_op_conv2d with respect to its
   input: x (B, C, H, W) with w (C, F*k*k) -> (B, F, OH, OW), where "same":
   OH = H * stride (Keras's size: 14 -> 28 at stride 2); "valid":
   OH = (H - 1) * stride + k. */
VAE_API vae_status vae_op_conv2d_transpose(vae_graph *g, int x, int w, int kernel, int stride,
                                           vae_padding padding, int *out);
/* The same elements under new per-row dims (1 to 3 of them): Flatten is a
   reshape to one dimension, Keras's Reshape((14,14,64)) is (64, 14, 14) here. */
VAE_API vae_status vae_op_reshape(vae_graph *g, int x, int ndim, const int *dims, int *out);
VAE_API vae_status vae_op_activation(vae_graph *g, int x, vae_activation act, int *out);
VAE_API vae_status vae_op_relu(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_leaky_relu(vae_graph *g, int x, float slope, int *out);
VAE_API vae_status vae_op_tanh(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_sigmoid(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_softplus(vae_graph *g, int x, int *out);
/* Elementwise, same shapes; b may also be an unbatched node of a's row size. */
VAE_API vae_status vae_op_add(vae_graph *g, int a, int b, int *out);
VAE_API vae_status vae_op_mul(vae_graph *g, int a, int b, int *out);
VAE_API vae_status vae_op_scale(vae_graph *g, int x, float factor, int *out);
/* Rows of a then rows of b, side by side: (B, Na) and (B, Nb) -> (B, Na+Nb). */
VAE_API vae_status vae_op_concat(vae_graph *g, int a, int b, int *out);
/* z = mu + exp(0.5 * logvar) * eps, eps ~ N(0, I) drawn on every forward. */
VAE_API vae_status vae_op_sample_normal(vae_graph *g, int mu, int logvar, int *out);
/* Per row: sum over features of BCE(sigmoid(logits), target) -> (B, 1). */
VAE_API vae_status vae_op_bce_logits(vae_graph *g, int logits, int target, int *out);
/* Per row: sum of log N(x; mean, exp(logvar)), constant included -> (B, 1).
   logvar is a node (batched, or unbatched of the row size) or -1 for the
   constant log-variance logvar_const. */
VAE_API vae_status vae_op_gaussian_loglik(vae_graph *g, int x, int mean, int logvar,
                                          float logvar_const, int *out);
/* Per row: KL(N(mu, exp(logvar)) || N(0, I)) -> (B, 1). */
VAE_API vae_status vae_op_kl_std_normal(vae_graph *g, int mu, int logvar, int *out);
/* Per row: log N(z; mu, exp(logvar)); mu and logvar -1 for the standard normal. */
VAE_API vae_status vae_op_normal_logpdf(vae_graph *g, int z, int mu, int logvar, int *out);
/* Per row sum / mean over features -> (B, 1). */
VAE_API vae_status vae_op_sum(vae_graph *g, int x, int *out);
VAE_API vae_status vae_op_mean(vae_graph *g, int x, int *out);
/* Mean over the batch of the row sums -> an unbatched scalar. */
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
   now, when parameters are set or loaded, and never updated.  w must not be
   used by any node yet (VAE_ERR_ARGUMENT). */
VAE_API vae_status vae_op_made_matmul(vae_graph *g, int x, int w, vae_made_mask mask,
                                      int reversed, int *out);

/* ---- Layers (built from the operations above; parameters named
   "<name>.w" and "<name>.b", initialised uniform in +-1/sqrt(fan_in)) ---- */
VAE_API vae_status vae_layer_dense(vae_graph *g, int x, int units, vae_activation act,
                                   const char *name, int *out);
/* Conv2D: x (B, C, H, W) -> act(conv2d(x, w) + b), filters output channels;
   parameters "<name>.w" (filters, C*k*k) and "<name>.b" (filters),
   initialised uniform in +-1/sqrt(C*k*k). */
VAE_API vae_status vae_layer_conv2d(vae_graph *g, int x, int filters, int kernel, int stride,
                                    vae_padding padding, vae_activation act, const char *name,
                                    int *out);
/* Conv2DTranspose: x (B, C, H, W) -> act(conv2d_transpose(x, w) + b);
   parameters "<name>.w" (C, filters*k*k) and "<name>.b" (filters),
   initialised uniform in +-1/sqrt(filters*k*k) as PyTorch does. */
VAE_API vae_status vae_layer_conv2d_transpose(vae_graph *g, int x, int filters, int kernel,
                                              int stride, vae_padding padding, vae_activation act,
                                              const char *name, int *out);
/* Optional hidden Dense(hidden, act) (hidden 0: none), then heads mean and
   log-variance (latent units each) and, if context > 0, a context head h.
   h may be NULL when context is 0. */
VAE_API vae_status vae_layer_gaussian_mlp(vae_graph *g, int x, int hidden, vae_activation act,
                                          int latent, int context, const char *name,
                                          int *mu, int *logvar, int *h);
/* Optional hidden Dense(hidden, act), then Dense(features) logits. */
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
   "<name>.s.w", "<name>.s.b". */
VAE_API vae_status vae_layer_iaf_step(vae_graph *g, int z, int h, int hidden, int reversed,
                                      const char *name, int *z_out, int *log_det);
/* Adds the reconstruction term, the analytic KL, -ELBO per row (NELBO role),
   the decoded mean (DECODED role) and the objective (OBJECTIVE role), and
   sets the roles of x, mu, logvar, z and logits.  beta weights the KL in
   the objective only. */
VAE_API vae_status vae_elbo_build(vae_graph *g, int x, int mu, int logvar, int z, int logits,
                                  vae_likelihood likelihood, vae_objective objective,
                                  float beta, int *objective_node);
/* The same for a posterior with a flow: z0 = vae_op_sample_normal(mu,
   logvar) is the base sample, z the flow's output that the decoder reads
   (the LATENT role: decoding and prior samples feed it), log_det the sum of
   the flow steps' log-determinants per row (-1: none).  -ELBO per row is the
   single-sample estimate  -log p(x|z) + log q(z|x) - log p(z)  with
   log q(z|x) = log N(z0; mu, exp(logvar)) - log_det; beta weights
   log q - log p in the objective. */
VAE_API vae_status vae_elbo_build_flow(vae_graph *g, int x, int mu, int logvar, int z0, int z,
                                       int log_det, int logits, vae_likelihood likelihood,
                                       vae_objective objective, float beta,
                                       int *objective_node);

/* ---- Models ---- */
/* Checks that the graph has all roles and takes ownership of it. */
VAE_API vae_status vae_model_create(vae_model **out, vae_graph *g);
VAE_API void vae_model_free(vae_model *m);
/* Largest batch one call processes at once (default 256); larger requests
   are split.  Memory is planned for it at the first use after a change. */
VAE_API vae_status vae_model_set_max_batch(vae_model *m, int max_batch);
/* Worker threads used by training and evaluation (default 1). */
VAE_API vae_status vae_model_set_threads(vae_model *m, int threads);
/* The graph, borrowed: for looking up nodes, not for adding any. */
VAE_API const vae_graph *vae_model_graph(const vae_model *m);
VAE_API int64_t vae_model_input_size(const vae_model *m);
VAE_API int vae_model_latent_size(const vae_model *m);
VAE_API int64_t vae_model_param_count(const vae_model *m);
/* Completed epochs and batches done in the current one. */
VAE_API int vae_model_epoch(const vae_model *m);
VAE_API int vae_model_epoch_position(const vae_model *m);
/* All parameters as one flat array, in creation order. */
VAE_API vae_status vae_model_params_get(const vae_model *m, float *dst, int64_t count);
VAE_API vae_status vae_model_params_set(vae_model *m, const float *src, int64_t count);
/* Bytes of memory the model's plans hold now (values, gradients, workspace). */
VAE_API int64_t vae_model_planned_bytes(const vae_model *m);

/* x (n, input) -> mu, logvar (n, latent).  Either output may be NULL. */
VAE_API vae_status vae_model_encode(vae_model *m, const vae_tensor *x, vae_tensor *mu,
                                    vae_tensor *logvar);
/* z (n, latent) -> decoded mean (n, input...) */
VAE_API vae_status vae_model_decode(vae_model *m, const vae_tensor *z, vae_tensor *out);
/* x -> the decoded mean at the posterior's central point: decode(mu(x)),
   or, with a flow, decode(flow(mu(x))) (every noise input set to zero). */
VAE_API vae_status vae_model_reconstruct(vae_model *m, const vae_tensor *x, vae_tensor *out);
/* out's first dimension is the number of samples; z ~ N(0, I) from seed. */
VAE_API vae_status vae_model_sample_prior(vae_model *m, uint64_t seed, vae_tensor *out);
/* One optimizer step on the batch x (n <= max_batch rows).  Outputs the
   objective and the mean -ELBO of the batch; either may be NULL.  A
   non-finite loss returns VAE_ERR_NOT_FINITE and leaves the weights as they
   were before the step. */
VAE_API vae_status vae_model_train_step(vae_model *m, vae_optimizer *opt, const vae_tensor *x,
                                        double *objective, double *nelbo);
/* One pass over the data set in batches of `batch`, shuffled from the seed
   and the epoch number; the last batch may be partial.  Outputs the mean
   objective and -ELBO per image over the epoch. */
VAE_API vae_status vae_model_train_epoch(vae_model *m, vae_optimizer *opt,
                                         const vae_dataset *data, int batch,
                                         vae_progress_fn progress, void *user,
                                         double *objective, double *nelbo);
/* Mean -ELBO per image over the data set (one z per image; the analytic KL,
   or with a flow its single-sample estimate), with noise drawn from a
   stream fixed by the model's seed. */
VAE_API vae_status vae_model_evaluate(vae_model *m, const vae_dataset *data, double *nelbo);

/* Importance-weighted estimate of log p(x) (the IWAE bound of Burda et al.
   2016) with `samples` draws z ~ q(z|x) per image, averaged in a stable
   log-sum-exp:  log p(x) ~ log (1/k) sum_i p(x, z_i) / q(z_i|x).  It is a
   lower bound that tightens as samples grow (k = 1 is the ELBO).  Outputs the
   mean over the data set in nats per image and, if per_image is not NULL,
   each image's estimate (count entries).  Bits per dimension, as usually
   reported, are -log p(x) / (row size * ln 2); with a Bernoulli or
   Gaussian decoder on pixels in [0, 1] this is a density of continuous
   values, comparable between models with the same likelihood but not with
   figures from discretised (256-level) likelihoods.  Rows are processed
   max_batch at a time in the memory planned for the model, the part of the
   graph no noise reaches (the encoder) once per image; draws come from
   `seed` and each batch's first row, so the same seed and maximum batch
   give the same estimate on any number of threads.  progress, if not NULL, is called after each batch with the images
   finished, the image count and the running mean of -log p(x); a non-zero
   return stops with VAE_ERR_STOPPED.  Needs the LOG_WEIGHT role
   (vae_elbo_build and vae_elbo_build_flow set it); VAE_ERR_UNSUPPORTED
   without. */
VAE_API vae_status vae_model_log_likelihood(vae_model *m, const vae_dataset *data, int samples,
                                            uint64_t seed, vae_progress_fn progress, void *user,
                                            double *mean_log_px, double *per_image);

/* Writes the model (and, if opt is not NULL, the training state) to path
   through a temporary file and a rename, so the previous file survives a
   crash. */
VAE_API vae_status vae_model_save(const vae_model *m, const vae_optimizer *opt,
                                  const char *path);
VAE_API vae_status vae_model_load(vae_model **out, const char *path);
/* Non-zero if the model came from a file with a training-state section
   whose optimizer has not been taken by vae_optimizer_restore yet. */
VAE_API int vae_model_has_training_state(const vae_model *m);

/* ---- Optimizers: bound to one model's parameters. ---- */
VAE_API vae_status vae_optimizer_create(vae_optimizer **out, vae_model *m,
                                        vae_optimizer_kind kind);
/* The optimizer saved with the model, its moments and step included. */
VAE_API vae_status vae_optimizer_restore(vae_optimizer **out, vae_model *m);
VAE_API void vae_optimizer_free(vae_optimizer *opt);
VAE_API vae_status vae_optimizer_set(vae_optimizer *opt, vae_optimizer_option option,
                                     double value);
VAE_API vae_status vae_optimizer_get(const vae_optimizer *opt, vae_optimizer_option option,
                                     double *value);
VAE_API int64_t vae_optimizer_steps(const vae_optimizer *opt);

/* ---- Data sets: rows of pixels kept as bytes (or floats), labels optional. ---- */
/* MNIST-style idx files, plain or gzip-compressed; labels_path may be NULL.
   Pixels are scaled by 1/255. */
VAE_API vae_status vae_dataset_load_idx(vae_dataset **out, const char *images_path,
                                        const char *labels_path);
/* CIFAR-10's binary version: the files data_batch_1.bin .. data_batch_5.bin
   (train, 50,000 images) or test_batch.bin (test, 10,000) in `dir`.  Each
   record is one label byte (0-9) and 3072 pixel bytes (1024 red, 1024 green,
   1024 blue, rows top to bottom), so rows are (3, 32, 32); value = byte/256,
   in [0, 1).  A file whose size is not a whole number of records, or a label
   above 9, is VAE_ERR_FORMAT; a missing file is VAE_ERR_IO naming it. */
VAE_API vae_status vae_dataset_load_cifar10(vae_dataset **out, const char *dir, int train);
/* n rows of per-row dims from host bytes; value = byte * scale.  labels may
   be NULL, else n labels >= 0.  The data are copied. */
VAE_API vae_status vae_dataset_from_u8(vae_dataset **out, int64_t n, int ndim, const int *dims,
                                       const uint8_t *pixels, const int32_t *labels,
                                       float scale);
VAE_API vae_status vae_dataset_from_f32(vae_dataset **out, int64_t n, int ndim, const int *dims,
                                        const float *values, const int32_t *labels);
VAE_API void vae_dataset_free(vae_dataset *ds);
VAE_API int64_t vae_dataset_count(const vae_dataset *ds);
/* Elements of one row. */
VAE_API int64_t vae_dataset_row_size(const vae_dataset *ds);
/* Per-row dims: returns their number and writes up to VAE_MAX_ROW_DIMS. */
VAE_API int vae_dataset_row_dims(const vae_dataset *ds, int *dims);
VAE_API int vae_dataset_has_labels(const vae_dataset *ds);
/* The label of row i, or -1 if there are none or i is out of range. */
VAE_API int32_t vae_dataset_label(const vae_dataset *ds, int64_t i);
/* Keeps only the first n rows. */
VAE_API vae_status vae_dataset_truncate(vae_dataset *ds, int64_t n);
/* Rows first .. first+n-1 as floats into out (n rows of the row size). */
VAE_API vae_status vae_dataset_get(const vae_dataset *ds, int64_t first, vae_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* VAE_H */
