/*
 * cpu_elementwise.c — element-wise ops: activations, GEGLU, add / multiply with broadcast,
 * scaled add, affine scale, division by a scalar, clamp, the VAE's Gaussian sample, the
 * per-image channel add, conversion between float types, and pixels to and from the VAE's
 * [-1, 1].
 *
 * Every element is computed on its own, so any cut of the work gives the same bits; the
 * arrays are cut into fixed chunks big enough to amortise a pool dispatch. Each product, sum
 * and quotient is rounded to float on its own (the build's -ffp-contract=off forbids fused
 * multiply-adds), in torch's order, so the scheduler's arithmetic equals diffusers' bit for bit.
 */
#include "backend/cpu/cpu_backend.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/cpu_math.h"
#include "backend/cpu/cpu_simd.h"

#define ELEMENTS_PER_CHUNK 32768

CPU_SIMD_CLONES
void cpu_apply_act(backend_act act, float *x, size_t n)
{
    size_t i = 0;
    cpu_f8 v, r;
    switch (act) {
    case BACKEND_ACT_NONE:
        break;
    case BACKEND_ACT_GELU:
        for (; i + 8 <= n; i += 8) {
            v = cpu_f8_load(x + i);
            r = cpu_f8_gelu(&v);
            cpu_f8_store(x + i, &r);
        }
        for (; i < n; i++)
            x[i] = cpu_gelu(x[i]);
        break;
    case BACKEND_ACT_QUICK_GELU:
        for (; i + 8 <= n; i += 8) {
            v = cpu_f8_load(x + i);
            r = cpu_f8_x_sigmoid(&v, 1.702f);
            cpu_f8_store(x + i, &r);
        }
        for (; i < n; i++)
            x[i] = cpu_x_sigmoid(x[i], 1.702f);
        break;
    case BACKEND_ACT_SILU:
        for (; i + 8 <= n; i += 8) {
            v = cpu_f8_load(x + i);
            r = cpu_f8_x_sigmoid(&v, 1.0f);
            cpu_f8_store(x + i, &r);
        }
        for (; i < n; i++)
            x[i] = cpu_x_sigmoid(x[i], 1.0f);
        break;
    }
}

typedef struct ew_job {
    const float *x, *z;
    float *y;
    int op;
    float alpha, beta;
    size_t z_len;  /* binary: elements of z (repeated along x) */
    size_t width;  /* geglu: F; add_channels: C */
    size_t inner;  /* add_channels: rows (positions) per image */
} ew_job;

static void unary_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const ew_job *job = ctx;
    if (job->y != job->x)
        memcpy(job->y + begin, job->x + begin, (end - begin) * sizeof(float));
    cpu_apply_act((backend_act)job->op, job->y + begin, end - begin);
}

sdxl_status cpu_unary(backend *b, backend_unary_op op, const tensor *x, tensor *y,
                      sdxl_error *err)
{
    ew_job job = {.x = x->data, .y = y->data, .op = (int)op};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, unary_chunk, &job);
    return SDXL_OK;
}

/* Rows [begin, end) of x [rows, 2F] -> y [rows, F]. */
CPU_SIMD_CLONES
static void geglu_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const ew_job *job = ctx;
    size_t f = job->width;
    for (size_t r = begin; r < end; r++) {
        const float *in = job->x + r * 2 * f;
        float *out = job->y + r * f;
        size_t j = 0;
        for (; j + 8 <= f; j += 8) {
            cpu_f8 gate = cpu_f8_load(in + f + j);
            cpu_f8 prod = cpu_f8_load(in + j) * cpu_f8_gelu(&gate);
            cpu_f8_store(out + j, &prod);
        }
        for (; j < f; j++)
            out[j] = in[j] * cpu_gelu(in[f + j]);
    }
}

sdxl_status cpu_geglu(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    size_t f = (size_t)tensor_last_dim(y);
    ew_job job = {.x = x->data, .y = y->data, .width = f};
    size_t rows = (size_t)tensor_rows(y);
    size_t grain = ELEMENTS_PER_CHUNK / f + 1;
    cpu_parallel_range(cpu_of(b), rows, grain, geglu_chunk, &job);
    return SDXL_OK;
}

static void binary_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const ew_job *job = ctx;
    size_t zn = job->z_len;
    size_t i = begin;
    while (i < end) {
        /* The run of elements that meets z contiguously. */
        size_t zi = i % zn;
        size_t run = zn - zi < end - i ? zn - zi : end - i;
        const float *x = job->x + i, *z = job->z + zi;
        float *y = job->y + i;
        if (job->op == BACKEND_BINARY_ADD)
            for (size_t j = 0; j < run; j++)
                y[j] = x[j] + z[j];
        else
            for (size_t j = 0; j < run; j++)
                y[j] = x[j] * z[j];
        i += run;
    }
}

sdxl_status cpu_binary(backend *b, backend_binary_op op, const tensor *x, const tensor *z,
                       tensor *y, sdxl_error *err)
{
    ew_job job = {.x = x->data, .z = z->data, .y = y->data, .op = (int)op,
                  .z_len = (size_t)tensor_numel(z)};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, binary_chunk,
                       &job);
    return SDXL_OK;
}

static void add_scaled_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const ew_job *job = ctx;
    const float *x = job->x, *z = job->z;
    float *y = job->y;
    float alpha = job->alpha, beta = job->beta;
    for (size_t i = begin; i < end; i++)
        y[i] = alpha * x[i] + beta * z[i];
}

sdxl_status cpu_add_scaled(backend *b, float alpha, const tensor *x, float beta,
                           const tensor *z, tensor *y, sdxl_error *err)
{
    ew_job job = {.x = x->data, .z = z->data, .y = y->data, .alpha = alpha, .beta = beta};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, add_scaled_chunk,
                       &job);
    return SDXL_OK;
}

/* The element-wise ops of x and two scalars a, b (one op per call). */
typedef enum scalar_op {
    SCALAR_AFFINE = 0, /* a · x + b */
    SCALAR_DIV = 1,    /* x / a */
    SCALAR_CLAMP = 2,  /* x within [a, b]; comparisons with NaN are false, so NaN stays NaN */
} scalar_op;

static void scalar_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const ew_job *job = ctx;
    const float *x = job->x;
    float *y = job->y;
    float a = job->alpha, b = job->beta;
    switch ((scalar_op)job->op) {
    case SCALAR_AFFINE:
        for (size_t i = begin; i < end; i++)
            y[i] = a * x[i] + b;
        break;
    case SCALAR_DIV:
        for (size_t i = begin; i < end; i++)
            y[i] = x[i] / a;
        break;
    case SCALAR_CLAMP:
        for (size_t i = begin; i < end; i++)
            y[i] = x[i] < a ? a : x[i] > b ? b : x[i];
        break;
    }
}

static sdxl_status run_scalar(backend *be, scalar_op op, const tensor *x, float a, float b,
                              tensor *y)
{
    ew_job job = {.x = x->data, .y = y->data, .op = (int)op, .alpha = a, .beta = b};
    cpu_parallel_range(cpu_of(be), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, scalar_chunk,
                       &job);
    return SDXL_OK;
}

sdxl_status cpu_scale(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                      sdxl_error *err)
{
    return run_scalar(b, SCALAR_AFFINE, x, alpha, beta, y);
}

sdxl_status cpu_div_scalar(backend *b, const tensor *x, float divisor, tensor *y,
                           sdxl_error *err)
{
    return run_scalar(b, SCALAR_DIV, x, divisor, 0.0f, y);
}

sdxl_status cpu_clamp(backend *b, const tensor *x, float lo, float hi, tensor *y,
                      sdxl_error *err)
{
    return run_scalar(b, SCALAR_CLAMP, x, lo, hi, y);
}

typedef struct sample_job {
    const float *mean, *logvar, *noise;
    float *y;
} sample_job;

/* libm's expf (within about half an ulp), not cpu_expf (about 1e-7 relative): a handful of
 * values per image, so accuracy costs nothing here. */
static void gaussian_sample_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const sample_job *job = ctx;
    for (size_t i = begin; i < end; i++) {
        float std = expf(0.5f * job->logvar[i]);
        float scaled = std * job->noise[i];
        job->y[i] = job->mean[i] + scaled;
    }
}

sdxl_status cpu_gaussian_sample(backend *b, const tensor *mean, const tensor *logvar,
                                const tensor *noise, tensor *y, sdxl_error *err)
{
    sample_job job = {mean->data, logvar->data, noise->data, y->data};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(mean), ELEMENTS_PER_CHUNK,
                       gaussian_sample_chunk, &job);
    return SDXL_OK;
}

typedef struct convert_job {
    dtype from, to;
    const unsigned char *x;
    unsigned char *y;
} convert_job;

#define CONVERT_BLOCK 1024

/* Through f32 a block at a time: every F16 and BF16 value is exact in f32, so converting
 * through it rounds once, as a direct conversion would. */
static void convert_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const convert_job *job = ctx;
    size_t in = dtype_size(job->from), out = dtype_size(job->to);
    float block[CONVERT_BLOCK];
    for (size_t i = begin; i < end; i += CONVERT_BLOCK) {
        size_t n = end - i < CONVERT_BLOCK ? end - i : CONVERT_BLOCK;
        dtype_to_f32(job->from, job->x + i * in, block, n);
        dtype_from_f32(job->to, block, job->y + i * out, n);
    }
}

sdxl_status cpu_convert(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    if (x->type == y->type) {
        memcpy(y->data, x->data, tensor_nbytes(y));
        return SDXL_OK;
    }
    convert_job job = {x->type, y->type, x->data, y->data};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, convert_chunk,
                       &job);
    return SDXL_OK;
}

typedef struct pixels_job {
    const void *x;
    void *y;
} pixels_job;

/* 2 · (x / 255) − 1, one float rounding per operation (backend.h). */
static void normalize_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const pixels_job *job = ctx;
    const uint8_t *x = job->x;
    float *y = job->y;
    for (size_t i = begin; i < end; i++) {
        float unit = (float)x[i] / 255.0f;
        float twice = 2.0f * unit;
        y[i] = twice - 1.0f;
    }
}

/* round(clamp(x / 2 + 0.5, 0, 1) · 255), half to even (the default rounding mode); NaN → 0. */
static void denormalize_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const pixels_job *job = ctx;
    const float *x = job->x;
    uint8_t *y = job->y;
    for (size_t i = begin; i < end; i++) {
        float half = x[i] / 2.0f;
        float v = half + 0.5f;
        if (isnan(v)) {
            y[i] = 0;
            continue;
        }
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        y[i] = (uint8_t)nearbyintf(v * 255.0f);
    }
}

sdxl_status cpu_normalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    pixels_job job = {x->data, y->data};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, normalize_chunk,
                       &job);
    return SDXL_OK;
}

sdxl_status cpu_denormalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    pixels_job job = {x->data, y->data};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_numel(x), ELEMENTS_PER_CHUNK, denormalize_chunk,
                       &job);
    return SDXL_OK;
}

/* Rows [begin, end) of x viewed as [N * positions, C]; row r belongs to image r / positions. */
static void add_channels_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const ew_job *job = ctx;
    size_t c = job->width;
    for (size_t r = begin; r < end; r++) {
        const float *x = job->x + r * c, *e = job->z + (r / job->inner) * c;
        float *y = job->y + r * c;
        for (size_t j = 0; j < c; j++)
            y[j] = x[j] + e[j];
    }
}

sdxl_status cpu_add_channels(backend *b, const tensor *x, const tensor *e, tensor *y,
                             sdxl_error *err)
{
    size_t c = (size_t)tensor_last_dim(x);
    size_t rows = (size_t)tensor_rows(x);
    ew_job job = {.x = x->data, .z = e->data, .y = y->data, .width = c,
                  .inner = rows / (size_t)x->shape[0]};
    cpu_parallel_range(cpu_of(b), rows, ELEMENTS_PER_CHUNK / c + 1, add_channels_chunk, &job);
    return SDXL_OK;
}
