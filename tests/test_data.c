/* Data sets: idx loading (plain and gzip, well-formed and malformed),
   CIFAR-10 binary loading, host construction, access, truncation and row
   extraction. */
#include "internal.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* The sanitizers reserve terabytes of address space up front: under them
   no limit on it can be set, and load_in_room only checks the status. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ROOM_ENFORCED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define ROOM_ENFORCED 0
#endif
#endif
#ifndef ROOM_ENFORCED
#define ROOM_ENFORCED 1
#endif
/* Nor under valgrind, whose own mappings count against the limit. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/vae_test_data_XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
}

static void remove_tmpdir(void) { tu_remove_dir(tmpdir); }

/* Writes bytes to tmpdir/name, gzip-compressed when the name ends in .gz;
   returns the full path (a static buffer per slot, so two can coexist). */
static const char *write_file(int slot, const char *name, const void *data, size_t n)
{
    static char paths[2][512];
    char *path = paths[slot];
    size_t len = strlen(name);
    snprintf(path, sizeof paths[0], "%s/%s", tmpdir, name);
    if (len > 3 && strcmp(name + len - 3, ".gz") == 0) {
        gzFile gz = gzopen(path, "wb");
        ck_assert_ptr_nonnull(gz);
        ck_assert_int_eq(gzwrite(gz, data, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(gz), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
    return path;
}

/* Builds an idx image: magic 00 00 type ndim, big-endian u32 dims, data. */
static size_t make_idx(uint8_t *buf, int type, int ndim, const uint32_t *dims,
                       const uint8_t *data, size_t n)
{
    size_t at = 4;
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (uint8_t)type;
    buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++, at += 4) {
        buf[at] = (uint8_t)(dims[i] >> 24);
        buf[at + 1] = (uint8_t)(dims[i] >> 16);
        buf[at + 2] = (uint8_t)(dims[i] >> 8);
        buf[at + 3] = (uint8_t)dims[i];
    }
    if (n)
        memcpy(buf + at, data, n);
    return at + n;
}

/* Three 2x2 images and their labels. */
static const uint8_t PIXELS[12] = {0, 51, 255, 102, 255, 255, 0, 0, 1, 2, 3, 4};
static const uint8_t LABELS[3] = {7, 0, 255};
static const uint32_t IMG_DIMS[3] = {3, 2, 2};
static const uint32_t LAB_DIMS[1] = {3};

static const char *write_images(int slot, const char *name)
{
    uint8_t buf[64];
    return write_file(slot, name, buf, make_idx(buf, 8, 3, IMG_DIMS, PIXELS, 12));
}

static const char *write_labels(int slot, const char *name)
{
    uint8_t buf[64];
    return write_file(slot, name, buf, make_idx(buf, 8, 1, LAB_DIMS, LABELS, 3));
}

/* The last error names `file` (and says `phrase`, if not NULL). */
static void expect_message(const char *file, const char *phrase)
{
    ck_assert_msg(strstr(vae_last_error(), file) != NULL, "'%s' does not name %s",
                  vae_last_error(), file);
    if (phrase)
        ck_assert_msg(strstr(vae_last_error(), phrase) != NULL, "'%s' does not say '%s'",
                      vae_last_error(), phrase);
}

/* The load fails with `status`, names `file` and leaves *out untouched. */
static void expect_load_error(const char *images, const char *labels, vae_status status,
                              const char *file, const char *phrase)
{
    vae_dataset *ds = (vae_dataset *)&ds;
    ck_assert_int_eq(vae_dataset_load_idx(&ds, images, labels), status);
    ck_assert_ptr_eq(ds, (vae_dataset *)&ds);
    expect_message(file, phrase);
}

static void check_three_images(vae_dataset *ds, int with_labels)
{
    int dims[VAE_MAX_ROW_DIMS] = {0};
    int64_t tdims[2] = {3, 4};
    vae_tensor *t;
    float *v;
    ck_assert_int_eq(vae_dataset_count(ds), 3);
    ck_assert_int_eq(vae_dataset_row_size(ds), 4);
    ck_assert_int_eq(vae_dataset_row_dims(ds, dims), 2);
    ck_assert_int_eq(dims[0], 2);
    ck_assert_int_eq(dims[1], 2);
    ck_assert_int_eq(vae_dataset_has_labels(ds), with_labels);
    ck_assert_int_eq(vae_dataset_label(ds, 0), with_labels ? 7 : -1);
    ck_assert_int_eq(vae_dataset_label(ds, 1), with_labels ? 0 : -1);
    ck_assert_int_eq(vae_dataset_label(ds, 2), with_labels ? 255 : -1);
    ck_assert_int_eq(vae_dataset_label(ds, 3), -1);
    ck_assert_int_eq(vae_dataset_label(ds, -1), -1);
    ck_assert_int_eq(vae_tensor_create(&t, 2, tdims), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(ds, 0, t), VAE_OK);
    v = vae_tensor_data(t);
    ck_assert_float_eq(v[0], 0.0f);
    ck_assert_float_eq_tol(v[1], 0.2f, 1e-7f);
    ck_assert_float_eq(v[2], 1.0f);
    ck_assert_float_eq_tol(v[3], 0.4f, 1e-7f);
    ck_assert_float_eq(v[4], 1.0f);
    ck_assert_float_eq_tol(v[11], 4.0f / 255.0f, 1e-9f);
    vae_tensor_free(t);
}

START_TEST(load_plain_and_gz)
{
    /* every combination of plain and compressed images and labels */
    static const char *const names[4][2] = {{"a-img", "a-lab"},
                                            {"b-img.gz", "b-lab.gz"},
                                            {"c-img", "c-lab.gz"},
                                            {"d-img.gz", "d-lab"}};
    for (int i = 0; i < 4; i++) {
        vae_dataset *ds = NULL;
        const char *img = write_images(0, names[i][0]);
        const char *lab = write_labels(1, names[i][1]);
        ck_assert_int_eq(vae_dataset_load_idx(&ds, img, lab), VAE_OK);
        check_three_images(ds, 1);
        vae_dataset_free(ds);
    }
}
END_TEST

START_TEST(load_without_labels)
{
    vae_dataset *ds = NULL;
    ck_assert_int_eq(vae_dataset_load_idx(&ds, write_images(0, "img.gz"), NULL), VAE_OK);
    check_three_images(ds, 0);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(load_rank_2_and_4)
{
    static const uint32_t d4[4] = {2, 3, 1, 2}, d2[2] = {3, 4};
    uint8_t buf[64];
    int dims[VAE_MAX_ROW_DIMS];
    vae_dataset *ds = NULL;
    const char *p = write_file(0, "nchw", buf, make_idx(buf, 8, 4, d4, PIXELS, 12));
    ck_assert_int_eq(vae_dataset_load_idx(&ds, p, NULL), VAE_OK);
    ck_assert_int_eq(vae_dataset_count(ds), 2);
    ck_assert_int_eq(vae_dataset_row_size(ds), 6);
    ck_assert_int_eq(vae_dataset_row_dims(ds, dims), 3);
    ck_assert_int_eq(dims[0], 3);
    ck_assert_int_eq(dims[1], 1);
    ck_assert_int_eq(dims[2], 2);
    vae_dataset_free(ds);

    p = write_file(0, "nd.gz", buf, make_idx(buf, 8, 2, d2, PIXELS, 12));
    ck_assert_int_eq(vae_dataset_load_idx(&ds, p, write_labels(1, "lab")), VAE_OK);
    ck_assert_int_eq(vae_dataset_count(ds), 3);
    ck_assert_int_eq(vae_dataset_row_dims(ds, dims), 1);
    ck_assert_int_eq(dims[0], 4);
    ck_assert_int_eq(vae_dataset_label(ds, 2), 255);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(bad_magic)
{
    uint8_t buf[64];
    size_t n = make_idx(buf, 8, 3, IMG_DIMS, PIXELS, 12);
    buf[0] = 0x1f;
    expect_load_error(write_file(0, "magic-img", buf, n), NULL, VAE_ERR_FORMAT, "magic-img",
                      "not an idx file");
    expect_load_error(write_file(0, "magic-img.gz", buf, n), NULL, VAE_ERR_FORMAT,
                      "magic-img.gz", "not an idx file");
}
END_TEST

START_TEST(wrong_type_byte)
{
    uint8_t buf[64];
    size_t n = make_idx(buf, 0x0d, 3, IMG_DIMS, PIXELS, 12);
    expect_load_error(write_file(0, "float-img", buf, n), NULL, VAE_ERR_FORMAT, "float-img",
                      "0x0d");
    n = make_idx(buf, 0x09, 1, LAB_DIMS, LABELS, 3);
    expect_load_error(write_images(0, "img"), write_file(1, "signed-lab.gz", buf, n),
                      VAE_ERR_FORMAT, "signed-lab.gz", "0x09");
}
END_TEST

START_TEST(wrong_rank)
{
    /* labels given as images and images given as labels */
    expect_load_error(write_labels(0, "lab-as-img"), NULL, VAE_ERR_FORMAT, "lab-as-img",
                      "dimensions");
    expect_load_error(write_images(0, "img"), write_images(1, "img-as-lab.gz"),
                      VAE_ERR_FORMAT, "img-as-lab.gz", "dimensions");
}
END_TEST

START_TEST(truncated_pixels)
{
    uint8_t buf[64];
    size_t n = make_idx(buf, 8, 3, IMG_DIMS, PIXELS, 12) - 1;
    expect_load_error(write_file(0, "short-img", buf, n), NULL, VAE_ERR_FORMAT, "short-img",
                      "truncated: header says 3 images of 2x2 but file ends after 11 bytes");
    expect_load_error(write_file(0, "short-img.gz", buf, n), NULL, VAE_ERR_FORMAT,
                      "short-img.gz", "truncated");
    n = make_idx(buf, 8, 1, LAB_DIMS, LABELS, 2);
    expect_load_error(write_images(0, "img"), write_file(1, "short-lab", buf, n),
                      VAE_ERR_FORMAT, "short-lab", "after 2 bytes of labels");
}
END_TEST

START_TEST(truncated_gzip_stream)
{
    /* the compressed stream itself is cut short, not just its content */
    uint8_t buf[4096], raw[4096];
    static const uint32_t dims[3] = {4, 20, 20};
    const char *p;
    FILE *f;
    size_t n;
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 7919 >> 3);
    p = write_file(0, "cut.gz", buf, make_idx(buf, 8, 3, dims, raw, 1600));
    f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_gt(n, 100);
    f = fopen(p, "wb");
    ck_assert_uint_eq(fwrite(buf, 1, n / 2, f), n / 2);
    fclose(f);
    expect_load_error(p, NULL, VAE_ERR_FORMAT, "cut.gz", NULL);
}
END_TEST

START_TEST(truncated_header)
{
    uint8_t buf[64];
    size_t n = make_idx(buf, 8, 3, IMG_DIMS, NULL, 0);
    expect_load_error(write_file(0, "head-img", buf, n - 2), NULL, VAE_ERR_FORMAT, "head-img",
                      "truncated header");
    expect_load_error(write_file(0, "head-img.gz", buf, 3), NULL, VAE_ERR_FORMAT,
                      "head-img.gz", "truncated header");
    expect_load_error(write_file(0, "empty", buf, 0), NULL, VAE_ERR_FORMAT, "empty",
                      "truncated header");
}
END_TEST

START_TEST(trailing_bytes)
{
    uint8_t buf[64], extra[13];
    size_t n;
    memcpy(extra, PIXELS, 12);
    extra[12] = 9;
    n = make_idx(buf, 8, 3, IMG_DIMS, extra, 13);
    expect_load_error(write_file(0, "long-img", buf, n), NULL, VAE_ERR_FORMAT, "long-img",
                      "longer than its header says");
    expect_load_error(write_file(0, "long-img.gz", buf, n), NULL, VAE_ERR_FORMAT,
                      "long-img.gz", "longer than its header says");
}
END_TEST

START_TEST(count_mismatch)
{
    static const uint32_t two[1] = {2};
    uint8_t buf[64];
    size_t n = make_idx(buf, 8, 1, two, LABELS, 2);
    expect_load_error(write_images(0, "img.gz"), write_file(1, "two-lab.gz", buf, n),
                      VAE_ERR_FORMAT, "two-lab.gz", "2 labels");
}
END_TEST

START_TEST(zero_and_oversized)
{
    static const uint32_t zero[3] = {0, 28, 28}, zero_w[3] = {10, 28, 0};
    static const uint32_t huge[3] = {1000000, 100000, 1000};
    static const uint32_t wide[3] = {1, 1, 0x80000000u};
    uint8_t buf[64];
    expect_load_error(write_file(0, "zero-img", buf, make_idx(buf, 8, 3, zero, NULL, 0)), NULL,
                      VAE_ERR_FORMAT, "zero-img", "zero");
    expect_load_error(write_file(0, "zerow-img.gz", buf, make_idx(buf, 8, 3, zero_w, NULL, 0)),
                      NULL, VAE_ERR_FORMAT, "zerow-img.gz", "zero");
    expect_load_error(write_file(0, "huge-img", buf, make_idx(buf, 8, 3, huge, PIXELS, 12)),
                      NULL, VAE_ERR_FORMAT, "huge-img", "oversized");
    expect_load_error(write_file(0, "wide-img", buf, make_idx(buf, 8, 3, wide, PIXELS, 12)),
                      NULL, VAE_ERR_FORMAT, "wide-img", "oversized");
}
END_TEST

START_TEST(big_claim_small_file)
{
    /* 2^34 bytes claimed (the limit): must fail as truncated, not allocate */
    static const uint32_t dims[3] = {1u << 24, 32, 32};
    uint8_t buf[64];
    size_t n = make_idx(buf, 8, 3, dims, PIXELS, 12);
    expect_load_error(write_file(0, "claim-img", buf, n), NULL, VAE_ERR_FORMAT, "claim-img",
                      "after 12 bytes of pixels");
    expect_load_error(write_file(0, "claim-img.gz", buf, n), NULL, VAE_ERR_FORMAT,
                      "claim-img.gz", "truncated");
}
END_TEST

/* The address space the process has mapped, from /proc/self/statm. */
static size_t mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Loads images (and labels) in a child process whose address space may
   grow by `room` bytes and no more: past that, malloc fails.  A loader
   that allocates what a header claims, not what the file holds, gives
   VAE_ERR_NO_MEMORY there.  Returns the status; the child's last error
   goes to msg. */
static vae_status load_in_room(const char *images, const char *labels, size_t room, char *msg,
                               size_t msg_size)
{
    int fds[2], status = -1, wstatus;
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        vae_dataset *ds = NULL;
        struct rlimit rl;
        close(fds[0]);
#ifdef __GLIBC__
        malloc_trim(0); /* free memory at the heap's top would be room too */
#endif
        if (ROOM_ENFORCED && !RUNNING_ON_VALGRIND && (getrlimit(RLIMIT_AS, &rl) != 0 ||
                              (rl.rlim_cur = (rlim_t)(mapped_bytes() + room),
                               setrlimit(RLIMIT_AS, &rl) != 0)))
            _exit(2);
        vae_status st = vae_dataset_load_idx(&ds, images, labels);
        vae_dataset_free(ds);
        dprintf(fds[1], "%d %s", (int)st, st == VAE_OK ? "" : vae_last_error());
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, msg_size - 1), more;
    char rest[256];
    while ((more = read(fds[0], rest, sizeof rest)) > 0) /* past msg_size: dropped */
        ;
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_msg(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "the child failed (%d)",
                  wstatus);
    ck_assert_int_gt(n, 0);
    msg[n] = '\0';
    ck_assert_int_eq(sscanf(msg, "%d", &status), 1);
    memmove(msg, strchr(msg, ' ') + 1, strlen(strchr(msg, ' ')));
    return (vae_status)status;
}

/* A header's claim is checked against the data before memory of its size
   is allocated: a plain file's against the file's size, before anything
   is allocated; a gzip file's as the data arrive, into a buffer that
   starts at 64 KiB and doubles, so that it never holds more than twice
   what was decompressed.  2^34 bytes claimed in a file of a few bytes
   fit in 8 MiB of address space (the loader took 16 MiB at once before);
   a file of 1 MiB of pixels loads in 4 MiB. */
START_TEST(claims_checked_before_allocating)
{
    static const uint32_t claim[3] = {1u << 24, 32, 32}, real[3] = {1024, 32, 32};
    static uint8_t buf[16 + (1 << 20) + 1], pixels[1 << 20];
    char msg[1024], plain[600], gz[600], mib[600], mib_gz[600];
    size_t n = make_idx(buf, 8, 3, claim, PIXELS, 12);
    snprintf(plain, sizeof plain, "%s", write_file(0, "claim-img", buf, n));
    snprintf(gz, sizeof gz, "%s", write_file(0, "claim-img.gz", buf, n));
    /* first: memory a load here freed could be reused in the child */
    ck_assert_int_eq(load_in_room(plain, NULL, 8 << 20, msg, sizeof msg), VAE_ERR_FORMAT);
    ck_assert_msg(strstr(msg, "after 12 bytes") != NULL, "%s", msg);
    ck_assert_int_eq(load_in_room(gz, NULL, 8 << 20, msg, sizeof msg), VAE_ERR_FORMAT);
    ck_assert_msg(strstr(msg, "after 12 bytes") != NULL, "%s", msg);
    vae__fault_alloc(0, 0);
    expect_load_error(plain, NULL, VAE_ERR_FORMAT, "claim-img",
                      "truncated: header says 16777216 images of 32x32 but file ends after 12 "
                      "bytes of pixels");
    ck_assert_int_eq(vae__fault_alloc_calls(), 0); /* refused from its size */
    vae__fault_alloc(0, 0);
    expect_load_error(gz, NULL, VAE_ERR_FORMAT, "claim-img.gz", "after 12 bytes of pixels");
    ck_assert_int_eq(vae__fault_alloc_calls(), 1); /* the first 64 KiB */

    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i % 251);
    n = make_idx(buf, 8, 3, real, pixels, sizeof pixels);
    snprintf(mib, sizeof mib, "%s", write_file(0, "mib-img", buf, n));
    snprintf(mib_gz, sizeof mib_gz, "%s", write_file(0, "mib-img.gz", buf, n));
    ck_assert_int_eq(load_in_room(mib, NULL, 4 << 20, msg, sizeof msg), VAE_OK);
    ck_assert_int_eq(load_in_room(mib_gz, NULL, 4 << 20, msg, sizeof msg), VAE_OK);
    /* one byte more or less than the header says, found from the size */
    vae__fault_alloc(0, 0);
    expect_load_error(write_file(0, "mib-short", buf, n - 1), NULL, VAE_ERR_FORMAT, "mib-short",
                      "file ends after 1048575 bytes of pixels");
    buf[n] = 0;
    expect_load_error(write_file(0, "mib-long", buf, n + 1), NULL, VAE_ERR_FORMAT, "mib-long",
                      "longer than its header says (1024 images of 32x32)");
    ck_assert_int_eq(vae__fault_alloc_calls(), 0);
}
END_TEST

/* The number of labels is compared with the number of images before the
   labels are read: a file claiming 2^32 - 1 labels is refused for that,
   with nothing allocated for it, plain or gzip. */
START_TEST(labels_counted_before_reading)
{
    static const uint32_t many[1] = {0xFFFFFFFFu};
    uint8_t buf[64];
    size_t n = make_idx(buf, 8, 1, many, LABELS, 3);
    const char *images = write_images(0, "img");
    vae__fault_alloc(0, 0);
    expect_load_error(images, write_file(1, "many-lab", buf, n), VAE_ERR_FORMAT, "many-lab",
                      "has 4294967295 labels but");
    ck_assert_int_eq(vae__fault_alloc_calls(), 1); /* the images' pixels */
    vae__fault_alloc(0, 0);
    expect_load_error(images, write_file(1, "many-lab.gz", buf, n), VAE_ERR_FORMAT,
                      "many-lab.gz", "has 4294967295 labels but");
    ck_assert_int_eq(vae__fault_alloc_calls(), 1);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "img has 3 images"));
}
END_TEST

/* A pipe has no size to check in advance: its data are checked as they
   arrive, as a gzip file's are.  The writer is a child process. */
static const char *write_fifo(const char *name, const uint8_t *data, size_t n, pid_t *writer)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    unlink(path);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    *writer = fork();
    ck_assert_int_ge(*writer, 0);
    if (*writer == 0) {
        int fd = open(path, O_WRONLY);
        _exit(fd >= 0 && write(fd, data, n) == (ssize_t)n ? 0 : 1);
    }
    return path;
}

START_TEST(pipe_sources)
{
    static const uint32_t claim[3] = {1u << 24, 32, 32};
    uint8_t buf[64];
    vae_dataset *ds = NULL;
    pid_t writer;
    int wstatus;
    size_t n = make_idx(buf, 8, 3, IMG_DIMS, PIXELS, 12);
    const char *path = write_fifo("img.fifo", buf, n, &writer);
    ck_assert_int_eq(vae_dataset_load_idx(&ds, path, NULL), VAE_OK);
    check_three_images(ds, 0);
    vae_dataset_free(ds);
    ck_assert_int_eq(waitpid(writer, &wstatus, 0), writer);
    ck_assert_int_eq(wstatus, 0);
    n = make_idx(buf, 8, 3, claim, PIXELS, 12);
    path = write_fifo("claim.fifo", buf, n, &writer);
    vae__fault_alloc(0, 0);
    expect_load_error(path, NULL, VAE_ERR_FORMAT, "claim.fifo", "after 12 bytes of pixels");
    ck_assert_int_eq(vae__fault_alloc_calls(), 1);
    ck_assert_int_eq(waitpid(writer, &wstatus, 0), writer);
}
END_TEST

START_TEST(missing_files)
{
    char path[600];
    snprintf(path, sizeof path, "%s/no-such-file.gz", tmpdir);
    expect_load_error(path, NULL, VAE_ERR_IO, "no-such-file.gz", "No such file");
    /* good images, missing labels: the images read must be freed */
    expect_load_error(write_images(0, "img"), path, VAE_ERR_IO, "no-such-file.gz", NULL);
    expect_load_error(tmpdir, NULL, VAE_ERR_IO, tmpdir, NULL); /* a directory */
}
END_TEST

START_TEST(corrupt_gzip)
{
    /* a valid gzip member header, then deflate data that cannot decode */
    uint8_t buf[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memset(buf + 10, 0xff, 40);
    expect_load_error(write_file(0, "corrupt-img", buf, 50), NULL, VAE_ERR_FORMAT,
                      "corrupt-img", "corrupt gzip data");
    expect_load_error(write_images(0, "img"), write_file(1, "corrupt-lab", buf, 50),
                      VAE_ERR_FORMAT, "corrupt-lab", "corrupt gzip data");
}
END_TEST

START_TEST(null_arguments)
{
    vae_dataset *ds = NULL;
    int dims[1] = {4};
    uint8_t px[4] = {0};
    float fv[4] = {0};
    int64_t tdims[2] = {1, 4};
    vae_tensor *t;
    ck_assert_int_eq(vae_dataset_load_idx(NULL, "x", NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_load_idx(&ds, NULL, "x"), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(NULL, 1, 1, dims, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 1, dims, NULL, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 1, NULL, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_f32(NULL, 1, 1, dims, fv, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_f32(&ds, 1, 1, dims, NULL, NULL), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(ds);
    ck_assert_int_eq(vae_dataset_truncate(NULL, 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_tensor_create(&t, 2, tdims), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(NULL, 0, t), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_f32(&ds, 1, 1, dims, fv, NULL), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(ds, 0, NULL), VAE_ERR_ARGUMENT);
    vae_dataset_free(ds);
    vae_tensor_free(t);
    vae_dataset_free(NULL);
    ck_assert_int_eq(vae_dataset_count(NULL), 0);
    ck_assert_int_eq(vae_dataset_row_size(NULL), 0);
    ck_assert_int_eq(vae_dataset_row_dims(NULL, dims), 0);
    ck_assert_int_eq(vae_dataset_has_labels(NULL), 0);
    ck_assert_int_eq(vae_dataset_label(NULL, 0), -1);
}
END_TEST

START_TEST(from_u8_with_labels)
{
    static const int dims[3] = {1, 1, 3};
    uint8_t px[6] = {0, 2, 4, 6, 8, 200};
    int32_t labels[2] = {5, 1000};
    int out_dims[VAE_MAX_ROW_DIMS];
    float v[6];
    vae_dataset *ds = NULL;
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 2, 3, dims, px, labels, 0.5f), VAE_OK);
    px[0] = 99; /* copied, so this must not show */
    labels[0] = 99;
    ck_assert_int_eq(vae_dataset_count(ds), 2);
    ck_assert_int_eq(vae_dataset_row_size(ds), 3);
    ck_assert_int_eq(vae_dataset_row_dims(ds, out_dims), 3);
    ck_assert_int_eq(out_dims[2], 3);
    ck_assert_int_eq(vae_dataset_has_labels(ds), 1);
    ck_assert_int_eq(vae_dataset_label(ds, 0), 5);
    ck_assert_int_eq(vae_dataset_label(ds, 1), 1000);
    vae__dataset_rows(ds, NULL, 0, 2, v);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(v[i], i < 5 ? (float)i : 100.0f);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(from_f32_without_labels)
{
    static const int dims[2] = {2, 2};
    float src[8] = {0.5f, -1.0f, 3.25f, 0.0f, 1e-3f, 2.0f, -7.0f, 42.0f}, v[8];
    vae_dataset *ds = NULL;
    ck_assert_int_eq(vae_dataset_from_f32(&ds, 2, 2, dims, src, NULL), VAE_OK);
    src[1] = 5.0f;
    ck_assert_int_eq(vae_dataset_has_labels(ds), 0);
    ck_assert_int_eq(vae_dataset_label(ds, 0), -1);
    ck_assert_int_eq(vae_dataset_row_size(ds), 4);
    vae__dataset_rows(ds, NULL, 0, 2, v);
    ck_assert_float_eq(v[1], -1.0f);
    ck_assert_float_eq(v[4], 1e-3f);
    ck_assert_float_eq(v[7], 42.0f);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(from_bad_shapes)
{
    static const int ok[1] = {4}, zero[2] = {3, 0}, neg[1] = {-2};
    static const int huge[3] = {0x7fffffff, 0x7fffffff, 0x7fffffff};
    uint8_t px[4] = {0};
    float fv[4] = {0};
    vae_dataset *ds = NULL;
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 0, 1, ok, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, -1, 1, ok, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 0, ok, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, VAE_MAX_ROW_DIMS + 1, huge, px, NULL, 1.0f),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 2, zero, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 1, neg, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 3, huge, px, NULL, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 1, 1, ok, px, NULL, 0.0f / 0.0f),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_f32(&ds, INT64_MAX, 1, ok, fv, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_from_f32(&ds, (int64_t)1 << 40, 1, ok, fv, NULL),
                     VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "vae_dataset_from_f32"));
}
END_TEST

START_TEST(truncate_rows)
{
    vae_dataset *ds = NULL;
    int64_t tdims[3] = {2, 2, 2};
    vae_tensor *t;
    ck_assert_int_eq(vae_dataset_load_idx(&ds, write_images(0, "img"), write_labels(1, "lab")),
                     VAE_OK);
    ck_assert_int_eq(vae_dataset_truncate(ds, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_truncate(ds, -1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_truncate(ds, 4), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_count(ds), 3);
    ck_assert_int_eq(vae_dataset_truncate(ds, 2), VAE_OK);
    ck_assert_int_eq(vae_dataset_count(ds), 2);
    ck_assert_int_eq(vae_dataset_label(ds, 1), 0);
    ck_assert_int_eq(vae_dataset_label(ds, 2), -1);
    ck_assert_int_eq(vae_dataset_truncate(ds, 3), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_tensor_create(&t, 3, tdims), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(ds, 1, t), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_get(ds, 0, t), VAE_OK);
    ck_assert_float_eq(vae_tensor_data(t)[7], 0.0f);
    vae_tensor_free(t);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(get_ranges)
{
    vae_dataset *ds = NULL;
    int64_t one[2] = {1, 4}, four[2] = {4, 4}, wrong[2] = {2, 3};
    vae_tensor *t1, *t4, *tw;
    ck_assert_int_eq(vae_dataset_load_idx(&ds, write_images(0, "img.gz"), NULL), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&t1, 2, one), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&t4, 2, four), VAE_OK);
    ck_assert_int_eq(vae_tensor_create(&tw, 2, wrong), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(ds, -1, t1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_get(ds, 3, t1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_get(ds, INT64_MAX, t1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_get(ds, 0, t4), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_get(ds, 0, tw), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_dataset_get(ds, 2, t1), VAE_OK);
    ck_assert_float_eq_tol(vae_tensor_data(t1)[0], 1.0f / 255.0f, 1e-9f);
    ck_assert_float_eq_tol(vae_tensor_data(t1)[3], 4.0f / 255.0f, 1e-9f);
    vae_tensor_free(t1);
    vae_tensor_free(t4);
    vae_tensor_free(tw);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(rows_by_index)
{
    static const int64_t idx[4] = {2, 0, 2, 1};
    static const int dims[1] = {4};
    vae_dataset *ds = NULL, *dsf = NULL;
    float v[16], expect[16];
    ck_assert_int_eq(vae_dataset_load_idx(&ds, write_images(0, "img"), NULL), VAE_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            expect[4 * i + j] = (float)PIXELS[4 * idx[i] + j] / 255.0f;
    vae__dataset_rows(ds, idx, 0, 4, v);
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq_tol(v[i], expect[i], 1e-7f);
    vae__dataset_rows(ds, NULL, 1, 2, v); /* rows 1 and 2 */
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(v[i], (float)PIXELS[4 + i] / 255.0f, 1e-7f);
    /* the float path takes the same index list */
    ck_assert_int_eq(vae_dataset_from_f32(&dsf, 3, 1, dims, expect, NULL), VAE_OK);
    vae__dataset_rows(dsf, idx + 1, 0, 2, v); /* rows 0 and 2 of expect */
    for (int j = 0; j < 4; j++) {
        ck_assert_float_eq(v[j], expect[j]);
        ck_assert_float_eq(v[4 + j], expect[8 + j]);
    }
    vae_dataset_free(dsf);
    vae_dataset_free(ds);
}
END_TEST

/* Labels are >= 0: -1 is what vae_dataset_label says for "none". */
START_TEST(negative_labels_rejected)
{
    uint8_t px[4] = {0, 1, 2, 3};
    int32_t labels[2] = {3, -1};
    int dims[1] = {2};
    vae_dataset *ds = NULL;
    ck_assert_int_eq(vae_dataset_from_u8(&ds, 2, 1, dims, px, labels, 1.0f), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "negative"));
}
END_TEST

/* ---- CIFAR-10 binary files ---- */

enum { CIFAR_PIXELS = 3072, CIFAR_RECORD = 3073 };

/* Records per train file (11 in all) and in test_batch.bin; records are
   numbered across the train files, then from 100 in the test file. */
static const int CIFAR_TRAIN_COUNTS[5] = {2, 3, 1, 2, 3};
#define CIFAR_TRAIN_TOTAL 11
#define CIFAR_TEST_COUNT 2
#define CIFAR_TEST_FIRST 100

static uint8_t cifar_label(int k)
{
    return (uint8_t)((k * 7 + 3) % 10); /* 3 0 7 4 1 8 5 2 9 6 3 ... */
}

/* Pixel j (channel j / 1024) of record k: red (0,0) is 0, green (0,0) 128,
   blue (31,31) 255; the rest differ from record to record. */
static uint8_t cifar_byte(int k, int j)
{
    if (j == 0)
        return 0;
    if (j == 1024)
        return 128;
    if (j == CIFAR_PIXELS - 1)
        return 255;
    return (uint8_t)(k * 101 + j * 7 + (j >> 10) * 50);
}

/* Writes tmpdir/name with n records from record `first`. */
static void write_cifar(const char *name, int first, int n)
{
    static uint8_t buf[3 * CIFAR_RECORD];
    ck_assert_int_le(n, 3);
    for (int i = 0; i < n; i++) {
        uint8_t *rec = buf + i * CIFAR_RECORD;
        rec[0] = cifar_label(first + i);
        for (int j = 0; j < CIFAR_PIXELS; j++)
            rec[1 + j] = cifar_byte(first + i, j);
    }
    write_file(0, name, buf, (size_t)n * CIFAR_RECORD);
}

static const char *cifar_train_name(int i)
{
    static char name[32];
    snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
    return name;
}

/* The five train files and the test file, freshly written. */
static void write_cifar_set(void)
{
    for (int i = 0, k = 0; i < 5; k += CIFAR_TRAIN_COUNTS[i++])
        write_cifar(cifar_train_name(i), k, CIFAR_TRAIN_COUNTS[i]);
    write_cifar("test_batch.bin", CIFAR_TEST_FIRST, CIFAR_TEST_COUNT);
}

static const char *cifar_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* The data set holds records first .. first+n-1: shape, labels, values. */
static void check_cifar(vae_dataset *ds, int first, int n)
{
    int dims[VAE_MAX_ROW_DIMS] = {0};
    int64_t tdims[4] = {n, 3, 32, 32};
    vae_tensor *t;
    const float *v;
    ck_assert_int_eq(vae_dataset_count(ds), n);
    ck_assert_int_eq(vae_dataset_row_size(ds), CIFAR_PIXELS);
    ck_assert_int_eq(vae_dataset_row_dims(ds, dims), 3);
    ck_assert_int_eq(dims[0], 3);
    ck_assert_int_eq(dims[1], 32);
    ck_assert_int_eq(dims[2], 32);
    ck_assert_int_eq(vae_dataset_has_labels(ds), 1);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(vae_dataset_label(ds, i), cifar_label(first + i));
    ck_assert_int_eq(vae_dataset_label(ds, n), -1);
    ck_assert_int_eq(vae_tensor_create(&t, 4, tdims), VAE_OK);
    ck_assert_int_eq(vae_dataset_get(ds, 0, t), VAE_OK);
    v = vae_tensor_data(t);
    for (int i = 0; i < n; i++, v += CIFAR_PIXELS) {
        /* value = byte / 256, exactly */
        ck_assert_float_eq(v[0], 0.0f);
        ck_assert_float_eq(v[1024], 0.5f);
        ck_assert_float_eq(v[CIFAR_PIXELS - 1], 0.99609375f); /* 255/256 */
        for (int j = 0; j < CIFAR_PIXELS; j++)
            if (v[j] != (float)cifar_byte(first + i, j) / 256.0f)
                ck_abort_msg("record %d pixel %d: %.9g, not %d/256", first + i, j, v[j],
                             cifar_byte(first + i, j));
    }
    vae_tensor_free(t);
}

/* The load fails with `status`, names `file` (and says `phrase`) and leaves
   *out untouched. */
static void expect_cifar_error(const char *dir, int train, vae_status status, const char *file,
                               const char *phrase)
{
    vae_dataset *ds = (vae_dataset *)&ds;
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, dir, train), status);
    ck_assert_ptr_eq(ds, (vae_dataset *)&ds);
    expect_message(file, phrase);
}

START_TEST(cifar_train_split)
{
    char slashed[600];
    vae_dataset *ds = NULL;
    write_cifar_set();
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, tmpdir, 1), VAE_OK);
    check_cifar(ds, 0, CIFAR_TRAIN_TOTAL); /* all five files, in order */
    vae_dataset_free(ds);
    ds = NULL;
    snprintf(slashed, sizeof slashed, "%s/", tmpdir);
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, slashed, 1), VAE_OK);
    check_cifar(ds, 0, CIFAR_TRAIN_TOTAL);
    vae_dataset_free(ds);
}
END_TEST

START_TEST(cifar_test_split)
{
    char slashed[600];
    vae_dataset *ds = NULL;
    write_cifar_set();
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, tmpdir, 0), VAE_OK);
    check_cifar(ds, CIFAR_TEST_FIRST, CIFAR_TEST_COUNT);
    vae_dataset_free(ds);
    ds = NULL;
    /* only test_batch.bin is read: the train files may be absent */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(unlink(cifar_path(cifar_train_name(i))), 0);
    snprintf(slashed, sizeof slashed, "%s/", tmpdir);
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, slashed, 0), VAE_OK);
    check_cifar(ds, CIFAR_TEST_FIRST, CIFAR_TEST_COUNT);
    vae_dataset_free(ds);
    expect_cifar_error(tmpdir, 1, VAE_ERR_IO, "data_batch_1.bin", NULL);
    /* and the train split does not need test_batch.bin */
    write_cifar_set();
    ck_assert_int_eq(unlink(cifar_path("test_batch.bin")), 0);
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, tmpdir, 1), VAE_OK);
    ck_assert_int_eq(vae_dataset_count(ds), CIFAR_TRAIN_TOTAL);
    vae_dataset_free(ds);
    expect_cifar_error(tmpdir, 0, VAE_ERR_IO, "test_batch.bin", NULL);
}
END_TEST

START_TEST(cifar_missing_file)
{
    char dir[600];
    write_cifar_set();
    ck_assert_int_eq(unlink(cifar_path("data_batch_3.bin")), 0);
    /* the full path, and why */
    expect_cifar_error(tmpdir, 1, VAE_ERR_IO, cifar_path("data_batch_3.bin"),
                       "No such file");
    snprintf(dir, sizeof dir, "%s/", tmpdir);
    expect_cifar_error(dir, 1, VAE_ERR_IO, cifar_path("data_batch_3.bin"), NULL);
    snprintf(dir, sizeof dir, "%s/no-such-dir", tmpdir);
    expect_cifar_error(dir, 1, VAE_ERR_IO, "no-such-dir/data_batch_1.bin", NULL);
    expect_cifar_error(dir, 0, VAE_ERR_IO, "no-such-dir/test_batch.bin", NULL);
}
END_TEST

START_TEST(cifar_not_a_file)
{
    /* a directory where a file should be */
    const char *path;
    vae_dataset *ds = (vae_dataset *)&ds;
    vae_status s;
    write_cifar_set();
    path = cifar_path("data_batch_2.bin");
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    s = vae_dataset_load_cifar10(&ds, tmpdir, 1);
    ck_assert_int_eq(rmdir(path), 0);
    ck_assert_int_eq(s, VAE_ERR_IO);
    ck_assert_ptr_eq(ds, (vae_dataset *)&ds);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "data_batch_2.bin"));
}
END_TEST

START_TEST(cifar_partial_record)
{
    static uint8_t buf[2 * CIFAR_RECORD + 1];
    write_cifar_set();
    /* one byte too many, one too few, and less than one record */
    write_file(0, "data_batch_4.bin", buf, 2 * CIFAR_RECORD + 1);
    expect_cifar_error(tmpdir, 1, VAE_ERR_FORMAT, "data_batch_4.bin",
                       "6147 bytes is not a whole number of 3073-byte records");
    write_file(0, "data_batch_4.bin", buf, 2 * CIFAR_RECORD - 1);
    expect_cifar_error(tmpdir, 1, VAE_ERR_FORMAT, "data_batch_4.bin", "6145 bytes");
    write_cifar("data_batch_4.bin", 6, 2);
    write_file(0, "test_batch.bin", buf, CIFAR_PIXELS); /* no label byte */
    expect_cifar_error(tmpdir, 0, VAE_ERR_FORMAT, "test_batch.bin", "3072 bytes");
}
END_TEST

START_TEST(cifar_empty_file)
{
    uint8_t none[1] = {0};
    write_cifar_set();
    write_file(0, "data_batch_5.bin", none, 0);
    expect_cifar_error(tmpdir, 1, VAE_ERR_FORMAT, "data_batch_5.bin", "0 bytes");
    write_file(0, "test_batch.bin", none, 0);
    expect_cifar_error(tmpdir, 0, VAE_ERR_FORMAT, "test_batch.bin", "0 bytes");
}
END_TEST

START_TEST(cifar_bad_label)
{
    static uint8_t buf[3 * CIFAR_RECORD];
    FILE *f;
    write_cifar_set();
    /* record 1 of data_batch_2.bin (record 3 overall) says 10; the files
       before it have been read by then and must be freed */
    f = fopen(cifar_path("data_batch_2.bin"), "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(buf, 1, sizeof buf, f), 3 * CIFAR_RECORD);
    fclose(f);
    buf[CIFAR_RECORD] = 10;
    write_file(0, "data_batch_2.bin", buf, 3 * CIFAR_RECORD);
    expect_cifar_error(tmpdir, 1, VAE_ERR_FORMAT, "data_batch_2.bin", "record 1 has label 10");
    /* the first record of the test file */
    buf[0] = 255;
    write_file(0, "test_batch.bin", buf, CIFAR_RECORD);
    expect_cifar_error(tmpdir, 0, VAE_ERR_FORMAT, "test_batch.bin", "record 0 has label 255");
}
END_TEST

START_TEST(cifar_too_many_records)
{
    /* a sparse file of 100,001 records (300 MB): refused from its size,
       before anything is allocated or read */
    write_cifar_set();
    ck_assert_int_eq(truncate(cifar_path("data_batch_5.bin"), (off_t)100001 * CIFAR_RECORD), 0);
    expect_cifar_error(tmpdir, 1, VAE_ERR_FORMAT, "data_batch_5.bin",
                       "100001 records, more than the 100000 allowed");
    ck_assert_int_eq(truncate(cifar_path("data_batch_5.bin"), 0), 0); /* frees the blocks */
}
END_TEST

START_TEST(cifar_bad_arguments)
{
    vae_dataset *ds = (vae_dataset *)&ds;
    write_cifar_set();
    ck_assert_int_eq(vae_dataset_load_cifar10(NULL, tmpdir, 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_load_cifar10(NULL, tmpdir, 0), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, NULL, 1), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, NULL, 0), VAE_ERR_ARGUMENT);
    ck_assert_ptr_eq(ds, (vae_dataset *)&ds);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "vae_dataset_load_cifar10"));
    /* an empty name is not the root directory */
    ck_assert_int_eq(vae_dataset_load_cifar10(&ds, "", 1), VAE_ERR_ARGUMENT);
    ck_assert_ptr_eq(ds, (vae_dataset *)&ds);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "empty"));
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *idx = tcase_create("idx"), *host = tcase_create("host");
    TCase *cifar = tcase_create("cifar");
    tcase_add_unchecked_fixture(idx, make_tmpdir, remove_tmpdir);
    tcase_add_unchecked_fixture(host, make_tmpdir, remove_tmpdir);
    tcase_add_unchecked_fixture(cifar, make_tmpdir, remove_tmpdir);
    tcase_add_test(idx, load_plain_and_gz);
    tcase_add_test(idx, load_without_labels);
    tcase_add_test(idx, load_rank_2_and_4);
    tcase_add_test(idx, bad_magic);
    tcase_add_test(idx, wrong_type_byte);
    tcase_add_test(idx, wrong_rank);
    tcase_add_test(idx, truncated_pixels);
    tcase_add_test(idx, truncated_gzip_stream);
    tcase_add_test(idx, truncated_header);
    tcase_add_test(idx, trailing_bytes);
    tcase_add_test(idx, count_mismatch);
    tcase_add_test(idx, zero_and_oversized);
    tcase_add_test(idx, big_claim_small_file);
    tcase_add_test(idx, claims_checked_before_allocating);
    tcase_add_test(idx, labels_counted_before_reading);
    tcase_add_test(idx, pipe_sources);
    tcase_add_test(idx, missing_files);
    tcase_add_test(idx, corrupt_gzip);
    tcase_add_test(host, null_arguments);
    tcase_add_test(host, from_u8_with_labels);
    tcase_add_test(host, from_f32_without_labels);
    tcase_add_test(host, from_bad_shapes);
    tcase_add_test(host, truncate_rows);
    tcase_add_test(host, get_ranges);
    tcase_add_test(host, rows_by_index);
    tcase_add_test(host, negative_labels_rejected);
    tcase_add_test(cifar, cifar_train_split);
    tcase_add_test(cifar, cifar_test_split);
    tcase_add_test(cifar, cifar_missing_file);
    tcase_add_test(cifar, cifar_not_a_file);
    tcase_add_test(cifar, cifar_partial_record);
    tcase_add_test(cifar, cifar_empty_file);
    tcase_add_test(cifar, cifar_bad_label);
    tcase_add_test(cifar, cifar_too_many_records);
    tcase_add_test(cifar, cifar_bad_arguments);
    suite_add_tcase(s, idx);
    suite_add_tcase(s, host);
    suite_add_tcase(s, cifar);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(data_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
