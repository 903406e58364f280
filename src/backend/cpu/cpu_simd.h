/*
 * cpu_simd.h — eight-lane float vectors for the cpu kernels' transcendental loops.
 *
 * Softmax inside attention and the SiLU / GELU after norms and projections evaluate exp or erf
 * billions of times per image; compilers do not vectorise those loops on their own (the
 * clamps become branches). These helpers are written with the GCC/Clang vector extension, so
 * they compile to AVX, SSE or NEON alike, and use only + - * / and bit moves: no fused
 * multiply-adds (-ffp-contract=off), so every lane gives exactly the bits of the scalar
 * functions in cpu_math.h, and tails handled by the scalar code agree with the vector body.
 *
 * Vectors go into helpers by pointer: passing 32-byte vectors by value makes GCC note on every
 * build that their ABI differs with and without AVX (irrelevant for inlined helpers, but noise
 * that cannot be silenced from the source). Results come back by value, which is quiet.
 *
 * CPU_SIMD_CLONES marks the few hot loops to be compiled twice on x86-64 Linux (AVX2 and
 * baseline, picked at load time by the CPU); elsewhere it is empty and the baseline is used.
 */
#ifndef SDXL_BACKEND_CPU_CPU_SIMD_H
#define SDXL_BACKEND_CPU_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/clones.h"

#if SDXL_CLONES
#define CPU_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CPU_SIMD_CLONES
#endif

/* -Wpsabi: returning a 32-byte vector from a static inline helper is never an ABI boundary. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float cpu_f8 __attribute__((vector_size(32)));
typedef int32_t cpu_i8 __attribute__((vector_size(32)));
typedef uint32_t cpu_u8 __attribute__((vector_size(32)));

static inline cpu_f8 cpu_f8_load(const float *p)
{
    cpu_f8 v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void cpu_f8_store(float *p, const cpu_f8 *v)
{
    memcpy(p, v, sizeof(*v));
}

static inline cpu_f8 cpu_f8_splat(float x)
{
    return (cpu_f8){x, x, x, x, x, x, x, x};
}

/* mask ? a : b per lane, for mask lanes all ones or all zeros (a vector comparison's). */
#define CPU_F8_SELECT(mask, a, b) ((cpu_f8)(((cpu_i8)(a) & (mask)) | ((cpu_i8)(b) & ~(mask))))

/* cpu_expf (cpu_math.h) on eight lanes, step for step, for x <= 88.3 and not NaN (softmax
 * after subtracting the row maximum is always such): cpu_f8_exp without the upper clamp and
 * the NaN pass-through, same bits. */
static inline cpu_f8 cpu_f8_exp_bounded(const cpu_f8 *in)
{
    const cpu_f8 magic = cpu_f8_splat(12582912.0f), lowest = cpu_f8_splat(-87.0f);
    cpu_f8 x = CPU_F8_SELECT(*in < lowest, lowest, *in);
    cpu_f8 t = x * 1.44269504088896341f + magic;
    cpu_f8 n = t - magic;
    cpu_i8 ni = (cpu_i8)t - (cpu_i8)magic;
    cpu_f8 r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    cpu_f8 p = cpu_f8_splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    return (cpu_f8)((cpu_u8)p + ((cpu_u8)ni << 23));
}

/* cpu_expf (cpu_math.h) on eight lanes, step for step. */
static inline cpu_f8 cpu_f8_exp(const cpu_f8 *x)
{
    const cpu_f8 highest = cpu_f8_splat(88.3f);
    cpu_f8 clamped = CPU_F8_SELECT(*x > highest, highest, *x);
    cpu_f8 e = cpu_f8_exp_bounded(&clamped);
    return CPU_F8_SELECT(*x != *x, *x, e);
}

/* cpu_erff (cpu_math.h) on eight lanes, step for step. */
static inline cpu_f8 cpu_f8_erf(const cpu_f8 *in)
{
    const cpu_f8 lo = cpu_f8_splat(-4.0f), hi = cpu_f8_splat(4.0f);
    cpu_f8 x = CPU_F8_SELECT(*in < lo, lo, *in);
    x = CPU_F8_SELECT(x > hi, hi, x);
    cpu_f8 x2 = x * x;
    cpu_f8 p = cpu_f8_splat(-2.72614225801306e-10f);
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    cpu_f8 q = cpu_f8_splat(-1.45660718464996e-05f);
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

/* x * sigmoid(a x), as cpu_x_sigmoid. */
static inline cpu_f8 cpu_f8_x_sigmoid(const cpu_f8 *x, float a)
{
    cpu_f8 arg = -(*x * a);
    return *x / (1.0f + cpu_f8_exp(&arg));
}

/* Exact GELU, as cpu_gelu. */
static inline cpu_f8 cpu_f8_gelu(const cpu_f8 *x)
{
    cpu_f8 arg = *x * 0.70710678118654752f;
    return *x * 0.5f * (1.0f + cpu_f8_erf(&arg));
}

#endif /* SDXL_BACKEND_CPU_CPU_SIMD_H */
