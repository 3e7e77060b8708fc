/* Convolutions: conv2d, conv2d_transpose, reshape, the per-channel bias and
   the convolutional layers.
   - output sizes against the documented formulas for many inputs, kernels,
     strides and both paddings;
   - forward values against plain double-precision loops that follow
     TensorFlow's padding rule, plus hand-computed cases that pin down on
     which side the odd row/column of "same" padding goes, and the adjoint
     identity <conv(x), y> = <x, conv_transpose(y)>;
   - gradients (weights and inputs) against central differences;
   - second backward passes equal the first (no stale accumulation), and
     batches processed in chunks equal the rows one by one;
   - argument and shape checks (refused, no node added, out untouched),
     including sizes that overflow 32-bit arithmetic;
   - a tiny convolutional VAE: gradient check, thread and chunking
     consistency, save/load round trip.
   Gradient checks through ReLUs skip the parameters whose finite-difference
   step crosses a kink (see gradcheck_kinks). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VALID VAE_PADDING_VALID
#define SAME VAE_PADDING_SAME

/* One convolution: rows, input (c, h, w), output channels f, kernel k,
   stride s, padding.  For the transpose c is still the input's channels
   and f the output's. */
typedef struct geom {
    int rows, c, h, w, f, k, s;
    vae_padding pad;
} geom;

/* ---- the documented sizes ---- */

/* conv2d: "same" ceil(in / s); "valid" (in - k) / s + 1 (in >= k). */
static int conv_size(int in, int k, int s, vae_padding pad)
{
    return pad == SAME ? (in + s - 1) / s : (in - k) / s + 1;
}

/* conv2d_transpose: "same" in * s; "valid" (in - 1) * s + k. */
static int tconv_size(int in, int k, int s, vae_padding pad)
{
    return pad == SAME ? in * s : (in - 1) * s + k;
}

static void out_hw(int transpose, const geom *q, int *oh, int *ow)
{
    int (*size)(int, int, int, vae_padding) = transpose ? tconv_size : conv_size;
    *oh = size(q->h, q->k, q->s, q->pad);
    *ow = size(q->w, q->k, q->s, q->pad);
}

/* TensorFlow: padding before (top/left) of a convolution taking `in` to
   `out`: floor of max((out - 1) * s + k - in, 0) / 2; the rest goes after. */
static int pad_before(int in, int out, int k, int s, vae_padding pad)
{
    int total = (out - 1) * s + k - in;
    return pad == VALID || total <= 0 ? 0 : total / 2;
}

/* ---- reference loops in double ----
   Each writes y and mag (the sum of |terms| of each output, which bounds
   the rounding error of a float implementation). */

/* y[b,f,oy,ox] = sum_{c,ky,kx} w[f, (c*k+ky)*k+kx] x[b, c, oy*s+ky-pt, ox*s+kx-pl] */
static void conv_ref(const geom *q, const float *x, const float *w, double *y, double *mag)
{
    int oh, ow, k = q->k, pt, pl;
    out_hw(0, q, &oh, &ow);
    pt = pad_before(q->h, oh, k, q->s, q->pad);
    pl = pad_before(q->w, ow, k, q->s, q->pad);
    for (int b = 0; b < q->rows; b++)
        for (int f = 0; f < q->f; f++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double sum = 0.0, abs_sum = 0.0;
                    int64_t o = (((int64_t)b * q->f + f) * oh + oy) * ow + ox;
                    for (int c = 0; c < q->c; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * q->s + ky - pt, ix = ox * q->s + kx - pl;
                                double t;
                                if (iy < 0 || iy >= q->h || ix < 0 || ix >= q->w)
                                    continue;
                                t = (double)w[(int64_t)f * q->c * k * k + (c * k + ky) * k + kx] *
                                    x[(((int64_t)b * q->c + c) * q->h + iy) * q->w + ix];
                                sum += t;
                                abs_sum += fabs(t);
                            }
                    y[o] = sum;
                    mag[o] = abs_sum;
                }
}

/* The adjoint of conv2d from (f, oh, ow) back to (c, h, w), with the
   roles swapped: input x has c channels, output f, w is (c, f*k*k), and the
   padding is that of a convolution from the output size to the input size:
   y[b,f,iy*s+ky-pt,ix*s+kx-pl] += w[c, (f*k+ky)*k+kx] x[b,c,iy,ix]. */
static void tconv_ref(const geom *q, const float *x, const float *w, double *y, double *mag)
{
    int oh, ow, k = q->k, pt, pl;
    int64_t n;
    out_hw(1, q, &oh, &ow);
    pt = pad_before(oh, q->h, k, q->s, q->pad);
    pl = pad_before(ow, q->w, k, q->s, q->pad);
    n = (int64_t)q->rows * q->f * oh * ow;
    for (int64_t i = 0; i < n; i++)
        y[i] = mag[i] = 0.0;
    for (int b = 0; b < q->rows; b++)
        for (int c = 0; c < q->c; c++)
            for (int iy = 0; iy < q->h; iy++)
                for (int ix = 0; ix < q->w; ix++) {
                    double xv = x[(((int64_t)b * q->c + c) * q->h + iy) * q->w + ix];
                    for (int f = 0; f < q->f; f++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int oy = iy * q->s + ky - pt, ox = ix * q->s + kx - pl;
                                int64_t o = (((int64_t)b * q->f + f) * oh + oy) * ow + ox;
                                double t;
                                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                    continue;
                                t = (double)w[(int64_t)c * q->f * k * k + (f * k + ky) * k + kx] * xv;
                                y[o] += t;
                                mag[o] += fabs(t);
                            }
                }
}

static double act_ref(vae_activation act, double v)
{
    switch (act) {
    case VAE_ACT_NONE: return v;
    case VAE_ACT_RELU: return v > 0 ? v : 0;
    case VAE_ACT_LEAKY_RELU: return v > 0 ? v : 0.01 * v;
    case VAE_ACT_TANH: return tanh(v);
    case VAE_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case VAE_ACT_SOFTPLUS: return log1p(exp(v));
    }
    return NAN;
}

/* got within float rounding of a sum whose |terms| add up to mag. */
static void expect_close(double got, double want, double mag, const char *what, int64_t i)
{
    ck_assert_msg(fabs(got - want) <= 1e-5 * (1.0 + mag), "%s[%lld]: got %.9g, want %.9g", what,
                  (long long)i, got, want);
}

/* ---- graph helpers ---- */

/* Values of node id in the (single) worker after the last tu_objective. */
static const float *values(vae_model *m, int id) { return m->workers[0].c.val[id]; }

/* Parameter values of node id, writable. */
static float *param_data(vae_graph *g, int id) { return g->params + g->nodes[id].param_offset; }

static int param2(vae_graph *g, const char *name, int rows, int cols)
{
    int dims[2] = {rows, cols}, id;
    ck_assert_int_eq(vae_graph_param(g, name, 2, dims, 1.0f, &id), VAE_OK);
    return id;
}

/* The weight of conv2d (f, c*k*k) or of conv2d_transpose (c, f*k*k). */
static int weight(vae_graph *g, int transpose, const geom *q)
{
    return transpose ? param2(g, NULL, q->c, q->f * q->k * q->k)
                     : param2(g, NULL, q->f, q->c * q->k * q->k);
}

static vae_status apply(vae_graph *g, int transpose, int x, int w, const geom *q, int *out)
{
    return transpose ? vae_op_conv2d_transpose(g, x, w, q->k, q->s, q->pad, out)
                     : vae_op_conv2d(g, x, w, q->k, q->s, q->pad, out);
}

/* Node y is batched with per-row dims (d0, d1, d2). */
static void expect_dims(const vae_graph *g, int y, int d0, int d1, int d2)
{
    ck_assert_int_eq(g->nodes[y].batched, 1);
    ck_assert_int_eq(g->nodes[y].ndim, 3);
    ck_assert_msg(g->nodes[y].dims[0] == d0 && g->nodes[y].dims[1] == d1 &&
                      g->nodes[y].dims[2] == d2,
                  "node %d is (%d, %d, %d), expected (%d, %d, %d)", y, g->nodes[y].dims[0],
                  g->nodes[y].dims[1], g->nodes[y].dims[2], d0, d1, d2);
    ck_assert_int_eq(vae_graph_node_size(g, y), (int64_t)d0 * d1 * d2);
    {   /* and the same through the public accessor */
        int dims[VAE_MAX_ROW_DIMS] = {0};
        ck_assert_int_eq(vae_graph_node_dims(g, y, dims), 3);
        ck_assert(dims[0] == d0 && dims[1] == d1 && dims[2] == d2);
        ck_assert_int_eq(vae_graph_node_dims(g, -1, dims), 0);
        ck_assert_int_eq(vae_graph_node_dims(g, g->n_nodes, dims), 0);
        ck_assert_int_eq(vae_graph_node_dims(NULL, y, dims), 0);
        ck_assert_int_eq(vae_graph_node_dims(g, y, NULL), 0);
    }
}

/* A model of y = op(x, w) on a (c, h, w) input x fed directly. */
static vae_model *op_model(int transpose, const geom *q, int *y, int *w)
{
    vae_graph *g = NULL;
    int x, dims[3] = {q->c, q->h, q->w}, oh, ow;
    ck_assert_int_eq(vae_graph_create(&g, 99), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 3, dims, &x), VAE_OK);
    *w = weight(g, transpose, q);
    ck_assert_int_eq(apply(g, transpose, x, *w, q, y), VAE_OK);
    out_hw(transpose, q, &oh, &ow);
    expect_dims(g, *y, q->f, oh, ow);
    return tu_model(g, x, tu_weighted_sum(g, *y));
}

/* op(x; wv) computed by the library, as a new array of rows*f*oh*ow. */
static float *run_op(int transpose, const geom *q, const float *x, const float *wv)
{
    int y, w, oh, ow;
    vae_model *m = op_model(transpose, q, &y, &w);
    int64_t n;
    float *out;
    out_hw(transpose, q, &oh, &ow);
    n = (int64_t)q->rows * q->f * oh * ow;
    memcpy(param_data(m->g, w), wv, (size_t)m->g->nodes[w].size * sizeof *wv);
    tu_objective(m, x, q->rows);
    out = malloc((size_t)n * sizeof *out);
    memcpy(out, values(m, y), (size_t)n * sizeof *out);
    vae_model_free(m);
    return out;
}

static int64_t in_count(const geom *q) { return (int64_t)q->rows * q->c * q->h * q->w; }
static int64_t w_count(const geom *q) { return (int64_t)q->f * q->c * q->k * q->k; }

/* =========================== output sizes =========================== */

/* Every (H, W) in {1, 2, 5, 7, 14, 28}^2 (square and not), kernel 1, 2, 3,
   5, stride 1, 2, 3, both paddings: conv2d gives (F, OH, OW) by the
   documented formula, or VAE_ERR_SHAPE with no node added when "valid"
   has a kernel larger than the input; conv2d_transpose always gives its
   documented size. */
START_TEST(test_output_sizes)
{
    static const int sizes[] = {1, 2, 5, 7, 14, 28}, kernels[] = {1, 2, 3, 5},
                     strides[] = {1, 2, 3};
    enum { C = 2, F = 3 };
    for (int hi = 0; hi < 6; hi++)
        for (int wi = 0; wi < 6; wi++) {
            int h = sizes[hi], wd = sizes[wi], dims[3] = {C, h, wd}, x;
            vae_graph *g = NULL;
            ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
            ck_assert_int_eq(vae_graph_input(g, "x", 3, dims, &x), VAE_OK);
            for (int ki = 0; ki < 4; ki++)
                for (int si = 0; si < 3; si++)
                    for (int p = 0; p < 2; p++) {
                        geom q = {1, C, h, wd, F, kernels[ki], strides[si], (vae_padding)p};
                        int w = weight(g, 0, &q), wt = weight(g, 1, &q), y = -7, oh, ow, n;
                        vae_status st;
                        n = vae_graph_node_count(g);
                        st = apply(g, 0, x, w, &q, &y);
                        if (q.pad == VALID && (q.k > h || q.k > wd)) {
                            ck_assert_msg(st == VAE_ERR_SHAPE,
                                          "conv2d %dx%d k%d s%d valid: status %d, want SHAPE", h,
                                          wd, q.k, q.s, (int)st);
                            ck_assert_int_eq(y, -7);
                            ck_assert_int_eq(vae_graph_node_count(g), n);
                        } else {
                            ck_assert_msg(st == VAE_OK, "conv2d %dx%d k%d s%d pad %d: %s", h, wd,
                                          q.k, q.s, p, vae_last_error());
                            out_hw(0, &q, &oh, &ow);
                            expect_dims(g, y, F, oh, ow);
                        }
                        ck_assert_msg(apply(g, 1, x, wt, &q, &y) == VAE_OK,
                                      "conv2d_transpose %dx%d k%d s%d pad %d: %s", h, wd, q.k,
                                      q.s, p, vae_last_error());
                        out_hw(1, &q, &oh, &ow);
                        expect_dims(g, y, F, oh, ow);
                    }
            vae_graph_free(g);
        }
}
END_TEST

/* The Keras sizes of the MNIST VAE, spelled out rather than recomputed:
   conv 28 -> 14 -> 7 ("same", stride 2) and back 7 -> 14 -> 28 by the
   transpose; "valid" 28 with k 3 s 2 -> 13, and its transpose 13 -> 27;
   non-square 5x7 "same" stride 2 -> 3x4, transpose -> 10x14. */
START_TEST(test_output_sizes_keras)
{
    static const struct {
        int transpose, h, w, k, s;
        vae_padding pad;
        int oh, ow;
    } cases[] = {
        {0, 28, 28, 3, 2, SAME, 14, 14}, {0, 14, 14, 3, 2, SAME, 7, 7},
        {1, 7, 7, 3, 2, SAME, 14, 14},   {1, 14, 14, 3, 2, SAME, 28, 28},
        {0, 28, 28, 3, 2, VALID, 13, 13}, {1, 13, 13, 3, 2, VALID, 27, 27},
        {0, 5, 7, 3, 2, SAME, 3, 4},     {1, 5, 7, 3, 2, SAME, 10, 14},
        {0, 5, 7, 2, 3, VALID, 2, 2},    {1, 5, 7, 2, 3, VALID, 14, 20},
        {0, 1, 1, 5, 1, SAME, 1, 1},     {1, 1, 1, 5, 1, VALID, 5, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        geom q = {1, 1, cases[i].h, cases[i].w, 2, cases[i].k, cases[i].s, cases[i].pad};
        int x, w, y, dims[3] = {1, q.h, q.w};
        vae_graph *g = NULL;
        ck_assert_int_eq(vae_graph_create(&g, 1), VAE_OK);
        ck_assert_int_eq(vae_graph_input(g, "x", 3, dims, &x), VAE_OK);
        w = weight(g, cases[i].transpose, &q);
        ck_assert_int_eq(apply(g, cases[i].transpose, x, w, &q, &y), VAE_OK);
        expect_dims(g, y, 2, cases[i].oh, cases[i].ow);
        vae_graph_free(g);
    }
}
END_TEST

/* =========================== forward values =========================== */

/* Odd shapes: non-square, 1 and several channels in and out, kernel 1, 2,
   3, 5, stride 1, 2, 3, both paddings, 1 to 3 rows; kernels larger than
   the input under "same"; "same" with an odd total padding (even kernel at
   stride 1, or even input at stride 2) so the extra row/column must go
   after. */
static const geom FWD[] = {
    {1, 1, 5, 7, 1, 3, 1, SAME},  {2, 1, 5, 7, 3, 3, 2, SAME},  {3, 2, 5, 7, 1, 2, 2, VALID},
    {2, 3, 5, 7, 2, 1, 1, VALID}, {2, 2, 5, 7, 3, 2, 1, SAME},  {2, 2, 6, 4, 2, 3, 2, SAME},
    {1, 2, 7, 5, 2, 3, 3, VALID}, {2, 2, 7, 5, 3, 5, 2, SAME},  {2, 1, 4, 4, 2, 2, 2, SAME},
    {1, 1, 1, 1, 2, 3, 1, SAME},  {2, 2, 2, 3, 2, 3, 2, SAME},  {3, 3, 5, 7, 4, 3, 2, VALID},
    {1, 1, 3, 5, 1, 3, 1, VALID}, {2, 2, 3, 4, 2, 1, 2, VALID}, {1, 1, 3, 3, 1, 2, 3, SAME},
    {2, 2, 6, 8, 3, 2, 2, VALID}, {3, 2, 5, 5, 2, 3, 3, SAME},  {1, 3, 2, 9, 2, 2, 1, SAME},
};
enum { N_FWD = sizeof FWD / sizeof *FWD };

/* conv2d (_i < N_FWD) or conv2d_transpose (the rest) of random inputs and
   weights equals the direct loops. */
START_TEST(test_forward)
{
    int transpose = _i >= N_FWD, oh, ow;
    const geom *q = &FWD[_i % N_FWD];
    int64_t n;
    float *x = malloc((size_t)in_count(q) * sizeof *x), *w = malloc((size_t)w_count(q) * sizeof *w);
    float *got;
    double *want, *mag;
    tu_random(x, in_count(q), 100 + (uint64_t)_i, -1.0f, 1.0f);
    tu_random(w, w_count(q), 200 + (uint64_t)_i, -1.0f, 1.0f);
    out_hw(transpose, q, &oh, &ow);
    n = (int64_t)q->rows * q->f * oh * ow;
    want = malloc((size_t)n * sizeof *want);
    mag = malloc((size_t)n * sizeof *mag);
    (transpose ? tconv_ref : conv_ref)(q, x, w, want, mag);
    got = run_op(transpose, q, x, w);
    for (int64_t i = 0; i < n; i++)
        expect_close(got[i], want[i], mag[i], transpose ? "conv2d_transpose" : "conv2d", i);
    free(x);
    free(w);
    free(got);
    free(want);
    free(mag);
}
END_TEST

/* Hand-computed values that fix the side of "same" padding independently
   of the reference loops (TensorFlow puts the odd row/column after).
   conv2d: one row of 4 pixels [1 2 3 4], 2x2 kernel [[1 10] [100 1000]],
   stride 1: padding 1 column and 1 row, both after, so output pixel j is
   x[j] + 10 x[j+1] -> [21 32 43 4] (with padding before it would be
   [10 21 32 43]).
   conv2d_transpose: [1 2] (1x2), 3x3 kernel whose first row is [1 10 100],
   stride 2 -> 2x4; padding max(3 - 2, 0) = 1 after, so x[i] lands at
   2i + kx: first row [1 10 102 20], second row 0. */
START_TEST(test_same_padding_side)
{
    static const float x1[4] = {1, 2, 3, 4}, w1[4] = {1, 10, 100, 1000};
    static const float x2[2] = {1, 2}, w2[9] = {1, 10, 100, 0, 0, 0, 0, 0, 0};
    geom q1 = {1, 1, 1, 4, 1, 2, 1, SAME}, q2 = {1, 1, 1, 2, 1, 3, 2, SAME};
    static const float want1[4] = {21, 32, 43, 4}, want2[8] = {1, 10, 102, 20, 0, 0, 0, 0};
    float *got1 = run_op(0, &q1, x1, w1), *got2 = run_op(1, &q2, x2, w2);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(got1[i] == want1[i], "conv2d[%d] = %g, want %g", i, got1[i], want1[i]);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(got2[i] == want2[i], "conv2d_transpose[%d] = %g, want %g", i, got2[i],
                      want2[i]);
    free(got1);
    free(got2);
}
END_TEST

/* The transpose is the adjoint of the convolution: for x (c, h, w),
   y (f, oh, ow) and one weight array w (f, c*k*k) - which is also the
   transpose's (input channels f, output channels c) layout -
   <conv2d(x; w), y> = <x, conv2d_transpose(y; w)>, wherever the transpose
   maps (oh, ow) back to exactly (h, w) (s divides h - k for "valid", h for
   "same"). */
static const geom ADJ[] = {
    {2, 2, 6, 8, 3, 3, 2, SAME},  {2, 1, 6, 4, 2, 2, 2, SAME},  {2, 3, 5, 7, 2, 3, 1, SAME},
    {2, 2, 7, 9, 3, 3, 2, VALID}, {1, 2, 5, 8, 2, 2, 3, VALID}, {2, 2, 9, 6, 1, 5, 3, SAME},
    {2, 2, 5, 7, 2, 1, 2, VALID},
};

START_TEST(test_adjoint)
{
    const geom *q = &ADJ[_i];
    geom t;
    int oh, ow;
    int64_t nx = in_count(q), ny;
    float *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)w_count(q) * sizeof *w), *y;
    float *cx, *ty;
    double lhs = 0.0, rhs = 0.0, mag = 0.0;
    out_hw(0, q, &oh, &ow);
    ny = (int64_t)q->rows * q->f * oh * ow;
    y = malloc((size_t)ny * sizeof *y);
    tu_random(x, nx, 300 + (uint64_t)_i, -1.0f, 1.0f);
    tu_random(y, ny, 400 + (uint64_t)_i, -1.0f, 1.0f);
    tu_random(w, w_count(q), 500 + (uint64_t)_i, -1.0f, 1.0f);
    /* The transpose from (f, oh, ow) to c channels. */
    t = (geom){q->rows, q->f, oh, ow, q->c, q->k, q->s, q->pad};
    out_hw(1, &t, &oh, &ow);
    ck_assert_int_eq(oh, q->h);
    ck_assert_int_eq(ow, q->w);
    cx = run_op(0, q, x, w);
    ty = run_op(1, &t, y, w);
    for (int64_t i = 0; i < ny; i++) {
        lhs += (double)cx[i] * y[i];
        mag += fabs((double)cx[i] * y[i]);
    }
    for (int64_t i = 0; i < nx; i++)
        rhs += (double)x[i] * ty[i];
    ck_assert_msg(fabs(lhs - rhs) <= 1e-5 * (1.0 + mag), "<conv x, y> %.9g != <x, conv^T y> %.9g",
                  lhs, rhs);
    free(x);
    free(w);
    free(y);
    free(cx);
    free(ty);
}
END_TEST

/* =========================== gradients =========================== */

/* The central differences of tu_gradcheck straddle a kink whenever the
   step moves some ReLU (or leaky ReLU) input across zero.  A layer has
   hundreds of such inputs, so that happens for a few parameters at almost
   any seed, and the numeric "gradient" of those parameters is
   meaningless (test_dense gets away with picking seeds: 21 outputs).

   This check is tu_gradcheck with a given step and absolute tolerance
   (relative tolerance 2e-2 as there) that skips the parameters whose +step
   or -step run changes the sign of any ReLU input, and fails if it had to
   skip more than a quarter of them. */

/* The inputs of the graph's ReLUs (for ReLUs fused into convolutions, the
   outputs), and their values after the last run. */
typedef struct kinks {
    int node[64], count;
    int64_t at[65]; /* where each node's rows start in saved */
    float *saved;
} kinks;

static void kinks_find(kinks *k, vae_model *m, int rows)
{
    const vae_graph *g = m->g;
    k->count = 0;
    k->at[0] = 0;
    for (int id = 0; id < g->n_nodes; id++) {
        const node *n = &g->nodes[id];
        int fused = (n->op == OP_CONV2D || n->op == OP_CONV2D_TRANSPOSE) &&
                    (n->iattr[3] == VAE_ACT_RELU || n->iattr[3] == VAE_ACT_LEAKY_RELU);
        int watched = fused ? id : n->in[0]; /* a fused ReLU's output has its input's sign */
        if (!fused && n->op != OP_RELU && n->op != OP_LEAKY_RELU)
            continue;
        ck_assert_int_lt(k->count, 64);
        k->node[k->count] = watched;
        k->at[k->count + 1] = k->at[k->count] + rows * g->nodes[watched].size;
        k->count++;
    }
    k->saved = malloc((size_t)(k->at[k->count] + 1) * sizeof *k->saved);
    for (int i = 0; i < k->count; i++)
        memcpy(k->saved + k->at[i], values(m, k->node[i]),
               (size_t)(k->at[i + 1] - k->at[i]) * sizeof *k->saved);
}

/* Some ReLU input has another sign now than when saved. */
static int kinks_crossed(const kinks *k, vae_model *m)
{
    for (int i = 0; i < k->count; i++)
        for (int64_t j = 0; j < k->at[i + 1] - k->at[i]; j++)
            if ((values(m, k->node[i])[j] > 0.0f) != (k->saved[k->at[i] + j] > 0.0f))
                return 1;
    return 0;
}

static int kinks_crossed_fn(void *k, vae_model *m) { return kinks_crossed(k, m); }

static double gradcheck_kinks(vae_model *m, const float *x, int rows, double step, double atol)
{
    int64_t skipped;
    double worst;
    kinks k;
    tu_objective(m, x, rows);
    kinks_find(&k, m, rows);
    worst = tu_gradcheck_skipping(m, x, rows, step, atol, kinks_crossed_fn, &k, &skipped);
    ck_assert_msg(skipped * 4 <= m->g->n_params, "%lld of %lld parameters straddle a kink",
                  (long long)skipped, (long long)m->g->n_params);
    free(k.saved);
    return worst;
}

/* With tu_gradcheck's step and tolerances. */
#define CHECK_GRADIENT_KINKS(m, x, rows)                                         \
    do {                                                                         \
        double ratio_ = gradcheck_kinks((m), (x), (rows), 1e-3, 2e-3);           \
        ck_assert_msg(ratio_ <= 1.0, "gradient check failed: ratio %g", ratio_); \
    } while (0)

/* A second backward pass gives the same gradient bit for bit: nothing
   accumulates into gradient buffers left over from the previous pass (the
   gradient checks alone run backward only once per model). */
static void expect_repeatable_gradient(vae_model *m, const float *x, int rows)
{
    int64_t n = m->g->n_params;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    tu_gradient(m, x, rows, a);
    tu_gradient(m, x, rows, b);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(a[i] == b[i], "gradient %lld changed on a second pass: %g then %g",
                      (long long)i, a[i], b[i]);
    free(a);
    free(b);
}

enum { IN = 2, ROWS = 3 };

/* x (IN) -> variable v (c*h*w) -> reshape (c, h, w) -> op with weight *w.
   The variable makes the op's input gradient part of the check. */
static vae_graph *variable_image(const geom *q, int *x, int *r)
{
    int v, dims[3] = {q->c, q->h, q->w};
    vae_graph *g = tu_graph(IN, x);
    v = tu_variable(g, *x, q->c * q->h * q->w, "v");
    ck_assert_int_eq(vae_op_reshape(g, v, 3, dims, r), VAE_OK);
    expect_dims(g, *r, q->c, q->h, q->w);
    return g;
}

static const geom GRAD[] = {
    {ROWS, 1, 5, 7, 1, 3, 1, SAME},  {ROWS, 2, 5, 7, 3, 3, 2, SAME},
    {ROWS, 2, 5, 7, 2, 2, 2, VALID}, {ROWS, 3, 4, 6, 2, 1, 1, VALID},
    {ROWS, 2, 6, 5, 2, 3, 3, VALID}, {ROWS, 1, 5, 7, 2, 5, 2, SAME},
    {ROWS, 2, 4, 3, 2, 2, 1, SAME},  {ROWS, 2, 3, 4, 2, 1, 2, VALID},
};
enum { N_GRAD = sizeof GRAD / sizeof *GRAD };

/* conv2d (_i < N_GRAD) or conv2d_transpose: gradients with respect to the
   weights and the input match central differences; the values on the
   variable input match the reference too. */
START_TEST(test_gradient)
{
    int transpose = _i >= N_GRAD, x, r, w, y, oh, ow;
    const geom *q = &GRAD[_i % N_GRAD];
    float in[ROWS * IN];
    double *want, *mag;
    int64_t n;
    vae_graph *g = variable_image(q, &x, &r);
    vae_model *m;
    w = weight(g, transpose, q);
    ck_assert_int_eq(apply(g, transpose, r, w, q, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 600 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    out_hw(transpose, q, &oh, &ow);
    n = (int64_t)ROWS * q->f * oh * ow;
    want = malloc((size_t)n * sizeof *want);
    mag = malloc((size_t)n * sizeof *mag);
    (transpose ? tconv_ref : conv_ref)(q, values(m, r), values(m, w), want, mag);
    for (int64_t i = 0; i < n; i++)
        expect_close(values(m, y)[i], want[i], mag[i], "op", i);
    TU_CHECK_GRADIENT(m, in, ROWS);
    expect_repeatable_gradient(m, in, ROWS);
    free(want);
    free(mag);
    vae_model_free(m);
}
END_TEST

/* One weight used by two convolutions of one input (different strides and
   paddings), and a transpose of the first: gradients accumulate into the
   shared input and weight instead of overwriting. */
START_TEST(test_gradient_shared)
{
    geom q = {ROWS, 2, 5, 6, 2, 3, 1, SAME};
    int x, r, w, y1, y2, y3, s1, s2, s3, s;
    float in[ROWS * IN];
    vae_graph *g = variable_image(&q, &x, &r);
    vae_model *m;
    w = weight(g, 0, &q);
    ck_assert_int_eq(vae_op_conv2d(g, r, w, 3, 1, SAME, &y1), VAE_OK);
    ck_assert_int_eq(vae_op_conv2d(g, r, w, 3, 2, VALID, &y2), VAE_OK);
    /* y1 (2, 5, 6) -> transpose with (2, 2*9) weights: w again */
    ck_assert_int_eq(vae_op_conv2d_transpose(g, y1, w, 3, 2, SAME, &y3), VAE_OK);
    expect_dims(g, y3, 2, 10, 12);
    s1 = tu_weighted_sum(g, y1);
    s2 = tu_weighted_sum(g, y2);
    s3 = tu_weighted_sum(g, y3);
    ck_assert_int_eq(vae_op_add(g, s1, s2, &s), VAE_OK);
    ck_assert_int_eq(vae_op_add(g, s, s3, &s), VAE_OK);
    m = tu_model(g, x, s);
    tu_random(in, ROWS * IN, 700, -2.0f, 2.0f);
    TU_CHECK_GRADIENT(m, in, ROWS);
    expect_repeatable_gradient(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Larger images (28x28, 32 channels on the large side, 5x5 kernel): an
   implementation may process a batch in chunks of images (here about 3 per
   chunk of its scratch), so 7 rows make chunks of different sizes.  The
   values match the reference, and the gradient of 7 rows at once equals
   the mean of the 7 one-row gradients (weights through dW, the input
   through a variable). */
START_TEST(test_chunked)
{
    enum { R = 7 };
    int transpose = _i, x, r, w, y, oh, ow;
    geom q = transpose ? (geom){R, 4, 28, 28, 32, 5, 1, SAME} : (geom){R, 32, 28, 28, 4, 5, 1, SAME};
    float in[R * IN], *batch, *one, *sum;
    double *want, *mag, largest = 0.0;
    int64_t n, np;
    vae_graph *g = variable_image(&q, &x, &r);
    vae_model *m;
    w = weight(g, transpose, &q);
    ck_assert_int_eq(apply(g, transpose, r, w, &q, &y), VAE_OK);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    ck_assert_int_eq(vae_model_set_max_batch(m, R), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    tu_random(in, R * IN, 1500 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, R);
    out_hw(transpose, &q, &oh, &ow);
    n = (int64_t)R * q.f * oh * ow;
    want = malloc((size_t)n * sizeof *want);
    mag = malloc((size_t)n * sizeof *mag);
    (transpose ? tconv_ref : conv_ref)(&q, values(m, r), values(m, w), want, mag);
    for (int64_t i = 0; i < n; i++)
        expect_close(values(m, y)[i], want[i], mag[i], "op", i);
    np = m->g->n_params;
    batch = malloc((size_t)np * sizeof *batch);
    one = malloc((size_t)np * sizeof *one);
    sum = calloc((size_t)np, sizeof *sum);
    tu_gradient(m, in, R, batch);
    for (int row = 0; row < R; row++) {
        tu_gradient(m, in + row * IN, 1, one);
        for (int64_t i = 0; i < np; i++)
            sum[i] += one[i] / R;
    }
    for (int64_t i = 0; i < np; i++)
        largest = fmax(largest, fabs(sum[i]));
    for (int64_t i = 0; i < np; i++)
        ck_assert_msg(fabs(batch[i] - sum[i]) <= 1e-5 * largest,
                      "parameter %lld: %g for the batch, %g from single rows", (long long)i,
                      batch[i], sum[i]);
    free(batch);
    free(one);
    free(sum);
    free(want);
    free(mag);
    vae_model_free(m);
}
END_TEST

/* Per-channel bias: x (B, C, H, W) plus b (C) adds b[c] to every pixel of
   channel c, keeps the dims, and passes gradients to x and b. */
START_TEST(test_bias_per_channel)
{
    static const geom shapes[] = {{ROWS, 3, 4, 5, 0, 1, 1, SAME}, {ROWS, 1, 5, 7, 0, 1, 1, SAME},
                                  {ROWS, 4, 1, 1, 0, 1, 1, SAME}, {ROWS, 2, 1, 6, 0, 1, 1, SAME}};
    const geom *q = &shapes[_i];
    int x, r, b, y, hw = q->h * q->w;
    float in[ROWS * IN];
    vae_graph *g = variable_image(q, &x, &r);
    vae_model *m;
    ck_assert_int_eq(vae_graph_param(g, "b", 1, &q->c, 1.0f, &b), VAE_OK);
    ck_assert_int_eq(vae_op_bias(g, r, b, &y), VAE_OK);
    expect_dims(g, y, q->c, q->h, q->w);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 800 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int64_t i = 0; i < (int64_t)ROWS * q->c * hw; i++)
        expect_close(values(m, y)[i], (double)values(m, r)[i] + values(m, b)[(i / hw) % q->c],
                     0.0, "bias", i);
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* Reshape keeps the elements in order under new dims (3, 2 and 1 of
   them), and passes gradients through unchanged. */
START_TEST(test_reshape)
{
    int x, v, r3, r2, r1, d3[3] = {2, 3, 5}, d2[2] = {6, 5}, d1[1] = {30};
    float in[ROWS * IN];
    vae_graph *g = tu_graph(IN, &x);
    vae_model *m;
    v = tu_variable(g, x, 30, "v");
    ck_assert_int_eq(vae_op_reshape(g, v, 3, d3, &r3), VAE_OK);
    expect_dims(g, r3, 2, 3, 5);
    ck_assert_int_eq(vae_op_reshape(g, r3, 2, d2, &r2), VAE_OK);
    ck_assert_int_eq(g->nodes[r2].ndim, 2);
    ck_assert_int_eq(g->nodes[r2].dims[0], 6);
    ck_assert_int_eq(g->nodes[r2].dims[1], 5);
    ck_assert_int_eq(g->nodes[r2].batched, 1);
    ck_assert_int_eq(vae_op_reshape(g, r2, 1, d1, &r1), VAE_OK);
    ck_assert_int_eq(g->nodes[r1].ndim, 1);
    ck_assert_int_eq(vae_graph_node_size(g, r1), 30);
    /* r3 also feeds a sum of its own, so two gradients meet at it */
    {
        int s1 = tu_weighted_sum(g, r1), s2 = tu_weighted_sum(g, r3), s;
        ck_assert_int_eq(vae_op_add(g, s1, s2, &s), VAE_OK);
        m = tu_model(g, x, s);
    }
    tu_random(in, ROWS * IN, 900, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    for (int i = 0; i < ROWS * 30; i++) {
        ck_assert_float_eq(values(m, r3)[i], values(m, v)[i]);
        ck_assert_float_eq(values(m, r2)[i], values(m, v)[i]);
        ck_assert_float_eq(values(m, r1)[i], values(m, v)[i]);
    }
    TU_CHECK_GRADIENT(m, in, ROWS);
    vae_model_free(m);
}
END_TEST

/* ---- layers ---- */

/* The layer's parameters exist under their documented names and shapes,
   are initialised not all zero and within bound. */
static void expect_layer_params(vae_graph *g, const char *name, int wr, int wc, int nb,
                                double bound, int *w, int *b)
{
    char buf[64];
    double largest = 0.0;
    snprintf(buf, sizeof buf, "%s.w", name);
    *w = vae_graph_find(g, buf);
    snprintf(buf, sizeof buf, "%s.b", name);
    *b = vae_graph_find(g, buf);
    ck_assert_int_ge(*w, 0);
    ck_assert_int_ge(*b, 0);
    ck_assert_int_eq(g->nodes[*w].ndim, 2);
    ck_assert_int_eq(g->nodes[*w].dims[0], wr);
    ck_assert_int_eq(g->nodes[*w].dims[1], wc);
    ck_assert_int_eq(g->nodes[*b].ndim, 1);
    ck_assert_int_eq(g->nodes[*b].dims[0], nb);
    for (int i = 0; i < wr * wc; i++)
        largest = fmax(largest, fabs(param_data(g, *w)[i]));
    for (int i = 0; i < nb; i++)
        largest = fmax(largest, fabs(param_data(g, *b)[i]));
    ck_assert_msg(largest > 0.0 && largest <= bound, "%s: largest |parameter| %g, bound %g", name,
                  largest, bound);
}

/* vae_layer_conv2d / vae_layer_conv2d_transpose = act(op(x, w) + b) for
   every activation (_i = activation, + 6 for the transpose), alternating
   "same" and "valid"; non-square, stride 2, several channels, 3 rows.
   Values against the reference, gradients against central differences. */
START_TEST(test_layer)
{
    int transpose = _i >= 6, x, r, y, w, b, oh, ow;
    vae_activation act = (vae_activation)(_i % 6);
    geom q = transpose ? (geom){ROWS, 2, 3, 4, 3, 3, 2, (_i % 2) ? VALID : SAME}
                       : (geom){ROWS, 2, 5, 7, 3, 3, 2, (_i % 2) ? VALID : SAME};
    float in[ROWS * IN];
    double *want, *mag;
    int64_t n, plane;
    vae_graph *g = variable_image(&q, &x, &r);
    vae_model *m;
    double kk = q.k * q.k;
    if (transpose)
        ck_assert_int_eq(vae_layer_conv2d_transpose(g, r, q.f, q.k, q.s, q.pad, act, "c", &y),
                         VAE_OK);
    else
        ck_assert_int_eq(vae_layer_conv2d(g, r, q.f, q.k, q.s, q.pad, act, "c", &y), VAE_OK);
    out_hw(transpose, &q, &oh, &ow);
    expect_dims(g, y, q.f, oh, ow);
    /* conv2d: +-1/sqrt(C*k*k) as documented; the transpose documents no
       bound, so accept the larger of the two fan-ins' bounds. */
    expect_layer_params(g, "c", transpose ? q.c : q.f, (transpose ? q.f : q.c) * q.k * q.k, q.f,
                        transpose ? 1.0 / sqrt(fmin(q.c, q.f) * kk) : 1.0 / sqrt(q.c * kk), &w,
                        &b);
    m = tu_model(g, x, tu_weighted_sum(g, y));
    tu_random(in, ROWS * IN, 1000 + (uint64_t)_i, -2.0f, 2.0f);
    tu_objective(m, in, ROWS);
    n = (int64_t)ROWS * q.f * oh * ow;
    plane = (int64_t)oh * ow;
    want = malloc((size_t)n * sizeof *want);
    mag = malloc((size_t)n * sizeof *mag);
    (transpose ? tconv_ref : conv_ref)(&q, values(m, r), values(m, w), want, mag);
    for (int64_t i = 0; i < n; i++)
        expect_close(values(m, y)[i], act_ref(act, want[i] + values(m, b)[(i / plane) % q.f]),
                     mag[i] + 1.0, "layer", i);
    CHECK_GRADIENT_KINKS(m, in, ROWS);
    expect_repeatable_gradient(m, in, ROWS);
    free(want);
    free(mag);
    vae_model_free(m);
}
END_TEST

/* =========================== errors =========================== */

/* Refused with either of the two statuses for "cannot be built". */
#define ck_assert_refused(call)                                                          \
    do {                                                                                 \
        vae_status st_ = (call);                                                         \
        ck_assert_msg(st_ == VAE_ERR_SHAPE || st_ == VAE_ERR_ARGUMENT,                   \
                      "%s: status %d, expected SHAPE or ARGUMENT", #call, (int)st_);     \
    } while (0)

/* conv2d and conv2d_transpose refuse weights of the wrong shape, batched
   or computed-batched weights, 1-D and unbatched inputs, kernels and
   strides below 1, unknown paddings, "valid" kernels larger than the
   input (in either direction), kernels whose C*k*k wraps around in 32
   bits, output sizes that overflow, NULL graphs or outputs and unknown
   nodes.  Every refusal leaves out untouched and adds no node. */
START_TEST(test_conv_errors)
{
    int x, x1, xp, xs, xn, w, wt, w_cols, w_rows, w_tcols, w_vec, w_3d, wb, v, y = -7, n;
    int d3[3] = {2, 5, 7}, d_flat[1] = {70}, d_short[3] = {2, 2, 7}, d_narrow[3] = {2, 5, 2};
    int d_w[2] = {3, 18}, d_wb[2] = {3, 18}, d_3d[3] = {3, 2, 9};
    int64_t n_params;
    vae_graph *g = NULL;
    ck_assert_int_eq(vae_graph_create(&g, 3), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 3, d3, &x), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x1", 1, d_flat, &x1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "xs", 3, d_short, &xs), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "xn", 3, d_narrow, &xn), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "xp", 3, d3, 1.0f, &xp), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "w", 2, d_w, 1.0f, &w), VAE_OK); /* (F 3, C 2 * 3*3) */
    wt = param2(g, "wt", 2, 27);                                          /* (C 2, F 3 * 3*3) */
    w_cols = param2(g, "wc", 3, 19);
    w_rows = param2(g, "wr", 3, 27); /* transpose: 3 rows for 2 input channels */
    w_tcols = param2(g, "wtc", 2, 26); /* transpose: 26 is no multiple of 3*3 */
    ck_assert_int_eq(vae_graph_param(g, "wv", 1, (int[]){54}, 1.0f, &w_vec), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "w3", 3, d_3d, 1.0f, &w_3d), VAE_OK);
    v = tu_variable(g, x1, 54, "v");
    ck_assert_int_eq(vae_op_reshape(g, v, 2, d_wb, &wb), VAE_OK); /* batched (3, 18) */
    n = vae_graph_node_count(g);
    n_params = g->n_params;

    /* sanity: the good weights work */
    ck_assert_int_eq(vae_op_conv2d(g, x, w, 3, 2, SAME, &y), VAE_OK);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wt, 3, 2, SAME, &y), VAE_OK);
    n = vae_graph_node_count(g);
    y = -7;

    /* weight shapes */
    ck_assert_int_eq(vae_op_conv2d(g, x, w_cols, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d(g, x, w, 2, 1, SAME, &y), VAE_ERR_SHAPE); /* k 2: 8 cols */
    ck_assert_int_eq(vae_op_conv2d(g, x, w_vec, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d(g, x, w_3d, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d(g, x, wb, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d(g, x, x, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, w_rows, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, w_cols, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, w_tcols, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wt, 2, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, w_vec, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wb, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    /* inputs: 1-D rows, unbatched */
    ck_assert_int_eq(vae_op_conv2d(g, x1, w, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d(g, xp, w, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x1, wt, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, xp, wt, 3, 1, SAME, &y), VAE_ERR_SHAPE);
    /* "valid" kernel taller or wider than the input */
    ck_assert_int_eq(vae_op_conv2d(g, xs, w, 3, 1, VALID, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_conv2d(g, xn, w, 3, 1, VALID, &y), VAE_ERR_SHAPE);
    /* kernel and stride below 1 */
    for (int bad = -2; bad <= 0; bad++) {
        ck_assert_refused(vae_op_conv2d(g, x, w, bad, 1, SAME, &y));
        ck_assert_refused(vae_op_conv2d_transpose(g, x, wt, bad, 1, SAME, &y));
        ck_assert_int_eq(vae_op_conv2d(g, x, w, 3, bad, SAME, &y), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wt, 3, bad, SAME, &y), VAE_ERR_ARGUMENT);
    }
    /* unknown paddings */
    ck_assert_int_eq(vae_op_conv2d(g, x, w, 3, 1, (vae_padding)2, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d(g, x, w, 3, 1, (vae_padding)-1, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wt, 3, 1, (vae_padding)2, &y),
                     VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wt, 3, 1, (vae_padding)-1, &y),
                     VAE_ERR_ARGUMENT);
    /* k = 2^30 + 3: C*k*k = 2 * (2^60 + 6*2^30 + 9) is 18 modulo 2^32, the
       column count of w; an int computation would accept it and read far
       outside the input.  Likewise the transpose's F*k*k. */
    ck_assert_refused(vae_op_conv2d(g, x, w, (1 << 30) + 3, 1, SAME, &y));
    ck_assert_refused(vae_op_conv2d_transpose(g, x, wt, (1 << 30) + 3, 1, SAME, &y));
    ck_assert_refused(vae_op_conv2d(g, x, w, 46341, 1, SAME, &y)); /* k*k > INT_MAX */
    /* transposes whose output size overflows: 5 * 2^29, (5-1) * 2^30 + 3 */
    ck_assert_refused(vae_op_conv2d_transpose(g, x, wt, 3, 1 << 29, SAME, &y));
    ck_assert_refused(vae_op_conv2d_transpose(g, x, wt, 3, 1 << 30, VALID, &y));
    ck_assert_refused(vae_op_conv2d_transpose(g, x, wt, 3, 1 << 16, SAME, &y)); /* 5*7*2^32 */
    /* NULL graph or out, unknown nodes */
    ck_assert_int_eq(vae_op_conv2d(NULL, x, w, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d(g, x, w, 3, 1, SAME, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d(g, 999, w, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d(g, x, 999, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d(g, -1, w, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d(g, x, -1, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d_transpose(NULL, x, wt, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, wt, 3, 1, SAME, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, 999, wt, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_conv2d_transpose(g, x, -1, 3, 1, SAME, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(y, -7);
    ck_assert_int_eq(vae_graph_node_count(g), n);
    ck_assert_int_eq(g->n_params, n_params);
    ck_assert_ptr_nonnull(vae_last_error());
    vae_graph_free(g);
}
END_TEST

/* Sizes that overflow 32-bit arithmetic inside the accepted ranges of
   kernel and stride are refused, rather than wrapping to a small size that
   passes the checks (the graph is only built, nothing is allocated):
   - 2^20 + 1 channels with a 64x64 kernel: C*k*k = 2^32 + 4096, which
     wraps to 4096, the column count of a (1, 4096) weight; the op and the
     layer must refuse it (the true weight would have 2^32 + 4096 columns);
   - a transpose of height 2^26 + 1 at stride 64: "same" 2^32 + 64 wraps to
     64, "valid" (2^26) * 64 + 1 wraps to 1. */
START_TEST(test_int_overflow)
{
    int x_wide, x_tall, w, w1, y = -7, n;
    int d_wide[3] = {(1 << 20) + 1, 1, 1}, d_tall[3] = {1, (1 << 26) + 1, 1};
    int64_t n_params;
    vae_graph *g = NULL;
    ck_assert_int_eq(vae_graph_create(&g, 3), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "wide", 3, d_wide, &x_wide), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "tall", 3, d_tall, &x_tall), VAE_OK);
    w = param2(g, "w", 1, 4096);
    w1 = param2(g, "w1", 1, 1);
    n = vae_graph_node_count(g);
    n_params = g->n_params;
    ck_assert_refused(vae_op_conv2d(g, x_wide, w, 64, 1, SAME, &y));
    ck_assert_refused(vae_layer_conv2d(g, x_wide, 1, 64, 1, SAME, VAE_ACT_NONE, "c", &y));
    ck_assert_refused(vae_op_conv2d_transpose(g, x_tall, w1, 1, 64, SAME, &y));
    ck_assert_refused(vae_op_conv2d_transpose(g, x_tall, w1, 1, 64, VALID, &y));
    ck_assert_refused(vae_layer_conv2d_transpose(g, x_tall, 1, 1, 64, SAME, VAE_ACT_NONE, "t", &y));
    ck_assert_int_eq(y, -7);
    ck_assert_int_eq(vae_graph_node_count(g), n);
    ck_assert_int_eq(g->n_params, n_params);
    vae_graph_free(g);
}
END_TEST

/* reshape refuses another element count, 0 or 4 dims, NULL dims, zero
   and negative dims (even two negatives whose product is right), and bad
   nodes; bias refuses a per-channel vector of the wrong length, a batched
   one, and vectors matching H or W instead of C. */
START_TEST(test_reshape_bias_errors)
{
    int x, v, r, b3, b5, b7, y = -7, n;
    int d3[3] = {2, 5, 7}, bad_count[3] = {3, 5, 5}, four[4] = {1, 2, 5, 7};
    int neg2[2] = {-1, -70}, neg3[3] = {-2, -5, 7}, zero[2] = {0, 70}, big[3] = {70, 1 << 16, 1 << 16};
    vae_graph *g = tu_graph(IN, &x);
    v = tu_variable(g, x, 70, "v");
    ck_assert_int_eq(vae_op_reshape(g, v, 3, d3, &r), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "b3", 1, (int[]){3}, 1.0f, &b3), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "b5", 1, (int[]){5}, 1.0f, &b5), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "b7", 1, (int[]){7}, 1.0f, &b7), VAE_OK);
    n = vae_graph_node_count(g);

    ck_assert_int_eq(vae_op_reshape(g, v, 3, bad_count, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_reshape(g, v, 1, (int[]){71}, &y), VAE_ERR_SHAPE);
    ck_assert_refused(vae_op_reshape(g, v, 4, four, &y));
    ck_assert_refused(vae_op_reshape(g, v, 0, d3, &y));
    ck_assert_refused(vae_op_reshape(g, v, -1, d3, &y));
    ck_assert_refused(vae_op_reshape(g, v, 2, neg2, &y));
    ck_assert_refused(vae_op_reshape(g, v, 3, neg3, &y));
    ck_assert_refused(vae_op_reshape(g, v, 2, zero, &y));
    ck_assert_refused(vae_op_reshape(g, v, 3, big, &y)); /* 70 * 2^32 wraps to 0 in 32 bits */
    ck_assert_int_eq(vae_op_reshape(g, v, 3, NULL, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_reshape(g, v, 3, d3, NULL), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_reshape(NULL, v, 3, d3, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_reshape(g, 999, 3, d3, &y), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_op_reshape(g, -1, 3, d3, &y), VAE_ERR_ARGUMENT);

    ck_assert_int_eq(vae_op_bias(g, r, b3, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bias(g, r, b5, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bias(g, r, b7, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_op_bias(g, r, v, &y), VAE_ERR_SHAPE);
    ck_assert_int_eq(y, -7);
    ck_assert_int_eq(vae_graph_node_count(g), n);
    vae_graph_free(g);
}
END_TEST

/* A layer that fails adds no node and no parameter (its "<name>.w" is not
   left behind), whatever the reason: bad filters, kernel, stride,
   padding or activation, an unbatched or 1-D input, a "valid" kernel
   larger than the input, a NULL out or graph. */
START_TEST(test_layer_errors)
{
    int x, x1, xp, xs, y = -7, n, d3[3] = {2, 5, 7}, d_short[3] = {2, 2, 7};
    int64_t n_params;
    vae_graph *g = NULL;
    ck_assert_int_eq(vae_graph_create(&g, 3), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 3, d3, &x), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x1", 1, (int[]){70}, &x1), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "xs", 3, d_short, &xs), VAE_OK);
    ck_assert_int_eq(vae_graph_param(g, "xp", 3, d3, 1.0f, &xp), VAE_OK);
    n = vae_graph_node_count(g);
    n_params = g->n_params;
    for (int t = 0; t < 2; t++) {
        vae_status (*layer)(vae_graph *, int, int, int, int, vae_padding, vae_activation,
                            const char *, int *) =
            t ? vae_layer_conv2d_transpose : vae_layer_conv2d;
        ck_assert_int_eq(layer(g, x, 0, 3, 1, SAME, VAE_ACT_RELU, "c", &y), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(layer(g, x, -4, 3, 1, SAME, VAE_ACT_RELU, "c", &y), VAE_ERR_ARGUMENT);
        ck_assert_refused(layer(g, x, 4, 0, 1, SAME, VAE_ACT_RELU, "c", &y));
        ck_assert_refused(layer(g, x, 4, -3, 1, SAME, VAE_ACT_RELU, "c", &y));
        ck_assert_refused(layer(g, x, 4, 3, 0, SAME, VAE_ACT_RELU, "c", &y));
        ck_assert_refused(layer(g, x, 4, 3, 1, (vae_padding)7, VAE_ACT_RELU, "c", &y));
        ck_assert_int_eq(layer(g, x, 4, 3, 1, SAME, (vae_activation)6, "c", &y),
                         VAE_ERR_ARGUMENT);
        ck_assert_int_eq(layer(g, x, 4, 3, 1, SAME, (vae_activation)-1, "c", &y),
                         VAE_ERR_ARGUMENT);
        ck_assert_int_eq(layer(g, xp, 4, 3, 1, SAME, VAE_ACT_RELU, "c", &y), VAE_ERR_SHAPE);
        ck_assert_int_eq(layer(g, x1, 4, 3, 1, SAME, VAE_ACT_RELU, "c", &y), VAE_ERR_SHAPE);
        if (!t)
            ck_assert_int_eq(layer(g, xs, 4, 3, 1, VALID, VAE_ACT_RELU, "c", &y), VAE_ERR_SHAPE);
        /* too many parameters: 2 * 3000^2 columns per filter */
        ck_assert_refused(layer(g, x, 4000, 3000, 1, SAME, VAE_ACT_RELU, "c", &y));
        if (t) /* output 5 * 2^29 rows; conv2d's would be 1x1, which is fine */
            ck_assert_refused(layer(g, x, 4, 3, 1 << 29, SAME, VAE_ACT_RELU, "c", &y));
        ck_assert_int_eq(layer(g, x, 4, 3, 1, SAME, VAE_ACT_RELU, "c", NULL), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(layer(NULL, x, 4, 3, 1, SAME, VAE_ACT_RELU, "c", &y), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(layer(g, 999, 4, 3, 1, SAME, VAE_ACT_RELU, "c", &y), VAE_ERR_ARGUMENT);
        ck_assert_int_eq(y, -7);
        ck_assert_int_eq(vae_graph_node_count(g), n);
        ck_assert_int_eq(g->n_params, n_params);
        ck_assert_int_eq(vae_graph_find(g, "c.w"), -1);
        ck_assert_int_eq(vae_graph_find(g, "c.b"), -1);
    }
    /* and a good call still works afterwards; no name gives "w" and "b" */
    ck_assert_int_eq(vae_layer_conv2d(g, x, 4, 3, 2, SAME, VAE_ACT_RELU, NULL, &y), VAE_OK);
    ck_assert_int_ge(vae_graph_find(g, "w"), 0);
    ck_assert_int_ge(vae_graph_find(g, "b"), 0);
    expect_dims(g, y, 4, 3, 4);
    vae_graph_free(g);
}
END_TEST

/* =========================== a convolutional VAE =========================== */

enum { IMG = 8, LATENT = 2, VAE_ROWS = 3 };

/* x (1, 8, 8) -> Conv2D(4, 3, stride 2, same, relu) (4, 4, 4) -> flatten
   -> Dense heads mu, logvar (2) -> z -> Dense(64, relu) -> reshape (4, 4, 4)
   -> Conv2DTranspose(4, 3, stride 2, same, relu) (4, 8, 8) -> Conv2D(1, 3,
   same) logits (1, 8, 8); Bernoulli likelihood. */
static vae_model *conv_vae(vae_objective objective, float beta)
{
    int x, h, flat, mu, lv, z, d, r, t, logits, obj, n = 64, dx[3] = {1, IMG, IMG},
                                                    d3[3] = {4, 4, 4};
    vae_graph *g = NULL;
    vae_model *m = NULL;
    ck_assert_int_eq(vae_graph_create(&g, 2024), VAE_OK);
    ck_assert_int_eq(vae_graph_input(g, "x", 3, dx, &x), VAE_OK);
    ck_assert_int_eq(vae_layer_conv2d(g, x, 4, 3, 2, SAME, VAE_ACT_RELU, "enc", &h), VAE_OK);
    expect_dims(g, h, 4, 4, 4);
    ck_assert_int_eq(vae_op_reshape(g, h, 1, &n, &flat), VAE_OK);
    ck_assert_int_eq(vae_layer_gaussian_mlp(g, flat, 0, VAE_ACT_NONE, LATENT, 0, "q", &mu, &lv,
                                            NULL),
                     VAE_OK);
    ck_assert_int_eq(vae_op_sample_normal(g, mu, lv, &z), VAE_OK);
    ck_assert_int_eq(vae_layer_dense(g, z, 64, VAE_ACT_RELU, "dec", &d), VAE_OK);
    ck_assert_int_eq(vae_op_reshape(g, d, 3, d3, &r), VAE_OK);
    ck_assert_int_eq(vae_layer_conv2d_transpose(g, r, 4, 3, 2, SAME, VAE_ACT_RELU, "up", &t),
                     VAE_OK);
    expect_dims(g, t, 4, IMG, IMG);
    ck_assert_int_eq(vae_layer_conv2d(g, t, 1, 3, 1, SAME, VAE_ACT_NONE, "out", &logits), VAE_OK);
    expect_dims(g, logits, 1, IMG, IMG);
    ck_assert_int_eq(vae_elbo_build(g, x, mu, lv, z, logits, VAE_LIKELIHOOD_BERNOULLI, objective,
                                    beta, &obj),
                     VAE_OK);
    ck_assert_int_eq(vae_model_create(&m, g), VAE_OK);
    /* 4*9+4, 2*(64*2+2), 2*64+64, 4*4*9+4, 4*9+1 */
    ck_assert_int_eq(vae_model_param_count(m), 40 + 260 + 192 + 148 + 37);
    ck_assert_int_eq(vae_model_input_size(m), IMG * IMG);
    ck_assert_int_eq(vae_model_latent_size(m), LATENT);
    return m;
}

static vae_tensor *tensor(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    int64_t dims[4] = {d0, d1, d2, d3};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, ndim, dims), VAE_OK);
    return t;
}

/* Images in [0, 1]: a blurry diagonal bar plus noise, different per row. */
static void images(float *x, int rows, uint64_t seed)
{
    tu_random(x, (int64_t)rows * IMG * IMG, seed, 0.0f, 0.3f);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < IMG; i++)
            x[r * IMG * IMG + i * IMG + (i + r) % IMG] += 0.7f;
}

/* Gradient of the whole model (both convolutions, the transpose, the
   reshapes, the per-channel biases, the ReLUs) against central differences,
   with the Keras objective (pixel mean, beta 5e-4).  Its gradients are
   small (about 1e-4 .. 1e-2) because the reconstruction is divided by 64,
   so the check runs with an absolute tolerance of 1e-4 instead of the
   usual 2e-3, which would hide errors; the objective (about 0.7) resolves
   differences of about 3e-5 at the 1e-3 step.  (The plain ELBO has 64
   times larger gradients but an objective near 47 whose float resolution,
   4e-6 / 2e-3 = 2e-3, is as large as the tolerance.)  Parameters whose
   step crosses a ReLU kink (about one in eight) are skipped. */
START_TEST(test_conv_vae_gradient)
{
    float x[VAE_ROWS * IMG * IMG];
    vae_model *m = conv_vae(VAE_OBJECTIVE_PIXEL_MEAN, 5e-4f);
    double ratio;
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    images(x, VAE_ROWS, 1100);
    ratio = gradcheck_kinks(m, x, VAE_ROWS, 1e-3, 1e-4);
    ck_assert_msg(ratio <= 1.0, "gradient check failed: ratio %g", ratio);
    vae_model_free(m);
}
END_TEST

/* Rows split between 3 threads give the gradient of 1 thread (to rounding),
   and decoding in chunks of 2 rows gives the same bits as in one chunk:
   the convolutions' scratch is per worker and sized for the planned rows. */
START_TEST(test_conv_vae_threads)
{
    enum { R = 7 };
    float x[R * IMG * IMG];
    vae_model *m = conv_vae(VAE_OBJECTIVE_ELBO, 1.0f);
    int64_t n = vae_model_param_count(m);
    float *g1 = malloc((size_t)n * sizeof *g1), *g3 = malloc((size_t)n * sizeof *g3);
    vae_tensor *z = tensor(2, 5, LATENT, 0, 0), *a = tensor(4, 5, 1, IMG, IMG),
               *b = tensor(4, 5, 1, IMG, IMG);
    double largest = 0.0;
    images(x, R, 1200);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    tu_gradient(m, x, R, g1);
    ck_assert_int_eq(vae_model_set_threads(m, 3), VAE_OK);
    ck_assert_int_eq(vae__model_ensure_planned(m, 1), VAE_OK);
    tu_gradient(m, x, R, g3);
    for (int64_t i = 0; i < n; i++)
        largest = fmax(largest, fabs(g1[i]));
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(g1[i] - g3[i]) <= 1e-5 * largest, "gradient %lld: %g (1) vs %g (3)",
                      (long long)i, g1[i], g3[i]);
    tu_random(vae_tensor_data(z), 5 * LATENT, 1201, -2.0f, 2.0f);
    ck_assert_int_eq(vae_model_set_threads(m, 1), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, a), VAE_OK);
    ck_assert_int_eq(vae_model_set_max_batch(m, 2), VAE_OK);
    ck_assert_int_eq(vae_model_decode(m, z, b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(a), vae_tensor_data(b), 5 * IMG * IMG * sizeof(float));
    for (int i = 0; i < 5 * IMG * IMG; i++)
        ck_assert(vae_tensor_data(a)[i] > 0.0f && vae_tensor_data(a)[i] < 1.0f);
    free(g1);
    free(g3);
    vae_tensor_free(z);
    vae_tensor_free(a);
    vae_tensor_free(b);
    vae_model_free(m);
}
END_TEST

/* Train a few steps, save, load: the loaded graph has the same nodes (ops,
   inputs, dims: kernel, stride and padding survive), the same parameters
   bit for bit, and decodes and encodes to the same bits; saving it again
   writes the same bytes. */
START_TEST(test_conv_vae_save_load)
{
    char dir[] = "/tmp/vae_test_ops_conv_XXXXXX", path[64], path2[64];
    float x[6 * IMG * IMG];
    vae_model *m = conv_vae(VAE_OBJECTIVE_PIXEL_MEAN, 5e-4f), *l = NULL;
    vae_optimizer *opt = NULL;
    vae_tensor *xt = tensor(4, 6, 1, IMG, IMG), *z = tensor(2, 5, LATENT, 0, 0);
    vae_tensor *a = tensor(4, 5, 1, IMG, IMG), *b = tensor(4, 5, 1, IMG, IMG);
    vae_tensor *mu_a = tensor(2, 6, LATENT, 0, 0), *mu_b = tensor(2, 6, LATENT, 0, 0);
    const vae_graph *gm, *gl;
    int64_t n = vae_model_param_count(m);
    float *pm = malloc((size_t)n * sizeof *pm), *pl = malloc((size_t)n * sizeof *pl);
    double obj_first = 0, obj;
    FILE *f1, *f2;
    int c1, c2;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/conv.vae", dir);
    snprintf(path2, sizeof path2, "%s/again.vae", dir);
    images(x, 6, 1300);
    ck_assert_int_eq(vae_tensor_copy_from_host(xt, x, 6 * IMG * IMG), VAE_OK);
    ck_assert_int_eq(vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM), VAE_OK);
    ck_assert_int_eq(vae_optimizer_set(opt, VAE_OPT_LEARNING_RATE, 1e-2), VAE_OK);
    for (int s = 0; s < 20; s++) {
        ck_assert_int_eq(vae_model_train_step(m, opt, xt, &obj, NULL), VAE_OK);
        if (s == 0)
            obj_first = obj;
    }
    ck_assert_msg(obj < obj_first, "training did not lower the objective: %g -> %g", obj_first,
                  obj);
    ck_assert_int_eq(vae_model_save(m, NULL, path), VAE_OK);
    ck_assert_int_eq(vae_model_load(&l, path), VAE_OK);

    gm = vae_model_graph(m);
    gl = vae_model_graph(l);
    ck_assert_int_eq(vae_graph_node_count(gl), vae_graph_node_count(gm));
    for (int i = 0; i < vae_graph_node_count(gm); i++) {
        const node *p = &gm->nodes[i], *q = &gl->nodes[i];
        ck_assert_int_eq(q->op, p->op);
        ck_assert_int_eq(q->n_in, p->n_in);
        ck_assert_mem_eq(q->in, p->in, sizeof p->in);
        ck_assert_int_eq(q->ndim, p->ndim);
        ck_assert_mem_eq(q->dims, p->dims, (size_t)p->ndim * sizeof *p->dims);
        ck_assert_int_eq(q->size, p->size);
    }
    ck_assert_int_eq(vae_model_params_get(m, pm, n), VAE_OK);
    ck_assert_int_eq(vae_model_params_get(l, pl, n), VAE_OK);
    ck_assert_mem_eq(pm, pl, (size_t)n * sizeof *pm);

    tu_random(vae_tensor_data(z), 5 * LATENT, 1301, -2.0f, 2.0f);
    ck_assert_int_eq(vae_model_decode(m, z, a), VAE_OK);
    ck_assert_int_eq(vae_model_decode(l, z, b), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(a), vae_tensor_data(b), 5 * IMG * IMG * sizeof(float));
    ck_assert_int_eq(vae_model_encode(m, xt, mu_a, NULL), VAE_OK);
    ck_assert_int_eq(vae_model_encode(l, xt, mu_b, NULL), VAE_OK);
    ck_assert_mem_eq(vae_tensor_data(mu_a), vae_tensor_data(mu_b), 6 * LATENT * sizeof(float));

    ck_assert_int_eq(vae_model_save(l, NULL, path2), VAE_OK);
    f1 = fopen(path, "rb");
    f2 = fopen(path2, "rb");
    ck_assert_ptr_nonnull(f1);
    ck_assert_ptr_nonnull(f2);
    do {
        c1 = fgetc(f1);
        c2 = fgetc(f2);
        ck_assert_int_eq(c1, c2);
    } while (c1 != EOF);
    fclose(f1);
    fclose(f2);
    unlink(path);
    unlink(path2);
    rmdir(dir);
    vae_tensor *ts[] = {xt, z, a, b, mu_a, mu_b};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        vae_tensor_free(ts[i]);
    free(pm);
    free(pl);
    vae_optimizer_free(opt);
    vae_model_free(m);
    vae_model_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_conv");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_output_sizes);
    tcase_add_test(tc, test_output_sizes_keras);
    tcase_add_loop_test(tc, test_forward, 0, 2 * N_FWD);
    tcase_add_test(tc, test_same_padding_side);
    tcase_add_loop_test(tc, test_adjoint, 0, (int)(sizeof ADJ / sizeof *ADJ));
    tcase_add_loop_test(tc, test_gradient, 0, 2 * N_GRAD);
    tcase_add_test(tc, test_gradient_shared);
    tcase_add_loop_test(tc, test_chunked, 0, 2);
    tcase_add_loop_test(tc, test_bias_per_channel, 0, 4);
    tcase_add_test(tc, test_reshape);
    tcase_add_loop_test(tc, test_layer, 0, 12);
    tcase_add_test(tc, test_conv_errors);
    tcase_add_test(tc, test_int_overflow);
    tcase_add_test(tc, test_reshape_bias_errors);
    tcase_add_test(tc, test_layer_errors);
    tcase_add_test(tc, test_conv_vae_gradient);
    tcase_add_test(tc, test_conv_vae_threads);
    tcase_add_test(tc, test_conv_vae_save_load);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
