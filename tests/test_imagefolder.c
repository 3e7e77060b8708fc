/* The image-folder loader of the examples (examples/common/imagefolder.c):
   listing and order, centre crop and resize, channel-major layout, skipped
   files, limits, the test split, the error cases, and hostile files (other
   formats behind a .jpg or .png name, lying headers, corrupt data). */
#include "excommon.h"
#include "imagefolder.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <jpeglib.h> /* after stdio.h: it uses FILE */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH_LEN 512

static char tmpdir[64];

/* dir + "/" + name into buf, which has PATH_LEN bytes; returns buf. */
static char *join(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, PATH_LEN, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_LEN)
        abort();
    return buf;
}

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/vae_test_imagefolder_XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
}

/* Removes path and, if it is a folder, everything in it. */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[PATH_LEN];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        join(sub, path, e->d_name);
        remove_tree(sub);
    }
    if (d) {
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void remove_tmpdir(void)
{
    remove_tree(tmpdir);
}

/* tmpdir/name in a static buffer per slot. */
static const char *path_of(int slot, const char *name)
{
    static char paths[3][PATH_LEN];
    return join(paths[slot], tmpdir, name);
}

/* A fresh folder tmpdir/name; returns its path (slot 0). */
static const char *make_folder(const char *name)
{
    const char *dir = path_of(0, name);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    return dir;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* dir/name as a w x h PNG, every pixel `rgb` except the first and last
   columns and rows, which get `edge` (so only the centre square is plain
   when the image is not square). */
static void write_framed_png(const char *dir, const char *name, int w, int h,
                             const uint8_t rgb[3], const uint8_t edge[3])
{
    char path[PATH_LEN];
    uint8_t px[64 * 64 * 3];
    ck_assert_int_le(w * h, 64 * 64);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int border = (w > h && (x == 0 || x == w - 1)) || (h > w && (y == 0 || y == h - 1));
            memcpy(px + (y * w + x) * 3, border ? edge : rgb, 3);
        }
    join(path, dir, name);
    ck_assert_int_eq(ex_write_png(path, px, w, h, 3), 0);
}

/* Runs the loader with stderr going to tmpdir/stderr.txt; returns its rc
   and leaves what was printed in `log`. */
static int load_capturing(const char *dir, int size, int limit, ex_image_set *set,
                          char *log, size_t log_size)
{
    const char *log_path = path_of(2, "stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    int rc = ex_load_image_folder_limit(dir, size, limit, set);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(log_path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(log, 1, log_size - 1, f);
    log[n] = '\0';
    fclose(f);
    unlink(log_path);
    return rc;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Byte (c, y, x) of image i. */
static uint8_t at(const ex_image_set *s, int i, int c, int y, int x)
{
    return s->pixels[(((size_t)i * 3 + (size_t)c) * (size_t)s->size + (size_t)y) * (size_t)s->size +
                     (size_t)x];
}

static void assert_plain(const ex_image_set *s, int i, const uint8_t rgb[3])
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < s->size; y++)
            for (int x = 0; x < s->size; x++)
                ck_assert_msg(at(s, i, c, y, x) == rgb[c],
                              "%s: (c %d, y %d, x %d) is %d, not %d", s->names[i], c, y, x,
                              at(s, i, c, y, x), rgb[c]);
}

static const uint8_t GREEN[3] = {10, 200, 30}, RED[3] = {250, 5, 0}, BLUE[3] = {0, 0, 255},
                     TEAL[3] = {20, 120, 140}, WHITE[3] = {255, 255, 255};

/* ---- Files made byte by byte, or with libjpeg and libpng directly ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* The CRC of PNG chunks (ISO 3309), bit by bit. */
static uint32_t png_crc(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* dir/name: a PNG signature, an IHDR (8-bit RGB) claiming w x h with a
   correct CRC, and IEND: no image data at all. */
static void write_png_header_only(const char *dir, const char *name, uint32_t w, uint32_t h)
{
    uint8_t file[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t *ihdr = file + 8, *iend = file + 8 + 25;
    put_be32(ihdr, 13);
    memcpy(ihdr + 4, "IHDR", 4);
    put_be32(ihdr + 8, w);
    put_be32(ihdr + 12, h);
    ihdr[16] = 8; /* bit depth */
    ihdr[17] = 2; /* RGB */
    put_be32(ihdr + 21, png_crc(ihdr + 4, 17));
    memcpy(iend + 4, "IEND", 4);
    put_be32(iend + 8, png_crc(iend + 4, 4));
    char path[PATH_LEN];
    write_bytes(join(path, dir, name), file, sizeof file);
}

/* dir/name: a 54-byte BMP header (24 bits a pixel) of w x h and no pixels;
   a negative h means rows stored top-down. */
static void write_bmp_header(const char *dir, const char *name, int32_t w, int32_t h)
{
    uint8_t bmp[54] = {'B', 'M'};
    put_le32(bmp + 2, sizeof bmp);  /* file size */
    put_le32(bmp + 10, sizeof bmp); /* offset of the pixels */
    put_le32(bmp + 14, 40);         /* BITMAPINFOHEADER */
    put_le32(bmp + 18, (uint32_t)w);
    put_le32(bmp + 22, (uint32_t)h);
    bmp[26] = 1;  /* planes */
    bmp[28] = 24; /* bits a pixel */
    char path[PATH_LEN];
    write_bytes(join(path, dir, name), bmp, sizeof bmp);
}

/* dir/name as a PNG of any colour type and bit depth from rows packed as
   libpng wants them (16-bit samples big-endian); palette and tRNS when
   npalette / ntrans > 0. */
static void write_png_as(const char *dir, const char *name, int w, int h, int depth,
                         int color_type, int interlace, const uint8_t *rows,
                         const png_color *palette, int npalette, const uint8_t *trans,
                         int ntrans)
{
    char path[PATH_LEN];
    FILE *f = fopen(join(path, dir, name), "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    if (setjmp(png_jmpbuf(png))) /* libpng printed why */
        ck_abort_msg("could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (npalette > 0)
        png_set_PLTE(png, info, palette, npalette);
    if (ntrans > 0)
        png_set_tRNS(png, info, trans, ntrans, NULL);
    png_write_info(png, info);
    size_t stride = png_get_rowbytes(png, info);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++)
            png_write_row(png, rows + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

/* How write_jpeg orders the scans. */
enum jpeg_mode { BASELINE, PROGRESSIVE, SCAN_PER_COEFFICIENT };

/* dir/name as a JPEG of quality 95 from interleaved pixels; `components`
   is 1 (gray), 3 (RGB) or 4 (CMYK).  SCAN_PER_COEFFICIENT is progressive
   with one scan for every AC coefficient of every colour: 190 scans, a
   valid file that a decoder revisits 190 times. */
static void write_jpeg(const char *dir, const char *name, const uint8_t *px, int w, int h,
                       int components, enum jpeg_mode mode)
{
    char path[PATH_LEN];
    FILE *f = fopen(join(path, dir, name), "wb");
    ck_assert_ptr_nonnull(f);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr errors;
    c.err = jpeg_std_error(&errors);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_scan_info scans[1 + 3 * 63] = {{3, {0, 1, 2}, 0, 0, 0, 0}}; /* DC of all three */
    if (mode == PROGRESSIVE) {
        jpeg_simple_progression(&c);
    } else if (mode == SCAN_PER_COEFFICIENT) {
        ck_assert_int_eq(components, 3);
        for (int i = 1; i < 1 + 3 * 63; i++)
            scans[i] = (jpeg_scan_info){1, {(i - 1) / 63}, (i - 1) % 63 + 1, (i - 1) % 63 + 1, 0, 0};
        c.scan_info = scans;
        c.num_scans = 1 + 3 * 63;
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)w * (size_t)components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    ck_assert_int_eq(fclose(f), 0);
}

/* The bytes of a file, which must be shorter than cap, into buf; returns
   how many. */
static size_t read_all(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    ck_assert_msg(n < cap, "%s has over %zu bytes", path, cap);
    return n;
}

/* Offset of the first segment with marker `code` before the image data
   (walking from SOI), or 0 when there is none. */
static size_t jpeg_segment(const uint8_t *j, size_t n, uint8_t code)
{
    for (size_t p = 2; p + 4 <= n && j[p] == 0xFF; p += 2 + ((size_t)j[p + 2] << 8 | j[p + 3])) {
        if (j[p + 1] == code)
            return p;
        if (j[p + 1] == 0xDA) /* SOS: the entropy-coded data follows */
            break;
    }
    return 0;
}

/* A plain-colour image of w x h in `channels` interleaved channels. */
static void fill(uint8_t *px, int w, int h, int channels, const uint8_t *colour)
{
    for (int p = 0; p < w * h; p++)
        memcpy(px + (size_t)p * (size_t)channels, colour, (size_t)channels);
}

/* dir/name: a w x h 8-bit RGB PNG, every pixel `rgb`, with a gAMA chunk
   and, before the pixels, `texts` zTXt chunks of text_bytes letters each,
   which deflate to about a thousandth of that. */
static void write_png_with_texts(const char *dir, const char *name, int w, int h,
                                 const uint8_t rgb[3], int texts, size_t text_bytes)
{
    char path[PATH_LEN], *text = malloc(text_bytes + 1);
    uint8_t row[64 * 3];
    png_text chunks[8];
    ck_assert_ptr_nonnull(text);
    ck_assert_int_le(texts, 8);
    ck_assert_int_le(w, 64);
    memset(text, 'a', text_bytes);
    text[text_bytes] = '\0';
    for (int i = 0; i < texts; i++)
        chunks[i] = (png_text){.compression = PNG_TEXT_COMPRESSION_zTXt, .key = "Comment",
                               .text = text};
    fill(row, w, 1, 3, rgb);
    FILE *f = fopen(join(path, dir, name), "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    if (setjmp(png_jmpbuf(png))) /* libpng printed why */
        ck_abort_msg("could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_gAMA(png, info, 0.45455);
    png_set_text(png, info, chunks, texts);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
    free(text);
}

/* The kB on /proc/self/status's line `key` ("VmHWM:", the peak resident
   memory). */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            kb = strtol(line + strlen(key), NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* Loads dir at `size` in a child process (a fresh peak) and returns by
   how many kB the load raised the child's peak resident memory, or -1 if
   it failed.  What the loader prints is dropped. */
static long load_peak_kb(const char *dir, int size)
{
    int fds[2], wstatus;
    long kb = -2;
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ex_image_set s;
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        long before = status_kb("VmHWM:");
        long grew = ex_load_image_folder(dir, size, &s) == 0 ? status_kb("VmHWM:") - before : -1;
        ex_image_set_free(&s);
        _exit(write(fds[1], &grew, sizeof grew) == (ssize_t)sizeof grew ? 0 : 1);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], &kb, sizeof kb), (ssize_t)sizeof kb);
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_int_eq(wstatus, 0);
    return kb;
}

/* The log names dir/name as skipped for `reason`, on a line of its own. */
static void assert_skipped(const char *log, const char *name, const char *reason)
{
    char line[PATH_LEN];
    snprintf(line, sizeof line, "/%s: %s\n", name, reason);
    ck_assert_msg(strstr(log, line) != NULL, "no \"skipping ...%s\" in:\n%s", line, log);
}

/* Image i is plain `rgb` within `tolerance` (JPEG rounds). */
static void assert_near(const ex_image_set *s, int i, const uint8_t rgb[3], int tolerance)
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < s->size; y++)
            for (int x = 0; x < s->size; x++)
                ck_assert_msg(abs(at(s, i, c, y, x) - rgb[c]) <= tolerance,
                              "%s: (c %d, y %d, x %d) is %d, not %d", s->names[i], c, y, x,
                              at(s, i, c, y, x), rgb[c]);
}

/* A folder of five good images, two broken ones and things to ignore. */
static const char *make_mixed_folder(void)
{
    const char *dir = make_folder("mixed");
    char path[PATH_LEN];
    /* 6 wide, 4 high: the centre 4x4 is green, the outer columns red. */
    write_framed_png(dir, "a.png", 6, 4, GREEN, RED);
    /* 3 wide, 7 high, upper-case extension: teal, top and bottom rows
       blue; the centre square is rows 2..4. */
    write_framed_png(dir, "b.PNG", 3, 7, TEAL, BLUE);
    /* Gray PNG: becomes three equal channels. */
    uint8_t gray[5 * 5];
    memset(gray, 77, sizeof gray);
    join(path, dir, "c.png");
    ck_assert_int_eq(ex_write_png(path, gray, 5, 5, 1), 0);
    /* 2x2 of four colours, loaded at 2x2: the layout, pixel for pixel.
       The magic bytes choose the decoder, so a PNG named .jpeg decodes too. */
    const uint8_t quad[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    join(path, dir, "d.jpeg");
    ck_assert_int_eq(ex_write_png(path, quad, 2, 2, 3), 0);
    /* 1x1: enlarged. */
    join(path, dir, "h.JPG");
    ck_assert_int_eq(ex_write_png(path, WHITE, 1, 1, 3), 0);

    /* Broken: a PNG cut inside its image data, and a text file named .jpg. */
    uint8_t noise[32 * 32 * 3];
    uint32_t r = 12345;
    for (size_t i = 0; i < sizeof noise; i++) { /* xorshift: incompressible */
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
        noise[i] = (uint8_t)r;
    }
    join(path, dir, "e.png");
    ck_assert_int_eq(ex_write_png(path, noise, 32, 32, 3), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_gt(st.st_size, 200);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
    join(path, dir, "f.jpg");
    write_bytes(path, "not a JPEG\n", 11);

    /* Ignored without a word: other extensions, a folder named like an image. */
    join(path, dir, "notes.txt");
    write_bytes(path, "hello\n", 6);
    join(path, dir, "g.png");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    join(path, dir, "g.png/inner.png");
    ck_assert_int_eq(ex_write_png(path, WHITE, 1, 1, 3), 0);
    return dir;
}

START_TEST(loads_crops_and_skips)
{
    const char *dir = make_mixed_folder();
    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 2, 0, &s, log, sizeof log), 0);

    ck_assert_int_eq(s.count, 5);
    ck_assert_int_eq(s.size, 2);
    const char *names[5] = {"a.png", "b.PNG", "c.png", "d.jpeg", "h.JPG"};
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(s.names[i], names[i]);
    assert_plain(&s, 0, GREEN); /* the red columns were cropped away */
    const uint8_t gray[3] = {77, 77, 77};
    assert_plain(&s, 2, gray);
    assert_plain(&s, 4, WHITE);
    /* Channel-major: the R plane, then G, then B, each row by row. */
    const uint8_t *d = s.pixels + 3 * 3 * 2 * 2;
    const uint8_t want[12] = {1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12};
    for (int k = 0; k < 12; k++)
        ck_assert_int_eq(d[k], want[k]);
    ck_assert_int_eq(at(&s, 3, 0, 1, 0), 7); /* R of the bottom-left pixel */

    /* One line per skipped file, naming it. */
    ck_assert_int_eq(count_lines(log), 2);
    ck_assert_ptr_nonnull(strstr(log, "skipping "));
    ck_assert_ptr_nonnull(strstr(log, "/e.png: corrupt PNG data\n"));
    ck_assert_ptr_nonnull(strstr(log, "/f.jpg: not a JPEG or PNG image\n"));
    ex_image_set_free(&s);
    ck_assert_int_eq(s.count, 0);
    ck_assert_ptr_null(s.pixels);
    ck_assert_ptr_null(s.names);
}
END_TEST

/* Centre crop of a tall image, resized down: only the centre colour. */
/* The centre square of a tall image, shrunk: the blue bands at the top and
   bottom (rows 0..4 and 25..29 of 30) lie outside the centre 20x20. */
START_TEST(crop_tall_and_resize)
{
    const char *dir = make_folder("tall");
    uint8_t px[20 * 30 * 3];
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 20; x++)
            memcpy(px + (y * 20 + x) * 3, y < 5 || y >= 25 ? BLUE : TEAL, 3);
    char path[PATH_LEN];
    join(path, dir, "t.png");
    ck_assert_int_eq(ex_write_png(path, px, 20, 30, 3), 0);
    ex_image_set s;
    ck_assert_int_eq(ex_load_image_folder(dir, 7, &s), 0);
    ck_assert_int_eq(s.count, 1);
    assert_plain(&s, 0, TEAL);
    ex_image_set_free(&s);
    /* At its own size the crop is an exact copy. */
    ck_assert_int_eq(ex_load_image_folder(dir, 20, &s), 0);
    assert_plain(&s, 0, TEAL);
    ex_image_set_free(&s);
}
END_TEST

/* Enlarging a two-colour image keeps left on the left, right on the right. */
START_TEST(upscale_keeps_sides)
{
    const char *dir = make_folder("up");
    uint8_t px[2 * 2 * 3];
    for (int y = 0; y < 2; y++) {
        memcpy(px + (y * 2 + 0) * 3, RED, 3);
        memcpy(px + (y * 2 + 1) * 3, BLUE, 3);
    }
    char path[PATH_LEN];
    join(path, dir, "lr.png");
    ck_assert_int_eq(ex_write_png(path, px, 2, 2, 3), 0);
    ex_image_set s;
    ck_assert_int_eq(ex_load_image_folder(dir, 8, &s), 0);
    /* The filter (Catmull-Rom) may overshoot a little at a sharp edge. */
    for (int y = 0; y < 8; y++) {
        ck_assert_int_ge(at(&s, 0, 0, y, 0), 240);
        ck_assert_int_le(at(&s, 0, 2, y, 0), 15);
        ck_assert_int_le(at(&s, 0, 0, y, 7), 15);
        ck_assert_int_ge(at(&s, 0, 2, y, 7), 240);
        for (int x = 1; x < 8; x++) { /* red falls and blue rises to the right */
            ck_assert_int_le(at(&s, 0, 0, y, x), at(&s, 0, 0, y, x - 1));
            ck_assert_int_ge(at(&s, 0, 2, y, x), at(&s, 0, 2, y, x - 1));
        }
        for (int c = 0; c < 3; c++) /* every row alike */
            for (int x = 0; x < 8; x++)
                ck_assert_int_eq(at(&s, 0, c, y, x), at(&s, 0, c, 0, x));
    }
    ex_image_set_free(&s);
}
END_TEST

/* JPEG, the format of CelebA: a plain colour comes back within JPEG's
   rounding, from baseline, progressive and gray files; a JPEG cut short,
   in its data or in its header, is skipped. */
START_TEST(jpeg_files)
{
    const char *dir = make_folder("jpeg");
    uint8_t px[24 * 16 * 3];
    fill(px, 24, 16, 3, TEAL);
    write_jpeg(dir, "1.jpg", px, 24, 16, 3, BASELINE);
    write_jpeg(dir, "3.jpeg", px, 24, 16, 3, PROGRESSIVE);
    const uint8_t gray = 77;
    fill(px, 24, 16, 1, &gray);
    write_jpeg(dir, "4.JPG", px, 24, 16, 1, BASELINE);
    for (int p = 0; p < 24 * 16 * 3; p++) /* noise, so the data is long */
        px[p] = (uint8_t)((p * 2654435761u) >> 24);
    write_jpeg(dir, "2.jpg", px, 24, 16, 3, BASELINE);
    char path[PATH_LEN];
    struct stat st;
    ck_assert_int_eq(stat(join(path, dir, "2.jpg"), &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size * 3 / 4), 0);
    write_jpeg(dir, "5.jpg", px, 24, 16, 3, BASELINE);
    ck_assert_int_eq(truncate(join(path, dir, "5.jpg"), 30), 0); /* inside the header */

    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 8, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 3);
    ck_assert_str_eq(s.names[0], "1.jpg");
    ck_assert_str_eq(s.names[1], "3.jpeg");
    ck_assert_str_eq(s.names[2], "4.JPG");
    assert_near(&s, 0, TEAL, 3);
    assert_near(&s, 1, TEAL, 3);
    assert_near(&s, 2, (const uint8_t[3]){gray, gray, gray}, 1);
    assert_skipped(log, "2.jpg", "corrupt JPEG data");
    assert_skipped(log, "5.jpg", "corrupt JPEG header");
    ck_assert_int_eq(count_lines(log), 2);
    ex_image_set_free(&s);
}
END_TEST

/* JPEGs edited to hit the holes of stb_image 2.27 and the slow paths of
   any decoder.  Without Huffman tables a JPEG means the standard ones
   (Motion-JPEG frames): libjpeg-turbo decodes it, stb_image 2.27 read
   tables never written.  Also skipped: a Huffman table of over 256 codes
   (stb_image 2.27 overflowed its arrays), a scan using a table that was
   never defined, 190 progressive scans, CMYK. */
START_TEST(jpeg_crafted)
{
    const char *dir = make_folder("crafted");
    uint8_t px[16 * 16 * 4], file[4096];
    fill(px, 16, 16, 3, GREEN);
    write_jpeg(dir, "good.jpg", px, 16, 16, 3, BASELINE);
    write_jpeg(dir, "scans.jpg", px, 16, 16, 3, SCAN_PER_COEFFICIENT);
    fill(px, 16, 16, 4, (const uint8_t[4]){10, 20, 30, 40});
    write_jpeg(dir, "cmyk.jpg", px, 16, 16, 4, BASELINE);

    char path[PATH_LEN];
    size_t n = read_all(join(path, dir, "good.jpg"), file, sizeof file);
    /* Every count of the first table at 255: 4080 codes. */
    size_t dht = jpeg_segment(file, n, 0xC4);
    ck_assert_uint_gt(dht, 0);
    uint8_t copy[4096];
    memcpy(copy, file, n);
    memset(copy + dht + 5, 255, 16);
    write_bytes(join(path, dir, "huffman.jpg"), copy, n);
    /* The first component's scan uses DC and AC table 3, never defined. */
    memcpy(copy, file, n);
    size_t sos = jpeg_segment(copy, n, 0xDA);
    ck_assert_uint_gt(sos, 0);
    copy[sos + 6] = 0x33;
    write_bytes(join(path, dir, "undefined.jpg"), copy, n);
    /* No Huffman tables at all: cut out every DHT segment. */
    while ((dht = jpeg_segment(file, n, 0xC4)) != 0) {
        size_t len = 2 + ((size_t)file[dht + 2] << 8 | file[dht + 3]);
        memmove(file + dht, file + dht + len, n - dht - len);
        n -= len;
    }
    write_bytes(join(path, dir, "standard.jpg"), file, n);

    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 4, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 2);
    ck_assert_str_eq(s.names[0], "good.jpg");
    ck_assert_str_eq(s.names[1], "standard.jpg");
    assert_near(&s, 0, GREEN, 3);
    assert_near(&s, 1, GREEN, 3);
    assert_skipped(log, "huffman.jpg", "corrupt JPEG header");
    assert_skipped(log, "undefined.jpg", "corrupt JPEG data");
    assert_skipped(log, "scans.jpg", "too many progressive scans");
    assert_skipped(log, "cmyk.jpg", "CMYK JPEG, not supported");
    ck_assert_int_eq(count_lines(log), 4);
    ex_image_set_free(&s);
}
END_TEST

/* stb_image decoded whatever it recognised behind a .jpg or .png name,
   and 2.27 took these as valid: a BMP, a PNM and an HDR of height or width
   0 (the resizer then aborted the program), and a top-down BMP of 10000 x
   -10000 (a negative pixel count passed the guard; decoding 54 bytes took
   most of a minute and gigabytes).  Only the magic bytes of JPEG and PNG
   let a file reach a decoder, so all are skipped; the PNG is loaded. */
START_TEST(other_formats_are_skipped)
{
    const char *dir = make_folder("formats");
    char path[PATH_LEN];
    write_framed_png(dir, "good.png", 3, 3, BLUE, BLUE);
    write_bmp_header(dir, "bmp0.png", 4, 0);
    write_bmp_header(dir, "bmp0.jpg", 4, 0);
    write_bmp_header(dir, "topdown.jpg", 10000, -10000);
    const char pnm[] = "P6\n4 0\n255\n";
    write_bytes(join(path, dir, "pnm0.png"), pnm, sizeof pnm - 1);
    const char pnm1[] = "P6\n1 1\n255\n\x01\x02\x03"; /* a valid 1x1 */
    write_bytes(join(path, dir, "pnm1.jpg"), pnm1, sizeof pnm1 - 1);
    const char hdr[] = "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 0 +X 4\n";
    write_bytes(join(path, dir, "hdr0.png"), hdr, sizeof hdr - 1);

    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 3, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 1);
    ck_assert_str_eq(s.names[0], "good.png");
    assert_plain(&s, 0, BLUE);
    const char *skipped[] = {"bmp0.png", "bmp0.jpg", "topdown.jpg", "pnm0.png", "pnm1.jpg",
                             "hdr0.png"};
    for (int i = 0; i < 6; i++)
        assert_skipped(log, skipped[i], "not a JPEG or PNG image");
    ck_assert_int_eq(count_lines(log), 6);
    ex_image_set_free(&s);
}
END_TEST

/* A PNG's size is checked from its IHDR before anything is decoded or
   allocated: 0x0, and sizes whose pixel count is too large, also where
   32-bit arithmetic would wrap (65536 * 65536 is 0, 0xFFFFFFFF squared
   is 1).  The files hold no image data, so "too large" can only come from
   the header.  A file cut inside the IHDR is skipped too. */
START_TEST(png_header_sizes)
{
    const char *dir = make_folder("sizes");
    write_framed_png(dir, "good.png", 2, 2, RED, RED);
    write_png_header_only(dir, "zero.png", 0, 0);
    write_png_header_only(dir, "wide0.png", 7, 0);
    write_png_header_only(dir, "huge.png", 100000, 100000);
    write_png_header_only(dir, "wrap.png", 65536, 65536);
    write_png_header_only(dir, "max.png", 0xFFFFFFFFu, 0xFFFFFFFFu);
    write_png_header_only(dir, "tall.png", 1, 67108865); /* 2^26 + 1 */
    /* A side over 65535 (JPEG's limit too), where libpng's two rows of up
       to 8 bytes a pixel would cost 1 GiB for 2^26 x 1; 65535 passes the
       guard (and fails in libpng: no image data). */
    write_png_header_only(dir, "wide.png", 65536, 1);
    write_png_header_only(dir, "long.png", 1, 65536);
    write_png_header_only(dir, "edge.png", 65535, 1);
    char path[PATH_LEN];
    uint8_t file[4096];
    size_t n = read_all(join(path, dir, "good.png"), file, sizeof file);
    ck_assert_uint_ge(n, 20);
    write_bytes(join(path, dir, "short.png"), file, 20);

    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 2, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 1);
    ck_assert_str_eq(s.names[0], "good.png");
    assert_plain(&s, 0, RED);
    assert_skipped(log, "zero.png", "no pixels (0x0)");
    assert_skipped(log, "wide0.png", "no pixels (7x0)");
    assert_skipped(log, "huge.png", "too large (100000x100000, over 64 megapixels)");
    assert_skipped(log, "wrap.png", "too large (65536x65536, over 64 megapixels)");
    assert_skipped(log, "max.png", "too large (4294967295x4294967295, over 64 megapixels)");
    assert_skipped(log, "tall.png", "too large (1x67108865, over 64 megapixels)");
    assert_skipped(log, "wide.png", "too large (65536x1, over 65535 pixels a side)");
    assert_skipped(log, "long.png", "too large (1x65536, over 65535 pixels a side)");
    assert_skipped(log, "edge.png", "corrupt PNG header");
    assert_skipped(log, "short.png", "corrupt PNG header");
    ck_assert_int_eq(count_lines(log), 10);
    ex_image_set_free(&s);
}
END_TEST

/* Every kind of PNG becomes 8-bit RGB, exactly: palettes (8 and 2 bits,
   transparency dropped), 1-bit gray, gray with alpha, RGBA, 16 bits (the
   high byte), and Adam7 interlacing.  All 2x2, loaded at 2x2. */
START_TEST(png_kinds)
{
    const char *dir = make_folder("kinds");
    const png_color palette[3] = {{10, 20, 30}, {200, 100, 50}, {7, 8, 9}};
    const uint8_t trans[2] = {128, 0};
    const uint8_t pal8[4] = {0, 1, 2, 1}, pal2[2] = {0x10, 0x90}; /* 0 1 / 2 1 */
    write_png_as(dir, "a.png", 2, 2, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, pal8,
                 palette, 3, trans, 2);
    write_png_as(dir, "b.png", 2, 2, 2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, pal2,
                 palette, 3, NULL, 0);
    const uint8_t bits[2] = {0x80, 0x40}; /* white black / black white */
    write_png_as(dir, "c.png", 2, 2, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, bits, NULL, 0,
                 NULL, 0);
    const uint8_t ga[8] = {0, 255, 50, 0, 100, 9, 255, 128};
    write_png_as(dir, "d.png", 2, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, ga, NULL,
                 0, NULL, 0);
    const uint8_t rgba[16] = {1, 2, 3, 0, 4, 5, 6, 50, 7, 8, 9, 100, 10, 11, 12, 255};
    write_png_as(dir, "e.png", 2, 2, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, rgba, NULL, 0,
                 NULL, 0);
    uint8_t rgb16[2 * 2 * 6];
    for (int k = 0; k < 12; k++) { /* sample k is (20k + 1) * 256 + 0xAB */
        rgb16[2 * k] = (uint8_t)(20 * k + 1);
        rgb16[2 * k + 1] = 0xAB;
    }
    write_png_as(dir, "f.png", 2, 2, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb16, NULL, 0,
                 NULL, 0);
    const uint8_t rgb[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 255, 128};
    write_png_as(dir, "g.png", 2, 2, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rgb, NULL, 0,
                 NULL, 0);

    /* The pixels expected, interleaved RGB, row by row. */
    const uint8_t want[7][12] = {
        {10, 20, 30, 200, 100, 50, 7, 8, 9, 200, 100, 50},
        {10, 20, 30, 200, 100, 50, 7, 8, 9, 200, 100, 50},
        {255, 255, 255, 0, 0, 0, 0, 0, 0, 255, 255, 255},
        {0, 0, 0, 50, 50, 50, 100, 100, 100, 255, 255, 255},
        {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
        {1, 21, 41, 61, 81, 101, 121, 141, 161, 181, 201, 221},
        {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 255, 128},
    };
    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 2, 0, &s, log, sizeof log), 0);
    ck_assert_str_eq(log, "");
    ck_assert_int_eq(s.count, 7);
    for (int i = 0; i < 7; i++)
        for (int p = 0; p < 4; p++)
            for (int c = 0; c < 3; c++)
                ck_assert_msg(at(&s, i, c, p / 2, p % 2) == want[i][p * 3 + c],
                              "%s: pixel %d channel %d is %d, not %d", s.names[i], p, c,
                              at(&s, i, c, p / 2, p % 2), want[i][p * 3 + c]);
    ex_image_set_free(&s);
}
END_TEST

/* Only the chunks that make the pixels are read: text and the rest are
   skipped unread.  libpng would otherwise inflate each zTXt chunk (to 8
   MB at most, up to 1000 of them) and keep it until the end: here four of
   6 MB, from a file of some 25 kB, raised the peak memory by over 24 MB.
   The pixels do not change (gAMA is not applied either). */
START_TEST(png_chunks_skipped)
{
    const char *dir = make_folder("texts");
    write_png_with_texts(dir, "t.png", 4, 4, TEAL, 4, (size_t)6 << 20);
    char path[PATH_LEN];
    struct stat st;
    ck_assert_int_eq(stat(join(path, dir, "t.png"), &st), 0);
    ck_assert_int_lt(st.st_size, 64 << 10);
    long kb = load_peak_kb(dir, 4);
    ck_assert_int_ge(kb, 0);
    ck_assert_msg(kb < 8 << 10, "loading a %lld-byte PNG raised the peak memory by %ld kB",
                  (long long)st.st_size, kb);
    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 4, 0, &s, log, sizeof log), 0);
    ck_assert_str_eq(log, "");
    ck_assert_int_eq(s.count, 1);
    assert_plain(&s, 0, TEAL);
    ex_image_set_free(&s);
}
END_TEST

START_TEST(limit_loads_the_first)
{
    const char *dir = make_mixed_folder();
    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 3, 2, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 2);
    ck_assert_str_eq(s.names[0], "a.png");
    ck_assert_str_eq(s.names[1], "b.PNG");
    ck_assert_str_eq(log, ""); /* the broken files were never reached */
    assert_plain(&s, 1, TEAL);
    ex_image_set_free(&s);
}
END_TEST

START_TEST(split_every_other)
{
    const char *dir = make_mixed_folder();
    ex_image_set s, t;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 2, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(ex_image_set_split(&s, 2, &t), 0);
    ck_assert_int_eq(s.count, 3);
    ck_assert_int_eq(t.count, 2);
    ck_assert_int_eq(t.size, 2);
    ck_assert_str_eq(s.names[0], "a.png");
    ck_assert_str_eq(s.names[1], "c.png");
    ck_assert_str_eq(s.names[2], "h.JPG");
    ck_assert_str_eq(t.names[0], "b.PNG");
    ck_assert_str_eq(t.names[1], "d.jpeg");
    const uint8_t gray[3] = {77, 77, 77};
    assert_plain(&s, 0, GREEN);
    assert_plain(&s, 1, gray);
    assert_plain(&s, 2, WHITE);
    assert_plain(&t, 0, TEAL);
    ck_assert_int_eq(at(&t, 1, 2, 1, 1), 12);

    /* Too few images for the split: nothing changes. */
    ex_image_set u = {0};
    ck_assert_int_ne(ex_image_set_split(&s, 4, &u), 0);
    ck_assert_int_eq(s.count, 3);
    ck_assert_ptr_null(u.pixels);
    ck_assert_int_ne(ex_image_set_split(&s, 1, &u), 0);
    ex_image_set_free(&s);
    ex_image_set_free(&t);
    ex_image_set_free(NULL);
}
END_TEST

START_TEST(empty_and_missing_folders)
{
    ex_image_set s;
    char log[4096];
    const char *dir = make_folder("empty");
    ck_assert_int_ne(load_capturing(dir, 4, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 0);
    ck_assert_ptr_null(s.pixels);
    ck_assert_ptr_nonnull(strstr(log, dir));

    dir = make_folder("no_images");
    char path[PATH_LEN];
    join(path, dir, "readme.txt");
    write_bytes(path, "x", 1);
    ck_assert_int_ne(load_capturing(dir, 4, 0, &s, log, sizeof log), 0);
    ck_assert_ptr_nonnull(strstr(log, dir));

    dir = make_folder("all_broken");
    join(path, dir, "x.jpg");
    write_bytes(path, "text", 4);
    join(path, dir, "y.png");
    write_bytes(path, "", 0);
    ck_assert_int_ne(load_capturing(dir, 4, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 0);
    ck_assert_int_eq(count_lines(log), 3); /* two skipped, then the error */
    ck_assert_ptr_nonnull(strstr(log, "x.jpg"));
    ck_assert_ptr_nonnull(strstr(log, "y.png"));

    dir = path_of(0, "does_not_exist");
    ck_assert_int_ne(load_capturing(dir, 4, 0, &s, log, sizeof log), 0);
    ck_assert_ptr_nonnull(strstr(log, dir));
    ck_assert_int_eq(s.count, 0);
}
END_TEST

START_TEST(bad_arguments)
{
    ex_image_set s;
    char log[4096];
    const char *dir = make_mixed_folder();
    ck_assert_int_ne(load_capturing(dir, 0, 0, &s, log, sizeof log), 0);
    ck_assert_int_ne(load_capturing(dir, 5000, 0, &s, log, sizeof log), 0);
    ck_assert_int_ne(load_capturing(dir, 4, -1, &s, log, sizeof log), 0);
    ck_assert_int_ne(load_capturing(NULL, 4, 0, &s, log, sizeof log), 0);
    ck_assert_int_ne(load_capturing(dir, 4, 0, NULL, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 0);
}
END_TEST

static Suite *imagefolder_suite(void)
{
    Suite *s = suite_create("imagefolder");
    TCase *tc = tcase_create("load");
    /* A fresh folder for every test (they reuse names). */
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, loads_crops_and_skips);
    tcase_add_test(tc, crop_tall_and_resize);
    tcase_add_test(tc, upscale_keeps_sides);
    tcase_add_test(tc, jpeg_files);
    tcase_add_test(tc, jpeg_crafted);
    tcase_add_test(tc, other_formats_are_skipped);
    tcase_add_test(tc, png_header_sizes);
    tcase_add_test(tc, png_kinds);
    tcase_add_test(tc, png_chunks_skipped);
    tcase_add_test(tc, limit_loads_the_first);
    tcase_add_test(tc, split_every_other);
    tcase_add_test(tc, empty_and_missing_folders);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(imagefolder_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
