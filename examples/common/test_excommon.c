/* Tests of the examples' helpers (excommon), run by ctest as test_excommon.
 *
 *   test_excommon [OUTDIR]        pictures, charts, flag parser, mkdir, progress
 *   test_excommon --reexec-test   checks that ex_reexec_for_blas restarts once
 *
 * Writes grid_gray.png, grid_rgb.png, grid_rgb_row.png, losses.png,
 * loss_one.png, loss_gap.png, loss_resumed.png, loss_none.png, loss_long.png, scatter.png and
 * scatter_nolabels.png into OUTDIR (default
 * /tmp/excommon-demo) for a person to look at.
 */
#include "excommon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const double PI = 3.14159265358979323846;

static int failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static char out_dir[512];

static const char *out_path(const char *name)
{
    static char buf[600];
    snprintf(buf, sizeof buf, "%s/%s", out_dir, name);
    return buf;
}

/* A small deterministic generator (xorshift64*) and Box-Muller normals. */
static uint64_t rng_state = 88172645463325252ull;

static double uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static double normal(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * PI * v);
}

/* ---- Pictures ---- */

/* Image i: a ring whose radius grows with i%10 over a left-to-right
   gradient whose strength grows with i/10, so the grid reads as a table. */
static void test_gray_grid(void)
{
    enum { N = 100, H = 28, W = 28 };
    float *img = malloc(sizeof(float) * N * H * W);
    for (int i = 0; i < N; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double r = hypot(x - 13.5, y - 13.5), radius = 3.0 + (i % 10);
                double ring = fabs(r - radius) < 1.5 ? 1.0 : 0.0;
                double grad = (i / 10) / 9.0 * x / (W - 1.0) * 0.6;
                img[(i * H + y) * W + x] = (float)(ring + grad);
            }
    img[0] = NAN;     /* clamped to black */
    img[1] = -3.0f;   /* black */
    img[2] = 7.0f;    /* white */
    CHECK(ex_write_grid_png(out_path("grid_gray.png"), img, N, 1, H, W, 10, 2, 2) == 0);
    free(img);
}

/* 12 colour images (C,H,W): red grows to the right, green downwards, blue
   with the image index; the grid has 5 columns, so the last row has 2. */
static void test_rgb_grid(void)
{
    enum { N = 12, H = 32, W = 32 };
    float *img = malloc(sizeof(float) * N * 3 * H * W);
    for (int i = 0; i < N; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float *base = img + (size_t)i * 3 * H * W + y * W + x;
                base[0] = x / (W - 1.0f);
                base[H * W] = y / (H - 1.0f);
                base[2 * H * W] = i / (N - 1.0f);
            }
    CHECK(ex_write_grid_png(out_path("grid_rgb.png"), img, N, 3, H, W, 5, 4, 3) == 0);
    /* count < cols: one row of 12 */
    CHECK(ex_write_grid_png(out_path("grid_rgb_row.png"), img, N, 3, H, W, 20, 1, 1) == 0);
    free(img);
}

static void test_png_errors(void)
{
    uint8_t px[4] = {0, 64, 128, 255};
    CHECK(ex_write_png(out_path("tiny.png"), px, 2, 2, 1) == 0);
    CHECK(ex_write_png(out_path("tiny.png"), px, 2, 2, 2) == -1);
    CHECK(ex_write_png("/nonexistent-dir/x.png", px, 2, 2, 1) == -1);
    CHECK(ex_write_grid_png(out_path("bad.png"), NULL, 1, 1, 2, 2, 1, 0, 1) == -1);
    struct stat st;
    CHECK(stat(out_path("tiny.png.tmp"), &st) != 0); /* renamed, not left */
}

/* The in-memory PNG is the file's bytes; the grid's pixels are the
   images' values (to_byte: clamped, rounded) with grey 128 around them. */
static void test_png_memory(void)
{
    uint8_t px[6] = {0, 64, 128, 255, 1, 2};
    unsigned char *png = NULL, file[256];
    size_t len = 0;
    CHECK(ex_write_png(out_path("mem.png"), px, 3, 2, 1) == 0);
    CHECK(ex_encode_png(px, 3, 2, 1, &png, &len) == 0);
    FILE *f = fopen(out_path("mem.png"), "rb");
    size_t n = f ? fread(file, 1, sizeof file, f) : 0;
    if (f)
        fclose(f);
    CHECK(png && len > 8 && n == len && memcmp(png, file, len) == 0);
    CHECK(png && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(png);
    CHECK(ex_encode_png(px, 3, 2, 2, &png, &len) == -1);

    /* two 1x2 RGB images (C,H,W) in a grid of 2 columns, gap 1 */
    float img[12] = {0.0f, 1.0f, 0.5f, 0.25f, -1.0f, 2.0f, /* image 0: R, G, B planes */
                     0.2f, 0.4f, 0.6f, 0.8f, NAN, 0.998f};
    int w = 0, h = 0;
    uint8_t *grid = ex_grid_pixels(img, 2, 3, 1, 2, 2, 1, 1, &w, &h);
    CHECK(grid && w == 7 && h == 3);
    if (grid) {
        const uint8_t *row = grid + 1 * 7 * 3; /* the middle row */
        const uint8_t want[7][3] = {{128, 128, 128}, {0, 128, 0},   {255, 64, 255},
                                    {128, 128, 128}, {51, 153, 0}, {102, 204, 254},
                                    {128, 128, 128}};
        CHECK(memcmp(row, want, sizeof want) == 0);
        CHECK(grid[0] == 128 && grid[7 * 3 * 3 - 1] == 128);
        free(grid);
    }
    CHECK(ex_grid_pixels(img, 0, 3, 1, 2, 2, 1, 1, &w, &h) == NULL);
}

/* ---- Charts ---- */

static void test_plots(void)
{
    double ep[10], train[10], test[10];
    for (int i = 0; i < 10; i++) {
        ep[i] = i + 1;
        train[i] = 160.0 + 60.0 * exp(-0.45 * i);
        test[i] = 165.0 + 52.0 * exp(-0.40 * i);
    }
    CHECK(ex_plot_losses(out_path("losses.png"), 10, ep, train, test, "demo: 10 epochs") == 0);
    CHECK(ex_plot_losses(out_path("loss_one.png"), 1, ep, train, test, "one epoch") == 0);
    train[4] = NAN; /* a gap in the line, not a failure */
    CHECK(ex_plot_losses(out_path("loss_gap.png"), 10, ep, train, NULL, "train only, gap") == 0);
    CHECK(ex_plot_losses("/nonexistent-dir/l.png", 10, ep, train, test, "x") == -1);
    /* a run resumed from a file without its first epochs' history: the
       axis starts at epoch 4, nothing is drawn at 0 */
    for (int i = 0; i < 3; i++)
        train[i] = test[i] = NAN;
    CHECK(ex_plot_losses(out_path("loss_resumed.png"), 10, ep, train, test, "epochs 4 to 10") == 0);
    for (int i = 0; i < 10; i++)
        train[i] = NAN;
    CHECK(ex_plot_losses(out_path("loss_none.png"), 10, ep, train, NULL, "no values") == 0);

    /* 100 epochs: lines without markers, except the lone point at epoch 51 */
    double ep100[100], tr100[100], te100[100];
    for (int i = 0; i < 100; i++) {
        ep100[i] = i + 1;
        tr100[i] = 100.0 + 80.0 * exp(-0.08 * i) + 1.5 * normal();
        te100[i] = 104.0 + 70.0 * exp(-0.07 * i) + 0.01 * i * i / 10.0;
    }
    tr100[49] = tr100[51] = NAN;
    CHECK(ex_plot_losses(out_path("loss_long.png"), 100, ep100, tr100, te100, "100 epochs") == 0);

    enum { N = 10000 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    int32_t *lab = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) {
        int k = (int)(uniform() * 10.0);
        double a = 2.0 * PI * k / 10.0;
        lab[i] = k;
        x[i] = (float)(3.0 * cos(a) + 0.6 * normal());
        y[i] = (float)(3.0 * sin(a) + 0.6 * normal());
    }
    CHECK(ex_plot_scatter(out_path("scatter.png"), N, x, y, lab, 10, "10 clusters") == 0);
    CHECK(ex_plot_scatter(out_path("scatter_nolabels.png"), N, x, y, NULL, 0, NULL) == 0);
    CHECK(ex_plot_scatter(out_path("bad.png"), N, x, y, lab, 11, "x") == -1);
    free(x);
    free(y);
    free(lab);
}

/* ---- Flags ---- */

/* Parse a NULL-terminated list of arguments over fresh defaults. */
static int parse(ex_options *o, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"demo";
    while (*args)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    ex_options_init(o);
    o->description = "Test program.";
    return ex_parse_args(argc, argv, o);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_parser(void)
{
    ex_options o;
    CHECK(parse(&o, (const char *const[]){NULL}) == 0);
    CHECK(o.epochs == 10 && o.batch == 100 && o.n_hidden == 1 && o.hidden[0] == 512);
    CHECK(o.threads == (int)sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(o.resume == NULL && o.load == NULL && o.n_decode == 0 && !o.help && !o.quiet);

    CHECK(parse(&o, ARGS("--data", "/d", "--out=/o", "--epochs", "0", "--batch=128",
                         "--hidden", "512,256,64", "--latent=20", "--loss", "mse",
                         "--optimizer=rmsprop", "--lr", "1e-4", "--seed",
                         "18446744073709551615", "--threads=3", "--limit", "1000",
                         "--resume", "r.vae", "--load=l.vae", "--decode", "0.5,-1.25,3")) == 0);
    CHECK(!strcmp(o.data_dir, "/d") && !strcmp(o.out_dir, "/o"));
    CHECK(o.epochs == 0 && o.batch == 128 && o.latent == 20);
    CHECK(o.n_hidden == 3 && o.hidden[0] == 512 && o.hidden[1] == 256 && o.hidden[2] == 64);
    CHECK(o.loss == EX_LOSS_MSE && o.optimizer == VAE_OPTIMIZER_RMSPROP);
    CHECK(o.lr == 1e-4 && o.seed == UINT64_MAX && o.threads == 3 && o.limit == 1000);
    CHECK(!strcmp(o.resume, "r.vae") && !strcmp(o.load, "l.vae"));
    CHECK(o.n_decode == 3 && o.decode[0] == 0.5f && o.decode[1] == -1.25f && o.decode[2] == 3.0f);

    CHECK(parse(&o, ARGS("--out=--odd", "--lr=.5", "--epochs=+3")) == 0);
    CHECK(!strcmp(o.out_dir, "--odd") && o.lr == 0.5 && o.epochs == 3);

    /* which flags were given, and their values as text that reads back */
    CHECK(parse(&o, ARGS("--hidden", "064,32", "--seed=05", "--lr", "2.5e-4", "--optimizer",
                         "sgd")) == 0);
    CHECK(ex_flag_given(&o, "hidden") && ex_flag_given(&o, "seed") && ex_flag_given(&o, "lr"));
    CHECK(!ex_flag_given(&o, "latent") && !ex_flag_given(&o, "epochs") && !ex_flag_given(&o, "x"));
    char text[64];
    CHECK(ex_option_text(&o, "hidden", text, sizeof text) == 0 && !strcmp(text, "64,32"));
    CHECK(ex_option_text(&o, "seed", text, sizeof text) == 0 && !strcmp(text, "5"));
    CHECK(ex_option_text(&o, "optimizer", text, sizeof text) == 0 && !strcmp(text, "sgd"));
    CHECK(ex_option_text(&o, "loss", text, sizeof text) == 0 && !strcmp(text, "bce"));
    CHECK(ex_option_text(&o, "latent", text, sizeof text) == 0 && !strcmp(text, "2"));
    CHECK(ex_option_text(&o, "data", text, sizeof text) == -1);
    CHECK(ex_option_text(&o, "lr", text, sizeof text) == 0);
    ex_options back;
    ex_options_init(&back);
    CHECK(ex_set_option(&back, "lr", text) == 0 && back.lr == o.lr && !ex_flag_given(&back, "lr"));

    /* --quiet takes no value */
    CHECK(parse(&o, ARGS("--epochs", "3", "--quiet")) == 0);
    CHECK(o.quiet == 1 && o.epochs == 3 && !ex_flag_given(&o, "quiet"));

    /* later flags win */
    CHECK(parse(&o, ARGS("--hidden", "1,2,3", "--hidden", "7")) == 0);
    CHECK(o.n_hidden == 1 && o.hidden[0] == 7);

    printf("---- expected usage:\n");
    CHECK(parse(&o, ARGS("--epochs", "3", "--help")) == 1);
    CHECK(o.help == 1);

    printf("---- expected errors:\n");
    const char *const *const bad[] = {
        ARGS("--bogus", "1"),          ARGS("--epochs"),          ARGS("--epochs", "abc"),
        ARGS("--epochs=-1"),           ARGS("--batch", "0"),      ARGS("--batch", "12x"),
        ARGS("--batch", " 12"),        ARGS("--latent=0"),        ARGS("--hidden", "1,,2"),
        ARGS("--hidden", "1,2,"),      ARGS("--hidden", "1,2,3,4,5,6,7,8,9"),
        ARGS("--hidden", "0"),         ARGS("--lr", "0"),         ARGS("--lr", "nan"),
        ARGS("--lr=-0.1"),             ARGS("--loss", "l1"),      ARGS("--optimizer", "Adam"),
        ARGS("--seed", "-1"),          ARGS("--seed", "99999999999999999999"),
        ARGS("--threads", "-2"),       ARGS("--limit", "-5"),     ARGS("--decode", "1,x"),
        ARGS("--epochs", "99999999999"), ARGS("--out="),          ARGS("--help=yes"),
        ARGS("--quiet=1"),        ARGS("stray"),                 ARGS("--out", "--epochs", "3"),                 ARGS("-x"),                ARGS("--"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(&o, bad[i]);
        if (rc != 2)
            fprintf(stderr, "case %zu (%s ...) gave %d, not 2\n", i, bad[i][0], rc);
        CHECK(rc == 2);
    }
    char many[64 * 3 + 16] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, i ? ",1" : "1");
    CHECK(parse(&o, ARGS("--decode", many)) == 2);
    many[strlen(many) - 2] = '\0'; /* exactly 64 */
    CHECK(parse(&o, ARGS("--decode", many)) == 0 && o.n_decode == 64);
}

/* ---- mkdir, progress, re-exec ---- */

static void test_mkdir(void)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/a/b//c/", out_dir);
    CHECK(ex_mkdir_p(dir) == 0);
    CHECK(ex_mkdir_p(dir) == 0); /* exists already */
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(dir, sizeof dir, "%s/tiny.png/sub", out_dir);
    CHECK(ex_mkdir_p(dir) == -1); /* a file is in the way */
}

static void test_progress(void)
{
    ex_progress p;
    for (int e = 1; e <= 2; e++) {
        ex_progress_begin(&p, e, 2, 50);
        for (int b = 1; b <= 50; b++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            ex_progress_update(&p, b, 200.0f - b, 12345.0);
        }
        ex_progress_end(&p);
        printf("epoch %d/2  loss %.2f\n", e, 150.0);
    }
}

static int reexec_test(int argc, char **argv)
{
    if (getenv("VAE_REEXECED")) {
        const char *v = getenv("EX_DEMO_VAR");
        printf("restarted: EX_DEMO_VAR=%s\n", v ? v : "(unset)");
        return v && !strcmp(v, "yes") ? 0 : 1;
    }
    ex_reexec_for_blas(argc, argv, NULL);        /* nothing to do: returns */
    ex_reexec_for_blas(argc, argv, "EX_DEMO_VAR=yes");
    fprintf(stderr, "ex_reexec_for_blas returned without restarting\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--reexec-test"))
        return reexec_test(argc, argv);
    snprintf(out_dir, sizeof out_dir, "%s", argc > 1 ? argv[1] : "/tmp/excommon-demo");
    if (ex_mkdir_p(out_dir) != 0)
        return 1;
    test_gray_grid();
    test_rgb_grid();
    test_png_errors();
    test_png_memory();
    test_plots();
    test_parser();
    test_mkdir();
    test_progress();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed; pictures in %s\n1 passed, 0 failed\n", out_dir);
    return 0;
}
