/* libFuzzer target: the photo loader of the examples
   (examples/common/imagefolder.c), through ex_load_image_folder on a
   folder holding the input as image files.  The input is cut before the
   first PNG signature or JPEG start (FF D8 FF) found after its first byte,
   if any, into two files, so that a folder of two images (one may load
   and the other not) and the split into a test set run too.  Each file is
   named .png or .jpg after its first bytes (the loader goes by them, not
   by the name), .png when they are neither.
   What loads is used: every pixel and name is read, the set is split in
   two when it holds two images, and, at another size, loaded again with a
   limit of one image.
   The decoders (Debian's libjpeg-turbo, libpng, zlib) are not
   instrumented: the fuzzer steers the code around them.  The loader is
   built here with a 1-megapixel guard (MAX_SOURCE_PIXELS, see
   tests/CMakeLists.txt) so that -malloc_limit_mb can tell an allocation
   the guard does not bound. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imagefolder.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t JPEG_MAGIC[3] = {0xFF, 0xD8, 0xFF};

static int starts(const uint8_t *p, size_t n, const uint8_t *magic, size_t m)
{
    return n >= m && memcmp(p, magic, m) == 0;
}

/* Where the second file starts: the first signature after byte 0, or size. */
static size_t second_start(const uint8_t *data, size_t size)
{
    for (size_t i = 1; i < size; i++)
        if (starts(data + i, size - i, PNG_MAGIC, 8) || starts(data + i, size - i, JPEG_MAGIC, 3))
            return i;
    return size;
}

static volatile unsigned sink; /* keeps the reads */

/* Reads everything the set holds; a name is never empty. */
static void use(const ex_image_set *set, int size)
{
    size_t bytes = (size_t)set->count * 3 * (size_t)size * (size_t)size;
    unsigned sum = 0;
    if (set->size != size)
        abort();
    for (size_t i = 0; i < bytes; i++)
        sum += set->pixels[i];
    for (int i = 0; i < set->count; i++)
        if (set->names[i][0] == '\0')
            abort();
    sink = sum;
}

static void load(const char *dir)
{
    ex_image_set set, test;
    if (ex_load_image_folder(dir, 8, &set) != 0)
        return;
    use(&set, 8);
    if (set.count >= 2 && ex_image_set_split(&set, 2, &test) == 0) {
        if (set.count != 1 || test.count != 1)
            abort();
        use(&set, 8);
        use(&test, 8);
        ex_image_set_free(&test);
    }
    ex_image_set_free(&set);
    if (ex_load_image_folder_limit(dir, 16, 1, &set) == 0) {
        if (set.count != 1)
            abort();
        use(&set, 16);
        ex_image_set_free(&set);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[128], paths[2][160];
    size_t cut = second_start(data, size);
    const uint8_t *part[2] = {data, data + cut};
    size_t len[2] = {cut, size - cut};
    int files = cut < size ? 2 : 1, written = 1;
    scratch_path(dir, sizeof dir, "images");
    mkdir(dir, 0700);
    for (int i = 0; i < files; i++) {
        const char *ext = starts(part[i], len[i], JPEG_MAGIC, 3) ? "jpg" : "png";
        snprintf(paths[i], sizeof paths[i], "%s/%d.%s", dir, i, ext);
        written = scratch_write(paths[i], part[i], len[i]) && written;
    }
    if (written)
        load(dir);
    for (int i = 0; i < files; i++)
        unlink(paths[i]);
    rmdir(dir);
    return 0;
}
