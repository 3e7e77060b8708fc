/* Data sets: rows of bytes (scaled on the way out) or floats, with optional
   labels, built from host memory or from MNIST-style idx files. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Same element limit as tensors, so any data set row range fits a tensor. */
#define MAX_ELEMENTS ((int64_t)1 << 40)
/* An idx header claiming more than this is rejected as absurd. */
#define IDX_MAX_BYTES ((int64_t)1 << 34)
/* A gzip file's payload buffer starts at most this big (less than zlib's
   own buffers) and doubles as data arrive, so that it never holds more
   than twice what was decompressed, whatever the header claims. */
#define IDX_FIRST_ALLOC ((size_t)1 << 16)
/* gzread takes an unsigned length and returns an int. */
#define IDX_READ_CHUNK ((size_t)1 << 30)

static int too_many(int64_t count, size_t elem_size)
{
    return count > MAX_ELEMENTS || (uint64_t)count > SIZE_MAX / elem_size;
}

/* Validates the shape and allocates the struct with labels copied; the
   caller attaches bytes or values. */
vae_status vae__dataset_new(const char *what, int64_t n, int ndim, const int *dims,
                           const int32_t *labels, vae_dataset **out)
{
    int64_t row_size = 1;
    vae_dataset *ds = NULL;
    if (n < 1)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: row count must be positive (got %lld)", what,
                         (long long)n);
    if (ndim < 1 || ndim > VAE_MAX_ROW_DIMS || !dims)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: per-row ndim must be 1 to %d (got %d)", what,
                         VAE_MAX_ROW_DIMS, ndim);
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1)
            return vae__fail(VAE_ERR_ARGUMENT, "%s: row dimension %d has bad size %d", what, i,
                             dims[i]);
        if (too_many(row_size * dims[i], sizeof(float)))
            return vae__fail(VAE_ERR_ARGUMENT, "%s: row size overflows at dimension %d", what, i);
        row_size *= dims[i];
    }
    if (n > MAX_ELEMENTS / row_size || too_many(n * row_size, sizeof(float)))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: %lld rows of %lld elements are too many", what,
                         (long long)n, (long long)row_size);
    ds = vae__calloc(1, sizeof *ds);
    if (!ds)
        return VAE_ERR_NO_MEMORY;
    ds->count = n;
    ds->ndim = ndim;
    memcpy(ds->dims, dims, (size_t)ndim * sizeof *dims);
    ds->row_size = row_size;
    ds->scale = 1.0f;
    for (int64_t i = 0; labels && i < n; i++)
        if (labels[i] < 0) {
            free(ds);
            return vae__fail(VAE_ERR_ARGUMENT, "%s: label %lld is negative (%d); labels are "
                             ">= 0, and -1 means none", what, (long long)i, (int)labels[i]);
        }
    if (labels) {
        ds->labels = vae__alloc((size_t)n * sizeof *labels);
        if (!ds->labels) {
            free(ds);
            return VAE_ERR_NO_MEMORY;
        }
        memcpy(ds->labels, labels, (size_t)n * sizeof *labels);
    }
    *out = ds;
    return VAE_OK;
}

void vae__dataset_find_range(vae_dataset *ds)
{
    int64_t rs = ds->row_size;
    uint8_t blo = 255, bhi = 0;
    ds->lo = INFINITY;
    ds->hi = -INFINITY;
    for (int64_t r = 0; r < ds->count; r++) {
        int64_t at = vae__dataset_row(ds, r) * rs;
        for (int64_t j = 0; ds->bytes && j < rs; j++) {
            blo = ds->bytes[at + j] < blo ? ds->bytes[at + j] : blo;
            bhi = ds->bytes[at + j] > bhi ? ds->bytes[at + j] : bhi;
        }
        for (int64_t j = 0; ds->values && j < rs; j++) {
            float v = ds->values[at + j];
            if (isnan(v)) {
                ds->lo = ds->hi = NAN;
                return;
            }
            ds->lo = v < ds->lo ? v : ds->lo;
            ds->hi = v > ds->hi ? v : ds->hi;
        }
    }
    if (ds->bytes) {
        ds->lo = fminf(blo * ds->scale, bhi * ds->scale);
        ds->hi = fmaxf(blo * ds->scale, bhi * ds->scale);
    }
}

/* A data set of n rows that borrows ds's storage, its rows picked by map
   (taken over, may be NULL) or starting at row first of ds. */
static vae_status make_view(const vae_dataset *ds, int64_t first, int64_t n, int64_t *map,
                            vae_dataset **out)
{
    vae_dataset *v = vae__calloc(1, sizeof *v);
    if (!v) {
        free(map);
        return VAE_ERR_NO_MEMORY;
    }
    *v = *ds;
    v->is_view = 1;
    v->count = n;
    v->own_map = map;
    v->map = map ? map : ds->map ? ds->map + first : NULL;
    if (!map && !ds->map) { /* a plain range: the storage from row first on */
        v->bytes = ds->bytes ? ds->bytes + first * ds->row_size : NULL;
        v->values = ds->values ? ds->values + first * ds->row_size : NULL;
        v->labels = ds->labels ? ds->labels + first : NULL;
    }
    vae__dataset_find_range(v);
    *out = v;
    return VAE_OK;
}

VAE_API vae_status vae_dataset_view(vae_dataset **out, const vae_dataset *ds, int64_t first,
                                    int64_t count)
{
    if (!out || !ds)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_view: NULL argument");
    if (first < 0 || count < 1 || first > ds->count - count)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_view: rows %lld to %lld are not in the "
                         "%lld rows of the data set", (long long)first,
                         (long long)(first + count - 1), (long long)ds->count);
    return make_view(ds, first, count, NULL, out);
}

VAE_API vae_status vae_dataset_split(const vae_dataset *ds, double valid, uint64_t seed,
                                     vae_dataset **train, vae_dataset **valid_out)
{
    const char *what = "vae_dataset_split";
    int64_t n_valid, *order;
    vae_rng rng;
    vae_status s;
    if (!ds || !train || !valid_out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: NULL argument", what);
    n_valid = valid < 1.0 ? (int64_t)llround(valid * (double)ds->count) : (int64_t)valid;
    if (!(valid > 0.0) || (valid >= 1.0 && valid != floor(valid)) || n_valid < 1 ||
        n_valid >= ds->count)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: %g (a fraction in (0, 1) or a count) leaves no "
                         "rows on one side of %lld", what, valid, (long long)ds->count);
    if (!(order = vae__alloc((size_t)ds->count * sizeof *order)))
        return VAE_ERR_NO_MEMORY;
    vae__rng_seed3(&rng, seed, 0x5e11, 0);
    vae__rng_permutation(&rng, order, ds->count);
    for (int64_t i = 0; ds->map && i < ds->count; i++)
        order[i] = ds->map[order[i]]; /* a view's rows, in its storage */
    {
        int64_t *vmap = vae__alloc((size_t)n_valid * sizeof *vmap);
        vae_dataset *t = NULL, *v = NULL;
        if (!vmap) {
            free(order);
            return VAE_ERR_NO_MEMORY;
        }
        memcpy(vmap, order, (size_t)n_valid * sizeof *vmap);
        memmove(order, order + n_valid, (size_t)(ds->count - n_valid) * sizeof *order);
        if ((s = make_view(ds, 0, n_valid, vmap, &v)) != VAE_OK) {
            free(order);
            return s;
        }
        if ((s = make_view(ds, 0, ds->count - n_valid, order, &t)) != VAE_OK) {
            vae_dataset_free(v);
            return s;
        }
        *train = t;
        *valid_out = v;
    }
    return VAE_OK;
}

vae_status vae__check_unit_range(const vae_dataset *ds, const float *data, int64_t count,
                                 const char *what)
{
    float bad = 0.0f;
    int found = 0;
    if (ds && (!(ds->lo >= 0.0f) || !(ds->hi <= 1.0f))) {
        bad = ds->lo >= 0.0f ? ds->hi : ds->lo;
        found = 1;
    }
    for (int64_t i = 0; !ds && !found && i < count; i++)
        if (!(data[i] >= 0.0f && data[i] <= 1.0f)) {
            bad = data[i];
            found = 1;
        }
    if (!found)
        return VAE_OK;
    return vae__fail(VAE_ERR_ARGUMENT, "%s: the model's Bernoulli likelihood needs values in "
                     "[0, 1], and the %s holds %g (scale the data to [0, 1], or use a Gaussian "
                     "likelihood)", what, ds ? "data set" : "batch", (double)bad);
}

VAE_API vae_status vae_dataset_from_u8(vae_dataset **out, int64_t n, int ndim, const int *dims,
                                       const uint8_t *pixels, const int32_t *labels,
                                       float scale)
{
    vae_dataset *ds = NULL;
    if (!out || !pixels)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_from_u8: NULL argument");
    if (!isfinite(scale))
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_from_u8: scale is not finite");
    VAE_TRY(vae__dataset_new("vae_dataset_from_u8", n, ndim, dims, labels, &ds));
    ds->scale = scale;
    ds->bytes = vae__alloc((size_t)(n * ds->row_size));
    if (!ds->bytes) {
        vae_dataset_free(ds);
        return VAE_ERR_NO_MEMORY;
    }
    memcpy(ds->bytes, pixels, (size_t)(n * ds->row_size));
    vae__dataset_find_range(ds);
    *out = ds;
    return VAE_OK;
}

VAE_API vae_status vae_dataset_from_f32(vae_dataset **out, int64_t n, int ndim, const int *dims,
                                        const float *values, const int32_t *labels)
{
    vae_dataset *ds = NULL;
    if (!out || !values)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_from_f32: NULL argument");
    VAE_TRY(vae__dataset_new("vae_dataset_from_f32", n, ndim, dims, labels, &ds));
    ds->values = vae__alloc_floats(n * ds->row_size);
    if (!ds->values) {
        vae_dataset_free(ds);
        return VAE_ERR_NO_MEMORY;
    }
    memcpy(ds->values, values, (size_t)(n * ds->row_size) * sizeof(float));
    vae__dataset_find_range(ds);
    *out = ds;
    return VAE_OK;
}

/* ---- idx files ---- */

typedef struct idx_file {
    const char *path;
    gzFile gz;
    int64_t file_size; /* of a regular file, from fstat; -1 for a pipe */
    int size_checked; /* a plain file whose size is what its header says */
    int ndim;         /* including the leading count */
    int64_t dims[4];  /* dims[0] is the number of images or labels */
    int64_t row_size; /* product of dims[1..] (1 for labels) */
    uint8_t *data;    /* dims[0] * row_size bytes once read */
} idx_file;

/* Turns a failed gzread into a status: an OS error or undecodable data. */
static vae_status idx_read_error(const idx_file *f)
{
    int err, saved_errno = errno;
    const char *msg = gzerror(f->gz, &err);
    size_t skip = strlen(f->path);
    if (err == Z_ERRNO)
        return vae__fail(VAE_ERR_IO, "%s: read error: %s", f->path, strerror(saved_errno));
    if (strncmp(msg, f->path, skip) == 0 && strncmp(msg + skip, ": ", 2) == 0)
        msg += skip + 2; /* zlib already prefixes "path: " */
    return vae__fail(VAE_ERR_FORMAT, "%s: corrupt gzip data (%s)", f->path, msg);
}

/* Reads up to n bytes; *got < n means the file ended first. */
static vae_status idx_read_bytes(idx_file *f, void *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_READ_CHUNK ? n - *got : IDX_READ_CHUNK;
        int r = gzread(f->gz, (char *)buf + *got, (unsigned)want);
        if (r < 0)
            return idx_read_error(f);
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return VAE_OK;
}

/* "60000 images of 28x28" or "60000 labels", for messages. */
static void idx_describe(const idx_file *f, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%lld %s", (long long)f->dims[0],
                     f->ndim == 1 ? "labels" : "images of ");
    for (int i = 1; i < f->ndim && n > 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, i > 1 ? "x%lld" : "%lld",
                      (long long)f->dims[i]);
}

static vae_status idx_header(idx_file *f, int labels)
{
    uint8_t head[4 + 4 * 4];
    size_t got, dims_bytes;
    int64_t total = 1;
    VAE_TRY(idx_read_bytes(f, head, 4, &got));
    if (got < 4)
        return vae__fail(VAE_ERR_FORMAT, "%s: truncated header: file ends after %zu bytes",
                         f->path, got);
    if (head[0] != 0 || head[1] != 0)
        return vae__fail(VAE_ERR_FORMAT, "%s: not an idx file (magic bytes %02x %02x %02x %02x)",
                         f->path, head[0], head[1], head[2], head[3]);
    if (head[2] != 0x08)
        return vae__fail(VAE_ERR_FORMAT,
                         "%s: idx data type 0x%02x is not supported (only 0x08, unsigned byte)",
                         f->path, head[2]);
    f->ndim = head[3];
    if (labels ? f->ndim != 1 : (f->ndim < 2 || f->ndim > 4))
        return vae__fail(VAE_ERR_FORMAT, "%s: %d dimensions, but %s files need %s", f->path,
                         f->ndim, labels ? "label" : "image", labels ? "1" : "2 to 4");
    dims_bytes = 4 * (size_t)f->ndim;
    VAE_TRY(idx_read_bytes(f, head + 4, dims_bytes, &got));
    if (got < dims_bytes)
        return vae__fail(VAE_ERR_FORMAT,
                         "%s: truncated header: file ends after %zu of its %zu header bytes",
                         f->path, 4 + got, 4 + dims_bytes);
    for (int i = 0; i < f->ndim; i++) {
        const uint8_t *p = head + 4 + 4 * i;
        int64_t d = (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | p[2] << 8 | p[3];
        if (d == 0)
            return vae__fail(VAE_ERR_FORMAT, "%s: dimension %d is zero", f->path, i);
        /* Row dims must fit an int for vae_dataset_row_dims. */
        if (d > IDX_MAX_BYTES / total || (i > 0 && d > INT_MAX))
            return vae__fail(VAE_ERR_FORMAT,
                             "%s: oversized: dimension %d of %lld makes more than 2^34 bytes",
                             f->path, i, (long long)d);
        f->dims[i] = d;
        total *= d;
    }
    f->row_size = total / f->dims[0];
    return VAE_OK;
}

/* A plain regular file holds its payload as it is: its size says, before
   anything is allocated, whether the header's claim is true.  A gzip
   file (or a pipe) is checked as its data arrive, in idx_payload. */
static vae_status idx_check_size(idx_file *f)
{
    int64_t want = f->dims[0] * f->row_size, have;
    char what[96];
    if (f->file_size < 0 || !gzdirect(f->gz))
        return VAE_OK;
    have = f->file_size - 4 - 4 * (int64_t)f->ndim;
    f->size_checked = have == want;
    if (have == want)
        return VAE_OK;
    idx_describe(f, what, sizeof what);
    if (have < want)
        return vae__fail(VAE_ERR_FORMAT,
                         "%s: truncated: header says %s but file ends after %lld bytes of %s",
                         f->path, what, (long long)have, f->ndim == 1 ? "labels" : "pixels");
    return vae__fail(VAE_ERR_FORMAT, "%s: longer than its header says (%s)", f->path, what);
}

/* Grows the buffer only as data arrive: the claimed size of a gz file
   cannot be checked before reading it (a plain file's was, and is read
   into one buffer of its size). */
static vae_status idx_payload(idx_file *f)
{
    size_t want = (size_t)(f->dims[0] * f->row_size), have = 0, cap = 0, got;
    char what[96];
    uint8_t extra;
    while (have < want) {
        if (have == cap) {
            size_t next = cap ? 2 * cap : f->size_checked ? want : IDX_FIRST_ALLOC;
            uint8_t *p = vae__realloc(f->data, next < want ? next : want);
            if (!p)
                return vae__fail(VAE_ERR_NO_MEMORY, "%s: out of memory reading %zu bytes",
                                 f->path, want);
            f->data = p;
            cap = next < want ? next : want;
        }
        VAE_TRY(idx_read_bytes(f, f->data + have, cap - have, &got));
        have += got;
        if (have < cap) {
            idx_describe(f, what, sizeof what);
            return vae__fail(VAE_ERR_FORMAT,
                             "%s: truncated: header says %s but file ends after %zu bytes of %s",
                             f->path, what, have, f->ndim == 1 ? "labels" : "pixels");
        }
    }
    VAE_TRY(idx_read_bytes(f, &extra, 1, &got));
    if (got) {
        idx_describe(f, what, sizeof what);
        return vae__fail(VAE_ERR_FORMAT, "%s: longer than its header says (%s)", f->path, what);
    }
    return VAE_OK;
}

/* Opens path for gzread (which reads plain files as they are), noting
   its size if it is a regular file. */
static vae_status idx_open(idx_file *f, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    f->path = path;
    if (fd < 0)
        return vae__fail(VAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    f->file_size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return vae__fail(VAE_ERR_NO_MEMORY, "%s: out of memory opening", path);
    }
    /* a larger buffer reads MNIST 7% faster; a small file keeps zlib's
       8 KiB (384 KiB of buffers for a file of a few bytes would be most
       of what loading it costs) */
    if (f->file_size < 0 || f->file_size >= (1 << 17))
        gzbuffer(f->gz, 1 << 17);
    return VAE_OK;
}

/* Reads a whole idx file into f; images, when given, are those the labels
   in f must match in number, checked before the labels are read.  On
   failure nothing stays allocated. */
static vae_status idx_read(idx_file *f, const char *path, const idx_file *images)
{
    vae_status s;
    VAE_TRY(idx_open(f, path));
    s = idx_header(f, images != NULL);
    if (s == VAE_OK && images && f->dims[0] != images->dims[0])
        s = vae__fail(VAE_ERR_FORMAT, "%s: has %lld labels but %s has %lld images", path,
                      (long long)f->dims[0], images->path, (long long)images->dims[0]);
    if (s == VAE_OK)
        s = idx_check_size(f);
    if (s == VAE_OK)
        s = idx_payload(f);
    gzclose(f->gz);
    f->gz = NULL;
    if (s != VAE_OK) {
        free(f->data);
        f->data = NULL;
    }
    return s;
}

/* Takes the pixels from img; copies the labels from lab (if read). */
static vae_status idx_to_dataset(idx_file *img, const idx_file *lab, vae_dataset **out)
{
    int dims[VAE_MAX_ROW_DIMS];
    vae_dataset *ds = NULL;
    for (int i = 1; i < img->ndim; i++)
        dims[i - 1] = (int)img->dims[i];
    VAE_TRY(vae__dataset_new(img->path, img->dims[0], img->ndim - 1, dims, NULL, &ds));
    ds->bytes = img->data;
    img->data = NULL;
    ds->scale = 1.0f / 255.0f;
    vae__dataset_find_range(ds);
    if (lab->data) {
        ds->labels = vae__alloc((size_t)ds->count * sizeof *ds->labels);
        if (!ds->labels) {
            vae_dataset_free(ds);
            return VAE_ERR_NO_MEMORY;
        }
        for (int64_t i = 0; i < ds->count; i++)
            ds->labels[i] = lab->data[i];
    }
    *out = ds;
    return VAE_OK;
}

VAE_API vae_status vae_dataset_load_idx(vae_dataset **out, const char *images_path,
                                        const char *labels_path)
{
    idx_file img = {0}, lab = {0};
    vae_status s;
    if (!out || !images_path)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_load_idx: NULL argument");
    s = idx_read(&img, images_path, NULL);
    if (s == VAE_OK && labels_path)
        s = idx_read(&lab, labels_path, &img);
    if (s == VAE_OK)
        s = idx_to_dataset(&img, &lab, out);
    free(img.data);
    free(lab.data);
    return s;
}

/* ---- access ---- */

VAE_API void vae_dataset_free(vae_dataset *ds)
{
    if (!ds)
        return;
    if (!ds->is_view) {
        free(ds->bytes);
        vae__free_aligned(ds->values);
        free(ds->labels);
    }
    free(ds->own_map);
    free(ds);
}

VAE_API int64_t vae_dataset_count(const vae_dataset *ds) { return ds ? ds->count : 0; }

VAE_API int64_t vae_dataset_row_size(const vae_dataset *ds) { return ds ? ds->row_size : 0; }

VAE_API int vae_dataset_row_dims(const vae_dataset *ds, int *dims)
{
    if (!ds)
        return 0;
    if (dims)
        memcpy(dims, ds->dims, (size_t)ds->ndim * sizeof *dims);
    return ds->ndim;
}

VAE_API int vae_dataset_has_labels(const vae_dataset *ds) { return ds && ds->labels; }

VAE_API int32_t vae_dataset_label(const vae_dataset *ds, int64_t i)
{
    if (!ds || !ds->labels || i < 0 || i >= ds->count)
        return -1;
    return ds->labels[vae__dataset_row(ds, i)];
}

VAE_API vae_status vae_dataset_truncate(vae_dataset *ds, int64_t n)
{
    if (!ds)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_truncate: data set is NULL");
    if (n < 1 || n > ds->count)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_truncate: %lld rows asked, must be 1 to %lld",
                         (long long)n, (long long)ds->count);
    /* The tail stays allocated: shrinking would buy little and could fail. */
    ds->count = n;
    vae__dataset_find_range(ds); /* of the rows that remain */
    return VAE_OK;
}

VAE_API vae_status vae_dataset_get(const vae_dataset *ds, int64_t first, vae_tensor *out)
{
    int64_t rows;
    if (!ds || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_get: NULL argument");
    VAE_TRY(vae__tensor_check_rows(out, "vae_dataset_get", ds->row_size, &rows));
    if (first < 0 || first > ds->count - rows)
        return vae__fail(VAE_ERR_ARGUMENT,
                         "vae_dataset_get: %lld rows from row %lld do not fit in %lld rows",
                         (long long)rows, (long long)first, (long long)ds->count);
    vae__dataset_rows(ds, NULL, first, rows, out->data);
    return VAE_OK;
}

/* Kept branch-free so the compiler vectorizes it. */
VAE_HOT static void bytes_to_floats(const uint8_t *restrict src, size_t n, float scale,
                            float *restrict dst)
{
    for (size_t j = 0; j < n; j++)
        dst[j] = (float)src[j] * scale;
}

void vae__dataset_rows(const vae_dataset *ds, const int64_t *idx, int64_t first, int64_t n,
                       float *out)
{
    size_t rs = (size_t)ds->row_size;
    for (int64_t i = 0; i < n; i++, out += rs) {
        size_t at = (size_t)vae__dataset_row(ds, idx ? idx[i] : first + i) * rs;
        if (ds->values)
            memcpy(out, ds->values + at, rs * sizeof *out);
        else
            bytes_to_floats(ds->bytes + at, rs, ds->scale, out);
    }
}
