/* vae-inspect: what a model file holds, through the public API alone.
   vae-inspect FILE.vae prints the summary, the file's format and the
   libvae version that wrote it, the settings an example program built it
   with, the training state and the loss history; vae-inspect --dot
   FILE.vae writes the graph as Graphviz DOT text.  Exit status 0, 1 when
   the file cannot be loaded (with the library's message), 2 for a usage
   error. */
#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "vae-inspect"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " [--dot] FILE.vae\n"
            "\n"
            "Prints what a libvae model file holds: the layers with their output shapes\n"
            "and parameter counts, the latent size, likelihood and input shape; the\n"
            "file's format and the libvae version that wrote it; the flags an example\n"
            "program built it with; the training state (optimizer and its settings,\n"
            "epochs done, the place in an epoch under way, steps) if the file has one;\n"
            "and the per-epoch loss history.\n"
            "\n"
            "  --dot        write only the graph, as Graphviz DOT text, to standard output\n"
            "               (draw it with: " PROG " --dot FILE.vae | dot -Tsvg > FILE.svg)\n"
            "  -h, --help   show this help and exit\n"
            "\n"
            "Exit status: 0, 1 if FILE cannot be loaded (corrupt, truncated, not a model\n"
            "file, or from a newer libvae), 2 for a usage error.\n");
}

/* Text the library writes into a caller's buffer (summary, DOT), as a
   malloc'ed string, or NULL after a message. */
typedef vae_status (*text_fn)(const void *obj, char *buf, size_t size, size_t *needed);

static vae_status summary_fn(const void *m, char *buf, size_t size, size_t *needed)
{
    return vae_model_summary(m, buf, size, needed);
}

static vae_status dot_fn(const void *g, char *buf, size_t size, size_t *needed)
{
    return vae_graph_dot(g, buf, size, needed);
}

static char *library_text(text_fn fn, const void *obj, const char *what)
{
    size_t needed = 0;
    char *buf = NULL;
    vae_status s = fn(obj, NULL, 0, &needed);
    if (s == VAE_OK && !(buf = malloc(needed)))
        s = VAE_ERR_NO_MEMORY;
    if (s == VAE_OK)
        s = fn(obj, buf, needed, NULL);
    if (s != VAE_OK) {
        fprintf(stderr, PROG ": %s: %s (%s)\n", what, vae_last_error(), vae_strerror(s));
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- the parts of the report ---- */

static void print_origin(const vae_model *m)
{
    const char *writer = vae_model_file_writer(m);
    printf("File format %d, written by %s%s\n", vae_model_file_format(m),
           writer && writer[0] ? "libvae " : "an unknown libvae version (before 0.3)",
           writer && writer[0] ? writer : "");
}

/* The flags an example program (vae-mnist-dense, ...) built the model
   with, kept as "app.<flag>" metadata; nothing for other files. */
static void print_settings(const vae_model *m)
{
    static const char *const flags[] = {
        "hidden",   "latent",    "loss",       "seed",        "flow-steps", "iaf-hidden",
        "size",     "optimizer", "epochs",     "batch",       "early-stop", "beta",
        "kl-warmup", "lr-schedule", "lr-steps", "lr-gamma",   "lr-min",     "lr-warmup",
        "weight-decay"};
    int any = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char key[32];
        const char *value;
        snprintf(key, sizeof key, "app.%s", flags[i]);
        if (!(value = vae_model_metadata(m, key)))
            continue;
        /* the programs keep --iaf-hidden's default even without a flow */
        if (!strcmp(flags[i], "iaf-hidden") && vae_model_metadata(m, "app.flow-steps") &&
            !strcmp(vae_model_metadata(m, "app.flow-steps"), "0"))
            continue;
        printf("%s --%s %s", any ? "" : "Built with:", flags[i], value);
        any = 1;
    }
    if (any)
        printf("\n");
}

static const char *kind_name(vae_optimizer_kind kind)
{
    switch (kind) {
    case VAE_OPTIMIZER_SGD: return "SGD";
    case VAE_OPTIMIZER_RMSPROP: return "RMSprop";
    case VAE_OPTIMIZER_ADAM: return "Adam";
    }
    return "unknown";
}

/* The optimizer saved with the model and where training stands.
   Returns 0, or 1 after a message. */
static int print_training_state(vae_model *m)
{
    static const struct {
        vae_optimizer_option option;
        const char *name;
    } options[] = {{VAE_OPT_LEARNING_RATE, "learning rate"}, {VAE_OPT_MOMENTUM, "momentum"},
                   {VAE_OPT_BETA1, "beta1"},                 {VAE_OPT_BETA2, "beta2"},
                   {VAE_OPT_RHO, "rho"},                     {VAE_OPT_EPSILON, "epsilon"},
                   {VAE_OPT_CLIP_NORM, "clip norm"}};
    int done = vae_model_epoch(m), pos = vae_model_epoch_position(m);
    int batch = vae_model_epoch_batch(m);
    vae_optimizer *opt = NULL;
    vae_optimizer_kind kind;
    vae_status s;
    if (!vae_model_has_training_state(m)) {
        printf("Training state: none (weights only: training cannot resume from it)\n");
        return 0;
    }
    if ((s = vae_optimizer_restore(&opt, m)) != VAE_OK ||
        (s = vae_optimizer_get_kind(opt, &kind)) != VAE_OK) {
        fprintf(stderr, PROG ": the training state: %s (%s)\n", vae_last_error(), vae_strerror(s));
        vae_optimizer_free(opt);
        return 1;
    }
    printf("Training state: yes\n  optimizer: %s", kind_name(kind));
    /* only the settings of its kind: vae_optimizer_get refuses the others */
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        double v;
        if (vae_optimizer_get(opt, options[i].option, &v) != VAE_OK)
            continue;
        if (options[i].option == VAE_OPT_CLIP_NORM && v == 0.0)
            printf(", clip norm off");
        else
            printf(", %s %g", options[i].name, v);
    }
    printf("\n  epochs done: %d; ", done);
    if (pos > 0 && batch > 0)
        printf("epoch %d under way: %d batches of %d done", done + 1, pos, batch);
    else if (pos > 0)
        printf("epoch %d under way: %d batches done (batch size not saved)", done + 1, pos);
    else
        printf("none under way");
    printf("; optimizer steps: %lld\n", (long long)vae_optimizer_steps(opt));
    vae_optimizer_free(opt);
    return 0;
}

/* The per-epoch history as a table, every column, epochs with no value
   left out. */
static void print_history(const vae_model *m)
{
    int epochs = vae_model_history_epochs(m), columns = vae_model_history_columns(m);
    if (epochs == 0 || columns == 0) {
        printf("History: none\n");
        return;
    }
    printf("History (%d epoch%s):\n%7s", epochs, epochs == 1 ? "" : "s", "epoch");
    for (int c = 0; c < columns; c++) {
        const char *name = vae_model_history_column(m, c);
        int width = strlen(name) > 12 ? (int)strlen(name) : 12;
        printf("  %*s", width, name);
    }
    printf("\n");
    for (int e = 1; e <= epochs; e++) {
        int any = 0;
        for (int c = 0; c < columns; c++)
            any |= isfinite(vae_model_history_get(m, e, vae_model_history_column(m, c)));
        if (!any)
            continue;
        printf("%7d", e);
        for (int c = 0; c < columns; c++) {
            const char *name = vae_model_history_column(m, c);
            int width = strlen(name) > 12 ? (int)strlen(name) : 12;
            double v = vae_model_history_get(m, e, name);
            if (isfinite(v))
                printf("  %*.*g", width, fabs(v) >= 1e5 ? 7 : 6, v);
            else
                printf("  %*s", width, "-");
        }
        printf("\n");
    }
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    const char *path = NULL;
    int dot = 0, rc = 0, only_files = 0;
    vae_model *m = NULL;
    vae_status s;
    char *text;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_files && (!strcmp(arg, "--help") || !strcmp(arg, "-h"))) {
            usage(stdout);
            return 0;
        }
        if (!only_files && !strcmp(arg, "--dot"))
            dot = 1;
        else if (!only_files && !strcmp(arg, "--"))
            only_files = 1;
        else if (!only_files && arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, PROG ": unknown flag '%s'\nTry '" PROG " --help'.\n", arg);
            return 2;
        } else if (path) {
            fprintf(stderr, PROG ": one model file at a time ('%s' and '%s')\nTry '" PROG
                    " --help'.\n", path, arg);
            return 2;
        } else
            path = arg;
    }
    if (!path) {
        fprintf(stderr, PROG ": no model file given\nTry '" PROG " --help'.\n");
        return 2;
    }
    if ((s = vae_model_load(&m, path)) != VAE_OK) {
        /* the library's message names the file; say it if not */
        const char *msg = vae_last_error();
        if (strstr(msg, path))
            fprintf(stderr, PROG ": %s (%s)\n", msg, vae_strerror(s));
        else
            fprintf(stderr, PROG ": %s: %s (%s)\n", path, msg, vae_strerror(s));
        return 1;
    }
    if (dot) {
        if (!(text = library_text(dot_fn, vae_model_graph(m), "the diagram")))
            rc = 1;
        else
            fputs(text, stdout);
        free(text);
    } else if (!(text = library_text(summary_fn, m, "the summary"))) {
        rc = 1;
    } else {
        printf("%s\n\n%s\n", path, text);
        free(text);
        print_origin(m);
        print_settings(m);
        rc = print_training_state(m);
        print_history(m);
    }
    vae_model_free(m);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror(PROG ": standard output");
        rc = 1;
    }
    return rc;
}
