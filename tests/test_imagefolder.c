/* The image-folder loader of the examples (examples/common/imagefolder.c):
   listing and order, centre crop and resize, channel-major layout, skipped
   files, limits, the test split, and the error cases. */
#include "excommon.h"
#include "imagefolder.h"

#include <check.h>
#include <stb/stb_image_write.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
       stb_image sniffs the content, so a PNG named .jpeg decodes too. */
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
   rounding; a JPEG cut short is skipped. */
START_TEST(jpeg_files)
{
    const char *dir = make_folder("jpeg");
    uint8_t px[24 * 16 * 3];
    for (int p = 0; p < 24 * 16; p++)
        memcpy(px + p * 3, TEAL, 3);
    char path[PATH_LEN];
    ck_assert_int_ne(stbi_write_jpg(join(path, dir, "1.jpg"), 24, 16, 3, px, 95), 0);
    for (int p = 0; p < 24 * 16 * 3; p++) /* noise, so the data is long */
        px[p] = (uint8_t)((p * 2654435761u) >> 24);
    ck_assert_int_ne(stbi_write_jpg(join(path, dir, "2.jpg"), 24, 16, 3, px, 95), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size * 3 / 4), 0);

    ex_image_set s;
    char log[4096];
    ck_assert_int_eq(load_capturing(dir, 8, 0, &s, log, sizeof log), 0);
    ck_assert_int_eq(s.count, 1);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 8 * 8; p++) {
            int v = s.pixels[c * 64 + p];
            ck_assert_int_le(abs(v - TEAL[c]), 3);
        }
    ck_assert_ptr_nonnull(strstr(log, "/2.jpg: corrupt JPEG data\n"));
    ck_assert_int_eq(count_lines(log), 1);
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
