/* Charts with PLplot's pngcairo device: loss curves and latent scatters. */
#include "excommon.h"

#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Colour map 0 as we lay it out: 0 background, 1 ink, 2 grid lines,
   3..12 the ten class colours (matplotlib's "tab10", easy to tell apart),
   which also serve the train (first) and test (second) curves. */
enum { COL_BG = 0, COL_INK = 1, COL_GRID = 2, COL_CLASS = 3, NCOL = 13 };
static const unsigned char palette[NCOL][3] = {
    {255, 255, 255}, {0, 0, 0}, {220, 220, 220},
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

/* PLplot calls exit() on fatal errors unless the exit handler never
   returns, so the handler jumps back into draw_guarded.  PLplot is not
   thread-safe anyway, so one global jump target is enough. */
static jmp_buf *plot_jump;
/* Non-fatal errors ("aborting operation") land here instead of stderr. */
static PLINT plot_errcode;
static char plot_errmsg[1024];

static int on_plplot_exit(PLCHAR_VECTOR msg)
{
    fprintf(stderr, "PLplot: %s\n", msg);
    if (plot_jump)
        longjmp(*plot_jump, 1);
    return 1;
}

/* Marker for points and legends: U+25CF BLACK CIRCLE, drawn as text by
   cairo, so it is round and solid (PLplot's Hershey symbols are not). */
#define DOT "#[0x25cf]"

typedef void (*draw_fn)(const void *ctx);

/* Fail early, with a clear message, if the file cannot be created: PLplot
   would otherwise retry noisily and then exit the process. */
static int can_create(const char *tmp)
{
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", tmp, strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

/* Without its driver PLplot would ask on stdin for another device, then
   give up and exit, so look for it first. */
static int have_pngcairo(void)
{
    const char *menu[128], *names[128];
    const char **m = menu, **d = names;
    int n = 128;
    plgDevs(&m, &d, &n);
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], "pngcairo") == 0)
            return 1;
    return 0;
}

/* Draw one chart into the file tmp on a stream of its own, which plend1
   frees, so charts can be drawn any number of times.  Every PLplot call
   happens here, under the jump target of on_plplot_exit. */
static int draw_guarded(const char *tmp, int width, int height, draw_fn draw, const void *ctx)
{
    PLINT old, strm;
    plgstrm(&old);
    jmp_buf jump;
    if (setjmp(jump)) {
        /* The stream is in an unknown state: leave it rather than risk a
           second fatal error inside plend1. */
        plot_jump = NULL;
        plsstrm(old);
        fprintf(stderr, "%s: PLplot gave up on this chart\n", tmp);
        return -1;
    }
    plot_jump = &jump;
    plsexit(on_plplot_exit);
    if (!have_pngcairo()) {
        fprintf(stderr, "%s: PLplot has no pngcairo device (install its cairo driver)\n", tmp);
        plot_jump = NULL;
        return -1;
    }
    plmkstrm(&strm);
    if (strm < 0) {
        fprintf(stderr, "%s: PLplot has no free stream\n", tmp);
        plot_jump = NULL;
        return -1;
    }
    plot_errcode = 0;
    plot_errmsg[0] = '\0';
    plsError(&plot_errcode, plot_errmsg);
    plsdev("pngcairo");
    plsfnam(tmp);
    plspage(0.0, 0.0, width, height, 0, 0);
    plscmap0n(NCOL);
    for (int i = 0; i < NCOL; i++)
        plscol0a(i, palette[i][0], palette[i][1], palette[i][2], 1.0);
    plinit();
    draw(ctx);
    plend1(); /* writes the PNG, closes the file and frees the stream */
    plot_jump = NULL;
    plsstrm(old);
    if (plot_errcode != 0) {
        fprintf(stderr, "%s: PLplot: %s", tmp, plot_errmsg);
        return -1;
    }
    return 0;
}

/* Draw into path + ".tmp", then rename, so a reader never sees half a
   chart. */
static int run_plot(const char *path, int width, int height, draw_fn draw, const void *ctx)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (!tmp) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    if (!can_create(tmp)) {
        free(tmp);
        return -1;
    }
    int rc = draw_guarded(tmp, width, height, draw, ctx);
    struct stat st;
    if (rc == 0 && (stat(tmp, &st) != 0 || st.st_size == 0)) {
        fprintf(stderr, "%s: PLplot wrote nothing\n", tmp);
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        fprintf(stderr, "%s: cannot rename to %s: %s\n", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        remove(tmp);
    free(tmp);
    return rc;
}

/* ---- Ranges ---- */

typedef struct range {
    double lo, hi;
} range;

/* Widen r to hold the finite values of v[0..n-1]; v may be NULL. */
static void range_add(range *r, int n, const double *v)
{
    for (int i = 0; v && i < n; i++)
        if (isfinite(v[i])) {
            if (v[i] < r->lo)
                r->lo = v[i];
            if (v[i] > r->hi)
                r->hi = v[i];
        }
}

/* Add a margin of 5% of the span, or at least `min_margin`; a single
   value (or none) gets 10% of its size on each side, or 1. */
static range range_pad(range r, double min_margin)
{
    if (r.lo > r.hi)
        return (range){0.0, 1.0};
    double span = r.hi - r.lo;
    if (span <= 0.0) {
        double half = fabs(r.lo) > 0.0 ? fabs(r.lo) * 0.1 : 1.0;
        half = half > min_margin ? half : min_margin;
        return (range){r.lo - half, r.hi + half};
    }
    double margin = 0.05 * span > min_margin ? 0.05 * span : min_margin;
    return (range){r.lo - margin, r.hi + margin};
}

/* Light grid, then black axes with numbers, then the labels.  xtick is
   the distance between numbered x ticks, 0 to let PLplot choose. */
static void frame(range x, range y, double xtick, const char *xlabel, const char *ylabel,
                  const char *title)
{
    int nxsub = xtick == 1.0 ? 1 : 0; /* no minor ticks between epochs */
    plwind(x.lo, x.hi, y.lo, y.hi);
    plcol0(COL_GRID);
    plbox("g", xtick, nxsub, "g", 0.0, 0);
    plcol0(COL_INK);
    plbox("bcnst", xtick, nxsub, "bcnstv", 0.0, 0);
    pllab(xlabel, ylabel, title ? title : "");
}

/* ---- Loss curves ---- */

typedef struct loss_ctx {
    int n;
    const double *epochs, *train, *test;
    const char *title;
} loss_ctx;

enum { MAX_MARKERS = 60 };

/* Lines through runs of finite points (a NaN breaks the line), and a
   marker on every point when there are few enough to tell apart, and on
   lone points, which no line would show. */
static void draw_series(int n, const double *x, const double *y, int colour)
{
    int markers = n <= MAX_MARKERS;
    plcol0(colour);
    plwidth(2.0);
    int start = 0;
    for (int i = 0; i <= n; i++) {
        if (i < n && isfinite(x[i]) && isfinite(y[i]))
            continue;
        int len = i - start;
        if (len >= 2)
            plline(len, x + start, y + start);
        if (len == 1 || (len > 0 && markers))
            plstring(len, x + start, y + start, DOT);
        start = i + 1;
    }
    plwidth(1.0);
}

/* Whole epochs between x ticks, 1, 2, 5, 10, 20, 50..., so that there
   are at most 10 ticks: PLplot alone would number 0.2, 0.4... epochs. */
static double epoch_step(double span)
{
    static const double mult[3] = {1.0, 2.0, 5.0};
    double step = 1.0;
    for (int i = 0; span / step > 10.0; i++)
        step = mult[(i + 1) % 3] * pow(10.0, (i + 1) / 3);
    return step;
}

/* The epochs that have a finite loss in either curve, so that a run
   resumed from a file without its early history starts where it starts
   instead of at an empty stretch. */
static range epoch_range(const loss_ctx *c)
{
    range xr = {INFINITY, -INFINITY};
    for (int i = 0; i < c->n; i++)
        if (isfinite(c->train[i]) || (c->test && isfinite(c->test[i])))
            range_add(&xr, 1, c->epochs + i);
    return xr;
}

static void draw_losses(const void *p)
{
    const loss_ctx *c = p;
    range xr = epoch_range(c), yr = {INFINITY, -INFINITY};
    range_add(&yr, c->n, c->train);
    range_add(&yr, c->n, c->test);
    xr = range_pad(xr, 0.5); /* half an epoch keeps end points off the frame */
    yr = range_pad(yr, 0.0);
    plschr(0.0, 1.1);
    pladv(0);
    plvpor(0.12, 0.95, 0.12, 0.9);
    frame(xr, yr, epoch_step(xr.hi - xr.lo), "epoch", "loss (nats per image)", c->title);
    draw_series(c->n, c->epochs, c->train, COL_CLASS);
    if (c->test)
        draw_series(c->n, c->epochs, c->test, COL_CLASS + 1);

    int nleg = c->test ? 2 : 1;
    PLINT look = PL_LEGEND_LINE | (c->n <= MAX_MARKERS ? PL_LEGEND_SYMBOL : 0);
    PLINT opts[2] = {look, look};
    PLINT colours[2] = {COL_CLASS, COL_CLASS + 1}, text_col[2] = {COL_INK, COL_INK};
    PLINT styles[2] = {1, 1}, nsym[2] = {1, 1};
    PLFLT widths[2] = {2.0, 2.0}, sym_scale[2] = {1.0, 1.0};
    const char *text[2] = {"train", "test"}, *syms[2] = {DOT, DOT};
    PLFLT lw, lh;
    pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.02, 0.08,
             COL_BG, COL_INK, 1, 0, 0, nleg, opts, 1.0, 1.0, 2.0, 0.0, text_col, text,
             NULL, NULL, NULL, NULL, colours, styles, widths, colours, sym_scale, nsym, syms);
}

int ex_plot_losses(const char *path, int n, const double *epochs, const double *train,
                   const double *test, const char *title)
{
    if (!path || n < 1 || !epochs || !train) {
        fprintf(stderr, "ex_plot_losses: bad arguments for %s\n", path ? path : "(null)");
        return -1;
    }
    loss_ctx c = {n, epochs, train, test, title};
    return run_plot(path, 900, 600, draw_losses, &c);
}

/* ---- Latent scatter ---- */

typedef struct scatter_ctx {
    int n, nclasses;
    const float *x, *y;
    const int32_t *labels;
    const char *title;
} scatter_ctx;

/* Colour of point i's class, or -1 for a label out of range. */
static int point_colour(const scatter_ctx *c, int i)
{
    if (!c->labels)
        return COL_CLASS;
    int32_t l = c->labels[i];
    return l >= 0 && l < c->nclasses ? COL_CLASS + l : -1;
}

/* Points go out one class at a time, in strides of 1/16 of the data per
   round, so no class is painted wholly on top of the others and PLplot
   still gets a few hundred calls rather than one per point. */
enum { ROUNDS = 16 };

static void draw_points(const scatter_ctx *c, double *px, double *py)
{
    int per_round = (c->n + ROUNDS - 1) / ROUNDS;
    int ncol = c->labels ? c->nclasses : 1;
    for (int r = 0; r < ROUNDS; r++) {
        int lo = r * per_round, hi = lo + per_round < c->n ? lo + per_round : c->n;
        for (int k = 0; k < ncol; k++) {
            int m = 0;
            for (int i = lo; i < hi; i++)
                if (point_colour(c, i) == COL_CLASS + k && isfinite(c->x[i]) &&
                    isfinite(c->y[i])) {
                    px[m] = c->x[i];
                    py[m] = c->y[i];
                    m++;
                }
            if (m > 0) {
                plcol0(COL_CLASS + k);
                plstring(m, px, py, DOT);
            }
        }
    }
}

static void draw_scatter(const void *p)
{
    const scatter_ctx *c = p;
    range xr = {INFINITY, -INFINITY}, yr = {INFINITY, -INFINITY};
    for (int i = 0; i < c->n; i++) {
        double x = c->x[i], y = c->y[i];
        range_add(&xr, 1, &x);
        range_add(&yr, 1, &y);
    }
    pladv(0);
    plvpor(0.13, c->labels ? 0.85 : 0.95, 0.09, 0.93);
    frame(range_pad(xr, 0.0), range_pad(yr, 0.0), 0.0, "z[0]", "z[1]", c->title);

    double *px = malloc(sizeof(double) * (size_t)c->n * 2);
    if (!px) {
        fprintf(stderr, "ex_plot_scatter: out of memory; the chart has no points\n");
        return;
    }
    plschr(0.0, 0.3); /* DOT is text, so the character height sizes it */
    draw_points(c, px, px + c->n);
    free(px);
    plschr(0.0, 1.0);
    if (!c->labels)
        return;

    PLINT opts[10], colours[10], text_col[10], nsym[10];
    PLFLT sym_scale[10];
    char names[10][12];
    const char *text[10], *syms[10];
    for (int k = 0; k < c->nclasses; k++) {
        opts[k] = PL_LEGEND_SYMBOL;
        colours[k] = COL_CLASS + k;
        text_col[k] = COL_INK;
        nsym[k] = 1;
        sym_scale[k] = 1.2;
        snprintf(names[k], sizeof names[k], "%d", k);
        text[k] = names[k];
        syms[k] = DOT;
    }
    PLFLT lw, lh;
    pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0.0, 0.03, COL_BG, COL_INK, 1,
             0, 0, c->nclasses, opts, 1.0, 1.0, 2.0, 0.0, text_col, text, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, colours, sym_scale, nsym, syms);
}

int ex_plot_scatter(const char *path, int n, const float *x, const float *y,
                    const int32_t *labels, int nclasses, const char *title)
{
    if (!path || n < 1 || !x || !y || (labels && (nclasses < 1 || nclasses > 10))) {
        fprintf(stderr, "ex_plot_scatter: bad arguments for %s (n %d, %d classes)\n",
                path ? path : "(null)", n, nclasses);
        return -1;
    }
    scatter_ctx c = {n, nclasses, x, y, labels, title};
    return run_plot(path, 800, 800, draw_scatter, &c);
}
