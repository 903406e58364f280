/*
 * dtype.c — element type sizes and names, and the exact f16/bf16 <-> f32 conversions (see
 * dtype.h).
 *
 * The conversions work on bit patterns rather than relying on the compiler's _Float16, so they
 * give the same result on every compiler and CPU, and match torch/numpy bit for bit: round to
 * nearest, ties to even; NaN stays a (quiet) NaN with its sign and top payload bits.
 */
#include "base/dtype.h"

#include <assert.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_table[DTYPE_COUNT] = {
    [DTYPE_F32] = {"F32", 4}, [DTYPE_F16] = {"F16", 2}, [DTYPE_BF16] = {"BF16", 2},
    [DTYPE_I32] = {"I32", 4}, [DTYPE_I64] = {"I64", 8}, [DTYPE_U8] = {"U8", 1},
    [DTYPE_F64] = {"F64", 8},
};

size_t dtype_size(dtype t)
{
    assert((unsigned)t < DTYPE_COUNT);
    return dtype_table[t].size;
}

const char *dtype_name(dtype t)
{
    if ((unsigned)t >= DTYPE_COUNT)
        return "unknown";
    return dtype_table[t].name;
}

bool dtype_parse(const char *name, dtype *out)
{
    for (int t = 0; t < DTYPE_COUNT; t++) {
        if (strcmp(name, dtype_table[t].name) == 0) {
            *out = (dtype)t;
            return true;
        }
    }
    return false;
}

bool dtype_parse_float_flag(const char *name, dtype *out)
{
    if (strcmp(name, "fp32") == 0)
        *out = DTYPE_F32;
    else if (strcmp(name, "fp16") == 0)
        *out = DTYPE_F16;
    else if (strcmp(name, "bf16") == 0)
        *out = DTYPE_BF16;
    else
        return false;
    return true;
}

/* q + 1 when the dropped bits rem are more than half of (1 << shift), or exactly half and q is
 * odd: round to nearest, ties to even. */
static uint32_t round_shifted(uint32_t q, uint32_t rem, unsigned shift)
{
    uint32_t half = 1u << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1u)));
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f)
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return f32_from_bits(sign);
        /* Subnormal man * 2^-24: normalise so the leading one becomes the implicit bit. */
        exp = 113;
        while (!(man & 0x400u)) {
            man <<= 1;
            exp--;
        }
        return f32_from_bits(sign | (exp << 23) | ((man & 0x3ffu) << 13));
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520, halfway from 65504 to 2^16: rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* normal in f16 (>= 2^-14) */
        uint32_t rebiased = ax - 0x38000000u; /* exponent bias 127 -> 15 */
        return (uint16_t)(sign | round_shifted(rebiased >> 13, rebiased & 0x1fffu, 13));
    }
    if (ax < 0x33000000u) /* below 2^-25, half the smallest subnormal: rounds to zero */
        return sign;
    /* Subnormal in f16: the value in units of 2^-24, from the 24-bit significand. */
    uint32_t exp = ax >> 23;
    uint32_t man = (ax & 0x7fffffu) | 0x800000u;
    unsigned shift = 126 - exp; /* 14..24 */
    return (uint16_t)(sign | round_shifted(man >> shift, man & ((1u << shift) - 1), shift));
}

float bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

uint16_t f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)(round_shifted(x >> 16, x & 0xffffu, 16));
}

void dtype_to_f32(dtype src_type, const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    if (n == 0)
        return;
    switch (src_type) {
    case DTYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        return;
    case DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, sizeof h);
            dst[i] = f16_to_f32(h);
        }
        return;
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, p + 2 * i, sizeof b);
            dst[i] = bf16_to_f32(b);
        }
        return;
    case DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        return;
    case DTYPE_I32:
    case DTYPE_I64:
    case DTYPE_U8:
        break;
    }
    assert(!"dtype_to_f32: source type is not a floating type");
}

void dtype_from_f32(dtype dst_type, const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    if (n == 0)
        return;
    switch (dst_type) {
    case DTYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        return;
    case DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, sizeof h);
        }
        return;
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b = f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &b, sizeof b);
        }
        return;
    case DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d = src[i];
            memcpy(p + 8 * i, &d, sizeof d);
        }
        return;
    case DTYPE_I32:
    case DTYPE_I64:
    case DTYPE_U8:
        break;
    }
    assert(!"dtype_from_f32: destination type is not a floating type");
}
