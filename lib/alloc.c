/* The library's allocator, and the points where tests inject failures.
   Every allocation of the library goes through here, so that a test can
   make the Nth one fail (sqlite's way of testing out-of-memory paths) and
   check that each caller gives VAE_ERR_NO_MEMORY and leaks nothing.  The
   same goes for the system calls that save a model file.  Tests reach the
   hidden vae__fault_* functions through the static library; the counters
   cost one relaxed atomic add per allocation, and the hot paths allocate
   nothing. */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long alloc_calls;  /* allocations since the last vae__fault_alloc */
static atomic_long alloc_fail_at; /* the one that fails (0: none) */
static atomic_int alloc_fail_after; /* and every one after it too */
static void *_Atomic alloc_failed_from; /* the caller of the last one made to fail */

void vae__fault_alloc(long nth, int persistent)
{
    atomic_store(&alloc_calls, 0);
    atomic_store(&alloc_fail_after, persistent);
    atomic_store(&alloc_fail_at, nth);
}

long vae__fault_alloc_calls(void) { return atomic_load(&alloc_calls); }

void *vae__fault_alloc_site(void) { return atomic_load(&alloc_failed_from); }

static int allocation_fails(void *caller)
{
    long n = atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
    if (at <= 0 || n < at)
        return 0;
    if (n != at && !atomic_load_explicit(&alloc_fail_after, memory_order_relaxed))
        return 0;
    atomic_store(&alloc_failed_from, caller);
    return 1;
}

/* Counted at the caller of the wrapper: one call site, one address. */
#define INJECTED_FAILURE() allocation_fails(__builtin_return_address(0))

void *vae__alloc(size_t bytes)
{
    void *p = INJECTED_FAILURE() ? NULL : malloc(bytes ? bytes : 1);
    if (!p)
        vae__fail(VAE_ERR_NO_MEMORY, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *vae__calloc(size_t count, size_t size)
{
    void *p = INJECTED_FAILURE() ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p)
        vae__fail(VAE_ERR_NO_MEMORY, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *vae__realloc(void *old, size_t bytes)
{
    void *p = INJECTED_FAILURE() ? NULL : realloc(old, bytes ? bytes : 1);
    if (!p)
        vae__fail(VAE_ERR_NO_MEMORY, "out of memory allocating %zu bytes", bytes);
    return p;
}

float *vae__alloc_floats(int64_t count)
{
    size_t bytes = (size_t)(count > 0 ? count : 1) * sizeof(float);
    void *p = NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    if (count < 0 || INJECTED_FAILURE() || posix_memalign(&p, 64, bytes) != 0) {
        vae__fail(VAE_ERR_NO_MEMORY, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void vae__free_aligned(void *p) { free(p); }

char *vae__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = INJECTED_FAILURE() ? NULL : malloc(n);
    if (!d)
        vae__fail(VAE_ERR_NO_MEMORY, "out of memory allocating %zu bytes", n);
    else
        memcpy(d, s, n);
    return d;
}

/* ---- the system calls of a save ---- */
static atomic_long io_calls[VAE__IO_CALLS];
static atomic_long io_fail_at[VAE__IO_CALLS];
static atomic_int io_fail_errno;

void vae__fault_io(vae__io_call call, long nth, int err)
{
    for (int c = 0; c < VAE__IO_CALLS; c++) {
        atomic_store(&io_calls[c], 0);
        atomic_store(&io_fail_at[c], c == (int)call ? nth : 0);
    }
    atomic_store(&io_fail_errno, err);
}

long vae__fault_io_calls(vae__io_call call) { return atomic_load(&io_calls[call]); }

int vae__io_fails(vae__io_call call)
{
    long n = atomic_fetch_add_explicit(&io_calls[call], 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&io_fail_at[call], memory_order_relaxed);
    return at > 0 && n == at ? atomic_load(&io_fail_errno) : 0;
}
