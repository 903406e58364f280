/*
 * rng.h — torch's CPU random number generator, so a seed gives diffusers' exact noise.
 *
 * rng_seed(&gen, seed) is torch.Generator("cpu").manual_seed(seed); rng_randn_f32(&gen, out, n)
 * is torch.randn(<any shape of n elements>, generator=gen, dtype=torch.float32), bit for bit,
 * and successive calls continue the stream as successive torch calls do (including the normal
 * value torch caches between calls of fewer than 16 elements).
 *
 * Which torch: the float32 path (n >= 16) reproduces the AVX2 kernel that every x86-64 torch
 * wheel runs (Cephes log/sincos polynomials from ATen's avx_mathfun.h, with the fused
 * multiply-adds its compiled kernel uses). It is portable C, so every host — aarch64 included —
 * produces those same x86 numbers; torch itself on aarch64 would differ in the last bits of
 * ~40% of values (it uses libm there). The n < 16 path computes in double with libm's log1p,
 * sin and cos, as torch does, so it is exact wherever libm matches glibc's (to the float32
 * rounding of the result).
 *
 *     rng_generator gen;
 *     rng_seed(&gen, 42);
 *     rng_randn_f32(&gen, latents, 4 * 64 * 64);   // == torch.randn((1, 4, 64, 64), generator=...)
 */
#ifndef SDXL_ENGINE_RNG_H
#define SDXL_ENGINE_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RNG_MT_N 624

/* Plain data: copy it to fork a stream, as torch's get_state/set_state would. */
typedef struct rng_generator {
    uint32_t mt[RNG_MT_N]; /* MT19937 state */
    uint32_t left;         /* draws left before the next twist, plus one (torch's count) */
    uint32_t next;         /* index of the next state word to temper */
    bool has_cached_normal;
    double cached_normal; /* the r·sin θ half of the last Box–Muller pair (n < 16 path) */
} rng_generator;

/* torch's manual_seed: MT19937 init_genrand with seed & 0xffffffff (so seed and
 * seed + k·2^32 are the same stream; a negative Python seed is its two's-complement uint64),
 * and the cached normal is dropped. */
void rng_seed(rng_generator *gen, uint64_t seed);

/* One MT19937 output. */
uint32_t rng_next_u32(rng_generator *gen);

/* Two outputs, the first one the high word (torch's random64). */
uint64_t rng_next_u64(rng_generator *gen);

/* n uniform float32 values in [0, 1), exactly as torch.rand with this generator. */
void rng_rand_f32(rng_generator *gen, float *out, size_t n);

/* n standard normal float32 values in C order, exactly as torch.randn with this generator
 * (n == 0 draws nothing). */
void rng_randn_f32(rng_generator *gen, float *out, size_t n);

#endif /* SDXL_ENGINE_RNG_H */
