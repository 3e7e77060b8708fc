/* CIFAR-10's binary version: files of records, each one label byte and a
   3 x 32 x 32 image stored channel by channel. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CIFAR_PIXELS = 3 * 32 * 32, CIFAR_RECORD = CIFAR_PIXELS + 1, CIFAR_CLASSES = 10 };
/* The official files hold 10,000 records each; this allows ten times that. */
#define CIFAR_MAX_RECORDS 100000

static const char *const TRAIN_FILES[] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
static const char *const TEST_FILES[] = {"test_batch.bin"};

static const char *const EXPECTED = "CIFAR-10's binary version has data_batch_1.bin .. "
                                    "data_batch_5.bin and test_batch.bin";

typedef struct cifar_file {
    char path[4096];
    FILE *f;
    int64_t records;
} cifar_file;

/* Opens one file and counts its records from its size. */
static vae_status cifar_open(cifar_file *cf, const char *dir, const char *name)
{
    struct stat st;
    size_t len = strlen(dir);
    const char *sep = dir[len - 1] == '/' ? "" : "/";
    if ((size_t)snprintf(cf->path, sizeof cf->path, "%s%s%s", dir, sep, name) >= sizeof cf->path)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_load_cifar10: directory name too long");
    if (!(cf->f = fopen(cf->path, "rb")))
        return vae__fail(VAE_ERR_IO, "%s: cannot open: %s (%s)", cf->path, strerror(errno),
                         EXPECTED);
    if (fstat(fileno(cf->f), &st) != 0 || !S_ISREG(st.st_mode))
        return vae__fail(VAE_ERR_IO, "%s: not a regular file", cf->path);
    if (st.st_size == 0 || st.st_size % CIFAR_RECORD != 0)
        return vae__fail(VAE_ERR_FORMAT, "%s: %lld bytes is not a whole number of %d-byte "
                         "records (1 label + 3072 pixels)", cf->path, (long long)st.st_size,
                         CIFAR_RECORD);
    if (st.st_size / CIFAR_RECORD > CIFAR_MAX_RECORDS)
        return vae__fail(VAE_ERR_FORMAT, "%s: %lld records, more than the %d allowed", cf->path,
                         (long long)(st.st_size / CIFAR_RECORD), CIFAR_MAX_RECORDS);
    cf->records = st.st_size / CIFAR_RECORD;
    return VAE_OK;
}

/* Reads a file's records into pixels and labels. */
static vae_status cifar_read(cifar_file *cf, uint8_t *pixels, int32_t *labels)
{
    uint8_t record[CIFAR_RECORD];
    for (int64_t i = 0; i < cf->records; i++) {
        if (fread(record, 1, sizeof record, cf->f) != sizeof record)
            return vae__fail(VAE_ERR_IO, "%s: read error at record %lld", cf->path, (long long)i);
        if (record[0] >= CIFAR_CLASSES)
            return vae__fail(VAE_ERR_FORMAT, "%s: record %lld has label %d (0 to 9 expected)",
                             cf->path, (long long)i, record[0]);
        labels[i] = record[0];
        memcpy(pixels + i * CIFAR_PIXELS, record + 1, CIFAR_PIXELS);
    }
    return VAE_OK;
}

static vae_status load_files(vae_dataset **out, const char *dir, const char *const *names,
                             int n_files, cifar_file *files)
{
    static const int dims[3] = {3, 32, 32};
    int64_t total = 0, at = 0;
    vae_dataset *ds;
    vae_status s = VAE_OK;
    for (int i = 0; i < n_files; i++) {
        VAE_TRY(cifar_open(&files[i], dir, names[i]));
        total += files[i].records;
    }
    VAE_TRY(vae__dataset_new("vae_dataset_load_cifar10", total, 3, dims, NULL, &ds));
    ds->scale = 1.0f / 256.0f;
    ds->bytes = vae__alloc((size_t)(total * CIFAR_PIXELS));
    ds->labels = vae__alloc((size_t)total * sizeof *ds->labels);
    if (!ds->bytes || !ds->labels)
        s = VAE_ERR_NO_MEMORY;
    for (int i = 0; i < n_files && s == VAE_OK; i++) {
        s = cifar_read(&files[i], ds->bytes + at * CIFAR_PIXELS, ds->labels + at);
        at += files[i].records;
    }
    if (s != VAE_OK) {
        vae_dataset_free(ds);
        return s;
    }
    vae__dataset_find_range(ds);
    *out = ds;
    return VAE_OK;
}

VAE_API vae_status vae_dataset_load_cifar10(vae_dataset **out, const char *dir, int train)
{
    cifar_file files[5];
    int n_files = train ? 5 : 1;
    vae_status s;
    if (!out || !dir)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_load_cifar10: NULL argument");
    if (!dir[0]) /* not "/": the files would be looked for in the root */
        return vae__fail(VAE_ERR_ARGUMENT, "vae_dataset_load_cifar10: empty directory name");
    memset(files, 0, sizeof files);
    s = load_files(out, dir, train ? TRAIN_FILES : TEST_FILES, n_files, files);
    for (int i = 0; i < n_files; i++)
        if (files[i].f)
            fclose(files[i].f);
    return s;
}
