/* The driver shared by the example programs: build or load, train with
   progress and per-epoch metrics, keep the last and best models, and draw
   what the reference runs show.  Uses only the public API. */
#include "app.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most epochs a model's history records. */
#define MAX_EPOCHS 1000000
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct app_run {
    const app *app;
    ex_options opt;
    vae_dataset *train, *test;
    vae_model *model;
    vae_optimizer *optimizer;
    int channels, height, width; /* of one image */
    int64_t pixels;
    char path[4096];
    double best_test; /* the test loss of the best.vae in --out */
};

/* Prints the library's error for a failed call and returns 1.  `what` is
   left out when the message names it already (as it names a file). */
static int fail(const app_run *r, const char *what, vae_status s)
{
    const char *msg = vae_last_error();
    if (strstr(msg, what))
        fprintf(stderr, "%s: %s (%s)\n", r->app->name, msg, vae_strerror(s));
    else
        fprintf(stderr, "%s: %s: %s (%s)\n", r->app->name, what, msg, vae_strerror(s));
    return 1;
}

#define CALL(r, what, expr)                      \
    do {                                         \
        vae_status call_s_ = (expr);             \
        if (call_s_ != VAE_OK)                   \
            return fail((r), (what), call_s_);   \
    } while (0)

static void say(const app_run *r, const char *prefix, const char *format, va_list ap)
{
    fprintf(stderr, "%s: %s", r->app->name, prefix);
    vfprintf(stderr, format, ap);
    fprintf(stderr, "\n");
}

/* A command line that cannot work: says why and returns 2, the exit
   status of a usage error. */
static int usage_error(const app_run *r, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const app_run *r, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    say(r, "", format, ap);
    va_end(ap);
    return 2;
}

/* Something the program chose for the user, on stderr. */
static void note(const app_run *r, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void note(const app_run *r, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    say(r, "note: ", format, ap);
    va_end(ap);
}

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

/* Images are (H, W) or (C, H, W) rows of one size: the size the model
   takes when there is a model already, else the shape to build for. */
static int check_images(app_run *r)
{
    int dims[VAE_MAX_ROW_DIMS], nd = vae_dataset_row_dims(r->train, dims);
    int64_t size = vae_dataset_row_size(r->train);
    if (nd < 2 || vae_dataset_row_size(r->test) != size) {
        fprintf(stderr, "%s: the data are not images of one size\n", r->app->name);
        return 1;
    }
    if (r->model && size != r->pixels) {
        fprintf(stderr, "%s: the model takes %lld values per image, the data have %lld\n",
                r->app->name, (long long)r->pixels, (long long)size);
        return 1;
    }
    r->channels = nd == 3 ? dims[0] : 1;
    r->height = dims[nd - 2];
    r->width = dims[nd - 1];
    r->pixels = size;
    return 0;
}

static int load_data(app_run *r)
{
    int rc = r->app->load ? r->app->load(&r->opt, &r->train, &r->test) : load_idx(r);
    if (rc || check_images(r))
        return 1;
    if (r->opt.limit > 0 && r->opt.limit < vae_dataset_count(r->train))
        CALL(r, "--limit", vae_dataset_truncate(r->train, r->opt.limit));
    return 0;
}

/* A batch larger than the training set would plan memory, and spend time,
   for rows that never come: one batch of the whole set does the same. */
static void clamp_batch(app_run *r)
{
    int64_t n = vae_dataset_count(r->train);
    if (n >= 1 && r->opt.batch > n) {
        note(r, "batch size %d is more than the %lld training images: batches of %lld instead",
             r->opt.batch, (long long)n, (long long)n);
        r->opt.batch = (int)n;
    }
}

/* Memory for the training batch, and for evaluating 256 rows at a time
   (or the whole training set, if smaller). */
static int plan_memory(app_run *r)
{
    int64_t n = vae_dataset_count(r->train);
    int rows = n < 256 ? (int)n : 256;
    CALL(r, "batch", vae_model_set_max_batch(r->model, r->opt.batch > rows ? r->opt.batch : rows));
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

/* The image shape a loaded model takes, from its input node. */
static void model_shape(app_run *r)
{
    const vae_graph *g = vae_model_graph(r->model);
    int dims[VAE_MAX_ROW_DIMS], nd = vae_graph_node_dims(g, vae_graph_role(g, VAE_ROLE_INPUT), dims);
    r->pixels = vae_model_input_size(r->model);
    r->channels = nd == 3 ? dims[0] : 1;
    r->height = nd >= 2 ? dims[nd - 2] : 1;
    r->width = dims[nd - 1];
}

/* ---- settings kept in the model file ----
   The flags a model was built with are kept in its metadata as
   "app.<flag>", in the flag's own syntax, so that --resume and --load
   can hold the command line against them and take the rest from the
   file. */

/* What shapes the network: the seed too, since it draws the initial
   weights and the noise. */
static const char *const net_flags[] = {"hidden",     "latent",     "loss", "seed",
                                        "flow-steps", "iaf-hidden", "size"};
/* What a resumed run goes on with unless told otherwise. */
static const char *const run_flags[] = {"optimizer", "epochs", "batch"};

/* --size is a setting only of the programs that take it. */
static int has_flag(const app_run *r, const char *flag)
{
    return strcmp(flag, "size") != 0 || r->opt.size > 0;
}

static const char *saved_setting(const app_run *r, const char *flag)
{
    char key[32];
    snprintf(key, sizeof key, "app.%s", flag);
    return vae_model_metadata(r->model, key);
}

static int save_setting(app_run *r, const char *flag)
{
    char key[32], text[256];
    snprintf(key, sizeof key, "app.%s", flag);
    ex_option_text(&r->opt, flag, text, sizeof text);
    CALL(r, "model metadata", vae_model_set_metadata(r->model, key, text));
    return 0;
}

/* The run's settings and, for a model built here, the network's. */
static int save_settings(app_run *r, int built)
{
    for (size_t i = 0; built && i < COUNT(net_flags); i++)
        if (has_flag(r, net_flags[i]) && save_setting(r, net_flags[i]))
            return 1;
    for (size_t i = 0; i < COUNT(run_flags); i++)
        if (save_setting(r, run_flags[i]))
            return 1;
    return 0;
}

/* FILE's value of --flag (text; NULL: unknown) against the command line:
   a flag not given takes it, a flag given must equal it. */
static int match(app_run *r, const char *file, const char *flag, const char *saved)
{
    char mine[256];
    if (!saved)
        return 0;
    if (!ex_flag_given(&r->opt, flag))
        return ex_set_option(&r->opt, flag, saved) ? 1 : 0;
    ex_option_text(&r->opt, flag, mine, sizeof mine);
    if (strcmp(mine, saved) == 0)
        return 0;
    return usage_error(r, "--%s %s, but %s was made with --%s %s", flag, mine, file, flag, saved);
}

/* What the model itself tells, whatever version saved it: its latent
   size, its image size and, with a training state, its optimizer. */
static int match_model(app_run *r, const char *file)
{
    ex_options model = r->opt;
    char text[64];
    int rc;
    snprintf(text, sizeof text, "%d", vae_model_latent_size(r->model));
    if ((rc = match(r, file, "latent", text)) != 0)
        return rc;
    snprintf(text, sizeof text, "%d", r->height);
    if (r->opt.size > 0 && (rc = match(r, file, "size", text)) != 0)
        return rc;
    if (!r->optimizer || vae_optimizer_get_kind(r->optimizer, &model.optimizer) != VAE_OK)
        return 0;
    ex_option_text(&model, "optimizer", text, sizeof text);
    return match(r, file, "optimizer", text);
}

/* The command line against everything FILE tells of its network.  Files
   from before 0.3 keep no settings: what the model tells is checked, the
   rest is taken as given, with a note. */
static int match_file(app_run *r, const char *file)
{
    char unchecked[256] = "";
    int rc = match_model(r, file);
    for (size_t i = 0; rc == 0 && i < COUNT(net_flags); i++) {
        const char *flag = net_flags[i];
        if (!has_flag(r, flag))
            continue;
        if (saved_setting(r, flag))
            rc = match(r, file, flag, saved_setting(r, flag));
        else if (ex_flag_given(&r->opt, flag) && strcmp(flag, "latent") && strcmp(flag, "size"))
            snprintf(unchecked + strlen(unchecked), sizeof unchecked - strlen(unchecked),
                     " --%s", flag);
    }
    if (rc == 0 && !saved_setting(r, "latent"))
        note(r, "%s keeps no network settings (an older version saved it)%s%s", file,
             unchecked[0] ? "; not checked:" : "", unchecked);
    return rc;
}

/* --resume: the epochs to reach, the batch size and the learning rate,
   each from the command line or else from FILE. */
static int resume_settings(app_run *r, const char *file)
{
    int done = vae_model_epoch(r->model), batch = vae_model_epoch_batch(r->model), rc;
    double lr;
    if (!ex_flag_given(&r->opt, "epochs") &&
        (rc = match(r, file, "epochs", saved_setting(r, "epochs"))) != 0)
        return rc;
    if (r->opt.epochs <= done)
        return usage_error(r, "%s has %d epoch%s done and --epochs is %d: ask for more to "
                           "train on (--load FILE draws it without training)", file, done,
                           done == 1 ? "" : "s", r->opt.epochs);
    if (batch > 0 && ex_flag_given(&r->opt, "batch") && r->opt.batch != batch)
        return usage_error(r, "--batch %d, but %s stopped inside epoch %d, which must finish "
                           "with batches of %d", r->opt.batch, file, done + 1, batch);
    if (batch > 0) /* the position counts batches of this size */
        r->opt.batch = batch;
    else if (!ex_flag_given(&r->opt, "batch") &&
             (rc = match(r, file, "batch", saved_setting(r, "batch"))) != 0)
        return rc;
    CALL(r, "optimizer", vae_optimizer_get(r->optimizer, VAE_OPT_LEARNING_RATE, &lr));
    if (!ex_flag_given(&r->opt, "lr") || r->opt.lr == lr) {
        r->opt.lr = lr;
        return 0;
    }
    printf("learning rate %g from here on (it was %g)\n", r->opt.lr, lr);
    CALL(r, "--lr", vae_optimizer_set(r->optimizer, VAE_OPT_LEARNING_RATE, r->opt.lr));
    return 0;
}

/* --resume FILE or --load FILE: the model (and to resume, its optimizer),
   then the command line against what FILE holds. */
static int open_model(app_run *r)
{
    const char *file = r->opt.resume ? r->opt.resume : r->opt.load;
    int rc;
    CALL(r, file, vae_model_load(&r->model, file));
    if (r->opt.resume)
        CALL(r, file, vae_optimizer_restore(&r->optimizer, r->model));
    model_shape(r);
    if ((rc = match_file(r, file)) != 0)
        return rc;
    if (r->opt.resume)
        return resume_settings(r, file);
    /* evaluating in batches of the size it trained with gives the same
       numbers as the training run */
    return match(r, file, "batch", saved_setting(r, "batch"));
}

/* ---- metrics: the model's history ---- */

/* The history columns behind metrics.csv after its epoch column (the
   library records train_nelbo itself), and their decimals. */
static const struct {
    const char *column;
    int decimals;
} metric_columns[] = {{"seconds", 3},   {"images_per_sec", 0},   {"train_nelbo", 4},
                      {"test_loss", 4}, {"test_bits_per_dim", 5}};

/* The whole history, so that a run resumed into another --out has it
   all.  Epochs with no value (saved by a version without a history) are
   left out; a missing value is an empty field. */
static int write_metrics(app_run *r)
{
    FILE *f = fopen(out_path(r, "metrics.csv"), "w");
    if (!f) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "epoch,seconds,images_per_sec,train_loss,test_loss,test_bits_per_dim\n");
    for (int e = 1; e <= vae_model_history_epochs(r->model); e++) {
        char row[256];
        size_t len = (size_t)snprintf(row, sizeof row, "%d", e);
        int any = 0;
        for (size_t i = 0; i < COUNT(metric_columns); i++) {
            double v = vae_model_history_get(r->model, e, metric_columns[i].column);
            any |= isfinite(v);
            if (isfinite(v))
                len += (size_t)snprintf(row + len, sizeof row - len, ",%.*f",
                                        metric_columns[i].decimals, v);
            else
                len += (size_t)snprintf(row + len, sizeof row - len, ",");
        }
        if (any)
            fprintf(f, "%s\n", row);
    }
    return fclose(f) != 0;
}

/* Nats per image as bits per pixel value. */
static double bits_per_dim(const app_run *r, double nats)
{
    return nats / ((double)r->pixels * log(2.0));
}

static int record_epoch(app_run *r, int epoch, double seconds, double ips, double test_loss)
{
    CALL(r, "history", vae_model_history_set(r->model, epoch, "seconds", seconds));
    CALL(r, "history", vae_model_history_set(r->model, epoch, "images_per_sec", ips));
    CALL(r, "history", vae_model_history_set(r->model, epoch, "test_loss", test_loss));
    CALL(r, "history", vae_model_history_set(r->model, epoch, "test_bits_per_dim",
                                             bits_per_dim(r, test_loss)));
    CALL(r, "model metadata", vae_model_set_metadata(r->model, "app.epoch_seconds", NULL));
    return 0;
}

/* The test loss of the best.vae in --out, from the history.  Without a
   best.vae there (a run resumed into another --out), best.vae will be the
   best of the epochs trained from here. */
static void find_best(app_run *r)
{
    r->best_test = INFINITY;
    if (access(out_path(r, "best.vae"), F_OK) != 0) {
        if (vae_model_epoch(r->model) > 0)
            note(r, "%s has no best.vae: it will hold the best of the epochs trained from here",
                 r->opt.out_dir);
        return;
    }
    for (int e = 1; e <= vae_model_history_epochs(r->model); e++) {
        double loss = vae_model_history_get(r->model, e, "test_loss");
        if (loss < r->best_test) /* false for NaN */
            r->best_test = loss;
    }
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

/* loss.png from the history; epochs without a value (NaN) are left out. */
static int draw_losses(app_run *r)
{
    int n = vae_model_history_epochs(r->model), any = 0, rc = 0;
    double *v = n > 0 ? malloc(sizeof(double) * 3 * (size_t)n) : NULL;
    if (n > 0 && !v) {
        fprintf(stderr, "%s: out of memory for loss.png\n", r->app->name);
        return 1;
    }
    for (int e = 0; e < n; e++) {
        v[e] = e + 1;
        v[n + e] = vae_model_history_get(r->model, e + 1, "train_nelbo");
        v[2 * n + e] = vae_model_history_get(r->model, e + 1, "test_loss");
        any |= isfinite(v[n + e]) || isfinite(v[2 * n + e]);
    }
    if (any)
        rc = ex_plot_losses(out_path(r, "loss.png"), n, v, v + n, v + 2 * n,
                            "negative ELBO per image");
    free(v);
    return rc;
}

static int draw_all(app_run *r)
{
    int rc = draw_losses(r);
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

/* ---- stopping on a signal ----
   The first SIGINT or SIGTERM during training lets the batch under way
   finish (or the epoch's evaluation and saving), saves last.vae with its
   place in the epoch and exits with 128 + the signal's number.  The
   library's progress callback is where training hears of it. */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    static const char msg[] = "\nstopping at the next safe point (signal again to quit at once)\n";
    ssize_t ignored;
    if (stop_signal) {
        /* the second one ends the program as if it were not caught */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
    ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* file writes go on as if nothing happened */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static const char *signal_name(void) { return stop_signal == SIGINT ? "SIGINT" : "SIGTERM"; }

/* Says where training stopped and returns the exit status, 130 or 143. */
static int report_stop(app_run *r)
{
    int done = vae_model_epoch(r->model), pos = vae_model_epoch_position(r->model);
    int64_t batches = (vae_dataset_count(r->train) + r->opt.batch - 1) / r->opt.batch;
    char where[96];
    if (pos > 0)
        snprintf(where, sizeof where, "in epoch %d after batch %d of %lld", done + 1, pos,
                 (long long)batches);
    else
        snprintf(where, sizeof where, "after epoch %d", done);
    out_path(r, "last.vae");
    fprintf(stderr, "%s: %s: stopped %s and saved %s; continue with --resume %s\n", r->app->name,
            signal_name(), where, r->path, r->path);
    return 128 + stop_signal;
}

/* A signal stopped the epoch: last.vae keeps the place in it and the
   seconds spent so far, which the resumed run adds to its own. */
static int save_stopped(app_run *r, double seconds)
{
    char text[32];
    snprintf(text, sizeof text, "%.17g", seconds);
    CALL(r, "model metadata", vae_model_set_metadata(r->model, "app.epoch_seconds", text));
    CALL(r, "saving", vae_model_save(r->model, r->optimizer, out_path(r, "last.vae")));
    return report_stop(r);
}

/* ---- training ---- */

typedef struct progress_state {
    ex_progress bar;
    double start;
    int batch_size;
    int first; /* batches of the epoch done before (by a stopped run) */
} progress_state;

static int on_batch(void *user, int batch, int batches, float loss)
{
    progress_state *p = user;
    double elapsed = ex_now() - p->start;
    (void)batches;
    ex_progress_update(&p->bar, batch, loss,
                       elapsed > 0 ? (batch - p->first) * (double)p->batch_size / elapsed : 0);
    return stop_signal != 0;
}

/* Evaluation, the history, metrics.csv, the last model, the best model
   and per-epoch pictures. */
static int end_epoch(app_run *r, int epoch, double seconds, double train_loss)
{
    double test_loss, ips = (double)vae_dataset_count(r->train) / seconds;
    char file[64];
    CALL(r, "evaluating", vae_model_evaluate(r->model, r->test, &test_loss));
    if (record_epoch(r, epoch, seconds, ips, test_loss))
        return 1;
    printf("epoch %d/%d  %.2f s  %.0f images/s  train %.3f  test %.3f nats\n", epoch,
           r->opt.epochs, seconds, ips, train_loss, test_loss);
    fflush(stdout);
    if (write_metrics(r))
        return 1;
    CALL(r, "saving", vae_model_save(r->model, r->optimizer, out_path(r, "last.vae")));
    if (test_loss < r->best_test) {
        r->best_test = test_loss;
        CALL(r, "saving", vae_model_save(r->model, NULL, out_path(r, "best.vae")));
    }
    snprintf(file, sizeof file, "reconstructions_epoch%03d.png", epoch);
    return r->app->recon_every_epoch ? draw_reconstructions(r, file) : 0;
}

/* Seconds a stopped run spent on the epoch under way. */
static double seconds_before(const app_run *r)
{
    const char *s = vae_model_metadata(r->model, "app.epoch_seconds");
    return s && vae_model_epoch_position(r->model) > 0 ? strtod(s, NULL) : 0.0;
}

/* One epoch, or the rest of one.  Returns 0, 1 after an error, or the
   exit status after a signal. */
static int train_epoch(app_run *r, int epoch)
{
    const ex_options *o = &r->opt;
    int batches = (int)((vae_dataset_count(r->train) + o->batch - 1) / o->batch);
    progress_state p = {.batch_size = o->batch, .first = vae_model_epoch_position(r->model)};
    double obj, train_loss, seconds = seconds_before(r);
    vae_status s;
    ex_progress_begin(&p.bar, epoch, o->epochs, batches);
    p.start = ex_now();
    s = vae_model_train_epoch(r->model, r->optimizer, r->train, o->batch, on_batch, &p, &obj,
                              &train_loss);
    seconds += ex_now() - p.start;
    ex_progress_end(&p.bar);
    if (s == VAE_ERR_STOPPED)
        return save_stopped(r, seconds);
    if (s != VAE_OK)
        return fail(r, "training (the last saved model is kept)", s);
    return end_epoch(r, epoch, seconds, train_loss);
}

/* From where the model is up to --epochs, with metrics.csv written from
   the start (a resumed run's history included). */
static int train(app_run *r)
{
    find_best(r);
    if (save_settings(r, r->opt.resume == NULL) || write_metrics(r))
        return 1;
    catch_stop_signals();
    for (int epoch = vae_model_epoch(r->model) + 1; epoch <= r->opt.epochs; epoch++) {
        int rc = train_epoch(r, epoch);
        /* a signal during the evaluation or saving; after the last epoch
           it is the end of training that stops (see run_app) */
        if (rc == 0 && stop_signal && epoch < r->opt.epochs)
            rc = report_stop(r);
        if (rc != 0)
            return rc;
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
    return stop_signal != 0;
}

/* --eval-iw K: log p(x) of the test set (or its first --eval-limit images)
   with K importance samples, to eval.csv.  A signal stops it quietly. */
static int evaluate_iw(app_run *r)
{
    const ex_options *o = &r->opt;
    eval_progress p = {.start = ex_now(), .last_print = ex_now()};
    double log_px;
    vae_status s;
    FILE *f;
    if (o->eval_limit > 0 && o->eval_limit < vae_dataset_count(r->test))
        CALL(r, "--eval-limit", vae_dataset_truncate(r->test, o->eval_limit));
    printf("importance-weighted log p(x): %lld test images, %d samples each\n",
           (long long)vae_dataset_count(r->test), o->eval_iw);
    fflush(stdout);
    s = vae_model_log_likelihood(r->model, r->test, o->eval_iw, o->seed, on_eval_batch, &p,
                                 &log_px, NULL);
    if (s == VAE_ERR_STOPPED && stop_signal)
        return 0;
    CALL(r, "--eval-iw", s);
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

/* Flags that need another flag, or that the mode cannot use, are errors
   rather than flags quietly ignored. */
static int check_flags(const app_run *r)
{
    static const char *const training[] = {"epochs", "batch", "lr", "optimizer"};
    static const char *const with_data[] = {"data", "limit", "eval-iw", "eval-limit"};
    const ex_options *o = &r->opt;
    int max_hidden = r->app->net->max_hidden;
    if (o->resume && o->load)
        return usage_error(r, "--resume and --load: give one (--resume trains on, --load draws)");
    if (o->n_decode > 0 && !o->load)
        return usage_error(r, "--decode needs --load FILE");
    if (ex_flag_given(o, "eval-limit") && o->eval_iw == 0)
        return usage_error(r, "--eval-limit needs --eval-iw K");
    for (size_t i = 0; o->load && i < COUNT(training); i++)
        if (ex_flag_given(o, training[i]))
            return usage_error(r, "--%s: --load FILE trains nothing (--resume FILE trains on)",
                               training[i]);
    for (size_t i = 0; o->load && o->n_decode > 0 && i < COUNT(with_data); i++)
        if (ex_flag_given(o, with_data[i]))
            return usage_error(r, "--%s: --load FILE --decode X,Y,... only writes decoded.png",
                               with_data[i]);
    if (o->resume || o->load) /* the network's flags are held against FILE's */
        return 0;
    if (ex_flag_given(o, "iaf-hidden") && o->flow_steps == 0)
        return usage_error(r, "--iaf-hidden needs --flow-steps N above 0");
    if (max_hidden > 0 && o->n_hidden > max_hidden)
        return usage_error(r, "--hidden: this network takes %d width%s, not %d", max_hidden,
                           max_hidden == 1 ? "" : "s", o->n_hidden);
    return 0;
}

/* The model, built for the data or loaded, and the data (none to decode
   one point).  Returns 0, 1 or 2 (a usage error). */
static int prepare(app_run *r)
{
    int rc;
    if (!r->opt.resume && !r->opt.load)
        return load_data(r) || build_model(r);
    if ((rc = open_model(r)) != 0)
        return rc;
    return r->opt.n_decode > 0 ? 0 : load_data(r);
}

static int run_app(app_run *r)
{
    int rc;
    if ((rc = check_flags(r)) != 0)
        return rc;
    if (ex_mkdir_p(r->opt.out_dir) != 0)
        return 1;
    if ((rc = prepare(r)) != 0)
        return rc;
    CALL(r, "threads", vae_model_set_threads(r->model, r->opt.threads));
    if (r->opt.n_decode > 0)
        return decode_point(r);
    clamp_batch(r);
    if (plan_memory(r))
        return 1;
    printf("%s: %lld training images of %dx%dx%d, %lld parameters, %d threads, %s\n", r->app->name,
           (long long)vae_dataset_count(r->train), r->channels, r->height, r->width,
           (long long)vae_model_param_count(r->model), r->opt.threads, vae_blas_info());
    if (!r->opt.load && (rc = train(r)) != 0)
        return rc;
    rc = draw_all(r);
    if (r->opt.eval_iw > 0 && !stop_signal)
        rc |= evaluate_iw(r);
    if (stop_signal) {
        fprintf(stderr, "%s: %s: stopped after training; pictures or eval.csv may be missing\n",
                r->app->name, signal_name());
        return 128 + stop_signal;
    }
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
    rc = run_app(&r);
    vae_optimizer_free(r.optimizer);
    vae_model_free(r.model);
    vae_dataset_free(r.train);
    vae_dataset_free(r.test);
    return rc;
}
