/*
 * imagefolder - a folder of colour photos (CelebA's aligned crops, say) as
 * square RGB images for the example programs.  The photos are untrusted
 * input: libjpeg-turbo and libpng decode them (Debian's libjpeg-dev and
 * libpng-dev), stb_image_resize scales them (libstb-dev: pkg-config stb).
 *
 * Like the rest of excommon, every function that can fail prints one
 * message on stderr and returns non-zero; none of them exits the process.
 */
#ifndef EX_IMAGEFOLDER_H
#define EX_IMAGEFOLDER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `count` images of 3 x size x size bytes, each channel-major (R plane, G
   plane, B plane; rows top to bottom), one after another in `pixels`:
   byte (c, y, x) of image i is pixels[((i * 3 + c) * size + y) * size + x].
   names[i] is the file name of image i, without the folder. */
typedef struct ex_image_set {
    int count;
    int size;
    uint8_t *pixels;
    char **names;
} ex_image_set;

/* Load every *.jpg, *.jpeg and *.png (any case) directly in `dir` (not in
   its subfolders), in the byte order of their names: decode to RGB, crop
   the largest centred square, and resize it to size x size (smaller images
   are enlarged).  The first bytes, not the name, say whether a file is a
   JPEG or a PNG; anything else is skipped undecoded.  The size in the header
   must be at least 1x1, at most 64 megapixels and at most 65535 pixels a
   side before anything is decoded (one file then costs at most about 600
   MiB while it decodes, whatever its size: imagefolder.c says how).  PNGs of
   every kind are read (alpha is dropped, 16-bit samples keep their high
   byte; chunks other than IHDR, PLTE, tRNS, IDAT and IEND are skipped
   unread); JPEGs must be gray, YCbCr or RGB (not CMYK), free
   of any corruption libjpeg warns about, and have at most 100 progressive
   scans.  Files that fail any of this are skipped, each with one line
   "skipping PATH: REASON" on stderr; other files are ignored.  A missing
   folder, one without image files, or one where no image could be read is
   an error.  `limit` > 0 loads only the first `limit` images that decode
   (0 = all).  1 <= size <= 4096.
   *out is overwritten: on failure it is left empty (free-able).
   Returns 0, or -1 after a message on stderr. */
int ex_load_image_folder_limit(const char *dir, int size, int limit, ex_image_set *out);

/* ex_load_image_folder_limit with no limit. */
int ex_load_image_folder(const char *dir, int size, ex_image_set *out);

/* Move a test set out of *set: images i with i % every == every - 1 (every
   10th for every = 10), in their order, go to *test (overwritten); *set
   keeps the others, in their order.  every >= 2, and *set must hold at
   least `every` images so that neither part is empty.  On failure both
   are unchanged.  Returns 0, or -1 after a message on stderr. */
int ex_image_set_split(ex_image_set *set, int every, ex_image_set *test);

/* Free what the set holds and leave it empty; NULL or an empty set is fine. */
void ex_image_set_free(ex_image_set *set);

#ifdef __cplusplus
}
#endif

#endif
