/*
 * cpu_math.h — scalar exp, erf, SiLU and GELU for the cpu kernels.
 *
 * libm's expf and erff are a call per element; softmax inside attention and the SiLU / GELU
 * after norms and projections evaluate them billions of times per image. These are made of
 * + - * / and bit moves only (no fused multiply-adds), so the eight-lane versions in
 * cpu_simd.h, which repeat them step for step, give the same bits lane by lane on every CPU.
 * cpu_expf is Cephes' single-precision exp (relative error about 1e-7 over the clamped range).
 */
#ifndef SDXL_BACKEND_CPU_CPU_MATH_H
#define SDXL_BACKEND_CPU_CPU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float cpu_bits_to_float(int32_t i)
{
    float f;
    memcpy(&f, &i, sizeof(f));
    return f;
}

static inline int32_t cpu_float_to_bits(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof(i));
    return i;
}

/* e^x. Inputs are clamped to [-87, 88.3] (results below about 1.6e-38 come out as that
 * value, not as 0 or a subnormal). NaN gives NaN. */
static inline float cpu_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float in = x;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.3f ? 88.3f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t ni = cpu_float_to_bits(t) - cpu_float_to_bits(magic);
    /* r = x - n ln 2 in two parts; n * 0.693359375 is exact. */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    float e = cpu_bits_to_float(cpu_float_to_bits(p) + (int32_t)((uint32_t)ni << 23));
    return in != in ? in : e;
}

/* erf(x): Eigen's rational approximation for float (odd degree-13 over even degree-8
 * polynomial on x clamped to [-4, 4], where erf is within 2e-8 of ±1); absolute error below
 * 4.5e-7 everywhere, relative error below 2.4e-7 for |x| < 0.5 (checked against math.erf on
 * 2 million points). libm's erff is a call per element and 20x slower in GELU-heavy layers. */
static inline float cpu_erff(float x)
{
    x = x < -4.0f ? -4.0f : x;
    x = x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

/* x * sigmoid(a x), a = 1 for SiLU and 1.702 for CLIP's quick_gelu. */
static inline float cpu_x_sigmoid(float x, float a)
{
    return x / (1.0f + cpu_expf(-(x * a)));
}

/* Exact (erf, not tanh) GELU, as torch.nn.functional.gelu(approximate="none"). */
static inline float cpu_gelu(float x)
{
    return x * 0.5f * (1.0f + cpu_erff(x * 0.70710678118654752f));
}

#endif /* SDXL_BACKEND_CPU_CPU_MATH_H */
