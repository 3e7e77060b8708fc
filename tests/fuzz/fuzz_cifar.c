/* libFuzzer target: CIFAR-10's binary batches, through
   vae_dataset_load_cifar10 on a folder whose test_batch.bin holds the
   input (and whose five training batches hold it too, read as the
   training set); what loads has its rows and labels read.  The files go
   to /dev/shm (scratch.h); the folder stays from run to run and is
   removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scratch.h"
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

static char dir[128];

static void remove_folder(void)
{
    char path[160];
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* The folder, made once: the five training batches are hard links to
   test_batch.bin, so that one write per run changes all six files. */
static int make_folder(void)
{
    char first[160], path[160];
    scratch_path(dir, sizeof dir, "cifar");
    mkdir(dir, 0700);
    snprintf(first, sizeof first, "%s/%s", dir, files[0]);
    if (!scratch_write(first, (const uint8_t *)"", 0))
        return 0;
    for (int i = 1; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
        if (link(first, path) != 0)
            return 0;
    }
    atexit(remove_folder);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = -1;
    char path[160];
    vae_dataset *ds = NULL;
    if (ready < 0)
        ready = make_folder();
    snprintf(path, sizeof path, "%s/%s", dir, files[0]);
    if (!ready || !scratch_write(path, data, size))
        return 0;
    for (int train = 0; train < 2; train++) {
        if (vae_dataset_load_cifar10(&ds, dir, train) == VAE_OK) {
            use(ds);
            vae_dataset_free(ds);
            ds = NULL;
        }
    }
    return 0;
}
