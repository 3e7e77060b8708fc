/* libFuzzer target: the idx loader (MNIST's format, plain or gzip, which
   gzopen reads alike), through vae_dataset_load_idx on files holding the
   input.  Three loads:
   - the whole input as images alone, then, if that loads, as images with
     itself as labels (an images file is never a valid labels file, but
     its header goes through the labels checks);
   - when its first two bytes, big-endian, are a length k with
     0 < k <= size - 2: the k bytes after them as an images file and the
     rest as a labels file, loaded together, so that a real labels file
     (1-D) meets an images file and the count check and the labels paths
     run.  An idx file starts 00 00, so it is never split, and a gzip
     file 1f 8b (8075), so only past 8077 bytes.
   What loads is used: rows are read as floats, and every label.  The
   files go to /dev/shm (scratch.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "scratch.h"
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
    for (int64_t i = 0; vae_dataset_has_labels(ds) && i < n; i++)
        if (vae_dataset_label(ds, i) < 0)
            abort(); /* a label byte is 0 to 255 */
}

/* Returns 1 if the files loaded. */
static int load(const char *images, const char *labels)
{
    vae_dataset *ds = NULL;
    if (vae_dataset_load_idx(&ds, images, labels) != VAE_OK)
        return 0;
    use(ds);
    vae_dataset_free(ds);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char whole[128], images[160], labels[160];
    size_t k = size >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
    scratch_path(whole, sizeof whole, "idx");
    if (scratch_write(whole, data, size) && load(whole, NULL))
        load(whole, whole);
    unlink(whole);
    if (k == 0 || k > size - 2)
        return 0;
    snprintf(images, sizeof images, "%s.images", whole);
    snprintf(labels, sizeof labels, "%s.labels", whole);
    if (scratch_write(images, data + 2, k) && scratch_write(labels, data + 2 + k, size - 2 - k))
        load(images, labels);
    unlink(images);
    unlink(labels);
    return 0;
}
