/* Restart the program with a BLAS-tuning environment variable.
 *
 * OpenBLAS reads OPENBLAS_CORETYPE only while it is being loaded, which
 * happens before main() runs; some builds do not recognise newer AVX-512
 * CPUs and fall back to slower kernels.  Setting the variable from main is
 * too late, so the only way for a program to choose the kernels itself is
 * to set it and start over: execv keeps the process id, the arguments and
 * the open files, and the new image loads OpenBLAS with the variable set.
 */
#include "excommon.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set in the restarted process so that it never restarts again, even if
   the variable did not stick or the library still gives a hint. */
#define GUARD "VAE_REEXECED"

void ex_reexec_for_blas(int argc, char **argv, const char *hint)
{
    (void)argc; /* argv is NULL-terminated, which is all execv needs */
    if (!hint || !argv || getenv(GUARD))
        return;
    const char *eq = strchr(hint, '=');
    char name[128];
    size_t len = eq ? (size_t)(eq - hint) : 0;
    if (len == 0 || len >= sizeof name)
        return;
    memcpy(name, hint, len);
    name[len] = '\0';
    if (getenv(name)) /* the user's own choice wins */
        return;
    /* The path behind /proc/self/exe rather than the link itself: under
       valgrind the link names valgrind's tool, but readlink is answered
       with the program's own path. */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1)
        return;
    exe[n] = '\0';
    if (setenv(name, eq + 1, 1) != 0 || setenv(GUARD, "1", 1) != 0)
        return;
    /* Output still buffered in stdio would be lost with the old image. */
    fflush(NULL);
    execv(exe, argv);
    /* No /proc, or exec refused: carry on with the kernels we have, and
       leave the environment of child processes as it was. */
    unsetenv(name);
    unsetenv(GUARD);
}
