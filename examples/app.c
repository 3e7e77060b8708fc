/* The driver shared by the example programs: build or load, train with
   progress and per-epoch metrics, keep the last and best models, and draw
   what the reference runs show.  Uses only the public API. */
#include "app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EPOCHS 10000

struct app_run {
    const app *app;
    ex_options opt;
    vae_dataset *train, *test;
    vae_model *model;
    vae_optimizer *optimizer;
    int channels, height, width; /* of one image */
    int64_t pixels;
    char path[4096];
    int epochs_done;             /* metrics so far, one per epoch */
    double *train_loss, *test_loss;
    double best_test;
    char *kept_rows; /* metrics.csv rows of the epochs before a resume */
};

/* Prints the library's error for a failed call and returns 1. */
static int fail(const app_run *r, const char *what, vae_status s)
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

static const char *out_path(app_run *r, const char *file)
{
    snprintf(r->path, sizeof r->path, "%s/%s", r->opt.out_dir, file);
    return r->path;
}

/* ---- data ---- */

/* dir/name, or dir/name.gz when only that exists. */
static void data_file(const ex_options *o, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", o->data_dir, name);
    if (access(buf, R_OK) != 0) {
        char gz[4200];
        snprintf(gz, sizeof gz, "%s.gz", buf);
        if (access(gz, R_OK) == 0 && strlen(gz) < size)
            memcpy(buf, gz, strlen(gz) + 1);
    }
}

static int load_split(const app_run *r, const char *images, const char *labels, vae_dataset **out)
{
    char ipath[4096], lpath[4096];
    vae_status s;
    data_file(&r->opt, images, ipath, sizeof ipath);
    data_file(&r->opt, labels, lpath, sizeof lpath);
    s = vae_dataset_load_idx(out, ipath, lpath);
    if (s == VAE_ERR_IO) {
        fprintf(stderr, "%s: %s\n%s\n", r->app->name, vae_last_error(), r->app->fetch_hint);
        return 1;
    }
    return s != VAE_OK ? fail(r, "loading data", s) : 0;
}

static int load_idx(app_run *r)
{
    return load_split(r, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &r->train) ||
           load_split(r, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &r->test);
}

/* Images are (H, W) or (C, H, W) rows. */
static int learn_image_shape(app_run *r)
{
    int dims[VAE_MAX_ROW_DIMS], nd = vae_dataset_row_dims(r->train, dims);
    r->channels = nd == 3 ? dims[0] : 1;
    r->height = dims[nd - 2 >= 0 ? nd - 2 : 0];
    r->width = dims[nd - 1];
    r->pixels = vae_dataset_row_size(r->train);
    if (nd < 2 || vae_dataset_row_size(r->test) != r->pixels) {
        fprintf(stderr, "%s: the data are not images of one size\n", r->app->name);
        return 1;
    }
    return 0;
}

static int load_data(app_run *r)
{
    int rc = r->app->load ? r->app->load(&r->opt, &r->train, &r->test) : load_idx(r);
    if (rc || learn_image_shape(r))
        return 1;
    if (r->opt.limit > 0 && r->opt.limit < vae_dataset_count(r->train))
        CALL(r, "--limit", vae_dataset_truncate(r->train, r->opt.limit));
    return 0;
}

/* ---- the model ---- */

/* z0 ~ q(z|x), then o->flow_steps IAF steps of alternating order; *z is
   the last step's output and *log_det the sum of their log-determinants. */
static vae_status add_flow(vae_graph *g, const ex_options *o, int z0, int h, int *z, int *log_det)
{
    *z = z0;
    *log_det = -1;
    for (int i = 0; i < o->flow_steps; i++) {
        char name[32];
        int step_log_det;
        snprintf(name, sizeof name, "flow.%d", i);
        VAE_CHECK(vae_layer_iaf_step(g, *z, h, o->iaf_hidden, i % 2, name, z, &step_log_det));
        if (*log_det < 0)
            *log_det = step_log_det;
        else
            VAE_CHECK(vae_op_add(g, *log_det, step_log_det, log_det));
    }
    return VAE_OK;
}

static vae_status build_graph(const app_run *r, vae_graph *g)
{
    const ex_options *o = &r->opt;
    int dims[3] = {r->channels, r->height, r->width}, x, mu, logvar, h = -1, z0, z, log_det;
    int logits, objective;
    vae_likelihood lik = o->loss == EX_LOSS_MSE ? VAE_LIKELIHOOD_GAUSSIAN_UNIT : VAE_LIKELIHOOD_BERNOULLI;
    VAE_CHECK(vae_graph_input(g, "x", 3, dims, &x));
    VAE_CHECK(r->app->net->encoder(g, x, o, o->flow_steps > 0, &mu, &logvar, &h));
    VAE_CHECK(vae_op_sample_normal(g, mu, logvar, &z0));
    VAE_CHECK(add_flow(g, o, z0, h, &z, &log_det));
    VAE_CHECK(r->app->net->decoder(g, z, x, o, &logits));
    if (o->flow_steps == 0)
        return vae_elbo_build(g, x, mu, logvar, z, logits, lik, r->app->objective, r->app->beta,
                              &objective);
    return vae_elbo_build_flow(g, x, mu, logvar, z0, z, log_det, logits, lik, r->app->objective,
                               r->app->beta, &objective);
}

static int build_model(app_run *r)
{
    const ex_options *o = &r->opt;
    vae_graph *g;
    vae_status s;
    CALL(r, "building the network", vae_graph_create(&g, o->seed));
    s = build_graph(r, g);
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

/* ---- metrics ---- */

/* Reads the rows of metrics.csv up to the resumed epoch, so that the loss
   curve and the best model carry on from the interrupted run. */
static void read_metrics(app_run *r, int upto)
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

static int write_metrics_header(app_run *r)
{
    FILE *f = fopen(out_path(r, "metrics.csv"), "w");
    if (!f) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "epoch,seconds,images_per_sec,train_loss,test_loss,test_bits_per_dim\n%s",
            r->kept_rows ? r->kept_rows : "");
    return fclose(f) != 0;
}

/* Nats per image as bits per pixel value. */
static double bits_per_dim(const app_run *r, double nats)
{
    return nats / ((double)r->pixels * log(2.0));
}

static int append_metrics(app_run *r, int epoch, double seconds, double ips)
{
    FILE *f = fopen(out_path(r, "metrics.csv"), "a");
    if (!f) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "%d,%.3f,%.0f,%.4f,%.4f,%.5f\n", epoch, seconds, ips, r->train_loss[epoch - 1],
            r->test_loss[epoch - 1], bits_per_dim(r, r->test_loss[epoch - 1]));
    return fclose(f) != 0;
}

/* ---- pictures ---- */

static int grid_png(app_run *r, const char *file, const float *images, int n, int cols, int pad,
                    int scale)
{
    return ex_write_grid_png(out_path(r, file), images, n, r->channels, r->height, r->width, cols,
                             pad, scale);
}

/* Images are small (28x28) or larger (64x64): magnify the small ones. */
static int magnification(const app_run *r) { return r->height < 48 ? 2 : 1; }

/* Rows of originals above rows of their reconstructions, 10 per row. */
static int draw_reconstructions(app_run *r, const char *file)
{
    enum { N = 40, COLS = 10 };
    int n = vae_dataset_count(r->test) < N ? (int)vae_dataset_count(r->test) : N;
    int64_t dims[2] = {n, r->pixels}, row = COLS * r->pixels;
    vae_tensor *x = NULL, *y = NULL;
    float *grid = malloc(sizeof(float) * 2 * (size_t)N * (size_t)r->pixels);
    int rc = 1;
    if (grid && vae_tensor_create(&x, 2, dims) == VAE_OK && vae_tensor_create(&y, 2, dims) == VAE_OK &&
        vae_dataset_get(r->test, 0, x) == VAE_OK && vae_model_reconstruct(r->model, x, y) == VAE_OK) {
        int rows = (n + COLS - 1) / COLS, count = 0;
        for (int i = 0; i < rows; i++) {
            int k = n - i * COLS < COLS ? n - i * COLS : COLS;
            memcpy(grid + count * r->pixels, vae_tensor_data(x) + i * row, sizeof(float) * (size_t)(k * r->pixels));
            count += COLS;
            memcpy(grid + count * r->pixels, vae_tensor_data(y) + i * row, sizeof(float) * (size_t)(k * r->pixels));
            count += i + 1 < rows ? COLS : k;
        }
        rc = grid_png(r, file, grid, count, COLS, 2, magnification(r));
    } else {
        fail(r, "reconstructing", VAE_ERR_STATE);
    }
    free(grid);
    vae_tensor_free(x);
    vae_tensor_free(y);
    return rc;
}

/* Decodes n latent points (n x latent) into a PNG grid of `cols` columns. */
static int draw_decoded(app_run *r, const float *z, int n, int cols, int scale, const char *file)
{
    int64_t zd[2] = {n, vae_model_latent_size(r->model)}, xd[2] = {n, r->pixels};
    vae_tensor *zt = NULL, *xt = NULL;
    int rc = 1;
    if (vae_tensor_from_host(&zt, 2, zd, z) == VAE_OK && vae_tensor_create(&xt, 2, xd) == VAE_OK &&
        vae_model_decode(r->model, zt, xt) == VAE_OK)
        rc = grid_png(r, file, vae_tensor_data(xt), n, cols, 0, scale);
    else
        fail(r, "decoding", VAE_ERR_STATE);
    vae_tensor_free(zt);
    vae_tensor_free(xt);
    return rc;
}

static int draw_samples(app_run *r)
{
    enum { N = 100 };
    int64_t dims[2] = {N, r->pixels};
    vae_tensor *t = NULL;
    int rc = 1;
    if (vae_tensor_create(&t, 2, dims) == VAE_OK && vae_model_sample_prior(r->model, r->opt.seed, t) == VAE_OK)
        rc = grid_png(r, "samples.png", vae_tensor_data(t), N, 10, 2, magnification(r));
    else
        fail(r, "sampling", VAE_ERR_STATE);
    vae_tensor_free(t);
    return rc;
}

/* The scatter of the test set's latent means, coloured by label. */
static int draw_scatter(app_run *r, const float *mu, int64_t n)
{
    float *px = malloc(sizeof(float) * (size_t)n), *py = malloc(sizeof(float) * (size_t)n);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
    int rc = !px || !py || !labels;
    for (int64_t i = 0; !rc && i < n; i++) {
        px[i] = mu[2 * i];
        py[i] = mu[2 * i + 1];
        labels[i] = vae_dataset_label(r->test, i);
    }
    if (!rc)
        rc = ex_plot_scatter(out_path(r, "latent_scatter.png"), (int)n, px, py,
                             vae_dataset_has_labels(r->test) ? labels : NULL, 10,
                             "test set: latent means by label");
    free(px);
    free(py);
    free(labels);
    return rc;
}

/* latent.csv (label and mean of every test image) and, for 2-D latents,
   the scatter. */
static int write_latents(app_run *r)
{
    int64_t n = vae_dataset_count(r->test), L = vae_model_latent_size(r->model);
    int64_t xd[2] = {n, r->pixels}, md[2] = {n, L};
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
    if (rc == 0 && L == 2)
        rc = draw_scatter(r, vae_tensor_data(mu), n);
done:
    vae_tensor_free(x);
    vae_tensor_free(mu);
    return rc;
}

/* An n x n grid of 2-D latent points; axis(i) gives the i-th coordinate.
   The top row has the largest z[1]. */
static int draw_latent_grid(app_run *r, int n, double (*axis)(int i, int n), const char *file)
{
    float *z = malloc(sizeof(float) * 2 * (size_t)(n * n));
    int rc = 1;
    if (!z)
        return 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            z[2 * (i * n + j)] = (float)axis(j, n);
            z[2 * (i * n + j) + 1] = (float)axis(n - 1 - i, n);
        }
    rc = draw_decoded(r, z, n * n, n, 1, file);
    free(z);
    return rc;
}

/* Keras's R1 figure: evenly over [-4, 4]. */
static double even_axis(int i, int n) { return -4.0 + 8.0 * i / (n - 1); }

/* The standard normal quantile of p, by bisection on the CDF. */
static double normal_quantile(double p)
{
    double lo = -10.0, hi = 10.0;
    for (int k = 0; k < 100; k++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Keras book's R2 figure: normal quantiles of linspace(0.05, 0.95, n). */
static double quantile_axis(int i, int n) { return normal_quantile(0.05 + 0.9 * i / (n - 1)); }

static int draw_all(app_run *r)
{
    double epochs[MAX_EPOCHS];
    int rc = 0;
    for (int e = 0; e < r->epochs_done; e++)
        epochs[e] = e + 1;
    if (r->epochs_done > 0)
        rc |= ex_plot_losses(out_path(r, "loss.png"), r->epochs_done, epochs, r->train_loss,
                             r->test_loss, "negative ELBO per image");
    rc |= draw_reconstructions(r, "reconstructions.png");
    rc |= draw_samples(r);
    rc |= write_latents(r);
    if (vae_model_latent_size(r->model) == 2) {
        const float point[2] = {0.0f, 2.5f};
        rc |= draw_decoded(r, point, 1, 1, 8, "decoded_0_2.5.png");
        rc |= draw_latent_grid(r, 30, even_axis, "latent_grid.png");
        if (r->app->quantile_grid)
            rc |= draw_latent_grid(r, 15, quantile_axis, "latent_grid_quantiles.png");
    }
    return rc;
}

/* ---- training ---- */

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

/* Metrics, the last model, the best model and per-epoch pictures. */
static int end_epoch(app_run *r, int epoch, double seconds, double train_loss)
{
    double test_loss, ips = (double)vae_dataset_count(r->train) / seconds;
    char file[64];
    CALL(r, "evaluating", vae_model_evaluate(r->model, r->test, &test_loss));
    r->train_loss[epoch - 1] = train_loss;
    r->test_loss[epoch - 1] = test_loss;
    r->epochs_done = epoch;
    printf("epoch %d/%d  %.2f s  %.0f images/s  train %.3f  test %.3f nats\n", epoch,
           r->opt.epochs, seconds, ips, train_loss, test_loss);
    fflush(stdout);
    if (append_metrics(r, epoch, seconds, ips))
        return 1;
    CALL(r, "saving", vae_model_save(r->model, r->optimizer, out_path(r, "last.vae")));
    if (test_loss < r->best_test) {
        r->best_test = test_loss;
        CALL(r, "saving", vae_model_save(r->model, NULL, out_path(r, "best.vae")));
    }
    snprintf(file, sizeof file, "reconstructions_epoch%03d.png", epoch);
    return r->app->recon_every_epoch ? draw_reconstructions(r, file) : 0;
}

static int train(app_run *r)
{
    const ex_options *o = &r->opt;
    int batches = (int)((vae_dataset_count(r->train) + o->batch - 1) / o->batch);
    for (int epoch = vae_model_epoch(r->model) + 1; epoch <= o->epochs; epoch++) {
        progress_state p = {.batch_size = o->batch};
        double obj, train_loss, seconds;
        vae_status s;
        ex_progress_begin(&p.bar, epoch, o->epochs, batches);
        p.start = ex_now();
        s = vae_model_train_epoch(r->model, r->optimizer, r->train, o->batch, on_batch, &p, &obj,
                                  &train_loss);
        seconds = ex_now() - p.start;
        ex_progress_end(&p.bar);
        if (s != VAE_OK)
            return fail(r, "training (the last saved model is kept)", s);
        if (end_epoch(r, epoch, seconds, train_loss))
            return 1;
    }
    return 0;
}

/* ---- importance-weighted evaluation ---- */

typedef struct eval_progress {
    double start, last_print;
} eval_progress;

static int on_eval_batch(void *user, int done, int count, float nll)
{
    eval_progress *p = user;
    double now = ex_now();
    if (now - p->last_print >= 10.0 || done == count) {
        fprintf(stderr, "  %d/%d test images, -log p(x) %.3f nats so far, %.0f s\n", done, count,
                (double)nll, now - p->start);
        p->last_print = now;
    }
    return 0;
}

/* --eval-iw K: log p(x) of the test set (or its first --eval-limit images)
   with K importance samples, to eval.csv. */
static int evaluate_iw(app_run *r)
{
    const ex_options *o = &r->opt;
    eval_progress p = {.start = ex_now(), .last_print = ex_now()};
    double log_px;
    FILE *f;
    if (o->eval_limit > 0 && o->eval_limit < vae_dataset_count(r->test))
        CALL(r, "--eval-limit", vae_dataset_truncate(r->test, o->eval_limit));
    printf("importance-weighted log p(x): %lld test images, %d samples each\n",
           (long long)vae_dataset_count(r->test), o->eval_iw);
    fflush(stdout);
    CALL(r, "--eval-iw", vae_model_log_likelihood(r->model, r->test, o->eval_iw, o->seed,
                                                  on_eval_batch, &p, &log_px, NULL));
    printf("log p(x) >= %.3f nats per image (k = %d), %.4f bits per dimension, %.0f s\n", log_px,
           o->eval_iw, bits_per_dim(r, -log_px), ex_now() - p.start);
    if (!(f = fopen(out_path(r, "eval.csv"), "w"))) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "k,log_px_nats,bits_per_dim\n%d,%.4f,%.5f\n", o->eval_iw, log_px,
            bits_per_dim(r, -log_px));
    return fclose(f) != 0;
}

/* ---- the program ---- */

/* --load FILE --decode X,Y,...: one image and exit. */
static int decode_point(app_run *r)
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

/* The loaded model's image shape, from its input node. */
static int shape_from_model(app_run *r)
{
    const vae_graph *g = vae_model_graph(r->model);
    int dims[VAE_MAX_ROW_DIMS], nd = vae_graph_node_dims(g, vae_graph_role(g, VAE_ROLE_INPUT), dims);
    int64_t size = vae_model_input_size(r->model);
    if (r->pixels && size != r->pixels) {
        fprintf(stderr, "%s: the model takes %lld values per image, the data have %lld\n",
                r->app->name, (long long)size, (long long)r->pixels);
        return 1;
    }
    r->pixels = size;
    r->channels = nd == 3 ? dims[0] : 1;
    r->height = nd >= 2 ? dims[nd - 2] : 1;
    r->width = dims[nd - 1];
    return 0;
}

static int open_model(app_run *r)
{
    const char *file = r->opt.resume ? r->opt.resume : r->opt.load;
    if (!file)
        return build_model(r);
    CALL(r, file, vae_model_load(&r->model, file));
    if (shape_from_model(r))
        return 1;
    if (r->opt.resume) {
        CALL(r, file, vae_optimizer_restore(&r->optimizer, r->model));
        r->epochs_done = vae_model_epoch(r->model);
        read_metrics(r, r->epochs_done);
    }
    return 0;
}

static int run_app(app_run *r)
{
    int rc;
    if (ex_mkdir_p(r->opt.out_dir))
        return 1;
    if (r->opt.load && r->opt.n_decode > 0)
        return open_model(r) || decode_point(r);
    if (load_data(r) || open_model(r))
        return 1;
    CALL(r, "threads", vae_model_set_threads(r->model, r->opt.threads));
    CALL(r, "batch", vae_model_set_max_batch(r->model, r->opt.batch > 256 ? r->opt.batch : 256));
    printf("%s: %lld training images of %dx%dx%d, %lld parameters, %d threads, %s\n", r->app->name,
           (long long)vae_dataset_count(r->train), r->channels, r->height, r->width,
           (long long)vae_model_param_count(r->model), r->opt.threads, vae_blas_info());
    if (!r->opt.load) {
        if (write_metrics_header(r) || train(r))
            return 1;
    }
    rc = draw_all(r);
    if (r->opt.eval_iw > 0)
        rc |= evaluate_iw(r);
    printf("pictures and metrics are in %s/\n", r->opt.out_dir);
    return rc;
}

int app_main(int argc, char **argv, const app *a)
{
    app_run r = {.app = a, .opt = a->defaults, .best_test = INFINITY};
    int rc;
    ex_reexec_for_blas(argc, argv, vae_blas_env_hint());
    r.opt.description = a->description;
    rc = ex_parse_args(argc, argv, &r.opt);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (r.opt.epochs > MAX_EPOCHS) {
        fprintf(stderr, "%s: --epochs: at most %d\n", a->name, MAX_EPOCHS);
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
