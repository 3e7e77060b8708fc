/* vae-explore: serves a trained model to a browser page, where the mouse
   moves over the latent plane and the decoder runs live (docs/EXPLORE.md).
   This file reads the command line, the model and the test images, starts
   the server and waits for SIGINT or SIGTERM.  Exit status 0 after a
   signal, 1 when the model, the data or the port cannot be had, 2 for a
   usage error. */
#include "explore.h"
#include "common/imagefolder.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "vae-explore"

typedef struct settings {
    const char *model, *data, *bind, *label_names;
    int port, limit, workers, threads;
} settings;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " MODEL.vae [--data PATH] [--port N] [--bind ADDR] [--limit N]\n"
            "                   [--label-names A,B,...] [--workers N] [--threads N]\n"
            "\n"
            "Serves a page where the mouse moves over the model's latent plane and the\n"
            "decoder draws that point, live; the test images appear as points coloured by\n"
            "label, and a click on one shows it beside its reconstruction.  Open the\n"
            "address it prints in a browser.  The endpoints are in docs/EXPLORE.md.\n"
            "\n"
            "  --data PATH           test images: a folder of MNIST-style idx files\n"
            "                        (t10k-images-idx3-ubyte[.gz]), a CIFAR-10 binary folder\n"
            "                        (test_batch.bin) or a folder of photos (every 10th)\n"
            "  --port N              TCP port (default 8080; 0: any free port)\n"
            "  --bind ADDR           address to listen on (default 127.0.0.1: this machine\n"
            "                        only; another lets other machines use the model)\n"
            "  --limit N             at most the first N test images (default 10000)\n"
            "  --label-names A,B,..  the legend's names of labels 0, 1, ...\n"
            "  --workers N           requests answered at once, 1..16 (default 4)\n"
            "  --threads N           threads that encode the test images (default 2)\n"
            "  -h, --help            show this help and exit\n"
            "\n"
            "Ctrl-C (SIGINT) or SIGTERM stops it.  Exit status: 0 when stopped, 1 if the\n"
            "model, the data or the port cannot be had, 2 for a usage error.\n");
}

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(see " PROG " --help)\n");
    return 2;
}

/* A whole number in [lo, hi] into *out; -1 if it is not. */
static int int_arg(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, settings *s)
{
    *s = (settings){.bind = "127.0.0.1", .port = 8080, .limit = 10000, .workers = 4,
                    .threads = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (a[0] != '-') {
            if (s->model)
                return usage_error("one model file, not also %s", a);
            s->model = a;
            continue;
        }
        if (!v)
            return usage_error("%s needs a value", a);
        i++;
        const struct { const char *flag; long lo, hi; int *dst; } numbers[] = {
            {"--port", 0, 65535, &s->port},
            {"--limit", 1, INT_MAX, &s->limit},
            {"--workers", 1, 16, &s->workers},
            {"--threads", 1, 64, &s->threads},
        };
        const char **text = !strcmp(a, "--data")          ? &s->data
                            : !strcmp(a, "--bind")        ? &s->bind
                            : !strcmp(a, "--label-names") ? &s->label_names
                                                          : NULL;
        size_t k = 0;
        while (k < sizeof numbers / sizeof numbers[0] && strcmp(a, numbers[k].flag) != 0)
            k++;
        if (text)
            *text = v;
        else if (k == sizeof numbers / sizeof numbers[0])
            return usage_error("unknown option %s", a);
        else if (int_arg(v, numbers[k].lo, numbers[k].hi, numbers[k].dst))
            return usage_error("%s: not a whole number in its range", a);
    }
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s->bind, addr) != 1 && inet_pton(AF_INET6, s->bind, addr) != 1)
        return usage_error("--bind %s: not an IPv4 or IPv6 address", s->bind);
    return s->model ? 0 : usage_error("give the model file%s", "");
}

/* ---- the model ---- */

static int load_model(explorer *ex, const char *path)
{
    vae_status s = vae_model_load(&ex->model, path);
    if (s != VAE_OK) {
        fprintf(stderr, PROG ": %s: %s\n", path, vae_last_error());
        return 1;
    }
    const vae_graph *g = vae_model_graph(ex->model);
    int dims[VAE_MAX_ROW_DIMS];
    int nd = vae_graph_node_dims(g, vae_graph_role(g, VAE_ROLE_INPUT), dims);
    ex->latent = vae_model_latent_size(ex->model);
    ex->pixels = vae_model_input_size(ex->model);
    ex->channels = nd == 3 ? dims[0] : 1;
    if (nd < 2 || ex->latent < 2 || (ex->channels != 1 && ex->channels != 3)) {
        fprintf(stderr, PROG ": %s: the explorer needs images (H,W or C,H,W with 1 or 3 "
                "channels) and a latent of 2 or more (this model: %d input dimensions, "
                "%d channels, latent %d)\n", path, nd, ex->channels, ex->latent);
        return 1;
    }
    ex->height = dims[nd - 2];
    ex->width = dims[nd - 1];
    for (int n = 0; n < vae_graph_node_count(g); n++)
        ex->flow |= !strncmp(vae_graph_node_op(g, n), "iaf", 3);
    const char *name = strrchr(path, '/');
    ex->model_name = strdup(name ? name + 1 : path);
    if (!ex->model_name) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    return 0;
}

/* ---- the test images ---- */

static int exists(const char *dir, const char *name, char *path, size_t size)
{
    struct stat st;
    snprintf(path, size, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file `name` in dir, plain or gzipped. */
static int exists_maybe_gz(const char *dir, const char *name, char *path, size_t size)
{
    char gz[256];
    snprintf(gz, sizeof gz, "%s.gz", name);
    return exists(dir, name, path, size) || exists(dir, gz, path, size);
}

/* Photos: every 10th by name, as vae-faces-conv holds them out. */
static int load_photos(const explorer *ex, const settings *s, vae_dataset **out)
{
    ex_image_set all = {0}, held = {0};
    int dims[3] = {3, ex->height, ex->width}, rc = 1;
    long want = (long)s->limit * 10 + 9;
    if (ex->channels != 3 || ex->height != ex->width) {
        fprintf(stderr, PROG ": %s: no t10k-images-idx3-ubyte[.gz] (MNIST-style) or "
                "test_batch.bin (CIFAR-10) here, and a folder of photos needs a model of "
                "square 3-channel images\n", s->data);
        return 1;
    }
    if (!ex_load_image_folder_limit(s->data, ex->height, want > INT_MAX ? INT_MAX : (int)want,
                                    &all) &&
        !ex_image_set_split(&all, 10, &held)) {
        vae_status st = vae_dataset_from_u8(out, held.count, 3, dims, held.pixels, NULL,
                                            1.0f / 255.0f);
        rc = st != VAE_OK;
        if (rc)
            fprintf(stderr, PROG ": %s: %s\n", s->data, vae_last_error());
    }
    ex_image_set_free(&all);
    ex_image_set_free(&held);
    return rc;
}

static int load_test_images(explorer *ex, const settings *s)
{
    char images[4096], labels[4096];
    struct stat dir;
    vae_status st;
    if (stat(s->data, &dir) != 0 || !S_ISDIR(dir.st_mode)) {
        fprintf(stderr, PROG ": --data %s: not a folder\n", s->data);
        return 1;
    }
    if (exists_maybe_gz(s->data, "t10k-images-idx3-ubyte", images, sizeof images)) {
        int labelled = exists_maybe_gz(s->data, "t10k-labels-idx1-ubyte", labels, sizeof labels);
        st = vae_dataset_load_idx(&ex->test, images, labelled ? labels : NULL);
    } else if (exists(s->data, "test_batch.bin", images, sizeof images))
        st = vae_dataset_load_cifar10(&ex->test, s->data, 0);
    else if (load_photos(ex, s, &ex->test))
        return 1;
    else
        st = VAE_OK;
    if (st != VAE_OK) {
        fprintf(stderr, PROG ": %s: %s\n", s->data, vae_last_error());
        return 1;
    }
    if (vae_dataset_row_size(ex->test) != ex->pixels) {
        fprintf(stderr, PROG ": %s: images of %lld values, but the model takes %lld\n", s->data,
                (long long)vae_dataset_row_size(ex->test), (long long)ex->pixels);
        return 1;
    }
    if (vae_dataset_count(ex->test) > s->limit)
        vae_dataset_truncate(ex->test, s->limit);
    ex->points = vae_dataset_count(ex->test);
    return 0;
}

/* ---- label names ---- */

/* Splits text at `sep` into ex->label_names: name k is label k's, so
   empty names are kept; separators at the end (batches.meta.txt ends in a
   blank line) are not names. */
static int set_label_names(explorer *ex, const char *text, char sep)
{
    size_t len = strlen(text);
    while (len && text[len - 1] == sep)
        len--;
    int count = 1;
    for (size_t i = 0; i < len; i++)
        count += text[i] == sep;
    ex->label_names = calloc((size_t)count, sizeof *ex->label_names);
    for (const char *t = text; ex->label_names && ex->n_label_names < count;) {
        size_t n = strcspn(t, (char[]){sep, 0});
        if (!(ex->label_names[ex->n_label_names++] = strndup(t, n)))
            break;
        t += n + 1;
    }
    if (ex->label_names && ex->label_names[count - 1])
        return 0;
    fprintf(stderr, PROG ": out of memory\n");
    return 1;
}

/* The legend's names: --label-names, CIFAR-10's batches.meta.txt, or the
   labels' numbers.  None for unlabelled data. */
static int name_labels(explorer *ex, const settings *s)
{
    char path[4096], text[4096] = "";
    if (!ex->test || !vae_dataset_has_labels(ex->test))
        return 0;
    if (s->label_names)
        return set_label_names(ex, s->label_names, ',');
    if (exists(s->data, "batches.meta.txt", path, sizeof path)) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[n] = 0;
        if (f)
            fclose(f);
        if (n > 0)
            return set_label_names(ex, text, '\n');
    }
    int top = 0;
    for (int64_t i = 0; i < ex->points; i++)
        top = vae_dataset_label(ex->test, i) > top ? vae_dataset_label(ex->test, i) : top;
    for (int k = 0; k <= top && k < 1000; k++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%d", k ? "," : "", k);
    return set_label_names(ex, text, ',');
}

static void explorer_free(explorer *ex)
{
    explore_pool_free(ex);
    explore_plane_free(ex);
    for (int i = 0; i < ex->n_label_names; i++)
        free(ex->label_names[i]);
    free(ex->label_names);
    vae_dataset_free(ex->test);
    vae_model_free(ex->model);
    free(ex->model_name);
}

/* Blocks SIGINT and SIGTERM in every thread (the server's threads inherit
   the mask) and waits for one here. */
static void block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int serve(explorer *ex, const settings *s)
{
    sigset_t stop;
    int port, sig;
    block_stop_signals(&stop);
    struct MHD_Daemon *d = explore_http_start(ex, s->bind, s->port, s->workers, &port);
    if (!d)
        return 1;
    const char *host = strchr(s->bind, ':') ? "[%s]" : "%s";
    char shown[64];
    snprintf(shown, sizeof shown, host, s->bind);
    printf(PROG ": serving %s (latent %d, %dx%dx%d) with %lld test images\n", ex->model_name,
           ex->latent, ex->channels, ex->height, ex->width, (long long)ex->points);
    printf(PROG ": open http://%s:%d/ (Ctrl-C stops)\n", shown, port);
    fflush(stdout);
    sigwait(&stop, &sig);
    printf(PROG ": stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(d);
    return 0;
}

int main(int argc, char **argv)
{
    settings s;
    explorer ex = {0};
    int rc = parse_args(argc, argv, &s);
    if (rc)
        return rc;
    rc = load_model(&ex, s.model) || (s.data && load_test_images(&ex, &s)) ||
         name_labels(&ex, &s) || explore_place_points(&ex, s.threads) ||
         explore_write_json(&ex) || explore_pool_start(&ex, s.workers) || serve(&ex, &s);
    explorer_free(&ex);
    return rc;
}
