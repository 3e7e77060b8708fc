/* Convolutions through im2col and the BLAS, and reshape.
 *
 * Layout is NCHW.  A convolution relates a "large" image (the input of
 * conv2d, the output of its transpose) to a "small" one through k x k
 * windows at a stride.  im2col unrolls the large image into
 * cols (C_large*k*k, H_small*W_small); col2im is its adjoint and adds back.
 *
 *   conv2d:     y = W cols(x)             W (F, C*k*k)
 *   transpose:  y = col2im(W^T x)         W (C, F*k*k)
 */
#include "graph.h"

#include <cblas.h>
#include <string.h>

enum { ATTR_KERNEL, ATTR_STRIDE, ATTR_PADDING, ATTR_ACTIVATION };

typedef struct geometry {
    int large_c, large_h, large_w; /* channels and size of the large side */
    int small_c, small_h, small_w;
    int k, stride, pad_top, pad_left;
} geometry;

/* TensorFlow's "same": the small side is ceil(large / stride) and the
   padding that needs, split with the extra at the bottom/right. */
static int same_padding(int large, int small, int k, int stride)
{
    int total = (small - 1) * stride + k - large;
    return total > 0 ? total / 2 : 0;
}

/* The geometry of node id (a conv2d or its transpose) from its input. */
static geometry geometry_of(const node *nodes, int id)
{
    const node *n = &nodes[id], *x = &nodes[n->in[0]];
    const node *large = n->op == OP_CONV2D ? x : n, *small = n->op == OP_CONV2D ? n : x;
    geometry g = {large->dims[0], large->dims[1], large->dims[2],
                  small->dims[0], small->dims[1], small->dims[2],
                  n->iattr[ATTR_KERNEL], n->iattr[ATTR_STRIDE], 0, 0};
    if (n->iattr[ATTR_PADDING] == VAE_PADDING_SAME) {
        g.pad_top = same_padding(g.large_h, g.small_h, g.k, g.stride);
        g.pad_left = same_padding(g.large_w, g.small_w, g.k, g.stride);
    }
    return g;
}

static int64_t taps(const geometry *g) { return (int64_t)g->large_c * g->k * g->k; }
static int64_t positions(const geometry *g) { return (int64_t)g->small_h * g->small_w; }

/* The outputs ox whose input column ox s + kx - pad_left lies inside the
   image: [*lo, *hi). */
static void valid_columns(const geometry *g, int kx, int *lo, int *hi)
{
    int first = g->pad_left - kx, last = g->large_w + g->pad_left - kx; /* ox s in [first, last) */
    *lo = first > 0 ? (first + g->stride - 1) / g->stride : 0;
    *hi = last > 0 ? (last + g->stride - 1) / g->stride : 0;
    *hi = *hi < g->small_w ? *hi : g->small_w;
    *lo = *lo < *hi ? *lo : *hi;
}

/* One row of unrolled columns: dst[ox] = src[ox * stride] inside [lo, hi),
   0 outside.  Rows are short (14 to 64 values), so plain loops beat calls
   to memcpy and memset. */
VAE_HOT static void unroll_row(float *dst, const float *src, int lo, int hi, int width, int stride)
{
    for (int ox = 0; ox < lo; ox++)
        dst[ox] = 0.0f;
    if (stride == 1)
        for (int ox = lo; ox < hi; ox++)
            dst[ox] = src[ox];
    else
        for (int ox = lo; ox < hi; ox++)
            dst[ox] = src[ox * stride];
    for (int ox = hi; ox < width; ox++)
        dst[ox] = 0.0f;
}

/* cols[(c k + ky) k + kx][oy W_s + ox] = image[c][oy s + ky - pt][ox s + kx - pl],
   0 outside; cols' rows are `ld` floats apart. */
static void im2col(const geometry *g, const float *image, float *cols, int64_t ld)
{
    for (int c = 0; c < g->large_c; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                float *row = cols + (((int64_t)c * g->k + ky) * g->k + kx) * ld;
                int lo, hi;
                valid_columns(g, kx, &lo, &hi);
                for (int oy = 0; oy < g->small_h; oy++) {
                    int iy = oy * g->stride + ky - g->pad_top;
                    const float *src = image + ((int64_t)c * g->large_h + iy) * g->large_w + kx - g->pad_left;
                    int inside = iy >= 0 && iy < g->large_h;
                    unroll_row(row + (int64_t)oy * g->small_w, src, inside ? lo : g->small_w,
                               inside ? hi : g->small_w, g->small_w, g->stride);
                }
            }
}

/* The adjoint of im2col: image += cols folded back. */
VAE_HOT static void col2im(const geometry *g, const float *cols, int64_t ld, float *image)
{
    for (int c = 0; c < g->large_c; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                const float *row = cols + (((int64_t)c * g->k + ky) * g->k + kx) * ld;
                int lo, hi;
                valid_columns(g, kx, &lo, &hi);
                for (int oy = 0; oy < g->small_h; oy++) {
                    int iy = oy * g->stride + ky - g->pad_top;
                    const float *src = row + (int64_t)oy * g->small_w;
                    float *dst;
                    if (iy < 0 || iy >= g->large_h)
                        continue;
                    dst = image + ((int64_t)c * g->large_h + iy) * g->large_w + kx - g->pad_left;
                    if (g->stride == 1)
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] += src[ox];
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox * g->stride] += src[ox];
                }
            }
}

/* Images are processed in chunks whose unrolled columns (taps x n*P) and
   channel matrix (small_c x n*P) take about 1 MB: one GEMM per chunk
   instead of one small GEMM per image, with the columns still in the L2
   cache when the GEMM reads them (8 MB chunks ran 10% slower). */
enum { CHUNK_FLOATS = 1 << 18 };

static int chunk_images(const geometry *g, int rows)
{
    int64_t per_image = positions(g) * (taps(g) + g->small_c);
    int64_t n = CHUNK_FLOATS / per_image;
    return (int)(n < 1 ? 1 : n > rows ? rows : n);
}

static int64_t direct_workspace(const geometry *g);
static int direct(const geometry *g);
static int wide(const geometry *g);
static int64_t wide_workspace(const geometry *g, int rows);

static int64_t conv_workspace(const node *nodes, int id, int rows)
{
    geometry g = geometry_of(nodes, id);
    if (nodes[id].op == OP_CONV2D && direct(&g))
        return direct_workspace(&g);
    if (nodes[id].op == OP_CONV2D && wide(&g))
        return wide_workspace(&g, rows);
    return (int64_t)chunk_images(&g, rows) * positions(&g) * (taps(&g) + g.small_c);
}

/* C (m, n) = A (m, k) B (k, n) + beta C, row-major, A or B transposed on request */
static void gemm(int trans_a, int trans_b, int m, int n, int k, const float *a, const float *b,
                 float beta, float *c)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, trans_a ? m : k, b,
                trans_b ? k : n, beta, c, n);
}

/* Between per-image (channels, P) blocks and one (channels, n P) matrix. */
static void gather(const float *images, int n, int channels, int64_t p, float *mat)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < channels; ch++)
            memcpy(mat + (int64_t)ch * n * p + b * p, images + ((int64_t)b * channels + ch) * p,
                   (size_t)p * sizeof *mat);
}

VAE_HOT static void scatter(const float *mat, int n, int channels, int64_t p, float *images, int add)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < channels; ch++) {
            const float *src = mat + (int64_t)ch * n * p + b * p;
            float *dst = images + ((int64_t)b * channels + ch) * p;
            if (add)
                for (int64_t i = 0; i < p; i++)
                    dst[i] += src[i];
            else
                memcpy(dst, src, (size_t)p * sizeof *dst);
        }
}

/* The unrolled columns of n large-side images, side by side. */
static void unroll(const geometry *g, const float *images, int n, float *cols)
{
    int64_t p = positions(g), image = (int64_t)g->large_c * g->large_h * g->large_w;
    for (int b = 0; b < n; b++)
        im2col(g, images + b * image, cols + b * p, n * p);
}

static void fold(const geometry *g, const float *cols, int n, float *images)
{
    int64_t p = positions(g), image = (int64_t)g->large_c * g->large_h * g->large_w;
    for (int b = 0; b < n; b++)
        col2im(g, cols + b * p, n * p, images + b * image);
}

/* Convolutions with very few filters (an output layer to 1 or 3 channels)
   make GEMMs with one to four rows: unrolling the columns costs far more
   than the arithmetic.  At stride 1 these go direct on zero-padded planes:
   with the output as wide as the padded input (Wp = W_out + k - 1, the
   extra k - 1 columns dropped afterwards), each tap is one long AXPY over
   the whole plane. */
enum { DIRECT_MAX_FILTERS = 4 };

static int direct(const geometry *g) { return g->small_c <= DIRECT_MAX_FILTERS && g->stride == 1; }
static int64_t padded_w(const geometry *g) { return g->small_w + g->k - 1; }
static int64_t padded_plane(const geometry *g) { return (g->small_h + g->k - 1) * padded_w(g); }
/* A padded image, plus one row of slack for the last tap's reads. */
static int64_t padded_image(const geometry *g) { return g->large_c * padded_plane(g) + padded_w(g); }
static int64_t direct_workspace(const geometry *g)
{
    return 2 * padded_image(g) + g->small_c * g->small_h * padded_w(g);
}

/* The large-side image into its zero-padded copy, and (unpad_add) the
   padded copy's interior added back into an image. */
static void pad_image(const geometry *g, const float *image, float *padded)
{
    memset(padded, 0, (size_t)padded_image(g) * sizeof *padded);
    for (int c = 0; c < g->large_c; c++)
        for (int y = 0; y < g->large_h; y++)
            memcpy(padded + c * padded_plane(g) + (y + g->pad_top) * padded_w(g) + g->pad_left,
                   image + ((int64_t)c * g->large_h + y) * g->large_w,
                   (size_t)g->large_w * sizeof *padded);
}

static void unpad_add(const geometry *g, const float *padded, float *image)
{
    for (int c = 0; c < g->large_c; c++)
        for (int y = 0; y < g->large_h; y++) {
            const float *src = padded + c * padded_plane(g) + (y + g->pad_top) * padded_w(g) + g->pad_left;
            float *dst = image + ((int64_t)c * g->large_h + y) * g->large_w;
            for (int x = 0; x < g->large_w; x++)
                dst[x] += src[x];
        }
}

/* The output (F, H, W) as wide rows (F, H, Wp), extra columns zero, and back. */
static void widen(const geometry *g, const float *narrow, float *wide)
{
    int64_t wp = padded_w(g);
    for (int64_t r = 0; r < (int64_t)g->small_c * g->small_h; r++)
        for (int64_t x = 0; x < wp; x++)
            wide[r * wp + x] = x < g->small_w ? narrow[r * g->small_w + x] : 0.0f;
}

static void narrow_rows(const geometry *g, const float *wide, float *narrow)
{
    for (int64_t r = 0; r < (int64_t)g->small_c * g->small_h; r++)
        memcpy(narrow + r * g->small_w, wide + r * padded_w(g), (size_t)g->small_w * sizeof *narrow);
}

/* Offset of tap (c, ky, kx) in the padded image. */
static int64_t tap_offset(const geometry *g, int c, int ky, int kx)
{
    return c * padded_plane(g) + ky * padded_w(g) + kx;
}

VAE_HOT static void axpy(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

VAE_HOT static float dot(const float *a, const float *b, int64_t n)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static void direct_forward(const geometry *g, const float *w, const float *x, float *y, float *work)
{
    float *xp = work, *yw = work + 2 * padded_image(g);
    int64_t n = g->small_h * padded_w(g);
    pad_image(g, x, xp);
    memset(yw, 0, (size_t)(g->small_c * n) * sizeof *yw);
    for (int f = 0; f < g->small_c; f++)
        for (int c = 0; c < g->large_c; c++)
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++)
                    axpy(yw + f * n, w[(int64_t)f * taps(g) + (c * g->k + ky) * g->k + kx],
                         xp + tap_offset(g, c, ky, kx), n);
    narrow_rows(g, yw, y);
}

/* dw[f, tap] += dy . shifted x;  dx += w * dy shifted back */
static void direct_backward(const geometry *g, const float *w, const float *x, const float *dy,
                            float *dw, float *dx, float *work)
{
    float *xp = work, *dxp = work + padded_image(g), *dyw = work + 2 * padded_image(g);
    int64_t n = g->small_h * padded_w(g);
    pad_image(g, x, xp);
    widen(g, dy, dyw);
    if (dx)
        memset(dxp, 0, (size_t)padded_image(g) * sizeof *dxp);
    for (int f = 0; f < g->small_c; f++)
        for (int c = 0; c < g->large_c; c++)
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++) {
                    int64_t t = (int64_t)f * taps(g) + (c * g->k + ky) * g->k + kx;
                    if (dw)
                        dw[t] += dot(dyw + f * n, xp + tap_offset(g, c, ky, kx), n);
                    if (dx)
                        axpy(dxp + tap_offset(g, c, ky, kx), w[t], dyw + f * n, n);
                }
    if (dx)
        unpad_add(g, dxp, dx);
}

/* Stride-1 convolutions unroll from zero-padded planes computed "wide":
   output rows as wide as the padded input (Wp = W + k - 1, the extra
   columns dropped), so each tap's columns are one contiguous slice of the
   padded image (a memcpy instead of a loop per output row) and folding
   back is one AXPY per tap.  The GEMMs grow by Wp / W (16/14 on 14x14). */
static int wide(const geometry *g) { return g->stride == 1; }
static int64_t wide_positions(const geometry *g) { return g->small_h * padded_w(g); }

static int wide_chunk(const geometry *g, int rows)
{
    int64_t n = CHUNK_FLOATS / (wide_positions(g) * (taps(g) + g->small_c));
    return (int)(n < 1 ? 1 : n > rows ? rows : n);
}

static int64_t wide_workspace(const geometry *g, int rows)
{
    return (int64_t)wide_chunk(g, rows) * wide_positions(g) * (taps(g) + g->small_c) +
           padded_image(g);
}

/* cols (T, n Pw): image b's tap t is the slice of its padded copy at t. */
static void wide_unroll(const geometry *g, const float *images, int n, float *cols, float *padded)
{
    int64_t pw = wide_positions(g), image = (int64_t)g->large_c * g->large_h * g->large_w;
    for (int b = 0; b < n; b++) {
        pad_image(g, images + b * image, padded);
        for (int c = 0; c < g->large_c; c++)
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++) {
                    int64_t t = ((int64_t)c * g->k + ky) * g->k + kx;
                    memcpy(cols + t * n * pw + b * pw, padded + tap_offset(g, c, ky, kx),
                           (size_t)pw * sizeof *cols);
                }
    }
}

/* images += the columns folded back through the padded planes */
static void wide_fold(const geometry *g, const float *cols, int n, float *images, float *padded)
{
    int64_t pw = wide_positions(g), image = (int64_t)g->large_c * g->large_h * g->large_w;
    for (int b = 0; b < n; b++) {
        memset(padded, 0, (size_t)padded_image(g) * sizeof *padded);
        for (int c = 0; c < g->large_c; c++)
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++) {
                    int64_t t = ((int64_t)c * g->k + ky) * g->k + kx;
                    axpy(padded + tap_offset(g, c, ky, kx), 1.0f, cols + t * n * pw + b * pw, pw);
                }
        unpad_add(g, padded, images + b * image);
    }
}

/* (F, H, W) images <-> a wide (F, n Pw) matrix (extra columns zero) */
static void wide_gather(const geometry *g, const float *images, int n, float *mat)
{
    int64_t pw = wide_positions(g), wp = padded_w(g);
    for (int b = 0; b < n; b++)
        for (int f = 0; f < g->small_c; f++)
            for (int y = 0; y < g->small_h; y++) {
                const float *src = images + (((int64_t)b * g->small_c + f) * g->small_h + y) * g->small_w;
                float *dst = mat + f * n * pw + b * pw + y * wp;
                memcpy(dst, src, (size_t)g->small_w * sizeof *dst);
                memset(dst + g->small_w, 0, (size_t)(wp - g->small_w) * sizeof *dst);
            }
}

static void wide_scatter(const geometry *g, const float *mat, int n, float *images)
{
    int64_t pw = wide_positions(g), wp = padded_w(g);
    for (int b = 0; b < n; b++)
        for (int f = 0; f < g->small_c; f++)
            for (int y = 0; y < g->small_h; y++)
                memcpy(images + (((int64_t)b * g->small_c + f) * g->small_h + y) * g->small_w,
                       mat + f * n * pw + b * pw + y * wp, (size_t)g->small_w * sizeof *images);
}

static void wide_forward(const geometry *g, const float *w, const float *x, int rows, float *y,
                         float *work)
{
    int step = wide_chunk(g, rows);
    int64_t pw = wide_positions(g), in = (int64_t)g->large_c * g->large_h * g->large_w;
    int64_t out = positions(g) * g->small_c;
    for (int b = 0; b < rows; b += step) {
        int k = rows - b < step ? rows - b : step;
        float *cols = work, *mat = work + taps(g) * k * pw, *padded = mat + g->small_c * k * pw;
        wide_unroll(g, x + b * in, k, cols, padded);
        gemm(0, 0, g->small_c, (int)(k * pw), (int)taps(g), w, cols, 0.0f, mat);
        wide_scatter(g, mat, k, y + b * out);
    }
}

static void wide_backward(const geometry *g, const float *w, const float *x, const float *dy,
                          int rows, float *dw, float beta, float *dx, float *work)
{
    int step = wide_chunk(g, rows);
    int64_t pw = wide_positions(g), in = (int64_t)g->large_c * g->large_h * g->large_w;
    int64_t out = positions(g) * g->small_c;
    for (int b = 0; b < rows; b += step) {
        int k = rows - b < step ? rows - b : step;
        float *cols = work, *mat = work + taps(g) * k * pw, *padded = mat + g->small_c * k * pw;
        wide_gather(g, dy + b * out, k, mat);
        if (dw) {
            wide_unroll(g, x + b * in, k, cols, padded);
            gemm(0, 1, g->small_c, (int)taps(g), (int)(k * pw), mat, cols, beta, dw);
            beta = 1.0f;
        }
        if (dx) {
            gemm(1, 0, (int)taps(g), (int)(k * pw), g->small_c, w, mat, 0.0f, cols);
            wide_fold(g, cols, k, dx + b * in, padded);
        }
    }
}

/* Convolution layers fold their bias and activation into the op:
   y = act(conv + b), applied to each output plane while it is in cache,
   and in backward dy is turned into the pre-activation gradient in place
   (the op owns its gradient buffer) before the bias gradient is summed. */
static void bias_activate(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    const float *b = n->in[2] >= 0 ? c->val[n->in[2]] : NULL;
    int64_t plane = (int64_t)n->dims[1] * n->dims[2];
    for (int64_t r = 0; r < (int64_t)c->rows * n->dims[0]; r++) {
        float *y = c->val[id] + r * plane;
        if (b) {
            float br = b[r % n->dims[0]];
            for (int64_t i = 0; i < plane; i++)
                y[i] += br;
        }
        if (n->iattr[ATTR_ACTIVATION] != VAE_ACT_NONE)
            vae__activate((vae_activation)n->iattr[ATTR_ACTIVATION], n->fattr[0], y, y, plane);
    }
}

static void bias_activate_backward(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    float *db = n->in[2] >= 0 ? vae__grad_acc(c, nodes, n->in[2]) : NULL;
    int64_t plane = (int64_t)n->dims[1] * n->dims[2];
    for (int64_t r = 0; r < (int64_t)c->rows * n->dims[0]; r++) {
        float *dy = c->grad[id] + r * plane;
        if (n->iattr[ATTR_ACTIVATION] != VAE_ACT_NONE)
            vae__activation_grad((vae_activation)n->iattr[ATTR_ACTIVATION], n->fattr[0],
                                 c->val[id] + r * plane, dy, dy, plane, 0);
        if (db) {
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < plane; i++)
                sum += dy[i];
            db[r % n->dims[0]] += sum;
        }
    }
}

/* Per chunk of n images: Y (F, nP) = W (F, T) cols (T, nP), then to NCHW. */
static void conv_forward_linear(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    geometry g = geometry_of(nodes, id);
    int step = chunk_images(&g, c->rows);
    int64_t p = positions(&g), in_size = nodes[n->in[0]].size;
    if (direct(&g)) {
        for (int b = 0; b < c->rows; b++)
            direct_forward(&g, c->val[n->in[1]], c->val[n->in[0]] + b * in_size,
                           c->val[id] + b * n->size, c->work);
        return;
    }
    if (wide(&g)) {
        wide_forward(&g, c->val[n->in[1]], c->val[n->in[0]], c->rows, c->val[id], c->work);
        return;
    }
    for (int b = 0; b < c->rows; b += step) {
        int k = c->rows - b < step ? c->rows - b : step;
        float *cols = c->work, *y = c->work + taps(&g) * k * p;
        unroll(&g, c->val[n->in[0]] + b * in_size, k, cols);
        gemm(0, 0, g.small_c, (int)(k * p), (int)taps(&g), c->val[n->in[1]], cols, 0.0f, y);
        scatter(y, k, g.small_c, p, c->val[id] + b * n->size, 0);
    }
}

/* dW (F, T) += dY (F, nP) cols^T;  dx += fold(W^T dY) */
static void conv_backward_linear(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    geometry g = geometry_of(nodes, id);
    int step = chunk_images(&g, c->rows);
    int64_t p = positions(&g), in_size = nodes[n->in[0]].size;
    float beta, *dw, *dx = vae__grad_acc(c, nodes, n->in[0]);
    if (direct(&g)) {
        dw = vae__grad_acc(c, nodes, n->in[1]);
        for (int b = 0; b < c->rows; b++)
            direct_backward(&g, c->val[n->in[1]], c->val[n->in[0]] + b * in_size,
                            c->grad[id] + b * n->size, dw, dx ? dx + b * in_size : NULL, c->work);
        return;
    }
    dw = vae__grad_beta(c, nodes, n->in[1], &beta);
    if (wide(&g)) {
        wide_backward(&g, c->val[n->in[1]], c->val[n->in[0]], c->grad[id], c->rows, dw, beta, dx,
                      c->work);
        return;
    }
    for (int b = 0; b < c->rows; b += step) {
        int k = c->rows - b < step ? c->rows - b : step;
        float *cols = c->work, *dy = c->work + taps(&g) * k * p;
        gather(c->grad[id] + b * n->size, k, g.small_c, p, dy);
        if (dw) {
            unroll(&g, c->val[n->in[0]] + b * in_size, k, cols);
            gemm(0, 1, g.small_c, (int)taps(&g), (int)(k * p), dy, cols, beta, dw);
            beta = 1.0f;
        }
        if (dx) {
            gemm(1, 0, (int)taps(&g), (int)(k * p), g.small_c, c->val[n->in[1]], dy, 0.0f, cols);
            fold(&g, cols, k, dx + b * in_size);
        }
    }
}

/* Per chunk: cols (T, nP) = W^T (T, C) X (C, nP), folded into the output. */
static void transpose_forward_linear(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    geometry g = geometry_of(nodes, id);
    int step = chunk_images(&g, c->rows);
    int64_t p = positions(&g), in_size = nodes[n->in[0]].size;
    memset(c->val[id], 0, (size_t)c->rows * (size_t)n->size * sizeof(float));
    for (int b = 0; b < c->rows; b += step) {
        int k = c->rows - b < step ? c->rows - b : step;
        float *cols = c->work, *x = c->work + taps(&g) * k * p;
        gather(c->val[n->in[0]] + b * in_size, k, g.small_c, p, x);
        gemm(1, 0, (int)taps(&g), (int)(k * p), g.small_c, c->val[n->in[1]], x, 0.0f, cols);
        fold(&g, cols, k, c->val[id] + b * n->size);
    }
}

/* cols = unroll(dy);  dx += W (C, T) cols;  dW (C, T) += X (C, nP) cols^T */
static void transpose_backward_linear(const node *nodes, int id, exec_ctx *c)
{
    const node *n = &nodes[id];
    geometry g = geometry_of(nodes, id);
    int step = chunk_images(&g, c->rows);
    int64_t p = positions(&g), in_size = nodes[n->in[0]].size;
    float beta, *dw = vae__grad_beta(c, nodes, n->in[1], &beta);
    float *dx = vae__grad_acc(c, nodes, n->in[0]);
    for (int b = 0; b < c->rows; b += step) {
        int k = c->rows - b < step ? c->rows - b : step;
        float *cols = c->work, *mat = c->work + taps(&g) * k * p;
        unroll(&g, c->grad[id] + b * n->size, k, cols);
        if (dx) {
            gemm(0, 0, g.small_c, (int)(k * p), (int)taps(&g), c->val[n->in[1]], cols, 0.0f, mat);
            scatter(mat, k, g.small_c, p, dx + b * in_size, 1);
        }
        if (dw) {
            gather(c->val[n->in[0]] + b * in_size, k, g.small_c, p, mat);
            gemm(0, 1, g.small_c, (int)taps(&g), (int)(k * p), mat, cols, beta, dw);
            beta = 1.0f;
        }
    }
}

static void conv_forward(const node *nodes, int id, exec_ctx *c)
{
    conv_forward_linear(nodes, id, c);
    bias_activate(nodes, id, c);
}

static void conv_backward(const node *nodes, int id, exec_ctx *c)
{
    bias_activate_backward(nodes, id, c);
    conv_backward_linear(nodes, id, c);
}

static void transpose_forward(const node *nodes, int id, exec_ctx *c)
{
    transpose_forward_linear(nodes, id, c);
    bias_activate(nodes, id, c);
}

static void transpose_backward(const node *nodes, int id, exec_ctx *c)
{
    bias_activate_backward(nodes, id, c);
    transpose_backward_linear(nodes, id, c);
}

static void reshape_forward(const node *nodes, int id, exec_ctx *c)
{
    memcpy(c->val[id], c->val[nodes[id].in[0]], (size_t)node_count(&nodes[id], c) * sizeof(float));
}

static void reshape_backward(const node *nodes, int id, exec_ctx *c)
{
    int add;
    float *dx = vae__grad_out(c, nodes[id].in[0], &add);
    const float *dy = c->grad[id];
    int64_t count = node_count(&nodes[id], c);
    if (dx && add)
        for (int64_t i = 0; i < count; i++)
            dx[i] += dy[i];
    else if (dx)
        memcpy(dx, dy, (size_t)count * sizeof *dx);
}

const op_def vae__op_conv2d = {"conv2d", 3, conv_forward, conv_backward, conv_workspace};
const op_def vae__op_conv2d_transpose = {"conv2d_transpose", 3, transpose_forward,
                                         transpose_backward, conv_workspace};
const op_def vae__op_reshape = {"reshape", 1, reshape_forward, reshape_backward, NULL};

/* Output height or width of a convolution, or 0 if it has none; in 64
   bits, since (in - 1) * stride + k and in * stride can pass INT_MAX. */
static int64_t output_size(int in, int k, int stride, vae_padding padding, int transposed)
{
    if (transposed)
        return padding == VAE_PADDING_SAME ? (int64_t)in * stride
                                           : (int64_t)(in - 1) * stride + k;
    if (padding == VAE_PADDING_SAME)
        return (in + stride - 1) / stride;
    return in >= k ? (in - k) / stride + 1 : 0;
}

vae_status vae__op_conv(vae_graph *g, int transposed, int x, int w, int b, int kernel, int stride,
                        vae_padding padding, vae_activation act, int *out)
{
    int op = transposed ? OP_CONV2D_TRANSPOSE : OP_CONV2D;
    const char *what = vae__ops[op]->name;
    int filters, id;
    int64_t oh, ow;
    const node *xn, *wn;
    node n = {.op = op, .n_in = 3, .in = {x, w, b, -1}, .batched = 1, .ndim = 3};
    VAE_TRY(vae__graph_expect_batched(g, x, 0, what));
    VAE_TRY(vae__graph_check_node(g, w, what));
    if (!out)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: out is NULL", what);
    if (kernel < 1 || kernel > 64 || stride < 1 || stride > 64 ||
        (padding != VAE_PADDING_VALID && padding != VAE_PADDING_SAME))
        return vae__fail(VAE_ERR_ARGUMENT, "%s: bad kernel %d, stride %d or padding %d", what,
                         kernel, stride, (int)padding);
    xn = &g->nodes[x];
    wn = &g->nodes[w];
    if (xn->ndim != 3)
        return vae__fail(VAE_ERR_SHAPE, "%s: input node %d must have (C, H, W) rows", what, x);
    /* conv2d: (F, C k k); transpose: (C, F k k), C the input's channels */
    if (wn->batched || wn->ndim != 2 || wn->dims[1] % (kernel * kernel) != 0 ||
        (transposed ? wn->dims[0] != xn->dims[0]
                    : wn->dims[1] != (int64_t)xn->dims[0] * kernel * kernel))
        return vae__fail(VAE_ERR_SHAPE, "%s: weight node %d must be an unbatched (%s) matrix "
                         "for %d input channels and kernel %d", what, w,
                         transposed ? "C, F*k*k" : "F, C*k*k", xn->dims[0], kernel);
    filters = transposed ? wn->dims[1] / (kernel * kernel) : wn->dims[0];
    if ((int)act < VAE_ACT_NONE || act > VAE_ACT_SOFTPLUS)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: unknown activation %d", what, (int)act);
    if (b >= 0) {
        VAE_TRY(vae__graph_check_node(g, b, what));
        if (g->nodes[b].batched || g->nodes[b].size != filters)
            return vae__fail(VAE_ERR_SHAPE, "%s: bias node %d must be unbatched with %d values",
                             what, b, filters);
    }
    if (b < -1)
        return vae__fail(VAE_ERR_ARGUMENT, "%s: bias node %d does not exist", what, b);
    n.dims[0] = filters;
    oh = output_size(xn->dims[1], kernel, stride, padding, transposed);
    ow = output_size(xn->dims[2], kernel, stride, padding, transposed);
    if (oh < 1 || ow < 1)
        return vae__fail(VAE_ERR_SHAPE, "%s: a %dx%d input is smaller than the %dx%d kernel",
                         what, xn->dims[1], xn->dims[2], kernel, kernel);
    /* oh, ow <= 2^36 each: compare step by step so the product cannot overflow */
    if (oh > (1 << 30) || ow > (1 << 30) / oh || filters > (1 << 30) / (oh * ow))
        return vae__fail(VAE_ERR_SHAPE, "%s: output too large", what);
    n.dims[1] = (int)oh;
    n.dims[2] = (int)ow;
    n.size = (int64_t)n.dims[0] * n.dims[1] * n.dims[2];
    VAE_TRY(vae__graph_add(g, &n, &id));
    g->nodes[id].iattr[ATTR_KERNEL] = kernel;
    g->nodes[id].iattr[ATTR_STRIDE] = stride;
    g->nodes[id].iattr[ATTR_PADDING] = (int)padding;
    g->nodes[id].iattr[ATTR_ACTIVATION] = (int)act;
    g->nodes[id].fattr[0] = act == VAE_ACT_LEAKY_RELU ? 0.01f : 0.0f;
    *out = id;
    return VAE_OK;
}

VAE_API vae_status vae_op_conv2d(vae_graph *g, int x, int w, int kernel, int stride,
                                 vae_padding padding, int *out)
{
    return vae__op_conv(g, 0, x, w, -1, kernel, stride, padding, VAE_ACT_NONE, out);
}

VAE_API vae_status vae_op_conv2d_transpose(vae_graph *g, int x, int w, int kernel, int stride,
                                           vae_padding padding, int *out)
{
    return vae__op_conv(g, 1, x, w, -1, kernel, stride, padding, VAE_ACT_NONE, out);
}

VAE_API vae_status vae_op_reshape(vae_graph *g, int x, int ndim, const int *dims, int *out)
{
    node n = {.op = OP_RESHAPE, .n_in = 1, .in = {x, -1, -1, -1}, .batched = 1, .ndim = ndim};
    int64_t size = 1;
    VAE_TRY(vae__graph_expect_batched(g, x, 0, "vae_op_reshape"));
    if (ndim < 1 || ndim > VAE_MAX_ROW_DIMS || !dims)
        return vae__fail(VAE_ERR_ARGUMENT, "vae_op_reshape: ndim must be 1 to %d", VAE_MAX_ROW_DIMS);
    for (int k = 0; k < ndim; k++) {
        if (dims[k] < 1 || dims[k] > (1 << 30) / size)
            return vae__fail(VAE_ERR_ARGUMENT, "vae_op_reshape: dimension %d has bad size %d", k, dims[k]);
        size *= dims[k];
        n.dims[k] = dims[k];
    }
    if (size != g->nodes[x].size)
        return vae__fail(VAE_ERR_SHAPE, "vae_op_reshape: %lld elements cannot become %lld",
                         (long long)g->nodes[x].size, (long long)size);
    n.size = size;
    return vae__graph_add(g, &n, out);
}
