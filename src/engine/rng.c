/*
 * rng.c — MT19937 and torch.randn's float32 sampling, reproduced bit for bit.
 *
 * Sources mirrored (torch 2.5): aten/src/ATen/core/MT19937RNGEngine.h (the engine),
 * core/TransformationHelper.h (uniforms), core/DistributionsHelper.h (normal_distribution<double>,
 * used below 16 elements) and native/cpu/DistributionTemplates.h with native/cpu/avx_mathfun.h
 * (normal_fill_AVX2, used from 16 elements). Where torch's compiled AVX2 kernel fuses a multiply
 * and an add (read from the disassembly of libtorch_cpu.so's normal_kernel; gcc contracted the
 * intrinsics), this file calls fmaf(); every other operation is a separately rounded float op
 * (the build uses -ffp-contract=off), in the kernel's order.
 *
 * Speed: without the FMA instruction set enabled, each fmaf() is a call into libm (~40 ns per
 * normal in all, 0.65 ms for one 512x512 latent draw). The Box–Muller loop is therefore also
 * compiled for FMA on x86-64 Linux with GCC and picked at load time by the CPU; the bits are
 * the same, since fmaf() is one exact rounding whether the instruction or libm computes it.
 */
#include "engine/rng.h"

#include "base/clones.h"
#include "base/dtype.h"

#include <math.h>
#include <string.h>

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER_MASK 0x80000000u
#define MT_LOWER_MASK 0x7fffffffu

#define RNG_PI 3.14159265358979323846

/* O3 and no-math-errno let GCC vectorise the loop (sqrtf's errno branch would stop it; its
 * argument, −2 log(1 − u), is never negative). */
#if SDXL_CLONES
#define RNG_FMA_CLONES                                                                             \
    __attribute__((target_clones("fma", "default"), optimize("O3", "no-math-errno")))
#define RNG_INLINE inline __attribute__((always_inline))
#else
#define RNG_FMA_CLONES
#define RNG_INLINE inline
#endif

void rng_seed(rng_generator *gen, uint64_t seed)
{
    gen->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < RNG_MT_N; j++) {
        uint32_t prev = gen->mt[j - 1];
        gen->mt[j] = 1812433253u * (prev ^ (prev >> 30)) + j;
    }
    gen->left = 1;
    gen->next = 0;
    gen->has_cached_normal = false;
    gen->cached_normal = 0.0;
}

static uint32_t mt_twist(uint32_t u, uint32_t v)
{
    uint32_t mixed = (u & MT_UPPER_MASK) | (v & MT_LOWER_MASK);
    return (mixed >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

static void mt_next_state(rng_generator *gen)
{
    uint32_t *p = gen->mt;
    size_t j = 0;
    for (; j < RNG_MT_N - MT_M; j++)
        p[j] = p[j + MT_M] ^ mt_twist(p[j], p[j + 1]);
    for (; j < RNG_MT_N - 1; j++)
        p[j] = p[j + MT_M - RNG_MT_N] ^ mt_twist(p[j], p[j + 1]);
    p[RNG_MT_N - 1] = p[MT_M - 1] ^ mt_twist(p[RNG_MT_N - 1], p[0]);
    gen->left = RNG_MT_N;
    gen->next = 0;
}

uint32_t rng_next_u32(rng_generator *gen)
{
    if (--gen->left == 0)
        mt_next_state(gen);
    uint32_t y = gen->mt[gen->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t rng_next_u64(rng_generator *gen)
{
    uint64_t hi = rng_next_u32(gen);
    uint64_t lo = rng_next_u32(gen);
    return (hi << 32) | lo;
}

/* [0, 1) from the low 24 bits (float's digits); exact. */
static float rng_uniform_f32(rng_generator *gen)
{
    return (float)(rng_next_u32(gen) & 0xffffffu) * 0x1p-24f;
}

/* [0, 1) from the low 53 bits of a 64-bit draw; exact. */
static double rng_uniform_f64(rng_generator *gen)
{
    return (double)(rng_next_u64(gen) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

/* torch's normal_distribution<double>: Box–Muller on two double uniforms, returning r·cos θ and
 * keeping r·sin θ for the next call. Note the roles: u1 gives the angle, u2 the radius. */
static double rng_normal_f64(rng_generator *gen)
{
    if (gen->has_cached_normal) {
        gen->has_cached_normal = false;
        return gen->cached_normal;
    }
    double u1 = rng_uniform_f64(gen);
    double u2 = rng_uniform_f64(gen);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * RNG_PI * u1;
    gen->cached_normal = r * sin(theta);
    gen->has_cached_normal = true;
    return r * cos(theta);
}

/* v where keep holds, +0 elsewhere: the and-with-a-mask of the AVX code, branch-free so that
 * the compiler can keep the lanes in vectors. */
static RNG_INLINE float keep_or_zero(bool keep, float v)
{
    return f32_from_bits(f32_bits(v) & (0u - (uint32_t)keep));
}

/* avx_mathfun's log256_ps for one lane. Only for normal positive x (the kernel's arguments are
 * 1 − u ∈ [2^-24, 1]), so its NaN mask and denormal clamp, which never fire there, are left out.
 * Constants are written as torch writes them — double literals rounded to float. */
static RNG_INLINE float cephes_logf(float x)
{
    uint32_t bits = f32_bits(x);
    float e = (float)((int32_t)(bits >> 23) - 0x7f);
    e = e + 1.0f;
    /* the mantissa as a value in [0.5, 1) */
    x = f32_from_bits((bits & ~0x7f800000u) | f32_bits(0.5f));

    /* if x < SQRTHF: e -= 1, x = x + x - 1; else x = x - 1 — done branch-free as torch does */
    bool below = x < (float)0.707106781186547524;
    float tmp = keep_or_zero(below, x);
    x = x - 1.0f;
    e = e - keep_or_zero(below, 1.0f);
    x = x + tmp;

    float z = x * x;
    float y = (float)7.0376836292E-2;
    y = fmaf(y, x, (float)-1.1514610310E-1);
    y = fmaf(y, x, (float)1.1676998740E-1);
    y = fmaf(y, x, (float)-1.2420140846E-1);
    y = fmaf(y, x, (float)1.4249322787E-1);
    y = fmaf(y, x, (float)-1.6668057665E-1);
    y = fmaf(y, x, (float)2.0000714765E-1);
    y = fmaf(y, x, (float)-2.4999993993E-1);
    y = fmaf(y, x, (float)3.3333331174E-1);
    y = y * x;
    y = fmaf(y, z, e * (float)-2.12194440e-4);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    return fmaf(e, (float)0.693359375, x);
}

/* avx_mathfun's sincos256_ps for one lane (Cephes sinf/cosf with a shared range reduction).
 * Valid for |x| well inside int32 range (here x = 2π·u ∈ [0, 2π)). */
static RNG_INLINE void cephes_sincosf(float x, float *sin_out, float *cos_out)
{
    uint32_t sign_sin = f32_bits(x) & 0x80000000u;
    x = f32_from_bits(f32_bits(x) & 0x7fffffffu);

    /* octant j = (int(x·4/π) + 1) & ~1 */
    int32_t j = (int32_t)(x * (float)1.27323954473516);
    j = (j + 1) & ~1;
    float y = (float)j;
    uint32_t swap_sign_sin = (uint32_t)(j & 4) << 29;
    bool sin_uses_sin_poly = (j & 2) == 0;
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sign_sin;

    /* x − y·π/4 in three parts ("extended precision modular arithmetic") */
    x = fmaf(y, (float)-0.78515625, x);
    x = fmaf(y, (float)-2.4187564849853515625e-4, x);
    x = fmaf(y, (float)-3.77489497744594108e-8, x);

    float z = x * x;
    float poly_cos = (float)2.443315711809948E-005;
    poly_cos = fmaf(poly_cos, z, (float)-1.388731625493765E-003);
    poly_cos = fmaf(poly_cos, z, (float)4.166664568298827E-002);
    poly_cos = poly_cos * z;
    poly_cos = fmaf(poly_cos, z, -(0.5f * z));
    poly_cos = poly_cos + 1.0f;

    float poly_sin = (float)-1.9515295891E-4;
    poly_sin = fmaf(poly_sin, z, (float)8.3321608736E-3);
    poly_sin = fmaf(poly_sin, z, (float)-1.6666654611E-1);
    poly_sin = poly_sin * z;
    poly_sin = fmaf(poly_sin, x, x);

    /* torch selects with masks and then subtracts the selected part (x − x or x − 0), so the
     * selection is arithmetic too; reproduced literally to keep signed zeros identical */
    float sin_part_sin = keep_or_zero(sin_uses_sin_poly, poly_sin);
    float sin_part_cos = keep_or_zero(!sin_uses_sin_poly, poly_cos);
    poly_sin = poly_sin - sin_part_sin;
    poly_cos = poly_cos - sin_part_cos;
    float s = sin_part_cos + sin_part_sin;
    float c = poly_sin + poly_cos;

    *sin_out = f32_from_bits(f32_bits(s) ^ sign_sin);
    *cos_out = f32_from_bits(f32_bits(c) ^ sign_cos);
}

/* normal_fill_16_AVX2: d[0..7] and d[8..15] hold uniforms; Box–Muller pairs (d[j], d[j+8]).
 * The final "+ 0.0f" is torch's mean + std·n with mean 0 and std 1 (a fused multiply-add
 * there); it turns the −0 that u = 0 produces into +0. */
static RNG_INLINE void normal_fill_16(float *d)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(cephes_logf(u1) * -2.0f);
        float theta = (float)(2.0 * RNG_PI) * u2;
        float sin_t, cos_t;
        cephes_sincosf(theta, &sin_t, &cos_t);
        d[j] = radius * cos_t + 0.0f;
        d[j + 8] = radius * sin_t + 0.0f;
    }
}

/* normal_fill_16 over every whole block of 16 in d[0..n). */
RNG_FMA_CLONES static void normal_fill_blocks(float *d, size_t n)
{
    for (size_t b = 0; b + 16 <= n; b += 16)
        normal_fill_16(d + b);
}

void rng_rand_f32(rng_generator *gen, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rng_uniform_f32(gen);
}

void rng_randn_f32(rng_generator *gen, float *out, size_t n)
{
    if (n < 16) {
        /* per element, in double; "+ 0.0" is mean + std·x again (−0 → +0) */
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(rng_normal_f64(gen) + 0.0);
        return;
    }
    rng_rand_f32(gen, out, n);
    normal_fill_blocks(out, n);
    if (n % 16 != 0) {
        /* torch redraws 16 fresh uniforms for the last (overlapping) block */
        float *tail = out + n - 16;
        rng_rand_f32(gen, tail, 16);
        normal_fill_16(tail);
    }
}
