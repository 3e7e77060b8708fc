/* Model files written by libvae 0.2.0 (format version 1; tests/fixtures,
   made by fixtures/make_fixtures_0_2.c) still load, and the current
   library computes from them what 0.2.0 did (fixtures/0.2.0/expected.txt):
   shapes, parameter count, epoch, position, optimizer steps and settings,
   encodings, decodings of fixed z, reconstructions, -ELBO and log p(x),
   and, resuming with the restored optimizer, the next train_step and the
   rest of the epoch (objectives and a checksum of the parameters).  The
   measurements are fixtures/fixtures_0_2.h's, shared with the generator. */
#include "testutil.h"

#include "fixtures/fixtures_0_2.h"

#include <stdio.h>
#include <string.h>

enum { MAX_FACTS = 64 };

/* The lines of expected.txt for one file. */
typedef struct expected {
    char key[64];
    double v[FX_MAX_VALUES];
    int n, seen;
} expected;

typedef struct facts {
    const char *file;
    expected e[MAX_FACTS];
    int n;
} facts;

/* $VAE_FIXTURES_DIR, else fixtures/0.2.0 next to this source file. */
static const char *fixture_dir(void)
{
    static char dir[1024];
    const char *env = getenv("VAE_FIXTURES_DIR"), *slash = strrchr(__FILE__, '/');
    if (env)
        snprintf(dir, sizeof dir, "%s", env);
    else if (slash)
        snprintf(dir, sizeof dir, "%.*s/fixtures/0.2.0", (int)(slash - __FILE__), __FILE__);
    else
        snprintf(dir, sizeof dir, "fixtures/0.2.0");
    return dir;
}

static void load_expected(facts *fs)
{
    static char line[16384];
    char path[1100];
    FILE *f;
    snprintf(path, sizeof path, "%s/expected.txt", fixture_dir());
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fs->n = 0;
    while (fgets(line, sizeof line, f)) {
        char file[64], *p, *end;
        int at;
        expected *e = &fs->e[fs->n];
        if (line[0] == '#' || sscanf(line, "%63s %63s%n", file, e->key, &at) != 2 ||
            strcmp(file, fs->file) != 0)
            continue;
        ck_assert_int_lt(fs->n, MAX_FACTS);
        e->n = e->seen = 0;
        for (p = line + at; e->n < FX_MAX_VALUES; p = end) {
            e->v[e->n] = strtod(p, &end);
            if (end == p)
                break;
            e->n++;
        }
        fs->n++;
    }
    fclose(f);
    ck_assert_msg(fs->n > 0, "no facts about %s in expected.txt", fs->file);
}

/* A fact the current library computed, against 0.2.0's. */
static void compare_fact(void *ctx, const char *key, int exact, const double *v, int n)
{
    facts *fs = ctx;
    expected *e = NULL;
    char what[160];
    for (int i = 0; i < fs->n && !e; i++)
        if (strcmp(fs->e[i].key, key) == 0)
            e = &fs->e[i];
    ck_assert_msg(e != NULL, "%s: %s is not in expected.txt", fs->file, key);
    ck_assert_msg(e->n == n, "%s %s: %d values, 0.2.0 had %d", fs->file, key, n, e->n);
    snprintf(what, sizeof what, "%s %s", fs->file, key);
    for (int i = 0; i < n; i++) {
        if (exact)
            ck_assert_msg(v[i] == e->v[i], "%s[%d]: got %.17g, 0.2.0 had %.17g", what, i, v[i],
                          e->v[i]);
        else
            tu_expect_close(v[i], e->v[i], what, i);
    }
    e->seen = 1;
}

/* The file starts with "VAEMODEL" and format version 1. */
static void expect_format_1(const char *path)
{
    unsigned char head[12];
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_uint_eq(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    ck_assert_mem_eq(head, "VAEMODEL", 8);
    ck_assert_uint_eq(head[8] | head[9] << 8 | head[10] << 16 | (uint32_t)head[11] << 24, 1);
}

/* Loop over fx_fixtures: every fact of expected.txt reproduced. */
START_TEST(test_fixture)
{
    static facts fs;
    char path[1100];
    vae_status s;
    fs.file = fx_fixtures[_i].file;
    snprintf(path, sizeof path, "%s/%s", fixture_dir(), fs.file);
    expect_format_1(path);
    load_expected(&fs);
    s = fx_measure(fixture_dir(), &fx_fixtures[_i], compare_fact, &fs);
    ck_assert_msg(s == VAE_OK, "%s: %s: %s", fs.file, vae_strerror(s), vae_last_error());
    for (int i = 0; i < fs.n; i++)
        ck_assert_msg(fs.e[i].seen, "%s: %s was not measured", fs.file, fs.e[i].key);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("0.2.0");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_fixture, 0, FX_FILE_COUNT);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
