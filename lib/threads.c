/* A small pool of worker threads for data-parallel steps.  Steps come back
   to back during training, so workers spin briefly on a generation counter
   before they sleep: waking a sleeping thread costs tens of microseconds,
   a real share of a one-millisecond step. */
#include "model.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
/* Flush denormals to zero while we compute: Adam's moments of weights that
   see only zero pixels decay into the denormal range, and every operation
   on a denormal costs about a hundred cycles (training ran a third slower
   after the first epoch).  The caller's mode is restored afterwards. */
#define FAST_FP_ON() _mm_setcsr(_mm_getcsr() | 0x8040)
static unsigned fast_fp_enter(void)
{
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
    return old;
}
static void fast_fp_leave(unsigned old) { _mm_setcsr(old); }
#else
#define CPU_RELAX() ((void)0)
#define FAST_FP_ON() ((void)0)
static unsigned fast_fp_enter(void) { return 0; }
static void fast_fp_leave(unsigned old) { (void)old; }
#endif

enum { SPIN_LIMIT = 200000 };

struct vae_pool {
    int threads;
    int started; /* workers running: threads - 1 once created */
    pthread_t *ids;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_ulong generation;
    atomic_int pending;
    atomic_int sleepers;
    atomic_int stop;
    void (*fn)(void *, int);
    void *arg;
};

typedef struct start_arg {
    vae_pool *pool;
    int index;
} start_arg;

static unsigned long wait_for_work(vae_pool *p, unsigned long seen)
{
    unsigned long g;
    for (int i = 0; i < SPIN_LIMIT; i++) {
        if ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) != seen)
            return g;
        CPU_RELAX();
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->generation)) == seen)
        pthread_cond_wait(&p->wake, &p->lock);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->lock);
    return g;
}

static void *worker_main(void *arg)
{
    start_arg *s = arg;
    vae_pool *p = s->pool;
    int index = s->index;
    unsigned long seen = 0;
    free(s);
    FAST_FP_ON();
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load(&p->stop))
            break;
        p->fn(p->arg, index);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

static void signal_generation(vae_pool *p)
{
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
}

static void stop_workers(vae_pool *p)
{
    atomic_store(&p->stop, 1);
    /* Take the lock so that no worker is between its check and its wait. */
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->ids[i], NULL);
    p->started = 0;
}

vae_status vae__pool_create(vae_pool **out, int threads)
{
    vae_pool *p = vae__calloc(1, sizeof *p);
    if (!p)
        return VAE_ERR_NO_MEMORY;
    p->threads = threads;
    p->ids = vae__calloc((size_t)threads, sizeof *p->ids);
    if (!p->ids) {
        free(p);
        return VAE_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    while (p->started < threads - 1) {
        start_arg *s = vae__alloc(sizeof *s);
        if (!s) {
            vae__pool_free(p);
            return VAE_ERR_NO_MEMORY;
        }
        s->pool = p;
        s->index = p->started + 1;
        if (pthread_create(&p->ids[p->started], NULL, worker_main, s) != 0) {
            int failed = p->started + 1;
            free(s);
            vae__pool_free(p);
            return vae__fail(VAE_ERR_THREAD, "could not start worker thread %d of %d", failed,
                             threads - 1);
        }
        p->started++;
    }
    *out = p;
    return VAE_OK;
}

void vae__pool_run(vae_pool *p, void (*fn)(void *, int), void *arg)
{
    unsigned fp_mode = fast_fp_enter();
    if (!p) {
        fn(arg, 0);
        fast_fp_leave(fp_mode);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->threads - 1, memory_order_relaxed);
    signal_generation(p);
    fn(arg, 0);
    /* Spin: the workers finish within microseconds of us when the cores are
       ours; yield now and then in case they are not (a loaded machine). */
    for (unsigned spins = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        CPU_RELAX();
        if (spins % 1024 == 0)
            sched_yield();
    }
    fast_fp_leave(fp_mode);
}

int vae__pool_threads(const vae_pool *p) { return p ? p->threads : 1; }

void vae__pool_free(vae_pool *p)
{
    if (!p)
        return;
    stop_workers(p);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->ids);
    free(p);
}
