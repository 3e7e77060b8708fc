/* exp and log that the compiler can vectorise (no libm calls, no branches),
   for the element-wise loops between GEMMs.  Cephes polynomials: relative
   error about 2e-7 over the float range, enough for losses and gradients. */
#ifndef VAE_FASTMATH_H
#define VAE_FASTMATH_H

#include <stdint.h>

/* Reinterpreting through a union (defined in C11) keeps loops vectorisable;
   memcpy here made GCC give up. */
typedef union fm_bits {
    float f;
    int32_t i;
    uint32_t u;
} fm_bits;

static inline int32_t fm_as_int(float f) { return ((fm_bits){.f = f}).i; }
static inline float fm_as_float(int32_t i) { return ((fm_bits){.i = i}).f; }

/* a where cond holds, else b.  GCC turns ?: on floats into branches that
   stop vectorisation; masks do not.  A NaN in the chosen operand stays. */
static inline float fm_select(int cond, float a, float b)
{
    int32_t mask = -cond;
    return fm_as_float((fm_as_int(a) & mask) | (fm_as_int(b) & ~mask));
}

static inline float fm_abs(float x) { return fm_as_float(fm_as_int(x) & 0x7fffffff); }

static inline float fm_exp(float x)
{
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds */
    float t, fn, r, p;
    int32_t n;
    x = fm_select(x < -87.0f, -87.0f, x);
    x = fm_select(x > 88.0f, 88.0f, x);
    t = x * 1.44269504088896341f + round_magic;
    n = fm_as_int(t) - 0x4B400000;
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
    /* times 2^n, added to the exponent bits; unsigned so that a NaN input
       (whose n is garbage) wraps instead of overflowing */
    return ((fm_bits){.u = ((fm_bits){.f = p}).u + ((uint32_t)n << 23)}).f;
}

/* Natural log of a positive normal float. */
static inline float fm_log(float x)
{
    int32_t bits = fm_as_int(x), e, small;
    float m, z, y, fe;
    e = ((bits >> 23) & 0xff) - 126; /* x = m * 2^e, m in [0.5, 1) */
    m = fm_as_float((bits & 0x807fffff) | 0x3f000000);
    small = m < 0.70710678118654752f;
    m = fm_select(small, m + m, m) - 1.0f;
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
    return fm_select(d == 0.0f, e, fm_log(u) * (e / fm_select(d == 0.0f, 1.0f, d)));
}

/* log(1 + exp(x)) without overflow. */
static inline float fm_softplus(float x)
{
    return fm_select(x > 0.0f, x, 0.0f) + fm_log1p(fm_exp(-fm_abs(x)));
}

static inline float fm_tanh(float x)
{
    float e = fm_exp(-2.0f * fm_abs(x));
    float t = (1.0f - e) / (1.0f + e);
    return fm_as_float(fm_as_int(t) | (fm_as_int(x) & INT32_MIN)); /* sign of x */
}

#endif
