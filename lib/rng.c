/* Random numbers: xoshiro256** seeded through splitmix64.  Every stream is
   derived from (seed, a, b) so that steps and epochs can be replayed
   without saving generator state. */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void vae__rng_seed(vae_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

void vae__rng_seed3(vae_rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0xd6e8feb86659fd93ULL);
    h = splitmix64(&x);
    x = h ^ (b * 0xa0761d6478bd642fULL);
    vae__rng_seed(r, splitmix64(&x));
}

uint64_t vae__rng_u64(vae_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double vae__rng_uniform(vae_rng *r) { return (double)(vae__rng_u64(r) >> 11) * 0x1.0p-53; }

/* Box-Muller: two uniforms make two normals. */
static void normal_pair(vae_rng *r, float *a, float *b)
{
    const double two_pi = 6.283185307179586;
    double u1 = 1.0 - vae__rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = vae__rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1));
    *a = (float)(radius * cos(two_pi * u2));
    *b = (float)(radius * sin(two_pi * u2));
}

void vae__rng_normal(vae_rng *r, float *out, int64_t n)
{
    float spare;
    for (int64_t i = 0; i < n; i += 2)
        normal_pair(r, &out[i], i + 1 < n ? &out[i + 1] : &spare);
}

void vae__rng_normal_at(const vae_rng *r, float *out, int64_t start, int64_t n)
{
    vae_rng g = *r;
    float first, spare;
    int64_t i = 0;
    if (n <= 0) /* an idle worker: nothing to skip to */
        return;
    for (int64_t k = 0; k < start / 2 * 2; k++) /* a pair takes two draws */
        vae__rng_u64(&g);
    if (start & 1) {
        normal_pair(&g, &spare, &first);
        out[i++] = first;
    }
    for (; i < n; i += 2)
        normal_pair(&g, &out[i], i + 1 < n ? &out[i + 1] : &spare);
}

void vae__rng_skip_normals(vae_rng *r, int64_t n)
{
    for (int64_t k = 0; k < (n + 1) / 2 * 2; k++)
        vae__rng_u64(r);
}

void vae__rng_permutation(vae_rng *r, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(vae__rng_u64(r) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
