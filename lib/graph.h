/* The computation graph: nodes, the operation table and execution contexts.
 *
 * A graph is a list of nodes in creation order.  An operation can only use
 * nodes that already exist, so creation order is a topological order and a
 * plan is just the subset of nodes an output needs.
 *
 * A node is either batched (rows of `size` elements; the row count is chosen
 * per call, up to the planned maximum) or unbatched (`size` elements: a
 * parameter or a per-graph scalar such as the objective).
 */
#ifndef VAE_GRAPH_H
#define VAE_GRAPH_H

#include "internal.h"

/* Operation ids are stored in model files: never renumber, only append. */
enum {
    OP_INPUT = 0,
    OP_PARAM = 1,
    OP_NOISE = 2, /* N(0, 1) values drawn by the model before each forward */
    OP_MATMUL = 3,
    OP_BIAS = 4,
    OP_RELU = 5,
    OP_LEAKY_RELU = 6,
    OP_TANH = 7,
    OP_SIGMOID = 8,
    OP_SOFTPLUS = 9,
    OP_ADD = 10,
    OP_MUL = 11,
    OP_SCALE = 12,
    OP_CONCAT = 13,
    OP_SAMPLE_NORMAL = 14,
    OP_BCE_LOGITS = 15,
    OP_GAUSSIAN_LOGLIK = 16,
    OP_KL_STD_NORMAL = 17,
    OP_SUM = 18,
    OP_MEAN = 19,
    OP_BATCH_MEAN = 20,
    OP_CONV2D = 21,
    OP_CONV2D_TRANSPOSE = 22,
    OP_RESHAPE = 23,
    OP_MADE_MATMUL = 24,
    OP_IAF_GATE = 25,
    OP_IAF_LOG_GATE = 26,
    OP_COUNT
};

#define NODE_MAX_INPUTS 4

typedef struct node {
    int op;
    int n_in;
    int in[NODE_MAX_INPUTS]; /* -1 for an absent optional input */
    int batched;
    int ndim;
    int dims[VAE_MAX_ROW_DIMS];
    int64_t size;         /* elements per row (batched) or in all */
    float fattr[2];       /* op-specific constants (slope, factor, ...) */
    int iattr[4];         /* op-specific integers (kernel, stride, padding) */
    int64_t param_offset; /* OP_PARAM: where its values start in params */
    int needs_grad;       /* depends on a parameter */
    char *name;           /* may be NULL */
} node;

struct vae_graph {
    node *nodes;
    int n_nodes, cap_nodes;
    float *params; /* all parameters, one flat array */
    int64_t n_params, cap_params;
    int roles[VAE_ROLE_COUNT_];
    uint64_t seed;
    vae_rng init_rng;
    int owned;            /* a model owns it: read-only from then on */
    int legacy_names;     /* replaying a file of 0.2 or older, which let
                             nodes share a name */
};

/* Everything one thread needs to run a plan on a slice of a batch. */
typedef struct exec_ctx {
    int rows;          /* rows in this slice */
    int total_rows;    /* rows in the whole batch: batch means divide by it */
    float **val;       /* per node: values (NULL if not planned) */
    float **grad;      /* per node: gradient (NULL if none) */
    unsigned char *fresh; /* per node: gradient not yet written this pass */
    float *param_grad; /* this thread's gradient of all parameters */
    float *work;       /* scratch shared by all ops, planned for the largest need */
    struct vae_pool *pool; /* when one context takes the whole batch: the
                              threads its matrix products are split over */
} exec_ctx;

/* nodes: the graph's node table; id: the node to compute. */
typedef void (*op_fn)(const node *nodes, int id, exec_ctx *c);

typedef struct op_def {
    const char *name;
    int n_in;      /* inputs it takes (optional ones included) */
    op_fn forward;
    op_fn backward; /* NULL: no gradient flows through (inputs, noise) */
    /* Floats of scratch (c->work) the op needs for `rows` rows; NULL: none. */
    int64_t (*workspace)(const node *nodes, int id, int rows);
} op_def;

extern const op_def *const vae__ops[OP_COUNT];

/* Elements of node n in context c. */
static inline int64_t node_count(const node *n, const exec_ctx *c)
{
    return n->batched ? (int64_t)c->rows * n->size : n->size;
}

/* The gradient of input node `id` for accumulation: zeroed first if this
   pass has not written it yet.  NULL if the node takes no gradient. */
float *vae__grad_acc(exec_ctx *c, const node *nodes, int id);
/* The same for GEMM outputs: instead of zeroing, sets *beta to 0 (overwrite)
   or 1 (accumulate). */
/* The same for element-wise ops: *add is 0 when the op should assign (the
   first contribution this pass) and 1 when it should add, which saves a
   pass that zeroes the buffer. */
float *vae__grad_out(exec_ctx *c, int id, int *add);
float *vae__grad_beta(exec_ctx *c, const node *nodes, int id, float *beta);

/* ---- building (graph.c) ---- */
/* Adds a node computed by op from inputs; checks ids; the caller has set
   the shape in proto. */
vae_status vae__graph_add(vae_graph *g, const node *proto, int *out);
vae_status vae__graph_check_node(const vae_graph *g, int id, const char *what);
/* Copies name (may be NULL). */
vae_status vae__graph_add_param(vae_graph *g, const char *name, int ndim, const int *dims,
                                float scale, int *out);
vae_status vae__graph_add_raw(vae_graph *g, const node *proto, const char *name, int *out);
/* A layer either adds all its nodes or none: on failure the graph goes
   back to the node and parameter counts it had. */
void vae__graph_rollback(vae_graph *g, int n_nodes, int64_t n_params);
/* Adds node `op` with the shape of node x and the given inputs. */
vae_status vae__graph_add_like(vae_graph *g, int op, int x, int n_in, const int *in,
                               int *out);
/* Adds a batched node of one element per row. */
vae_status vae__graph_add_per_row(vae_graph *g, int op, int n_in, const int *in, int *out);
/* Conv2D (or its transpose) with an optional bias node b (-1: none) and an
   activation folded in (ops_conv.c); the public builders pass -1, NONE. */
vae_status vae__op_conv(vae_graph *g, int transposed, int x, int w, int b, int kernel, int stride,
                        vae_padding padding, vae_activation act, int *out);
/* C (m, n) = op(A) op(B) + beta C, row-major, through the BLAS; split by
   columns over c->pool's threads when there is one and the product is
   large enough (ops_linear.c). */
void vae__gemm(const exec_ctx *c, int trans_a, int trans_b, int m, int n, int k, const float *a,
               int lda, const float *b, int ldb, float beta, float *cc, int ldc);
/* The matrix product's passes (ops_linear.c), shared with the masked one. */
void vae__matmul_forward(const node *nodes, int id, exec_ctx *c);
void vae__matmul_backward(const node *nodes, int id, exec_ctx *c);
/* Flow pieces (ops_flow.c): z' = g z + (1 - g) m with g = sigmoid(s + shift),
   and per row sum log g. */
vae_status vae__build_iaf_gate(vae_graph *g, int z, int m, int s, float shift, int *out);
vae_status vae__build_iaf_log_gate(vae_graph *g, int s, float shift, int *out);
/* Sets every weight outside a MADE mask to zero (after parameters change
   from outside: vae_model_params_set, loading). */
void vae__graph_apply_masks(vae_graph *g);
/* The parameters not held at zero by a mask nor frozen (frozen[id] set
   for a parameter node; frozen may be NULL), as sorted (start, end) pairs
   in a malloc'ed array (ops_flow.c). */
vae_status vae__graph_live_ranges(const vae_graph *g, const unsigned char *frozen,
                                  int64_t **ranges, int64_t *count);
/* Activations over arrays (ops_activation.c), shared with fused ops. */
void vae__activate(vae_activation act, float slope, const float *x, float *y, int64_t n);
void vae__activation_grad(vae_activation act, float slope, const float *y, const float *dy,
                          float *dx, int64_t n, int add);
/* The Gaussian log-density node with every operand optional (ops_probability.c). */
vae_status vae__op_gaussian(vae_graph *g, int x, int mean, int logvar, float logvar_const, int *out);
/* Fails unless node id is batched with row size `size` (size 0: any). */
vae_status vae__graph_expect_batched(const vae_graph *g, int id, int64_t size,
                                     const char *what);
/* Fails unless node b has a's row shape: batched like a, or an unbatched
   node of a's row size (broadcast over rows) when allow_broadcast. */
vae_status vae__graph_expect_same(const vae_graph *g, int a, int b, int allow_broadcast,
                                  const char *what);

#endif
