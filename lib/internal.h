/* Internal declarations shared by the library's files.  Nothing here is
   exported: the build hides every symbol that is not marked VAE_API. */
#ifndef VAE_INTERNAL_H
#define VAE_INTERNAL_H

#include "vae.h"

#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define VAE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VAE_PRINTF(a, b)
#endif

/* ---- errors and logging (error.c) ---- */
/* Records the message for vae_last_error() and returns status. */
vae_status vae__fail(vae_status status, const char *fmt, ...) VAE_PRINTF(2, 3);
/* The static analysers see one file at a time: shown that a failure returns
   its status (never VAE_OK), they stop following paths on which it returned
   success.  clang's defines __clang_analyzer__, the GCC -fanalyzer stage of
   scripts/test.sh VAE_ANALYZER; other builds call the function as is. */
#if defined(__clang_analyzer__) || defined(VAE_ANALYZER)
static inline vae_status vae__failed(vae_status status, int recorded)
{
    (void)recorded;
    return status;
}
#define vae__fail(status, ...) vae__failed((status), (vae__fail((status), __VA_ARGS__), 0))
#endif
void vae__log(vae_log_level level, const char *fmt, ...) VAE_PRINTF(2, 3);
/* ---- allocation and failure injection (alloc.c) ---- */
/* malloc/calloc/realloc that record VAE_ERR_NO_MEMORY on failure (realloc
   leaves the old block to its owner).  Free with free(). */
void *vae__alloc(size_t bytes);
void *vae__calloc(size_t count, size_t size);
void *vae__realloc(void *old, size_t bytes);
/* 64-byte aligned, zeroed; free with vae__free_aligned. */
float *vae__alloc_floats(int64_t count);
void vae__free_aligned(void *p);
char *vae__strdup(const char *s);
/* For tests: from now on the nth allocation fails (0: none), and with
   persistent every later one too; calls counts them. */
void vae__fault_alloc(long nth, int persistent);
long vae__fault_alloc_calls(void);
/* The return address of the last allocation made to fail: which call site
   it was (the tests count them). */
void *vae__fault_alloc_site(void);
/* The system calls of a save, for the same purpose: vae__io_fails(call)
   gives the errno a test asked for at that call's nth use, or 0. */
typedef enum {
    VAE__IO_OPEN,
    VAE__IO_WRITE,
    VAE__IO_FSYNC,
    VAE__IO_CLOSE,
    VAE__IO_RENAME,
    VAE__IO_CALLS
} vae__io_call;
void vae__fault_io(vae__io_call call, long nth, int err);
long vae__fault_io_calls(vae__io_call call);
int vae__io_fails(vae__io_call call);

/* Element-wise loops are compiled for AVX-512, AVX2 and baseline x86-64,
   picked at load time from what the CPU (or valgrind) reports. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(__SANITIZE_THREAD__) /* ThreadSanitizer cannot run ifunc resolvers */
#define VAE_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VAE_HOT
#endif

#define VAE_TRY(expr)                     \
    do {                                  \
        vae_status vae_try_s_ = (expr);   \
        if (vae_try_s_ != VAE_OK)         \
            return vae_try_s_;            \
    } while (0)

/* ---- tensors (tensor.c) ---- */
struct vae_tensor {
    int ndim;
    int64_t dims[4];
    int64_t count;
    float *data;
};
/* Checks that t is (rows, row_size) in total: dims[0] rows and the rest
   multiplying to row_size. */
vae_status vae__tensor_check_rows(const vae_tensor *t, const char *what, int64_t row_size,
                                  int64_t *rows);

/* ---- random numbers (rng.c): xoshiro256**, seeded through splitmix64 ---- */
typedef struct vae_rng {
    uint64_t s[4];
} vae_rng;
void vae__rng_seed(vae_rng *r, uint64_t seed);
/* A stream for (seed, a, b): independent streams for steps, epochs, ... */
void vae__rng_seed3(vae_rng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t vae__rng_u64(vae_rng *r);
/* Uniform in [0, 1). */
double vae__rng_uniform(vae_rng *r);
/* Fills out with N(0, 1) draws (Box-Muller in double). */
void vae__rng_normal(vae_rng *r, float *out, int64_t n);
/* Normals start .. start+n-1 of what vae__rng_normal would draw from r,
   leaving r as it was: a part of a batch draws what the whole would. */
void vae__rng_normal_at(const vae_rng *r, float *out, int64_t start, int64_t n);
/* Advances r past n normals (a pair's worth for an odd n, as
   vae__rng_normal does). */
void vae__rng_skip_normals(vae_rng *r, int64_t n);
/* A uniformly random permutation of 0..n-1 (Fisher-Yates). */
void vae__rng_permutation(vae_rng *r, int64_t *perm, int64_t n);

/* ---- data sets (data.c) ---- */
struct vae_dataset {
    int64_t count;
    int ndim;
    int dims[VAE_MAX_ROW_DIMS];
    int64_t row_size;
    uint8_t *bytes;   /* count * row_size, or NULL when values is used */
    float *values;    /* count * row_size, or NULL when bytes is used */
    float scale;      /* value = byte * scale */
    int32_t *labels;  /* count, or NULL */
    float lo, hi;     /* the smallest and largest value (NaN if any is NaN) */
    const int64_t *map; /* a view's row i is stored row map[i]; NULL: row i */
    int64_t *own_map; /* the map when this data set allocated it */
    int is_view;      /* bytes, values and labels are borrowed */
};
/* Where row i of ds is stored. */
static inline int64_t vae__dataset_row(const vae_dataset *ds, int64_t i)
{
    return ds->map ? ds->map[i] : i;
}
/* Validates the shape, allocates the struct and copies the labels (may be
   NULL); the caller attaches bytes or values. */
vae_status vae__dataset_new(const char *what, int64_t n, int ndim, const int *dims,
                            const int32_t *labels, vae_dataset **out);
/* Sets lo and hi from the rows, once they are attached. */
void vae__dataset_find_range(vae_dataset *ds);
/* Fails unless every value lies in [0, 1] (a Bernoulli likelihood's
   targets); count values of data or, if data is NULL, of ds. */
vae_status vae__check_unit_range(const vae_dataset *ds, const float *data, int64_t count,
                                 const char *what);
/* Converts rows idx[0..n-1] (or first..first+n-1 when idx is NULL) to
   floats in out (n * row_size). */
void vae__dataset_rows(const vae_dataset *ds, const int64_t *idx, int64_t first, int64_t n,
                       float *out);

/* ---- BLAS glue (blas.c) ---- */
/* Prepares the BLAS for use from our worker threads (one thread per call;
   BLIS architecture selection).  Idempotent. */
void vae__blas_prepare(void);

/* ---- checksums (model_file.c uses zlib's crc32) ---- */

#endif
