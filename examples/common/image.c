/* PNG output with libpng: single images and grids of samples. */
#include "excommon.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

/* Largest picture we agree to build, in bytes; far above any sane grid. */
#define EX_MAX_PNG_BYTES ((size_t)1 << 30)

/* path + ".tmp", malloc'ed; NULL after a message when out of memory. */
static char *tmp_path(const char *path)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (!tmp) {
        fprintf(stderr, "%s: out of memory\n", path);
        return NULL;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    return tmp;
}

/* Encode the rows into f.  libpng reports errors by longjmp, so this
   function owns the setjmp and allocates nothing that could leak. */
static int encode_png(FILE *f, const uint8_t *pixels, int width, int height, int channels)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) { /* libpng already printed why */
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int ex_write_png(const char *path, const uint8_t *pixels, int width, int height,
                 int channels)
{
    if (!path || !pixels || width <= 0 || height <= 0 || (channels != 1 && channels != 3)) {
        fprintf(stderr, "ex_write_png: bad arguments (%dx%d, %d channels)\n", width,
                height, channels);
        return -1;
    }
    char *tmp = tmp_path(path);
    if (!tmp)
        return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = encode_png(f, pixels, width, height, channels);
    /* fclose can be the first to see a full disk, so check it too. */
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "%s: could not write the PNG\n", tmp);
        rc = -1;
    } else if (rename(tmp, path) != 0) {
        fprintf(stderr, "%s: cannot rename to %s: %s\n", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        remove(tmp);
    free(tmp);
    return rc;
}

int ex_encode_png(const uint8_t *pixels, int width, int height, int channels,
                  unsigned char **png, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    if (!pixels || !png || !len || width <= 0 || height <= 0 || (channels != 1 && channels != 3))
        return -1;
    /* A memory stream lets the file writer's code serve both. */
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return -1;
    int rc = encode_png(f, pixels, width, height, channels);
    if (fclose(f) != 0 || rc != 0) {
        free(buf);
        return -1;
    }
    *png = (unsigned char *)buf;
    *len = size;
    return 0;
}

/* [0,1] -> 0..255, clamping; NaN (which fails every comparison) gives 0. */
static uint8_t to_byte(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 1.0f)
        return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

/* Copy image `img` (C,H,W floats) into its tile of the interleaved canvas. */
static void blit_tile(uint8_t *canvas, size_t canvas_w, const float *img, int channels,
                      int height, int width, int x0, int y0, int scale)
{
    size_t plane = (size_t)height * (size_t)width;
    for (int y = 0; y < height * scale; y++) {
        uint8_t *row = canvas + ((size_t)(y0 + y) * canvas_w + (size_t)x0) * (size_t)channels;
        for (int x = 0; x < width * scale; x++) {
            size_t src = (size_t)(y / scale) * (size_t)width + (size_t)(x / scale);
            for (int c = 0; c < channels; c++)
                row[(size_t)x * (size_t)channels + (size_t)c] = to_byte(img[(size_t)c * plane + src]);
        }
    }
}

uint8_t *ex_grid_pixels(const float *images, int count, int channels, int height, int width,
                        int cols, int pad, int scale, int *out_width, int *out_height)
{
    if (!images || count <= 0 || (channels != 1 && channels != 3) || height <= 0 ||
        width <= 0 || cols <= 0 || pad < 0 || scale <= 0) {
        fprintf(stderr, "ex_grid_pixels: bad arguments\n");
        return NULL;
    }
    if (cols > count)
        cols = count;
    int rows = (count + cols - 1) / cols;
    /* Sizes in double first, so absurd arguments cannot overflow an int. */
    double tile_w = (double)width * scale, tile_h = (double)height * scale;
    double cw = cols * tile_w + (cols + 1.0) * pad, ch = rows * tile_h + (rows + 1.0) * pad;
    if (cw * ch * channels > (double)EX_MAX_PNG_BYTES) {
        fprintf(stderr, "a %.0fx%.0f grid is too large\n", cw, ch);
        return NULL;
    }
    size_t canvas_w = (size_t)cw, canvas_h = (size_t)ch;
    uint8_t *canvas = malloc(canvas_w * canvas_h * (size_t)channels);
    if (!canvas) {
        fprintf(stderr, "a %zux%zu grid: out of memory\n", canvas_w, canvas_h);
        return NULL;
    }
    /* Mid-gray separators stand out against both black and white digits. */
    memset(canvas, 128, canvas_w * canvas_h * (size_t)channels);
    size_t image_size = (size_t)channels * (size_t)height * (size_t)width;
    for (int i = 0; i < count; i++) {
        int x0 = pad + (i % cols) * (int)tile_w + (i % cols) * pad;
        int y0 = pad + (i / cols) * (int)tile_h + (i / cols) * pad;
        blit_tile(canvas, canvas_w, images + (size_t)i * image_size, channels, height, width,
                  x0, y0, scale);
    }
    *out_width = (int)canvas_w;
    *out_height = (int)canvas_h;
    return canvas;
}

int ex_write_grid_png(const char *path, const float *images, int count, int channels,
                      int height, int width, int cols, int pad, int scale)
{
    int canvas_w, canvas_h;
    uint8_t *canvas = path ? ex_grid_pixels(images, count, channels, height, width, cols, pad,
                                            scale, &canvas_w, &canvas_h)
                           : NULL;
    if (!canvas) {
        fprintf(stderr, "ex_write_grid_png: no grid for %s\n", path ? path : "(null)");
        return -1;
    }
    int rc = ex_write_png(path, canvas, canvas_w, canvas_h, channels);
    free(canvas);
    return rc;
}
