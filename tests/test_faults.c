/* Failure injection, as sqlite tests it.  A whole scenario (build a VAE,
   plan it, train, save, load, evaluate) runs once for every allocation it
   makes, with that allocation failing: each run must end in
   VAE_ERR_NO_MEMORY, with no crash, no leak (the ASan stage checks) and
   no half-built handle.  Then every system call of a save fails in turn:
   VAE_ERR_IO, the previous file intact and loadable, no temporary file
   left. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { IN = 16, ROWS = 24, BATCH = 8 };

/* Everything a scenario creates; freed whatever happened. */
typedef struct handles {
    vae_graph *g;
    vae_model *m, *loaded, *clone;
    vae_optimizer *opt, *restored;
    vae_dataset *data;
    vae_model *from_memory, *frozen;
    vae_comm *comm;
    vae_dataset *floats, *idx, *cifar, *view, *train_part, *valid_part;
    vae_tensor *x, *z, *out;
    int half_built; /* a constructor failed but wrote its output */
} handles;

static void free_handles(handles *h)
{
    vae_graph_free(h->g);
    vae_model_free(h->m);
    vae_model_free(h->loaded);
    vae_model_free(h->clone);
    vae_optimizer_free(h->opt);
    vae_optimizer_free(h->restored);
    vae_dataset_free(h->data);
    vae_model_free(h->from_memory);
    vae_model_free(h->frozen);
    vae_comm_free(h->comm);
    vae_dataset_free(h->floats);
    vae_dataset_free(h->idx);
    vae_dataset_free(h->cifar);
    vae_dataset_free(h->view);
    vae_dataset_free(h->train_part);
    vae_dataset_free(h->valid_part);
    vae_tensor_free(h->x);
    vae_tensor_free(h->z);
    vae_tensor_free(h->out);
}

/* Any failure ends the scenario with its status. */
#define STEP(call)                          \
    do {                                    \
        vae_status step_ = (call);          \
        if (step_ != VAE_OK)                \
            return step_;                   \
    } while (0)

/* A constructor: on failure its output must still be NULL. */
#define MAKE(call, handle)                  \
    do {                                    \
        vae_status make_ = (call);          \
        if (make_ != VAE_OK) {              \
            h->half_built |= (handle) != NULL; \
            return make_;                   \
        }                                   \
    } while (0)

/* Encoder: a conv layer (or dense), Gaussian heads with a context; two IAF
   steps when flow is set; Bernoulli decoder. */
static vae_status build(handles *h, int conv, int flow)
{
    int in = IN, chw[3] = {1, 4, 4}, x, e, mu, lv, ctx, z0, z, ld = -1, ld2, logits, loss;
    MAKE(vae_graph_create(&h->g, 11), h->g);
    STEP(vae_graph_input(h->g, "x", 1, &in, &x));
    if (conv) {
        STEP(vae_op_reshape(h->g, x, 3, chw, &e));
        STEP(vae_layer_conv2d(h->g, e, 3, 3, 1, VAE_PADDING_SAME, VAE_ACT_RELU, "conv", &e));
    } else {
        STEP(vae_layer_dense(h->g, x, 12, VAE_ACT_RELU, "enc", &e));
    }
    STEP(vae_layer_gaussian_mlp(h->g, e, 8, VAE_ACT_TANH, 3, flow ? 4 : 0, "q", &mu, &lv,
                                flow ? &ctx : NULL));
    STEP(vae_op_sample_normal(h->g, mu, lv, &z0));
    z = z0;
    if (flow) {
        STEP(vae_layer_iaf_step(h->g, z0, ctx, 6, 0, "f0", &z, &ld));
        STEP(vae_layer_iaf_step(h->g, z, ctx, 6, 1, "f1", &z, &ld2));
        STEP(vae_op_add(h->g, ld, ld2, &ld));
    }
    STEP(vae_layer_bernoulli_mlp(h->g, z, 10, VAE_ACT_RELU, IN, "p", &logits));
    if (flow)
        STEP(vae_elbo_build_flow(h->g, x, mu, lv, z0, z, ld, logits, VAE_LIKELIHOOD_BERNOULLI,
                                 VAE_OBJECTIVE_ELBO, 1.0f, &loss));
    else
        STEP(vae_elbo_build(h->g, x, mu, lv, z, logits, VAE_LIKELIHOOD_BERNOULLI,
                            VAE_OBJECTIVE_ELBO, 1.0f, &loss));
    MAKE(vae_model_create(&h->m, h->g), h->m);
    h->g = NULL; /* the model owns it now */
    return VAE_OK;
}

static vae_status train(handles *h, int threads)
{
    uint8_t pixels[ROWS * IN];
    int32_t labels[ROWS];
    int dims = IN;
    int64_t xd[2] = {BATCH, IN};
    double obj, nelbo;
    for (int i = 0; i < ROWS * IN; i++)
        pixels[i] = (uint8_t)((i * 37 + i / IN * 11) % 256);
    for (int i = 0; i < ROWS; i++)
        labels[i] = i % 3;
    STEP(vae_model_set_max_batch(h->m, BATCH));
    STEP(vae_model_set_threads(h->m, threads));
    MAKE(vae_optimizer_create(&h->opt, h->m, VAE_OPTIMIZER_ADAM), h->opt);
    MAKE(vae_dataset_from_u8(&h->data, ROWS, 1, &dims, pixels, labels, 1.0f / 255), h->data);
    MAKE(vae_tensor_create(&h->x, 2, xd), h->x);
    STEP(vae_dataset_get(h->data, 0, h->x));
    STEP(vae_model_train_step(h->m, h->opt, h->x, &obj, &nelbo));
    STEP(vae_model_train_epoch(h->m, h->opt, h->data, BATCH, NULL, NULL, &obj, &nelbo));
    STEP(vae_model_history_set(h->m, 1, "test_loss", nelbo));
    STEP(vae_model_set_metadata(h->m, "app.note", "failure injection"));
    return VAE_OK;
}

/* Save, load, and use what loaded. */
static vae_status reload(handles *h, const char *path)
{
    int64_t zd[2] = {BATCH, 3};
    double nelbo, log_px;
    char summary[1 << 14];
    size_t needed;
    STEP(vae_model_save(h->m, h->opt, path));
    MAKE(vae_model_load(&h->loaded, path), h->loaded);
    MAKE(vae_optimizer_restore(&h->restored, h->loaded), h->restored);
    STEP(vae_model_set_max_batch(h->loaded, BATCH));
    STEP(vae_model_evaluate(h->loaded, h->data, &nelbo));
    STEP(vae_model_log_likelihood(h->loaded, h->data, 4, 5, NULL, NULL, &log_px, NULL));
    MAKE(vae_model_clone(&h->clone, h->loaded), h->clone);
    MAKE(vae_tensor_create(&h->z, 2, zd), h->z);
    MAKE(vae_tensor_create(&h->out, 2, (int64_t[]){BATCH, IN}), h->out);
    STEP(vae_model_decode(h->clone, h->z, h->out));
    STEP(vae_model_reconstruct(h->clone, h->x, h->out));
    STEP(vae_model_summary(h->loaded, summary, sizeof summary, &needed));
    return VAE_OK;
}

/* The rest of the API that allocates: the loaders, views, DOT, freezing,
   a model from memory, the ELBO's terms and prior samples. */
static vae_status extras(handles *h, const char *dir, const char *path)
{
    char images[96], labels[96], again[96], text[1 << 14];
    float per_image[ROWS], floats[2 * IN] = {0.5f};
    double log_px[ROWS];
    int in = IN;
    static unsigned char file[1 << 16];
    size_t needed, len;
    double nelbo, recon, kl;
    int frozen;
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    len = fread(file, 1, sizeof file, f);
    fclose(f);
    ck_assert_int_lt(len, sizeof file);
    snprintf(images, sizeof images, "%s/images.idx", dir);
    snprintf(labels, sizeof labels, "%s/labels.idx", dir);
    snprintf(again, sizeof again, "%s/frozen.vae", dir);
    MAKE(vae_model_load_from_memory(&h->from_memory, file, len), h->from_memory);
    MAKE(vae_dataset_load_idx(&h->idx, images, labels), h->idx);
    MAKE(vae_dataset_load_cifar10(&h->cifar, dir, 0), h->cifar);
    MAKE(vae_dataset_view(&h->view, h->idx, 1, 2), h->view);
    STEP(vae_dataset_split(h->data, 0.25, 3, &h->train_part, &h->valid_part));
    STEP(vae_graph_dot(vae_model_graph(h->loaded), text, sizeof text, &needed));
    STEP(vae_model_freeze(h->loaded, "p.", 1, &frozen));
    STEP(vae_model_history_set(h->loaded, 40, "late", 1.0)); /* the columns grow */
    STEP(vae_model_save(h->loaded, NULL, again));
    MAKE(vae_model_load(&h->frozen, again), h->frozen);
    STEP(vae_model_evaluate_terms(h->loaded, h->data, &nelbo, &recon, &kl, per_image));
    STEP(vae_model_log_likelihood(h->loaded, h->data, 2, 5, NULL, NULL, &nelbo, log_px));
    STEP(vae_model_sample_prior(h->clone, 9, h->out));
    STEP(vae_model_decode_sample(h->clone, h->z, 9, h->out));
    MAKE(vae_dataset_from_f32(&h->floats, 2, 1, &in, floats, NULL), h->floats);
    MAKE(vae_comm_create(&h->comm, 0, 1), h->comm);
    return VAE_OK;
}

/* The files extras() loads: a 4x4 idx set of 3 images with labels, and a
   CIFAR-10 test batch of 2 images. */
static void write_data_files(const char *dir)
{
    char path[96];
    unsigned char header[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4}, row[1 + 3072];
    FILE *f;
    snprintf(path, sizeof path, "%s/images.idx", dir);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    fwrite(header, 1, 16, f);
    for (int i = 0; i < 48; i++)
        fputc(i * 5, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/labels.idx", dir);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    fwrite((unsigned char[]){0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3}, 1, 11, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    for (int i = 0; i < 2; i++) {
        row[0] = (unsigned char)(7 + i);
        for (int k = 1; k <= 3072; k++)
            row[k] = (unsigned char)(k * (i + 1));
        fwrite(row, 1, sizeof row, f);
    }
    fclose(f);
}

typedef struct scenario {
    int conv, flow, threads;
} scenario;

static vae_status run(const scenario *sc, const char *dir, const char *path, int *half_built)
{
    handles h = {0};
    vae_status s = build(&h, sc->conv, sc->flow);
    if (s == VAE_OK)
        s = train(&h, sc->threads);
    if (s == VAE_OK)
        s = reload(&h, path);
    if (s == VAE_OK)
        s = extras(&h, dir, path);
    *half_built = h.half_built;
    free_handles(&h);
    return s;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The call sites (return addresses) whose allocations were made to fail. */
static void *sites[4096];
static int n_sites;

static void note_site(void *site)
{
    for (int i = 0; i < n_sites; i++)
        if (sites[i] == site)
            return;
    ck_assert_int_lt(n_sites, 4096);
    sites[n_sites++] = site;
}

/* The scenario with its nth allocation failing, for every n until a run
   makes fewer allocations than n: each run fails with VAE_ERR_NO_MEMORY.
   Returns how many allocations a full run makes. */
static long fail_each_allocation(const scenario *sc, long *failures)
{
    char dir[] = "/tmp/vae_faults_XXXXXX", path[64];
    long n;
    int half_built;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.vae", dir);
    write_data_files(dir);
    *failures = 0;
    for (n = 1;; n++) {
        vae_status s;
        long calls;
        vae__fault_alloc(n, 0);
        s = run(sc, dir, path, &half_built);
        calls = vae__fault_alloc_calls();
        vae__fault_alloc(0, 0);
        if (calls < n) {
            ck_assert_msg(s == VAE_OK, "no failure injected, yet %s", vae_last_error());
            break;
        }
        ck_assert_msg(s == VAE_ERR_NO_MEMORY, "allocation %ld (called from %p) failed: status %d (%s)",
                      n, vae__fault_alloc_site(), s, vae_last_error());
        note_site(vae__fault_alloc_site());
        ck_assert_msg(!half_built, "allocation %ld: a constructor failed but gave a handle", n);
        ck_assert_msg(count_entries(dir) <= 5, "allocation %ld left a temporary file", n);
        ++*failures;
    }
    tu_remove_dir(dir);
    return n - 1;
}

static void expect_every_allocation_fails_cleanly(scenario sc, long min_allocations)
{
    long failures, calls = fail_each_allocation(&sc, &failures);
    printf("failure injection (conv %d, flow %d, threads %d): %ld allocations from %d call "
           "sites, each failed once\n", sc.conv, sc.flow, sc.threads, calls, n_sites);
    if (getenv("VAE_FAULT_SITES")) /* for addr2line: which call sites were reached */
        for (int i = 0; i < n_sites; i++)
            printf("site %p\n", sites[i]);
    ck_assert_int_ge(calls, min_allocations);
    ck_assert_int_eq(failures, calls);
}

START_TEST(test_each_allocation_dense)
{
    expect_every_allocation_fails_cleanly((scenario){0, 0, 1}, 100);
}
END_TEST

START_TEST(test_each_allocation_conv_flow)
{
    expect_every_allocation_fails_cleanly((scenario){1, 1, 1}, 100);
}
END_TEST

START_TEST(test_each_allocation_threads)
{
    expect_every_allocation_fails_cleanly((scenario){0, 1, 2}, 100);
}
END_TEST

/* Every allocation from the nth on fails: the paths that clean up after a
   failure must not allocate themselves. */
START_TEST(test_allocations_keep_failing)
{
    char dir[] = "/tmp/vae_faults_XXXXXX", path[64];
    scenario sc = {1, 1, 2};
    int half_built;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.vae", dir);
    write_data_files(dir);
    for (long n = 1;; n += 7) {
        vae_status s;
        long calls;
        vae__fault_alloc(n, 1);
        s = run(&sc, dir, path, &half_built);
        calls = vae__fault_alloc_calls();
        vae__fault_alloc(0, 0);
        if (calls < n)
            break;
        ck_assert_msg(s == VAE_ERR_NO_MEMORY, "from allocation %ld: status %d (%s)", n, s,
                      vae_last_error());
        ck_assert(!half_built);
    }
    tu_remove_dir(dir);
}
END_TEST

/* ---- write failures ---- */

/* A model of more than 2 MiB, so a save makes several writes. */
static vae_model *big_model(uint64_t seed)
{
    vae_model *m = tu_small_vae(784, 400, 20, VAE_ACT_RELU, seed);
    ck_assert_int_gt(vae_model_param_count(m) * 4, 2 << 20);
    return m;
}

static int same_params(vae_model *a, vae_model *b)
{
    int64_t n = vae_model_param_count(a);
    float *pa = malloc((size_t)n * sizeof *pa), *pb = malloc((size_t)n * sizeof *pb);
    int same;
    ck_assert_int_eq(vae_model_param_count(b), n);
    ck_assert_int_eq(vae_model_params_get(a, pa, n), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(b, pb, n), VAE_OK);
    same = memcmp(pa, pb, (size_t)n * sizeof *pa) == 0;
    free(pa);
    free(pb);
    return same;
}

static const char *call_names[] = {"open", "write", "fsync", "close", "rename"};

START_TEST(test_each_write_call_fails)
{
    char dir[] = "/tmp/vae_faults_XXXXXX", path[64];
    vae_model *old = big_model(1), *new = big_model(2), *back = NULL;
    int checked = 0;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.vae", dir);
    ck_assert_int_eq(vae_model_save(old, NULL, path), VAE_OK);
    for (int call = 0; call < VAE__IO_CALLS; call++) {
        long uses;
        /* how many times a save makes this call */
        vae__fault_io((vae__io_call)call, 0, 0);
        ck_assert_int_eq(vae_model_save(old, NULL, path), VAE_OK);
        uses = vae__fault_io_calls((vae__io_call)call);
        ck_assert_int_ge(uses, 1);
        if (call == VAE__IO_WRITE)
            ck_assert_int_ge(uses, 3); /* 1 MiB pieces */
        for (long nth = 1; nth <= uses; nth++) {
            for (int e = 0; e < 2; e++) {
                int err = e ? EIO : ENOSPC;
                vae__fault_io((vae__io_call)call, nth, err);
                ck_assert_int_eq(vae_model_save(new, NULL, path), VAE_ERR_IO);
                vae__fault_io(VAE__IO_CALLS, 0, 0);
                ck_assert_msg(strstr(vae_last_error(), strerror(err)) != NULL,
                              "%s %ld: message \"%s\"", call_names[call], nth, vae_last_error());
                ck_assert_msg(count_entries(dir) == 1, "%s %ld: a temporary file was left",
                              call_names[call], nth);
                ck_assert_int_eq(vae_model_load(&back, path), VAE_OK);
                ck_assert_msg(same_params(back, old), "%s %ld: the previous file changed",
                              call_names[call], nth);
                vae_model_free(back);
                back = NULL;
                checked++;
            }
        }
    }
    vae__fault_io(VAE__IO_CALLS, 0, 0);
    printf("write failures: %d injected (ENOSPC and EIO at each call of a save)\n", checked);
    ck_assert_int_eq(vae_model_save(new, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&back, path), VAE_OK);
    ck_assert(same_params(back, new));
    vae_model_free(back);
    vae_model_free(old);
    vae_model_free(new);
    tu_remove_dir(dir);
}
END_TEST

/* With no file there before, a failed save leaves none. */
START_TEST(test_failed_first_save_leaves_nothing)
{
    char dir[] = "/tmp/vae_faults_XXXXXX", path[64];
    vae_model *m = big_model(3);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.vae", dir);
    vae__fault_io(VAE__IO_FSYNC, 1, EIO);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_ERR_IO);
    vae__fault_io(VAE__IO_CALLS, 0, 0);
    ck_assert_int_eq(count_entries(dir), 0);
    vae_model_free(m);
    tu_remove_dir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *alloc = tcase_create("allocation");
    TCase *io = tcase_create("writes");
    tcase_set_timeout(alloc, 600);
    tcase_set_timeout(io, 120);
    tcase_add_test(alloc, test_each_allocation_dense);
    tcase_add_test(alloc, test_each_allocation_conv_flow);
    tcase_add_test(alloc, test_each_allocation_threads);
    tcase_add_test(alloc, test_allocations_keep_failing);
    tcase_add_test(io, test_each_write_call_fails);
    tcase_add_test(io, test_failed_first_save_leaves_nothing);
    suite_add_tcase(s, alloc);
    suite_add_tcase(s, io);
    return tu_run(s);
}
