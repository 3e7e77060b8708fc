/* Model files: round trips, exact resumption of training (between and
   within epochs), the training-state flag, rejection of corrupt, truncated,
   foreign and doctored files, and atomic saving. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { IN = 12, HIDDEN = 8, LATENT = 2, ROWS = 200, BATCH = 32 };

/* ---- a scratch directory per test ---- */
static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/vae_test_model_file_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Removes tmpdir with its files and the files of its subdirectories. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    struct stat st;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            remove_dir(path);
        else
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void remove_tmpdir(void) { remove_dir(tmpdir); }

/* tmpdir/name in one of four static slots. */
static const char *in_tmp(int slot, const char *name)
{
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmpdir, name);
    return paths[slot];
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *d;
    long n;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    d = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(d, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return d;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Entries of a directory other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- models and data ---- */
static uint8_t pixel(int64_t r, int j)
{
    int k = (int)(r % 4), noise = (int)((r * 7 + j * 13) % 23);
    return (uint8_t)(j / 3 == k ? 230 + noise : noise);
}

static vae_dataset *make_data(void)
{
    uint8_t bytes[ROWS * IN];
    int dims[1] = {IN};
    vae_dataset *ds = NULL;
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < IN; j++)
            bytes[r * IN + j] = pixel(r, j);
    ck_assert_int_eq(vae_dataset_from_u8(&ds, ROWS, 1, dims, bytes, NULL, 1.0f / 255.0f), VAE_OK);
    return ds;
}

static vae_tensor *tensor2(int64_t rows, int64_t cols)
{
    int64_t dims[2] = {rows, cols};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, 2, dims), VAE_OK);
    return t;
}

static vae_model *make_vae(uint64_t seed, int threads)
{
    vae_model *m = tu_small_vae(IN, HIDDEN, LATENT, VAE_ACT_TANH, seed);
    ck_assert_int_eq(vae_model_set_threads(m, threads), VAE_OK);
    return m;
}

static vae_optimizer *make_optimizer(vae_model *m, vae_optimizer_kind kind)
{
    vae_optimizer *opt = NULL;
    ck_assert_int_eq(vae_optimizer_create(&opt, m, kind), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 1e-2), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_CLIP_NORM, 5.0), VAE_OK);
    return opt;
}

static vae_optimizer *make_adam(vae_model *m) { return make_optimizer(m, VAE_OPTIMIZER_ADAM); }

static float *params_of(const vae_model *m)
{
    int64_t n = vae_model_param_count(m);
    float *p = malloc((size_t)n * sizeof *p);
    ck_assert_int_eq(vae_model_params_get(m, p, n), VAE_OK);
    return p;
}

static void expect_same_params(const vae_model *a, const vae_model *b)
{
    float *pa = params_of(a), *pb = params_of(b);
    ck_assert_int_eq(vae_model_param_count(a), vae_model_param_count(b));
    ck_assert_mem_eq(pa, pb, (size_t)vae_model_param_count(a) * sizeof *pa);
    free(pa);
    free(pb);
}

/* A trained model saved without an optimizer (to tmpdir/model.vae). */
static void save_trained(const char *path)
{
    vae_model *m = make_vae(5, 1);
    vae_optimizer *opt = make_adam(m);
    vae_dataset *ds = make_data();
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, BATCH, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}

/* Save, load: the same parameters bit for bit, the same encodings,
   decodings and evaluation; no training state; saving the loaded model
   writes the same bytes. */
/* vae_model_load_from_memory: the bytes of a saved file give the model
   and training state vae_model_load gives; every shorter prefix and every
   single flipped byte is refused with a status, never a crash; NULLs. */
START_TEST(test_load_from_memory)
{
    const char *path = in_tmp(0, "memory.vae");
    vae_model *m = make_vae(1, 1), *l = NULL;
    vae_optimizer *opt = make_adam(m), *restored = NULL;
    vae_dataset *ds = make_data();
    unsigned char *bytes;
    size_t len;
    int refused = 0;
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, BATCH, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK);
    bytes = read_all(path, &len);
    ck_assert_int_eq(vae_model_load_from_memory(&l, bytes, len), VAE_OK);
    expect_same_params(m, l);
    ck_assert_int_eq(vae_model_epoch(l), 1);
    ck_assert_int_eq(vae_optimizer_restore(&restored, l), VAE_OK);
    ck_assert_int_eq(vae_optimizer_steps(restored), vae_optimizer_steps(opt));
    vae_optimizer_free(restored);
    vae_model_free(l);
    for (size_t n = 0; n < len; n += n < 64 ? 1 : 37) {
        l = NULL;
        ck_assert_int_eq(vae_model_load_from_memory(&l, bytes, n), VAE_ERR_FORMAT);
        ck_assert_ptr_null(l);
        refused++;
    }
    for (size_t i = 0; i < len; i += 13) {
        vae_status s;
        l = NULL;
        bytes[i] ^= 0x40;
        s = vae_model_load_from_memory(&l, bytes, len);
        bytes[i] ^= 0x40;
        ck_assert_msg(s == VAE_ERR_CHECKSUM || s == VAE_ERR_FORMAT, "byte %zu: %d", i, s);
        ck_assert_ptr_null(l);
        refused++;
    }
    ck_assert_str_eq(vae_last_error() + strlen(vae_last_error()) - strlen("corrupt"), "corrupt");
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "(model in memory)"));
    ck_assert_int_eq(vae_model_load_from_memory(NULL, bytes, len), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_load_from_memory(&l, NULL, len), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_load_from_memory(&l, NULL, 0), VAE_ERR_FORMAT);
    ck_assert_int_gt(refused, 100);
    free(bytes);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
}
END_TEST

START_TEST(test_round_trip)
{
    const char *path = in_tmp(0, "model.vae"), *path2 = in_tmp(1, "again.vae");
    vae_model *m = make_vae(1, 1), *l = NULL;
    vae_optimizer *opt = make_adam(m), *restored = NULL;
    vae_dataset *ds = make_data();
    vae_tensor *x = tensor2(9, IN), *z = tensor2(9, LATENT);
    vae_tensor *mu_a = tensor2(9, LATENT), *lv_a = tensor2(9, LATENT), *out_a = tensor2(9, IN);
    vae_tensor *mu_b = tensor2(9, LATENT), *lv_b = tensor2(9, LATENT), *out_b = tensor2(9, IN);
    unsigned char *f1, *f2;
    size_t n1, n2;
    double e_a, e_b;
    ck_assert_int_eq(vae_model_train_epoch(m, opt, ds, BATCH, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_int_eq(vae_model_has_training_state(l), 0);
    ck_assert_int_eq(vae_optimizer_restore(&restored, l), VAE_ERR_STATE);
    ck_assert_ptr_null(restored);
    expect_same_params(m, l);
    ck_assert_int_eq(vae_model_input_size(l), IN);
    ck_assert_int_eq(vae_model_latent_size(l), LATENT);
    ck_assert_int_eq(vae_graph_node_count(vae_model_graph(l)), vae_graph_node_count(vae_model_graph(m)));
    ck_assert_int_eq(vae_graph_find(vae_model_graph(l), "p.logits.w"),
                     vae_graph_find(vae_model_graph(m), "p.logits.w"));
    for (int r = 0; r < VAE_ROLE_COUNT_; r++)
        ck_assert_int_eq(vae_graph_role(vae_model_graph(l), (vae_role)r),
                         vae_graph_role(vae_model_graph(m), (vae_role)r));
    ck_assert_int_eq(vae_dataset_get(ds, 3, x), VAE_OK);
    tu_random(vae_tensor_data(z), 9 * LATENT, 4, -2.0f, 2.0f);
    ck_assert_int_eq(vae_model_decode(m, z, out_a), VAE_OK);
    ck_assert_int_eq(vae_model_decode(l, z, out_b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(out_a), vae_tensor_data(out_b), 9 * IN * sizeof(float));
    ck_assert_int_eq(vae_model_encode(m, x, mu_a, lv_a), VAE_OK);
    ck_assert_int_eq(vae_model_encode(l, x, mu_b, lv_b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(mu_a), vae_tensor_data(mu_b), 9 * LATENT * sizeof(float));
    ck_assert_mem_eq(vae_tensor_data(lv_a), vae_tensor_data(lv_b), 9 * LATENT * sizeof(float));
    ck_assert_int_eq(vae_model_reconstruct(m, x, out_a), VAE_OK);
    ck_assert_int_eq(vae_model_reconstruct(l, x, out_b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(out_a), vae_tensor_data(out_b), 9 * IN * sizeof(float));
    ck_assert_int_eq(vae_model_evaluate(m, ds, &e_a), VAE_OK);
    ck_assert_int_eq(vae_model_evaluate(l, ds, &e_b), VAE_OK);
    ck_assert_double_eq(e_a, e_b);
    ck_assert_int_eq(vae_model_save(l, NULL, path2), VAE_OK);
    f1 = read_all(path, &n1);
    f2 = read_all(path2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(f1, f2, n1);
    free(f1);
    free(f2);
    vae_tensor *ts[] = {x, z, mu_a, lv_a, out_a, mu_b, lv_b, out_b};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        vae_tensor_free(ts[i]);
    vae_optimizer_free(opt);
    vae_dataset_free(ds);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

/* Exact resume between epochs (loop: 1 and 2 threads times SGD, RMSprop
   and Adam): A trains 3 epochs; B trains 1, is saved with its optimizer
   and loaded as C, which restores the optimizer and trains 2 more: C ends
   bit-identical to A, with the same epoch and step counts and the
   optimizer's settings. */
START_TEST(test_resume_between_epochs)
{
    int threads = 1 + _i % 2;
    vae_optimizer_kind kind = (vae_optimizer_kind)(_i / 2);
    const char *path = in_tmp(0, "resume.vae");
    vae_model *a = make_vae(21, threads), *b = make_vae(21, threads), *c = NULL;
    vae_optimizer *oa = make_optimizer(a, kind), *ob = make_optimizer(b, kind), *oc = NULL;
    vae_dataset *ds = make_data();
    double na = 0, nc = 0, v;
    for (int e = 0; e < 3; e++)
        ck_assert_int_eq(vae_model_train_epoch(a, oa, ds, BATCH, NULL, NULL, NULL, &na), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(b, ob, ds, BATCH, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_save(b, ob, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&c, path), VAE_OK);
    ck_assert_int_eq(vae_model_has_training_state(c), 1);
    ck_assert_int_eq(vae_model_epoch(c), 1);
    ck_assert_int_eq(vae_model_epoch_position(c), 0);
    ck_assert_int_eq(vae_model_set_threads(c, threads), VAE_OK);
    ck_assert_int_eq(vae_optimizer_restore(&oc, c), VAE_OK);
    ck_assert_int_eq(vae_model_has_training_state(c), 0);
    ck_assert_int_eq(vae_optimizer_steps(oc), 7);
    ck_assert_int_eq(vae_optimizer_get(oc, VAE_OPT_LEARNING_RATE, &v), VAE_OK);
    ck_assert_double_eq(v, 1e-2);
    ck_assert_int_eq(vae_optimizer_get(oc, VAE_OPT_CLIP_NORM, &v), VAE_OK);
    ck_assert_double_eq(v, 5.0);
    for (int e = 0; e < 2; e++)
        ck_assert_int_eq(vae_model_train_epoch(c, oc, ds, BATCH, NULL, NULL, NULL, &nc), VAE_OK);
    expect_same_params(a, c);
    ck_assert_double_eq(na, nc);
    ck_assert_int_eq(vae_model_epoch(c), 3);
    ck_assert_int_eq(vae_optimizer_steps(oc), vae_optimizer_steps(oa));
    vae_optimizer_free(oa);
    vae_optimizer_free(ob);
    vae_optimizer_free(oc);
    vae_dataset_free(ds);
    vae_model_free(a);
    vae_model_free(b);
    vae_model_free(c);
}
END_TEST

static int stop_after_3(void *user, int batch, int batch_count, float objective)
{
    (void)user;
    (void)batch_count;
    (void)objective;
    return batch == 3;
}

/* Exact resume within an epoch (loop: 1 and 2 threads): B is stopped by
   its callback after batch 3 of epoch 2, saved, loaded as C, which
   finishes the epoch: the same parameters and the same epoch -ELBO as
   A's uninterrupted two epochs. */
START_TEST(test_resume_mid_epoch)
{
    int threads = _i;
    const char *path = in_tmp(0, "mid.vae");
    vae_model *a = make_vae(22, threads), *b = make_vae(22, threads), *c = NULL;
    vae_optimizer *oa = make_adam(a), *ob = make_adam(b), *oc = NULL;
    vae_dataset *ds = make_data();
    double na_obj = 0, na = 0, nc_obj = 0, nc = 0;
    for (int e = 0; e < 2; e++)
        ck_assert_int_eq(vae_model_train_epoch(a, oa, ds, BATCH, NULL, NULL, &na_obj, &na), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(b, ob, ds, BATCH, NULL, NULL, NULL, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(b, ob, ds, BATCH, stop_after_3, NULL, NULL, NULL),
                     VAE_ERR_STOPPED);
    ck_assert_int_eq(vae_model_epoch_position(b), 3);
    ck_assert_int_eq(vae_model_save(b, ob, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&c, path), VAE_OK);
    ck_assert_int_eq(vae_model_epoch(c), 1);
    ck_assert_int_eq(vae_model_epoch_position(c), 3);
    ck_assert_int_eq(vae_model_set_threads(c, threads), VAE_OK);
    ck_assert_int_eq(vae_optimizer_restore(&oc, c), VAE_OK);
    ck_assert_int_eq(vae_model_train_epoch(c, oc, ds, BATCH, NULL, NULL, &nc_obj, &nc), VAE_OK);
    expect_same_params(a, c);
    ck_assert_double_eq(na, nc);
    ck_assert_double_eq(na_obj, nc_obj);
    ck_assert_int_eq(vae_model_epoch(c), 2);
    ck_assert_int_eq(vae_model_epoch_position(c), 0);
    vae_optimizer_free(oa);
    vae_optimizer_free(ob);
    vae_optimizer_free(oc);
    vae_dataset_free(ds);
    vae_model_free(a);
    vae_model_free(b);
    vae_model_free(c);
}
END_TEST

/* The training-state flag: set by a file saved with an optimizer, cleared
   by restoring it; restoring without one is VAE_ERR_STATE. */
START_TEST(test_training_state_flag)
{
    const char *with = in_tmp(0, "with.vae"), *without = in_tmp(1, "without.vae");
    vae_model *m = make_vae(2, 1), *l1 = NULL, *l2 = NULL;
    vae_optimizer *opt = make_adam(m), *r = NULL;
    ck_assert_int_eq(vae_model_has_training_state(m), 0);
    ck_assert_int_eq(vae_optimizer_restore(&r, m), VAE_ERR_STATE);
    ck_assert_int_eq(vae_optimizer_restore(NULL, m), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_optimizer_restore(&r, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_save(m, opt, with), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, NULL, without), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l1, with), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l2, without), VAE_OK);
    ck_assert_int_eq(vae_model_has_training_state(l1), 1);
    ck_assert_int_eq(vae_model_has_training_state(l2), 0);
    ck_assert_int_eq(vae_optimizer_restore(&r, l2), VAE_ERR_STATE);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(vae_optimizer_restore(&r, l1), VAE_OK);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(vae_model_has_training_state(l1), 0);
    vae_optimizer_free(r);
    r = NULL;
    ck_assert_int_eq(vae_optimizer_restore(&r, l1), VAE_ERR_STATE); /* only once */
    /* a model loaded with a state it never restores frees it */
    vae_model_free(l1);
    ck_assert_int_eq(vae_model_load(&l1, with), VAE_OK);
    vae_optimizer_free(opt);
    vae_model_free(m);
    vae_model_free(l1);
    vae_model_free(l2);
}
END_TEST

/* Expects load to fail with one of two statuses, *out untouched and the
   message naming the file. */
static void expect_load_fails(const char *path, vae_status s1, vae_status s2, const char *what)
{
    vae_model *l = NULL;
    vae_status s = vae_model_load(&l, path);
    ck_assert_msg(s == s1 || s == s2, "%s: load returned %d (%s): %s", what, (int)s,
                  vae_strerror(s), vae_last_error());
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(vae_last_error(), path) != NULL, "%s: message '%s' lacks the path",
                  what, vae_last_error());
}

/* One flipped byte in the middle: checksum mismatch.  Truncations at 0, 7,
   20, half and len-1 bytes: format (or checksum) errors.  Foreign files
   (PNG, text): format.  A missing file: I/O. */
START_TEST(test_corrupt_files)
{
    const char *path = in_tmp(0, "model.vae"), *bad = in_tmp(1, "bad.vae");
    unsigned char *d, *copy;
    size_t len, cuts[5];
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                        'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0};
    static const char text[] = "This is not a model file, just some text that is long enough.\n";
    save_trained(path);
    d = read_all(path, &len);
    copy = malloc(len);

    memcpy(copy, d, len);
    copy[len / 2] ^= 0x40;
    write_all(bad, copy, len);
    expect_load_fails(bad, VAE_ERR_CHECKSUM, VAE_ERR_CHECKSUM, "flipped byte");

    /* bytes changed near the end (the last payload byte, the end marker,
       the checksum): still corruption, not a truncation */
    for (size_t back = 1; back <= 12; back += 5) {
        char what[64];
        snprintf(what, sizeof what, "byte %zu from the end flipped", back);
        memcpy(copy, d, len);
        copy[len - back] ^= 0x01;
        write_all(bad, copy, len);
        expect_load_fails(bad, VAE_ERR_CHECKSUM, VAE_ERR_CHECKSUM, what);
        ck_assert_ptr_nonnull(strstr(vae_last_error(), "checksum"));
    }

    cuts[0] = 0, cuts[1] = 7, cuts[2] = 20, cuts[3] = len / 2, cuts[4] = len - 1;
    for (int i = 0; i < 5; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", cuts[i]);
        write_all(bad, d, cuts[i]);
        expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, what);
        if (cuts[i] >= 16)
            ck_assert_msg(strstr(vae_last_error(), "truncated"), "%s: %s", what, vae_last_error());
    }
    write_all(bad, png, sizeof png);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "png");
    write_all(bad, text, sizeof text - 1);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "text");
    /* the magic alone, and a newer format version */
    write_all(bad, d, 16);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "header only");
    memcpy(copy, d, len);
    copy[8] = 3;
    write_all(bad, copy, len);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "version 3");
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "newer libvae"));
    expect_load_fails(in_tmp(2, "missing.vae"), VAE_ERR_IO, VAE_ERR_IO, "missing");
    free(copy);
    free(d);
}
END_TEST

/* A directory is not a model file: VAE_ERR_IO naming it (fopen succeeds on
   a directory and ftell gives LONG_MAX on ext4). */
START_TEST(test_load_directory)
{
    expect_load_fails(tmpdir, VAE_ERR_IO, VAE_ERR_IO, "a directory");
}
END_TEST

/* ---- doctoring a file and fixing its checksum ---- */
/* Layout (model_file.c): magic 8, version 4, sections 4, then "GRPH",
   u64 length, seed u64, role count u32, the roles u32, node count u32, and
   per node: op, n_in, in[4], batched, ndim, dims[3] (u32 each), fattr[2]
   (f32), iattr[4] (u32), name length u32, name. */
enum { GRPH_LEN_AT = 20, ROLES_AT = 40, NODE_COUNT_AT = ROLES_AT + 4 * VAE_ROLE_COUNT_,
       NODES_AT = NODE_COUNT_AT + 4, NODE_FIXED = 72 };
enum { N_OP = 0, N_NIN = 4, N_IN0 = 8, N_BATCHED = 24, N_NDIM = 28, N_DIM0 = 32,
       N_IATTR0 = 52, N_NAMELEN = 68 };

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static size_t node_at(const unsigned char *d, int id)
{
    size_t at = NODES_AT;
    for (int k = 0; k < id; k++)
        at += NODE_FIXED + rd32(d + at + N_NAMELEN);
    return at;
}

static size_t section_at(const unsigned char *d, size_t len, const char *tag)
{
    size_t at = 16;
    while (at + 12 <= len && memcmp(d + at, tag, 4) != 0)
        at += 12 + (size_t)(rd32(d + at + 4) | (uint64_t)rd32(d + at + 8) << 32);
    ck_assert_uint_le(at + 12, len);
    return at;
}

static void fix_crc(unsigned char *d, size_t len)
{
    wr32(d + len - 4, (uint32_t)crc32(0L, d, (uInt)(len - 4)));
}

typedef struct doctoring {
    const char *what;
    const char *section; /* NULL: the graph's node `node`, else a section */
    int node;            /* node id (or role index for "role") */
    size_t offset;       /* in the node record or the section */
    uint32_t value;
} doctoring;

/* Applies each doctoring to the file saved at path, fixes the checksum and
   expects VAE_ERR_FORMAT naming the file. */
static void expect_doctored_fail(const char *path, const doctoring *cases, size_t n_cases)
{
    const char *bad = in_tmp(1, "doctored.vae");
    unsigned char *d, *copy;
    size_t len;
    d = read_all(path, &len);
    copy = malloc(len);
    for (size_t i = 0; i < n_cases; i++) {
        const doctoring *c = &cases[i];
        size_t at;
        memcpy(copy, d, len);
        if (!c->section)
            at = node_at(d, c->node) + c->offset;
        else if (strcmp(c->section, "node count") == 0)
            at = NODE_COUNT_AT;
        else if (strcmp(c->section, "role count") == 0)
            at = ROLES_AT - 4;
        else if (strcmp(c->section, "role") == 0)
            at = ROLES_AT + 4 * (size_t)c->node;
        else
            at = section_at(d, len, c->section) + c->offset;
        if (c->section && strcmp(c->section, "node count") == 0 && c->value == 1)
            wr32(copy + at, rd32(d + at) + 1);
        else
            wr32(copy + at, c->value);
        fix_crc(copy, len);
        write_all(bad, copy, len);
        expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, c->what);
    }
    free(copy);
    free(d);
}

/* Files with a valid checksum but a graph the builders refuse, or other
   inconsistent contents: VAE_ERR_FORMAT naming the file, no crash. */
START_TEST(test_doctored_graph)
{
    const char *path = in_tmp(0, "model.vae");
    vae_model *ref = make_vae(5, 1);
    const vae_graph *g = vae_model_graph(ref);
    int enc_w = vae_graph_find(g, "enc.w"), x = vae_graph_role(g, VAE_ROLE_INPUT);
    int matmul = enc_w + 2, relu = enc_w + 4;
    const doctoring cases[] = {
        {"enc.w 12x9", NULL, enc_w, N_DIM0 + 4, 9},
        {"enc.w 13x8", NULL, enc_w, N_DIM0, 13},
        {"input of 13", NULL, x, N_DIM0, 13},
        {"unknown op", NULL, relu, N_OP, 99},
        {"op with other arity", NULL, relu, N_OP, 3 /* matmul */},
        {"forward reference", NULL, matmul, N_IN0, (uint32_t)matmul},
        {"input -2", NULL, matmul, N_IN0 + 4, (uint32_t)-2},
        {"unused input slot set", NULL, relu, N_IN0 + 4, 0},
        {"input slot count", NULL, relu, N_NIN, 2},
        {"no dims", NULL, enc_w, N_NDIM, 0},
        {"4 dims", NULL, enc_w, N_NDIM, 4},
        {"param dim 0", NULL, enc_w, N_DIM0, 0},
        {"batched param", NULL, enc_w, N_BATCHED, 1},
        {"huge name", NULL, relu, N_NAMELEN, 100000},
        {"shape of relu", NULL, relu, N_DIM0, 7},
        {"node count + 1", "node count", 0, 0, 1},
        {"node count huge", "node count", 0, 0, 1u << 30},
        {"parameter count", "PARM", 0, 12, 5},
        {"section length", "PARM", 0, 4, 1u << 30},
        {"section tag", "PARM", 0, 0, 0x4d524150 ^ 0x20},
        {"role count + 1", "role count", 0, 0, VAE_ROLE_COUNT_ + 1},
        {"role count 7", "role count", 0, 0, 7},
        {"role past the end", "role", VAE_ROLE_DECODED, 0, 1000},
    };
    unsigned char *d;
    size_t len;
    save_trained(path);
    d = read_all(path, &len);
    /* the layout is as assumed */
    ck_assert_int_eq(rd32(d + NODE_COUNT_AT), vae_graph_node_count(g));
    ck_assert_int_eq(rd32(d + node_at(d, enc_w) + N_DIM0 + 4), HIDDEN);
    ck_assert_int_eq(rd32(d + node_at(d, relu) + N_OP), OP_RELU);
    ck_assert_int_eq(rd32(d + node_at(d, matmul) + N_OP), OP_MATMUL);
    expect_doctored_fail(path, cases, sizeof cases / sizeof *cases);
    free(d);
    vae_model_free(ref);
}
END_TEST

/* Roles the graph builders accept but that make no model (a missing role,
   the input role on a parameter, the latent role on mu so that decoding
   needs x): a malformed file, VAE_ERR_FORMAT (not VAE_ERR_STATE). */
START_TEST(test_doctored_roles)
{
    const char *path = in_tmp(0, "model.vae");
    vae_model *ref = make_vae(5, 1);
    const vae_graph *g = vae_model_graph(ref);
    int enc_w = vae_graph_find(g, "enc.w"), mu = vae_graph_role(g, VAE_ROLE_LATENT_MEAN);
    const doctoring cases[] = {
        {"no latent role", "role", VAE_ROLE_LATENT, 0, (uint32_t)-1},
        {"input role on a parameter", "role", VAE_ROLE_INPUT, 0, (uint32_t)enc_w},
        {"latent role on mu", "role", VAE_ROLE_LATENT, 0, (uint32_t)mu},
        /* what fuzzing found: roles whose shapes nobody checked */
        {"log-variance role on the decoded node", "role", VAE_ROLE_LATENT_LOGVAR, 0,
         (uint32_t)vae_graph_role(g, VAE_ROLE_DECODED)},
        {"decoded role on a parameter", "role", VAE_ROLE_DECODED, 0, (uint32_t)enc_w},
        {"-ELBO role on the objective", "role", VAE_ROLE_NELBO, 0,
         (uint32_t)vae_graph_role(g, VAE_ROLE_OBJECTIVE)},
    };
    save_trained(path);
    expect_doctored_fail(path, cases, sizeof cases / sizeof *cases);
    vae_model_free(ref);
}
END_TEST

/* A file written by libvae 0.1 has 8 roles and no log-weight node: it
   loads, evaluates as before, and refuses only the importance-weighted
   estimate, clearly. */
START_TEST(test_load_0_1_file)
{
    const char *path = in_tmp(0, "model.vae"), *old = in_tmp(1, "old.vae");
    vae_model *ref = make_vae(5, 1), *m = NULL;
    vae_dataset *data = NULL;
    unsigned char *d, *copy;
    size_t len, cut = ROLES_AT + 4 * VAE_ROLE_LOG_WEIGHT, drop;
    uint32_t grph_len;
    double before, after, log_px;
    save_trained(path);
    ck_assert_int_eq(vae_model_load(&m, path), VAE_OK);
    data = make_data();
    ck_assert_int_eq(vae_model_evaluate(m, data, &before), VAE_OK);
    vae_model_free(m);
    /* keep the first 8 roles: the section shorter by the others */
    d = read_all(path, &len);
    copy = malloc(len);
    drop = 4 * (VAE_ROLE_COUNT_ - VAE_ROLE_LOG_WEIGHT);
    memcpy(copy, d, cut);
    memcpy(copy + cut, d + cut + drop, len - cut - drop);
    wr32(copy + ROLES_AT - 4, 8);
    grph_len = rd32(d + GRPH_LEN_AT);
    wr32(copy + GRPH_LEN_AT, grph_len - (uint32_t)drop);
    fix_crc(copy, len - drop);
    write_all(old, copy, len - drop);
    ck_assert_int_eq(vae_model_load(&m, old), VAE_OK);
    ck_assert_int_eq(vae_graph_role(vae_model_graph(m), VAE_ROLE_LOG_WEIGHT), -1);
    ck_assert_int_eq(vae_model_evaluate(m, data, &after), VAE_OK);
    ck_assert_double_eq(before, after);
    ck_assert_int_eq(vae_model_log_likelihood(m, data, 4, 1, NULL, NULL, &log_px, NULL),
                     VAE_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "log-weight"));
    vae_model_free(m);
    vae_dataset_free(data);
    free(copy);
    free(d);
    vae_model_free(ref);
}
END_TEST

/* The message of a refused node keeps the builder's own explanation. */
START_TEST(test_doctored_message)
{
    const char *path = in_tmp(0, "model.vae"), *bad = in_tmp(1, "doctored.vae");
    vae_model *ref = make_vae(5, 1);
    int enc_w = vae_graph_find(vae_model_graph(ref), "enc.w");
    unsigned char *d, *copy;
    size_t len;
    save_trained(path);
    d = read_all(path, &len);
    copy = malloc(len);
    memcpy(copy, d, len);
    wr32(copy + node_at(d, enc_w) + N_DIM0, 13);
    fix_crc(copy, len);
    write_all(bad, copy, len);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "enc.w 13x8");
    ck_assert_msg(strstr(vae_last_error(), "node 3 (matmul) does not fit its inputs: vae_op_matmul: "
                         "input rows have 12 elements, weight expects 13") != NULL,
                  "garbled message: '%s'", vae_last_error());
    free(copy);
    free(d);
    vae_model_free(ref);
}
END_TEST

static long max_rss_kb(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

/* A 3 KB file whose enc.w claims 8192 x 8192 floats is refused as
   malformed without the loader allocating and filling 256 MB first (in a
   container with a memory limit that would be an OOM kill, not an error;
   8192 x 8192 keeps the test cheap, 32768 x 32768 takes 4 GB). */
START_TEST(test_doctored_huge_parameter)
{
    const char *path = in_tmp(0, "model.vae"), *bad = in_tmp(1, "doctored.vae");
    vae_model *ref = make_vae(5, 1), *l = NULL;
    int enc_w = vae_graph_find(vae_model_graph(ref), "enc.w");
    unsigned char *d;
    size_t len;
    long before;
    vae_status s;
    save_trained(path);
    d = read_all(path, &len);
    wr32(d + node_at(d, enc_w) + N_DIM0, 8192);
    wr32(d + node_at(d, enc_w) + N_DIM0 + 4, 8192);
    fix_crc(d, len);
    write_all(bad, d, len);
    before = max_rss_kb();
    s = vae_model_load(&l, bad);
    ck_assert_int_eq(s, VAE_ERR_FORMAT);
    ck_assert_msg(max_rss_kb() - before < 64 * 1024, "loading a %zu-byte file raised the peak "
                  "memory by %ld MB", len, (max_rss_kb() - before) / 1024);
    free(d);
    vae_model_free(ref);
}
END_TEST

/* Every vae_optimizer_option, as a format-2 file counts them. */
#define OPT_SETTINGS_SAVED (VAE_OPT_WARMUP_STEPS + 1)

/* Training-state sections with bad contents and a valid checksum. */
START_TEST(test_doctored_training_state)
{
    const char *path = in_tmp(0, "model.vae"), *bad = in_tmp(1, "doctored.vae");
    vae_model *m = make_vae(5, 1);
    vae_optimizer *opt = make_adam(m);
    unsigned char *d, *copy;
    size_t len, tran;
    /* TRAN payload (format 2): epoch u32, position u32, batch u32, steps
       u64, 2 f64 sums, images u64, kind u32 @44, settings count u32 @48,
       the settings (f64 each, as many as vae_optimizer_option has) @52,
       optimizer steps u64, moment arrays u32, then each array's count u64
       and values */
    enum { KIND = 44, SETTINGS = 52, COUNT = OPT_SETTINGS_SAVED,
           OPT_STEPS = SETTINGS + 8 * COUNT, MOMENTS = OPT_STEPS + 8, MOMENT1 = MOMENTS + 4 + 8 };
    const struct { const char *what; size_t offset; uint32_t value; } cases[] = {
        {"optimizer kind 7", 12 + KIND, 7},
        {"kind sgd (one moment array)", 12 + KIND, VAE_OPTIMIZER_SGD},
        {"negative epoch", 12 + 0, 0x80000000u},
        {"moment count 3", 12 + MOMENTS, 3},
        {"section shorter", 4, 100},
        {"negative optimizer steps", 12 + OPT_STEPS + 4, 0x80000000u},
        {"negative training steps", 12 + 12 + 4, 0x80000000u},
        {"a position without images", 12 + 4, 3},
    };
    /* settings that vae_optimizer_set refuses, and moments no training
       makes: the first step would turn every weight NaN or infinite */
    const struct { const char *what, *names; size_t offset; double value; } floats[] = {
        {"NaN learning rate", "learning rate", 12 + SETTINGS, NAN},
        {"negative learning rate", "learning rate", 12 + SETTINGS, -1e-3},
        {"beta1 = 1", "beta1", 12 + SETTINGS + 8 * VAE_OPT_BETA1, 1.0},
        {"epsilon 0", "epsilon", 12 + SETTINGS + 8 * VAE_OPT_EPSILON, 0.0},
        {"infinite clip norm", "clip norm", 12 + SETTINGS + 8 * VAE_OPT_CLIP_NORM, INFINITY},
        {"NaN epoch sum", "training state", 12 + 20, NAN},
    };
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK);
    d = read_all(path, &len);
    copy = malloc(len);
    tran = section_at(d, len, "TRAN");
    ck_assert_int_eq(rd32(d + tran + 12 + KIND), VAE_OPTIMIZER_ADAM);
    ck_assert_int_eq(rd32(d + tran + 12 + 48), COUNT);
    ck_assert_int_eq(rd32(d + tran + 12 + MOMENTS), 2);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memcpy(copy, d, len);
        wr32(copy + tran + cases[i].offset, cases[i].value);
        fix_crc(copy, len);
        write_all(bad, copy, len);
        expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, cases[i].what);
    }
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        memcpy(copy, d, len);
        memcpy(copy + tran + floats[i].offset, &floats[i].value, 8);
        fix_crc(copy, len);
        write_all(bad, copy, len);
        expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, floats[i].what);
        ck_assert_msg(strstr(vae_last_error(), floats[i].names), "%s: '%s' does not say %s",
                      floats[i].what, vae_last_error(), floats[i].names);
    }
    /* a NaN first moment and a negative second moment (Adam's v) */
    memcpy(copy, d, len);
    memcpy(copy + tran + 12 + MOMENT1, &(float){NAN}, 4);
    fix_crc(copy, len);
    write_all(bad, copy, len);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "NaN moment");
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "moment value 0 is nan"));
    memcpy(copy, d, len);
    /* v of the last parameter: the last 4 bytes of the section */
    memcpy(copy + tran + 12 + rd32(d + tran + 4) - 4, &(float){-1.0f}, 4);
    fix_crc(copy, len);
    write_all(bad, copy, len);
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "negative second moment");
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "is -1"));
    free(copy);
    free(d);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

/* The file at `path` with a section appended before the trailer. */
static void append_section(const char *path, const char *out, const char *tag)
{
    size_t len, n = 5;
    unsigned char *d = read_all(path, &len), *copy = malloc(len + 12 + n);
    memcpy(copy, d, len - 8);
    memcpy(copy + len - 8, tag, 4);
    memset(copy + len - 4, 0, 8);
    copy[len - 4] = (unsigned char)n;
    memcpy(copy + len + 4, "hello", n);
    memcpy(copy + len + 4 + n, d + len - 8, 8);
    wr32(copy + 12, rd32(d + 12) + 1);
    fix_crc(copy, len + 12 + n);
    write_all(out, copy, len + 12 + n);
    free(copy);
    free(d);
}

/* A newer libvae may add sections: an optional one (lower-case tag) is
   skipped, a critical one (upper-case) makes the file unreadable here. */
START_TEST(test_unknown_sections)
{
    const char *path = in_tmp(0, "model.vae"), *bad = in_tmp(1, "newer.vae");
    vae_model *m = NULL;
    save_trained(path);
    append_section(path, bad, "xtra");
    ck_assert_int_eq(vae_model_load(&m, bad), VAE_OK);
    ck_assert_int_eq(vae_model_latent_size(m), LATENT);
    vae_model_free(m);
    append_section(path, bad, "XTRA");
    expect_load_fails(bad, VAE_ERR_FORMAT, VAE_ERR_FORMAT, "critical section");
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "'XTRA'"));
}
END_TEST

/* Saving over a file leaves no temporary file behind; saving into a
   missing directory, or onto a directory, fails with VAE_ERR_IO, leaves
   the existing file untouched and no temporary file either. */
START_TEST(test_atomic_save)
{
    const char *path = in_tmp(0, "model.vae"), *sub = in_tmp(1, "sub");
    const char *missing = in_tmp(2, "missing/model.vae");
    vae_model *m = make_vae(3, 1), *l = NULL;
    vae_optimizer *opt = make_adam(m);
    unsigned char *before, *after;
    size_t n_before, n_after;
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_save(m, opt, path), VAE_OK); /* over it */
    ck_assert_int_eq(count_entries(tmpdir), 1);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);
    ck_assert_int_eq(vae_model_has_training_state(l), 1); /* the second save won */
    vae_model_free(l);
    before = read_all(path, &n_before);

    ck_assert_int_eq(vae_model_save(m, NULL, missing), VAE_ERR_IO);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), missing));
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(vae_model_save(m, NULL, sub), VAE_ERR_IO);
    ck_assert_int_eq(count_entries(tmpdir), 2); /* model.vae and sub */
    ck_assert_int_eq(count_entries(sub), 0);
    after = read_all(path, &n_after);
    ck_assert_uint_eq(n_before, n_after);
    ck_assert_mem_eq(before, after, n_before);
    ck_assert_int_eq(vae_model_save(m, NULL, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_save(NULL, NULL, path), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_model_load(NULL, path), VAE_ERR_ARGUMENT);
    free(before);
    free(after);
    vae_optimizer_free(opt);
    vae_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_file");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_load_from_memory);
    tcase_add_loop_test(tc, test_resume_between_epochs, 0, 6);
    tcase_add_loop_test(tc, test_resume_mid_epoch, 1, 3);
    tcase_add_test(tc, test_training_state_flag);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_load_directory);
    tcase_add_test(tc, test_doctored_graph);
    tcase_add_test(tc, test_doctored_roles);
    tcase_add_test(tc, test_doctored_message);
    tcase_add_test(tc, test_load_0_1_file);
    tcase_add_test(tc, test_doctored_huge_parameter);
    tcase_add_test(tc, test_doctored_training_state);
    tcase_add_test(tc, test_atomic_save);
    tcase_add_test(tc, test_unknown_sections);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
