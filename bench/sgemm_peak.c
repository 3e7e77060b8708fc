/*
 * sgemm_peak.c - how fast can cblas_sgemm go on this machine, and what does
 * that imply for one training step of the 784-400-20 MNIST VAE?
 *
 * Measures (all row-major cblas_sgemm, single precision):
 *   (a) a large square GEMM, 1024^3, on 1 and on 2 BLAS threads (peak GFLOP/s)
 *   (b) exactly the GEMMs of one VAE training step at batch 128, on 1 and on 2
 *       BLAS threads:
 *         layers  enc 784->400, mu 400->20, logvar 400->20, dec1 20->400,
 *                 dec2 400->784
 *         forward Y  = X W              for every layer            (5 GEMMs)
 *         dW         = X^T dY           for every layer            (5 GEMMs)
 *         dX         = dY W^T           for every layer but enc    (4 GEMMs;
 *                      the mu and logvar dX are accumulated, beta = 1)
 *       W is stored [in x out] (so forward is NN, dW is TN, dX is NT); with
 *       -l oi the PyTorch layout W[out x in] is used instead (forward NT,
 *       dW = dY^T X is TN with the operands swapped, dX = dY W is NN).
 *   (c) the same per-step GEMM set at batch 64 on 1 thread, and the
 *       data-parallel case: two pthreads run concurrently, each doing the
 *       batch-64 set on its own buffers with BLAS set to 1 thread, with a
 *       barrier after every step (as a real data-parallel trainer would need
 *       for its gradient reduction); also reported free-running (no barrier).
 *
 * From these it prints the "GEMM-only images/s ceiling" of one training step
 * at batch 128: 128 / (seconds per step).  The ceiling ignores everything that
 * is not a GEMM (activations, loss, Adam, bias gradients, data movement).
 *
 * The same source builds against OpenBLAS and BLIS: the thread-count setters
 * and the identification functions are looked up with dlsym(RTLD_DEFAULT, ..).
 *
 * Build (see bench/build_sgemm_peak.sh):
 *   cc -O2 -std=c11 bench/sgemm_peak.c $(pkg-config --cflags --libs openblas) \
 *      -lpthread -ldl -o sgemm_peak_openblas
 *   cc -O2 -std=c11 -I/usr/include/x86_64-linux-gnu/blis-openmp bench/sgemm_peak.c \
 *      -L/usr/lib/x86_64-linux-gnu/blis-openmp \
 *      -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -fopenmp \
 *      -lpthread -ldl -o sgemm_peak_blis
 *
 * Usage: sgemm_peak [-v] [-l io|oi] [-t seconds_per_sample] [-s samples]
 *   -v   also print GFLOP/s of every single GEMM of the batch-128 step (1 thr)
 *   Each number is the median over `samples` timing samples of about
 *   `seconds_per_sample` each (defaults 7 and 0.15 s), after a warm-up.
 *
 * Environment worth setting (read by the libraries at load/first call):
 *   OPENBLAS_CORETYPE=SkylakeX   BLIS_ARCH_TYPE=0 (skx)   BLIS_ARCH_DEBUG=1
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- utils -- */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return (n & 1) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static float *alloc_rand(size_t n, uint32_t seed)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof(float) + 64) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f; /* [-0.05,0.05) */
    }
    return p;
}

/* ------------------------------------------------ BLAS-agnostic controls -- */

typedef void (*set_threads_int_fn)(int);
typedef void (*set_threads_dim_fn)(long); /* BLIS dim_t is int64 */
typedef char *(*get_str_fn)(void);
typedef int (*get_int_fn)(void);
typedef int (*arch_query_fn)(void);
typedef char *(*arch_string_fn)(int);

static set_threads_int_fn p_openblas_set_num_threads;
static get_str_fn p_openblas_get_corename, p_openblas_get_config;
static get_int_fn p_openblas_get_num_threads;
static set_threads_dim_fn p_bli_thread_set_num_threads;
static get_str_fn p_bli_info_get_version_str;
static arch_query_fn p_bli_arch_query_id;
static arch_string_fn p_bli_arch_string;

static void lookup_blas_symbols(void)
{
    p_openblas_set_num_threads =
        (set_threads_int_fn)dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    p_openblas_get_corename =
        (get_str_fn)dlsym(RTLD_DEFAULT, "openblas_get_corename");
    p_openblas_get_config = (get_str_fn)dlsym(RTLD_DEFAULT, "openblas_get_config");
    p_openblas_get_num_threads =
        (get_int_fn)dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    p_bli_thread_set_num_threads =
        (set_threads_dim_fn)dlsym(RTLD_DEFAULT, "bli_thread_set_num_threads");
    p_bli_info_get_version_str =
        (get_str_fn)dlsym(RTLD_DEFAULT, "bli_info_get_version_str");
    p_bli_arch_query_id = (arch_query_fn)dlsym(RTLD_DEFAULT, "bli_arch_query_id");
    p_bli_arch_string = (arch_string_fn)dlsym(RTLD_DEFAULT, "bli_arch_string");
}

static void blas_set_threads(int n)
{
    if (p_openblas_set_num_threads)
        p_openblas_set_num_threads(n);
    if (p_bli_thread_set_num_threads)
        p_bli_thread_set_num_threads((long)n);
}

/* ------------------------------------------------------------- GEMM list -- */

typedef struct {
    enum CBLAS_TRANSPOSE ta, tb;
    int m, n, k;
    const float *a;
    int lda;
    const float *b;
    int ldb;
    float beta;
    float *c;
    int ldc;
    char what[48];
} gemm_t;

static void run_gemm(const gemm_t *g)
{
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, g->m, g->n, g->k, 1.0f, g->a,
                g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
}

static double gemm_flops(const gemm_t *g)
{
    return 2.0 * g->m * g->n * g->k;
}

#define NLAYER 5
static const int L_IN[NLAYER] = {784, 400, 400, 20, 400};
static const int L_OUT[NLAYER] = {400, 20, 20, 400, 784};
static const char *L_NAME[NLAYER] = {"enc", "mu", "logvar", "dec1", "dec2"};
/* which activation buffer feeds each layer: 0=x 1=h 2=z 3=h2 */
static const int L_SRC[NLAYER] = {0, 1, 1, 2, 3};
static const int ACT_W[4] = {784, 400, 20, 400};

typedef struct {
    int batch;
    int ngemm;
    gemm_t g[16];
    float *act[4];   /* layer inputs x, h, z, h2           [batch x ACT_W]  */
    float *dact[4];  /* their gradients (dact[0] unused)                    */
    float *y[NLAYER];  /* layer outputs                     [batch x out]   */
    float *dy[NLAYER]; /* output gradients                  [batch x out]   */
    float *w[NLAYER];  /* weights  [in x out] (io) or [out x in] (oi)       */
    float *dw[NLAYER];
    double flops;
} step_t;

static int g_layout_oi = 0; /* 0: W[in x out]; 1: W[out x in] (PyTorch) */

static void step_init(step_t *s, int batch, uint32_t seed)
{
    memset(s, 0, sizeof *s);
    s->batch = batch;
    for (int a = 0; a < 4; a++) {
        s->act[a] = alloc_rand((size_t)batch * ACT_W[a], seed + 1 + a);
        s->dact[a] = alloc_rand((size_t)batch * ACT_W[a], seed + 11 + a);
    }
    for (int l = 0; l < NLAYER; l++) {
        s->y[l] = alloc_rand((size_t)batch * L_OUT[l], seed + 21 + l);
        s->dy[l] = alloc_rand((size_t)batch * L_OUT[l], seed + 31 + l);
        s->w[l] = alloc_rand((size_t)L_IN[l] * L_OUT[l], seed + 41 + l);
        s->dw[l] = alloc_rand((size_t)L_IN[l] * L_OUT[l], seed + 51 + l);
    }
    const int B = batch;
    int n = 0;
    /* forward: Y[B x out] = X[B x in] W */
    for (int l = 0; l < NLAYER; l++) {
        gemm_t *g = &s->g[n++];
        const int in = L_IN[l], out = L_OUT[l];
        g->m = B; g->n = out; g->k = in;
        g->a = s->act[L_SRC[l]]; g->lda = in; g->ta = CblasNoTrans;
        g->b = s->w[l];
        if (!g_layout_oi) { g->tb = CblasNoTrans; g->ldb = out; }
        else              { g->tb = CblasTrans;   g->ldb = in; }
        g->c = s->y[l]; g->ldc = out; g->beta = 0.0f;
        snprintf(g->what, sizeof g->what, "fwd  %-6s Y=XW%s", L_NAME[l],
                 g_layout_oi ? "^T" : "");
    }
    /* backward, in reverse layer order: dW then dX */
    for (int l = NLAYER - 1; l >= 0; l--) {
        const int in = L_IN[l], out = L_OUT[l];
        gemm_t *g = &s->g[n++];
        if (!g_layout_oi) {
            /* dW[in x out] = X^T[in x B] dY[B x out] */
            g->ta = CblasTrans; g->tb = CblasNoTrans;
            g->m = in; g->n = out; g->k = B;
            g->a = s->act[L_SRC[l]]; g->lda = in;
            g->b = s->dy[l]; g->ldb = out;
            g->c = s->dw[l]; g->ldc = out;
            snprintf(g->what, sizeof g->what, "bwd  %-6s dW=X^T dY", L_NAME[l]);
        } else {
            /* dW[out x in] = dY^T[out x B] X[B x in] */
            g->ta = CblasTrans; g->tb = CblasNoTrans;
            g->m = out; g->n = in; g->k = B;
            g->a = s->dy[l]; g->lda = out;
            g->b = s->act[L_SRC[l]]; g->ldb = in;
            g->c = s->dw[l]; g->ldc = in;
            snprintf(g->what, sizeof g->what, "bwd  %-6s dW=dY^T X", L_NAME[l]);
        }
        g->beta = 0.0f;
        if (l == 0)
            continue; /* no dX for the first layer */
        g = &s->g[n++];
        /* dX[B x in] = dY[B x out] W^T (io) or dY W (oi) */
        g->ta = CblasNoTrans;
        g->m = B; g->n = in; g->k = out;
        g->a = s->dy[l]; g->lda = out;
        g->b = s->w[l];
        if (!g_layout_oi) { g->tb = CblasTrans;   g->ldb = out; }
        else              { g->tb = CblasNoTrans; g->ldb = in; }
        g->c = s->dact[L_SRC[l]]; g->ldc = in;
        g->beta = (l == 1) ? 1.0f : 0.0f; /* mu's dX accumulates onto logvar's */
        snprintf(g->what, sizeof g->what, "bwd  %-6s dX=dY W%s", L_NAME[l],
                 g_layout_oi ? "" : "^T");
    }
    s->ngemm = n;
    s->flops = 0;
    for (int i = 0; i < n; i++)
        s->flops += gemm_flops(&s->g[i]);
}

static void step_run(const step_t *s)
{
    for (int i = 0; i < s->ngemm; i++)
        run_gemm(&s->g[i]);
}

/* ------------------------------------------------------------- timing ---- */

static int g_samples = 7;
static double g_sample_sec = 0.15;

typedef void (*work_fn)(void *);

/* Median seconds per call of fn(arg). */
static double time_fn(work_fn fn, void *arg)
{
    /* warm-up and calibration */
    double t0 = now_sec();
    long calls = 0;
    do {
        fn(arg);
        calls++;
    } while (now_sec() - t0 < 0.1 || calls < 3);
    double per = (now_sec() - t0) / (double)calls;
    long n = (long)(g_sample_sec / per);
    if (n < 1)
        n = 1;
    double v[64];
    int ns = g_samples > 64 ? 64 : g_samples;
    for (int r = 0; r < ns; r++) {
        double a = now_sec();
        for (long i = 0; i < n; i++)
            fn(arg);
        v[r] = (now_sec() - a) / (double)n;
    }
    return median(v, ns);
}

static void work_step(void *arg) { step_run((const step_t *)arg); }
static void work_gemm(void *arg) { run_gemm((const gemm_t *)arg); }

/* ------------------------------------------------ data-parallel (2 thr) -- */

#define DP_THREADS 2

typedef struct {
    step_t *step;
    pthread_barrier_t *bar;
    int use_step_barrier;
    long iters;
    int tid;
    double elapsed; /* set by thread 0 */
} dp_arg_t;

static void *dp_thread(void *p)
{
    dp_arg_t *a = (dp_arg_t *)p;
    /* BLAS thread count is global (set to 1 by the caller before starting) */
    pthread_barrier_wait(a->bar);
    double t0 = now_sec();
    for (long i = 0; i < a->iters; i++) {
        step_run(a->step);
        if (a->use_step_barrier)
            pthread_barrier_wait(a->bar);
    }
    pthread_barrier_wait(a->bar); /* both done */
    if (a->tid == 0)
        a->elapsed = now_sec() - t0;
    return NULL;
}

/* Seconds per (concurrent) step of both threads: median over samples. */
static double time_dp(step_t *steps, int use_step_barrier)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, DP_THREADS);
    dp_arg_t args[DP_THREADS];
    pthread_t th[DP_THREADS];

    long iters = 20; /* warm-up + calibration run */
    double per = 0;
    double v[64];
    int ns = g_samples > 64 ? 64 : g_samples;
    for (int r = -1; r < ns; r++) {
        for (int t = 0; t < DP_THREADS; t++) {
            args[t] = (dp_arg_t){&steps[t], &bar, use_step_barrier, iters, t, 0};
            pthread_create(&th[t], NULL, dp_thread, &args[t]);
        }
        for (int t = 0; t < DP_THREADS; t++)
            pthread_join(th[t], NULL);
        per = args[0].elapsed / (double)iters;
        if (r < 0) {
            iters = (long)(g_sample_sec / per);
            if (iters < 2)
                iters = 2;
        } else {
            v[r] = per;
        }
    }
    pthread_barrier_destroy(&bar);
    return median(v, ns);
}

/* --------------------------------------------------------------- main ---- */

int main(int argc, char **argv)
{
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "-l") && i + 1 < argc)
            g_layout_oi = !strcmp(argv[++i], "oi");
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            g_samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            g_sample_sec = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-v] [-l io|oi] [-s samples] [-t sec]\n",
                    argv[0]);
            return 2;
        }
    }
    if (g_samples < 1)
        g_samples = 1;

    lookup_blas_symbols();

    /* First BLAS call happens below; print identification afterwards (BLIS
     * selects its kernels lazily at first use). */
    {
        float a = 1, b = 1, c = 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a,
                    1, &b, 1, 0.0f, &c, 1);
    }
    static const char *const envs[] = {"OPENBLAS_CORETYPE", "BLIS_ARCH_TYPE",
                                       "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
                                       "OMP_NUM_THREADS"};
    printf("# env");
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        const char *e = getenv(envs[i]);
        printf(" %s=%s", envs[i], e ? e : "(unset)");
    }
    printf("\n");
    if (p_openblas_get_corename)
        printf("# openblas_get_corename: %s\n", p_openblas_get_corename());
    if (p_openblas_get_config)
        printf("# openblas_get_config: %s\n", p_openblas_get_config());
    if (p_openblas_get_num_threads)
        printf("# openblas default threads: %d\n", p_openblas_get_num_threads());
    if (p_bli_info_get_version_str)
        printf("# blis version: %s\n", p_bli_info_get_version_str());
    if (p_bli_arch_query_id && p_bli_arch_string)
        printf("# blis arch: %s\n", p_bli_arch_string(p_bli_arch_query_id()));
    if (!p_openblas_set_num_threads && !p_bli_thread_set_num_threads)
        printf("# WARNING: no thread-count setter found; thread counts are "
               "whatever the library defaults to\n");
    printf("# weight layout: %s; %d samples x %.2f s per number (median)\n",
           g_layout_oi ? "W[out x in] (PyTorch)" : "W[in x out]", g_samples,
           g_sample_sec);

    /* (a) large square */
    double sq_gflops[3] = {0, 0, 0};
    {
        const int N = 1024;
        float *A = alloc_rand((size_t)N * N, 1), *Bm = alloc_rand((size_t)N * N, 2),
              *C = alloc_rand((size_t)N * N, 3);
        gemm_t g = {CblasNoTrans, CblasNoTrans, N, N, N, A, N, Bm, N, 0.0f, C, N,
                    "square"};
        for (int th = 1; th <= 2; th++) {
            blas_set_threads(th);
            double t = time_fn(work_gemm, &g);
            printf("square_1024      threads=%d  %8.1f GFLOP/s  (%.3f ms)\n", th,
                   gemm_flops(&g) / t * 1e-9, t * 1e3);
            sq_gflops[th] = gemm_flops(&g) / t * 1e-9;
        }
        free(A); free(Bm); free(C);
    }

    /* (b) batch-128 training step, 1 and 2 BLAS threads */
    step_t s128;
    step_init(&s128, 128, 100);
    double t128[3] = {0, 0, 0};
    for (int th = 1; th <= 2; th++) {
        blas_set_threads(th);
        t128[th] = time_fn(work_step, &s128);
        printf("step_b128        threads=%d  %8.1f GFLOP/s  (%.3f ms/step, %d GEMMs, "
               "%.1f MFLOP)\n",
               th, s128.flops / t128[th] * 1e-9, t128[th] * 1e3, s128.ngemm,
               s128.flops * 1e-6);
    }
    if (verbose) {
        blas_set_threads(1);
        printf("# per-GEMM, batch 128, 1 thread (row-major; m n k)\n");
        for (int i = 0; i < s128.ngemm; i++) {
            gemm_t *g = &s128.g[i];
            double t = time_fn(work_gemm, g);
            printf("#   %-26s %c%c m=%4d n=%4d k=%4d  %8.1f GFLOP/s  %7.1f us\n",
                   g->what, g->ta == CblasTrans ? 'T' : 'N',
                   g->tb == CblasTrans ? 'T' : 'N', g->m, g->n, g->k,
                   gemm_flops(g) / t * 1e-9, t * 1e6);
        }
    }

    /* (c) batch-64 step, 1 thread; then two concurrent single-threaded copies */
    step_t s64[DP_THREADS];
    for (int t = 0; t < DP_THREADS; t++)
        step_init(&s64[t], 64, 200 + 100 * (uint32_t)t);
    blas_set_threads(1);
    double t64 = time_fn(work_step, &s64[0]);
    printf("step_b64         threads=1  %8.1f GFLOP/s  (%.3f ms/step, %.1f MFLOP)\n",
           s64[0].flops / t64 * 1e-9, t64 * 1e3, s64[0].flops * 1e-6);
    double tdp = time_dp(s64, 1);
    double tdp_free = time_dp(s64, 0);
    double dp_flops = DP_THREADS * s64[0].flops;
    printf("dataparallel_2x64 (2 pthreads x 1 BLAS thread, barrier/step) %8.1f "
           "GFLOP/s total  (%.3f ms/step)\n",
           dp_flops / tdp * 1e-9, tdp * 1e3);
    printf("dataparallel_2x64 (free-running, no per-step barrier)        %8.1f "
           "GFLOP/s total  (%.3f ms/step)\n",
           dp_flops / tdp_free * 1e-9, tdp_free * 1e3);

    printf("GEMM-only images/s ceiling, batch-128 step:\n");
    printf("  ceiling_1thread         %9.0f images/s\n", 128.0 / t128[1]);
    printf("  ceiling_2blas_threads   %9.0f images/s\n", 128.0 / t128[2]);
    printf("  ceiling_dataparallel    %9.0f images/s  (free-running: %.0f; "
           "2x ideal from b64 1-thread: %.0f)\n",
           128.0 / tdp, 128.0 / tdp_free, 2.0 * 64.0 / t64);

    /* machine-readable summary: "result <key> <value>" */
    printf("result gflops_square1024_1t %.1f\n", sq_gflops[1]);
    printf("result gflops_square1024_2t %.1f\n", sq_gflops[2]);
    printf("result gflops_step128_1t %.1f\n", s128.flops / t128[1] * 1e-9);
    printf("result gflops_step128_2t %.1f\n", s128.flops / t128[2] * 1e-9);
    printf("result gflops_step64_1t %.1f\n", s64[0].flops / t64 * 1e-9);
    printf("result gflops_dp2x64 %.1f\n", dp_flops / tdp * 1e-9);
    printf("result gflops_dp2x64_free %.1f\n", dp_flops / tdp_free * 1e-9);
    printf("result ips_ceiling_1t %.0f\n", 128.0 / t128[1]);
    printf("result ips_ceiling_2t %.0f\n", 128.0 / t128[2]);
    printf("result ips_ceiling_dp %.0f\n", 128.0 / tdp);
    printf("result ips_ceiling_dp_free %.0f\n", 128.0 / tdp_free);
    printf("result ips_ceiling_dp_ideal %.0f\n", 2.0 * 64.0 / t64);
    return 0;
}
