/* Model files.
 *
 *   "VAEMODEL"  u32 format version  u32 section count
 *   sections:   char tag[4]  u64 length  payload
 *     GRPH  seed, roles, nodes (op, inputs, shape, constants, name)
 *     PARM  the flat parameter array
 *     TRAN  optional training state: epoch, position, batch size, steps,
 *           sums, and the optimizer (kind, counted settings, steps, counted
 *           moment arrays)
 *     hist  optional per-epoch history: named columns of doubles
 *     meta  optional host metadata: key/value strings
 *     vers  optional: the libvae version that wrote the file (a string)
 *     tsum  optional, with TRAN: the epoch's sums of the reconstruction and
 *           KL terms so far (so a resumed epoch reports them whole)
 *     FRZN  the names of the parameters frozen (not trained); critical,
 *           since training would differ without it
 *   "END!"  u32 CRC-32 of everything before it
 *
 * Integers and floats are little-endian.  Format 2 (libvae 0.3) changed
 * TRAN to counted settings and moments and a batch size; format 1 files
 * (0.1, 0.2) are still read.  Later additions do not change the format
 * number: a section whose tag starts with a lower-case letter is optional,
 * and a reader that does not know it skips it (as PNG treats ancillary
 * chunks); one with an upper-case first letter is critical, and a reader
 * that does not know it refuses the file.  Settings are counted: a reader
 * takes the ones it knows, and settings added later must default to what
 * older versions did.
 *
 * Loading rebuilds the graph by replaying each node through the same
 * builder functions a host calls, so a file cannot produce a graph the
 * builders would refuse; the training state is checked as
 * vae_optimizer_set checks settings.  Saving writes a temporary file in
 * the same directory and renames it over the target.
 */
#define _GNU_SOURCE
#include "model.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FORMAT_VERSION 2u /* written; 1 is still read */
/* Files go out in pieces this size, so that a failure can come between
   writes (the failure tests make each one fail in turn). */
#define WRITE_PIECE ((size_t)1 << 20)
#define MIN_SIZE(a, b) ((a) < (b) ? (a) : (b))
static const char MAGIC[8] = {'V', 'A', 'E', 'M', 'O', 'D', 'E', 'L'};

/* ---- writing into a growing buffer ---- */
typedef struct wbuf {
    unsigned char *data;
    size_t len, cap;
    uint32_t sections; /* begun so far: the header's count */
    int failed;
} wbuf;

static void put(wbuf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *d;
        while (cap < b->len + n)
            cap *= 2;
        if (!(d = vae__realloc(b->data, cap))) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u32(wbuf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(wbuf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(wbuf *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}

static void put_f64(wbuf *b, double f)
{
    uint64_t v;
    memcpy(&v, &f, 8);
    put_u64(b, v);
}

static void put_floats(wbuf *b, const float *f, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        put_f32(b, f[i]);
}

/* Starts a section; returns where its length goes. */
static size_t begin_section(wbuf *b, const char *tag)
{
    size_t at;
    put(b, tag, 4);
    at = b->len;
    put_u64(b, 0);
    b->sections++;
    return at;
}

static void end_section(wbuf *b, size_t at)
{
    uint64_t len = b->len - at - 8;
    if (b->failed)
        return;
    for (int i = 0; i < 8; i++)
        b->data[at + (size_t)i] = (unsigned char)(len >> (8 * i));
}

static void write_graph(wbuf *b, const vae_graph *g)
{
    size_t at = begin_section(b, "GRPH");
    put_u64(b, g->seed);
    put_u32(b, VAE_ROLE_COUNT_);
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        put_u32(b, (uint32_t)g->roles[r]);
    put_u32(b, (uint32_t)g->n_nodes);
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id];
        size_t name_len = n->name ? strlen(n->name) : 0;
        put_u32(b, (uint32_t)n->op);
        put_u32(b, (uint32_t)n->n_in);
        for (int k = 0; k < NODE_MAX_INPUTS; k++)
            put_u32(b, (uint32_t)n->in[k]);
        put_u32(b, (uint32_t)n->batched);
        put_u32(b, (uint32_t)n->ndim);
        for (int k = 0; k < VAE_MAX_ROW_DIMS; k++)
            put_u32(b, (uint32_t)n->dims[k]);
        put_f32(b, n->fattr[0]);
        put_f32(b, n->fattr[1]);
        for (int k = 0; k < 4; k++)
            put_u32(b, (uint32_t)n->iattr[k]);
        put_u32(b, (uint32_t)name_len);
        put(b, n->name ? n->name : "", name_len);
    }
    end_section(b, at);
}

static void write_training(wbuf *b, const vae_model *m, const vae_optimizer *o)
{
    size_t at = begin_section(b, "TRAN");
    const train_state *t = &m->train;
    put_u32(b, (uint32_t)t->epoch);
    put_u32(b, (uint32_t)t->epoch_pos);
    put_u32(b, (uint32_t)t->batch);
    put_u64(b, (uint64_t)t->steps);
    put_f64(b, t->epoch_objective);
    put_f64(b, t->epoch_nelbo);
    put_u64(b, (uint64_t)t->epoch_images);
    put_u32(b, (uint32_t)o->kind);
    put_u32(b, OPTIMIZER_SETTINGS);
    for (int i = 0; i < OPTIMIZER_SETTINGS; i++)
        put_f64(b, o->settings[i]);
    put_u64(b, (uint64_t)o->steps);
    put_u32(b, o->moment2 ? 2 : 1);
    put_u64(b, (uint64_t)o->n);
    put_floats(b, o->moment1, o->n);
    if (o->moment2) {
        put_u64(b, (uint64_t)o->n);
        put_floats(b, o->moment2, o->n);
    }
    end_section(b, at);
    /* the epoch's sums of the terms, optional: older 0.3 readers skip it */
    at = begin_section(b, "tsum");
    put_u32(b, 2);
    put_f64(b, t->epoch_recon);
    put_f64(b, t->epoch_kl);
    end_section(b, at);
}

static void put_string(wbuf *b, const char *str)
{
    size_t len = strlen(str);
    put_u32(b, (uint32_t)len);
    put(b, str, len);
}

static void write_history(wbuf *b, const history *h)
{
    size_t at = begin_section(b, "hist");
    put_u32(b, (uint32_t)h->n_cols);
    put_u32(b, (uint32_t)h->n_rows);
    for (int c = 0; c < h->n_cols; c++) {
        put_string(b, h->names[c]);
        for (int r = 0; r < h->n_rows; r++)
            put_f64(b, h->cols[c][r]);
    }
    end_section(b, at);
}

static int frozen_count(const vae_model *m)
{
    int n = 0;
    for (int id = 0; m->frozen && id < m->g->n_nodes; id++)
        n += m->frozen[id];
    return n;
}

static void write_frozen(wbuf *b, const vae_model *m)
{
    size_t at = begin_section(b, "FRZN");
    put_u32(b, (uint32_t)frozen_count(m));
    for (int id = 0; id < m->g->n_nodes; id++)
        if (m->frozen[id])
            put_string(b, m->g->nodes[id].name);
    end_section(b, at);
}

static void write_metadata(wbuf *b, const metadata *md)
{
    size_t at = begin_section(b, "meta");
    put_u32(b, (uint32_t)md->count);
    for (int i = 0; i < md->count; i++) {
        put_string(b, md->keys[i]);
        put_string(b, md->values[i]);
    }
    end_section(b, at);
}

/* Creates "<path>.tmp.<pid>.<n>" exclusively; the mode 0666 goes through
   the umask like any new file's. */
static int create_temporary(const char *path, char *tmp, size_t size)
{
    static _Thread_local unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd;
        snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        if ((errno = vae__io_fails(VAE__IO_OPEN)) != 0)
            return -1;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static vae_status write_atomically(const char *path, const unsigned char *data, size_t len)
{
    size_t size = strlen(path) + 64;
    char *tmp = vae__alloc(size);
    int fd, err = 0;
    if (!tmp)
        return VAE_ERR_NO_MEMORY;
    if ((fd = create_temporary(path, tmp, size)) < 0) {
        vae_status s = vae__fail(VAE_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                                 path, strerror(errno));
        free(tmp);
        return s;
    }
    for (size_t done = 0; done < len && !err;) {
        ssize_t w = (err = vae__io_fails(VAE__IO_WRITE)) ? -1 : write(fd, data + done, MIN_SIZE(len - done, WRITE_PIECE));
        if (w < 0 && !err && errno != EINTR)
            err = errno;
        else if (w > 0)
            done += (size_t)w;
    }
    if (!err && ((err = vae__io_fails(VAE__IO_FSYNC)) || fsync(fd) != 0))
        err = err ? err : errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err)
        err = vae__io_fails(VAE__IO_CLOSE); /* as a close that reports a late write error */
    if (!err && ((err = vae__io_fails(VAE__IO_RENAME)) || rename(tmp, path) != 0))
        err = err ? err : errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        return vae__fail(VAE_ERR_IO, "%s: cannot write: %s", path, strerror(err));
    }
    free(tmp);
    return VAE_OK;
}

VAE_API vae_status vae_model_save(const vae_model *m, const vae_optimizer *opt, const char *path)
{
    wbuf b = {0};
    vae_status s;
    if (!m || !path)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_save: NULL argument");
    if (opt && opt->model != m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_save: the optimizer belongs to another model");
    put(&b, MAGIC, 8);
    put_u32(&b, FORMAT_VERSION);
    put_u32(&b, 0); /* the section count, set when they are all written */
    write_graph(&b, m->g);
    {
        size_t at = begin_section(&b, "PARM");
        put_u64(&b, (uint64_t)m->g->n_params);
        put_floats(&b, m->g->params, m->g->n_params);
        end_section(&b, at);
    }
    if (opt)
        write_training(&b, m, opt);
    if (m->hist.n_cols > 0)
        write_history(&b, &m->hist);
    if (m->meta.count > 0)
        write_metadata(&b, &m->meta);
    if (frozen_count(m) > 0)
        write_frozen(&b, m);
    {
        size_t at = begin_section(&b, "vers");
        put_string(&b, VAE_VERSION_STRING);
        end_section(&b, at);
    }
    put(&b, "END!", 4);
    if (!b.failed) {
        for (int i = 0; i < 4; i++)
            b.data[12 + i] = (unsigned char)(b.sections >> (8 * i));
        put_u32(&b, (uint32_t)crc32_z(0L, b.data, b.len));
    }
    if (b.failed)
        s = vae__fail(VAE_ERR_NO_MEMORY, "vae_model_save: out of memory");
    else
        s = write_atomically(path, b.data, b.len);
    free(b.data);
    return s;
}

/* ---- reading from a bounded buffer ---- */
typedef struct rbuf {
    const unsigned char *data;
    size_t len, at;
    int short_read;
} rbuf;

static const unsigned char *take(rbuf *r, size_t n)
{
    const unsigned char *p;
    if (r->short_read || r->len - r->at < n) {
        r->short_read = 1;
        return NULL;
    }
    p = r->data + r->at;
    r->at += n;
    return p;
}

static uint32_t get_u32(rbuf *r)
{
    const unsigned char *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}

static uint64_t get_u64(rbuf *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static float get_f32(rbuf *r)
{
    uint32_t v = get_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static double get_f64(rbuf *r)
{
    uint64_t v = get_u64(r);
    double f;
    memcpy(&f, &v, 8);
    return f;
}

static void get_floats(rbuf *r, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n && !r->short_read; i++)
        dst[i] = get_f32(r);
}

static void get_floats_f64(rbuf *r, double *dst, int64_t n)
{
    for (int64_t i = 0; i < n && !r->short_read; i++)
        dst[i] = get_f64(r);
}

/* A node as stored, before it is replayed. */
typedef struct stored_node {
    node n;
    char name[256];
} stored_node;

static vae_status read_node(rbuf *r, const char *path, int id, stored_node *sn)
{
    node *n = &sn->n;
    uint32_t name_len;
    const unsigned char *name;
    memset(sn, 0, sizeof *sn);
    n->op = (int)get_u32(r);
    n->n_in = (int)get_u32(r);
    for (int k = 0; k < NODE_MAX_INPUTS; k++)
        n->in[k] = (int)get_u32(r);
    n->batched = (int)get_u32(r);
    n->ndim = (int)get_u32(r);
    for (int k = 0; k < VAE_MAX_ROW_DIMS; k++)
        n->dims[k] = (int)get_u32(r);
    n->fattr[0] = get_f32(r);
    n->fattr[1] = get_f32(r);
    for (int k = 0; k < 4; k++)
        n->iattr[k] = (int)get_u32(r);
    name_len = get_u32(r);
    if (r->short_read)
        return vae__fail(VAE_ERR_FORMAT, "%s: graph section ends inside node %d", path, id);
    if (name_len >= sizeof sn->name || !(name = take(r, name_len)))
        return vae__fail(VAE_ERR_FORMAT, "%s: node %d has a bad name length %u", path, id, name_len);
    memcpy(sn->name, name, name_len);
    if (n->op < 0 || n->op >= OP_COUNT || n->n_in != vae__ops[n->op]->n_in)
        return vae__fail(VAE_ERR_FORMAT, "%s: node %d has unknown operation %d (a newer libvae "
                         "may have written this file)", path, id, n->op);
    for (int k = 0; k < NODE_MAX_INPUTS; k++)
        if (n->in[k] < -1 || n->in[k] >= id || (k >= n->n_in && n->in[k] != -1))
            return vae__fail(VAE_ERR_FORMAT, "%s: node %d refers to node %d", path, id, n->in[k]);
    if (n->ndim < 1 || n->ndim > VAE_MAX_ROW_DIMS)
        return vae__fail(VAE_ERR_FORMAT, "%s: node %d has %d dimensions", path, id, n->ndim);
    return VAE_OK;
}

/* Calls the builder that makes a node like sn from the same inputs. */
static vae_status replay(vae_graph *g, const stored_node *sn, int *out)
{
    const node *n = &sn->n;
    const int *in = n->in;
    const char *name = sn->name[0] ? sn->name : NULL;
    switch (n->op) {
    case OP_INPUT: return vae_graph_input(g, name, n->ndim, n->dims, out);
    case OP_PARAM: return vae__graph_add_param(g, name, n->ndim, n->dims, 0.0f, out);
    case OP_MATMUL: return vae_op_matmul(g, in[0], in[1], out);
    case OP_BIAS: return vae_op_bias(g, in[0], in[1], out);
    case OP_RELU: return vae_op_relu(g, in[0], out);
    case OP_LEAKY_RELU: return vae_op_leaky_relu(g, in[0], n->fattr[0], out);
    case OP_TANH: return vae_op_tanh(g, in[0], out);
    case OP_SIGMOID: return vae_op_sigmoid(g, in[0], out);
    case OP_SOFTPLUS: return vae_op_softplus(g, in[0], out);
    case OP_ADD: return vae_op_add(g, in[0], in[1], out);
    case OP_MUL: return vae_op_mul(g, in[0], in[1], out);
    case OP_SCALE: return vae_op_scale(g, in[0], n->fattr[0], out);
    case OP_CONCAT: return vae_op_concat(g, in[0], in[1], out);
    case OP_SAMPLE_NORMAL: return vae_op_sample_normal(g, in[0], in[1], out);
    case OP_BCE_LOGITS: return vae_op_bce_logits(g, in[0], in[1], out);
    case OP_GAUSSIAN_LOGLIK: return vae__op_gaussian(g, in[0], in[1], in[2], n->fattr[0], out);
    case OP_KL_STD_NORMAL: return vae_op_kl_std_normal(g, in[0], in[1], out);
    case OP_SUM: return vae_op_sum(g, in[0], out);
    case OP_MEAN: return vae_op_mean(g, in[0], out);
    case OP_BATCH_MEAN: return vae_op_batch_mean(g, in[0], out);
    case OP_CONV2D:
    case OP_CONV2D_TRANSPOSE:
        return vae__op_conv(g, n->op == OP_CONV2D_TRANSPOSE, in[0], in[1], in[2], n->iattr[0],
                            n->iattr[1], (vae_padding)n->iattr[2], (vae_activation)n->iattr[3], out);
    case OP_RESHAPE: return vae_op_reshape(g, in[0], n->ndim, n->dims, out);
    case OP_MADE_MATMUL:
        return vae_op_made_matmul(g, in[0], in[1], (vae_made_mask)n->iattr[0], n->iattr[1], out);
    case OP_IAF_GATE: return vae__build_iaf_gate(g, in[0], in[1], in[2], n->fattr[0], out);
    case OP_IAF_LOG_GATE: return vae__build_iaf_log_gate(g, in[0], n->fattr[0], out);
    }
    return vae__fail(VAE_ERR_FORMAT, "operation %d cannot be loaded", n->op);
}

static int same_shape(const node *a, const node *b)
{
    if (a->batched != b->batched || a->ndim != b->ndim)
        return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->dims[k] != b->dims[k])
            return 0;
    return 1;
}

/* Parameters are stored as 4 bytes each, so a graph whose parameters would
   not fit in the file is refused before they are allocated. */
static int params_fit(const vae_graph *g, const node *n, size_t file_len)
{
    int64_t size = 1;
    for (int k = 0; k < n->ndim; k++) {
        if (n->dims[k] < 1 || n->dims[k] > (int64_t)(file_len / 4) / size)
            return 0;
        size *= n->dims[k];
    }
    return (uint64_t)(g->n_params + size) * 4 <= file_len;
}

/* Noise nodes are made by the sample operation that follows them. */
static vae_status read_graph(rbuf *r, const char *path, size_t file_len, vae_graph **out)
{
    vae_graph *g;
    uint64_t seed = get_u64(r);
    uint32_t n_roles = get_u32(r), n_nodes;
    int roles[VAE_ROLE_COUNT_];
    stored_node sn;
    vae_status s = VAE_OK;
    /* files from 0.1 have the first 8 roles; the others are optional */
    if (n_roles < 8 || n_roles > VAE_ROLE_COUNT_)
        return vae__fail(VAE_ERR_FORMAT, "%s: %u roles, this libvae knows %d", path, n_roles,
                         VAE_ROLE_COUNT_);
    for (int i = 0; i < VAE_ROLE_COUNT_; i++)
        roles[i] = i < (int)n_roles ? (int)get_u32(r) : -1;
    n_nodes = get_u32(r);
    if (r->short_read || n_nodes > (1u << 20))
        return vae__fail(VAE_ERR_FORMAT, "%s: bad graph header", path);
    VAE_TRY(vae_graph_create(&g, seed));
    g->legacy_names = 1; /* files of 0.2 and before may repeat names */
    for (int id = 0; id < (int)n_nodes && s == VAE_OK; id++) {
        int made;
        if ((s = read_node(r, path, id, &sn)) != VAE_OK)
            break;
        if (sn.n.op == OP_NOISE) {
            if (id + 1 >= (int)n_nodes)
                s = vae__fail(VAE_ERR_FORMAT, "%s: noise node %d has no sample after it", path, id);
            continue;
        }
        if (sn.n.op == OP_PARAM && !params_fit(g, &sn.n, file_len)) {
            s = vae__fail(VAE_ERR_FORMAT, "%s: parameter node %d is larger than the file", path, id);
            break;
        }
        if ((s = replay(g, &sn, &made)) != VAE_OK && s != VAE_ERR_NO_MEMORY) {
            char why[512];
            snprintf(why, sizeof why, "%s", vae_last_error());
            s = vae__fail(VAE_ERR_FORMAT, "%s: node %d (%s) does not fit its inputs: %s", path, id,
                          vae__ops[sn.n.op]->name, why);
        }
        else if (s == VAE_OK && (made != id || !same_shape(&g->nodes[id], &sn.n)))
            s = vae__fail(VAE_ERR_FORMAT, "%s: node %d (%s) does not match its stored shape",
                          path, id, vae__ops[sn.n.op]->name);
    }
    for (int i = 0; s == VAE_OK && i < VAE_ROLE_COUNT_; i++)
        if (roles[i] < -1 || roles[i] >= g->n_nodes)
            s = vae__fail(VAE_ERR_FORMAT, "%s: role %d names node %d", path, i, roles[i]);
        else
            g->roles[i] = roles[i];
    if (s == VAE_OK && g->n_nodes != (int)n_nodes)
        s = vae__fail(VAE_ERR_FORMAT, "%s: graph has %d nodes, header says %u", path, g->n_nodes, n_nodes);
    g->legacy_names = 0;
    if (s != VAE_OK) {
        vae_graph_free(g);
        return s;
    }
    *out = g;
    return VAE_OK;
}

/* The epoch counters; fails on what training could not have left. */
static vae_status read_progress(rbuf *r, const char *path, uint32_t version, train_state *t)
{
    uint64_t steps, images;
    uint32_t epoch = get_u32(r), pos = get_u32(r), batch = version >= 2 ? get_u32(r) : 0;
    steps = get_u64(r);
    t->epoch_objective = get_f64(r);
    t->epoch_nelbo = get_f64(r);
    images = get_u64(r);
    if (r->short_read)
        return vae__fail(VAE_ERR_FORMAT, "%s: the training-state section is truncated", path);
    if (epoch > HISTORY_MAX_EPOCHS || pos > INT32_MAX || batch > INT32_MAX ||
        steps > INT64_MAX || images > INT64_MAX || !isfinite(t->epoch_objective) ||
        !isfinite(t->epoch_nelbo) || (pos == 0) != (images == 0))
        return vae__fail(VAE_ERR_FORMAT, "%s: bad training state (epoch %u, position %u, batch "
                         "%u, %llu steps, %llu images)", path, epoch, pos, batch,
                         (unsigned long long)steps, (unsigned long long)images);
    t->epoch = (int)epoch;
    t->epoch_pos = (int)pos;
    t->batch = (int)batch;
    t->steps = (int64_t)steps;
    t->epoch_images = (int64_t)images;
    return VAE_OK;
}

/* The kind's settings, checked as vae_optimizer_set checks them; settings
   the kind does not have, and any this version does not know, are
   ignored. */
static vae_status read_settings(rbuf *r, const char *path, uint32_t version, vae_optimizer *o)
{
    uint32_t count = version >= 2 ? get_u32(r) : 7; /* format 1: up to the clip norm */
    if (count > 1024)
        return vae__fail(VAE_ERR_FORMAT, "%s: %u optimizer settings", path, count);
    for (uint32_t i = 0; i < count && !r->short_read; i++) {
        double v = get_f64(r);
        if (i >= OPTIMIZER_SETTINGS || !vae__optimizer_has_option(o->kind, (vae_optimizer_option)i))
            continue;
        if (vae__optimizer_check_value(o, (vae_optimizer_option)i, v, path) != VAE_OK)
            return VAE_ERR_FORMAT; /* the message names the setting and its range */
        o->settings[i] = v;
    }
    return VAE_OK;
}

/* A moment array: finite, and not negative where it holds squares. */
static vae_status read_moment(rbuf *r, const char *path, uint32_t version, float *dst, int64_t n,
                              int squares)
{
    if (version >= 2 && get_u64(r) != (uint64_t)n)
        return vae__fail(VAE_ERR_FORMAT, "%s: an optimizer moment does not have one value per "
                         "parameter", path);
    get_floats(r, dst, n);
    for (int64_t i = 0; i < n && !r->short_read; i++)
        if (!isfinite(dst[i]) || (squares && dst[i] < 0.0f))
            return vae__fail(VAE_ERR_FORMAT, "%s: optimizer moment value %lld is %g", path,
                             (long long)i, (double)dst[i]);
    return VAE_OK;
}

static vae_status read_optimizer(rbuf *r, const char *path, uint32_t version, vae_optimizer *o)
{
    uint64_t steps;
    uint32_t moments;
    VAE_TRY(read_settings(r, path, version, o));
    steps = get_u64(r);
    moments = get_u32(r);
    if (steps > INT64_MAX || moments != (o->moment2 ? 2u : 1u))
        return vae__fail(VAE_ERR_FORMAT, "%s: optimizer with %llu steps and %u moment arrays",
                         path, (unsigned long long)steps, moments);
    o->steps = (int64_t)steps;
    /* RMSprop's only moment and Adam's second are running means of squares */
    VAE_TRY(read_moment(r, path, version, o->moment1, o->n, o->kind == VAE_OPTIMIZER_RMSPROP));
    if (o->moment2)
        VAE_TRY(read_moment(r, path, version, o->moment2, o->n, 1));
    if (r->short_read)
        return vae__fail(VAE_ERR_FORMAT, "%s: the training-state section is truncated", path);
    o->maxima_known = 0;
    return VAE_OK;
}

static vae_status read_training(rbuf *r, const char *path, uint32_t version, vae_model *m)
{
    vae_optimizer *o;
    uint32_t kind;
    vae_status s;
    VAE_TRY(read_progress(r, path, version, &m->train));
    kind = get_u32(r);
    if (r->short_read || kind > VAE_OPTIMIZER_ADAM)
        return vae__fail(VAE_ERR_FORMAT, "%s: unknown optimizer kind %u", path, kind);
    VAE_TRY(vae__optimizer_alloc(&o, m, (vae_optimizer_kind)kind));
    if ((s = read_optimizer(r, path, version, o)) != VAE_OK) {
        vae_optimizer_free(o);
        return s;
    }
    vae_optimizer_free(m->saved_optimizer);
    m->saved_optimizer = o;
    return VAE_OK;
}

/* A string of at most `most` bytes, copied into a malloc'ed buffer; *out
   is written on success only (a caller frees what it holds on failure). */
static vae_status get_string(rbuf *r, const char *path, size_t most, char **out)
{
    uint32_t len = get_u32(r);
    const unsigned char *p = len <= most ? take(r, len) : NULL;
    char *text;
    if (!p)
        return vae__fail(VAE_ERR_FORMAT, "%s: a string of %u bytes is too long or truncated",
                         path, len);
    if (memchr(p, '\0', len))
        return vae__fail(VAE_ERR_FORMAT, "%s: a string holds a NUL byte", path);
    if (!(text = vae__alloc((size_t)len + 1)))
        return VAE_ERR_NO_MEMORY;
    memcpy(text, p, len);
    text[len] = '\0';
    *out = text;
    return VAE_OK;
}

static vae_status read_history(rbuf *r, const char *path, history *h)
{
    uint32_t cols = get_u32(r), rows = get_u32(r);
    if (cols > HISTORY_MAX_COLUMNS || rows > HISTORY_MAX_EPOCHS ||
        (uint64_t)cols * rows * 8 > r->len - r->at)
        return vae__fail(VAE_ERR_FORMAT, "%s: a history of %u columns and %u epochs does not "
                         "fit its section", path, cols, rows);
    for (uint32_t c = 0; c < cols; c++) {
        char *name;
        vae_status s;
        VAE_TRY(get_string(r, path, NAME_MAX_BYTES, &name));
        s = vae__history_set(h, 1, name, NAN, path);
        if ((s == VAE_OK && h->n_cols != (int)c + 1) || (s != VAE_OK && s != VAE_ERR_NO_MEMORY))
            s = vae__fail(VAE_ERR_FORMAT, "%s: bad or repeated history column '%s'", path, name);
        free(name);
        VAE_TRY(s);
        VAE_TRY(vae__history_reserve(h, (int)rows));
        get_floats_f64(r, h->cols[c], rows);
    }
    h->n_rows = (int)rows;
    return r->short_read ? vae__fail(VAE_ERR_FORMAT, "%s: the history is truncated", path) : VAE_OK;
}

static vae_status read_metadata(rbuf *r, const char *path, metadata *md)
{
    uint32_t count = get_u32(r);
    if (count > METADATA_MAX_KEYS)
        return vae__fail(VAE_ERR_FORMAT, "%s: %u metadata keys", path, count);
    for (uint32_t i = 0; i < count; i++) {
        char *key = NULL, *value = NULL;
        vae_status s = get_string(r, path, NAME_MAX_BYTES, &key);
        if (s == VAE_OK)
            s = get_string(r, path, METADATA_MAX_VALUE, &value);
        if (s == VAE_OK && (s = vae__metadata_set(md, key, value, strlen(value), path)) != VAE_OK &&
            s != VAE_ERR_NO_MEMORY)
            s = vae__fail(VAE_ERR_FORMAT, "%s: bad metadata key '%s'", path, key);
        if (s == VAE_OK && md->count != (int)i + 1)
            s = vae__fail(VAE_ERR_FORMAT, "%s: metadata key '%s' repeated", path, key);
        free(key);
        free(value);
        VAE_TRY(s);
    }
    return VAE_OK;
}

static vae_status read_term_sums(rbuf *r, const char *path, train_state *t)
{
    uint32_t count = get_u32(r);
    double sums[2] = {0.0, 0.0};
    if (count > 64)
        return vae__fail(VAE_ERR_FORMAT, "%s: %u epoch sums", path, count);
    for (uint32_t i = 0; i < count && !r->short_read; i++) {
        double v = get_f64(r);
        if (i < 2)
            sums[i] = v; /* sums added later are skipped */
    }
    if (r->short_read || !isfinite(sums[0]) || !isfinite(sums[1]))
        return vae__fail(VAE_ERR_FORMAT, "%s: bad epoch sums", path);
    t->epoch_recon = sums[0];
    t->epoch_kl = sums[1];
    return VAE_OK;
}

static vae_status read_frozen(rbuf *r, const char *path, vae_model *m)
{
    uint32_t count = get_u32(r);
    unsigned char *marks = vae__calloc((size_t)m->g->n_nodes, 1);
    vae_status s = marks ? VAE_OK : VAE_ERR_NO_MEMORY;
    if (s == VAE_OK && count > (uint32_t)m->g->n_nodes)
        s = vae__fail(VAE_ERR_FORMAT, "%s: %u frozen parameters", path, count);
    for (uint32_t i = 0; s == VAE_OK && i < count; i++) {
        char *name;
        int id;
        if ((s = get_string(r, path, NAME_MAX_BYTES, &name)) != VAE_OK)
            break;
        id = vae_graph_find(m->g, name);
        if (id < 0 || m->g->nodes[id].op != OP_PARAM)
            s = vae__fail(VAE_ERR_FORMAT, "%s: frozen '%s' is no parameter", path, name);
        else
            marks[id] = 1;
        free(name);
    }
    if (s == VAE_OK)
        s = vae__model_set_frozen(m, marks);
    if (s != VAE_OK)
        free(marks);
    return s;
}

static vae_status read_writer(rbuf *r, const char *path, vae_model *m)
{
    char *version;
    VAE_TRY(get_string(r, path, sizeof m->file_writer - 1, &version));
    if (!vae__valid_name(version, strlen(version))) {
        free(version);
        return vae__fail(VAE_ERR_FORMAT, "%s: a bad version string", path);
    }
    strcpy(m->file_writer, version);
    free(version);
    return VAE_OK;
}

/* Model files above this are refused before anything is allocated. */
#define MAX_MODEL_FILE ((off_t)1 << 36)

static vae_status read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    off_t size;
    if (!f)
        return vae__fail(VAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return vae__fail(VAE_ERR_IO, "%s: not a regular file", path);
    }
    size = st.st_size;
    if (size > MAX_MODEL_FILE) {
        fclose(f);
        return vae__fail(VAE_ERR_FORMAT, "%s: %lld bytes is too large for a model file", path,
                         (long long)size);
    }
    if (!(*data = vae__alloc((size_t)size))) {
        fclose(f);
        return VAE_ERR_NO_MEMORY;
    }
    if (fread(*data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(*data);
        return vae__fail(VAE_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    *len = (size_t)size;
    return VAE_OK;
}

static uint32_t u32_at(const unsigned char *d)
{
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

/* Whether the file ends before the sections its header lists do (a cut
   file) rather than having a byte changed somewhere (a corrupt one). */
static int cut_short(const unsigned char *d, size_t len)
{
    size_t at = 16;
    uint32_t sections = u32_at(d + 12);
    if (len >= 8 && memcmp(d + len - 8, "END!", 4) == 0)
        return 0; /* the trailer is intact: the bytes before it were changed */
    for (uint32_t i = 0; i < sections; i++) {
        uint64_t n;
        if (len - at < 12)
            return 1;
        n = (uint64_t)u32_at(d + at + 4) | (uint64_t)u32_at(d + at + 8) << 32;
        if (n > len - at - 12)
            return 1;
        at += 12 + (size_t)n;
    }
    return len - at < 8;
}

/* Checks the envelope: magic, version, checksum and trailer. */
static vae_status check_envelope(const char *path, const unsigned char *d, size_t len,
                                 uint32_t *version)
{
    if (len < 16 || memcmp(d, MAGIC, 8) != 0)
        return vae__fail(VAE_ERR_FORMAT, "%s: not a libvae model file", path);
    *version = u32_at(d + 8);
    if (*version < 1 || *version > FORMAT_VERSION)
        return vae__fail(VAE_ERR_FORMAT, "%s: model file format %u, this libvae reads 1 to %u "
                         "(a newer libvae wrote it)", path, *version, FORMAT_VERSION);
    if (len < 24 || u32_at(d + len - 4) != (uint32_t)crc32_z(0L, d, len - 4)) {
        if (len < 24 || cut_short(d, len))
            return vae__fail(VAE_ERR_FORMAT, "%s: truncated: the file ends before its last "
                             "section (%zu bytes)", path, len);
        return vae__fail(VAE_ERR_CHECKSUM, "%s: checksum mismatch: the file is corrupt", path);
    }
    if (memcmp(d + len - 8, "END!", 4) != 0)
        return vae__fail(VAE_ERR_FORMAT, "%s: no end marker", path);
    return VAE_OK;
}

static vae_status read_params(rbuf *r, const char *path, vae_graph *g)
{
    if (get_u64(r) != (uint64_t)g->n_params)
        return vae__fail(VAE_ERR_FORMAT, "%s: parameter count does not match the graph", path);
    get_floats(r, g->params, g->n_params);
    for (int64_t i = 0; i < g->n_params && !r->short_read; i++)
        if (!isfinite(g->params[i]))
            return vae__fail(VAE_ERR_FORMAT, "%s: parameter %lld is %g", path, (long long)i,
                             (double)g->params[i]);
    vae__graph_apply_masks(g);
    return VAE_OK;
}

/* The graph section, made into a model (a graph that makes no model is a
   malformed file). */
static vae_status read_model(rbuf *r, const char *path, size_t file_len, vae_model **out)
{
    vae_graph *g = NULL;
    vae_status s;
    VAE_TRY(read_graph(r, path, file_len, &g));
    if ((s = vae_model_create(out, g)) != VAE_OK) {
        vae_graph_free(g);
        if (s != VAE_ERR_NO_MEMORY) {
            char why[512];
            snprintf(why, sizeof why, "%s", vae_last_error());
            s = vae__fail(VAE_ERR_FORMAT, "%s: the graph is not a model: %s", path, why);
        }
    }
    return s;
}

/* One section; *m is NULL until the graph section made the model. */
static vae_status read_section(const char *tag, rbuf *sec, const char *path, size_t file_len,
                               uint32_t version, vae_model **m, int *have_params)
{
    if (memcmp(tag, "GRPH", 4) == 0 && !*m)
        return read_model(sec, path, file_len, m);
    if (!*m)
        return vae__fail(VAE_ERR_FORMAT, "%s: section '%.4s' comes before the graph", path, tag);
    if (memcmp(tag, "PARM", 4) == 0 && !*have_params) {
        *have_params = 1;
        return read_params(sec, path, (*m)->g);
    }
    if (memcmp(tag, "TRAN", 4) == 0 && !(*m)->saved_optimizer)
        return read_training(sec, path, version, *m);
    if (memcmp(tag, "hist", 4) == 0 && (*m)->hist.n_cols == 0)
        return read_history(sec, path, &(*m)->hist);
    if (memcmp(tag, "meta", 4) == 0 && (*m)->meta.count == 0)
        return read_metadata(sec, path, &(*m)->meta);
    if (memcmp(tag, "vers", 4) == 0 && !(*m)->file_writer[0])
        return read_writer(sec, path, *m);
    if (memcmp(tag, "FRZN", 4) == 0 && !(*m)->frozen)
        return read_frozen(sec, path, *m);
    if (memcmp(tag, "tsum", 4) == 0)
        return read_term_sums(sec, path, &(*m)->train);
    if (tag[0] >= 'a' && tag[0] <= 'z') { /* optional, from a newer libvae */
        sec->at = sec->len;
        return VAE_OK;
    }
    return vae__fail(VAE_ERR_FORMAT, "%s: unexpected or repeated section '%.4s' (a newer libvae "
                     "may have written this file)", path, tag);
}

static vae_status parse(const char *path, const unsigned char *d, size_t len, uint32_t version,
                        vae_model **out)
{
    rbuf r = {d, len - 8, 12, 0};
    uint32_t sections = get_u32(&r);
    vae_model *m = NULL;
    vae_status s = VAE_OK;
    int have_params = 0;
    for (uint32_t i = 0; i < sections && s == VAE_OK; i++) {
        const unsigned char *tag = take(&r, 4);
        uint64_t n = get_u64(&r);
        rbuf sec;
        if (!tag || n > r.len - r.at) {
            s = vae__fail(VAE_ERR_FORMAT, "%s: section %u is truncated", path, i);
            break;
        }
        sec = (rbuf){r.data + r.at, (size_t)n, 0, 0};
        r.at += (size_t)n;
        s = read_section((const char *)tag, &sec, path, len, version, &m, &have_params);
        if (s == VAE_OK && (sec.short_read || sec.at != sec.len))
            s = vae__fail(VAE_ERR_FORMAT, "%s: section '%.4s' has the wrong length", path,
                          (const char *)tag);
    }
    if (s == VAE_OK && (!m || !have_params || r.at != r.len))
        s = vae__fail(VAE_ERR_FORMAT, "%s: incomplete model file", path);
    if (s == VAE_OK)
        m->file_format = (int)version;
    if (s != VAE_OK) {
        vae_model_free(m);
        return s;
    }
    *out = m;
    return VAE_OK;
}

VAE_API vae_status vae_model_load(vae_model **out, const char *path)
{
    unsigned char *data = NULL;
    size_t len = 0;
    uint32_t version = 0;
    vae_status s;
    if (!out || !path)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_load: NULL argument");
    VAE_TRY(read_file(path, &data, &len));
    s = check_envelope(path, data, len, &version);
    if (s == VAE_OK)
        s = parse(path, data, len, version, out);
    free(data);
    return s;
}

VAE_API vae_status vae_model_load_from_memory(vae_model **out, const void *data, size_t len)
{
    const char *name = "(model in memory)";
    uint32_t version = 0;
    if (!out || (!data && len > 0))
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_load_from_memory: NULL argument");
    if ((uint64_t)len > (uint64_t)MAX_MODEL_FILE)
        return vae__fail(VAE_ERR_FORMAT, "%s: %zu bytes is too large for a model file", name, len);
    VAE_TRY(check_envelope(name, data, len, &version));
    return parse(name, data, len, version, out);
}

VAE_API int vae_model_has_training_state(const vae_model *m)
{
    return m && m->saved_optimizer != NULL;
}
