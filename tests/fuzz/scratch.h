/* Where the targets that read files (idx, CIFAR, images) write their
   input: /dev/shm when it is a writable folder (a memory file system: on
   a disk every run would wait for the write), else /tmp, under a name
   with the process id in it, so that fuzzers running side by side (-jobs,
   -fork) do not share files.  Each run removes what it wrote. */
#ifndef VAE_FUZZ_SCRATCH_H
#define VAE_FUZZ_SCRATCH_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* base/vae_fuzz_<what>.<pid> into buf. */
static void scratch_path(char *buf, size_t size, const char *what)
{
    static const char *base;
    if (!base) {
        struct stat st;
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                       access("/dev/shm", W_OK | X_OK) == 0
                   ? "/dev/shm"
                   : "/tmp";
    }
    snprintf(buf, size, "%s/vae_fuzz_%s.%ld", base, what, (long)getpid());
}

/* Writes n bytes to path; returns 1 if all were written. */
static int scratch_write(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    if (f) {
        ok = fwrite(data, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
    }
    return ok;
}

#endif
