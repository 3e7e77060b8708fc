/* Command-line flags of the example programs, and mkdir -p. */
#include "excommon.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ex_options_init(ex_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->data_dir = "data";
    opt->out_dir = "out";
    opt->epochs = 10;
    opt->batch = 100;
    opt->hidden[0] = 512;
    opt->n_hidden = 1;
    opt->latent = 2;
    opt->loss = EX_LOSS_BCE;
    opt->optimizer = VAE_OPTIMIZER_ADAM;
    opt->lr = 1e-3;
    opt->seed = 42;
    opt->iaf_hidden = 500;
    opt->beta = 1.0;
    opt->lr_schedule = VAE_LR_CONSTANT;
    opt->lr_gamma = 0.1;
}

static const char *const loss_names[] = {"bce", "mse"};
static const char *const optimizer_names[] = {"sgd", "rmsprop", "adam"};
/* in the order of vae_lr_schedule */
static const char *const schedule_names[] = {"constant", "step", "exp", "cosine"};

/* ---- Values ---- */

/* Messages name the program and the flag, then say what is wrong. */
static const char *prog_name = "program";

static int bad(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "%s: --%s: '%s' %s\nTry '%s --help'.\n", prog_name, flag, value, why,
            prog_name);
    return 2;
}

/* A whole number in [min, max], decimal, nothing else around it. */
static int parse_int(const char *flag, const char *s, long long min, long long max,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* strtoll would skip leading blanks; a flag value has none. */
    if (end == s || *end != '\0' || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return bad(flag, s, "is not a whole number");
    if (errno == ERANGE || v > max)
        return bad(flag, s, "is too large");
    if (v < min) {
        char why[48];
        snprintf(why, sizeof why, "must be %lld or more", min);
        return bad(flag, s, why);
    }
    *out = v;
    return 0;
}

static int parse_int_flag(const char *flag, const char *s, int min, int *out)
{
    long long v;
    int rc = parse_int(flag, s, min, INT_MAX, &v);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

/* A finite decimal number such as 0.001 or 1e-3. */
static int parse_double(const char *flag, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || s[0] == ' ' || s[0] == '\t')
        return bad(flag, s, "is not a number");
    if (!isfinite(v))
        return bad(flag, s, "is not a finite number");
    *out = v;
    return 0;
}

/* Split a comma-separated list into at most `max` items, each handed to
   `item` as a NUL-terminated copy; empty items are errors. */
static int parse_list(const char *flag, const char *s, int max, int *count,
                      int (*item)(const char *flag, const char *text, int index, void *dst),
                      void *dst)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char buf[64];
        if (len == 0)
            return bad(flag, s, "has an empty item");
        if (n == max) {
            char why[64];
            snprintf(why, sizeof why, "has more than %d items", max);
            return bad(flag, s, why);
        }
        if (len >= sizeof buf)
            return bad(flag, s, "has an item that is too long");
        memcpy(buf, p, len);
        buf[len] = '\0';
        int rc = item(flag, buf, n, dst);
        if (rc != 0)
            return rc;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *count = n;
    return 0;
}

static int hidden_item(const char *flag, const char *text, int index, void *dst)
{
    return parse_int_flag(flag, text, 1, (int *)dst + index);
}

static int freeze_item(const char *flag, const char *text, int index, void *dst)
{
    (void)flag;
    snprintf(((char(*)[64])dst)[index], 64, "%s", text); /* parse_list keeps items < 64 */
    return 0;
}

/* A number in [min, max] (min_open: above min). */
static int parse_double_in(const char *flag, const char *s, double min, int min_open, double max,
                           double *out)
{
    double v;
    int rc = parse_double(flag, s, &v);
    if (rc != 0)
        return rc;
    if (v < min || (min_open && v == min) || v > max) {
        char why[96];
        snprintf(why, sizeof why, "must be in %s%g, %g]", min_open ? "(" : "[", min, max);
        return bad(flag, s, why);
    }
    *out = v;
    return 0;
}

static int decode_item(const char *flag, const char *text, int index, void *dst)
{
    double v;
    int rc = parse_double(flag, text, &v);
    if (rc == 0)
        ((float *)dst)[index] = (float)v;
    return rc;
}

/* Index of s in names[0..n-1]. */
static int parse_choice(const char *flag, const char *s, const char *const *names, int n,
                        int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    char why[128] = "is not one of ";
    for (int i = 0; i < n; i++) {
        strncat(why, names[i], sizeof why - strlen(why) - 1);
        strncat(why, i + 1 < n ? ", " : "", sizeof why - strlen(why) - 1);
    }
    return bad(flag, s, why);
}

/* ---- Flags ---- */

/* Set the option named `flag` from `value`; returns 0 or 2. */
static int set_option(ex_options *o, const char *flag, const char *v)
{
    int rc = 0, choice;
    if (v[0] == '\0') {
        fprintf(stderr, "%s: --%s needs a value\n", prog_name, flag);
        return 2;
    }
    if (!strcmp(flag, "data"))
        o->data_dir = v;
    else if (!strcmp(flag, "out"))
        o->out_dir = v;
    else if (!strcmp(flag, "resume"))
        o->resume = v;
    else if (!strcmp(flag, "load"))
        o->load = v;
    else if (!strcmp(flag, "epochs"))
        rc = parse_int_flag(flag, v, 0, &o->epochs);
    else if (!strcmp(flag, "batch"))
        rc = parse_int_flag(flag, v, 1, &o->batch);
    else if (!strcmp(flag, "latent"))
        rc = parse_int_flag(flag, v, 1, &o->latent);
    else if (!strcmp(flag, "threads"))
        rc = parse_int_flag(flag, v, 0, &o->threads);
    else if (!strcmp(flag, "limit"))
        rc = parse_int_flag(flag, v, 0, &o->limit);
    else if (!strcmp(flag, "flow-steps"))
        rc = parse_int_flag(flag, v, 0, &o->flow_steps);
    else if (!strcmp(flag, "iaf-hidden"))
        rc = parse_int_flag(flag, v, 1, &o->iaf_hidden);
    else if (!strcmp(flag, "eval-iw"))
        rc = parse_int_flag(flag, v, 0, &o->eval_iw);
    else if (!strcmp(flag, "eval-limit"))
        rc = parse_int_flag(flag, v, 0, &o->eval_limit);
    else if (!strcmp(flag, "size") && o->size > 0)
        rc = parse_int_flag(flag, v, 4, &o->size);
    else if (!strcmp(flag, "hidden"))
        rc = parse_list(flag, v, EX_MAX_HIDDEN, &o->n_hidden, hidden_item, o->hidden);
    else if (!strcmp(flag, "decode"))
        rc = parse_list(flag, v, EX_MAX_DECODE, &o->n_decode, decode_item, o->decode);
    else if (!strcmp(flag, "seed")) {
        /* Any 64-bit value; strtoull would quietly accept "-1". */
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno == ERANGE)
            return bad(flag, v, "is not a whole number from 0 to 18446744073709551615");
        o->seed = (uint64_t)s;
    } else if (!strcmp(flag, "lr")) {
        double lr;
        rc = parse_double(flag, v, &lr);
        if (rc == 0 && lr <= 0.0)
            rc = bad(flag, v, "must be greater than 0");
        if (rc == 0)
            o->lr = lr;
    } else if (!strcmp(flag, "beta"))
        rc = parse_double_in(flag, v, 0.0, 0, 1e6, &o->beta);
    else if (!strcmp(flag, "kl-warmup"))
        rc = parse_int_flag(flag, v, 0, &o->kl_warmup);
    else if (!strcmp(flag, "lr-steps"))
        rc = parse_int_flag(flag, v, 0, &o->lr_steps);
    else if (!strcmp(flag, "lr-gamma"))
        rc = parse_double_in(flag, v, 0.0, 1, 1.0, &o->lr_gamma);
    else if (!strcmp(flag, "lr-min"))
        rc = parse_double_in(flag, v, 0.0, 0, 1e30, &o->lr_min);
    else if (!strcmp(flag, "lr-warmup"))
        rc = parse_int_flag(flag, v, 0, &o->lr_warmup);
    else if (!strcmp(flag, "weight-decay"))
        rc = parse_double_in(flag, v, 0.0, 0, 1e6, &o->weight_decay);
    else if (!strcmp(flag, "early-stop"))
        rc = parse_int_flag(flag, v, 0, &o->early_stop);
    else if (!strcmp(flag, "lr-schedule")) {
        rc = parse_choice(flag, v, schedule_names, 4, &choice);
        if (rc == 0)
            o->lr_schedule = choice;
    } else if (!strcmp(flag, "freeze")) {
        /* repeatable: each one adds its prefixes */
        int n = 0;
        if (o->n_freeze == EX_MAX_FREEZE)
            return bad(flag, v, "is one prefix too many");
        rc = parse_list(flag, v, EX_MAX_FREEZE - o->n_freeze, &n, freeze_item,
                        o->freeze + o->n_freeze);
        if (rc == 0)
            o->n_freeze += n;
    } else if (!strcmp(flag, "loss")) {
        rc = parse_choice(flag, v, loss_names, 2, &choice);
        if (rc == 0)
            o->loss = (ex_loss)choice;
    } else if (!strcmp(flag, "optimizer")) {
        rc = parse_choice(flag, v, optimizer_names, 3, &choice);
        if (rc == 0)
            o->optimizer = (vae_optimizer_kind)choice;
    } else /* a flag this program does not take (--size) */
        rc = bad(flag, v, "is for a flag this program does not take");
    return rc;
}

/* Flags that take a value, as set_option knows them; the index of a flag
   is its bit in ex_options.given. */
static const char *const flag_names[] = {"data",   "out",    "epochs", "batch", "hidden",
                                         "latent", "loss",   "optimizer", "lr", "seed",
                                         "threads", "limit", "resume", "load",  "decode",
                                         "size",   "flow-steps", "iaf-hidden", "eval-iw",
                                         "eval-limit", "beta", "kl-warmup", "lr-schedule",
                                         "lr-steps", "lr-gamma", "lr-min", "lr-warmup",
                                         "weight-decay", "freeze", "early-stop"};
_Static_assert(sizeof flag_names / sizeof flag_names[0] <= 32, "ex_options.given has 32 bits");

/* The flag's index in flag_names, or -1 if no flag takes that name. */
static int flag_index(const char *flag)
{
    for (int i = 0; i < (int)(sizeof flag_names / sizeof flag_names[0]); i++)
        if (!strcmp(flag, flag_names[i]))
            return i;
    return -1;
}

int ex_flag_given(const ex_options *opt, const char *flag)
{
    int i = flag_index(flag);
    return i >= 0 && (opt->given >> i & 1u);
}

int ex_set_option(ex_options *opt, const char *flag, const char *value)
{
    return set_option(opt, flag, value);
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "program";
}

int ex_parse_args(int argc, char **argv, ex_options *opt)
{
    /* --help shows the program's defaults, not the flags before it. */
    ex_options defaults = *opt;
    prog_name = base_name(argc > 0 ? argv[0] : NULL);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            opt->help = 1;
            continue;
        }
        if (!strcmp(arg, "--quiet")) {
            opt->quiet = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", prog_name,
                    arg, prog_name);
            return 2;
        }
        /* "--flag=value" or "--flag value" */
        char flag[32];
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        if (len >= sizeof flag)
            len = sizeof flag - 1; /* long enough to be unknown anyway */
        memcpy(flag, arg + 2, len);
        flag[len] = '\0';
        if (!strcmp(flag, "help") || !strcmp(flag, "quiet")) {
            fprintf(stderr, "%s: --%s takes no value\n", prog_name, flag);
            return 2;
        }
        if (flag_index(flag) < 0) {
            fprintf(stderr, "%s: unknown flag '%s'\nTry '%s --help'.\n", prog_name, arg,
                    prog_name);
            return 2;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            /* "--out --epochs 3" forgot the directory; "--out=--x" can
               still name such a file. */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                fprintf(stderr, "%s: --%s needs a value\n", prog_name, flag);
                return 2;
            }
            value = argv[++i];
        }
        int rc = set_option(opt, flag, value);
        if (rc != 0)
            return rc;
        opt->given |= 1u << flag_index(flag);
    }
    if (opt->help) {
        ex_print_usage(stdout, prog_name, &defaults, opt->description);
        return 1;
    }
    if (opt->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opt->threads = n > 0 && n < INT_MAX ? (int)n : 1;
    }
    return 0;
}

/* ---- Usage ---- */

static void join_ints(char *buf, size_t size, const int *v, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, i ? ",%d" : "%d", v[i]);
    }
}

static void join_floats(char *buf, size_t size, const float *v, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, i ? ",%g" : "%g", (double)v[i]);
    }
}

/* The shortest text that reads back as the same double. */
static void double_text(char *buf, size_t size, double v)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

int ex_option_text(const ex_options *o, const char *flag, char *buf, size_t size)
{
    if (!strcmp(flag, "hidden"))
        join_ints(buf, size, o->hidden, o->n_hidden);
    else if (!strcmp(flag, "loss"))
        snprintf(buf, size, "%s", loss_names[o->loss]);
    else if (!strcmp(flag, "optimizer"))
        snprintf(buf, size, "%s", optimizer_names[o->optimizer]);
    else if (!strcmp(flag, "seed"))
        snprintf(buf, size, "%llu", (unsigned long long)o->seed);
    else if (!strcmp(flag, "lr"))
        snprintf(buf, size, "%.17g", o->lr); /* reads back as the same double */
    else if (!strcmp(flag, "beta"))
        double_text(buf, size, o->beta);
    else if (!strcmp(flag, "lr-gamma"))
        double_text(buf, size, o->lr_gamma);
    else if (!strcmp(flag, "lr-min"))
        double_text(buf, size, o->lr_min);
    else if (!strcmp(flag, "weight-decay"))
        double_text(buf, size, o->weight_decay);
    else if (!strcmp(flag, "lr-schedule"))
        snprintf(buf, size, "%s", schedule_names[o->lr_schedule]);
    else if (!strcmp(flag, "freeze")) {
        buf[0] = '\0';
        for (int i = 0; i < o->n_freeze; i++) {
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, i ? ",%s" : "%s", o->freeze[i]);
        }
    } else {
        const int *v = !strcmp(flag, "latent")       ? &o->latent
                       : !strcmp(flag, "flow-steps") ? &o->flow_steps
                       : !strcmp(flag, "iaf-hidden") ? &o->iaf_hidden
                       : !strcmp(flag, "size")       ? &o->size
                       : !strcmp(flag, "epochs")     ? &o->epochs
                       : !strcmp(flag, "batch")      ? &o->batch
                       : !strcmp(flag, "kl-warmup")  ? &o->kl_warmup
                       : !strcmp(flag, "lr-steps")   ? &o->lr_steps
                       : !strcmp(flag, "lr-warmup")  ? &o->lr_warmup
                       : !strcmp(flag, "early-stop") ? &o->early_stop
                                                     : NULL;
        if (!v)
            return -1;
        snprintf(buf, size, "%d", *v);
    }
    return 0;
}

void ex_print_usage(FILE *out, const char *prog, const ex_options *d, const char *description)
{
    char hidden[128], decode[1024];
    join_ints(hidden, sizeof hidden, d->hidden, d->n_hidden);
    join_floats(decode, sizeof decode, d->decode, d->n_decode);
    fprintf(out, "Usage: %s [flags]\n", base_name(prog));
    if (description)
        fprintf(out, "\n%s\n", description);
    fprintf(out, "\nFlags (--flag VALUE or --flag=VALUE), with their defaults:\n");
    fprintf(out, "  --data DIR            data directory (%s)\n", d->data_dir ? d->data_dir : "none");
    fprintf(out, "  --out DIR             output directory, created if missing (%s)\n",
            d->out_dir ? d->out_dir : "none");
    fprintf(out, "  --epochs N            training epochs; 0 trains nothing (%d)\n", d->epochs);
    fprintf(out, "  --batch N             images per batch (%d)\n", d->batch);
    fprintf(out, "  --hidden N[,N...]     hidden layer widths, up to %d (%s)\n", EX_MAX_HIDDEN,
            d->n_hidden ? hidden : "none");
    fprintf(out, "  --latent N            latent dimensions (%d)\n", d->latent);
    fprintf(out, "  --loss bce|mse        reconstruction loss (%s)\n", loss_names[d->loss]);
    fprintf(out, "  --optimizer sgd|rmsprop|adam  optimizer (%s)\n",
            optimizer_names[d->optimizer]);
    fprintf(out, "  --lr X                learning rate (%g)\n", d->lr);
    fprintf(out, "  --lr-schedule constant|step|exp|cosine  how the rate changes with the\n"
                 "                        optimizer step t: step lr*gamma^floor(t/steps), exp\n"
                 "                        lr*gamma^t, cosine from lr to --lr-min over steps (%s)\n",
            schedule_names[d->lr_schedule]);
    fprintf(out, "  --lr-steps N          step: steps between decays (0 = 1000); cosine: steps\n"
                 "                        to anneal over (0 = every step of the run: --epochs\n"
                 "                        times the batches per epoch) (%d)\n", d->lr_steps);
    fprintf(out, "  --lr-gamma X          step: factor per decay; exp: factor per step (%g)\n",
            d->lr_gamma);
    fprintf(out, "  --lr-min X            cosine: the rate it anneals to (%g)\n", d->lr_min);
    fprintf(out, "  --lr-warmup N         the first N optimizer steps scale the rate by\n"
                 "                        (t + 1) / N; 0 = none (%d)\n", d->lr_warmup);
    fprintf(out, "  --weight-decay X      decoupled weight decay (AdamW style); 0 = none (%g)\n",
            d->weight_decay);
    fprintf(out, "  --beta X              the KL weight of the objective (%g)\n", d->beta);
    fprintf(out, "  --kl-warmup N         KL warm-up: epoch e (from 1) trains with\n"
                 "                        beta * min(1, (e - 1) / N), so epoch 1 with 0 and\n"
                 "                        epoch N + 1 on with the full --beta; 0 = off (%d)\n",
            d->kl_warmup);
    fprintf(out, "  --freeze PREFIX[,...] leave the parameters called PREFIX or under it\n"
                 "                        (\"encoder\" covers \"encoder.0.w\") untouched by\n"
                 "                        training; repeatable; see the summary's names; with\n"
                 "                        --load FILE --epochs N it fine-tunes the rest (none)\n");
    fprintf(out, "  --early-stop N        stop when N epochs in a row bring no better test\n"
                 "                        loss, then draw best.vae's weights; 0 = off (%d)\n",
            d->early_stop);
    fprintf(out, "  --seed N              random seed (%llu)\n", (unsigned long long)d->seed);
    if (d->threads > 0)
        fprintf(out, "  --threads N           worker threads; 0 = every core (%d)\n", d->threads);
    else
        fprintf(out, "  --threads N           worker threads; 0 = every core (every core)\n");
    if (d->limit > 0)
        fprintf(out, "  --limit N             use only the first N images (%d)\n", d->limit);
    else
        fprintf(out, "  --limit N             use only the first N images; 0 = all (all)\n");
    fprintf(out, "  --flow-steps N        inverse autoregressive flow steps; 0 = none (%d)\n",
            d->flow_steps);
    fprintf(out, "  --iaf-hidden N        hidden units of each flow step (%d)\n", d->iaf_hidden);
    fprintf(out, "  --eval-iw K           at the end, importance-weighted log p(x) of the test\n"
                 "                        set with K samples, to eval.csv; 0 = off (%d)\n",
            d->eval_iw);
    if (d->eval_limit > 0)
        fprintf(out, "  --eval-limit N        --eval-iw on the first N test images (%d)\n",
                d->eval_limit);
    else
        fprintf(out, "  --eval-limit N        --eval-iw on the first N test images; 0 = all (all)\n");
    fprintf(out, "  --resume FILE         continue training from a saved last.vae (%s)\n",
            d->resume ? d->resume : "none");
    fprintf(out, "  --load FILE           draw and evaluate a saved model, no training (%s)\n",
            d->load ? d->load : "none");
    fprintf(out, "  --decode X,Y,...      with --load: write decoded.png for this latent point,\n"
                 "                        up to %d values (%s)\n",
            EX_MAX_DECODE, d->n_decode ? decode : "none");
    if (d->size > 0)
        fprintf(out, "  --size N              images are centre-cropped and resized to NxN (%d)\n",
                d->size);
    fprintf(out, "  --quiet               do not print the model summary (its layers, shapes and\n"
                 "                        parameter counts) at start\n");
    fprintf(out, "  -h, --help            show this help and exit\n");
    fprintf(out,
            "\nWith --resume FILE or --load FILE the network comes from FILE: --hidden,\n"
            "--latent, --loss, --seed, --flow-steps, --iaf-hidden%s (and with\n"
            "--resume --optimizer) may only repeat FILE's values; another value is an\n"
            "error naming both.  --resume: --epochs (the total to reach), --lr and\n"
            "--batch default to FILE's and apply from where FILE stopped, but an epoch\n"
            "FILE stopped inside finishes with its own batch size.  --load trains\n"
            "nothing: --epochs, --batch, --lr and --optimizer are errors, and with\n"
            "--decode only --out and --threads apply.  --decode needs --load,\n"
            "--eval-limit needs --eval-iw, --iaf-hidden needs --flow-steps above 0.\n"
            "A --batch larger than the training set is cut to its size.\n"
            "Training settings: --beta, --kl-warmup, --lr-schedule, --lr-steps,\n"
            "--lr-gamma, --lr-min, --lr-warmup and --weight-decay are kept in the\n"
            "model file; --resume takes them from FILE and another value is an error\n"
            "naming both, so every schedule continues where it stopped (the warm-up\n"
            "depends only on the epoch number, the rate on the optimizer's step).\n"
            "--early-stop may change on --resume.  --freeze works on a new run and,\n"
            "to fine-tune part of a trained model, with --resume FILE --epochs N (N\n"
            "above FILE's epochs; the optimizer goes on); frozen parameters stay\n"
            "frozen in the files saved.  --load trains nothing, so these flags are\n"
            "errors with it.  --lr-steps needs --lr-schedule step or cosine,\n"
            "--lr-gamma step or exp, --lr-min cosine.\n"
            "Ctrl-C (SIGINT) or SIGTERM stops training after the current batch, saves\n"
            "last.vae with its place in the epoch (continue with --resume) and exits\n"
            "with 130 or 143; a second signal quits at once.  Off a terminal, progress\n"
            "is a line on stderr after an epoch's first batch, then every 10 seconds.\n",
            d->size > 0 ? " and --size" : "");
}

/* ---- mkdir -p ---- */

static int make_one(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0777) == 0)
        return 0;
    int err = errno;
    /* EEXIST is fine if it is a directory (perhaps made by someone else
       just now); a file of that name is not. */
    if (err == EEXIST) {
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        err = ENOTDIR;
    }
    fprintf(stderr, "%s: cannot create directory: %s\n", dir, strerror(err));
    return -1;
}

int ex_mkdir_p(const char *dir)
{
    if (!dir || !dir[0]) {
        fprintf(stderr, "ex_mkdir_p: empty directory name\n");
        return -1;
    }
    char *path = strdup(dir);
    if (!path) {
        fprintf(stderr, "%s: out of memory\n", dir);
        return -1;
    }
    int rc = 0;
    /* Create every prefix ending before a '/', then the whole path. */
    for (char *p = path + 1; *p && rc == 0; p++)
        if (*p == '/' && p[-1] != '/') {
            *p = '\0';
            rc = make_one(path);
            *p = '/';
        }
    if (rc == 0)
        rc = make_one(path);
    free(path);
    return rc;
}
