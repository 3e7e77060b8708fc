/* libFuzzer target: CIFAR-10's binary batches, through
   vae_dataset_load_cifar10 on a folder whose test_batch.bin holds the
   input (and whose five training batches hold it too, read as the
   training set); what loads has its rows and labels read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {"test_batch.bin",   "data_batch_1.bin", "data_batch_2.bin",
                                    "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};

static void use(const vae_dataset *ds)
{
    int64_t n = vae_dataset_count(ds), dims[2] = {n < 4 ? n : 4, vae_dataset_row_size(ds)};
    vae_tensor *t = NULL;
    if (dims[0] > 0 && vae_tensor_create(&t, 2, dims) == VAE_OK)
        vae_dataset_get(ds, n - dims[0], t);
    vae_tensor_free(t);
    (void)vae_dataset_label(ds, n - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[64], path[128];
    vae_dataset *ds = NULL;
    int written = 1;
    snprintf(dir, sizeof dir, "/tmp/vae_fuzz_cifar.%ld", (long)getpid());
    mkdir(dir, 0700);
    for (int i = 0; i < 6 && written; i++) {
        FILE *f;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        written = (f = fopen(path, "wb")) != NULL;
        if (f) {
            written = fwrite(data, 1, size, f) == size;
            fclose(f);
        }
    }
    for (int train = 0; train < 2 && written; train++) {
        if (vae_dataset_load_cifar10(&ds, dir, train) == VAE_OK) {
            use(ds);
            vae_dataset_free(ds);
            ds = NULL;
        }
    }
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
