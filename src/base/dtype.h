/*
 * dtype.h — element types of tensors in files and in memory, and conversions between them.
 *
 * f16 and bf16 conversions round to nearest, ties to even (as torch's .half() / .bfloat16()),
 * keep NaN a NaN and infinities infinite; f16 subnormals are handled exactly.
 */
#ifndef SDXL_BASE_DTYPE_H
#define SDXL_BASE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum dtype {
    DTYPE_F32 = 0,
    DTYPE_F16 = 1,
    DTYPE_BF16 = 2,
    DTYPE_I32 = 3,
    DTYPE_I64 = 4,
    DTYPE_U8 = 5,
    DTYPE_F64 = 6,
} dtype;

#define DTYPE_COUNT 7

size_t dtype_size(dtype t);
/* Safetensors spelling: "F32", "F16", "BF16", "I32", "I64", "U8", "F64". */
const char *dtype_name(dtype t);
/* Parses the safetensors spelling; false if unknown. */
bool dtype_parse(const char *name, dtype *out);
/* Parses "fp32", "fp16", "bf16" (command-line spelling); false if unknown. */
bool dtype_parse_float_flag(const char *name, dtype *out);

/* The IEEE-754 bits of a float, and the float with those bits. */
static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);

/* Converts n elements of a floating type (F32, F16, BF16, F64) to f32. src may be unaligned. */
void dtype_to_f32(dtype src_type, const void *src, float *dst, size_t n);
/* Converts n f32 values to a floating type (F32, F16, BF16, F64). dst may be unaligned. */
void dtype_from_f32(dtype dst_type, const float *src, void *dst, size_t n);

#endif /* SDXL_BASE_DTYPE_H */
