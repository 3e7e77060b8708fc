/* What a model carries besides its network: the per-epoch history of
   training (columns of numbers by name) and the host's metadata (strings
   by key).  Both are saved in model files, so a resumed run knows what
   came before it. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vae__valid_name(const char *name, size_t len)
{
    if (len < 1 || len > NAME_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] < 0x21 || name[i] > 0x7e)
            return 0;
    return 1;
}

static int find_column(const history *h, const char *name)
{
    for (int c = 0; c < h->n_cols; c++)
        if (strcmp(h->names[c], name) == 0)
            return c;
    return -1;
}

static void fill_nan(double *from, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        from[i] = NAN;
}

static vae_status add_column(history *h, const char *name)
{
    char **names = vae__realloc(h->names, (size_t)(h->n_cols + 1) * sizeof *names);
    double **cols;
    if (names)
        h->names = names;
    cols = names ? vae__realloc(h->cols, (size_t)(h->n_cols + 1) * sizeof *cols) : NULL;
    if (cols)
        h->cols = cols;
    if (!names || !cols || !(h->names[h->n_cols] = vae__strdup(name)))
        return vae__fail(VAE_ERR_NO_MEMORY, "out of memory for the training history");
    if (!(h->cols[h->n_cols] = vae__alloc((size_t)(h->cap_rows ? h->cap_rows : 1) * sizeof(double)))) {
        free(h->names[h->n_cols]);
        return vae__fail(VAE_ERR_NO_MEMORY, "out of memory for the training history");
    }
    fill_nan(h->cols[h->n_cols], h->cap_rows);
    h->n_cols++;
    return VAE_OK;
}

vae_status vae__history_reserve(history *h, int epochs)
{
    int cap = h->cap_rows ? h->cap_rows : 16;
    if (epochs <= h->cap_rows)
        return VAE_OK;
    while (cap < epochs)
        cap *= 2;
    for (int c = 0; c < h->n_cols; c++) {
        double *col = vae__realloc(h->cols[c], (size_t)cap * sizeof *col);
        if (!col)
            return vae__fail(VAE_ERR_NO_MEMORY, "out of memory for the training history");
        fill_nan(col + h->cap_rows, cap - h->cap_rows);
        h->cols[c] = col;
    }
    h->cap_rows = cap;
    return VAE_OK;
}

vae_status vae__history_prepare(history *h, int epoch, const char *const *columns, int n)
{
    VAE_TRY(vae__history_reserve(h, epoch));
    for (int i = 0; i < n; i++) {
        if (find_column(h, columns[i]) >= 0)
            continue;
        if (h->n_cols == HISTORY_MAX_COLUMNS)
            return vae__fail(VAE_ERR_STATE, "the history has %d columns, the most it holds, and "
                             "none is '%s'", HISTORY_MAX_COLUMNS, columns[i]);
        VAE_TRY(add_column(h, columns[i]));
    }
    return VAE_OK;
}

vae_status vae__history_set(history *h, int epoch, const char *column, double value,
                            const char *what)
{
    int c;
    if (!column || !vae__valid_name(column, strlen(column)))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: a column name is 1 to %d printable characters "
                         "without spaces", what, NAME_MAX_BYTES);
    if (epoch < 1 || epoch > HISTORY_MAX_EPOCHS)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: epoch %d is not in 1..%d", what, epoch,
                         HISTORY_MAX_EPOCHS);
    if ((c = find_column(h, column)) < 0 && h->n_cols == HISTORY_MAX_COLUMNS)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the history has %d columns already, the most "
                         "it can hold", what, HISTORY_MAX_COLUMNS);
    VAE_TRY(vae__history_reserve(h, epoch));
    if (c < 0) {
        VAE_TRY(add_column(h, column));
        c = h->n_cols - 1;
    }
    h->cols[c][epoch - 1] = value;
    if (epoch > h->n_rows)
        h->n_rows = epoch;
    return VAE_OK;
}

void vae__history_free(history *h)
{
    for (int c = 0; c < h->n_cols; c++) {
        free(h->names[c]);
        free(h->cols[c]);
    }
    free(h->names);
    free(h->cols);
    memset(h, 0, sizeof *h);
}

VAE_API vae_status vae_model_history_set(vae_model *m, int epoch, const char *column, double value)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_history_set: model is NULL");
    return vae__history_set(&m->hist, epoch, column, value, "vae_model_history_set");
}

VAE_API vae_status vae_model_history_clear(vae_model *m)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_history_clear: model is NULL");
    VAE_TRY(vae__model_check_writable(m, "vae_model_history_clear"));
    vae__history_free(&m->hist);
    return VAE_OK;
}

VAE_API double vae_model_history_get(const vae_model *m, int epoch, const char *column)
{
    int c;
    if (!m || !column || epoch < 1 || epoch > m->hist.n_rows ||
        (c = find_column(&m->hist, column)) < 0)
        return NAN;
    return m->hist.cols[c][epoch - 1];
}

VAE_API int vae_model_history_epochs(const vae_model *m) { return m ? m->hist.n_rows : 0; }
VAE_API int vae_model_history_columns(const vae_model *m) { return m ? m->hist.n_cols : 0; }

VAE_API const char *vae_model_history_column(const vae_model *m, int i)
{
    return m && i >= 0 && i < m->hist.n_cols ? m->hist.names[i] : NULL;
}

/* ---- metadata ---- */

static int find_key(const metadata *md, const char *key)
{
    for (int i = 0; i < md->count; i++)
        if (strcmp(md->keys[i], key) == 0)
            return i;
    return -1;
}

static void remove_key(metadata *md, int i)
{
    free(md->keys[i]);
    free(md->values[i]);
    md->count--;
    md->keys[i] = md->keys[md->count];
    md->values[i] = md->values[md->count];
}

/* value_len bytes of value (no NUL among them); value NULL removes the key. */
vae_status vae__metadata_set(metadata *md, const char *key, const char *value, size_t value_len,
                             const char *what)
{
    int i;
    char *copy, **keys, **values;
    if (!key || !vae__valid_name(key, strlen(key)))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: a key is 1 to %d printable characters without "
                         "spaces", what, NAME_MAX_BYTES);
    if (value && (value_len > METADATA_MAX_VALUE || memchr(value, 0, value_len)))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the value of '%s' has %zu bytes (at most %d, "
                         "no NUL)", what, key, value_len, METADATA_MAX_VALUE);
    i = find_key(md, key);
    if (!value) {
        if (i >= 0)
            remove_key(md, i);
        return VAE_OK;
    }
    if (i < 0 && md->count == METADATA_MAX_KEYS)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: the model has %d keys already, the most it can "
                         "hold", what, METADATA_MAX_KEYS);
    if (!(copy = vae__alloc(value_len + 1)))
        return VAE_ERR_NO_MEMORY;
    memcpy(copy, value, value_len);
    copy[value_len] = '\0';
    if (i >= 0) {
        free(md->values[i]);
        md->values[i] = copy;
        return VAE_OK;
    }
    keys = vae__realloc(md->keys, (size_t)(md->count + 1) * sizeof *keys);
    if (keys)
        md->keys = keys;
    values = keys ? vae__realloc(md->values, (size_t)(md->count + 1) * sizeof *values) : NULL;
    if (values)
        md->values = values;
    if (!keys || !values || !(md->keys[md->count] = vae__strdup(key))) {
        free(copy);
        return vae__fail(VAE_ERR_NO_MEMORY, "%s: out of memory", what);
    }
    md->values[md->count++] = copy;
    return VAE_OK;
}

void vae__metadata_free(metadata *md)
{
    for (int i = 0; i < md->count; i++) {
        free(md->keys[i]);
        free(md->values[i]);
    }
    free(md->keys);
    free(md->values);
    memset(md, 0, sizeof *md);
}

VAE_API vae_status vae_model_set_metadata(vae_model *m, const char *key, const char *value)
{
    if (!m)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_model_set_metadata: model is NULL");
    return vae__metadata_set(&m->meta, key, value, value ? strlen(value) : 0,
                             "vae_model_set_metadata");
}

VAE_API const char *vae_model_metadata(const vae_model *m, const char *key)
{
    int i;
    if (!m || !key || (i = find_key(&m->meta, key)) < 0)
        return NULL;
    return m->meta.values[i];
}
