/* exp and log that the compiler can vectorise (no libm calls, no branches),
   for the element-wise loops between GEMMs.  Cephes polynomials: relative
   error about 2e-7 over the float range, enough for losses and gradients. */
#ifndef VAE_FASTMATH_H
#define VAE_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float fm_exp(float x)
{
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds */
    float t, fn, r, p;
    int32_t n, bits;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    t = x * 1.44269504088896341f + round_magic;
    memcpy(&n, &t, sizeof n);
    n -= 0x4B400000;
    fn = t - round_magic;
    r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    memcpy(&bits, &p, sizeof bits);
    bits += n * (1 << 23); /* times 2^n */
    memcpy(&p, &bits, sizeof p);
    return p;
}

/* Natural log of a positive normal float. */
static inline float fm_log(float x)
{
    int32_t bits, e, small;
    float m, z, y, fe;
    memcpy(&bits, &x, sizeof bits);
    e = ((bits >> 23) & 0xff) - 126; /* x = m * 2^e, m in [0.5, 1) */
    bits = (bits & 0x807fffff) | 0x3f000000;
    memcpy(&m, &bits, sizeof m);
    small = m < 0.70710678118654752f;
    m = small ? m + m - 1.0f : m - 1.0f;
    fe = (float)(e - small);
    z = m * m;
    y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += fe * -2.12194440e-4f;
    y += -0.5f * z;
    return m + y + fe * 0.693359375f;
}

static inline float fm_sigmoid(float x) { return 1.0f / (1.0f + fm_exp(-x)); }

/* log(1 + e) for e >= 0, accurate for tiny e: log(u) e / (u - 1) with
   u = 1 + e corrects the rounding of u (Goldberg's trick). */
static inline float fm_log1p(float e)
{
    float u = 1.0f + e, d = u - 1.0f;
    return d == 0.0f ? e : fm_log(u) * (e / d);
}

/* log(1 + exp(x)) without overflow. */
static inline float fm_softplus(float x)
{
    float ax = x < 0.0f ? -x : x;
    return (x > 0.0f ? x : 0.0f) + fm_log1p(fm_exp(-ax));
}

static inline float fm_tanh(float x)
{
    float ax = x < 0.0f ? -x : x;
    float e = fm_exp(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -t : t;
}

#endif
