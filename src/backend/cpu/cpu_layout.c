/*
 * cpu_layout.c — ops that move data rather than compute: nearest upsampling, channel concat
 * and slice, row gather, copy, zero; and the sinusoidal timestep embedding, which makes data
 * from a handful of numbers.
 */
#include "backend/cpu/cpu_backend.h"

#include <math.h>
#include <string.h>

#define BYTES_PER_CHUNK (256 * 1024)

typedef struct layout_job {
    const float *a, *b;
    float *y;
    size_t ca, cb, cy; /* channels (row widths) */
    size_t first;
    size_t w;          /* upsample: input width */
} layout_job;

/* Output rows [begin, end) of y [N*2H, 2W, C], one input row each. */
static void upsample_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const layout_job *job = ctx;
    size_t c = job->cy, w = job->w;
    for (size_t oy = begin; oy < end; oy++) {
        const float *in = job->a + (oy / 2) * w * c;
        float *out = job->y + oy * 2 * w * c;
        for (size_t x = 0; x < w; x++) {
            memcpy(out + 2 * x * c, in + x * c, c * sizeof(float));
            memcpy(out + (2 * x + 1) * c, in + x * c, c * sizeof(float));
        }
    }
}

sdxl_status cpu_upsample_nearest2x(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    size_t c = (size_t)x->shape[3], w = (size_t)x->shape[2];
    layout_job job = {.a = x->data, .y = y->data, .cy = c, .w = w};
    size_t out_rows = (size_t)(y->shape[0] * y->shape[1]);
    size_t row_bytes = 2 * w * c * sizeof(float);
    cpu_parallel_range(cpu_of(b), out_rows, BYTES_PER_CHUNK / row_bytes + 1, upsample_chunk,
                       &job);
    return SDXL_OK;
}

static void concat_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const layout_job *job = ctx;
    for (size_t r = begin; r < end; r++) {
        memcpy(job->y + r * job->cy, job->a + r * job->ca, job->ca * sizeof(float));
        memcpy(job->y + r * job->cy + job->ca, job->b + r * job->cb, job->cb * sizeof(float));
    }
}

sdxl_status cpu_concat_channels(backend *b, const tensor *a, const tensor *c, tensor *y,
                                sdxl_error *err)
{
    layout_job job = {.a = a->data, .b = c->data, .y = y->data,
                      .ca = (size_t)tensor_last_dim(a), .cb = (size_t)tensor_last_dim(c),
                      .cy = (size_t)tensor_last_dim(y)};
    size_t rows = (size_t)tensor_rows(y);
    cpu_parallel_range(cpu_of(b), rows, BYTES_PER_CHUNK / (job.cy * sizeof(float)) + 1,
                       concat_chunk, &job);
    return SDXL_OK;
}

static void slice_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const layout_job *job = ctx;
    for (size_t r = begin; r < end; r++)
        memcpy(job->y + r * job->cy, job->a + r * job->ca + job->first, job->cy * sizeof(float));
}

sdxl_status cpu_slice_channels(backend *b, const tensor *x, int64_t first, tensor *y,
                               sdxl_error *err)
{
    layout_job job = {.a = x->data, .y = y->data, .ca = (size_t)tensor_last_dim(x),
                      .cy = (size_t)tensor_last_dim(y), .first = (size_t)first};
    size_t rows = (size_t)tensor_rows(y);
    cpu_parallel_range(cpu_of(b), rows, BYTES_PER_CHUNK / (job.cy * sizeof(float)) + 1,
                       slice_chunk, &job);
    return SDXL_OK;
}

/* Follows diffusers' get_timestep_embedding step by step in float32, the precision torch
 * computes it in: exponent = -ln(max_period) * i / (half - shift); freq = exp(exponent);
 * arg = t * freq. The arguments reach ~1000 radians, where one float rounding of arg moves
 * sin by ~3e-5, so the float roundings must be torch's; sin and cos are then taken in double
 * and rounded once (torch's are accurate to within an ulp too). */
sdxl_status cpu_timestep_embedding(backend *b, const tensor *t, bool flip_sin_to_cos,
                                   float downscale_freq_shift, float max_period, tensor *y,
                                   sdxl_error *err)
{
    size_t n = (size_t)t->shape[0], dim = (size_t)y->shape[1], half = dim / 2;
    const float *ts = t->data;
    float *out = y->data;
    float neg_log_period = (float)-log((double)max_period);
    float denom = (float)half - downscale_freq_shift;
    for (size_t r = 0; r < n; r++) {
        float *row = out + r * dim;
        for (size_t i = 0; i < half; i++) {
            float exponent = neg_log_period * (float)i;
            exponent = exponent / denom;
            float arg = ts[r] * expf(exponent);
            float s = (float)sin((double)arg), c = (float)cos((double)arg);
            row[i] = flip_sin_to_cos ? c : s;
            row[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2)
            row[dim - 1] = 0.0f;
    }
    return SDXL_OK;
}

sdxl_status cpu_gather_rows(backend *b, const tensor *table, const tensor *ids, tensor *y,
                            sdxl_error *err)
{
    size_t n = (size_t)ids->shape[0], c = (size_t)table->shape[1];
    int64_t rows = table->shape[0];
    const int32_t *id = ids->data;
    for (size_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= rows)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "gather_rows: ids[%zu] = %d is outside the table's %lld rows", i,
                             (int)id[i], (long long)rows);
    const float *src = table->data;
    float *dst = y->data;
    for (size_t i = 0; i < n; i++)
        memcpy(dst + i * c, src + (size_t)id[i] * c, c * sizeof(float));
    return SDXL_OK;
}

static void copy_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const layout_job *job = ctx;
    memcpy((unsigned char *)job->y + begin, (const unsigned char *)job->a + begin, end - begin);
}

sdxl_status cpu_copy(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    layout_job job = {.a = x->data, .y = y->data};
    cpu_parallel_range(cpu_of(b), tensor_nbytes(x), BYTES_PER_CHUNK, copy_chunk, &job);
    return SDXL_OK;
}

static void zero_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const layout_job *job = ctx;
    memset((unsigned char *)job->y + begin, 0, end - begin);
}

sdxl_status cpu_zero(backend *b, tensor *y, sdxl_error *err)
{
    layout_job job = {.y = y->data};
    cpu_parallel_range(cpu_of(b), tensor_nbytes(y), BYTES_PER_CHUNK, zero_chunk, &job);
    return SDXL_OK;
}
