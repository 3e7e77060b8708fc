/* The driver shared by the example programs: build or load, train with
   progress and per-epoch metrics, keep the last and best models, and draw
   what the reference runs show.  Uses only the public API. */
#include "app_run.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most epochs a model's history records. */
#define MAX_EPOCHS 1000000

/* Prints the library's error for a failed call and returns 1.  `what` is
   left out when the message names it already (as it names a file). */
int app_fail(const app_run *r, const char *what, vae_status s)
{
    const char *msg = vae_last_error();
    char name[128];
    /* a rank's own failure is its to tell; "rank 1 failed" is rank 0's */
    if (r->rank > 0 && s == VAE_ERR_COMM)
        return 1;
    if (r->ranks > 1)
        snprintf(name, sizeof name, "%s (rank %d)", r->app->name, r->rank);
    else
        snprintf(name, sizeof name, "%s", r->app->name);
    if (strstr(msg, what))
        fprintf(stderr, "%s: %s (%s)\n", name, msg, vae_strerror(s));
    else
        fprintf(stderr, "%s: %s: %s (%s)\n", name, what, msg, vae_strerror(s));
    return 1;
}


static void say(const app_run *r, const char *prefix, const char *format, va_list ap)
{
    if (r->rank > 0) /* every rank comes to the same notes: rank 0 tells them */
        return;
    fprintf(stderr, "%s: %s", r->app->name, prefix);
    vfprintf(stderr, format, ap);
    fprintf(stderr, "\n");
}

/* A command line that cannot work: says why and returns 2, the exit
   status of a usage error. */
int app_usage_error(const app_run *r, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
int app_usage_error(const app_run *r, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    say(r, "", format, ap);
    va_end(ap);
    return 2;
}

/* Something the program chose for the user, on stderr. */
void app_note(const app_run *r, const char *format, ...) __attribute__((format(printf, 2, 3)));
void app_note(const app_run *r, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    say(r, "note: ", format, ap);
    va_end(ap);
}

const char *app_out_path(app_run *r, const char *file)
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
    return s != VAE_OK ? app_fail(r, "loading data", s) : 0;
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
        app_note(r, "batch size %d is more than the %lld training images: batches of %lld instead",
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
        return vae_elbo_build(g, x, mu, logvar, z, logits, lik, r->app->objective,
                              (float)o->beta, &objective);
    return vae_elbo_build_flow(g, x, mu, logvar, z0, z, log_det, logits, lik, r->app->objective,
                               (float)o->beta, &objective);
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
        return app_fail(r, "building the network", s);
    }
    CALL(r, "optimizer", vae_optimizer_create(&r->optimizer, r->model, o->optimizer));
    CALL(r, "optimizer", vae_optimizer_set(r->optimizer, VAE_OPT_LEARNING_RATE, o->lr));
    return 0;
}

/* ---- training settings: the schedules and frozen parameters ---- */

static int batches_per_epoch(const app_run *r)
{
    return (int)((vae_dataset_count(r->train) + r->opt.batch - 1) / r->opt.batch);
}

/* The KL weight of epoch e (from 1): --beta, with --kl-warmup N rising
   linearly as beta * min(1, (e - 1) / N), so epoch 1 trains with 0 and
   epoch N + 1 on with the full weight.  It depends on the epoch number
   alone, so a resumed run goes on with the same weights. */
static double epoch_beta(const app_run *r, int epoch)
{
    const ex_options *o = &r->opt;
    if (o->kl_warmup <= 0 || epoch - 1 >= o->kl_warmup)
        return o->beta;
    return o->beta * (double)(epoch - 1) / (double)o->kl_warmup;
}

/* A model whose graph has no KL weight to change (built before 0.3). */
static int fixed_beta(const app_run *r) { return !isfinite(vae_model_beta(r->model)); }

/* Flags naming a schedule's parameter need a schedule that reads it. */
static int check_schedule(const app_run *r)
{
    const ex_options *o = &r->opt;
    int sch = o->lr_schedule;
    if (ex_flag_given(o, "lr-steps") && sch != VAE_LR_STEP && sch != VAE_LR_COSINE)
        return app_usage_error(r, "--lr-steps needs --lr-schedule step or cosine");
    if (ex_flag_given(o, "lr-gamma") && sch != VAE_LR_STEP && sch != VAE_LR_EXPONENTIAL)
        return app_usage_error(r, "--lr-gamma needs --lr-schedule step or exp");
    if (ex_flag_given(o, "lr-min") && sch != VAE_LR_COSINE)
        return app_usage_error(r, "--lr-min needs --lr-schedule cosine");
    if (sch == VAE_LR_COSINE && o->lr_min > o->lr)
        return app_usage_error(r, "--lr-min %g is above the learning rate %g", o->lr_min, o->lr);
    if (fixed_beta(r) && (ex_flag_given(o, "beta") || o->kl_warmup > 0))
        return app_usage_error(r, "--%s: %s was built before 0.3 and has a fixed KL weight",
                               ex_flag_given(o, "beta") ? "beta" : "kl-warmup", r->opt.resume);
    return 0;
}

/* The schedules as optimizer options (a resumed run's optimizer has them
   already: the same values, checked against FILE), weight decay, and the
   parameters to freeze.  Cosine's --lr-steps 0 becomes the run's steps,
   and step's 1000, so that the file keeps the number. */
static int configure_training(app_run *r)
{
    ex_options *o = &r->opt;
    int rc;
    if ((rc = check_schedule(r)) != 0)
        return rc;
    if (o->lr_steps == 0 && o->lr_schedule == VAE_LR_COSINE) {
        int64_t steps = (int64_t)o->epochs * batches_per_epoch(r);
        o->lr_steps = steps < 1 ? 1 : steps > 1000000000 ? 1000000000 : (int)steps;
    } else if (o->lr_steps == 0 && o->lr_schedule == VAE_LR_STEP)
        o->lr_steps = 1000;
    CALL(r, "--lr-schedule", vae_optimizer_set(r->optimizer, VAE_OPT_SCHEDULE, o->lr_schedule));
    if (o->lr_steps > 0)
        CALL(r, "--lr-steps", vae_optimizer_set(r->optimizer, VAE_OPT_SCHEDULE_STEPS, o->lr_steps));
    CALL(r, "--lr-gamma", vae_optimizer_set(r->optimizer, VAE_OPT_SCHEDULE_GAMMA, o->lr_gamma));
    CALL(r, "--lr-min", vae_optimizer_set(r->optimizer, VAE_OPT_MIN_RATE, o->lr_min));
    CALL(r, "--lr-warmup", vae_optimizer_set(r->optimizer, VAE_OPT_WARMUP_STEPS, o->lr_warmup));
    CALL(r, "--weight-decay",
         vae_optimizer_set(r->optimizer, VAE_OPT_WEIGHT_DECAY, o->weight_decay));
    for (int i = 0; i < o->n_freeze; i++) {
        int count = 0;
        if (vae_model_freeze(r->model, o->freeze[i], 1, &count) != VAE_OK)
            return app_usage_error(r, "--freeze %s: no parameter is called %s or under it (the "
                                   "model summary names them)", o->freeze[i], o->freeze[i]);
        printf("--freeze %s: %d parameter%s frozen\n", o->freeze[i], count, count == 1 ? "" : "s");
    }
    return 0;
}

/* The image shape a loaded model takes, from its input node. */
void app_model_shape(app_run *r)
{
    const vae_graph *g = vae_model_graph(r->model);
    int dims[VAE_MAX_ROW_DIMS], nd = vae_graph_node_dims(g, vae_graph_role(g, VAE_ROLE_INPUT), dims);
    r->pixels = vae_model_input_size(r->model);
    r->channels = nd == 3 ? dims[0] : 1;
    r->height = nd >= 2 ? dims[nd - 2] : 1;
    r->width = dims[nd - 1];
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
    if (!stop_signal) /* another rank's signal */
        stop_signal = SIGTERM;
    if (r->rank > 0)
        return 128 + stop_signal;
    if (pos > 0)
        snprintf(where, sizeof where, "in epoch %d after batch %d of %lld", done + 1, pos,
                 (long long)batches);
    else
        snprintf(where, sizeof where, "after epoch %d", done);
    app_out_path(r, "last.vae");
    fprintf(stderr, "%s: %s: stopped %s and saved %s; continue with --resume %s\n", r->app->name,
            signal_name(), where, r->path, r->path);
    return 128 + stop_signal;
}

/* A signal stopped the epoch: last.vae keeps the place in it and the
   seconds spent so far, which the resumed run adds to its own. */
static int save_stopped(app_run *r, double seconds)
{
    char text[32];
    vae_status s = VAE_OK;
    snprintf(text, sizeof text, "%.17g", seconds);
    CALL(r, "model metadata", vae_model_set_metadata(r->model, "app.epoch_seconds", text));
    if (r->rank == 0)
        s = vae_model_save(r->model, r->optimizer, app_out_path(r, "last.vae"));
    if (app_agree(r, s != VAE_OK ? app_fail(r, "saving", s) : 0))
        return 1;
    return report_stop(r);
}

/* ---- training ---- */

typedef struct progress_state {
    ex_progress bar;
    double start;
    int batch_size;
    int first; /* batches of the epoch done before (by a stopped run) */
    int show;  /* rank 0 draws the bar */
} progress_state;

static int on_batch(void *user, int batch, int batches, float loss)
{
    progress_state *p = user;
    double elapsed = ex_now() - p->start;
    (void)batches;
    if (p->show)
        ex_progress_update(&p->bar, batch, loss,
                           elapsed > 0 ? (batch - p->first) * (double)p->batch_size / elapsed : 0);
    return stop_signal != 0;
}

/* Rank 0's part of an epoch's end: the line, metrics.csv, last.vae and,
   for a better test loss, best.vae. */
static int write_epoch(app_run *r, int epoch, double seconds, double ips, double train_loss,
                       double test_loss)
{
    printf("epoch %d/%d  %.2f s  %.0f images/s  train %.3f  test %.3f nats\n", epoch,
           r->opt.epochs, seconds, ips, train_loss, test_loss);
    fflush(stdout);
    if (app_write_metrics(r))
        return 1;
    CALL(r, "saving", vae_model_save(r->model, r->optimizer, app_out_path(r, "last.vae")));
    if (test_loss < r->best_test)
        CALL(r, "saving", vae_model_save(r->model, NULL, app_out_path(r, "best.vae")));
    return 0;
}

/* Evaluation, the history, metrics.csv, the last model, the best model
   and per-epoch pictures. */
static int end_epoch(app_run *r, int epoch, double seconds, double train_loss)
{
    double test_loss, recon = NAN, kl = NAN, ips = (double)vae_dataset_count(r->train) / seconds;
    char file[64];
    vae_status s = vae_model_evaluate_terms(r->model, r->test, &test_loss, &recon, &kl, NULL);
    if (s == VAE_ERR_UNSUPPORTED) /* a graph from before 0.3: no terms apart */
        s = vae_model_evaluate(r->model, r->test, &test_loss);
    CALL(r, "evaluating", s);
    if (app_record_epoch(r, epoch, seconds, ips, test_loss, recon, kl))
        return 1;
    if (!fixed_beta(r))
        CALL(r, "history", vae_model_history_set(r->model, epoch, "beta", vae_model_beta(r->model)));
    if (app_agree(r, r->rank == 0 ? write_epoch(r, epoch, seconds, ips, train_loss, test_loss)
                                  : 0))
        return 1;
    /* the test loss is the same on every rank, and so the best epoch */
    if (test_loss < r->best_test) {
        r->best_test = test_loss;
        r->best_epoch = epoch;
    }
    snprintf(file, sizeof file, "reconstructions_epoch%03d.png", epoch);
    return r->app->recon_every_epoch && r->rank == 0 ? app_draw_reconstructions(r, file) : 0;
}

/* Seconds a stopped run spent on the epoch under way. */
static double seconds_before(const app_run *r)
{
    const char *s = vae_model_metadata(r->model, "app.epoch_seconds");
    return s && vae_model_epoch_position(r->model) > 0 ? strtod(s, NULL) : 0.0;
}

/* The error, and which model files the failure left as they were: nothing
   is saved after a failed step (a loss gone NaN leaves the weights of the
   last good step in memory, and the files of the last epoch on disk). */
static int training_failed(app_run *r, vae_status s)
{
    app_fail(r, "training", s);
    if (r->rank == 0 && access(app_out_path(r, "last.vae"), F_OK) == 0) {
        fprintf(stderr, "%s: nothing saved: %s keeps epoch %d", r->app->name,
                app_out_path(r, "last.vae"), vae_model_epoch(r->model));
        if (r->best_epoch > 0)
            fprintf(stderr, ", best.vae epoch %d", r->best_epoch);
        fprintf(stderr, "; resume from it with --resume and a lower --lr\n");
    }
    return 1;
}

/* One epoch, or the rest of one.  Returns 0, 1 after an error, or the
   exit status after a signal. */
static int train_epoch(app_run *r, int epoch)
{
    const ex_options *o = &r->opt;
    int batches = (int)((vae_dataset_count(r->train) + o->batch - 1) / o->batch);
    progress_state p = {.batch_size = o->batch, .first = vae_model_epoch_position(r->model),
                        .show = r->rank == 0};
    double obj, train_loss, seconds = seconds_before(r);
    vae_status s;
    if (!fixed_beta(r))
        CALL(r, "--beta", vae_model_set_beta(r->model, epoch_beta(r, epoch)));
    if (p.show)
        ex_progress_begin(&p.bar, epoch, o->epochs, batches);
    p.start = ex_now();
    s = vae_model_train_epoch(r->model, r->optimizer, r->train, o->batch, on_batch, &p, &obj,
                              &train_loss);
    seconds += ex_now() - p.start;
    if (p.show)
        ex_progress_end(&p.bar);
    if (s == VAE_ERR_STOPPED)
        return save_stopped(r, seconds);
    if (s != VAE_OK)
        return training_failed(r, s);
    return end_epoch(r, epoch, seconds, train_loss);
}

/* --early-stop: best.vae's weights into the model, to draw them. */
static int load_best(app_run *r)
{
    vae_model *best = NULL;
    int64_t n = vae_model_param_count(r->model);
    float *params = malloc((size_t)n * sizeof *params);
    vae_status s = params ? vae_model_load(&best, app_out_path(r, "best.vae")) : VAE_ERR_NO_MEMORY;
    if (s == VAE_OK)
        s = vae_model_params_get(best, params, n);
    if (s == VAE_OK)
        s = vae_model_params_set(r->model, params, n);
    vae_model_free(best);
    free(params);
    return s != VAE_OK ? app_fail(r, "--early-stop: best.vae", s) : 0;
}

/* --early-stop N: after `done` epochs, N of them without a better test
   loss than the best epoch's. */
static int early_stopped(const app_run *r, int done)
{
    return r->opt.early_stop > 0 && r->best_epoch > 0 && done - r->best_epoch >= r->opt.early_stop;
}

/* With --early-stop: where it stopped, and best.vae's weights to draw. */
static int end_early_stop(app_run *r, int stopped)
{
    int done = vae_model_epoch(r->model);
    if (r->opt.early_stop <= 0 || r->best_epoch == 0 || r->rank > 0)
        return 0;
    if (stopped)
        printf("early stop after epoch %d of %d: no better test loss in %d epoch%s; "
               "best epoch %d (test %.3f nats)\n",
               done, r->opt.epochs, r->opt.early_stop, r->opt.early_stop == 1 ? "" : "s",
               r->best_epoch, r->best_test);
    else
        printf("--early-stop: all %d epochs trained; best epoch %d (test %.3f nats)\n", done,
               r->best_epoch, r->best_test);
    if (r->best_epoch == done)
        return 0;
    printf("drawing best.vae (epoch %d); last.vae keeps epoch %d\n", r->best_epoch, done);
    fflush(stdout);
    return load_best(r);
}

/* From where the model is up to --epochs, with metrics.csv written from
   the start (a resumed run's history included), or until --early-stop. */
static int train(app_run *r)
{
    int stopped = 0;
    if (r->rank == 0)
        app_find_best(r);
    if (app_share_best(r) || app_save_settings(r, r->opt.resume == NULL) ||
        app_agree(r, r->rank == 0 ? app_write_metrics(r) : 0))
        return 1;
    catch_stop_signals();
    for (int epoch = vae_model_epoch(r->model) + 1; epoch <= r->opt.epochs; epoch++) {
        int rc;
        if (early_stopped(r, epoch - 1)) {
            stopped = 1;
            break;
        }
        rc = train_epoch(r, epoch);
        /* a signal during the evaluation or saving; after the last epoch
           it is the end of training that stops (see run_app) */
        if (rc == 0 && app_agree_stop(r, stop_signal) && epoch < r->opt.epochs)
            rc = report_stop(r);
        if (rc != 0)
            return rc;
    }
    return stop_signal ? 0 : end_early_stop(r, stopped);
}

/* ---- importance-weighted evaluation ---- */

typedef struct eval_progress {
    double start, last_print;
    int show, ranks;
} eval_progress;

static int on_eval_batch(void *user, int done, int count, float nll)
{
    eval_progress *p = user;
    double now = ex_now();
    if (p->show && (now - p->last_print >= 10.0 || done == count)) {
        fprintf(stderr, "  %d/%d test images%s, -log p(x) %.3f nats so far, %.0f s\n", done,
                count, p->ranks > 1 ? " of rank 0's share" : "", (double)nll, now - p->start);
        p->last_print = now;
    }
    return stop_signal != 0;
}

/* --eval-iw K: log p(x) of the test set (or its first --eval-limit images)
   with K importance samples, to eval.csv.  A signal stops it quietly. */
static int evaluate_iw(app_run *r)
{
    const ex_options *o = &r->opt;
    eval_progress p = {.start = ex_now(), .last_print = ex_now(), .show = r->rank == 0,
                       .ranks = r->ranks};
    double log_px;
    vae_status s;
    FILE *f;
    if (o->eval_limit > 0 && o->eval_limit < vae_dataset_count(r->test))
        CALL(r, "--eval-limit", vae_dataset_truncate(r->test, o->eval_limit));
    if (r->rank == 0)
        printf("importance-weighted log p(x): %lld test images, %d samples each\n",
               (long long)vae_dataset_count(r->test), o->eval_iw);
    fflush(stdout);
    s = vae_model_log_likelihood(r->model, r->test, o->eval_iw, o->seed, on_eval_batch, &p,
                                 &log_px, NULL);
    if (app_agree_stop(r, stop_signal) && s != VAE_OK)
        return 0;
    CALL(r, "--eval-iw", s);
    if (r->rank > 0)
        return 0;
    printf("log p(x) >= %.3f nats per image (k = %d), %.4f bits per dimension, %.0f s\n", log_px,
           o->eval_iw, app_bits_per_dim(r, -log_px), ex_now() - p.start);
    if (!(f = fopen(app_out_path(r, "eval.csv"), "w"))) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "k,log_px_nats,bits_per_dim\n%d,%.4f,%.5f\n", o->eval_iw, log_px,
            app_bits_per_dim(r, -log_px));
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
    if (app_draw_decoded(r, r->opt.decode, 1, 1, 8, "decoded.png"))
        return 1;
    printf("wrote %s\n", app_out_path(r, "decoded.png"));
    return 0;
}

/* Flags that need another flag, or that the mode cannot use, are errors
   rather than flags quietly ignored. */
static int check_flags(const app_run *r)
{
    static const char *const training[] = {
        "epochs",   "batch",    "lr",        "optimizer",    "beta",   "kl-warmup", "lr-schedule",
        "lr-steps", "lr-gamma", "lr-min",    "lr-warmup",    "weight-decay", "freeze",
        "early-stop"};
    static const char *const with_data[] = {"data", "limit", "eval-iw", "eval-limit"};
    const ex_options *o = &r->opt;
    int max_hidden = r->app->net->max_hidden, fine_tune = o->load && o->n_freeze > 0;
    if (fine_tune && (o->n_decode > 0 || !ex_flag_given(o, "epochs")))
        return app_usage_error(r, "--load FILE --freeze PREFIX fine-tunes: give --epochs N (the "
                               "epochs to train) and no --decode");
    if (o->resume && o->load)
        return app_usage_error(r, "--resume and --load: give one (--resume trains on, --load draws)");
    if (o->n_decode > 0 && !o->load)
        return app_usage_error(r, "--decode needs --load FILE");
    if (ex_flag_given(o, "eval-limit") && o->eval_iw == 0)
        return app_usage_error(r, "--eval-limit needs --eval-iw K");
    for (size_t i = 0; o->load && !fine_tune && i < COUNT(training); i++)
        if (ex_flag_given(o, training[i]))
            return app_usage_error(r, "--%s: --load FILE trains nothing (--resume FILE trains on; "
                                   "--load FILE --freeze PREFIX --epochs N fine-tunes)", training[i]);
    for (size_t i = 0; o->load && o->n_decode > 0 && i < COUNT(with_data); i++)
        if (ex_flag_given(o, with_data[i]))
            return app_usage_error(r, "--%s: --load FILE --decode X,Y,... only writes decoded.png",
                               with_data[i]);
    if (o->resume || o->load) /* the network's flags are held against FILE's */
        return 0;
    if (ex_flag_given(o, "iaf-hidden") && o->flow_steps == 0)
        return app_usage_error(r, "--iaf-hidden needs --flow-steps N above 0");
    if (max_hidden > 0 && o->n_hidden > max_hidden)
        return app_usage_error(r, "--hidden: this network takes %d width%s, not %d", max_hidden,
                           max_hidden == 1 ? "" : "s", o->n_hidden);
    return 0;
}

/* The model, built for the data or loaded, and the data (none to decode
   one point).  Returns 0, 1 or 2 (a usage error). */
/* --load FILE --freeze PREFIX --epochs N: N epochs from FILE's weights, a
   run of its own (a fresh optimizer, its own history) that leaves the
   frozen parameters as FILE has them. */
static int start_fine_tuning(app_run *r)
{
    CALL(r, "fine-tuning", vae_model_history_clear(r->model));
    CALL(r, "optimizer", vae_optimizer_create(&r->optimizer, r->model, r->opt.optimizer));
    CALL(r, "optimizer", vae_optimizer_set(r->optimizer, VAE_OPT_LEARNING_RATE, r->opt.lr));
    r->opt.epochs += vae_model_epoch(r->model);
    return app_save_settings(r, 0);
}

static int prepare(app_run *r)
{
    int rc;
    if (!r->opt.resume && !r->opt.load)
        return load_data(r) || build_model(r);
    if ((rc = app_open_model(r)) != 0)
        return rc;
    if (r->opt.load && r->opt.n_freeze > 0 && (rc = start_fine_tuning(r)) != 0)
        return rc;
    return r->opt.n_decode > 0 ? 0 : load_data(r);
}

/* The model's layers, shapes and parameter counts (vae-inspect prints the
   same), after the header line unless --quiet. */
static int print_summary(const app_run *r)
{
    size_t needed = 0;
    char *text;
    CALL(r, "model summary", vae_model_summary(r->model, NULL, 0, &needed));
    if (!(text = malloc(needed))) {
        fprintf(stderr, "%s: model summary: out of memory\n", r->app->name);
        return 1;
    }
    vae_status s = vae_model_summary(r->model, text, needed, NULL);
    if (s == VAE_OK)
        printf("\n%s\n", text);
    free(text);
    return s != VAE_OK ? app_fail(r, "model summary", s) : 0;
}

/* The data, the model and its memory, on every rank (a rank that cannot
   read its data stops them all). */
static int set_up(app_run *r)
{
    int rc;
    /* rank 0 writes --out: a folder it cannot make stops the run now */
    if (r->rank == 0 && ex_mkdir_p(r->opt.out_dir) != 0)
        return 1;
    if ((rc = prepare(r)) != 0)
        return rc;
    CALL(r, "threads", vae_model_set_threads(r->model, r->opt.threads));
    CALL(r, "ranks", vae_model_set_comm(r->model, r->comm));
    if (r->opt.n_decode > 0)
        return 0;
    clamp_batch(r);
    return plan_memory(r);
}

static int run_app(app_run *r)
{
    char ranks[64];
    int rc;
    if ((rc = check_flags(r)) != 0)
        return rc;
    if ((rc = app_agree(r, set_up(r))) != 0)
        return rc;
    if (r->opt.n_decode > 0)
        return r->rank == 0 ? decode_point(r) : 0;
    app_describe_ranks(r, ranks, sizeof ranks);
    if (r->rank == 0) {
        printf("%s: %lld training images of %dx%dx%d, %lld parameters, %s, %s\n", r->app->name,
               (long long)vae_dataset_count(r->train), r->channels, r->height, r->width,
               (long long)vae_model_param_count(r->model), ranks, vae_blas_info());
        if (!r->opt.quiet && print_summary(r))
            return 1;
        fflush(stdout); /* before the progress lines on stderr, when both go to one file */
    }
    if ((!r->opt.load || r->opt.n_freeze > 0) &&
        ((rc = configure_training(r)) != 0 || (rc = train(r)) != 0))
        return rc;
    rc = r->rank == 0 ? app_draw_all(r) : 0;
    if (r->opt.eval_iw > 0 && !stop_signal)
        rc |= evaluate_iw(r);
    if (stop_signal) {
        if (r->rank == 0)
            fprintf(stderr, "%s: %s: stopped after training; pictures or eval.csv may be "
                    "missing\n", r->app->name, signal_name());
        return 128 + stop_signal;
    }
    if (r->rank == 0)
        printf("pictures and metrics are in %s/\n", r->opt.out_dir);
    return rc;
}

int app_main(int argc, char **argv, const app *a)
{
    app_run r = {.app = a, .opt = a->defaults, .best_test = INFINITY};
    int rc;
    ex_reexec_for_blas(argc, argv, vae_blas_env_hint());
    /* after the re-execution, which must not find MPI initialised */
    if ((rc = app_ranks_start(&r, &argc, &argv)) != 0)
        return rc;
    r.opt.description = a->description;
    {
        /* the program's KL weight, as the decimal it is written as */
        char text[32];
        snprintf(text, sizeof text, "%g", (double)a->beta);
        r.opt.beta = strtod(text, NULL);
    }
    rc = ex_parse_args(argc, argv, &r.opt);
    if (rc) {
        rc = rc == 1 ? 0 : 2;
    } else if (r.opt.epochs > MAX_EPOCHS) {
        fprintf(stderr, "%s: --epochs: at most %d\n", a->name, MAX_EPOCHS);
        rc = 2;
    } else {
        app_ranks_apply(&r);
        rc = run_app(&r);
    }
    vae_optimizer_free(r.optimizer);
    vae_model_free(r.model);
    vae_dataset_free(r.train);
    vae_dataset_free(r.test);
    app_ranks_end(&r);
    return rc;
}
