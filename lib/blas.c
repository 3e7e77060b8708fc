/* What the BLAS is and how to make it fast.  The library links one CBLAS
   (OpenBLAS or BLIS); their extra functions are looked up at run time so the
   same code serves both. */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char *(*name_fn)(void);
typedef void (*set_threads_fn)(int);
typedef void (*bli_set_threads_fn)(long);

static pthread_once_t prepare_once = PTHREAD_ONCE_INIT;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;
static char info[256];
static char hint[64];

static int cpu_has_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

static int is_blis(void) { return dlsym(RTLD_DEFAULT, "bli_thread_set_num_threads") != NULL; }

/* Our workers each run one BLAS call at a time: a multi-threaded BLAS
   underneath would oversubscribe the cores.  BLIS picks its kernels at its
   first call, so BLIS_ARCH_TYPE can still be set here; 0 is its AVX-512
   "skx" configuration.  CPUID says whether the CPU (or valgrind, which hides
   AVX-512) can run it. */
static void prepare(void)
{
    set_threads_fn openblas_threads = (set_threads_fn)dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    bli_set_threads_fn blis_threads = (bli_set_threads_fn)dlsym(RTLD_DEFAULT, "bli_thread_set_num_threads");
    if (blis_threads && !getenv("BLIS_ARCH_TYPE") && cpu_has_avx512())
        setenv("BLIS_ARCH_TYPE", "0", 0);
    if (openblas_threads)
        openblas_threads(1);
    if (blis_threads)
        blis_threads(1);
}

void vae__blas_prepare(void) { pthread_once(&prepare_once, prepare); }

static int is_avx512_core(const char *core)
{
    return strcmp(core, "SkylakeX") == 0 || strcmp(core, "Cooperlake") == 0 ||
           strcmp(core, "SapphireRapids") == 0;
}

static void describe(void)
{
    name_fn openblas_core = (name_fn)dlsym(RTLD_DEFAULT, "openblas_get_corename");
    name_fn openblas_config = (name_fn)dlsym(RTLD_DEFAULT, "openblas_get_config");
    vae__blas_prepare();
    if (openblas_core) {
        const char *core = openblas_core();
        char version[32] = "";
        if (openblas_config)
            sscanf(openblas_config(), "OpenBLAS %31s", version);
        snprintf(info, sizeof info, "OpenBLAS %s, %s kernels", version, core);
        if (cpu_has_avx512() && !is_avx512_core(core) && !getenv("OPENBLAS_CORETYPE"))
            snprintf(hint, sizeof hint, "OPENBLAS_CORETYPE=SkylakeX");
    } else if (is_blis()) {
        const char *arch = getenv("BLIS_ARCH_TYPE");
        snprintf(info, sizeof info, "BLIS, BLIS_ARCH_TYPE=%s%s", arch ? arch : "unset",
                 arch && strcmp(arch, "0") == 0 ? " (skx, AVX-512 kernels)" : " (detected kernels)");
    } else {
        snprintf(info, sizeof info, "CBLAS (unknown implementation)");
    }
}

VAE_API const char *vae_blas_info(void)
{
    pthread_once(&info_once, describe);
    return info;
}

VAE_API const char *vae_blas_env_hint(void)
{
    pthread_once(&info_once, describe);
    return hint[0] ? hint : NULL;
}
