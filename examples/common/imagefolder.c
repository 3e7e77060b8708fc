/* A folder of colour photos as square RGB images.  The files are
   untrusted: libjpeg-turbo and libpng (fuzzed continuously, patched by
   Debian) decode them, only after the magic bytes say JPEG or PNG and the
   header's size passes the guard.  The centre square is cropped and
   stb_image_resize scales it.

   Memory: a compressed file may rightly claim far more pixels than it has
   bytes (an 8192x8192 PNG of one plain colour at one bit a pixel deflates
   to about 8 kB), so the bound on what one file costs comes from the
   guard, not from the file's size: at most MAX_SOURCE_PIXELS pixels and
   MAX_SIDE a side.  Decoding one file allocates the RGB image (3 bytes a
   pixel, 192 MiB at the limit), for a JPEG of several scans (progressive)
   libjpeg's coefficients too (2 bytes a pixel for each of at most 3
   components, 384 MiB, plus a few percent of padding to whole blocks),
   and for a PNG two rows of at most 8 bytes a pixel (1 MiB): about 600 MiB
   at most, freed before the next file.  The pages of the large buffers
   are touched only as rows decode, so a short file that lies costs
   address space rather than memory.  The fuzz target
   (tests/fuzz/fuzz_images.c) builds this file with a smaller
   MAX_SOURCE_PIXELS, so that libFuzzer's -malloc_limit_mb catches any
   allocation the guard does not bound. */
#include "imagefolder.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE */
#include <png.h>
/* Declarations only: Debian's libstb.so holds the implementation. */
#include <stb/stb_image_resize.h>

#define MAX_SIZE 4096
/* Larger photos are skipped rather than decoded (192 MiB of RGB). */
#ifndef MAX_SOURCE_PIXELS
#define MAX_SOURCE_PIXELS ((unsigned long long)1 << 26)
#endif
/* About JPEG's own limit (65500).  libpng keeps two rows of up to 8 bytes
   a pixel: without it, 1 GiB for a PNG of one row of 64 megapixels. */
#define MAX_SIDE 65535u
/* Every progressive scan revisits the whole image, so a small file with
   thousands of scans would decode for minutes.  libjpeg's own progressive
   encoder writes 10 scans; tuned encoders a few dozen. */
#define MAX_JPEG_SCANS 100

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
            strcasecmp(dot, ".png") == 0);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* dir + "/" + name, malloc'ed; NULL when out of memory. */
static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir), m = strlen(name);
    int slash = n > 0 && dir[n - 1] != '/';
    char *path = malloc(n + (size_t)slash + m + 1);
    if (path) {
        memcpy(path, dir, n);
        if (slash)
            path[n] = '/';
        memcpy(path + n + (size_t)slash, name, m + 1);
    }
    return path;
}

/* The names of the regular image files in dir, sorted, into *names (NULL
   when there are none) and *count.  Returns 0, or -1 after a message. */
static int list_images(const char *dir, char ***names, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **list = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (!is_image_name(e->d_name))
            continue;
        char *path = join(dir, e->d_name);
        struct stat st;
        if (!path) {
            rc = -1;
        } else if (stat(path, &st) != 0) {
            fprintf(stderr, "skipping %s: %s\n", path, strerror(errno));
        } else if (S_ISREG(st.st_mode)) {
            if (n == cap) {
                /* The doubling must not wrap (memory runs out long before). */
                int next = cap == 0 ? 256 : cap <= INT_MAX / 2 ? 2 * cap : 0;
                char **grown = next ? realloc(list, (size_t)next * sizeof *list) : NULL;
                if (grown) {
                    list = grown;
                    cap = next;
                } else {
                    rc = -1;
                }
            }
            if (rc == 0 && (list[n] = strdup(e->d_name)) != NULL)
                n++;
            else
                rc = -1;
        }
        free(path);
    }
    if (rc == 0 && errno != 0) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        rc = -1;
    } else if (rc != 0) {
        fprintf(stderr, "%s: out of memory while listing the folder\n", dir);
    }
    closedir(d);
    if (rc != 0) {
        while (n > 0)
            free(list[--n]);
        free(list);
        return -1;
    }
    if (n > 1)
        qsort(list, (size_t)n, sizeof *list, compare_names);
    *names = list;
    *count = n;
    return 0;
}

/* A decoded photo: interleaved RGB, width * height * 3 bytes. */
typedef struct picture {
    unsigned width, height;
    uint8_t *rgb;  /* malloc'ed; the caller frees it, also after a failure */
    char why[80];  /* why the file was refused */
} picture;

static int refuse(picture *pic, const char *why)
{
    snprintf(pic->why, sizeof pic->why, "%s", why);
    return -1;
}

/* The guard on the header's size, before anything is allocated.  The
   division keeps the product from overflowing whatever the header says. */
static int check_size(picture *pic, unsigned long long width, unsigned long long height)
{
    if (width < 1 || height < 1) {
        snprintf(pic->why, sizeof pic->why, "no pixels (%llux%llu)", width, height);
        return -1;
    }
    if (width > MAX_SOURCE_PIXELS / height) {
        snprintf(pic->why, sizeof pic->why, "too large (%llux%llu, over %llu megapixels)",
                 width, height, MAX_SOURCE_PIXELS >> 20);
        return -1;
    }
    if (width > MAX_SIDE || height > MAX_SIDE) {
        snprintf(pic->why, sizeof pic->why, "too large (%llux%llu, over %u pixels a side)",
                 width, height, MAX_SIDE);
        return -1;
    }
    pic->width = (unsigned)width;
    pic->height = (unsigned)height;
    return 0;
}

/* Room for the decoded image: at most MAX_SOURCE_PIXELS * 3 bytes. */
static int alloc_rgb(picture *pic)
{
    pic->rgb = malloc((size_t)pic->width * pic->height * 3);
    return pic->rgb ? 0 : refuse(pic, "out of memory");
}

/* ---- JPEG (libjpeg-turbo) ---- */

typedef struct jpeg_guard {
    struct jpeg_error_mgr errors; /* first: libjpeg hands back its address */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    /* The reason to give after the jump; changed after setjmp, so volatile. */
    const char *volatile why;
} jpeg_guard;

/* libjpeg's default error_exit calls exit(): jump back instead. */
static void jpeg_fail(j_common_ptr cinfo)
{
    longjmp(((jpeg_guard *)(void *)cinfo->err)->jump, 1);
}

/* A warning (level -1) means corrupt data that libjpeg would paper over,
   a truncated file showing up gray at the bottom, say: refuse the file.
   Trace messages (level >= 0) are dropped. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_fail(cinfo);
}

static void jpeg_progress(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->progressive_mode && d->input_scan_number > MAX_JPEG_SCANS) {
        ((jpeg_guard *)(void *)cinfo->err)->why = "too many progressive scans";
        jpeg_fail(cinfo);
    }
}

static int decode_jpeg(FILE *f, picture *pic)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_guard guard = {.why = "corrupt JPEG header"};
    cinfo.err = jpeg_std_error(&guard.errors);
    guard.errors.error_exit = jpeg_fail;
    guard.errors.emit_message = jpeg_message;
    guard.progress.progress_monitor = jpeg_progress;
    if (setjmp(guard.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return refuse(pic, guard.why);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &guard.progress;
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    int rc = check_size(pic, cinfo.image_width, cinfo.image_height);
    /* libjpeg converts these to RGB; Adobe's CMYK would need guessing. */
    if (rc == 0 && cinfo.jpeg_color_space != JCS_GRAYSCALE &&
        cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_RGB)
        rc = refuse(pic, "CMYK JPEG, not supported");
    if (rc != 0) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB;
    guard.why = "corrupt JPEG data";
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != pic->width || cinfo.output_height != pic->height ||
        cinfo.output_components != 3)
        jpeg_fail((j_common_ptr)&cinfo);
    if (alloc_rgb(pic) != 0) {
        guard.why = "out of memory";
        jpeg_fail((j_common_ptr)&cinfo);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pic->rgb + (size_t)cinfo.output_scanline * pic->width * 3;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1)
            jpeg_fail((j_common_ptr)&cinfo);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

/* ---- PNG (libpng) ---- */

/* libpng's default error handler prints; the caller names the file instead. */
static void png_fail(png_structp png, png_const_charp message)
{
    (void)message;
    png_longjmp(png, 1);
}

/* Warnings (an odd colour profile, say) do not harm the pixels. */
static void png_ignore(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static int decode_png(FILE *f, picture *pic)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_fail, png_ignore);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return refuse(pic, "out of memory");
    }
    const char *volatile why = "corrupt PNG header"; /* see jpeg_guard */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return refuse(pic, why);
    }
    /* Our guard, checked before, decides the size, not libpng's 1e6 limit. */
    png_set_user_limits(png, MAX_SIDE, MAX_SIDE);
    /* Only IHDR, PLTE, tRNS, IDAT and IEND make the pixels (no gamma or
       colour management here): skip the others unread, text and colour
       profiles that libpng would otherwise inflate and keep. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_init_io(png, f);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != pic->width ||
        png_get_image_height(png, info) != pic->height)
        png_error(png, "IHDR differs from the checked one");
    /* Any PNG to 8-bit RGB: palette and gray expand, alpha is dropped
       without blending (like stb_image's 3-channel load), 16 bits keep the
       high byte. */
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = (size_t)pic->width * 3;
    if (png_get_rowbytes(png, info) != stride)
        png_error(png, "not 8-bit RGB after the transforms");
    why = "corrupt PNG data";
    if (alloc_rgb(pic) != 0) {
        why = "out of memory";
        png_error(png, why);
    }
    /* Row by row: an array of row pointers would cost 8 bytes a row. */
    for (int pass = 0; pass < passes; pass++)
        for (size_t y = 0; y < pic->height; y++)
            png_read_row(png, pic->rgb + y * stride, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* ---- choosing the decoder ---- */

static unsigned long big_endian32(const uint8_t *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* The first bytes choose the decoder, whatever the file's name says: a
   BMP named .jpg must not reach any decoder.  A PNG's size is checked from
   its IHDR, which must come first, before libpng even starts. */
static int decode(FILE *f, picture *pic)
{
    uint8_t head[24];
    size_t got = fread(head, 1, sizeof head, f);
    rewind(f);
    if (got == 0)
        return refuse(pic, ferror(f) ? "read error" : "empty file");
    if (got >= 3 && memcmp(head, "\xFF\xD8\xFF", 3) == 0)
        return decode_jpeg(f, pic);
    if (got < 8 || memcmp(head, "\x89PNG\r\n\x1a\n", 8) != 0)
        return refuse(pic, "not a JPEG or PNG image");
    if (got < 24 || memcmp(head + 8, "\0\0\0\15IHDR", 8) != 0)
        return refuse(pic, "corrupt PNG header");
    if (check_size(pic, big_endian32(head + 16), big_endian32(head + 20)) != 0)
        return -1;
    return decode_png(f, pic);
}

/* The centre square of pic, resized into rgb (size * size * 3). */
static int crop_and_resize(const picture *pic, int size, uint8_t *rgb)
{
    unsigned side = pic->width < pic->height ? pic->width : pic->height;
    size_t stride = (size_t)pic->width * 3;
    const uint8_t *square = pic->rgb + (size_t)(pic->height - side) / 2 * stride +
                            (size_t)(pic->width - side) / 2 * 3;
    /* stb_image_resize filters with Catmull-Rom to enlarge and Mitchell to
       shrink; Mitchell would blur even at the same size, so copy then. */
    if (side == (unsigned)size) {
        for (size_t y = 0; y < side; y++)
            memcpy(rgb + y * side * 3, square + y * stride, (size_t)side * 3);
        return 0;
    }
    /* side <= 8192 and stride <= 3 * 65535 by the guard: both fit in int. */
    int ok = stbir_resize_uint8(square, (int)side, (int)side, (int)stride, rgb, size, size, 0, 3);
    return ok ? 0 : -1;
}

/* Decode path, crop its centre square, resize it into rgb (size*size*3
   interleaved, scratch) and store it channel-major in dst.
   Returns 0, or -1 after a "skipping" line on stderr. */
static int load_one(const char *path, int size, uint8_t *rgb, uint8_t *dst)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "skipping %s: %s\n", path, strerror(errno));
        return -1;
    }
    picture pic = {0};
    int rc = decode(f, &pic);
    fclose(f);
    if (rc == 0 && crop_and_resize(&pic, size, rgb) != 0)
        rc = refuse(&pic, "out of memory while resizing");
    free(pic.rgb);
    if (rc != 0) {
        fprintf(stderr, "skipping %s: %s\n", path, pic.why);
        return -1;
    }
    size_t plane = (size_t)size * (size_t)size;
    for (size_t p = 0; p < plane; p++)
        for (size_t c = 0; c < 3; c++)
            dst[c * plane + p] = rgb[p * 3 + c];
    return 0;
}

int ex_load_image_folder_limit(const char *dir, int size, int limit, ex_image_set *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || !dir || size < 1 || size > MAX_SIZE || limit < 0) {
        fprintf(stderr, "ex_load_image_folder: bad arguments (%s, size %d, limit %d)\n",
                dir ? dir : "(null)", size, limit);
        return -1;
    }
    char **names;
    int n;
    if (list_images(dir, &names, &n) != 0)
        return -1;
    if (n == 0) {
        fprintf(stderr, "%s: no .jpg, .jpeg or .png files in the folder\n", dir);
        return -1;
    }
    int want = limit > 0 && limit < n ? limit : n;
    size_t image_bytes = 3 * (size_t)size * (size_t)size;
    /* The product cannot wrap where size_t has 64 bits, but can in 32. */
    int fits = (size_t)want <= SIZE_MAX / image_bytes;
    uint8_t *pixels = fits ? malloc((size_t)want * image_bytes) : NULL;
    uint8_t *rgb = malloc(image_bytes);
    int count = 0, i = 0, failed = !pixels || !rgb;
    if (failed)
        fprintf(stderr, "%s: out of memory for %d images of %dx%d\n", dir, want, size, size);
    /* The names of the images that load move to the front of names. */
    for (; !failed && i < n && count < want; i++) {
        char *path = join(dir, names[i]);
        if (!path) {
            fprintf(stderr, "%s: out of memory\n", dir);
            failed = 1;
            break;
        }
        if (load_one(path, size, rgb, pixels + (size_t)count * image_bytes) == 0)
            names[count++] = names[i];
        else
            free(names[i]);
        free(path);
    }
    free(rgb);
    for (int j = i; j < n; j++) /* not visited: the limit was reached */
        free(names[j]);
    if (!failed && count == 0) {
        fprintf(stderr, "%s: none of the %d image files could be read\n", dir, n);
        failed = 1;
    }
    if (failed) {
        for (int j = 0; j < count; j++)
            free(names[j]);
        free(names);
        free(pixels);
        return -1;
    }
    /* Give back the room of skipped images; failing to shrink is harmless. */
    uint8_t *fit = realloc(pixels, (size_t)count * image_bytes);
    char **fit_names = realloc(names, (size_t)count * sizeof *names);
    out->count = count;
    out->size = size;
    out->pixels = fit ? fit : pixels;
    out->names = fit_names ? fit_names : names;
    return 0;
}

int ex_load_image_folder(const char *dir, int size, ex_image_set *out)
{
    return ex_load_image_folder_limit(dir, size, 0, out);
}

int ex_image_set_split(ex_image_set *set, int every, ex_image_set *test)
{
    if (!set || !test || every < 2 || set->count < every) {
        fprintf(stderr, "ex_image_set_split: cannot split 1 image in %d off %d "
                "(need 2 <= every <= count)\n", every, set ? set->count : 0);
        return -1;
    }
    int ntest = set->count / every, kept = 0, moved = 0;
    size_t image_bytes = 3 * (size_t)set->size * (size_t)set->size;
    ex_image_set t = {ntest, set->size, malloc((size_t)ntest * image_bytes),
                      malloc((size_t)ntest * sizeof(char *))};
    if (!t.pixels || !t.names) {
        fprintf(stderr, "ex_image_set_split: out of memory for %d test images\n", ntest);
        free(t.pixels);
        free(t.names);
        return -1;
    }
    for (int i = 0; i < set->count; i++) {
        const uint8_t *src = set->pixels + (size_t)i * image_bytes;
        if (i % every == every - 1) {
            memcpy(t.pixels + (size_t)moved * image_bytes, src, image_bytes);
            t.names[moved++] = set->names[i];
        } else {
            if (kept != i)
                memcpy(set->pixels + (size_t)kept * image_bytes, src, image_bytes);
            set->names[kept++] = set->names[i];
        }
    }
    set->count = kept;
    uint8_t *fit = realloc(set->pixels, (size_t)kept * image_bytes);
    if (fit)
        set->pixels = fit;
    *test = t;
    return 0;
}

void ex_image_set_free(ex_image_set *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->count; i++)
        free(set->names ? set->names[i] : NULL);
    free(set->names);
    free(set->pixels);
    memset(set, 0, sizeof *set);
}
