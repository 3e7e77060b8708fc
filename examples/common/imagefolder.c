/* A folder of colour photos as square RGB images: stb_image decodes, the
   centre square is cropped, stb_image_resize scales it. */
#include "imagefolder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Declarations only: Debian's libstb.so holds the implementations. */
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#define MAX_SIZE 4096
/* Larger photos are skipped rather than decoded (256 MB of RGB). */
#define MAX_SOURCE_PIXELS ((long long)1 << 26)

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
                cap = cap ? 2 * cap : 256;
                char **grown = realloc(list, (size_t)cap * sizeof *list);
                if (grown)
                    list = grown;
                else
                    rc = -1;
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
    /* The first bytes name the format in messages: stb_image's own reason
       can come from another decoder it tried ("bad png sig" for a JPEG). */
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    rewind(f);
    int jpeg = got >= 2 && magic[0] == 0xFF && magic[1] == 0xD8;
    int png = got == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0;
    int w, h, n;
    uint8_t *img = NULL;
    const char *why;
    if (got == 0)
        why = "empty file";
    else if (!stbi_info_from_file(f, &w, &h, &n))
        why = jpeg ? "corrupt JPEG header" : png ? "corrupt PNG header" : "not a JPEG or PNG image";
    else if ((long long)w * h > MAX_SOURCE_PIXELS)
        why = "too large (over 64 megapixels)";
    else if (!(img = stbi_load_from_file(f, &w, &h, &n, 3)))
        why = strcmp(stbi_failure_reason(), "outofmem") == 0 ? "out of memory"
              : jpeg ? "corrupt JPEG data" : png ? "corrupt PNG data" : "corrupt image data";
    fclose(f);
    if (!img) {
        fprintf(stderr, "skipping %s: %s\n", path, why);
        return -1;
    }

    int side = w < h ? w : h;
    size_t x0 = (size_t)(w - side) / 2, y0 = (size_t)(h - side) / 2;
    const uint8_t *square = img + (y0 * (size_t)w + x0) * 3;
    /* stb_image_resize filters with Catmull-Rom to enlarge and Mitchell to
       shrink; Mitchell would blur even at the same size, so copy then. */
    int ok = 1;
    if (side == size)
        for (int y = 0; y < size; y++)
            memcpy(rgb + (size_t)y * (size_t)size * 3, square + (size_t)y * (size_t)w * 3,
                   (size_t)size * 3);
    else
        ok = stbir_resize_uint8(square, side, side, w * 3, rgb, size, size, 0, 3);
    stbi_image_free(img);
    if (!ok) {
        fprintf(stderr, "skipping %s: out of memory while resizing\n", path);
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
    uint8_t *pixels = malloc((size_t)want * image_bytes);
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
