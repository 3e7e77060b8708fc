/* The settings a model was built with, kept in its metadata and held
   against the command line on --resume and --load; and the per-epoch
   history behind metrics.csv. */
#include "app_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static const char *const run_flags[] = {"optimizer", "epochs", "batch", "early-stop"};
/* The schedules of training (the KL weight's, the learning rate's): a
   resumed run takes them from the file and may only repeat them. */
static const char *const schedule_flags[] = {"beta",     "kl-warmup", "lr-schedule",
                                             "lr-steps", "lr-gamma",  "lr-min",
                                             "lr-warmup", "weight-decay"};

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
int app_save_settings(app_run *r, int built)
{
    for (size_t i = 0; built && i < COUNT(net_flags); i++)
        if (has_flag(r, net_flags[i]) && save_setting(r, net_flags[i]))
            return 1;
    for (size_t i = 0; i < COUNT(run_flags); i++)
        if (save_setting(r, run_flags[i]))
            return 1;
    for (size_t i = 0; i < COUNT(schedule_flags); i++)
        if (save_setting(r, schedule_flags[i]))
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
    return app_usage_error(r, "--%s %s, but %s was made with --%s %s", flag, mine, file, flag, saved);
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
        app_note(r, "%s keeps no network settings (an older version saved it)%s%s", file,
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
        return app_usage_error(r, "%s has %d epoch%s done and --epochs is %d: ask for more to "
                           "train on (--load FILE draws it without training)", file, done,
                           done == 1 ? "" : "s", r->opt.epochs);
    if (batch > 0 && ex_flag_given(&r->opt, "batch") && r->opt.batch != batch)
        return app_usage_error(r, "--batch %d, but %s stopped inside epoch %d, which must finish "
                           "with batches of %d", r->opt.batch, file, done + 1, batch);
    for (size_t i = 0; i < COUNT(schedule_flags); i++)
        if ((rc = match(r, file, schedule_flags[i], saved_setting(r, schedule_flags[i]))) != 0)
            return rc;
    if (!ex_flag_given(&r->opt, "early-stop") &&
        (rc = match(r, file, "early-stop", saved_setting(r, "early-stop"))) != 0)
        return rc;
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
int app_open_model(app_run *r)
{
    const char *file = r->opt.resume ? r->opt.resume : r->opt.load;
    int rc;
    CALL(r, file, vae_model_load(&r->model, file));
    if (r->opt.resume)
        CALL(r, file, vae_optimizer_restore(&r->optimizer, r->model));
    app_model_shape(r);
    if ((rc = match_file(r, file)) != 0)
        return rc;
    if (r->opt.resume)
        return resume_settings(r, file);
    if (r->opt.n_freeze > 0) /* fine-tuning: a run with its own batch */
        return 0;
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
} metric_columns[] = {{"seconds", 3},     {"images_per_sec", 0},   {"train_nelbo", 4},
                      {"test_loss", 4},   {"test_bits_per_dim", 5}, {"train_recon", 4},
                      {"train_kl", 4},    {"test_recon", 4},        {"test_kl", 4}};

/* The whole history, so that a run resumed into another --out has it
   all.  Epochs with no value (saved by a version without a history) are
   left out; a missing value is an empty field. */
int app_write_metrics(app_run *r)
{
    FILE *f = fopen(app_out_path(r, "metrics.csv"), "w");
    if (!f) {
        perror(r->path);
        return 1;
    }
    fprintf(f, "epoch,seconds,images_per_sec,train_loss,test_loss,test_bits_per_dim,"
               "train_recon,train_kl,test_recon,test_kl\n");
    for (int e = 1; e <= vae_model_history_epochs(r->model); e++) {
        char row[512];
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
double app_bits_per_dim(const app_run *r, double nats)
{
    return nats / ((double)r->pixels * log(2.0));
}

int app_record_epoch(app_run *r, int epoch, double seconds, double ips, double test_loss,
                     double test_recon, double test_kl)
{
    CALL(r, "history", vae_model_history_set(r->model, epoch, "seconds", seconds));
    CALL(r, "history", vae_model_history_set(r->model, epoch, "images_per_sec", ips));
    CALL(r, "history", vae_model_history_set(r->model, epoch, "test_loss", test_loss));
    CALL(r, "history", vae_model_history_set(r->model, epoch, "test_bits_per_dim",
                                             app_bits_per_dim(r, test_loss)));
    /* NaN: a graph from before 0.3 keeps no terms apart */
    if (isfinite(test_recon) && isfinite(test_kl)) {
        CALL(r, "history", vae_model_history_set(r->model, epoch, "test_recon", test_recon));
        CALL(r, "history", vae_model_history_set(r->model, epoch, "test_kl", test_kl));
    }
    CALL(r, "model metadata", vae_model_set_metadata(r->model, "app.epoch_seconds", NULL));
    return 0;
}

/* The test loss of the best.vae in --out, from the history.  Without a
   best.vae there (a run resumed into another --out), best.vae will be the
   best of the epochs trained from here. */
void app_find_best(app_run *r)
{
    r->best_test = INFINITY;
    r->best_epoch = 0;
    if (access(app_out_path(r, "best.vae"), F_OK) != 0) {
        if (vae_model_epoch(r->model) > 0)
            app_note(r, "%s has no best.vae: it will hold the best of the epochs trained from here",
                 r->opt.out_dir);
        return;
    }
    for (int e = 1; e <= vae_model_history_epochs(r->model); e++) {
        double loss = vae_model_history_get(r->model, e, "test_loss");
        if (loss < r->best_test) { /* false for NaN */
            r->best_test = loss;
            r->best_epoch = e;
        }
    }
}

