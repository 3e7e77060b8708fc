/* Building graphs: nodes, parameters, names and roles. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

VAE_API vae_status vae_graph_create(vae_graph **out, uint64_t seed)
{
    vae_graph *g;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_graph_create: out is NULL");
    g = vae__calloc(1, sizeof *g);
    if (!g)
        return VAE_ERR_NO_MEMORY;
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        g->roles[r] = -1;
    g->seed = seed;
    vae__rng_seed3(&g->init_rng, seed, 0x1417, 0);
    *out = g;
    return VAE_OK;
}

VAE_API void vae_graph_free(vae_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        free(g->nodes[i].name);
    free(g->nodes);
    free(g->params);
    free(g);
}

void vae__graph_rollback(vae_graph *g, int n_nodes, int64_t n_params)
{
    while (g->n_nodes > n_nodes)
        free(g->nodes[--g->n_nodes].name);
    g->n_params = n_params;
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        if (g->roles[r] >= n_nodes)
            g->roles[r] = -1;
}

vae_status vae__graph_check_node(const vae_graph *g, int id, const char *what)
{
    if (!g)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: graph is NULL", what);
    if (id < 0 || id >= g->n_nodes)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: node %d does not exist (graph has %d)", what, id,
                         g->n_nodes);
    return VAE_OK;
}

static vae_status check_row_dims(int ndim, const int *dims, int64_t *size, const char *what)
{
    int64_t n = 1;
    if (ndim < 1 || ndim > VAE_MAX_ROW_DIMS || !dims)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: ndim must be 1 to %d (got %d)", what,
                         VAE_MAX_ROW_DIMS, ndim);
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > (1 << 30) / n)
            return vae__fail(VAE_ERR_ARGUMENT, "%s: dimension %d has bad size %d", what, i,
                             dims[i]);
        n *= dims[i];
    }
    *size = n;
    return VAE_OK;
}

/* Refuses changes to a graph a model has planned for. */
static vae_status check_writable(const vae_graph *g, const char *what)
{
    if (g->owned)
        return vae__fail(VAE_ERR_STATE, "%s: the graph belongs to a model and is read-only "
                         "(add every node before vae_model_create)", what);
    return VAE_OK;
}

/* Names identify nodes (vae_graph_find, parameters by name): one per node. */
static vae_status check_new_name(const vae_graph *g, const char *name, const char *what)
{
    int other;
    if (name && strlen(name) > 255) /* model files hold names of up to 255 bytes */
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the name '%.40s...' is longer than 255 bytes",
                         what, name);
    if (!name || g->legacy_names || (other = vae_graph_find(g, name)) < 0)
        return VAE_OK;
    return vae__fail(VAE_ERR_ARGUMENT, "%s: the name '%s' is taken by node %d (names are unique "
                     "in a graph: give each layer its own)", what, name, other);
}

/* Appends a node without checking its inputs (used by the loader too). */
vae_status vae__graph_add_raw(vae_graph *g, const node *proto, const char *name, int *out)
{
    const char *what = proto->op == OP_INPUT   ? "vae_graph_input"
                       : proto->op == OP_PARAM ? "vae_graph_param"
                                               : vae__ops[proto->op]->name;
    node *n;
    VAE_TRY(check_writable(g, what));
    VAE_TRY(check_new_name(g, name, what));
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 32;
        node *nodes = vae__realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return vae__fail(VAE_ERR_NO_MEMORY, "out of memory growing the graph");
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    n = &g->nodes[g->n_nodes];
    *n = *proto;
    n->name = NULL;
    for (int k = n->n_in; k < NODE_MAX_INPUTS; k++)
        n->in[k] = -1;
    if (name && !(n->name = vae__strdup(name)))
        return VAE_ERR_NO_MEMORY;
    if (n->op != OP_PARAM)
        n->param_offset = -1;
    *out = g->n_nodes++;
    return VAE_OK;
}

vae_status vae__graph_add(vae_graph *g, const node *proto, int *out)
{
    node n = *proto;
    n.needs_grad = 0;
    for (int k = 0; k < n.n_in; k++) {
        if (n.in[k] < 0)
            continue;
        VAE_TRY(vae__graph_check_node(g, n.in[k], vae__ops[n.op]->name));
        n.needs_grad |= g->nodes[n.in[k]].needs_grad;
    }
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: out is NULL", vae__ops[n.op]->name);
    return vae__graph_add_raw(g, &n, NULL, out);
}

VAE_API vae_status vae_graph_input(vae_graph *g, const char *name, int ndim, const int *dims,
                                   int *out)
{
    node n = {.op = OP_INPUT, .batched = 1, .ndim = ndim};
    if (!g || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_graph_input: NULL argument");
    VAE_TRY(check_row_dims(ndim, dims, &n.size, "vae_graph_input"));
    memcpy(n.dims, dims, (size_t)ndim * sizeof *dims);
    return vae__graph_add_raw(g, &n, name, out);
}

static vae_status grow_params(vae_graph *g, int64_t extra)
{
    int64_t cap = g->cap_params ? g->cap_params : 1024;
    float *p;
    while (cap < g->n_params + extra)
        cap *= 2;
    if (cap == g->cap_params)
        return VAE_OK;
    p = vae__realloc(g->params, (size_t)cap * sizeof *p);
    if (!p)
        return vae__fail(VAE_ERR_NO_MEMORY, "out of memory for %lld parameters", (long long)cap);
    g->params = p;
    g->cap_params = cap;
    return VAE_OK;
}

vae_status vae__graph_add_param(vae_graph *g, const char *name, int ndim, const int *dims,
                                float scale, int *out)
{
    node n = {.op = OP_PARAM, .ndim = ndim, .needs_grad = 1};
    int id;
    VAE_TRY(check_row_dims(ndim, dims, &n.size, "vae_graph_param"));
    memcpy(n.dims, dims, (size_t)ndim * sizeof *dims);
    VAE_TRY(grow_params(g, n.size));
    n.param_offset = g->n_params;
    VAE_TRY(vae__graph_add_raw(g, &n, name, &id));
    g->nodes[id].param_offset = g->n_params;
    for (int64_t i = 0; i < n.size; i++)
        g->params[g->n_params + i] = (float)((2.0 * vae__rng_uniform(&g->init_rng) - 1.0) * scale);
    g->n_params += n.size;
    *out = id;
    return VAE_OK;
}

VAE_API vae_status vae_graph_param(vae_graph *g, const char *name, int ndim, const int *dims,
                                   float scale, int *out)
{
    if (!g || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_graph_param: NULL argument");
    if (!(scale >= 0.0f) || scale > 1e6f)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_graph_param: scale %g is not in [0, 1e6]",
                         (double)scale);
    return vae__graph_add_param(g, name, ndim, dims, scale, out);
}

VAE_API vae_status vae_graph_set_role(vae_graph *g, vae_role role, int node_id)
{
    if ((int)role < 0 || role >= VAE_ROLE_COUNT_)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_graph_set_role: unknown role %d", (int)role);
    VAE_TRY(vae__graph_check_node(g, node_id, "vae_graph_set_role"));
    VAE_TRY(check_writable(g, "vae_graph_set_role"));
    g->roles[role] = node_id;
    return VAE_OK;
}

VAE_API int vae_graph_role(const vae_graph *g, vae_role role)
{
    if (!g || (int)role < 0 || role >= VAE_ROLE_COUNT_)
        return -1;
    return g->roles[role];
}

VAE_API int vae_graph_find(const vae_graph *g, const char *name)
{
    if (!g || !name)
        return -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

VAE_API int vae_graph_node_count(const vae_graph *g) { return g ? g->n_nodes : 0; }

VAE_API int64_t vae_graph_node_size(const vae_graph *g, int id)
{
    if (!g || id < 0 || id >= g->n_nodes)
        return -1;
    return g->nodes[id].size;
}

vae_status vae__graph_add_like(vae_graph *g, int op, int x, int n_in, const int *in, int *out)
{
    node n;
    VAE_TRY(vae__graph_check_node(g, x, vae__ops[op]->name));
    n = g->nodes[x];
    n.op = op;
    n.n_in = n_in;
    n.name = NULL;
    n.fattr[0] = n.fattr[1] = 0.0f;
    memset(n.iattr, 0, sizeof n.iattr);
    for (int k = 0; k < NODE_MAX_INPUTS; k++)
        n.in[k] = k < n_in ? in[k] : -1;
    return vae__graph_add(g, &n, out);
}

vae_status vae__graph_add_per_row(vae_graph *g, int op, int n_in, const int *in, int *out)
{
    node n = {.op = op, .n_in = n_in, .batched = 1, .ndim = 1, .dims = {1}, .size = 1};
    for (int k = 0; k < NODE_MAX_INPUTS; k++)
        n.in[k] = k < n_in ? in[k] : -1;
    return vae__graph_add(g, &n, out);
}

vae_status vae__graph_expect_batched(const vae_graph *g, int id, int64_t size, const char *what)
{
    const node *n;
    VAE_TRY(vae__graph_check_node(g, id, what));
    n = &g->nodes[id];
    if (!n->batched)
        return vae__fail(VAE_ERR_SHAPE, "%s: node %d must be batched (have rows)", what, id);
    if (size && n->size != size)
        return vae__fail(VAE_ERR_SHAPE, "%s: node %d has %lld elements per row, expected %lld",
                         what, id, (long long)n->size, (long long)size);
    return VAE_OK;
}

vae_status vae__graph_expect_same(const vae_graph *g, int a, int b, int allow_broadcast,
                                  const char *what)
{
    VAE_TRY(vae__graph_expect_batched(g, a, 0, what));
    VAE_TRY(vae__graph_check_node(g, b, what));
    if (g->nodes[b].size != g->nodes[a].size)
        return vae__fail(VAE_ERR_SHAPE, "%s: nodes %d and %d differ in row size (%lld vs %lld)",
                         what, a, b, (long long)g->nodes[a].size, (long long)g->nodes[b].size);
    if (!g->nodes[b].batched && !allow_broadcast)
        return vae__fail(VAE_ERR_SHAPE, "%s: node %d must be batched", what, b);
    return VAE_OK;
}

VAE_API int vae_graph_node_dims(const vae_graph *g, int id, int *dims)
{
    if (!g || id < 0 || id >= g->n_nodes || !dims)
        return 0;
    for (int k = 0; k < g->nodes[id].ndim; k++)
        dims[k] = g->nodes[id].dims[k];
    return g->nodes[id].ndim;
}
