/* Running graphs: plans, memory planned once per model, forward and
   backward passes, and the data-parallel batch job. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

/* Marks what `targets` need, stopping at `fed`; lists it in order. */
static vae_status build_plan(const vae_graph *g, plan *p, const int *targets, int n_targets,
                             int fed)
{
    unsigned char *need;
    if (n_targets == 0)
        return VAE_OK;
    if (!(need = vae__calloc((size_t)g->n_nodes, 1)))
        return VAE_ERR_NO_MEMORY;
    for (int t = 0; t < n_targets; t++)
        need[targets[t]] = 1;
    for (int id = g->n_nodes - 1; id >= 0; id--) {
        const node *n = &g->nodes[id];
        if (!need[id] || id == fed)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                need[n->in[k]] = 1;
    }
    if (!need[fed]) { /* the caller's rows would go to a node no plan holds */
        free(need);
        return vae__fail(VAE_ERR_STATE, "node %d does not depend on node %d, which the call "
                         "feeds (check the roles)", targets[0], fed);
    }
    p->nodes = vae__calloc((size_t)g->n_nodes, sizeof *p->nodes);
    p->noise = vae__calloc((size_t)g->n_nodes, sizeof *p->noise);
    if (!p->nodes || !p->noise) {
        free(need);
        return VAE_ERR_NO_MEMORY;
    }
    p->feed = fed;
    for (int id = 0; id < g->n_nodes; id++) {
        if (!need[id])
            continue;
        p->nodes[p->count++] = id;
        if (g->nodes[id].op == OP_NOISE && id != fed)
            p->noise[p->n_noise++] = id;
        if (g->nodes[id].op == OP_INPUT && id != fed) {
            free(need);
            return vae__fail(VAE_ERR_STATE, "the graph needs input node %d (%s), which is not "
                             "the model's input", id, g->nodes[id].name ? g->nodes[id].name : "unnamed");
        }
    }
    free(need);
    return VAE_OK;
}

/* Splits the log-weight plan into the nodes no noise reaches and the rest. */
static vae_status split_shared(vae_model *m)
{
    const plan *p = &m->plans[PLAN_LOG_WEIGHT];
    const node *nodes = m->g->nodes;
    shared_split *s = &m->lw;
    unsigned char *noisy = vae__calloc((size_t)m->g->n_nodes, 2), *expanded;
    s->once.nodes = vae__calloc((size_t)p->count + 1, sizeof(int));
    s->per_sample.nodes = vae__calloc((size_t)p->count + 1, sizeof(int));
    s->expand = vae__calloc((size_t)p->count + 1, sizeof(int));
    if (!noisy || !s->once.nodes || !s->per_sample.nodes || !s->expand) {
        free(noisy);
        return VAE_ERR_NO_MEMORY;
    }
    expanded = noisy + m->g->n_nodes;
    s->once.feed = s->per_sample.feed = p->feed;
    for (int k = 0; k < p->count; k++) {
        int id = p->nodes[k];
        noisy[id] = nodes[id].op == OP_NOISE;
        for (int i = 0; i < nodes[id].n_in; i++)
            noisy[id] |= nodes[id].in[i] >= 0 && noisy[nodes[id].in[i]];
        if (!noisy[id]) {
            s->once.nodes[s->once.count++] = id;
            continue;
        }
        s->per_sample.nodes[s->per_sample.count++] = id;
        for (int i = 0; i < nodes[id].n_in; i++) {
            int in = nodes[id].in[i];
            if (in >= 0 && !noisy[in] && nodes[in].batched && !expanded[in]) {
                expanded[in] = 1;
                s->expand[s->n_expand++] = in;
            }
        }
    }
    free(noisy);
    return VAE_OK;
}

vae_status vae__model_build_plans(vae_model *m)
{
    const int *r = m->g->roles;
    int train[2] = {r[VAE_ROLE_OBJECTIVE], r[VAE_ROLE_NELBO]};
    int encode[2] = {r[VAE_ROLE_LATENT_MEAN], r[VAE_ROLE_LATENT_LOGVAR]};
    VAE_TRY(build_plan(m->g, &m->plans[PLAN_TRAIN], train, 2, r[VAE_ROLE_INPUT]));
    for (int k = 0; k < m->plans[PLAN_TRAIN].count; k++) {
        const node *n = &m->g->nodes[m->plans[PLAN_TRAIN].nodes[k]];
        m->has_conv |= n->op == OP_CONV2D || n->op == OP_CONV2D_TRANSPOSE;
        m->unit_inputs |= n->op == OP_BCE_LOGITS && n->in[1] == r[VAE_ROLE_INPUT];
    }
    VAE_TRY(build_plan(m->g, &m->plans[PLAN_EVAL], &r[VAE_ROLE_NELBO], 1, r[VAE_ROLE_INPUT]));
    VAE_TRY(build_plan(m->g, &m->plans[PLAN_ENCODE], encode, 2, r[VAE_ROLE_INPUT]));
    VAE_TRY(build_plan(m->g, &m->plans[PLAN_RECONSTRUCT], &r[VAE_ROLE_DECODED], 1,
                       r[VAE_ROLE_INPUT]));
    VAE_TRY(build_plan(m->g, &m->plans[PLAN_LOG_WEIGHT], &r[VAE_ROLE_LOG_WEIGHT],
                       r[VAE_ROLE_LOG_WEIGHT] >= 0, r[VAE_ROLE_INPUT]));
    VAE_TRY(split_shared(m));
    VAE_TRY(build_plan(m->g, &m->plans[PLAN_LATENT], &r[VAE_ROLE_LATENT], 1, r[VAE_ROLE_INPUT]));
    return build_plan(m->g, &m->plans[PLAN_DECODE], &r[VAE_ROLE_DECODED], 1, r[VAE_ROLE_LATENT]);
}

void vae__model_free_plans(vae_model *m)
{
    for (int i = 0; i < PLAN_COUNT; i++) {
        free(m->plans[i].nodes);
        free(m->plans[i].noise);
        memset(&m->plans[i], 0, sizeof m->plans[i]);
    }
    free(m->lw.once.nodes);
    free(m->lw.per_sample.nodes);
    free(m->lw.expand);
    memset(&m->lw, 0, sizeof m->lw);
}

/* Floats a node takes in a worker's arena, rounded up to 64 bytes. */
static int64_t arena_floats(const node *n, int rows)
{
    int64_t count = n->batched ? n->size * rows : n->size;
    return (count + 15) & ~(int64_t)15;
}

/* Which nodes get values: every node of any plan except parameters. */
static void planned_nodes(const vae_model *m, unsigned char *in_any, unsigned char *in_train)
{
    for (int i = 0; i < PLAN_COUNT; i++)
        for (int k = 0; k < m->plans[i].count; k++)
            in_any[m->plans[i].nodes[k]] = 1;
    for (int k = 0; k < m->plans[PLAN_TRAIN].count; k++)
        in_train[m->plans[PLAN_TRAIN].nodes[k]] = 1;
}

static void free_worker(worker *w)
{
    free(w->c.val);
    free(w->c.grad);
    free(w->c.fresh);
    vae__free_aligned(w->values);
    vae__free_aligned(w->grads);
    vae__free_aligned(w->c.param_grad);
    vae__free_aligned(w->c.work);
    free(w->unique);
    free(w->row_of);
    memset(w, 0, sizeof *w);
}

void vae__model_unplan(vae_model *m)
{
    for (int t = 0; m->workers && t < m->threads; t++)
        free_worker(&m->workers[t]);
    free(m->workers);
    m->workers = NULL;
    vae__pool_free(m->pool);
    m->pool = NULL;
    m->planned = 0;
    m->planned_bytes = 0;
}

/* The largest scratch any planned op needs. */
static int64_t workspace_floats(const vae_model *m, const unsigned char *in_any, int rows)
{
    int64_t most = 0;
    for (int id = 0; id < m->g->n_nodes; id++) {
        const op_def *op = vae__ops[m->g->nodes[id].op];
        if (in_any[id] && op->workspace) {
            int64_t need = op->workspace(m->g->nodes, id, rows);
            most = need > most ? need : most;
        }
    }
    return most;
}

static vae_status plan_values(vae_model *m, worker *w, const unsigned char *in_any)
{
    const vae_graph *g = m->g;
    int64_t total = 0, at = 0, work = workspace_floats(m, in_any, m->slice_rows);
    w->c.val = vae__calloc((size_t)g->n_nodes, sizeof *w->c.val);
    w->c.grad = vae__calloc((size_t)g->n_nodes, sizeof *w->c.grad);
    w->c.fresh = vae__calloc((size_t)g->n_nodes, 1);
    if (!w->c.val || !w->c.grad || !w->c.fresh)
        return VAE_ERR_NO_MEMORY;
    for (int id = 0; id < g->n_nodes; id++)
        if (in_any[id] && g->nodes[id].op != OP_PARAM)
            total += arena_floats(&g->nodes[id], m->slice_rows);
    if (!(w->values = vae__alloc_floats(total)) || !(w->c.work = vae__alloc_floats(work)) ||
        !(w->unique = vae__calloc((size_t)m->slice_rows, sizeof *w->unique)) ||
        !(w->row_of = vae__calloc((size_t)m->slice_rows, sizeof *w->row_of)))
        return VAE_ERR_NO_MEMORY;
    m->planned_bytes += work * (int64_t)sizeof(float);
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id];
        if (n->op == OP_PARAM)
            w->c.val[id] = g->params + n->param_offset;
        else if (in_any[id]) {
            w->c.val[id] = w->values + at;
            at += arena_floats(n, m->slice_rows);
        }
    }
    m->planned_bytes += total * (int64_t)sizeof(float);
    return VAE_OK;
}

static vae_status plan_grads(vae_model *m, worker *w, const unsigned char *in_train)
{
    const vae_graph *g = m->g;
    int64_t total = 0, at = 0;
    for (int id = 0; id < g->n_nodes; id++)
        if (in_train[id] && g->nodes[id].needs_grad && g->nodes[id].op != OP_PARAM)
            total += arena_floats(&g->nodes[id], m->slice_rows);
    if (!(w->grads = vae__alloc_floats(total)) ||
        !(w->c.param_grad = vae__alloc_floats(g->n_params)))
        return VAE_ERR_NO_MEMORY;
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id];
        if (!in_train[id] || !n->needs_grad)
            continue;
        if (n->op == OP_PARAM) /* none for a frozen one: the backward skips it */
            w->c.grad[id] = m->frozen && m->frozen[id] ? NULL : w->c.param_grad + n->param_offset;
        else {
            w->c.grad[id] = w->grads + at;
            at += arena_floats(n, m->slice_rows);
        }
    }
    m->planned_bytes += (total + g->n_params) * (int64_t)sizeof(float);
    return VAE_OK;
}

/* a + b, or 2^53 once past it: sums of node sizes from a hostile file
   must not wrap around before the limit check sees them (2^53 floats
   times 64 threads still fits). */
static int64_t add_capped(int64_t a, int64_t b)
{
    const int64_t cap = (int64_t)1 << 53;
    return a >= cap || b >= cap || a + b >= cap ? cap : a + b;
}

/* Rows each worker's arena holds. */
static int slice_rows_of(const vae_model *m) { return (m->max_batch + m->threads - 1) / m->threads; }

/* Bytes the plans take for every worker, with gradients if `grads`,
   computed before anything is allocated. */
static int64_t bytes_to_plan(const vae_model *m, const unsigned char *in_any,
                             const unsigned char *in_train, int grads)
{
    const vae_graph *g = m->g;
    int rows = slice_rows_of(m);
    int64_t floats = add_capped(0, workspace_floats(m, in_any, rows));
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id];
        if (n->op == OP_PARAM)
            continue;
        if (in_any[id])
            floats = add_capped(floats, arena_floats(n, rows));
        if (grads && in_train[id] && n->needs_grad)
            floats = add_capped(floats, arena_floats(n, rows));
    }
    if (grads)
        floats = add_capped(floats, g->n_params);
    return floats * m->threads * (int64_t)sizeof(float);
}

int64_t vae__model_bytes_needed(const vae_model *m, int grads)
{
    unsigned char *in_any = vae__calloc((size_t)m->g->n_nodes, 1);
    unsigned char *in_train = vae__calloc((size_t)m->g->n_nodes, 1);
    int64_t bytes = -1;
    if (in_any && in_train) {
        planned_nodes(m, in_any, in_train);
        bytes = bytes_to_plan(m, in_any, in_train, grads);
    }
    free(in_any);
    free(in_train);
    return bytes;
}

vae_status vae__model_ensure_planned(vae_model *m, int grads)
{
    unsigned char *in_any = NULL, *in_train = NULL;
    int64_t need;
    vae_status s = VAE_OK;
    if (m->planned && (!grads || m->workers[0].grads))
        return VAE_OK;
    vae__blas_prepare();
    in_any = vae__calloc((size_t)m->g->n_nodes, 1);
    in_train = vae__calloc((size_t)m->g->n_nodes, 1);
    if (!in_any || !in_train) {
        s = VAE_ERR_NO_MEMORY;
        goto done;
    }
    planned_nodes(m, in_any, in_train);
    if ((need = bytes_to_plan(m, in_any, in_train, grads)) > m->memory_limit) {
        s = vae__fail(VAE_ERR_NO_MEMORY, "the model needs %lld bytes for batches of %d rows on "
                      "%d thread(s), more than its memory limit of %lld (vae_model_set_memory_limit "
                      "raises it; a smaller maximum batch needs less)", (long long)need,
                      m->max_batch, m->threads, (long long)m->memory_limit);
        goto done;
    }
    if (!m->planned) {
        m->slice_rows = slice_rows_of(m);
        m->workers = vae__calloc((size_t)m->threads, sizeof *m->workers);
        if (!m->workers) {
            s = VAE_ERR_NO_MEMORY;
            goto done;
        }
        m->planned = 1;
        for (int t = 0; t < m->threads && s == VAE_OK; t++)
            s = plan_values(m, &m->workers[t], in_any);
        if (s == VAE_OK && m->threads > 1)
            s = vae__pool_create(&m->pool, m->threads);
    }
    for (int t = 0; grads && s == VAE_OK && t < m->threads; t++)
        s = plan_grads(m, &m->workers[t], in_train);
done:
    if (s != VAE_OK)
        vae__model_unplan(m);
    else
        vae__log(VAE_LOG_INFO, "planned %lld bytes: %d thread(s) x %d rows%s; BLAS: %s",
                 (long long)m->planned_bytes, m->threads, m->slice_rows,
                 grads ? " with gradients" : "", vae_blas_info());
    free(in_any);
    free(in_train);
    return s;
}

float *vae__grad_acc(exec_ctx *c, const node *nodes, int id)
{
    float *g = c->grad[id];
    if (g && c->fresh[id]) {
        memset(g, 0, (size_t)node_count(&nodes[id], c) * sizeof *g);
        c->fresh[id] = 0;
    }
    return g;
}

float *vae__grad_out(exec_ctx *c, int id, int *add)
{
    *add = !c->fresh[id];
    c->fresh[id] = 0;
    return c->grad[id];
}

float *vae__grad_beta(exec_ctx *c, const node *nodes, int id, float *beta)
{
    (void)nodes;
    *beta = c->fresh[id] ? 0.0f : 1.0f;
    c->fresh[id] = 0;
    return c->grad[id];
}

void vae__forward(const vae_model *m, const plan *p, exec_ctx *c)
{
    const node *nodes = m->g->nodes;
    for (int k = 0; k < p->count; k++) {
        int id = p->nodes[k];
        if (id != p->feed)
            vae__ops[nodes[id].op]->forward(nodes, id, c);
    }
}

void vae__backward(const vae_model *m, const plan *p, exec_ctx *c)
{
    const vae_graph *g = m->g;
    int objective = g->roles[VAE_ROLE_OBJECTIVE];
    /* parameter gradients start at zero (the update leaves them so): every
       contribution adds, which spares the BLAS its pass zeroing them */
    for (int k = 0; k < p->count; k++)
        c->fresh[p->nodes[k]] = g->nodes[p->nodes[k]].op != OP_PARAM;
    c->grad[objective][0] = 1.0f;
    c->fresh[objective] = 0;
    for (int k = p->count - 1; k >= 0; k--) {
        int id = p->nodes[k];
        const op_def *op = vae__ops[g->nodes[id].op];
        if (c->grad[id] && !c->fresh[id] && op->backward && g->nodes[id].op != OP_PARAM)
            op->backward(g->nodes, id, c);
    }
}

void vae__clear_gradients(vae_model *m)
{
    for (int t = 0; t < m->threads; t++)
        if (m->workers[t].c.param_grad)
            memset(m->workers[t].c.param_grad, 0, (size_t)m->g->n_params * sizeof(float));
}

void vae__split_rows(vae_model *m, int lo, int hi, int total, int single)
{
    int rows = hi - lo;
    for (int t = 0; t < m->threads; t++) {
        worker *w = &m->workers[t];
        int parts = single ? 1 : m->threads;
        w->lo = lo + (t >= parts ? rows : (int)((int64_t)rows * t / parts));
        w->hi = lo + (t >= parts ? rows : (int)((int64_t)rows * (t + 1) / parts));
        w->c.rows = w->hi - w->lo;
        w->c.total_rows = total;
    }
}

/* Each node's draws are one sequence over the whole batch, row after row,
   and every worker takes its rows' part of it: the draws of a row depend
   on neither the thread count nor the ranks that share the batch. */
void vae__fill_noise(vae_model *m, const plan *p, vae_rng *rng)
{
    int total = m->workers[0].c.total_rows;
    for (int k = 0; k < p->n_noise; k++) {
        int id = p->noise[k];
        int64_t size = m->g->nodes[id].size;
        for (int t = 0; t < m->threads; t++)
            vae__rng_normal_at(rng, m->workers[t].c.val[id], m->workers[t].lo * size,
                               (int64_t)m->workers[t].c.rows * size);
        vae__rng_skip_normals(rng, total * size);
    }
}

void vae__zero_noise(vae_model *m, const plan *p)
{
    for (int k = 0; k < p->n_noise; k++)
        for (int t = 0; t < m->threads; t++)
            memset(m->workers[t].c.val[p->noise[k]], 0,
                   (size_t)m->slice_rows * (size_t)m->g->nodes[p->noise[k]].size * sizeof(float));
}

static void fill_feed(const batch_job *job, worker *w)
{
    const node *fed = &job->m->g->nodes[job->p->feed];
    float *dst = w->c.val[job->p->feed];
    if (job->feed)
        memcpy(dst, job->feed + (int64_t)w->lo * fed->size,
               (size_t)w->c.rows * (size_t)fed->size * sizeof(float));
    else
        vae__dataset_rows(job->data, job->index ? job->index + w->lo : NULL, job->first + w->lo,
                          w->c.rows, dst);
}

static double row_sum(const float *v, int rows)
{
    double s = 0.0;
    for (int r = 0; r < rows; r++)
        s += v[r];
    return s;
}

/* Rows of few images (job->index nondecreasing): the shared part of the
   plan runs on each distinct image once, its outputs are copied to every
   row of that image, then the rest runs on all rows. */
static void run_per_image(const batch_job *job, worker *w)
{
    const vae_model *m = job->m;
    const int64_t *index = job->index + w->lo;
    int rows = w->c.rows, n = 0;
    for (int r = 0; r < rows; r++) {
        if (r == 0 || index[r] != index[r - 1])
            w->unique[n++] = index[r];
        w->row_of[r] = n - 1;
    }
    w->c.rows = n;
    vae__dataset_rows(job->data, w->unique, 0, n, w->c.val[job->p->feed]);
    vae__forward(m, &m->lw.once, &w->c);
    /* downwards: row r's source row_of[r] <= r is not overwritten yet */
    for (int e = 0; e < m->lw.n_expand; e++) {
        int64_t size = m->g->nodes[m->lw.expand[e]].size;
        float *v = w->c.val[m->lw.expand[e]];
        for (int r = rows - 1; r >= 0; r--)
            if (w->row_of[r] != r)
                memcpy(v + r * size, v + w->row_of[r] * size, (size_t)size * sizeof *v);
    }
    w->c.rows = rows;
    vae__forward(m, &m->lw.per_sample, &w->c);
}

static void run_slice(void *arg, int t)
{
    batch_job *job = arg;
    const vae_model *m = job->m;
    const int *roles = m->g->roles;
    worker *w = &m->workers[t];
    w->objective = w->nelbo_sum = w->recon_sum = w->kl_sum = 0.0;
    if (w->c.rows == 0)
        return; /* its parameter gradient stays zero */
    if (job->per_image) {
        run_per_image(job, w);
    } else {
        fill_feed(job, w);
        vae__forward(m, job->p, &w->c);
    }
    if (job->backward)
        vae__backward(m, job->p, &w->c);
    if (job->p == &m->plans[PLAN_TRAIN])
        w->objective = w->c.val[roles[VAE_ROLE_OBJECTIVE]][0];
    if (job->p == &m->plans[PLAN_TRAIN] || job->p == &m->plans[PLAN_EVAL]) {
        w->nelbo_sum = row_sum(w->c.val[roles[VAE_ROLE_NELBO]], w->c.rows);
        /* the terms feed -ELBO, so both plans computed them */
        if (roles[VAE_ROLE_RECON] >= 0 && roles[VAE_ROLE_KL] >= 0) {
            w->recon_sum = row_sum(w->c.val[roles[VAE_ROLE_RECON]], w->c.rows);
            w->kl_sum = row_sum(w->c.val[roles[VAE_ROLE_KL]], w->c.rows);
        }
    }
    for (int k = 0; k < 2; k++) {
        int64_t size;
        if (job->out_node[k] < 0 || !job->out[k])
            continue;
        size = m->g->nodes[job->out_node[k]].size;
        memcpy(job->out[k] + (int64_t)w->lo * size, w->c.val[job->out_node[k]],
               (size_t)w->c.rows * (size_t)size * sizeof(float));
    }
}

void vae__run_batch(batch_job *job)
{
    vae_model *m = job->m;
    if (!job->single) {
        vae__pool_run(m->pool, run_slice, job);
        return;
    }
    for (int t = 1; t < m->threads; t++)
        m->workers[t].objective = m->workers[t].nelbo_sum = m->workers[t].recon_sum =
            m->workers[t].kl_sum = 0.0;
    m->workers[0].c.pool = m->pool;
    vae__pool_run(NULL, run_slice, job);
    m->workers[0].c.pool = NULL;
}
