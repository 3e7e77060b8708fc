/* libFuzzer target: the idx loader (MNIST's format, plain or gzip, which
   gzopen reads alike), through vae_dataset_load_idx on a file holding the
   input.  The input is read as images alone, then as images with itself
   as labels; what loads is used: its rows are read as floats. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use(const vae_dataset *ds)
{
    int64_t n = vae_dataset_count(ds), size = vae_dataset_row_size(ds);
    int64_t dims[2] = {n < 4 ? n : 4, size};
    vae_tensor *t = NULL;
    if (dims[0] > 0 && size > 0 && vae_tensor_create(&t, 2, dims) == VAE_OK)
        vae_dataset_get(ds, n - dims[0], t);
    vae_tensor_free(t);
    (void)vae_dataset_label(ds, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    FILE *f;
    vae_dataset *ds = NULL;
    snprintf(path, sizeof path, "/tmp/vae_fuzz_idx.%ld", (long)getpid());
    if (!(f = fopen(path, "wb")))
        return 0;
    if (fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    if (vae_dataset_load_idx(&ds, path, NULL) == VAE_OK) {
        use(ds);
        vae_dataset_free(ds);
        ds = NULL;
        if (vae_dataset_load_idx(&ds, path, path) == VAE_OK) {
            use(ds);
            vae_dataset_free(ds);
        }
    }
    unlink(path);
    return 0;
}
