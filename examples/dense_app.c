/* A dense VAE on idx images (MNIST, Fashion-MNIST): build or load, train
   with progress and per-epoch metrics, keep the last and best models, and
   draw what the reference runs show.  Uses only the public API. */
#include "dense_app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIDE 28
#define PIXELS (SIDE * SIDE)
#define MAX_EPOCHS 10000

typedef struct run {
    const dense_app *app;
    ex_options opt;
    vae_dataset *train, *test;
    vae_model *model;
    vae_optimizer *optimizer;
    char path[4096];
    /* metrics so far, one per epoch */
    int epochs_done;
    double *train_loss, *test_loss;
    double best_test;
    char *kept_rows; /* metrics.csv rows of the epochs before a resume */
} run;

/* Prints the library's error for a failed call and returns 1. */
static int fail(const run *r, const char *what, vae_status s)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", r->app->name, what, vae_last_error(), vae_strerror(s));
    return 1;
}

#define CALL(r, what, expr)                      \
    do {                                         \
        vae_status call_s_ = (expr);             \
        if (call_s_ != VAE_OK)                   \
            return fail((r), (what), call_s_);   \
    } while (0)

static const char *out_path(run *r, const char *file)
{
    snprintf(r->path, sizeof r->path, "%s/%s", r->opt.out_dir, file);
    return r->path;
}

/* dir/name, or dir/name.gz when only that exists. */
static void data_file(const run *r, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", r->opt.data_dir, name);
    if (access(buf, R_OK) != 0) {
        char gz[4200];
        snprintf(gz, sizeof gz, "%s.gz", buf);
        if (access(gz, R_OK) == 0 && strlen(gz) < size)
            memcpy(buf, gz, strlen(gz) + 1);
    }
}

static int load_split(run *r, const char *images, const char *labels, vae_dataset **out)
{
    char ipath[4096], lpath[4096];
    vae_status s;
    data_file(r, images, ipath, sizeof ipath);
    data_file(r, labels, lpath, sizeof lpath);
    s = vae_dataset_load_idx(out, ipath, lpath);
    if (s == VAE_ERR_IO)
        fprintf(stderr, "%s: %s\n%s\n", r->app->name, vae_last_error(), r->app->fetch_hint);
    else if (s != VAE_OK)
        return fail(r, "loading data", s);
    if (s == VAE_OK && vae_dataset_row_size(*out) != PIXELS) {
        fprintf(stderr, "%s: %s: images are not 28x28\n", r->app->name, ipath);
        return 1;
    }
    return s != VAE_OK;
}

static int load_data(run *r)
{
    if (load_split(r, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &r->train) ||
        load_split(r, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &r->test))
        return 1;
    if (r->opt.limit > 0 && r->opt.limit < vae_dataset_count(r->train))
        CALL(r, "--limit", vae_dataset_truncate(r->train, r->opt.limit));
    return 0;
}

/* Encoder: Dense hidden layers (ReLU), then mean and log-variance heads;
   decoder: the hidden layers mirrored, then 784 logits. */
static int build_model(run *r)
{
    const ex_options *o = &r->opt;
    vae_graph *g;
    int dims[1] = {PIXELS}, x, h, mu, logvar, z, logits, objective;
    char name[32];
    vae_likelihood lik = o->loss == EX_LOSS_MSE ? VAE_LIKELIHOOD_GAUSSIAN_UNIT : VAE_LIKELIHOOD_BERNOULLI;
    vae_status s;
    CALL(r, "building the network", vae_graph_create(&g, o->seed));
    s = vae_graph_input(g, "x", 1, dims, &x);
    h = x;
    for (int i = 0; s == VAE_OK && i < o->n_hidden; i++) {
        snprintf(name, sizeof name, "encoder.%d", i);
        s = vae_layer_dense(g, h, o->hidden[i], VAE_ACT_RELU, name, &h);
    }
    if (s == VAE_OK)
        s = vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, o->latent, 0, "latent", &mu, &logvar, NULL);
    if (s == VAE_OK)
        s = vae_op_sample_normal(g, mu, logvar, &z);
    h = z;
    for (int i = o->n_hidden - 1; s == VAE_OK && i >= 0; i--) {
        snprintf(name, sizeof name, "decoder.%d", i);
        s = vae_layer_dense(g, h, o->hidden[i], VAE_ACT_RELU, name, &h);
    }
    if (s == VAE_OK)
        s = vae_layer_dense(g, h, PIXELS, VAE_ACT_NONE, "decoder.logits", &logits);
    if (s == VAE_OK)
        s = vae_elbo_build(g, x, mu, logvar, z, logits, lik, VAE_OBJECTIVE_ELBO, 1.0f, &objective);
    if (s == VAE_OK)
        s = vae_model_create(&r->model, g);
    if (s != VAE_OK) {
        vae_graph_free(g);
        return fail(r, "building the network", s);
    }
    CALL(r, "optimizer", vae_optimizer_create(&r->optimizer, r->model, o->optimizer));
    CALL(r, "optimizer", vae_optimizer_set(r->optimizer, VAE_OPT_LEARNING_RATE, o->lr));
    return 0;
}

/* Reads the rows of metrics.csv up to the resumed epoch, so that the loss
   curve and the best model carry on from the interrupted run. */
static void read_metrics(run *r, int upto)
{
    FILE *f = fopen(out_path(r, "metrics.csv"), "r");
    char line[512];
    size_t used = 0;
    if (!f || !(r->kept_rows = calloc((size_t)upto + 1, sizeof line))) {
        if (f)
            fclose(f);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        int epoch;
        double seconds, ips, train, test;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf", &epoch, &seconds, &ips, &train, &test) == 5 &&
            epoch >= 1 && epoch <= upto && used + strlen(line) < (size_t)(upto + 1) * sizeof line) {
            r->train_loss[epoch - 1] = train;
            r->test_loss[epoch - 1] = test;
            if (test < r->best_test)
                r->best_test = test;
            strcpy(r->kept_rows + used, line);
            used += strlen(line);
        }
    }
    fclose(f);
}

static int write_metrics_header(run *r)
{
    FILE *f = fopen(out_path(r, "metrics.csv"), "w");
    if (!f) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "epoch,seconds,images_per_sec,train_loss,test_loss\n%s",
            r->kept_rows ? r->kept_rows : "");
    return fclose(f) != 0;
}

static int append_metrics(run *r, int epoch, double seconds, double ips)
{
    FILE *f = fopen(out_path(r, "metrics.csv"), "a");
    if (!f) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "%d,%.3f,%.0f,%.4f,%.4f\n", epoch, seconds, ips, r->train_loss[epoch - 1],
            r->test_loss[epoch - 1]);
    return fclose(f) != 0;
}

typedef struct progress_state {
    ex_progress bar;
    double start;
    int batch_size;
} progress_state;

static int on_batch(void *user, int batch, int batches, float loss)
{
    progress_state *p = user;
    double elapsed = ex_now() - p->start;
    (void)batches;
    ex_progress_update(&p->bar, batch, loss, elapsed > 0 ? batch * (double)p->batch_size / elapsed : 0);
    return 0;
}

static int train(run *r)
{
    const ex_options *o = &r->opt;
    int64_t n = vae_dataset_count(r->train);
    int batches = (int)((n + o->batch - 1) / o->batch);
    for (int epoch = vae_model_epoch(r->model) + 1; epoch <= o->epochs; epoch++) {
        progress_state p = {.batch_size = o->batch};
        double obj, train_loss, test_loss, seconds;
        vae_status s;
        ex_progress_begin(&p.bar, epoch, o->epochs, batches);
        p.start = ex_now();
        s = vae_model_train_epoch(r->model, r->optimizer, r->train, o->batch, on_batch, &p, &obj,
                                  &train_loss);
        seconds = ex_now() - p.start;
        ex_progress_end(&p.bar);
        if (s != VAE_OK)
            return fail(r, "training (the last saved model is kept)", s);
        CALL(r, "evaluating", vae_model_evaluate(r->model, r->test, &test_loss));
        r->train_loss[epoch - 1] = train_loss;
        r->test_loss[epoch - 1] = test_loss;
        r->epochs_done = epoch;
        printf("epoch %d/%d  %.2f s  %.0f images/s  train %.3f  test %.3f nats\n", epoch, o->epochs,
               seconds, (double)n / seconds, train_loss, test_loss);
        fflush(stdout);
        if (append_metrics(r, epoch, seconds, (double)n / seconds))
            return 1;
        CALL(r, "saving", vae_model_save(r->model, r->optimizer, out_path(r, "last.vae")));
        if (test_loss < r->best_test) {
            r->best_test = test_loss;
            CALL(r, "saving", vae_model_save(r->model, NULL, out_path(r, "best.vae")));
        }
    }
    return 0;
}

/* The first n test images as floats, plus their labels. */
static float *test_images(run *r, int n, vae_tensor **t)
{
    int64_t dims[2] = {n, PIXELS};
    if (vae_tensor_create(t, 2, dims) != VAE_OK || vae_dataset_get(r->test, 0, *t) != VAE_OK)
        return NULL;
    return vae_tensor_data(*t);
}

/* Rows of originals above rows of their reconstructions, 10 per row. */
static int draw_reconstructions(run *r)
{
    enum { N = 40, COLS = 10 };
    vae_tensor *x = NULL, *y = NULL;
    int64_t dims[2] = {N, PIXELS};
    float grid[2 * N * PIXELS];
    int rc = 1;
    if (test_images(r, N, &x) && vae_tensor_create(&y, 2, dims) == VAE_OK &&
        vae_model_reconstruct(r->model, x, y) == VAE_OK) {
        for (int row = 0; row < N / COLS; row++) {
            memcpy(grid + (2 * row) * COLS * PIXELS, vae_tensor_data(x) + row * COLS * PIXELS, sizeof(float) * COLS * PIXELS);
            memcpy(grid + (2 * row + 1) * COLS * PIXELS, vae_tensor_data(y) + row * COLS * PIXELS, sizeof(float) * COLS * PIXELS);
        }
        rc = ex_write_grid_png(out_path(r, "reconstructions.png"), grid, 2 * N, 1, SIDE, SIDE, COLS, 2, 2);
    } else {
        fail(r, "reconstructing", VAE_ERR_STATE);
    }
    vae_tensor_free(x);
    vae_tensor_free(y);
    return rc;
}

/* Decodes n latent points (n x latent) into a PNG grid of `cols` columns. */
static int draw_decoded(run *r, const float *z, int n, int cols, int scale, const char *file)
{
    int64_t zd[2] = {n, vae_model_latent_size(r->model)}, xd[2] = {n, PIXELS};
    vae_tensor *zt = NULL, *xt = NULL;
    int rc = 1;
    if (vae_tensor_from_host(&zt, 2, zd, z) == VAE_OK && vae_tensor_create(&xt, 2, xd) == VAE_OK &&
        vae_model_decode(r->model, zt, xt) == VAE_OK)
        rc = ex_write_grid_png(out_path(r, file), vae_tensor_data(xt), n, 1, SIDE, SIDE, cols, 0, scale);
    else
        fail(r, "decoding", VAE_ERR_STATE);
    vae_tensor_free(zt);
    vae_tensor_free(xt);
    return rc;
}

static int draw_samples(run *r)
{
    enum { N = 100 };
    int64_t dims[2] = {N, PIXELS};
    vae_tensor *t = NULL;
    int rc = 1;
    if (vae_tensor_create(&t, 2, dims) == VAE_OK && vae_model_sample_prior(r->model, r->opt.seed, t) == VAE_OK)
        rc = ex_write_grid_png(out_path(r, "samples.png"), vae_tensor_data(t), N, 1, SIDE, SIDE, 10, 2, 2);
    else
        fail(r, "sampling", VAE_ERR_STATE);
    vae_tensor_free(t);
    return rc;
}

/* latent.csv (label and mean of every test image) and, for 2-D latents,
   the scatter coloured by label. */
static int write_latents(run *r)
{
    int64_t n = vae_dataset_count(r->test), L = vae_model_latent_size(r->model);
    int64_t xd[2] = {n, PIXELS}, md[2] = {n, L};
    vae_tensor *x = NULL, *mu = NULL;
    FILE *f = NULL;
    int rc = 1;
    if (vae_tensor_create(&x, 2, xd) != VAE_OK || vae_tensor_create(&mu, 2, md) != VAE_OK ||
        vae_dataset_get(r->test, 0, x) != VAE_OK || vae_model_encode(r->model, x, mu, NULL) != VAE_OK) {
        fail(r, "encoding the test set", VAE_ERR_STATE);
        goto done;
    }
    if (!(f = fopen(out_path(r, "latent.csv"), "w"))) {
        perror(r->path);
        goto done;
    }
    fprintf(f, "label");
    for (int64_t j = 0; j < L; j++)
        fprintf(f, ",z%lld", (long long)j);
    fprintf(f, "\n");
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%d", vae_dataset_label(r->test, i));
        for (int64_t j = 0; j < L; j++)
            fprintf(f, ",%.5f", vae_tensor_data(mu)[i * L + j]);
        fprintf(f, "\n");
    }
    rc = fclose(f) != 0;
    if (rc == 0 && L == 2) {
        float *px = malloc(sizeof(float) * (size_t)n), *py = malloc(sizeof(float) * (size_t)n);
        int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
        for (int64_t i = 0; px && py && labels && i < n; i++) {
            px[i] = vae_tensor_data(mu)[2 * i];
            py[i] = vae_tensor_data(mu)[2 * i + 1];
            labels[i] = vae_dataset_label(r->test, i);
        }
        rc = !px || !py || !labels ||
             ex_plot_scatter(out_path(r, "latent_scatter.png"), (int)n, px, py, labels, 10,
                             "test set: latent means by label");
        free(px);
        free(py);
        free(labels);
    }
done:
    vae_tensor_free(x);
    vae_tensor_free(mu);
    return rc;
}

/* The 30x30 grid over [-4, 4]^2 (Keras's R1 figure), top row at z[1] = 4. */
static int draw_latent_grid(run *r)
{
    enum { N = 30 };
    static float z[N * N * 2];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            z[2 * (i * N + j)] = -4.0f + 8.0f * (float)j / (N - 1);
            z[2 * (i * N + j) + 1] = 4.0f - 8.0f * (float)i / (N - 1);
        }
    return draw_decoded(r, z, N * N, N, 1, "latent_grid.png");
}

static int draw_all(run *r)
{
    double epochs[MAX_EPOCHS];
    int rc = 0;
    for (int e = 0; e < r->epochs_done; e++)
        epochs[e] = e + 1;
    if (r->epochs_done > 0)
        rc |= ex_plot_losses(out_path(r, "loss.png"), r->epochs_done, epochs, r->train_loss,
                             r->test_loss, "negative ELBO per image");
    rc |= draw_reconstructions(r);
    rc |= draw_samples(r);
    rc |= write_latents(r);
    if (vae_model_latent_size(r->model) == 2) {
        const float point[2] = {0.0f, 2.5f};
        rc |= draw_decoded(r, point, 1, 1, 8, "decoded_0_2.5.png");
        rc |= draw_latent_grid(r);
    }
    return rc;
}

/* --load FILE --decode X,Y,...: one image and exit. */
static int decode_point(run *r)
{
    if (r->opt.n_decode != vae_model_latent_size(r->model)) {
        fprintf(stderr, "%s: --decode has %d values, the model's latent space has %d\n",
                r->app->name, r->opt.n_decode, vae_model_latent_size(r->model));
        return 2;
    }
    if (draw_decoded(r, r->opt.decode, 1, 1, 8, "decoded.png"))
        return 1;
    printf("wrote %s\n", out_path(r, "decoded.png"));
    return 0;
}

static int open_model(run *r)
{
    const char *file = r->opt.resume ? r->opt.resume : r->opt.load;
    if (!file)
        return build_model(r);
    CALL(r, file, vae_model_load(&r->model, file));
    if (vae_model_input_size(r->model) != PIXELS) {
        fprintf(stderr, "%s: %s: the model takes %lld values per image, not 784\n", r->app->name,
                file, (long long)vae_model_input_size(r->model));
        return 1;
    }
    if (r->opt.resume) {
        CALL(r, file, vae_optimizer_restore(&r->optimizer, r->model));
        r->epochs_done = vae_model_epoch(r->model);
        read_metrics(r, r->epochs_done);
    }
    return 0;
}

static int run_app(run *r)
{
    int rc;
    if (ex_mkdir_p(r->opt.out_dir) || open_model(r))
        return 1;
    if (r->opt.load && r->opt.n_decode > 0)
        return decode_point(r);
    if (load_data(r))
        return 1;
    CALL(r, "threads", vae_model_set_threads(r->model, r->opt.threads));
    CALL(r, "batch", vae_model_set_max_batch(r->model, r->opt.batch > 256 ? r->opt.batch : 256));
    printf("%s: %lld training images, %lld parameters, %d threads, %s\n", r->app->name,
           (long long)vae_dataset_count(r->train), (long long)vae_model_param_count(r->model),
           r->opt.threads, vae_blas_info());
    if (!r->opt.load) {
        if (write_metrics_header(r) || train(r))
            return 1;
    }
    rc = draw_all(r);
    printf("pictures and metrics are in %s/\n", r->opt.out_dir);
    return rc;
}

int dense_app_main(int argc, char **argv, const dense_app *app)
{
    run r = {.app = app, .opt = app->defaults, .best_test = INFINITY};
    int rc;
    ex_reexec_for_blas(argc, argv, vae_blas_env_hint());
    r.opt.description = app->description;
    rc = ex_parse_args(argc, argv, &r.opt);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (r.opt.epochs > MAX_EPOCHS) {
        fprintf(stderr, "%s: --epochs: at most %d\n", app->name, MAX_EPOCHS);
        return 2;
    }
    r.train_loss = calloc(MAX_EPOCHS, sizeof(double));
    r.test_loss = calloc(MAX_EPOCHS, sizeof(double));
    rc = r.train_loss && r.test_loss ? run_app(&r) : 1;
    free(r.train_loss);
    free(r.test_loss);
    free(r.kept_rows);
    vae_optimizer_free(r.optimizer);
    vae_model_free(r.model);
    vae_dataset_free(r.train);
    vae_dataset_free(r.test);
    return rc;
}
