/* Looking inside a model: nodes, parameters by name, a summary in the
   spirit of Keras's model.summary() and the graph as Graphviz DOT text. */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- nodes ---- */

static const node *node_of(const vae_graph *g, int id)
{
    return g && id >= 0 && id < g->n_nodes ? &g->nodes[id] : NULL;
}

VAE_API int vae_graph_node_kind(const vae_graph *g, int id)
{
    const node *n = node_of(g, id);
    if (!n)
        return -1;
    return n->op == OP_INPUT   ? VAE_NODE_INPUT
           : n->op == OP_PARAM ? VAE_NODE_PARAM
           : n->op == OP_NOISE ? VAE_NODE_NOISE
                               : VAE_NODE_COMPUTED;
}

VAE_API const char *vae_graph_node_name(const vae_graph *g, int id)
{
    const node *n = node_of(g, id);
    return n ? n->name : NULL;
}

VAE_API const char *vae_graph_node_op(const vae_graph *g, int id)
{
    const node *n = node_of(g, id);
    return n ? vae__ops[n->op]->name : NULL;
}

VAE_API int vae_graph_node_inputs(const vae_graph *g, int id, int *inputs)
{
    const node *n = node_of(g, id);
    if (!n || !inputs)
        return -1;
    for (int k = 0; k < n->n_in; k++)
        inputs[k] = n->in[k];
    return n->n_in;
}

VAE_API int vae_graph_node_batched(const vae_graph *g, int id)
{
    const node *n = node_of(g, id);
    return n ? n->batched : -1;
}

VAE_API int vae_graph_node_role(const vae_graph *g, int id)
{
    for (int r = 0; node_of(g, id) && r < VAE_ROLE_COUNT_; r++)
        if (g->roles[r] == id)
            return r;
    return -1;
}

/* ---- parameters by name ---- */

/* The parameter node called name, or a failure naming what is wrong. */
static vae_status find_param(const vae_model *m, const char *name, int64_t count, const char *what,
                             const node **out)
{
    int id;
    if (!m || !name)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL model or name", what);
    if ((id = vae_graph_find(m->g, name)) < 0)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the model has no node called '%s'", what, name);
    if (m->g->nodes[id].op != OP_PARAM)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: node '%s' is not a parameter but a(n) %s node",
                         what, name, vae__ops[m->g->nodes[id].op]->name);
    if (count != m->g->nodes[id].size)
        return vae__fail(VAE_ERR_SHAPE, "%s: '%s' has %lld values, not %lld", what, name,
                         (long long)m->g->nodes[id].size, (long long)count);
    *out = &m->g->nodes[id];
    return VAE_OK;
}

VAE_API vae_status vae_model_param_get(const vae_model *m, const char *name, float *dst,
                                       int64_t count)
{
    const node *n = NULL;
    VAE_TRY(find_param(m, name, count, "vae_model_param_get", &n));
    if (!dst)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_param_get: dst is NULL");
    memcpy(dst, m->g->params + n->param_offset, (size_t)count * sizeof *dst);
    return VAE_OK;
}

VAE_API vae_status vae_model_param_set(vae_model *m, const char *name, const float *src,
                                       int64_t count)
{
    const node *n = NULL;
    VAE_TRY(find_param(m, name, count, "vae_model_param_set", &n));
    VAE_TRY(vae__model_check_writable(m, "vae_model_param_set"));
    if (!src)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_param_set: src is NULL");
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(src[i]))
            return vae__fail(VAE_ERR_NOT_FINITE, "vae_model_param_set: value %lld of '%s' is %g; "
                             "the parameter is unchanged", (long long)i, name, (double)src[i]);
    memcpy(m->g->params + n->param_offset, src, (size_t)count * sizeof *src);
    vae__graph_apply_masks(m->g); /* a MADE weight keeps its zeros */
    m->param_max_known = 0;
    return VAE_OK;
}

/* ---- text into a growing buffer ---- */

typedef struct text {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void add(text *t, const char *fmt, ...) VAE_PRINTF(2, 3);
static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->failed || n < 0)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *s = vae__realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Hands the text to the caller's buffer as the API promises: the size
   needed always, the text when it fits. */
static vae_status deliver(text *t, const char *what, char *buf, size_t size, size_t *needed)
{
    vae_status s = VAE_OK;
    if (t->failed)
        s = vae__fail(VAE_ERR_NO_MEMORY, "%s: out of memory", what);
    else if (needed)
        *needed = t->len + 1;
    if (s == VAE_OK && buf && size < t->len + 1)
        s = vae__fail(VAE_ERR_ARGUMENT, "%s: a buffer of %zu bytes, the text needs %zu", what, size,
                      t->len + 1);
    else if (s == VAE_OK && !buf && (size > 0 || !needed))
        s = vae__fail(VAE_ERR_ARGUMENT, "%s: buf is NULL (pass size 0 to ask for the size)", what);
    if (s == VAE_OK && buf)
        memcpy(buf, t->s ? t->s : "", t->len + 1);
    free(t->s);
    return s;
}

/* "(batch, 64, 14, 14)" or "(400, 20)" */
static void add_shape(text *t, const node *n)
{
    add(t, "(%s", n->batched ? "batch" : "");
    for (int k = 0; k < n->ndim; k++)
        add(t, "%s%d", k || n->batched ? ", " : "", n->dims[k]);
    add(t, ")");
}

/* What the roles are called on the diagram, as in the VAE papers. */
static const char *const role_labels[VAE_ROLE_COUNT_] = {
    "x", "mu", "logvar", "z", "logits", "loss", "-ELBO", "decoded", "log w", "recon", "KL",
    "beta KL",
};

/* ---- the summary ---- */

static int is_activation(int op)
{
    return op == OP_RELU || op == OP_LEAKY_RELU || op == OP_TANH || op == OP_SIGMOID ||
           op == OP_SOFTPLUS;
}

static const char *const activation_names[] = {"", "relu", "leaky_relu", "tanh", "sigmoid",
                                               "softplus"};

/* One line of the summary: a layer (the nodes around its parameters) or
   an operation that stands alone. */
typedef struct layer {
    char name[64], kind[64];
    int last;       /* the node whose shape the line shows */
    int64_t params;
    int is_loss;    /* the line of the nodes that only compute the loss */
} layer;

/* Which nodes encoding, decoding and sampling z need: the rest computes
   the loss and gets one line. */
static void mark_network(const vae_model *m, unsigned char *in_net)
{
    const vae_graph *g = m->g;
    for (int i = PLAN_ENCODE; i <= PLAN_DECODE; i++)
        for (int k = 0; k < m->plans[i].count; k++)
            in_net[m->plans[i].nodes[k]] = 1;
    in_net[g->roles[VAE_ROLE_LATENT]] = 2;
    for (int id = g->n_nodes - 1; id >= 0; id--)
        for (int k = 0; in_net[id] == 2 && k < g->nodes[id].n_in; k++)
            if (g->nodes[id].in[k] >= 0)
                in_net[g->nodes[id].in[k]] = 2;
}

/* A parameter's layer is its name less the last part: "encoder.0.w" is
   in "encoder.0". */
static void layer_name(const node *n, int id, char *out, size_t size)
{
    const char *dot = n->name ? strrchr(n->name, '.') : NULL;
    if (!n->name)
        snprintf(out, size, "param.%d", id);
    else
        snprintf(out, size, "%.*s", dot ? (int)(dot - n->name) : (int)strlen(n->name), n->name);
}

static const char *layer_kind(int op)
{
    switch (op) {
    case OP_MATMUL: return "dense";
    case OP_MADE_MATMUL: return "masked dense";
    default: return vae__ops[op]->name;
    }
}

/* Finds or adds the line called name. */
static int line_for(layer *lines, int *n, const char *name, const char *kind)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(lines[i].name, name) == 0)
            return i;
    snprintf(lines[*n].name, sizeof lines[*n].name, "%s", name);
    snprintf(lines[*n].kind, sizeof lines[*n].kind, "%s", kind);
    return (*n)++;
}

/* The line a computed node goes to: its parameters' layer; an activation
   or bias right after a layer folds into it (as Keras shows Dense(...,
   activation=...)); any other operation stands alone. */
static int place(const vae_graph *g, int id, layer *lines, int *n_lines, const int *line_of)
{
    const node *n = &g->nodes[id];
    char name[64];
    for (int k = 0; k < n->n_in; k++) {
        int in = n->in[k];
        if (in >= 0 && g->nodes[in].op == OP_PARAM) {
            layer_name(&g->nodes[in], in, name, sizeof name);
            return line_for(lines, n_lines, name, layer_kind(n->op));
        }
    }
    /* (the logits stay a line of their own: the loss reads them, not the
       sigmoid after them) */
    if ((is_activation(n->op) || n->op == OP_BIAS) && line_of[n->in[0]] >= 0 &&
        lines[line_of[n->in[0]]].last == n->in[0] && g->nodes[n->in[0]].op != OP_INPUT &&
        vae_graph_node_role(g, n->in[0]) != VAE_ROLE_LOGITS)
        return line_of[n->in[0]];
    if (vae_graph_node_role(g, id) >= 0)
        snprintf(name, sizeof name, "%s", role_labels[vae_graph_node_role(g, id)]);
    else
        snprintf(name, sizeof name, "%s.%d", vae__ops[n->op]->name, id);
    return line_for(lines, n_lines, name, vae__ops[n->op]->name);
}

static void note_activation(layer *l, const node *n)
{
    int act = n->op == OP_CONV2D || n->op == OP_CONV2D_TRANSPOSE ? n->iattr[3] : 0;
    const char *name = is_activation(n->op) ? vae__ops[n->op]->name
                       : act > 0 && act < 6 ? activation_names[act] : NULL;
    if (name && strcmp(l->kind, name) != 0 && strlen(l->kind) + strlen(name) + 3 < sizeof l->kind)
        strcat(strcat(l->kind, ", "), name);
}

/* The lines of the network, in creation order, then one for the loss. */
static int build_lines(const vae_model *m, layer *lines, int *line_of)
{
    const vae_graph *g = m->g;
    unsigned char *in_net = vae__calloc((size_t)g->n_nodes, 1);
    int n_lines = 0, loss = -1;
    if (!in_net)
        return -1;
    mark_network(m, in_net);
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id];
        int l;
        line_of[id] = -1;
        if (n->op == OP_PARAM || n->op == OP_NOISE)
            continue;
        if (!in_net[id]) {
            if (loss < 0) { /* its own line, whatever the layers are called */
                loss = n_lines++;
                snprintf(lines[loss].name, sizeof lines[loss].name, "loss");
                snprintf(lines[loss].kind, sizeof lines[loss].kind, "-ELBO");
                lines[loss].is_loss = 1;
            }
            l = loss;
        } else if (n->op == OP_INPUT) {
            l = line_for(lines, &n_lines, n->name ? n->name : "input", "input");
        } else {
            l = place(g, id, lines, &n_lines, line_of);
            note_activation(&lines[l], n);
        }
        line_of[id] = l;
        if (l != loss)
            lines[l].last = id;
        for (int k = 0; k < n->n_in; k++) /* parameters count where they are used first */
            if (n->in[k] >= 0 && g->nodes[n->in[k]].op == OP_PARAM && line_of[n->in[k]] < 0) {
                line_of[n->in[k]] = l;
                lines[l].params += g->nodes[n->in[k]].size;
            }
    }
    if (loss >= 0) /* it shows -ELBO per row */
        lines[loss].last = g->roles[VAE_ROLE_NELBO];
    free(in_net);
    return n_lines;
}

/* "1,133,844" */
static void add_count(text *t, int64_t v)
{
    char digits[32], out[48];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    add(t, "%s", out);
}

static const char *likelihood_of(const vae_graph *g)
{
    const node *lik = vae__likelihood_node(g);
    int linear = g->roles[VAE_ROLE_DECODED] >= 0 &&
                 g->nodes[g->roles[VAE_ROLE_DECODED]].op != OP_SIGMOID;
    if (!lik)
        return "other";
    if (lik->op == OP_BCE_LOGITS)
        return "Bernoulli";
    if (lik->in[2] >= 0)
        return linear ? "Gaussian, linear mean, learned variance" : "Gaussian, learned variance";
    return linear ? "Gaussian, linear mean, unit variance" : "Gaussian, unit variance";
}

static void add_line(text *t, const vae_graph *g, const layer *l)
{
    char shape[64];
    text st = {0};
    add_shape(&st, &g->nodes[l->last]);
    snprintf(shape, sizeof shape, "%s", st.s ? st.s : "");
    free(st.s);
    t->failed |= st.failed; /* else the summary would lack a shape, silently */
    add(t, "%-28.28s %-30.30s %-20s ", l->name, l->kind, shape);
    add_count(t, l->params);
    add(t, "\n");
}

VAE_API vae_status vae_model_summary(const vae_model *m, char *buf, size_t size, size_t *needed)
{
    const char *what = "vae_model_summary";
    text t = {0};
    layer *lines;
    int *line_of, n_lines;
    int64_t total = 0, eval_bytes, train_bytes;
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: model is NULL", what);
    eval_bytes = vae__model_bytes_needed(m, 0);
    train_bytes = eval_bytes < 0 ? -1 : vae__model_bytes_needed(m, 1);
    lines = vae__calloc((size_t)m->g->n_nodes + 1, sizeof *lines);
    line_of = vae__calloc((size_t)m->g->n_nodes + 1, sizeof *line_of);
    n_lines = lines && line_of && train_bytes >= 0 ? build_lines(m, lines, line_of) : -1;
    if (n_lines < 0) {
        free(lines);
        free(line_of);
        return vae__fail(VAE_ERR_NO_MEMORY, "%s: out of memory", what);
    }
    add(&t, "%-28s %-30s %-20s %s\n", "Layer", "Kind", "Output shape", "Parameters");
    for (int i = 0; i < 28 + 30 + 20 + 13; i++)
        add(&t, "-");
    add(&t, "\n");
    for (int pass = 0; pass < 2; pass++) /* the loss's line last */
        for (int i = 0; i < n_lines; i++)
            if (lines[i].is_loss == pass) {
                add_line(&t, m->g, &lines[i]);
                total += lines[i].params;
            }
    add(&t, "Total parameters: ");
    add_count(&t, total);
    add(&t, "\nLatent size: %d; likelihood: %s; input ", vae_model_latent_size(m),
        likelihood_of(m->g));
    add_shape(&t, &m->g->nodes[m->g->roles[VAE_ROLE_INPUT]]);
    add(&t, "\nMemory for batches of %d on %d thread(s): ", m->max_batch, m->threads);
    add_count(&t, eval_bytes);
    add(&t, " bytes to evaluate, ");
    add_count(&t, train_bytes);
    add(&t, " to train (limit ");
    add_count(&t, m->memory_limit);
    add(&t, ")\n");
    free(lines);
    free(line_of);
    return deliver(&t, what, buf, size, needed);
}

/* ---- the graph as Graphviz DOT ---- */

/* A name inside a DOT string: quotes and backslashes escaped, anything
   unprintable as '?'. */
static void add_escaped(text *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            add(t, "\\%c", *s);
        else
            add(t, "%c", *s >= 0x20 && *s < 0x7f ? *s : '?');
    }
}


static void add_dot_node(text *t, const vae_graph *g, int id)
{
    const node *n = &g->nodes[id];
    int role = vae_graph_node_role(g, id);
    static const char *const fill[] = {"#cfe2f3", "#eeeeee", "#fce5cd", "#ffffff"};
    int kind = vae_graph_node_kind(g, id);
    add(t, "  n%d [label=\"", id);
    if (role >= 0)
        add(t, "%s: ", role_labels[role]);
    if (n->name)
        add_escaped(t, n->name);
    else
        add(t, "%s", vae__ops[n->op]->name);
    add(t, "\\n");
    if (n->name && kind == VAE_NODE_COMPUTED)
        add(t, "%s ", vae__ops[n->op]->name);
    add_shape(t, n);
    add(t, "\", shape=%s, style=\"%s\", fillcolor=\"%s\"%s];\n",
        kind == VAE_NODE_PARAM ? "note" : kind == VAE_NODE_INPUT ? "box" : "box",
        kind == VAE_NODE_COMPUTED ? "rounded,filled" : "filled", fill[kind],
        role >= 0 ? ", penwidth=2.5" : "");
}

VAE_API vae_status vae_graph_dot(const vae_graph *g, char *buf, size_t size, size_t *needed)
{
    text t = {0};
    if (!g)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_graph_dot: graph is NULL");
    add(&t, "digraph vae {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
            "  edge [color=\"#555555\"];\n");
    for (int id = 0; id < g->n_nodes; id++)
        add_dot_node(&t, g, id);
    for (int id = 0; id < g->n_nodes; id++)
        for (int k = 0; k < g->nodes[id].n_in; k++)
            if (g->nodes[id].in[k] >= 0)
                add(&t, "  n%d -> n%d;\n", g->nodes[id].in[k], id);
    add(&t, "}\n");
    return deliver(&t, "vae_graph_dot", buf, size, needed);
}

/* ---- where a loaded model came from ---- */

VAE_API int vae_model_file_format(const vae_model *m) { return m ? m->file_format : 0; }

VAE_API const char *vae_model_file_writer(const vae_model *m)
{
    return m && m->file_format ? m->file_writer : NULL;
}
