/* Tensors: float32 arrays of 1 to 4 dimensions that carry data across the API. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Refuses sizes whose byte count would overflow. */
static vae_status count_elements(int ndim, const int64_t *dims, int64_t *count)
{
    int64_t n = 1;
    if (ndim < 1 || ndim > 4 || !dims)
        return vae__fail(VAE_ERR_ARGUMENT, "tensor: ndim must be 1 to 4 (got %d)", ndim);
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > ((int64_t)1 << 40) / n)
            return vae__fail(VAE_ERR_ARGUMENT, "tensor: dimension %d has bad size %lld", i,
                             (long long)dims[i]);
        n *= dims[i];
    }
    *count = n;
    return VAE_OK;
}

VAE_API vae_status vae_tensor_create(vae_tensor **out, int ndim, const int64_t *dims)
{
    int64_t count = 0;
    vae_tensor *t;
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_tensor_create: out is NULL");
    VAE_TRY(count_elements(ndim, dims, &count));
    t = vae__calloc(1, sizeof *t);
    if (!t)
        return VAE_ERR_NO_MEMORY;
    t->data = vae__alloc_floats(count);
    if (!t->data) {
        free(t);
        return VAE_ERR_NO_MEMORY;
    }
    t->ndim = ndim;
    t->count = count;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    *out = t;
    return VAE_OK;
}

VAE_API vae_status vae_tensor_from_host(vae_tensor **out, int ndim, const int64_t *dims,
                                        const float *data)
{
    vae_tensor *t;
    if (!data || !out)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_tensor_from_host: NULL argument");
    VAE_TRY(vae_tensor_create(&t, ndim, dims));
    memcpy(t->data, data, (size_t)t->count * sizeof(float));
    *out = t;
    return VAE_OK;
}

VAE_API void vae_tensor_free(vae_tensor *t)
{
    if (!t)
        return;
    vae__free_aligned(t->data);
    free(t);
}

VAE_API int vae_tensor_ndim(const vae_tensor *t) { return t ? t->ndim : 0; }

VAE_API int64_t vae_tensor_dim(const vae_tensor *t, int i)
{
    return (t && i >= 0 && i < t->ndim) ? t->dims[i] : -1;
}

VAE_API int64_t vae_tensor_count(const vae_tensor *t) { return t ? t->count : 0; }

VAE_API float *vae_tensor_data(vae_tensor *t) { return t ? t->data : NULL; }

VAE_API vae_status vae_tensor_copy_from_host(vae_tensor *t, const float *src, int64_t count)
{
    if (!t || !src)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_tensor_copy_from_host: NULL argument");
    if (count != t->count)
        return vae__fail(VAE_ERR_SHAPE, "vae_tensor_copy_from_host: %lld elements given, tensor has %lld",
                         (long long)count, (long long)t->count);
    memcpy(t->data, src, (size_t)count * sizeof(float));
    return VAE_OK;
}

VAE_API vae_status vae_tensor_copy_to_host(const vae_tensor *t, float *dst, int64_t count)
{
    if (!t || !dst)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_tensor_copy_to_host: NULL argument");
    if (count != t->count)
        return vae__fail(VAE_ERR_SHAPE, "vae_tensor_copy_to_host: room for %lld elements, tensor has %lld",
                         (long long)count, (long long)t->count);
    memcpy(dst, t->data, (size_t)count * sizeof(float));
    return VAE_OK;
}

vae_status vae__tensor_check_rows(const vae_tensor *t, const char *what, int64_t row_size,
                                  int64_t *rows)
{
    if (!t)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: tensor is NULL", what);
    if (t->ndim < 2 && row_size != 1)
        return vae__fail(VAE_ERR_SHAPE, "%s: a 1-D tensor of %lld elements; pass rows: a tensor "
                         "(n, %lld)", what, (long long)t->count, (long long)row_size);
    if (t->count != t->dims[0] * row_size)
        return vae__fail(VAE_ERR_SHAPE, "%s: a tensor of %lld rows of %lld elements; the model "
                         "needs rows of %lld", what, (long long)t->dims[0],
                         (long long)(t->count / t->dims[0]), (long long)row_size);
    *rows = t->dims[0];
    return VAE_OK;
}
